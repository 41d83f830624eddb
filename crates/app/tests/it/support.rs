//! The shared harness (devstack per test, injected clock, signed deliveries) lives in `tollgate-testkit`,
//! so the chaos runner drives the app exactly as these tests do.
pub use tollgate_testkit::*;

//! # tollgate-load
//!
//! `cargo xtask load`: Sell.app deliveries at concurrency through the workers in workerd (`wrangler dev`)
//! against devstack, on loopback only. Phases: one per devstack fault rate (0/10/30/50 % of Appwrite calls
//! failing by default), an outage window (every call failing while deliveries keep arriving; 503s are
//! delivered again later, as Sell.app does), then the crons until quiet, then a backlog of failure records
//! drained by the crons at Cloudflare's cadence. It ends with the exact final state of every buyer (lost,
//! duplicated, stuck, projections) and fails when any is not zero. Why a separate command and not a test:
//! a run takes minutes of both cores; `cargo xtask test` runs only this crate's unit tests.
//!
//! - [`args`]: the command line.
//! - [`plan`]: buyers, orders, the delivery order with its duplicates, Sell.app's redelivery delays.
//! - [`stats`]: percentiles and throughput.
//! - [`cpu`]: CPU time from `/proc` (worker processes, devstack's threads).
//! - [`check`]: the final-state verdict (pure).
//! - [`run`]: the phases against a started system.

pub mod args;
pub mod check;
pub mod cpu;
pub mod plan;
pub mod run;
pub mod stats;

//! # xtask
//!
//! The project's own build and run tooling, so that a fresh machine needs only `cargo`:
//! - [`toolchain`]: installs what is missing (wasm32 target, wasm-bindgen-cli, the npm packages that bring
//!   wrangler, binaryen's wasm-opt and the Node wrangler needs; nightly and cargo-fuzz for `cargo xtask fuzz`),
//!   checking pinned versions.
//! - [`build`]: compiles each worker to wasm and lays out `workers/<name>/build/` for wrangler.
//! - [`wrangler`]: runs a built worker in `wrangler dev` (the real workerd runtime) and stops it again.
//! - [`process`]: child processes that die with their parent.
//! - [`dev_env`]: the local settings file `.tollgate/dev.env`.
//! - [`bench`]: `cargo xtask bench`, the webhook's CPU (native and wasm in V8), the workers' sizes, and a
//!   CPU profile of whole deliveries in workerd.
//! - [`stripe_seed`]: the Stripe stand-in's webhook endpoint and demo price, set up through its Stripe API.
//! - [`system`]: the whole local system on free ports against a running devstack (e2e and `cargo xtask load`).
//!
//! The end-to-end tests (crate `tollgate-e2e`) use this library to start workers exactly as
//! `cargo xtask dev` does.

pub mod bench;
pub mod build;
pub mod dev_env;
pub mod paths;
pub mod process;
pub mod stripe_seed;
pub mod system;
pub mod toolchain;
pub mod workerd;
pub mod wrangler;

/// Waiting between Appwrite build polls ([`tollgate_app::bootstrap::Pause`]) on this tokio runtime.
pub struct TokioPause;

impl tollgate_app::bootstrap::Pause for TokioPause {
    async fn pause(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

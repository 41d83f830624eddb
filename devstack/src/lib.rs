//! # tollgate-devstack
//!
//! Local stand-ins for the services Tollgate talks to, for `cargo xtask dev` and for tests: an
//! Appwrite-compatible REST API (`/v1`) persisting to SQLite. It implements the documented behaviour of
//! every endpoint Tollgate, its bootstrap and its tests use (status codes, error bodies with Appwrite's
//! `type` names, 202 + asynchronous attribute builds, JSON queries, unique indexes, confirmed memberships
//! for API-key callers) and shares no code with Tollgate's own crates: a stand-in that reused the client
//! it stands in front of would test nothing.
//!
//! ## Layout
//! - [`appwrite`]: the Appwrite stand-in, one file per endpoint family, plus its store and query engine.
//! - [`discord`]: the Discord stand-in (`/api/v10`, OAuth2, rate-limit buckets), seeded with a demo guild.
//! - [`sellapp`]: the Sell.app stand-in (`/api/v2/orders`, bearer key, `X-STORE`), for refund
//!   reconciliation; orders are made and refunded through its `/_devstack/orders` routes.
//! - [`stripe`]: the Stripe stand-in (`/v1/...` on its own port, `sk_test_` key, form-encoded requests,
//!   Stripe's objects, errors and lists; checkout with a hosted test page, subscriptions billed on test
//!   clocks, refunds, disputes, webhook endpoints with signed, retried event deliveries), with its
//!   `/_devstack/stripe/...` controls (deliveries, hold/release, redeliver, checkout completion).
//! - [`control`]: test-only routes: `/_devstack/faults`, `/_devstack/reset`, `/_devstack/calls` (and, on the
//!   Appwrite port, `/_devstack/version` to play a 1.5/1.6 server without bulk routes).

#![recursion_limit = "256"]

pub mod appwrite;
pub mod control;
pub mod discord;
pub mod sellapp;
pub mod stripe;

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

pub const DEFAULT_PROJECT_ID: &str = "tollgate-dev";
/// A local-only development value, not a secret: devstack listens on 127.0.0.1 only.
pub const DEFAULT_API_KEY: &str = "devstack-local-api-key";
pub const DEFAULT_APPWRITE_PORT: u16 = 8790;
pub const DEFAULT_DISCORD_PORT: u16 = 8791;
pub const DEFAULT_SELLAPP_PORT: u16 = 8792;
pub const DEFAULT_STRIPE_PORT: u16 = 8793;
pub use discord::store::seed as discord_seed;

#[derive(Debug, Clone)]
pub struct DevstackConfig {
    pub appwrite_addr: SocketAddr,
    pub discord_addr: SocketAddr,
    pub sellapp_addr: SocketAddr,
    pub stripe_addr: SocketAddr,
    /// `None`: in memory (tests).
    pub data_dir: Option<PathBuf>,
    pub project_id: String,
    pub api_key: String,
}

impl DevstackConfig {
    pub fn for_tests() -> Self {
        Self {
            appwrite_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            discord_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            sellapp_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stripe_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            project_id: DEFAULT_PROJECT_ID.to_owned(),
            api_key: DEFAULT_API_KEY.to_owned(),
        }
    }
}

pub struct RunningDevstack {
    appwrite_addr: SocketAddr,
    discord_addr: SocketAddr,
    sellapp_addr: SocketAddr,
    stripe_addr: SocketAddr,
    project_id: String,
    api_key: String,
    stops: Vec<oneshot::Sender<()>>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningDevstack {
    pub fn appwrite_endpoint(&self) -> String {
        format!("{}/v1", self.appwrite_base_url())
    }

    pub fn appwrite_base_url(&self) -> String {
        format!("http://{}", self.appwrite_addr)
    }

    /// `http://127.0.0.1:PORT` of the Discord stand-in (its `/oauth2/authorize` is here).
    pub fn discord_base_url(&self) -> String {
        format!("http://{}", self.discord_addr)
    }

    /// What Tollgate's Discord client takes as its API base.
    pub fn discord_api_base(&self) -> String {
        format!("{}/api/v10", self.discord_base_url())
    }

    /// `http://127.0.0.1:PORT` of the Sell.app stand-in (its `/_devstack/orders` routes are here).
    pub fn sellapp_base_url(&self) -> String {
        format!("http://{}", self.sellapp_addr)
    }

    /// What Tollgate takes as `SELLAPP_API_BASE` (Sell.app's own is `https://sell.app/api`).
    pub fn sellapp_api_base(&self) -> String {
        format!("{}/api", self.sellapp_base_url())
    }

    /// The stand-in's API key (`SELLAPP_API_KEY`) and the store it belongs to.
    pub fn sellapp_api_key(&self) -> &str {
        sellapp::DEFAULT_API_KEY
    }

    pub fn sellapp_store(&self) -> &str {
        sellapp::DEFAULT_STORE_ID
    }

    /// `http://127.0.0.1:PORT` of the Stripe stand-in: what Tollgate takes as `STRIPE_API_BASE` (Stripe's own
    /// is `https://api.stripe.com`); `/v1/...` and the `/_devstack/stripe/...` controls are under it.
    pub fn stripe_base_url(&self) -> String {
        format!("http://{}", self.stripe_addr)
    }

    /// The stand-in account's test-mode secret key (`STRIPE_API_KEY`).
    pub fn stripe_secret_key(&self) -> &str {
        stripe::DEFAULT_SECRET_KEY
    }

    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    pub async fn shutdown(mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for server in self.servers.drain(..) {
            let _ = server.await;
        }
    }
}

impl Drop for RunningDevstack {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

async fn serve(
    addr: SocketAddr,
    router: axum::Router,
) -> anyhow::Result<(SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(error) = serve.await {
            tracing::error!(%error, "devstack stopped");
        }
    });
    Ok((bound, stop, server))
}

/// Binds, spawns the server on the current tokio runtime, and returns once it is listening.
pub async fn start(config: DevstackConfig) -> anyhow::Result<RunningDevstack> {
    let database = match &config.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            appwrite::store::Store::open(&dir.join("appwrite.sqlite"))?
        }
        None => appwrite::store::Store::in_memory()?,
    };
    let discord_store = match &config.data_dir {
        Some(dir) => discord::store::DiscordStore::open(&dir.join("discord.sqlite"))?,
        None => discord::store::DiscordStore::in_memory()?,
    };
    let state = Arc::new(appwrite::AppState::new(database, config.project_id.clone(), config.api_key.clone()));
    let (appwrite_addr, appwrite_stop, appwrite_server) = serve(config.appwrite_addr, appwrite::router(state)).await?;
    let discord_state = Arc::new(discord::DiscordState::new(discord_store));
    let (discord_addr, discord_stop, discord_server) =
        serve(config.discord_addr, discord::router(discord_state)).await?;
    let orders = match &config.data_dir {
        Some(dir) => rusqlite::Connection::open(dir.join("sellapp.sqlite"))?,
        None => rusqlite::Connection::open_in_memory()?,
    };
    let sellapp_state = Arc::new(sellapp::SellappState::new(
        orders,
        sellapp::DEFAULT_API_KEY.to_owned(),
        sellapp::DEFAULT_STORE_ID.to_owned(),
    )?);
    let (sellapp_addr, sellapp_stop, sellapp_server) =
        serve(config.sellapp_addr, sellapp::router(sellapp_state)).await?;
    let stripe_state = Arc::new(stripe::StripeState::new(stripe::DEFAULT_SECRET_KEY.to_owned()));
    let (stripe_addr, stripe_stop, stripe_server) =
        serve(config.stripe_addr, stripe::router(stripe_state.clone())).await?;
    stripe_state.set_base_url(format!("http://{stripe_addr}"));
    Ok(RunningDevstack {
        appwrite_addr,
        discord_addr,
        sellapp_addr,
        stripe_addr,
        project_id: config.project_id,
        api_key: config.api_key,
        stops: vec![appwrite_stop, discord_stop, sellapp_stop, stripe_stop],
        servers: vec![appwrite_server, discord_server, sellapp_server, stripe_server],
    })
}

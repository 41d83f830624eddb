//! The whole local system on free ports, as `cargo xtask dev` configures it: a running devstack (the
//! caller's, so the caller decides where its CPU is spent), the schema bootstrapped, the Stripe stand-in's
//! endpoint and demo price, the demo plan mapped to the seeded Member + VIP roles, and the webhook, role-sync
//! (with the limiter bound) and api (with the console bound) workers in `wrangler dev`, all reading one env
//! file. The end-to-end tests and `cargo xtask load` both start it here, so they test the same system.

use crate::dev_env::{DevEnv, LocalSystem};
use crate::paths::{API_WORKER, ROLE_SYNC_WORKER, WEBHOOK_WORKER};
use crate::wrangler::{free_port, RunningWorker, WorkerLaunch};
use crate::TokioPause;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use tollgate_app::bootstrap::bootstrap;
use tollgate_app::settings::{appwrite_config, Settings};
use tollgate_appwrite::AppwriteClient;
use tollgate_core::{GuildId, RoleId};
use tollgate_devstack::discord_seed as seed;
use tollgate_devstack::RunningDevstack;

/// The Sell.app signing secret of a local system.
pub const SELLAPP_SECRET: &str = "e2e-sellapp-secret";
/// The Stripe endpoint secret the workers get besides the stand-in's own (a rotation pair).
pub const STRIPE_SECRET: &str = "whsec_e2e_stripe";
pub const ADMIN_TOKEN: &str = "e2e-admin-token";
pub const ROLE_SYNC_TOKEN: &str = "e2e-role-sync-token";
/// The plan every Sell.app purchase without a product title gets, mapped to the seeded Member + VIP roles.
pub const PLAN: &str = "member";

/// A directory removed with its handle.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system's temp dir, named after `prefix`, this process and a counter.
    pub fn new(prefix: &str) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct LocalStack {
    /// The Stripe stand-in's demo price, which the demo plan lists.
    pub stripe_price: String,
    pub webhook: RunningWorker,
    pub role_sync: RunningWorker,
    pub api: RunningWorker,
    /// Tollgate's own client and settings, for what an admin does with the CLI (grant, revoke).
    pub client: AppwriteClient,
    pub settings: Settings,
    /// The env file, wrangler's state and the workers' logs (removed on drop).
    pub state: TempDir,
}

impl LocalStack {
    /// The workers' settings (`cargo xtask dev`'s `dev.env`).
    pub fn env_file(&self) -> PathBuf {
        self.state.path().join("dev.env")
    }

    /// Starts the system against `devstack` with `overrides` set in the workers' env file, as
    /// `cargo xtask dev --set` does. `prefix` names its temporary directory.
    pub async fn start(devstack: &RunningDevstack, prefix: &str, overrides: &[(&str, &str)]) -> Result<Self> {
        let state = TempDir::new(prefix)?;
        let port = free_port()?;
        let role_sync_port = free_port()?;
        let api_port = free_port()?;
        let api_url = format!("http://127.0.0.1:{api_port}");
        let webhook_url = format!("http://127.0.0.1:{port}");
        let role_sync_url = format!("http://127.0.0.1:{role_sync_port}");
        // The Stripe stand-in as `cargo xtask dev` sets it up: the webhook worker as its endpoint, a demo price.
        let stripe =
            crate::stripe_seed::seed(&devstack.stripe_base_url(), devstack.stripe_secret_key(), &webhook_url, PLAN)
                .await
                .context("seeding the Stripe stand-in")?;
        let stripe_secrets = format!("{},{STRIPE_SECRET}", stripe.webhook_secret);
        let mut env = DevEnv::for_local(&LocalSystem {
            appwrite_endpoint: &devstack.appwrite_endpoint(),
            project_id: devstack.project_id(),
            api_key: devstack.api_key(),
            sellapp_webhook_secret: SELLAPP_SECRET,
            webhook_url: &webhook_url,
            role_sync_url: &role_sync_url,
            role_sync_token: ROLE_SYNC_TOKEN,
            api_url: &api_url,
            admin_token: ADMIN_TOKEN,
            devstack_appwrite_url: &devstack.appwrite_base_url(),
            devstack_discord_url: &devstack.discord_base_url(),
            devstack_sellapp_url: &devstack.sellapp_base_url(),
            devstack_stripe_url: &devstack.stripe_base_url(),
            stripe_api_key: devstack.stripe_secret_key(),
            stripe_webhook_secret: &stripe_secrets,
            demo_stripe_price_id: &stripe.price_id,
        });
        for (name, value) in overrides {
            env.set(name, value);
        }
        let env_file = state.path().join("dev.env");
        env.write(&env_file).context("writing the env file")?;
        let lookup = |key: &str| env.get(key).map(str::to_owned);
        let settings = Settings::from_lookup(lookup).map_err(|e| anyhow::anyhow!("settings: {e}"))?;
        let client = AppwriteClient::new(appwrite_config(lookup).map_err(|e| anyhow::anyhow!("{e}"))?)
            .map_err(|e| anyhow::anyhow!("the Appwrite client: {e}"))?;
        bootstrap(&client, &settings, &TokioPause).await.map_err(|e| anyhow::anyhow!("bootstrapping: {e}"))?;
        let clock = tollgate_core::FixedClock::at(Default::default());
        let roles = [RoleId::parse(seed::MEMBER_ROLE_ID)?, RoleId::parse(seed::VIP_ROLE_ID)?];
        let app = tollgate_app::App::new(&client, &settings, &clock);
        // The demo plan as `cargo xtask dev` seeds it: its roles, and the Stripe stand-in's demo price.
        let update = tollgate_app::role_sync::PlanUpdate {
            roles: Some(roles.to_vec()),
            stripe_prices: Some(vec![stripe.price_id.clone()]),
            ..Default::default()
        };
        app.set_plan(PLAN, GuildId::parse(seed::GUILD_ID)?, &update)
            .await
            .map_err(|e| anyhow::anyhow!("the demo mapping: {e}"))?;
        let dir = |name: &str| state.path().join(name);
        let (webhook_state, role_sync_state, api_state) = (dir("webhook"), dir("role-sync"), dir("api"));
        let launch = |worker, port, state_dir| WorkerLaunch { worker, port, env_file: &env_file, state_dir };
        let (webhook, role_sync, api) = tokio::join!(
            crate::wrangler::start(launch(WEBHOOK_WORKER, port, &webhook_state)),
            crate::wrangler::start(launch(ROLE_SYNC_WORKER, role_sync_port, &role_sync_state)),
            crate::wrangler::start(launch(API_WORKER, api_port, &api_state)),
        );
        let hint = "(run `cargo xtask build` first)";
        Ok(Self {
            stripe_price: stripe.price_id,
            webhook: webhook.with_context(|| format!("starting the webhook worker in wrangler dev {hint}"))?,
            role_sync: role_sync.with_context(|| format!("starting the role-sync worker in wrangler dev {hint}"))?,
            api: api.with_context(|| format!("starting the api worker in wrangler dev {hint}"))?,
            client,
            settings,
            state,
        })
    }
}

/// A Sell.app order event as the provider delivers it (store 1), for the buyer `email`.
pub fn sellapp_order_body(event: &str, order_id: u64, email: &str) -> String {
    serde_json::json!({"event": event, "data": {"id": order_id, "customer_information": {"email": email}}, "store": 1})
        .to_string()
}

/// Sell.app's legacy `signature` header: hex HMAC-SHA256 of the body, keyed with the secret as it is.
pub fn sellapp_signature(secret: &str, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length works");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The `webhook_events` document id (the delivery's claim) docs/compatibility.md prescribes.
pub fn event_document_id(event: &str, order_id: &str, store: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(format!("{event}:{order_id}:{store}").as_bytes()));
    digest[..36].to_owned()
}

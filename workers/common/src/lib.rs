//! What every Tollgate worker shares: settings read from the Worker's environment by their
//! docs/compatibility.md names, the JS clock, the clients built from them (counting into the invocation's
//! [`Subrequests`]), and the invocation's log line ([`observe`]).
#![cfg(target_arch = "wasm32")]

pub mod limiter;
pub mod observe;
pub mod role_sync;

use std::sync::Arc;
use tollgate_app::settings::{appwrite_config, discord_config, Settings, SettingsError};
use tollgate_app::App;
use tollgate_appwrite::AppwriteClient;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::Clock;
use tollgate_discord::DiscordClient;
use worker::Env;

/// `Date.now()`: the only clock on wasm32 (`SystemTime::now()` panics there).
pub struct JsClock;

impl Clock for JsClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let millis = js_sys::Date::now() as i64;
        chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default()
    }
}

/// A setting by name: a secret (`wrangler secret put`) or a plain var, whichever is bound.
pub fn setting(env: &Env, name: &str) -> Option<String> {
    env.secret(name).map(|s| s.to_string()).or_else(|_| env.var(name).map(|v| v.to_string())).ok()
}

/// Whether `Authorization: Bearer <token>` carries the value of the setting `name` (compared in constant
/// time). An unset or blank setting matches nothing.
pub fn bearer_matches(req: &worker::Request, env: &Env, name: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(expected) = setting(env, name).filter(|t| !t.is_empty()) else { return false };
    let given = req.headers().get("authorization").ok().flatten().unwrap_or_default();
    let given = given.strip_prefix("Bearer ").unwrap_or_default();
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// `POST`s `body` as JSON with `Authorization: Bearer <token>` to another Tollgate worker (the role-sync
/// prompt, the console's forwards, the role-sync relays). The caller counts the subrequest first. An
/// unparsable `url` is an error like any other transport failure.
pub async fn post_json(
    url: &str,
    token: &str,
    body: &serde_json::Value,
    timeout: std::time::Duration,
) -> Result<tollgate_http::Incoming, String> {
    let url = tollgate_http::url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let bearer = format!("Bearer {token}");
    let headers = [("Authorization", bearer.as_str()), ("Content-Type", "application/json")];
    let body = body.to_string();
    let request = tollgate_http::Outgoing::new("POST", &url, &headers, timeout).with_body(&body);
    tollgate_http::Transport::new().send(request).await.map_err(|e| e.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("Appwrite client: {0}")]
    Client(#[from] tollgate_appwrite::AppwriteError),
    #[error("Stripe client: {0}")]
    Stripe(#[from] tollgate_stripe::StripeError),
}

pub struct AppParts {
    pub appwrite: AppwriteClient,
    pub settings: Settings,
    pub clock: JsClock,
    /// Stripe's API when `STRIPE_API_KEY` is set (the truth for Stripe events, the customers' billing).
    pub stripe: Option<tollgate_stripe::StripeApi>,
    /// The invocation's meter; every client made from these parts counts into it.
    pub subrequests: Subrequests,
}

impl AppParts {
    pub fn from_env(env: &Env, subrequests: &Subrequests) -> Result<Self, ConfigError> {
        let lookup = |name: &str| setting(env, name);
        let settings = Settings::from_lookup(lookup)?;
        let appwrite = AppwriteClient::new(appwrite_config(lookup)?)?.with_subrequests(subrequests.clone());
        let stripe = match tollgate_app::settings::stripe_config(lookup)? {
            Some(config) => Some(tollgate_stripe::StripeApi::new(config)?.with_subrequests(subrequests.clone())),
            None => None,
        };
        Ok(Self { appwrite, settings, clock: JsClock, stripe, subrequests: subrequests.clone() })
    }

    pub fn app(&self) -> App<'_, JsClock> {
        App::new(&self.appwrite, &self.settings, &self.clock).with_stripe(self.stripe.as_ref())
    }

    /// The Discord client (`DISCORD_BOT_TOKEN`, `DISCORD_API_BASE`), asking the shared limiter
    /// ([`limiter::DurableLimiter`]) before every call.
    pub fn discord(&self, env: &Env) -> Result<DiscordClient, SettingsError> {
        let config = discord_config(|name| setting(env, name))?;
        let limiter = Arc::new(limiter::DurableLimiter::from_env(env));
        Ok(DiscordClient::with_shared_limiter(config, Arc::new(JsClock), limiter)
            .with_subrequests(self.subrequests.clone()))
    }
}

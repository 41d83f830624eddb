//! Settings by the names the replaced deployment used (docs/compatibility.md), read through a lookup function
//! so that a worker's `env`, a process environment and `.tollgate/dev.env` all work the same way.
//!
//! [`SETTINGS`] is the one registry of setting names: each entry has its default and the check every reader
//! applies, so the workers, the CLI and `cargo xtask dev --set` accept and refuse exactly the same values.
//! A new setting is one more line in that table; a reader asks for it with [`value`], [`required`] or
//! [`with_default`]. A blank value counts as unset.

use chrono::Duration;
use tollgate_appwrite::AppwriteConfig;
use tollgate_core::Secret;

/// The team role a `paid` membership carries.
pub const PAID_TEAM_ROLE: &str = "member";
/// Discord's authorize page.
pub const DISCORD_AUTHORIZE_URL: &str = "https://discord.com/oauth2/authorize";
/// Stripe's API; `/v1/...` is under it (the client's constant).
pub const STRIPE_API_BASE: &str = tollgate_stripe::STRIPE_API_BASE;
/// The largest `ACCESS_GRACE_HOURS`: a year. Beyond that a grace period is a misconfiguration (and far enough
/// beyond it, a date overflow).
pub const MAX_ACCESS_GRACE_HOURS: i64 = 8_760;

/// One setting: its name, its default (`None`: no default, e.g. a secret or an endpoint; a reader that needs
/// it reports it missing), the check of a value, and what it is for.
#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub check: fn(&str) -> Result<(), String>,
    pub about: &'static str,
}

const fn entry(
    name: &'static str,
    default: Option<&'static str>,
    check: fn(&str) -> Result<(), String>,
    about: &'static str,
) -> SettingSpec {
    SettingSpec { name, default, check, about }
}

/// Every setting Tollgate reads. Keep one line per setting.
#[rustfmt::skip]
pub const SETTINGS: &[SettingSpec] = &[
    entry("APPWRITE_ENDPOINT", None, http_url, "Appwrite's REST base URL, ending in /v1"),
    entry("APPWRITE_PROJECT_ID", None, appwrite_id, "the Appwrite project"),
    entry("APPWRITE_API_KEY", None, secret, "secret: the Appwrite API key"),
    entry("APPWRITE_DATABASE_ID", Some("crypto"), appwrite_id, "the database"),
    entry("APPWRITE_SUBSCRIPTIONS_COLLECTION_ID", Some("subscriptions"), appwrite_id, "collection"),
    entry("APPWRITE_WEBHOOK_EVENTS_COLLECTION_ID", Some("webhook_events"), appwrite_id, "collection"),
    entry("APPWRITE_WEBHOOK_FAILURES_COLLECTION_ID", Some("webhook_failures"), appwrite_id, "collection"),
    entry("APPWRITE_PROFILES_COLLECTION_ID", Some("profiles"), appwrite_id, "collection"),
    entry("APPWRITE_DISCORD_ROLE_MAPPINGS_COLLECTION_ID", Some("discord_role_mappings"), appwrite_id, "collection"),
    entry("APPWRITE_ROLE_SYNC_JOBS_COLLECTION_ID", Some("role_sync_jobs"), appwrite_id, "collection"),
    entry("APPWRITE_PENDING_ENTITLEMENTS_COLLECTION_ID", Some("pending_entitlements"), appwrite_id, "collection"),
    entry("APPWRITE_SYNC_STATE_COLLECTION_ID", Some("sync_state"), appwrite_id, "collection"),
    entry("APPWRITE_OAUTH_STATES_COLLECTION_ID", Some("oauth_states"), appwrite_id, "collection"),
    entry("APPWRITE_ENTITLEMENTS_COLLECTION_ID", Some("entitlements"), appwrite_id, "collection: the entitlement ledger"),
    entry("APPWRITE_DISCORD_LINKS_COLLECTION_ID", Some("discord_links"), appwrite_id, "collection"),
    entry("APPWRITE_TEAM_PAID_ID", Some("paid"), appwrite_id, "the team whose membership means paid access"),
    entry("ADMIN_TEAM_ID", Some("admins"), appwrite_id, "the team whose members may use the admin console and /admin routes"),
    entry("SELLAPP_WEBHOOK_SECRET", None, secret, "secret: Sell.app's webhook secret"),
    entry("STRIPE_WEBHOOK_SECRET", None, secret, "secret: Stripe's endpoint secret(s) whsec_…, comma-separated while one is rotated"),
    entry("SELLAPP_DEFAULT_PLAN", Some("member"), plan_name, "plan of a Sell.app purchase that names none"),
    entry("ACCESS_GRACE_HOURS", Some("24"), grace_hours, "hours of access past expiry (0..=8760)"),
    entry(
        "ALLOW_UNVERIFIED_EMAIL_CLAIMS",
        Some("false"),
        boolean,
        "true: purchases go to accounts that have not verified the email (the replaced deployment's behaviour)",
    ),
    entry("APP_BASE_URL", None, http_url, "the web app: redirects after linking, CORS origin (unset: the api's own /access page)"),
    entry("CUSTOMER_GUILD_ID", None, snowflake, "the Discord guild whose roles Tollgate manages"),
    entry("DISCORD_BOT_TOKEN", None, secret, "secret: the bot's token"),
    entry("DISCORD_CLIENT_ID", None, snowflake, "the Discord application"),
    entry("DISCORD_CLIENT_SECRET", None, secret, "secret: the Discord application's OAuth2 secret"),
    entry("DISCORD_REDIRECT_URI", None, http_url, "OAuth2 redirect, registered in the Discord application"),
    entry("DISCORD_API_BASE", Some(tollgate_discord::DISCORD_API_BASE), http_url, "Discord's REST base URL"),
    entry("DISCORD_AUTHORIZE_URL", Some(DISCORD_AUTHORIZE_URL), http_url, "Discord's authorize page"),
    entry("ADMIN_TOKEN", None, secret, "secret: bearer token of the api worker's /admin routes"),
    entry("ROLE_SYNC_TOKEN", None, secret, "secret: the webhook worker's token for the role-sync worker"),
    entry("ROLE_SYNC_URL", None, http_url, "the role-sync worker the webhook worker triggers"),
    entry("WEBHOOK_URL", None, http_url, "the webhook worker (https://webhooks.<domain>); the api worker forwards admin replays to it"),
    entry("SELLAPP_API_KEY", None, secret, "secret, optional: a Sell.app API key; without it refunds are not caught"),
    entry("SELLAPP_API_BASE", Some(tollgate_sellapp::SELLAPP_API_BASE), http_url, "Sell.app's API base URL"),
    entry("STRIPE_API_KEY", None, secret, "secret, optional: a Stripe secret key (sk_…): re-reads objects, customers' own billing actions, doctor"),
    entry("STRIPE_API_BASE", Some(STRIPE_API_BASE), http_url, "Stripe's API base URL (/v1/... is served under it)"),
    entry("DEMO_STRIPE_PRICE_ID", None, stripe_price_id, "the demo plan's Stripe price (price_…), for local runs and tests"),
    entry("REFUND_CHECK_DAYS", Some("60"), crate::refunds::check_days, "days after purchase an order is re-read for refunds"),
    entry("REFUND_CHECK_INTERVAL_HOURS", Some("24"), crate::refunds::check_hours, "hours between two reads of one order"),
    entry("REFUND_CHECKS_PER_RUN", Some("5"), crate::refunds::check_per_run, "Sell.app orders read per webhook cron run"),
    entry("CRON_SUBREQUEST_BUDGET", Some("40"), check_cron_budget, "outbound calls one cron invocation may make (Workers Free allows 50, Paid 1,000)"),
];

/// The registry entry of a setting.
pub fn spec(name: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// Checks a value for a setting by name, as every reader does: an unknown name or a bad value is an error.
pub fn check(name: &str, value: &str) -> Result<(), SettingsError> {
    let spec = spec(name).ok_or_else(|| SettingsError::Unknown(name.to_owned()))?;
    (spec.check)(value.trim()).map_err(|reason| SettingsError::Invalid { name: spec.name, reason })
}

/// A setting's bound value (trimmed; blank counts as unset), checked by its registry entry.
pub fn value(lookup: impl Fn(&str) -> Option<String>, name: &'static str) -> Result<Option<String>, SettingsError> {
    let Some(raw) = lookup(name).filter(|v| !v.trim().is_empty()) else { return Ok(None) };
    check(name, &raw)?;
    Ok(Some(raw.trim().to_owned()))
}

/// A setting that must be set.
pub fn required(lookup: impl Fn(&str) -> Option<String>, name: &'static str) -> Result<String, SettingsError> {
    value(lookup, name)?.ok_or(SettingsError::Missing(name))
}

/// A setting's value, or its registry default.
pub fn with_default(lookup: impl Fn(&str) -> Option<String>, name: &'static str) -> Result<String, SettingsError> {
    match value(lookup, name)? {
        Some(set) => Ok(set),
        None => spec(name).and_then(|s| s.default).map(str::to_owned).ok_or(SettingsError::Missing(name)),
    }
}

/// The largest `CRON_SUBREQUEST_BUDGET`: Workers Paid's 1,000 per invocation.
pub const MAX_CRON_SUBREQUEST_BUDGET: u32 = 1_000;
/// The smallest: one unit of the costliest cron step (a role sync) plus its listing and cursor.
pub const MIN_CRON_SUBREQUEST_BUDGET: u32 = 20;

fn check_cron_budget(value: &str) -> Result<(), String> {
    parse_cron_budget(value).map(drop)
}

fn parse_cron_budget(value: &str) -> Result<u32, String> {
    value.trim().parse::<u32>().ok().filter(|n| (MIN_CRON_SUBREQUEST_BUDGET..=MAX_CRON_SUBREQUEST_BUDGET).contains(n)).ok_or_else(
        || {
            format!(
                "expected a whole number of subrequests from {MIN_CRON_SUBREQUEST_BUDGET} to {MAX_CRON_SUBREQUEST_BUDGET}, got `{value}`"
            )
        },
    )
}

/// `CRON_SUBREQUEST_BUDGET`: how many outbound calls one cron invocation of the webhook or role-sync worker
/// may make. Every cron step asks it before each unit of work and stops when the next unit does not fit
/// (resuming next run); the same number is the invocation's hard limit, so a wrong estimate is a refused
/// call, never a silent overrun of Cloudflare's own limit. The default (40) is Workers Free's 50 less 10:
/// room for what a unit's estimate may miss before the hard limit, and for calls made outside the counted
/// clients.
pub fn cron_subrequest_budget(lookup: impl Fn(&str) -> Option<String>) -> Result<u32, SettingsError> {
    parse_cron_budget(&with_default(lookup, "CRON_SUBREQUEST_BUDGET")?)
        .map_err(|reason| SettingsError::Invalid { name: "CRON_SUBREQUEST_BUDGET", reason })
}

fn appwrite_id(value: &str) -> Result<(), String> {
    tollgate_core::AppwriteId::parse(value).map(drop).map_err(|e| e.to_string())
}

fn snowflake(value: &str) -> Result<(), String> {
    tollgate_core::GuildId::parse(value).map(drop).map_err(|e| e.to_string())
}

fn http_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("`{value}` is not a URL ({e})"))?;
    match (url.scheme(), url.host_str()) {
        ("http" | "https", Some(_)) => Ok(()),
        _ => Err(format!("`{value}` is not an http(s) URL")),
    }
}

/// Secrets are opaque, but one line of visible characters (an env file holds one per line).
fn secret(value: &str) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err("contains a control character (a line break?)".to_owned());
    }
    Ok(())
}

fn stripe_price_id(value: &str) -> Result<(), String> {
    match value.strip_prefix("price_") {
        Some(rest) if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => Ok(()),
        _ => Err(format!("`{value}` is not a Stripe price id (price_…)")),
    }
}

fn plan_name(value: &str) -> Result<(), String> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{value}` is not a plan name (no spaces)"));
    }
    Ok(())
}

fn boolean(value: &str) -> Result<(), String> {
    parse_bool(value).map(drop)
}

/// `true`/`false` (also `1`/`0`).
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!("expected true or false, got `{other}`")),
    }
}

fn grace_hours(value: &str) -> Result<(), String> {
    parse_access_grace_hours(value).map(drop)
}

/// `ACCESS_GRACE_HOURS`: a whole number of hours in `0..=MAX_ACCESS_GRACE_HOURS`.
pub fn parse_access_grace_hours(value: &str) -> Result<i64, String> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|h| (0..=MAX_ACCESS_GRACE_HOURS).contains(h))
        .ok_or_else(|| format!("expected a whole number of hours from 0 to {MAX_ACCESS_GRACE_HOURS}, got `{value}`"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collections {
    pub subscriptions: String,
    pub webhook_events: String,
    pub webhook_failures: String,
    pub profiles: String,
    pub discord_role_mappings: String,
    pub role_sync_jobs: String,
    pub pending_entitlements: String,
    /// Where reconciliation resumes (one document per guild).
    pub sync_state: String,
    /// Pending Discord authorisations (single-use `state`, PKCE verifier).
    pub oauth_states: String,
    /// The entitlement ledger: one document per source of access.
    pub entitlements: String,
    /// Which user holds each linked Discord account (one document per account).
    pub discord_links: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub database_id: String,
    pub collections: Collections,
    pub paid_team_id: String,
    /// `ADMIN_TEAM_ID`: members are admins (the console, `/admin` with their Appwrite JWT).
    pub admin_team_id: String,
    pub sellapp_default_plan: String,
    /// How long past `expiresAt` access continues, so a late renewal never interrupts it.
    pub access_grace: Duration,
    /// `ALLOW_UNVERIFIED_EMAIL_CLAIMS`: let an account whose email is not verified receive purchases made
    /// with that email. Off by default: anyone can sign up with a buyer's address. On reproduces the
    /// replaced deployment's behaviour, for operators whose sign-up already proves the email.
    pub allow_unverified_email_claims: bool,
    /// `REFUND_CHECK_DAYS`, `REFUND_CHECK_INTERVAL_HOURS`, `REFUND_CHECKS_PER_RUN` (see `refunds.rs`).
    pub refund_policy: crate::refunds::RefundPolicy,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("setting {0} is required")]
    Missing(&'static str),
    #[error("setting {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("there is no setting {0}; known settings: {known}", known = known_names())]
    Unknown(String),
}

/// Every registered name, comma-separated (for error messages).
pub fn known_names() -> String {
    SETTINGS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

impl Settings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &'static str| with_default(&lookup, name);
        let grace_hours = parse_access_grace_hours(&get("ACCESS_GRACE_HOURS")?)
            .map_err(|reason| SettingsError::Invalid { name: "ACCESS_GRACE_HOURS", reason })?;
        Ok(Self {
            database_id: get("APPWRITE_DATABASE_ID")?,
            collections: Collections {
                subscriptions: get("APPWRITE_SUBSCRIPTIONS_COLLECTION_ID")?,
                webhook_events: get("APPWRITE_WEBHOOK_EVENTS_COLLECTION_ID")?,
                webhook_failures: get("APPWRITE_WEBHOOK_FAILURES_COLLECTION_ID")?,
                profiles: get("APPWRITE_PROFILES_COLLECTION_ID")?,
                discord_role_mappings: get("APPWRITE_DISCORD_ROLE_MAPPINGS_COLLECTION_ID")?,
                role_sync_jobs: get("APPWRITE_ROLE_SYNC_JOBS_COLLECTION_ID")?,
                pending_entitlements: get("APPWRITE_PENDING_ENTITLEMENTS_COLLECTION_ID")?,
                sync_state: get("APPWRITE_SYNC_STATE_COLLECTION_ID")?,
                oauth_states: get("APPWRITE_OAUTH_STATES_COLLECTION_ID")?,
                entitlements: get("APPWRITE_ENTITLEMENTS_COLLECTION_ID")?,
                discord_links: get("APPWRITE_DISCORD_LINKS_COLLECTION_ID")?,
            },
            paid_team_id: get("APPWRITE_TEAM_PAID_ID")?,
            admin_team_id: get("ADMIN_TEAM_ID")?,
            sellapp_default_plan: get("SELLAPP_DEFAULT_PLAN")?,
            access_grace: Duration::hours(grace_hours),
            refund_policy: crate::refunds::RefundPolicy::from_lookup(&lookup)?,
            allow_unverified_email_claims: parse_bool(&get("ALLOW_UNVERIFIED_EMAIL_CLAIMS")?)
                .map_err(|reason| SettingsError::Invalid { name: "ALLOW_UNVERIFIED_EMAIL_CLAIMS", reason })?,
        })
    }
}

/// `APPWRITE_ENDPOINT`, `APPWRITE_PROJECT_ID`, `APPWRITE_API_KEY`: all required.
pub fn appwrite_config(lookup: impl Fn(&str) -> Option<String>) -> Result<AppwriteConfig, SettingsError> {
    Ok(AppwriteConfig {
        endpoint: required(&lookup, "APPWRITE_ENDPOINT")?,
        project_id: required(&lookup, "APPWRITE_PROJECT_ID")?,
        api_key: Secret::new(required(&lookup, "APPWRITE_API_KEY")?),
    })
}

/// `DISCORD_BOT_TOKEN` (required) and `DISCORD_API_BASE` (default Discord's v10 API).
pub fn discord_config(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<tollgate_discord::DiscordConfig, SettingsError> {
    let bot_token = required(&lookup, "DISCORD_BOT_TOKEN")?;
    let api_base = with_default(&lookup, "DISCORD_API_BASE")?;
    Ok(tollgate_discord::DiscordConfig { api_base, bot_token: Secret::new(bot_token) })
}

/// Discord OAuth2: `DISCORD_CLIENT_ID`, `DISCORD_CLIENT_SECRET`, `DISCORD_REDIRECT_URI` (required),
/// `DISCORD_AUTHORIZE_URL` (default Discord's; devstack's locally).
pub fn discord_oauth(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(tollgate_discord::OAuthApp, String), SettingsError> {
    let app = tollgate_discord::OAuthApp {
        client_id: required(&lookup, "DISCORD_CLIENT_ID")?,
        client_secret: Secret::new(required(&lookup, "DISCORD_CLIENT_SECRET")?),
        redirect_uri: required(&lookup, "DISCORD_REDIRECT_URI")?,
    };
    Ok((app, with_default(&lookup, "DISCORD_AUTHORIZE_URL")?))
}

/// `CUSTOMER_GUILD_ID`: the guild whose roles Tollgate manages.
pub fn customer_guild_id(lookup: impl Fn(&str) -> Option<String>) -> Result<tollgate_core::GuildId, SettingsError> {
    let raw = required(lookup, "CUSTOMER_GUILD_ID")?;
    tollgate_core::GuildId::parse(&raw)
        .map_err(|e| SettingsError::Invalid { name: "CUSTOMER_GUILD_ID", reason: e.to_string() })
}

/// The page the link callback sends the browser back to: `APP_BASE_URL`, or, when the merchant has no page
/// of their own, the api worker's `/access` page (`api_origin` is the origin the request reached).
pub fn app_base_url(lookup: impl Fn(&str) -> Option<String>, api_origin: &str) -> Result<String, SettingsError> {
    Ok(value(lookup, "APP_BASE_URL")?.unwrap_or_else(|| format!("{}/access", api_origin.trim_end_matches('/'))))
}

/// `SELLAPP_WEBHOOK_SECRET`: required to accept Sell.app deliveries.
pub fn sellapp_webhook_secret(lookup: impl Fn(&str) -> Option<String>) -> Result<Secret, SettingsError> {
    required(lookup, "SELLAPP_WEBHOOK_SECRET").map(Secret::new)
}

/// `STRIPE_WEBHOOK_SECRET`: one or more endpoint secrets, comma-separated (Stripe's secret rotation keeps
/// the old one valid for a while; every listed secret verifies).
pub fn stripe_webhook_secrets(lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<Secret>, SettingsError> {
    let raw = required(lookup, "STRIPE_WEBHOOK_SECRET")?;
    Ok(raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Secret::new).collect())
}

/// `STRIPE_API_KEY` and `STRIPE_API_BASE`: `None` when no key is set (Stripe is not used).
pub fn stripe_config(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<tollgate_stripe::StripeConfig>, SettingsError> {
    let Some(key) = value(&lookup, "STRIPE_API_KEY")? else { return Ok(None) };
    let api_base = with_default(&lookup, "STRIPE_API_BASE")?;
    Ok(Some(tollgate_stripe::StripeConfig { api_base, api_key: Secret::new(key) }))
}

/// The `KEY=VALUE` lines of an env file (`--env-file` of the CLI, `.tollgate/dev.env`), in order, parsed by
/// `dotenvy` (comments, quotes, `export`), without touching the process environment.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_env_file(path: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    let entries = dotenvy::from_path_iter(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    entries.map(|entry| entry.map_err(|e| format!("reading {}: {e}", path.display()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_existing_deployments_ids() {
        let settings = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(settings.database_id, "crypto");
        assert_eq!(settings.paid_team_id, "paid");
        assert_eq!(settings.admin_team_id, "admins");
        assert_eq!(settings.collections.webhook_events, "webhook_events");
        assert_eq!(settings.access_grace, Duration::hours(24));
    }

    #[test]
    fn every_id_is_overridable_by_its_setting() {
        let settings = Settings::from_lookup(|name| match name {
            "APPWRITE_DATABASE_ID" => Some("db2".into()),
            "APPWRITE_SUBSCRIPTIONS_COLLECTION_ID" => Some("subs".into()),
            "APPWRITE_TEAM_PAID_ID" => Some("vip".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((settings.database_id.as_str(), settings.collections.subscriptions.as_str()), ("db2", "subs"));
        assert_eq!(settings.paid_team_id, "vip");
    }

    #[test]
    fn a_bad_grace_period_is_a_clear_error() {
        let err = Settings::from_lookup(|n| (n == "ACCESS_GRACE_HOURS").then(|| "soon".into())).unwrap_err();
        assert!(err.to_string().contains("ACCESS_GRACE_HOURS"));
    }

    #[test]
    fn the_grace_period_is_bounded_to_a_year_instead_of_overflowing_dates() {
        let grace = |raw: &str| Settings::from_lookup(|n| (n == "ACCESS_GRACE_HOURS").then(|| raw.into()));
        assert_eq!(grace("0").unwrap().access_grace, Duration::zero());
        assert_eq!(grace("8760").unwrap().access_grace, Duration::hours(8_760));
        for refused in ["8761", "-1", "9223372036854775807", "1.5"] {
            let err = grace(refused).unwrap_err();
            let SettingsError::Invalid { name, reason } = &err else { panic!("{refused}: {err}") };
            assert_eq!(*name, "ACCESS_GRACE_HOURS");
            assert!(reason.contains("from 0 to 8760"), "{refused}: {reason}");
        }
    }

    #[test]
    fn every_registered_default_passes_its_own_check() {
        for spec in SETTINGS {
            if let Some(default) = spec.default {
                assert_eq!((spec.check)(default), Ok(()), "{}", spec.name);
            }
        }
        let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len(), "a setting is registered twice");
    }

    #[test]
    fn every_setting_a_reader_asks_for_is_registered() {
        let asked = std::cell::RefCell::new(Vec::<String>::new());
        let lookup = |name: &str| {
            asked.borrow_mut().push(name.to_owned());
            None
        };
        let _ = Settings::from_lookup(lookup);
        let _ = appwrite_config(lookup);
        let _ = discord_config(lookup);
        let _ = discord_oauth(lookup);
        let _ = customer_guild_id(lookup);
        let _ = sellapp_webhook_secret(lookup);
        let _ = stripe_config(|name| lookup(name).or_else(|| (name == "STRIPE_API_KEY").then(|| "sk_test_1".into())));
        let _ = app_base_url(lookup, "https://api.example.com");
        let asked = asked.into_inner();
        assert!(asked.len() > 15, "{asked:?}");
        for name in asked {
            assert!(spec(&name).is_some(), "{name} is read but not in SETTINGS");
        }
    }

    #[test]
    fn a_bad_value_is_refused_by_the_same_check_for_every_reader() {
        assert!(check("APPWRITE_TEAM_PAID_ID", "paid").is_ok());
        assert!(matches!(check("APPWRITE_TEAM_PAID_ID", "-paid"), Err(SettingsError::Invalid { .. })));
        assert!(matches!(check("APPWRITE_ENDPOINT", "localhost:8790"), Err(SettingsError::Invalid { .. })));
        assert!(matches!(check("CUSTOMER_GUILD_ID", "guild"), Err(SettingsError::Invalid { .. })));
        let lookup = |n: &str| (n == "APPWRITE_TEAM_PAID_ID").then(|| "-paid".to_owned());
        assert!(matches!(
            Settings::from_lookup(lookup),
            Err(SettingsError::Invalid { name: "APPWRITE_TEAM_PAID_ID", .. })
        ));
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let err = check("NOPE", "1").unwrap_err();
        assert_eq!(err, SettingsError::Unknown("NOPE".to_owned()));
        assert!(err.to_string().contains("ACCESS_GRACE_HOURS") && err.to_string().contains("APPWRITE_ENDPOINT"));
    }

    #[test]
    fn without_a_web_app_of_its_own_the_merchant_gets_the_apis_access_page() {
        assert_eq!(app_base_url(|_| None, "https://api.example.com").unwrap(), "https://api.example.com/access");
        let set = |n: &str| (n == "APP_BASE_URL").then(|| "https://shop.example.com/account".to_owned());
        assert_eq!(app_base_url(set, "https://api.example.com").unwrap(), "https://shop.example.com/account");
        let bad = |n: &str| (n == "APP_BASE_URL").then(|| "shop".to_owned());
        assert!(matches!(app_base_url(bad, "https://api.example.com"), Err(SettingsError::Invalid { .. })));
    }

    #[test]
    fn missing_appwrite_settings_are_named() {
        assert_eq!(appwrite_config(|_| None).unwrap_err(), SettingsError::Missing("APPWRITE_ENDPOINT"));
        assert_eq!(sellapp_webhook_secret(|_| None).unwrap_err(), SettingsError::Missing("SELLAPP_WEBHOOK_SECRET"));
        let rotating = |name: &str| (name == "STRIPE_WEBHOOK_SECRET").then(|| " whsec_new, whsec_old ,".to_owned());
        let secrets = stripe_webhook_secrets(rotating).unwrap();
        assert_eq!(secrets.iter().map(|s| s.expose().to_owned()).collect::<Vec<_>>(), ["whsec_new", "whsec_old"]);
    }
}

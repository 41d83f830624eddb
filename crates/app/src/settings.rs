//! Settings by the names the replaced deployment used (COMPATIBILITY.md), read through a lookup function
//! so that a worker's `env`, a process environment and `.tollgate/dev.env` all work the same way.

use chrono::Duration;
use tollgate_appwrite::AppwriteConfig;
use tollgate_core::Secret;

pub const DEFAULT_DATABASE_ID: &str = "crypto";
pub const DEFAULT_PAID_TEAM_ID: &str = "paid";
/// The team role a `paid` membership carries.
pub const PAID_TEAM_ROLE: &str = "member";
/// Plan recorded for a Sell.app purchase whose payload names no product.
pub const DEFAULT_SELLAPP_PLAN: &str = "member";
/// How long past `expiresAt` access continues, so a late renewal never interrupts it.
pub const DEFAULT_ACCESS_GRACE_HOURS: i64 = 24;

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
    pub sellapp_default_plan: String,
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
}

impl Settings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let or = |name: &str, default: &str| {
            lookup(name).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
        };
        let grace_hours = match lookup("ACCESS_GRACE_HOURS").filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_ACCESS_GRACE_HOURS,
            Some(raw) => raw.trim().parse::<i64>().ok().filter(|h| *h >= 0).ok_or(SettingsError::Invalid {
                name: "ACCESS_GRACE_HOURS",
                reason: format!("expected a whole number of hours, got `{raw}`"),
            })?,
        };
        Ok(Self {
            database_id: or("APPWRITE_DATABASE_ID", DEFAULT_DATABASE_ID),
            collections: Collections {
                subscriptions: or("APPWRITE_SUBSCRIPTIONS_COLLECTION_ID", "subscriptions"),
                webhook_events: or("APPWRITE_WEBHOOK_EVENTS_COLLECTION_ID", "webhook_events"),
                webhook_failures: or("APPWRITE_WEBHOOK_FAILURES_COLLECTION_ID", "webhook_failures"),
                profiles: or("APPWRITE_PROFILES_COLLECTION_ID", "profiles"),
                discord_role_mappings: or("APPWRITE_DISCORD_ROLE_MAPPINGS_COLLECTION_ID", "discord_role_mappings"),
                role_sync_jobs: or("APPWRITE_ROLE_SYNC_JOBS_COLLECTION_ID", "role_sync_jobs"),
                pending_entitlements: or("APPWRITE_PENDING_ENTITLEMENTS_COLLECTION_ID", "pending_entitlements"),
                sync_state: or("APPWRITE_SYNC_STATE_COLLECTION_ID", "sync_state"),
                oauth_states: or("APPWRITE_OAUTH_STATES_COLLECTION_ID", "oauth_states"),
                entitlements: or("APPWRITE_ENTITLEMENTS_COLLECTION_ID", "entitlements"),
                discord_links: or("APPWRITE_DISCORD_LINKS_COLLECTION_ID", "discord_links"),
            },
            paid_team_id: or("APPWRITE_TEAM_PAID_ID", DEFAULT_PAID_TEAM_ID),
            sellapp_default_plan: or("SELLAPP_DEFAULT_PLAN", DEFAULT_SELLAPP_PLAN),
            access_grace: Duration::hours(grace_hours),
            refund_policy: crate::refunds::RefundPolicy::from_lookup(&lookup)?,
            allow_unverified_email_claims: match lookup("ALLOW_UNVERIFIED_EMAIL_CLAIMS").as_deref().map(str::trim) {
                None | Some("") | Some("false") | Some("0") => false,
                Some("true") | Some("1") => true,
                Some(other) => {
                    return Err(SettingsError::Invalid {
                        name: "ALLOW_UNVERIFIED_EMAIL_CLAIMS",
                        reason: format!("expected true or false, got `{other}`"),
                    })
                }
            },
        })
    }
}

/// `APPWRITE_ENDPOINT`, `APPWRITE_PROJECT_ID`, `APPWRITE_API_KEY`: all required.
pub fn appwrite_config(lookup: impl Fn(&str) -> Option<String>) -> Result<AppwriteConfig, SettingsError> {
    let required =
        |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty()).ok_or(SettingsError::Missing(name));
    Ok(AppwriteConfig {
        endpoint: required("APPWRITE_ENDPOINT")?,
        project_id: required("APPWRITE_PROJECT_ID")?,
        api_key: Secret::new(required("APPWRITE_API_KEY")?),
    })
}

/// `DISCORD_BOT_TOKEN` (required) and `DISCORD_API_BASE` (default Discord's v10 API).
pub fn discord_config(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<tollgate_discord::DiscordConfig, SettingsError> {
    let bot_token = lookup("DISCORD_BOT_TOKEN")
        .filter(|v| !v.trim().is_empty())
        .ok_or(SettingsError::Missing("DISCORD_BOT_TOKEN"))?;
    let api_base = lookup("DISCORD_API_BASE")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| tollgate_discord::DISCORD_API_BASE.to_owned());
    Ok(tollgate_discord::DiscordConfig { api_base, bot_token: Secret::new(bot_token) })
}

/// Discord's authorize page.
pub const DISCORD_AUTHORIZE_URL: &str = "https://discord.com/oauth2/authorize";

/// Discord OAuth2: `DISCORD_CLIENT_ID`, `DISCORD_CLIENT_SECRET`, `DISCORD_REDIRECT_URI` (required),
/// `DISCORD_AUTHORIZE_URL` (default Discord's; devstack's locally).
pub fn discord_oauth(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(tollgate_discord::OAuthApp, String), SettingsError> {
    let required =
        |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty()).ok_or(SettingsError::Missing(name));
    let app = tollgate_discord::OAuthApp {
        client_id: required("DISCORD_CLIENT_ID")?,
        client_secret: Secret::new(required("DISCORD_CLIENT_SECRET")?),
        redirect_uri: required("DISCORD_REDIRECT_URI")?,
    };
    let authorize = lookup("DISCORD_AUTHORIZE_URL")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DISCORD_AUTHORIZE_URL.to_owned());
    Ok((app, authorize))
}

/// `CUSTOMER_GUILD_ID`: the guild whose roles Tollgate manages.
pub fn customer_guild_id(lookup: impl Fn(&str) -> Option<String>) -> Result<tollgate_core::GuildId, SettingsError> {
    let raw = lookup("CUSTOMER_GUILD_ID")
        .filter(|v| !v.trim().is_empty())
        .ok_or(SettingsError::Missing("CUSTOMER_GUILD_ID"))?;
    tollgate_core::GuildId::parse(&raw)
        .map_err(|e| SettingsError::Invalid { name: "CUSTOMER_GUILD_ID", reason: e.to_string() })
}

/// `SELLAPP_WEBHOOK_SECRET`: required to accept Sell.app deliveries.
pub fn sellapp_webhook_secret(lookup: impl Fn(&str) -> Option<String>) -> Result<Secret, SettingsError> {
    lookup("SELLAPP_WEBHOOK_SECRET")
        .filter(|v| !v.is_empty())
        .map(Secret::new)
        .ok_or(SettingsError::Missing("SELLAPP_WEBHOOK_SECRET"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_existing_deployments_ids() {
        let settings = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(settings.database_id, "crypto");
        assert_eq!(settings.paid_team_id, "paid");
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
    fn missing_appwrite_settings_are_named() {
        assert_eq!(appwrite_config(|_| None).unwrap_err(), SettingsError::Missing("APPWRITE_ENDPOINT"));
        assert_eq!(sellapp_webhook_secret(|_| None).unwrap_err(), SettingsError::Missing("SELLAPP_WEBHOOK_SECRET"));
    }
}

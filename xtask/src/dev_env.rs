//! `.tollgate/dev.env`: every setting of COMPATIBILITY.md for the local system, as `KEY=VALUE` lines.
//! The same file is the workers' `--env-file`, the CLI's `--env-file`, and what a developer sources to
//! copy-paste the "try it" commands. Its webhook secret is generated once per state directory, so no
//! secret is ever committed.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct DevEnv {
    entries: Vec<(String, String)>,
}

/// What the local system is made of, to describe in settings.
pub struct LocalSystem<'a> {
    pub appwrite_endpoint: &'a str,
    pub project_id: &'a str,
    pub api_key: &'a str,
    pub sellapp_webhook_secret: &'a str,
    pub webhook_url: &'a str,
    pub role_sync_url: &'a str,
    pub api_url: &'a str,
    /// Bearer token of the API worker's admin routes.
    pub admin_token: &'a str,
    /// Shared by the webhook and role-sync workers for the prompt sync trigger.
    pub role_sync_token: &'a str,
    pub devstack_appwrite_url: &'a str,
    /// devstack's Discord stand-in base URL (`http://127.0.0.1:8791`).
    pub devstack_discord_url: &'a str,
    /// devstack's Sell.app stand-in base URL (`http://127.0.0.1:8792`).
    pub devstack_sellapp_url: &'a str,
}

impl DevEnv {
    pub fn for_local(system: &LocalSystem<'_>) -> Self {
        let mut env = Self::default();
        for (key, value) in [
            ("APPWRITE_ENDPOINT", system.appwrite_endpoint),
            ("APPWRITE_PROJECT_ID", system.project_id),
            ("APPWRITE_API_KEY", system.api_key),
            ("APPWRITE_DATABASE_ID", "crypto"),
            ("APPWRITE_SUBSCRIPTIONS_COLLECTION_ID", "subscriptions"),
            ("APPWRITE_WEBHOOK_EVENTS_COLLECTION_ID", "webhook_events"),
            ("APPWRITE_WEBHOOK_FAILURES_COLLECTION_ID", "webhook_failures"),
            ("APPWRITE_PROFILES_COLLECTION_ID", "profiles"),
            ("APPWRITE_DISCORD_ROLE_MAPPINGS_COLLECTION_ID", "discord_role_mappings"),
            ("APPWRITE_ROLE_SYNC_JOBS_COLLECTION_ID", "role_sync_jobs"),
            ("APPWRITE_PENDING_ENTITLEMENTS_COLLECTION_ID", "pending_entitlements"),
            ("APPWRITE_SYNC_STATE_COLLECTION_ID", "sync_state"),
            ("APPWRITE_OAUTH_STATES_COLLECTION_ID", "oauth_states"),
            ("APPWRITE_TEAM_PAID_ID", "paid"),
            ("SELLAPP_WEBHOOK_SECRET", system.sellapp_webhook_secret),
            ("SELLAPP_DEFAULT_PLAN", "member"),
            ("APP_BASE_URL", "http://127.0.0.1:3000"),
            ("CUSTOMER_GUILD_ID", tollgate_devstack::discord_seed::GUILD_ID),
            ("DISCORD_BOT_TOKEN", tollgate_devstack::discord_seed::BOT_TOKEN),
            ("DISCORD_CLIENT_ID", tollgate_devstack::discord_seed::CLIENT_ID),
            ("DISCORD_CLIENT_SECRET", tollgate_devstack::discord_seed::CLIENT_SECRET),
            ("WEBHOOK_URL", system.webhook_url),
            ("ROLE_SYNC_URL", system.role_sync_url),
            ("API_URL", system.api_url),
            ("ADMIN_TOKEN", system.admin_token),
            ("ROLE_SYNC_TOKEN", system.role_sync_token),
            ("DEVSTACK_APPWRITE_URL", system.devstack_appwrite_url),
            ("DEVSTACK_DISCORD_URL", system.devstack_discord_url),
        ] {
            env.set(key, value);
        }
        env.set("DISCORD_API_BASE", &format!("{}/api/v10", system.devstack_discord_url));
        env.set("DISCORD_AUTHORIZE_URL", &format!("{}/oauth2/authorize", system.devstack_discord_url));
        env.set("DISCORD_REDIRECT_URI", &format!("{}/discord/callback", system.api_url));
        env.set("DEVSTACK_SELLAPP_URL", system.devstack_sellapp_url);
        env.set("SELLAPP_API_BASE", &format!("{}/api", system.devstack_sellapp_url));
        env.set("SELLAPP_API_KEY", tollgate_devstack::sellapp::DEFAULT_API_KEY);
        env
    }

    pub fn set(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_owned(),
            None => self.entries.push((key.to_owned(), value.to_owned())),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut env = Self::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if let Some((key, value)) = line.split_once('=') {
                env.set(key.trim(), value.trim());
            }
        }
        Ok(env)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text =
            String::from("# Written by `cargo xtask dev`: the local system's settings (local values only).\n");
        for (key, value) in &self.entries {
            text.push_str(&format!("{key}={value}\n"));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// 32 random bytes from the OS, hex-encoded: a local-only secret.
pub fn generate_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

//! Settings for the CLI: the process environment, overridden by `--env-file`.

use anyhow::Result;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tollgate_app::settings::{appwrite_config, customer_guild_id, discord_config, read_env_file, Settings};
use tollgate_appwrite::AppwriteClient;
use tollgate_core::GuildId;
use tollgate_discord::DiscordClient;

pub use tollgate_core::SystemClock;

pub struct Config {
    values: HashMap<String, String>,
}

impl Config {
    pub fn load(env_file: Option<&Path>) -> Result<Self> {
        let mut values: HashMap<String, String> = std::env::vars().collect();
        if let Some(path) = env_file {
            values.extend(read_env_file(path).map_err(anyhow::Error::msg)?);
        }
        Ok(Self { values })
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.values.get(key).cloned()
    }

    pub fn settings(&self) -> Result<Settings> {
        Ok(Settings::from_lookup(|k| self.get(k))?)
    }

    pub fn appwrite(&self) -> Result<AppwriteClient> {
        Ok(AppwriteClient::new(appwrite_config(|k| self.get(k))?)?)
    }

    pub fn discord(&self) -> Result<DiscordClient> {
        Ok(DiscordClient::new(discord_config(|k| self.get(k))?, Arc::new(SystemClock)))
    }

    /// Stripe's API when `STRIPE_API_KEY` is set (replays of Stripe events read it, as deliveries do).
    pub fn stripe(&self) -> Result<Option<tollgate_stripe::StripeApi>> {
        match tollgate_app::settings::stripe_config(|k| self.get(k))? {
            Some(config) => Ok(Some(tollgate_stripe::StripeApi::new(config)?)),
            None => Ok(None),
        }
    }

    pub fn guild(&self) -> Result<GuildId> {
        Ok(customer_guild_id(|k| self.get(k))?)
    }
}

//! `.tollgate/dev.env`: every registered setting (`tollgate_app::settings::SETTINGS`) for the local system,
//! as `KEY=VALUE` lines, with `cargo xtask dev --set NAME=VALUE` overrides applied. The same file is the
//! workers' `--env-file`, the CLI's `--env-file`, and what a developer sources to copy-paste the "try it"
//! commands. Its secrets are generated once per state directory, so no secret is ever committed.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;
use tollgate_app::settings::{read_env_file, SETTINGS};

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
    /// devstack's Stripe stand-in base URL (`http://127.0.0.1:8793`): `STRIPE_API_BASE`, `/v1` under it.
    pub devstack_stripe_url: &'a str,
    pub stripe_api_key: &'a str,
    /// The `whsec_` secret of the stand-in's webhook endpoint for the webhook worker.
    pub stripe_webhook_secret: &'a str,
    /// The demo plan's monthly price on the stand-in.
    pub demo_stripe_price_id: &'a str,
}

/// Names `dev` writes beside the settings: where the local parts listen. They follow from the ports
/// (`TOLLGATE_*_PORT`, `DEVSTACK_*_PORT`), so `--set` refuses them.
pub const LOCAL_URLS: &[(&str, &str)] = &[
    ("WEBHOOK_URL", "TOLLGATE_WEBHOOK_PORT"),
    ("API_URL", "TOLLGATE_API_PORT"),
    ("DEVSTACK_APPWRITE_URL", "DEVSTACK_APPWRITE_PORT"),
    ("DEVSTACK_DISCORD_URL", "DEVSTACK_DISCORD_PORT"),
    ("DEVSTACK_SELLAPP_URL", "DEVSTACK_SELLAPP_PORT"),
    ("DEVSTACK_STRIPE_URL", "DEVSTACK_STRIPE_PORT"),
];

impl DevEnv {
    /// Every registered setting (`tollgate_app::settings::SETTINGS`) with its local value, or its default when
    /// the local system has nothing to say about it, then the local URLs.
    pub fn for_local(system: &LocalSystem<'_>) -> Self {
        let discord_api_base = format!("{}/api/v10", system.devstack_discord_url);
        let discord_authorize_url = format!("{}/oauth2/authorize", system.devstack_discord_url);
        let discord_redirect_uri = format!("{}/discord/callback", system.api_url);
        let sellapp_api_base = format!("{}/api", system.devstack_sellapp_url);
        let local: &[(&str, &str)] = &[
            ("APPWRITE_ENDPOINT", system.appwrite_endpoint),
            ("APPWRITE_PROJECT_ID", system.project_id),
            ("APPWRITE_API_KEY", system.api_key),
            ("SELLAPP_WEBHOOK_SECRET", system.sellapp_webhook_secret),
            ("APP_BASE_URL", "http://127.0.0.1:3000"),
            ("CUSTOMER_GUILD_ID", tollgate_devstack::discord_seed::GUILD_ID),
            ("DISCORD_BOT_TOKEN", tollgate_devstack::discord_seed::BOT_TOKEN),
            ("DISCORD_CLIENT_ID", tollgate_devstack::discord_seed::CLIENT_ID),
            ("DISCORD_CLIENT_SECRET", tollgate_devstack::discord_seed::CLIENT_SECRET),
            ("DISCORD_API_BASE", &discord_api_base),
            ("DISCORD_AUTHORIZE_URL", &discord_authorize_url),
            ("DISCORD_REDIRECT_URI", &discord_redirect_uri),
            ("ROLE_SYNC_URL", system.role_sync_url),
            ("ADMIN_TOKEN", system.admin_token),
            ("ROLE_SYNC_TOKEN", system.role_sync_token),
            ("SELLAPP_API_BASE", &sellapp_api_base),
            ("SELLAPP_API_KEY", tollgate_devstack::sellapp::DEFAULT_API_KEY),
            ("STRIPE_API_BASE", system.devstack_stripe_url),
            ("STRIPE_API_KEY", system.stripe_api_key),
            ("STRIPE_WEBHOOK_SECRET", system.stripe_webhook_secret),
            ("DEMO_STRIPE_PRICE_ID", system.demo_stripe_price_id),
        ];
        let mut env = Self::default();
        for setting in SETTINGS {
            let local_value = local.iter().find(|(name, _)| *name == setting.name).map(|(_, value)| *value);
            if let Some(value) = local_value.or(setting.default) {
                env.set(setting.name, value);
            }
        }
        for (name, value) in [
            ("WEBHOOK_URL", system.webhook_url),
            ("API_URL", system.api_url),
            ("DEVSTACK_APPWRITE_URL", system.devstack_appwrite_url),
            ("DEVSTACK_DISCORD_URL", system.devstack_discord_url),
            ("DEVSTACK_SELLAPP_URL", system.devstack_sellapp_url),
            ("DEVSTACK_STRIPE_URL", system.devstack_stripe_url),
        ] {
            env.set(name, value);
        }
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
        let mut env = Self::default();
        for (key, value) in read_env_file(path).map_err(anyhow::Error::msg)? {
            env.set(&key, &value);
        }
        Ok(env)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text =
            String::from("# Written by `cargo xtask dev`: the local system's settings (local values only).\n");
        for (key, value) in &self.entries {
            text.push_str(&format!("{key}={}\n", quoted(value)));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// A value as an env-file line needs it: bare when it is plain, else in single quotes (no expansion, in
/// dotenv parsers and in `sh` alike), else in double quotes with `\`, `"` and `$` escaped.
fn quoted(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:@+,%".contains(c);
    if value.chars().all(plain) {
        value.to_owned()
    } else if !value.contains('\'') {
        format!("'{value}'")
    } else {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$");
        format!("\"{escaped}\"")
    }
}

/// One `--set NAME=VALUE` of `cargo xtask dev`: the name must be a registered setting and the value must
/// pass the check the workers apply to it.
pub fn parse_override(arg: &str) -> Result<(String, String)> {
    let Some((name, value)) = arg.split_once('=') else {
        bail!("--set takes NAME=VALUE, got `{arg}`");
    };
    let name = name.trim();
    if let Some((_, port)) = LOCAL_URLS.iter().find(|(url, _)| *url == name) {
        bail!("{name} follows from the ports; set the environment variable {port} instead of --set {name}");
    }
    if value.trim().is_empty() {
        bail!("--set {name}= has no value");
    }
    tollgate_app::settings::check(name, value)?;
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// 32 random bytes from the OS, hex-encoded: a local-only secret.
pub fn generate_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> DevEnv {
        DevEnv::for_local(&LocalSystem {
            appwrite_endpoint: "http://127.0.0.1:8790/v1",
            project_id: "tollgate-dev",
            api_key: "key",
            sellapp_webhook_secret: "secret",
            webhook_url: "http://127.0.0.1:8787",
            role_sync_url: "http://127.0.0.1:8789",
            api_url: "http://127.0.0.1:8788",
            admin_token: "admin",
            role_sync_token: "token",
            devstack_appwrite_url: "http://127.0.0.1:8790",
            devstack_discord_url: "http://127.0.0.1:8791",
            devstack_sellapp_url: "http://127.0.0.1:8792",
            devstack_stripe_url: "http://127.0.0.1:8793",
            stripe_api_key: tollgate_devstack::stripe::DEFAULT_SECRET_KEY,
            stripe_webhook_secret: "whsec_local",
            demo_stripe_price_id: "price_demo",
        })
    }

    #[test]
    fn the_local_env_holds_every_registered_setting_and_each_passes_its_check() {
        let env = local();
        for setting in SETTINGS {
            let value = env.get(setting.name).unwrap_or_else(|| panic!("dev.env lacks {}", setting.name));
            assert_eq!((setting.check)(value), Ok(()), "{}", setting.name);
        }
        assert_eq!(env.get("ACCESS_GRACE_HOURS"), Some("24"));
        assert_eq!(env.get("SELLAPP_API_BASE"), Some("http://127.0.0.1:8792/api"), "refunds are checked locally");
    }

    #[test]
    fn the_local_env_points_stripe_at_the_stand_in_with_its_key_secret_and_demo_price() {
        let env = local();
        assert_eq!(env.get("STRIPE_API_BASE"), Some("http://127.0.0.1:8793"), "the stand-in serves /v1 under its base");
        assert!(env.get("STRIPE_API_KEY").is_some_and(|k| k.starts_with("sk_test_")));
        assert_eq!(env.get("STRIPE_WEBHOOK_SECRET"), Some("whsec_local"));
        assert_eq!(env.get("DEMO_STRIPE_PRICE_ID"), Some("price_demo"));
        assert_eq!(env.get("DEVSTACK_STRIPE_URL"), Some("http://127.0.0.1:8793"));
        let production = SETTINGS.iter().find(|s| s.name == "STRIPE_API_BASE").and_then(|s| s.default);
        assert_eq!(production, Some("https://api.stripe.com"), "without dev.env, Stripe's own API");
        assert!(parse_override("DEVSTACK_STRIPE_URL=http://x")
            .unwrap_err()
            .to_string()
            .contains("DEVSTACK_STRIPE_PORT"));
        assert!(parse_override("DEMO_STRIPE_PRICE_ID=prod_1").is_err(), "a price id starts with price_");
    }

    #[test]
    fn written_values_read_back_exactly() {
        let mut env = local();
        env.set("SELLAPP_WEBHOOK_SECRET", "with space and $HOME and 'quote'");
        env.set("ADMIN_TOKEN", "it's $x");
        env.set("ROLE_SYNC_TOKEN", "a b");
        let path = std::env::temp_dir().join(format!("tollgate-dev-env-{}.env", std::process::id()));
        env.write(&path).unwrap();
        let back = DevEnv::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(back.entries(), env.entries());
    }

    #[test]
    fn an_override_must_name_a_setting_and_pass_its_check() {
        assert_eq!(parse_override("ACCESS_GRACE_HOURS=0").unwrap(), ("ACCESS_GRACE_HOURS".into(), "0".into()));
        let unknown = parse_override("NOPE=1").unwrap_err().to_string();
        assert!(unknown.contains("NOPE") && unknown.contains("ACCESS_GRACE_HOURS"), "{unknown}");
        let bad = parse_override("ACCESS_GRACE_HOURS=99999").unwrap_err().to_string();
        assert!(bad.contains("0 to 8760"), "{bad}");
        assert!(parse_override("ACCESS_GRACE_HOURS").is_err());
        assert!(parse_override("ACCESS_GRACE_HOURS=").is_err());
        assert!(parse_override("WEBHOOK_URL=http://x").unwrap_err().to_string().contains("TOLLGATE_WEBHOOK_PORT"));
    }
}

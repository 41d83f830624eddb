use std::sync::Arc;
use tollgate_core::{DiscordUserId, FixedClock, GuildId, RoleId, Secret};
use tollgate_devstack::discord_seed as seed;
use tollgate_devstack::{DevstackConfig, RunningDevstack};
use tollgate_discord::{DiscordClient, DiscordConfig};

pub struct Ctx {
    pub devstack: RunningDevstack,
    pub client: DiscordClient,
    pub clock: Arc<FixedClock>,
    pub http: reqwest::Client,
}

pub fn guild() -> GuildId {
    GuildId::parse(seed::GUILD_ID).unwrap()
}

pub fn role(id: &str) -> RoleId {
    RoleId::parse(id).unwrap()
}

pub fn alice() -> DiscordUserId {
    DiscordUserId::parse(seed::TEST_USERS[0].0).unwrap()
}

pub async fn ctx() -> Ctx {
    ctx_with_token(seed::BOT_TOKEN).await
}

pub async fn ctx_with_token(token: &str) -> Ctx {
    let devstack = tollgate_devstack::start(DevstackConfig::for_tests()).await.unwrap();
    let clock = Arc::new(FixedClock::at(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()));
    let client = DiscordClient::new(
        DiscordConfig { api_base: devstack.discord_api_base(), bot_token: Secret::new(token) },
        clock.clone(),
    );
    Ctx { devstack, client, clock, http: reqwest::Client::new() }
}

impl Ctx {
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let mut request = self.http.request(method, format!("{}{path}", self.devstack.discord_base_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap_or(serde_json::Value::Null)
    }

    pub async fn join(&self, user: &str) {
        self.control(reqwest::Method::PUT, &format!("/_devstack/guilds/{}/members/{user}", seed::GUILD_ID), None).await;
    }

    pub async fn leave(&self, user: &str) {
        self.control(reqwest::Method::DELETE, &format!("/_devstack/guilds/{}/members/{user}", seed::GUILD_ID), None)
            .await;
    }
}

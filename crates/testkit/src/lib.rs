//! # tollgate-testkit
//!
//! A devstack per test, the schema bootstrapped through the real client, and a clock the test moves: the
//! harness of `crates/app/tests/it` and of the chaos runner (`crates/chaos`), in one place so both drive
//! the app the same way.

pub mod stripe;

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use tollgate_app::bootstrap::{bootstrap, Pause};
use tollgate_app::settings::Settings;
use tollgate_app::App;
use tollgate_appwrite::{AppwriteClient, AppwriteConfig, Query};
use tollgate_core::{Email, FixedClock, Secret};
use tollgate_devstack::{DevstackConfig, RunningDevstack};
use tollgate_providers::{Headers, VerifiedEvent};

pub const SECRET: &str = "app-test-secret";

struct TokioPause;
impl Pause for TokioPause {
    async fn pause(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

pub struct TestContext {
    pub devstack: RunningDevstack,
    pub client: AppwriteClient,
    pub settings: Settings,
    pub clock: std::sync::Arc<FixedClock>,
}

pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").expect("a valid time").with_timezone(&Utc)
}

pub async fn context() -> TestContext {
    let devstack = tollgate_devstack::start(DevstackConfig::for_tests()).await.expect("devstack");
    let client = AppwriteClient::new(AppwriteConfig {
        endpoint: devstack.appwrite_endpoint(),
        project_id: devstack.project_id().to_owned(),
        api_key: Secret::new(devstack.api_key()),
    })
    .expect("client");
    let settings = Settings::from_lookup(|_| None).expect("default settings");
    bootstrap(&client, &settings, &TokioPause).await.expect("bootstrap");
    TestContext { devstack, client, settings, clock: std::sync::Arc::new(FixedClock::at(start_time())) }
}

impl TestContext {
    /// The test's "now".
    pub fn clock_now(&self) -> DateTime<Utc> {
        tollgate_core::Clock::now(&*self.clock)
    }

    pub fn app(&self) -> App<'_, FixedClock> {
        App::new(&self.client, &self.settings, &*self.clock)
    }

    /// An account whose email is verified (it may receive purchases made with that email).
    pub async fn create_user(&self, id: &str, email: &str) {
        self.create_unverified_user(id, email).await;
        self.verify_email(id).await;
    }

    /// An account that signed up with `email` and never proved it.
    pub async fn create_unverified_user(&self, id: &str, email: &str) {
        let email = Email::parse(email).expect("valid email");
        self.client.create_user(id, &email, None, None).await.expect("create user");
    }

    /// A purchase by a new verified `user` (`{user}@example.com`) whose processing failed (Appwrite's users
    /// API down): a `due` failure record.
    pub async fn failed_purchase(&self, user: &str, order_id: u64) {
        let email = format!("{user}@example.com");
        self.create_user(user, &email).await;
        self.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
        self.app().ingest_sellapp(&order("order.completed", order_id, &email)).await.expect("recorded");
        self.set_faults(json!({"rate": 0})).await;
    }

    pub async fn verify_email(&self, id: &str) {
        let id = tollgate_core::AppwriteId::parse(id).expect("id");
        self.client.update_email_verification(&id, true).await.expect("verify email");
    }

    pub async fn user(&self, id: &str) -> tollgate_appwrite::User {
        self.client.get_user(&tollgate_core::AppwriteId::parse(id).expect("id")).await.expect("user")
    }

    /// What role-sync does first for a queued user: the `subscriptions` document and `paid` membership
    /// made equal to the user's access.
    pub async fn project(&self, id: &str) -> tollgate_app::projection::Projected {
        self.app().project_user(&tollgate_core::AppwriteId::parse(id).expect("id")).await.expect("projection")
    }

    /// Appwrite calls per route so far (devstack's counter).
    pub async fn calls(&self) -> Value {
        reqwest::get(format!("{}/_devstack/calls", self.devstack.appwrite_base_url()))
            .await
            .expect("calls")
            .json()
            .await
            .expect("calls json")
    }

    pub async fn document(&self, collection: &str, id: &str) -> Option<Value> {
        match self.client.get_document(&self.settings.database_id, collection, id).await {
            Ok(doc) => Some(Value::Object(doc.data.clone())),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("reading {collection}/{id}: {e}"),
        }
    }

    pub async fn count(&self, collection: &str, queries: &[Query]) -> usize {
        self.client.list_documents(&self.settings.database_id, collection, queries).await.expect("list").documents.len()
    }

    pub async fn is_paid(&self, user_id: &str) -> bool {
        let id = tollgate_core::AppwriteId::parse(user_id).expect("id");
        self.client.find_membership(&self.settings.paid_team_id, &id).await.expect("membership lookup").is_some()
    }

    /// Makes devstack answer as that Appwrite version (`"1.5"`, `"1.6"`: no bulk document routes).
    pub async fn play_appwrite_version(&self, version: &str) {
        let response = reqwest::Client::new()
            .post(format!("{}/_devstack/version", self.devstack.appwrite_base_url()))
            .json(&json!({ "version": version }))
            .send()
            .await
            .expect("version");
        assert!(response.status().is_success());
    }

    /// Faults of the Appwrite stand-in (see `tollgate_devstack::control`).
    pub async fn set_faults(&self, faults: Value) {
        control_faults(&self.devstack.appwrite_base_url(), &faults).await;
    }

    /// Faults of the Discord stand-in, with Discord's own error bodies (a 429 carries `retry_after`).
    pub async fn set_discord_faults(&self, faults: Value) {
        control_faults(&self.devstack.discord_base_url(), &faults).await;
    }

    /// The bot's client for the Discord stand-in, on the test's clock.
    pub fn discord(&self) -> tollgate_discord::DiscordClient {
        let config = tollgate_discord::DiscordConfig {
            api_base: self.devstack.discord_api_base(),
            bot_token: Secret::new(tollgate_devstack::discord_seed::BOT_TOKEN),
        };
        tollgate_discord::DiscordClient::new(config, self.clock.clone())
    }
}

async fn control_faults(base_url: &str, faults: &Value) {
    let response =
        reqwest::Client::new().post(format!("{base_url}/_devstack/faults")).json(faults).send().await.expect("faults");
    assert!(response.status().is_success(), "setting faults: {}", response.status());
}

pub fn signed_event(body: &str) -> VerifiedEvent {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    let headers = Headers::from_pairs(vec![("signature".to_owned(), hex::encode(mac.finalize().into_bytes()))]);
    tollgate_providers::sellapp::verify(body.as_bytes(), &headers, &Secret::new(SECRET), start_time())
        .expect("verified")
}

pub fn order(event: &str, order_id: u64, email: &str) -> VerifiedEvent {
    signed_event(
        &json!({"event": event, "data": {"id": order_id, "customer": {"email": email}}, "store": 7}).to_string(),
    )
}

/// The outcome of a delivery applied to `user`.
pub fn applied(user: &str) -> tollgate_app::IngestOutcome {
    tollgate_app::IngestOutcome::Applied { user_id: tollgate_core::AppwriteId::parse(user).expect("a valid id") }
}

//! `spawn_app()`: devstack in-process on free ports and the local system against it
//! ([`xtask::system::LocalStack`]: the schema, the demo plan, the compiled workers in `wrangler dev`, configured
//! through an env file exactly as `cargo xtask dev` configures it). `TestApp` has one method per endpoint, each taking the expected status.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tollgate_app::settings::Settings;
use tollgate_appwrite::AppwriteClient;
use tollgate_devstack::discord_seed as seed;
use tollgate_devstack::{DevstackConfig, RunningDevstack};
use xtask::paths::ROLE_SYNC_WORKER;
use xtask::system::{LocalStack, TempDir};
pub use xtask::system::{ADMIN_TOKEN, PLAN, SELLAPP_SECRET as SECRET};
use xtask::wrangler::{RunningWorker, WorkerLaunch};

pub const DB: &str = "crypto";

pub struct TestApp {
    pub devstack: RunningDevstack,
    /// The Stripe stand-in's demo price, which the demo plan lists.
    pub stripe_price: String,
    pub worker: RunningWorker,
    pub role_sync: RunningWorker,
    pub api: RunningWorker,
    pub http: reqwest::Client,
    /// Tollgate's own client and settings, for what an admin does with the CLI (grant, revoke).
    pub client: AppwriteClient,
    pub settings: Settings,
    state: TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// [`spawn_app`] with another `SELLAPP_WEBHOOK_SECRET` (e.g. a misconfigured one).
pub async fn spawn_app_with_secret(sellapp_webhook_secret: &str) -> TestApp {
    spawn_app_with(&[("SELLAPP_WEBHOOK_SECRET", sellapp_webhook_secret)]).await
}

/// `spawn_app` with settings overridden in the workers' env file, as `cargo xtask dev --set` does: the
/// system `cargo xtask load` runs too ([`LocalStack`]).
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let devstack = tollgate_devstack::start(DevstackConfig::for_tests()).await.expect("starting devstack");
    let stack = LocalStack::start(&devstack, "tollgate-e2e", overrides).await.expect("starting the local system");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("http client");
    let LocalStack { stripe_price, webhook, role_sync, api, client, settings, state } = stack;
    TestApp { stripe_price, devstack, worker: webhook, role_sync, api, http, client, settings, state }
}

pub fn sign(body: &str) -> String {
    sign_with(SECRET, body)
}

pub use xtask::system::{event_document_id, sellapp_order_body as order_body, sellapp_signature as sign_with};

/// A session JWT for the user, as the web app would hold after sign-in.
pub async fn jwt_for(app: &TestApp, user: &str) -> String {
    app.jwt_for(user).await
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.worker.url())
    }

    pub async fn post_sellapp_webhook(&self, body: &str, signature: Option<&str>) -> Answer {
        let mut request = self.http.post(self.url("/sell/webhook")).header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header("signature", signature);
        }
        let response = request.body(body.to_owned()).send().await.expect("POST /sell/webhook");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Answer { status, body }
    }

    /// A correctly signed delivery, asserting the status it gets.
    pub async fn deliver(&self, body: &str, expected: u16) -> Value {
        let answer = self.post_sellapp_webhook(body, Some(&sign(body))).await;
        assert_eq!(answer.status.as_u16(), expected, "delivery answered {}: {}", answer.status, answer.body);
        answer.body
    }

    pub async fn trigger_scheduled(&self) {
        let response = self.http.get(self.url("/__scheduled?cron=*+*+*+*+*")).send().await.expect("GET /__scheduled");
        assert_eq!(response.status(), StatusCode::OK, "scheduled run failed");
    }

    // ---- devstack, through its Appwrite REST API (independent of Tollgate's client) ----

    fn appwrite(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.devstack.appwrite_endpoint()))
            .header("X-Appwrite-Project", self.devstack.project_id())
            .header("X-Appwrite-Key", self.devstack.api_key())
    }

    async fn appwrite_json(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("devstack request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// An account that has verified its email (it may receive purchases made with it).
    pub async fn create_user(&self, user_id: &str, email: &str) -> Value {
        let user = self.create_unverified_user(user_id, email).await;
        self.verify_email(user_id).await;
        user
    }

    /// An account that signs in with a password (through Appwrite's own session, as a browser does).
    pub async fn create_user_with_password(&self, user_id: &str, email: &str, password: &str) -> Value {
        let request = self
            .appwrite(reqwest::Method::POST, "/users")
            .json(&json!({"userId": user_id, "email": email, "name": user_id, "password": password}));
        let (status, body) = self.appwrite_json(request).await;
        assert_eq!(status, StatusCode::CREATED, "creating user: {body}");
        self.verify_email(user_id).await;
        body
    }

    /// Makes the user a confirmed member of a team (e.g. the admins team).
    pub async fn add_to_team(&self, team: &str, user_id: &str) {
        let request = self
            .appwrite(reqwest::Method::POST, &format!("/teams/{team}/memberships"))
            .json(&json!({"userId": user_id, "roles": ["owner"]}));
        let (status, body) = self.appwrite_json(request).await;
        assert_eq!(status, StatusCode::CREATED, "adding {user_id} to {team}: {body}");
    }

    /// A fresh Appwrite JWT of the user, as their web app would hold it.
    pub async fn jwt_for(&self, user_id: &str) -> String {
        let request = self.appwrite(reqwest::Method::POST, &format!("/users/{user_id}/jwts")).json(&json!({}));
        let (status, body) = self.appwrite_json(request).await;
        assert_eq!(status, StatusCode::CREATED, "jwt: {body}");
        body["jwt"].as_str().expect("a jwt").to_owned()
    }

    /// Stops the role-sync worker and starts it again on the same port, env file and state (its Durable
    /// Objects' storage included): what a deploy or an eviction does to its in-memory state.
    pub async fn restart_role_sync(&mut self) {
        let port: u16 = self.role_sync.url().rsplit(':').next().and_then(|p| p.parse().ok()).expect("its port");
        self.role_sync.stop();
        self.role_sync = xtask::wrangler::start(WorkerLaunch {
            worker: ROLE_SYNC_WORKER,
            port,
            env_file: &self.state.path().join("dev.env"),
            state_dir: &self.state.path().join("role-sync"),
        })
        .await
        .expect("restarting the role-sync worker");
    }

    /// This test's own temporary directory (screenshots go here).
    pub fn state_dir(&self) -> &std::path::Path {
        self.state.path()
    }

    /// An account that signed up with `email` and never proved it.
    pub async fn create_unverified_user(&self, user_id: &str, email: &str) -> Value {
        let request = self
            .appwrite(reqwest::Method::POST, "/users")
            .json(&json!({"userId": user_id, "email": email, "name": "E2E Buyer"}));
        let (status, body) = self.appwrite_json(request).await;
        assert_eq!(status, StatusCode::CREATED, "creating user: {body}");
        body
    }

    pub async fn verify_email(&self, user_id: &str) {
        let request = self
            .appwrite(reqwest::Method::PATCH, &format!("/users/{user_id}/verification"))
            .json(&json!({"emailVerification": true}));
        let (status, body) = self.appwrite_json(request).await;
        assert_eq!(status, StatusCode::OK, "verifying: {body}");
    }

    /// Waits until role-sync has projected the user's access: the `subscriptions` document says
    /// `status` and the `paid` membership agrees. Returns the document.
    pub async fn projected(&self, user_id: &str, status: &str) -> Value {
        let paid = status == "active";
        self.eventually(&format!("{user_id}'s subscription {status} and paid = {paid}"), || async {
            let document = self.document("subscriptions", user_id).await;
            let membership = self.memberships(user_id).await.contains(&"paid".to_owned());
            document.is_some_and(|d| d["status"] == status) && membership == paid
        })
        .await;
        self.document("subscriptions", user_id).await.expect("the subscription")
    }

    pub async fn document(&self, collection: &str, id: &str) -> Option<Value> {
        let path = format!("/databases/{DB}/collections/{collection}/documents/{id}");
        let (status, body) = self.appwrite_json(self.appwrite(reqwest::Method::GET, &path)).await;
        match status {
            StatusCode::OK => Some(body),
            StatusCode::NOT_FOUND => None,
            other => panic!("reading {collection}/{id}: {other} {body}"),
        }
    }

    pub async fn documents(&self, collection: &str) -> Vec<Value> {
        let path = format!("/databases/{DB}/collections/{collection}/documents");
        let limit = json!({"method": "limit", "values": [1000]}).to_string();
        let (status, body) =
            self.appwrite_json(self.appwrite(reqwest::Method::GET, &path).query(&[("queries[]", limit)])).await;
        assert_eq!(status, StatusCode::OK, "listing {collection}: {body}");
        body["documents"].as_array().cloned().unwrap_or_default()
    }

    /// Makes a recorded failure due now, as if its backoff delay had passed (workerd's clock cannot be moved).
    pub async fn let_backoff_pass(&self, failure_id: &str) {
        self.update_document("webhook_failures", failure_id, json!({"nextAttemptAt": "2000-01-01T00:00:00.000+00:00"}))
            .await;
    }

    pub async fn update_document(&self, collection: &str, id: &str, data: Value) {
        let path = format!("/databases/{DB}/collections/{collection}/documents/{id}");
        let (status, body) =
            self.appwrite_json(self.appwrite(reqwest::Method::PATCH, &path).json(&json!({ "data": data }))).await;
        assert_eq!(status, StatusCode::OK, "updating {collection}/{id}: {body}");
    }

    /// The teams the user is a member of.
    pub async fn memberships(&self, user_id: &str) -> Vec<String> {
        let (status, body) =
            self.appwrite_json(self.appwrite(reqwest::Method::GET, &format!("/users/{user_id}/memberships"))).await;
        assert_eq!(status, StatusCode::OK, "memberships: {body}");
        body["memberships"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["teamId"].as_str().map(str::to_owned))
            .collect()
    }

    /// Every member of the `paid` team.
    pub async fn paid_team_size(&self) -> u64 {
        let (status, body) = self.appwrite_json(self.appwrite(reqwest::Method::GET, "/teams/paid/memberships")).await;
        assert_eq!(status, StatusCode::OK, "paid memberships: {body}");
        body["total"].as_u64().unwrap_or(0)
    }

    pub async fn set_faults(&self, faults: Value) {
        let response = self
            .http
            .post(format!("{}/_devstack/faults", self.devstack.appwrite_base_url()))
            .json(&faults)
            .send()
            .await
            .expect("POST /_devstack/faults");
        assert!(response.status().is_success(), "setting faults: {}", response.status());
    }

    pub async fn clear_faults(&self) {
        self.set_faults(json!({"rate": 0})).await;
    }
}

impl TestApp {
    pub async fn discord(&self, method: reqwest::Method, path: &str) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.devstack.discord_base_url()))
            .header("Authorization", format!("Bot {}", seed::BOT_TOKEN))
            .send()
            .await
            .expect("devstack Discord");
        response.json().await.unwrap_or(Value::Null)
    }

    /// The member's roles in the demo guild (`None`: not a member).
    pub async fn member_roles(&self, discord_id: &str) -> Option<Vec<String>> {
        let member = self
            .discord(reqwest::Method::GET, &format!("/api/v10/guilds/{}/members/{discord_id}", seed::GUILD_ID))
            .await;
        let mut roles: Vec<String> =
            member["roles"].as_array()?.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect();
        roles.sort();
        Some(roles)
    }

    pub async fn join_guild(&self, discord_id: &str) {
        self.discord(reqwest::Method::PUT, &format!("/_devstack/guilds/{}/members/{discord_id}", seed::GUILD_ID)).await;
    }

    pub async fn link_discord(&self, user_id: &str, discord_id: &str) {
        let path = format!("/databases/{DB}/collections/profiles/documents/{user_id}");
        let body =
            json!({ "data": { "discordUserId": discord_id, "discordLinkedAt": "2026-11-24T00:00:00.000+00:00" } });
        let (status, body) = self.appwrite_json(self.appwrite(reqwest::Method::PUT, &path).json(&body)).await;
        assert!(status.is_success(), "linking: {body}");
    }

    /// Creates or replaces a document (Appwrite's upsert).
    pub async fn put_document(&self, collection: &str, id: &str, data: Value) {
        let path = format!("/databases/{DB}/collections/{collection}/documents/{id}");
        let (status, body) =
            self.appwrite_json(self.appwrite(reqwest::Method::PUT, &path).json(&json!({ "data": data }))).await;
        assert!(status.is_success(), "writing {collection}/{id}: {body}");
    }

    pub async fn trigger_role_sync_cron(&self) {
        let response = self
            .http
            .get(format!("{}/__scheduled?cron=*+*+*+*+*", self.role_sync.url()))
            .send()
            .await
            .expect("GET /__scheduled");
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// Polls until `check` holds (the prompt sync runs after the webhook's answer), for at most `SYNC_WAIT`.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + SYNC_WAIT;
        while !check().await {
            assert!(std::time::Instant::now() < deadline, "{what} did not happen within {SYNC_WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// "Within seconds": how long a prompt role sync may take end to end.
pub const SYNC_WAIT: Duration = Duration::from_secs(10);

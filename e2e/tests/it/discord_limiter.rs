//! The Discord rate limiter's state lives in one Durable Object (hosted by the limiter worker, which runs in
//! role-sync's `wrangler dev`; bound by role-sync, api and console): what one worker saw, the other obeys, and it outlives the invocation that saw it.

use crate::support::{jwt_for, order_body, spawn_app, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_devstack::discord_seed as seed;

const MEMBER_ROUTE: &str = "GET /api/v10/guilds/{guild_id}/members/{user_id}";

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    ids.sort();
    ids
}

/// A paying user linked to `discord_id`, in the guild, with the plan's roles already granted.
async fn linked_buyer(app: &TestApp, user: &str, discord_id: &str, order: u64) {
    let email = format!("{user}@example.com");
    app.create_user(user, &email).await;
    app.link_discord(user, discord_id).await;
    app.join_guild(discord_id).await;
    app.deliver(&order_body("order.completed", order, &email), 200).await;
    let paid = sorted(&[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID]);
    app.eventually("the plan's roles", || async { app.member_roles(discord_id).await == Some(paid.clone()) }).await;
}

async fn discord_control(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = app.http.request(method, format!("{}{path}", app.devstack.discord_base_url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("devstack Discord control");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap_or(Value::Null)
}

async fn discord_calls(app: &TestApp) -> Value {
    discord_control(app, reqwest::Method::GET, "/_devstack/calls", None).await
}

async fn clear_discord_calls(app: &TestApp) {
    discord_control(app, reqwest::Method::DELETE, "/_devstack/calls", None).await;
}

/// Role-sync's `POST /sync` for one user (what the webhook worker calls after an access change).
async fn sync_now(app: &TestApp, user: &str) -> Value {
    let response = app
        .http
        .post(format!("{}/sync", app.role_sync.url()))
        .bearer_auth("e2e-role-sync-token")
        .json(&json!({ "userId": user }))
        .send()
        .await
        .expect("POST /sync");
    response.json().await.unwrap_or(Value::Null)
}

async fn me_access(app: &TestApp, jwt: &str) -> (StatusCode, Value) {
    let response =
        app.http.get(format!("{}/me/access", app.api.url())).bearer_auth(jwt).send().await.expect("GET /me/access");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET /me/access` answers, with the roles unknown, and Discord has not been called since the last count.
async fn access_without_discord(app: &TestApp, jwt: &str, why: &str) {
    let (status, access) = me_access(app, jwt).await;
    assert_eq!(status, StatusCode::OK, "{access}");
    assert_eq!(access["discordManagedRoles"], Value::Null, "roles unknown while Discord is held: {access}");
    assert_eq!(discord_calls(app).await, json!({}), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_429_seen_by_role_sync_keeps_the_api_worker_away_from_discord_too() {
    let app = spawn_app().await;
    let (alice, bob) = (seed::TEST_USERS[0].0, seed::TEST_USERS[1].0);
    linked_buyer(&app, "held1", alice, 4_001).await;
    linked_buyer(&app, "held2", bob, 4_002).await;
    let jwt = jwt_for(&app, "held2").await;
    // A role taken away by hand, so that role sync has a write to make after its read.
    let vip = format!("/api/v10/guilds/{}/members/{alice}/roles/{}", seed::GUILD_ID, seed::VIP_ROLE_ID);
    app.discord(reqwest::Method::DELETE, &vip).await;

    // The bot's global limit: one request a minute, whatever the route.
    let limit = json!({"limit": 1, "window_ms": 60_000, "global": true});
    discord_control(&app, reqwest::Method::POST, "/_devstack/rate-limit", Some(limit)).await;
    let synced = sync_now(&app, "held1").await;
    assert_eq!(synced["outcome"], "deferred", "the role write met Discord's global 429: {synced}");
    clear_discord_calls(&app).await;

    access_without_discord(&app, &jwt, "the api worker did not call Discord during the back-off").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_for_the_bot_token_stops_both_workers_beyond_the_invocation_that_saw_it() {
    let mut app = spawn_app().await;
    let alice = seed::TEST_USERS[0].0;
    linked_buyer(&app, "halt1", alice, 4_101).await;
    let jwt = jwt_for(&app, "halt1").await;

    discord_control(&app, reqwest::Method::POST, "/_devstack/faults", Some(json!({"rate": 1.0, "status": 401}))).await;
    let synced = sync_now(&app, "halt1").await;
    assert_eq!(synced["outcome"], "failed", "a refused bot token needs an admin: {synced}");
    discord_control(&app, reqwest::Method::POST, "/_devstack/faults", Some(json!({"rate": 0}))).await;
    clear_discord_calls(&app).await;

    // New invocations of both workers, the object's host restarted in between (its memory gone, its
    // storage kept): Discord would answer now, but nothing is sent with that token.
    app.restart_role_sync().await;
    app.trigger_role_sync_cron().await;
    let synced = sync_now(&app, "halt1").await;
    assert_eq!(synced["outcome"], "failed", "{synced}");
    access_without_discord(&app, &jwt, "no call after the 401, in any worker").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_reloading_their_access_page_costs_one_discord_read_per_interval() {
    let app = spawn_app().await;
    let alice = seed::TEST_USERS[0].0;
    linked_buyer(&app, "loop1", alice, 4_201).await;
    let jwt = jwt_for(&app, "loop1").await;
    clear_discord_calls(&app).await;

    let paid = sorted(&[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID]);
    for _ in 0..8 {
        let (status, access) = me_access(&app, &jwt).await;
        assert_eq!(status, StatusCode::OK, "{access}");
        let mut roles: Vec<String> = access["discordManagedRoles"]
            .as_array()
            .map(|r| r.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        roles.sort();
        assert_eq!(roles, paid, "every answer shows the roles (the kept one after the first): {access}");
    }
    let calls = discord_calls(&app).await;
    assert_eq!(calls[MEMBER_ROUTE], 1, "one read of the member for eight page loads: {calls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_limiter_the_access_page_is_503_and_discord_is_not_called() {
    let mut app = spawn_app().await;
    let alice = seed::TEST_USERS[0].0;
    linked_buyer(&app, "nolimit1", alice, 4_301).await;
    let jwt = jwt_for(&app, "nolimit1").await;
    app.role_sync.stop();
    clear_discord_calls(&app).await;

    let (status, answer) = me_access(&app, &jwt).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "discord_unavailable");
    assert_eq!(discord_calls(&app).await, json!({}));
}

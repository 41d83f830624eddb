//! The Discord stand-in: `/api/v10` bot and user endpoints Tollgate uses, OAuth2 (`/oauth2/authorize`
//! approving as the test user named by `test_user=<id>`, the form-only token endpoint, revoke), real
//! per-route rate-limit buckets with headers and 429s, and the Discord error body `{code, message}`.
//! Seeded with a demo guild (see [`store::seed`]); `/_devstack/guilds/{guild}/members/{user}` lets a test
//! user join (PUT) or leave (DELETE), and `/_devstack/rate-limit` sets the bucket size.

pub mod guilds;
pub mod oauth;
pub mod ratelimit;
pub mod store;

use crate::control::{self, Control, Stand};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use store::DiscordStore;

pub struct DiscordState {
    pub store: DiscordStore,
    pub control: Control,
    pub limits: ratelimit::Limits,
}

impl DiscordState {
    pub fn new(store: DiscordStore) -> Self {
        Self { store, control: Control::default(), limits: ratelimit::Limits::default() }
    }
}

pub type State = axum::extract::State<Arc<DiscordState>>;

/// `retry_after` of a 429 injected through `/_devstack/faults`.
pub const INJECTED_RETRY_AFTER_SECS: f64 = 2.0;

/// Discord's error body.
#[derive(Debug, Clone)]
pub struct DiscordError {
    pub status: u16,
    pub code: u64,
    pub message: String,
}

pub type DResult<T> = Result<T, DiscordError>;

impl DiscordError {
    pub fn new(status: u16, code: u64, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn unauthorized() -> Self {
        Self::new(401, 0, "401: Unauthorized")
    }

    pub fn storage(e: rusqlite::Error) -> Self {
        Self::new(500, 0, format!("500: Internal Server Error ({e})"))
    }
}

impl From<rusqlite::Error> for DiscordError {
    fn from(e: rusqlite::Error) -> Self {
        Self::storage(e)
    }
}

impl IntoResponse for DiscordError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!({ "code": self.code, "message": self.message }))).into_response()
    }
}

pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v10/guilds/{guild_id}"),
    ("GET", "/api/v10/guilds/{guild_id}/roles"),
    ("GET", "/api/v10/guilds/{guild_id}/members"),
    ("GET", "/api/v10/guilds/{guild_id}/members/{user_id}"),
    ("PUT", "/api/v10/guilds/{guild_id}/members/{user_id}"),
    ("PUT", "/api/v10/guilds/{guild_id}/members/{user_id}/roles/{role_id}"),
    ("DELETE", "/api/v10/guilds/{guild_id}/members/{user_id}/roles/{role_id}"),
    ("GET", "/api/v10/users/@me"),
    ("POST", "/api/v10/oauth2/token"),
    ("POST", "/api/oauth2/token"),
    ("POST", "/api/v10/oauth2/token/revoke"),
    ("POST", "/api/oauth2/token/revoke"),
    ("GET", "/oauth2/authorize"),
];

impl Stand for DiscordState {
    const ROUTES: &'static [(&'static str, &'static str)] = ROUTES;

    fn control(&self) -> &Control {
        &self.control
    }

    fn reset(&self) -> Result<(), String> {
        self.limits.clear();
        self.store.reset().map_err(|e| e.to_string())
    }

    fn fault(&self, status: u16, message: &str) -> Response {
        if status == 429 {
            // An injected 429 looks like Discord's own: a body with `retry_after` and the scope header.
            let body = json!({ "message": "You are being rate limited.", "retry_after": INJECTED_RETRY_AFTER_SECS, "global": false });
            let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
            let headers = response.headers_mut();
            headers.insert("retry-after", axum::http::HeaderValue::from(INJECTED_RETRY_AFTER_SECS as u64));
            headers.insert("x-ratelimit-scope", axum::http::HeaderValue::from_static("user"));
            return response;
        }
        DiscordError::new(status, 0, message).into_response()
    }
}

pub fn router(state: Arc<DiscordState>) -> Router {
    let api = Router::new()
        .route("/api/v10/guilds/{guild_id}", get(guilds::get_guild))
        .route("/api/v10/guilds/{guild_id}/roles", get(guilds::list_roles))
        .route("/api/v10/guilds/{guild_id}/members", get(guilds::list_members))
        .route("/api/v10/guilds/{guild_id}/members/{user_id}", get(guilds::get_member).put(guilds::add_member))
        .route(
            "/api/v10/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
            put(guilds::add_role).delete(guilds::remove_role),
        )
        .route("/api/v10/users/@me", get(oauth::current_user))
        .route("/api/v10/oauth2/token", post(oauth::token))
        .route("/api/oauth2/token", post(oauth::token))
        .route("/api/v10/oauth2/token/revoke", post(oauth::revoke))
        .route("/api/oauth2/token/revoke", post(oauth::revoke))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::enforce))
        .route("/oauth2/authorize", get(oauth::authorize))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), control::faults_and_counts::<DiscordState>));
    let devstack = Router::new()
        .route("/_devstack/guilds/{guild_id}/members/{user_id}", put(guilds::test_join).delete(guilds::test_leave))
        .route("/_devstack/rate-limit", post(ratelimit::configure));
    api.merge(devstack).merge(control::routes::<DiscordState>()).fallback(not_found).with_state(state)
}

async fn not_found() -> DiscordError {
    DiscordError::new(404, 0, "404: Not Found")
}

//! Per-route buckets, keyed by route template and major parameter (the guild), each allowing `limit`
//! requests per `window_ms`. Every API response carries Discord's `X-RateLimit-*` headers; a request over
//! the limit gets 429 with `retry_after` (seconds, decimals), `Retry-After` and `X-RateLimit-Scope: user`.
//! With `"global": true` the limit is the bot's global one instead: one window for every route, and a
//! request over it gets Discord's global 429 (`"global": true`, `X-RateLimit-Global: true`,
//! `X-RateLimit-Scope: global`).

use super::{DiscordState, State};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const DEFAULT_LIMIT: u32 = 50;
pub const DEFAULT_WINDOW_MS: u64 = 1_000;

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Config {
    pub limit: u32,
    #[serde(default = "default_window")]
    pub window_ms: u64,
    /// One window for all routes, answered with global 429s.
    #[serde(default)]
    pub global: bool,
}

fn default_window() -> u64 {
    DEFAULT_WINDOW_MS
}

struct Window {
    started_ms: u64,
    used: u32,
}

pub struct Limits {
    config: Mutex<Config>,
    windows: Mutex<HashMap<String, Window>>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            config: Mutex::new(Config { limit: DEFAULT_LIMIT, window_ms: DEFAULT_WINDOW_MS, global: false }),
            windows: Mutex::new(HashMap::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Limits {
    pub fn clear(&self) {
        lock(&self.windows).clear();
        *lock(&self.config) = Config { limit: DEFAULT_LIMIT, window_ms: DEFAULT_WINDOW_MS, global: false };
    }
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// A short stable id for a route template, like Discord's opaque bucket hashes.
fn bucket_id(template: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(template.as_bytes())[..8])
}

pub async fn configure(state: State, Json(config): Json<Config>) -> Response {
    if config.limit == 0 || config.window_ms == 0 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "ok": false, "message": "limit and window_ms must be positive" })),
        )
            .into_response();
    }
    *lock(&state.limits.config) = config;
    lock(&state.limits.windows).clear();
    Json(json!({ "ok": true })).into_response()
}

pub async fn enforce(
    axum::extract::State(state): axum::extract::State<Arc<DiscordState>>,
    request: Request,
    next: Next,
) -> Response {
    let template = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let major = request
        .uri()
        .path()
        .strip_prefix("/api/v10/guilds/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let bucket = bucket_id(&template);
    let config = *lock(&state.limits.config);
    let key = if config.global { "global".to_owned() } else { format!("{} {template}:{major}", request.method()) };
    let now = now_ms();
    let (allowed, remaining, reset_at_ms) = {
        let mut windows = lock(&state.limits.windows);
        let window = windows.entry(key).or_insert(Window { started_ms: now, used: 0 });
        if now >= window.started_ms + config.window_ms {
            *window = Window { started_ms: now, used: 0 };
        }
        let allowed = window.used < config.limit;
        if allowed {
            window.used += 1;
        }
        (allowed, config.limit - window.used, window.started_ms + config.window_ms)
    };
    let reset_after = reset_at_ms.saturating_sub(now) as f64 / 1_000.0;
    let mut response = if allowed {
        next.run(request).await
    } else {
        let body =
            json!({ "message": "You are being rate limited.", "retry_after": reset_after, "global": config.global });
        let mut limited = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
        let headers = limited.headers_mut();
        headers.insert("retry-after", HeaderValue::from(reset_after.ceil() as u64));
        if config.global {
            headers.insert("x-ratelimit-global", HeaderValue::from_static("true"));
            headers.insert("x-ratelimit-scope", HeaderValue::from_static("global"));
        } else {
            headers.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
        }
        limited
    };
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(config.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    if let Ok(value) = HeaderValue::from_str(&format!("{:.3}", reset_at_ms as f64 / 1_000.0)) {
        headers.insert("x-ratelimit-reset", value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{reset_after:.3}")) {
        headers.insert("x-ratelimit-reset-after", value);
    }
    if let Ok(value) = HeaderValue::from_str(&bucket) {
        headers.insert("x-ratelimit-bucket", value);
    }
    response
}

//! Test-only control routes (no auth), on the stand-in's own port:
//! - `POST /_devstack/faults` `{"rate": 0.0-1.0, "status": 503, "paths": ["/v1/teams"], "delay_ms": 0}`: that
//!   share of `/v1` requests (only those whose path starts with one of `paths`, if given) first wait
//!   `delay_ms`, then answer `status` with an Appwrite error body; with no `status` (or 0) they go through
//!   normally after the delay (a slow server). `{"rate": 0}` clears.
//! - `POST /_devstack/reset`: every user, database, document, team and JWT is deleted (faults and counts too).
//! - `GET /_devstack/calls`: `{"METHOD /v1/route/{template}": count}`; `DELETE` zeroes the counts.

use crate::appwrite::error::ApiError;
use crate::appwrite::{AppState, ROUTES};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Faults {
    #[serde(default)]
    pub rate: f64,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub delay_ms: u64,
}

#[derive(Default)]
pub struct Control {
    faults: Mutex<Faults>,
    calls: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Control {
    fn clear(&self) {
        *lock(&self.faults) = Faults::default();
        lock(&self.calls).clear();
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/_devstack/faults", post(set_faults))
        .route("/_devstack/reset", post(reset))
        .route("/_devstack/calls", get(calls).delete(clear_calls))
}

async fn set_faults(State(state): State<Arc<AppState>>, Json(faults): Json<Faults>) -> Response {
    if !(0.0..=1.0).contains(&faults.rate) {
        return ApiError::argument("rate must be between 0 and 1").into_response();
    }
    if faults.status != 0 && !(400..=599).contains(&faults.status) {
        return ApiError::argument("status must be an HTTP error status (400-599) or 0").into_response();
    }
    *lock(&state.control.faults) = faults;
    Json(json!({ "ok": true })).into_response()
}

async fn reset(State(state): State<Arc<AppState>>) -> Response {
    state.control.clear();
    match state.store.reset() {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => ApiError::storage(e).into_response(),
    }
}

async fn calls(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!(*lock(&state.control.calls)))
}

async fn clear_calls(State(state): State<Arc<AppState>>) -> Json<Value> {
    lock(&state.control.calls).clear();
    Json(json!({ "ok": true }))
}

/// Counts every `/v1` call by its route template, then applies the configured faults.
pub async fn faults_and_counts(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let template = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    if !ROUTES.iter().any(|(m, r)| *m == method && *r == template) {
        // The router serves a route the ROUTES list (and so the conformance test) does not know.
        return ApiError::new(500, "general_server_error", format!("devstack: unlisted route {method} {template}"))
            .into_response();
    }
    *lock(&state.control.calls).entry(format!("{method} {template}")).or_insert(0) += 1;
    let faults = lock(&state.control.faults).clone();
    let path = request.uri().path().to_owned();
    let applies = faults.rate > 0.0
        && (faults.paths.is_empty() || faults.paths.iter().any(|prefix| path.starts_with(prefix.as_str())))
        && rand::random::<f64>() < faults.rate;
    if applies {
        if faults.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
        }
        if faults.status != 0 {
            return ApiError::new(faults.status, "general_server_error", "devstack: injected fault").into_response();
        }
    }
    next.run(request).await
}

//! Test-only control routes (no auth), the same on each stand-in's own port:
//! - `POST /_devstack/faults` `{"rate": 0.0-1.0, "status": 503, "paths": ["/v1/teams"], "delay_ms": 0}`: that
//!   share of API requests (only those whose path starts with one of `paths`, if given) first wait
//!   `delay_ms`, then answer `status` with the stand-in's error body; with no `status` (or 0) they go through
//!   normally after the delay (a slow server). `{"rate": 0}` clears. With `"seed": N` the draws come from a
//!   generator seeded with N (the same sequence of requests then fails the same way: chaos runs replay);
//!   without, from the thread's random source.
//! - `POST /_devstack/reset`: the stand-in's data goes back to its initial state (faults and counts too).
//! - `GET /_devstack/calls`: `{"METHOD /route/{template}": count}`; `DELETE` zeroes the counts.

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
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
    #[serde(default)]
    pub seed: Option<u64>,
}

/// What the control routes need from a stand-in.
pub trait Stand: Send + Sync + 'static {
    /// Every (method, route template) the stand-in serves; a call to any other route is refused.
    const ROUTES: &'static [(&'static str, &'static str)];
    fn control(&self) -> &Control;
    /// Back to the initial state (seeded data included).
    fn reset(&self) -> Result<(), String>;
    /// The stand-in's own error body for an injected fault.
    fn fault(&self, status: u16, message: &str) -> Response;
}

#[derive(Default)]
pub struct Control {
    faults: Mutex<Faults>,
    /// The seeded generator of the current faults (`seed` given), else `None`.
    draws: Mutex<Option<StdRng>>,
    calls: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Control {
    /// A uniform draw in [0, 1): from the seeded generator when the faults have a seed.
    fn draw(&self) -> f64 {
        match lock(&self.draws).as_mut() {
            Some(rng) => rng.random::<f64>(),
            None => rand::random::<f64>(),
        }
    }

    fn clear(&self) {
        *lock(&self.faults) = Faults::default();
        *lock(&self.draws) = None;
        lock(&self.calls).clear();
    }
}

pub fn routes<S: Stand>() -> Router<Arc<S>> {
    Router::new()
        .route("/_devstack/faults", post(set_faults::<S>))
        .route("/_devstack/reset", post(reset::<S>))
        .route("/_devstack/calls", get(calls::<S>).delete(clear_calls::<S>))
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "ok": false, "message": message }))).into_response()
}

async fn set_faults<S: Stand>(State(state): State<Arc<S>>, Json(faults): Json<Faults>) -> Response {
    if !(0.0..=1.0).contains(&faults.rate) {
        return bad_request("rate must be between 0 and 1");
    }
    if faults.status != 0 && !(400..=599).contains(&faults.status) {
        return bad_request("status must be an HTTP error status (400-599) or 0");
    }
    *lock(&state.control().draws) = faults.seed.map(StdRng::seed_from_u64);
    *lock(&state.control().faults) = faults;
    Json(json!({ "ok": true })).into_response()
}

async fn reset<S: Stand>(State(state): State<Arc<S>>) -> Response {
    state.control().clear();
    match state.reset() {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "ok": false, "message": e }))).into_response(),
    }
}

async fn calls<S: Stand>(State(state): State<Arc<S>>) -> Json<Value> {
    Json(json!(*lock(&state.control().calls)))
}

async fn clear_calls<S: Stand>(State(state): State<Arc<S>>) -> Json<Value> {
    lock(&state.control().calls).clear();
    Json(json!({ "ok": true }))
}

/// Counts every API call by its route template, then applies the configured faults.
pub async fn faults_and_counts<S: Stand>(State(state): State<Arc<S>>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let template = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    if !S::ROUTES.iter().any(|(m, r)| *m == method && *r == template) {
        // The router serves a route the ROUTES list (and so the conformance test) does not know.
        return state.fault(500, &format!("devstack: unlisted route {method} {template}"));
    }
    *lock(&state.control().calls).entry(format!("{method} {template}")).or_insert(0) += 1;
    let faults = lock(&state.control().faults).clone();
    let path = request.uri().path().to_owned();
    let applies = faults.rate > 0.0
        && (faults.paths.is_empty() || faults.paths.iter().any(|prefix| path.starts_with(prefix.as_str())))
        && state.control().draw() < faults.rate;
    if applies {
        if faults.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
        }
        if faults.status != 0 {
            return state.fault(faults.status, "devstack: injected fault");
        }
    }
    next.run(request).await
}

//! The Stripe stand-in: Stripe's API (`/v1/...`) for what Tollgate, its CLI and its tests use, on its own
//! port (`STRIPE_API_BASE` is `http://127.0.0.1:PORT`, as Stripe's own is `https://api.stripe.com`).
//!
//! It follows Stripe's documented behaviour, and shares no code with Tollgate's Stripe client (a stand-in
//! that reused the client would test nothing):
//! - Auth `Authorization: Bearer sk_test_…` ([`DEFAULT_SECRET_KEY`]; HTTP Basic with the key as user
//!   works too); none or another key → 401. `Stripe-Version` is accepted and an earlier version than
//!   [`API_VERSION`] gets the older layout (`subscription.current_period_*`, `invoice.subscription`).
//!   `Idempotency-Key` on a POST replays the first answer (`Idempotent-Replayed: true`); the same key with
//!   other parameters is a 400 `idempotency_error`.
//! - Requests are form-encoded with bracket notation ([`form`]); answers are Stripe's objects ([`objects`],
//!   their fields and types after Stripe's example objects in `testdata/stripe/fixtures.json`), lists
//!   `{"object":"list","data","has_more","url"}` with `limit` (1–100, default 10), `starting_after`,
//!   `ending_before`, `expand[]`. Errors `{"error":{"type","code","message","param"}}` with 400, 401, 402
//!   (`card_error`) and 404 (`resource_missing`).
//! - Resources: customers, products, prices, payment methods (the test tokens `pm_card_visa`,
//!   `pm_card_chargeCustomerFail`, `pm_card_createDispute`), checkout sessions, subscriptions, invoices,
//!   charges, payment intents, refunds, disputes, billing portal sessions, test clocks, webhook endpoints,
//!   events. Billing ([`billing`]) charges at once, renews and retries when a test clock ([`clocks`])
//!   passes the moment; subscriptions not under a test clock do not renew on the wall clock.
//! - Every state change emits its event, delivered signed to the webhook endpoints ([`events`]).
//!
//! Pages a buyer sees ([`checkout`]): `GET /checkout/pay/{id}` (a session's `url`: email and a test card;
//! its POST completes the session as a buyer would) and `GET /billing_portal/{id}` (a portal session's
//! `url`: change the card, cancel at period end).
//!
//! Test-only control routes (no auth), for tests and e2e:
//! - `POST /_devstack/stripe/checkout/{id}/complete` (form or JSON: `payment_method=pm_card_visa|pm_…`,
//!   optional `email`): completes a session as the hosted page does; 402 `card_error` when declined.
//! - `GET /_devstack/stripe/deliveries` (`?event=evt_…`): `{"data": [{"id", "event", "type", "endpoint",
//!   "url", "state" (held|pending|delivered|failed), "attempts": [{"at", "status", "error"}], "last_status"}]}`.
//! - `POST /_devstack/stripe/hold` `{"hold": true|false}` (while on, new deliveries are queued as `held`;
//!   turning it off sends nothing by itself); `POST /_devstack/stripe/release` `{"order": ["evt_…", …]}`
//!   (the held deliveries of those events, in that order; omit `order` for all held, oldest first);
//!   `POST /_devstack/stripe/events/{id}/redeliver` (`{"endpoint": "we_…"}` optional).
//! - `POST /_devstack/stripe/settings` `{"retry_days": [3,5,7], "after_retries": "canceled"|"unpaid",
//!   "delivery_backoff_ms": [100,300,900]}` (any subset; `GET` shows them).
//! - `POST /_devstack/stripe/reset` (also the shared `/_devstack/reset`): an empty account, settings back to
//!   their defaults; plus the shared `/_devstack/faults|calls`.

pub mod billing;
pub mod checkout;
pub mod clocks;
pub mod events;
pub mod form;
pub mod objects;
mod resources;
pub mod store;

use crate::control::{self, Control, Stand};
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use form::{ApiError, Form};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use store::{random_string, Idempotent, Store};

/// The account's test-mode secret key. A local-only development value, not a secret.
pub const DEFAULT_SECRET_KEY: &str = "sk_test_devstack_0000000000000000000000000000";
/// The account's API version: the layout of its objects and of events to endpoints that pin none.
pub const API_VERSION: &str = "2025-03-31.basil";
const MAX_BODY: usize = 1 << 20;
/// The events Tollgate's webhook worker takes at `/stripe/webhook`: what `cargo xtask dev` enables on the
/// endpoint it registers, and what tests subscribe to.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "invoice.paid",
    "invoice.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
];

pub struct StripeState {
    store: Mutex<Store>,
    secret_key: String,
    base_url: OnceLock<String>,
    http: reqwest::Client,
    pub control: Control,
}

impl StripeState {
    pub fn new(secret_key: String) -> Self {
        Self {
            store: Mutex::new(Store::default()),
            secret_key,
            base_url: OnceLock::new(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            control: Control::default(),
        }
    }

    /// Where the stand-in listens (`http://127.0.0.1:PORT`), for the `url` of checkout and portal sessions.
    pub fn set_base_url(&self, url: String) {
        let _ = self.base_url.set(url);
    }

    pub fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_else(|| "http://127.0.0.1".to_owned())
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/customers"),
    ("POST", "/v1/customers"),
    ("GET", "/v1/customers/{id}"),
    ("POST", "/v1/customers/{id}"),
    ("GET", "/v1/products"),
    ("POST", "/v1/products"),
    ("GET", "/v1/products/{id}"),
    ("GET", "/v1/prices"),
    ("POST", "/v1/prices"),
    ("GET", "/v1/prices/{id}"),
    ("GET", "/v1/payment_methods"),
    ("GET", "/v1/payment_methods/{id}"),
    ("POST", "/v1/payment_methods/{id}/attach"),
    ("POST", "/v1/payment_methods/{id}/detach"),
    ("GET", "/v1/checkout/sessions"),
    ("POST", "/v1/checkout/sessions"),
    ("GET", "/v1/checkout/sessions/{id}"),
    ("GET", "/v1/subscriptions"),
    ("POST", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions/{id}"),
    ("POST", "/v1/subscriptions/{id}"),
    ("DELETE", "/v1/subscriptions/{id}"),
    ("POST", "/v1/subscriptions/{id}/resume"),
    ("GET", "/v1/invoices"),
    ("GET", "/v1/invoices/{id}"),
    ("POST", "/v1/invoices/{id}/pay"),
    ("GET", "/v1/charges"),
    ("GET", "/v1/charges/{id}"),
    ("GET", "/v1/payment_intents/{id}"),
    ("GET", "/v1/refunds"),
    ("POST", "/v1/refunds"),
    ("GET", "/v1/refunds/{id}"),
    ("GET", "/v1/disputes"),
    ("GET", "/v1/disputes/{id}"),
    ("POST", "/v1/disputes/{id}"),
    ("POST", "/v1/disputes/{id}/close"),
    ("POST", "/v1/billing_portal/sessions"),
    ("POST", "/v1/test_helpers/test_clocks"),
    ("GET", "/v1/test_helpers/test_clocks/{id}"),
    ("POST", "/v1/test_helpers/test_clocks/{id}/advance"),
    ("GET", "/v1/webhook_endpoints"),
    ("POST", "/v1/webhook_endpoints"),
    ("GET", "/v1/webhook_endpoints/{id}"),
    ("POST", "/v1/webhook_endpoints/{id}"),
    ("DELETE", "/v1/webhook_endpoints/{id}"),
    ("GET", "/v1/events"),
    ("GET", "/v1/events/{id}"),
];

impl Stand for StripeState {
    const ROUTES: &'static [(&'static str, &'static str)] = ROUTES;

    fn control(&self) -> &Control {
        &self.control
    }

    fn reset(&self) -> Result<(), String> {
        *self.store() = Store::default();
        Ok(())
    }

    fn fault(&self, status: u16, message: &str) -> Response {
        ApiError::fault(status, message).into_response()
    }
}

pub type S = axum::extract::State<Arc<StripeState>>;
pub type Reply = Result<Json<Value>, ApiError>;

/// The request's parameters: the query string of a GET or DELETE, the form body of a POST.
pub struct Params(pub Form);

impl<St: Send + Sync> FromRequest<St> for Params {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &St) -> Result<Self, ApiError> {
        if request.method() == Method::POST {
            let bytes = to_bytes(request.into_body(), MAX_BODY).await.map_err(|_| {
                ApiError::invalid("parameter_invalid_string", "The request body could not be read.", None)
            })?;
            Form::parse(&bytes).map(Params)
        } else {
            Form::parse(request.uri().query().unwrap_or_default().as_bytes()).map(Params)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The key of `Authorization: Bearer <key>` or of HTTP Basic with the key as user name.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    if let Some(key) = value.strip_prefix("Bearer ") {
        return Some(key.trim().to_owned());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':').map(|(user, _)| user.to_owned()).unwrap_or(text))
}

async fn authenticate(state: S, request: Request, next: Next) -> Response {
    match presented_key(request.headers()) {
        None => ApiError::unauthorized(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').".to_owned(),
        )
        .into_response(),
        Some(key) if constant_time_eq(key.as_bytes(), state.secret_key.as_bytes()) => next.run(request).await,
        Some(key) => {
            let tail: String = key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            ApiError::unauthorized(format!("Invalid API Key provided: sk_test_****{tail}")).into_response()
        }
    }
}

/// `2024-06-20` or `2025-03-31.basil`.
pub fn valid_version(version: &str) -> bool {
    let bytes = version.as_bytes();
    let date = bytes.len() >= 10
        && bytes[..10].iter().enumerate().all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() });
    date && (bytes.len() == 10
        || (bytes[10] == b'.' && bytes.len() > 11 && bytes[11..].iter().all(u8::is_ascii_lowercase)))
}

async fn response_json(response: Response) -> (StatusCode, HeaderMap, Value) {
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn rebuild(status: StatusCode, mut headers: HeaderMap, body: &Value) -> Response {
    headers.remove("content-length");
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Per API request: a `Request-Id`, the `Stripe-Version` it asks for, `Idempotency-Key` replays, and the
/// deliveries its state changes queued.
async fn context(state: S, request: Request, next: Next) -> Response {
    let request_id = format!("req_{}", random_string(14));
    let version = request.headers().get("stripe-version").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(version) = version.as_deref() {
        if !valid_version(version) {
            let mut error =
                ApiError::invalid("invalid_api_version", format!("Invalid Stripe API version: {version}"), None);
            error.body["error"].as_object_mut().map(|e| e.remove("code"));
            return error.into_response();
        }
    }
    let key = (request.method() == Method::POST)
        .then(|| request.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned))
        .flatten();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        let mut error =
            ApiError::invalid("parameter_invalid_string", "The request body is too large (1 MiB at most).", None);
        error.status = StatusCode::PAYLOAD_TOO_LARGE;
        return error.into_response();
    };
    let fingerprint = format!("{} {}?{}", parts.method, parts.uri.path(), String::from_utf8_lossy(&bytes));
    if let Some(key) = &key {
        let mut store = state.store();
        match store.idempotency.get(key) {
            Some(found) if found.request != fingerprint => {
                let mut error = ApiError::invalid("idempotency_key_in_use", format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."), None);
                error.body["error"]["type"] = json!("idempotency_error");
                return error.into_response();
            }
            Some(found) if found.status == 0 => {
                let mut error = ApiError::invalid("idempotency_key_in_use", "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): '{key}'. Please try again later.".replace("{key}", key), None);
                error.status = StatusCode::CONFLICT;
                error.body["error"]["type"] = json!("idempotency_error");
                return error.into_response();
            }
            Some(found) => {
                let mut response =
                    (StatusCode::from_u16(found.status).unwrap_or(StatusCode::OK), Json(found.body.clone()))
                        .into_response();
                response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
                response
                    .headers_mut()
                    .insert("idempotency-key", HeaderValue::from_str(key).unwrap_or(HeaderValue::from_static("")));
                return response;
            }
            None => {
                store
                    .idempotency
                    .insert(key.clone(), Idempotent { request: fingerprint.clone(), status: 0, body: Value::Null });
            }
        }
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    let response = events::REQUEST.scope((request_id.clone(), key.clone()), next.run(request)).await;
    state.flush();
    let (status, mut headers, mut body) = response_json(response).await;
    if let Some(key) = &key {
        let mut store = state.store();
        // Stripe saves an idempotent result once the endpoint ran: successes and card errors, not a request
        // refused before it did anything.
        if status.is_success() || status == StatusCode::PAYMENT_REQUIRED {
            store
                .idempotency
                .insert(key.clone(), Idempotent { request: fingerprint, status: status.as_u16(), body: body.clone() });
        } else {
            store.idempotency.remove(key);
        }
        if let Ok(value) = HeaderValue::from_str(key) {
            headers.insert("idempotency-key", value);
        }
    }
    if version.as_deref().is_some_and(objects::is_legacy) {
        objects::legacy_tree(&mut body);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("request-id", value);
    }
    headers.insert(
        "stripe-version",
        HeaderValue::from_str(version.as_deref().unwrap_or(API_VERSION))
            .unwrap_or(HeaderValue::from_static(API_VERSION)),
    );
    rebuild(status, headers, &body)
}

async fn unknown_route(request: Request) -> Response {
    ApiError::not_found_route(request.method().as_str(), request.uri().path()).into_response()
}

pub fn router(state: Arc<StripeState>) -> Router {
    let api = resources::routes()
        .merge(clocks::routes())
        .merge(checkout::api_routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), context))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), control::faults_and_counts::<StripeState>));
    let devstack = Router::new()
        .route("/_devstack/stripe/deliveries", get(deliveries))
        .route("/_devstack/stripe/hold", post(hold))
        .route("/_devstack/stripe/release", post(release))
        .route("/_devstack/stripe/events/{id}/redeliver", post(redeliver))
        .route("/_devstack/stripe/settings", get(get_settings).post(set_settings))
        .route("/_devstack/stripe/reset", post(reset));
    api.merge(checkout::page_routes())
        .merge(devstack)
        .merge(control::routes::<StripeState>())
        .fallback(unknown_route)
        .with_state(state)
}

async fn reset(state: S) -> Json<Value> {
    *state.store() = Store::default();
    Json(json!({ "ok": true }))
}

fn control_error(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "ok": false, "message": message }))).into_response()
}

#[derive(serde::Deserialize, Default)]
struct DeliveryFilter {
    event: Option<String>,
}

async fn deliveries(state: S, axum::extract::Query(filter): axum::extract::Query<DeliveryFilter>) -> Json<Value> {
    let store = state.store();
    let data: Vec<Value> = store
        .deliveries
        .iter()
        .filter(|d| filter.event.as_ref().is_none_or(|e| *e == d.event))
        .map(|d| {
            let mut row = json!(d);
            row["last_status"] = json!(d.attempts.last().and_then(|a| a.status));
            row
        })
        .collect();
    Json(json!({ "data": data }))
}

#[derive(serde::Deserialize)]
struct Hold {
    hold: bool,
}

async fn hold(state: S, Json(hold): Json<Hold>) -> Json<Value> {
    state.store().hold = hold.hold;
    Json(json!({ "ok": true, "hold": hold.hold }))
}

#[derive(serde::Deserialize, Default)]
struct Release {
    order: Option<Vec<String>>,
}

async fn release(state: S, body: Bytes) -> Response {
    let release: Release = if body.is_empty() {
        Release::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(release) => release,
            Err(e) => return control_error(&format!("expected {{\"order\": [\"evt_…\"]}}: {e}")),
        }
    };
    if let Some(order) = &release.order {
        let store = state.store();
        if let Some(unknown) =
            order.iter().find(|e| !store.deliveries.iter().any(|d| d.event == **e && d.state == "held"))
        {
            return control_error(&format!("no held delivery of {unknown}"));
        }
    }
    let released = state.release(release.order);
    Json(json!({ "ok": true, "released": released })).into_response()
}

#[derive(serde::Deserialize, Default)]
struct Redeliver {
    endpoint: Option<String>,
}

async fn redeliver(state: S, axum::extract::Path(id): axum::extract::Path<String>, body: Bytes) -> Response {
    let target: Redeliver = serde_json::from_slice(&body).unwrap_or_default();
    let queued = {
        let mut store = state.store();
        if !store.objects.get(&id).is_some_and(|e| e["object"] == "event") {
            return (StatusCode::NOT_FOUND, Json(json!({ "ok": false, "message": format!("no event {id}") })))
                .into_response();
        }
        let queued = store.redeliver(&id, target.endpoint.as_deref());
        store.outbox.retain(|d| !queued.contains(d));
        queued
    };
    state.send(queued.clone());
    Json(json!({ "ok": true, "deliveries": queued })).into_response()
}

async fn get_settings(state: S) -> Json<Value> {
    Json(json!(state.store().settings))
}

async fn set_settings(state: S, Json(change): Json<Value>) -> Response {
    let mut store = state.store();
    let mut merged = json!(store.settings);
    if let (Some(target), Some(change)) = (merged.as_object_mut(), change.as_object()) {
        for (k, v) in change {
            if !target.contains_key(k) {
                return control_error(&format!("unknown setting {k}"));
            }
            target.insert(k.clone(), v.clone());
        }
    }
    match serde_json::from_value::<store::Settings>(merged) {
        Ok(settings)
            if matches!(settings.after_retries.as_str(), "canceled" | "unpaid")
                && settings.retry_days.iter().all(|d| *d > 0) =>
        {
            store.settings = settings;
            Json(json!(store.settings)).into_response()
        }
        Ok(_) => control_error("after_retries must be canceled or unpaid, retry_days positive"),
        Err(e) => control_error(&e.to_string()),
    }
}

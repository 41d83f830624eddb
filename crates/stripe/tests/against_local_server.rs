//! The client against a small HTTP server written here that answers as Stripe's API documents: it checks the
//! headers, decodes the form bodies, pages lists and answers Stripe's error objects.

use axum::body::Body;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tollgate_core::Secret;
use tollgate_stripe::{CheckoutRequest, Proration, StripeApi, StripeConfig, StripeError, STRIPE_VERSION};

const KEY: &str = "sk_test_local_51secret";

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    /// The query's pairs for a GET, the form body's for a POST, decoded.
    form: Vec<(String, String)>,
    idempotency_key: Option<String>,
}

#[derive(Default)]
struct Server {
    seen: Mutex<Vec<Seen>>,
}

type Shared = Arc<Server>;

fn stripe_error(status: StatusCode, code: Option<&str>, message: &str, param: Option<&str>) -> Response {
    let error = json!({"type": "invalid_request_error", "code": code, "message": message, "param": param});
    (status, Json(json!({ "error": error }))).into_response()
}

fn missing(what: &str, id: &str) -> Response {
    stripe_error(StatusCode::NOT_FOUND, Some("resource_missing"), &format!("No such {what}: '{id}'"), Some("id"))
}

/// Stripe's checks on every request (the secret key, the pinned version), then the request is recorded as
/// decoded pairs and handed on with its body.
async fn gate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let auth = header("authorization").unwrap_or_default();
    if auth != format!("Bearer {KEY}") {
        let shown = auth.trim_start_matches("Bearer ");
        let masked = format!("{}****{}", &shown[..shown.len().min(8)], &shown[shown.len().saturating_sub(4)..]);
        let message = format!("Invalid API Key provided: {masked}");
        return stripe_error(StatusCode::UNAUTHORIZED, None, &message, None);
    }
    if header("stripe-version").as_deref() != Some(STRIPE_VERSION) {
        return stripe_error(StatusCode::BAD_REQUEST, None, "bad version", None);
    }
    let idempotency_key = header("idempotency-key");
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let encoded = if parts.method == Method::GET { parts.uri.query().unwrap_or_default().as_bytes() } else { &bytes };
    let form = url::form_urlencoded::parse(encoded).into_owned().collect();
    let seen = Seen { method: parts.method.clone(), path: parts.uri.path().to_owned(), form, idempotency_key };
    state.seen.lock().unwrap().push(seen);
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

fn subscription(id: &str, price: &str, cancel: bool) -> Value {
    json!({
        "id": id, "object": "subscription", "customer": "cus_1", "status": "active",
        "cancel_at_period_end": cancel,
        "items": {"object": "list", "has_more": false, "data": [
            {"id": "si_1", "object": "subscription_item", "price": {"id": price, "object": "price"},
             "current_period_end": 1_800_000_000}
        ]}
    })
}

/// A list page of `all` after `starting_after`, `min(limit, 2)` long, so every listing needs several pages.
fn page(all: Vec<Value>, query: &HashMap<String, String>) -> Response {
    let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
    let start = match query.get("starting_after") {
        Some(after) => match all.iter().position(|o| o["id"] == after.as_str()) {
            Some(at) => at + 1,
            None => return missing("object", after),
        },
        None => 0,
    };
    let size = limit.min(2);
    let data: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
    let has_more = start + size < all.len();
    Json(json!({"object": "list", "url": "/v1/x", "has_more": has_more, "data": data})).into_response()
}

async fn customers(Query(query): Query<HashMap<String, String>>) -> Response {
    let email = query.get("email").cloned().unwrap_or_default();
    let all = (1..=5)
        .map(|n| {
            let address = if n == 4 { "other@example.com".to_owned() } else { email.clone() };
            json!({"id": format!("cus_{n}"), "object": "customer", "email": address})
        })
        .filter(|c| c["email"] == email.as_str())
        .collect();
    page(all, &query)
}

async fn customer(Path(id): Path<String>) -> Response {
    match id.as_str() {
        "cus_busy" => stripe_error(StatusCode::TOO_MANY_REQUESTS, Some("rate_limit"), "Too many requests", None),
        "cus_broken" => (StatusCode::INTERNAL_SERVER_ERROR, "<html>oops</html>").into_response(),
        "cus_gone" => Json(json!({"id": "cus_gone", "object": "customer", "deleted": true})).into_response(),
        "cus_1" => Json(json!({"id": "cus_1", "object": "customer", "email": "buyer@example.com"})).into_response(),
        _ => missing("customer", &id),
    }
}

async fn subscriptions(Query(query): Query<HashMap<String, String>>) -> Response {
    if query.get("status").map(String::as_str) != Some("all") {
        return Json(json!({"object": "list", "has_more": false, "data": []})).into_response();
    }
    let all = ["sub_a", "sub_b", "sub_c"].iter().map(|id| subscription(id, "price_basic", false)).collect();
    page(all, &query)
}

async fn get_subscription(Path(id): Path<String>) -> Response {
    if id == "sub_1" {
        return Json(subscription("sub_1", "price_basic", false)).into_response();
    }
    missing("subscription", &id)
}

async fn update_subscription(Path(id): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Response {
    let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    if field("items[0][price]").as_deref() == Some("price_missing") {
        let message = "No such price: 'price_missing'";
        return stripe_error(StatusCode::BAD_REQUEST, Some("resource_missing"), message, Some("items[0][price]"));
    }
    let price = field("items[0][price]").unwrap_or_else(|| "price_basic".to_owned());
    Json(subscription(&id, &price, field("cancel_at_period_end").as_deref() == Some("true"))).into_response()
}

async fn create_session(uri: Uri, Form(_form): Form<Vec<(String, String)>>) -> Response {
    let kind = if uri.path().starts_with("/v1/checkout") { "checkout.session" } else { "billing_portal.session" };
    Json(json!({"id": "cs_test_1", "object": kind, "url": "https://checkout.example/c/pay/cs_test_1"})).into_response()
}

async fn webhook_endpoints(Query(query): Query<HashMap<String, String>>) -> Response {
    let endpoint = |id: &str, url: &str, status: &str, events: &[&str]| json!({"id": id, "object": "webhook_endpoint", "url": url, "status": status, "enabled_events": events});
    let all = vec![
        endpoint("we_1", "https://webhooks.example.com/stripe/webhook", "enabled", &["*"]),
        endpoint("we_2", "https://other.example.com/hook", "disabled", &["invoice.paid"]),
        endpoint("we_3", "https://x.example.com/", "enabled", &["charge.refunded"]),
    ];
    page(all, &query)
}

async fn start() -> (String, Shared) {
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/v1/customers", get(customers))
        .route("/v1/customers/{id}", get(customer))
        .route("/v1/subscriptions", get(subscriptions))
        .route("/v1/subscriptions/{id}", get(get_subscription).post(update_subscription))
        .route("/v1/checkout/sessions", post(create_session))
        .route("/v1/billing_portal/sessions", post(create_session))
        .route("/v1/webhook_endpoints", get(webhook_endpoints))
        .layer(middleware::from_fn_with_state(state.clone(), gate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

fn assert_sent(seen: &Seen, pairs: &[(&str, &str)]) {
    for (name, value) in pairs {
        let pair = (name.to_string(), value.to_string());
        assert!(seen.form.contains(&pair), "{pair:?} in {:?}", seen.form);
    }
}

fn api(base: &str, key: &str) -> StripeApi {
    StripeApi::new(StripeConfig { api_base: format!("{base}/"), api_key: Secret::new(key) }).unwrap()
}

#[tokio::test]
async fn reads_objects_and_pages_through_lists() {
    let (base, state) = start().await;
    let stripe = api(&base, KEY);
    let subscription = stripe.retrieve_subscription("sub_1").await.unwrap();
    assert_eq!((subscription.status.as_str(), subscription.customer.as_str()), ("active", "cus_1"));
    assert_eq!(subscription.items[0].id, "si_1");
    assert_eq!(subscription.current_period_end, Some(1_800_000_000));
    assert_eq!(subscription.raw["object"], "subscription");
    assert_eq!(stripe.retrieve_customer("cus_1").await.unwrap().email.as_deref(), Some("buyer@example.com"));
    assert!(stripe.retrieve_customer("cus_gone").await.unwrap().deleted);

    let found = stripe.list_customers_by_email("a+b@example.com").await.unwrap();
    let ids: Vec<_> = found.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["cus_1", "cus_2", "cus_3", "cus_5"], "every page, in order");
    let subscriptions = stripe.list_subscriptions("cus_1").await.unwrap();
    assert_eq!(subscriptions.len(), 3);
    let endpoints = stripe.list_webhook_endpoints().await.unwrap();
    assert_eq!(endpoints.len(), 3);
    assert_eq!(endpoints[0].enabled_events, ["*"]);

    let seen = state.seen.lock().unwrap().clone();
    let customer_calls: Vec<_> = seen.iter().filter(|s| s.path == "/v1/customers").collect();
    assert_eq!(customer_calls.len(), 2, "two pages of two, then the last one");
    let listing = seen.iter().find(|s| s.path == "/v1/subscriptions").unwrap();
    assert_sent(listing, &[("customer", "cus_1"), ("status", "all")]);
}

#[tokio::test]
async fn posts_form_bodies_with_bracket_names_and_idempotency_keys() {
    let (base, state) = start().await;
    let stripe = api(&base, KEY);
    let request = CheckoutRequest {
        price: "price_vip".into(),
        client_reference_id: "user-1".into(),
        customer: None,
        customer_email: Some("buyer+1@example.com".into()),
        success_url: "https://app.example/billing?checkout=success".into(),
        cancel_url: "https://app.example/billing?checkout=cancel".into(),
        metadata: vec![("user_id".into(), "user-1".into())],
    };
    let session = stripe.create_checkout_session(&request, Some("idem-checkout-1")).await.unwrap();
    assert_eq!(session.url, "https://checkout.example/c/pay/cs_test_1");
    let changed = stripe
        .update_subscription_price("sub_1", "si_1", "price_vip", Proration::CreateProrations, Some("idem-2"))
        .await
        .unwrap();
    assert_eq!(changed.items[0].price_id, "price_vip");
    assert!(stripe.set_cancel_at_period_end("sub_1", true, None).await.unwrap().cancel_at_period_end);
    let portal = stripe.create_billing_portal_session("cus_1", "https://app.example/billing", None).await.unwrap();
    assert!(portal.url.starts_with("https://"));

    let seen = state.seen.lock().unwrap().clone();
    let checkout = seen.iter().find(|s| s.path == "/v1/checkout/sessions").unwrap();
    assert_eq!(checkout.method, Method::POST);
    assert_eq!(checkout.idempotency_key.as_deref(), Some("idem-checkout-1"));
    assert_sent(
        checkout,
        &[
            ("mode", "subscription"),
            ("line_items[0][price]", "price_vip"),
            ("line_items[0][quantity]", "1"),
            ("client_reference_id", "user-1"),
            ("customer_email", "buyer+1@example.com"),
            ("success_url", "https://app.example/billing?checkout=success"),
            ("metadata[user_id]", "user-1"),
            ("subscription_data[metadata][user_id]", "user-1"),
        ],
    );
    assert!(!checkout.form.iter().any(|(n, _)| n == "customer"));
    let update = seen.iter().find(|s| s.path == "/v1/subscriptions/sub_1" && s.idempotency_key.is_some()).unwrap();
    assert_eq!(update.idempotency_key.as_deref(), Some("idem-2"));
    assert_sent(
        update,
        &[("items[0][id]", "si_1"), ("items[0][price]", "price_vip"), ("proration_behavior", "create_prorations")],
    );
    let portal = seen.iter().find(|s| s.path == "/v1/billing_portal/sessions").unwrap();
    assert_sent(portal, &[("customer", "cus_1"), ("return_url", "https://app.example/billing")]);
}

#[tokio::test]
async fn stripe_errors_are_typed_and_never_show_the_key() {
    let (base, _) = start().await;
    let stripe = api(&base, KEY);
    match stripe.retrieve_subscription("sub_nope").await.unwrap_err() {
        error @ StripeError::Api { .. } => {
            assert!(error.is_missing() && !error.is_retryable());
            let StripeError::Api { status, kind, code, param, .. } = error else { unreachable!() };
            assert_eq!(
                (status, kind.as_str(), code.as_deref(), param.as_deref()),
                (404, "invalid_request_error", Some("resource_missing"), Some("id"))
            );
        }
        other => panic!("{other:?}"),
    }
    let bad_price =
        stripe.update_subscription_price("sub_1", "si_1", "price_missing", Proration::None, None).await.unwrap_err();
    assert!(matches!(&bad_price, StripeError::Api { status: 400, param: Some(p), .. } if p == "items[0][price]"));
    let busy = stripe.retrieve_customer("cus_busy").await.unwrap_err();
    assert!(busy.is_retryable() && busy.status() == Some(429));
    let broken = stripe.retrieve_customer("cus_broken").await.unwrap_err();
    assert!(broken.is_retryable() && broken.status() == Some(500));

    assert_eq!(stripe.check_key().await, Ok(()));
    assert!(api(&base, "sk_test_wrong_key_0000").check_key().await.unwrap_err().is_refused_key());
    let wrong = api(&base, "sk_test_wrong_key_0000").retrieve_customer("cus_1").await.unwrap_err();
    assert!(wrong.is_refused_key());
    let shown = format!("{wrong} {wrong:?}");
    assert!(!shown.contains("sk_test_wrong") && !shown.contains("0000"), "{shown}");

    let closed = StripeApi::new(StripeConfig { api_base: "http://127.0.0.1:1".into(), api_key: Secret::new(KEY) })
        .unwrap()
        .retrieve_customer("cus_1")
        .await
        .unwrap_err();
    assert!(matches!(closed, StripeError::Transport(_)) && closed.is_retryable());
    assert!(!format!("{closed:?}").contains(KEY));
}

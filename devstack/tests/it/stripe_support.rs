//! For the Stripe stand-in's tests: a form-encoding client that keeps every object it got back, a local
//! webhook receiver that records deliveries (and can fail some), signature checking done here, independently
//! of the stand-in, and the check of an object against Stripe's example object of its type.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{KeyInit, Mac};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_devstack::{DevstackConfig, RunningDevstack};

pub struct Stripe {
    pub devstack: RunningDevstack,
    pub http: reqwest::Client,
    pub key: String,
    /// Every JSON body a `/v1` call answered with (2xx), for the conformance check.
    pub seen: Mutex<Vec<Value>>,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

pub async fn stripe() -> Stripe {
    let devstack = tollgate_devstack::start(DevstackConfig::for_tests()).await.expect("devstack starts");
    let key = devstack.stripe_secret_key().to_owned();
    Stripe {
        devstack,
        http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        key,
        seen: Mutex::new(Vec::new()),
    }
}

impl Stripe {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.devstack.stripe_base_url())
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the stand-in answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) && body.is_object() {
            self.seen.lock().unwrap().push(body.clone());
        }
        Answer { status, body, headers }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, params: &[(&str, &str)]) -> Answer {
        let mut request = self.http.request(method.clone(), self.url(path)).bearer_auth(&self.key);
        request = if method == reqwest::Method::POST {
            request.header("content-type", "application/x-www-form-urlencoded").body(encode(params))
        } else {
            request.query(params)
        };
        self.send(request).await
    }

    /// A POST that must succeed: its object.
    pub async fn post(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let answer = self.call(reqwest::Method::POST, path, params).await;
        assert_eq!(answer.status, 200, "POST {path} {params:?}: {}", answer.body);
        answer.body
    }

    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let answer = self.call(reqwest::Method::GET, path, params).await;
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        answer.body
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(self.url(path)).json(&body).send().await.expect("control route");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    pub async fn deliveries(&self) -> Vec<Value> {
        let body: Value =
            self.http.get(self.url("/_devstack/stripe/deliveries")).send().await.unwrap().json().await.unwrap();
        body["data"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until no delivery is `pending`.
    pub async fn settled(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let deliveries = self.deliveries().await;
            if deliveries.iter().all(|d| d["state"] != "pending") {
                return deliveries;
            }
            assert!(Instant::now() < deadline, "deliveries still pending: {deliveries:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A product and a monthly price of it in usd: the price id.
pub async fn monthly_price(stripe: &Stripe, name: &str, cents: &str) -> String {
    let product = stripe.post("/v1/products", &[("name", name)]).await;
    let params = [
        ("product", id(&product)),
        ("currency", "usd".into()),
        ("unit_amount", cents.into()),
        ("recurring[interval]", "month".into()),
    ];
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    id(&stripe.post("/v1/prices", &params).await)
}

pub fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("an id in {value}")).to_owned()
}

pub fn encode(params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

/// One received delivery: the `Stripe-Signature` header and the raw body.
#[derive(Clone, Debug)]
pub struct Received {
    pub signature: String,
    pub body: String,
}

impl Received {
    pub fn event(&self) -> Value {
        serde_json::from_str(&self.body).expect("a delivery is JSON")
    }
}

#[derive(Default)]
pub struct Receiver {
    pub received: Mutex<Vec<(String, Received)>>,
    /// Answer 500 to this many of the next requests.
    pub fail_next: AtomicUsize,
}

/// A webhook receiver on 127.0.0.1: every POST to any `/{name}` path is recorded under that name.
pub async fn receiver() -> (Arc<Receiver>, String) {
    let state = Arc::new(Receiver::default());
    let app = axum::Router::new().route(
        "/{name}",
        post(
            |axum::extract::State(state): axum::extract::State<Arc<Receiver>>,
             axum::extract::Path(name): axum::extract::Path<String>,
             headers: HeaderMap,
             body: Bytes| async move {
                let signature =
                    headers.get("stripe-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let failing =
                    state.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                state
                    .received
                    .lock()
                    .unwrap()
                    .push((name, Received { signature, body: String::from_utf8_lossy(&body).into_owned() }));
                if failing {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = app.with_state(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (state, url)
}

/// Checks `Stripe-Signature` as Stripe's libraries do: HMAC-SHA256 over `"{t}.{body}"` keyed with the whole
/// `whsec_…` string, any `v1` matching.
pub fn signed_by(received: &Received, secret: &str) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in received.signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1.push(value.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    v1.contains(&expected)
}

// ---- conformance

/// Stripe's example objects of the resources the stand-in serves (`testdata/stripe/fixtures.json`).
pub fn fixtures() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/stripe/fixtures.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixtures")).expect("fixtures are JSON")
}

/// Fields Stripe's API reference documents as nullable whose example object shows a value (the example
/// shows one state only). A `null` from the stand-in is accepted there, nowhere else.
#[rustfmt::skip]
pub const NULLABLE: &[(&str, &str)] = &[
    ("billing_portal.session", "flow"),
    ("charge", "balance_transaction"), ("charge", "billing_details.name"), ("charge", "shipping"), ("charge", "transfer_data"),
    ("checkout.session", "automatic_tax.liability"), ("checkout.session", "cancel_url"), ("checkout.session", "customer_details"),
    ("checkout.session", "payment_intent"), ("checkout.session", "url"),
    ("customer", "address"), ("customer", "currency"), ("customer", "discount"), ("customer", "invoice_settings.rendering_options"),
    ("customer", "shipping"),
    ("invoice", "automatic_tax.liability"), ("invoice", "customer_address"), ("invoice", "customer_shipping"), ("invoice", "due_date"),
    ("invoice", "from_invoice"), ("invoice", "last_finalization_error"), ("invoice", "lines.data[].parent.invoice_item_details"),
    ("invoice", "next_payment_attempt"), ("invoice", "parent.quote_details"), ("invoice", "rendering"), ("invoice", "shipping_cost"),
    ("invoice", "shipping_details"),
    ("payment_intent", "automatic_payment_methods"), ("payment_intent", "canceled_at"), ("payment_intent", "last_payment_error"),
    ("payment_intent", "next_action"), ("payment_intent", "payment_method_configuration_details"), ("payment_intent", "processing"),
    ("payment_intent", "shipping"), ("payment_intent", "transfer_data"),
    ("payment_method", "billing_details.address.city"), ("payment_method", "billing_details.address.country"),
    ("payment_method", "billing_details.address.line1"), ("payment_method", "billing_details.address.postal_code"),
    ("payment_method", "billing_details.address.state"), ("payment_method", "billing_details.email"), ("payment_method", "billing_details.phone"),
    ("price", "custom_unit_amount"), ("price", "recurring"), ("price", "transform_quantity"),
    ("product", "default_price"), ("product", "description"), ("product", "package_dimensions"),
    ("subscription", "automatic_tax.liability"), ("subscription", "billing_cycle_anchor_config"), ("subscription", "cancel_at"),
    ("subscription", "canceled_at"), ("subscription", "ended_at"), ("subscription", "next_pending_invoice_item_invoice"),
    ("subscription", "pause_collection"), ("subscription", "pending_invoice_item_interval"), ("subscription", "pending_update"),
    ("subscription", "transfer_data"), ("subscription", "trial_end"), ("subscription", "trial_start"),
    ("webhook_endpoint", "description"),
];

/// Fields Stripe documents that its example objects lack: the `secret` of a webhook endpoint (only in the
/// answer to its creation), an event's `data.previous_attributes`, and the card error on a payment intent.
pub const NOT_IN_EXAMPLES: &[(&str, &str)] = &[
    ("webhook_endpoint", "secret"),
    ("payment_intent", "last_payment_error.charge"),
    ("payment_intent", "last_payment_error.code"),
    ("payment_intent", "last_payment_error.decline_code"),
    ("payment_intent", "last_payment_error.message"),
];

/// Every place in `value` (any object the stand-in returned, or an event) that does not match the example
/// object of its type: a field the example lacks, or a JSON type other than the example's.
pub fn mismatches(value: &Value, fixtures: &Value) -> Vec<String> {
    let mut found = Vec::new();
    check_object(value, fixtures, &mut found, "");
    found
}

fn fixture_of<'a>(value: &Value, fixtures: &'a Value) -> Option<&'a Value> {
    let object = value["object"].as_str()?;
    let key = if value["deleted"] == true { format!("deleted_{object}") } else { object.to_owned() };
    fixtures["resources"].get(&key)
}

fn check_object(value: &Value, fixtures: &Value, found: &mut Vec<String>, at: &str) {
    let object = value["object"].as_str().unwrap_or_default();
    if object == "list" {
        for (n, item) in value["data"].as_array().into_iter().flatten().enumerate() {
            check_object(item, fixtures, found, &format!("{at}data[{n}]."));
        }
        for (field, kind) in [("has_more", value["has_more"].is_boolean()), ("url", value["url"].is_string())] {
            if !kind {
                found.push(format!("{at}{field}: a list's {field} has the wrong type"));
            }
        }
        return;
    }
    let Some(fixture) = fixture_of(value, fixtures) else {
        found.push(format!("{at}: no example object for `{object}`"));
        return;
    };
    let check = Check { object, fixtures };
    if object == "event" {
        let mut rest = value.clone();
        let data = rest.as_object_mut().and_then(|m| m.remove("data")).unwrap_or(Value::Null);
        check.fields(&rest, fixture, "", found, at);
        check_object(&data["object"], fixtures, found, &format!("{at}data.object."));
        if let Some(previous) = data.get("previous_attributes") {
            let inner = fixture_of(&data["object"], fixtures).cloned().unwrap_or(Value::Null);
            let kind = data["object"]["object"].as_str().unwrap_or_default();
            Check { object: kind, fixtures }.fields(
                previous,
                &inner,
                "",
                found,
                &format!("{at}data.previous_attributes."),
            );
        }
        return;
    }
    check.fields(value, fixture, "", found, at);
}

/// Fields of one object of type `object`; `rel` is the path inside it (`invoice_settings.`).
struct Check<'a> {
    object: &'a str,
    fixtures: &'a Value,
}

impl Check<'_> {
    fn fields(&self, value: &Value, fixture: &Value, rel: &str, found: &mut Vec<String>, at: &str) {
        let Some(fields) = value.as_object() else { return };
        if rel.ends_with("metadata.") {
            // The merchant's own keys: only their values' type is Stripe's (strings).
            if let Some(bad) = fields.iter().find(|(_, v)| !v.is_string()) {
                found.push(format!("{at}{}: metadata values are strings", bad.0));
            }
            return;
        }
        for (field, got) in fields {
            let path = format!("{rel}{field}");
            match fixture.get(field) {
                None if NOT_IN_EXAMPLES.contains(&(self.object, path.as_str())) => {}
                None => found.push(format!("{at}{field}: `{path}` is not a field of Stripe's `{}`", self.object)),
                Some(expected) => self.value(got, expected, &path, found, &format!("{at}{field}")),
            }
        }
    }

    fn value(&self, got: &Value, expected: &Value, path: &str, found: &mut Vec<String>, here: &str) {
        let object = self.object;
        match (got, expected) {
            (_, Value::Null) => {}
            (Value::Null, _) => {
                if !NULLABLE.contains(&(object, path)) {
                    found.push(format!("{here}: null where Stripe's `{object}` shows {expected} at `{path}`"));
                }
            }
            // An expanded field or a nested object of another type: checked against its own example.
            (Value::Object(inner), _)
                if inner
                    .get("object")
                    .and_then(Value::as_str)
                    .is_some_and(|o| expected.get("object").and_then(Value::as_str) != Some(o)) =>
            {
                check_object(got, self.fixtures, found, &format!("{here}."));
            }
            (Value::Object(inner), Value::Object(_)) => {
                if inner.contains_key("object") && fixture_of(got, self.fixtures).is_some() {
                    check_object(got, self.fixtures, found, &format!("{here}."));
                } else {
                    self.fields(got, expected, &format!("{path}."), found, &format!("{here}."));
                }
            }
            (Value::Array(items), Value::Array(examples)) => {
                if let Some(example) = examples.first() {
                    for item in items {
                        self.value(item, example, &format!("{path}[]"), found, &format!("{here}[]"));
                    }
                }
            }
            (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) => {}
            (Value::Number(a), Value::Number(b)) if a.is_i64() == b.is_i64() || b.is_f64() => {}
            _ => found.push(format!("{here}: {got} where Stripe's `{object}` shows {expected} at `{path}`")),
        }
    }
}

//! Stripe deliveries built from Stripe's own example objects (`testdata/stripe/events/fixture_objects.json`)
//! with the fields a test is about set on them, signed and verified as the webhook worker does.

use crate::start_time;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tollgate_core::Secret;
use tollgate_providers::{Headers, VerifiedEvent};

pub const STRIPE_SECRET: &str = "whsec_app_test";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/stripe/events/fixture_objects.json");

pub fn fixture(resource: &str) -> Value {
    let all: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURES).expect("fixtures")).expect("json");
    all[resource].clone()
}

pub fn secs(at: DateTime<Utc>) -> i64 {
    at.timestamp()
}

/// A delivery of Stripe's example event carrying `object`, signed and verified as the worker does.
pub fn event(id: &str, kind: &str, created: DateTime<Utc>, object: Value) -> VerifiedEvent {
    let mut event = fixture("event");
    event["id"] = json!(id);
    event["type"] = json!(kind);
    event["created"] = json!(secs(created));
    event["api_version"] = json!("2025-03-31.basil");
    event["data"]["object"] = object;
    let body = event.to_string();
    let t = secs(start_time());
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()).expect("key");
    mac.update(format!("{t}.{body}").as_bytes());
    let header = format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()));
    let headers = Headers::from_pairs(vec![("Stripe-Signature".to_owned(), header)]);
    tollgate_providers::stripe::verify(body.as_bytes(), &headers, &Secret::new(STRIPE_SECRET), start_time())
        .expect("verified")
}

/// A basil subscription object.
pub fn subscription(
    id: &str,
    customer: &str,
    status: &str,
    price: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Value {
    let mut sub = fixture("subscription");
    sub["id"] = json!(id);
    sub["customer"] = json!(customer);
    sub["status"] = json!(status);
    let item = &mut sub["items"]["data"][0];
    item["price"]["id"] = json!(price);
    item["subscription"] = json!(id);
    item["current_period_start"] = json!(secs(start));
    item["current_period_end"] = json!(secs(end));
    sub
}

pub fn checkout(session: &str, subscription: &str, customer: &str, reference: Option<&str>, email: &str) -> Value {
    let mut cs = fixture("checkout.session");
    cs["id"] = json!(session);
    cs["mode"] = json!("subscription");
    cs["payment_status"] = json!("paid");
    cs["status"] = json!("complete");
    cs["subscription"] = json!(subscription);
    cs["customer"] = json!(customer);
    cs["client_reference_id"] = json!(reference);
    cs["customer_details"]["email"] = json!(email);
    cs
}

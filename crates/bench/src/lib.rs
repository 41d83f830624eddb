//! # tollgate-bench
//!
//! The CPU a webhook delivery costs before and between its Appwrite calls: signature verification, payload
//! parsing and the pure decisions, per provider (Sell.app's legacy hex `signature`, Sell.app with Standard
//! Webhooks headers, Stripe) at 1, 10 and 100 KB bodies. One set of workloads ([`Workload`]) serves both
//! measurements of `cargo xtask bench`: criterion natively (`benches/webhook.rs`) and this crate compiled to
//! wasm and run in node's V8, the engine family of workerd ([`wasm`], `node/run.mjs`). Issue 12's budget is
//! 1 ms of wasm CPU per webhook at 10 KB.
//!
//! [`Workload::run`] calls the functions the webhook worker calls, in its order (`workers/webhook`,
//! `crates/app/src/ingest_webhook.rs`, `crates/app/src/stripe_ingest.rs`): the provider's `verify`, the
//! provider's `interpret`, the claim document the inbox writes before any side effect (`payload_hash`,
//! `body_text`, its JSON encoding, which carries the whole body), then the decision once the reads are
//! answered (the plan of the purchase, the ledger event, `apply_event` on a new entitlement). What it leaves
//! out is I/O and the async shell around it: the profile of a whole delivery in workerd
//! (`cargo xtask bench --profile`) measures those.
//!
//! Bodies are realistic payloads padded in a field the parser reads past (a product description, Stripe
//! `metadata`), so the padding costs what real bulk costs: JSON parsing, hashing, the HMAC and the claim's
//! encoding of the body.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeSet;
use tollgate_app::ledger::{sellapp_order_source, stripe_subscription_source};
use tollgate_app::records::{body_text, fit, timestamp, EVENT_PROCESSING};
use tollgate_app::schema::{NAME_SIZE, SHORT_TEXT_SIZE};
use tollgate_core::stripe::{ledger_event, webhook_cell, StripeWebhook};
use tollgate_core::{apply_event, payload_hash, plan_for_purchase, plan_for_stripe_price, Entitlement, Grant};
use tollgate_core::{LedgerEvent, PlanOffer, Secret};
use tollgate_providers::sellapp_payload::SellappAction;
use tollgate_providers::stripe_payload::StripeAction;
use tollgate_providers::{sellapp, stripe, Headers, VerifiedEvent};

#[cfg(target_arch = "wasm32")]
pub mod wasm;

/// The three ways a delivery is signed, each a different verifier and parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sell.app today: `signature`, the hex HMAC-SHA256 of the body.
    SellappHex,
    /// Sell.app with `webhook-id` / `webhook-timestamp` / `webhook-signature` (a `whsec_` secret).
    SellappStandard,
    /// Stripe's `Stripe-Signature`, a `customer.subscription.updated` event.
    Stripe,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::SellappHex, Kind::SellappStandard, Kind::Stripe];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SellappHex => "sellapp-hex",
            Kind::SellappStandard => "sellapp-standard",
            Kind::Stripe => "stripe",
        }
    }
}

/// Body sizes measured, in KB (1,000 bytes).
pub const SIZES_KB: [usize; 3] = [1, 10, 100];

/// Every workload `cargo xtask bench` measures, in table order.
pub fn all_workloads() -> Vec<Workload> {
    Kind::ALL.iter().flat_map(|&kind| SIZES_KB.iter().map(move |&kb| Workload::new(kind, kb * 1000))).collect()
}

const SELLAPP_SECRET: &str = "bench-sellapp-secret";
/// `whsec_` + base64 of 32 bytes, as Standard Webhooks secrets are.
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const STRIPE_SECRET: &str = "whsec_bench_stripe";
/// The Sell.app product of every purchase, which the catalogue maps to [`PLAN`].
pub const PRODUCT_ID: &str = "prod_bench_1";
const STRIPE_PRICE: &str = "price_bench_monthly";
pub const PLAN: &str = "member";
/// Stripe's example objects, the same the app's tests build their events from.
const STRIPE_FIXTURES: &str = include_str!("../../../testdata/stripe/events/fixture_objects.json");

/// One signed delivery, ready to be processed as the webhook worker processes it.
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: Kind,
    /// The body size asked for; the body is exactly this long.
    pub size: usize,
    body: Vec<u8>,
    headers: Headers,
    secret: Secret,
    now: DateTime<Utc>,
    catalogue: Vec<PlanOffer>,
}

impl Workload {
    /// A delivery of `kind` whose body is exactly `size` bytes (at least the unpadded payload's size).
    pub fn new(kind: Kind, size: usize) -> Self {
        let now = DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
        let body = padded(size, |pad| payload(kind, now, pad));
        let (headers, secret) = sign(kind, &body, now);
        let catalogue = vec![PlanOffer {
            plan: PLAN.to_owned(),
            sellapp_products: BTreeSet::from([PRODUCT_ID.to_owned()]),
            stripe_prices: BTreeSet::from([STRIPE_PRICE.to_owned()]),
            ..PlanOffer::default()
        }];
        Self { kind, size, body, headers, secret, now, catalogue }
    }

    /// `stripe/10KB`
    pub fn name(&self) -> String {
        format!("{}/{}KB", self.kind.as_str(), self.size / 1000)
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Verify, parse, write the claim, decide: what the worker computes for this delivery. `Ok` is the
    /// number of bytes of the claim document (a value the optimiser cannot drop); `Err` says which step
    /// refused it (a workload that does not run through is a broken benchmark, not a fast one).
    pub fn run(&self) -> Result<usize, String> {
        match self.kind {
            Kind::SellappHex | Kind::SellappStandard => self.run_sellapp(),
            Kind::Stripe => self.run_stripe(),
        }
    }

    fn run_sellapp(&self) -> Result<usize, String> {
        let event = sellapp::verify(&self.body, &self.headers, &self.secret, self.now).map_err(|e| e.to_string())?;
        let delivery = tollgate_providers::sellapp_payload::interpret(&event);
        let claim = self.claim(&event, delivery.key.raw(), delivery.order_id.as_deref());
        let Ok(SellappAction::Grant { items, .. }) = &delivery.outcome else {
            return Err(format!("not a grant: {:?}", delivery.outcome));
        };
        let (plan, _how) = plan_for_purchase(&self.catalogue, items).ok_or("no plan for the purchase")?;
        let order = delivery.order_id.as_deref().map(|o| fit(o, SHORT_TEXT_SIZE)).ok_or("no order id")?;
        let source = sellapp_order_source(delivery.store.as_deref(), &order);
        let grant = Grant { plan, starts_at: None, ends_at: None, at: self.now };
        let patch = apply_event(&Entitlement::new(source), &LedgerEvent::GrantOnce(grant));
        if patch.is_empty() {
            return Err("the grant changed nothing".to_owned());
        }
        Ok(claim)
    }

    fn run_stripe(&self) -> Result<usize, String> {
        let event = stripe::verify_any(&self.body, &self.headers, std::slice::from_ref(&self.secret), self.now)
            .map_err(|e| e.to_string())?;
        let delivery = tollgate_providers::stripe_payload::interpret(&event);
        let claim = self.claim(&event, delivery.key.raw(), delivery.object_id.as_deref());
        let Ok(StripeAction::Subscription { subscription, .. }) = &delivery.outcome else {
            return Err(format!("not a subscription event: {:?}", delivery.outcome));
        };
        let plan = subscription.price.as_deref().and_then(|price| plan_for_stripe_price(&self.catalogue, price));
        let cell = webhook_cell(&subscription.status, StripeWebhook::SubscriptionUpdated);
        let at = delivery.created.ok_or("no created")?;
        let ledger = ledger_event(cell.effect, plan.as_deref(), subscription.period_start, subscription.period_end, at)
            .ok_or("the event writes no register")?;
        let patch = apply_event(&Entitlement::new(stripe_subscription_source(&subscription.id)), &ledger);
        if patch.is_empty() {
            return Err("the grant changed nothing".to_owned());
        }
        Ok(claim)
    }

    /// The claim document the inbox writes before any side effect (`App::claim`), encoded as the Appwrite
    /// client sends it: its size in bytes.
    fn claim(&self, event: &VerifiedEvent, key: &str, order_id: Option<&str>) -> usize {
        let body = event.body();
        let data = json!({
            "provider": event.provider().as_str(),
            "eventId": fit(key, NAME_SIZE * 2),
            "orderId": order_id.map(|o| fit(o, SHORT_TEXT_SIZE)),
            "payloadHash": payload_hash(body),
            "status": EVENT_PROCESSING,
            "claimedAt": timestamp(self.now),
            "bodyText": body_text(body),
        });
        let request = json!({ "documentId": "0123456789abcdef0123456789abcdef0123", "data": data });
        serde_json::to_vec(&request).map(|encoded| encoded.len()).unwrap_or(0)
    }
}

/// A Sell.app `order.completed` delivery of order `order_id` bought by `email`, `size` bytes long, with
/// the legacy `signature` header made with `secret`: what `cargo xtask bench --profile` sends to the
/// webhook worker. Returns the body and the signature.
pub fn signed_sellapp_order(secret: &str, order_id: u64, email: &str, size: usize) -> (Vec<u8>, String) {
    let body = padded(size, |pad| {
        let mut order = sellapp_order(pad);
        order["data"]["id"] = json!(order_id);
        order["data"]["customer_information"]["email"] = json!(email);
        order.to_string().into_bytes()
    });
    let signature = hex::encode(hmac(secret.as_bytes(), &[&body]));
    (body, signature)
}

/// The body `build` makes with a padding string chosen so that it is `size` bytes long (or the unpadded
/// body, when that is already longer). The padding is ASCII prose, so each byte of it is one byte of JSON.
pub fn padded(size: usize, build: impl Fn(&str) -> Vec<u8>) -> Vec<u8> {
    let bare = build("").len();
    let text = filler(size.saturating_sub(bare));
    build(&text)
}

/// `len` bytes of product-description prose.
pub fn filler(len: usize) -> String {
    const PROSE: &str = "Lifetime access to the members area, weekly live sessions and the full archive. ";
    PROSE.chars().cycle().take(len).collect()
}

fn payload(kind: Kind, now: DateTime<Utc>, pad: &str) -> Vec<u8> {
    let body = match kind {
        Kind::SellappHex | Kind::SellappStandard => sellapp_order(pad),
        Kind::Stripe => stripe_subscription_updated(now, pad),
    };
    body.to_string().into_bytes()
}

/// A Sell.app v2 invoice (`order.completed`) as docs/protocols.md §1.5 describes it, the padding in the
/// product's description.
fn sellapp_order(pad: &str) -> Value {
    json!({
        "event": "order.completed",
        "store": 41_873,
        "data": {
            "id": 2_090_514,
            "status": { "status": { "status": "COMPLETED" }, "updated_at": "2026-11-30T12:00:00Z" },
            "customer_information": { "email": "Buyer.Bench@example.com", "country": "NL", "ip": "203.0.113.9" },
            "payment": { "gateway": "STRIPE", "total": { "total": "9.99", "currency": "EUR" } },
            "product_variants": [{
                "product_id": PRODUCT_ID,
                "product_variant_id": "var_bench_1",
                "product_title": "Members",
                "quantity": 1,
                "product_description": pad,
            }],
            "created_at": "2026-11-30T11:59:00Z",
        },
    })
}

/// `customer.subscription.updated` with Stripe's example subscription (basil field locations), active, the
/// padding in its `metadata`.
fn stripe_subscription_updated(now: DateTime<Utc>, pad: &str) -> Value {
    let fixtures: Value = serde_json::from_str(STRIPE_FIXTURES).unwrap_or_default();
    // Stripe's whole example object is 4.2 KB; the fields a subscription's handlers read and a few beside
    // them keep the 1 KB row possible (the padding stands for the rest at 10 and 100 KB).
    let mut sub = only(&fixtures["subscription"], &["id", "object", "created", "currency", "customer", "status"]);
    let mut item = only(&fixtures["subscription"]["items"]["data"][0], &["id", "object", "quantity"]);
    item["price"] = only(&fixtures["subscription"]["items"]["data"][0]["price"], &["id", "object", "product"]);
    sub["items"] = json!({ "object": "list", "data": [item] });
    sub["id"] = json!("sub_bench_1");
    sub["customer"] = json!("cus_bench_1");
    sub["status"] = json!("active");
    sub["metadata"] = json!({ "notes": pad });
    let item = &mut sub["items"]["data"][0];
    item["price"]["id"] = json!(STRIPE_PRICE);
    item["subscription"] = json!("sub_bench_1");
    item["current_period_start"] = json!(now.timestamp() - 86_400);
    item["current_period_end"] = json!(now.timestamp() + 29 * 86_400);
    let mut event = only(&fixtures["event"], &["object", "livemode", "pending_webhooks", "request"]);
    event["id"] = json!("evt_bench_1");
    event["type"] = json!("customer.subscription.updated");
    event["created"] = json!(now.timestamp());
    event["api_version"] = json!("2025-03-31.basil");
    event["data"]["object"] = sub;
    event
}

/// `object` with only `keys`.
fn only(object: &Value, keys: &[&str]) -> Value {
    Value::Object(keys.iter().filter_map(|&k| Some((k.to_owned(), object.get(k)?.clone()))).collect())
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The headers the provider sends with `body`, and the secret the worker is configured with.
fn sign(kind: Kind, body: &[u8], now: DateTime<Utc>) -> (Headers, Secret) {
    let t = now.timestamp().to_string();
    match kind {
        Kind::SellappHex => {
            let signature = hex::encode(hmac(SELLAPP_SECRET.as_bytes(), &[body]));
            (Headers::from_pairs([("signature", signature)]), Secret::new(SELLAPP_SECRET))
        }
        Kind::SellappStandard => {
            let key = STANDARD.decode(&STANDARD_SECRET["whsec_".len()..]).unwrap_or_default();
            let id = "msg_bench_1";
            let mac = hmac(&key, &[id.as_bytes(), b".", t.as_bytes(), b".", body]);
            let headers = Headers::from_pairs([
                ("webhook-id", id.to_owned()),
                ("webhook-timestamp", t),
                ("webhook-signature", format!("v1,{}", STANDARD.encode(mac))),
            ]);
            (headers, Secret::new(STANDARD_SECRET))
        }
        Kind::Stripe => {
            let mac = hmac(STRIPE_SECRET.as_bytes(), &[t.as_bytes(), b".", body]);
            let headers = Headers::from_pairs([("Stripe-Signature", format!("t={t},v1={}", hex::encode(mac)))]);
            (headers, Secret::new(STRIPE_SECRET))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_has_the_asked_size_and_runs_through_verify_parse_and_decide() {
        for workload in all_workloads() {
            assert_eq!(workload.body().len(), workload.size, "{}", workload.name());
            let claim = workload.run().unwrap_or_else(|e| panic!("{}: {e}", workload.name()));
            assert!(claim > workload.size, "{}: the claim carries the body", workload.name());
        }
    }

    #[test]
    fn a_tampered_body_is_refused_so_the_benchmark_measures_real_verification() {
        for kind in Kind::ALL {
            let mut workload = Workload::new(kind, 1000);
            workload.body[20] ^= 1;
            assert!(workload.run().is_err(), "{}", workload.name());
        }
    }

    #[test]
    fn a_delivery_for_the_profile_verifies_with_its_secret_and_names_its_order_and_buyer() {
        let (body, signature) = signed_sellapp_order("s3cret", 77, "who@example.com", 2_000);
        assert_eq!(body.len(), 2_000);
        let headers = Headers::from_pairs([("signature", signature)]);
        let event = sellapp::verify(&body, &headers, &Secret::new("s3cret"), DateTime::UNIX_EPOCH).expect("verified");
        let delivery = tollgate_providers::sellapp_payload::interpret(&event);
        assert_eq!(delivery.order_id.as_deref(), Some("77"));
        assert_eq!(delivery.email_raw.as_deref(), Some("who@example.com"));
    }

    #[test]
    fn the_padding_is_where_the_parser_reads_past_it() {
        let workload = Workload::new(Kind::SellappHex, 10_000);
        let body: Value = serde_json::from_slice(workload.body()).expect("json");
        let description = body["data"]["product_variants"][0]["product_description"].as_str().expect("text");
        assert!(description.len() > 9_000);
        let stripe = Workload::new(Kind::Stripe, 10_000);
        let body: Value = serde_json::from_slice(stripe.body()).expect("json");
        assert!(body["data"]["object"]["metadata"]["notes"].as_str().expect("text").len() > 5_000);
    }
}

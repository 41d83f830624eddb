//! `POST /stripe/webhook` through workerd: deliveries built and signed here (`Stripe-Signature`, the
//! worker's wall clock), with the webhook secret being rotated (two secrets configured), with and without
//! Stripe's API configured.

use crate::support::{spawn_app_with, TestApp, PLAN};
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tollgate_app::role_sync::PlanUpdate;
use tollgate_core::{GuildId, IdempotencyKey};
use tollgate_devstack::discord_seed as seed;

const NEW_SECRET: &str = "whsec_e2e_new";
const OLD_SECRET: &str = "whsec_e2e_old";
const PRICE: &str = "price_e2e_member";
const DAY: i64 = 86_400;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn stripe_event(id: &str, kind: &str, created: i64, object: Value) -> String {
    json!({"id": id, "object": "event", "type": kind, "created": created, "api_version": "2025-03-31.basil",
        "livemode": false, "pending_webhooks": 1, "data": {"object": object}})
    .to_string()
}

fn subscription(id: &str, customer: &str, status: &str, price: &str, start: i64, end: i64) -> Value {
    json!({"id": id, "object": "subscription", "customer": customer, "status": status,
        "items": {"object": "list", "data": [{"id": format!("si_{id}"), "object": "subscription_item",
            "price": {"id": price, "object": "price"}, "current_period_start": start, "current_period_end": end}]}})
}

fn checkout(id: &str, subscription: &str, customer: &str, user: &str, email: &str) -> Value {
    json!({"id": id, "object": "checkout.session", "mode": "subscription", "payment_status": "paid",
        "status": "complete", "client_reference_id": user, "customer": customer, "subscription": subscription,
        "customer_details": {"email": email}})
}

fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length works");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post(app: &TestApp, body: &str, header: Option<&str>) -> (u16, Value) {
    let mut request = app.http.post(app.url("/stripe/webhook")).header("content-type", "application/json");
    if let Some(header) = header {
        request = request.header("Stripe-Signature", header);
    }
    let response = request.body(body.to_owned()).send().await.expect("POST /stripe/webhook");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Signed with `secret` now, expecting `status`.
async fn deliver(app: &TestApp, secret: &str, body: &str, status: u16) -> Value {
    let (got, answer) = post(app, body, Some(&signature(secret, now(), body))).await;
    assert_eq!(got, status, "answered {got}: {answer}");
    answer
}

/// The workers with two webhook secrets (a rotation) and, with `api`, Stripe's API (devstack's stand-in) as
/// the truth; without, event order decides.
async fn stripe_app(api: bool) -> TestApp {
    let secrets = format!("{NEW_SECRET},{OLD_SECRET}");
    let mut settings = vec![("STRIPE_WEBHOOK_SECRET", secrets.as_str())];
    if !api {
        settings.push(("STRIPE_API_KEY", ""));
    }
    let app = spawn_app_with(&settings).await;
    let clock = tollgate_core::FixedClock::at(Default::default());
    let update = PlanUpdate { stripe_prices: Some(vec![PRICE.to_owned()]), ..PlanUpdate::default() };
    tollgate_app::App::new(&app.client, &app.settings, &clock)
        .set_plan(PLAN, GuildId::parse(seed::GUILD_ID).unwrap(), &update)
        .await
        .expect("the plan's price");
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_subscription_grants_a_redelivery_changes_nothing_and_a_refund_revokes() {
    let app = stripe_app(false).await;
    app.create_user("stripe1", "stripe1@example.com").await;
    let t = now();
    // The subscription event before its checkout, signed with the old secret (a rotation in progress).
    let created = stripe_event(
        "evt_e2e_1",
        "customer.subscription.created",
        t,
        subscription("sub_e2e_1", "cus_e2e_1", "active", PRICE, t, t + 30 * DAY),
    );
    assert_eq!(deliver(&app, OLD_SECRET, &created, 200).await, json!({"ok": true, "pending": true}));
    let session = checkout("cs_e2e_1", "sub_e2e_1", "cus_e2e_1", "stripe1", "stripe1@example.com");
    let completed = stripe_event("evt_e2e_2", "checkout.session.completed", t, session);
    assert_eq!(deliver(&app, NEW_SECRET, &completed, 200).await, json!({"ok": true}));
    let projected = app.projected("stripe1", "active").await;
    assert_eq!(projected["plan"], PLAN);

    let claim = IdempotencyKey::provider_event("stripe", "evt_e2e_2");
    let event = app.document("webhook_events", claim.document_id().as_str()).await.expect("the claim");
    assert_eq!((event["provider"].clone(), event["status"].clone()), (json!("stripe"), json!("completed")));
    assert_eq!(deliver(&app, NEW_SECRET, &completed, 200).await, json!({"ok": true, "duplicate": true}));

    let refund = stripe_event(
        "evt_e2e_3",
        "charge.refunded",
        t + 1,
        json!({"id": "ch_e2e_1", "object": "charge", "customer": "cus_e2e_1", "refunded": true, "amount": 1000,
            "amount_refunded": 1000, "payment_intent": null}),
    );
    assert_eq!(deliver(&app, NEW_SECRET, &refund, 200).await, json!({"ok": true}));
    app.projected("stripe1", "inactive").await;
    assert!(app.documents("webhook_failures").await.is_empty(), "nothing failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_types_are_ignored_bad_signatures_refused_and_a_failure_is_retried_by_the_cron() {
    // With the API configured: subscriptions Stripe does not know fall back to the event.
    let app = stripe_app(true).await;
    let t = now();
    let other = stripe_event("evt_e2e_other", "plan.created", t, json!({"id": "plan_1", "object": "plan"}));
    assert_eq!(deliver(&app, NEW_SECRET, &other, 200).await, json!({"ok": true, "ignored": "plan.created"}));
    assert!(app.documents("webhook_events").await.is_empty(), "nothing written for an ignored type");

    assert_eq!(post(&app, &other, None).await, (401, json!({"ok": false, "error": "missing_header"})));
    let forged = signature("whsec_someone_else", t, &other);
    assert_eq!(post(&app, &other, Some(&forged)).await, (401, json!({"ok": false, "error": "signature_mismatch"})));
    let stale = signature(NEW_SECRET, t - 301, &other);
    assert_eq!(post(&app, &other, Some(&stale)).await, (401, json!({"ok": false, "error": "timestamp_too_old"})));
    let huge = "x".repeat((1 << 20) + 1);
    assert_eq!(post(&app, &huge, Some(&signature(NEW_SECRET, t, &huge))).await.0, 413);

    // A price no plan lists yet: recorded (202), then applied by the cron's retry once a plan lists it.
    app.create_user("stripe2", "stripe2@example.com").await;
    let session = checkout("cs_e2e_2", "sub_e2e_2", "cus_e2e_2", "stripe2", "stripe2@example.com");
    deliver(&app, NEW_SECRET, &stripe_event("evt_e2e_4", "checkout.session.completed", t, session), 200).await;
    let unmapped = stripe_event(
        "evt_e2e_5",
        "customer.subscription.created",
        t,
        subscription("sub_e2e_2", "cus_e2e_2", "active", "price_not_yet", t, t + 30 * DAY),
    );
    assert_eq!(deliver(&app, NEW_SECRET, &unmapped, 202).await, json!({"ok": true, "recorded": true}));
    let failure_id = IdempotencyKey::provider_event("stripe", "evt_e2e_5").document_id().as_str().to_owned();
    let failure = app.document("webhook_failures", &failure_id).await.expect("the failure record");
    assert_eq!(
        (failure["provider"].clone(), failure["errorCode"].clone()),
        (json!("stripe"), json!("stripe_price_unmapped"))
    );
    assert_eq!(failure["bodyText"], unmapped, "the exact body, for the retry");

    let clock = tollgate_core::FixedClock::at(Default::default());
    let update =
        PlanUpdate { stripe_prices: Some(vec![PRICE.to_owned(), "price_not_yet".to_owned()]), ..PlanUpdate::default() };
    tollgate_app::App::new(&app.client, &app.settings, &clock)
        .set_plan(PLAN, GuildId::parse(seed::GUILD_ID).unwrap(), &update)
        .await
        .expect("the plan's prices");
    app.let_backoff_pass(&failure_id).await;
    app.trigger_scheduled().await;
    app.projected("stripe2", "active").await;
    assert_eq!(app.document("webhook_failures", &failure_id).await.expect("kept")["state"], "settled");
}

//! The Stripe stand-in's lifecycle, driven through its HTTP API only (plus the hosted checkout page), with
//! the events checked where a webhook receiver gets them: signed with the endpoint's `whsec_`, in the layout
//! of the endpoint's API version, retried after a failure, held and released in a chosen order, redelivered.

use crate::stripe_support::{id, monthly_price, receiver, signed_by, stripe, Received, Stripe};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;
use tollgate_devstack::stripe::WEBHOOK_EVENTS as EVENTS;

fn period_end(subscription: &Value) -> i64 {
    subscription["items"]["data"][0]["current_period_end"].as_i64().expect("basil: the period is on the item")
}

async fn advance(stripe: &Stripe, clock: &str, to: i64) {
    let answer = stripe
        .post(&format!("/v1/test_helpers/test_clocks/{clock}/advance"), &[("frozen_time", &to.to_string())])
        .await;
    assert_eq!(answer["status"], "advancing");
    let ready = stripe.get(&format!("/v1/test_helpers/test_clocks/{clock}"), &[]).await;
    assert_eq!((ready["status"].clone(), ready["frozen_time"].clone()), (json!("ready"), json!(to)));
}

fn events_of(received: &[(String, Received)], name: &str) -> Vec<Value> {
    received.iter().filter(|(n, _)| n == name).map(|(_, r)| r.event()).collect()
}

#[tokio::test]
async fn a_subscription_lives_through_checkout_renewals_a_failed_card_a_fix_and_cancellation_with_signed_events() {
    let stripe = stripe().await;
    let (hooks, hook_url) = receiver().await;
    let current = stripe
        .post(
            "/v1/webhook_endpoints",
            &[
                &[("url", format!("{hook_url}/current").as_str())][..],
                &EVENTS.iter().map(|e| ("enabled_events[]", *e)).collect::<Vec<_>>(),
            ]
            .concat(),
        )
        .await;
    let secret = current["secret"].as_str().unwrap().to_owned();
    let legacy = stripe
        .post(
            "/v1/webhook_endpoints",
            &[("url", &format!("{hook_url}/legacy")), ("enabled_events[]", "*"), ("api_version", "2024-06-20")],
        )
        .await;
    let legacy_secret = legacy["secret"].as_str().unwrap().to_owned();

    let price = monthly_price(&stripe, "Member", "1000").await;
    let clock = id(&stripe.post("/v1/test_helpers/test_clocks", &[("frozen_time", &T0.to_string())]).await);
    let customer = stripe.post("/v1/customers", &[("email", "buyer@example.com"), ("test_clock", &clock)]).await;
    let cus = id(&customer);
    assert_eq!(customer["created"], T0, "objects under a test clock live at its time");

    // Checkout, completed on the hosted page as the buyer would.
    let session = stripe
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "subscription"),
                ("customer", &cus),
                ("line_items[0][price]", &price),
                ("line_items[0][quantity]", "1"),
                ("client_reference_id", "user-1"),
                ("success_url", "http://127.0.0.1:3000/done?s={CHECKOUT_SESSION_ID}"),
                ("cancel_url", "http://127.0.0.1:3000/cancel"),
            ],
        )
        .await;
    let url = session["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/checkout/pay/cs_test_", stripe.devstack.stripe_base_url())), "{url}");
    let page = stripe.http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("<form") && page.contains("pm_card_chargeCustomerFail") && page.contains("buyer@example.com")
    );
    let declined = stripe
        .http
        .post(&url)
        .form(&[("email", "buyer@example.com"), ("card", "pm_card_chargeCustomerFail")])
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), 402, "a declined card leaves the session open");
    assert!(declined.text().await.unwrap().contains("Your card was declined."));
    let paid =
        stripe.http.post(&url).form(&[("email", "buyer@example.com"), ("card", "pm_card_visa")]).send().await.unwrap();
    assert_eq!(paid.status(), 303);
    assert_eq!(paid.headers()["location"], format!("http://127.0.0.1:3000/done?s={}", id(&session)));
    let session = stripe.get(&format!("/v1/checkout/sessions/{}", id(&session)), &[]).await;
    assert_eq!((session["status"].clone(), session["payment_status"].clone()), (json!("complete"), json!("paid")));
    assert_eq!(session["customer_details"]["email"], "buyer@example.com");
    let sub = session["subscription"].as_str().unwrap().to_owned();
    let subscription = stripe.get(&format!("/v1/subscriptions/{sub}"), &[]).await;
    assert_eq!(subscription["status"], "active");
    let first_end = period_end(&subscription);
    assert_eq!(first_end, T0 + 31 * DAY, "one calendar month from 2027-01-15");

    // Two renewals on the clock.
    advance(&stripe, &clock, first_end + 3_600).await;
    let renewed = stripe.get(&format!("/v1/subscriptions/{sub}"), &[]).await;
    assert_eq!(
        (renewed["status"].clone(), renewed["items"]["data"][0]["current_period_start"].clone()),
        (json!("active"), json!(first_end))
    );
    let second_end = period_end(&renewed);
    let invoices = stripe.get("/v1/invoices", &[("subscription", &sub)]).await;
    let reasons: Vec<(Value, Value)> = invoices["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["billing_reason"].clone(), i["status"].clone()))
        .collect();
    assert_eq!(
        reasons,
        vec![(json!("subscription_cycle"), json!("paid")), (json!("subscription_create"), json!("paid"))]
    );
    assert_eq!(invoices["data"][0]["lines"]["data"][0]["description"], "1 × Member (at USD 10.00 / month)");

    // The card starts failing: the renewal fails, the subscription is past_due, a retry is scheduled.
    let failing = stripe.post("/v1/payment_methods/pm_card_chargeCustomerFail/attach", &[("customer", &cus)]).await;
    stripe.post(&format!("/v1/subscriptions/{sub}"), &[("default_payment_method", &id(&failing))]).await;
    advance(&stripe, &clock, second_end + 3_600).await;
    let past_due = stripe.get(&format!("/v1/subscriptions/{sub}"), &[]).await;
    assert_eq!(past_due["status"], "past_due");
    let open = stripe.get("/v1/invoices", &[("subscription", &sub), ("status", "open")]).await;
    let open = open["data"][0].clone();
    assert_eq!(
        (open["attempt_count"].clone(), open["next_payment_attempt"].clone()),
        (json!(1), json!(second_end + 3 * DAY))
    );
    advance(&stripe, &clock, second_end + 3 * DAY + 60).await;
    let retried = stripe.get(&format!("/v1/invoices/{}", id(&open)), &[]).await;
    assert_eq!((retried["attempt_count"].clone(), retried["status"].clone()), (json!(2), json!("open")));

    // The buyer fixes the card; paying the invoice makes the subscription active again.
    let visa = stripe.post("/v1/payment_methods/pm_card_visa/attach", &[("customer", &cus)]).await;
    stripe.post(&format!("/v1/customers/{cus}"), &[("invoice_settings[default_payment_method]", &id(&visa))]).await;
    stripe.post(&format!("/v1/subscriptions/{sub}"), &[("default_payment_method", &id(&visa))]).await;
    let paid = stripe.post(&format!("/v1/invoices/{}/pay", id(&open)), &[]).await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(stripe.get(&format!("/v1/subscriptions/{sub}"), &[]).await["status"], "active");

    // Cancel at period end: active until then, deleted after.
    let cancelling = stripe.post(&format!("/v1/subscriptions/{sub}"), &[("cancel_at_period_end", "true")]).await;
    assert_eq!(
        (cancelling["status"].clone(), cancelling["cancel_at"].clone()),
        (json!("active"), json!(period_end(&past_due)))
    );
    advance(&stripe, &clock, period_end(&past_due) + 60).await;
    let ended = stripe.get(&format!("/v1/subscriptions/{sub}"), &[]).await;
    assert_eq!((ended["status"].clone(), ended["ended_at"].clone()), (json!("canceled"), json!(period_end(&past_due))));
    let live = stripe.get("/v1/subscriptions", &[("customer", &cus)]).await;
    assert_eq!(live["data"].as_array().unwrap().len(), 0, "a canceled subscription is listed only with status=all");
    assert_eq!(
        stripe.get("/v1/subscriptions", &[("customer", &cus), ("status", "all")]).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // What the receivers got.
    let deliveries = stripe.settled().await;
    assert!(deliveries.iter().all(|d| d["state"] == "delivered" && d["last_status"] == 200), "{deliveries:?}");
    let received = hooks.received.lock().unwrap().clone();
    for (name, delivery) in &received {
        let key = if name == "current" { &secret } else { &legacy_secret };
        assert!(signed_by(delivery, key), "{name}: a delivery signed with another key: {}", delivery.signature);
        assert!(!signed_by(delivery, if name == "current" { &legacy_secret } else { &secret }));
    }
    let current_events = events_of(&received, "current");
    let types: BTreeSet<&str> = current_events.iter().filter_map(|e| e["type"].as_str()).collect();
    for kind in [
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    ] {
        assert!(types.contains(kind), "no {kind} delivered: {types:?}");
    }
    assert!(types.iter().all(|t| EVENTS.contains(t)), "only the enabled events: {types:?}");
    let completed = current_events.iter().find(|e| e["type"] == "checkout.session.completed").unwrap();
    assert_eq!(
        (completed["data"]["object"]["client_reference_id"].clone(), completed["created"].clone()),
        (json!("user-1"), json!(T0))
    );
    assert_eq!(completed["api_version"], "2025-03-31.basil");
    let renewal = current_events
        .iter()
        .find(|e| e["type"] == "customer.subscription.updated" && e["data"]["previous_attributes"]["items"].is_object())
        .expect("a renewal's update names the old period");
    assert_eq!(renewal["created"], first_end, "events happen at the clock's time");
    assert_eq!(renewal["data"]["previous_attributes"]["items"]["data"][0]["current_period_end"], first_end);
    let failed = current_events.iter().find(|e| e["type"] == "invoice.payment_failed").unwrap();
    assert_eq!(failed["data"]["object"]["parent"]["subscription_details"]["subscription"], sub.as_str());
    assert!(failed["data"]["object"].get("subscription").is_none());

    let legacy_events = events_of(&received, "legacy");
    assert!(legacy_events.len() > current_events.len(), "`*` gets every event");
    let old_update = legacy_events.iter().find(|e| e["type"] == "customer.subscription.updated").unwrap();
    assert_eq!(old_update["api_version"], "2024-06-20");
    assert!(old_update["data"]["object"]["current_period_end"].is_i64(), "the older layout: {old_update}");
    assert!(old_update["data"]["object"]["items"]["data"][0].get("current_period_end").is_none());
    let old_failed = legacy_events.iter().find(|e| e["type"] == "invoice.payment_failed").unwrap();
    assert_eq!(old_failed["data"]["object"]["subscription"], sub.as_str());
    assert!(old_failed["data"]["object"].get("parent").is_none());
    let old_renewal = legacy_events.iter().find(|e| {
        e["type"] == "customer.subscription.updated"
            && e["data"]["previous_attributes"]["current_period_end"] == first_end
    });
    assert!(old_renewal.is_some(), "previous_attributes in the older layout too");

    // A request pinned to the older version reads the older layout too.
    let pinned = stripe
        .send(
            stripe
                .http
                .get(stripe.url(&format!("/v1/subscriptions/{sub}")))
                .bearer_auth(&stripe.key)
                .header("Stripe-Version", "2024-06-20"),
        )
        .await;
    assert_eq!(pinned.body["current_period_end"], period_end(&past_due));
}

#[tokio::test]
async fn failed_renewal_retries_run_out_into_canceled_or_unpaid_as_the_account_says() {
    let stripe = stripe().await;
    let price = monthly_price(&stripe, "Member", "1000").await;
    for after in ["canceled", "unpaid"] {
        stripe.control("/_devstack/stripe/settings", json!({"retry_days": [1, 2], "after_retries": after})).await;
        let clock = id(&stripe.post("/v1/test_helpers/test_clocks", &[("frozen_time", &T0.to_string())]).await);
        let cus = id(&stripe.post("/v1/customers", &[("email", "trial@example.com"), ("test_clock", &clock)]).await);
        let card = stripe.post("/v1/payment_methods/pm_card_chargeCustomerFail/attach", &[("customer", &cus)]).await;
        let trial = stripe
            .post(
                "/v1/subscriptions",
                &[
                    ("customer", &cus),
                    ("items[0][price]", &price),
                    ("default_payment_method", &id(&card)),
                    ("trial_period_days", "7"),
                ],
            )
            .await;
        assert_eq!((trial["status"].clone(), trial["trial_end"].clone()), (json!("trialing"), json!(T0 + 7 * DAY)));
        advance(&stripe, &clock, T0 + 7 * DAY + 60).await;
        assert_eq!(
            stripe.get(&format!("/v1/subscriptions/{}", id(&trial)), &[]).await["status"],
            "past_due",
            "the trial ends with a declined card"
        );
        advance(&stripe, &clock, T0 + 10 * DAY + 60).await;
        let ended = stripe.get(&format!("/v1/subscriptions/{}", id(&trial)), &[]).await;
        assert_eq!(ended["status"], after, "after 1 + 2 retry days");
        let invoices = stripe.get("/v1/invoices", &[("subscription", &id(&trial))]).await;
        assert_eq!(invoices["data"][0]["attempt_count"], 3);
        let events = stripe.get("/v1/events", &[("type", "invoice.payment_failed"), ("limit", "100")]).await;
        let failures = events["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["data"]["object"]["customer"] == cus.as_str())
            .count();
        assert_eq!(failures, 3);
        let last = stripe
            .get(
                "/v1/events",
                &[(
                    "type",
                    if after == "canceled" { "customer.subscription.deleted" } else { "customer.subscription.updated" },
                )],
            )
            .await;
        assert_eq!(last["data"][0]["data"]["object"]["status"], after);
        assert!(last["data"][0]["request"]["id"].is_null(), "a clock's events come from no request");
    }
}

#[tokio::test]
async fn refunds_and_disputes_emit_charge_refunded_and_dispute_events_won_or_lost() {
    let stripe = stripe().await;
    let (hooks, hook_url) = receiver().await;
    let endpoint = stripe
        .post(
            "/v1/webhook_endpoints",
            &[
                ("url", &format!("{hook_url}/h")),
                ("enabled_events[]", "charge.refunded"),
                ("enabled_events[]", "charge.dispute.created"),
                ("enabled_events[]", "charge.dispute.closed"),
            ],
        )
        .await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let product = stripe.post("/v1/products", &[("name", "Pass")]).await;
    let once =
        stripe.post("/v1/prices", &[("product", &id(&product)), ("currency", "eur"), ("unit_amount", "4900")]).await;
    let buy = |card: &'static str| {
        let once = id(&once);
        let stripe = &stripe;
        async move {
            let session = stripe
                .post(
                    "/v1/checkout/sessions",
                    &[
                        ("mode", "payment"),
                        ("customer_email", "p@example.com"),
                        ("line_items[0][price]", &once),
                        ("success_url", "http://127.0.0.1:3000/ok"),
                    ],
                )
                .await;
            let done = stripe
                .control(
                    &format!("/_devstack/stripe/checkout/{}/complete", id(&session)),
                    json!({"payment_method": card}),
                )
                .await;
            assert_eq!((done["status"].clone(), done["payment_status"].clone()), (json!("complete"), json!("paid")));
            done["payment_intent"].as_str().unwrap().to_owned()
        }
    };

    let refunded = buy("pm_card_visa").await;
    let charge = stripe.get("/v1/charges", &[("payment_intent", &refunded)]).await["data"][0].clone();
    assert!(charge["customer"].is_null(), "a payment-mode buyer is a guest unless customer_creation=always");
    assert_eq!(
        (charge["amount"].clone(), charge["billing_details"]["email"].clone()),
        (json!(4900), json!("p@example.com"))
    );
    let refund = stripe.post("/v1/refunds", &[("payment_intent", &refunded)]).await;
    assert_eq!((refund["amount"].clone(), refund["status"].clone()), (json!(4900), json!("succeeded")));
    let again = stripe.call(Method::POST, "/v1/refunds", &[("payment_intent", &refunded)]).await;
    assert_eq!((again.status, again.body["error"]["code"].clone()), (400, json!("charge_already_refunded")));

    let won = buy("pm_card_createDispute").await;
    let dispute = stripe.get("/v1/disputes", &[("payment_intent", &won)]).await["data"][0].clone();
    assert_eq!(dispute["status"], "needs_response");
    let charge = stripe.get(&format!("/v1/charges/{}", dispute["charge"].as_str().unwrap()), &[]).await;
    assert_eq!(charge["disputed"], true);
    let refused = stripe.call(Method::POST, "/v1/refunds", &[("charge", &id(&charge))]).await;
    assert_eq!(refused.body["error"]["code"], "charge_disputed");
    let closed = stripe
        .post(&format!("/v1/disputes/{}", id(&dispute)), &[("evidence[uncategorized_text]", "winning_evidence")])
        .await;
    assert_eq!(closed["status"], "won");
    let twice = stripe.call(Method::POST, &format!("/v1/disputes/{}/close", id(&dispute)), &[]).await;
    assert_eq!(twice.status, 400, "a closed dispute stays closed");

    let lost = buy("pm_card_createDispute").await;
    let dispute = stripe.get("/v1/disputes", &[("payment_intent", &lost)]).await["data"][0].clone();
    assert_eq!(
        stripe
            .post(&format!("/v1/disputes/{}", id(&dispute)), &[("evidence[uncategorized_text]", "losing_evidence")])
            .await["status"],
        "lost"
    );
    let given_up = buy("pm_card_createDispute").await;
    let dispute = stripe.get("/v1/disputes", &[("payment_intent", &given_up)]).await["data"][0].clone();
    assert_eq!(stripe.post(&format!("/v1/disputes/{}/close", id(&dispute)), &[]).await["status"], "lost");

    stripe.settled().await;
    let received = hooks.received.lock().unwrap().clone();
    assert!(received.iter().all(|(_, r)| signed_by(r, &secret)));
    let summary: Vec<(String, Value)> = events_of(&received, "h")
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["data"]["object"]["status"].clone()))
        .collect();
    let expected: Vec<(String, Value)> = [
        ("charge.refunded", "succeeded"),
        ("charge.dispute.created", "needs_response"),
        ("charge.dispute.closed", "won"),
        ("charge.dispute.created", "needs_response"),
        ("charge.dispute.closed", "lost"),
        ("charge.dispute.created", "needs_response"),
        ("charge.dispute.closed", "lost"),
    ]
    .iter()
    .map(|(t, s)| ((*t).to_owned(), json!(s)))
    .collect();
    assert_eq!(summary, expected);
    let refund_event = events_of(&received, "h").into_iter().next().unwrap();
    assert_eq!(
        (
            refund_event["data"]["object"]["refunded"].clone(),
            refund_event["data"]["previous_attributes"]["amount_refunded"].clone()
        ),
        (json!(true), json!(0))
    );
}

#[tokio::test]
async fn deliveries_are_retried_held_released_in_a_chosen_order_and_redelivered() {
    let stripe = stripe().await;
    stripe.control("/_devstack/stripe/settings", json!({"delivery_backoff_ms": [20, 20]})).await;
    let (hooks, hook_url) = receiver().await;
    let endpoint = stripe
        .post(
            "/v1/webhook_endpoints",
            &[
                ("url", &format!("{hook_url}/h")),
                ("enabled_events[]", "customer.created"),
                ("enabled_events[]", "customer.updated"),
            ],
        )
        .await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();

    hooks.fail_next.store(1, std::sync::atomic::Ordering::SeqCst);
    let customer = stripe.post("/v1/customers", &[("email", "r@example.com")]).await;
    let deliveries = stripe.settled().await;
    assert_eq!(deliveries.len(), 1);
    let attempts: Vec<Value> =
        deliveries[0]["attempts"].as_array().unwrap().iter().map(|a| a["status"].clone()).collect();
    assert_eq!(attempts, vec![json!(500), json!(200)], "retried after the 500");
    assert_eq!(deliveries[0]["state"], "delivered");
    let created = deliveries[0]["event"].as_str().unwrap().to_owned();
    assert_eq!(stripe.get(&format!("/v1/events/{created}"), &[]).await["pending_webhooks"], 0);

    // Held, then released newest first.
    stripe.control("/_devstack/stripe/hold", json!({"hold": true})).await;
    stripe.post(&format!("/v1/customers/{}", id(&customer)), &[("name", "First")]).await;
    stripe.post(&format!("/v1/customers/{}", id(&customer)), &[("name", "Second")]).await;
    let held = stripe.deliveries().await;
    let held_events: Vec<String> =
        held.iter().filter(|d| d["state"] == "held").map(|d| d["event"].as_str().unwrap().to_owned()).collect();
    assert_eq!(held_events.len(), 2);
    let before = hooks.received.lock().unwrap().len();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(hooks.received.lock().unwrap().len(), before, "nothing is sent while held");
    let order = vec![held_events[1].clone(), held_events[0].clone()];
    stripe.control("/_devstack/stripe/release", json!({"order": order})).await;
    stripe.settled().await;
    let arrived: Vec<String> = hooks.received.lock().unwrap()[before..]
        .iter()
        .map(|(_, r)| r.event()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(arrived, order, "in the order asked for");

    // A duplicate: the same event id again, signed again.
    stripe.control(&format!("/_devstack/stripe/events/{created}/redeliver"), json!({})).await;
    stripe.settled().await;
    let received = hooks.received.lock().unwrap().clone();
    let copies: Vec<&Received> =
        received.iter().filter(|(_, r)| r.event()["id"] == created.as_str()).map(|(_, r)| r).collect();
    assert_eq!(copies.len(), 3, "the failed attempt, its retry, and the redelivery");
    assert!(copies.iter().all(|r| signed_by(r, &secret)));

    // An endpoint that never answers fails after every attempt, without holding up the one that does.
    stripe.control("/_devstack/stripe/hold", json!({"hold": false})).await;
    let dead = stripe
        .post("/v1/webhook_endpoints", &[("url", "http://127.0.0.1:9/h"), ("enabled_events[]", "customer.created")])
        .await;
    let before = hooks.received.lock().unwrap().len();
    let second = stripe.post("/v1/customers", &[("email", "s@example.com")]).await;
    let event = stripe.get("/v1/events", &[("type", "customer.created"), ("limit", "1")]).await["data"][0].clone();
    assert_eq!(event["data"]["object"]["id"], second["id"]);
    let settled = stripe.settled().await;
    let to_dead = settled.iter().find(|d| d["endpoint"] == dead["id"] && d["event"] == event["id"]).unwrap();
    assert_eq!(
        (to_dead["state"].clone(), to_dead["attempts"].as_array().unwrap().len()),
        (json!("failed"), 3),
        "{to_dead}"
    );
    assert!(to_dead["attempts"][0]["status"].is_null() && to_dead["attempts"][0]["error"].is_string());
    assert_eq!(hooks.received.lock().unwrap().len(), before + 1, "the live endpoint got it");
    assert_eq!(
        stripe.get(&format!("/v1/events/{}", id(&event)), &[]).await["pending_webhooks"],
        1,
        "one endpoint still to go"
    );

    // A reset forgets the account (the Stripe one, and the shared one).
    stripe.control("/_devstack/stripe/reset", json!({})).await;
    assert_eq!(stripe.get("/v1/customers", &[]).await["data"], json!([]));
    assert!(stripe.deliveries().await.is_empty());
    stripe.post("/v1/customers", &[("email", "t@example.com")]).await;
    stripe.control("/_devstack/reset", json!({})).await;
    assert_eq!(stripe.get("/v1/customers", &[]).await["data"], json!([]));
}

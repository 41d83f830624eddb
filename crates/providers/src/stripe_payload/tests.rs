//! Stripe payloads built from Stripe's own example objects (`testdata/stripe/events/fixture_objects.json`,
//! copied from Stripe's `openapi/fixtures3.json`), with the fields each case is about set on them.

use super::*;
use proptest::prelude::*;
use serde_json::json;

const FIXTURES: &str = include_str!("../../../../testdata/stripe/events/fixture_objects.json");

fn fixture(resource: &str) -> Value {
    let all: Value = serde_json::from_str(FIXTURES).expect("fixtures");
    all[resource].clone()
}

/// Stripe's example event, carrying `object` as `type`.
fn event(kind: &str, object: Value) -> VerifiedEvent {
    let mut event = fixture("event");
    event["id"] = json!("evt_1");
    event["type"] = json!(kind);
    event["created"] = json!(1_700_000_000);
    event["api_version"] = json!("2025-03-31.basil");
    event["data"]["object"] = object;
    VerifiedEvent::new(crate::Provider::Stripe, event.to_string().as_bytes())
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

/// The example subscription, as the basil API writes it (the period on its items).
fn basil_subscription(status: &str, start: i64, end: i64) -> Value {
    let mut sub = fixture("subscription");
    sub["status"] = json!(status);
    sub["items"]["data"][0]["current_period_start"] = json!(start);
    sub["items"]["data"][0]["current_period_end"] = json!(end);
    sub
}

#[test]
fn a_basil_subscription_event_reads_its_period_from_the_items() {
    let delivery = interpret(&event(SUBSCRIPTION_UPDATED, basil_subscription("past_due", 1_000, 2_000)));
    assert_eq!(delivery.key.raw(), "stripe:evt_1");
    assert_eq!(delivery.created, Some(at(1_700_000_000)));
    let Ok(StripeAction::Subscription { change, subscription }) = delivery.outcome else { panic!("{delivery:?}") };
    assert_eq!(change, SubscriptionChange::Updated);
    assert_eq!(subscription.id, "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw");
    assert_eq!(subscription.customer, "cus_QXg1o8vcGmoR32");
    assert_eq!(subscription.status, StripeStatus::PastDue);
    assert_eq!(subscription.price.as_deref(), Some("price_1PgafmB7WZ01zgkW6dKueIc5"));
    assert_eq!((subscription.period_start, subscription.period_end), (Some(at(1_000)), Some(at(2_000))));
}

#[test]
fn an_older_api_versions_subscription_reads_its_period_from_the_subscription() {
    let mut sub = fixture("subscription");
    sub["items"]["data"][0].as_object_mut().unwrap().remove("current_period_end");
    sub["items"]["data"][0].as_object_mut().unwrap().remove("current_period_start");
    sub["current_period_start"] = json!(3_000);
    sub["current_period_end"] = json!(4_000);
    let Ok(StripeAction::Subscription { subscription, .. }) = interpret(&event(SUBSCRIPTION_CREATED, sub)).outcome
    else {
        panic!("a subscription")
    };
    assert_eq!((subscription.period_start, subscription.period_end), (Some(at(3_000)), Some(at(4_000))));
}

#[test]
fn an_invoice_names_its_subscription_in_either_api_versions_place() {
    let mut basil = fixture("invoice");
    basil["parent"]["subscription_details"]["subscription"] = json!("sub_new");
    basil["lines"]["data"][0]["period"]["end"] = json!(5_000);
    basil["lines"]["data"][0]["pricing"]["price_details"] = json!({"price": "price_b", "product": "prod_1"});
    let Ok(StripeAction::Invoice { paid: true, invoice }) = interpret(&event(INVOICE_PAID, basil)).outcome else {
        panic!("an invoice")
    };
    assert_eq!(invoice.subscription.as_deref(), Some("sub_new"));
    assert_eq!((invoice.period_end, invoice.price.as_deref()), (Some(at(5_000)), Some("price_b")));

    let mut old = fixture("invoice");
    old.as_object_mut().unwrap().remove("parent");
    old["subscription"] = json!("sub_old");
    old["lines"]["data"][0]["price"] = json!({"id": "price_o"});
    let Ok(StripeAction::Invoice { paid: false, invoice }) = interpret(&event(INVOICE_PAYMENT_FAILED, old)).outcome
    else {
        panic!("an invoice")
    };
    assert_eq!((invoice.subscription.as_deref(), invoice.price.as_deref()), (Some("sub_old"), Some("price_o")));
    assert_eq!(invoice.customer.as_deref(), Some("cus_QXg1o8vcGmoR32"));
}

#[test]
fn a_checkout_session_names_its_buyer_customer_and_subscription() {
    let mut session = fixture("checkout.session");
    session["mode"] = json!("subscription");
    session["payment_status"] = json!("paid");
    session["client_reference_id"] = json!("user-1");
    session["customer"] = json!("cus_1");
    session["subscription"] = json!("sub_1");
    let delivery = interpret(&event(CHECKOUT_COMPLETED, session));
    assert_eq!(delivery.email_raw.as_deref(), Some("example@example.com"));
    let Ok(StripeAction::Checkout(checkout)) = delivery.outcome else { panic!("a checkout") };
    assert_eq!(checkout.mode, CheckoutMode::Subscription);
    assert!(checkout.paid);
    assert_eq!(checkout.email.as_ref().map(Email::as_str), Some("example@example.com"));
    assert_eq!(
        (checkout.client_reference_id.as_deref(), checkout.customer.as_deref(), checkout.subscription.as_deref()),
        (Some("user-1"), Some("cus_1"), Some("sub_1"))
    );
    let unpaid = interpret(&event(CHECKOUT_COMPLETED, fixture("checkout.session")));
    let Ok(StripeAction::Checkout(example)) = unpaid.outcome else { panic!("a checkout") };
    assert_eq!((example.mode, example.paid), (CheckoutMode::Payment, false), "Stripe's example is unpaid");
}

#[test]
fn refunds_and_disputes_name_their_payment() {
    let mut charge = fixture("charge");
    charge["refunded"] = json!(true);
    charge["customer"] = json!("cus_1");
    charge["payment_intent"] = json!("pi_1");
    let Ok(StripeAction::Refunded { payment, full: true }) = interpret(&event(CHARGE_REFUNDED, charge)).outcome else {
        panic!("a refund")
    };
    assert_eq!((payment.customer.as_deref(), payment.payment_intent.as_deref()), (Some("cus_1"), Some("pi_1")));
    let partial = interpret(&event(CHARGE_REFUNDED, fixture("charge"))).outcome;
    assert!(matches!(partial, Ok(StripeAction::Refunded { full: false, .. })));

    let dispute = fixture("dispute");
    let Ok(StripeAction::DisputeCreated(payment)) = interpret(&event(DISPUTE_CREATED, dispute.clone())).outcome else {
        panic!("a dispute")
    };
    assert_eq!(payment.charge.as_deref(), Some("ch_1PgafuB7WZ01zgkWXYmPNZs8"));
    let mut won = dispute.clone();
    won["status"] = json!("won");
    assert!(matches!(
        interpret(&event(DISPUTE_CLOSED, won)).outcome,
        Ok(StripeAction::DisputeClosed { won: true, .. })
    ));
    let mut lost = dispute;
    lost["status"] = json!("lost");
    assert!(matches!(
        interpret(&event(DISPUTE_CLOSED, lost)).outcome,
        Ok(StripeAction::DisputeClosed { won: false, .. })
    ));
}

#[test]
fn other_event_types_are_ignored_and_what_does_not_decode_is_an_error() {
    let ignored = interpret(&event("plan.created", fixture("event")["data"]["object"].clone()));
    assert_eq!((ignored.outcome, ignored.event_type.as_deref()), (Ok(StripeAction::Ignore), Some("plan.created")));
    for body in [
        "not json",
        "[]",
        r#"{"id":"evt_1","type":"invoice.paid"}"#,
        r#"{"id":"evt_1","type":"x","created":"soon","data":{"object":{}}}"#,
    ] {
        let delivery = interpret(&VerifiedEvent::new(crate::Provider::Stripe, body.as_bytes()));
        assert_eq!(delivery.outcome, Err(StripePayloadError::NotAnEvent), "{body}");
        assert!(delivery.key.raw().starts_with("stripe:unparsable:"));
    }
    let mut sub = fixture("subscription");
    sub.as_object_mut().unwrap().remove("status");
    let missing = interpret(&event(SUBSCRIPTION_DELETED, sub)).outcome;
    assert_eq!(
        missing,
        Err(StripePayloadError::MissingField { event: SUBSCRIPTION_DELETED.into(), field: "status" }),
        "no status is never read as no access"
    );
}

proptest! {
    /// Timestamps are seconds whatever their size, and a period read back is the one written.
    #[test]
    fn periods_are_read_as_seconds(start in 0i64..4_000_000_000, len in 1i64..40_000_000, basil in any::<bool>()) {
        let mut sub = fixture("subscription");
        if basil {
            sub = basil_subscription("active", start, start + len);
        } else {
            sub["items"]["data"][0].as_object_mut().unwrap().remove("current_period_end");
            sub["items"]["data"][0].as_object_mut().unwrap().remove("current_period_start");
            sub["current_period_start"] = json!(start);
            sub["current_period_end"] = json!(start + len);
        }
        let Ok(StripeAction::Subscription { subscription, .. }) = interpret(&event(SUBSCRIPTION_UPDATED, sub)).outcome else {
            panic!("a subscription")
        };
        prop_assert_eq!(subscription.period_end, Some(at(start + len)));
        prop_assert_eq!(subscription.period_start, Some(at(start)));
    }

    /// Any status string is read (unknown ones as `Unknown`), never a parse failure.
    #[test]
    fn every_status_string_is_read(status in "[a-z_]{1,20}") {
        let Ok(StripeAction::Subscription { subscription, .. }) =
            interpret(&event(SUBSCRIPTION_UPDATED, basil_subscription(&status, 1, 2))).outcome else {
            panic!("a subscription")
        };
        prop_assert_eq!(subscription.status.as_str(), status.as_str());
    }
}

//! What a Stripe body means (`stripe_payload::interpret`): any bytes give a delivery, never a panic; the same
//! bytes always give the same delivery and key; and an event that is read carries what was fed: its id (the
//! key `stripe:<id>`), type, `created` and object id as the body gives them, an action only for the event
//! types Tollgate handles (`Ignore` for every other), and in the action the object's own id, customer,
//! status and flags. A subscription read from an event and the same object read as the Stripe client reads
//! an API answer (`tollgate_stripe::subscription_from`) name the same subscription, customer and status.
#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_core::stripe::StripeStatus;
use tollgate_core::IdempotencyKey;
use tollgate_providers::stripe_payload::{
    interpret, StripeAction, StripeDelivery, StripePayloadError, SubscriptionChange, CHARGE_REFUNDED,
    CHECKOUT_COMPLETED, DISPUTE_CLOSED, DISPUTE_CREATED, HANDLED_EVENTS, INVOICE_PAID, SUBSCRIPTION_CREATED,
    SUBSCRIPTION_DELETED, SUBSCRIPTION_PAUSED, SUBSCRIPTION_RESUMED, SUBSCRIPTION_UPDATED,
};
use tollgate_providers::{Provider, VerifiedEvent};

/// A text field as the parser reads one: trimmed, and absent when empty.
fn text(value: Option<&Value>) -> Option<&str> {
    value?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// An id, or the `id` of an expanded object.
fn id_of(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::Object(expanded) => text(expanded.get("id")),
        other => text(Some(other)),
    }
}

fn check_event(data: &[u8], delivery: &StripeDelivery) {
    let root: Value = serde_json::from_slice(data).expect("a body read as an event is JSON");
    let id = text(root.get("id")).expect("an event that is read has an id");
    let kind = text(root.get("type")).expect("an event that is read has a type");
    assert_eq!(delivery.key, IdempotencyKey::provider_event("stripe", id));
    assert_eq!(delivery.event_id.as_deref(), Some(id));
    assert_eq!(delivery.event_type.as_deref(), Some(kind));
    assert_eq!(delivery.created.map(|c| c.timestamp()), root.get("created").and_then(Value::as_i64));
    assert_eq!(delivery.api_version.as_deref(), text(root.get("api_version")));
    let object = root.pointer("/data/object").filter(|o| o.is_object()).expect("an event that is read has an object");
    assert_eq!(delivery.object_id.as_deref(), text(object.get("id")));
    let handled = HANDLED_EVENTS.contains(&kind);
    match &delivery.outcome {
        Ok(StripeAction::Ignore) => assert!(!handled, "{kind} is handled, yet ignored"),
        Ok(action) => {
            assert!(handled, "{kind} is not handled, yet acted on");
            check_action(kind, object, action);
        }
        Err(StripePayloadError::MissingField { event, .. }) => {
            assert!(handled, "{kind} is not handled, yet refused");
            assert_eq!(event, kind);
        }
        Err(StripePayloadError::NotAnEvent) => unreachable!("checked by the caller"),
    }
}

fn check_action(kind: &str, object: &Value, action: &StripeAction) {
    let own_id = text(object.get("id"));
    match action {
        StripeAction::Subscription { change, subscription } => {
            let expected = match kind {
                SUBSCRIPTION_CREATED => SubscriptionChange::Created,
                SUBSCRIPTION_UPDATED => SubscriptionChange::Updated,
                SUBSCRIPTION_DELETED => SubscriptionChange::Deleted,
                SUBSCRIPTION_PAUSED => SubscriptionChange::Paused,
                SUBSCRIPTION_RESUMED => SubscriptionChange::Resumed,
                other => panic!("{other} read as a subscription change"),
            };
            assert_eq!(*change, expected);
            assert_eq!(Some(subscription.id.as_str()), own_id);
            assert_eq!(Some(subscription.customer.as_str()), id_of(object.get("customer")));
            let status = object.get("status").and_then(Value::as_str).expect("a subscription read has a status");
            assert_eq!(subscription.status, StripeStatus::parse(status));
            // Basil: the period is on the items, and the latest item's end counts.
            let items = object.pointer("/items/data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let latest_item_end = items
                .iter()
                .filter_map(|item| item.get("current_period_end")?.as_i64())
                .filter(|secs| DateTime::from_timestamp(*secs, 0).is_some())
                .max();
            if let Some(end) = latest_item_end {
                assert_eq!(subscription.period_end.map(|t| t.timestamp()), Some(end));
            }
            if let Ok(api) = tollgate_stripe::subscription_from(object.clone()) {
                assert_eq!(api.id.trim(), subscription.id, "the API reading names another subscription");
                assert_eq!(api.customer.trim(), subscription.customer, "the API reading names another customer");
                assert_eq!(StripeStatus::parse(&api.status), subscription.status);
            }
        }
        StripeAction::Checkout(session) => {
            assert_eq!(kind, CHECKOUT_COMPLETED);
            assert_eq!(Some(session.id.as_str()), own_id);
            let payment_status = object.get("payment_status").and_then(Value::as_str);
            assert_eq!(session.paid, matches!(payment_status, Some("paid" | "no_payment_required")));
            assert_eq!(session.client_reference_id.as_deref(), text(object.get("client_reference_id")));
            assert_eq!(session.customer.as_deref(), id_of(object.get("customer")));
            assert_eq!(session.subscription.as_deref(), id_of(object.get("subscription")));
        }
        StripeAction::Invoice { paid, invoice } => {
            assert_eq!(*paid, kind == INVOICE_PAID);
            assert_eq!(Some(invoice.id.as_str()), own_id);
            assert_eq!(invoice.customer.as_deref(), id_of(object.get("customer")));
        }
        StripeAction::Refunded { payment, full } => {
            assert_eq!(kind, CHARGE_REFUNDED);
            assert_eq!(payment.charge.as_deref(), own_id);
            assert_eq!(Some(*full), object.get("refunded").and_then(Value::as_bool));
        }
        StripeAction::DisputeCreated(payment) => {
            assert_eq!(kind, DISPUTE_CREATED);
            assert!(own_id.is_some());
            assert_eq!(payment.charge.as_deref(), id_of(object.get("charge")));
        }
        StripeAction::DisputeClosed { payment, won, status } => {
            assert_eq!(kind, DISPUTE_CLOSED);
            assert_eq!(Some(status.as_str()), text(object.get("status")));
            assert_eq!(*won, status == "won");
            assert_eq!(payment.charge.as_deref(), id_of(object.get("charge")));
        }
        StripeAction::Ignore => unreachable!("checked by the caller"),
    }
}

fuzz_target!(|data: &[u8]| {
    let event = VerifiedEvent::from_recorded_failure(Provider::Stripe, data.to_vec());
    let delivery = interpret(&event);
    assert_eq!(delivery, interpret(&event), "the same bytes gave another delivery");
    match &delivery.outcome {
        Err(error @ StripePayloadError::NotAnEvent) => {
            assert_eq!(delivery.key, IdempotencyKey::unparsable("stripe", data));
            assert!(delivery.created.is_none() && delivery.object_id.is_none());
            assert!(!error.code().is_empty());
        }
        _ => check_event(data, &delivery),
    }
});

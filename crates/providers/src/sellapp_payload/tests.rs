use super::*;
use proptest::prelude::*;
use serde_json::json;
use sha2::Digest;

fn interpret_json(value: Value) -> SellappDelivery {
    interpret(&VerifiedEvent::from_recorded_failure(crate::Provider::Sellapp, value.to_string().into_bytes()))
}

#[test]
fn a_v2_invoice_payload_grants_with_a_normalised_email_and_its_product() {
    let delivery = interpret_json(json!({
        "event": "order.completed",
        "data": {"id": 236, "customer_information": {"email": "  Buyer@Example.COM "}, "product_variants": [{"product_title": " VIP "}]},
        "store": 1
    }));
    assert_eq!(delivery.key.raw(), "order.completed:236:1");
    assert_eq!(delivery.order_id.as_deref(), Some("236"));
    let Ok(SellappAction::Grant { email, items, .. }) = delivery.outcome else { panic!("{:?}", delivery.outcome) };
    assert_eq!(email.as_str(), "buyer@example.com");
    assert_eq!(items, vec![LineItem { product_id: None, variant_id: None, title: Some("VIP".into()) }]);
}

#[test]
fn line_items_name_their_product_and_variant_ids() {
    let delivery = interpret_json(json!({
        "event": "order.completed",
        "data": {"id": 5, "customer": {"email": "b@example.com"},
                 "line_items": [{"product_id": 55, "product_variant_id": "77", "product_title": "Pro"}]},
        "store": 1
    }));
    let Ok(SellappAction::Grant { items, .. }) = delivery.outcome else { panic!("{:?}", delivery.outcome) };
    assert_eq!(
        items,
        vec![LineItem { product_id: Some("55".into()), variant_id: Some("77".into()), title: Some("Pro".into()) }]
    );
}

#[test]
fn order_paid_grants_only_with_a_completed_payment() {
    let paid = |status: Value| {
        interpret_json(
            json!({"event": "order.paid", "data": {"id": 5, "status": status, "customer": {"email": "b@example.com"}}, "store": 1}),
        )
    };
    assert!(matches!(paid(json!("COMPLETED")).outcome, Ok(SellappAction::Grant { .. })));
    assert!(matches!(paid(json!({"status": "PAID"})).outcome, Ok(SellappAction::Grant { .. })));
    assert!(matches!(paid(json!("PENDING")).outcome, Ok(SellappAction::Ignore { .. })));
    assert!(matches!(paid(Value::Null).outcome, Ok(SellappAction::Ignore { .. })));
}

#[test]
fn subscription_events_need_an_id_and_a_period_end() {
    let event = |data: Value| interpret_json(json!({"event": "subscription.renewed", "data": data, "store": 1}));
    let ok = event(json!({"id": 12, "customer": {"email": "b@example.com"},
                          "current_period_end": "2026-04-01T00:00:00Z", "updated_at": "2026-03-01T00:00:00Z",
                          "product_variant_id": 9}));
    assert_eq!(ok.key.raw(), "subscription.renewed:12@2026-04-01T00:00:00Z:1");
    let Ok(SellappAction::Subscription { subscription_id, change, period_end, event_time, items, .. }) = ok.outcome
    else {
        panic!("{:?}", ok.outcome)
    };
    assert_eq!((subscription_id.as_str(), change), ("12", SubscriptionChange::Renewed));
    assert_eq!(period_end.timestamp(), 1_775_001_600);
    assert!(event_time.is_some());
    assert_eq!(items[0].variant_id.as_deref(), Some("9"));
    let unix = event(json!({"id": 12, "customer": {"email": "b@example.com"}, "current_period_end": 1_775_001_600}));
    assert!(matches!(unix.outcome, Ok(SellappAction::Subscription { event_time: None, .. })));
    for unknown in [
        json!({"customer": {"email": "b@example.com"}, "current_period_end": "2026-04-01T00:00:00Z"}),
        json!({"id": 12, "customer": {"email": "b@example.com"}}),
        json!({"id": 12, "customer": {"email": "b@example.com"}, "current_period_end": "next month"}),
    ] {
        assert_eq!(event(unknown.clone()).outcome, Err(PayloadError::UnknownSubscriptionShape), "{unknown}");
    }
}

#[test]
fn a_new_api_order_payload_is_understood_too() {
    let delivery = interpret_json(json!({
        "event": "order.disputed",
        "data": {"id": "ord_9", "customer": {"email": "b@example.com"}, "line_items": [{"product_title": "Pro"}]},
        "store": "store-7"
    }));
    assert_eq!(delivery.key.raw(), "order.disputed:ord_9:store-7");
    assert!(matches!(delivery.outcome, Ok(SellappAction::Revoke { .. })));
}

#[test]
fn every_legacy_email_location_is_read() {
    let cases = [
        json!({"data": {"email": "x@example.com"}}),
        json!({"data": {"order": {"email": "x@example.com"}}}),
        json!({"data": {"order": {"customer_email": "x@example.com"}}}),
        json!({"data": {"billing": {"email": "x@example.com"}}}),
        json!({"customer": {"email": "x@example.com"}}),
        json!({"order": {"email": "x@example.com"}}),
    ];
    for mut case in cases {
        case["event"] = json!("order.completed");
        let delivery = interpret_json(case.clone());
        assert!(matches!(delivery.outcome, Ok(SellappAction::Grant { .. })), "{case}");
    }
}

#[test]
fn missing_and_invalid_emails_and_bodies_are_named() {
    let no_email = interpret_json(json!({"event": "order.completed", "data": {"id": 1}}));
    assert_eq!(no_email.outcome, Err(PayloadError::NoEmailInPayload));
    assert_eq!(no_email.key.raw(), "order.completed:1:no-store");
    let bad_email = interpret_json(json!({"event": "order.completed", "data": {"customer": {"email": "nope"}}}));
    assert_eq!(bad_email.outcome, Err(PayloadError::InvalidEmail));
    let not_json = interpret(&VerifiedEvent::from_recorded_failure(crate::Provider::Sellapp, b"nope".to_vec()));
    assert_eq!(not_json.outcome, Err(PayloadError::InvalidJson));
    assert_eq!(PayloadError::InvalidJson.code(), "invalid_json");
    assert_eq!(PayloadError::NoEmailInPayload.code(), "no_email_in_payload");
}

#[test]
fn purchases_without_an_order_id_get_a_key_from_their_body_so_they_are_not_duplicates_of_each_other() {
    let purchase = |email: &str| json!({"event": "order.completed", "data": {"customer_information": {"email": email}}, "store": 1});
    let first = interpret_json(purchase("first@example.com"));
    let second = interpret_json(purchase("second@example.com"));
    assert_ne!(first.key.document_id(), second.key.document_id());
    assert!(first.key.raw().starts_with("order.completed:no-order-"), "{}", first.key.raw());
    assert!(first.key.raw().ends_with(":1"), "{}", first.key.raw());
    assert_eq!(first.order_id, None);
    let redelivery = interpret_json(purchase("first@example.com"));
    assert_eq!(redelivery.key, first.key, "an identical redelivery is still recognised as a duplicate");
}

#[test]
fn a_blank_or_null_order_id_counts_as_no_order_id() {
    for id in [json!(""), json!("  "), json!(null), json!({"nested": 1})] {
        let a = interpret_json(json!({"event": "order.completed", "data": {"id": id, "email": "a@example.com"}}));
        let b = interpret_json(json!({"event": "order.completed", "data": {"id": id, "email": "b@example.com"}}));
        assert_eq!(a.order_id, None, "{id}");
        assert_ne!(a.key, b.key, "{id}");
    }
}

#[test]
fn keys_of_payloads_with_an_order_id_stay_those_of_the_replaced_deployment() {
    let body = json!({"event": "order.completed", "data": {"id": 236, "email": "a@example.com"}, "store": 1});
    let delivery = interpret_json(body);
    let legacy_id = hex::encode(sha2::Sha256::digest(b"order.completed:236:1"));
    assert_eq!(delivery.key.document_id().as_str(), &legacy_id[..36]);
}

#[test]
fn other_events_are_ignored_without_needing_an_email() {
    let delivery = interpret_json(json!({"event": "product.updated", "data": {"id": 3}}));
    assert_eq!(delivery.outcome, Ok(SellappAction::Ignore { event: Some("product.updated".into()) }));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = interpret(&VerifiedEvent::from_recorded_failure(crate::Provider::Sellapp, bytes));
    }

    #[test]
    fn arbitrary_json_never_panics(event in "[a-z.]{0,20}", id in any::<i64>(), email in ".{0,40}") {
        let _ = interpret_json(json!({"event": event, "data": {"id": id, "customer": {"email": email}}, "store": id}));
    }
}

//! Stripe API answers, as the client decodes them (`tollgate_stripe::decode_response`, then the object
//! decoders): any status and body give a value or a typed error, never a panic. An error never carries the
//! client's key, and its texts are at most 200 characters; an object that decodes carries the id, customer
//! and status the body gives (never a default), and a page carries the body's own `data` and `has_more`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_core::Secret;
use tollgate_fuzz::status_and_body;
use tollgate_stripe::{
    customer_from, decode_response, page_from, session_from, subscription_from, webhook_endpoint_from, StripeError,
};

/// Stripe's documented test key: the seeds under `fuzz/seeds/stripe_decode/` quote it in error messages.
const KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

/// A non-empty string field, as the decoders require one.
fn field<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name)?.as_str().filter(|s| !s.is_empty())
}

fn check_error(status: u16, error: &StripeError) {
    match error {
        StripeError::Api { status: answered, kind, code, message, param } => {
            assert_eq!(*answered, status);
            assert!(!(200..300).contains(answered), "a 2xx answer read as an API error");
            for text in [Some(kind), code.as_ref(), Some(message), param.as_ref()].into_iter().flatten() {
                assert!(!text.contains(KEY), "the key in an error: {text}");
                // Cut to 200 characters, then words masked: what is not a mask is at most 200 characters.
                assert!(text.replace("[redacted]", "").chars().count() <= 200, "{text}");
            }
            assert_eq!(error.is_retryable(), status == 429 || status >= 500);
            assert_eq!(error.is_missing(), status == 404);
            assert_eq!(error.is_refused_key(), status == 401 || status == 403);
        }
        StripeError::Decode(_) => assert!((200..300).contains(&status)),
        other => panic!("a response decoded to {other:?}"),
    }
    assert!(!error.to_string().contains(KEY));
}

fn check_value(value: &Value) {
    if let Ok(subscription) = subscription_from(value.clone()) {
        assert_eq!(Some(subscription.id.as_str()), field(value, "id"));
        assert_eq!(Some(subscription.status.as_str()), field(value, "status"));
        assert!(!subscription.customer.is_empty());
        assert_eq!(&subscription.raw, value);
        let latest_item_end = subscription.items.iter().filter_map(|item| item.current_period_end).max();
        let own_end = value.get("current_period_end").and_then(Value::as_i64);
        assert_eq!(subscription.current_period_end, latest_item_end.or(own_end));
        assert!(subscription.items.iter().all(|item| !item.id.is_empty() && !item.price_id.is_empty()));
    }
    if let Ok(customer) = customer_from(value.clone()) {
        assert_eq!(Some(customer.id.as_str()), field(value, "id"));
        assert_eq!(customer.deleted, value.get("deleted").and_then(Value::as_bool) == Some(true));
    }
    if let Ok(session) = session_from(value.clone()) {
        assert_eq!(Some(session.id.as_str()), field(value, "id"));
        assert_eq!(Some(session.url.as_str()), field(value, "url"));
    }
    if let Ok(endpoint) = webhook_endpoint_from(value.clone()) {
        assert_eq!(Some(endpoint.id.as_str()), field(value, "id"));
        assert_eq!(Some(endpoint.status.as_str()), field(value, "status"));
    }
    match page_from(value.clone()) {
        Ok(page) => {
            assert_eq!(Some(page.has_more), value.get("has_more").and_then(Value::as_bool));
            assert_eq!(Some(&page.data), value.get("data").and_then(Value::as_array));
            page.data.iter().for_each(check_value);
        }
        Err(error) => assert!(matches!(error, StripeError::Decode(_))),
    }
}

fuzz_target!(|data: &[u8]| {
    let (status, body) = status_and_body(data);
    let key = Secret::new(KEY);
    let first = decode_response(status, body, &key);
    assert_eq!(first, decode_response(status, body, &key), "the same answer decoded twice differently");
    match &first {
        Ok(value) => {
            assert!((200..300).contains(&status));
            check_value(value);
        }
        Err(error) => check_error(status, error),
    }
});

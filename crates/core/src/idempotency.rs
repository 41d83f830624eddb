//! Idempotency keys for webhook deliveries and the deterministic Appwrite document ids derived from them.
//!
//! A key is claimed in Appwrite by creating a document with the derived id, so that a second delivery of
//! the same event collides (409) instead of being applied twice. Sell.app deliveries carry no delivery id,
//! so their key is `"{event}:{orderId}:{store}"` and the document id is the first 36 hex characters of its
//! SHA-256: exactly what the deployment Tollgate replaces writes (docs/compatibility.md), so events it already
//! processed are still recognised as duplicates.
//!
//! A Sell.app payload without an order id (`data.id`) is the exception. The replaced deployment keyed it
//! `"{event}:no-order:{store}"`, one key per (event, store): every such purchase after the first collided
//! with the first one's claim, was answered 200 `duplicate` and lost. Such a payload has no identity but
//! its bytes, so its key carries the first 16 hex characters of the body's SHA-256 instead:
//! `"{event}:no-order-{hash16}:{store}"`. Distinct bodies get distinct keys, an identical redelivery gets
//! the same key (and is still a duplicate), and keys of payloads with an order id are unchanged.

use crate::ids::AppwriteId;
use sha2::{Digest, Sha256};

/// Placeholder for a Sell.app payload without `data.id` (docs/compatibility.md), followed by `-` and
/// [`NO_ORDER_HASH_CHARS`] hex characters of the body's SHA-256 (see the module docs).
pub const NO_ORDER: &str = "no-order";
/// Hex characters of the body's SHA-256 in the key of a Sell.app payload without `data.id` (64 bits).
pub const NO_ORDER_HASH_CHARS: usize = 16;
/// Placeholder for a Sell.app payload without a top-level `store` (docs/compatibility.md).
pub const NO_STORE: &str = "no-store";
/// Placeholder for a payload without an `event` name.
pub const NO_EVENT: &str = "no-event";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    raw: String,
    document_id: AppwriteId,
}

impl IdempotencyKey {
    /// Sell.app: `(event, data.id, store)`, hashed as the existing deployment does. Without an order id
    /// the body's hash stands in for it (see the module docs); `body` is not read otherwise.
    pub fn sellapp(event: Option<&str>, order_id: Option<&str>, store: Option<&str>, body: &[u8]) -> Self {
        let order = match order_id {
            Some(order_id) => order_id.to_owned(),
            None => format!("{NO_ORDER}-{}", &payload_hash(body)[..NO_ORDER_HASH_CHARS]),
        };
        Self::from_raw(format!("{}:{order}:{}", event.unwrap_or(NO_EVENT), store.unwrap_or(NO_STORE)))
    }

    /// A provider's own event or message id (Stripe `evt_…`, Standard Webhooks `webhook-id`), namespaced by
    /// provider so two providers' ids can never collide.
    pub fn provider_event(provider: &str, event_id: &str) -> Self {
        Self::from_raw(format!("{provider}:{event_id}"))
    }

    /// An authentic payload that could not be parsed at all: the only stable identity is its bytes.
    pub fn unparsable(provider: &str, body: &[u8]) -> Self {
        Self::from_raw(format!("{provider}:unparsable:{}", payload_hash(body)))
    }

    fn from_raw(raw: String) -> Self {
        let document_id = derived_document_id(&raw);
        Self { raw, document_id }
    }

    /// The unhashed key, stored as `eventId`.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The deterministic document id of the `webhook_events` claim (and of the failure record).
    pub fn document_id(&self) -> &AppwriteId {
        &self.document_id
    }
}

/// A deterministic Appwrite document id for any text: the first 36 hex characters of its SHA-256.
pub fn derived_document_id(text: &str) -> AppwriteId {
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    AppwriteId::parse(&digest[..36])
        .unwrap_or_else(|_| unreachable!("36 lowercase hex characters are always a valid Appwrite id"))
}

/// SHA-256 of the raw body, lowercase hex: the `payloadHash` attribute.
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sellapp_document_id_is_the_first_36_hex_chars_of_sha256_of_the_key() {
        let key = IdempotencyKey::sellapp(Some("order.completed"), Some("236"), Some("1"), b"any body");
        assert_eq!(key.raw(), "order.completed:236:1");
        let expected = hex::encode(Sha256::digest(b"order.completed:236:1"));
        assert_eq!(key.document_id().as_str(), &expected[..36]);
    }

    #[test]
    fn sellapp_keys_with_an_order_id_do_not_depend_on_the_body() {
        let first = IdempotencyKey::sellapp(Some("order.completed"), Some("236"), None, b"{\"a\":1}");
        let redelivered = IdempotencyKey::sellapp(Some("order.completed"), Some("236"), None, b"{\"a\": 1}");
        assert_eq!(first, redelivered);
        assert_eq!(first.raw(), "order.completed:236:no-store");
    }

    #[test]
    fn sellapp_keys_without_an_order_id_carry_the_body_hash_and_the_existing_placeholders() {
        let body = br#"{"event":"order.completed","data":{"customer_information":{"email":"a@example.com"}}}"#;
        let key = IdempotencyKey::sellapp(Some("order.completed"), None, None, body);
        let hash = hex::encode(Sha256::digest(body));
        assert_eq!(key.raw(), format!("order.completed:no-order-{}:no-store", &hash[..16]));
        let expected_id = hex::encode(Sha256::digest(key.raw().as_bytes()));
        assert_eq!(key.document_id().as_str(), &expected_id[..36]);
    }

    #[test]
    fn distinct_purchases_without_an_order_id_get_distinct_keys_and_a_redelivery_the_same_key() {
        let a = br#"{"event":"order.completed","data":{"customer_information":{"email":"a@example.com"}},"store":1}"#;
        let b = br#"{"event":"order.completed","data":{"customer_information":{"email":"b@example.com"}},"store":1}"#;
        let key = |body: &[u8]| IdempotencyKey::sellapp(Some("order.completed"), None, Some("1"), body);
        assert_ne!(key(a).document_id(), key(b).document_id());
        assert_eq!(key(a), key(a));
    }

    proptest::proptest! {
        #[test]
        fn only_payloads_without_an_order_id_are_keyed_by_their_body(
            a in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            order in "[0-9a-z-]{1,36}",
        ) {
            let with_order = |body: &[u8]| IdempotencyKey::sellapp(Some("order.completed"), Some(&order), Some("1"), body);
            proptest::prop_assert_eq!(with_order(&a), with_order(&b));
            let without_order = |body: &[u8]| IdempotencyKey::sellapp(Some("order.completed"), None, Some("1"), body);
            proptest::prop_assert_eq!(without_order(&a) == without_order(&b), a == b);
        }
    }

    #[test]
    fn provider_event_keys_are_namespaced() {
        let a = IdempotencyKey::provider_event("stripe", "evt_1");
        let b = IdempotencyKey::provider_event("sellapp", "evt_1");
        assert_ne!(a.document_id(), b.document_id());
    }

    #[test]
    fn payload_hash_matches_the_vector_file() {
        let body = br#"{"event":"order.completed","data":{"id":236,"customer_information":{"email":"buyer@example.com"}},"store":1}"#;
        assert_eq!(payload_hash(body), "20ba42a77b40e4bb62f9bef92eddfc10fc9fef7ce6cb6fe0f4083278e6305db9");
    }
}

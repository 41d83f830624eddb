//! Idempotency keys for webhook deliveries and the deterministic Appwrite document ids derived from them.
//!
//! A key is claimed in Appwrite by creating a document with the derived id, so that a second delivery of
//! the same event collides (409) instead of being applied twice. Sell.app deliveries carry no delivery id,
//! so their key is `"{event}:{orderId}:{store}"` and the document id is the first 36 hex characters of its
//! SHA-256: exactly what the deployment Tollgate replaces writes (docs/compatibility.md), so events it already
//! processed are still recognised as duplicates.

use crate::ids::AppwriteId;
use sha2::{Digest, Sha256};

/// Placeholder for a Sell.app payload without `data.id` (docs/compatibility.md).
pub const NO_ORDER: &str = "no-order";
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
    /// Sell.app: `(event, data.id, store)`, hashed as the existing deployment does.
    pub fn sellapp(event: Option<&str>, order_id: Option<&str>, store: Option<&str>) -> Self {
        let raw =
            format!("{}:{}:{}", event.unwrap_or(NO_EVENT), order_id.unwrap_or(NO_ORDER), store.unwrap_or(NO_STORE));
        Self::from_raw(raw)
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
        let key = IdempotencyKey::sellapp(Some("order.completed"), Some("236"), Some("1"));
        assert_eq!(key.raw(), "order.completed:236:1");
        let expected = hex::encode(Sha256::digest(b"order.completed:236:1"));
        assert_eq!(key.document_id().as_str(), &expected[..36]);
    }

    #[test]
    fn sellapp_missing_parts_use_the_existing_placeholders() {
        let key = IdempotencyKey::sellapp(Some("order.completed"), None, None);
        assert_eq!(key.raw(), "order.completed:no-order:no-store");
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

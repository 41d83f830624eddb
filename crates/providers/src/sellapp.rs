//! Sell.app signatures. Today Sell.app sends `signature`: the lowercase hex HMAC-SHA256 of the raw body,
//! keyed with the store's webhook secret as-is (no timestamp, so no replay window: idempotency is what
//! makes a replayed delivery harmless). Its newer webhook channels may send Standard Webhooks headers
//! (unconfirmed, docs/protocols.md §1.2): when all three `webhook-*` headers are present they are verified
//! instead, with the secret base64-decoded if it is a `whsec_` secret and used as raw bytes otherwise. A
//! `whsec_` secret that does not decode is [`VerifyFailure::Misconfigured`], not a rejection of the
//! request: the delivery must be retried once the setting is fixed.

use crate::error::{hmac_sha256, same, VerifyError, VerifyFailure};
use crate::headers::Headers;
use crate::standard_webhooks::{self, StandardWebhooksKey};
use crate::verified::{Provider, VerifiedEvent};
use chrono::{DateTime, Utc};
use tollgate_core::Secret;

pub const SIGNATURE_HEADER: &str = "signature";
const HEX_SIGNATURE_LEN: usize = 64;

pub fn verify(
    body: &[u8],
    headers: &Headers,
    secret: &Secret,
    now: DateTime<Utc>,
) -> Result<VerifiedEvent, VerifyFailure> {
    if standard_webhooks::has_headers(headers) {
        let key = if secret.expose().starts_with("whsec_") {
            StandardWebhooksKey::from_whsec(secret.expose())?
        } else {
            StandardWebhooksKey::raw(secret.expose().as_bytes())
        };
        standard_webhooks::verify(body, headers, &key, now)?;
        return Ok(VerifiedEvent::new(Provider::Sellapp, body));
    }
    let signature = headers.non_empty(SIGNATURE_HEADER).ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
    if signature.len() != HEX_SIGNATURE_LEN {
        return Err(VerifyError::MalformedSignature.into());
    }
    let given = hex::decode(signature).map_err(|_| VerifyError::MalformedSignature)?;
    let expected = hmac_sha256(secret.expose().as_bytes(), &[body]);
    if same(&given, &expected) {
        Ok(VerifiedEvent::new(Provider::Sellapp, body))
    } else {
        Err(VerifyError::SignatureMismatch.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::InvalidSecret;
    use crate::standard_webhooks::{ID_HEADER, SIGNATURE_HEADER as STDWH_SIGNATURE, TIMESTAMP_HEADER};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    const BODY: &[u8] = br#"{"event":"order.completed","data":{"id":1,"email":"a@example.com"},"store":1}"#;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).expect("a valid time")
    }

    fn standard_webhooks_headers(key: &[u8]) -> Headers {
        let (id, timestamp) = ("msg_1", now().timestamp().to_string());
        let mac = hmac_sha256(key, &[id.as_bytes(), b".", timestamp.as_bytes(), b".", BODY]);
        Headers::from_pairs([
            (ID_HEADER, id.to_owned()),
            (TIMESTAMP_HEADER, timestamp),
            (STDWH_SIGNATURE, format!("v1,{}", STANDARD.encode(mac))),
        ])
    }

    #[test]
    fn a_whsec_secret_that_is_not_base64_is_a_misconfiguration_not_a_rejected_request() {
        let secret = Secret::new("whsec_this is not base64!");
        let headers = standard_webhooks_headers(b"whatever the sender used");
        assert_eq!(verify(BODY, &headers, &secret, now()).map(drop), Err(VerifyFailure::Misconfigured(InvalidSecret)));
        let empty = Secret::new("whsec_");
        assert_eq!(verify(BODY, &headers, &empty, now()).map(drop), Err(VerifyFailure::Misconfigured(InvalidSecret)));
    }

    #[test]
    fn a_valid_whsec_secret_verifies_with_its_decoded_bytes_and_rejects_other_keys() {
        let key = b"0123456789abcdef0123456789abcdef";
        let secret = Secret::new(format!("whsec_{}", STANDARD.encode(key)));
        assert!(verify(BODY, &standard_webhooks_headers(key), &secret, now()).is_ok());
        assert_eq!(
            verify(BODY, &standard_webhooks_headers(b"another key"), &secret, now()).map(drop),
            Err(VerifyFailure::Rejected(VerifyError::SignatureMismatch))
        );
    }

    #[test]
    fn legacy_hex_signatures_use_the_secret_as_it_is_even_when_it_looks_like_whsec() {
        let secret = Secret::new("whsec_this is not base64!");
        let signature = hex::encode(hmac_sha256(secret.expose().as_bytes(), &[BODY]));
        let headers = Headers::from_pairs([(SIGNATURE_HEADER, signature)]);
        assert!(verify(BODY, &headers, &secret, now()).is_ok());
    }
}

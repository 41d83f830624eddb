//! Sell.app signatures. Today Sell.app sends `signature`: the lowercase hex HMAC-SHA256 of the raw body,
//! keyed with the store's webhook secret as-is (no timestamp, so no replay window: idempotency is what
//! makes a replayed delivery harmless). Its newer webhook channels may send Standard Webhooks headers
//! (unconfirmed, PROTOCOLS.md §1.2): when all three `webhook-*` headers are present they are verified
//! instead, with the secret base64-decoded if it is a `whsec_` secret and used as raw bytes otherwise.

use crate::error::{hmac_sha256, same, VerifyError};
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
) -> Result<VerifiedEvent, VerifyError> {
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
        return Err(VerifyError::MalformedSignature);
    }
    let given = hex::decode(signature).map_err(|_| VerifyError::MalformedSignature)?;
    let expected = hmac_sha256(secret.expose().as_bytes(), &[body]);
    if same(&given, &expected) {
        Ok(VerifiedEvent::new(Provider::Sellapp, body))
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`, signed payload `{t}.{body}`.
//!
//! The HMAC key is the **whole** endpoint secret string, `whsec_` prefix included, as UTF-8 (unlike
//! Standard Webhooks, which base64-decodes after the prefix): stripe-go and the official libraries key
//! with `[]byte(secret)`. Any `v1` may match (Stripe sends two while a secret is rolled); `v0` is Stripe's
//! test scheme and is never accepted; a `v1` that is not hex is skipped. The timestamp is checked in both
//! directions (Tollgate's choice: stripe-go checks only the old side), so neither a replayed capture nor a
//! signature made with a clock far ahead is accepted.

use crate::error::{check_timestamp, hmac_sha256, same, VerifyError};
use crate::headers::Headers;
use crate::verified::{Provider, VerifiedEvent};
use chrono::{DateTime, Utc};
use tollgate_core::Secret;

pub const STRIPE_TOLERANCE_SECS: i64 = 300;
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

pub fn verify(
    body: &[u8],
    headers: &Headers,
    secret: &Secret,
    now: DateTime<Utc>,
) -> Result<VerifiedEvent, VerifyError> {
    let header = headers.non_empty(SIGNATURE_HEADER).ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
    let mut timestamp: Option<&str> = None;
    let mut v1: Vec<&str> = Vec::new();
    for item in header.split(',') {
        let (key, value) = item.trim().split_once('=').ok_or(VerifyError::MalformedHeader)?;
        match key {
            "t" => timestamp = Some(value),
            "v1" => v1.push(value),
            _ => {}
        }
    }
    let raw_timestamp = timestamp.ok_or(VerifyError::MalformedHeader)?;
    let seconds: i64 = raw_timestamp.parse().map_err(|_| VerifyError::MalformedHeader)?;
    if v1.is_empty() {
        return Err(VerifyError::NoV1Signature);
    }
    check_timestamp(seconds, now, STRIPE_TOLERANCE_SECS)?;
    let candidates: Vec<Vec<u8>> = v1.iter().filter_map(|s| hex::decode(s).ok()).collect();
    if candidates.is_empty() {
        return Err(VerifyError::MalformedSignature);
    }
    let expected = hmac_sha256(secret.expose().as_bytes(), &[raw_timestamp.as_bytes(), b".", body]);
    if candidates.iter().any(|candidate| same(candidate, &expected)) {
        Ok(VerifiedEvent::new(Provider::Stripe, body))
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

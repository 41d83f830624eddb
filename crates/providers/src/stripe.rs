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

/// Verifies against each configured secret (`STRIPE_WEBHOOK_SECRET` may list several while a secret is
/// rotated): the first that verifies wins. When none does, the error is the first secret's (a header
/// error is the same for every secret).
pub fn verify_any(
    body: &[u8],
    headers: &Headers,
    secrets: &[Secret],
    now: DateTime<Utc>,
) -> Result<VerifiedEvent, VerifyError> {
    let mut first_error = VerifyError::SignatureMismatch;
    for (i, secret) in secrets.iter().enumerate() {
        match verify(body, headers, secret, now) {
            Ok(event) => return Ok(event),
            Err(e) if i == 0 => first_error = e,
            Err(_) => {}
        }
    }
    Err(first_error)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, t: i64, body: &str) -> Headers {
        let mac = hmac_sha256(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body.as_bytes()]);
        Headers::from_pairs(vec![(SIGNATURE_HEADER.to_owned(), format!("t={t},v1={}", hex::encode(mac)))])
    }

    #[test]
    fn any_of_several_configured_secrets_verifies_during_a_rotation() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let body = r#"{"id":"evt_1"}"#;
        let secrets = [Secret::new("whsec_new"), Secret::new("whsec_old")];
        assert!(verify_any(body.as_bytes(), &signed("whsec_old", 1_700_000_000, body), &secrets, now).is_ok());
        assert!(verify_any(body.as_bytes(), &signed("whsec_new", 1_700_000_000, body), &secrets, now).is_ok());
        let other = signed("whsec_other", 1_700_000_000, body);
        assert_eq!(verify_any(body.as_bytes(), &other, &secrets, now), Err(VerifyError::SignatureMismatch));
        let old = signed("whsec_new", 1_699_999_000, body);
        assert_eq!(verify_any(body.as_bytes(), &old, &secrets, now), Err(VerifyError::TimestampTooOld));
        assert_eq!(verify_any(body.as_bytes(), &other, &[], now), Err(VerifyError::SignatureMismatch));
    }
}

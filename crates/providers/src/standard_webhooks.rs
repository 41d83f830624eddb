//! Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` (a space-delimited list of
//! `version,signature`); `v1` is base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`. Any matching `v1` is
//! accepted (key rotation sends several); unknown versions (`v1a`, ...) are ignored. The timestamp must be
//! within [`STANDARD_WEBHOOKS_TOLERANCE_SECS`] of now in both directions, so a captured request cannot be
//! replayed later and a clock far ahead is noticed.

use crate::error::{check_timestamp, hmac_sha256, same, InvalidSecret, VerifyError};
use crate::headers::Headers;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};

pub const STANDARD_WEBHOOKS_TOLERANCE_SECS: i64 = 300;
pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
const SECRET_PREFIX: &str = "whsec_";

/// The HMAC key.
pub struct StandardWebhooksKey(Vec<u8>);

impl StandardWebhooksKey {
    /// The scheme's own serialisation: `whsec_` + base64 (the prefix is optional, as in the reference
    /// libraries). A secret that does not decode, or decodes to no bytes, is a configuration error.
    pub fn from_whsec(secret: &str) -> Result<Self, InvalidSecret> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        match STANDARD.decode(encoded) {
            Ok(key) if !key.is_empty() => Ok(Self(key)),
            _ => Err(InvalidSecret),
        }
    }

    /// The secret's bytes as they are.
    pub fn raw(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

/// Are all three headers present? (Sell.app uses this scheme only then.)
pub fn has_headers(headers: &Headers) -> bool {
    [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER].iter().all(|name| headers.get(name).is_some())
}

/// Verifies and returns the message id (the idempotency key).
pub fn verify<'h>(
    body: &[u8],
    headers: &'h Headers,
    key: &StandardWebhooksKey,
    now: DateTime<Utc>,
) -> Result<&'h str, VerifyError> {
    let id = headers.non_empty(ID_HEADER).ok_or(VerifyError::MissingHeader(ID_HEADER))?;
    let raw_timestamp = headers.non_empty(TIMESTAMP_HEADER).ok_or(VerifyError::MissingHeader(TIMESTAMP_HEADER))?;
    let signatures = headers.non_empty(SIGNATURE_HEADER).ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
    let timestamp: i64 = raw_timestamp.parse().map_err(|_| VerifyError::MalformedHeader)?;
    check_timestamp(timestamp, now, STANDARD_WEBHOOKS_TOLERANCE_SECS)?;

    let v1: Vec<&str> = signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .map(|(_, signature)| signature)
        .collect();
    if v1.is_empty() {
        return Err(VerifyError::NoV1Signature);
    }
    let decoded: Vec<Vec<u8>> = v1.iter().filter_map(|s| STANDARD.decode(s).ok()).filter(|s| !s.is_empty()).collect();
    if decoded.is_empty() {
        return Err(VerifyError::MalformedSignature);
    }
    let expected = hmac_sha256(&key.0, &[id.as_bytes(), b".", raw_timestamp.as_bytes(), b".", body]);
    if decoded.iter().any(|candidate| same(candidate, &expected)) {
        Ok(id)
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whsec_secret_that_is_not_base64_or_is_empty_is_a_configuration_error() {
        assert!(StandardWebhooksKey::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(matches!(StandardWebhooksKey::from_whsec("whsec_not base64!"), Err(InvalidSecret)));
        assert!(matches!(StandardWebhooksKey::from_whsec("whsec_"), Err(InvalidSecret)));
    }
}

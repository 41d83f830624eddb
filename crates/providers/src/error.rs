//! Why a delivery was not verified. [`VerifyError`]: the request is not authentic; its `reason` strings
//! are the ones of `testdata/vectors` and the `error` field of the webhook worker's 401 answers.
//! [`InvalidSecret`]: the configured secret cannot be used, whatever the request; this is the operator's
//! error, not the sender's, and is kept apart so that it is never answered like a bad signature (a 401
//! makes the provider stop retrying, and every delivery until the fix would be lost). Messages never
//! contain a secret or a signature.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the signature header is malformed")]
    MalformedHeader,
    #[error("the signature is malformed")]
    MalformedSignature,
    #[error("no v1 signature in the header")]
    NoV1Signature,
    #[error("the signature does not match")]
    SignatureMismatch,
    #[error("the timestamp is too old")]
    TimestampTooOld,
    #[error("the timestamp is in the future")]
    TimestampTooNew,
}

/// The configured signing secret is a `whsec_` secret that is not valid base64, or decodes to no bytes
/// (an empty HMAC key, which anyone could sign with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the configured signing secret is a whsec_ secret that is not valid non-empty base64")]
pub struct InvalidSecret;

/// Why a verifier that decodes its configured secret did not accept a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyFailure {
    /// The request is not authentic (answer 401).
    #[error(transparent)]
    Rejected(#[from] VerifyError),
    /// The secret is misconfigured; nothing about the request is known (answer 503, so it is retried).
    #[error(transparent)]
    Misconfigured(#[from] InvalidSecret),
}

impl VerifyError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader => "malformed_header",
            Self::MalformedSignature => "malformed_signature",
            Self::NoV1Signature => "no_v1_signature",
            Self::SignatureMismatch => "signature_mismatch",
            Self::TimestampTooOld => "timestamp_too_old",
            Self::TimestampTooNew => "timestamp_too_new",
        }
    }
}

/// Checks `timestamp` (unix seconds) against `now` with `tolerance` seconds either way.
pub(crate) fn check_timestamp(
    timestamp: i64,
    now: chrono::DateTime<chrono::Utc>,
    tolerance: i64,
) -> Result<(), VerifyError> {
    let now = now.timestamp();
    if now.saturating_sub(timestamp) > tolerance {
        Err(VerifyError::TimestampTooOld)
    } else if timestamp.saturating_sub(now) > tolerance {
        Err(VerifyError::TimestampTooNew)
    } else {
        Ok(())
    }
}

/// HMAC-SHA256 of `parts` concatenated, with `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm cannot be taken.
        Err(_) => return Vec::new(),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time equality (lengths are not secret).
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

//! Why a signature was not accepted. The `reason` strings are the ones of `testdata/vectors` and the
//! `error` field of the webhook worker's 401 answers. Messages never contain a secret or a signature.

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
    #[error("the configured signing secret is not valid base64")]
    InvalidSecret,
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
            Self::InvalidSecret => "invalid_secret",
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

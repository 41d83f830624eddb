//! Secure random tokens (OAuth `state`, PKCE verifiers, role-sync request ids), from the platform's
//! generator (`getrandom`: the OS natively, `crypto.getRandomValues` in workerd).

use crate::error::StepError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// `bytes` random bytes, base64url without padding.
pub fn random_token(bytes: usize) -> Result<String, StepError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| StepError {
        code: "no_randomness",
        message: format!("no secure randomness available: {e}"),
        status: None,
        error_type: None,
        retryable: true,
    })?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

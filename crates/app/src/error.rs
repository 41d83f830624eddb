//! Why a step of applying a webhook failed, in the terms a `webhook_failures` record stores
//! (`errorCode`, `errorMessage`, `errorStatus`, `errorType`). The code decides retryable vs permanent.

use tollgate_appwrite::AppwriteError;
use tollgate_providers::PayloadError;

/// The code of a [`StepError::discord_unavailable`] (the api answers it 503).
pub const DISCORD_UNAVAILABLE: &str = "discord_unavailable";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StepError {
    pub code: &'static str,
    pub message: String,
    pub status: Option<u16>,
    pub error_type: Option<String>,
    /// `false`: retrying the same body cannot succeed (it needs a fix, then a replay).
    pub retryable: bool,
}

impl StepError {
    /// A failure that retrying cannot fix (it needs an admin, a fix, then a replay).
    pub fn permanent(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), status: None, error_type: None, retryable: false }
    }

    /// A failure that may pass by itself: retried on the schedule.
    pub fn transient(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), status: None, error_type: None, retryable: true }
    }

    pub fn appwrite(step: &str, error: &AppwriteError) -> Self {
        Self {
            code: "appwrite_error",
            message: format!("{step}: {error}"),
            status: error.status,
            error_type: Some(error.kind.as_type().to_owned()),
            retryable: true,
        }
    }

    pub fn discord(step: &str, error: &tollgate_discord::DiscordError) -> Self {
        Self {
            code: "discord_error",
            message: format!("{step}: {error}"),
            status: None,
            error_type: None,
            retryable: error.is_retryable(),
        }
    }

    /// Discord was not called because its shared rate limiter could not be reached: try again later.
    pub fn discord_unavailable(step: &str, error: &tollgate_discord::DiscordError) -> Self {
        Self::transient(DISCORD_UNAVAILABLE, format!("{step}: {error}"))
    }

    pub fn unexpected_user_id(raw: &str, error: &tollgate_core::IdError) -> Self {
        Self {
            code: "appwrite_error",
            message: format!("Appwrite returned a user id Tollgate cannot use (`{raw}`): {error}"),
            status: None,
            error_type: None,
            retryable: false,
        }
    }

    pub fn payload(error: &PayloadError) -> Self {
        Self { code: error.code(), message: error.to_string(), status: None, error_type: None, retryable: false }
    }

    pub fn stripe_payload(error: &tollgate_providers::stripe_payload::StripePayloadError) -> Self {
        Self { code: error.code(), message: error.to_string(), status: None, error_type: None, retryable: false }
    }
}

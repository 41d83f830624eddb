//! The webhook boundary's errors and their HTTP answers. Bodies are short and carry a machine-readable
//! `error` code only: for Sell.app dynamic products the response body reaches the customer, so nothing
//! internal is ever returned (details go to the log).

use serde_json::json;
use tollgate_providers::{VerifyError, VerifyFailure};
use worker::Response;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("body larger than the limit")]
    PayloadTooLarge,
    #[error("signature not accepted: {0}")]
    Unauthorized(VerifyError),
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("no such route")]
    NotFound,
    #[error("the request body could not be read")]
    UnreadableBody,
    #[error("a valid admin token is required")]
    AdminUnauthenticated,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Appwrite failed an admin's request; nothing was changed that a retry would not redo.
    #[error("an upstream service failed: {0}")]
    Upstream(String),
    /// A setting is missing: nothing could be verified or recorded, so the provider must retry later.
    #[error("not configured: {0}")]
    Misconfigured(String),
    /// Not even the failure record could be written: the provider must retry.
    #[error("could not record the delivery: {0}")]
    FailureNotRecorded(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebhookError {
    fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            Self::PayloadTooLarge => (413, "payload_too_large"),
            Self::Unauthorized(reason) => (401, reason.reason()),
            Self::MethodNotAllowed { .. } => (405, "method_not_allowed"),
            Self::NotFound => (404, "not_found"),
            Self::UnreadableBody => (400, "unreadable_body"),
            Self::AdminUnauthenticated => (401, "unauthenticated"),
            Self::BadRequest(code) => (400, code),
            Self::Upstream(_) => (502, "upstream_error"),
            Self::Misconfigured(_) => (503, "not_configured"),
            Self::FailureNotRecorded(_) => (503, "temporarily_unavailable"),
            Self::Internal(_) => (500, "internal_error"),
        }
    }

    /// The machine-readable code the answer carries (and the invocation's log line).
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    pub fn into_response(self) -> worker::Result<Response> {
        let (status, code) = self.status_and_code();
        if status >= 500 {
            worker::console_error!("webhook: {self}");
        }
        let mut response = json(status, &json!({ "ok": false, "error": code }))?;
        if let Self::MethodNotAllowed { allow } = self {
            response.headers_mut().set("Allow", allow)?;
        }
        if status == 503 {
            response.headers_mut().set("Retry-After", "60")?;
        }
        Ok(response)
    }
}

impl From<VerifyFailure> for WebhookError {
    fn from(failure: VerifyFailure) -> Self {
        match failure {
            VerifyFailure::Rejected(reason) => Self::Unauthorized(reason),
            // The operator's mistake, not the sender's: a 401 would make the provider stop retrying and
            // every delivery until the fix would be lost; 503 keeps them coming.
            VerifyFailure::Misconfigured(error) => Self::Misconfigured(format!("SELLAPP_WEBHOOK_SECRET: {error}")),
        }
    }
}

/// A JSON response with a status.
pub fn json(status: u16, body: &serde_json::Value) -> worker::Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

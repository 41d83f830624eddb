//! The API boundary's errors: `{"error": {"code", "message"}}` with an explicit status each; internal
//! details are logged, never returned (500s say nothing more than that).

use serde_json::json;
use worker::Response;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid Appwrite session JWT is required")]
    Unauthenticated,
    #[error("a valid admin token is required")]
    AdminUnauthenticated,
    /// Authenticated, but not allowed (`not_an_admin`, `origin_not_allowed`).
    #[error("{reason}")]
    Forbidden { code: &'static str, reason: &'static str },
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{reason}")]
    BadRequest { code: &'static str, reason: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("not configured: {0}")]
    Misconfigured(String),
    #[error("an upstream service failed")]
    Upstream(String),
}

impl ApiError {
    fn parts(&self) -> (u16, &'static str) {
        match self {
            Self::Unauthenticated | Self::AdminUnauthenticated => (401, "unauthenticated"),
            Self::Forbidden { code, .. } => (403, code),
            Self::NotFound(_) => (404, "not_found"),
            Self::BadRequest { code, .. } => (400, code),
            Self::MethodNotAllowed => (405, "method_not_allowed"),
            Self::Misconfigured(_) => (503, "not_configured"),
            Self::Upstream(_) => (502, "upstream_error"),
        }
    }

    pub fn bad_request(code: &'static str, reason: impl Into<String>) -> Self {
        Self::BadRequest { code, reason: reason.into() }
    }

    pub fn into_response(self) -> worker::Result<Response> {
        let (status, code) = self.parts();
        let message = match &self {
            Self::Misconfigured(detail) | Self::Upstream(detail) => {
                worker::console_error!("api: {code}: {detail}");
                match self {
                    Self::Misconfigured(_) => "the service is not configured".to_owned(),
                    _ => "an upstream service failed; try again".to_owned(),
                }
            }
            other => other.to_string(),
        };
        Ok(Response::from_json(&json!({ "error": { "code": code, "message": message } }))?.with_status(status))
    }
}

impl From<tollgate_app::StepError> for ApiError {
    fn from(e: tollgate_app::StepError) -> Self {
        Self::Upstream(e.to_string())
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        Self::Upstream(e.to_string())
    }
}

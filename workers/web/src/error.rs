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
    /// Discord is not called right now (its shared rate limiter cannot be reached); logged, try again.
    #[error("Discord cannot be reached right now; try again shortly")]
    DiscordUnavailable(String),
    /// The request cannot be done in the state things are in (e.g. nothing to cancel).
    #[error("{reason}")]
    Conflict { code: &'static str, reason: String },
    #[error("Stripe is not configured (STRIPE_API_KEY)")]
    StripeNotConfigured,
    /// Stripe failed or refused; `detail` (already free of secrets) is logged, never returned.
    #[error("Stripe could not complete the request; try again later")]
    Stripe { code: &'static str, detail: String },
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
            Self::DiscordUnavailable(_) => (503, "discord_unavailable"),
            Self::Conflict { code, .. } => (409, code),
            Self::StripeNotConfigured => (501, "stripe_not_configured"),
            Self::Stripe { code, .. } => (502, code),
        }
    }

    /// The machine-readable code the answer carries (and the invocation's log line).
    pub fn code(&self) -> &'static str {
        self.parts().1
    }

    pub fn bad_request(code: &'static str, reason: impl Into<String>) -> Self {
        Self::BadRequest { code, reason: reason.into() }
    }

    /// A handler's result as the answer: a refusal's code goes on the invocation's log line first.
    pub fn answer(
        result: Result<Response, ApiError>,
        inv: &tollgate_worker_common::observe::Invocation,
    ) -> worker::Result<Response> {
        result.or_else(|e| {
            inv.note("outcome", e.code());
            e.into_response()
        })
    }

    pub fn into_response(self) -> worker::Result<Response> {
        let (status, code) = self.parts();
        let message = match &self {
            Self::Stripe { detail, .. } | Self::DiscordUnavailable(detail) => {
                worker::console_error!("api: {code}: {detail}");
                self.to_string()
            }
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
        if e.code == tollgate_app::error::DISCORD_UNAVAILABLE {
            Self::DiscordUnavailable(e.to_string())
        } else {
            Self::Upstream(e.to_string())
        }
    }
}

impl From<tollgate_app::billing::BillingError> for ApiError {
    fn from(e: tollgate_app::billing::BillingError) -> Self {
        use tollgate_app::billing::BillingError as B;
        let code = e.code();
        match e {
            B::UnknownPlan(_) | B::PlanNotOnStripe(_) => Self::BadRequest { code, reason: e.to_string() },
            B::Refused(_) | B::NoItem(_) => Self::Conflict { code, reason: e.to_string() },
            B::Stripe(_) => Self::Stripe { code, detail: e.to_string() },
            B::Step(step) => Self::Upstream(step.to_string()),
        }
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        Self::Upstream(e.to_string())
    }
}

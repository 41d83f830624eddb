//! # tollgate-sellapp
//!
//! The one Sell.app API call Tollgate makes: reading an order's status, for refund reconciliation (Sell.app
//! pushes no refund event; a refund is only an order status). Base `https://sell.app/api` (or
//! `SELLAPP_API_BASE`, devstack's stand-in locally), `Authorization: Bearer <key>`, the store chosen with
//! `X-STORE`, the order at `GET /v2/orders/{id}` answering `{"data": order}` with `status` among
//! [`ORDER_STATUSES`]. There is no official OpenAPI document: the facts come from Sell.app's SDKs (see
//! `docs/plans/2026-12-01-sellapp-lifecycle.md`).
//!
//! [`tollgate_http::Transport`] is `fetch` inside workerd and reqwest natively. Errors never carry the key, headers or query.

use serde::Deserialize;
use std::time::Duration;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::Secret;
use tollgate_http::{Outgoing, Transport};

/// Sell.app's own API base.
pub const SELLAPP_API_BASE: &str = "https://sell.app/api";
/// No request waits longer than this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// An order's `status` in the new API (SDK enum).
pub const ORDER_STATUSES: &[&str] =
    &["PENDING", "REVERSED", "PARTIAL", "VOIDED", "REFUNDED", "PAID", "COMPLETED", "DISPUTING", "REVIEW", "FAILED"];

#[derive(Debug, Clone)]
pub struct SellappApiConfig {
    /// e.g. `https://sell.app/api`; a trailing slash is tolerated.
    pub api_base: String,
    pub api_key: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SellappApiError {
    #[error("SELLAPP_API_BASE `{0}` is not a URL")]
    BadBase(String),
    /// 401: the key is wrong or revoked; 403: it may not read this store.
    #[error("Sell.app refused the API key ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("Sell.app is rate limiting (429)")]
    RateLimited,
    #[error("Sell.app answered {status}: {message}")]
    Http { status: u16, message: String },
    #[error("the Sell.app request {0}")]
    Transport(String),
    #[error("Sell.app's answer cannot be read: {0}")]
    Decode(String),
}

impl SellappApiError {
    /// Worth trying again later (the run stops, the next one resumes).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited | Self::Transport(_))
            || matches!(self, Self::Http { status, .. } if *status >= 500)
    }
}

/// What reconciliation needs of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStatus {
    /// Upper-case, one of [`ORDER_STATUSES`] (an unknown one is kept as given, for the report).
    pub status: String,
    /// `updated_at` when it parses (ISO 8601): the time of the last status change.
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone)]
pub struct SellappApi {
    http: Transport,
    base: url::Url,
    key: Secret,
    /// The invocation's subrequest counter (shared with its other clients), taken before each request.
    subrequests: Subrequests,
}

#[derive(Deserialize)]
struct Envelope {
    data: OrderBody,
}

#[derive(Deserialize)]
struct OrderBody {
    status: Option<serde_json::Value>,
    updated_at: Option<String>,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    message: String,
}

impl SellappApi {
    pub fn new(config: SellappApiConfig) -> Result<Self, SellappApiError> {
        let trimmed = config.api_base.trim().trim_end_matches('/');
        let base = url::Url::parse(trimmed).map_err(|_| SellappApiError::BadBase(trimmed.to_owned()))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(SellappApiError::BadBase(trimmed.to_owned()));
        }
        Ok(Self { http: Transport::new(), base, key: config.api_key, subrequests: Subrequests::unlimited() })
    }

    /// Counts (and, with a limit, bounds) this client's requests in `subrequests`, the invocation's meter.
    pub fn with_subrequests(mut self, subrequests: Subrequests) -> Self {
        self.subrequests = subrequests;
        self
    }

    /// The order's status; `Ok(None)`: Sell.app knows no such order in this store (404).
    pub async fn order_status(
        &self,
        store: Option<&str>,
        order_id: &str,
    ) -> Result<Option<OrderStatus>, SellappApiError> {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["v2", "orders", order_id]);
        }
        self.subrequests.take().map_err(|spent| SellappApiError::Transport(spent.to_string()))?;
        let bearer = format!("Bearer {}", self.key.expose());
        let mut headers = vec![("Authorization", bearer.as_str()), ("Accept", "application/json")];
        if let Some(store) = store {
            headers.push(("X-STORE", store));
        }
        let answer = self
            .http
            .send(Outgoing::new("GET", &url, &headers, REQUEST_TIMEOUT))
            .await
            .map_err(|e| SellappApiError::Transport(e.to_string()))?;
        let (status, text) = (answer.status, answer.text);
        let message = || {
            let message = serde_json::from_str::<ErrorBody>(&text).unwrap_or_default().message;
            message.chars().take(200).collect::<String>()
        };
        match status {
            200..=299 => decode(&text).map(Some),
            404 => Ok(None),
            401 | 403 => Err(SellappApiError::Refused { status, message: message() }),
            429 => Err(SellappApiError::RateLimited),
            _ => Err(SellappApiError::Http { status, message: message() }),
        }
    }
}

/// Fails closed: an answer without a readable `data.status` is an error, never "not refunded".
fn decode(text: &str) -> Result<OrderStatus, SellappApiError> {
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| SellappApiError::Decode(e.to_string()))?;
    let status = match envelope.data.status {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s,
        // The v2 invoice model nests it: `status.status`.
        Some(serde_json::Value::Object(o)) => match o.get("status").and_then(|s| s.as_str()) {
            Some(s) if !s.trim().is_empty() => s.to_owned(),
            _ => return Err(SellappApiError::Decode("no status in the order".into())),
        },
        _ => return Err(SellappApiError::Decode("no status in the order".into())),
    };
    let updated_at = envelope
        .data
        .updated_at
        .and_then(|raw| chrono::DateTime::parse_from_rfc3339(raw.trim()).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    Ok(OrderStatus { status: status.trim().to_ascii_uppercase(), updated_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_without_a_status_is_an_error_not_a_paid_order() {
        assert!(matches!(decode(r#"{"data": {"id": 1}}"#), Err(SellappApiError::Decode(_))));
        assert!(matches!(decode(r#"{"data": {"status": ""}}"#), Err(SellappApiError::Decode(_))));
        assert!(matches!(decode("<html>"), Err(SellappApiError::Decode(_))));
        let nested = decode(r#"{"data": {"status": {"status": "refunded"}}}"#).unwrap();
        assert_eq!(nested.status, "REFUNDED");
        let dated = decode(r#"{"data": {"status": "PAID", "updated_at": "2026-03-01T12:00:00Z"}}"#).unwrap();
        assert!(dated.updated_at.is_some());
    }

    #[test]
    fn a_base_that_is_not_a_web_url_is_refused() {
        let config = |base: &str| SellappApiConfig { api_base: base.into(), api_key: Secret::new("k") };
        assert!(SellappApi::new(config("not a url")).is_err());
        assert!(SellappApi::new(config("mailto:a@b.c")).is_err());
        assert!(SellappApi::new(config("https://sell.app/api/")).is_ok());
    }
}

//! What a verified Sell.app body means. The envelope is `{"event", "data", "store"}`; the order in `data`
//! comes in two shapes (docs/protocols.md §1.5): the v2 invoice model (`customer_information.email`,
//! `product_variants[]`) and the new API's order object (`customer.email`, `line_items[]`). The email is
//! also accepted from every place the replaced deployment read it (docs/compatibility.md), so stored failures
//! and existing test scripts keep working.
//!
//! The idempotency key is `(event, data.id, store)` (docs/compatibility.md) whatever the shape. Without an
//! order id (absent, blank, or neither a string nor a number) the body's hash stands in for it, so that
//! distinct purchases never share a key (`tollgate_core::idempotency`); an authentic body that is not a
//! JSON object is keyed by its hash alone.

use crate::verified::VerifiedEvent;
use serde_json::Value;
use tollgate_core::{Email, IdempotencyKey};

pub const ORDER_COMPLETED: &str = "order.completed";
pub const ORDER_DISPUTED: &str = "order.disputed";

/// Where the buyer's email may be, in the order they are tried.
const EMAIL_PATHS: &[&[&str]] = &[
    &["data", "customer_information", "email"],
    &["data", "customer", "email"],
    &["data", "email"],
    &["data", "order", "email"],
    &["data", "order", "customer_email"],
    &["data", "billing", "email"],
    &["customer", "email"],
    &["order", "email"],
];

/// Where the product's title may be (first line item).
const PRODUCT_TITLE_PATHS: &[&[&str]] = &[&["data", "product_variants"], &["data", "line_items"]];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SellappAction {
    /// `order.completed`: the order was paid.
    Grant { email: Email, order_id: Option<String>, product_title: Option<String> },
    /// `order.disputed`: a paid order was disputed (charged back).
    Revoke { email: Email, order_id: Option<String> },
    /// Any other event: acknowledged, nothing done.
    Ignore { event: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not a JSON object")]
    InvalidJson,
    #[error("no email in the payload")]
    NoEmailInPayload,
    #[error("the payload's email is not a valid address")]
    InvalidEmail,
}

impl PayloadError {
    /// The `errorCode` of the failure record.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::NoEmailInPayload => "no_email_in_payload",
            Self::InvalidEmail => "invalid_email",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellappDelivery {
    pub key: IdempotencyKey,
    pub event: Option<String>,
    pub order_id: Option<String>,
    pub store: Option<String>,
    /// The email as found in the payload (before normalisation), for failure records.
    pub email_raw: Option<String>,
    pub outcome: Result<SellappAction, PayloadError>,
}

pub fn interpret(event: &VerifiedEvent) -> SellappDelivery {
    let parsed = serde_json::from_slice::<Value>(event.body()).ok().filter(Value::is_object);
    let Some(root) = parsed else {
        return SellappDelivery {
            key: IdempotencyKey::unparsable("sellapp", event.body()),
            event: None,
            order_id: None,
            store: None,
            email_raw: None,
            outcome: Err(PayloadError::InvalidJson),
        };
    };
    let event_name = root.get("event").and_then(Value::as_str).map(str::to_owned);
    // A blank id identifies nothing: keyed as if absent, so blank-id purchases do not share one key.
    let order_id = lookup(&root, &["data", "id"]).and_then(as_text).filter(|id| !id.trim().is_empty());
    let store = root.get("store").and_then(as_text);
    let email_raw = EMAIL_PATHS
        .iter()
        .find_map(|path| lookup(&root, path).and_then(Value::as_str).filter(|s| !s.trim().is_empty()))
        .map(str::to_owned);
    let key = IdempotencyKey::sellapp(event_name.as_deref(), order_id.as_deref(), store.as_deref(), event.body());
    let outcome = match event_name.as_deref() {
        Some(ORDER_COMPLETED) => parse_email(email_raw.as_deref()).map(|email| SellappAction::Grant {
            email,
            order_id: order_id.clone(),
            product_title: product_title(&root),
        }),
        Some(ORDER_DISPUTED) => {
            parse_email(email_raw.as_deref()).map(|email| SellappAction::Revoke { email, order_id: order_id.clone() })
        }
        _ => Ok(SellappAction::Ignore { event: event_name.clone() }),
    };
    SellappDelivery { key, event: event_name, order_id, store, email_raw, outcome }
}

fn parse_email(raw: Option<&str>) -> Result<Email, PayloadError> {
    let raw = raw.ok_or(PayloadError::NoEmailInPayload)?;
    Email::parse(raw).map_err(|_| PayloadError::InvalidEmail)
}

fn product_title(root: &Value) -> Option<String> {
    PRODUCT_TITLE_PATHS.iter().find_map(|path| {
        let first = lookup(root, path)?.as_array()?.first()?;
        let title = first.get("product_title")?.as_str()?.trim();
        (!title.is_empty()).then(|| title.to_owned())
    })
}

fn lookup<'v>(root: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(root, |value, key| value.get(key))
}

/// `236` → `"236"`, `"abc"` → `"abc"`, as JavaScript's template strings render them.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

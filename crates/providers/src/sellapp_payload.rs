//! What a verified Sell.app body means. The envelope is `{"event", "data", "store"}`; the order in `data`
//! comes in two shapes (docs/protocols.md §1.5): the v2 invoice model (`customer_information.email`,
//! `product_variants[]`) and the new API's order object (`customer.email`, `line_items[]`). The email is
//! also accepted from every place the replaced deployment read it (docs/compatibility.md), so stored failures
//! and existing test scripts keep working.
//!
//! Line items name their product by id (`line_items[].product_id`, `product_variant_id`); the v2 invoice
//! model documents only `product_variants[].product_title`, so ids are read from the same fields there when
//! present and the title is the fallback ([`tollgate_core::plan_for_purchase`]).
//!
//! Subscriptions (`subscription.created`, `.renewed`, `.cancelled`) are in the SDK's event list without a
//! documented payload. Tollgate accepts exactly one shape, the SDK's subscription object plus a period
//! end: `data.id` (the subscription), the buyer's email (same places as an order's),
//! `data.current_period_end` (ISO 8601 or Unix seconds) and optionally `data.updated_at` (ISO 8601, the
//! event's time) and the product ids (`data.product_id`, `data.product_variant_id` or `data.line_items`).
//! Anything else is [`PayloadError::UnknownSubscriptionShape`]: recorded for an admin, never guessed.
//! Their idempotency key includes the period end, so each renewal is its own event.
//!
//! The idempotency key is `(event, data.id, store)` (docs/compatibility.md) whatever the shape. Without an
//! order id (absent, blank, or neither a string nor a number) the body's hash stands in for it, so that
//! distinct purchases never share a key (`tollgate_core::idempotency`); an authentic body that is not a
//! JSON object is keyed by its hash alone.

use crate::verified::VerifiedEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tollgate_core::{Email, IdempotencyKey, LineItem};

pub const ORDER_COMPLETED: &str = "order.completed";
pub const ORDER_PAID: &str = "order.paid";
pub const ORDER_DISPUTED: &str = "order.disputed";
pub const SUBSCRIPTION_CREATED: &str = "subscription.created";
pub const SUBSCRIPTION_RENEWED: &str = "subscription.renewed";
pub const SUBSCRIPTION_CANCELLED: &str = "subscription.cancelled";

/// Order statuses (new API `status`, v2 `status.status`) that mean the payment completed.
const PAID_STATUSES: &[&str] = &["PAID", "COMPLETED"];

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

/// Where the line items may be.
const LINE_ITEM_PATHS: &[&[&str]] = &[&["data", "line_items"], &["data", "product_variants"]];

/// What a subscription event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionChange {
    Created,
    Renewed,
    /// Cancelled: access stays until the current period end.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SellappAction {
    /// `order.completed`, or `order.paid` carrying a completed payment: the order was paid.
    Grant { email: Email, order_id: Option<String>, items: Vec<LineItem> },
    /// A subscription started, renewed or was cancelled: access until `period_end`.
    Subscription {
        email: Email,
        subscription_id: String,
        change: SubscriptionChange,
        period_end: DateTime<Utc>,
        /// The event's own time (`data.updated_at`), when the payload gives one that parses.
        event_time: Option<DateTime<Utc>>,
        items: Vec<LineItem>,
    },
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
    #[error("a subscription event without a subscription id and a readable current_period_end")]
    UnknownSubscriptionShape,
}

impl PayloadError {
    /// The `errorCode` of the failure record.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::NoEmailInPayload => "no_email_in_payload",
            Self::InvalidEmail => "invalid_email",
            Self::UnknownSubscriptionShape => "unknown_subscription_shape",
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
    let subscription = match event_name.as_deref() {
        Some(SUBSCRIPTION_CREATED) => Some(SubscriptionChange::Created),
        Some(SUBSCRIPTION_RENEWED) => Some(SubscriptionChange::Renewed),
        Some(SUBSCRIPTION_CANCELLED) => Some(SubscriptionChange::Cancelled),
        _ => None,
    };
    if let Some(change) = subscription {
        return interpret_subscription(&root, event, event_name, order_id, store, email_raw, change);
    }
    let key = IdempotencyKey::sellapp(event_name.as_deref(), order_id.as_deref(), store.as_deref(), event.body());
    let grant = |email| SellappAction::Grant { email, order_id: order_id.clone(), items: line_items(&root) };
    let outcome = match event_name.as_deref() {
        Some(ORDER_COMPLETED) => parse_email(email_raw.as_deref()).map(grant),
        Some(ORDER_PAID) if payment_completed(&root) => parse_email(email_raw.as_deref()).map(grant),
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

fn interpret_subscription(
    root: &Value,
    event: &VerifiedEvent,
    event_name: Option<String>,
    subscription_id: Option<String>,
    store: Option<String>,
    email_raw: Option<String>,
    change: SubscriptionChange,
) -> SellappDelivery {
    let period_end = lookup(root, &["data", "current_period_end"]).and_then(as_time);
    // Each period is its own event: two renewals of one subscription must not share a key.
    let keyed = match (&subscription_id, period_end) {
        (Some(id), Some(end)) => Some(format!("{id}@{}", end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))),
        _ => None,
    };
    let key = IdempotencyKey::sellapp(event_name.as_deref(), keyed.as_deref(), store.as_deref(), event.body());
    let outcome = match (subscription_id.clone(), period_end) {
        (Some(subscription_id), Some(period_end)) => {
            parse_email(email_raw.as_deref()).map(|email| SellappAction::Subscription {
                email,
                subscription_id,
                change,
                period_end,
                event_time: lookup(root, &["data", "updated_at"]).and_then(Value::as_str).and_then(rfc3339),
                items: line_items(root),
            })
        }
        _ => Err(PayloadError::UnknownSubscriptionShape),
    };
    SellappDelivery { key, event: event_name, order_id: subscription_id, store, email_raw, outcome }
}

/// `order.paid` grants only when the order says its payment completed.
fn payment_completed(root: &Value) -> bool {
    let status = lookup(root, &["data", "status"])
        .and_then(|s| s.as_str().or_else(|| s.get("status").and_then(Value::as_str)))
        .map(|s| s.trim().to_ascii_uppercase());
    status.is_some_and(|s| PAID_STATUSES.contains(&s.as_str()))
}

/// The purchase's line items (new API `line_items[]`, v2 `product_variants[]`); a subscription may also
/// name its product on `data` itself.
fn line_items(root: &Value) -> Vec<LineItem> {
    let text = |item: &Value, key: &str| {
        item.get(key).and_then(as_text).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
    };
    let item_of = |item: &Value| LineItem {
        product_id: text(item, "product_id"),
        variant_id: text(item, "product_variant_id"),
        title: text(item, "product_title"),
    };
    let mut items: Vec<LineItem> = LINE_ITEM_PATHS
        .iter()
        .find_map(|path| lookup(root, path)?.as_array().filter(|a| !a.is_empty()))
        .map(|list| list.iter().map(item_of).collect())
        .unwrap_or_default();
    if let Some(data) = root.get("data") {
        let own = item_of(data);
        if own.product_id.is_some() || own.variant_id.is_some() {
            items.push(own);
        }
    }
    items
}

fn rfc3339(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim()).ok().map(|t| t.with_timezone(&Utc))
}

/// An ISO 8601 (RFC 3339) string or whole Unix seconds.
fn as_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => rfc3339(s),
        Value::Number(n) => n.as_i64().and_then(|secs| DateTime::from_timestamp(secs, 0)),
        _ => None,
    }
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

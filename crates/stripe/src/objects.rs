//! The Stripe objects Tollgate reads, and how they are decoded from Stripe's JSON: only the fields Tollgate
//! uses, the raw object kept where a caller parses it itself; a missing id, customer or status is a
//! [`StripeError::Decode`], never a default.

use crate::StripeError;
use serde_json::Value;

/// A subscription, as far as Tollgate reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    /// The customer id (`cus_...`), also when Stripe expanded the customer object.
    pub customer: String,
    /// One of [`SUBSCRIPTION_STATUSES`] (an unknown one is kept as given: the caller decides, closed).
    pub status: String,
    pub cancel_at_period_end: bool,
    /// Seconds since the epoch: the items' `current_period_end` (basil), else the subscription's own (older
    /// versions).
    pub current_period_end: Option<i64>,
    pub items: Vec<SubscriptionItem>,
    /// The whole object as Stripe sent it.
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionItem {
    pub id: String,
    pub price_id: String,
    pub current_period_end: Option<i64>,
}

/// A customer; a deleted one answers `{"id", "deleted": true}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub id: String,
    pub email: Option<String>,
    pub deleted: bool,
    pub raw: Value,
}

/// A Checkout or Billing Portal session: where to send the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLink {
    pub id: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    /// `enabled` or `disabled`.
    pub status: String,
    /// Event types, or `["*"]` for all.
    pub enabled_events: Vec<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

pub(crate) fn id_of(value: &Value) -> Result<String, StripeError> {
    str_field(value, "id").ok_or_else(|| StripeError::Decode("an object without an id".into()))
}

fn str_field(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// An id field that may be expanded into an object (`"customer": "cus_1"` or `{"id": "cus_1", ...}`).
fn ref_field(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(ref_value)
}

fn ref_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        object @ Value::Object(_) => str_field(object, "id"),
        _ => None,
    }
}

/// Fails closed: no id, customer or status is an error, never a default.
pub fn subscription_from(raw: Value) -> Result<Subscription, StripeError> {
    let missing = |what: &str| StripeError::Decode(format!("a subscription without {what}"));
    let id = id_of(&raw)?;
    let customer = ref_field(&raw, "customer").ok_or_else(|| missing("a customer"))?;
    let status = str_field(&raw, "status").ok_or_else(|| missing("a status"))?;
    let cancel_at_period_end = match raw.get("cancel_at_period_end") {
        Some(Value::Bool(b)) => *b,
        None | Some(Value::Null) => false,
        Some(_) => return Err(missing("a boolean cancel_at_period_end")),
    };
    let items = match raw.get("items").filter(|i| !i.is_null()).map(|i| i.get("data")) {
        Some(Some(Value::Array(items))) => items
            .iter()
            .map(|item| {
                Ok(SubscriptionItem {
                    id: id_of(item)?,
                    price_id: ref_field(item, "price").ok_or_else(|| missing("an item price"))?,
                    current_period_end: item.get("current_period_end").and_then(Value::as_i64),
                })
            })
            .collect::<Result<Vec<_>, StripeError>>()?,
        None => Vec::new(),
        Some(_) => return Err(missing("an item list")),
    };
    let current_period_end = items
        .iter()
        .filter_map(|i| i.current_period_end)
        .max()
        .or_else(|| raw.get("current_period_end").and_then(Value::as_i64));
    Ok(Subscription { id, customer, status, cancel_at_period_end, current_period_end, items, raw })
}

pub fn customer_from(raw: Value) -> Result<Customer, StripeError> {
    Ok(Customer {
        id: id_of(&raw)?,
        email: str_field(&raw, "email"),
        deleted: raw.get("deleted").and_then(Value::as_bool).unwrap_or(false),
        raw,
    })
}

pub fn session_from(raw: Value) -> Result<SessionLink, StripeError> {
    let url = str_field(&raw, "url").ok_or_else(|| StripeError::Decode("a session without a url".into()))?;
    Ok(SessionLink { id: id_of(&raw)?, url })
}

pub fn webhook_endpoint_from(raw: Value) -> Result<WebhookEndpoint, StripeError> {
    let missing = |what: &str| StripeError::Decode(format!("a webhook endpoint without {what}"));
    let enabled_events = match raw.get("enabled_events") {
        Some(Value::Array(events)) => events.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => return Err(missing("enabled_events")),
    };
    Ok(WebhookEndpoint {
        id: id_of(&raw)?,
        url: str_field(&raw, "url").ok_or_else(|| missing("a url"))?,
        status: str_field(&raw, "status").ok_or_else(|| missing("a status"))?,
        enabled_events,
    })
}

/// A list answer, `{"data": [...], "has_more": bool}`: without either it is a [`StripeError::Decode`].
pub fn page_from(value: Value) -> Result<Page<Value>, StripeError> {
    let has_more = value
        .get("has_more")
        .and_then(Value::as_bool)
        .ok_or_else(|| StripeError::Decode("a list without has_more".into()))?;
    match value.get("data") {
        Some(Value::Array(items)) => Ok(Page { data: items.clone(), has_more }),
        _ => Err(StripeError::Decode("a list without data".into())),
    }
}

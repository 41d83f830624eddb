//! What a verified Stripe body means: the event envelope (`id`, `type`, `created`, `api_version`,
//! `data.object`) and, for the event types Tollgate acts on, the fields it reads (docs/protocols.md §2.2).
//!
//! Both API versions' field locations are read (§2.4): since `2025-03-31.basil` a subscription's period is
//! on its items (`items.data[].current_period_end`) and an invoice names its subscription under
//! `parent.subscription_details.subscription`; before, `current_period_end` was on the subscription and
//! `subscription` on the invoice. Every timestamp is Unix **seconds**.
//!
//! A body that does not decode, or an event Tollgate acts on that lacks a field it needs, is a
//! [`StripePayloadError`] (recorded as a failure for an admin), never "no access". Any other event type is
//! [`StripeAction::Ignore`]. The idempotency key is Stripe's event id (`stripe:evt_…`).

use crate::verified::VerifiedEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tollgate_core::stripe::StripeStatus;
use tollgate_core::{Email, IdempotencyKey};

pub const CHECKOUT_COMPLETED: &str = "checkout.session.completed";
pub const SUBSCRIPTION_CREATED: &str = "customer.subscription.created";
pub const SUBSCRIPTION_UPDATED: &str = "customer.subscription.updated";
pub const SUBSCRIPTION_DELETED: &str = "customer.subscription.deleted";
pub const SUBSCRIPTION_PAUSED: &str = "customer.subscription.paused";
pub const SUBSCRIPTION_RESUMED: &str = "customer.subscription.resumed";
pub const INVOICE_PAID: &str = "invoice.paid";
pub const INVOICE_PAYMENT_FAILED: &str = "invoice.payment_failed";
pub const CHARGE_REFUNDED: &str = "charge.refunded";
pub const DISPUTE_CREATED: &str = "charge.dispute.created";
pub const DISPUTE_CLOSED: &str = "charge.dispute.closed";

/// The event types Tollgate acts on (the webhook endpoint subscribes to these).
pub const HANDLED_EVENTS: [&str; 11] = [
    CHECKOUT_COMPLETED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_UPDATED,
    SUBSCRIPTION_DELETED,
    SUBSCRIPTION_PAUSED,
    SUBSCRIPTION_RESUMED,
    INVOICE_PAID,
    INVOICE_PAYMENT_FAILED,
    CHARGE_REFUNDED,
    DISPUTE_CREATED,
    DISPUTE_CLOSED,
];

/// A Checkout Session's `mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutMode {
    /// A one-off payment.
    Payment,
    Subscription,
    /// A payment method saved (no payment).
    Setup,
    Other(String),
}

/// `checkout.session.completed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub mode: CheckoutMode,
    /// `payment_status` is `paid` (or `no_payment_required`, e.g. a trial).
    pub paid: bool,
    /// The Appwrite user id Tollgate put in the session.
    pub client_reference_id: Option<String>,
    pub customer: Option<String>,
    /// `customer_details.email`, else `customer_email`; `None` when absent.
    pub email: Option<Email>,
    pub subscription: Option<String>,
    pub payment_intent: Option<String>,
    /// What a one-off payment bought, from the session's `metadata` (`plan`, or `price` / `price_id`):
    /// Stripe's event carries no line items.
    pub metadata_plan: Option<String>,
    pub metadata_price: Option<String>,
}

/// A subscription object (`customer.subscription.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub status: StripeStatus,
    /// The first item's price.
    pub price: Option<String>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
}

/// An invoice object (`invoice.paid`, `invoice.payment_failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    pub customer: Option<String>,
    /// `None`: an invoice of no subscription (nothing to do).
    pub subscription: Option<String>,
    /// The latest end of its lines' periods (the period a subscription invoice pays for).
    pub period_end: Option<DateTime<Utc>>,
    pub price: Option<String>,
}

/// A charge (`charge.refunded`) or a dispute (`charge.dispute.*`): what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The charge (`ch_…`), or the dispute's charge.
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    pub customer: Option<String>,
    /// The invoice the charge paid (older API versions only).
    pub invoice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeAction {
    Checkout(CheckoutSession),
    Subscription {
        change: SubscriptionChange,
        subscription: Subscription,
    },
    Invoice {
        paid: bool,
        invoice: Invoice,
    },
    /// `charge.refunded`; `full`: nothing is left of the charge (`refunded: true`).
    Refunded {
        payment: Payment,
        full: bool,
    },
    DisputeCreated(Payment),
    /// `charge.dispute.closed`; `won`: `status` is `won` (anything else is lost).
    DisputeClosed {
        payment: Payment,
        won: bool,
        status: String,
    },
    /// Any other event type: acknowledged, nothing done.
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionChange {
    Created,
    Updated,
    Deleted,
    Paused,
    Resumed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripePayloadError {
    #[error("the body is not a Stripe event (a JSON object with id, type and created)")]
    NotAnEvent,
    #[error("the {event} event lacks {field}")]
    MissingField { event: String, field: &'static str },
}

impl StripePayloadError {
    /// The `errorCode` of the failure record.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAnEvent => "invalid_json",
            Self::MissingField { .. } => "unknown_stripe_shape",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeDelivery {
    pub key: IdempotencyKey,
    /// `evt_…`
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// The event's `created`.
    pub created: Option<DateTime<Utc>>,
    pub api_version: Option<String>,
    /// What the failure record shows as its order: the subscription, session or charge.
    pub object_id: Option<String>,
    /// The buyer's email as the payload gives it (checkout sessions), for failure records.
    pub email_raw: Option<String>,
    pub outcome: Result<StripeAction, StripePayloadError>,
}

pub fn interpret(event: &VerifiedEvent) -> StripeDelivery {
    let root = serde_json::from_slice::<Value>(event.body()).ok().filter(Value::is_object);
    let envelope = root.as_ref().and_then(|root| {
        let id = text(root.get("id")?)?;
        let kind = text(root.get("type")?)?;
        let created = seconds(root.get("created")?)?;
        let object = root.get("data")?.get("object").filter(|o| o.is_object())?;
        Some((id, kind, created, object))
    });
    let Some((id, kind, created, object)) = envelope else {
        return StripeDelivery {
            key: IdempotencyKey::unparsable("stripe", event.body()),
            event_id: root.as_ref().and_then(|r| r.get("id")).and_then(text),
            event_type: root.as_ref().and_then(|r| r.get("type")).and_then(text),
            created: None,
            api_version: None,
            object_id: None,
            email_raw: None,
            outcome: Err(StripePayloadError::NotAnEvent),
        };
    };
    let api_version = root.as_ref().and_then(|r| r.get("api_version")).and_then(text);
    let email_raw = (kind == CHECKOUT_COMPLETED).then(|| checkout_email_raw(object)).flatten();
    StripeDelivery {
        key: IdempotencyKey::provider_event("stripe", &id),
        object_id: object.get("id").and_then(text),
        outcome: action(&kind, object),
        event_id: Some(id),
        event_type: Some(kind),
        created: Some(created),
        api_version,
        email_raw,
    }
}

fn action(kind: &str, object: &Value) -> Result<StripeAction, StripePayloadError> {
    let missing = |field| StripePayloadError::MissingField { event: kind.to_owned(), field };
    let need = |field: &'static str| object.get(field).and_then(text).ok_or_else(|| missing(field));
    let subscription_change = match kind {
        SUBSCRIPTION_CREATED => Some(SubscriptionChange::Created),
        SUBSCRIPTION_UPDATED => Some(SubscriptionChange::Updated),
        SUBSCRIPTION_DELETED => Some(SubscriptionChange::Deleted),
        SUBSCRIPTION_PAUSED => Some(SubscriptionChange::Paused),
        SUBSCRIPTION_RESUMED => Some(SubscriptionChange::Resumed),
        _ => None,
    };
    if let Some(change) = subscription_change {
        return Ok(StripeAction::Subscription { change, subscription: subscription(object).map_err(missing)? });
    }
    Ok(match kind {
        CHECKOUT_COMPLETED => {
            let mode = match need("mode")?.as_str() {
                "payment" => CheckoutMode::Payment,
                "subscription" => CheckoutMode::Subscription,
                "setup" => CheckoutMode::Setup,
                other => CheckoutMode::Other(other.to_owned()),
            };
            let paid =
                matches!(object.get("payment_status").and_then(Value::as_str), Some("paid" | "no_payment_required"));
            StripeAction::Checkout(CheckoutSession {
                id: need("id")?,
                mode,
                paid,
                client_reference_id: object.get("client_reference_id").and_then(text),
                customer: id_of(object.get("customer")),
                email: checkout_email_raw(object).and_then(|raw| Email::parse(&raw).ok()),
                subscription: id_of(object.get("subscription")),
                payment_intent: id_of(object.get("payment_intent")),
                metadata_plan: object.pointer("/metadata/plan").and_then(text),
                metadata_price: object
                    .pointer("/metadata/price")
                    .or_else(|| object.pointer("/metadata/price_id"))
                    .and_then(text),
            })
        }
        INVOICE_PAID | INVOICE_PAYMENT_FAILED => {
            let lines = object.pointer("/lines/data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let subscription = id_of(object.pointer("/parent/subscription_details/subscription"))
                .or_else(|| id_of(object.get("subscription")))
                .or_else(|| {
                    lines.iter().find_map(|line| {
                        id_of(line.pointer("/parent/subscription_item_details/subscription"))
                            .or_else(|| id_of(line.get("subscription")))
                    })
                });
            let price = lines.iter().find_map(|line| {
                id_of(line.pointer("/pricing/price_details/price")).or_else(|| id_of(line.get("price")))
            });
            StripeAction::Invoice {
                paid: kind == INVOICE_PAID,
                invoice: Invoice {
                    id: need("id")?,
                    customer: id_of(object.get("customer")),
                    subscription,
                    period_end: lines.iter().filter_map(|line| line.pointer("/period/end").and_then(seconds)).max(),
                    price,
                },
            }
        }
        CHARGE_REFUNDED => StripeAction::Refunded {
            payment: Payment {
                charge: Some(need("id")?),
                payment_intent: id_of(object.get("payment_intent")),
                customer: id_of(object.get("customer")),
                invoice: id_of(object.get("invoice")),
            },
            full: object.get("refunded").and_then(Value::as_bool).ok_or_else(|| missing("refunded"))?,
        },
        DISPUTE_CREATED | DISPUTE_CLOSED => {
            need("id")?;
            let payment = Payment {
                charge: id_of(object.get("charge")),
                payment_intent: id_of(object.get("payment_intent")),
                customer: id_of(object.pointer("/charge/customer")),
                invoice: None,
            };
            if kind == DISPUTE_CREATED {
                StripeAction::DisputeCreated(payment)
            } else {
                let status = need("status")?;
                StripeAction::DisputeClosed { payment, won: status == "won", status }
            }
        }
        _ => StripeAction::Ignore,
    })
}

/// A subscription object, as an event or the API gives it.
pub fn subscription(object: &Value) -> Result<Subscription, &'static str> {
    let id = object.get("id").and_then(text).ok_or("id")?;
    let customer = id_of(object.get("customer")).ok_or("customer")?;
    let status = object.get("status").and_then(Value::as_str).map(StripeStatus::parse).ok_or("status")?;
    let items = object.pointer("/items/data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let period = |field: &str| {
        // Basil: on every item (the latest one counts); before: on the subscription.
        items
            .iter()
            .filter_map(|item| item.get(field).and_then(seconds))
            .max()
            .or_else(|| object.get(field).and_then(seconds))
    };
    Ok(Subscription {
        id,
        customer,
        status,
        price: items.iter().find_map(|item| id_of(item.get("price"))).or_else(|| id_of(object.pointer("/plan"))),
        period_start: period("current_period_start"),
        period_end: period("current_period_end"),
    })
}

fn checkout_email_raw(object: &Value) -> Option<String> {
    object
        .pointer("/customer_details/email")
        .and_then(Value::as_str)
        .or_else(|| object.get("customer_email").and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// An id, or the `id` of an expanded object.
fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Object(expanded) => expanded.get("id").and_then(text),
        other => text(other),
    }
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Stripe timestamps are Unix seconds (never milliseconds).
fn seconds(value: &Value) -> Option<DateTime<Utc>> {
    value.as_i64().and_then(|secs| DateTime::from_timestamp(secs, 0))
}

#[cfg(test)]
mod tests;

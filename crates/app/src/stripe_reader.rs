//! Stripe's own view of a subscription, a customer or a payment, for the webhook path when `STRIPE_API_KEY` is
//! set ([`StripeReader`]): the client's objects are parsed by the same parser as the events' so both modes
//! read the same fields. [`NoStripeApi`] stands for "no key": event order decides.

use crate::error::StepError;
use serde_json::Value;
use std::future::Future;
use tollgate_core::Email;
use tollgate_providers::stripe_payload::Subscription;

/// Reads Stripe's own view of a subscription or customer (`STRIPE_API_KEY` set). Implemented by the
/// Stripe API client; the webhook path works without one (event order decides).
pub trait StripeReader {
    /// The subscription as Stripe has it now; `None`: Stripe does not know it.
    fn subscription(&self, id: &str) -> impl Future<Output = Result<Option<Subscription>, StepError>>;
    /// The customer's email; `None`: no such customer, or it has no email.
    fn customer_email(&self, id: &str) -> impl Future<Output = Result<Option<Email>, StepError>>;
    /// The customer a payment intent charged (a dispute names no customer); `None`: none known.
    fn payment_customer(&self, payment_intent: &str) -> impl Future<Output = Result<Option<String>, StepError>>;
}

/// No Stripe API configured: a reader that cannot exist.
pub enum NoStripeApi {}

impl StripeReader for NoStripeApi {
    async fn subscription(&self, _id: &str) -> Result<Option<Subscription>, StepError> {
        match *self {}
    }

    async fn customer_email(&self, _id: &str) -> Result<Option<Email>, StepError> {
        match *self {}
    }

    async fn payment_customer(&self, _payment_intent: &str) -> Result<Option<String>, StepError> {
        match *self {}
    }
}

/// Stripe's API through the client (`STRIPE_API_KEY`): the subscription object is parsed by the same parser
/// as the events' (`tollgate_providers::stripe_payload::subscription`), so both modes read the same fields.
impl StripeReader for tollgate_stripe::StripeApi {
    async fn subscription(&self, id: &str) -> Result<Option<Subscription>, StepError> {
        match self.retrieve_subscription(id).await {
            Ok(found) => tollgate_providers::stripe_payload::subscription(&found.raw).map(Some).map_err(|field| {
                StepError::transient("stripe_api_error", format!("Stripe's subscription {id} has no readable {field}"))
            }),
            Err(e) if e.is_missing() => Ok(None),
            Err(e) => Err(stripe_api_error("reading the subscription", &e)),
        }
    }

    async fn customer_email(&self, id: &str) -> Result<Option<Email>, StepError> {
        match self.retrieve_customer(id).await {
            Ok(customer) => Ok(customer.email.as_deref().and_then(|e| Email::parse(e).ok())),
            Err(e) if e.is_missing() => Ok(None),
            Err(e) => Err(stripe_api_error("reading the customer", &e)),
        }
    }

    /// `GET /v1/charges?payment_intent=…`: the charge's `customer`.
    async fn payment_customer(&self, payment_intent: &str) -> Result<Option<String>, StepError> {
        let page = self
            .list_page(&["charges"], &[("payment_intent", payment_intent)], None)
            .await
            .map_err(|e| stripe_api_error("listing the payment's charges", &e))?;
        Ok(page.data.iter().find_map(|charge| charge.get("customer").and_then(Value::as_str)).map(str::to_owned))
    }
}

/// A Stripe API failure as a step failure: retried on the schedule (a refused key too: fixing the setting
/// and letting the retry run is the remedy). The message never holds the key (the client masks it).
pub(crate) fn stripe_api_error(step: &str, error: &tollgate_stripe::StripeError) -> StepError {
    StepError {
        code: "stripe_api_error",
        message: format!("{step}: {error}"),
        status: error.status(),
        error_type: None,
        retryable: true,
    }
}

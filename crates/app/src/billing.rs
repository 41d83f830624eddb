//! A signed-in customer's own billing actions with Stripe: buy or change a tier, cancel, fix or remove the
//! payment method. Each action finds the customer's Stripe customer and current subscription, asks the core
//! matrix ([`tollgate_core::stripe_actions`]) what the action means for that subscription's status, and asks
//! Stripe for exactly that: a Checkout Session, a price change in the same billing cycle, cancel at period
//! end, or a Billing Portal session. Access itself never changes here: it follows the webhooks Stripe sends
//! for what happened (the webhook worker), so a customer cannot grant themselves anything by calling these.
//!
//! ## Finding the subscription
//! Stripe is the truth: the subscriptions of every Stripe customer the ledger remembers for the user
//! (`customerRef`, written by the webhook worker) and of every subscription it names (source
//! `stripe-sub:{id}`) are read from Stripe, and, when the user's email is verified, so are the
//! subscriptions of every Stripe customer with that email (a purchase whose webhook has not arrived yet, or
//! was made before the account existed). An unverified email is never used to find someone's billing: anyone
//! can sign up with any address. Of all of them the one with the highest [`subscription_rank`] (ties: the
//! newest) is "the" subscription.
//!
//! ## Repeats
//! Every POST to Stripe carries an `Idempotency-Key` derived from the user, the request and the minute, so a
//! double click or a retried request does not create two sessions or change a price twice, while the same
//! change asked for again later is a new request.

use crate::error::StepError;
use crate::ledger::{stripe_subscription_source, LedgerEntry, PROVIDER_STRIPE};
use crate::records::timestamp;
use crate::App;
use serde_json::{json, Value};
use tollgate_appwrite::User;
use tollgate_core::plans::{plan_for_stripe_price, stripe_price_for_plan};
use tollgate_core::stripe_actions::StripeStatus;
use tollgate_core::{
    decide_customer_action, payload_hash, subscription_rank, AppwriteId, BillingStep, Clock, CustomerAction, Refusal,
};
use tollgate_stripe::CheckoutRequest;
pub use tollgate_stripe::{Proration, StripeApi, StripeConfig, StripeError, Subscription};

/// Where Stripe sends the customer back: the web app (`APP_BASE_URL`) with a `billing=` marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingUrls {
    pub success: String,
    pub cancel: String,
    pub portal_return: String,
}

impl BillingUrls {
    /// `base` with its own query kept and `billing=checkout_success|checkout_canceled|portal` added.
    pub fn from_base(base: &str) -> Result<Self, String> {
        let base = url::Url::parse(base.trim()).map_err(|e| format!("`{base}` is not a URL ({e})"))?;
        let with = |marker: &str| {
            let mut url = base.clone();
            url.query_pairs_mut().append_pair("billing", marker);
            url.to_string()
        };
        Ok(Self { success: with("checkout_success"), cancel: with("checkout_canceled"), portal_return: with("portal") })
    }
}

/// Why a billing action did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error("there is no plan `{0}`")]
    UnknownPlan(String),
    #[error("plan `{0}` has no Stripe price (tollgate plans set <plan> --stripe-price price_…)")]
    PlanNotOnStripe(String),
    #[error("{}", .0.as_str())]
    Refused(Refusal),
    /// The subscription has no item whose price could be changed.
    #[error("subscription {0} has no item to change")]
    NoItem(String),
    #[error("Stripe: {0}")]
    Stripe(StripeError),
    #[error(transparent)]
    Step(#[from] StepError),
}

impl From<StripeError> for BillingError {
    fn from(e: StripeError) -> Self {
        Self::Stripe(e)
    }
}

impl BillingError {
    /// The machine-readable reason the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownPlan(_) => "unknown_plan",
            Self::PlanNotOnStripe(_) => "plan_not_on_stripe",
            Self::Refused(refusal) => refusal.as_str(),
            Self::NoItem(_) => "subscription_without_items",
            Self::Stripe(e) if e.is_retryable() => "stripe_unavailable",
            Self::Stripe(_) => "stripe_error",
            Self::Step(_) => "upstream_error",
        }
    }
}

/// What the customer gets back.
#[derive(Debug, Clone, PartialEq)]
pub enum BillingOutcome {
    /// Go to Stripe Checkout.
    Checkout { url: String },
    /// The live subscription now bills the new price (same cycle).
    Changed { subscription: Value },
    /// Ends at the period end; access stays until then.
    Canceling { period_end: Option<String>, subscription: Value },
    /// Go to Stripe's Billing Portal.
    Portal { url: String },
}

/// The customer's Stripe side, as found.
#[derive(Debug, Clone, PartialEq)]
pub struct StripeAccount {
    pub customer: Option<String>,
    pub subscription: Option<Subscription>,
}

impl StripeAccount {
    fn status(&self) -> StripeStatus {
        self.subscription.as_ref().map(|s| StripeStatus::parse(&s.status)).unwrap_or(StripeStatus::None)
    }

    fn canceling(&self) -> bool {
        self.subscription.as_ref().is_some_and(|s| s.cancel_at_period_end)
    }
}

/// The customer's own actions: the app (ledger, catalogue, clock) and a Stripe client.
pub struct Billing<'a, C: Clock> {
    pub app: App<'a, C>,
    pub stripe: &'a StripeApi,
}

impl<'a, C: Clock> Billing<'a, C> {
    pub fn new(app: App<'a, C>, stripe: &'a StripeApi) -> Self {
        Self { app, stripe }
    }

    /// `POST /me/checkout {plan}`: a Checkout Session when there is no live subscription, else the live one
    /// changed to the plan's price in the same billing cycle.
    pub async fn checkout(&self, user: &User, plan: &str, urls: &BillingUrls) -> Result<BillingOutcome, BillingError> {
        let catalogue = self.app.plan_catalogue().await?.offers;
        if !catalogue.iter().any(|offer| offer.plan == plan) {
            return Err(BillingError::UnknownPlan(plan.to_owned()));
        }
        let price =
            stripe_price_for_plan(&catalogue, plan).ok_or_else(|| BillingError::PlanNotOnStripe(plan.into()))?;
        let account = self.stripe_account(user).await?;
        let same_price = account.subscription.as_ref().is_some_and(|s| s.items.iter().any(|i| i.price_id == price));
        match self.decide(&account, CustomerAction::Purchase { same_price })? {
            BillingStep::Checkout => {
                let request = CheckoutRequest {
                    price: price.clone(),
                    client_reference_id: user.id.clone(),
                    customer: account.customer.clone(),
                    customer_email: account.customer.is_none().then(|| user.email.clone()).filter(|e| !e.is_empty()),
                    success_url: urls.success.clone(),
                    cancel_url: urls.cancel.clone(),
                    metadata: vec![("tollgate_user_id".into(), user.id.clone()), ("tollgate_plan".into(), plan.into())],
                };
                let key = self.idempotency_key(
                    "checkout",
                    &[
                        &user.id,
                        plan,
                        &price,
                        request.customer.as_deref().unwrap_or_default(),
                        request.customer_email.as_deref().unwrap_or_default(),
                        &urls.success,
                        &urls.cancel,
                    ],
                );
                let session = self.stripe.create_checkout_session(&request, Some(&key)).await?;
                Ok(BillingOutcome::Checkout { url: session.url })
            }
            BillingStep::ChangePrice => {
                let subscription =
                    account.subscription.as_ref().ok_or(BillingError::Refused(Refusal::NoSubscription))?;
                let item = subscription.items.first().ok_or_else(|| BillingError::NoItem(subscription.id.clone()))?;
                let key =
                    self.idempotency_key("price", &[&user.id, &subscription.id, &item.id, &item.price_id, &price]);
                let changed = self
                    .stripe
                    .update_subscription_price(
                        &subscription.id,
                        &item.id,
                        &price,
                        Proration::CreateProrations,
                        Some(&key),
                    )
                    .await?;
                Ok(BillingOutcome::Changed { subscription: subscription_json(&changed, &catalogue) })
            }
            other => Err(unexpected(other)),
        }
    }

    /// `POST /me/cancel`: the subscription ends at the period end; access stays until then.
    pub async fn cancel(&self, user: &User) -> Result<BillingOutcome, BillingError> {
        let account = self.stripe_account(user).await?;
        match self.decide(&account, CustomerAction::Cancel)? {
            BillingStep::CancelAtPeriodEnd => {
                let subscription =
                    account.subscription.as_ref().ok_or(BillingError::Refused(Refusal::NothingToCancel))?;
                let key = self.idempotency_key("cancel", &[&user.id, &subscription.id]);
                let canceled = self.stripe.set_cancel_at_period_end(&subscription.id, true, Some(&key)).await?;
                let catalogue = self.app.plan_catalogue().await?.offers;
                Ok(BillingOutcome::Canceling {
                    period_end: period_end(&canceled),
                    subscription: subscription_json(&canceled, &catalogue),
                })
            }
            other => Err(unexpected(other)),
        }
    }

    /// `POST /me/billing-portal`: a Billing Portal session to update (`remove: false`) or remove the payment
    /// method.
    pub async fn billing_portal(
        &self,
        user: &User,
        remove: bool,
        urls: &BillingUrls,
    ) -> Result<BillingOutcome, BillingError> {
        let account = self.stripe_account(user).await?;
        let action = if remove { CustomerAction::DisconnectPaymentMethod } else { CustomerAction::UpdatePaymentMethod };
        match self.decide(&account, action)? {
            BillingStep::BillingPortal => {
                let customer = account.customer.as_deref().ok_or(BillingError::Refused(Refusal::NoSubscription))?;
                let key = self.idempotency_key("portal", &[&user.id, customer, &urls.portal_return]);
                let session =
                    self.stripe.create_billing_portal_session(customer, &urls.portal_return, Some(&key)).await?;
                Ok(BillingOutcome::Portal { url: session.url })
            }
            other => Err(unexpected(other)),
        }
    }

    /// The matrix's step; a refusal is an error.
    fn decide(&self, account: &StripeAccount, action: CustomerAction) -> Result<BillingStep, BillingError> {
        match decide_customer_action(&account.status(), account.canceling(), action) {
            BillingStep::Refuse(refusal) => Err(BillingError::Refused(refusal)),
            step => Ok(step),
        }
    }

    /// The user's Stripe customer and current subscription (see the module doc).
    pub async fn stripe_account(&self, user: &User) -> Result<StripeAccount, BillingError> {
        let user_id = AppwriteId::parse(&user.id).map_err(|e| StepError::unexpected_user_id(&user.id, &e))?;
        let entries = self.app.user_entitlements(&user_id).await?;
        let stripe_entries: Vec<&LedgerEntry> = entries.iter().filter(|e| e.provider == PROVIDER_STRIPE).collect();
        // Customers the ledger remembers (`customerRef`), then, for a verified email, Stripe's customers of it.
        let mut customers: Vec<String> = stripe_entries.iter().filter_map(|e| e.customer_ref.clone()).collect();
        if user.email_verification && !user.email.trim().is_empty() {
            let by_email = self.stripe.list_customers_by_email(&user.email).await?;
            customers.extend(by_email.into_iter().filter(|c| !c.deleted).map(|c| c.id));
        }
        let mut seen = std::collections::BTreeSet::new();
        customers.retain(|c| !c.trim().is_empty() && seen.insert(c.clone()));
        let mut found: Vec<Subscription> = Vec::new();
        for customer in &customers {
            found.extend(self.stripe.list_subscriptions(customer).await?);
        }
        // Subscriptions the ledger names whose customer was not listed (written before `customerRef` existed).
        for id in ledger_subscription_ids(&stripe_entries) {
            if found.iter().any(|s| s.id == id) {
                continue;
            }
            match self.stripe.retrieve_subscription(&id).await {
                Ok(subscription) => found.push(subscription),
                // Deleted from Stripe (test data, a purged account): nothing to act on.
                Err(e) if e.is_missing() => {
                    tracing::warn!(subscription = %id, "a ledger subscription is not on Stripe")
                }
                Err(e) => return Err(e.into()),
            }
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found.dedup_by(|a, b| a.id == b.id);
        let subscription =
            found.into_iter().max_by_key(|s| (subscription_rank(&StripeStatus::parse(&s.status)), created(s)));
        let customer = subscription.as_ref().map(|s| s.customer.clone()).or_else(|| customers.into_iter().next());
        Ok(StripeAccount { customer, subscription })
    }

    /// Same request in the same minute → same key (Stripe keeps keys for 24 hours and refuses a key reused
    /// with other parameters, so every parameter is in it).
    fn idempotency_key(&self, kind: &str, parts: &[&str]) -> String {
        let minute = self.app.clock.now().timestamp() / 60;
        let material = format!("{kind}\n{}\n{minute}", parts.join("\n"));
        format!("tollgate-{kind}-{}", payload_hash(material.as_bytes()))
    }
}

fn unexpected(step: BillingStep) -> BillingError {
    // The matrix answers each action with its own steps; anything else is a bug, refused closed.
    tracing::error!(?step, "the billing matrix answered an action with another action's step");
    BillingError::Refused(Refusal::UnknownStatus)
}

/// Subscriptions the ledger holds for the user: a Stripe subscription's entitlement (`stripe-sub:…`) names it
/// as `orderId` (a one-off payment's names a payment intent).
fn ledger_subscription_ids(entries: &[&LedgerEntry]) -> Vec<String> {
    let mut ids: Vec<String> = entries
        .iter()
        .filter(|e| e.entitlement.source.starts_with(&stripe_subscription_source("")))
        .filter_map(|e| e.order_id.clone())
        .filter(|id| !id.trim().is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn created(subscription: &Subscription) -> i64 {
    subscription.raw.get("created").and_then(Value::as_i64).unwrap_or(0)
}

/// Stripe's seconds as the API's timestamps.
fn period_end(subscription: &Subscription) -> Option<String> {
    subscription.current_period_end.and_then(|s| chrono::DateTime::from_timestamp(s, 0)).map(timestamp)
}

/// A subscription as the customer sees it.
pub fn subscription_json(subscription: &Subscription, catalogue: &[tollgate_core::PlanOffer]) -> Value {
    let price = subscription.items.first().map(|i| i.price_id.clone());
    json!({
        "id": subscription.id,
        "status": subscription.status,
        "plan": price.as_deref().and_then(|p| plan_for_stripe_price(catalogue, p)),
        "price": price,
        "cancelAtPeriodEnd": subscription.cancel_at_period_end,
        "periodEnd": period_end(subscription),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_urls_keep_the_apps_own_query_and_add_a_marker() {
        let urls = BillingUrls::from_base("https://app.example.com/account?tab=billing").unwrap();
        assert_eq!(urls.success, "https://app.example.com/account?tab=billing&billing=checkout_success");
        assert_eq!(urls.cancel, "https://app.example.com/account?tab=billing&billing=checkout_canceled");
        assert_eq!(urls.portal_return, "https://app.example.com/account?tab=billing&billing=portal");
        assert!(BillingUrls::from_base("not a url").is_err());
    }
}

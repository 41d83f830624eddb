//! A verified Stripe delivery, applied exactly once: the contract of `/sell/webhook` (claim the event id,
//! apply, complete; failures recorded and retried), with Stripe's events mapped onto the ledger by the
//! matrix of `tollgate_core::stripe` (docs/plans/2026-12-01-stripe-lifecycle.md).
//!
//! ## Sources and who
//! A subscription is the source `stripe-sub:{subscription}` (`orderId` = the subscription, `customerRef` =
//! the customer, `productRef` = the price, `providerStatus` = Stripe's status); a one-off payment is
//! `stripe-pay:{checkout session}` (`orderId` = its payment intent) lasting the plan's duration. The buyer
//! is named by the checkout session only: its `client_reference_id` when that is an existing account
//! (which receives it once its email is verified, [`App::may_claim`]), else the customer's email (pending
//! until a verified account has it). Subscription and invoice events name the subscription, so they land
//! on the same document whichever arrives first: an event of a subscription whose checkout has not been
//! seen is recorded without a buyer, and the checkout completes it. Charges and disputes are found by
//! payment intent (`orderId`) or customer (`customerRef`).
//!
//! ## Order and truth
//! Every event applied to a source stores its `created` and id (`providerEventAt`, `providerEventId`); an
//! event not newer (time, then id) writes no grant and no status. Revocations (deleted, refund, dispute)
//! are applied whatever their age and are never undone but by a won dispute. With a Stripe API reader
//! ([`StripeReader`], `STRIPE_API_KEY`), the subscription is re-read on every event that concerns it and
//! that object, dated at the time of reading, is the truth; retries of recorded failures read no API and
//! event order decides.

use crate::error::StepError;
use crate::failures::DeliveryFacts;
use crate::ingest_webhook::{Attempt, Claim, IngestOutcome, NotRecorded, Processed, Progress};
use crate::ledger::{
    entitlement_document_id, patch_data, stripe_payment_source, stripe_subscription_source, with_key, LedgerEntry,
    LEDGER_PAGE, PROVIDER_STRIPE,
};
use crate::records::{fit, timestamp};
use crate::schema::{EMAIL_SIZE, NAME_SIZE, SHORT_TEXT_SIZE, SOURCE_SIZE};
use crate::App;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use tollgate_appwrite::Query;
use tollgate_core::stripe::{is_newer_event, ledger_event, webhook_cell, Effect, StripeStatus, StripeWebhook};
use tollgate_core::{
    apply_event, plan_for_stripe_price, AppwriteId, Clock, Email, Entitlement, EntitlementPatch, Grant, LedgerEvent,
    RevokeReason,
};
use tollgate_providers::stripe_payload::{
    interpret, CheckoutMode, CheckoutSession, Invoice, Payment, StripeAction, StripeDelivery, Subscription,
    SubscriptionChange,
};
use tollgate_providers::VerifiedEvent;

pub use crate::stripe_reader::{NoStripeApi, StripeReader};

/// Attempts at writing a document another request may be creating at the same moment.
const WRITE_RACE_ATTEMPTS: u32 = 3;

/// When and which event: the order of events on one source.
#[derive(Clone, Copy)]
struct EventOrder<'a> {
    at: DateTime<Utc>,
    id: &'a str,
    key: &'a str,
}

/// Where a subscription object comes from: the event, or Stripe's API (the truth, dated when read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Event,
    Api,
}

/// What a Stripe event writes on one entitlement.
struct StripeWrite {
    source: String,
    /// Written only by an event newer than the last applied: `providerStatus`, `productRef`.
    ordered: Vec<(&'static str, Value)>,
    /// Written when the entitlement does not have them yet.
    customer: Option<String>,
    order_id: Option<String>,
    email: Option<Email>,
    owner: Option<AppwriteId>,
}

impl StripeWrite {
    fn new(source: String) -> Self {
        Self { source, ordered: Vec::new(), customer: None, order_id: None, email: None, owner: None }
    }

    fn subscription_facts(mut self, subscription: &Subscription) -> Self {
        self.ordered.push(("providerStatus", json!(fit(subscription.status.as_str(), SHORT_TEXT_SIZE))));
        self.ordered.push(("productRef", json!(subscription.price.as_deref().map(|p| fit(p, NAME_SIZE)))));
        self.customer = Some(subscription.customer.clone());
        self.order_id = Some(subscription.id.clone());
        self
    }
}

type Decide<'d> = dyn Fn(Option<&LedgerEntry>) -> Result<Option<LedgerEvent>, StepError> + 'd;

impl<C: Clock> App<'_, C> {
    /// Applies a verified Stripe delivery. `Ok` means answer 2xx; `Err` means answer 503.
    pub async fn ingest_stripe<R: StripeReader>(
        &self,
        event: &VerifiedEvent,
        api: Option<&R>,
    ) -> Result<IngestOutcome, NotRecorded> {
        self.ingest_stripe_within(event, api, std::future::pending()).await
    }

    /// [`Self::ingest_stripe`], answered when `deadline` comes at the latest (as
    /// [`App::ingest_sellapp_within`]).
    pub async fn ingest_stripe_within<R: StripeReader>(
        &self,
        event: &VerifiedEvent,
        api: Option<&R>,
        deadline: impl std::future::Future<Output = ()>,
    ) -> Result<IngestOutcome, NotRecorded> {
        self.ingest_stripe_with(event, api, &Progress::default(), deadline).await
    }

    async fn ingest_stripe_with<R: StripeReader>(
        &self,
        event: &VerifiedEvent,
        api: Option<&R>,
        progress: &Progress,
        deadline: impl std::future::Future<Output = ()>,
    ) -> Result<IngestOutcome, NotRecorded> {
        let delivery = interpret(event);
        let processing = std::pin::pin!(self.process_stripe(&delivery, event.body(), Attempt::Delivery, api, progress));
        self.deliver_within(processing, progress, &(&delivery).into(), event.body(), std::pin::pin!(deadline)).await
    }

    /// [`Self::ingest_stripe_within`] without a deadline, telling `progress` how far it got (for a caller that
    /// answers before the end and lets it run on).
    pub async fn ingest_stripe_tracked<R: StripeReader>(
        &self,
        event: &VerifiedEvent,
        api: Option<&R>,
        progress: &crate::ingest_webhook::DeliveryProgress,
    ) -> Result<IngestOutcome, NotRecorded> {
        self.ingest_stripe_with(event, api, progress.inner(), std::future::pending()).await
    }

    /// A stored body, again (the cron's retry or inbox sweep, an admin's replay): Stripe's API is read as
    /// the delivery did when `App::stripe` is set. One instantiation (`StripeApi`) whether or not it is: the
    /// webhook worker's size budget.
    pub(crate) async fn reprocess_stripe(
        &self,
        delivery: &StripeDelivery,
        body: &[u8],
        progress: &Progress,
    ) -> Result<Processed, StepError> {
        self.process_stripe(delivery, body, Attempt::Retry, self.stripe, progress).await
    }

    async fn process_stripe<R: StripeReader>(
        &self,
        delivery: &StripeDelivery,
        body: &[u8],
        attempt: Attempt,
        api: Option<&R>,
        progress: &Progress,
    ) -> Result<Processed, StepError> {
        let action = delivery.outcome.as_ref().map_err(StepError::stripe_payload)?;
        if !acts_on(action) {
            tracing::info!(event = ?delivery.event_type, "a Stripe event Tollgate does not act on");
            return Ok(Processed::Ignored);
        }
        let (Some(at), Some(id)) = (delivery.created, delivery.event_id.as_deref()) else {
            return Err(StepError::permanent("invalid_json", "a Stripe event without id or created"));
        };
        let claim_id = delivery.key.document_id();
        let resumed = match self.claim(&DeliveryFacts::from(delivery), body, attempt, progress).await? {
            Claim::New => false,
            Claim::Completed => return Ok(Processed::Duplicate),
            Claim::Unfinished => true,
        };
        let order = EventOrder { at, id, key: delivery.key.raw() };
        let owners = match action {
            StripeAction::Checkout(session) => self.stripe_checkout(session, &order, api).await?,
            StripeAction::Subscription { change, subscription } => {
                let webhook = match change {
                    SubscriptionChange::Created | SubscriptionChange::Updated => StripeWebhook::SubscriptionUpdated,
                    SubscriptionChange::Deleted => StripeWebhook::SubscriptionDeleted,
                    SubscriptionChange::Paused => StripeWebhook::SubscriptionPaused,
                    SubscriptionChange::Resumed => StripeWebhook::SubscriptionResumed,
                };
                self.stripe_subscription(webhook, subscription, &order, api).await?
            }
            StripeAction::Invoice { paid, invoice } => self.stripe_invoice(*paid, invoice, &order, api).await?,
            StripeAction::Refunded { payment, .. } => {
                self.stripe_payment(payment, Effect::Revoke(RevokeReason::Refund), &order, api).await?
            }
            StripeAction::DisputeCreated(payment) => {
                self.stripe_payment(payment, Effect::Revoke(RevokeReason::Dispute), &order, api).await?
            }
            StripeAction::DisputeClosed { payment, won, .. } => {
                let effect = if *won { Effect::Reinstate } else { Effect::Revoke(RevokeReason::Dispute) };
                self.stripe_payment(payment, effect, &order, api).await?
            }
            StripeAction::Ignore => Vec::new(),
        };
        for user in &owners {
            self.request_role_sync(user).await?;
        }
        self.complete(claim_id).await?;
        if resumed && attempt == Attempt::Delivery {
            self.settle_failure_if_recorded(claim_id).await;
        }
        Ok(owners.into_iter().next().map_or(Processed::Pending, Processed::Applied))
    }

    /// `checkout.session.completed`: names the buyer of a subscription, or records a one-off payment.
    async fn stripe_checkout<R: StripeReader>(
        &self,
        session: &CheckoutSession,
        order: &EventOrder<'_>,
        api: Option<&R>,
    ) -> Result<Vec<AppwriteId>, StepError> {
        let (email, owner) = self.stripe_buyer(session).await?;
        let email = match (email, api, session.customer.as_deref()) {
            (None, Some(api), Some(customer)) => api.customer_email(customer).await?,
            (email, _, _) => email,
        };
        if email.is_none() && owner.is_none() {
            return Err(StepError::permanent(
                "no_email_in_payload",
                format!("checkout session {} names no account and no email", session.id),
            ));
        }
        let entry = if session.mode == CheckoutMode::Subscription {
            let subscription_id = session.subscription.as_deref().ok_or_else(|| {
                StepError::permanent("unknown_stripe_shape", "a subscription checkout without its subscription")
            })?;
            let mut write = StripeWrite::new(stripe_subscription_source(subscription_id));
            write.customer = session.customer.clone();
            write.order_id = Some(subscription_id.to_owned());
            (write.email, write.owner) = (email, owner);
            match self.read_truth(api, subscription_id).await? {
                Some(truth) => {
                    return self
                        .apply_subscription(StripeWebhook::SubscriptionUpdated, Source::Api, &truth, order, write)
                        .await
                }
                None => self.write_stripe(&write, order, &|_| Ok(None)).await?,
            }
        } else {
            let plan = self.one_off_plan(session).await?;
            let mut write = StripeWrite::new(stripe_payment_source(&session.id));
            write.customer = session.customer.clone();
            write.order_id = session.payment_intent.clone();
            (write.email, write.owner) = (email, owner);
            let ends_at = plan.1.map(|duration| order.at + duration);
            let grant = Grant { plan: plan.0, starts_at: None, ends_at, at: order.at };
            self.write_stripe(&write, order, &|_| Ok(Some(LedgerEvent::GrantOnce(grant.clone())))).await?
        };
        owner_of(&entry)
    }

    /// The account named by `client_reference_id` (if it exists), else the account with the customer's
    /// email; either receives the purchase only once its email is verified.
    async fn stripe_buyer(&self, session: &CheckoutSession) -> Result<(Option<Email>, Option<AppwriteId>), StepError> {
        if let Some(reference) = session.client_reference_id.as_deref().and_then(|r| AppwriteId::parse(r).ok()) {
            match self.appwrite.get_user(&reference).await {
                Ok(user) => {
                    let email = Email::parse(&user.email).ok().or_else(|| session.email.clone());
                    return Ok((email, self.may_claim(&user).then_some(reference)));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(StepError::appwrite("reading the checkout's account", &e)),
            }
        }
        let owner = self.verified_owner(session.email.as_ref()).await?;
        Ok((session.email.clone(), owner))
    }

    /// The account with `email`, if it may receive purchases made with it (verified).
    async fn verified_owner(&self, email: Option<&Email>) -> Result<Option<AppwriteId>, StepError> {
        let Some(email) = email else { return Ok(None) };
        let user = self
            .appwrite
            .find_user_by_email(email)
            .await
            .map_err(|e| StepError::appwrite("finding the user by email", &e))?;
        match user.filter(|u| self.may_claim(u)) {
            Some(user) => {
                AppwriteId::parse(&user.id).map(Some).map_err(|e| StepError::unexpected_user_id(&user.id, &e))
            }
            None => Ok(None),
        }
    }

    /// A one-off payment's plan and duration, from the session's metadata (a plan name, or a price the
    /// catalogue lists).
    async fn one_off_plan(&self, session: &CheckoutSession) -> Result<(String, Option<chrono::Duration>), StepError> {
        let catalogue = self.plan_catalogue().await?;
        let plan =
            session.metadata_plan.clone().filter(|p| catalogue.offers.iter().any(|o| &o.plan == p)).or_else(|| {
                session.metadata_price.as_deref().and_then(|p| plan_for_stripe_price(&catalogue.offers, p))
            });
        let Some(plan) = plan else {
            return Err(StepError::transient(
                "stripe_price_unmapped",
                format!(
                    "checkout session {} names no plan of the catalogue (metadata plan {:?}, price {:?}): tollgate plans set PLAN --stripe-price PRICE, then it is retried",
                    session.id, session.metadata_plan, session.metadata_price
                ),
            ));
        };
        let duration = catalogue.offers.iter().find(|o| o.plan == plan).and_then(|o| o.duration);
        Ok((plan, duration))
    }

    async fn read_truth<R: StripeReader>(&self, api: Option<&R>, id: &str) -> Result<Option<Subscription>, StepError> {
        match api {
            Some(api) => api.subscription(id).await,
            None => Ok(None),
        }
    }

    /// `customer.subscription.*`: the subscription's status and period, as the matrix says.
    async fn stripe_subscription<R: StripeReader>(
        &self,
        webhook: StripeWebhook,
        subscription: &Subscription,
        order: &EventOrder<'_>,
        api: Option<&R>,
    ) -> Result<Vec<AppwriteId>, StepError> {
        let mut write = StripeWrite::new(stripe_subscription_source(&subscription.id));
        if let Some(api) = api {
            // The customer is fetched: the subscription need not wait for its checkout session.
            write.email = api.customer_email(&subscription.customer).await?;
            write.owner = self.verified_owner(write.email.as_ref()).await?;
        }
        match self.read_truth(api, &subscription.id).await? {
            // The object read now is the truth, whatever this event said.
            Some(truth) => {
                self.apply_subscription(StripeWebhook::SubscriptionUpdated, Source::Api, &truth, order, write).await
            }
            None => self.apply_subscription(webhook, Source::Event, subscription, order, write).await,
        }
    }

    /// Writes what `subscription` (from an event, or read from the API: then dated now) means.
    async fn apply_subscription(
        &self,
        webhook: StripeWebhook,
        source: Source,
        subscription: &Subscription,
        order: &EventOrder<'_>,
        write: StripeWrite,
    ) -> Result<Vec<AppwriteId>, StepError> {
        let read_now = EventOrder { at: self.clock.now(), ..*order };
        let order = if source == Source::Api { &read_now } else { order };
        let catalogue = self.plan_catalogue().await?;
        let plan = subscription.price.as_deref().and_then(|p| plan_for_stripe_price(&catalogue.offers, p));
        let cell = webhook_cell(&subscription.status, webhook);
        if let StripeStatus::Unknown(status) = &subscription.status {
            tracing::warn!(subscription = %subscription.id, status, "an unknown Stripe status: no access");
        }
        if plan.is_none() && matches!(cell.effect, Effect::Grant(_)) {
            return Err(StepError::transient(
                "stripe_price_unmapped",
                format!(
                    "subscription {} has price {:?}, which no plan lists: tollgate plans set PLAN --stripe-price PRICE, then it is retried",
                    subscription.id, subscription.price
                ),
            ));
        }
        let event =
            ledger_event(cell.effect, plan.as_deref(), subscription.period_start, subscription.period_end, order.at);
        let write = write.subscription_facts(subscription);
        let entry = self.write_stripe(&write, order, &|_| Ok(event.clone())).await?;
        owner_of(&entry)
    }

    /// `invoice.paid` extends the subscription to the paid period's end; `invoice.payment_failed` leaves
    /// the paid-through time as it is (access lasts through the grace period).
    async fn stripe_invoice<R: StripeReader>(
        &self,
        paid: bool,
        invoice: &Invoice,
        order: &EventOrder<'_>,
        api: Option<&R>,
    ) -> Result<Vec<AppwriteId>, StepError> {
        let Some(subscription_id) = invoice.subscription.as_deref() else { return Ok(Vec::new()) };
        let mut write = StripeWrite::new(stripe_subscription_source(subscription_id));
        write.customer = invoice.customer.clone();
        write.order_id = Some(subscription_id.to_owned());
        if let Some(truth) = self.read_truth(api, subscription_id).await? {
            return self
                .apply_subscription(StripeWebhook::SubscriptionUpdated, Source::Api, &truth, order, write)
                .await;
        }
        let webhook = if paid { StripeWebhook::InvoicePaid } else { StripeWebhook::InvoicePaymentFailed };
        let price_plan = match &invoice.price {
            Some(price) => plan_for_stripe_price(&self.plan_catalogue().await?.offers, price),
            None => None,
        };
        let decide = |entry: Option<&LedgerEntry>| {
            let status =
                entry.and_then(|e| e.provider_status.as_deref()).map_or(StripeStatus::None, StripeStatus::parse);
            let cell = webhook_cell(&status, webhook);
            let plan =
                price_plan.clone().or_else(|| entry.and_then(|e| e.entitlement.grant.as_ref()).map(|g| g.plan.clone()));
            let event = ledger_event(cell.effect, plan.as_deref(), None, invoice.period_end, order.at);
            if event.is_none() && matches!(cell.effect, Effect::Grant(_)) {
                return Err(StepError::transient(
                    "stripe_subscription_unknown",
                    format!(
                        "invoice {} pays subscription {subscription_id}, whose plan is not known yet (its price {:?} is in no plan, and no subscription event was recorded); retried",
                        invoice.id, invoice.price
                    ),
                ));
            }
            Ok(event)
        };
        let entry = self.write_stripe(&write, order, &decide).await?;
        owner_of(&entry)
    }

    /// A refund or dispute: every Stripe entitlement of the payment (by payment intent), else of the
    /// customer's subscriptions. A dispute names no customer: with the API, the payment intent's charge
    /// names it.
    async fn stripe_payment<R: StripeReader>(
        &self,
        payment: &Payment,
        effect: Effect,
        order: &EventOrder<'_>,
        api: Option<&R>,
    ) -> Result<Vec<AppwriteId>, StepError> {
        let mut entries = Vec::new();
        if let Some(intent) = &payment.payment_intent {
            entries = self.stripe_entries("orderId", intent).await?;
        }
        let customer = match (&payment.customer, api, &payment.payment_intent) {
            (Some(customer), _, _) => Some(customer.clone()),
            (None, Some(api), Some(intent)) if entries.is_empty() => api.payment_customer(intent).await?,
            _ => None,
        };
        if entries.is_empty() {
            if let Some(customer) = &customer {
                entries = self.stripe_entries("customerRef", customer).await?;
                entries.retain(|e| e.entitlement.source.starts_with("stripe-sub:"));
            }
        }
        if entries.is_empty() {
            return Err(StepError::transient(
                "stripe_payment_unknown",
                format!(
                    "no Stripe entitlement has payment {:?} or customer {:?} (charge {:?}) yet; retried",
                    payment.payment_intent, customer, payment.charge
                ),
            ));
        }
        let event = ledger_event(effect, None, None, None, order.at);
        let mut owners = Vec::new();
        for entry in entries {
            let write = StripeWrite::new(entry.entitlement.source.clone());
            let written = self.write_stripe(&write, order, &|_| Ok(event.clone())).await?;
            owners.extend(owner_of(&written)?);
        }
        owners.sort();
        owners.dedup();
        Ok(owners)
    }

    async fn stripe_entries(&self, attribute: &str, value: &str) -> Result<Vec<LedgerEntry>, StepError> {
        let (db, collection) = self.ledger_collection();
        let queries =
            [Query::equal(attribute, [value]), Query::equal("provider", [PROVIDER_STRIPE]), Query::limit(LEDGER_PAGE)];
        let docs = self
            .appwrite
            .list_documents(db, collection, &queries)
            .await
            .map_err(|e| StepError::appwrite("finding the payment's entitlements", &e))?;
        crate::ledger::decode_entries(&docs.documents)
    }

    /// Writes one event on its entitlement (created when missing): the registers `decide` says (a grant
    /// only when the event is newer than the last applied), the facts that follow event order, and the
    /// buyer and customer when the entitlement does not have them yet. Returns the entitlement as stored.
    async fn write_stripe(
        &self,
        write: &StripeWrite,
        order: &EventOrder<'_>,
        decide: &Decide<'_>,
    ) -> Result<LedgerEntry, StepError> {
        let (db, collection) = self.ledger_collection();
        let id = entitlement_document_id(&write.source);
        for _ in 0..WRITE_RACE_ATTEMPTS {
            let Some(entry) = self.read_entry(&id).await? else {
                let event = decide(None)?;
                let patch =
                    event.as_ref().map(|e| apply_event(&Entitlement::new(write.source.clone()), e)).unwrap_or_default();
                let mut data = patch_data(&patch);
                data.insert("source".into(), json!(fit(&write.source, SOURCE_SIZE)));
                data.insert("provider".into(), json!(PROVIDER_STRIPE));
                data.insert("eventKeysJson".into(), json!(json!([order.key]).to_string()));
                self.stripe_facts(&mut data, write, order, None, patch.grant.is_some());
                match self.appwrite.create_document(db, collection, id.as_str(), &Value::Object(data), None).await {
                    Ok(doc) => return LedgerEntry::decode(&doc),
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => return Err(StepError::appwrite("creating the entitlement", &e)),
                }
            };
            let newer = is_newer(order, &entry);
            let patch = match decide(Some(&entry))? {
                Some(LedgerEvent::Grant { .. } | LedgerEvent::GrantOnce(_)) if !newer => EntitlementPatch::default(),
                Some(event) => apply_event(&entry.entitlement, &event),
                None => EntitlementPatch::default(),
            };
            let mut data = patch_data(&patch);
            self.stripe_facts(&mut data, write, order, Some(&entry), patch.grant.is_some());
            if data.is_empty() {
                return Ok(entry);
            }
            data.insert("eventKeysJson".into(), json!(json!(with_key(&entry.event_keys, order.key)).to_string()));
            let doc = self
                .appwrite
                .update_document(db, collection, &entry.id, &Value::Object(data))
                .await
                .map_err(|e| StepError::appwrite("updating the entitlement", &e))?;
            return LedgerEntry::decode(&doc);
        }
        Err(StepError::transient(
            "ledger_contention",
            format!("entitlement {id} kept changing while recording {}", order.key),
        ))
    }

    /// The facts `write` adds: ordered ones only from a newer event; identity ones only where missing. Only
    /// an event that reports the subscription's state (a status, a grant) moves the order mark: a checkout or
    /// a refund of the same second must not make the subscription's own event look stale.
    fn stripe_facts(
        &self,
        data: &mut Map<String, Value>,
        write: &StripeWrite,
        order: &EventOrder<'_>,
        entry: Option<&LedgerEntry>,
        grants: bool,
    ) {
        if entry.is_none_or(|e| is_newer(order, e)) {
            for (key, value) in &write.ordered {
                data.insert((*key).into(), value.clone());
            }
            if !write.ordered.is_empty() || grants {
                data.insert("providerEventAt".into(), json!(timestamp(order.at)));
                data.insert("providerEventId".into(), json!(fit(order.id, SHORT_TEXT_SIZE)));
            }
        }
        if let Some(customer) = write.customer.as_deref().filter(|_| entry.is_none_or(|e| e.customer_ref.is_none())) {
            data.insert("customerRef".into(), json!(fit(customer, SHORT_TEXT_SIZE)));
        }
        if let Some(order_id) = write.order_id.as_deref().filter(|_| entry.is_none_or(|e| e.order_id.is_none())) {
            data.insert("orderId".into(), json!(fit(order_id, SHORT_TEXT_SIZE)));
        }
        if let Some(email) = write.email.as_ref().filter(|_| entry.is_none_or(|e| e.email.is_none())) {
            data.insert("email".into(), json!(fit(email.as_str(), EMAIL_SIZE)));
        }
        if let Some(owner) = write.owner.as_ref().filter(|_| entry.is_none_or(|e| e.user_id.is_none())) {
            data.insert("userId".into(), json!(owner.as_str()));
            data.insert("claimedAt".into(), json!(timestamp(self.clock.now())));
        }
    }
}

fn is_newer(order: &EventOrder<'_>, entry: &LedgerEntry) -> bool {
    let last = entry.provider_event_at.map(|at| (at, entry.provider_event_id.as_deref().unwrap_or("")));
    is_newer_event((order.at, order.id), last)
}

fn owner_of(entry: &LedgerEntry) -> Result<Vec<AppwriteId>, StepError> {
    entry
        .user_id
        .as_deref()
        .map(|raw| AppwriteId::parse(raw).map_err(|e| StepError::unexpected_user_id(raw, &e)))
        .transpose()
        .map(|owner| owner.into_iter().collect())
}

/// Events that change nothing are answered before anything is written: setup checkouts (a payment method
/// saved; a past-due invoice is then retried by Stripe and its `invoice.paid` follows), unpaid or
/// unknown-mode checkouts, partial refunds, invoices of no subscription, and every other type.
fn acts_on(action: &StripeAction) -> bool {
    match action {
        StripeAction::Checkout(session) => {
            session.paid && matches!(session.mode, CheckoutMode::Subscription | CheckoutMode::Payment)
        }
        StripeAction::Refunded { full, .. } => *full,
        StripeAction::Invoice { invoice, .. } => invoice.subscription.is_some(),
        StripeAction::Ignore => false,
        StripeAction::Subscription { .. } | StripeAction::DisputeCreated(_) | StripeAction::DisputeClosed { .. } => {
            true
        }
    }
}

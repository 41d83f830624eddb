//! A verified Sell.app delivery, applied exactly once (docs/architecture.md "Webhook processing: the contract").
//!
//! The event's idempotency key is **claimed** first, by creating its `webhook_events` document with a
//! deterministic id (`status: processing`), and marked **completed** only after every side effect has
//! succeeded. The deployment Tollgate replaces wrote its dedupe record first and treated any record as
//! "seen": when a side effect then failed, every retry was answered "duplicate" and the purchase was lost.
//! Here a retry that finds a claim still `processing` runs the (idempotent) steps again, and only a
//! `completed` claim makes a delivery a duplicate.
//!
//! Anything that fails after the signature was verified becomes a `webhook_failures` record (see
//! [`crate::failures`]); only when even that record cannot be written does the caller answer 503, so the
//! provider retries. A buyer with no account yet gets a pending entitlement, never a dropped purchase.
//!
//! ## The inbox
//! The claim stores the verified body (`bodyText`) before any side effect, so a delivery cut after it
//! (the provider gave up, the isolate was stopped, the deadline of [`App::ingest_sellapp_within`] passed)
//! is finished by the cron's inbox sweep ([`crate::inbox`]). Such a claim is durable: the delivery is then
//! answered 2xx ([`IngestOutcome::Accepted`]) even when its processing or its failure record was cut.

use crate::error::StepError;
use crate::failures::DeliveryFacts;
use crate::ledger::{sellapp_order_source, sellapp_subscription_source, LedgerChange, PROVIDER_SELLAPP};
use crate::records::{
    body_text, fit, timestamp, ClaimStatus, EventClaim, FailureState, EVENT_COMPLETED, EVENT_FAILED, EVENT_PROCESSING,
};
use crate::schema::{NAME_SIZE, SHORT_TEXT_SIZE};
use crate::App;
use serde_json::json;
use std::future::Future;
use std::pin::{pin, Pin};
use tollgate_core::{
    payload_hash, plan_for_purchase, AppwriteId, Clock, Grant, LedgerEvent, LineItem, PlanMatch, Revocation,
    RevokeReason,
};
use tollgate_providers::sellapp_payload::{interpret, SellappAction, SellappDelivery, SubscriptionChange};
use tollgate_providers::VerifiedEvent;

/// What became of a delivery. Every variant is a 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Recorded on an entitlement owned by this user (whose access role-sync now projects).
    Applied { user_id: AppwriteId },
    /// Recorded on a pending entitlement: no account may claim it yet (none has that email verified).
    Pending,
    /// Completed before: nothing was done.
    Duplicate,
    /// An event Tollgate does not act on.
    Ignored { event: Option<String> },
    /// Could not be applied now; a failure record will retry it (or an admin replays it).
    FailureRecorded { code: &'static str, retryable: bool },
    /// Stored with its body, not finished in time (deadline) or not recordable as a failure: the cron's
    /// inbox sweep finishes it ([`crate::inbox`]).
    Accepted,
}

/// Not even the failure record could be written: the caller must answer 503 so the provider retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the failure could not be recorded ({failure}); recording it failed with: {recording}")]
pub struct NotRecorded {
    pub failure: StepError,
    pub recording: StepError,
}

/// How processing ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Processed {
    Applied(AppwriteId),
    Pending,
    Duplicate,
    Ignored,
}

/// Is this a first delivery, or a retry of a recorded failure?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    Delivery,
    Retry,
}

/// How far a delivery got, as seen by [`App::deliver_within`] when its deadline cuts it: was its claim
/// stored, and with a body the inbox sweep can finish it from?
#[derive(Debug, Default)]
pub(crate) struct Progress(std::cell::Cell<Option<Claimed>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claimed {
    /// The claim holds the body (written now, or by an earlier delivery of this version).
    pub durable: bool,
    /// The claim is `processing` (written now, or found so): a failure must hand it to its record.
    pub processing: bool,
}

impl Progress {
    fn claimed(&self, durable: bool, processing: bool) {
        self.0.set(Some(Claimed { durable, processing }));
    }

    pub(crate) fn get(&self) -> Option<Claimed> {
        self.0.get()
    }

    /// A failure of this attempt must hand the claim to its failure record (see [`EVENT_FAILED`]).
    pub(crate) fn leaves_claim_processing(&self) -> bool {
        self.get().is_some_and(|claimed| claimed.processing)
    }
}

/// Does the delivery's claim hold its body (so that the inbox sweep will finish it)?
fn durable(progress: &Progress) -> bool {
    progress.get().is_some_and(|claimed| claimed.durable)
}

/// How far a delivery got, shared with the caller while the processing runs: the webhook worker answers at
/// its deadline from it (202 `accepted` once [`Self::durable`]) and lets the processing go on.
#[derive(Debug, Clone, Default)]
pub struct DeliveryProgress(std::rc::Rc<Progress>);

impl DeliveryProgress {
    pub(crate) fn inner(&self) -> &Progress {
        &self.0
    }

    /// The claim holds the body: whatever happens to the processing now, the inbox sweep finishes it.
    pub fn durable(&self) -> bool {
        durable(&self.0)
    }
}

/// A delivery cut by its deadline before anything durable was stored: 503.
fn deadline_passed() -> NotRecorded {
    NotRecorded {
        failure: StepError::transient("deadline", "the delivery's deadline passed"),
        recording: StepError::transient("deadline", "the claim and its body were not stored in time"),
    }
}

/// A future pinned behind a reference, without its type: the deadline machinery is compiled once, not once
/// per provider and deadline type (the webhook worker's size budget).
type Pinned<'a, T> = Pin<&'a mut dyn Future<Output = T>>;

/// Runs `work` unless `deadline` comes first (`None`). `work` is polled first: work that is ready wins.
async fn within<T>(deadline: Pinned<'_, ()>, work: Pinned<'_, T>) -> Option<T> {
    match futures::future::select(work, deadline).await {
        futures::future::Either::Left((done, _)) => Some(done),
        futures::future::Either::Right(_) => None,
    }
}

impl<C: Clock> App<'_, C> {
    /// Applies a verified Sell.app delivery. `Ok` means answer 2xx; `Err` means answer 503.
    pub async fn ingest_sellapp(&self, event: &VerifiedEvent) -> Result<IngestOutcome, NotRecorded> {
        self.ingest_sellapp_within(event, std::future::pending()).await
    }

    /// [`Self::ingest_sellapp`], telling `progress` how far it got (for a caller that answers before the
    /// end and lets it run on).
    pub async fn ingest_sellapp_tracked(
        &self,
        event: &VerifiedEvent,
        progress: &DeliveryProgress,
    ) -> Result<IngestOutcome, NotRecorded> {
        let delivery = interpret(event);
        let processing = pin!(self.process_sellapp(&delivery, event.body(), Attempt::Delivery, &progress.0));
        let never = pin!(std::future::pending());
        self.deliver_within(processing, &progress.0, &(&delivery).into(), event.body(), never).await
    }

    /// [`Self::ingest_sellapp`], answered when `deadline` comes at the latest: `Accepted` once the claim
    /// holds the body (the sweep finishes it), `Err` (503) when not even that was stored by then.
    pub async fn ingest_sellapp_within(
        &self,
        event: &VerifiedEvent,
        deadline: impl Future<Output = ()>,
    ) -> Result<IngestOutcome, NotRecorded> {
        let delivery = interpret(event);
        let progress = Progress::default();
        let processing = pin!(self.process_sellapp(&delivery, event.body(), Attempt::Delivery, &progress));
        self.deliver_within(processing, &progress, &(&delivery).into(), event.body(), pin!(deadline)).await
    }

    /// Runs a delivery's `processing` and answers it, whatever the provider: a failure is recorded for
    /// retry; once the claim holds the body, a cut (the `deadline`) or a failure record that cannot be
    /// written is `Accepted` (the sweep finishes it); `Err` (503) only when nothing durable was stored.
    pub(crate) async fn deliver_within(
        &self,
        processing: Pinned<'_, Result<Processed, StepError>>,
        progress: &Progress,
        delivery: &DeliveryFacts<'_>,
        body: &[u8],
        mut deadline: Pinned<'_, ()>,
    ) -> Result<IngestOutcome, NotRecorded> {
        // Cut by the deadline: answered `Accepted` once the claim holds the body, else 503.
        let Some(processed) = within(deadline.as_mut(), processing).await else {
            return if durable(progress) { Ok(IngestOutcome::Accepted) } else { Err(deadline_passed()) };
        };
        let outcome = pin!(self.delivery_outcome(processed, delivery, body, progress.get()));
        match within(deadline.as_mut(), outcome).await {
            None if durable(progress) => Ok(IngestOutcome::Accepted),
            None => Err(deadline_passed()),
            Some(Err(not_recorded)) if durable(progress) => {
                tracing::warn!(error = %not_recorded, "the failure record was not written; the inbox sweep finishes the delivery");
                Ok(IngestOutcome::Accepted)
            }
            Some(answer) => answer,
        }
    }

    /// How a delivery's processing is answered: a failure is recorded for retry (`Err` only when even that
    /// record cannot be written), and its claim (if one was stored) handed to that record.
    async fn delivery_outcome(
        &self,
        processed: Result<Processed, StepError>,
        delivery: &DeliveryFacts<'_>,
        body: &[u8],
        claimed: Option<Claimed>,
    ) -> Result<IngestOutcome, NotRecorded> {
        match processed {
            Ok(Processed::Applied(user_id)) => Ok(IngestOutcome::Applied { user_id }),
            Ok(Processed::Pending) => Ok(IngestOutcome::Pending),
            Ok(Processed::Duplicate) => Ok(IngestOutcome::Duplicate),
            Ok(Processed::Ignored) => Ok(IngestOutcome::Ignored { event: delivery.event.map(str::to_owned) }),
            Err(failure) => {
                let (code, retryable) = (failure.code, failure.retryable);
                match self.record_delivery_failure(delivery, body, &failure).await {
                    Ok(()) => {
                        if claimed.is_some_and(|c| c.processing) {
                            self.hand_claim_to_failure(delivery.key.document_id()).await;
                        }
                        Ok(IngestOutcome::FailureRecorded { code, retryable })
                    }
                    Err(recording) => Err(NotRecorded { failure, recording }),
                }
            }
        }
    }

    /// The steps of the contract after verification; shared by deliveries, retries and replays.
    ///
    /// In the request: claim, find the buyer, read the plans catalogue (purchases only), record the event
    /// on the order's entitlement, queue the buyer's projection (the `role_sync_jobs` outbox), complete: 6
    /// Appwrite calls for a new purchase (7 when the buyer has no job document yet). The projection itself
    /// (`subscriptions` document, `paid` membership, roles) runs in role-sync, prompted at once and
    /// guaranteed by the outbox.
    pub(crate) async fn process_sellapp(
        &self,
        delivery: &SellappDelivery,
        body: &[u8],
        attempt: Attempt,
        progress: &Progress,
    ) -> Result<Processed, StepError> {
        let now = self.clock.now();
        let email = match &delivery.outcome {
            Err(payload_error) => return Err(StepError::payload(payload_error)),
            Ok(SellappAction::Ignore { .. }) => return Ok(Processed::Ignored),
            Ok(SellappAction::Grant { email, .. })
            | Ok(SellappAction::Revoke { email, .. })
            | Ok(SellappAction::Subscription { email, .. }) => email,
        };
        let is_revocation = matches!(delivery.outcome, Ok(SellappAction::Revoke { .. }));
        let claim_id = delivery.key.document_id();
        let resumed = match self.claim(&delivery.into(), body, attempt, progress).await? {
            Claim::New => false,
            Claim::Completed => return Ok(Processed::Duplicate),
            Claim::Unfinished => true,
        };
        let user = self
            .appwrite
            .find_user_by_email(email)
            .await
            .map_err(|e| StepError::appwrite("finding the user by email", &e))?;
        // A purchase goes to an account only once it has verified the email; a revocation may be filed
        // under any account with it (it gives nothing, and that account's projection must see it).
        let owner = match &user {
            Some(user) if is_revocation || self.may_claim(user) => Some(user),
            _ => None,
        };
        let owner_id = owner
            .map(|u| AppwriteId::parse(&u.id).map_err(|e| StepError::unexpected_user_id(&u.id, &e)))
            .transpose()?;
        let order_id = delivery.order_id.as_deref().map(|o| fit(o, SHORT_TEXT_SIZE));
        let store = delivery.store.as_deref().map(|s| fit(s, SHORT_TEXT_SIZE));
        let order_source = match &order_id {
            Some(order) => sellapp_order_source(store.as_deref(), order),
            // No order id: the event's own key (which then includes the body's hash) names the source.
            None => format!("sellapp:{}:event-{}", store.as_deref().unwrap_or("no-store"), claim_id),
        };
        let mut annotations = Vec::new();
        let (source, event) = match &delivery.outcome {
            Ok(SellappAction::Grant { items, .. }) => {
                let chosen = self.plan_for(items).await?;
                annotations = chosen.annotations();
                // A one-off purchase: its first recording fixes the plan and the end (a duration runs from
                // the payment, which the first delivery reports; Sell.app gives no payment time).
                let grant =
                    Grant { plan: chosen.plan, starts_at: None, ends_at: chosen.duration.map(|d| now + d), at: now };
                (order_source, LedgerEvent::GrantOnce(grant))
            }
            Ok(SellappAction::Subscription { subscription_id, change, period_end, event_time, items, .. }) => {
                let chosen = self.plan_for(items).await?;
                annotations = chosen.annotations();
                let source = sellapp_subscription_source(store.as_deref(), &fit(subscription_id, SHORT_TEXT_SIZE));
                let grant = Grant {
                    plan: chosen.plan,
                    starts_at: None,
                    ends_at: Some(*period_end),
                    at: event_time.unwrap_or(now),
                };
                // Only a dated event may lift an older revocation, and a cancellation never does.
                let reinstates = event_time.is_some() && *change != SubscriptionChange::Cancelled;
                (source, LedgerEvent::Grant { grant, reinstates })
            }
            _ => (order_source, LedgerEvent::Revoke(Revocation { at: now, reason: RevokeReason::Dispute })),
        };
        let change = LedgerChange {
            source,
            provider: PROVIDER_SELLAPP,
            email: Some(email.clone()),
            user_id: owner_id,
            order_id,
            store,
            event,
            event_key: delivery.key.raw().to_owned(),
            annotations,
        };
        let recorded = self.record_ledger_event(&change).await?;
        if let (LedgerEvent::Revoke(revocation), Some(order)) = (&change.event, &change.order_id) {
            // The same order may also stand in the ledger as an import of a pre-ledger subscription.
            self.revoke_other_sources_of_order(order, &change.source, *revocation, &change.event_key).await?;
        }
        let processed = match recorded.entry.user_id.as_deref() {
            Some(raw) => {
                let user_id = AppwriteId::parse(raw).map_err(|e| StepError::unexpected_user_id(raw, &e))?;
                self.request_role_sync(&user_id).await?;
                Processed::Applied(user_id)
            }
            None => Processed::Pending,
        };
        self.complete(claim_id).await?;
        if resumed && attempt == Attempt::Delivery {
            // A provider retry finished what a recorded failure had left undone.
            self.settle_failure_if_recorded(claim_id).await;
        }
        Ok(processed)
    }

    /// Claims the event, storing its verified body with the claim (the inbox): before any side effect.
    /// Nothing but the provider and the body is needed to process it again (no header is read after
    /// verification), and neither holds a secret or the signature.
    pub(crate) async fn claim(
        &self,
        delivery: &DeliveryFacts<'_>,
        body: &[u8],
        attempt: Attempt,
        progress: &Progress,
    ) -> Result<Claim, StepError> {
        let db = &self.settings.database_id;
        let collection = &self.settings.collections.webhook_events;
        let id = delivery.key.document_id().as_str();
        let data = json!({
            "provider": delivery.provider.as_str(),
            "eventId": fit(delivery.key.raw(), NAME_SIZE * 2),
            "orderId": delivery.order_id.map(|o| fit(o, SHORT_TEXT_SIZE)),
            "payloadHash": payload_hash(body),
            "status": EVENT_PROCESSING,
            "claimedAt": timestamp(self.clock.now()),
            "bodyText": body_text(body),
        });
        match self.appwrite.create_document(db, collection, id, &data, None).await {
            Ok(_) => {
                progress.claimed(true, true);
                Ok(Claim::New)
            }
            Err(e) if e.is_conflict() => {
                let existing = self
                    .appwrite
                    .get_document(db, collection, id)
                    .await
                    .map_err(|e| StepError::appwrite("reading the event claim", &e))?;
                let claim = match existing.decode::<EventClaim>() {
                    Ok(claim) => {
                        progress.claimed(claim.body_text.is_some(), claim.status.as_deref() == Some(EVENT_PROCESSING));
                        claim
                    }
                    Err(e) => {
                        progress.claimed(false, false);
                        // Unreadable is not "done": processing again is safe, every step is idempotent.
                        tracing::error!(claim = id, error = %e, "an event claim does not decode; processing again");
                        return Ok(Claim::Unfinished);
                    }
                };
                Ok(match (claim.status(), attempt) {
                    (ClaimStatus::Completed, _) => Claim::Completed,
                    (ClaimStatus::Processing, _) => Claim::Unfinished,
                    // Its record settled (applied since) but the claim's completion was lost: done; the
                    // claim is completed now. Else (due, dead, unreadable) processing again is safe.
                    (ClaimStatus::Failed, _) if self.failure_is_settled(delivery.key.document_id()).await => {
                        self.complete_after_settling(delivery.key.document_id()).await;
                        Claim::Completed
                    }
                    (ClaimStatus::Failed, _) => Claim::Unfinished,
                    // The replaced deployment wrote its record before the side effects. A delivery it
                    // recorded was (most likely) applied; a recorded *failure* of it was not, so a retry
                    // or an admin's replay applies it.
                    (ClaimStatus::Legacy, Attempt::Delivery) => Claim::Completed,
                    (ClaimStatus::Legacy, Attempt::Retry) => Claim::Unfinished,
                })
            }
            Err(e) => Err(StepError::appwrite("claiming the event", &e)),
        }
    }

    /// A failure record now owns the claim: the retry cron finishes it, the inbox sweep leaves it. Best
    /// effort: a claim left `processing` is swept later, which is idempotent.
    ///
    /// A retry of the same record may have settled it meanwhile (concurrent crons, a fan-out) and completed
    /// the claim before this write: so the record is read after it, and a settled record completes the claim
    /// again. Settling writes the record first and completes the claim after (`finish_retry`), so whichever
    /// of the two runs last leaves the claim `completed` (never `failed` under a settled record).
    pub(crate) async fn hand_claim_to_failure(&self, claim_id: &AppwriteId) {
        let data = json!({ "status": EVENT_FAILED });
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.webhook_events);
        if let Err(e) = self.appwrite.update_document(db, collection, claim_id.as_str(), &data).await {
            tracing::warn!(claim = %claim_id, error = %e, "could not hand the claim to its failure record; the sweep will");
            return;
        }
        if self.failure_is_settled(claim_id).await {
            self.complete_after_settling(claim_id).await;
        }
    }

    /// Whether the failure record of this claim is settled. Unreadable or missing: no (processing again is
    /// the safe answer).
    pub(crate) async fn failure_is_settled(&self, claim_id: &AppwriteId) -> bool {
        let (db, failures) = (&self.settings.database_id, &self.settings.collections.webhook_failures);
        match self.appwrite.get_document(db, failures, claim_id.as_str()).await {
            Ok(doc) => doc.data.get("state").and_then(|s| s.as_str()) == Some(FailureState::Settled.as_str()),
            Err(e) => {
                if !e.is_not_found() {
                    tracing::warn!(claim = %claim_id, error = %e, "could not read the claim's failure record");
                }
                false
            }
        }
    }

    pub(crate) async fn complete(&self, claim_id: &AppwriteId) -> Result<(), StepError> {
        // The body is dropped with the same write: the inbox keeps bodies of unfinished deliveries only.
        let data = json!({ "status": EVENT_COMPLETED, "processedAt": timestamp(self.clock.now()), "bodyText": null });
        self.appwrite
            .update_document(
                &self.settings.database_id,
                &self.settings.collections.webhook_events,
                claim_id.as_str(),
                &data,
            )
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("marking the event completed", &e))
    }
}

/// The plan a purchase grants, and how it was found.
struct ChosenPlan {
    plan: String,
    how: PlanMatch,
    product_ref: Option<String>,
    duration: Option<chrono::Duration>,
}

impl ChosenPlan {
    fn annotations(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("planMatch", json!(self.how.as_str())),
            ("productRef", json!(self.product_ref.as_deref().map(|r| fit(r, NAME_SIZE)))),
        ]
    }
}

impl<C: Clock> App<'_, C> {
    /// Reads the catalogue (one call) and picks the plan of a purchase of `items`: by variant id, product
    /// id, title, then `SELLAPP_DEFAULT_PLAN`. When a plan document that names products cannot be read, a
    /// purchase no readable plan claims by id is not guessed: that document may be the one listing it.
    async fn plan_for(&self, items: &[LineItem]) -> Result<ChosenPlan, StepError> {
        let catalogue = self.plan_catalogue().await?;
        let (plan, how) = plan_for_purchase(&catalogue.offers, items)
            .unwrap_or_else(|| (self.settings.sellapp_default_plan.clone(), PlanMatch::Default));
        let hiding: Vec<&str> =
            catalogue.broken.iter().filter(|b| b.may_list_products).map(|b| b.document_id.as_str()).collect();
        if how.is_fallback() && !hiding.is_empty() {
            let names = hiding;
            return Err(StepError::transient(
                "plan_catalogue_unreadable",
                format!("no readable plan lists this product, and plan documents {names:?} cannot be read; fix them (tollgate doctor)"),
            ));
        }
        let product_ref = items.iter().find_map(|i| match (&i.variant_id, &i.product_id, &i.title) {
            (_, Some(product), _) if how == PlanMatch::Product => Some(format!("product {product}")),
            (Some(variant), _, _) if how == PlanMatch::Variant => Some(format!("variant {variant}")),
            (_, Some(product), _) => Some(format!("product {product}")),
            (_, _, Some(title)) => Some(format!("title {title}")),
            _ => None,
        });
        if how.is_fallback() {
            tracing::warn!(plan = %plan, how = how.as_str(), product = ?product_ref, "a Sell.app purchase mapped to a plan by fallback");
        }
        let duration = catalogue.offers.iter().find(|o| o.plan == plan).and_then(|o| o.duration);
        Ok(ChosenPlan { plan, how, product_ref, duration })
    }
}

pub(crate) enum Claim {
    New,
    Completed,
    Unfinished,
}

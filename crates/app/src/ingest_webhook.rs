//! A verified Sell.app delivery, applied exactly once (ARCHITECTURE.md "Webhook processing: the contract").
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

use crate::apply_entitlement::EntitlementChange;
use crate::error::StepError;
use crate::records::{timestamp, EventClaim, EVENT_COMPLETED, EVENT_PROCESSING};
use crate::App;
use serde_json::json;
use tollgate_core::{payload_hash, AppwriteId, Clock, Email, Entitlement, SubscriptionStatus};
use tollgate_providers::sellapp_payload::{interpret, SellappAction, SellappDelivery};
use tollgate_providers::{Provider, VerifiedEvent};

/// What became of a delivery. Every variant is a 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Applied to an existing user (whose roles role-sync should now recompute).
    Applied { user_id: AppwriteId },
    /// Stored as a pending entitlement: no account has that email yet.
    Pending,
    /// Completed before: nothing was done.
    Duplicate,
    /// An event Tollgate does not act on.
    Ignored { event: Option<String> },
    /// Could not be applied now; a failure record will retry it (or an admin replays it).
    FailureRecorded { code: &'static str, retryable: bool },
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

impl<C: Clock> App<'_, C> {
    /// Applies a verified Sell.app delivery. `Ok` means answer 2xx; `Err` means answer 503.
    pub async fn ingest_sellapp(&self, event: &VerifiedEvent) -> Result<IngestOutcome, NotRecorded> {
        let delivery = interpret(event);
        match self.process_sellapp(&delivery, event.body(), Attempt::Delivery).await {
            Ok(Processed::Applied(user_id)) => Ok(IngestOutcome::Applied { user_id }),
            Ok(Processed::Pending) => Ok(IngestOutcome::Pending),
            Ok(Processed::Duplicate) => Ok(IngestOutcome::Duplicate),
            Ok(Processed::Ignored) => Ok(IngestOutcome::Ignored { event: delivery.event.clone() }),
            Err(failure) => {
                let (code, retryable) = (failure.code, failure.retryable);
                match self.record_delivery_failure(Provider::Sellapp, &delivery, event.body(), &failure).await {
                    Ok(()) => Ok(IngestOutcome::FailureRecorded { code, retryable }),
                    Err(recording) => Err(NotRecorded { failure, recording }),
                }
            }
        }
    }

    /// The steps of the contract after verification; shared by deliveries, retries and replays.
    pub(crate) async fn process_sellapp(
        &self,
        delivery: &SellappDelivery,
        body: &[u8],
        attempt: Attempt,
    ) -> Result<Processed, StepError> {
        let change = match &delivery.outcome {
            Err(payload_error) => return Err(StepError::payload(payload_error)),
            Ok(SellappAction::Ignore { .. }) => return Ok(Processed::Ignored),
            Ok(SellappAction::Grant { email, product_title, .. }) => {
                let plan = product_title.clone().unwrap_or_else(|| self.settings.sellapp_default_plan.clone());
                self.change_for(delivery, email, SubscriptionStatus::Active, plan)
            }
            Ok(SellappAction::Revoke { email, .. }) => {
                let plan = self.settings.sellapp_default_plan.clone();
                self.change_for(delivery, email, SubscriptionStatus::Inactive, plan)
            }
        };
        let claim_id = delivery.key.document_id();
        let resumed = match self.claim(delivery, body).await? {
            Claim::New => false,
            Claim::Completed => return Ok(Processed::Duplicate),
            Claim::Unfinished => true,
        };
        let processed = match self.appwrite.find_user_by_email(&change.email).await {
            Ok(Some(user)) => {
                let user_id = AppwriteId::parse(&user.id).map_err(|e| StepError::unexpected_user_id(&user.id, &e))?;
                if attempt == Attempt::Retry && self.superseded_by_revocation(&user_id, &change).await? {
                    tracing::info!(order = ?change.order_id, "a later revocation of this order stands; not re-granting");
                } else {
                    self.apply_to_user(&user_id, &change).await?;
                }
                Processed::Applied(user_id)
            }
            Ok(None) => {
                self.record_pending(&change).await?;
                Processed::Pending
            }
            Err(e) => return Err(StepError::appwrite("finding the user by email", &e)),
        };
        self.complete(claim_id).await?;
        if resumed && attempt == Attempt::Delivery {
            // A provider retry finished what a recorded failure had left undone.
            self.settle_failure_if_recorded(claim_id).await;
        }
        Ok(processed)
    }

    fn change_for(
        &self,
        delivery: &SellappDelivery,
        email: &Email,
        status: SubscriptionStatus,
        plan: String,
    ) -> EntitlementChange {
        EntitlementChange {
            email: email.clone(),
            entitlement: Entitlement { plan, status, expires_at: None },
            provider: Provider::Sellapp.as_str().to_owned(),
            order_id: delivery.order_id.clone(),
            event_id: delivery.key.raw().to_owned(),
        }
    }

    /// A grant retried after the same order was revoked (disputed) must not restore access.
    async fn superseded_by_revocation(
        &self,
        user_id: &AppwriteId,
        change: &EntitlementChange,
    ) -> Result<bool, StepError> {
        if change.entitlement.status != SubscriptionStatus::Active || change.order_id.is_none() {
            return Ok(false);
        }
        Ok(self.read_subscription(user_id).await?.is_some_and(|(current, _)| {
            current.status.as_deref() == Some(SubscriptionStatus::Inactive.as_str())
                && current.sellapp_order_id == change.order_id
        }))
    }

    async fn claim(&self, delivery: &SellappDelivery, body: &[u8]) -> Result<Claim, StepError> {
        let db = &self.settings.database_id;
        let collection = &self.settings.collections.webhook_events;
        let id = delivery.key.document_id().as_str();
        let data = json!({
            "provider": Provider::Sellapp.as_str(),
            "eventId": delivery.key.raw(),
            "orderId": delivery.order_id,
            "payloadHash": payload_hash(body),
            "status": EVENT_PROCESSING,
            "claimedAt": timestamp(self.clock.now()),
        });
        match self.appwrite.create_document(db, collection, id, &data, None).await {
            Ok(_) => Ok(Claim::New),
            Err(e) if e.is_conflict() => {
                let existing = self
                    .appwrite
                    .get_document(db, collection, id)
                    .await
                    .map_err(|e| StepError::appwrite("reading the event claim", &e))?;
                let claim = existing.decode::<EventClaim>().unwrap_or_default();
                Ok(if claim.is_completed() { Claim::Completed } else { Claim::Unfinished })
            }
            Err(e) => Err(StepError::appwrite("claiming the event", &e)),
        }
    }

    async fn complete(&self, claim_id: &AppwriteId) -> Result<(), StepError> {
        let data = json!({ "status": EVENT_COMPLETED, "processedAt": timestamp(self.clock.now()) });
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

enum Claim {
    New,
    Completed,
    Unfinished,
}

//! `webhook_failures`: every delivery that could not be applied, with its exact raw body, so it can be
//! retried on the schedule of [`tollgate_core::retry_schedule`] by the webhook worker's cron, replayed by
//! an admin, and pruned [`FAILURE_RETENTION_DAYS`] after it was settled. A failure record never holds a
//! secret: only the body the provider sent, the error and where it came from.

use crate::error::StepError;
use crate::inbox::StoredDelivery;
use crate::ingest_webhook::{Processed, Progress};
use crate::records::{body_text, fit, timestamp, FailureRecord, FailureState};
use crate::schema::{EMAIL_SIZE, MESSAGE_SIZE, NAME_SIZE, SHORT_TEXT_SIZE};
use crate::App;
use chrono::Duration;
use serde_json::json;
use tollgate_appwrite::{Deletion, Query};
use tollgate_core::retry_schedule::next_attempt_at;
use tollgate_core::IdempotencyKey;
use tollgate_core::{payload_hash, AppwriteId, Clock};
use tollgate_providers::sellapp_payload::SellappDelivery;
use tollgate_providers::stripe_payload::StripeDelivery;
use tollgate_providers::Provider;

/// The most subrequests one retry (or replay) makes: the claim (read, create or update), the user and
/// ledger reads and writes, the role-sync request, the claim's completion and the failure record's
/// update; with `STRIPE_API_KEY`, Stripe's reads of the event's objects. Measured by
/// `a_retry_costs_no_more_than_its_estimate` (app tests).
pub const RETRY_COST: u32 = 14;

/// Settled failures are kept this long for admins to see, then deleted (docs/compatibility.md).
pub const FAILURE_RETENTION_DAYS: i64 = 7;

/// What the claim and the failure record of a delivery say about it, whatever the provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeliveryFacts<'a> {
    pub provider: Provider,
    pub key: &'a IdempotencyKey,
    pub event: Option<&'a str>,
    /// The order (Sell.app) or the object (Stripe: subscription, session, charge) the event is about.
    pub order_id: Option<&'a str>,
    pub store: Option<&'a str>,
    pub email_raw: Option<&'a str>,
}

impl<'a> From<&'a SellappDelivery> for DeliveryFacts<'a> {
    fn from(d: &'a SellappDelivery) -> Self {
        Self {
            provider: Provider::Sellapp,
            key: &d.key,
            event: d.event.as_deref(),
            order_id: d.order_id.as_deref(),
            store: d.store.as_deref(),
            email_raw: d.email_raw.as_deref(),
        }
    }
}

impl<'a> From<&'a StripeDelivery> for DeliveryFacts<'a> {
    fn from(d: &'a StripeDelivery) -> Self {
        Self {
            provider: Provider::Stripe,
            key: &d.key,
            event: d.event_type.as_deref(),
            order_id: d.object_id.as_deref(),
            store: None,
            email_raw: d.email_raw.as_deref(),
        }
    }
}

fn normalised_email(delivery: &DeliveryFacts<'_>) -> Option<String> {
    let raw = delivery.email_raw?;
    let email = match tollgate_core::Email::parse(raw) {
        Ok(email) => email.as_str().to_owned(),
        // Not an address: still findable by its trimmed, lower-cased spelling.
        Err(_) => raw.trim().to_lowercase(),
    };
    Some(fit(&email, EMAIL_SIZE))
}

/// What one retry or replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Applied (or found already applied): the failure is settled.
    Settled,
    /// Failed again; due again at the next time of the schedule.
    Rescheduled,
    /// Failed again and will not be tried automatically any more.
    Dead,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetryReport {
    pub settled: u32,
    pub rescheduled: u32,
    pub dead: u32,
    /// Users whose entitlements a retry changed: their projection is queued; the caller may prompt it.
    pub users: Vec<AppwriteId>,
    /// The run stopped because the next retry did not fit the invocation's subrequest budget; what is
    /// left is still due and is listed first next run.
    pub budget_spent: bool,
}

impl RetryReport {
    fn count(&mut self, outcome: &RetryOutcome) {
        match outcome {
            RetryOutcome::Settled => self.settled += 1,
            RetryOutcome::Rescheduled => self.rescheduled += 1,
            RetryOutcome::Dead => self.dead += 1,
        }
    }
}

impl<C: Clock> App<'_, C> {
    /// Records a delivery that failed. A record that already exists for the same event (the provider
    /// delivered it again and it failed again) counts one more attempt, and its next retry is due within
    /// the schedule's first delay (the cron's own retries move along the schedule).
    pub(crate) async fn record_delivery_failure(
        &self,
        delivery: &DeliveryFacts<'_>,
        body: &[u8],
        failure: &StepError,
    ) -> Result<(), StepError> {
        let db = &self.settings.database_id;
        let collection = &self.settings.collections.webhook_failures;
        let id = delivery.key.document_id();
        // `None`: no record yet; `Some(None)`: one that does not decode (counted as one attempt).
        let previous = match self.appwrite.get_document(db, collection, id.as_str()).await {
            Ok(doc) => Some(doc.decode::<FailureRecord>().ok()),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(StepError::appwrite("reading the failure record", &e)),
        };
        let attempts = previous.as_ref().map_or(0, |r| r.as_ref().map_or(1, FailureRecord::attempts)) + 1;
        let now = self.clock.now();
        // A delivery failing again (the provider's redelivery, a duplicate racing it) is not one of the
        // cron's retries: the next retry stays within the schedule's first delay rather than moving along
        // the schedule. Moving it let a burst of redeliveries under faults push the retry hours away (`cargo
        // xtask load`, 30 % faults: five failing copies in 1.3 s put it 5 hours out) or make it dead.
        let scheduled = previous
            .flatten()
            .filter(|r| r.state() == FailureState::Due)
            .and_then(|r| r.next_attempt_at.as_deref().and_then(crate::records::parse_timestamp));
        let first = next_attempt_at(1, now).map(|first| scheduled.map_or(first, |at| at.min(first)));
        let next = if failure.retryable { first } else { None };
        let state = if next.is_some() { FailureState::Due } else { FailureState::Dead };
        let data = json!({
            "provider": delivery.provider.as_str(),
            // Every string from the payload is fitted to its attribute: an authentic body with an
            // over-long field must still be recorded (its full text is in `bodyText`).
            "event": delivery.event.map(|v| fit(v, NAME_SIZE)),
            "eventId": fit(delivery.key.raw(), NAME_SIZE * 2),
            "orderId": delivery.order_id.map(|v| fit(v, SHORT_TEXT_SIZE)),
            "store": delivery.store.map(|v| fit(v, SHORT_TEXT_SIZE)),
            // Normalised, as the admin lookup searches it; the payload's own spelling beside it.
            "email": normalised_email(delivery),
            "emailRaw": delivery.email_raw.map(|v| fit(v, EMAIL_SIZE)),
            "payloadHash": payload_hash(body),
            "bodyText": body_text(body),
            "errorCode": failure.code,
            "errorMessage": fit(&failure.message, MESSAGE_SIZE),
            "errorStatus": failure.status,
            "errorType": failure.error_type,
            "attempts": attempts,
            "state": state.as_str(),
            "nextAttemptAt": next.map(timestamp),
            "lastAttemptAt": timestamp(now),
            "settledAt": null,
        });
        self.appwrite
            .upsert_document(db, collection, id.as_str(), &data)
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("writing the failure record", &e))
    }

    /// Retries the failures that are due, oldest first, at most `limit` of them and no more than fit the
    /// invocation's subrequest budget ([`RETRY_COST`] each, after the listing). The due failures are their
    /// own queue (a retry moves `nextAttemptAt` or settles the record), so a run cut anywhere loses
    /// nothing and the next run lists what is still due.
    pub async fn retry_due_failures(&self, limit: u32) -> Result<RetryReport, StepError> {
        let mut report = RetryReport::default();
        let budget = self.appwrite.subrequests();
        let limit = budget.units(1, RETRY_COST, limit);
        if limit == 0 {
            report.budget_spent = true;
            return Ok(report);
        }
        let now = timestamp(self.clock.now());
        let queries = [
            Query::equal("state", [FailureState::Due.as_str()]),
            Query::less_than_equal("nextAttemptAt", now),
            Query::order_asc("nextAttemptAt"),
            Query::limit(limit),
        ];
        let due = self
            .appwrite
            .list_documents(&self.settings.database_id, &self.settings.collections.webhook_failures, &queries)
            .await
            .map_err(|e| StepError::appwrite("listing due failures", &e))?;
        for doc in due.documents {
            if !budget.fits(RETRY_COST) {
                report.budget_spent = true;
                break;
            }
            let outcome = match doc.decode::<FailureRecord>() {
                Ok(record) => {
                    let (outcome, user) = self.retry_record(&doc.id, &record).await?;
                    report.users.extend(user);
                    outcome
                }
                Err(e) => self.give_up_unreadable(&doc.id, &e).await?,
            };
            report.count(&outcome);
        }
        Ok(report)
    }

    /// The ids of up to `limit` due failures, oldest first (one call; ids only, not the bodies).
    pub async fn due_failure_ids(&self, limit: u32) -> Result<Vec<String>, StepError> {
        let queries = [
            Query::equal("state", [FailureState::Due.as_str()]),
            Query::less_than_equal("nextAttemptAt", timestamp(self.clock.now())),
            Query::order_asc("nextAttemptAt"),
            Query::select(["$id"]),
            Query::limit(limit.clamp(1, tollgate_appwrite::MAX_PAGE_SIZE)),
        ];
        let due = self
            .appwrite
            .list_documents(&self.settings.database_id, &self.settings.collections.webhook_failures, &queries)
            .await
            .map_err(|e| StepError::appwrite("listing due failures", &e))?;
        Ok(due.documents.into_iter().map(|d| d.id).collect())
    }

    /// An admin's replay: the exact `bodyText` through the same processing path, whatever the state.
    pub async fn replay_failure(&self, failure_id: &AppwriteId) -> Result<RetryOutcome, StepError> {
        let doc = self
            .appwrite
            .get_document(&self.settings.database_id, &self.settings.collections.webhook_failures, failure_id.as_str())
            .await
            .map_err(|e| StepError::appwrite("reading the failure record", &e))?;
        let record = doc.decode::<FailureRecord>().map_err(|e| {
            StepError::permanent("unreadable_failure", format!("failure {failure_id} cannot be read: {e}"))
        })?;
        self.retry_record(&doc.id, &record).await.map(|(outcome, _)| outcome)
    }

    /// A due failure record that does not decode cannot be retried; it is marked dead (for an admin)
    /// rather than skipped, which would retry it, and block the ones after it, forever.
    async fn give_up_unreadable(&self, doc_id: &str, error: &serde_json::Error) -> Result<RetryOutcome, StepError> {
        tracing::error!(failure = doc_id, error = %error, "a failure record does not decode; marking it dead");
        let data = json!({
            "state": FailureState::Dead.as_str(),
            "nextAttemptAt": null,
            "lastAttemptAt": timestamp(self.clock.now()),
            "errorCode": "unreadable_failure",
            "errorMessage": fit(&format!("the record does not decode: {error}"), MESSAGE_SIZE),
        });
        self.appwrite
            .update_document(&self.settings.database_id, &self.settings.collections.webhook_failures, doc_id, &data)
            .await
            .map_err(|e| StepError::appwrite("updating the failure record", &e))?;
        Ok(RetryOutcome::Dead)
    }

    /// Retries one record; the user is returned when the retry changed their entitlements.
    async fn retry_record(
        &self,
        doc_id: &str,
        record: &FailureRecord,
    ) -> Result<(RetryOutcome, Option<AppwriteId>), StepError> {
        let progress = Progress::default();
        let stored = match record.body_text.clone() {
            Some(body) => StoredDelivery::read(record.provider.as_deref(), body),
            None => Err(StepError::permanent("no_body", "the failure record keeps no body to retry".to_owned())),
        };
        let result = match &stored {
            Ok(stored) => self.reprocess(stored, &progress).await,
            Err(e) => Err(e.clone()),
        };
        let applied_to = match &result {
            Ok(Processed::Applied(user)) => Some(user.clone()),
            _ => None,
        };
        let outcome = self.finish_retry(doc_id, record, result).await?;
        match &stored {
            // The retry made (or found) the claim `processing` and failed: this record owns it, not the sweep.
            Ok(stored) if outcome != RetryOutcome::Settled && progress.leaves_claim_processing() => {
                self.hand_claim_to_failure(stored.facts().key.document_id()).await
            }
            _ => {}
        }
        Ok((outcome, applied_to))
    }

    async fn finish_retry(
        &self,
        doc_id: &str,
        record: &FailureRecord,
        result: Result<Processed, StepError>,
    ) -> Result<RetryOutcome, StepError> {
        let now = self.clock.now();
        let attempts = record.attempts() + 1;
        let (outcome, data) = match result {
            Ok(Processed::Applied(_) | Processed::Pending | Processed::Duplicate | Processed::Ignored) => (
                RetryOutcome::Settled,
                json!({
                    "state": FailureState::Settled.as_str(),
                    "settledAt": timestamp(now),
                    "nextAttemptAt": null,
                    "lastAttemptAt": timestamp(now),
                    "attempts": attempts,
                }),
            ),
            Err(failure) => {
                let next = if failure.retryable { next_attempt_at(attempts, now) } else { None };
                let (outcome, state) = match next {
                    Some(_) => (RetryOutcome::Rescheduled, FailureState::Due),
                    None => (RetryOutcome::Dead, FailureState::Dead),
                };
                let data = json!({
                    "state": state.as_str(),
                    "nextAttemptAt": next.map(timestamp),
                    "lastAttemptAt": timestamp(now),
                    "attempts": attempts,
                    "errorCode": failure.code,
                    "errorMessage": fit(&failure.message, MESSAGE_SIZE),
                    "errorStatus": failure.status,
                    "errorType": failure.error_type,
                });
                (outcome, data)
            }
        };
        self.appwrite
            .update_document(&self.settings.database_id, &self.settings.collections.webhook_failures, doc_id, &data)
            .await
            .map_err(|e| StepError::appwrite("updating the failure record", &e))?;
        if outcome == RetryOutcome::Settled {
            if let Ok(claim_id) = AppwriteId::parse(doc_id) {
                self.complete_after_settling(&claim_id).await;
            }
        }
        Ok(outcome)
    }

    /// Completes the claim (same id) again once its failure record is settled: a concurrent failing attempt
    /// may have handed the claim to the record after the processing completed it (see
    /// `hand_claim_to_failure`). Best effort: the settled record already says the delivery was applied.
    pub(crate) async fn complete_after_settling(&self, claim_id: &AppwriteId) {
        if let Err(e) = self.complete(claim_id).await {
            tracing::warn!(claim = %claim_id, error = %e, "the failure is settled but its claim could not be completed again");
        }
    }

    /// After a provider's own retry succeeded, the failure it left behind is settled. Best effort: if
    /// this write fails, the next cron retry finds the event completed and settles it then.
    pub(crate) async fn settle_failure_if_recorded(&self, failure_id: &AppwriteId) {
        let now = timestamp(self.clock.now());
        let data = json!({ "state": FailureState::Settled.as_str(), "settledAt": now, "nextAttemptAt": null });
        let db = &self.settings.database_id;
        let collection = &self.settings.collections.webhook_failures;
        match self.appwrite.update_document(db, collection, failure_id.as_str(), &data).await {
            Ok(_) => self.complete_after_settling(failure_id).await,
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(error = %e, "could not settle the failure record; the next retry will"),
        }
    }

    /// Deletes failures settled more than [`FAILURE_RETENTION_DAYS`] ago, at most `max` of them on an
    /// Appwrite without bulk delete (1.5/1.6; the next run continues). Due and dead ones are kept.
    pub async fn prune_settled_failures(&self, max: u32) -> Result<Deletion, StepError> {
        let cutoff = timestamp(self.clock.now() - Duration::days(FAILURE_RETENTION_DAYS));
        let queries = [Query::equal("state", [FailureState::Settled.as_str()]), Query::less_than("settledAt", cutoff)];
        self.appwrite
            .delete_matching(&self.settings.database_id, &self.settings.collections.webhook_failures, &queries, max)
            .await
            .map_err(|e| StepError::appwrite("pruning settled failures", &e))
    }
}

//! The durable inbox: every claim stores its verified body ([`App::claim`]) until it completes (the
//! completing write drops it: only unfinished deliveries keep a body), and the webhook cron sweeps claims
//! left `processing` past [`STALE_CLAIM_AFTER_SECS`] and processes them from that body.
//!
//! ## Why
//! A delivery runs several sequential Appwrite calls. When it is cut between its claim and its end (the
//! provider gave up and the runtime cancelled the request, the isolate was stopped, the webhook worker's
//! deadline passed), the claim stays `processing` and nothing else knows about it: before the inbox,
//! only a redelivery by the provider could ever apply it. Now the claim itself is the inbox entry.
//!
//! ## What the sweep does with a stale claim
//! It takes a lease (moves `claimedAt` to now, so a sweep of the next cron run does not process it at the
//! same time), then runs the same steps as the delivery: applied (the claim completes), or a failure
//! record (the retry schedule of [`crate::failures`] takes over; the claim becomes `failed`). A claim it
//! cannot process (no body: written before claims kept one; does not decode; a provider this version
//! does not know) is marked `unrecoverable` and logged as an error: a redelivery or an admin applies it.
//! The sweep never touches a fresh `processing` claim: its delivery may still be running.
//!
//! docs/plans/2026-12-01-durable-inbox.md has the numbers behind the bound.

use crate::error::StepError;
use crate::failures::DeliveryFacts;
use crate::ingest_webhook::{Attempt, Processed, Progress};
use crate::records::{timestamp, EventClaim, EVENT_PROCESSING, EVENT_UNRECOVERABLE};
use crate::App;
use chrono::Duration;
use serde_json::json;
use tollgate_appwrite::{Document, Query};
use tollgate_core::{AppwriteId, Clock};
use tollgate_providers::sellapp_payload::SellappDelivery;
use tollgate_providers::stripe_payload::StripeDelivery;
use tollgate_providers::{Provider, VerifiedEvent};

/// A `processing` claim older than this is swept. It must exceed the longest run that may still be
/// working on the claim: a delivery is answered by its deadline (the webhook worker's 8 s) plus at most
/// one in-flight Appwrite call (10 s timeout); a sweep's own run of one claim is at most about 12
/// sequential calls of 10 s (its lease protects it for this long). 5 minutes is well above both.
pub const STALE_CLAIM_AFTER_SECS: i64 = 300;

/// A delivery read back from a body Tollgate verified and stored (a claim's or a failure record's).
pub(crate) struct StoredDelivery {
    event: VerifiedEvent,
    kind: Kind,
}

enum Kind {
    Sellapp(SellappDelivery),
    Stripe(StripeDelivery),
}

impl StoredDelivery {
    /// `provider` as stored (`None`: a record of the replaced deployment, which only knew Sell.app).
    pub(crate) fn read(provider: Option<&str>, body: String) -> Result<Self, StepError> {
        let provider = match provider.unwrap_or(Provider::Sellapp.as_str()) {
            p if p == Provider::Sellapp.as_str() => Provider::Sellapp,
            p if p == Provider::Stripe.as_str() => Provider::Stripe,
            other => {
                return Err(StepError::permanent(
                    "unsupported_provider",
                    format!("deliveries from provider `{other}` cannot be processed by this version"),
                ))
            }
        };
        let event = VerifiedEvent::from_recorded_failure(provider, body.into_bytes());
        let kind = match provider {
            Provider::Sellapp => Kind::Sellapp(tollgate_providers::sellapp_payload::interpret(&event)),
            Provider::Stripe => Kind::Stripe(tollgate_providers::stripe_payload::interpret(&event)),
        };
        Ok(Self { event, kind })
    }

    pub(crate) fn facts(&self) -> DeliveryFacts<'_> {
        match &self.kind {
            Kind::Sellapp(delivery) => delivery.into(),
            Kind::Stripe(delivery) => delivery.into(),
        }
    }

    pub(crate) fn body(&self) -> &[u8] {
        self.event.body()
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Stale `processing` claims found (at most the run's bound).
    pub found: u32,
    /// Processed to their end (applied, pending, or found done).
    pub finished: u32,
    /// Failed again: a failure record now retries them.
    pub failed: u32,
    /// Could not be processed (no body, unreadable, unknown provider): marked `unrecoverable`.
    pub unrecoverable: u32,
    /// Users whose entitlements the sweep changed: their projection is queued; the caller may prompt it.
    pub users: Vec<AppwriteId>,
}

impl<C: Clock> App<'_, C> {
    /// A stored body through the same steps as its delivery (no deadline). `progress` says whether a
    /// failure left the claim `processing`: the caller hands it to its failure record once that record is
    /// written ([`App::hand_claim_to_failure`]), else the sweep would process it again while the retry
    /// schedule owns it.
    pub(crate) async fn reprocess(&self, stored: &StoredDelivery, progress: &Progress) -> Result<Processed, StepError> {
        match &stored.kind {
            Kind::Sellapp(delivery) => self.process_sellapp(delivery, stored.body(), Attempt::Retry, progress).await,
            Kind::Stripe(delivery) => self.reprocess_stripe(delivery, stored.body(), progress).await,
        }
    }

    /// Processes at most `limit` stale `processing` claims from their stored bodies, oldest first. Each
    /// costs about 10 Appwrite calls (the lease, the delivery's own steps, a failure record if it fails).
    pub async fn sweep_stale_claims(&self, limit: u32) -> Result<SweepReport, StepError> {
        let cutoff = timestamp(self.clock.now() - Duration::seconds(STALE_CLAIM_AFTER_SECS));
        let queries = [
            Query::equal("status", [EVENT_PROCESSING]),
            Query::less_than("claimedAt", cutoff),
            Query::order_asc("claimedAt"),
            Query::limit(limit),
        ];
        let stale = self
            .appwrite
            .list_documents(&self.settings.database_id, &self.settings.collections.webhook_events, &queries)
            .await
            .map_err(|e| StepError::appwrite("listing stale claims", &e))?;
        let mut report = SweepReport::default();
        for doc in &stale.documents {
            report.found += 1;
            self.sweep_claim(doc, &mut report).await?;
        }
        Ok(report)
    }

    async fn sweep_claim(&self, doc: &Document, report: &mut SweepReport) -> Result<(), StepError> {
        let stored = match doc.decode::<EventClaim>() {
            Err(e) => Err(format!("the claim does not decode: {e}")),
            Ok(claim) => match claim.body_text {
                None => Err("the claim keeps no body (written before claims stored theirs)".to_owned()),
                Some(body) => StoredDelivery::read(claim.provider.as_deref(), body).map_err(|e| e.to_string()),
            },
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(why) => {
                tracing::error!(claim = %doc.id, why = %why, "a stale claim cannot be processed; a redelivery or an admin must apply it");
                self.update_claim(&doc.id, &json!({ "status": EVENT_UNRECOVERABLE })).await?;
                report.unrecoverable += 1;
                return Ok(());
            }
        };
        // The lease: a sweep of the next run finds it fresh while this one works on it.
        self.update_claim(&doc.id, &json!({ "claimedAt": timestamp(self.clock.now()) })).await?;
        let facts = stored.facts();
        let progress = Progress::default();
        match self.reprocess(&stored, &progress).await {
            Ok(processed) => {
                if processed == Processed::Ignored {
                    // Ignored events are answered before they are claimed; a claim of one is done all the same.
                    self.complete(facts.key.document_id()).await?;
                }
                if let Processed::Applied(user) = processed {
                    report.users.push(user);
                }
                report.finished += 1;
            }
            Err(failure) => {
                // The record first: a claim handed to a record that was never written would be lost.
                self.record_delivery_failure(&facts, stored.body(), &failure).await?;
                self.hand_claim_to_failure(facts.key.document_id()).await;
                report.failed += 1;
            }
        }
        Ok(())
    }

    async fn update_claim(&self, id: &str, data: &serde_json::Value) -> Result<(), StepError> {
        self.appwrite
            .update_document(&self.settings.database_id, &self.settings.collections.webhook_events, id, data)
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("updating a stale claim", &e))
    }
}

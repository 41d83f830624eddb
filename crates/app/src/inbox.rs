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
//! ## Two ways a stale claim is swept
//! The webhook cron sweeps a few itself ([`App::sweep_stale_claims`], `SWEEPS_PER_RUN`: the safety net
//! when no fan-out is configured). The role-sync cron lists their ids ([`App::stale_claim_ids`]) and hands
//! them out ([`crate::scheduled`], "Fan-out"), each swept by id in an invocation of its own
//! ([`App::sweep_claim_by_id`]), which reads the claim again and leaves it unless it is still `processing`
//! and stale: one the cron's own sweep leased meanwhile is not processed twice. Two sweeps reading the
//! same claim at the very same moment can both process it (Appwrite has no conditional update); the
//! claim's event key in the ledger makes the second a duplicate.
//!
//! docs/plans/2026-12-01-durable-inbox.md has the numbers behind the bound.

use crate::error::StepError;
use crate::failures::DeliveryFacts;
use crate::ingest_webhook::{Attempt, Processed, Progress};
use crate::records::{parse_timestamp, timestamp, EventClaim, EVENT_PROCESSING, EVENT_UNRECOVERABLE};
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

impl SweepReport {
    fn count(&mut self, swept: Swept) {
        match swept {
            Swept::Skipped => return,
            Swept::Finished => self.finished += 1,
            Swept::Failed => self.failed += 1,
            Swept::Unrecoverable => self.unrecoverable += 1,
        }
        self.found += 1;
    }
}

/// What the sweep did with one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swept {
    /// Not (or no longer) a stale `processing` claim: completed, handed to its failure record, leased by
    /// another sweep, or fresh. Left alone.
    Skipped,
    /// Processed to its end (applied, pending, or found done).
    Finished,
    /// Failed again: its failure record now retries it.
    Failed,
    /// Could not be processed: marked `unrecoverable`.
    Unrecoverable,
}

impl Swept {
    /// The machine-readable outcome (the sweep route's answer and log line).
    pub fn code(self) -> &'static str {
        match self {
            Self::Skipped => "skipped",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::Unrecoverable => "unrecoverable",
        }
    }
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
        let stale = self.list_stale_claims(limit, false).await?;
        let mut report = SweepReport::default();
        for doc in &stale {
            let (swept, user) = self.sweep_claim(doc).await?;
            report.count(swept);
            report.users.extend(user);
        }
        Ok(report)
    }

    /// The ids of up to `limit` stale `processing` claims, oldest first (one call; ids only, not the
    /// bodies): what the role-sync cron hands out ([`crate::scheduled`], "Fan-out").
    pub async fn stale_claim_ids(&self, limit: u32) -> Result<Vec<String>, StepError> {
        Ok(self.list_stale_claims(limit, true).await?.into_iter().map(|d| d.id).collect())
    }

    async fn list_stale_claims(&self, limit: u32, ids_only: bool) -> Result<Vec<Document>, StepError> {
        let cutoff = timestamp(self.stale_before());
        let mut queries = vec![
            Query::equal("status", [EVENT_PROCESSING]),
            Query::less_than("claimedAt", cutoff),
            Query::order_asc("claimedAt"),
            Query::limit(limit.clamp(1, tollgate_appwrite::MAX_PAGE_SIZE)),
        ];
        if ids_only {
            queries.push(Query::select(["$id"]));
        }
        self.appwrite
            .list_documents(&self.settings.database_id, &self.settings.collections.webhook_events, &queries)
            .await
            .map(|list| list.documents)
            .map_err(|e| StepError::appwrite("listing stale claims", &e))
    }

    /// A claim `processing` since before this is stale.
    fn stale_before(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now() - Duration::seconds(STALE_CLAIM_AFTER_SECS)
    }

    /// Sweeps one claim by id (a hand-out of the fan-out; the id was listed as stale a moment ago, possibly
    /// a cron run ago). It is read again and processed only if it is still `processing` and stale: one
    /// finished, handed to its failure record or leased by another sweep meanwhile is [`Swept::Skipped`],
    /// not processed twice. The user whose entitlements changed comes with it. A missing claim is an
    /// error with status 404.
    pub async fn sweep_claim_by_id(&self, id: &AppwriteId) -> Result<(Swept, Option<AppwriteId>), StepError> {
        let doc = self
            .appwrite
            .get_document(&self.settings.database_id, &self.settings.collections.webhook_events, id.as_str())
            .await
            .map_err(|e| StepError::appwrite("reading the claim", &e))?;
        let claimed_at = doc.data.get("claimedAt").and_then(|v| v.as_str()).and_then(parse_timestamp);
        let stale = claimed_at.is_some_and(|at| at < self.stale_before());
        if doc.data.get("status").and_then(|v| v.as_str()) != Some(EVENT_PROCESSING) || !stale {
            return Ok((Swept::Skipped, None));
        }
        self.sweep_claim(&doc).await
    }

    async fn sweep_claim(&self, doc: &Document) -> Result<(Swept, Option<AppwriteId>), StepError> {
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
                return Ok((Swept::Unrecoverable, None));
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
                let user = match processed {
                    Processed::Applied(user) => Some(user),
                    _ => None,
                };
                Ok((Swept::Finished, user))
            }
            Err(failure) => {
                // The record first: a claim handed to a record that was never written would be lost.
                self.record_delivery_failure(&facts, stored.body(), &failure).await?;
                self.hand_claim_to_failure(facts.key.document_id()).await;
                Ok((Swept::Failed, None))
            }
        }
    }

    async fn update_claim(&self, id: &str, data: &serde_json::Value) -> Result<(), StepError> {
        self.appwrite
            .update_document(&self.settings.database_id, &self.settings.collections.webhook_events, id, data)
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("updating a stale claim", &e))
    }
}

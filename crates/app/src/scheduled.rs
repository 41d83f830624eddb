//! Everything the webhook worker's cron does, whatever expression fired it: finish deliveries cut after
//! their claim (the inbox sweep, [`crate::inbox`]), retry due failures, claim
//! pending entitlements whose account has verified its email (and move pre-ledger ones into the
//! ledger), prune settled failures and expired Discord link states, and (with `SELLAPP_API_KEY`) re-read recent Sell.app orders for
//! refunds ([`crate::refunds`]). Each part runs even if another
//! failed, and each is bounded so that one run stays within a Worker invocation's limits.

use crate::error::StepError;
use crate::failures::RetryReport;
use crate::inbox::SweepReport;
use crate::pending_entitlements::ClaimReport;
use crate::refunds::RefundReport;
use crate::App;
use tollgate_appwrite::Deletion;
use tollgate_core::Clock;

/// Stale claims processed per cron run by the inbox sweep (each costs about 10 Appwrite calls). Only cut
/// deliveries land there, so a few per minute drain even a burst of them within an hour.
pub const SWEEPS_PER_RUN: u32 = 3;
/// Failures retried per cron run (each costs up to ~7 Appwrite calls).
pub const RETRIES_PER_RUN: u32 = 5;
/// Pages of unclaimed pending entitlements read per cron run.
pub const PENDING_PAGES_PER_RUN: u32 = 2;
/// Documents of each pruned collection deleted per cron run where Appwrite has no bulk delete (1.5/1.6):
/// each costs one call (plus one list per collection). Appwrite 1.7+ deletes every match in one call.
pub const PRUNES_PER_RUN: u32 = 20;

#[derive(Debug, Default)]
pub struct ScheduledReport {
    pub inbox: SweepReport,
    pub retries: RetryReport,
    pub claims: ClaimReport,
    pub pruned_failures: Deletion,
    pub pruned_oauth_states: Deletion,
    /// `None`: no `SELLAPP_API_KEY`, refunds are not caught.
    pub refunds: Option<RefundReport>,
    pub errors: Vec<StepError>,
}

impl<C: Clock> App<'_, C> {
    /// `sellapp`: the Sell.app API client when `SELLAPP_API_KEY` is set.
    pub async fn run_scheduled(&self, sellapp: Option<&tollgate_sellapp::SellappApi>) -> ScheduledReport {
        let mut report = ScheduledReport::default();
        match self.sweep_stale_claims(SWEEPS_PER_RUN).await {
            Ok(inbox) => report.inbox = inbox,
            Err(e) => report.errors.push(e),
        }
        match self.retry_due_failures(RETRIES_PER_RUN).await {
            Ok(retries) => report.retries = retries,
            Err(e) => report.errors.push(e),
        }
        match self.claim_pending_entitlements(PENDING_PAGES_PER_RUN).await {
            Ok(claims) => report.claims = claims,
            Err(e) => report.errors.push(e),
        }
        if let Err(e) = self.migrate_old_pending(&mut report.claims).await {
            report.errors.push(e);
        }
        match self.prune_settled_failures(PRUNES_PER_RUN).await {
            Ok(pruned) => report.pruned_failures = pruned,
            Err(e) => report.errors.push(e),
        }
        match self.prune_expired_oauth_states(PRUNES_PER_RUN).await {
            Ok(pruned) => report.pruned_oauth_states = pruned,
            Err(e) => report.errors.push(e),
        }
        if let Some(api) = sellapp {
            match self.reconcile_refunds(api, &self.settings.refund_policy).await {
                Ok(refunds) => report.refunds = Some(refunds),
                Err(e) => report.errors.push(e),
            }
        }
        report
    }
}

//! Everything the webhook worker's cron does, whatever expression fired it: finish deliveries cut after
//! their claim (the inbox sweep, [`crate::inbox`]), retry due failures, claim
//! pending entitlements whose account has verified its email (and move pre-ledger ones into the
//! ledger), prune settled failures and expired Discord link states, and (with `SELLAPP_API_KEY`) re-read
//! recent Sell.app orders for refunds ([`crate::refunds`]). Each part runs even if another failed.
//!
//! ## Within one invocation's subrequest budget
//! [`STEPS`] is the one place that orders the steps; each runs with what the steps before it left of the
//! invocation's budget (`CRON_SUBREQUEST_BUDGET`, the meter every client counts into). A step asks the
//! budget before each unit of work whether the unit's worst case fits (`Subrequests::fits`, `units`),
//! and stops cleanly when it does not; what it did not reach is still in its queue (due failures, the
//! pending-claims cursor, matching documents to prune, orders due for a refund check), so the next run
//! resumes there. Retries go first: they are what a buyer is waiting for.
//!
//! A new step is one variant of [`Step`], its place in [`STEPS`] and its arm in [`App::run_step`].
//!
//! ## Fan-out: backlogs not capped by one invocation's budget
//! One invocation on Workers Free retries about two failures (a retry costs up to
//! [`crate::failures::RETRY_COST`]) and sweeps about three stale claims ([`SWEEP_COST`]). [`App::hand_out`]
//! lifts that for each [`Backlog`] (and for the role-sync jobs, about two a run): it lists the due ids (one
//! or two calls, `select $id`) and hands them out in slices of [`FANOUT_SLICE`] through a [`FanOut`], one call per slice, to a
//! relay (an invocation with a budget of its own) which hands every id of its slice to one more
//! invocation (the webhook worker's replay or sweep route, or role-sync's own `POST /sync` for the due
//! role-sync jobs: [`Backlog::request`]), where the work runs. The role-sync cron runs
//! it, due failures first, relaying through its own `POST /replays`: the webhook worker's size budget has
//! no room for the fan-out, and the role-sync worker needs none of the processing code to relay. Nothing
//! is lost if a hand-off fails: a failure stays due until its retry records an outcome, a claim stays
//! `processing` until it is swept. A failure the webhook cron retries while it is also being relayed is
//! processed twice at once, which the claims make harmless; a claim is read again by its sweep
//! ([`App::sweep_claim_by_id`]) and skipped once another sweep has leased or finished it.
//!
//! ## Pacing
//! The slices of one run are handed out at once, but a relay hands its ids on [`RELAY_CONCURRENCY`] at a
//! time ([`crate::concurrent::in_waves`]): at most `slices × RELAY_CONCURRENCY` retries or sweeps run at
//! once (95 at Free's default budget, not 570), so a backlog drains at the pace Appwrite answers instead
//! of piling up requests that time out and are rescheduled minutes later. The numbers behind 5 are in
//! docs/plans/2026-12-01-subrequest-budget.md ("Pacing").

use crate::error::StepError;
use crate::failures::RetryReport;
use crate::inbox::SweepReport;
use crate::pending_entitlements::ClaimReport;
use crate::refunds::{RefundPolicy, RefundReport};
use crate::App;
use tollgate_appwrite::Deletion;
use tollgate_core::Clock;

/// Stale claims processed per cron run by the inbox sweep at most (each costs up to [`SWEEP_COST`]). Only
/// cut deliveries land there, so a few per minute drain even a burst of them within an hour.
pub const SWEEPS_PER_RUN: u32 = 3;
/// One swept claim at most: the lease (moving `claimedAt`) and the whole processing path of a delivery.
pub const SWEEP_COST: u32 = 11;
/// Ids per hand-off slice: the receiving invocation (the relay) spends one call per id (Free's 50 with room).
pub const FANOUT_SLICE: u32 = 30;
/// Slices per cron run at most (each a further invocation; 900 retries a minute with the cron every minute,
/// fewer when the budget decides: 19 slices, 570 retries, at the default 40).
pub const MAX_SLICES: u32 = 30;
/// Calls each hand-out leaves to the rest of the role-sync cron (the next hand-out's listing, its due jobs
/// and reconciliation).
pub const FANOUT_RESERVE: u32 = 20;
/// Ids a relay hands on at once (see the module doc, "Pacing"). 5: below the 6 connections Cloudflare
/// keeps open per invocation (more would only wait in its queue, unaccounted), and a slice of 30 then takes
/// 6 waves, a few seconds when Appwrite answers a retry in under a second.
pub const RELAY_CONCURRENCY: usize = 5;

/// A backlog the role-sync cron hands out (the order of [`BACKLOGS`] is the order it does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// Failure records due for a retry: the webhook worker's `POST /admin/failures/{id}/replay`.
    DueFailures,
    /// Claims left `processing` past [`crate::inbox::STALE_CLAIM_AFTER_SECS`]: its `POST
    /// /admin/claims/{id}/sweep`.
    StaleClaims,
    /// Role-sync jobs due (the outbox of projections and roles; the id is the user's): the role-sync
    /// worker's own `POST /sync`.
    DueJobs,
}

/// Failures first: a due failure has waited at least a minute already, a claim five; then the role syncs
/// (the projections and roles), which the first two also queue.
pub const BACKLOGS: [Backlog; 3] = [Backlog::DueFailures, Backlog::StaleClaims, Backlog::DueJobs];

/// The worker that processes one id of a backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processor {
    /// `WEBHOOK_URL`, with `ADMIN_TOKEN`.
    Webhook,
    /// `ROLE_SYNC_URL`, with `ROLE_SYNC_TOKEN`.
    RoleSync,
}

impl Backlog {
    /// Its name in a relay's request (`kind`) and in the cron's log line.
    pub fn name(self) -> &'static str {
        match self {
            Self::DueFailures => "failures",
            Self::StaleClaims => "claims",
            Self::DueJobs => "jobs",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        BACKLOGS.into_iter().find(|b| b.name() == name)
    }

    /// The worker that processes one id.
    pub fn processor(self) -> Processor {
        match self {
            Self::DueFailures | Self::StaleClaims => Processor::Webhook,
            Self::DueJobs => Processor::RoleSync,
        }
    }

    /// The route of [`Self::processor`] that processes one id, and the JSON body it is posted with.
    pub fn request(self, id: &str) -> (String, serde_json::Value) {
        match self {
            Self::DueFailures => (format!("/admin/failures/{id}/replay"), serde_json::json!({})),
            Self::StaleClaims => (format!("/admin/claims/{id}/sweep"), serde_json::json!({})),
            Self::DueJobs => ("/sync".to_owned(), serde_json::json!({ "userId": id })),
        }
    }

    /// Calls its listing of due ids costs (the jobs: those without a due time, then the due ones).
    fn listing_cost(self) -> u32 {
        match self {
            Self::DueFailures | Self::StaleClaims => 1,
            Self::DueJobs => 2,
        }
    }
}

/// Hands slices of ids to further invocations.
pub trait FanOut {
    /// Whether hand-offs can be made at all (configured).
    fn enabled(&self) -> bool;
    /// Hands one slice of `backlog` on; `true` when it was accepted.
    fn hand(&self, backlog: Backlog, ids: Vec<String>) -> impl std::future::Future<Output = bool>;
}

/// No fan-out: every retry runs in the cron's own invocation.
pub struct NoFanOut;

impl FanOut for NoFanOut {
    fn enabled(&self) -> bool {
        false
    }

    async fn hand(&self, _backlog: Backlog, _ids: Vec<String>) -> bool {
        false
    }
}

/// Due failures listed per cron run at most; the budget decides how many of them are retried
/// ([`crate::failures::RETRY_COST`] each).
pub const RETRIES_PER_RUN: u32 = 100;
/// Pages of unclaimed pending entitlements read per cron run.
pub const PENDING_PAGES_PER_RUN: u32 = 2;
/// Documents of each pruned collection deleted per cron run where Appwrite has no bulk delete (1.5/1.6):
/// each costs one call (plus the bulk probe and one list per collection). Appwrite 1.7+ deletes every
/// match in one call.
pub const PRUNES_PER_RUN: u32 = 20;
/// A prune on 1.5/1.6 before its deletions: the bulk probe and the listing of ids.
const PRUNE_FIXED_COST: u32 = 2;
/// Refund reconciliation's two listings (never-checked, overdue orders).
const REFUND_LISTINGS: u32 = 2;
/// One order's refund check at most: Sell.app's read, the check's note, and for a refund the revocation
/// (the ledger entry's read and update), the legacy-import check and the role-sync request (up to 3).
pub const REFUND_COST: u32 = 9;

/// One step of the webhook cron.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    RetryFailures,
    SweepInbox,
    ClaimPending,
    MigrateOldPending,
    PruneFailures,
    PruneLinkStates,
    CheckRefunds,
}

/// The steps, in the order they run (each gets what the ones before left of the budget).
pub const STEPS: &[Step] = &[
    Step::RetryFailures,
    Step::SweepInbox,
    Step::ClaimPending,
    Step::MigrateOldPending,
    Step::PruneFailures,
    Step::PruneLinkStates,
    Step::CheckRefunds,
];

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Self::RetryFailures => "retryFailures",
            Self::SweepInbox => "sweepInbox",
            Self::ClaimPending => "claimPending",
            Self::MigrateOldPending => "migrateOldPending",
            Self::PruneFailures => "pruneFailures",
            Self::PruneLinkStates => "pruneLinkStates",
            Self::CheckRefunds => "checkRefunds",
        }
    }
}

#[derive(Debug, Default)]
pub struct ScheduledReport {
    pub inbox: SweepReport,
    pub retries: RetryReport,
    pub claims: ClaimReport,
    pub pruned_failures: Deletion,
    pub pruned_oauth_states: Deletion,
    /// `None`: no `SELLAPP_API_KEY`, refunds are not caught.
    pub refunds: Option<RefundReport>,
    /// Steps that stopped (or did not start) because their next unit did not fit the budget.
    pub out_of_budget: Vec<&'static str>,
    pub errors: Vec<StepError>,
}

impl<C: Clock> App<'_, C> {
    /// `sellapp`: the Sell.app API client when `SELLAPP_API_KEY` is set.
    pub async fn run_scheduled(&self, sellapp: Option<&tollgate_sellapp::SellappApi>) -> ScheduledReport {
        let mut report = ScheduledReport::default();
        for &step in STEPS {
            match self.run_step(step, sellapp, &mut report).await {
                Ok(true) => {}
                Ok(false) => report.out_of_budget.push(step.name()),
                Err(e) => report.errors.push(e),
            }
        }
        report
    }

    /// Runs one step into `report`; `false` when it stopped for the budget.
    async fn run_step(
        &self,
        step: Step,
        sellapp: Option<&tollgate_sellapp::SellappApi>,
        report: &mut ScheduledReport,
    ) -> Result<bool, StepError> {
        let budget = self.appwrite.subrequests();
        match step {
            Step::RetryFailures => {
                report.retries = self.retry_due_failures(RETRIES_PER_RUN).await?;
                Ok(!report.retries.budget_spent)
            }
            Step::SweepInbox => {
                // The listing, then each claim's worst case.
                let max = budget.units(1, SWEEP_COST, SWEEPS_PER_RUN);
                if max == 0 {
                    return Ok(false);
                }
                report.inbox = self.sweep_stale_claims(max).await?;
                Ok(max == SWEEPS_PER_RUN || report.inbox.found < max)
            }
            Step::ClaimPending => {
                let migrated = report.claims.migrated;
                report.claims =
                    ClaimReport { migrated, ..self.claim_pending_entitlements(PENDING_PAGES_PER_RUN).await? };
                Ok(!report.claims.budget_spent)
            }
            Step::MigrateOldPending => self.migrate_old_pending(&mut report.claims).await,
            Step::PruneFailures | Step::PruneLinkStates => {
                let max = budget.units(PRUNE_FIXED_COST, 1, PRUNES_PER_RUN);
                if max == 0 {
                    return Ok(false);
                }
                if step == Step::PruneFailures {
                    report.pruned_failures = self.prune_settled_failures(max).await?;
                } else {
                    report.pruned_oauth_states = self.prune_expired_oauth_states(max).await?;
                }
                Ok(true)
            }
            Step::CheckRefunds => {
                let Some(api) = sellapp else { return Ok(true) };
                let policy = self.settings.refund_policy;
                let per_run = budget.units(REFUND_LISTINGS, REFUND_COST, policy.per_run);
                if per_run == 0 {
                    return Ok(false);
                }
                let refunds = self.reconcile_refunds(api, &RefundPolicy { per_run, ..policy }).await?;
                report.refunds = Some(refunds);
                Ok(per_run == policy.per_run)
            }
        }
    }

    /// Hands `backlog` out in slices ([`FanOut`]), as many slices as fit the invocation's budget after
    /// [`FANOUT_RESERVE`]: `(ids handed out, slices not accepted)`. Run by the role-sync cron for each of
    /// [`BACKLOGS`] in turn, each with what the one before left (see the module doc: "Fan-out").
    pub async fn hand_out(&self, backlog: Backlog, fan_out: &impl FanOut) -> Result<(u32, u32), StepError> {
        let slices = self.appwrite.subrequests().units(backlog.listing_cost() + FANOUT_RESERVE, 1, MAX_SLICES);
        if slices == 0 {
            return Ok((0, 0));
        }
        let ids = match backlog {
            Backlog::DueFailures => self.due_failure_ids(slices * FANOUT_SLICE).await?,
            Backlog::StaleClaims => self.stale_claim_ids(slices * FANOUT_SLICE).await?,
            Backlog::DueJobs => self.due_job_ids(slices * FANOUT_SLICE).await?,
        };
        // All at once: each slice is its own invocation, and the cron waits for the slowest.
        let handed = ids
            .chunks(FANOUT_SLICE as usize)
            .map(|slice| async move { (slice.len() as u32, fan_out.hand(backlog, slice.to_vec()).await) });
        let (mut handed_out, mut failed) = (0, 0);
        for (size, accepted) in crate::concurrent::join_all(handed).await {
            if accepted {
                handed_out += size;
            } else {
                failed += 1;
            }
        }
        Ok((handed_out, failed))
    }
}

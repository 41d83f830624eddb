//! Cron runs within a subrequest budget: every run stays under it (nothing refused), stops cleanly, and the
//! next run resumes, so a backlog drains over runs. Counted twice: by the invocation's meter and by
//! devstack's `/_devstack/calls`.

use crate::role_sync::World;
use crate::support::{context, TestContext};
use chrono::Duration;
use serde_json::Value;
use tollgate_app::failures::RETRY_COST;
use tollgate_app::inbox::{Swept, STALE_CLAIM_AFTER_SECS};
use tollgate_app::role_sync::{RoleSync, SYNC_COST};
use tollgate_app::scheduled::{Backlog, FanOut, FANOUT_RESERVE, FANOUT_SLICE, RELAY_CONCURRENCY, SWEEP_COST};
use tollgate_app::App;
use tollgate_appwrite::{AppwriteClient, Query};
use tollgate_core::retry_schedule::RETRY_SCHEDULE_SECS;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::{FixedClock, GuildId, Secret};
use tollgate_devstack::discord_seed as seed;
use tollgate_discord::{DiscordClient, DiscordConfig};

/// Workers Free's default budget (`CRON_SUBREQUEST_BUDGET`).
const FREE_BUDGET: u32 = 40;

/// The Appwrite client of one cron invocation: a fresh meter with `limit`.
fn invocation_client(ctx: &TestContext, limit: u32) -> (AppwriteClient, Subrequests) {
    let meter = Subrequests::with_limit(limit);
    (ctx.client.clone().with_subrequests(meter.clone()), meter)
}

fn app<'a>(ctx: &'a TestContext, client: &'a AppwriteClient) -> App<'a, FixedClock> {
    App::new(client, &ctx.settings, &*ctx.clock)
}

async fn total_calls(base: &str) -> u64 {
    let calls: Value = reqwest::get(format!("{base}/_devstack/calls")).await.unwrap().json().await.unwrap();
    calls.as_object().unwrap().values().filter_map(Value::as_u64).sum()
}

async fn clear_calls(base: &str) {
    reqwest::Client::new().delete(format!("{base}/_devstack/calls")).send().await.unwrap();
}

/// `n` purchases whose processing failed (Appwrite's users API down), due for their first retry.
async fn due_failures(ctx: &TestContext, n: u64) {
    for i in 0..n {
        ctx.failed_purchase(&format!("b{i}"), 700 + i).await;
    }
    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[0]));
}

async fn still_due(ctx: &TestContext) -> usize {
    ctx.count("webhook_failures", &[Query::equal("state", ["due"]), Query::limit(5_000)]).await
}

#[tokio::test]
async fn a_retry_costs_no_more_than_its_estimate() {
    let ctx = context().await;
    due_failures(&ctx, 1).await;
    let (client, meter) = invocation_client(&ctx, 0);
    let report = app(&ctx, &client).retry_due_failures(1).await.unwrap();
    assert_eq!(report.settled, 1);
    // One listing, then the retry.
    assert!(meter.used() - 1 <= RETRY_COST, "a retry made {} calls", meter.used() - 1);
}

#[tokio::test]
async fn every_webhook_cron_run_stays_within_its_budget_and_the_runs_drain_a_backlog_of_due_failures() {
    let ctx = context().await;
    due_failures(&ctx, 9).await;
    let base = ctx.devstack.appwrite_base_url();
    let mut per_run = Vec::new();
    while still_due(&ctx).await > 0 {
        assert!(per_run.len() < 9, "the backlog does not drain: {per_run:?}");
        clear_calls(&base).await;
        let (client, meter) = invocation_client(&ctx, FREE_BUDGET);
        let report = app(&ctx, &client).run_scheduled(None).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let counted = total_calls(&base).await;
        assert_eq!(counted, u64::from(meter.used()), "the meter counts what devstack saw");
        assert!(meter.used() <= FREE_BUDGET, "{} calls", meter.used());
        assert_eq!(meter.refused(), 0, "every step paced itself: nothing refused");
        assert!(report.retries.settled > 0, "each run makes progress");
        per_run.push((report.retries.settled, meter.used()));
        ctx.clock.advance(Duration::minutes(1));
    }
    println!("retries settled and calls per run at a budget of {FREE_BUDGET}: {per_run:?}");
    // 40 calls: one listing and two retries of at most 14 calls; what is left of the budget goes to
    // the later steps.
    assert!(per_run.iter().all(|(settled, _)| *settled == 2 || *settled == 1), "{per_run:?}");
    assert_eq!(per_run.iter().map(|(s, _)| s).sum::<u32>(), 9);
    for i in 0..9 {
        ctx.project(&format!("b{i}")).await;
        assert!(ctx.is_paid(&format!("b{i}")).await, "b{i} has access");
    }
}

#[tokio::test]
async fn with_a_paid_budget_one_run_retries_the_whole_backlog() {
    let ctx = context().await;
    due_failures(&ctx, 9).await;
    let (client, meter) = invocation_client(&ctx, 1_000);
    let report = app(&ctx, &client).run_scheduled(None).await;
    assert_eq!((report.retries.settled, meter.refused()), (9, 0));
    assert!(report.out_of_budget.is_empty(), "{:?}", report.out_of_budget);
    assert_eq!(still_due(&ctx).await, 0);
}

#[tokio::test]
async fn a_budget_too_small_for_a_step_skips_it_cleanly_and_says_so() {
    let ctx = context().await;
    due_failures(&ctx, 1).await;
    let (client, meter) = invocation_client(&ctx, RETRY_COST);
    let report = app(&ctx, &client).run_scheduled(None).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!((report.retries.settled, meter.refused()), (0, 0));
    assert!(report.out_of_budget.contains(&"retryFailures"), "{:?}", report.out_of_budget);
    assert_eq!(still_due(&ctx).await, 1, "left for the next run");
}

#[tokio::test]
async fn role_sync_cron_runs_stay_within_the_budget_and_every_queued_user_gets_their_roles() {
    let w = World::new().await;
    let users = 5;
    for i in 0..users {
        let discord_id = (6_000_000 + i).to_string();
        w.join(&discord_id).await;
        w.linked_user(&format!("q{i}"), &discord_id, true).await;
    }
    let guild = GuildId::parse(seed::GUILD_ID).unwrap();
    let mut runs = Vec::new();
    loop {
        let pending = w.ctx.count("role_sync_jobs", &[Query::equal("status", ["pending"]), Query::limit(100)]).await;
        if pending == 0 {
            break;
        }
        assert!(runs.len() < 6, "the outbox does not drain: {runs:?}");
        let (client, meter) = invocation_client(&w.ctx, FREE_BUDGET);
        let discord = DiscordClient::new(
            DiscordConfig { api_base: w.ctx.devstack.discord_api_base(), bot_token: Secret::new(seed::BOT_TOKEN) },
            w.ctx.clock.clone(),
        )
        .with_subrequests(meter.clone());
        let sync = RoleSync::new(app(&w.ctx, &client), &discord, guild);
        let ran = sync.run_due_jobs(20).await.unwrap();
        let reconciled = sync.reconcile_once(10).await.unwrap();
        assert!(
            meter.used() <= FREE_BUDGET && meter.refused() == 0,
            "{} used, {} refused",
            meter.used(),
            meter.refused()
        );
        assert!(!ran.is_empty(), "each run makes progress");
        runs.push((ran.len(), reconciled.budget_spent, meter.used()));
        w.ctx.clock.advance(Duration::minutes(1));
    }
    println!("role-sync runs (jobs, reconciliation out of budget, calls): {runs:?}");
    for i in 0..users {
        let roles = w.member_roles(&(6_000_000 + i).to_string()).await;
        assert!(roles.iter().any(|r| r.to_string() == seed::MEMBER_ROLE_ID), "q{i}: {roles:?}");
    }
}

/// The role-sync cron's fan-out, played in process: each slice is an invocation (the relay) with a budget
/// of its own that spends one call per id to hand it on, in waves of `RELAY_CONCURRENCY`, and each id's
/// retry or sweep (the webhook worker's replay or sweep route) is one more invocation.
struct Invocations<'a> {
    ctx: &'a TestContext,
    /// The cron's meter: each hand-off is one of its calls (the role-sync worker's `post_json` takes it).
    cron: Subrequests,
    slices: std::sync::Mutex<Vec<(Backlog, usize)>>,
}

impl FanOut for Invocations<'_> {
    fn enabled(&self) -> bool {
        true
    }

    async fn hand(&self, backlog: Backlog, ids: Vec<String>) -> bool {
        assert!(ids.len() as u32 <= FANOUT_SLICE);
        assert!(self.cron.fits(1), "the hand-out asked the budget for this slice");
        self.cron.take().unwrap();
        let relay = Subrequests::with_limit(FREE_BUDGET);
        let handed = tollgate_app::concurrent::in_waves(&ids, RELAY_CONCURRENCY, |id| {
            assert!(relay.fits(1));
            relay.take().unwrap();
            let id = tollgate_core::AppwriteId::parse(id).unwrap();
            async move {
                let (client, meter) = invocation_client(self.ctx, FREE_BUDGET);
                let (cost, ok) = match backlog {
                    Backlog::DueFailures => (RETRY_COST, app(self.ctx, &client).replay_failure(&id).await.is_ok()),
                    Backlog::StaleClaims => {
                        let swept = app(self.ctx, &client).sweep_claim_by_id(&id).await.unwrap().0;
                        (SWEEP_COST, swept == Swept::Finished)
                    }
                    Backlog::DueJobs => {
                        // Role-sync's own `POST /sync`: the Discord client counts into the same meter.
                        let discord = self.ctx.discord().with_subrequests(meter.clone());
                        let guild = GuildId::parse(seed::GUILD_ID).unwrap();
                        let sync = RoleSync::new(app(self.ctx, &client), &discord, guild);
                        (SYNC_COST, sync.sync_user(&id).await.is_ok())
                    }
                };
                assert!(meter.refused() == 0 && meter.used() <= cost, "{backlog:?} {id}: {} calls", meter.used());
                ok
            }
        })
        .await;
        assert!(handed.iter().all(|ok| *ok), "{backlog:?}: {handed:?}");
        self.slices.lock().unwrap().push((backlog, ids.len()));
        true
    }
}

impl Invocations<'_> {
    fn slices(&self, backlog: Backlog) -> Vec<usize> {
        let mut sizes: Vec<usize> =
            self.slices.lock().unwrap().iter().filter(|(b, _)| *b == backlog).map(|(_, n)| *n).collect();
        sizes.sort_unstable();
        sizes
    }
}

#[tokio::test]
async fn with_fan_out_one_run_hands_the_whole_backlog_out_in_slices_each_invocation_within_its_budget() {
    let ctx = context().await;
    let backlog = 65;
    due_failures(&ctx, backlog).await;
    let (client, meter) = invocation_client(&ctx, FREE_BUDGET);
    let fan_out = Invocations { ctx: &ctx, cron: meter.clone(), slices: std::sync::Mutex::new(Vec::new()) };
    let handed = app(&ctx, &client).hand_out(Backlog::DueFailures, &fan_out).await.unwrap();
    assert_eq!(handed, (backlog as u32, 0));
    assert!(meter.used() <= FREE_BUDGET && meter.refused() == 0, "{} used", meter.used());
    assert!(meter.remaining() >= Some(FANOUT_RESERVE), "room left for the cron's own work");
    assert_eq!(fan_out.slices(Backlog::DueFailures), vec![5, 30, 30]);
    assert_eq!(still_due(&ctx).await, 0, "every due failure was retried in this one cron run");
}

#[tokio::test]
async fn with_fan_out_one_run_hands_out_the_due_failures_and_then_a_backlog_of_65_stale_claims_within_its_budget() {
    let ctx = context().await;
    let backlog: u64 = 65;
    for i in 0..backlog {
        crate::inbox::left_processing(&ctx, &format!("s{i}"), 800 + i).await;
    }
    due_failures(&ctx, 3).await;
    ctx.clock.advance(Duration::seconds(STALE_CLAIM_AFTER_SECS + 1));
    let (client, meter) = invocation_client(&ctx, FREE_BUDGET);
    let fan_out = Invocations { ctx: &ctx, cron: meter.clone(), slices: std::sync::Mutex::new(Vec::new()) };
    let cron = app(&ctx, &client);
    // As the role-sync cron does: the failures first, then the claims with what they left.
    assert_eq!(cron.hand_out(Backlog::DueFailures, &fan_out).await.unwrap(), (3, 0));
    assert_eq!(cron.hand_out(Backlog::StaleClaims, &fan_out).await.unwrap(), (backlog as u32, 0));
    assert_eq!((meter.used(), meter.refused()), (6, 0), "the cron's own calls: two listings, four slices");
    assert!(meter.remaining() >= Some(FANOUT_RESERVE), "room left for the cron's jobs and reconciliation");
    assert_eq!(fan_out.slices(Backlog::DueFailures), vec![3]);
    assert_eq!(fan_out.slices(Backlog::StaleClaims), vec![5, 30, 30]);
    let processing = ctx.count("webhook_events", &[Query::equal("status", ["processing"]), Query::limit(5_000)]).await;
    assert_eq!(processing, 0, "every stale claim was swept in this one cron run");
    assert_eq!(still_due(&ctx).await, 0);
    let granted = ctx.count("entitlements", &[Query::limit(5_000)]).await;
    assert_eq!(granted as u64, backlog + 3, "each purchase granted once");
}

#[tokio::test]
async fn with_fan_out_one_run_hands_out_a_backlog_of_65_due_role_sync_jobs_each_sync_within_its_budget() {
    let ctx = context().await;
    let backlog: u32 = 65;
    for i in 0..backlog {
        let user = format!("j{i}");
        ctx.create_user(&user, &format!("{user}@example.com")).await;
        ctx.app().request_role_sync(&tollgate_core::AppwriteId::parse(&user).unwrap()).await.unwrap();
    }
    let pending = [Query::equal("status", ["pending"]), Query::limit(5_000)];
    assert_eq!(ctx.count("role_sync_jobs", &pending).await, backlog as usize);
    let (client, meter) = invocation_client(&ctx, FREE_BUDGET);
    let fan_out = Invocations { ctx: &ctx, cron: meter.clone(), slices: std::sync::Mutex::new(Vec::new()) };
    assert_eq!(app(&ctx, &client).hand_out(Backlog::DueJobs, &fan_out).await.unwrap(), (backlog, 0));
    assert_eq!((meter.used(), meter.refused()), (5, 0), "the cron's own calls: two listings, three slices");
    assert!(meter.remaining() >= Some(FANOUT_RESERVE), "room left for reconciliation");
    assert_eq!(fan_out.slices(Backlog::DueJobs), vec![5, 30, 30]);
    assert_eq!(ctx.count("role_sync_jobs", &pending).await, 0, "every job ran in this one cron run, not 30 of them");
}

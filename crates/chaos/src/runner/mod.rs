//! Runs a [`History`] against a fresh devstack, in-process: the app layer as the workers call it, on the
//! injected clock, with the harness of the app's integration tests (`tollgate-testkit`).
//!
//! ## One run
//! 1. **Setup** (no faults): devstack, schema, the plans catalogue (`member` open-ended, `day` lasting a
//!    day, `vip` sold as a Sell.app subscription and at a Stripe price), four accounts, the three Discord
//!    test users in the guild. Stripe deliveries go through `ingest_stripe` without Stripe's API (as a
//!    deployment without `STRIPE_API_KEY`).
//! 2. **Chaos**: the stand-ins' seeded faults are switched on; every delivery copy, the console (admin
//!    actions, email verification, links, unlinks, clock moves, one after another like one operator) and
//!    both crons (the webhook worker's and role-sync's) run as concurrent futures, their calls interleaving
//!    at every await. A delivery answered 503 is delivered again, as the provider does; a console action
//!    that fails is tried again, as an operator would.
//! 3. **Quiet**: faults off, deliveries the provider gave up on are delivered again, then both crons run
//!    round after round, the clock moving to whatever is due next, until two rounds in a row do nothing.
//! 4. **Check**: a snapshot of the final state goes to [`crate::invariants::check`].
//!
//! - `deliveries`: the provider deliveries a history makes and how they are answered; `console`: the
//!   admin's and the buyers' own steps; `crons`: the crons until quiet.

mod console;
mod crons;
mod deliveries;

use console::{console_step, sellapp_control};
use crons::{cron_round, next_due};
use deliveries::{deliver, subscription_event_time, Delivery};

use crate::history::{History, Op, Step, DAY_PRODUCT, DISCORD_ACCOUNTS, STORE, USERS, VIP_PRODUCT};
use crate::invariants::{check, DeliveryView, Expected, FailureView, Observed};
use crate::observe::{read_delivery, read_user};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tollgate_app::ledger::{
    admin_source, sellapp_order_source, sellapp_subscription_source, stripe_subscription_source,
};
use tollgate_app::link_discord::LinkError;
use tollgate_app::records::parse_timestamp;
use tollgate_app::refunds::{RefundPolicy, SellappApi, SellappApiConfig};
use tollgate_app::role_sync::{PlanUpdate, RoleSync, RECONCILE_PAGES_PER_RUN};
use tollgate_app::stripe_ingest::NoStripeApi;
use tollgate_app::{App, IngestOutcome, NotRecorded};
use tollgate_appwrite::Query;
use tollgate_core::{AppwriteId, Clock, DiscordUserId, Email, FixedClock, GuildId, RevokeReason, RoleId, Secret};
use tollgate_devstack::discord_seed as seed;
use tollgate_discord::OAuthApp;
use tollgate_discord::{DiscordClient, GUILD_MEMBERS_PAGE_LIMIT};
use tollgate_providers::sellapp_payload::interpret;
use tollgate_providers::VerifiedEvent;
use tollgate_testkit::{context, signed_event, start_time, stripe, TestContext};

/// Role-sync jobs per cron run, as the role-sync worker runs them.
const JOBS_PER_RUN: u32 = 20;
/// 503s a provider takes before it stops redelivering (it delivers again after the faults, in the quiet).
const PROVIDER_ATTEMPTS: u32 = 30;
/// Tries of one console action before the operator gives up on it.
const CONSOLE_ATTEMPTS: u32 = 200;
/// Cron rounds the quiet phase may take.
const QUIET_ROUNDS: u32 = 80;
/// The Stripe price of the `vip` plan.
const STRIPE_VIP_PRICE: &str = "price_vip";
const REDIRECT: &str = "http://127.0.0.1:8788/discord/callback";

/// What a run found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Broken invariants (and harness failures), one line each: empty means the seed passed.
    pub violations: Vec<String>,
    /// What happened along the way that is not a failure (an action given up, a link refused).
    pub notes: Vec<String>,
    pub quiet_rounds: u32,
    /// Wall time of the setup, the chaos and the quiet phases.
    pub phases: [std::time::Duration; 3],
    /// How often each thing happened (delivery outcomes, 503s, console retries): evidence that the faults
    /// and duplicates of a history were really met.
    pub counts: BTreeMap<&'static str, u64>,
}

/// How much of a run to play; the default is all of it.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Run the crons during the history and until quiet afterwards. Off only to show that the checker
    /// sees what the crons would have fixed.
    pub crons: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { crons: true }
    }
}

struct World {
    ctx: TestContext,
    /// Sell.app's API on the stand-in, as the webhook worker has it with `SELLAPP_API_KEY`: its cron reads
    /// order statuses and revokes refunded orders.
    sellapp: SellappApi,
    discord: DiscordClient,
    oauth: OAuthApp,
    authorize: String,
    guild: GuildId,
}

impl World {
    fn app(&self) -> App<'_, FixedClock> {
        self.ctx.app()
    }

    fn sync(&self) -> RoleSync<'_, FixedClock> {
        RoleSync::new(self.ctx.app(), &self.discord, self.guild)
    }
}

/// An admin action that took effect, in the order the console made them.
enum AdminEvent {
    Granted(String),
    /// The sources revoked, and the revocation's time.
    Revoked(Vec<String>, DateTime<Utc>),
}

#[derive(Default)]
struct Log {
    /// (what, claim document id) of every delivery Tollgate acknowledged.
    claims: Vec<(String, String)>,
    /// Deliveries the provider gave up on during the chaos (delivered again in the quiet).
    undelivered: Vec<(Delivery, String)>,
    admin: Vec<AdminEvent>,
    notes: Vec<String>,
    counts: BTreeMap<&'static str, u64>,
}

fn count(log: &Mutex<Log>, what: &'static str) {
    *lock(log).counts.entry(what).or_insert(0) += 1;
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn user_id(user: usize) -> AppwriteId {
    AppwriteId::parse(&format!("u{user}")).expect("a valid id")
}

pub fn email(user: usize) -> Email {
    Email::parse(&format!("u{user}@chaos.example")).expect("a valid email")
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn pause(ms: u32) {
    if ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(ms))).await;
    }
}

async fn setup(history: &History) -> Result<World, String> {
    let ctx = context().await;
    let discord = ctx.discord();
    let guild = GuildId::parse(seed::GUILD_ID).map_err(|e| e.to_string())?;
    let role = |id: &str| RoleId::parse(id).map_err(|e| e.to_string());
    let plans = [
        ("member", None, role(seed::MEMBER_ROLE_ID)?, None),
        ("day", Some(DAY_PRODUCT), role(seed::MEMBER_ROLE_ID)?, Some(Duration::days(1))),
        ("vip", Some(VIP_PRODUCT), role(seed::VIP_ROLE_ID)?, None),
    ];
    for (plan, product, role, duration) in plans {
        let update = PlanUpdate {
            roles: Some(vec![role]),
            sellapp_products: product.map(|p| vec![p.to_owned()]),
            stripe_prices: (plan == "vip").then(|| vec![STRIPE_VIP_PRICE.to_owned()]),
            duration: duration.map(Some),
            ..PlanUpdate::default()
        };
        ctx.app().set_plan(plan, guild, &update).await.map_err(|e| format!("plan {plan}: {e}"))?;
    }
    for (user, verified) in history.verified.iter().enumerate() {
        let id = user_id(user);
        ctx.client.create_user(id.as_str(), &email(user), None, None).await.map_err(|e| e.to_string())?;
        if *verified {
            ctx.client.update_email_verification(&id, true).await.map_err(|e| e.to_string())?;
        }
    }
    let http = reqwest::Client::new();
    for (account, _) in &seed::TEST_USERS[..DISCORD_ACCOUNTS] {
        let url = format!("{}/_devstack/guilds/{}/members/{account}", ctx.devstack.discord_base_url(), seed::GUILD_ID);
        let joined = http.put(url).send().await.map_err(|e| e.to_string())?;
        if !joined.status().is_success() {
            return Err(format!("joining {account}: {}", joined.status()));
        }
    }
    let oauth = OAuthApp {
        client_id: seed::CLIENT_ID.into(),
        client_secret: Secret::new(seed::CLIENT_SECRET),
        redirect_uri: REDIRECT.into(),
    };
    let authorize = format!("{}/oauth2/authorize", ctx.devstack.discord_base_url());
    let sellapp = SellappApi::new(SellappApiConfig {
        api_base: ctx.devstack.sellapp_api_base(),
        api_key: Secret::new(ctx.devstack.sellapp_api_key()),
    })
    .map_err(|e| e.to_string())?;
    let w = World { ctx, sellapp, discord, oauth, authorize, guild };
    // Every order the history buys exists at Sell.app, paid, before its webhook arrives.
    for step in &history.steps {
        if let Op::Purchase { order, user, product } = &step.op {
            let mut body = json!({"id": order, "email": email(*user).to_string()});
            if let Some(product) = product {
                body["product_id"] = json!(product);
            }
            sellapp_control(&w, "/_devstack/orders", body).await?;
        }
    }
    Ok(w)
}

/// Runs `history` from a fresh devstack and checks the invariants.
pub async fn run(history: &History) -> Outcome {
    run_with(history, Options::default()).await
}

pub async fn run_with(history: &History, options: Options) -> Outcome {
    let mut outcome = Outcome::default();
    let started = std::time::Instant::now();
    let w = match setup(history).await {
        Ok(w) => w,
        Err(e) => {
            outcome.violations.push(format!("harness: setup failed: {e}"));
            return outcome;
        }
    };
    outcome.phases[0] = started.elapsed();
    let log = Mutex::new(Log::default());
    let fault = |f: crate::history::Faults, salt: u64| json!({"rate": f64::from(f.percent) / 100.0, "status": f.status, "seed": history.seed ^ salt});
    w.ctx.set_faults(fault(history.appwrite, 0xA)).await;
    w.ctx.set_discord_faults(fault(history.discord, 0xD)).await;

    let running = AtomicBool::new(true);
    let deliveries: Vec<_> = history
        .steps
        .iter()
        .filter(|s| s.op.is_delivery())
        .flat_map(|s| s.at.iter().map(|at| deliver(&w, &s.op, *at, &log)))
        .collect();
    let console = async {
        for Step { at, op } in history.steps.iter().filter(|s| !s.op.is_delivery()) {
            pause(at.first().copied().unwrap_or(0)).await;
            console_step(&w, op, &log).await;
        }
    };
    let history_done = async {
        futures::join!(futures::future::join_all(deliveries), console);
        running.store(false, Ordering::SeqCst);
    };
    let webhook_cron = async {
        while options.crons && running.load(Ordering::SeqCst) {
            let _ = w.app().run_scheduled(Some(&w.sellapp)).await;
            pause(3).await;
        }
    };
    let role_sync_cron = async {
        while options.crons && running.load(Ordering::SeqCst) {
            let _ = w.sync().run_due_jobs(JOBS_PER_RUN).await;
            let _ = w.sync().reconcile_once(RECONCILE_PAGES_PER_RUN).await;
            pause(3).await;
        }
    };
    futures::join!(history_done, webhook_cron, role_sync_cron);
    outcome.phases[1] = started.elapsed() - outcome.phases[0];

    w.ctx.set_faults(json!({"rate": 0})).await;
    w.ctx.set_discord_faults(json!({"rate": 0})).await;
    let undelivered = std::mem::take(&mut lock(&log).undelivered);
    for (delivery, claim) in undelivered {
        match delivery.ingest(&w).await {
            Ok(_) => lock(&log).claims.push((delivery.name, claim)),
            Err(e) => outcome.violations.push(format!("{}: 503 with no faults: {e}", delivery.name)),
        }
    }
    let mut quiet_in_a_row = if options.crons { 0 } else { 2 };
    let mut last_busy = String::new();
    // Two passes: until quiet, then once more a refund-check interval later, when the webhook cron's
    // refund check has read every live order again (a refund made after an order's first check is seen
    // only then; the test context runs the default policy).
    let mut later_pass = options.crons;
    loop {
        if quiet_in_a_row >= 2 && later_pass {
            later_pass = false;
            quiet_in_a_row = 0;
            w.ctx.clock.advance(RefundPolicy::default().interval + Duration::minutes(1));
        }
        if quiet_in_a_row >= 2 || outcome.quiet_rounds >= QUIET_ROUNDS {
            break;
        }
        outcome.quiet_rounds += 1;
        let busy = cron_round(&w).await;
        let next = match next_due(&w).await {
            Ok(next) => next,
            Err(e) => {
                outcome.violations.push(format!("harness: {e}"));
                return outcome;
            }
        };
        let now = w.ctx.clock.now();
        match (busy, next) {
            (None, None) => quiet_in_a_row += 1,
            (busy, next) => {
                quiet_in_a_row = 0;
                last_busy = busy.unwrap_or_else(|| format!("waiting for {next:?}"));
            }
        }
        match next {
            Some(at) if at > now => w.ctx.clock.set(at + Duration::seconds(1)),
            _ => w.ctx.clock.advance(Duration::minutes(1)),
        }
    }
    outcome.phases[2] = started.elapsed() - outcome.phases[0] - outcome.phases[1];
    if quiet_in_a_row < 2 {
        outcome.violations.push(format!("not quiet after {QUIET_ROUNDS} cron rounds: {last_busy}"));
    }

    let log = log.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    outcome.counts = log.counts.clone();
    let expected = expected(history, &log);
    match observe(&w, &log).await {
        Ok(observed) => {
            // Evidence that the history's refunds were met (the revocation register keeps one reason).
            for (reason, what) in [
                (RevokeReason::Refund, "sources revoked for a refund"),
                (RevokeReason::Cancellation, "sources revoked for a cancellation"),
            ] {
                let n = observed
                    .users
                    .iter()
                    .flat_map(|u| u.entitlements.iter().chain(&u.pending))
                    .filter(|v| v.entitlement.revocation.as_ref().is_some_and(|r| r.reason == reason))
                    .count();
                if n > 0 {
                    outcome.counts.insert(what, n as u64);
                }
            }
            outcome.violations.extend(check(&observed, &expected))
        }
        Err(e) => outcome.violations.push(format!("harness: reading the final state: {e}")),
    }
    outcome.notes = log.notes;
    outcome
}

/// Sources the history revoked: every disputed or refunded order, every Stripe subscription deleted or
/// refunded, and what an admin revoked unless granted again (an
/// admin grant, or a subscription event dated after the revocation: the product lets the newer truth of a
/// dated provider event lift an older revocation, by design; a late or repeated one must not).
fn expected(history: &History, log: &Log) -> Expected {
    let mut revoked = BTreeSet::new();
    let mut lifted_after: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for step in &history.steps {
        match step.op {
            Op::Dispute { order, .. } | Op::Refund { order, .. } => {
                revoked.insert(sellapp_order_source(Some(STORE), &order.to_string()));
            }
            // Stripe's endings are final (only a won dispute, never generated, reinstates).
            Op::StripeRefund { sub, .. } => {
                revoked.insert(stripe_subscription_source(&format!("sub_{sub}")));
            }
            Op::StripeSubscription { sub, ref status, .. } if status == "canceled" => {
                revoked.insert(stripe_subscription_source(&format!("sub_{sub}")));
            }
            Op::SubCreated { sub, period, .. } | Op::SubRenewed { sub, period, .. } => {
                let at = subscription_event_time(period, 0);
                let latest =
                    lifted_after.entry(sellapp_subscription_source(Some(STORE), &sub.to_string())).or_insert(at);
                *latest = (*latest).max(at);
            }
            _ => {}
        }
    }
    for event in &log.admin {
        match event {
            AdminEvent::Granted(source) => {
                revoked.remove(source);
            }
            AdminEvent::Revoked(sources, at) => {
                let stays = |source: &&String| lifted_after.get(*source).is_none_or(|lift| lift <= at);
                revoked.extend(sources.iter().filter(stays).cloned());
            }
        }
    }
    Expected { revoked }
}

async fn observe(w: &World, log: &Log) -> Result<Observed, String> {
    let app = w.app();
    let s = &w.ctx.settings;
    let mut users = Vec::new();
    for user in 0..USERS {
        let id = user_id(user);
        let discord = w.sync().linked_discord_user(&id).await.map_err(|e| e.to_string())?;
        users.push(read_user(&app, &id, &email(user), discord).await?);
    }
    let members = w
        .discord
        .list_members(w.guild, GUILD_MEMBERS_PAGE_LIMIT, None)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|m| (m.user.id, m.roles.into_iter().collect::<BTreeSet<RoleId>>()))
        .collect::<BTreeMap<DiscordUserId, _>>();
    let mappings = w.sync().role_mappings().await.map_err(|e| e.to_string())?.readable;
    let mut deliveries = Vec::new();
    for (name, claim) in &log.claims {
        let (claim_status, failure_state) = read_delivery(&app, claim).await?;
        deliveries.push(DeliveryView { name: name.clone(), claim_status, failure_state });
    }
    let failures = w
        .ctx
        .client
        .list_all_documents(&s.database_id, &s.collections.webhook_failures, &[], 100)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|doc| {
            let field = |name: &str| doc.data.get(name).and_then(Value::as_str).unwrap_or("?").to_owned();
            let state = doc.data.get("state").and_then(Value::as_str).map(str::to_owned);
            let what = format!("{} {} {}", field("event"), field("orderId"), field("errorCode"));
            FailureView { id: doc.id.clone(), state, what }
        })
        .collect();
    Ok(Observed {
        now: w.ctx.clock.now(),
        grace: s.access_grace,
        guild: w.guild,
        mappings,
        users,
        members,
        deliveries,
        failures,
    })
}

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

/// The time a subscription event of `period` says it happened (`data.updated_at`): `hours` into the period.
fn subscription_event_time(period: u32, hours: i64) -> DateTime<Utc> {
    start_time() + Duration::days(i64::from(period)) + Duration::hours(hours)
}

/// A provider's delivery: the signed event and which provider's route it goes to.
struct Delivery {
    name: String,
    event: VerifiedEvent,
    stripe: bool,
}

impl Delivery {
    fn claim_id(&self) -> String {
        if self.stripe {
            tollgate_providers::stripe_payload::interpret(&self.event).key.document_id().to_string()
        } else {
            interpret(&self.event).key.document_id().to_string()
        }
    }

    async fn ingest(&self, w: &World) -> Result<IngestOutcome, NotRecorded> {
        if self.stripe {
            w.app().ingest_stripe(&self.event, None::<&NoStripeApi>).await
        } else {
            w.app().ingest_sellapp(&self.event).await
        }
    }
}

/// The Stripe delivery of a Stripe step (Stripe's example objects with the step's fields set).
fn stripe_delivery(op: &Op) -> Option<Delivery> {
    let (name, event) = match op {
        Op::StripeCheckout { sub, user } => {
            let object = stripe::checkout(
                &format!("cs_{sub}"),
                &format!("sub_{sub}"),
                &format!("cus_{sub}"),
                Some(user_id(*user).as_str()),
                email(*user).as_ref(),
            );
            let event =
                stripe::event(&format!("evt_{sub}_checkout"), "checkout.session.completed", start_time(), object);
            (format!("stripe checkout sub_{sub} u{user}"), event)
        }
        Op::StripeSubscription { sub, user, status, period } => {
            let kind = match (status.as_str(), period) {
                ("canceled", _) => "customer.subscription.deleted",
                ("active", 0) => "customer.subscription.created",
                _ => "customer.subscription.updated",
            };
            let start = start_time() + Duration::days(i64::from(*period));
            let created = if status == "active" { start } else { start + Duration::hours(6) };
            let object = stripe::subscription(
                &format!("sub_{sub}"),
                &format!("cus_{sub}"),
                status,
                STRIPE_VIP_PRICE,
                start,
                start + Duration::days(1),
            );
            let event = stripe::event(&format!("evt_{sub}_{status}_{period}"), kind, created, object);
            (format!("stripe {kind} sub_{sub}/{period} {status} u{user}"), event)
        }
        Op::StripeRefund { sub, user } => {
            let mut charge = stripe::fixture("charge");
            charge["id"] = json!(format!("ch_{sub}"));
            charge["customer"] = json!(format!("cus_{sub}"));
            charge["payment_intent"] = json!(format!("pi_{sub}"));
            charge["amount_refunded"] = charge["amount"].clone();
            charge["refunded"] = json!(true);
            let created = start_time() + Duration::hours(18);
            let event = stripe::event(&format!("evt_{sub}_refunded"), "charge.refunded", created, charge);
            (format!("stripe charge.refunded sub_{sub} u{user}"), event)
        }
        _ => return None,
    };
    Some(Delivery { name, event, stripe: true })
}

/// The signed delivery of a delivery step, and a short name for it.
fn delivery(op: &Op) -> Option<Delivery> {
    if let Some(stripe) = stripe_delivery(op) {
        return Some(stripe);
    }
    let store: u64 = STORE.parse().ok()?;
    let subscription = |event: &str, sub: u64, user: usize, period: u32, at_hours: i64| {
        let end = start_time() + Duration::days(i64::from(period) + 1);
        let at = subscription_event_time(period, at_hours);
        json!({"event": event, "store": store, "data": {
            "id": sub, "status": "active", "customer": {"email": email(user).to_string()}, "product_id": VIP_PRODUCT,
            "current_period_end": rfc3339(end), "updated_at": rfc3339(at)
        }})
    };
    let (name, body) = match op {
        Op::Purchase { order, user, product } => {
            let mut data = json!({"id": order, "status": "COMPLETED", "customer": {"email": email(*user).to_string()}});
            if let Some(product) = product {
                data["line_items"] = json!([{"product_id": product, "product_variant_id": format!("v{product}"), "product_title": "Day pass"}]);
            }
            (
                format!("order.completed {order} u{user}"),
                json!({"event": "order.completed", "store": store, "data": data}),
            )
        }
        Op::Dispute { order, user } => (
            format!("order.disputed {order} u{user}"),
            json!({"event": "order.disputed", "store": store, "data": {"id": order, "customer": {"email": email(*user).to_string()}}}),
        ),
        Op::SubCreated { sub, user, period } => (
            format!("subscription.created {sub}/{period} u{user}"),
            subscription("subscription.created", *sub, *user, *period, 0),
        ),
        Op::SubRenewed { sub, user, period } => (
            format!("subscription.renewed {sub}/{period} u{user}"),
            subscription("subscription.renewed", *sub, *user, *period, 0),
        ),
        Op::SubCancelled { sub, user, period } => (
            format!("subscription.cancelled {sub}/{period} u{user}"),
            subscription("subscription.cancelled", *sub, *user, *period, 12),
        ),
        _ => return None,
    };
    Some(Delivery { name, event: signed_event(&body.to_string()), stripe: false })
}

fn outcome_name(outcome: &IngestOutcome, stripe: bool) -> &'static str {
    match (outcome, stripe) {
        (IngestOutcome::Applied { .. }, false) => "delivery applied",
        (IngestOutcome::Pending, false) => "delivery pending",
        (IngestOutcome::Duplicate, false) => "delivery duplicate",
        (IngestOutcome::Ignored { .. }, false) => "delivery ignored",
        (IngestOutcome::FailureRecorded { .. }, false) => "delivery failure recorded",
        (IngestOutcome::Applied { .. }, true) => "stripe delivery applied",
        (IngestOutcome::Pending, true) => "stripe delivery pending",
        (IngestOutcome::Duplicate, true) => "stripe delivery duplicate",
        (IngestOutcome::Ignored { .. }, true) => "stripe delivery ignored",
        (IngestOutcome::FailureRecorded { .. }, true) => "stripe delivery failure recorded",
        // Only a delivery cut by a deadline is answered so; the runner ingests without one.
        (IngestOutcome::Accepted, _) => "delivery accepted (left to the inbox sweep)",
    }
}

/// One copy of a delivery, redelivered on 503 as the provider does.
async fn deliver(w: &World, op: &Op, at: u32, log: &Mutex<Log>) {
    pause(at).await;
    let Some(delivery) = delivery(op) else { return };
    let claim = delivery.claim_id();
    for attempt in 0..PROVIDER_ATTEMPTS {
        match delivery.ingest(w).await {
            Ok(outcome) => {
                count(log, outcome_name(&outcome, delivery.stripe));
                lock(log).claims.push((delivery.name, claim));
                return;
            }
            Err(_) => {
                count(log, "delivery answered 503");
                pause(2 + attempt).await;
            }
        }
    }
    lock(log).undelivered.push((delivery, claim));
}

/// Tries `$action` until it succeeds (`Some`) or the operator gives up (`None`, noted).
macro_rules! until_ok {
    ($log:expr, $what:expr, $action:expr) => {{
        let mut last = String::new();
        let mut result = None;
        for attempt in 0..CONSOLE_ATTEMPTS {
            match $action.await {
                Ok(value) => {
                    result = Some(value);
                    break;
                }
                Err(e) => {
                    last = e.to_string();
                    count($log, "console action retried");
                    pause(1 + attempt % 5).await;
                }
            }
        }
        if result.is_none() {
            lock($log).notes.push(format!("{} given up after {CONSOLE_ATTEMPTS} tries: {last}", $what));
        }
        result
    }};
}

/// What a link attempt ended in: linked, refused for good (noted), or worth another try.
enum LinkTry {
    Done,
    Refused(String),
    Again(String),
}

impl std::fmt::Display for LinkTry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkTry::Done => write!(f, "linked"),
            LinkTry::Refused(why) | LinkTry::Again(why) => write!(f, "{why}"),
        }
    }
}

/// The customer's whole OAuth2 round: start, approve on the stand-in's page as `discord`, callback.
async fn link_once(w: &World, user: &AppwriteId, discord: &str) -> LinkTry {
    let start = match w.sync().start_link(user, &w.oauth, &w.authorize).await {
        Ok(start) => start,
        Err(e) => return LinkTry::Again(e.to_string()),
    };
    let browser = match reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build() {
        Ok(browser) => browser,
        Err(e) => return LinkTry::Again(e.to_string()),
    };
    let location = match browser.get(format!("{}&test_user={discord}", start.url)).send().await {
        Ok(response) => response.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned),
        Err(e) => return LinkTry::Again(e.to_string()),
    };
    let Some(url) = location.and_then(|l| reqwest::Url::parse(&l).ok()) else {
        return LinkTry::Again("the authorize page did not redirect".into());
    };
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let (Some(code), Some(state)) = (param("code"), param("state")) else {
        return LinkTry::Again(format!("no code in {url}"));
    };
    match w.sync().finish_link(&code, &state, Some(&start.browser_key), &w.oauth, None).await {
        Ok(_) => LinkTry::Done,
        Err(e @ LinkError::DiscordAccountTaken) => LinkTry::Refused(e.to_string()),
        Err(e) => LinkTry::Again(e.to_string()),
    }
}

async fn console_step(w: &World, op: &Op, log: &Mutex<Log>) {
    let app = w.app();
    match op {
        Op::Grant { user, plan, hours } => {
            let until = hours.map(|h| w.ctx.clock.now() + Duration::hours(i64::from(h)));
            let what = format!("grant {plan} to u{user}");
            if until_ok!(log, what, app.admin_grant(&email(*user), plan, until)).is_some() {
                lock(log).admin.push(AdminEvent::Granted(admin_source(&email(*user), plan)));
            }
        }
        Op::Revoke { user } => {
            let at = w.ctx.clock.now();
            if let Some(report) = until_ok!(log, format!("revoke u{user}"), app.admin_revoke(&email(*user), None)) {
                let sources = report.revoked.into_iter().chain(report.already_revoked).collect();
                lock(log).admin.push(AdminEvent::Revoked(sources, at));
            }
        }
        Op::Verify { user } => {
            let id = user_id(*user);
            until_ok!(log, format!("verify u{user}"), w.ctx.client.update_email_verification(&id, true));
        }
        Op::Link { user, discord } => {
            let (id, account) = (user_id(*user), seed::TEST_USERS[*discord].0);
            let mut last = String::new();
            for _ in 0..CONSOLE_ATTEMPTS {
                match link_once(w, &id, account).await {
                    LinkTry::Done => return,
                    LinkTry::Refused(why) => {
                        lock(log).notes.push(format!("link u{user} to discord {discord}: {why}"));
                        return;
                    }
                    LinkTry::Again(why) => {
                        count(log, "console action retried");
                        last = why;
                    }
                }
                pause(1).await;
            }
            lock(log).notes.push(format!("link u{user} given up: {last}"));
        }
        Op::Unlink { user } => {
            let id = user_id(*user);
            until_ok!(log, format!("unlink u{user}"), w.sync().unlink(&id));
        }
        Op::Refund { order, user } => {
            let what = format!("refund order {order} of u{user} at Sell.app");
            until_ok!(
                log,
                what,
                sellapp_control(w, &format!("/_devstack/orders/{order}/status"), json!({"status": "REFUNDED"}))
            );
        }
        Op::Advance { minutes } => w.ctx.clock.advance(Duration::minutes(i64::from(*minutes))),
        _ => {}
    }
}

/// A control call to the Sell.app stand-in (an order paid, an order refunded).
async fn sellapp_control(w: &World, path: &str, body: Value) -> Result<(), String> {
    let url = format!("{}{path}", w.ctx.devstack.sellapp_base_url());
    let response = reqwest::Client::new().post(url).json(&body).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{path}: {}", response.status()));
    }
    Ok(())
}

/// What one round of both crons did; `None` when it did nothing and met no error.
async fn cron_round(w: &World) -> Option<String> {
    let mut busy = Vec::new();
    let report = w.app().run_scheduled(Some(&w.sellapp)).await;
    let r = &report.retries;
    if r.settled + r.rescheduled + r.dead > 0 || report.claims.claimed > 0 {
        busy.push(format!("retries {}/{}/{} claims {}", r.settled, r.rescheduled, r.dead, report.claims.claimed));
    }
    if let Some(refunds) = report.refunds.as_ref().filter(|r| r.checked > 0) {
        busy.push(format!("refund check: {} orders, revoked {:?}", refunds.checked, refunds.revoked));
    }
    busy.extend(report.errors.iter().map(|e| format!("webhook cron: {e}")));
    match w.sync().run_due_jobs(JOBS_PER_RUN).await {
        Ok(ran) if ran.is_empty() => {}
        Ok(ran) => busy.push(format!("{} role-sync jobs", ran.len())),
        Err(e) => busy.push(format!("role-sync jobs: {e}")),
    }
    match w.sync().reconcile_once(RECONCILE_PAGES_PER_RUN).await {
        Ok(rec) if rec.role_changes == 0 && rec.access_drift.queued.is_empty() && rec.stopped.is_none() => {}
        Ok(rec) => busy.push(format!(
            "reconciliation: {} role changes, {} queued, stopped {:?}",
            rec.role_changes,
            rec.access_drift.queued.len(),
            rec.stopped
        )),
        Err(e) => busy.push(format!("reconciliation: {e}")),
    }
    (!busy.is_empty()).then(|| busy.join("; "))
}

/// The earliest time something waits for (a due failure, a pending role-sync job), if anything waits.
async fn next_due(w: &World) -> Result<Option<DateTime<Utc>>, String> {
    let s = &w.ctx.settings;
    let mut earliest: Option<DateTime<Utc>> = None;
    for (collection, field, value) in
        [(&s.collections.webhook_failures, "state", "due"), (&s.collections.role_sync_jobs, "status", "pending")]
    {
        let docs = w
            .ctx
            .client
            .list_all_documents(&s.database_id, collection, &[Query::equal(field, [value])], 100)
            .await
            .map_err(|e| format!("listing {collection}: {e}"))?;
        for doc in docs {
            let at = doc.data.get("nextAttemptAt").and_then(Value::as_str).and_then(parse_timestamp);
            let at = at.unwrap_or_else(|| w.ctx.clock.now());
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
    }
    // A claim left `processing` (a delivery whose failure could not be recorded either) is the inbox
    // sweep's once it is stale.
    let claims = w
        .ctx
        .client
        .list_all_documents(
            &s.database_id,
            &s.collections.webhook_events,
            &[Query::equal("status", [tollgate_app::records::EVENT_PROCESSING])],
            100,
        )
        .await
        .map_err(|e| format!("listing claims: {e}"))?;
    for doc in claims {
        let claimed = doc.data.get("claimedAt").and_then(Value::as_str).and_then(parse_timestamp);
        let at = claimed.unwrap_or_else(|| w.ctx.clock.now())
            + Duration::seconds(tollgate_app::inbox::STALE_CLAIM_AFTER_SECS);
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    Ok(earliest)
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

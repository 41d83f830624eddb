//! One load run against a started system: the delivery phases (one per fault rate, then the outage), the
//! crons until quiet, the backlog, then the final state of every buyer. Sell.app is played as it behaves: a
//! delivery answered 503 (or not answered) is delivered again later, with a growing delay, until it is
//! acknowledged; the crons are fired through `wrangler dev --test-scheduled` (`GET /__scheduled`), one
//! webhook and one role-sync invocation per simulated minute, as Cloudflare fires them.

use crate::check::{verdict, OrderView, PhaseObserved, Verdict};
use crate::cpu::{self, TreeCpu, DEVSTACK_THREADS};
use crate::plan::{phase_plan, redelivery_delay, Buyer, PhasePlan, PROVIDER_ATTEMPTS};
use crate::stats::{per_second, percentile};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tollgate_app::ledger::sellapp_order_source;
use tollgate_app::records::parse_timestamp;
use tollgate_app::App;
use tollgate_appwrite::{AppwriteClient, Query};
use tollgate_chaos::invariants::FailureView;
use tollgate_chaos::observe::{read_delivery, read_user};
use tollgate_core::{AppwriteId, DiscordUserId, Email, GuildId, RoleId, SystemClock};
use tollgate_devstack::discord_seed as seed;
use tollgate_devstack::RunningDevstack;
use xtask::system::{event_document_id, sellapp_order_body, sellapp_signature, LocalStack, SELLAPP_SECRET};
use xtask::wrangler::RunningWorker;

const EVENT: &str = "order.completed";
const STORE: &str = "1";
/// The longest a delivery phase may take, redeliveries included.
const PHASE_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// How long the crons may take to make the system quiet.
const QUIET_DEADLINE: Duration = Duration::from_secs(25 * 60);
/// How long one cron invocation may take (Cloudflare allows a cron 15 minutes of wall time; the role-sync
/// cron's fan-out waits for its relays).
const CRON_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long the backlog may take to drain before the run gives up on it (the budget is 10 minutes).
const DRAIN_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// How far ahead the quiet phase waits for something due (beyond the inbox's 300 s stale bound).
const QUIET_HORIZON: Duration = Duration::from_secs(7 * 60);
/// How long a phase waits, after its last delivery, for the role syncs its deliveries prompted.
const SETTLE: Duration = Duration::from_secs(15);
/// Setup and reads of the final state, at once.
const READ_CONCURRENCY: usize = 20;

/// CPU ticks now: each worker's `wrangler dev` tree, devstack's runtime threads, this whole process.
#[derive(Debug, Clone, Copy, Default)]
struct CpuSnapshot {
    /// With the deliveries answered by workerd alone: `runtime` is that process, `rest` the whole
    /// `wrangler dev` tree that runs the webhook's crons.
    webhook: TreeCpu,
    alone: bool,
    role_sync: TreeCpu,
    api: TreeCpu,
    devstack: u64,
    process: u64,
}

/// CPU time spent between two snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSplit {
    /// The webhook worker's runtime that answered the deliveries (its code).
    pub webhook_workerd: Duration,
    /// wrangler's processes for the webhook worker: node and its proxy worker's workerd; with the
    /// deliveries answered by workerd alone, the whole `wrangler dev` tree that runs the crons.
    pub webhook_proxy: Duration,
    /// Whether the deliveries went to the webhook worker in workerd alone.
    pub alone: bool,
    pub other_workers: Duration,
    pub devstack: Duration,
    /// This process apart from devstack: the load generator and the final-state reads.
    pub driver: Duration,
}

impl CpuSnapshot {
    fn since(&self, before: &CpuSnapshot) -> CpuSplit {
        let d = |now: u64, then: u64| cpu::ticks_to_duration(now.saturating_sub(then));
        let tree = |t: &TreeCpu| t.runtime + t.rest;
        CpuSplit {
            webhook_workerd: d(self.webhook.runtime, before.webhook.runtime),
            webhook_proxy: d(self.webhook.rest, before.webhook.rest),
            alone: self.alone,
            other_workers: d(tree(&self.role_sync) + tree(&self.api), tree(&before.role_sync) + tree(&before.api)),
            devstack: d(self.devstack, before.devstack),
            driver: d(self.process - self.devstack, before.process - before.devstack),
        }
    }
}

/// What one phase measured.
#[derive(Debug, Clone, Default)]
pub struct PhaseReport {
    pub name: String,
    pub deliveries: usize,
    pub orders: usize,
    /// HTTP requests made (redeliveries included).
    pub requests: u64,
    /// Answers by kind (`applied`, `duplicate`, `recorded`, `accepted`, `503`, ...).
    pub answers: BTreeMap<String, u64>,
    /// Deliveries Sell.app gave up on (delivered again with no faults after the phase).
    pub given_up: usize,
    pub wall: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub appwrite_calls: u64,
    /// The routes called most, with their counts.
    pub top_routes: Vec<(String, u64)>,
    pub cpu: CpuSplit,
    pub loadavg: String,
}

impl PhaseReport {
    pub fn throughput(&self) -> f64 {
        per_second(self.deliveries as u64, self.wall)
    }

    pub fn calls_per_delivery(&self) -> f64 {
        self.appwrite_calls as f64 / self.deliveries.max(1) as f64
    }

    /// CPU of the webhook worker's workerd per HTTP request it answered, in milliseconds.
    pub fn workerd_ms_per_request(&self) -> f64 {
        self.cpu.webhook_workerd.as_secs_f64() * 1_000.0 / self.requests.max(1) as f64
    }

    pub fn print(&self) {
        let answers: Vec<String> = self.answers.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let c = &self.cpu;
        println!(
            "phase {}: {} deliveries ({} orders) in {:.1} s = {:.1}/s; p50 {} ms, p99 {} ms; {} requests [{}]; given up {}",
            self.name,
            self.deliveries,
            self.orders,
            self.wall.as_secs_f64(),
            self.throughput(),
            self.p50.as_millis(),
            self.p99.as_millis(),
            self.requests,
            answers.join(", "),
            self.given_up,
        );
        let (runtime, rest) = if c.alone {
            ("webhook workerd alone", "webhook wrangler dev (crons)")
        } else {
            ("webhook user workerd", "webhook wrangler (node + proxy workerd)")
        };
        println!(
            "  appwrite calls {} = {:.2}/delivery; CPU s: {runtime} {:.2}, {rest} {:.2}, other workers {:.2}, devstack {:.2}, driver {:.2}; {runtime} {:.2} ms/request; load average {}",
            self.appwrite_calls,
            self.calls_per_delivery(),
            c.webhook_workerd.as_secs_f64(),
            c.webhook_proxy.as_secs_f64(),
            c.other_workers.as_secs_f64(),
            c.devstack.as_secs_f64(),
            c.driver.as_secs_f64(),
            self.workerd_ms_per_request(),
            self.loadavg,
        );
        let routes: Vec<String> = self.top_routes.iter().map(|(r, n)| format!("{r} {n}")).collect();
        println!("  most called: {}", routes.join(", "));
    }
}

/// The backlog phase's drain.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    pub recorded: usize,
    /// Real time from the faults lifted to the first retry due (the schedule's first delay).
    pub first_due_wait: Duration,
    /// Cron invocations (per worker) fired while something was due.
    pub invocations: u32,
    /// Minutes on Cloudflare after the first delay: the invocations, plus the minutes waited in real time
    /// while everything left was due later (a failed retry rescheduled), when its crons find nothing.
    pub minutes: u32,
    pub wall: Duration,
    pub drained: bool,
}

impl Drain {
    /// Minutes on Cloudflare from the faults lifted: the first delay (a minute), then [`Self::minutes`].
    pub fn cloudflare_minutes(&self) -> u32 {
        1 + self.minutes
    }
}

/// The crons until quiet.
#[derive(Debug, Clone)]
pub struct Quiet {
    /// Invocations per worker (simulated minutes).
    pub invocations: u32,
    pub wall: Duration,
    /// What was still waiting when it stopped without getting quiet.
    pub left: Option<String>,
}

impl Quiet {
    pub fn print(&self) {
        let how = self.left.as_deref().map_or("quiet".to_owned(), |left| format!("NOT quiet: {left}"));
        println!("crons: {} invocations per worker in {:.0} s, {how}", self.invocations, self.wall.as_secs_f64());
    }
}

pub struct Runner<'a> {
    pub devstack: &'a RunningDevstack,
    pub stack: &'a LocalStack,
    /// The webhook worker in workerd alone that answers the deliveries (`--through workerd`); else the
    /// stack's `wrangler dev` one does.
    pub alone: Option<&'a RunningWorker>,
    pub http: reqwest::Client,
    pub concurrency: usize,
    pub seed: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The kind of an answer, from its status and body.
pub fn answer_kind(status: u16, body: &Value) -> String {
    let flag = |name: &str| body[name].as_bool() == Some(true);
    match status {
        200 if flag("duplicate") => "duplicate".into(),
        200 if flag("pending") => "pending".into(),
        200 if body.get("ignored").is_some() => "ignored".into(),
        200 => "applied".into(),
        202 if flag("recorded") => "recorded".into(),
        202 if flag("accepted") => "accepted".into(),
        other => other.to_string(),
    }
}

/// Whether Sell.app takes the answer as delivered (any 2xx).
fn acknowledged(kind: &str) -> bool {
    matches!(kind, "applied" | "duplicate" | "pending" | "ignored" | "recorded" | "accepted")
}

struct Queued {
    buyer: usize,
    not_before: Instant,
    attempts: u32,
}

#[derive(Default)]
struct Delivered {
    latencies: Vec<Duration>,
    answers: BTreeMap<String, u64>,
    requests: u64,
    given_up: Vec<usize>,
}

impl Runner<'_> {
    fn app<'c>(&'c self, clock: &'c SystemClock) -> App<'c, SystemClock> {
        App::new(&self.stack.client, &self.stack.settings, clock)
    }

    fn client(&self) -> &AppwriteClient {
        &self.stack.client
    }

    fn db(&self) -> &str {
        &self.stack.settings.database_id
    }

    pub async fn set_faults(&self, faults: Value) -> Result<()> {
        let url = format!("{}/_devstack/faults", self.devstack.appwrite_base_url());
        let response = self.http.post(url).json(&faults).send().await.context("POST /_devstack/faults")?;
        if !response.status().is_success() {
            bail!("setting faults {faults}: {}", response.status());
        }
        Ok(())
    }

    /// devstack's Appwrite calls by route since the last reset (`reset`: zeroes them after reading).
    async fn appwrite_calls(&self, reset: bool) -> Result<BTreeMap<String, u64>> {
        let url = format!("{}/_devstack/calls", self.devstack.appwrite_base_url());
        let counts: Value = self.http.get(&url).send().await?.json().await.context("GET /_devstack/calls")?;
        if reset {
            self.http.delete(&url).send().await.context("DELETE /_devstack/calls")?;
        }
        let routes = counts.as_object().context("GET /_devstack/calls is not an object")?;
        Ok(routes.iter().filter_map(|(route, n)| Some((route.clone(), n.as_u64()?))).collect())
    }

    fn cpu(&self) -> CpuSnapshot {
        let mut roots = vec![self.stack.webhook.pid(), self.stack.role_sync.pid(), self.stack.api.pid()];
        roots.extend(self.alone.map(RunningWorker::pid));
        let trees = cpu::workers_cpu(&roots);
        let (devstack, process) = cpu::own_threads_cpu(DEVSTACK_THREADS);
        let total = |t: &TreeCpu| t.runtime + t.rest;
        let webhook = match trees.get(3) {
            Some(alone) => TreeCpu { runtime: total(alone), rest: total(&trees[0]) },
            None => trees[0],
        };
        CpuSnapshot { webhook, alone: self.alone.is_some(), role_sync: trees[1], api: trees[2], devstack, process }
    }

    /// Verified accounts for the buyers, and the linked sample's profiles and guild memberships (as a
    /// buyer who signed up, verified their email and linked Discord before buying).
    pub async fn create_buyers(&self, buyers: &[Buyer]) -> Result<()> {
        let profiles = &self.stack.settings.collections.profiles;
        let results: Vec<Result<()>> = futures::stream::iter(buyers)
            .map(|buyer| async move {
                let email = Email::parse(&buyer.email).map_err(|e| anyhow::anyhow!("{e}"))?;
                let id = AppwriteId::parse(&buyer.user_id).map_err(|e| anyhow::anyhow!("{e}"))?;
                self.client().create_user(id.as_str(), &email, None, None).await?;
                self.client().update_email_verification(&id, true).await?;
                if let Some(discord) = &buyer.discord {
                    let data = json!({"discordUserId": discord, "discordLinkedAt": Utc::now().to_rfc3339()});
                    self.client().upsert_document(self.db(), profiles, id.as_str(), &data).await?;
                    let join = format!(
                        "{}/_devstack/guilds/{}/members/{discord}",
                        self.devstack.discord_base_url(),
                        seed::GUILD_ID
                    );
                    let answer = self.http.put(join).send().await?;
                    if !answer.status().is_success() {
                        bail!("joining {discord} to the guild: {}", answer.status());
                    }
                }
                Ok(())
            })
            .buffer_unordered(READ_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>>>().context("creating the buyers")?;
        Ok(())
    }

    async fn post(&self, buyer: &Buyer) -> (String, Duration) {
        let body = sellapp_order_body(EVENT, buyer.order_id, &buyer.email);
        let signature = sellapp_signature(SELLAPP_SECRET, &body);
        let url = format!("{}/sell/webhook", self.alone.unwrap_or(&self.stack.webhook).url());
        let started = Instant::now();
        let sent = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("signature", signature)
            .body(body)
            .send()
            .await;
        let kind = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                answer_kind(status, &body)
            }
            Err(e) if e.is_timeout() => "timeout".into(),
            Err(_) => "connection error".into(),
        };
        (kind, started.elapsed())
    }

    /// Delivers `sequence` (`concurrency` at a time), each delivery again after a growing delay until it is
    /// acknowledged, up to [`PROVIDER_ATTEMPTS`]. `spread`: the deliveries arrive evenly over that time
    /// (during an outage) instead of all at once.
    async fn deliver(&self, plan: &PhasePlan, spread: Option<Duration>) -> Delivered {
        let start = Instant::now();
        let n = plan.sequence.len().max(1) as u32;
        let queue: Mutex<Vec<Queued>> = Mutex::new(
            plan.sequence
                .iter()
                .enumerate()
                .map(|(i, buyer)| Queued {
                    buyer: *buyer,
                    not_before: start + spread.map_or(Duration::ZERO, |s| s * u32::try_from(i).unwrap_or(0) / n),
                    attempts: 0,
                })
                .collect(),
        );
        let in_flight = std::sync::atomic::AtomicUsize::new(0);
        let delivered = Mutex::new(Delivered::default());
        let sender = || async {
            loop {
                let next = {
                    let mut q = lock(&queue);
                    if q.is_empty() && in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                        return;
                    }
                    let now = Instant::now();
                    let ready = q
                        .iter()
                        .enumerate()
                        .filter(|(_, item)| item.not_before <= now)
                        .min_by_key(|(_, item)| item.not_before);
                    match ready.map(|(i, _)| i) {
                        Some(i) => {
                            in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            Some(q.swap_remove(i))
                        }
                        None => None,
                    }
                };
                let Some(mut item) = next else {
                    if start.elapsed() > PHASE_DEADLINE {
                        let mut d = lock(&delivered);
                        d.given_up.extend(lock(&queue).drain(..).map(|item| item.buyer));
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let (kind, latency) = self.post(&plan.buyers[item.buyer]).await;
                item.attempts += 1;
                {
                    let mut d = lock(&delivered);
                    d.requests += 1;
                    d.latencies.push(latency);
                    *d.answers.entry(kind.clone()).or_default() += 1;
                    if !acknowledged(&kind) {
                        if item.attempts >= PROVIDER_ATTEMPTS {
                            d.given_up.push(item.buyer);
                        } else {
                            item.not_before = Instant::now() + redelivery_delay(item.attempts);
                            lock(&queue).push(item);
                        }
                    }
                }
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        };
        futures::future::join_all((0..self.concurrency).map(|_| sender())).await;
        delivered.into_inner().unwrap_or_default()
    }

    /// Waits (at most [`SETTLE`]) until no role-sync job is pending: the projections the phase's deliveries
    /// prompted are part of its cost. Returns the Appwrite calls it made itself (one per poll), which the
    /// phase's count leaves out.
    async fn settle(&self) -> u64 {
        let deadline = Instant::now() + SETTLE;
        let jobs = &self.stack.settings.collections.role_sync_jobs;
        let pending = [Query::equal("status", ["pending"]), Query::limit(1)];
        let mut polls = 0;
        while Instant::now() < deadline {
            polls += 1;
            match self.client().list_documents(self.db(), jobs, &pending).await {
                Ok(list) if list.total == 0 => break,
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        polls
    }

    /// One delivery phase: `fault_percent` of Appwrite calls failing (`outage`: all of them for that long,
    /// the deliveries arriving over the window and redelivered after it).
    pub async fn phase(
        &self,
        name: &str,
        plan: &PhasePlan,
        fault_percent: u32,
        outage: Option<Duration>,
    ) -> Result<PhaseReport> {
        self.appwrite_calls(true).await?;
        let before = self.cpu();
        let started = Instant::now();
        match outage {
            Some(_) => self.set_faults(json!({"rate": 1.0, "status": 503})).await?,
            None if fault_percent > 0 => {
                let rate = f64::from(fault_percent) / 100.0;
                self.set_faults(json!({"rate": rate, "status": 503, "seed": self.seed ^ u64::from(fault_percent)}))
                    .await?
            }
            None => {}
        }
        let lift = async {
            if let Some(window) = outage {
                tokio::time::sleep(window).await;
                self.set_faults(json!({"rate": 0})).await
            } else {
                Ok(())
            }
        };
        let (mut delivered, lifted) = tokio::join!(self.deliver(plan, outage), lift);
        lifted?;
        let wall = started.elapsed();
        self.set_faults(json!({"rate": 0})).await?;
        let given_up = delivered.given_up.len();
        if given_up > 0 {
            // As Sell.app would after its own retries ran out: someone delivers them again by hand.
            let again = PhasePlan { buyers: plan.buyers.clone(), sequence: std::mem::take(&mut delivered.given_up) };
            let redelivered = self.deliver(&again, None).await;
            if !redelivered.given_up.is_empty() {
                bail!("{name}: {} deliveries still not acknowledged with no faults", redelivered.given_up.len());
            }
        }
        let own_calls = self.settle().await;
        let cpu = self.cpu().since(&before);
        let routes = self.appwrite_calls(false).await?;
        let appwrite_calls = routes.values().sum::<u64>().saturating_sub(own_calls);
        let mut latencies = delivered.latencies;
        Ok(PhaseReport {
            name: name.to_owned(),
            deliveries: plan.sequence.len(),
            orders: plan.buyers.len(),
            requests: delivered.requests,
            answers: delivered.answers,
            given_up,
            wall,
            p50: percentile(&mut latencies, 50.0).unwrap_or_default(),
            p99: percentile(&mut latencies, 99.0).unwrap_or_default(),
            appwrite_calls,
            top_routes: top_routes(&routes),
            cpu,
            loadavg: loadavg(),
        })
    }

    /// One minute on Cloudflare: the webhook and the role-sync cron, at once. A cron that fails or takes
    /// longer than [`CRON_TIMEOUT`] is reported and the run goes on (the next minute runs the crons again).
    async fn cron_minute(&self) {
        let fire = |base: &str| {
            let url = format!("{base}/__scheduled?cron=*+*+*+*+*");
            async move {
                match self.http.get(&url).timeout(CRON_TIMEOUT).send().await {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => println!("  cron {url}: {}", response.status()),
                    Err(e) => println!("  cron {url}: {e}"),
                }
            }
        };
        tokio::join!(fire(self.stack.webhook.url()), fire(self.stack.role_sync.url()));
    }

    /// What still waits for the crons.
    async fn busy(&self) -> Result<Busy> {
        let c = &self.stack.settings.collections;
        let list = |collection: &'static str, field: &'static str, value: &'static str| {
            let collection = match collection {
                "failures" => &c.webhook_failures,
                "claims" => &c.webhook_events,
                _ => &c.role_sync_jobs,
            };
            async move {
                self.client()
                    .list_all_documents(self.db(), collection, &[Query::equal(field, [value])], 100)
                    .await
                    .with_context(|| format!("listing {collection} with {field} = {value}"))
            }
        };
        let (due, processing, jobs) = tokio::join!(
            list("failures", "state", "due"),
            list("claims", "status", "processing"),
            list("jobs", "status", "pending"),
        );
        let (due, processing, jobs) = (due?, processing?, jobs?);
        let at = |doc: &tollgate_appwrite::Document, field: &str| {
            doc.data.get(field).and_then(Value::as_str).and_then(parse_timestamp)
        };
        let stale = chrono::Duration::seconds(tollgate_app::inbox::STALE_CLAIM_AFTER_SECS);
        let next = due
            .iter()
            .chain(&jobs)
            .filter_map(|d| at(d, "nextAttemptAt"))
            .chain(processing.iter().filter_map(|d| at(d, "claimedAt").map(|t| t + stale)))
            .min();
        Ok(Busy { due_failures: due.len(), processing_claims: processing.len(), pending_jobs: jobs.len(), next })
    }

    /// Crons minute by minute until two minutes in a row leave nothing waiting; between minutes it waits,
    /// in real time, until what is left is due (a failure's next attempt, a stale claim's sweep). It stops
    /// early when all that is left is due later than [`QUIET_HORIZON`] (a failure whose schedule says
    /// hours): the final check then counts it as stuck.
    pub async fn quiet(&self) -> Result<Quiet> {
        let started = Instant::now();
        let (mut invocations, mut quiet_in_a_row) = (0u32, 0u32);
        let mut left = None;
        while quiet_in_a_row < 2 {
            if started.elapsed() > QUIET_DEADLINE {
                left = Some(format!("{:?} after the deadline", self.busy().await?));
                break;
            }
            self.cron_minute().await;
            invocations += 1;
            let busy = self.busy().await?;
            if busy.is_empty() {
                quiet_in_a_row += 1;
                continue;
            }
            quiet_in_a_row = 0;
            println!(
                "  cron minute {invocations} ({:.0} s): {} failures due, {} claims processing, {} role-sync jobs pending",
                started.elapsed().as_secs_f64(),
                busy.due_failures,
                busy.processing_claims,
                busy.pending_jobs
            );
            if let Some(next) = busy.next {
                let wait = (next - Utc::now()).to_std().unwrap_or_default();
                if wait > QUIET_HORIZON {
                    left = Some(format!("{busy:?}: the next is due in {:.0} min", wait.as_secs_f64() / 60.0));
                    break;
                }
                tokio::time::sleep(wait.min(Duration::from_secs(60)) + Duration::from_millis(500)).await;
            }
        }
        Ok(Quiet { invocations, wall: started.elapsed(), left })
    }

    /// The backlog: every delivery of `plan` fails on the ledger write (a fault only on the entitlements
    /// collection: the claim and the failure record are written, as when Appwrite fails mid-delivery), the
    /// fault is lifted, the run waits in real time for the schedule's first retry to fall due (60 s), then
    /// fires the crons a minute at a time until no failure is due.
    pub async fn backlog(&self, plan: &PhasePlan) -> Result<(PhaseReport, Drain)> {
        let s = &self.stack.settings;
        let path = format!("/v1/databases/{}/collections/{}", s.database_id, s.collections.entitlements);
        self.appwrite_calls(true).await?;
        let before = self.cpu();
        let started = Instant::now();
        self.set_faults(json!({"rate": 1.0, "status": 503, "paths": [path]})).await?;
        let delivered = self.deliver(plan, None).await;
        let wall = started.elapsed();
        self.set_faults(json!({"rate": 0})).await?;
        let lifted = Instant::now();
        let mut drain =
            Drain { recorded: *delivered.answers.get("recorded").unwrap_or(&0) as usize, ..Drain::default() };
        let mut latencies = delivered.latencies;
        let routes = self.appwrite_calls(true).await?;
        let report = PhaseReport {
            name: "backlog (ledger write failing)".into(),
            deliveries: plan.sequence.len(),
            orders: plan.buyers.len(),
            requests: delivered.requests,
            answers: delivered.answers,
            given_up: delivered.given_up.len(),
            wall,
            p50: percentile(&mut latencies, 50.0).unwrap_or_default(),
            p99: percentile(&mut latencies, 99.0).unwrap_or_default(),
            appwrite_calls: routes.values().sum(),
            top_routes: top_routes(&routes),
            cpu: self.cpu().since(&before),
            loadavg: loadavg(),
        };
        if !delivered.given_up.is_empty() {
            bail!("backlog: {} deliveries were not acknowledged", delivered.given_up.len());
        }
        // The schedule's first delay, in real time: the failures are due when the product says so.
        let ids: BTreeSet<String> = plan.buyers.iter().map(|b| claim_id(b.order_id)).collect();
        if let Some(latest) = self.backlog_left(&ids).await?.latest {
            tokio::time::sleep((latest - Utc::now()).to_std().unwrap_or_default().min(Duration::from_secs(120))).await;
        }
        drain.first_due_wait = lifted.elapsed();
        let drain_start = Instant::now();
        loop {
            let left = self.backlog_left(&ids).await?;
            if left.due + left.processing == 0 {
                drain.drained = true;
                break;
            }
            if drain_start.elapsed() > DRAIN_DEADLINE {
                break;
            }
            if left.ready > 0 {
                self.cron_minute().await;
                drain.invocations += 1;
                drain.minutes += 1;
                println!(
                    "  backlog minute {}: {} due ({} now), {} claims processing",
                    drain.minutes, left.due, left.ready, left.processing
                );
                continue;
            }
            // Nothing is due now (a retry that failed was rescheduled): on Cloudflare the crons would fire
            // each minute until then and find nothing, so those minutes pass in real time and are counted.
            let wait =
                left.earliest.map_or(Duration::from_secs(60), |at| (at - Utc::now()).to_std().unwrap_or_default());
            let wait = wait.min(DRAIN_DEADLINE.saturating_sub(drain_start.elapsed())) + Duration::from_millis(500);
            drain.minutes += u32::try_from(wait.as_secs().div_ceil(60)).unwrap_or(u32::MAX);
            println!(
                "  backlog: {} due later; waiting {:.0} s (minute {})",
                left.due,
                wait.as_secs_f64(),
                drain.minutes
            );
            tokio::time::sleep(wait).await;
        }
        drain.wall = lifted.elapsed();
        Ok((report, drain))
    }

    /// The backlog's failures still due (and the latest `nextAttemptAt` among them) and its claims still
    /// `processing`; `ids` are its claims' (= its failure records') ids.
    async fn backlog_left(&self, ids: &BTreeSet<String>) -> Result<BacklogLeft> {
        let c = &self.stack.settings.collections;
        let list = |collection: &str, field: &'static str, value: &'static str| {
            let collection = collection.to_owned();
            async move {
                let docs = self
                    .client()
                    .list_all_documents(self.db(), &collection, &[Query::equal(field, [value])], 100)
                    .await
                    .with_context(|| format!("listing {collection}"))?;
                anyhow::Ok(docs.into_iter().filter(|d| ids.contains(&d.id)).collect::<Vec<_>>())
            }
        };
        let (due, processing) =
            tokio::join!(list(&c.webhook_failures, "state", "due"), list(&c.webhook_events, "status", "processing"));
        let (due, processing) = (due?, processing?);
        let at = |d: &tollgate_appwrite::Document, field: &str| {
            d.data.get(field).and_then(Value::as_str).and_then(parse_timestamp)
        };
        let now = Utc::now();
        let stale = chrono::Duration::seconds(tollgate_app::inbox::STALE_CLAIM_AFTER_SECS);
        let times: Vec<DateTime<Utc>> = due
            .iter()
            .map(|d| at(d, "nextAttemptAt").unwrap_or(now))
            .chain(processing.iter().map(|d| at(d, "claimedAt").map_or(now, |t| t + stale)))
            .collect();
        Ok(BacklogLeft {
            due: due.len(),
            processing: processing.len(),
            ready: times.iter().filter(|t| **t <= now).count(),
            earliest: times.iter().filter(|t| **t > now).min().copied(),
            latest: times.iter().max().copied(),
        })
    }

    /// Reads the final state of the phase's orders and judges it.
    pub async fn check_phase(&self, plan: &PhasePlan) -> Result<Verdict> {
        let clock = SystemClock;
        let app = self.app(&clock);
        let s = &self.stack.settings;
        let orders: Vec<Result<(OrderView, Option<Member>)>> = futures::stream::iter(&plan.buyers)
            .map(|buyer| self.observe_order(&app, buyer))
            .buffer_unordered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut views = Vec::new();
        let mut members = BTreeMap::new();
        for order in orders {
            let (view, member) = order?;
            views.push(view);
            members.extend(member);
        }
        let ids: BTreeSet<String> = plan.buyers.iter().map(|b| claim_id(b.order_id)).collect();
        let failures = self
            .client()
            .list_all_documents(&s.database_id, &s.collections.webhook_failures, &[], 100)
            .await?
            .into_iter()
            .filter(|doc| ids.contains(&doc.id))
            .map(|doc| FailureView {
                state: doc.data.get("state").and_then(Value::as_str).map(str::to_owned),
                what: format!("order {}", doc.data.get("orderId").and_then(Value::as_str).unwrap_or("?")),
                id: doc.id,
            })
            .collect();
        let mappings = app.plan_catalogue().await.map_err(|e| anyhow::anyhow!("the plan catalogue: {e}"))?.readable;
        Ok(verdict(&PhaseObserved {
            now: Utc::now(),
            grace: s.access_grace,
            guild: GuildId::parse(seed::GUILD_ID)?,
            mappings,
            orders: views,
            members,
            failures,
        }))
    }

    async fn observe_order(&self, app: &App<'_, SystemClock>, buyer: &Buyer) -> Result<(OrderView, Option<Member>)> {
        let s = &self.stack.settings;
        let id = AppwriteId::parse(&buyer.user_id).map_err(|e| anyhow::anyhow!("{e}"))?;
        let email = Email::parse(&buyer.email).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (claim_status, failure_state) =
            read_delivery(app, &claim_id(buyer.order_id)).await.map_err(|e| anyhow::anyhow!(e))?;
        let (discord, member) = match &buyer.discord {
            Some(discord) => {
                let linked = self.client().get_document(self.db(), &s.collections.profiles, id.as_str()).await;
                let linked =
                    linked.ok().and_then(|d| d.data.get("discordUserId").and_then(Value::as_str).map(str::to_owned));
                let account = DiscordUserId::parse(discord).map_err(|e| anyhow::anyhow!("{e}"))?;
                (linked.and_then(|l| DiscordUserId::parse(&l).ok()), Some((account, self.member_roles(discord).await?)))
            }
            None => (None, None),
        };
        let view = OrderView {
            order_id: buyer.order_id.to_string(),
            source: sellapp_order_source(Some(STORE), &buyer.order_id.to_string()),
            buyer: read_user(app, &id, &email, discord).await.map_err(|e| anyhow::anyhow!(e))?,
            claim_status,
            failure_state,
        };
        Ok((view, member))
    }

    /// The member's roles in the demo guild, through the Discord stand-in's own API.
    async fn member_roles(&self, discord: &str) -> Result<BTreeSet<RoleId>> {
        let url = format!("{}/guilds/{}/members/{discord}", self.devstack.discord_api_base(), seed::GUILD_ID);
        let member: Value = self
            .http
            .get(url)
            .header("Authorization", format!("Bot {}", seed::BOT_TOKEN))
            .send()
            .await?
            .json()
            .await
            .context("a guild member")?;
        let roles =
            member["roles"].as_array().with_context(|| format!("member {discord} has no roles list: {member}"))?;
        Ok(roles.iter().filter_map(Value::as_str).filter_map(|r| RoleId::parse(r).ok()).collect())
    }
}

struct BacklogLeft {
    due: usize,
    processing: usize,
    /// Due failures and stale claims the crons would take now.
    ready: usize,
    /// When the next of the others falls due.
    earliest: Option<DateTime<Utc>>,
    latest: Option<DateTime<Utc>>,
}

/// A linked buyer's Discord account and the roles it holds.
type Member = (DiscordUserId, BTreeSet<RoleId>);

#[derive(Debug, Clone, Default)]
struct Busy {
    due_failures: usize,
    processing_claims: usize,
    pending_jobs: usize,
    next: Option<DateTime<Utc>>,
}

impl Busy {
    fn is_empty(&self) -> bool {
        self.due_failures + self.processing_claims + self.pending_jobs == 0
    }
}

/// The six routes called most, most first.
pub fn top_routes(routes: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut sorted: Vec<(String, u64)> = routes.iter().map(|(r, n)| (r.clone(), *n)).collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sorted.truncate(6);
    sorted
}

fn claim_id(order_id: u64) -> String {
    event_document_id(EVENT, &order_id.to_string(), STORE)
}

/// `/proc/loadavg`'s three averages.
pub fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The plans of a run: one per fault rate, the outage, the backlog.
pub fn plans(run: &str, args: &crate::args::Args) -> Vec<PhasePlan> {
    let mut plans: Vec<PhasePlan> =
        (0..args.faults.len()).map(|i| phase_plan(run, i, args.deliveries, args.duplicates, args.seed)).collect();
    if args.outage_secs > 0 {
        plans.push(phase_plan(run, args.faults.len(), args.deliveries, args.duplicates, args.seed));
    }
    if args.backlog > 0 {
        plans.push(phase_plan(run, args.faults.len() + 1, args.backlog, 0, args.seed));
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_named_by_their_status_and_flags() {
        assert_eq!(answer_kind(200, &json!({"ok": true})), "applied");
        assert_eq!(answer_kind(200, &json!({"ok": true, "duplicate": true})), "duplicate");
        assert_eq!(answer_kind(200, &json!({"ok": true, "ignored": null})), "ignored");
        assert_eq!(answer_kind(202, &json!({"ok": true, "recorded": true})), "recorded");
        assert_eq!(answer_kind(202, &json!({"ok": true, "accepted": true})), "accepted");
        assert_eq!(answer_kind(503, &Value::Null), "503");
        assert_eq!(answer_kind(202, &Value::Null), "202", "a 202 without a flag is not guessed");
        assert!(acknowledged("recorded") && !acknowledged("503") && !acknowledged("timeout") && !acknowledged("202"));
    }

    #[test]
    fn the_routes_called_most_come_first_ties_by_name() {
        let routes: BTreeMap<String, u64> =
            [("GET /a", 5), ("GET /b", 9), ("POST /c", 5), ("x", 1), ("y", 1), ("z", 1), ("w", 0)]
                .into_iter()
                .map(|(r, n)| (r.to_owned(), n))
                .collect();
        let top = top_routes(&routes);
        assert_eq!(top.len(), 6);
        assert_eq!(top[..3], [("GET /b".to_owned(), 9), ("GET /a".to_owned(), 5), ("POST /c".to_owned(), 5)]);
    }

    #[test]
    fn a_run_plans_a_phase_per_fault_rate_then_the_outage_and_the_backlog() {
        let args = crate::args::Args { deliveries: 10, backlog: 4, ..Default::default() };
        let planned = plans("r", &args);
        assert_eq!(planned.len(), 6);
        assert_eq!(planned[4].sequence.len(), 10, "the outage has the phases' size");
        assert_eq!((planned[5].buyers.len(), planned[5].sequence.len()), (4, 4), "the backlog has no duplicates");
        let args = crate::args::Args { outage_secs: 0, backlog: 0, faults: vec![0], ..args };
        assert_eq!(plans("r", &args).len(), 1);
    }

    #[test]
    fn the_cpu_split_subtracts_snapshots_and_keeps_devstack_apart_from_the_driver() {
        let at = |runtime: u64, rest: u64| TreeCpu { runtime, rest };
        let before = CpuSnapshot {
            webhook: at(100, 10),
            alone: true,
            role_sync: at(5, 5),
            api: at(1, 1),
            devstack: 50,
            process: 80,
        };
        let after = CpuSnapshot {
            webhook: at(300, 40),
            alone: true,
            role_sync: at(55, 15),
            api: at(1, 1),
            devstack: 150,
            process: 200,
        };
        let split = after.since(&before);
        let ticks = |t: u64| cpu::ticks_to_duration(t);
        assert_eq!(split.webhook_workerd, ticks(200));
        assert_eq!(split.webhook_proxy, ticks(30));
        assert_eq!(split.other_workers, ticks(60));
        assert_eq!(split.devstack, ticks(100));
        assert_eq!(split.driver, ticks(20));
        assert!(split.alone);
    }
}

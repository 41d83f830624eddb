//! One load run against a started system: the delivery phases (one per fault rate, then the outage), the
//! crons until quiet, the backlog, then the final state of every buyer. Sell.app is played as it behaves: a
//! delivery answered 503 (or not answered) is delivered again later, with a growing delay, until it is
//! acknowledged; the crons are fired through `wrangler dev --test-scheduled` (`GET /__scheduled`), one
//! webhook and one role-sync invocation per simulated minute, as Cloudflare fires them.
//!
//! - `deliver`: the delivery phases; `crons`: crons until quiet and the backlog's drain; `final_state`: every
//!   buyer's final state.

mod crons;
mod deliver;
mod final_state;

pub use crons::{Drain, Quiet};

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
}

/// A linked buyer's Discord account and the roles it holds.
type Member = (DiscordUserId, BTreeSet<RoleId>);

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

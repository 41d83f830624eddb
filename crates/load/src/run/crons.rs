//! The crons until quiet, and the backlog drained at Cloudflare's cadence.

use super::*;

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

impl Runner<'_> {
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

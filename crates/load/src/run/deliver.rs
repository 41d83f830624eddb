//! The delivery phases: Sell.app's deliveries and redeliveries, a phase's figures.

use super::*;

struct Queued {
    buyer: usize,
    not_before: Instant,
    attempts: u32,
}

#[derive(Default)]
pub(super) struct Delivered {
    pub(super) latencies: Vec<Duration>,
    pub(super) answers: BTreeMap<String, u64>,
    pub(super) requests: u64,
    pub(super) given_up: Vec<usize>,
}

impl Runner<'_> {
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
    pub(super) async fn deliver(&self, plan: &PhasePlan, spread: Option<Duration>) -> Delivered {
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
}

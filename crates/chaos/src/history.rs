//! Histories: what happens to a small shop in one chaos run, generated from a seed.
//!
//! A history is data, not code, so that a failing seed can be printed, read, pasted into a regression
//! test and replayed exactly ([`History::to_text`], [`History::parse`]): one JSON header line (the seed, the
//! fault rates, which accounts start verified) and one JSON line per step. Deliveries carry the times
//! (ms after the start) at which each copy is delivered, so duplicates and out-of-order arrival are part
//! of the history; console steps (admin actions, links, verification, clock moves) run one after another,
//! each after its own pause.
//!
//! The generator is a SplitMix64 stream of its own, so a seed means the same history whatever version of
//! `rand` the workspace uses.

use serde::{Deserialize, Serialize};

/// Accounts in every history (`u0`..`u3`, `u{i}@chaos.example`).
pub const USERS: usize = 4;
/// Discord accounts that can be linked: devstack's seeded test users (alice, bob, carol).
pub const DISCORD_ACCOUNTS: usize = 3;
/// The Sell.app store the deliveries name.
pub const STORE: &str = "7";
/// The Sell.app product of the `day` plan (lasts a day) and of the `vip` subscription plan.
pub const DAY_PRODUCT: &str = "77";
pub const VIP_PRODUCT: &str = "90";
/// Plans an admin may grant.
pub const GRANTABLE: [&str; 2] = ["member", "vip"];

/// A deterministic stream of numbers (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One thing that happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Sell.app `order.completed` by user's email; `product` `None`: the default plan (`member`, open-ended).
    Purchase {
        order: u64,
        user: usize,
        product: Option<String>,
    },
    /// Sell.app `order.disputed` of an order (perhaps one never seen paid).
    Dispute {
        order: u64,
        user: usize,
    },
    /// The order is refunded at Sell.app. Sell.app sends no webhook for it: its order status becomes
    /// `REFUNDED` on the stand-in, which the webhook cron's refund check reads.
    Refund {
        order: u64,
        user: usize,
    },
    /// Sell.app `subscription.created` / `.renewed` / `.cancelled` of the `vip` plan; period `p` ends
    /// `p + 1` days after the start.
    SubCreated {
        sub: u64,
        user: usize,
        period: u32,
    },
    SubRenewed {
        sub: u64,
        user: usize,
        period: u32,
    },
    SubCancelled {
        sub: u64,
        user: usize,
        period: u32,
    },
    /// Stripe `checkout.session.completed` of subscription `sub_{sub}` (customer `cus_{sub}`), naming the
    /// account (`client_reference_id`).
    StripeCheckout {
        sub: u64,
        user: usize,
    },
    /// Stripe `customer.subscription.created` (period 0, active), `.updated` or `.deleted` (`canceled`) of
    /// `sub_{sub}` on the `vip` price; period `p` runs from day `p` to day `p + 1`.
    StripeSubscription {
        sub: u64,
        user: usize,
        status: String,
        period: u32,
    },
    /// Stripe `charge.refunded` (a full refund) of a charge of `sub_{sub}`'s customer; its payment intent
    /// is none Tollgate knows, so the customer names the subscription.
    StripeRefund {
        sub: u64,
        user: usize,
    },
    /// An admin grants `plan` to the user's email, for `hours` (`None`: open-ended).
    Grant {
        user: usize,
        plan: String,
        hours: Option<u32>,
    },
    /// An admin revokes everything the user's email has.
    Revoke {
        user: usize,
    },
    /// The account verifies its email (its pending purchases may then be claimed).
    Verify {
        user: usize,
    },
    /// The user links Discord account `discord` (OAuth2 through the stand-in).
    Link {
        user: usize,
        discord: usize,
    },
    Unlink {
        user: usize,
    },
    /// The clock moves on.
    Advance {
        minutes: u32,
    },
}

impl Op {
    /// A provider delivery (else a console step).
    pub fn is_delivery(&self) -> bool {
        matches!(
            self,
            Op::Purchase { .. }
                | Op::Dispute { .. }
                | Op::SubCreated { .. }
                | Op::SubRenewed { .. }
                | Op::SubCancelled { .. }
                | Op::StripeCheckout { .. }
                | Op::StripeSubscription { .. }
                | Op::StripeRefund { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Deliveries: when each copy is delivered (ms after the start; two or more are duplicates). Console
    /// steps: one pause (ms) before the step.
    pub at: Vec<u32>,
    #[serde(flatten)]
    pub op: Op,
}

/// Fault injection of one history: a share (per cent) of the stand-in's API calls answers `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    pub percent: u32,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub seed: u64,
    pub appwrite: Faults,
    pub discord: Faults,
    /// Which accounts start with a verified email.
    pub verified: Vec<bool>,
    #[serde(skip)]
    pub steps: Vec<Step>,
}

/// Appwrite's documented server errors (500 general_server_error, 503 during maintenance or overload).
const APPWRITE_ERRORS: [u16; 2] = [500, 503];
/// Discord's: rate limited (with `retry_after`), internal error, bad gateway, unavailable.
const DISCORD_ERRORS: [u16; 4] = [429, 500, 502, 503];
const FAULT_PERCENTS: [u32; 5] = [0, 0, 5, 10, 20];

/// When the copies of one delivery arrive (ms after the start): usually one, sometimes two or three.
fn delivery_times(rng: &mut Rng) -> Vec<u32> {
    let first = rng.below(40) as u32;
    let copies = if rng.percent(30) { 2 + rng.below(2) } else { 1 };
    (0..copies).map(|k| if k == 0 { first } else { rng.below(80) as u32 }).collect()
}

impl History {
    /// The history of `seed`.
    pub fn generate(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let appwrite = Faults {
            percent: FAULT_PERCENTS[rng.index(FAULT_PERCENTS.len())],
            status: APPWRITE_ERRORS[rng.index(APPWRITE_ERRORS.len())],
        };
        let discord = Faults {
            percent: FAULT_PERCENTS[rng.index(FAULT_PERCENTS.len())],
            status: DISCORD_ERRORS[rng.index(DISCORD_ERRORS.len())],
        };
        let verified: Vec<bool> = (0..USERS).map(|_| rng.percent(75)).collect();
        let mut steps = Vec::new();
        let mut orders: Vec<(u64, usize)> = Vec::new();
        let mut subs: Vec<(u64, usize, u32)> = Vec::new();
        let mut stripe_subs: Vec<(u64, usize, u32)> = Vec::new();
        let mut refunded: Vec<u64> = Vec::new();
        let mut next_id = 1_000 + rng.below(1_000) * 10;
        let count = 8 + rng.below(13);
        for _ in 0..count {
            let user = rng.index(USERS);
            let roll = rng.below(27);
            let op = match roll {
                20..=21 => {
                    next_id += 1;
                    stripe_subs.push((next_id, user, 0));
                    let created = Op::StripeSubscription { sub: next_id, user, status: "active".into(), period: 0 };
                    steps.push(Step { at: delivery_times(&mut rng), op: created });
                    Op::StripeCheckout { sub: next_id, user }
                }
                22..=23 if !stripe_subs.is_empty() => {
                    let i = rng.index(stripe_subs.len());
                    let status = ["active", "past_due", "canceled"][rng.index(3)];
                    if status == "active" {
                        stripe_subs[i].2 += 1;
                    }
                    let (sub, owner, period) = stripe_subs[i];
                    Op::StripeSubscription { sub, user: owner, status: status.into(), period }
                }
                0..=4 => {
                    next_id += 1;
                    orders.push((next_id, user));
                    let product = rng.percent(40).then(|| DAY_PRODUCT.to_owned());
                    Op::Purchase { order: next_id, user, product }
                }
                5..=6 => match orders.get(rng.index(orders.len().max(1))) {
                    Some(&(order, owner)) if rng.percent(85) => Op::Dispute { order, user: owner },
                    _ => {
                        next_id += 1;
                        Op::Dispute { order: next_id, user }
                    }
                },
                7..=8 => {
                    next_id += 1;
                    subs.push((next_id, user, 0));
                    Op::SubCreated { sub: next_id, user, period: 0 }
                }
                9..=10 if !subs.is_empty() => {
                    let i = rng.index(subs.len());
                    subs[i].2 += 1;
                    let (sub, owner, period) = subs[i];
                    Op::SubRenewed { sub, user: owner, period }
                }
                11 if !subs.is_empty() => {
                    let (sub, owner, period) = subs[rng.index(subs.len())];
                    Op::SubCancelled { sub, user: owner, period }
                }
                24..=25 if !orders.is_empty() => {
                    let (order, owner) = orders[rng.index(orders.len())];
                    Op::Refund { order, user: owner }
                }
                26 if stripe_subs.iter().any(|s| !refunded.contains(&s.0)) => {
                    let open: Vec<_> = stripe_subs.iter().filter(|s| !refunded.contains(&s.0)).collect();
                    let (sub, owner, _) = *open[rng.index(open.len())];
                    refunded.push(sub);
                    Op::StripeRefund { sub, user: owner }
                }
                12..=13 => {
                    let plan = GRANTABLE[rng.index(GRANTABLE.len())].to_owned();
                    let hours = rng.percent(50).then(|| 1 + rng.below(48) as u32);
                    Op::Grant { user, plan, hours }
                }
                14 => Op::Revoke { user },
                15 => Op::Verify { user },
                16..=17 => Op::Link { user, discord: rng.index(DISCORD_ACCOUNTS) },
                18 => Op::Unlink { user },
                _ => Op::Advance { minutes: 1 + rng.below(12 * 60) as u32 },
            };
            let at = if op.is_delivery() { delivery_times(&mut rng) } else { vec![rng.below(15) as u32] };
            steps.push(Step { at, op });
        }
        Self { seed, appwrite, discord, verified, steps }
    }

    /// The compact form printed for a failing seed: a header line, then one line per step.
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string(self).unwrap_or_default();
        for step in &self.steps {
            text.push('\n');
            text.push_str(&serde_json::to_string(step).unwrap_or_default());
        }
        text
    }

    /// Reads [`History::to_text`]'s form back (blank lines ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let header = lines.next().ok_or("an empty history")?;
        let mut history: History = serde_json::from_str(header).map_err(|e| format!("the header line: {e}"))?;
        if history.verified.len() != USERS {
            return Err(format!("`verified` must list {USERS} accounts"));
        }
        for (n, line) in lines.enumerate() {
            let step: Step = serde_json::from_str(line).map_err(|e| format!("step {}: {e}", n + 1))?;
            let user = match &step.op {
                Op::Purchase { user, .. }
                | Op::Dispute { user, .. }
                | Op::Refund { user, .. }
                | Op::StripeRefund { user, .. }
                | Op::SubCreated { user, .. }
                | Op::SubRenewed { user, .. }
                | Op::SubCancelled { user, .. }
                | Op::StripeCheckout { user, .. }
                | Op::StripeSubscription { user, .. }
                | Op::Grant { user, .. }
                | Op::Revoke { user }
                | Op::Verify { user }
                | Op::Link { user, .. }
                | Op::Unlink { user } => Some(*user),
                Op::Advance { .. } => None,
            };
            if user.is_some_and(|u| u >= USERS) || step.at.is_empty() {
                return Err(format!("step {}: a user out of range or no time", n + 1));
            }
            if let Op::Link { discord, .. } = step.op {
                if discord >= DISCORD_ACCOUNTS {
                    return Err(format!("step {}: discord account {discord} out of range", n + 1));
                }
            }
            history.steps.push(step);
        }
        Ok(history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_history_and_seeds_differ() {
        assert_eq!(History::generate(7), History::generate(7));
        assert_ne!(History::generate(7).steps, History::generate(8).steps);
    }

    #[test]
    fn a_printed_history_reads_back_as_itself() {
        for seed in 0..50 {
            let history = History::generate(seed);
            assert_eq!(History::parse(&history.to_text()), Ok(history));
        }
    }

    #[test]
    fn a_history_with_a_user_out_of_range_is_refused() {
        let mut text = History::generate(1).to_text();
        text.push_str("\n{\"at\":[0],\"op\":\"revoke\",\"user\":9}");
        assert!(History::parse(&text).unwrap_err().contains("out of range"));
        assert!(History::parse("").is_err());
    }

    #[test]
    fn over_many_seeds_every_kind_of_step_duplicates_and_faults_occur() {
        let histories: Vec<History> = (0..300).map(History::generate).collect();
        let ops: Vec<&Op> = histories.iter().flat_map(|h| h.steps.iter().map(|s| &s.op)).collect();
        let kinds: std::collections::BTreeSet<String> =
            ops.iter().map(|op| serde_json::to_value(op).unwrap()["op"].as_str().unwrap().to_owned()).collect();
        assert_eq!(kinds.len(), 15, "{kinds:?}");
        assert!(histories.iter().any(|h| h.steps.iter().any(|s| s.op.is_delivery() && s.at.len() > 1)));
        assert!(histories.iter().any(|h| h.appwrite.percent > 0 && h.discord.percent > 0));
        assert!(histories.iter().any(|h| h.appwrite.percent == 0 && h.discord.percent == 0));
    }

    #[test]
    fn renewals_and_refunds_name_what_was_bought_by_its_buyer() {
        for seed in 0..200 {
            let history = History::generate(seed);
            let mut subs = std::collections::BTreeMap::new();
            let mut orders = std::collections::BTreeMap::new();
            let mut stripe_subs = std::collections::BTreeMap::new();
            let mut stripe_refunded = std::collections::BTreeSet::new();
            for step in &history.steps {
                match &step.op {
                    Op::Purchase { order, user, .. } => {
                        orders.insert(*order, *user);
                    }
                    Op::Refund { order, user } => assert_eq!(orders.get(order), Some(user), "seed {seed}"),
                    Op::StripeCheckout { sub, user } => {
                        stripe_subs.insert(*sub, *user);
                    }
                    Op::StripeRefund { sub, user } => {
                        assert_eq!(stripe_subs.get(sub), Some(user), "seed {seed}");
                        assert!(stripe_refunded.insert(*sub), "seed {seed}: sub_{sub} refunded twice");
                    }
                    Op::SubCreated { sub, user, period } => {
                        assert_eq!(*period, 0);
                        subs.insert(*sub, (*user, 0));
                    }
                    Op::SubRenewed { sub, user, period } => {
                        let (owner, last) = subs.get_mut(sub).expect("renews a created subscription");
                        assert_eq!((*owner, *period), (*user, *last + 1));
                        *last = *period;
                    }
                    _ => {}
                }
            }
        }
    }
}

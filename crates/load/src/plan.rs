//! Who buys what in a phase, and in which order the deliveries arrive: `deliveries` in all, of which
//! `duplicates` percent are copies of another delivery of the phase (Sell.app delivers the same event again
//! when it did not see our answer), shuffled so a copy may race its original. One buyer per order, fresh per
//! phase, so each phase's final state is checked on its own; the first few buyers of each phase link a
//! Discord account, so their roles are checked too.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Deliveries of one event Sell.app makes before it gives up (it is then delivered again by hand, after
/// the phase, with no faults).
pub const PROVIDER_ATTEMPTS: u32 = 30;

/// How long Sell.app waits before delivering again after `attempts` unacknowledged deliveries: 1 s,
/// doubling, at most 15 s (Sell.app documents retries, not their schedule; a short one keeps phases short
/// and still has every delivery during an outage tried again several times inside the window).
pub fn redelivery_delay(attempts: u32) -> std::time::Duration {
    let secs = 1u64 << attempts.saturating_sub(1).min(4);
    std::time::Duration::from_secs(secs.min(15))
}

/// Buyers per phase whose Discord account is linked (their roles are checked).
pub const LINKED_PER_PHASE: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buyer {
    pub user_id: String,
    pub email: String,
    pub order_id: u64,
    /// The Discord account linked to the buyer's profile, if any.
    pub discord: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhasePlan {
    pub buyers: Vec<Buyer>,
    /// Indices into `buyers`, in delivery order; an index seen twice is a duplicate delivery.
    pub sequence: Vec<usize>,
}

/// The originals of `deliveries` with `duplicates` percent copies (rounded down, at least one original).
pub fn originals(deliveries: u32, duplicates: u32) -> u32 {
    let copies = u64::from(deliveries) * u64::from(duplicates) / 100;
    (deliveries - u32::try_from(copies).unwrap_or(deliveries)).max(1)
}

/// The plan of phase `phase` (0-based) of a run tagged `run` (distinct ids across runs on one devstack).
pub fn phase_plan(run: &str, phase: usize, deliveries: u32, duplicates: u32, seed: u64) -> PhasePlan {
    let unique = originals(deliveries, duplicates) as usize;
    let buyers = (0..unique)
        .map(|i| Buyer {
            user_id: format!("{run}p{phase}u{i}"),
            email: format!("{run}-p{phase}-u{i}@load.example"),
            order_id: 1_000_000 * (phase as u64 + 1) + i as u64,
            discord: (i < LINKED_PER_PHASE)
                .then(|| (1_300_000_000_000_000_000u64 + 10_000 * phase as u64 + i as u64).to_string()),
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(seed ^ (phase as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut sequence: Vec<usize> = (0..unique).collect();
    sequence.extend((unique..deliveries as usize).map(|_| rng.random_range(0..unique)));
    sequence.shuffle(&mut rng);
    PhasePlan { buyers, sequence }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_thousand_deliveries_with_thirty_percent_duplicates_are_seven_hundred_orders() {
        let plan = phase_plan("r", 2, 1_000, 30, 9);
        assert_eq!(plan.buyers.len(), 700);
        assert_eq!(plan.sequence.len(), 1_000);
        let mut times: BTreeMap<usize, u32> = BTreeMap::new();
        plan.sequence.iter().for_each(|b| *times.entry(*b).or_default() += 1);
        assert_eq!(times.len(), 700, "every order is delivered at least once");
        assert_eq!(times.values().map(|t| t - 1).sum::<u32>(), 300, "300 copies");
        assert_ne!(plan.sequence[..700], (0..700).collect::<Vec<_>>()[..], "shuffled");
    }

    #[test]
    fn phases_have_distinct_buyers_and_orders_and_a_linked_sample() {
        let (a, b) = (phase_plan("r", 0, 50, 0, 1), phase_plan("r", 1, 50, 0, 1));
        assert!(a.buyers.iter().all(|x| b.buyers.iter().all(|y| x.order_id != y.order_id && x.user_id != y.user_id)));
        assert!(a.buyers.iter().all(|x| b.buyers.iter().all(|y| x.discord.is_none() || x.discord != y.discord)));
        assert_eq!(a.buyers.iter().filter(|x| x.discord.is_some()).count(), LINKED_PER_PHASE);
        assert_eq!(a.buyers[3].discord.as_deref().map(str::len), Some(19), "a snowflake");
    }

    #[test]
    fn redeliveries_back_off_to_fifteen_seconds() {
        let delays: Vec<u64> = (1..=7).map(|a| redelivery_delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 15, 15, 15]);
    }

    #[test]
    fn the_same_seed_gives_the_same_order_and_rounding_keeps_an_original() {
        assert_eq!(phase_plan("r", 0, 100, 30, 5), phase_plan("r", 0, 100, 30, 5));
        assert_ne!(phase_plan("r", 0, 100, 30, 5).sequence, phase_plan("r", 0, 100, 30, 6).sequence);
        assert_eq!(originals(1, 99), 1);
        assert_eq!(originals(10, 33), 7);
    }
}

//! Subrequests made by one Worker invocation, counted where they are made.
//!
//! ## Why count them
//! Cloudflare caps the outbound requests (subrequests) one invocation may make: 50 on Workers Free, 1,000
//! on Paid. Past the cap a `fetch` fails, so a cron that does not know how many it has left stops at a
//! random point of its work. Every client Tollgate builds for an invocation (Appwrite, Discord, Sell.app)
//! takes one unit from the same [`Subrequests`] before each request, so the invocation's structured log
//! line can say how many it used, and work that is paced by a budget can ask how many remain before it
//! starts the next unit of work ([`Subrequests::remaining`]).
//!
//! A limit, when set, is a hard stop: [`Subrequests::take`] refuses once it is reached, and the client
//! answers with an error instead of sending (the work is retried later, like any failed call). Pacing is
//! the caller's job; the hard stop only makes sure a mistake in pacing fails loudly and early, before
//! Cloudflare's own limit would fail it at random.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A shared counter of one invocation's subrequests; clones count into the same total.
#[derive(Debug, Clone, Default)]
pub struct Subrequests(Arc<Counter>);

#[derive(Debug, Default)]
struct Counter {
    used: AtomicU32,
    /// Calls refused by the limit: each is a pacing mistake (a unit cost more than its estimate).
    refused: AtomicU32,
    /// 0: no limit.
    limit: u32,
}

/// The invocation's subrequest budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this invocation's budget of {limit} subrequests is spent")]
pub struct BudgetSpent {
    pub limit: u32,
}

impl Subrequests {
    /// Counts without a limit (a request handler whose calls are bounded by its code).
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// Counts and refuses the `limit + 1`-th subrequest. A limit of 0 means none.
    pub fn with_limit(limit: u32) -> Self {
        Self(Arc::new(Counter { used: AtomicU32::new(0), refused: AtomicU32::new(0), limit }))
    }

    /// Takes one subrequest, or refuses when the limit is reached (nothing is counted then).
    pub fn take(&self) -> Result<(), BudgetSpent> {
        let limit = self.0.limit;
        self.0
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| (limit == 0 || used < limit).then_some(used + 1))
            .map(drop)
            .map_err(|_| {
                self.0.refused.fetch_add(1, Ordering::SeqCst);
                BudgetSpent { limit }
            })
    }

    /// Calls refused by the limit so far (0 when every step paced itself correctly).
    pub fn refused(&self) -> u32 {
        self.0.refused.load(Ordering::SeqCst)
    }

    /// Subrequests taken so far.
    pub fn used(&self) -> u32 {
        self.0.used.load(Ordering::SeqCst)
    }

    /// What is left under the limit; `None` without a limit.
    pub fn remaining(&self) -> Option<u32> {
        (self.0.limit > 0).then(|| self.0.limit.saturating_sub(self.used()))
    }

    /// Whether `n` more subrequests fit (always, without a limit).
    pub fn fits(&self, n: u32) -> bool {
        self.remaining().is_none_or(|left| left >= n)
    }

    /// How many units of work costing at most `per_unit` calls each fit after `fixed` calls, at most `cap`
    /// (`cap` without a limit). The answer to "how many should this step list?".
    pub fn units(&self, fixed: u32, per_unit: u32, cap: u32) -> u32 {
        match self.remaining() {
            None => cap,
            Some(left) => (left.saturating_sub(fixed) / per_unit.max(1)).min(cap),
        }
    }

    pub fn limit(&self) -> Option<u32> {
        (self.0.limit > 0).then_some(self.0.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_count_into_one_total() {
        let meter = Subrequests::unlimited();
        let other = meter.clone();
        meter.take().unwrap();
        other.take().unwrap();
        assert_eq!((meter.used(), other.used(), meter.remaining()), (2, 2, None));
        assert!(meter.fits(u32::MAX));
    }

    #[test]
    fn a_limit_refuses_the_request_past_it_and_counts_only_what_was_sent() {
        let meter = Subrequests::with_limit(3);
        for _ in 0..3 {
            meter.take().unwrap();
        }
        assert_eq!(meter.take(), Err(BudgetSpent { limit: 3 }));
        assert_eq!(meter.take(), Err(BudgetSpent { limit: 3 }));
        assert_eq!((meter.used(), meter.remaining(), meter.refused()), (3, Some(0), 2));
        assert!(!meter.fits(1));
        assert!(meter.fits(0));
    }

    #[test]
    fn units_are_what_fits_after_the_fixed_calls_capped() {
        let meter = Subrequests::with_limit(40);
        meter.take().unwrap();
        assert_eq!(meter.units(1, 14, 100), 2, "39 left: 1 listing + 2 units of 14");
        assert_eq!(meter.units(1, 14, 1), 1);
        assert_eq!(meter.units(39, 14, 100), 0);
        assert_eq!(meter.units(50, 14, 100), 0);
        assert_eq!(Subrequests::unlimited().units(1, 14, 7), 7);
    }

    #[test]
    fn a_limit_of_zero_is_no_limit() {
        let meter = Subrequests::with_limit(0);
        for _ in 0..100 {
            meter.take().unwrap();
        }
        assert_eq!((meter.used(), meter.limit()), (100, None));
    }
}

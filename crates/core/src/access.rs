//! Access, derived: a pure function of a user's entitlements, the time and the grace period. Nothing
//! stores access; the `subscriptions` document, the `paid` membership and the Discord roles are
//! projections of what this function says, recomputed whenever an entitlement changes and by
//! reconciliation.
//!
//! Access is the **union** of the live entitlements: an admin's gift never shortens a purchase, and a
//! dispute of one order leaves the access other orders give (property-tested below).

use crate::entitlement::Entitlement;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// One plan the user has access to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanAccess {
    /// The latest end among the entitlements that give this plan; `None`: open-ended. Access lasts until
    /// this time plus the grace period.
    pub ends_at: Option<DateTime<Utc>>,
    /// The sources that give it.
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Access {
    pub plans: BTreeMap<String, PlanAccess>,
}

impl Access {
    pub fn has_access(&self) -> bool {
        !self.plans.is_empty()
    }

    /// When access ends (before grace): `None` when open-ended or when there is no access.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        if self.plans.values().any(|p| p.ends_at.is_none()) {
            return None;
        }
        self.plans.values().filter_map(|p| p.ends_at).max()
    }

    /// The plan the `subscriptions` document names (it holds one): the one that lasts longest, open-ended
    /// first; ties by name, so the choice is stable.
    pub fn primary_plan(&self) -> Option<&str> {
        self.plans
            .iter()
            .max_by(|(a_name, a), (b_name, b)| {
                let rank = |p: &PlanAccess| (p.ends_at.is_none(), p.ends_at);
                rank(a).cmp(&rank(b)).then_with(|| b_name.cmp(a_name))
            })
            .map(|(name, _)| name.as_str())
    }
}

/// The access `entitlements` give at `now`.
pub fn derive_access(entitlements: &[Entitlement], now: DateTime<Utc>, grace: Duration) -> Access {
    let mut plans: BTreeMap<String, PlanAccess> = BTreeMap::new();
    for entitlement in entitlements.iter().filter(|e| e.is_live(now, grace)) {
        let Some(grant) = &entitlement.grant else { continue };
        let entry = plans
            .entry(grant.plan.clone())
            .or_insert_with(|| PlanAccess { ends_at: grant.ends_at, sources: Vec::new() });
        entry.ends_at = match (entry.ends_at, grant.ends_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        entry.sources.push(entitlement.source.clone());
    }
    Access { plans }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entitlement::{apply_event, Grant, LedgerEvent, Revocation, RevokeReason};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn entitlement(source: &str, plan: &str, ends: Option<i64>, revoked: Option<i64>) -> Entitlement {
        let mut e = Entitlement::new(source);
        e.grant = Some(Grant { plan: plan.into(), starts_at: None, ends_at: ends.map(at), at: at(0) });
        e.revocation = revoked.map(|t| Revocation { at: at(t), reason: RevokeReason::Dispute });
        e
    }

    #[test]
    fn a_gift_never_shortens_a_purchase() {
        let purchase = entitlement("sellapp:1:1", "pro", None, None);
        let gift = entitlement("admin:a@b.c:pro", "pro", Some(100), None);
        let access = derive_access(&[purchase, gift], at(50), Duration::zero());
        assert_eq!(access.plans["pro"].ends_at, None);
        assert_eq!(access.ends_at(), None);
        assert_eq!(access.plans["pro"].sources.len(), 2);
    }

    #[test]
    fn a_dispute_of_an_old_order_leaves_a_newer_orders_access() {
        let old = entitlement("sellapp:1:1", "pro", None, Some(10));
        let new = entitlement("sellapp:1:2", "pro", None, None);
        let access = derive_access(&[old, new], at(50), Duration::zero());
        assert!(access.has_access());
        assert_eq!(access.plans["pro"].sources, vec!["sellapp:1:2".to_owned()]);
    }

    #[test]
    fn the_primary_plan_is_the_one_that_lasts_longest() {
        let a = entitlement("a", "basic", None, None);
        let b = entitlement("b", "pro", Some(100), None);
        let access = derive_access(&[a, b], at(50), Duration::zero());
        assert_eq!(access.primary_plan(), Some("basic"));
        assert_eq!(derive_access(&[], at(0), Duration::zero()).primary_plan(), None);
    }

    fn arb_entitlement() -> impl Strategy<Value = Entitlement> {
        (
            "[a-z]{1,3}",
            prop::sample::select(vec!["basic", "pro", "vip"]),
            proptest::option::of(0i64..200),
            proptest::option::of(0i64..200),
        )
            .prop_map(|(source, plan, ends, revoked)| entitlement(&source, plan, ends, revoked))
    }

    fn plan_names(access: &Access) -> BTreeSet<String> {
        access.plans.keys().cloned().collect()
    }

    proptest! {
        /// Union: the access of two sets of entitlements together is exactly the union of their accesses,
        /// so adding an entitlement never takes access away.
        #[test]
        fn access_is_the_union_of_entitlements(a in prop::collection::vec(arb_entitlement(), 0..5),
                                               b in prop::collection::vec(arb_entitlement(), 0..5),
                                               now in 0i64..250, grace in 0i64..50) {
            let (now, grace) = (at(now), Duration::seconds(grace));
            let both: Vec<_> = a.iter().chain(b.iter()).cloned().collect();
            let union: BTreeSet<_> = plan_names(&derive_access(&a, now, grace))
                .union(&plan_names(&derive_access(&b, now, grace))).cloned().collect();
            prop_assert_eq!(plan_names(&derive_access(&both, now, grace)), union);
        }

        /// Revoking one entitlement leaves every plan that another live entitlement gives.
        #[test]
        fn revoking_one_source_leaves_the_others(list in prop::collection::vec(arb_entitlement(), 1..6),
                                                 pick in any::<prop::sample::Index>(), now in 0i64..250) {
            let now = at(now);
            let i = pick.index(list.len());
            let mut revoked = list.clone();
            let event = LedgerEvent::Revoke(Revocation { at: at(300), reason: RevokeReason::Refund });
            revoked[i] = apply_event(&revoked[i], &event).applied_to(&revoked[i]);
            let others: Vec<_> = list.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, e)| e.clone()).collect();
            let after = plan_names(&derive_access(&revoked, now, Duration::zero()));
            prop_assert!(plan_names(&derive_access(&others, now, Duration::zero())).is_subset(&after));
            prop_assert!(after.is_subset(&plan_names(&derive_access(&list, now, Duration::zero()))));
        }

        /// Grace boundary: an entitlement ending at `end` gives access exactly up to `end + grace`.
        #[test]
        fn access_ends_exactly_at_end_plus_grace(end in 0i64..1_000, grace in 0i64..1_000, delta in -5i64..5) {
            let e = entitlement("s", "pro", Some(end), None);
            let now = at(end + grace + delta);
            let access = derive_access(&[e], now, Duration::seconds(grace));
            prop_assert_eq!(access.has_access(), delta <= 0);
        }
    }
}

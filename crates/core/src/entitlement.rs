//! The entitlement ledger: one [`Entitlement`] per *source* of access (a Sell.app order, a Stripe
//! subscription, an admin grant), and the rule that folds a [`LedgerEvent`] into it.
//!
//! ## Why registers, not a status field
//! An entitlement is stored as three independent registers, each written by one kind of event only:
//! the **grant** register (plan, period, time of the grant), the **revocation** register (when, why) and
//! the **reinstatement** register (when). Appwrite has no compare-and-set, so two events of one source
//! that are applied at the same moment (a purchase and its chargeback) can interleave their
//! read-decide-write steps. Because a grant never writes the revocation register and a revocation never
//! writes the grant register, their partial updates commute: whichever lands last, the entitlement ends up
//! revoked. Its status is computed from the registers ([`Entitlement::is_revoked`]), never stored.
//!
//! ## The laws (property-tested below)
//! - **Monotonic revocation:** once revoked, an entitlement stays revoked; only an explicit
//!   [`LedgerEvent::Reinstate`] (an admin, a dispute won) or a grant marked `reinstates` that is *newer* than
//!   the revocation gives it back. The register keeps the newest revocation, so an event must be newer
//!   than every revocation to lift them, in whatever order they arrive. A redelivered or retried purchase never undoes a chargeback.
//! - **Stale events change nothing:** a grant older than the last grant applied, a revocation older than
//!   the last reinstatement, a reinstatement older than the last revocation.
//! - **Idempotent:** applying the same event twice changes nothing the second time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `subscriptions.status`, the field the replaced deployment and the web apps read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    Active,
    Inactive,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// Why an entitlement was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RevokeReason {
    Dispute,
    Refund,
    Admin,
    Cancellation,
}

impl RevokeReason {
    pub const ALL: [Self; 4] = [Self::Dispute, Self::Refund, Self::Admin, Self::Cancellation];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dispute => "dispute",
            Self::Refund => "refund",
            Self::Admin => "admin",
            Self::Cancellation => "cancellation",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

/// The grant register: what was paid for (or given), and when that was said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub plan: String,
    pub starts_at: Option<DateTime<Utc>>,
    /// `None`: open-ended.
    pub ends_at: Option<DateTime<Utc>>,
    /// The provider's time of the grant (Tollgate's recording time when the provider gives none).
    pub at: DateTime<Utc>,
}

/// The revocation register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub at: DateTime<Utc>,
    pub reason: RevokeReason,
}

/// One source of access, as its registers stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    /// The source key, e.g. `sellapp:{store}:{order}`, `admin:{email}:{plan}`. Unique.
    pub source: String,
    /// `None` only for an entitlement whose revocation arrived before its grant (a chargeback of an
    /// order Tollgate never saw paid): it gives nothing.
    pub grant: Option<Grant>,
    pub revocation: Option<Revocation>,
    pub reinstated_at: Option<DateTime<Utc>>,
}

impl Entitlement {
    pub fn new(source: impl Into<String>) -> Self {
        Self { source: source.into(), grant: None, revocation: None, reinstated_at: None }
    }

    /// Revoked, and not reinstated since (a revocation wins a tie).
    pub fn is_revoked(&self) -> bool {
        match (self.revocation, self.reinstated_at) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(revocation), Some(reinstated)) => reinstated <= revocation.at,
        }
    }

    /// Does this entitlement give access at `now`, allowing `grace` past its end?
    pub fn is_live(&self, now: DateTime<Utc>, grace: chrono::Duration) -> bool {
        let Some(grant) = &self.grant else { return false };
        if self.is_revoked() || grant.starts_at.is_some_and(|start| start > now) {
            return false;
        }
        match grant.ends_at {
            None => true,
            Some(end) => end.checked_add_signed(grant_grace(grace)).is_none_or(|last| now <= last),
        }
    }

    pub fn status(&self, now: DateTime<Utc>, grace: chrono::Duration) -> EntitlementStatus {
        if self.is_revoked() {
            EntitlementStatus::Revoked
        } else if self.grant.is_none() {
            EntitlementStatus::NeverGranted
        } else if self.is_live(now, grace) {
            EntitlementStatus::Active
        } else if self.grant.as_ref().is_some_and(|g| g.starts_at.is_some_and(|s| s > now)) {
            EntitlementStatus::NotStarted
        } else {
            EntitlementStatus::Ended
        }
    }
}

/// A negative grace makes no sense; treat it as none.
fn grant_grace(grace: chrono::Duration) -> chrono::Duration {
    grace.max(chrono::Duration::zero())
}

/// What an entitlement means now, for people (lookup, admin pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntitlementStatus {
    Active,
    Ended,
    NotStarted,
    Revoked,
    NeverGranted,
}

impl EntitlementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Ended => "ended",
            Self::NotStarted => "not_started",
            Self::Revoked => "revoked",
            Self::NeverGranted => "never_granted",
        }
    }
}

/// Something that happened to one source of access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEvent {
    /// Paid, renewed, or given by an admin. `reinstates`: this event may lift an *older* revocation (an
    /// admin's explicit grant, a provider event that is the newer truth). A Sell.app order event never
    /// does: Sell.app gives no event times, so a redelivered purchase cannot be told from a new one.
    Grant {
        grant: Grant,
        reinstates: bool,
    },
    /// A one-off purchase paid: sets the grant register only if nothing set it before. Sell.app order
    /// events carry no time, so a redelivery (or `order.paid` then `order.completed` of one order) cannot
    /// be told from the first delivery; the first one fixes the grant (and a duration's end), later ones
    /// change nothing. Never lifts a revocation.
    GrantOnce(Grant),
    Revoke(Revocation),
    /// A revocation lifted (a dispute won, an admin's explicit action).
    Reinstate {
        at: DateTime<Utc>,
    },
}

/// The registers an event changes: a partial update. Fields left `None` are not written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntitlementPatch {
    pub grant: Option<Grant>,
    pub revocation: Option<Revocation>,
    pub reinstated_at: Option<DateTime<Utc>>,
}

impl EntitlementPatch {
    pub fn is_empty(&self) -> bool {
        self.grant.is_none() && self.revocation.is_none() && self.reinstated_at.is_none()
    }

    /// The entitlement after this patch.
    pub fn applied_to(&self, current: &Entitlement) -> Entitlement {
        Entitlement {
            source: current.source.clone(),
            grant: self.grant.clone().or_else(|| current.grant.clone()),
            revocation: self.revocation.or(current.revocation),
            reinstated_at: self.reinstated_at.or(current.reinstated_at),
        }
    }
}

/// The registers `event` changes on `current` (an entitlement not yet stored is [`Entitlement::new`]).
/// An empty patch: the event is stale, a repeat, or cannot lift the revocation.
pub fn apply_event(current: &Entitlement, event: &LedgerEvent) -> EntitlementPatch {
    let mut patch = EntitlementPatch::default();
    match event {
        LedgerEvent::Grant { grant, reinstates } => {
            let newer = current.grant.as_ref().is_none_or(|g| grant.at >= g.at);
            if newer && current.grant.as_ref() != Some(grant) {
                patch.grant = Some(grant.clone());
            }
            if *reinstates && current.is_revoked() && current.revocation.is_some_and(|r| grant.at > r.at) {
                patch.reinstated_at = Some(grant.at);
            }
        }
        LedgerEvent::GrantOnce(grant) => {
            if current.grant.is_none() {
                patch.grant = Some(grant.clone());
            }
        }
        LedgerEvent::Revoke(revocation) => {
            let after_reinstatement = current.reinstated_at.is_none_or(|r| revocation.at >= r);
            // The newest revocation is kept (with its reason): whatever order revocations arrive in, an
            // event must be newer than every one of them to lift them. Keeping the first let a renewal
            // dated between two admin revokes, arriving after both, undo the second (`cargo xtask chaos`,
            // seed 436).
            let newer = current.revocation.is_none_or(|r| revocation.at > r.at);
            if after_reinstatement && newer {
                patch.revocation = Some(*revocation);
            }
        }
        LedgerEvent::Reinstate { at } => {
            let newer = current.reinstated_at.is_none_or(|r| *at > r);
            if newer && current.revocation.is_none_or(|r| *at > r.at) {
                patch.reinstated_at = Some(*at);
            }
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn grant(plan: &str, at_secs: i64, ends: Option<i64>) -> LedgerEvent {
        LedgerEvent::Grant {
            grant: Grant { plan: plan.into(), starts_at: None, ends_at: ends.map(at), at: at(at_secs) },
            reinstates: false,
        }
    }

    fn revoke(at_secs: i64) -> LedgerEvent {
        LedgerEvent::Revoke(Revocation { at: at(at_secs), reason: RevokeReason::Dispute })
    }

    fn fold(events: &[LedgerEvent]) -> Entitlement {
        events.iter().fold(Entitlement::new("sellapp:1:1"), |e, ev| apply_event(&e, ev).applied_to(&e))
    }

    #[test]
    fn a_chargeback_before_the_purchase_still_revokes_it() {
        let e = fold(&[revoke(10), grant("pro", 5, None)]);
        assert!(e.is_revoked());
        assert!(!e.is_live(at(20), Duration::zero()));
        assert_eq!(e.status(at(20), Duration::zero()), EntitlementStatus::Revoked);
    }

    #[test]
    fn a_redelivered_purchase_after_a_chargeback_changes_nothing() {
        let revoked = fold(&[grant("pro", 5, None), revoke(10)]);
        assert!(apply_event(&revoked, &grant("pro", 20, None)).applied_to(&revoked).is_revoked());
    }

    #[test]
    fn an_explicit_reinstatement_newer_than_the_revocation_restores_access() {
        let e = fold(&[grant("pro", 5, None), revoke(10), LedgerEvent::Reinstate { at: at(15) }]);
        assert!(e.is_live(at(20), Duration::zero()));
        let stale = fold(&[grant("pro", 5, None), revoke(10), LedgerEvent::Reinstate { at: at(9) }]);
        assert!(stale.is_revoked());
    }

    #[test]
    fn a_revocation_older_than_a_reinstatement_is_stale() {
        // A dispute won (t=15) delivered before the dispute's creation (t=10).
        let e = fold(&[grant("pro", 5, None), LedgerEvent::Reinstate { at: at(15) }, revoke(10)]);
        assert!(!e.is_revoked());
    }

    #[test]
    fn a_one_off_purchase_is_fixed_by_its_first_delivery() {
        let once = |t, end| {
            LedgerEvent::GrantOnce(Grant { plan: "pro".into(), starts_at: None, ends_at: Some(at(end)), at: at(t) })
        };
        let e = fold(&[once(5, 100), once(50, 150)]);
        assert_eq!(e.grant.as_ref().and_then(|g| g.ends_at), Some(at(100)), "a redelivery never extends it");
        assert!(fold(&[revoke(1), once(5, 100)]).is_revoked());
    }

    #[test]
    fn the_grace_boundary_is_inclusive() {
        let e = fold(&[grant("pro", 0, Some(1_000))]);
        assert!(e.is_live(at(1_100), Duration::seconds(100)));
        assert!(!e.is_live(at(1_101), Duration::seconds(100)));
        assert_eq!(e.status(at(1_101), Duration::seconds(100)), EntitlementStatus::Ended);
    }

    #[test]
    fn an_enormous_grace_does_not_panic() {
        let e = fold(&[grant("pro", 0, Some(1_000))]);
        assert!(e.is_live(at(2_000), Duration::MAX));
    }

    fn arb_event() -> impl Strategy<Value = LedgerEvent> {
        let time = 0i64..100;
        prop_oneof![
            (time.clone(), proptest::option::of(0i64..200), any::<bool>(), prop::sample::select(vec!["a", "b"]))
                .prop_map(|(t, end, reinstates, plan)| LedgerEvent::Grant {
                    grant: Grant { plan: plan.into(), starts_at: None, ends_at: end.map(at), at: at(t) },
                    reinstates,
                }),
            (time.clone(), prop::sample::select(RevokeReason::ALL.to_vec()))
                .prop_map(|(t, reason)| LedgerEvent::Revoke(Revocation { at: at(t), reason })),
            time.clone().prop_map(|t| LedgerEvent::Reinstate { at: at(t) }),
            (time, proptest::option::of(0i64..200)).prop_map(|(t, end)| LedgerEvent::GrantOnce(Grant {
                plan: "a".into(),
                starts_at: None,
                ends_at: end.map(at),
                at: at(t)
            })),
        ]
    }

    fn is_lifting(event: &LedgerEvent) -> bool {
        matches!(event, LedgerEvent::Reinstate { .. } | LedgerEvent::Grant { reinstates: true, .. })
    }

    proptest! {
        /// Monotonic revocation: after a revocation, no sequence of events that cannot lift one (purchases,
        /// renewals, redeliveries, further revocations) gives access back.
        #[test]
        fn revocation_is_monotonic(before in prop::collection::vec(arb_event(), 0..6),
                                   after in prop::collection::vec(arb_event(), 0..8), t in 0i64..100) {
            let mut e = fold(&before);
            e = apply_event(&e, &revoke(t)).applied_to(&e);
            prop_assume!(e.is_revoked());
            for event in after.iter().filter(|ev| !is_lifting(ev)) {
                e = apply_event(&e, event).applied_to(&e);
                prop_assert!(e.is_revoked());
                prop_assert!(!e.is_live(at(50), Duration::days(3650)));
            }
        }

        /// Revocations in any order, then an event that may lift them: it lifts them only when it is newer
        /// than every one of them (a late renewal dated between two revocations must not undo the later).
        #[test]
        fn only_an_event_newer_than_every_revocation_lifts_them(
            revocations in prop::collection::vec(0i64..100, 1..5), lift in 0i64..100, explicit in any::<bool>()
        ) {
            let mut events: Vec<LedgerEvent> = vec![grant("a", 0, None)];
            events.extend(revocations.iter().map(|t| revoke(*t)));
            events.push(if explicit {
                LedgerEvent::Reinstate { at: at(lift) }
            } else {
                LedgerEvent::Grant {
                    grant: Grant { plan: "a".into(), starts_at: None, ends_at: None, at: at(lift) },
                    reinstates: true,
                }
            });
            let newest = revocations.iter().max().copied().unwrap_or_default();
            prop_assert_eq!(fold(&events).is_revoked(), lift <= newest);
        }

        /// Applying the same event twice changes nothing the second time.
        #[test]
        fn events_are_idempotent(events in prop::collection::vec(arb_event(), 0..8), last in arb_event()) {
            let e = fold(&events);
            let once = apply_event(&e, &last).applied_to(&e);
            prop_assert!(apply_event(&once, &last).is_empty());
        }

        /// A grant older than the grant applied changes nothing.
        #[test]
        fn stale_grants_are_ignored(events in prop::collection::vec(arb_event(), 1..8), t in 0i64..100) {
            let e = fold(&events);
            if let Some(current) = &e.grant {
                prop_assume!(at(t) < current.at);
                let stale = LedgerEvent::Grant {
                    grant: Grant { plan: "other".into(), starts_at: None, ends_at: Some(at(0)), at: at(t) },
                    reinstates: true,
                };
                prop_assert_eq!(apply_event(&e, &stale).applied_to(&e).grant, e.grant.clone());
            }
        }

        /// A purchase and its chargeback end revoked in either order (their writes commute).
        #[test]
        fn grant_and_revocation_commute(g in 0i64..100, r in 0i64..100, end in proptest::option::of(0i64..200)) {
            let one = fold(&[grant("a", g, end), revoke(r)]);
            let other = fold(&[revoke(r), grant("a", g, end)]);
            prop_assert_eq!(one, other);
        }
    }
}

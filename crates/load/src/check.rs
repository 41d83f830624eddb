//! The exact final state of every buyer of a phase, counted as the issue asks: **lost** (the order has no
//! entitlement, or its claim is missing or unrecoverable), **duplicated** (the order has two entitlements,
//! an event key listed twice, two `paid` memberships), **stuck** (a claim left `processing`/`failed`
//! without a settled failure record, a failure record not settled, a purchase left pending for a verified
//! buyer), and **projection** mismatches: the subscription document, the `paid` membership and the linked
//! sample's Discord roles against the access derived from the entitlements, by `tollgate-chaos`'s
//! invariants (the same rules the chaos runs check). Pure: the runner reads the views, this compares.

use std::collections::{BTreeMap, BTreeSet};
use tollgate_chaos::invariants::{check, FailureView, Observed, UserView};
use tollgate_core::{DiscordUserId, GuildId, RoleId, RoleMapping};

/// One order of the phase and what the system holds about it and its buyer.
#[derive(Debug, Clone)]
pub struct OrderView {
    pub order_id: String,
    /// The order's entitlement source (`sellapp:1:<order>`).
    pub source: String,
    pub buyer: UserView,
    /// The status of the delivery's claim (`webhook_events`), `None`: no claim.
    pub claim_status: Option<String>,
    /// The state of the failure record with the claim's id, `None`: none.
    pub failure_state: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PhaseObserved {
    pub now: chrono::DateTime<chrono::Utc>,
    pub grace: chrono::Duration,
    pub guild: GuildId,
    pub mappings: Vec<RoleMapping>,
    pub orders: Vec<OrderView>,
    /// The linked sample's Discord accounts and their roles.
    pub members: BTreeMap<DiscordUserId, BTreeSet<RoleId>>,
    /// The failure records of this phase's orders.
    pub failures: Vec<FailureView>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub stuck: Vec<String>,
    pub projection: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.stuck.is_empty() && self.projection.is_empty()
    }
}

pub fn verdict(observed: &PhaseObserved) -> Verdict {
    let mut v = Verdict::default();
    for order in &observed.orders {
        let (id, buyer) = (&order.order_id, &order.buyer);
        let all = buyer.entitlements.iter().chain(&buyer.pending);
        let of_order: Vec<_> = all.filter(|e| e.entitlement.source == order.source).collect();
        match of_order.len() {
            0 => v.lost.push(format!("order {id}: no entitlement for {}", buyer.id)),
            1 => {}
            n => v.duplicated.push(format!("order {id}: {n} entitlements for {}", buyer.id)),
        }
        for view in &of_order {
            let unique: BTreeSet<&String> = view.event_keys.iter().collect();
            if unique.len() != view.event_keys.len() {
                v.duplicated.push(format!("order {id}: an event key listed twice {:?}", view.event_keys));
            }
        }
        if buyer.paid_memberships > 1 {
            v.duplicated.push(format!("order {id}: {} has {} paid memberships", buyer.id, buyer.paid_memberships));
        }
        if buyer.verified && !buyer.pending.is_empty() {
            v.stuck.push(format!(
                "order {id}: {} is verified but {} purchases are still pending",
                buyer.id,
                buyer.pending.len()
            ));
        }
        match (order.claim_status.as_deref(), order.failure_state.as_deref()) {
            (Some("completed"), _) => {}
            // Applied: the completion written after its failure record settled met a fault (chaos rule 2).
            (Some("failed" | "processing"), Some("settled")) => {}
            (None, _) => v.lost.push(format!("order {id}: no claim")),
            (Some("unrecoverable"), _) => v.lost.push(format!("order {id}: claim unrecoverable")),
            (Some(status), failure) => v.stuck.push(format!("order {id}: claim {status}, failure record {failure:?}")),
        }
    }
    for failure in &observed.failures {
        if failure.state.as_deref() != Some("settled") {
            v.stuck.push(format!("failure {} ({}) left {:?}", failure.id, failure.what, failure.state));
        }
    }
    // Only the projections: the deliveries, failures and pending purchases are counted above.
    let projections = Observed {
        now: observed.now,
        grace: observed.grace,
        guild: observed.guild,
        mappings: observed.mappings.clone(),
        users: observed.orders.iter().map(|o| UserView { pending: Vec::new(), ..o.buyer.clone() }).collect(),
        members: observed.members.clone(),
        deliveries: Vec::new(),
        failures: Vec::new(),
    };
    v.projection = check(&projections, &Default::default());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, Utc};
    use tollgate_chaos::invariants::{EntitlementView, SubscriptionView};
    use tollgate_core::{Entitlement, Grant};

    const GUILD: &str = "1100000000000000001";
    const ROLE: &str = "1100000000000000010";
    const DISCORD: &str = "1300000000000000000";

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn purchase(order: &str, keys: usize) -> EntitlementView {
        let source = format!("sellapp:1:{order}");
        let mut entitlement = Entitlement::new(&source);
        entitlement.grant = Some(Grant { plan: "member".into(), starts_at: None, ends_at: None, at: at() });
        EntitlementView { entitlement, event_keys: vec![format!("{source}:grant"); keys] }
    }

    fn order(n: u32, discord: Option<&str>) -> OrderView {
        OrderView {
            order_id: n.to_string(),
            source: format!("sellapp:1:{n}"),
            buyer: UserView {
                id: format!("u{n}"),
                verified: true,
                entitlements: vec![purchase(&n.to_string(), 1)],
                pending: Vec::new(),
                subscription: Some(SubscriptionView {
                    status: Some("active".into()),
                    plans: Some(["member".to_owned()].into()),
                }),
                paid_memberships: 1,
                discord: discord.map(|d| DiscordUserId::parse(d).unwrap()),
            },
            claim_status: Some("completed".into()),
            failure_state: None,
        }
    }

    /// Two orders, all applied and projected; the first buyer linked and holding the plan's role.
    fn healthy() -> PhaseObserved {
        let guild = GuildId::parse(GUILD).unwrap();
        let role = RoleId::parse(ROLE).unwrap();
        PhaseObserved {
            now: at() + Duration::hours(1),
            grace: Duration::zero(),
            guild,
            mappings: vec![RoleMapping { plan: "member".into(), guild_id: guild, role_ids: [role].into(), tier: None }],
            orders: vec![order(1, Some(DISCORD)), order(2, None)],
            members: [(DiscordUserId::parse(DISCORD).unwrap(), [role].into())].into(),
            failures: vec![FailureView {
                id: "f".into(),
                state: Some("settled".into()),
                what: "order.completed 2".into(),
            }],
        }
    }

    #[test]
    fn a_phase_where_everything_was_applied_once_and_projected_passes() {
        assert_eq!(verdict(&healthy()), Verdict::default());
        assert!(verdict(&healthy()).passed());
    }

    #[test]
    fn an_order_without_entitlement_or_claim_is_lost() {
        let mut observed = healthy();
        observed.orders[1].buyer.entitlements.clear();
        observed.orders[1].buyer.subscription = None;
        observed.orders[1].buyer.paid_memberships = 0;
        observed.orders[0].claim_status = None;
        let v = verdict(&observed);
        assert_eq!(v.lost, ["order 1: no claim", "order 2: no entitlement for u2"]);
        assert!(v.duplicated.is_empty() && v.stuck.is_empty() && v.projection.is_empty(), "{v:#?}");
        assert!(!v.passed());
    }

    #[test]
    fn a_second_entitlement_a_repeated_event_key_or_a_second_membership_is_duplicated() {
        let mut observed = healthy();
        observed.orders[0].buyer.entitlements.push(purchase("1", 1));
        observed.orders[1].buyer.entitlements = vec![purchase("2", 2)];
        let v = verdict(&observed);
        assert_eq!(v.duplicated.len(), 2, "{v:#?}");
        let mut observed = healthy();
        observed.orders[1].buyer.paid_memberships = 2;
        let v = verdict(&observed);
        assert_eq!(v.duplicated, ["order 2: u2 has 2 paid memberships"]);
        assert_eq!(v.projection.len(), 1, "the membership count also disagrees with the access: {v:#?}");
    }

    #[test]
    fn a_claim_left_processing_a_due_failure_or_a_pending_purchase_is_stuck() {
        let mut observed = healthy();
        observed.orders[0].claim_status = Some("processing".into());
        observed.orders[1].claim_status = Some("failed".into());
        observed.orders[1].failure_state = Some("due".into());
        observed.failures[0].state = Some("due".into());
        let v = verdict(&observed);
        assert_eq!(v.stuck.len(), 3, "{v:#?}");
        assert!(v.lost.is_empty());
        let mut observed = healthy();
        let purchase = observed.orders[1].buyer.entitlements.remove(0);
        observed.orders[1].buyer.pending.push(purchase);
        observed.orders[1].buyer.subscription = None;
        observed.orders[1].buyer.paid_memberships = 0;
        let v = verdict(&observed);
        assert_eq!(v.stuck, ["order 2: u2 is verified but 1 purchases are still pending"]);
        assert!(v.lost.is_empty(), "pending is not lost: the purchase exists");
    }

    #[test]
    fn a_failed_claim_under_a_settled_record_was_applied() {
        let mut observed = healthy();
        observed.orders[1].claim_status = Some("failed".into());
        observed.orders[1].failure_state = Some("settled".into());
        assert!(verdict(&observed).passed());
    }

    #[test]
    fn projections_that_disagree_with_the_entitlements_are_mismatches() {
        let mut observed = healthy();
        observed.orders[1].buyer.subscription = None;
        observed.orders[1].buyer.paid_memberships = 0;
        observed.members.values_mut().for_each(BTreeSet::clear);
        let v = verdict(&observed);
        assert_eq!(v.projection.len(), 3, "{v:#?}");
        assert!(v.lost.is_empty() && v.duplicated.is_empty() && v.stuck.is_empty());
    }
}

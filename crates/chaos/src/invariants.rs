//! What every history must end in, checked on a snapshot of the final state ([`Observed`]) once the crons
//! are quiet. Pure: the runner reads the snapshot from devstack, this module only compares, so each rule
//! has tests of its own below.
//!
//! The rules:
//! 1. **Projections equal derived access.** Each user's access is [`tollgate_core::derive_access`] of
//!    their entitlements (the product's own derivation, not a re-implementation); the `subscriptions`
//!    document (status and plans), the `paid` membership and the managed Discord roles of their linked
//!    account ([`tollgate_core::desired_roles`]) must all say the same. A guild member nobody is linked to
//!    holds no managed role.
//! 2. **Nothing lost.** Every delivery's claim ended `completed`; every failure record is `settled` (none
//!    left due or dead); no purchase is left pending for an account that has verified its email.
//! 3. **Nothing applied twice.** No entitlement lists an event key twice; nobody holds two `paid`
//!    memberships; no Discord account is linked to two users.
//! 4. **No revocation undone.** Every source the history revoked (a dispute, an admin's revoke not followed
//!    by a new grant of that source) is revoked at the end, whatever arrived late or twice.

use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};
use tollgate_core::{
    derive_access, desired_roles, managed_roles, DiscordUserId, Entitlement, GuildId, RoleId, RoleMapping,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitlementView {
    pub entitlement: Entitlement,
    pub event_keys: Vec<String>,
}

/// The `subscriptions` document as stored: its status and its `plansJson` (`None`: it does not decode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    pub status: Option<String>,
    pub plans: Option<BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub id: String,
    pub verified: bool,
    /// Entitlements the user owns.
    pub entitlements: Vec<EntitlementView>,
    /// Entitlements still pending on the user's email (owned by nobody).
    pub pending: Vec<EntitlementView>,
    pub subscription: Option<SubscriptionView>,
    pub paid_memberships: usize,
    /// The Discord account on the user's profile.
    pub discord: Option<DiscordUserId>,
}

/// A delivery of the history and the final status of its claim (`webhook_events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    pub name: String,
    pub claim_status: Option<String>,
    /// The state of the failure record with the claim's id, for a claim not `completed` (`None`: none).
    pub failure_state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureView {
    pub id: String,
    pub state: Option<String>,
    pub what: String,
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub now: DateTime<Utc>,
    pub grace: Duration,
    pub guild: GuildId,
    pub mappings: Vec<RoleMapping>,
    pub users: Vec<UserView>,
    /// Every guild member and their roles.
    pub members: BTreeMap<DiscordUserId, BTreeSet<RoleId>>,
    pub deliveries: Vec<DeliveryView>,
    pub failures: Vec<FailureView>,
}

/// What the history itself says the end must show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Sources that must be revoked (where they exist).
    pub revoked: BTreeSet<String>,
}

fn names(set: &BTreeSet<impl ToString>) -> String {
    set.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Every rule broken, one readable line each (empty: the history passed).
pub fn check(observed: &Observed, expected: &Expected) -> Vec<String> {
    let mut violations = Vec::new();
    let managed = managed_roles(&observed.mappings, observed.guild);
    let mut linked: BTreeMap<DiscordUserId, Vec<&str>> = BTreeMap::new();
    for user in &observed.users {
        check_user(observed, user, &managed, &mut violations);
        if let Some(discord) = user.discord {
            linked.entry(discord).or_default().push(&user.id);
        }
    }
    for (discord, users) in &linked {
        if users.len() > 1 {
            violations.push(format!("discord {discord} is linked to {} users: {}", users.len(), users.join(",")));
        }
    }
    for (member, roles) in &observed.members {
        if linked.contains_key(member) {
            continue;
        }
        let held: BTreeSet<RoleId> = roles.intersection(&managed).copied().collect();
        if !held.is_empty() {
            violations.push(format!("discord {member} is linked to nobody but holds managed roles {}", names(&held)));
        }
    }
    for delivery in &observed.deliveries {
        // A claim handed to its failure record stays `failed` when the completion written after the record
        // was settled met a fault: the record says the delivery was applied (a redelivery re-runs idempotent
        // steps and completes it).
        if delivery.claim_status.as_deref() != Some("completed") && delivery.failure_state.as_deref() != Some("settled")
        {
            violations.push(format!("lost: {} ended with claim {:?}", delivery.name, delivery.claim_status));
        }
    }
    for failure in &observed.failures {
        if failure.state.as_deref() != Some("settled") {
            violations.push(format!("failure {} ({}) left {:?}", failure.id, failure.what, failure.state));
        }
    }
    let all = observed.users.iter().flat_map(|u| u.entitlements.iter().chain(&u.pending));
    for view in all {
        let source = &view.entitlement.source;
        if expected.revoked.contains(source) && !view.entitlement.is_revoked() {
            violations.push(format!("revocation undone: {source} is not revoked at the end"));
        }
        let unique: BTreeSet<&String> = view.event_keys.iter().collect();
        if unique.len() != view.event_keys.len() {
            violations.push(format!("applied twice: {source} lists an event key twice: {:?}", view.event_keys));
        }
    }
    violations
}

fn check_user(observed: &Observed, user: &UserView, managed: &BTreeSet<RoleId>, violations: &mut Vec<String>) {
    let id = &user.id;
    let list: Vec<Entitlement> = user.entitlements.iter().map(|v| v.entitlement.clone()).collect();
    let access = derive_access(&list, observed.now, observed.grace);
    let plans: BTreeSet<String> = access.plans.keys().cloned().collect();
    match (&user.subscription, access.has_access()) {
        (None, false) => {}
        (None, true) => violations.push(format!("{id}: has access to {} but no subscriptions document", names(&plans))),
        (Some(sub), has) => {
            let wanted = if has { "active" } else { "inactive" };
            if sub.status.as_deref() != Some(wanted) {
                violations.push(format!("{id}: subscription status {:?}, derived access says {wanted}", sub.status));
            }
            if sub.plans.as_ref() != Some(&plans) {
                violations.push(format!(
                    "{id}: subscription plans {:?}, derived access gives {{{}}}",
                    sub.plans,
                    names(&plans)
                ));
            }
        }
    }
    let wanted_memberships = usize::from(access.has_access());
    if user.paid_memberships != wanted_memberships {
        violations.push(format!(
            "{id}: {} paid memberships, derived access wants {wanted_memberships}",
            user.paid_memberships
        ));
    }
    if let Some(discord) = user.discord {
        if let Some(roles) = observed.members.get(&discord) {
            let desired = desired_roles(&observed.mappings, observed.guild, plans.iter().map(String::as_str));
            let held: BTreeSet<RoleId> = roles.intersection(managed).copied().collect();
            if held != desired {
                violations.push(format!(
                    "{id}: discord {discord} holds managed roles {{{}}}, derived access wants {{{}}}",
                    names(&held),
                    names(&desired)
                ));
            }
        }
    }
    if user.verified && !user.pending.is_empty() {
        let sources: BTreeSet<&String> = user.pending.iter().map(|v| &v.entitlement.source).collect();
        violations.push(format!("lost: {id} verified its email but {sources:?} are still pending"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::{Grant, Revocation, RevokeReason};

    const GUILD: &str = "1100000000000000001";
    const MEMBER_ROLE: &str = "1100000000000000010";
    const DISCORD: &str = "1100000000000000100";

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::hours(hours)
    }

    fn granted(source: &str, plan: &str, ends: Option<i64>) -> EntitlementView {
        let mut entitlement = Entitlement::new(source);
        entitlement.grant = Some(Grant { plan: plan.into(), starts_at: None, ends_at: ends.map(at), at: at(0) });
        EntitlementView { entitlement, event_keys: vec![format!("{source}:grant")] }
    }

    fn revoked(mut view: EntitlementView) -> EntitlementView {
        view.entitlement.revocation = Some(Revocation { at: at(1), reason: RevokeReason::Dispute });
        view
    }

    fn subscription(status: &str, plans: &[&str]) -> Option<SubscriptionView> {
        Some(SubscriptionView {
            status: Some(status.into()),
            plans: Some(plans.iter().map(|p| p.to_string()).collect()),
        })
    }

    fn role(id: &str) -> RoleId {
        RoleId::parse(id).unwrap()
    }

    /// One verified user `u0` with an open-ended `member` purchase, projected everywhere, linked to a
    /// member holding the plan's role.
    fn in_sync() -> Observed {
        let guild = GuildId::parse(GUILD).unwrap();
        let discord = DiscordUserId::parse(DISCORD).unwrap();
        Observed {
            now: at(2),
            grace: Duration::zero(),
            guild,
            mappings: vec![RoleMapping {
                plan: "member".into(),
                guild_id: guild,
                role_ids: [role(MEMBER_ROLE)].into(),
                tier: None,
            }],
            users: vec![UserView {
                id: "u0".into(),
                verified: true,
                entitlements: vec![granted("sellapp:7:1", "member", None)],
                pending: Vec::new(),
                subscription: subscription("active", &["member"]),
                paid_memberships: 1,
                discord: Some(discord),
            }],
            members: [(discord, [role(MEMBER_ROLE)].into())].into(),
            deliveries: vec![DeliveryView {
                name: "order.completed 1".into(),
                claim_status: Some("completed".into()),
                failure_state: None,
            }],
            failures: vec![FailureView { id: "f1".into(), state: Some("settled".into()), what: "x".into() }],
        }
    }

    #[test]
    fn a_state_where_every_projection_matches_passes() {
        assert_eq!(check(&in_sync(), &Expected::default()), Vec::<String>::new());
    }

    #[test]
    fn an_expired_grant_still_projected_as_active_is_a_violation_of_every_projection() {
        let mut observed = in_sync();
        observed.users[0].entitlements = vec![granted("sellapp:7:1", "member", Some(1))];
        let violations = check(&observed, &Expected::default());
        assert_eq!(violations.len(), 4, "{violations:#?}");
        assert!(violations[0].contains("status Some(\"active\"), derived access says inactive"));
        assert!(violations[2].contains("1 paid memberships, derived access wants 0"));
        assert!(violations[3].contains("holds managed roles"));
    }

    #[test]
    fn access_without_a_subscription_document_or_membership_is_caught() {
        let mut observed = in_sync();
        observed.users[0].subscription = None;
        observed.users[0].paid_memberships = 0;
        let violations = check(&observed, &Expected::default());
        assert_eq!(violations.len(), 2, "{violations:#?}");
    }

    #[test]
    fn a_claim_left_processing_or_a_failure_left_due_is_lost() {
        let mut observed = in_sync();
        observed.deliveries[0].claim_status = Some("processing".into());
        observed.failures[0].state = Some("due".into());
        let violations = check(&observed, &Expected::default());
        assert!(violations[0].starts_with("lost: order.completed 1"), "{violations:#?}");
        assert!(violations[1].starts_with("failure f1"), "{violations:#?}");
    }

    #[test]
    fn a_purchase_left_pending_for_a_verified_account_is_lost_but_not_for_an_unverified_one() {
        let mut observed = in_sync();
        observed.users[0].pending = vec![granted("sellapp:7:2", "member", None)];
        assert_eq!(check(&observed, &Expected::default()).len(), 1);
        observed.users[0].verified = false;
        assert!(check(&observed, &Expected::default()).is_empty());
    }

    #[test]
    fn a_revoked_source_granted_again_is_a_revocation_undone() {
        let mut observed = in_sync();
        let expected = Expected { revoked: ["sellapp:7:1".to_owned()].into() };
        let violations = check(&observed, &expected);
        assert_eq!(violations, vec!["revocation undone: sellapp:7:1 is not revoked at the end".to_owned()]);
        observed.users[0].entitlements = vec![revoked(granted("sellapp:7:1", "member", None))];
        observed.users[0].subscription = subscription("inactive", &[]);
        observed.users[0].paid_memberships = 0;
        observed.members.values_mut().for_each(BTreeSet::clear);
        assert!(check(&observed, &expected).is_empty());
    }

    #[test]
    fn an_event_key_listed_twice_is_applied_twice() {
        let mut observed = in_sync();
        let keys = &mut observed.users[0].entitlements[0].event_keys;
        keys.push(keys[0].clone());
        assert!(check(&observed, &Expected::default())[0].starts_with("applied twice"));
    }

    #[test]
    fn managed_roles_on_an_unlinked_member_and_a_doubly_linked_account_are_caught() {
        let mut observed = in_sync();
        observed.users[0].discord = None;
        let violations = check(&observed, &Expected::default());
        assert!(violations[0].contains("linked to nobody but holds managed roles"), "{violations:#?}");
        let mut observed = in_sync();
        let mut twin = observed.users[0].clone();
        twin.id = "u1".into();
        observed.users.push(twin);
        assert!(check(&observed, &Expected::default())[0].contains("linked to 2 users"));
    }
}

//! Which managed roles a member should have. Roles are a projection of Appwrite: a user with access now
//! gets the roles mapped to their plan; anyone else gets none of the managed roles (docs/compatibility.md:
//! inactive → none; a plan with no mapping → none).

use crate::plans::{exclusive_plans, Tier};
use crate::snowflake::{GuildId, RoleId};
use std::collections::{BTreeMap, BTreeSet};

/// One `discord_role_mappings` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMapping {
    pub plan: String,
    pub guild_id: GuildId,
    pub role_ids: BTreeSet<RoleId>,
    /// Plans of one tier group are exclusive (see [`crate::plans`]).
    pub tier: Option<Tier>,
}

/// Every role Tollgate manages in `guild`: the union of its mappings. Roles outside it are never touched.
pub fn managed_roles(mappings: &[RoleMapping], guild: GuildId) -> BTreeSet<RoleId> {
    mappings.iter().filter(|m| m.guild_id == guild).flat_map(|m| m.role_ids.iter().copied()).collect()
}

/// The managed roles a user should hold in `guild`: the union of the mappings of the plans they have
/// access to now (see [`crate::access`]), of each tier group only the highest-ranked one; no plans, no
/// managed roles.
pub fn desired_roles<'p>(
    mappings: &[RoleMapping],
    guild: GuildId,
    plans_with_access: impl IntoIterator<Item = &'p str>,
) -> BTreeSet<RoleId> {
    let tiers: BTreeMap<String, Tier> =
        mappings.iter().filter_map(|m| Some((m.plan.clone(), m.tier.clone()?))).collect();
    let plans = exclusive_plans(plans_with_access, &tiers);
    mappings
        .iter()
        .filter(|m| m.guild_id == guild && plans.contains(m.plan.as_str()))
        .flat_map(|m| m.role_ids.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(plan: &str, guild: u64, roles: &[u64]) -> RoleMapping {
        RoleMapping {
            plan: plan.into(),
            guild_id: GuildId::parse(&guild.to_string()).unwrap(),
            role_ids: roles.iter().map(|r| RoleId::parse(&r.to_string()).unwrap()).collect(),
            tier: None,
        }
    }

    #[test]
    fn of_a_tier_group_only_the_highest_plans_roles_are_desired() {
        let tier = |rank| Some(Tier { group: "main".into(), rank });
        let mappings = [
            RoleMapping { tier: tier(1), ..mapping("basic", 1, &[10]) },
            RoleMapping { tier: tier(2), ..mapping("pro", 1, &[20]) },
        ];
        let guild = GuildId::parse("1").unwrap();
        let both = desired_roles(&mappings, guild, ["basic", "pro"]);
        assert_eq!(both.iter().map(|r| r.get()).collect::<Vec<_>>(), vec![20]);
        let lower = desired_roles(&mappings, guild, ["basic"]);
        assert_eq!(lower.iter().map(|r| r.get()).collect::<Vec<_>>(), vec![10]);
    }

    #[test]
    fn a_user_with_access_gets_their_plans_roles_only() {
        let mappings = [mapping("pro", 1, &[10, 11]), mapping("basic", 1, &[20])];
        let guild = GuildId::parse("1").unwrap();
        let desired = desired_roles(&mappings, guild, ["pro"]);
        assert_eq!(desired.iter().map(|r| r.get()).collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(managed_roles(&mappings, guild).len(), 3);
    }

    #[test]
    fn no_access_or_an_unmapped_plan_means_no_managed_roles() {
        let mappings = [mapping("pro", 1, &[10])];
        let guild = GuildId::parse("1").unwrap();
        assert!(desired_roles(&mappings, guild, []).is_empty());
        assert!(desired_roles(&mappings, guild, ["unknown"]).is_empty());
        assert!(desired_roles(&mappings, GuildId::parse("2").unwrap(), ["pro"]).is_empty());
    }

    #[test]
    fn several_plans_give_the_union_of_their_roles() {
        let mappings = [mapping("pro", 1, &[10, 11]), mapping("gift", 1, &[11, 12]), mapping("basic", 1, &[20])];
        let guild = GuildId::parse("1").unwrap();
        let desired = desired_roles(&mappings, guild, ["pro", "gift"]);
        assert_eq!(desired.iter().map(|r| r.get()).collect::<Vec<_>>(), vec![10, 11, 12]);
    }
}

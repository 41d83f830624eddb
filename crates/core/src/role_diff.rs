//! The changes that make a member's roles right. Only **managed** roles (those in some mapping) are ever
//! removed: members also hold roles given by moderators, boosts or other bots, and Tollgate must never
//! take those away. A desired role is always added, managed or not (it comes from a mapping, so it is).

use crate::snowflake::RoleId;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleDiff {
    pub add: BTreeSet<RoleId>,
    pub remove: BTreeSet<RoleId>,
}

impl RoleDiff {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// Discord calls it takes (one per role).
    pub fn len(&self) -> usize {
        self.add.len() + self.remove.len()
    }
}

pub fn role_diff(current: &BTreeSet<RoleId>, desired: &BTreeSet<RoleId>, managed: &BTreeSet<RoleId>) -> RoleDiff {
    RoleDiff {
        add: desired.difference(current).copied().collect(),
        remove: current.iter().filter(|r| managed.contains(r) && !desired.contains(r)).copied().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(ids: &[u64]) -> BTreeSet<RoleId> {
        ids.iter().map(|i| RoleId::parse(&i.to_string()).unwrap()).collect()
    }

    #[test]
    fn adds_missing_and_removes_only_managed_extras() {
        let diff = role_diff(&set(&[1, 2, 99]), &set(&[2, 3]), &set(&[1, 2, 3]));
        assert_eq!(diff.add, set(&[3]));
        assert_eq!(diff.remove, set(&[1]), "99 is unmanaged and stays");
    }

    #[test]
    fn a_member_already_right_needs_nothing() {
        assert!(role_diff(&set(&[2, 3, 50]), &set(&[2, 3]), &set(&[1, 2, 3])).is_empty());
    }

    proptest! {
        #[test]
        fn applying_the_diff_reaches_the_desired_managed_roles_and_keeps_the_rest(
            current in proptest::collection::btree_set(1u64..40, 0..10),
            desired in proptest::collection::btree_set(1u64..20, 0..5),
            extra_managed in proptest::collection::btree_set(1u64..20, 0..5),
        ) {
            let current: BTreeSet<RoleId> = current.iter().map(|i| RoleId::parse(&i.to_string()).unwrap()).collect();
            let desired: BTreeSet<RoleId> = desired.iter().map(|i| RoleId::parse(&i.to_string()).unwrap()).collect();
            let managed: BTreeSet<RoleId> = desired.iter().copied().chain(extra_managed.iter().map(|i| RoleId::parse(&i.to_string()).unwrap())).collect();
            let diff = role_diff(&current, &desired, &managed);
            let after: BTreeSet<RoleId> = current.iter().filter(|r| !diff.remove.contains(r)).copied().chain(diff.add.iter().copied()).collect();
            let managed_after: BTreeSet<RoleId> = after.intersection(&managed).copied().collect();
            prop_assert_eq!(&managed_after, &desired);
            let unmanaged_before: BTreeSet<RoleId> = current.difference(&managed).copied().collect();
            let unmanaged_after: BTreeSet<RoleId> = after.difference(&managed).copied().collect();
            prop_assert_eq!(unmanaged_before, unmanaged_after);
            prop_assert!(role_diff(&after, &desired, &managed).is_empty());
        }
    }
}

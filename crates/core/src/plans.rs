//! The plans catalogue, as pure decisions: which plan a provider's product sells, how long a one-off
//! purchase lasts, and which plans of a tier group a member actually holds.
//!
//! ## Why products are matched by id first
//! The replaced deployment named the plan after the product's *title*, so renaming a product on Sell.app
//! silently moved its buyers to another (usually unmapped) plan. A plan now lists the Sell.app product
//! ids and variant ids that sell it; the title stays accepted only as a fallback for data the replaced
//! deployment wrote ([`PlanMatch::Title`]), and `tollgate doctor` warns when it was needed.
//!
//! ## Why tier groups are applied to roles, not to the ledger
//! Plans of one group (e.g. `basic` < `pro` < `vip`) are exclusive: a member holds only the roles of the
//! highest-ranked plan of the group they have access to now ([`exclusive_plans`]). The entitlements of the
//! lower tiers stay as they are, so when the higher tier ends, the lower one (if still live) comes back by
//! itself at the next projection: nothing has to remember what was replaced.

use chrono::Duration;
use std::collections::{BTreeMap, BTreeSet};

/// A plan's place in an exclusive tier group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tier {
    pub group: String,
    /// Higher wins.
    pub rank: i64,
}

/// Of the plans a member has access to, the ones whose roles they hold: every plan without a tier, and
/// per tier group only the highest-ranked plan (ties: the greater name, so the choice is stable).
pub fn exclusive_plans<'p>(
    plans_with_access: impl IntoIterator<Item = &'p str>,
    tiers: &BTreeMap<String, Tier>,
) -> BTreeSet<&'p str> {
    let mut kept: BTreeSet<&'p str> = BTreeSet::new();
    let mut best: BTreeMap<&str, (i64, &'p str)> = BTreeMap::new();
    for plan in plans_with_access {
        match tiers.get(plan) {
            None => {
                kept.insert(plan);
            }
            Some(tier) => {
                let entry = best.entry(tier.group.as_str()).or_insert((tier.rank, plan));
                if (tier.rank, plan) > *entry {
                    *entry = (tier.rank, plan);
                }
            }
        }
    }
    kept.extend(best.into_values().map(|(_, plan)| plan));
    kept
}

/// How a purchase found its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMatch {
    /// A plan lists the line item's product variant id.
    Variant,
    /// A plan lists the line item's product id.
    Product,
    /// No id matched; a plan is named like the product's title (the replaced deployment's rule).
    Title,
    /// Nothing matched: the configured default plan.
    Default,
}

impl PlanMatch {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Variant => "variant",
            Self::Product => "product",
            Self::Title => "title",
            Self::Default => "default",
        }
    }

    /// Title and default matches deserve an admin's attention (`tollgate doctor`).
    pub fn is_fallback(self) -> bool {
        matches!(self, Self::Title | Self::Default)
    }
}

/// What a plan of the catalogue says about selling it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanOffer {
    pub plan: String,
    pub sellapp_products: BTreeSet<String>,
    pub sellapp_variants: BTreeSet<String>,
    /// Stripe price ids (`price_…`) that sell the plan; checkout uses the first (in id order).
    pub stripe_prices: BTreeSet<String>,
    /// One-off purchases of this plan end this long after payment; `None`: open-ended.
    pub duration: Option<Duration>,
    pub tier: Option<Tier>,
}

/// One line of a purchase, as the payload names it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineItem {
    pub product_id: Option<String>,
    pub variant_id: Option<String>,
    pub title: Option<String>,
}

/// The plan a purchase of `items` grants: the first item whose variant id, then product id, a plan lists;
/// else the first item's title, taken as the plan's name (the replaced deployment's rule, kept for its
/// data); else `None` (the caller uses its default plan).
pub fn plan_for_purchase(catalogue: &[PlanOffer], items: &[LineItem]) -> Option<(String, PlanMatch)> {
    let by_id = |pick: fn(&PlanOffer) -> &BTreeSet<String>, id: fn(&LineItem) -> Option<&String>| {
        items.iter().find_map(|item| {
            let id = id(item)?;
            catalogue.iter().find(|offer| pick(offer).contains(id)).map(|offer| offer.plan.clone())
        })
    };
    if let Some(plan) = by_id(|o| &o.sellapp_variants, |i| i.variant_id.as_ref()) {
        return Some((plan, PlanMatch::Variant));
    }
    if let Some(plan) = by_id(|o| &o.sellapp_products, |i| i.product_id.as_ref()) {
        return Some((plan, PlanMatch::Product));
    }
    items.iter().find_map(|i| i.title.clone()).map(|title| (title, PlanMatch::Title))
}

/// The plan a Stripe price sells, if a plan lists it.
pub fn plan_for_stripe_price(catalogue: &[PlanOffer], price: &str) -> Option<String> {
    catalogue.iter().find(|offer| offer.stripe_prices.iter().any(|p| p == price)).map(|offer| offer.plan.clone())
}

/// The price a checkout of `plan` uses: the first one the plan lists (the lists are kept in id order, so the
/// choice does not depend on how the list was written).
pub fn stripe_price_for_plan(catalogue: &[PlanOffer], plan: &str) -> Option<String> {
    catalogue.iter().find(|offer| offer.plan == plan).and_then(|offer| offer.stripe_prices.first().cloned())
}

/// `30d`, `12h`, `2w`, `90m`, `3600s` (or a bare number of days) → a positive duration.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (digits, unit) = match raw.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => raw.split_at(at),
        None => (raw, "d"),
    };
    let amount: i64 = digits.parse().map_err(|_| format!("`{raw}` is not a duration like 30d, 12h or 2w"))?;
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        other => return Err(format!("unknown duration unit `{other}` (use s, m, h, d or w)")),
    };
    match amount.checked_mul(seconds_per) {
        Some(seconds) if seconds > 0 && seconds <= 100 * 365 * 86_400 => Ok(Duration::seconds(seconds)),
        _ => Err(format!("`{raw}` must be more than zero and at most 100 years")),
    }
}

/// A duration as people write it: `30d` when whole days, else seconds.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.num_seconds();
    if seconds % 86_400 == 0 {
        format!("{}d", seconds / 86_400)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tiers(list: &[(&str, &str, i64)]) -> BTreeMap<String, Tier> {
        list.iter()
            .map(|(plan, group, rank)| ((*plan).to_owned(), Tier { group: (*group).into(), rank: *rank }))
            .collect()
    }

    #[test]
    fn the_higher_tier_replaces_the_lower_and_untiered_plans_stay() {
        let t = tiers(&[("basic", "main", 1), ("pro", "main", 2)]);
        let kept = exclusive_plans(["basic", "pro", "gift"], &t);
        assert_eq!(kept.into_iter().collect::<Vec<_>>(), vec!["gift", "pro"]);
        assert_eq!(exclusive_plans(["basic"], &t).into_iter().collect::<Vec<_>>(), vec!["basic"]);
    }

    #[test]
    fn a_product_id_wins_over_the_title_so_renaming_keeps_the_plan() {
        let catalogue =
            [PlanOffer { plan: "pro".into(), sellapp_products: ["55".to_owned()].into(), ..PlanOffer::default() }];
        let renamed =
            LineItem { product_id: Some("55".into()), variant_id: None, title: Some("Pro (new name)".into()) };
        assert_eq!(plan_for_purchase(&catalogue, &[renamed]), Some(("pro".into(), PlanMatch::Product)));
        let legacy = LineItem { product_id: None, variant_id: None, title: Some("vip".into()) };
        assert_eq!(plan_for_purchase(&catalogue, &[legacy]), Some(("vip".into(), PlanMatch::Title)));
        assert_eq!(plan_for_purchase(&catalogue, &[]), None);
    }

    #[test]
    fn a_variant_id_wins_over_a_product_id() {
        let catalogue = [
            PlanOffer { plan: "month".into(), sellapp_products: ["1".to_owned()].into(), ..PlanOffer::default() },
            PlanOffer { plan: "year".into(), sellapp_variants: ["9".to_owned()].into(), ..PlanOffer::default() },
        ];
        let item = LineItem { product_id: Some("1".into()), variant_id: Some("9".into()), title: None };
        assert_eq!(plan_for_purchase(&catalogue, &[item]), Some(("year".into(), PlanMatch::Variant)));
    }

    #[test]
    fn a_stripe_price_names_its_plan_and_a_plan_checks_out_with_its_first_price() {
        let catalogue = [
            PlanOffer { plan: "basic".into(), stripe_prices: ["price_b".to_owned()].into(), ..PlanOffer::default() },
            PlanOffer {
                plan: "pro".into(),
                stripe_prices: ["price_p2".to_owned(), "price_p1".to_owned()].into(),
                ..PlanOffer::default()
            },
        ];
        assert_eq!(plan_for_stripe_price(&catalogue, "price_p1"), Some("pro".into()));
        assert_eq!(plan_for_stripe_price(&catalogue, "price_x"), None);
        assert_eq!(stripe_price_for_plan(&catalogue, "pro"), Some("price_p1".into()));
        assert_eq!(stripe_price_for_plan(&catalogue, "vip"), None);
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("30d"), Ok(Duration::days(30)));
        assert_eq!(parse_duration("2w"), Ok(Duration::days(14)));
        assert_eq!(parse_duration("12h"), Ok(Duration::hours(12)));
        assert_eq!(parse_duration("7"), Ok(Duration::days(7)));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3y").is_err());
        assert!(parse_duration("99999999999999999d").is_err());
        assert_eq!(format_duration(Duration::days(30)), "30d");
        assert_eq!(format_duration(Duration::seconds(90)), "90s");
    }

    fn arb_tiers() -> impl Strategy<Value = BTreeMap<String, Tier>> {
        prop::collection::btree_map(
            prop::sample::select(vec!["a", "b", "c", "d", "e"]).prop_map(str::to_owned),
            (prop::sample::select(vec!["g1", "g2"]), 0i64..4).prop_map(|(g, rank)| Tier { group: g.into(), rank }),
            0..5,
        )
    }

    proptest! {
        /// At most one plan per group is kept, it is one of the member's plans, no other plan of its group
        /// outranks it, and every plan without a tier is kept.
        #[test]
        fn one_plan_per_group_the_highest(plans in prop::collection::btree_set(
                prop::sample::select(vec!["a", "b", "c", "d", "e", "f"]), 0..6), t in arb_tiers()) {
            let kept = exclusive_plans(plans.iter().copied(), &t);
            prop_assert!(kept.iter().all(|p| plans.contains(p)));
            for plan in &plans {
                match t.get(*plan) {
                    None => prop_assert!(kept.contains(plan)),
                    Some(tier) => {
                        let holders: Vec<_> = kept.iter().filter(|k| t.get(**k).is_some_and(|x| x.group == tier.group)).collect();
                        prop_assert_eq!(holders.len(), 1);
                        prop_assert!(t[*holders[0]].rank >= tier.rank);
                    }
                }
            }
        }

        /// Losing the highest tier of a group gives the next one back (nothing is remembered).
        #[test]
        fn ending_the_top_tier_restores_the_next(plans in prop::collection::btree_set(
                prop::sample::select(vec!["a", "b", "c", "d", "e"]), 2..5), t in arb_tiers()) {
            let kept = exclusive_plans(plans.iter().copied(), &t);
            for top in kept.iter().filter(|p| t.contains_key(**p)) {
                let rest: Vec<&str> = plans.iter().copied().filter(|p| p != top).collect();
                let group = &t[*top].group;
                let expected = rest.iter().filter(|p| t.get(**p).is_some_and(|x| &x.group == group))
                    .max_by_key(|p| (t[**p].rank, **p)).copied();
                let after = exclusive_plans(rest.iter().copied(), &t);
                let held = after.iter().find(|p| t.get(**p).is_some_and(|x| &x.group == group)).copied();
                prop_assert_eq!(held, expected);
            }
        }
    }
}

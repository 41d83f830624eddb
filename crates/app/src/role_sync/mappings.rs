//! `discord_role_mappings`: the plans catalogue. A document is one plan: its guild and role ids
//! (`roleIdsJson`), and since the Sell.app lifecycle issue what sells it and how (all optional): the
//! Sell.app product ids and variant ids (`sellappProductIdsJson`, `sellappVariantIdsJson`, JSON lists), the
//! Stripe price ids (`stripePriceIdsJson`, a JSON list),
//! the duration of a one-off purchase (`durationSeconds`) and an exclusive tier group (`tierGroup`,
//! `tierRank`). See `tollgate_core::plans` for what they mean.
//!
//! ## A mapping that cannot be read fails closed
//! A managed role is one Tollgate may take away; a role in no mapping is never touched. So skipping an
//! unreadable mapping would make its roles unmanaged, and everyone holding them would keep them forever,
//! paid or not. Instead, for a mapping document that does not parse (a field of the wrong type, no plan, a
//! guild that is not a snowflake, `roleIdsJson` that is not a JSON list of role ids):
//! - every role id that can still be read from `roleIdsJson` stays **managed** (taken away from members
//!   without a readable mapping that grants it) but is **never granted** from that mapping: giving a paid
//!   role on the strength of a document Tollgate cannot read would be the unsafe mistake; taking it away
//!   until an admin fixes the document is the safe one. Role ids are snowflakes, unique across Discord, so
//!   a broken mapping's roles count as managed in the configured guild even when its `guildId` is unreadable.
//!   From a `roleIdsJson` that is not valid JSON, every run of 17–20 digits counts (a truncated list still
//!   names its roles).
//! - a mapping from which no role id can be read at all cannot fail closed (Tollgate does not know which
//!   roles to take away): it is reported, by `tollgate doctor` (failing check "role mappings readable"), in
//!   every reconciliation report (`unreadable_mappings`, printed by `tollgate sync --all` and logged by the
//!   role-sync cron) and in the log of every sync.
//!
//! Every broken mapping (readable roles or not) is listed in [`RoleMappings::broken`] with the reason.
//! The same holds for the catalogue fields: a document whose product ids, duration or tier cannot be read
//! is broken as a whole (its roles are never granted, and a purchase that no readable plan claims by id is
//! recorded as a failure rather than guessed; see `ingest_webhook.rs`).

use super::RoleSync;
use crate::error::StepError;
use serde_json::json;
use std::collections::BTreeSet;
use tollgate_appwrite::{Document, Query};
use tollgate_core::{derived_document_id, managed_roles, Clock, GuildId, PlanOffer, RoleId, RoleMapping, Tier};

/// Mappings are few; one page holds them all.
const MAPPINGS_PAGE: u32 = 500;
/// The lengths a Discord snowflake has in decimal (2015 to well past 2090).
const SNOWFLAKE_DIGITS: std::ops::RangeInclusive<usize> = 17..=20;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MappingRecord {
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    guild_id: Option<String>,
    #[serde(default)]
    role_ids_json: Option<String>,
    #[serde(default)]
    sellapp_product_ids_json: Option<String>,
    #[serde(default)]
    sellapp_variant_ids_json: Option<String>,
    #[serde(default)]
    stripe_price_ids_json: Option<String>,
    #[serde(default)]
    duration_seconds: Option<i64>,
    #[serde(default)]
    tier_group: Option<String>,
    #[serde(default)]
    tier_rank: Option<i64>,
}

/// A mapping document that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenMapping {
    pub document_id: String,
    pub reason: String,
    /// Role ids that could still be read: managed, never granted.
    pub role_ids: BTreeSet<RoleId>,
    /// The document names Sell.app products (or may: it does not decode), so a purchase no readable plan
    /// lists might be one of its products.
    pub may_list_products: bool,
}

/// Every mapping of the collection: the readable ones, and the broken ones (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMappings {
    pub readable: Vec<RoleMapping>,
    pub broken: Vec<BrokenMapping>,
    /// What the readable plans say about selling them (one per readable mapping).
    pub offers: Vec<PlanOffer>,
}

impl RoleMappings {
    /// Roles Tollgate takes away from members who should not have them: every readable mapping's in
    /// `guild`, plus every role still readable from a broken mapping.
    pub fn managed(&self, guild: GuildId) -> BTreeSet<RoleId> {
        let mut managed = managed_roles(&self.readable, guild);
        managed.extend(self.broken.iter().flat_map(|b| b.role_ids.iter().copied()));
        managed
    }

    /// Broken mappings none of whose roles can be read: their roles cannot be managed at all.
    pub fn unreadable(&self) -> impl Iterator<Item = &BrokenMapping> {
        self.broken.iter().filter(|b| b.role_ids.is_empty())
    }

    /// One line per unreadable mapping, for reports.
    pub fn unreadable_report(&self) -> Vec<String> {
        self.unreadable().map(|b| format!("{}: {}", b.document_id, b.reason)).collect()
    }

    fn parse(doc: &Document) -> Result<(RoleMapping, PlanOffer), BrokenMapping> {
        let names_products =
            ["sellappProductIdsJson", "sellappVariantIdsJson", "stripePriceIdsJson"].iter().any(|field| {
                doc.data
                    .get(*field)
                    .is_some_and(|v| !v.is_null() && v.as_str().is_none_or(|s| !matches!(s.trim(), "" | "[]")))
            });
        let broken = |reason: String, role_ids: BTreeSet<RoleId>| BrokenMapping {
            document_id: doc.id.clone(),
            reason,
            role_ids,
            may_list_products: names_products,
        };
        let record = match doc.decode::<MappingRecord>() {
            Ok(record) => record,
            Err(e) => {
                // Fields of the wrong type: still try to read the role ids from the raw attribute.
                let raw = doc.data.get("roleIdsJson").and_then(|v| v.as_str()).unwrap_or_default();
                let mut broken = broken(format!("the document does not decode: {e}"), salvage_role_ids(raw));
                broken.may_list_products = true;
                return Err(broken);
            }
        };
        let Some(raw_roles) = record.role_ids_json.as_deref() else {
            return Err(broken("roleIdsJson is missing".into(), BTreeSet::new()));
        };
        let role_ids = match serde_json::from_str::<Vec<serde_json::Value>>(raw_roles) {
            Ok(items) => {
                let parsed: Vec<Option<RoleId>> = items.iter().map(role_id_of).collect();
                let readable: BTreeSet<RoleId> = parsed.iter().flatten().copied().collect();
                if parsed.iter().any(Option::is_none) {
                    return Err(broken("roleIdsJson holds an entry that is not a role id".into(), readable));
                }
                readable
            }
            Err(e) => return Err(broken(format!("roleIdsJson is not a JSON list: {e}"), salvage_role_ids(raw_roles))),
        };
        let Some(plan) = record.plan.filter(|p| !p.trim().is_empty()) else {
            return Err(broken("plan is missing".into(), role_ids));
        };
        let guild_id = match record.guild_id.as_deref().map(GuildId::parse) {
            Some(Ok(guild)) => guild,
            _ => return Err(broken(format!("guildId of plan `{plan}` is not a guild id"), role_ids)),
        };
        let ids = |field: &str, raw: Option<&str>| match raw {
            None | Some("") => Ok(BTreeSet::new()),
            Some(raw) => match serde_json::from_str::<Vec<serde_json::Value>>(raw) {
                Ok(items) => items
                    .iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                        serde_json::Value::Number(n) => Ok(n.to_string()),
                        _ => Err(format!("{field} of plan `{plan}` holds an entry that is not an id")),
                    })
                    .collect(),
                Err(e) => Err(format!("{field} of plan `{plan}` is not a JSON list: {e}")),
            },
        };
        let products = ids("sellappProductIdsJson", record.sellapp_product_ids_json.as_deref())
            .map_err(|reason| broken(reason, role_ids.clone()))?;
        let variants = ids("sellappVariantIdsJson", record.sellapp_variant_ids_json.as_deref())
            .map_err(|reason| broken(reason, role_ids.clone()))?;
        let stripe_prices = ids("stripePriceIdsJson", record.stripe_price_ids_json.as_deref())
            .map_err(|reason| broken(reason, role_ids.clone()))?;
        let duration = match record.duration_seconds {
            None => None,
            Some(seconds) if seconds > 0 => Some(chrono::Duration::seconds(seconds)),
            Some(other) => {
                return Err(broken(format!("durationSeconds of plan `{plan}` is {other}, not positive"), role_ids))
            }
        };
        let tier = match (record.tier_group.filter(|g| !g.trim().is_empty()), record.tier_rank) {
            (None, None) => None,
            (Some(group), Some(rank)) => Some(Tier { group, rank }),
            _ => return Err(broken(format!("plan `{plan}` needs both tierGroup and tierRank, or neither"), role_ids)),
        };
        let offer = PlanOffer {
            plan: plan.clone(),
            sellapp_products: products,
            sellapp_variants: variants,
            stripe_prices,
            duration,
            tier: tier.clone(),
        };
        Ok((RoleMapping { plan, guild_id, role_ids, tier }, offer))
    }
}

fn role_id_of(value: &serde_json::Value) -> Option<RoleId> {
    match value {
        serde_json::Value::String(s) => RoleId::parse(s).ok(),
        serde_json::Value::Number(n) => RoleId::parse(&n.to_string()).ok(),
        _ => None,
    }
}

/// Every snowflake-length run of digits in `raw`.
fn salvage_role_ids(raw: &str) -> BTreeSet<RoleId> {
    raw.split(|c: char| !c.is_ascii_digit())
        .filter(|run| SNOWFLAKE_DIGITS.contains(&run.len()))
        .filter_map(|run| RoleId::parse(run).ok())
        .collect()
}

impl<C: Clock> RoleSync<'_, C> {
    /// Every mapping, readable or broken. Fails only when the collection cannot be listed.
    pub async fn role_mappings(&self) -> Result<RoleMappings, StepError> {
        self.app.plan_catalogue().await
    }

    /// The readable mappings only (for listing and checks; role changes use [`Self::role_mappings`]).
    pub async fn load_mappings(&self) -> Result<Vec<RoleMapping>, StepError> {
        Ok(self.role_mappings().await?.readable)
    }
}

impl<C: Clock> crate::App<'_, C> {
    /// The plans catalogue: every mapping, readable or broken, in one call (mappings are few). Fails only
    /// when the collection cannot be listed.
    pub async fn plan_catalogue(&self) -> Result<RoleMappings, StepError> {
        let settings = self.settings;
        let docs = self
            .appwrite
            .list_all_documents(&settings.database_id, &settings.collections.discord_role_mappings, &[], MAPPINGS_PAGE)
            .await
            .map_err(|e| StepError::appwrite("reading the role mappings", &e))?;
        let mut mappings = RoleMappings::default();
        for doc in &docs {
            match RoleMappings::parse(doc) {
                Ok((mapping, offer)) => {
                    mappings.readable.push(mapping);
                    mappings.offers.push(offer);
                }
                Err(broken) => {
                    tracing::warn!(
                        mapping = %broken.document_id,
                        reason = %broken.reason,
                        readable_roles = broken.role_ids.len(),
                        "a role mapping cannot be read: its readable roles stay managed and are never granted"
                    );
                    mappings.broken.push(broken);
                }
            }
        }
        Ok(mappings)
    }
}

impl<C: Clock> crate::App<'_, C> {
    /// Sets the roles a plan grants in a guild (one mapping per plan; `plan` is unique).
    pub async fn set_role_mapping(&self, plan: &str, guild: GuildId, roles: &[RoleId]) -> Result<(), StepError> {
        self.set_plan(plan, guild, &PlanUpdate { roles: Some(roles.to_vec()), ..PlanUpdate::default() }).await
    }

    /// Edits a plan of the catalogue: only the fields `update` gives are written. A mapping of the plan
    /// that already exists is updated in place whatever its document id: the replaced deployment created
    /// its mappings under ids of its own, and the unique index on `plan` refuses a second one. A new plan
    /// starts with no roles (`roleIdsJson` `[]`) in `guild`.
    pub async fn set_plan(&self, plan: &str, guild: GuildId, update: &PlanUpdate) -> Result<(), StepError> {
        let mut fields = serde_json::Map::new();
        fields.insert("plan".into(), json!(plan));
        if let Some(roles) = &update.roles {
            let ids: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
            fields.insert("guildId".into(), json!(guild.to_string()));
            fields.insert("roleIdsJson".into(), json!(serde_json::to_string(&ids).unwrap_or_default()));
        }
        if let Some(products) = &update.sellapp_products {
            fields.insert("sellappProductIdsJson".into(), json!(serde_json::to_string(products).unwrap_or_default()));
        }
        if let Some(variants) = &update.sellapp_variants {
            fields.insert("sellappVariantIdsJson".into(), json!(serde_json::to_string(variants).unwrap_or_default()));
        }
        if let Some(prices) = &update.stripe_prices {
            fields.insert("stripePriceIdsJson".into(), json!(serde_json::to_string(prices).unwrap_or_default()));
        }
        if let Some(duration) = update.duration {
            fields.insert("durationSeconds".into(), json!(duration.map(|d| d.num_seconds())));
        }
        if let Some(tier) = &update.tier {
            fields.insert("tierGroup".into(), json!(tier.as_ref().map(|t| t.group.clone())));
            fields.insert("tierRank".into(), json!(tier.as_ref().map(|t| t.rank)));
        }
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.discord_role_mappings);
        let existing = || async {
            self.appwrite
                .list_documents(db, collection, &[Query::equal("plan", [plan]), Query::limit(1)])
                .await
                .map(|list| list.documents.into_iter().next().map(|d| d.id))
                .map_err(|e| StepError::appwrite("finding the plan's mapping", &e))
        };
        let data = &serde_json::Value::Object(fields.clone());
        let update_doc = |id: String| async move {
            self.appwrite
                .update_document(db, collection, &id, data)
                .await
                .map(drop)
                .map_err(|e| StepError::appwrite("updating the role mapping", &e))
        };
        if let Some(id) = existing().await? {
            return update_doc(id).await;
        }
        let mut created = fields;
        created.entry("guildId").or_insert_with(|| json!(guild.to_string()));
        created.entry("roleIdsJson").or_insert_with(|| json!("[]"));
        let id = derived_document_id(&format!("mapping:{plan}"));
        match self
            .appwrite
            .create_document(db, collection, id.as_str(), &serde_json::Value::Object(created), None)
            .await
        {
            Ok(_) => Ok(()),
            // Created meanwhile (same id, or another id with the same plan): update that one.
            Err(e) if e.is_conflict() => match existing().await? {
                Some(id) => update_doc(id).await,
                None => Err(StepError::appwrite("writing the role mapping", &e)),
            },
            Err(e) => Err(StepError::appwrite("writing the role mapping", &e)),
        }
    }
}

/// What `tollgate plans set` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanUpdate {
    pub roles: Option<Vec<RoleId>>,
    pub sellapp_products: Option<Vec<String>>,
    pub sellapp_variants: Option<Vec<String>>,
    pub stripe_prices: Option<Vec<String>>,
    /// `Some(None)`: make purchases open-ended again.
    pub duration: Option<Option<chrono::Duration>>,
    /// `Some(None)`: leave the tier group.
    pub tier: Option<Option<Tier>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_role_list_still_names_its_roles() {
        let ids = salvage_role_ids(r#"["1100000000000000002", "11000000000000000"#);
        assert_eq!(ids.len(), 2);
        assert!(salvage_role_ids("not json at all").is_empty());
        assert!(salvage_role_ids("[12, 345]").is_empty(), "short numbers are not role ids");
    }
}

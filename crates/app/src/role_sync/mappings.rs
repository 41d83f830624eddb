//! `discord_role_mappings`: plan → guild + role ids (`roleIdsJson`). A mapping that cannot be read is
//! skipped with a warning rather than failing every sync; `tollgate doctor` (issue 5) reports it.

use super::RoleSync;
use crate::error::StepError;
use std::collections::BTreeSet;
use tollgate_core::{Clock, GuildId, RoleId, RoleMapping};

/// Mappings are few; one page holds them all.
const MAPPINGS_PAGE: u32 = 500;

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct MappingRecord {
    plan: Option<String>,
    guild_id: Option<String>,
    role_ids_json: Option<String>,
}

impl<C: Clock> RoleSync<'_, C> {
    pub async fn load_mappings(&self) -> Result<Vec<RoleMapping>, StepError> {
        let settings = self.app.settings;
        let docs = self
            .app
            .appwrite
            .list_all_documents(&settings.database_id, &settings.collections.discord_role_mappings, &[], MAPPINGS_PAGE)
            .await
            .map_err(|e| StepError::appwrite("reading the role mappings", &e))?;
        let mut mappings = Vec::new();
        for doc in docs {
            let record = doc.decode::<MappingRecord>().unwrap_or_default();
            let parsed = (|| {
                let plan = record.plan?;
                let guild_id = GuildId::parse(record.guild_id.as_deref()?).ok()?;
                let ids: Vec<String> = serde_json::from_str(record.role_ids_json.as_deref()?).ok()?;
                let role_ids = ids.iter().map(|id| RoleId::parse(id)).collect::<Result<BTreeSet<_>, _>>().ok()?;
                Some(RoleMapping { plan, guild_id, role_ids })
            })();
            match parsed {
                Some(mapping) => mappings.push(mapping),
                None => tracing::warn!(mapping = %doc.id, "skipping a role mapping that cannot be read"),
            }
        }
        Ok(mappings)
    }
}

impl<C: Clock> crate::App<'_, C> {
    /// Sets the roles a plan grants in a guild (one mapping per plan; `plan` is unique).
    pub async fn set_role_mapping(&self, plan: &str, guild: GuildId, roles: &[RoleId]) -> Result<(), StepError> {
        let ids: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let data = serde_json::json!({
            "plan": plan,
            "guildId": guild.to_string(),
            "roleIdsJson": serde_json::to_string(&ids).unwrap_or_default(),
        });
        let settings = self.settings;
        let id = tollgate_core::derived_document_id(&format!("mapping:{plan}"));
        self.appwrite
            .upsert_document(&settings.database_id, &settings.collections.discord_role_mappings, id.as_str(), &data)
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("writing the role mapping", &e))
    }
}

//! What `tollgate doctor` says about the plans catalogue against recent Sell.app purchases: products that
//! found their plan only by title (the replaced deployment's rule: a rename would unmap them) or that no
//! plan lists at all (they received `SELLAPP_DEFAULT_PLAN`, or a plan no mapping knows).

use crate::error::StepError;
use crate::ledger::{decode_entries, PROVIDER_SELLAPP};
use crate::App;
use std::collections::BTreeSet;
use tollgate_appwrite::Query;
use tollgate_core::{Clock, PlanMatch};

/// Purchases examined: the most recent ones.
pub const RECENT_PURCHASES: u32 = 100;

/// Products of recent purchases that need an admin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogueGaps {
    /// `productRef → plan`, for purchases matched by title only.
    pub by_title: BTreeSet<(String, String)>,
    /// Products (or titles) of purchases whose plan is not in the catalogue, or that fell to the default.
    pub unmapped: BTreeSet<(String, String)>,
    pub examined: usize,
}

impl<C: Clock> App<'_, C> {
    /// Examines the [`RECENT_PURCHASES`] most recent Sell.app entitlements (two calls).
    pub async fn catalogue_gaps(&self) -> Result<CatalogueGaps, StepError> {
        let catalogue = self.plan_catalogue().await?;
        let plans: BTreeSet<&str> = catalogue.readable.iter().map(|m| m.plan.as_str()).collect();
        let queries = [
            Query::equal("provider", [PROVIDER_SELLAPP]),
            Query::order_desc("grantedAt"),
            Query::limit(RECENT_PURCHASES),
        ];
        let docs = self
            .appwrite
            .list_documents(&self.settings.database_id, &self.settings.collections.entitlements, &queries)
            .await
            .map_err(|e| StepError::appwrite("listing recent Sell.app purchases", &e))?;
        let entries = decode_entries(&docs.documents)?;
        let mut gaps = CatalogueGaps { examined: entries.len(), ..CatalogueGaps::default() };
        for entry in &entries {
            let Some(grant) = &entry.entitlement.grant else { continue };
            let product = entry.product_ref.clone().unwrap_or_else(|| "(no product named)".to_owned());
            let item = (product, grant.plan.clone());
            if !plans.contains(grant.plan.as_str()) || entry.plan_match.as_deref() == Some(PlanMatch::Default.as_str())
            {
                gaps.unmapped.insert(item);
            } else if entry.plan_match.as_deref() == Some(PlanMatch::Title.as_str()) {
                gaps.by_title.insert(item);
            }
        }
        Ok(gaps)
    }
}

//! Projections: what the rest of the world reads about a user's access, made equal to the access their
//! entitlements give ([`tollgate_core::derive_access`]). One step, [`App::project_user`], writes the
//! `subscriptions` document (the fields the replaced deployment and web apps read) and the `paid`
//! membership; Discord roles follow in role-sync, which runs this step first. Nothing else writes these.
//!
//! The step is idempotent and converges under concurrency: it reads the entitlements, writes, then reads
//! them again; if they changed meanwhile (another event landed), it projects again. So of two projections
//! racing, the one that finishes last has seen the final ledger.
//!
//! ## Documents written before the ledger
//! A `subscriptions` document without `projectedAt` was written by the replaced deployment (or by
//! Tollgate before the ledger). If it is active and the ledger knows nothing of its order, it is imported
//! as an entitlement (`legacy:{userId}`) before access is derived, so an upgrade never takes access away.

use crate::error::StepError;
use crate::ledger::{legacy_source, LedgerChange, LedgerEntry, PROVIDER_LEGACY};
use crate::records::{parse_timestamp, timestamp, SubscriptionRecord};
use crate::settings::PAID_TEAM_ROLE;
use crate::App;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use tollgate_appwrite::Query;
use tollgate_core::{
    derive_access, Access, AppwriteId, Clock, Email, Entitlement, Grant, LedgerEvent, SubscriptionStatus,
};

/// The subrequests of one projection pass with nothing to import and no contention: the entitlements,
/// the `subscriptions` document, its write, the membership (find + delete, or create) and the ledger's
/// re-read, plus one of margin. An import or a contention retry costs more; past the invocation's budget
/// it is refused, and the projection (idempotent) runs again from the outbox.
pub const PROJECTION_COST: u32 = 7;
/// Projections retried when the ledger changed while one was written.
const PROJECTION_ATTEMPTS: u32 = 3;
/// Users whose projection reconciliation queues per run (each costs one or two writes).
pub const ACCESS_DRIFT_PER_RUN: usize = 25;
/// Calls kept for what reconciliation does after queueing drifted users (the profiles' listing, a member
/// page, the cursor's save).
const DRIFT_RESERVE: u32 = 3;
/// Memberships and subscriptions read per page.
const LISTING_PAGE: u32 = tollgate_appwrite::MAX_PAGE_SIZE;

/// What [`App::reconcile_access`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessDrift {
    /// Users with access now.
    pub with_access: usize,
    /// Users whose membership or subscription document disagreed, and were queued.
    pub queued: Vec<String>,
    /// Disagreeing users left for the next run (over the per-run bound).
    pub deferred: usize,
}

/// What a projection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projected {
    pub access: Access,
    pub entries: Vec<LedgerEntry>,
}

/// The `subscriptions` document for `access`, given what is stored.
fn subscription_data(
    user_id: &AppwriteId,
    access: &Access,
    entries: &[LedgerEntry],
    stored: Option<&SubscriptionRecord>,
) -> serde_json::Value {
    let status = if access.has_access() { SubscriptionStatus::Active } else { SubscriptionStatus::Inactive };
    // Without access the plan stays on record: the web app shows what the user had.
    let plan = access
        .primary_plan()
        .map(str::to_owned)
        .or_else(|| stored.and_then(|s| s.plan.clone()))
        .or_else(|| entries.iter().rev().find_map(|e| e.entitlement.grant.as_ref().map(|g| g.plan.clone())));
    let giving: Vec<&LedgerEntry> = match access.primary_plan() {
        Some(primary) => {
            entries.iter().filter(|e| access.plans[primary].sources.contains(&e.entitlement.source)).collect()
        }
        None => Vec::new(),
    };
    let order =
        giving.iter().find_map(|e| e.order_id.clone()).or_else(|| stored.and_then(|s| s.sellapp_order_id.clone()));
    let provider = giving.first().map(|e| e.provider.clone());
    let plans: Vec<&String> = access.plans.keys().collect();
    json!({
        "userId": user_id.as_str(),
        "status": status.as_str(),
        "plan": plan,
        "sellappOrderId": order,
        "currentPeriodEnd": access.ends_at().map(timestamp),
        "provider": provider,
        "plansJson": serde_json::to_string(&plans).unwrap_or_default(),
    })
}

/// Does the stored document already say what `wanted` says?
fn same_projection(stored: Option<&SubscriptionRecord>, wanted: &serde_json::Value) -> bool {
    let Some(stored) = stored else { return false };
    let end = |raw: Option<&str>| raw.and_then(parse_timestamp);
    stored.projected_at.is_some()
        && stored.status.as_deref() == wanted["status"].as_str()
        && stored.plan.as_deref() == wanted["plan"].as_str()
        && stored.plans_json.as_deref() == wanted["plansJson"].as_str()
        && stored.sellapp_order_id.as_deref() == wanted["sellappOrderId"].as_str()
        && end(stored.current_period_end.as_deref()) == end(wanted["currentPeriodEnd"].as_str())
}

impl<C: Clock> App<'_, C> {
    /// Makes the user's `subscriptions` document and `paid` membership equal to their derived access.
    pub async fn project_user(&self, user_id: &AppwriteId) -> Result<Projected, StepError> {
        // What the previous pass projected; the pass ends when a fresh read of the ledger equals it.
        let mut projected: Option<Projected> = None;
        for _ in 0..=PROJECTION_ATTEMPTS {
            let entries = self.user_entitlements(user_id).await?;
            if let Some(done) = projected.take() {
                if fingerprint(&done.entries) == fingerprint(&entries) {
                    return Ok(done);
                }
                tracing::info!(user = %user_id, "entitlements changed during the projection; projecting again");
            }
            let stored = self.read_subscription(user_id).await?;
            if self.import_legacy_subscription(user_id, stored.as_ref(), &entries).await? {
                continue; // read the ledger again, with the import
            }
            let access = self.access_of(&entries);
            let wanted = subscription_data(user_id, &access, &entries, stored.as_ref());
            if !same_projection(stored.as_ref(), &wanted) {
                self.write_subscription(user_id, wanted).await?;
            }
            self.project_membership(user_id, access.has_access()).await?;
            projected = Some(Projected { access, entries });
        }
        Err(StepError::transient(
            "projection_contention",
            format!("the entitlements of {user_id} kept changing while projecting them"),
        ))
    }

    fn access_of(&self, entries: &[LedgerEntry]) -> Access {
        let list: Vec<Entitlement> = entries.iter().map(|e| e.entitlement.clone()).collect();
        derive_access(&list, self.clock.now(), self.settings.access_grace)
    }

    /// The access a user's entitlements give now, without writing anything.
    pub async fn derived_access(&self, user_id: &AppwriteId) -> Result<(Access, Vec<LedgerEntry>), StepError> {
        let entries = self.user_entitlements(user_id).await?;
        Ok((self.access_of(&entries), entries))
    }

    async fn write_subscription(&self, user_id: &AppwriteId, mut data: serde_json::Value) -> Result<(), StepError> {
        let now = timestamp(self.clock.now());
        data["projectedAt"] = json!(now);
        data["changedAt"] = json!(now);
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.subscriptions);
        self.appwrite
            .upsert_document(db, collection, user_id.as_str(), &data)
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("writing the subscription", &e))
    }

    async fn project_membership(&self, user_id: &AppwriteId, has_access: bool) -> Result<(), StepError> {
        let team = &self.settings.paid_team_id;
        if has_access {
            self.appwrite
                .ensure_membership(team, user_id, &[PAID_TEAM_ROLE])
                .await
                .map(drop)
                .map_err(|e| StepError::appwrite("adding the paid membership", &e))
        } else {
            self.appwrite
                .remove_user_from_team(team, user_id)
                .await
                .map(drop)
                .map_err(|e| StepError::appwrite("removing the paid membership", &e))
        }
    }

    /// The user's `subscriptions` document, if any. One that does not decode is treated as unknown:
    /// the projection overwrites it (it holds nothing the ledger does not) and nothing is imported from it.
    pub async fn read_subscription(&self, user_id: &AppwriteId) -> Result<Option<SubscriptionRecord>, StepError> {
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.subscriptions);
        match self.appwrite.get_document(db, collection, user_id.as_str()).await {
            Ok(doc) => match doc.decode::<SubscriptionRecord>() {
                Ok(record) => Ok(Some(SubscriptionRecord { updated_at: Some(doc.updated_at), ..record })),
                Err(e) => {
                    tracing::error!(user = %user_id, error = %e, "a subscriptions document does not decode");
                    Ok(Some(SubscriptionRecord { unreadable: true, ..SubscriptionRecord::default() }))
                }
            },
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(StepError::appwrite("reading the subscription", &err)),
        }
    }

    /// Imports an active subscription written before the ledger. `true` if an entitlement was created.
    async fn import_legacy_subscription(
        &self,
        user_id: &AppwriteId,
        stored: Option<&SubscriptionRecord>,
        entries: &[LedgerEntry],
    ) -> Result<bool, StepError> {
        let Some(stored) = stored.filter(|s| s.projected_at.is_none() && !s.unreadable) else { return Ok(false) };
        if stored.status.as_deref() != Some(SubscriptionStatus::Active.as_str()) {
            return Ok(false);
        }
        let source = legacy_source(user_id);
        let known = |e: &&LedgerEntry| {
            e.entitlement.source == source
                || (stored.sellapp_order_id.is_some() && e.order_id == stored.sellapp_order_id)
        };
        if entries.iter().any(|e| known(&e)) {
            return Ok(false);
        }
        let at: DateTime<Utc> = stored.updated_at.unwrap_or_else(|| self.clock.now());
        let plan = stored.plan.clone().unwrap_or_else(|| self.settings.sellapp_default_plan.clone());
        let change = LedgerChange {
            source,
            provider: PROVIDER_LEGACY,
            email: stored.email.as_deref().and_then(|raw| Email::parse(raw).ok()),
            user_id: Some(user_id.clone()),
            order_id: stored.sellapp_order_id.clone(),
            store: None,
            event: LedgerEvent::Grant {
                grant: Grant {
                    plan,
                    starts_at: None,
                    ends_at: stored.current_period_end.as_deref().and_then(parse_timestamp),
                    at,
                },
                reinstates: false,
            },
            event_key: "import:subscriptions".to_owned(),
            annotations: Vec::new(),
        };
        tracing::info!(user = %user_id, "importing a subscription written before the ledger");
        self.record_ledger_event(&change).await.map(|r| r.changed)
    }
}

impl<C: Clock> App<'_, C> {
    /// The plans each user has access to now, from the entitlements that may grant (one listing).
    pub async fn plans_by_user(&self) -> Result<HashMap<String, BTreeSet<String>>, StepError> {
        let entries = self.entitlements_that_may_grant().await?;
        let mut by_user: HashMap<String, Vec<Entitlement>> = HashMap::new();
        for entry in entries {
            if let Some(user) = entry.user_id {
                by_user.entry(user).or_default().push(entry.entitlement);
            }
        }
        let (now, grace) = (self.clock.now(), self.settings.access_grace);
        Ok(by_user
            .into_iter()
            .map(|(user, list)| (user, derive_access(&list, now, grace).plans.into_keys().collect::<BTreeSet<_>>()))
            .filter(|(_, plans)| !plans.is_empty())
            .collect())
    }

    /// Queues the projection of every user whose `paid` membership or `subscriptions` status disagrees
    /// with their access, in both directions: an entitlement that ended since the last run, a membership
    /// added or removed by hand, a projection that failed half-way. Also a user who keeps access but whose
    /// document names other plans (one of two plans ended: the web app would still show it; found by
    /// `cargo xtask chaos`, seed 956). At most `limit` per run.
    pub async fn reconcile_access(
        &self,
        plans_by_user: &HashMap<String, BTreeSet<String>>,
        limit: usize,
    ) -> Result<AccessDrift, StepError> {
        let with_access: BTreeSet<&str> = plans_by_user.keys().map(String::as_str).collect();
        let members = self.paid_member_ids().await?;
        let active_plans = self.active_subscription_plans().await?;
        let members: BTreeSet<&str> = members.iter().map(String::as_str).collect();
        let active: BTreeSet<&str> = active_plans.keys().map(String::as_str).collect();
        // A stored `plansJson` that does not decode counts as different (the projection rewrites it); a
        // document without one (written before it existed) is judged by its status alone.
        let other_plans = plans_by_user
            .iter()
            .filter(|(user, plans)| {
                active_plans.get(*user).and_then(Option::as_ref).is_some_and(|stored| stored.as_ref() != Some(*plans))
            })
            .map(|(user, _)| user.as_str());
        let drifted: BTreeSet<&str> = with_access
            .symmetric_difference(&members)
            .chain(with_access.symmetric_difference(&active))
            .copied()
            .chain(other_plans)
            .collect();
        let mut report = AccessDrift { with_access: with_access.len(), ..AccessDrift::default() };
        for user in &drifted {
            // A queue write is up to 3 calls; what does not fit waits for the next run (still drifted).
            if report.queued.len() >= limit || !self.appwrite.subrequests().fits(3 + DRIFT_RESERVE) {
                report.deferred += 1;
                continue;
            }
            match AppwriteId::parse(user) {
                Ok(user_id) => {
                    self.request_role_sync(&user_id).await?;
                    report.queued.push((*user).to_owned());
                }
                Err(e) => tracing::error!(user, error = %e, "a user id Tollgate cannot use"),
            }
        }
        Ok(report)
    }

    async fn paid_member_ids(&self) -> Result<Vec<String>, StepError> {
        let team = &self.settings.paid_team_id;
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut queries = vec![Query::limit(LISTING_PAGE)];
            if let Some(after) = &cursor {
                queries.push(Query::cursor_after(after.as_str()));
            }
            let page = self
                .appwrite
                .list_memberships(team, &queries)
                .await
                .map_err(|e| StepError::appwrite("listing paid memberships", &e))?;
            let full = page.memberships.len() as u32 >= LISTING_PAGE;
            cursor = page.memberships.last().map(|m| m.id.clone());
            ids.extend(page.memberships.into_iter().map(|m| m.user_id));
            if !full {
                return Ok(ids);
            }
        }
    }

    /// Users with an active `subscriptions` document, and the plans it names: `None` without `plansJson`,
    /// `Some(None)` when it does not decode.
    #[allow(clippy::type_complexity)]
    async fn active_subscription_plans(&self) -> Result<HashMap<String, Option<Option<BTreeSet<String>>>>, StepError> {
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.subscriptions);
        let docs = self
            .appwrite
            .list_all_documents(
                db,
                collection,
                &[Query::equal("status", [SubscriptionStatus::Active.as_str()]), Query::select(["$id", "plansJson"])],
                LISTING_PAGE,
            )
            .await
            .map_err(|e| StepError::appwrite("listing active subscriptions", &e))?;
        Ok(docs
            .into_iter()
            .map(|d| {
                let plans = d.data.get("plansJson").and_then(|v| v.as_str()).map(|raw| serde_json::from_str(raw).ok());
                (d.id, plans)
            })
            .collect())
    }
}

fn fingerprint(entries: &[LedgerEntry]) -> Vec<(&str, DateTime<Utc>)> {
    let mut list: Vec<(&str, DateTime<Utc>)> = entries.iter().map(|e| (e.id.as_str(), e.updated_at)).collect();
    list.sort();
    list
}

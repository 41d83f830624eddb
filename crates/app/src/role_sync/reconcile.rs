//! Reconciliation: the whole guild compared with Appwrite, a bounded slice per run. Members are read
//! 1,000 at a time in id order; linked users' access is derived from two listings (profiles with a
//! Discord id, the entitlements that may grant access), so a guild already in the right state costs one
//! Discord call per 1,000 members and no writes. It revokes ended access, re-grants members who came
//! back, and strips managed roles from members with no access. Where it stopped is kept in `sync_state`,
//! so the next run resumes there. Before the walk, the same listing finds users whose `paid` membership
//! or `subscriptions` document disagrees with their access (ended entitlements, drift in both
//! directions) and queues their projection ([`crate::App::reconcile_access`]).

use super::RoleSync;
use crate::error::StepError;
use crate::projection::{AccessDrift, ACCESS_DRIFT_PER_RUN};
use crate::records::timestamp;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use tollgate_appwrite::Query;
use tollgate_core::{desired_roles, managed_roles, Clock, DiscordUserId, RoleId};
use tollgate_discord::GUILD_MEMBERS_PAGE_LIMIT;

/// Member pages per run: 10,000 members.
pub const RECONCILE_PAGES_PER_RUN: u32 = 10;
const LISTING_PAGE: u32 = 1_000;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub members_seen: usize,
    /// Role additions and removals made.
    pub role_changes: usize,
    pub members_changed: usize,
    /// The walk reached the last member (the next run starts from the first again).
    pub pass_finished: bool,
    /// Why the run stopped early, if it did (rate limit, Discord unavailable, permissions).
    pub stopped: Option<String>,
    /// Users whose `paid` membership or `subscriptions` document disagreed with their access.
    pub access_drift: AccessDrift,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Linked {
    discord_user_id: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Cursor {
    cursor: Option<String>,
}

impl<C: Clock> RoleSync<'_, C> {
    fn state_id(&self) -> String {
        format!("guild-{}", self.guild)
    }

    /// The plans each linked Discord account should have, from the entitlements that may grant access
    /// (revoked ones are not read at all).
    async fn access_by_discord_user(
        &self,
        plans_by_user: &HashMap<String, BTreeSet<String>>,
    ) -> Result<HashMap<DiscordUserId, BTreeSet<String>>, StepError> {
        let settings = self.app.settings;
        let profiles = self
            .app
            .appwrite
            .list_all_documents(
                &settings.database_id,
                &settings.collections.profiles,
                &[Query::is_not_null("discordUserId")],
                LISTING_PAGE,
            )
            .await
            .map_err(|e| StepError::appwrite("listing linked profiles", &e))?;
        let mut access = HashMap::new();
        for doc in profiles {
            let linked = doc
                .decode::<Linked>()
                .ok()
                .and_then(|l| l.discord_user_id)
                .and_then(|raw| DiscordUserId::parse(&raw).ok());
            let Some(discord) = linked else {
                // Its member cannot be matched; the member's roles then follow "no access", which only
                // ever removes managed roles.
                tracing::error!(profile = %doc.id, "a linked profile does not decode");
                continue;
            };
            access.insert(discord, plans_by_user.get(&doc.id).cloned().unwrap_or_default());
        }
        Ok(access)
    }

    async fn load_cursor(&self) -> Option<DiscordUserId> {
        let settings = self.app.settings;
        let doc = self
            .app
            .appwrite
            .get_document(&settings.database_id, &settings.collections.sync_state, &self.state_id())
            .await
            .ok()?;
        DiscordUserId::parse(&doc.decode::<Cursor>().ok()?.cursor?).ok()
    }

    async fn save_cursor(&self, cursor: Option<DiscordUserId>, finished: bool) -> Result<(), StepError> {
        let settings = self.app.settings;
        let mut data = json!({ "cursor": cursor.map(|c| c.to_string()), "updatedAt": timestamp(self.app.clock.now()) });
        if finished {
            data["passFinishedAt"] = json!(timestamp(self.app.clock.now()));
        }
        self.app
            .appwrite
            .upsert_document(&settings.database_id, &settings.collections.sync_state, &self.state_id(), &data)
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("saving the reconciliation cursor", &e))
    }

    /// Walks up to `max_pages` pages of members from where the last run stopped.
    pub async fn reconcile_once(&self, max_pages: u32) -> Result<ReconcileReport, StepError> {
        let mut report = ReconcileReport::default();
        let mappings = self.load_mappings().await?;
        let managed = managed_roles(&mappings, self.guild);
        let plans_by_user = self.app.plans_by_user().await?;
        report.access_drift = self.app.reconcile_access(&plans_by_user, ACCESS_DRIFT_PER_RUN).await?;
        let access = self.access_by_discord_user(&plans_by_user).await?;
        let mut cursor = self.load_cursor().await;
        for _ in 0..max_pages {
            let page = match self.discord.list_members(self.guild, GUILD_MEMBERS_PAGE_LIMIT, cursor).await {
                Ok(page) => page,
                Err(e) => {
                    report.stopped = Some(e.to_string());
                    break;
                }
            };
            let full = page.len() >= usize::from(GUILD_MEMBERS_PAGE_LIMIT);
            for member in &page {
                report.members_seen += 1;
                let plans = access.get(&member.user.id).into_iter().flatten();
                let desired = desired_roles(&mappings, self.guild, plans.map(String::as_str));
                let current: BTreeSet<RoleId> = member.roles.iter().copied().collect();
                let changes = tollgate_core::role_diff(&current, &desired, &managed).len();
                if changes == 0 {
                    continue;
                }
                match self.apply(member.user.id, &current, desired, &managed).await? {
                    super::SyncOutcome::Applied { .. } => {
                        report.role_changes += changes;
                        report.members_changed += 1;
                    }
                    super::SyncOutcome::Deferred { reason, .. } | super::SyncOutcome::Failed { message: reason } => {
                        report.stopped = Some(reason);
                        break;
                    }
                    _ => {}
                }
                cursor = Some(member.user.id);
            }
            if report.stopped.is_some() {
                break;
            }
            cursor = page.last().map(|m| m.user.id).or(cursor);
            if !full {
                report.pass_finished = true;
                cursor = None;
                break;
            }
        }
        self.save_cursor(cursor, report.pass_finished).await?;
        Ok(report)
    }
}

//! Reconciliation: the whole guild compared with Appwrite, a bounded slice per run. Members are read
//! 1,000 at a time in id order; linked users' access is derived from two listings (profiles with a
//! Discord id, the entitlements that may grant access), so a guild already in the right state costs one
//! Discord call per 1,000 members and no writes. It revokes ended access, re-grants members who came
//! back, and strips managed roles from members with no access. Where it stopped is kept in `sync_state`,
//! so the next run resumes there. Before the walk, the same listing finds users whose `paid` membership
//! or `subscriptions` document disagrees with their access (ended entitlements, drift in both
//! directions) and queues their projection ([`crate::App::reconcile_access`]).
//!
//! A member whose roles cannot be changed for a reason of their own (50013 for a role above the bot, a
//! deleted role, any other refusal that retrying will not fix) is skipped and reported
//! ([`ReconcileReport::skipped`]), and the walk goes on: stopping there would stop every later run at the
//! same member, and nobody after them would ever be reconciled. What is not about one member (a rate limit,
//! Discord unavailable, the bot token refused) stops the run, and the cursor is saved just before the member
//! it stopped at, so the next run resumes there. Refusals count against the Discord client's invalid-request
//! budget, which stops the run (as a rate limit) long before Discord would ban the bot.
//!
//! [`RoleSync::reconcile_from`] is the same walk from any cursor, without touching the cron's: `tollgate
//! sync --all` walks from the first member to the last with a cursor of its own.

use super::RoleSync;
use crate::error::StepError;
use crate::projection::{AccessDrift, ACCESS_DRIFT_PER_RUN};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use tollgate_appwrite::Query;
use tollgate_core::{desired_roles, role_diff, Clock, DiscordUserId, RoleId};
use tollgate_discord::{DiscordError, GUILD_MEMBERS_PAGE_LIMIT};

/// Member pages per run: 10,000 members (fewer when the subrequest budget runs out first).
pub const RECONCILE_PAGES_PER_RUN: u32 = 10;
const LISTING_PAGE: u32 = tollgate_appwrite::MAX_PAGE_SIZE;
/// What a run costs before its first member page, with up to 5,000 users of each kind: the cursor, the
/// mappings, the entitlements that may grant, the paid memberships, the active subscriptions and the
/// linked profiles (one page each), and the cursor's save at the end.
pub const RECONCILE_FIXED_COST: u32 = 7;
/// The cursor's save, kept in reserve by every later unit.
const CURSOR_SAVE: u32 = 1;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub members_seen: usize,
    /// Role additions and removals made.
    pub role_changes: usize,
    pub members_changed: usize,
    /// The walk reached the last member (the next run starts from the first again).
    pub pass_finished: bool,
    /// Why the run stopped early, if it did (rate limit, Discord unavailable, the bot token refused).
    pub stopped: Option<String>,
    /// The run stopped (or did not start) because its next unit did not fit the subrequest budget; the
    /// cursor is saved before the member it did not reach.
    pub budget_spent: bool,
    /// Users whose `paid` membership or `subscriptions` document disagreed with their access.
    pub access_drift: AccessDrift,
    /// When a run stopped by a rate limit or an outage may try again.
    pub retry_at: Option<DateTime<Utc>>,
    /// Where the next run resumes (the last member dealt with); `None` after a finished pass.
    pub resume_after: Option<DiscordUserId>,
    /// Members whose roles could not be changed, passed over so the walk goes on.
    pub skipped: Vec<SkippedMember>,
    /// Mappings none of whose roles can be read (`document id: reason`): their roles are not managed.
    pub unreadable_mappings: Vec<String>,
}

/// A member reconciliation could not make right, and why (an admin's fix, not a retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedMember {
    pub discord_user: DiscordUserId,
    pub reason: String,
}

/// Whether a Discord error is about the whole run rather than the member it happened on.
fn stops_the_run(error: &DiscordError) -> bool {
    error.is_retryable() || matches!(error, DiscordError::Unauthorized)
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Linked {
    discord_user_id: Option<String>,
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
                &[Query::is_not_null("discordUserId"), Query::select(["$id", "discordUserId"])],
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

    /// Where the cron's walk resumes. Unreadable or unavailable: from the first member (safe: it only
    /// checks members again).
    async fn load_cursor(&self) -> Option<DiscordUserId> {
        let saved = self.app.load_cursor(&self.state_id()).await.ok().flatten()?;
        DiscordUserId::parse(&saved).ok()
    }

    async fn save_cursor(&self, cursor: Option<DiscordUserId>, finished: bool) -> Result<(), StepError> {
        let cursor = cursor.map(|c| c.to_string());
        self.app.save_cursor(&self.state_id(), cursor.as_deref(), finished).await
    }

    /// Walks up to `max_pages` pages of members from where the last run stopped (the cron's cursor).
    pub async fn reconcile_once(&self, max_pages: u32) -> Result<ReconcileReport, StepError> {
        if !self.app.appwrite.subrequests().fits(RECONCILE_FIXED_COST + 1) {
            return Ok(ReconcileReport { budget_spent: true, ..ReconcileReport::default() });
        }
        let start = self.load_cursor().await;
        let report = self.reconcile_from(start, max_pages).await?;
        self.save_cursor(report.resume_after, report.pass_finished).await?;
        Ok(report)
    }

    /// Walks up to `max_pages` pages of members after `start` (`None`: from the first member). Where to
    /// resume is in the report; no cursor is read or saved.
    pub async fn reconcile_from(
        &self,
        start: Option<DiscordUserId>,
        max_pages: u32,
    ) -> Result<ReconcileReport, StepError> {
        let mut report = ReconcileReport::default();
        let mappings = self.role_mappings().await?;
        report.unreadable_mappings = mappings.unreadable_report();
        let managed = mappings.managed(self.guild);
        let plans_by_user = self.app.plans_by_user().await?;
        report.access_drift = self.app.reconcile_access(&plans_by_user, ACCESS_DRIFT_PER_RUN).await?;
        let access = self.access_by_discord_user(&plans_by_user).await?;
        let mut cursor = start;
        let budget = self.app.appwrite.subrequests();
        'pages: for _ in 0..max_pages {
            if !budget.fits(1 + CURSOR_SAVE) {
                report.budget_spent = true;
                break;
            }
            let page = match self.discord.list_members(self.guild, GUILD_MEMBERS_PAGE_LIMIT, cursor).await {
                Ok(page) => page,
                Err(e) => {
                    report.stop(self.retry_time(&e), e);
                    break;
                }
            };
            let full = page.len() >= usize::from(GUILD_MEMBERS_PAGE_LIMIT);
            for member in &page {
                let plans = access.get(&member.user.id).into_iter().flatten();
                let desired = desired_roles(&mappings.readable, self.guild, plans.map(String::as_str));
                let current: BTreeSet<RoleId> = member.roles.iter().copied().collect();
                let changes = role_diff(&current, &desired, &managed);
                if !budget.fits((changes.add.len() + changes.remove.len()) as u32 + CURSOR_SAVE) {
                    // Not past this member: the next run starts with them.
                    report.budget_spent = true;
                    break 'pages;
                }
                match self.change_roles(member.user.id, &current, &desired, &managed).await {
                    Ok((0, 0)) => {}
                    Ok((added, removed)) => {
                        report.role_changes += added + removed;
                        report.members_changed += 1;
                    }
                    // Left the guild since the page was read: nothing to change.
                    Err(DiscordError::UnknownMember) => {}
                    Err(e) if stops_the_run(&e) => {
                        // Not past this member: the next run starts with them.
                        report.stop(self.retry_time(&e), e);
                        break 'pages;
                    }
                    Err(e) => {
                        tracing::warn!(member = %member.user.id, error = %e, "skipping a member whose roles cannot be changed");
                        report.skipped.push(SkippedMember { discord_user: member.user.id, reason: e.to_string() });
                    }
                }
                report.members_seen += 1;
                cursor = Some(member.user.id);
            }
            if !full {
                report.pass_finished = true;
                cursor = None;
                break;
            }
        }
        report.resume_after = cursor;
        Ok(report)
    }

    fn retry_time(&self, error: &DiscordError) -> Option<DateTime<Utc>> {
        match self.not_now(error.clone()) {
            super::SyncOutcome::Deferred { retry_at, .. } => Some(retry_at),
            _ => None,
        }
    }
}

impl ReconcileReport {
    fn stop(&mut self, retry_at: Option<DateTime<Utc>>, error: DiscordError) {
        self.stopped = Some(error.to_string());
        self.retry_at = retry_at;
    }
}

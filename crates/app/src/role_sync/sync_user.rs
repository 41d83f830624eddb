//! One member made right: desired managed roles from the user's access and the mappings, the member's
//! current roles from Discord, and only the difference applied (roles in no mapping are never touched).

use super::{RoleSync, AUDIT_LOG_REASON};
use crate::error::StepError;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;
use tollgate_core::{desired_roles, role_diff, AppwriteId, Clock, DiscordUserId, RoleId};
use tollgate_discord::DiscordError;

/// How long to wait before trying again after a transient Discord failure (5xx, network).
pub const TRANSIENT_RETRY_SECS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    InSync {
        discord_user: DiscordUserId,
        desired: BTreeSet<RoleId>,
    },
    Applied {
        discord_user: DiscordUserId,
        desired: BTreeSet<RoleId>,
        added: usize,
        removed: usize,
    },
    /// No Discord account linked: nothing to do until the user links one.
    NotLinked,
    /// Linked but not in the guild: they get their roles when they come back (reconciliation).
    NotInGuild {
        discord_user: DiscordUserId,
        desired: BTreeSet<RoleId>,
    },
    /// Rate limited or Discord unavailable: due again at `retry_at`.
    Deferred {
        retry_at: DateTime<Utc>,
        reason: String,
    },
    /// Needs an admin (permissions, role order, a deleted role, a bad token): not retried automatically.
    Failed {
        message: String,
    },
}

impl SyncOutcome {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InSync { .. } => "in_sync",
            Self::Applied { .. } => "applied",
            Self::NotLinked => "not_linked",
            Self::NotInGuild { .. } => "not_in_guild",
            Self::Deferred { .. } => "deferred",
            Self::Failed { .. } => "failed",
        }
    }

    pub(super) fn target(&self) -> Option<(DiscordUserId, &BTreeSet<RoleId>)> {
        match self {
            Self::InSync { discord_user, desired }
            | Self::Applied { discord_user, desired, .. }
            | Self::NotInGuild { discord_user, desired } => Some((*discord_user, desired)),
            _ => None,
        }
    }
}

fn unreadable_profile(user_id: &AppwriteId, why: &str) -> StepError {
    tracing::error!(user = %user_id, why, "a profile does not decode");
    StepError::permanent("unreadable_profile", format!("the profile of {user_id} cannot be read ({why})"))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ProfileRecord {
    discord_user_id: Option<String>,
}

impl<C: Clock> RoleSync<'_, C> {
    /// The Discord account linked to the user, if any.
    pub async fn linked_discord_user(&self, user_id: &AppwriteId) -> Result<Option<DiscordUserId>, StepError> {
        let settings = self.app.settings;
        match self
            .app
            .appwrite
            .get_document(&settings.database_id, &settings.collections.profiles, user_id.as_str())
            .await
        {
            // A profile that does not decode is unknown, not "not linked": treating it as unlinked would
            // leave the roles of someone whose access ended.
            Ok(doc) => {
                let profile = doc.decode::<ProfileRecord>().map_err(|e| unreadable_profile(user_id, &e.to_string()))?;
                profile
                    .discord_user_id
                    .filter(|id| !id.is_empty())
                    .map(|id| DiscordUserId::parse(&id).map_err(|e| unreadable_profile(user_id, &e.to_string())))
                    .transpose()
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(StepError::appwrite("reading the profile", &e)),
        }
    }

    /// Projects the user's access (the `subscriptions` document and the `paid` membership), then makes
    /// their managed roles right and records the outcome in `role_sync_jobs`. The job's `requestId` is
    /// read before anything else, so a request that lands while this sync runs is seen when the outcome
    /// is recorded and leaves the job pending (see `jobs.rs`).
    pub async fn sync_user(&self, user_id: &AppwriteId) -> Result<SyncOutcome, StepError> {
        let started = self.read_job(user_id).await?;
        let outcome = self.compute_and_apply(user_id).await?;
        self.record_job(user_id, &outcome, &started).await?;
        Ok(outcome)
    }

    async fn compute_and_apply(&self, user_id: &AppwriteId) -> Result<SyncOutcome, StepError> {
        let projected = self.app.project_user(user_id).await?;
        let Some(discord_user) = self.linked_discord_user(user_id).await? else { return Ok(SyncOutcome::NotLinked) };
        let mappings = self.role_mappings().await?;
        for broken in mappings.unreadable() {
            tracing::warn!(mapping = %broken.document_id, reason = %broken.reason, "a role mapping cannot be read: its readable roles stay managed");
        }
        let desired = desired_roles(&mappings.readable, self.guild, projected.access.plans.keys().map(String::as_str));
        let managed = mappings.managed(self.guild);
        let member = match self.discord.get_member(self.guild, discord_user).await {
            Ok(member) => member,
            Err(DiscordError::UnknownMember) => return Ok(SyncOutcome::NotInGuild { discord_user, desired }),
            Err(e) => return Ok(self.not_now(e)),
        };
        let current: BTreeSet<RoleId> = member.roles.into_iter().collect();
        self.apply(discord_user, &current, desired, &managed).await
    }

    /// Applies the difference between `current` and `desired` (managed roles only).
    pub(crate) async fn apply(
        &self,
        discord_user: DiscordUserId,
        current: &BTreeSet<RoleId>,
        desired: BTreeSet<RoleId>,
        managed: &BTreeSet<RoleId>,
    ) -> Result<SyncOutcome, StepError> {
        Ok(match self.change_roles(discord_user, current, &desired, managed).await {
            Ok((0, 0)) => SyncOutcome::InSync { discord_user, desired },
            Ok((added, removed)) => SyncOutcome::Applied { discord_user, added, removed, desired },
            Err(DiscordError::UnknownMember) => SyncOutcome::NotInGuild { discord_user, desired },
            Err(e) => self.not_now(e),
        })
    }

    /// Adds and removes what differs (managed roles only): `(added, removed)`, or the first refusal.
    pub(super) async fn change_roles(
        &self,
        discord_user: DiscordUserId,
        current: &BTreeSet<RoleId>,
        desired: &BTreeSet<RoleId>,
        managed: &BTreeSet<RoleId>,
    ) -> Result<(usize, usize), DiscordError> {
        let diff = role_diff(current, desired, managed);
        for role in &diff.add {
            self.discord.add_member_role(self.guild, discord_user, *role, AUDIT_LOG_REASON).await?;
        }
        for role in &diff.remove {
            match self.discord.remove_member_role(self.guild, discord_user, *role, AUDIT_LOG_REASON).await {
                // Gone already is the state we wanted.
                Ok(()) | Err(DiscordError::UnknownRole) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((diff.add.len(), diff.remove.len()))
    }

    pub(super) fn not_now(&self, error: DiscordError) -> SyncOutcome {
        let now = self.app.clock.now();
        match &error {
            DiscordError::RateLimited { retry_at_ms }
            | DiscordError::InvalidRequestBudget { until_ms: retry_at_ms } => {
                let retry_at = DateTime::from_timestamp_millis(*retry_at_ms as i64).unwrap_or(now);
                SyncOutcome::Deferred { retry_at: retry_at.max(now), reason: error.to_string() }
            }
            e if e.is_retryable() => {
                SyncOutcome::Deferred { retry_at: now + Duration::seconds(TRANSIENT_RETRY_SECS), reason: e.to_string() }
            }
            e => SyncOutcome::Failed { message: e.to_string() },
        }
    }
}

//! `role_sync_jobs` (document id = the Appwrite user id): the outbox that says a user's roles must be
//! recomputed, and the last outcome for admins. Access changes write `pending`; the role-sync worker runs
//! pending jobs promptly when asked and on its cron, so a lost trigger only delays a sync.

use super::{RoleSync, SyncOutcome};
use crate::error::StepError;
use crate::records::timestamp;
use crate::App;
use chrono::{DateTime, Utc};
use serde_json::json;
use tollgate_appwrite::Query;
use tollgate_core::{AppwriteId, Clock};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Done,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// What the webhook worker asks of role-sync: "recompute this user".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleSyncRequest {
    pub user_id: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JobRecord {
    attempts: Option<i64>,
}

impl<C: Clock> App<'_, C> {
    /// Puts the user in the outbox (`pending`, due now). Idempotent.
    pub async fn request_role_sync(&self, user_id: &AppwriteId) -> Result<(), StepError> {
        let data = json!({
            "userId": user_id.as_str(),
            "status": JobStatus::Pending.as_str(),
            "nextAttemptAt": timestamp(self.clock.now()),
        });
        let db = &self.settings.database_id;
        let collection = &self.settings.collections.role_sync_jobs;
        match self.appwrite.update_document(db, collection, user_id.as_str(), &data).await {
            Err(e) if e.is_not_found() => {
                self.appwrite.create_document(db, collection, user_id.as_str(), &data, None).await.map(drop)
            }
            other => other.map(drop),
        }
        .or_else(|e| if e.is_conflict() { Ok(()) } else { Err(e) })
        .map_err(|e| StepError::appwrite("queueing the role sync", &e))
    }
}

impl<C: Clock> RoleSync<'_, C> {
    pub(super) async fn record_job(&self, user_id: &AppwriteId, outcome: &SyncOutcome) -> Result<(), StepError> {
        let settings = self.app.settings;
        let (db, collection) = (&settings.database_id, &settings.collections.role_sync_jobs);
        let previous = match self.app.appwrite.get_document(db, collection, user_id.as_str()).await {
            Ok(doc) => doc.decode::<JobRecord>().ok().and_then(|r| r.attempts).unwrap_or(0),
            Err(_) => 0,
        };
        let now = self.app.clock.now();
        let (status, next, error): (JobStatus, Option<DateTime<Utc>>, Option<String>) = match outcome {
            SyncOutcome::Deferred { retry_at, reason } => (JobStatus::Pending, Some(*retry_at), Some(reason.clone())),
            SyncOutcome::Failed { message } => (JobStatus::Failed, None, Some(message.clone())),
            _ => (JobStatus::Done, None, None),
        };
        let mut data = json!({
            "userId": user_id.as_str(),
            "guildId": self.guild.to_string(),
            "status": status.as_str(),
            "attempts": previous + 1,
            "lastError": error,
            "lastAttemptAt": timestamp(now),
            "nextAttemptAt": next.map(timestamp),
            "outcome": outcome.code(),
        });
        if let Some((discord_user, desired)) = outcome.target() {
            data["discordUserId"] = json!(discord_user.to_string());
            data["desiredRoleIdsJson"] =
                json!(serde_json::to_string(&desired.iter().map(|r| r.to_string()).collect::<Vec<_>>())
                    .unwrap_or_default());
        }
        self.app
            .appwrite
            .upsert_document(db, collection, user_id.as_str(), &data)
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("recording the role sync job", &e))
    }

    /// Runs up to `limit` pending jobs that are due, oldest first.
    pub async fn run_due_jobs(&self, limit: u32) -> Result<Vec<(String, SyncOutcome)>, StepError> {
        let settings = self.app.settings;
        let queries = [
            Query::equal("status", [JobStatus::Pending.as_str()]),
            Query::less_than_equal("nextAttemptAt", timestamp(self.app.clock.now())),
            Query::order_asc("nextAttemptAt"),
            Query::limit(limit),
        ];
        let due = self
            .app
            .appwrite
            .list_documents(&settings.database_id, &settings.collections.role_sync_jobs, &queries)
            .await
            .map_err(|e| StepError::appwrite("listing due role sync jobs", &e))?;
        let mut outcomes = Vec::new();
        for doc in due.documents {
            let Ok(user_id) = AppwriteId::parse(&doc.id) else { continue };
            let outcome = self.sync_user(&user_id).await?;
            outcomes.push((doc.id, outcome));
        }
        Ok(outcomes)
    }
}

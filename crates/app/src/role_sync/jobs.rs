//! `role_sync_jobs` (document id = the Appwrite user id): the outbox that says a user's roles must be
//! recomputed, and the last outcome for admins. Access changes write `pending`; the role-sync worker runs
//! pending jobs promptly when asked and on its cron, so a lost trigger only delays a sync.
//!
//! ## A request is never lost to a sync that was already running (no transactions)
//! Appwrite has no compare-and-set, so a sync that records `done` could overwrite a `pending` written
//! meanwhile by an access change (a revocation would then wait for reconciliation). Instead:
//! - every [`App::request_role_sync`] writes a fresh random `requestId` with `status: pending` and
//!   `nextAttemptAt: now`, as a partial update (PATCH, create on 404): it never touches the outcome fields;
//! - a sync reads the job's `requestId` before it reads anything else; after its outcome is written (also a
//!   PATCH, which leaves `requestId` alone), it reads the job again: a different `requestId` (or a job it
//!   cannot read) means a request landed while it ran, so the job goes back to `pending`, due now. Whatever
//!   the interleaving, the last write is either the request's `pending` or this re-check's.
//!
//! A deferred outcome (rate limit, Discord unavailable) is already `pending` at the time Discord named and
//! stays so: it reads the latest state when it runs.
//!
//! Jobs written by the replaced deployment have no `nextAttemptAt`: a `pending` one without it is due.

use super::{RoleSync, SyncOutcome};
use crate::error::StepError;
use crate::random::random_token;
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

/// The subrequests of one user's sync with up to two role changes: the job's read, the projection
/// ([`crate::projection::PROJECTION_COST`]), the profile, the mappings, the member, two role changes,
/// the outcome's write and the job's re-read. More role changes, a created job or a re-queue cost
/// more; past the budget such a call is refused and the job, still pending, runs again next time.
pub const SYNC_COST: u32 = 1 + crate::projection::PROJECTION_COST + 1 + 1 + 1 + 2 + 1 + 1;

/// Random bytes in a `requestId`.
const REQUEST_ID_BYTES: usize = 16;

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct JobRecord {
    attempts: Option<i64>,
    request_id: Option<String>,
}

/// The job as a sync found it when it started.
#[derive(Debug, Default)]
pub(super) struct JobAtStart {
    attempts: i64,
    /// `None`: no job, or a job without a `requestId` (written by the replaced deployment).
    request_id: Option<String>,
}

impl<C: Clock> App<'_, C> {
    /// Puts the user in the outbox (`pending`, due now, a fresh `requestId`). Idempotent.
    pub async fn request_role_sync(&self, user_id: &AppwriteId) -> Result<(), StepError> {
        let data = json!({
            "userId": user_id.as_str(),
            "status": JobStatus::Pending.as_str(),
            "nextAttemptAt": timestamp(self.clock.now()),
            "requestId": random_token(REQUEST_ID_BYTES)?,
        });
        patch_or_create(self, user_id, &data).await.map_err(|e| StepError::appwrite("queueing the role sync", &e))
    }
}

/// PATCH the job; create it on 404; on a 409 (created meanwhile) PATCH again.
async fn patch_or_create<C: Clock>(
    app: &App<'_, C>,
    user_id: &AppwriteId,
    data: &serde_json::Value,
) -> Result<(), tollgate_appwrite::AppwriteError> {
    let (db, collection) = (&app.settings.database_id, &app.settings.collections.role_sync_jobs);
    let id = user_id.as_str();
    match app.appwrite.update_document(db, collection, id, data).await {
        Err(e) if e.is_not_found() => match app.appwrite.create_document(db, collection, id, data, None).await {
            Err(e) if e.is_conflict() => app.appwrite.update_document(db, collection, id, data).await.map(drop),
            other => other.map(drop),
        },
        other => other.map(drop),
    }
}

impl<C: Clock> RoleSync<'_, C> {
    /// The job's `requestId` and attempts, read before a sync starts.
    pub(super) async fn read_job(&self, user_id: &AppwriteId) -> Result<JobAtStart, StepError> {
        let settings = self.app.settings;
        let (db, collection) = (&settings.database_id, &settings.collections.role_sync_jobs);
        match self.app.appwrite.get_document(db, collection, user_id.as_str()).await {
            Ok(doc) => {
                let record = doc.decode::<JobRecord>().unwrap_or_else(|e| {
                    // Only the attempt count is lost; the re-check after the sync compares request ids.
                    tracing::warn!(user = %user_id, error = %e, "a role sync job does not decode");
                    JobRecord::default()
                });
                Ok(JobAtStart { attempts: record.attempts.unwrap_or(0), request_id: record.request_id })
            }
            Err(e) if e.is_not_found() => Ok(JobAtStart::default()),
            Err(e) => Err(StepError::appwrite("reading the role sync job", &e)),
        }
    }

    /// Records the outcome, then puts the job back to `pending` if a request landed meanwhile.
    pub(super) async fn record_job(
        &self,
        user_id: &AppwriteId,
        outcome: &SyncOutcome,
        started: &JobAtStart,
    ) -> Result<(), StepError> {
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
            "attempts": started.attempts + 1,
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
        patch_or_create(&self.app, user_id, &data)
            .await
            .map_err(|e| StepError::appwrite("recording the role sync job", &e))?;
        if status == JobStatus::Pending {
            return Ok(());
        }
        if self.requested_since(user_id, started).await {
            let again = json!({ "status": JobStatus::Pending.as_str(), "nextAttemptAt": timestamp(now) });
            patch_or_create(&self.app, user_id, &again)
                .await
                .map_err(|e| StepError::appwrite("re-queueing the role sync", &e))?;
        }
        Ok(())
    }

    /// Whether the job's `requestId` changed since the sync started; a job that cannot be read counts as
    /// changed (one sync too many is harmless, a lost one is not).
    async fn requested_since(&self, user_id: &AppwriteId, started: &JobAtStart) -> bool {
        let settings = self.app.settings;
        let read = self
            .app
            .appwrite
            .get_document(&settings.database_id, &settings.collections.role_sync_jobs, user_id.as_str())
            .await;
        match read.map(|doc| doc.decode::<JobRecord>()) {
            Ok(Ok(record)) => record.request_id != started.request_id,
            Ok(Err(e)) => {
                tracing::warn!(user = %user_id, error = %e, "a role sync job does not decode; syncing again");
                true
            }
            Err(e) => {
                tracing::warn!(user = %user_id, error = %e, "could not re-read the role sync job; syncing again");
                true
            }
        }
    }

    /// [`App::due_job_ids`].
    pub async fn due_job_ids(&self, limit: u32) -> Result<Vec<String>, StepError> {
        self.app.due_job_ids(limit).await
    }

    /// Runs up to `limit` pending jobs that are due, oldest first; jobs of the replaced deployment (no
    /// `nextAttemptAt`) count as due and go first.
    ///
    /// Only as many as fit the invocation's subrequest budget ([`SYNC_COST`] each after the two
    /// listings) are listed and run: the outbox is its own queue (a job stays `pending` until its outcome
    /// is recorded), so what this run leaves is listed first by the next, and a run cut half-way leaves
    /// the job it was running pending.
    pub async fn run_due_jobs(&self, limit: u32) -> Result<Vec<(String, SyncOutcome)>, StepError> {
        let budget = self.app.appwrite.subrequests();
        let limit = budget.units(2, SYNC_COST, limit);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let due = self.due_job_ids(limit).await?;
        let mut outcomes = Vec::new();
        for id in due {
            if !budget.fits(SYNC_COST) {
                break;
            }
            let Ok(user_id) = AppwriteId::parse(&id) else { continue };
            let outcome = self.sync_user(&user_id).await?;
            outcomes.push((id, outcome));
        }
        Ok(outcomes)
    }
}

impl<C: Clock> App<'_, C> {
    /// The user ids of up to `limit` pending jobs that are due, oldest first; jobs of the replaced
    /// deployment (no `nextAttemptAt`) count as due and go first. Two listings, ids only.
    pub async fn due_job_ids(&self, limit: u32) -> Result<Vec<String>, StepError> {
        let settings = self.settings;
        let (db, collection) = (&settings.database_id, &settings.collections.role_sync_jobs);
        let pending = Query::equal("status", [JobStatus::Pending.as_str()]);
        let ids = Query::select(["$id"]);
        let limit = limit.clamp(1, tollgate_appwrite::MAX_PAGE_SIZE);
        let mut due = self
            .appwrite
            .list_documents(
                db,
                collection,
                &[pending.clone(), Query::is_null("nextAttemptAt"), ids.clone(), Query::limit(limit)],
            )
            .await
            .map_err(|e| StepError::appwrite("listing role sync jobs without a due time", &e))?
            .documents;
        let room = limit.saturating_sub(due.len() as u32);
        if room > 0 {
            let queries = [
                pending,
                Query::less_than_equal("nextAttemptAt", timestamp(self.clock.now())),
                Query::order_asc("nextAttemptAt"),
                ids,
                Query::limit(room),
            ];
            let listed = self
                .appwrite
                .list_documents(db, collection, &queries)
                .await
                .map_err(|e| StepError::appwrite("listing due role sync jobs", &e))?;
            due.extend(listed.documents);
        }
        Ok(due.into_iter().map(|d| d.id).collect())
    }
}

//! `POST /admin/failures/{id}/replay` (`Authorization: Bearer <ADMIN_TOKEN>`): an admin's replay of a recorded
//! failure. It runs here because this worker holds the processing path; the api worker's admin route of the
//! same name forwards to it (the projection follows through the outbox, as for a cron retry), which keeps the whole ingest path out of the api worker's size budget.

use crate::error::{json, WebhookError};
use serde_json::json;
use tollgate_core::AppwriteId;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::{bearer_matches, AppParts};
use worker::{Env, Request, Response};

pub async fn replay(req: &Request, env: &Env, invocation: &Invocation, id: &str) -> Result<Response, WebhookError> {
    if !bearer_matches(req, env, "ADMIN_TOKEN") {
        return Err(WebhookError::AdminUnauthenticated);
    }
    let id = AppwriteId::parse(id).map_err(|_| WebhookError::BadRequest("invalid_id"))?;
    let parts =
        AppParts::from_env(env, invocation.subrequests()).map_err(|e| WebhookError::Misconfigured(e.to_string()))?;
    let outcome = match parts.app().replay_failure(&id).await {
        Ok(outcome) => outcome,
        Err(e) if e.status == Some(404) => return Err(WebhookError::NotFound),
        Err(e) => return Err(WebhookError::Upstream(e.to_string())),
    };
    let outcome = format!("{outcome:?}").to_lowercase();
    invocation.note("outcome", outcome.as_str());
    json(200, &json!({ "ok": true, "outcome": outcome })).map_err(|e| WebhookError::Internal(e.to_string()))
}

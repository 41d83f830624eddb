//! `POST /admin/failures/{id}/replay` and `POST /admin/claims/{id}/sweep` (`Authorization: Bearer
//! <ADMIN_TOKEN>`). The replay: an admin's replay of a recorded failure, or a due failure handed out by
//! the role-sync cron's fan-out. They run here because this worker holds the processing path; the api
//! worker's admin route of the same name forwards to it (the projection follows through the outbox, as for
//! a cron retry), which keeps the whole ingest path out of the api worker's size budget.

use crate::error::{json, WebhookError};
use serde_json::json;
use tollgate_app::StepError;
use tollgate_core::AppwriteId;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::{bearer_matches, AppParts};
use worker::{Env, Request, Response};

/// The admin routes' common start: the token, the id from the path (400 `invalid_id` when it is not an
/// Appwrite id), and the app's parts.
fn admin_request(
    req: &Request,
    env: &Env,
    invocation: &Invocation,
    id: &str,
) -> Result<(AppwriteId, AppParts), WebhookError> {
    if !bearer_matches(req, env, "ADMIN_TOKEN") {
        return Err(WebhookError::AdminUnauthenticated);
    }
    let id = AppwriteId::parse(id).map_err(|_| WebhookError::BadRequest("invalid_id"))?;
    let parts =
        AppParts::from_env(env, invocation.subrequests()).map_err(|e| WebhookError::Misconfigured(e.to_string()))?;
    Ok((id, parts))
}

/// A step's error as the admin routes answer it: a missing document is 404.
fn step_error(e: StepError) -> WebhookError {
    if e.status == Some(404) {
        WebhookError::NotFound
    } else {
        WebhookError::Upstream(e.to_string())
    }
}

fn outcome(invocation: &Invocation, outcome: &str) -> Result<Response, WebhookError> {
    invocation.note("outcome", outcome);
    json(200, &json!({ "ok": true, "outcome": outcome })).map_err(|e| WebhookError::Internal(e.to_string()))
}

pub async fn replay(req: &Request, env: &Env, invocation: &Invocation, id: &str) -> Result<Response, WebhookError> {
    let (id, parts) = admin_request(req, env, invocation, id)?;
    let replayed = parts.app().replay_failure(&id).await.map_err(step_error)?;
    outcome(invocation, &format!("{replayed:?}").to_lowercase())
}

/// `POST /admin/claims/{id}/sweep`: one stale inbox claim processed from its stored body, handed out by the
/// role-sync cron's fan-out (`tollgate_app::scheduled`, "Fan-out"). A claim that is no longer stale and
/// `processing` is left alone (`skipped`); the projection follows through the outbox, as for a replay.
pub async fn sweep(req: &Request, env: &Env, invocation: &Invocation, id: &str) -> Result<Response, WebhookError> {
    let (id, parts) = admin_request(req, env, invocation, id)?;
    let (swept, _user) = parts.app().sweep_claim_by_id(&id).await.map_err(step_error)?;
    outcome(invocation, swept.code())
}

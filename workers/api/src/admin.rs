//! Admin routes (`Authorization: Bearer <ADMIN_TOKEN>`): look a user up, list and replay failures, sync
//! one user's roles now.

use crate::context::{require_admin, Ctx};
use crate::error::ApiError;
use serde_json::json;
use tollgate_app::lookup::failure_summary;
use tollgate_app::records::{FailureRecord, FailureState};
use tollgate_appwrite::Query;
use tollgate_core::{AppwriteId, Email};
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::setting;
use worker::{Env, Request, Response};

const FAILURES_PAGE_DEFAULT: u32 = 25;
const FAILURES_PAGE_MAX: u32 = 100;
/// A replay runs the whole processing path (up to ~8 Appwrite calls of 10 s timeout each).
const REPLAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn query_map(req: &Request) -> Result<std::collections::HashMap<String, String>, ApiError> {
    Ok(req.url()?.query_pairs().into_owned().collect())
}

pub async fn lookup(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    require_admin(req, env)?;
    let ctx = Ctx::from_env(env, inv)?;
    let query = query_map(req)?;
    let appwrite = &ctx.parts.appwrite;
    let user = match (query.get("email"), query.get("id")) {
        (Some(email), _) => {
            let email = Email::parse(email).map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
            appwrite.find_user_by_email(&email).await.map_err(|e| ApiError::Upstream(e.to_string()))?
        }
        (None, Some(id)) => {
            let id = AppwriteId::parse(id).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
            match appwrite.get_user(&id).await {
                Ok(user) => Some(user),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(ApiError::Upstream(e.to_string())),
            }
        }
        (None, None) => return Err(ApiError::bad_request("missing_query", "pass email= or id=")),
    };
    let user = user.ok_or(ApiError::NotFound("no user with that email or id"))?;
    Ok(Response::from_json(&ctx.sync().access_report(&user, true).await?)?)
}

pub async fn failures(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    require_admin(req, env)?;
    let ctx = Ctx::from_env(env, inv)?;
    let query = query_map(req)?;
    let mut queries = Vec::new();
    if let Some(state) = query.get("state") {
        let state = FailureState::parse(state)
            .ok_or_else(|| ApiError::bad_request("invalid_state", "state is due, dead or settled"))?;
        queries.push(Query::equal("state", [state.as_str()]));
    }
    let limit = match query.get("limit") {
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=FAILURES_PAGE_MAX).contains(l))
            .ok_or_else(|| ApiError::bad_request("invalid_limit", "limit is 1-100"))?,
        None => FAILURES_PAGE_DEFAULT,
    };
    queries.push(Query::limit(limit));
    if let Some(cursor) = query.get("cursor") {
        queries.push(Query::cursor_after(cursor));
    }
    let settings = &ctx.parts.settings;
    let list = ctx
        .parts
        .appwrite
        .list_documents(&settings.database_id, &settings.collections.webhook_failures, &queries)
        .await
        .map_err(|e| {
            if e.status == Some(400) {
                ApiError::bad_request("invalid_cursor", "unknown cursor")
            } else {
                ApiError::Upstream(e.to_string())
            }
        })?;
    let next = (list.documents.len() as u32 == limit).then(|| list.documents.last().map(|d| d.id.clone())).flatten();
    let items: Vec<_> = list
        .documents
        .iter()
        .map(|d| failure_summary(&d.id, &d.decode::<FailureRecord>().unwrap_or_default()))
        .collect();
    Ok(Response::from_json(&json!({ "total": list.total, "failures": items, "nextCursor": next }))?)
}

/// Forwarded to the webhook worker (`WEBHOOK_URL`), which holds the processing path; its answer relayed.
pub async fn replay(req: &Request, env: &Env, inv: &Invocation, id: &str) -> Result<Response, ApiError> {
    require_admin(req, env)?;
    let id = AppwriteId::parse(id).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
    let base = setting(env, "WEBHOOK_URL").ok_or_else(|| ApiError::Misconfigured("WEBHOOK_URL".into()))?;
    let token = setting(env, "ADMIN_TOKEN").ok_or_else(|| ApiError::Misconfigured("ADMIN_TOKEN".into()))?;
    let url = format!("{}/admin/failures/{}/replay", base.trim_end_matches('/'), id.as_str());
    inv.subrequests().take().map_err(|e| ApiError::Upstream(e.to_string()))?;
    let answer = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .timeout(REPLAY_TIMEOUT)
        .send()
        .await
        .map_err(|_| ApiError::Upstream("the webhook worker did not answer the replay".into()))?;
    let status = answer.status().as_u16();
    let body: serde_json::Value = answer.json().await.unwrap_or(serde_json::Value::Null);
    match status {
        200 => match body["outcome"].as_str() {
            Some(outcome) => {
                inv.note("outcome", outcome);
                Ok(Response::from_json(&json!({ "ok": true, "outcome": outcome }))?)
            }
            None => Err(ApiError::Upstream(format!("the webhook worker's replay answer has no outcome: {body}"))),
        },
        404 => Err(ApiError::NotFound("no failure with that id")),
        _ => Err(ApiError::Upstream(format!("the webhook worker answered the replay with {status}: {body}"))),
    }
}

pub async fn sync_user(req: &Request, env: &Env, inv: &Invocation, id: &str) -> Result<Response, ApiError> {
    require_admin(req, env)?;
    let id = AppwriteId::parse(id).map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
    let ctx = Ctx::from_env(env, inv)?;
    let outcome = ctx.sync().sync_user(&id).await?;
    Ok(Response::from_json(&json!({ "ok": true, "outcome": outcome.code() }))?)
}

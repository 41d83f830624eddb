//! Admin routes (`Authorization: Bearer <ADMIN_TOKEN>`, or an admins-team member's Appwrite JWT): look a
//! user up, list failures, read one with its delivery and replay it, sync one user's roles now, the plans
//! catalogue and the health checks. The console page (`GET /admin`) is built on exactly these.

use serde_json::json;
use tollgate_app::admin_console::{failure_item, failure_queries, plan_listing};
use tollgate_app::doctor::{bot_checks, oauth_redirect_check, Checks, Inputs};
use tollgate_core::{AppwriteId, DiscordUserId, Email};
use tollgate_web::context::{admin, sync_now};
use tollgate_web::error::ApiError;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::{post_json, setting};
use worker::{Env, Request, Response};

/// A replay runs the whole processing path (up to ~8 Appwrite calls of 10 s timeout each); a sync a few more.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn query_map(req: &Request) -> Result<std::collections::HashMap<String, String>, ApiError> {
    Ok(req.url()?.query_pairs().into_owned().collect())
}

fn bad_id(e: impl ToString) -> ApiError {
    ApiError::bad_request("invalid_id", e.to_string())
}

/// Who the caller is, for the console's sign-in (the token, or the JWT of an admins-team member).
pub async fn me(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    admin(req, env, inv).await?;
    Ok(Response::from_json(&json!({ "ok": true }))?)
}

/// `?email=`, `?id=` or `?discord=` (a Discord user id).
pub async fn lookup(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let ctx = admin(req, env, inv).await?;
    let query = query_map(req)?;
    let appwrite = &ctx.parts.appwrite;
    let by_id = |id: AppwriteId| async move {
        match appwrite.get_user(&id).await {
            Ok(user) => Ok(Some(user)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(ApiError::Upstream(e.to_string())),
        }
    };
    let user = match (query.get("email"), query.get("id"), query.get("discord")) {
        (Some(email), _, _) => {
            let email = Email::parse(email).map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
            appwrite.find_user_by_email(&email).await.map_err(|e| ApiError::Upstream(e.to_string()))?
        }
        (None, Some(id), _) => by_id(AppwriteId::parse(id).map_err(bad_id)?).await?,
        (None, None, Some(discord)) => {
            let discord = DiscordUserId::parse(discord).map_err(bad_id)?;
            match ctx.parts.app().user_by_discord(discord).await? {
                Some(id) => by_id(id).await?,
                None => None,
            }
        }
        (None, None, None) => return Err(ApiError::bad_request("missing_query", "pass email=, id= or discord=")),
    };
    let user = user.ok_or(ApiError::NotFound("no user with that email, id or Discord account"))?;
    let report = ctx.sync().access_report(&user, true).await?;
    if report.claimed_now > 0 {
        if let Ok(user_id) = AppwriteId::parse(&user.id) {
            sync_now(env, inv, &user_id).await;
        }
    }
    Ok(Response::from_json(&report)?)
}

/// `?state=&provider=&since=&until=&limit=&cursor=`, newest first.
pub async fn failures(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let ctx = admin(req, env, inv).await?;
    let url = req.url()?;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let (queries, limit) = failure_queries(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|(code, reason)| ApiError::bad_request(code, reason))?;
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
    let items: Vec<_> = list.documents.iter().map(failure_item).collect();
    Ok(Response::from_json(&json!({ "total": list.total, "failures": items, "nextCursor": next }))?)
}

pub async fn failure(req: &Request, env: &Env, inv: &Invocation, id: &str) -> Result<Response, ApiError> {
    let ctx = admin(req, env, inv).await?;
    let id = AppwriteId::parse(id).map_err(bad_id)?;
    let detail = ctx.parts.app().failure_detail(&id).await?.ok_or(ApiError::NotFound("no failure with that id"))?;
    Ok(Response::from_json(&detail)?)
}

/// Forwarded to the webhook worker (`WEBHOOK_URL`), which holds the processing path; its answer relayed.
pub async fn replay(req: &Request, env: &Env, inv: &Invocation, id: &str) -> Result<Response, ApiError> {
    admin(req, env, inv).await?;
    let id = AppwriteId::parse(id).map_err(bad_id)?;
    let path = format!("/admin/failures/{}/replay", id.as_str());
    let outcome = forward(env, inv, ("WEBHOOK_URL", "ADMIN_TOKEN"), &path, None, "no failure with that id").await?;
    Ok(Response::from_json(&json!({ "ok": true, "outcome": outcome }))?)
}

/// Forwarded to the role-sync worker (`ROLE_SYNC_URL`, `ROLE_SYNC_TOKEN`), which syncs the user now; its
/// outcome relayed.
pub async fn sync_user(req: &Request, env: &Env, inv: &Invocation, id: &str) -> Result<Response, ApiError> {
    admin(req, env, inv).await?;
    let id = AppwriteId::parse(id).map_err(bad_id)?;
    let body = json!({ "userId": id.as_str() });
    let outcome = forward(env, inv, ("ROLE_SYNC_URL", "ROLE_SYNC_TOKEN"), "/sync", Some(body), "no such user").await?;
    Ok(Response::from_json(&json!({ "ok": true, "outcome": outcome }))?)
}

/// A `POST` to another Tollgate worker (`base` and `token` name its settings); the `outcome` of its 200
/// answer. Keeps the processing path and the role sync out of this worker's size budget.
async fn forward(
    env: &Env,
    inv: &Invocation,
    (base, token): (&str, &str),
    path: &str,
    body: Option<serde_json::Value>,
    not_found: &'static str,
) -> Result<String, ApiError> {
    let base_url = setting(env, base).ok_or_else(|| ApiError::Misconfigured(base.into()))?;
    let token = setting(env, token).ok_or_else(|| ApiError::Misconfigured(token.into()))?;
    inv.subrequests().take().map_err(|e| ApiError::Upstream(e.to_string()))?;
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    let answer = post_json(&url, &token, &body.unwrap_or_else(|| json!({})), FORWARD_TIMEOUT)
        .await
        .map_err(|_| ApiError::Upstream(format!("{base} did not answer {path}")))?;
    let status = answer.status;
    let body: serde_json::Value = serde_json::from_str(&answer.text).unwrap_or(serde_json::Value::Null);
    match (status, body["outcome"].as_str()) {
        (200, Some(outcome)) => {
            inv.note("outcome", outcome);
            Ok(outcome.to_owned())
        }
        (404, _) => Err(ApiError::NotFound(not_found)),
        _ => Err(ApiError::Upstream(format!("{base}{path} answered {status}: {body}"))),
    }
}

pub async fn plans(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let ctx = admin(req, env, inv).await?;
    let catalogue = ctx.parts.app().plan_catalogue().await?;
    let broken: Vec<_> =
        catalogue.broken.iter().map(|b| json!({ "document": b.document_id, "reason": b.reason })).collect();
    Ok(Response::from_json(&json!({ "plans": plan_listing(&catalogue), "broken": broken }))?)
}

/// The health panel: the OAuth redirect and the bot's checks (`tollgate doctor` runs the schema and
/// catalogue checks too).
pub async fn health(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let ctx = admin(req, env, inv).await?;
    let mut checks = Checks::default();
    oauth_redirect_check(|name| setting(env, name), &mut checks);
    let inputs = Inputs {
        settings: &ctx.parts.settings,
        appwrite: Ok(&ctx.parts.appwrite),
        discord: Ok((&ctx.discord, ctx.guild)),
        clock: &ctx.parts.clock,
    };
    bot_checks(&inputs, &mut checks).await;
    Ok(Response::from_json(&json!({ "ok": checks.failed() == 0, "checks": checks }))?)
}

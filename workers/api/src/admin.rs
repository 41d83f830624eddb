//! Admin routes (`Authorization: Bearer <ADMIN_TOKEN>`, or an admins-team member's Appwrite JWT): look a
//! user up, list failures, read one with its delivery and replay it, sync one user's roles now, the plans
//! catalogue and the health checks. The console page (`GET /admin`) is built on exactly these.

use crate::context::admin;
use crate::error::ApiError;
use serde_json::json;
use tollgate_app::admin_console::{failure_item, failure_queries, plan_listing};
use tollgate_app::doctor::{bot_checks, oauth_redirect_check, Checks, Inputs};
use tollgate_core::{AppwriteId, DiscordUserId, Email};
use tollgate_worker_common::setting;
use worker::{Env, Request, Response};

fn query_map(req: &Request) -> Result<std::collections::HashMap<String, String>, ApiError> {
    Ok(req.url()?.query_pairs().into_owned().collect())
}

fn bad_id(e: impl ToString) -> ApiError {
    ApiError::bad_request("invalid_id", e.to_string())
}

/// Who the caller is, for the console's sign-in (the token, or the JWT of an admins-team member).
pub async fn me(req: &Request, env: &Env) -> Result<Response, ApiError> {
    admin(req, env).await?;
    Ok(Response::from_json(&json!({ "ok": true }))?)
}

/// `?email=`, `?id=` or `?discord=` (a Discord user id).
pub async fn lookup(req: &Request, env: &Env) -> Result<Response, ApiError> {
    let ctx = admin(req, env).await?;
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
    Ok(Response::from_json(&ctx.sync().access_report(&user, true).await?)?)
}

/// `?state=&provider=&since=&until=&limit=&cursor=`, newest first.
pub async fn failures(req: &Request, env: &Env) -> Result<Response, ApiError> {
    let ctx = admin(req, env).await?;
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

pub async fn failure(req: &Request, env: &Env, id: &str) -> Result<Response, ApiError> {
    let ctx = admin(req, env).await?;
    let id = AppwriteId::parse(id).map_err(bad_id)?;
    let detail = ctx.parts.app().failure_detail(&id).await?.ok_or(ApiError::NotFound("no failure with that id"))?;
    Ok(Response::from_json(&detail)?)
}

pub async fn replay(req: &Request, env: &Env, id: &str) -> Result<Response, ApiError> {
    let ctx = admin(req, env).await?;
    let id = AppwriteId::parse(id).map_err(bad_id)?;
    match ctx.parts.app().replay_failure(&id).await {
        Ok(outcome) => {
            Ok(Response::from_json(&json!({ "ok": true, "outcome": format!("{outcome:?}").to_lowercase() }))?)
        }
        Err(e) if e.status == Some(404) => Err(ApiError::NotFound("no failure with that id")),
        Err(e) => Err(e.into()),
    }
}

pub async fn sync_user(req: &Request, env: &Env, id: &str) -> Result<Response, ApiError> {
    let ctx = admin(req, env).await?;
    let id = AppwriteId::parse(id).map_err(bad_id)?;
    let outcome = ctx.sync().sync_user(&id).await?;
    Ok(Response::from_json(&json!({ "ok": true, "outcome": outcome.code() }))?)
}

pub async fn plans(req: &Request, env: &Env) -> Result<Response, ApiError> {
    let ctx = admin(req, env).await?;
    let catalogue = ctx.parts.app().plan_catalogue().await?;
    let broken: Vec<_> =
        catalogue.broken.iter().map(|b| json!({ "document": b.document_id, "reason": b.reason })).collect();
    Ok(Response::from_json(&json!({ "plans": plan_listing(&catalogue), "broken": broken }))?)
}

/// The health panel: the OAuth redirect and the bot's checks (`tollgate doctor` runs the schema and
/// catalogue checks too).
pub async fn health(req: &Request, env: &Env) -> Result<Response, ApiError> {
    let ctx = admin(req, env).await?;
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

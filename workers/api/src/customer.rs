//! The customer's routes: link, callback, unlink, access. Authenticated by the web app's Appwrite JWT,
//! except the callback, which Discord's redirect reaches and which the single-use state authenticates.

use crate::context::{oauth, Ctx};
use crate::error::ApiError;
use serde_json::json;
use tollgate_app::link_discord::LinkError;
use tollgate_core::AppwriteId;
use tollgate_worker_common::setting;
use worker::{Env, Request, Response, Url};

pub async fn link(req: &Request, env: &Env) -> Result<Response, ApiError> {
    let ctx = Ctx::from_env(env)?;
    let user = ctx.user(req).await?;
    let user_id = AppwriteId::parse(&user.id).map_err(|_| ApiError::Unauthenticated)?;
    let (oauth, authorize) = oauth(env)?;
    let url = ctx.sync().start_link(&user_id, &oauth, &authorize).await?;
    Ok(Response::from_json(&json!({ "url": url }))?)
}

/// Redirects to `APP_BASE_URL` with `discord=linked`, or `discord=error&reason=…`.
pub async fn callback(req: &Request, env: &Env) -> Result<Response, ApiError> {
    let query: std::collections::HashMap<String, String> = req.url()?.query_pairs().into_owned().collect();
    let (Some(code), Some(state)) = (query.get("code"), query.get("state")) else {
        return Err(ApiError::bad_request("invalid_callback", "code and state are required"));
    };
    let ctx = Ctx::from_env(env)?;
    let (oauth, _) = oauth(env)?;
    let reason = match ctx.sync().finish_link(code, state, &oauth, None).await {
        Ok(_) => None,
        Err(LinkError::StateInvalid) => {
            return Err(ApiError::bad_request(
                "invalid_state",
                "the link request is invalid or has expired; start again",
            ))
        }
        Err(LinkError::DiscordAccountTaken) => return Err(ApiError::DiscordAccountTaken),
        Err(LinkError::Discord(e)) => {
            worker::console_warn!("api: Discord refused the link: {e}");
            Some("discord_refused")
        }
        Err(LinkError::Step(e)) => return Err(e.into()),
    };
    let base = setting(env, "APP_BASE_URL").ok_or_else(|| ApiError::Misconfigured("APP_BASE_URL".into()))?;
    let mut target = Url::parse(&base).map_err(|e| ApiError::Misconfigured(format!("APP_BASE_URL: {e}")))?;
    match reason {
        None => target.query_pairs_mut().append_pair("discord", "linked"),
        Some(reason) => target.query_pairs_mut().append_pair("discord", "error").append_pair("reason", reason),
    };
    Ok(Response::redirect_with_status(target, 302)?)
}

pub async fn unlink(req: &Request, env: &Env) -> Result<Response, ApiError> {
    let ctx = Ctx::from_env(env)?;
    let user = ctx.user(req).await?;
    let user_id = AppwriteId::parse(&user.id).map_err(|_| ApiError::Unauthenticated)?;
    let unlinked = ctx.sync().unlink(&user_id).await?;
    Ok(Response::from_json(&json!({ "ok": true, "unlinked": unlinked }))?)
}

pub async fn access(req: &Request, env: &Env) -> Result<Response, ApiError> {
    let ctx = Ctx::from_env(env)?;
    let user = ctx.user(req).await?;
    let report = ctx.sync().access_report(&user, false).await?;
    Ok(Response::from_json(&report)?)
}

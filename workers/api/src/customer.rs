//! The customer's routes: link, callback, unlink, access. Authenticated by the web app's Appwrite JWT,
//! except the callback, which Discord's redirect reaches and which the single-use state authenticates.

use crate::context::{oauth, Ctx};
use crate::error::ApiError;
use serde_json::json;
use tollgate_app::link_discord::{callback_location, CallbackParams, LinkError};
use tollgate_core::AppwriteId;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::setting;
use worker::{Env, Request, Response, Url};

pub async fn link(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let ctx = Ctx::from_env(env, inv)?;
    let user = ctx.user(req).await?;
    inv.note("userId", user.id.as_str());
    let user_id = AppwriteId::parse(&user.id).map_err(|_| ApiError::Unauthenticated)?;
    let (oauth, authorize) = oauth(env)?;
    let url = ctx.sync().start_link(&user_id, &oauth, &authorize).await?;
    Ok(Response::from_json(&json!({ "url": url }))?)
}

/// Always a redirect to `APP_BASE_URL` (its own query kept) with `discord=linked`, or `discord=error&reason=…`
/// ([`LinkError::reason`]): a browser lands here, from Discord, and must land back on the web app whatever
/// happened (a cancel on Discord's page included). Only a missing or broken `APP_BASE_URL` has nowhere to
/// go and answers 503.
pub async fn callback(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let base = setting(env, "APP_BASE_URL").ok_or_else(|| ApiError::Misconfigured("APP_BASE_URL".into()))?;
    let base = Url::parse(&base).map_err(|e| ApiError::Misconfigured(format!("APP_BASE_URL: {e}")))?;
    let params = CallbackParams::from_pairs(req.url()?.query_pairs());
    let outcome = match Ctx::from_env(env, inv).and_then(|ctx| oauth(env).map(|(oauth, _)| (ctx, oauth))) {
        Ok((ctx, oauth)) => ctx.sync().finish_callback(&params, &oauth).await,
        Err(e) => Err(LinkError::NotConfigured(e.to_string())),
    };
    inv.note("outcome", if outcome.is_ok() { "linked" } else { "link_refused" });
    match &outcome {
        Ok(linked) => {
            if let Some(e) = &linked.role_sync_error {
                worker::console_warn!("api: linked {}, roles follow through the outbox: {e}", linked.user_id);
            }
        }
        Err(e @ LinkError::NotConfigured(_)) => worker::console_error!("api: the callback cannot run: {e}"),
        Err(e @ (LinkError::Step(_) | LinkError::Discord(_) | LinkError::NotAuthorized(_))) => {
            worker::console_warn!("api: the Discord link failed: {e}")
        }
        Err(_) => {}
    }
    let target = Url::parse(&callback_location(base.as_str(), &outcome))
        .map_err(|e| ApiError::Misconfigured(format!("APP_BASE_URL: {e}")))?;
    Ok(Response::redirect_with_status(target, 302)?)
}

pub async fn unlink(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let ctx = Ctx::from_env(env, inv)?;
    let user = ctx.user(req).await?;
    inv.note("userId", user.id.as_str());
    let user_id = AppwriteId::parse(&user.id).map_err(|_| ApiError::Unauthenticated)?;
    let unlinked = ctx.sync().unlink(&user_id).await?;
    Ok(Response::from_json(&json!({ "ok": true, "unlinked": unlinked }))?)
}

pub async fn access(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let ctx = Ctx::from_env(env, inv)?;
    let user = ctx.user(req).await?;
    inv.note("userId", user.id.as_str());
    let report = ctx.sync().access_report(&user, false).await?;
    Ok(Response::from_json(&report)?)
}

//! The customer's routes: link, callback, unlink (their access view is the console worker's).
//! Authenticated by the web app's Appwrite JWT, except the callback, which Discord's redirect reaches and
//! which the single-use state authenticates.

use serde_json::json;
use tollgate_app::link_discord::{callback_location, clear_link_cookie, link_cookie, link_cookie_value};
use tollgate_app::link_discord::{CallbackParams, LinkError};
use tollgate_app::settings::app_base_url;
use tollgate_core::AppwriteId;
use tollgate_web::context::{oauth, sync_now, Ctx};
use tollgate_web::error::ApiError;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::setting;
use worker::{Env, Request, Response, Url};

/// Answers `{url}` and sets the link cookie (its key must come back to the callback: the link finishes
/// only in this browser). A browser request from an origin other than ours or the web app's is refused, so
/// no other site can plant its own link in a visitor's browser.
pub async fn link(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let own = req.url()?;
    // `Origin: null` (a sandboxed frame, an opaque origin) is foreign too.
    if let Some(origin) = req.headers().get("origin")? {
        let app_origin = app_origin(env, &own)?;
        if origin != own.origin().ascii_serialization() && Some(&origin) != app_origin.as_ref() {
            return Err(ApiError::Forbidden {
                code: "origin_not_allowed",
                reason: "links are started from the web app's own pages",
            });
        }
    }
    let ctx = Ctx::from_env(env, inv)?;
    let user = ctx.user(req).await?;
    inv.note("userId", user.id.as_str());
    let user_id = AppwriteId::parse(&user.id).map_err(|_| ApiError::Unauthenticated)?;
    let (oauth, authorize) = oauth(env)?;
    let start = ctx.sync().start_link(&user_id, &oauth, &authorize).await?;
    let mut response = Response::from_json(&json!({ "url": start.url }))?;
    response.headers_mut().set("Set-Cookie", &link_cookie(&start.browser_key, own.as_str()))?;
    response.headers_mut().set("Cache-Control", "no-store")?;
    Ok(response)
}

/// The origin of the page the callback returns to (`APP_BASE_URL`, or our own `/access`).
fn app_origin(env: &Env, own: &Url) -> Result<Option<String>, ApiError> {
    let base = app_base_url(|n| setting(env, n), &own.origin().ascii_serialization())
        .map_err(|e| ApiError::Misconfigured(e.to_string()))?;
    Ok(Url::parse(&base).ok().map(|u| u.origin().ascii_serialization()))
}

/// Always a redirect to `APP_BASE_URL` (its own query kept; unset: our `/access` page) with
/// `discord=linked`, or `discord=error&reason=…` ([`LinkError::reason`]): a browser lands here, from
/// Discord, and must land back on the web app whatever happened (a cancel on Discord's page included). The
/// link cookie is checked (`browser_mismatch` when missing or different) and cleared. Only a broken
/// `APP_BASE_URL` has nowhere to go and answers 503.
pub async fn callback(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let own = req.url()?;
    let base = app_base_url(|n| setting(env, n), &own.origin().ascii_serialization())
        .map_err(|e| ApiError::Misconfigured(e.to_string()))?;
    let base = Url::parse(&base).map_err(|e| ApiError::Misconfigured(format!("APP_BASE_URL: {e}")))?;
    let params = CallbackParams::from_pairs(own.query_pairs());
    let browser_key = link_cookie_value(req.headers().get("cookie")?.as_deref());
    let outcome = match Ctx::from_env(env, inv).and_then(|ctx| oauth(env).map(|(oauth, _)| (ctx, oauth))) {
        Ok((ctx, oauth)) => ctx.sync().finish_callback(&params, browser_key.as_deref(), &oauth).await,
        Err(e) => Err(LinkError::NotConfigured(e.to_string())),
    };
    inv.note("outcome", if outcome.is_ok() { "linked" } else { "link_refused" });
    match &outcome {
        Ok(linked) => match &linked.role_sync_error {
            Some(e) => worker::console_warn!("api: linked {}, roles follow from reconciliation: {e}", linked.user_id),
            None => sync_now(env, inv, &linked.user_id).await,
        },
        Err(e @ LinkError::NotConfigured(_)) => worker::console_error!("api: the callback cannot run: {e}"),
        Err(e @ (LinkError::Step(_) | LinkError::Discord(_) | LinkError::NotAuthorized(_))) => {
            worker::console_warn!("api: the Discord link failed: {e}")
        }
        Err(LinkError::BrowserMismatch) => {
            worker::console_warn!("api: a link state came back in another browser (refused)")
        }
        Err(_) => {}
    }
    let target = Url::parse(&callback_location(base.as_str(), &outcome))
        .map_err(|e| ApiError::Misconfigured(format!("APP_BASE_URL: {e}")))?;
    // Built by hand: a `Response.redirect()` has immutable headers, and the cookie must be cleared.
    let mut response = Response::empty()?.with_status(302);
    response.headers_mut().set("Location", target.as_str())?;
    response.headers_mut().set("Set-Cookie", &clear_link_cookie(own.as_str()))?;
    Ok(response)
}

pub async fn unlink(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let ctx = Ctx::from_env(env, inv)?;
    let user = ctx.user(req).await?;
    inv.note("userId", user.id.as_str());
    let user_id = AppwriteId::parse(&user.id).map_err(|_| ApiError::Unauthenticated)?;
    let unlinked = ctx.sync().unlink(&user_id).await?;
    if unlinked {
        sync_now(env, inv, &user_id).await;
    }
    Ok(Response::from_json(&json!({ "ok": true, "unlinked": unlinked }))?)
}

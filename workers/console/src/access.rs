//! The customer's access view, `GET /me/access` (the web app's Appwrite JWT): the same report the admin
//! lookup shows, without the failures. Reading it claims purchases waiting for the customer's verified email;
//! then role-sync is prompted so their roles follow at once.

use tollgate_core::AppwriteId;
use tollgate_web::context::{sync_now, Ctx};
use tollgate_web::error::ApiError;
use tollgate_worker_common::observe::Invocation;
use worker::{Env, Request, Response};

pub async fn access(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let ctx = Ctx::from_env(env, inv)?;
    let user = ctx.user(req).await?;
    inv.note("userId", user.id.as_str());
    let report = ctx.sync().access_report(&user, false).await?;
    if report.claimed_now > 0 {
        if let Ok(user_id) = AppwriteId::parse(&user.id) {
            sync_now(env, inv, &user_id).await;
        }
    }
    Ok(Response::from_json(&report)?)
}

//! workers/role-sync: Discord roles as a projection of Appwrite.
//!
//! - `POST /sync` `{"userId"}` (`Authorization: Bearer <ROLE_SYNC_TOKEN>`): sync one user now; the webhook
//!   worker calls it after every access change.
//! - cron: every due `role_sync_jobs` entry, then a bounded slice of the whole guild (reconciliation).
//! - `GET /health`.
#![cfg(target_arch = "wasm32")]

use serde_json::json;
use subtle::ConstantTimeEq;
use tollgate_app::role_sync::{RoleSync, RoleSyncRequest, RECONCILE_PAGES_PER_RUN};
use tollgate_app::settings::customer_guild_id;
use tollgate_core::AppwriteId;
use tollgate_worker_common::{setting, AppParts};
use worker::{event, Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent};

/// Due jobs run per cron invocation.
pub const JOBS_PER_RUN: u32 = 20;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

fn answer(status: u16, body: serde_json::Value) -> Result<Response> {
    Ok(Response::from_json(&body)?.with_status(status))
}

fn error(status: u16, code: &str) -> Result<Response> {
    answer(status, json!({ "ok": false, "error": code }))
}

fn authorized(req: &Request, env: &Env) -> bool {
    let Some(expected) = setting(env, "ROLE_SYNC_TOKEN").filter(|t| !t.is_empty()) else { return false };
    let given = req.headers().get("authorization").ok().flatten().unwrap_or_default();
    let given = given.strip_prefix("Bearer ").unwrap_or_default();
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match (req.method(), req.path().as_str()) {
        (Method::Get, "/health") => answer(200, json!({ "ok": true })),
        (Method::Post, "/sync") => {
            if !authorized(&req, &env) {
                return error(401, "unauthorized");
            }
            let Ok(request) = req.json::<RoleSyncRequest>().await else { return error(400, "invalid_body") };
            let Ok(user_id) = AppwriteId::parse(&request.user_id) else { return error(400, "invalid_user_id") };
            let Ok(parts) = AppParts::from_env(&env) else { return error(503, "not_configured") };
            let (Ok(discord), Ok(guild)) = (parts.discord(&env), customer_guild_id(|n| setting(&env, n))) else {
                return error(503, "not_configured");
            };
            match RoleSync::new(parts.app(), &discord, guild).sync_user(&user_id).await {
                Ok(outcome) => answer(200, json!({ "ok": true, "outcome": outcome.code() })),
                Err(e) => {
                    worker::console_error!("role-sync: {e}");
                    error(503, "temporarily_unavailable")
                }
            }
        }
        (_, "/health" | "/sync") => error(405, "method_not_allowed"),
        _ => error(404, "not_found"),
    }
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let Ok(parts) = AppParts::from_env(&env) else {
        worker::console_error!("role-sync: not configured (Appwrite settings)");
        return;
    };
    let (Ok(discord), Ok(guild)) = (parts.discord(&env), customer_guild_id(|n| setting(&env, n))) else {
        worker::console_error!("role-sync: not configured (DISCORD_BOT_TOKEN, CUSTOMER_GUILD_ID)");
        return;
    };
    let sync = RoleSync::new(parts.app(), &discord, guild);
    match sync.run_due_jobs(JOBS_PER_RUN).await {
        Ok(ran) => worker::console_log!("role-sync: ran {} due jobs", ran.len()),
        Err(e) => worker::console_error!("role-sync: due jobs: {e}"),
    }
    match sync.reconcile_once(RECONCILE_PAGES_PER_RUN).await {
        Ok(report) => {
            worker::console_log!(
                "role-sync: reconciled {} members, {} role changes, pass finished: {}, stopped: {:?}",
                report.members_seen,
                report.role_changes,
                report.pass_finished,
                report.stopped
            );
            for skipped in &report.skipped {
                worker::console_warn!("role-sync: skipped member {}: {}", skipped.discord_user, skipped.reason);
            }
            for mapping in &report.unreadable_mappings {
                worker::console_error!(
                    "role-sync: a role mapping cannot be read, its roles are not managed: {mapping}"
                );
            }
        }
        Err(e) => worker::console_error!("role-sync: reconciliation: {e}"),
    }
}

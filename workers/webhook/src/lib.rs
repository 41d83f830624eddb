//! workers/webhook: provider webhooks on `webhooks.<domain>`. Routing, settings from the Worker's
//! environment, the JS clock, and errors mapped to HTTP; everything else is in `tollgate-app`.
//!
//! - `POST /sell/webhook`: Sell.app (the replaced deployment's URL, kept).
//! - `POST /stripe/webhook`: Stripe (`STRIPE_WEBHOOK_SECRET`, several secrets while one is rotated).
//! - `POST /admin/failures/{id}/replay` (`ADMIN_TOKEN`): an admin's replay, forwarded by the api worker, or
//!   a due failure handed out by the role-sync cron's fan-out.
//! - `POST /admin/claims/{id}/sweep` (`ADMIN_TOKEN`): a stale inbox claim handed out by the same fan-out.
//! - `GET /health`.
//! - cron: [`tollgate_app::App::run_scheduled`] (the inbox sweep of cut deliveries, retries, pending
//!   entitlements, pruning, and refund reconciliation when `SELLAPP_API_KEY` is set).
#![cfg(target_arch = "wasm32")]

mod admin;
mod error;
mod sellapp;
mod stripe;
mod trigger;

use tollgate_worker_common::observe::Invocation;
use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(start)]
fn start() {
    tollgate_worker_common::observe::install();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let invocation = Invocation::request("webhook", &req);
    let response = route(req, &env, &ctx, &invocation).await;
    let response = response.or_else(|e| {
        invocation.note("outcome", e.code());
        e.into_response()
    })?;
    invocation.finish(response)
}

async fn route(
    req: Request,
    env: &Env,
    ctx: &Context,
    invocation: &Invocation,
) -> std::result::Result<Response, error::WebhookError> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let post = req.method() == worker::Method::Post;
    match segments.as_slice() {
        ["admin", "failures", id, "replay"] if post => return admin::replay(&req, env, invocation, id).await,
        ["admin", "claims", id, "sweep"] if post => return admin::sweep(&req, env, invocation, id).await,
        ["admin", "failures", _, "replay"] | ["admin", "claims", _, "sweep"] => {
            return Err(error::WebhookError::MethodNotAllowed { allow: "POST" })
        }
        _ => {}
    }
    match (req.method(), path.as_str()) {
        (worker::Method::Get, "/health") => error::json(200, &serde_json::json!({ "ok": true }))
            .map_err(|e| error::WebhookError::Internal(e.to_string())),
        (worker::Method::Post, "/sell/webhook") => sellapp::handle(req, env, ctx, invocation).await,
        (worker::Method::Post, "/stripe/webhook") => stripe::handle(req, env, ctx, invocation).await,
        (_, "/health") => Err(error::WebhookError::MethodNotAllowed { allow: "GET" }),
        (_, "/sell/webhook" | "/stripe/webhook") => Err(error::WebhookError::MethodNotAllowed { allow: "POST" }),
        _ => Err(error::WebhookError::NotFound),
    }
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let budget = tollgate_app::settings::cron_subrequest_budget(|name| tollgate_worker_common::setting(&env, name));
    let invocation = Invocation::cron("webhook", &event.cron(), *budget.as_ref().unwrap_or(&0));
    if let Err(e) = budget {
        worker::console_error!("scheduled: not configured: {e}");
        return invocation.finish_cron("not_configured");
    }
    let parts = match tollgate_worker_common::AppParts::from_env(&env, invocation.subrequests()) {
        Ok(parts) => parts,
        Err(e) => {
            worker::console_error!("scheduled: not configured: {e}");
            return invocation.finish_cron("not_configured");
        }
    };
    let sellapp = match tollgate_app::refunds::sellapp_api(|name| tollgate_worker_common::setting(&env, name)) {
        Ok(api) => api.map(|api| api.with_subrequests(invocation.subrequests().clone())),
        Err(e) => {
            worker::console_error!("scheduled: refunds not checked: {e}");
            None
        }
    };
    let report = parts.app().run_scheduled(sellapp.as_ref()).await;
    invocation.note(
        "inbox",
        serde_json::json!({
            "found": report.inbox.found,
            "finished": report.inbox.finished,
            "failed": report.inbox.failed,
            "unrecoverable": report.inbox.unrecoverable,
        }),
    );
    invocation.note(
        "retries",
        serde_json::json!({
            "settled": report.retries.settled,
            "rescheduled": report.retries.rescheduled,
            "dead": report.retries.dead,
        }),
    );
    invocation.note(
        "pendingClaims",
        serde_json::json!({
            "checked": report.claims.checked,
            "claimed": report.claims.claimed,
            "awaitingVerification": report.claims.awaiting_verification,
            "unreadable": report.claims.unreadable,
            "migrated": report.claims.migrated,
        }),
    );
    invocation.note(
        "pruned",
        serde_json::json!({
            "failures": report.pruned_failures.deleted,
            "failuresLeft": report.pruned_failures.more_remain,
            "linkStates": report.pruned_oauth_states.deleted,
            "linkStatesLeft": report.pruned_oauth_states.more_remain,
        }),
    );
    match &report.refunds {
        None => worker::console_warn!("scheduled: SELLAPP_API_KEY is not set: refunds are not caught"),
        Some(refunds) => {
            invocation.note(
                "refunds",
                serde_json::json!({
                    "checked": refunds.checked,
                    "revoked": refunds.revoked.len(),
                    "attention": refunds.attention.len(),
                    "stopped": refunds.stopped.is_some(),
                }),
            );
            if let Some(stopped) = &refunds.stopped {
                worker::console_warn!("scheduled: refund reconciliation stopped: {stopped}");
            }
            for (source, status) in &refunds.attention {
                worker::console_warn!("scheduled: order {source} is {status}");
            }
        }
    }
    invocation.note("outOfBudget", report.out_of_budget.clone());
    invocation.note("errors", report.errors.len());
    for error in &report.errors {
        worker::console_error!("scheduled: {error}");
    }
    let changed: Vec<_> =
        report.inbox.users.iter().chain(&report.retries.users).chain(&report.claims.users).cloned().collect();
    trigger::prompt_after_cron(&env, &changed, invocation.subrequests()).await;
    invocation.finish_cron(if report.errors.is_empty() { "ok" } else { "errors" });
}

//! workers/webhook: provider webhooks on `webhooks.<domain>`. Routing, settings from the Worker's
//! environment, the JS clock, and errors mapped to HTTP; everything else is in `tollgate-app`.
//!
//! - `POST /sell/webhook`: Sell.app (the replaced deployment's URL, kept).
//! - `POST /stripe/webhook`: Stripe (`STRIPE_WEBHOOK_SECRET`, several secrets while one is rotated).
//! - `GET /health`.
//! - cron: [`tollgate_app::App::run_scheduled`] (retries, pending entitlements, pruning, and refund
//!   reconciliation when `SELLAPP_API_KEY` is set).
#![cfg(target_arch = "wasm32")]

mod error;
mod sellapp;
mod stripe;
mod trigger;

use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let path = req.path();
    let outcome = match (req.method(), path.as_str()) {
        (worker::Method::Get, "/health") => return error::json(200, &serde_json::json!({ "ok": true })),
        (worker::Method::Post, "/sell/webhook") => sellapp::handle(req, &env, &ctx).await,
        (worker::Method::Post, "/stripe/webhook") => stripe::handle(req, &env, &ctx).await,
        (_, "/health") => Err(error::WebhookError::MethodNotAllowed { allow: "GET" }),
        (_, "/sell/webhook" | "/stripe/webhook") => Err(error::WebhookError::MethodNotAllowed { allow: "POST" }),
        _ => Err(error::WebhookError::NotFound),
    };
    outcome.or_else(error::WebhookError::into_response)
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match tollgate_worker_common::AppParts::from_env(&env) {
        Ok(parts) => {
            let sellapp = match tollgate_app::refunds::sellapp_api(|name| tollgate_worker_common::setting(&env, name)) {
                Ok(api) => api,
                Err(e) => {
                    worker::console_error!("scheduled: refunds not checked: {e}");
                    None
                }
            };
            let report = parts.app().run_scheduled(sellapp.as_ref()).await;
            worker::console_log!(
                "scheduled: retries settled={} rescheduled={} dead={}; pending checked={} claimed={} awaiting_verification={} unreadable={} migrated={}; pruned failures={}{} link_states={}{}; errors={}",
                report.retries.settled,
                report.retries.rescheduled,
                report.retries.dead,
                report.claims.checked,
                report.claims.claimed,
                report.claims.awaiting_verification,
                report.claims.unreadable,
                report.claims.migrated,
                report.pruned_failures.deleted,
                if report.pruned_failures.more_remain { " (more left)" } else { "" },
                report.pruned_oauth_states.deleted,
                if report.pruned_oauth_states.more_remain { " (more left)" } else { "" },
                report.errors.len()
            );
            match &report.refunds {
                None => worker::console_warn!("scheduled: SELLAPP_API_KEY is not set: refunds are not caught"),
                Some(refunds) => {
                    worker::console_log!(
                        "scheduled: refunds checked={} revoked={} attention={}{}",
                        refunds.checked,
                        refunds.revoked.len(),
                        refunds.attention.len(),
                        refunds.stopped.as_deref().map(|s| format!("; stopped: {s}")).unwrap_or_default()
                    );
                    for (source, status) in &refunds.attention {
                        worker::console_warn!("scheduled: order {source} is {status}");
                    }
                }
            }
            for error in report.errors {
                worker::console_error!("scheduled: {error}");
            }
            let changed: Vec<_> = report.retries.users.iter().chain(&report.claims.users).cloned().collect();
            trigger::prompt_after_cron(&env, &changed).await;
        }
        Err(e) => worker::console_error!("scheduled: not configured: {e}"),
    }
}

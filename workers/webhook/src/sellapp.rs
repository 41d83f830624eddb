//! `POST /sell/webhook`: size limit, signature, then the use case; its outcome as an HTTP answer.
//! 2xx only once the delivery is applied or durably recorded for retry (a failure record, or its claim
//! with the body, which the cron's inbox sweep finishes). The answer comes by [`DELIVERY_DEADLINE`].

use crate::error::{json, WebhookError};
use serde_json::json;
use std::time::Duration;
use tollgate_app::settings::sellapp_webhook_secret;
use tollgate_app::IngestOutcome;
use tollgate_core::Clock;
use tollgate_providers::Headers;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::{setting, AppParts, JsClock};
use worker::{Context, Delay, Env, Request, Response};

/// A delivery still running this long after verification is answered: 202 `accepted` when its claim holds
/// the body (the cron's inbox sweep finishes it), 503 when not even that was stored. Below the shortest
/// response timeout of common webhook senders (10 s) and far above a normal delivery (p99 about 1 s):
/// docs/plans/2026-12-01-durable-inbox.md.
pub const DELIVERY_DEADLINE: Duration = Duration::from_secs(8);

/// Bodies larger than this are refused (413) before anything is verified or written.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 1 << 20;

/// The body, refused (413) when larger than [`MAX_WEBHOOK_BODY_BYTES`], declared or not.
pub async fn read_limited_body(req: &mut Request) -> Result<Vec<u8>, WebhookError> {
    let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_WEBHOOK_BODY_BYTES as u64) {
        return Err(WebhookError::PayloadTooLarge);
    }
    let body = req.bytes().await.map_err(|_| WebhookError::UnreadableBody)?;
    if body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(WebhookError::PayloadTooLarge);
    }
    Ok(body)
}

pub async fn handle(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    invocation: &Invocation,
) -> Result<Response, WebhookError> {
    let body = read_limited_body(&mut req).await?;
    let secret =
        sellapp_webhook_secret(|name| setting(env, name)).map_err(|e| WebhookError::Misconfigured(e.to_string()))?;
    let headers = Headers::from_pairs(req.headers().entries());
    let event = tollgate_providers::sellapp::verify(&body, &headers, &secret, JsClock.now())?;
    let parts =
        AppParts::from_env(env, invocation.subrequests()).map_err(|e| WebhookError::Misconfigured(e.to_string()))?;
    let outcome = parts
        .app()
        .ingest_sellapp_within(&event, Delay::from(DELIVERY_DEADLINE))
        .await
        .map_err(|e| WebhookError::FailureNotRecorded(e.to_string()))?;
    answer(outcome, env, ctx, invocation, |_| json!(true))
}

/// A delivery's outcome as the HTTP answer (the same for every provider; `ignored` says what an ignored
/// event's answer carries).
pub fn answer(
    outcome: IngestOutcome,
    env: &Env,
    ctx: &Context,
    invocation: &Invocation,
    ignored: impl Fn(Option<String>) -> serde_json::Value,
) -> Result<Response, WebhookError> {
    let (status, body) = match outcome {
        IngestOutcome::Applied { user_id } => {
            invocation.note("outcome", "applied");
            invocation.note("userId", user_id.as_str());
            crate::trigger::request_role_sync(env, ctx, &user_id, invocation.subrequests());
            (200, json!({ "ok": true }))
        }
        IngestOutcome::Pending => {
            invocation.note("outcome", "pending");
            (200, json!({ "ok": true, "pending": true }))
        }
        IngestOutcome::Duplicate => {
            invocation.note("outcome", "duplicate");
            (200, json!({ "ok": true, "duplicate": true }))
        }
        IngestOutcome::Ignored { event } => {
            invocation.note("outcome", "ignored");
            if let Some(event) = &event {
                invocation.note("eventType", event.as_str());
            }
            (200, json!({ "ok": true, "ignored": ignored(event) }))
        }
        IngestOutcome::FailureRecorded { code, .. } => {
            invocation.note("outcome", "failure_recorded");
            invocation.note("failureCode", code);
            (202, json!({ "ok": true, "recorded": true }))
        }
        IngestOutcome::Accepted => {
            invocation.note("outcome", "accepted");
            (202, json!({ "ok": true, "accepted": true }))
        }
    };
    json(status, &body).map_err(|e| WebhookError::Internal(e.to_string()))
}

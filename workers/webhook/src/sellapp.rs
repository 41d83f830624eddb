//! `POST /sell/webhook`: size limit, signature, then the use case; its outcome as an HTTP answer.
//! 2xx only once the delivery is applied or durably recorded for retry.

use crate::error::{json, WebhookError};
use serde_json::json;
use tollgate_app::settings::sellapp_webhook_secret;
use tollgate_app::IngestOutcome;
use tollgate_core::Clock;
use tollgate_providers::Headers;
use tollgate_worker_common::{setting, AppParts, JsClock};
use worker::{Context, Env, Request, Response};

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

pub async fn handle(mut req: Request, env: &Env, ctx: &Context) -> Result<Response, WebhookError> {
    let body = read_limited_body(&mut req).await?;
    let secret =
        sellapp_webhook_secret(|name| setting(env, name)).map_err(|e| WebhookError::Misconfigured(e.to_string()))?;
    let headers = Headers::from_pairs(req.headers().entries());
    let event = tollgate_providers::sellapp::verify(&body, &headers, &secret, JsClock.now())?;
    let parts = AppParts::from_env(env).map_err(|e| WebhookError::Misconfigured(e.to_string()))?;
    let outcome =
        parts.app().ingest_sellapp(&event).await.map_err(|e| WebhookError::FailureNotRecorded(e.to_string()))?;
    answer(outcome, env, ctx, |_| json!(true))
}

/// A delivery's outcome as the HTTP answer (the same for every provider; `ignored` says what an ignored
/// event's answer carries).
pub fn answer(
    outcome: IngestOutcome,
    env: &Env,
    ctx: &Context,
    ignored: impl Fn(Option<String>) -> serde_json::Value,
) -> Result<Response, WebhookError> {
    let (status, body) = match outcome {
        IngestOutcome::Applied { user_id } => {
            crate::trigger::request_role_sync(env, ctx, &user_id);
            (200, json!({ "ok": true }))
        }
        IngestOutcome::Pending => (200, json!({ "ok": true, "pending": true })),
        IngestOutcome::Duplicate => (200, json!({ "ok": true, "duplicate": true })),
        IngestOutcome::Ignored { event } => (200, json!({ "ok": true, "ignored": ignored(event) })),
        IngestOutcome::FailureRecorded { code, .. } => {
            worker::console_warn!("webhook: recorded as a failure ({code})");
            (202, json!({ "ok": true, "recorded": true }))
        }
    };
    json(status, &body).map_err(|e| WebhookError::Internal(e.to_string()))
}

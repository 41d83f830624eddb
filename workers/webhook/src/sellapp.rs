//! `POST /sell/webhook`: size limit, signature, then the use case; its outcome as an HTTP answer.
//! 2xx only once the delivery is applied or durably recorded for retry (a failure record, or its claim
//! with the body, which the cron's inbox sweep finishes). The answer comes by [`DELIVERY_DEADLINE`]; the
//! processing is not cut by it ([`deliver`]).

use crate::error::{json, WebhookError};
use serde_json::json;
use std::time::Duration;
use tollgate_app::settings::sellapp_webhook_secret;
use tollgate_app::{DeliveryProgress, IngestOutcome, NotRecorded};
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
    let progress = DeliveryProgress::default();
    let tracked = progress.clone();
    let work = async move { parts.app().ingest_sellapp_tracked(&event, &tracked).await };
    let outcome = deliver(env, ctx, invocation, progress, work).await?;
    answer(outcome, env, ctx, invocation, |_| json!(true))
}

/// Runs a delivery's processing (`work`) beside the request (`wait_until`), so that the answer never cuts
/// it, and answers with its outcome, or at [`DELIVERY_DEADLINE`] from how far it got: `Accepted` (202) when
/// its claim holds the body, 503 when not even that was stored. A delivery slow because Appwrite is slow
/// thus still finishes seconds later in the background (its role sync prompted there); the inbox sweep is
/// left only what a cut isolate stops.
pub async fn deliver(
    env: &Env,
    ctx: &Context,
    invocation: &Invocation,
    progress: DeliveryProgress,
    work: impl std::future::Future<Output = Result<IngestOutcome, NotRecorded>> + 'static,
) -> Result<IngestOutcome, WebhookError> {
    use futures::future::{select, Either};
    let (done, outcome) = futures::channel::oneshot::channel();
    let (env, subrequests) = (env.clone(), invocation.subrequests().clone());
    ctx.wait_until(async move {
        // Answered at the deadline already: what the answer would have prompted is prompted here.
        if let Err(Ok(IngestOutcome::Applied { user_id })) = done.send(work.await) {
            crate::trigger::prompt_now(&env, &user_id, &subrequests).await;
        }
    });
    match select(outcome, std::pin::pin!(Delay::from(DELIVERY_DEADLINE))).await {
        Either::Left((Ok(outcome), _)) => outcome.map_err(|e| WebhookError::FailureNotRecorded(e.to_string())),
        Either::Left((Err(_), _)) => Err(WebhookError::FailureNotRecorded("the processing stopped".to_owned())),
        Either::Right(_) if progress.durable() => {
            invocation.note("afterDeadline", "processing");
            Ok(IngestOutcome::Accepted)
        }
        Either::Right(_) => {
            Err(WebhookError::FailureNotRecorded("the claim and its body were not stored by the deadline".to_owned()))
        }
    }
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

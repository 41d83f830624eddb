//! `POST /stripe/webhook`: size limit, `Stripe-Signature` against every configured secret (rotation),
//! then the use case (with Stripe's API as the truth when `STRIPE_API_KEY` is set); the same contract and answers as `/sell/webhook`. An event type Tollgate does not
//! act on is answered `200 {"ok":true,"ignored":"<type>"}` with nothing written.

use crate::error::WebhookError;
use crate::sellapp::{answer, deliver, read_limited_body};
use serde_json::json;
use tollgate_app::settings::stripe_webhook_secrets;
use tollgate_app::DeliveryProgress;
use tollgate_core::Clock;
use tollgate_providers::Headers;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::{setting, AppParts, JsClock};
use worker::{Context, Env, Request, Response};

pub async fn handle(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    invocation: &Invocation,
) -> Result<Response, WebhookError> {
    let body = read_limited_body(&mut req).await?;
    let secrets =
        stripe_webhook_secrets(|name| setting(env, name)).map_err(|e| WebhookError::Misconfigured(e.to_string()))?;
    if secrets.is_empty() {
        return Err(WebhookError::Misconfigured("STRIPE_WEBHOOK_SECRET lists no secret".to_owned()));
    }
    let headers = Headers::from_pairs(req.headers().entries());
    let event = tollgate_providers::stripe::verify_any(&body, &headers, &secrets, JsClock.now())
        .map_err(WebhookError::Unauthorized)?;
    let parts =
        AppParts::from_env(env, invocation.subrequests()).map_err(|e| WebhookError::Misconfigured(e.to_string()))?;
    let progress = DeliveryProgress::default();
    let tracked = progress.clone();
    // With STRIPE_API_KEY, the subscription read from Stripe is the truth; without, event order decides.
    // One instantiation of the Stripe path (`StripeApi`), with or without a key: the worker's size budget.
    let work = async move { parts.app().ingest_stripe_tracked(&event, parts.stripe.as_ref(), &tracked).await };
    let outcome = deliver(env, ctx, invocation, progress, work).await?;
    // An ignored event's type is on the invocation's line (`outcome: ignored`, `eventType`): the log counts them.
    answer(outcome, env, ctx, invocation, |event| json!(event.unwrap_or_default()))
}

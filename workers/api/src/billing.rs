//! The customer's Stripe billing routes (Appwrite JWT): `POST /me/checkout {"plan"}`, `POST /me/cancel`,
//! `POST /me/billing-portal {"purpose": "update"|"remove"}`. What each does for each subscription status is the
//! core matrix, applied by `tollgate_app::billing`; this file only reads the request and shapes the answer.

use serde::Deserialize;
use serde_json::json;
use tollgate_app::billing::{Billing, BillingError, BillingOutcome, BillingUrls, StripeApi};
use tollgate_app::settings::stripe_config;
use tollgate_appwrite::User;
use tollgate_web::context::signed_in_user;
use tollgate_web::error::ApiError;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::{setting, AppParts, JsClock};
use worker::{Env, Request, Response};

/// A billing request body is a few dozen bytes.
const MAX_BODY: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    plan: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PortalBody {
    #[serde(default)]
    purpose: Option<String>,
}

struct Parts {
    parts: AppParts,
    stripe: StripeApi,
    urls: BillingUrls,
}

impl Parts {
    /// Stripe first: without `STRIPE_API_KEY` the routes say so (501), whatever else is missing.
    fn from_env(env: &Env, inv: &Invocation) -> Result<Self, ApiError> {
        stripe_config(|n| setting(env, n))
            .map_err(|e| ApiError::Misconfigured(e.to_string()))?
            .ok_or(ApiError::StripeNotConfigured)?;
        let parts = AppParts::from_env(env, inv.subrequests()).map_err(|e| ApiError::Misconfigured(e.to_string()))?;
        let stripe = parts.stripe.clone().ok_or(ApiError::StripeNotConfigured)?;
        let base = setting(env, "APP_BASE_URL").ok_or_else(|| ApiError::Misconfigured("APP_BASE_URL".into()))?;
        let urls = BillingUrls::from_base(&base).map_err(|e| ApiError::Misconfigured(format!("APP_BASE_URL: {e}")))?;
        Ok(Self { parts, stripe, urls })
    }

    fn billing(&self) -> Billing<'_, JsClock> {
        Billing::new(self.parts.app(), &self.stripe)
    }

    async fn user(&self, req: &Request) -> Result<User, ApiError> {
        signed_in_user(&self.parts.appwrite, req).await
    }
}

/// The JSON body, bounded; an empty body is `T::default()` when `empty` is given.
async fn body<T: for<'de> Deserialize<'de>>(req: &mut Request, empty: Option<T>) -> Result<T, ApiError> {
    let text = req.text().await.map_err(|_| ApiError::bad_request("invalid_body", "the body cannot be read"))?;
    if text.len() > MAX_BODY {
        return Err(ApiError::bad_request("invalid_body", "the body is too large"));
    }
    match empty {
        Some(default) if text.trim().is_empty() => Ok(default),
        _ => serde_json::from_str(&text).map_err(|e| ApiError::bad_request("invalid_body", e.to_string())),
    }
}

pub async fn checkout(req: &mut Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let parts = Parts::from_env(env, inv)?;
    let user = parts.user(req).await?;
    let CheckoutBody { plan } = body(req, None).await?;
    let plan = plan.trim();
    if plan.is_empty() || plan.len() > 128 {
        return Err(ApiError::bad_request("unknown_plan", "name a plan"));
    }
    answer(parts.billing().checkout(&user, plan, &parts.urls).await)
}

pub async fn cancel(req: &Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let parts = Parts::from_env(env, inv)?;
    let user = parts.user(req).await?;
    answer(parts.billing().cancel(&user).await)
}

pub async fn billing_portal(req: &mut Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let parts = Parts::from_env(env, inv)?;
    let user = parts.user(req).await?;
    let remove = match body(req, Some(PortalBody::default())).await?.purpose.as_deref() {
        None | Some("update") => false,
        Some("remove") => true,
        Some(_) => return Err(ApiError::bad_request("invalid_purpose", "purpose is update or remove")),
    };
    answer(parts.billing().billing_portal(&user, remove, &parts.urls).await)
}

fn answer(outcome: Result<BillingOutcome, BillingError>) -> Result<Response, ApiError> {
    let body = match outcome? {
        BillingOutcome::Checkout { url } | BillingOutcome::Portal { url } => json!({ "url": url }),
        BillingOutcome::Changed { subscription } => json!({ "changed": true, "subscription": subscription }),
        BillingOutcome::Canceling { period_end, subscription } => {
            json!({ "cancelAtPeriodEnd": true, "periodEnd": period_end, "subscription": subscription })
        }
    };
    Ok(Response::from_json(&body)?)
}

//! workers/api (`api.<domain>`): Discord linking, the customer's access and billing, and the front door
//! of the admin console.
//!
//! - `POST /discord/link`, `POST /discord/unlink`, `GET /me/access`: Appwrite JWT; CORS for `APP_BASE_URL`.
//! - `POST /me/checkout`, `POST /me/cancel`, `POST /me/billing-portal`: the customer's Stripe billing (Appwrite
//!   JWT; `STRIPE_API_KEY`).
//! - `GET /discord/callback`: Discord's redirect; answers with a redirect to `APP_BASE_URL`.
//! - The pages and the admin routes: `/admin` and everything under it, `/access`, `/assets/…` are handed as
//!   they are to the console worker through the `CONSOLE` service binding (workers/console), whose answer
//!   is relayed.
//! - `GET /health`.
#![cfg(target_arch = "wasm32")]

mod billing;
mod console;
mod customer;

use tollgate_web::error::ApiError;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::setting;
use worker::{event, Context, Env, Method, Request, Response, Result};

#[event(start)]
fn start() {
    tollgate_worker_common::observe::install();
}

/// Customer routes are called from the web app's origin.
fn with_cors(mut response: Response, env: &Env) -> Result<Response> {
    if let Some(origin) = setting(env, "APP_BASE_URL")
        .and_then(|base| worker::Url::parse(&base).ok())
        .map(|u| u.origin().ascii_serialization())
    {
        let headers = response.headers_mut();
        headers.set("Access-Control-Allow-Origin", &origin)?;
        headers.set("Access-Control-Allow-Headers", "Authorization, X-Appwrite-JWT, Content-Type")?;
        headers.set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")?;
        // A same-site web app calls `POST /discord/link` with credentials, so the link cookie is kept.
        headers.set("Access-Control-Allow-Credentials", "true")?;
        headers.set("Vary", "Origin")?;
    }
    Ok(response)
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let invocation = Invocation::request("api", &req);
    let response = route(req, &env, &invocation).await?;
    invocation.finish(response)
}

async fn route(mut req: Request, env: &Env, inv: &Invocation) -> Result<Response> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if matches!(segments.first(), Some(&("admin" | "access" | "assets"))) {
        return console::relay(req, env, inv).await.or_else(|e| {
            inv.note("outcome", e.code());
            e.into_response()
        });
    }
    let customer = matches!(
        segments.as_slice(),
        ["discord", "link" | "unlink"] | ["me", "access" | "checkout" | "cancel" | "billing-portal"]
    );
    if customer && req.method() == Method::Options {
        return with_cors(Response::empty()?.with_status(204), env);
    }
    let result = match (req.method(), segments.as_slice()) {
        (Method::Get, ["health"]) => Response::from_json(&serde_json::json!({ "ok": true })).map_err(ApiError::from),
        (Method::Post, ["discord", "link"]) => customer::link(&req, env, inv).await,
        (Method::Get, ["discord", "callback"]) => customer::callback(&req, env, inv).await,
        (Method::Post, ["discord", "unlink"]) => customer::unlink(&req, env, inv).await,
        (Method::Get, ["me", "access"]) => customer::access(&req, env, inv).await,
        (Method::Post, ["me", "checkout"]) => billing::checkout(&mut req, env, inv).await,
        (Method::Post, ["me", "cancel"]) => billing::cancel(&req, env, inv).await,
        (Method::Post, ["me", "billing-portal"]) => billing::billing_portal(&mut req, env, inv).await,
        (
            _,
            ["health"]
            | ["discord", "link" | "unlink" | "callback"]
            | ["me", "access" | "checkout" | "cancel" | "billing-portal"],
        ) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound("no such route")),
    };
    let response = result.or_else(|e| {
        inv.note("outcome", e.code());
        e.into_response()
    })?;
    if customer {
        with_cors(response, env)
    } else {
        Ok(response)
    }
}

//! workers/api (`api.<domain>`): Discord linking, the customer's access, admin routes.
//!
//! - `POST /discord/link`, `POST /discord/unlink`, `GET /me/access`: Appwrite JWT; CORS for `APP_BASE_URL`.
//! - `POST /me/checkout`, `POST /me/cancel`, `POST /me/billing-portal`: the customer's Stripe billing (Appwrite
//!   JWT; `STRIPE_API_KEY`).
//! - `GET /discord/callback`: Discord's redirect; answers with a redirect to `APP_BASE_URL`.
//! - `GET /admin/users?email=|id=|discord=`, `GET /admin/failures`, `GET /admin/failures/{id}`,
//!   `POST /admin/failures/{id}/replay` (forwarded to the webhook worker, `WEBHOOK_URL`),
//!   `POST /admin/users/{id}/sync` (forwarded to the role-sync worker, `ROLE_SYNC_URL`), `GET /admin/plans`,
//!   `GET /admin/health`, `GET /admin/me`: `Authorization: Bearer <ADMIN_TOKEN>` or an admin's Appwrite JWT.
//! - Pages: `GET /admin` (the console), `GET /access` (the customer's page), `GET /assets/{name}`.
//! - `GET /health`.
#![cfg(target_arch = "wasm32")]

mod admin;
mod billing;
mod context;
mod customer;
mod error;
mod pages;

use error::ApiError;
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
        (Method::Get, ["admin"]) => pages::page(env, pages::Page::Admin),
        (Method::Get, ["access"]) => pages::page(env, pages::Page::Access),
        (Method::Get, ["assets", name]) => pages::asset(&req, name),
        (Method::Get, ["admin", "me"]) => admin::me(&req, env, inv).await,
        (Method::Get, ["admin", "users"]) => admin::lookup(&req, env, inv).await,
        (Method::Get, ["admin", "failures"]) => admin::failures(&req, env, inv).await,
        (Method::Get, ["admin", "failures", id]) => admin::failure(&req, env, inv, id).await,
        (Method::Post, ["admin", "failures", id, "replay"]) => admin::replay(&req, env, inv, id).await,
        (Method::Post, ["admin", "users", id, "sync"]) => admin::sync_user(&req, env, inv, id).await,
        (Method::Get, ["admin", "plans"]) => admin::plans(&req, env, inv).await,
        (Method::Get, ["admin", "health"]) => admin::health(&req, env, inv).await,
        (
            _,
            ["health"]
            | ["admin" | "access"]
            | ["discord", "link" | "unlink" | "callback"]
            | ["me", "access" | "checkout" | "cancel" | "billing-portal"]
            | ["admin", "users" | "failures" | "me" | "plans" | "health"],
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

//! workers/console: the pages, the admin routes and the customer's access view, reached through the api
//! worker (a service binding for `/admin`, `/access`, `/assets/` and `/me/access`; see
//! workers/api/src/console.rs), so it answers on the api's origin.
//!
//! - Pages: `GET /admin` (the console), `GET /access` (the customer's page), `GET /assets/{name}`.
//! - `GET /me/access`: the customer's access (Appwrite JWT; CORS for `APP_BASE_URL`).
//! - `GET /admin/users?email=|id=|discord=`, `GET /admin/failures`, `GET /admin/failures/{id}`,
//!   `POST /admin/failures/{id}/replay` (forwarded to the webhook worker, `WEBHOOK_URL`),
//!   `POST /admin/users/{id}/sync` (forwarded to the role-sync worker, `ROLE_SYNC_URL`), `GET /admin/plans`,
//!   `GET /admin/health`, `GET /admin/me`: `Authorization: Bearer <ADMIN_TOKEN>` or an admin's Appwrite JWT.
//! - `GET /health`.
#![cfg(target_arch = "wasm32")]

mod access;
mod admin;
mod pages;

use tollgate_web::cors::with_cors;
use tollgate_web::error::ApiError;
use tollgate_worker_common::observe::Invocation;
use worker::{event, Context, Env, Method, Request, Response, Result};

#[event(start)]
fn start() {
    tollgate_worker_common::observe::install();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let invocation = Invocation::request("console", &req);
    let response = route(req, &env, &invocation).await?;
    invocation.finish(response)
}

async fn route(req: Request, env: &Env, inv: &Invocation) -> Result<Response> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let result = match (req.method(), segments.as_slice()) {
        (Method::Get, ["health"]) => Response::from_json(&serde_json::json!({ "ok": true })).map_err(ApiError::from),
        (Method::Get, ["admin"]) => pages::page(env, pages::Page::Admin),
        (Method::Get, ["access"]) => pages::page(env, pages::Page::Access),
        (Method::Get, ["assets", name]) => pages::asset(&req, name),
        (Method::Get, ["me", "access"]) => access::access(&req, env, inv).await,
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
            | ["me", "access"]
            | ["admin", "users" | "failures" | "me" | "plans" | "health"]
            | ["admin", "failures", _]
            | ["admin", "failures", _, "replay"]
            | ["admin", "users", _, "sync"],
        ) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound("no such route")),
    };
    let response = ApiError::answer(result, inv)?;
    if segments == ["me", "access"] {
        with_cors(response, env)
    } else {
        Ok(response)
    }
}

//! workers/api (`api.<domain>`): Discord linking and the customer's billing, and the front door of the
//! console worker.
//!
//! - `POST /discord/link`, `POST /discord/unlink`: Appwrite JWT; CORS for `APP_BASE_URL`.
//! - `POST /me/checkout`, `POST /me/cancel`, `POST /me/billing-portal`: the customer's Stripe billing (Appwrite
//!   JWT; `STRIPE_API_KEY`).
//! - `GET /discord/callback`: Discord's redirect; answers with a redirect to `APP_BASE_URL`.
//! - The pages, the admin routes and the customer's access view: `/admin` and everything under it,
//!   `/access`, `/assets/…` and `GET /me/access` are handed as they are to the console worker through the
//!   `CONSOLE` service binding (workers/console), whose answer is relayed; this worker answers CORS
//!   preflights of the customer's routes itself.
//! - `GET /health`.
#![cfg(target_arch = "wasm32")]

mod billing;
mod console;
mod customer;

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
    if console::serves(&segments) {
        return ApiError::answer(console::relay(req, env, inv).await, inv);
    }
    let result = match (req.method(), segments.as_slice()) {
        (Method::Get, ["health"]) => Response::from_json(&serde_json::json!({ "ok": true })).map_err(ApiError::from),
        (Method::Post, ["discord", "link"]) => customer::link(&req, env, inv).await,
        (Method::Get, ["discord", "callback"]) => customer::callback(&req, env, inv).await,
        (Method::Post, ["discord", "unlink"]) => customer::unlink(&req, env, inv).await,
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
    let response = ApiError::answer(result, inv)?;
    if customer {
        with_cors(response, env)
    } else {
        Ok(response)
    }
}

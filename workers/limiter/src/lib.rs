//! workers/limiter: the host of the `DiscordLimiter` Durable Object ([`limiter`]), the one owner of the
//! Discord rate-limiter state that the role-sync, api and console workers bind with `script_name`. A worker
//! of its own so that the object's code weighs on no other worker's size budget (docs/toolchain.md, "Worker
//! size"); it needs no settings, no route and no domain.
//!
//! - `GET /health`; anything else 404 (the object is reached through its binding only).
#![cfg(target_arch = "wasm32")]

pub mod limiter;

use serde_json::json;
use worker::{event, Context, Env, Method, Request, Response, Result};

#[event(start)]
fn start() {
    tollgate_worker_common::observe::install();
}

#[event(fetch)]
async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    match (req.method(), req.path().as_str()) {
        (Method::Get, "/health") => Response::from_json(&json!({ "ok": true })),
        _ => Ok(Response::from_json(&json!({ "ok": false, "error": "not_found" }))?.with_status(404)),
    }
}

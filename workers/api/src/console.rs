//! The front door of the pages, the admin console and the customer's access view: every request for
//! `/admin` (and under it), `/access`, `/assets/…` or `/me/access` (but its CORS preflight) is handed, as it came (method, headers, body), to the console worker through
//! the `CONSOLE` service binding, and its answer relayed. The console worker authenticates the admin
//! itself; this worker adds nothing and reads nothing. The split keeps each worker within its size budget
//! (docs/toolchain.md, "Worker size") while the pages stay on this origin, where their calls go. A service binding is a call
//! inside Cloudflare (no public URL, no extra secret); it counts as one subrequest of this invocation.

use tollgate_web::error::ApiError;
use tollgate_worker_common::observe::Invocation;
use worker::{Env, Request, Response};

/// The binding's name in `wrangler.toml` (`[[services]]`).
pub const CONSOLE_BINDING: &str = "CONSOLE";

/// The routes the console worker serves: the pages and their assets, the admin routes, and the customer's
/// access view (`GET /me/access`, the same report the admin lookup shows).
pub fn serves(segments: &[&str]) -> bool {
    matches!(segments, ["admin" | "access" | "assets", ..] | ["me", "access"])
}

pub async fn relay(req: Request, env: &Env, inv: &Invocation) -> Result<Response, ApiError> {
    let console = env.service(CONSOLE_BINDING).map_err(|_| ApiError::Misconfigured(CONSOLE_BINDING.into()))?;
    inv.subrequests().take().map_err(|e| ApiError::Upstream(e.to_string()))?;
    let answer =
        console.fetch_request(req).await.map_err(|e| ApiError::Upstream(format!("the console worker: {e}")))?;
    inv.note("outcome", "relayed");
    Ok(answer)
}

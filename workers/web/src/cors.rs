//! CORS for the customer's routes: the web app (`APP_BASE_URL`) calls them from its own origin, on
//! whichever of the two web workers serves the route.

use tollgate_worker_common::setting;
use worker::{Env, Response, Result};

/// Allows the web app's origin (none when `APP_BASE_URL` is unset or not a URL: same-origin pages only).
pub fn with_cors(mut response: Response, env: &Env) -> Result<Response> {
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

//! The pages, served by this worker on the api's origin (the api worker relays `/admin`, `/access` and
//! `/assets/`): the admin console (`GET /admin`) and the customer's access page (`GET /access`), plain HTML
//! with small scripts and one stylesheet under `/assets/`, embedded in the worker (no CDN, nothing fetched
//! elsewhere). The pages hold no secret: only Appwrite's public
//! endpoint and project id, and whether Stripe is configured. A strict Content-Security-Policy allows
//! scripts and styles from this origin only, and connections to it and to Appwrite.

use sha2::{Digest, Sha256};
use tollgate_app::settings::DISCORD_AUTHORIZE_URL;
use tollgate_web::error::ApiError;
use tollgate_worker_common::setting;
use worker::{Env, Request, Response, Url};

/// What both pages share: head, sign-in form, status line, confirmation dialog; `{{CONTENT}}` is the page.
const SHELL_HTML: &str = include_str!("../pages/shell.html");
const ADMIN_HTML: &str = include_str!("../pages/admin.html");
const ACCESS_HTML: &str = include_str!("../pages/access.html");
const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../pages/style.css")),
    ("common.js", "text/javascript; charset=utf-8", include_str!("../pages/common.js")),
    ("admin.js", "text/javascript; charset=utf-8", include_str!("../pages/admin.js")),
    ("access.js", "text/javascript; charset=utf-8", include_str!("../pages/access.js")),
];

pub enum Page {
    Admin,
    Access,
}

fn escape(value: &str) -> String {
    value.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn origin_of(url: &str) -> Option<String> {
    Url::parse(url).ok().map(|u| u.origin().ascii_serialization()).filter(|o| o != "null")
}

/// A short hash of every asset: their URLs carry it, so a new deployment is never served a stale script.
fn version() -> String {
    let mut hash = Sha256::new();
    for (_, _, body) in ASSETS {
        hash.update(body.as_bytes());
    }
    hash.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

pub fn page(env: &Env, which: Page) -> Result<Response, ApiError> {
    let endpoint =
        setting(env, "APPWRITE_ENDPOINT").ok_or_else(|| ApiError::Misconfigured("APPWRITE_ENDPOINT".into()))?;
    let appwrite = origin_of(&endpoint).ok_or_else(|| ApiError::Misconfigured("APPWRITE_ENDPOINT".into()))?;
    let project =
        setting(env, "APPWRITE_PROJECT_ID").ok_or_else(|| ApiError::Misconfigured("APPWRITE_PROJECT_ID".into()))?;
    let authorize = setting(env, "DISCORD_AUTHORIZE_URL").unwrap_or_else(|| DISCORD_AUTHORIZE_URL.to_owned());
    let discord = origin_of(&authorize).unwrap_or_default();
    let stripe = setting(env, "STRIPE_API_KEY").is_some_and(|k| !k.trim().is_empty());
    let (title, script, note, content) = match which {
        Page::Admin => {
            ("Tollgate admin", "admin.js", "With your account; it must be a member of the admins team.", ADMIN_HTML)
        }
        Page::Access => ("Your access", "access.js", "With the account you bought with.", ACCESS_HTML),
    };
    // The page's own parts first (constants), then the settings' values, escaped.
    let html = SHELL_HTML
        .replace("{{CONTENT}}", content)
        .replace("{{TITLE}}", title)
        .replace("{{SCRIPT}}", script)
        .replace("{{SIGN_IN_NOTE}}", note)
        .replace("{{VERSION}}", &version())
        .replace("{{APPWRITE_ENDPOINT}}", &escape(endpoint.trim_end_matches('/')))
        .replace("{{APPWRITE_PROJECT}}", &escape(&project))
        .replace("{{STRIPE}}", if stripe { "on" } else { "off" });
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' {appwrite}; img-src 'self' data:; \
         form-action 'self' {discord}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = Response::from_html(html)?;
    let headers = response.headers_mut();
    headers.set("Content-Security-Policy", &csp)?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    headers.set("Referrer-Policy", "no-referrer")?;
    Ok(response)
}

/// `GET /assets/{name}`: cached a day (the pages ask for them by version); `ETag` for revalidation.
pub fn asset(req: &Request, name: &str) -> Result<Response, ApiError> {
    let (_, content_type, body) =
        ASSETS.iter().find(|(n, _, _)| *n == name).ok_or(ApiError::NotFound("no such asset"))?;
    let etag = format!("\"{}\"", version());
    let mut response = if req.headers().get("if-none-match")?.as_deref() == Some(etag.as_str()) {
        Response::empty()?.with_status(304)
    } else {
        Response::ok(*body)?
    };
    let headers = response.headers_mut();
    headers.set("Content-Type", content_type)?;
    headers.set("Cache-Control", "public, max-age=86400")?;
    headers.set("ETag", &etag)?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    Ok(response)
}

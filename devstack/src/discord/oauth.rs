//! OAuth2: `/oauth2/authorize` approves at once as the Discord user named by `test_user=<id>` and
//! redirects with a code (and the `state`); without `test_user` it answers a consent page, as Discord
//! does, where a person (or a browser test) picks one of the seeded test users and presses Authorize, or
//! presses Cancel (back to the redirect URI with `error=access_denied`); the token endpoint takes only form bodies, as Discord does,
//! checks the client credentials (Basic or form), the code's redirect URI and, when the authorisation used
//! PKCE, the S256 verifier; revoke ends every token of that authorisation; `/users/@me` takes a Bearer token.

use super::guilds::user_json;
use super::store::seed;
use super::{DResult, DiscordError, State};
use axum::extract::Query;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use base64::Engine;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Discord's access tokens live 7 days; codes a few minutes.
pub const ACCESS_TOKEN_SECS: u64 = 604_800;
const CODE_LIFETIME_MS: u64 = 10 * 60 * 1_000;

pub(crate) fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

pub(crate) fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({ "error": error, "error_description": description }))).into_response()
}

pub async fn authorize(state: State, Query(query): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != seed::CLIENT_ID {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "Unknown client_id");
    }
    if get("response_type") != "code" || get("redirect_uri").is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "response_type=code and redirect_uri are required",
        );
    }
    let scope = get("scope").replace('+', " ");
    if !scope.split(' ').any(|s| s == "identify") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", "the identify scope is required");
    }
    let user = get("test_user");
    if user.is_empty() {
        return consent_page(&state, &query);
    }
    let challenge = match (query.get("code_challenge"), get("code_challenge_method")) {
        (Some(c), "S256") => Some(c.clone()),
        (Some(_), _) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "only S256 code challenges are supported")
        }
        (None, _) => None,
    };
    let c = state.store.lock();
    match user_json(&c, user) {
        Ok(Some(_)) => {}
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "devstack: name the approving Discord user with test_user=<id>",
            )
        }
    }
    let code = random_token();
    let stored = c.execute(
        "INSERT INTO codes (code, user_id, redirect_uri, scope, challenge, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![code, user, get("redirect_uri"), scope, challenge, (now_ms() + CODE_LIFETIME_MS) as i64],
    );
    if let Err(e) = stored {
        return DiscordError::storage(e).into_response();
    }
    let separator = if get("redirect_uri").contains('?') { '&' } else { '?' };
    let mut target = format!("{}{separator}code={code}", get("redirect_uri"));
    if let Some(state_param) = query.get("state") {
        let encoded: String = url_encode(state_param);
        target.push_str(&format!("&state={encoded}"));
    }
    Redirect::to(&target).into_response()
}

fn html_escape(value: &str) -> String {
    value.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Discord's consent page, reduced to what a test needs: which test user approves, Authorize, Cancel.
fn consent_page(state: &State, query: &HashMap<String, String>) -> Response {
    let users: Vec<(String, String)> = {
        let c = state.store.lock();
        let listed = c.prepare("SELECT id, username FROM users WHERE bot = 0 ORDER BY id").and_then(|mut s| {
            s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?.collect::<Result<Vec<_>, _>>()
        });
        match listed {
            Ok(users) => users,
            Err(e) => return DiscordError::storage(e).into_response(),
        }
    };
    let hidden: String = query
        .iter()
        .filter(|(k, _)| k.as_str() != "test_user")
        .map(|(k, v)| format!(r#"<input type="hidden" name="{}" value="{}">"#, html_escape(k), html_escape(v)))
        .collect();
    let choices: String = users
        .iter()
        .enumerate()
        .map(|(i, (id, name))| {
            let checked = if i == 0 { " checked" } else { "" };
            format!(
                r#"<p><label><input type="radio" name="test_user" value="{id}"{checked}> {} ({id})</label></p>"#,
                html_escape(name)
            )
        })
        .collect();
    let redirect = query.get("redirect_uri").map(String::as_str).unwrap_or_default();
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let mut cancel = format!("{redirect}{separator}error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request");
    if let Some(state_param) = query.get("state") {
        cancel.push_str(&format!("&state={}", url_encode(state_param)));
    }
    let page = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Authorize (devstack Discord)</title></head>
<body><main><h1>An application wants to access your Discord account</h1><p>Scopes: {scope}</p>
<form method="get" action="/oauth2/authorize">{hidden}<fieldset><legend>Sign in as (devstack test user)</legend>{choices}</fieldset>
<p><button type="submit" id="authorize">Authorize</button> <a id="cancel" href="{cancel}">Cancel</a></p></form></main></body></html>"#,
        scope = html_escape(query.get("scope").map(String::as_str).unwrap_or_default()),
        cancel = html_escape(&cancel),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn client_authenticated(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, secret) = match basic.as_deref().and_then(|b| b.split_once(':')) {
        Some((id, secret)) => (id.to_owned(), secret.to_owned()),
        None => {
            (form.get("client_id").cloned().unwrap_or_default(), form.get("client_secret").cloned().unwrap_or_default())
        }
    };
    id == seed::CLIENT_ID && secret == seed::CLIENT_SECRET
}

/// The form body, or `None` if the body is not form-encoded (Discord refuses JSON here).
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    form_type.then(|| url::form_urlencoded::parse(body).into_owned().collect())
}

fn not_a_form() -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "the body must be application/x-www-form-urlencoded; JSON is not permitted",
    )
}

fn issue(state: &State, user: &str, scope: &str) -> DResult<Value> {
    let (access, refresh) = (random_token(), random_token());
    let c = state.store.lock();
    c.execute(
        "INSERT INTO tokens (access_token, refresh_token, user_id, scope, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![access, refresh, user, scope, (now_ms() + ACCESS_TOKEN_SECS * 1_000) as i64],
    )?;
    Ok(
        json!({ "access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_SECS, "refresh_token": refresh, "scope": scope }),
    )
}

pub async fn token(state: State, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Some(form) = parse_form(&headers, &body) else { return not_a_form() };
    if !client_authenticated(&headers, &form) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
    }
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let grant = match get("grant_type") {
        "authorization_code" => {
            let c = state.store.lock();
            let row: Option<(String, String, String, Option<String>, i64)> = c
                .query_row(
                    "SELECT user_id, redirect_uri, scope, challenge, expires_at FROM codes WHERE code = ?1",
                    [get("code")],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
                .unwrap_or(None);
            let _ = c.execute("DELETE FROM codes WHERE code = ?1", [get("code")]);
            match row {
                Some((user, redirect, scope, challenge, expires))
                    if redirect == get("redirect_uri") && expires as u64 > now_ms() =>
                {
                    if let Some(challenge) = challenge {
                        use sha2::{Digest, Sha256};
                        let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .encode(Sha256::digest(get("code_verifier").as_bytes()));
                        if computed != challenge {
                            return oauth_error(
                                StatusCode::BAD_REQUEST,
                                "invalid_grant",
                                "code_verifier does not match the code challenge",
                            );
                        }
                    }
                    Some((user, scope))
                }
                _ => None,
            }
        }
        "refresh_token" => {
            let c = state.store.lock();
            let row: Option<(String, String)> = c
                .query_row(
                    "SELECT user_id, scope FROM tokens WHERE refresh_token = ?1 AND revoked = 0",
                    [get("refresh_token")],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .unwrap_or(None);
            let _ = c.execute("UPDATE tokens SET revoked = 1 WHERE refresh_token = ?1", [get("refresh_token")]);
            row
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )
        }
    };
    match grant {
        Some((user, scope)) => match issue(&state, &user, &scope) {
            Ok(body) => Json(body).into_response(),
            Err(e) => e.into_response(),
        },
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid \"code\" in request."),
    }
}

pub async fn revoke(state: State, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Some(form) = parse_form(&headers, &body) else { return not_a_form() };
    if !client_authenticated(&headers, &form) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
    }
    let token = form.get("token").cloned().unwrap_or_default();
    let c = state.store.lock();
    let user: Option<String> = c
        .query_row("SELECT user_id FROM tokens WHERE access_token = ?1 OR refresh_token = ?1", [&token], |r| r.get(0))
        .optional()
        .unwrap_or(None);
    if let Some(user) = user {
        // Revoking one token ends the whole authorisation.
        let _ = c.execute("UPDATE tokens SET revoked = 1 WHERE user_id = ?1", [&user]);
    }
    Json(json!({})).into_response()
}

pub async fn current_user(state: State, headers: HeaderMap) -> DResult<Json<Value>> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if authorization.starts_with("Bot ") {
        // The bot asking about itself.
        super::guilds::require_bot(&headers)?;
        let c = state.store.lock();
        let mut json = user_json(&c, seed::BOT_USER_ID)?.ok_or_else(DiscordError::unauthorized)?;
        json["mfa_enabled"] = json!(false);
        json["locale"] = json!("en-US");
        return Ok(Json(json));
    }
    let token = authorization.strip_prefix("Bearer ").ok_or_else(DiscordError::unauthorized)?;
    let c = state.store.lock();
    let user: Option<String> = c
        .query_row(
            "SELECT user_id FROM tokens WHERE access_token = ?1 AND revoked = 0 AND expires_at > ?2",
            params![token, now_ms() as i64],
            |r| r.get(0),
        )
        .optional()?;
    let user = user.ok_or_else(DiscordError::unauthorized)?;
    let mut json = user_json(&c, &user)?.ok_or_else(DiscordError::unauthorized)?;
    json["mfa_enabled"] = json!(false);
    json["locale"] = json!("en-US");
    Ok(Json(json))
}

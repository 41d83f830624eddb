//! The account routes a browser uses (Appwrite's client API, no key): email/password sessions, the
//! session's user, JWTs for a server to act as that user, and signing out; and CORS as Appwrite answers a
//! registered web platform.
//!
//! As Appwrite does: `POST /v1/account/sessions/email` answers the session model (its `secret` empty for a
//! client) and sets the session cookie `a_session_<project>` (and `a_session_<project>_legacy`, without
//! `SameSite`), whose value is base64 of `{"id": <user>, "secret": <secret>}`; `Secure` only over https.
//! When the calling page is on another domain than the endpoint, the same cookie is also returned in the
//! `X-Fallback-Cookies` header, which the web SDK keeps and sends back as a header. A session is found
//! from either. Passwords are stored salted and hashed, apart from the user model (which never shows them).
//!
//! Web platforms: devstack serves local pages only, so `localhost` and `127.0.0.1` (any port) are its
//! registered platforms; another origin gets Appwrite's 403 `general_unknown_origin` on client routes.

use super::error::{ApiError, ApiResult};
use super::models::{format_time, now, now_millis, object, required_str, resolve_id};
use super::users::load_user;
use super::{AppState, State};
use axum::body::Bytes;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Appwrite's default session length: a year.
const SESSION_SECS: i64 = 365 * 24 * 3_600;
/// Hostnames of the registered web platforms.
const WEB_PLATFORMS: &[&str] = &["localhost", "127.0.0.1"];
const ALLOW_HEADERS: &str = "Origin, Cookie, Set-Cookie, X-Requested-With, Content-Type, Access-Control-Allow-Origin, Access-Control-Request-Headers, Accept, X-Appwrite-Project, X-Appwrite-Key, X-Appwrite-Locale, X-Appwrite-Mode, X-Appwrite-JWT, X-Appwrite-Response-Format, X-Appwrite-Timeout, X-SDK-Version, X-SDK-Name, X-SDK-Language, X-SDK-Platform, X-SDK-GraphQL, X-Appwrite-ID, X-Appwrite-Timestamp, Content-Range, Range, Cache-Control, Expires, Pragma, X-Forwarded-For, X-Forwarded-User-Agent, X-Fallback-Cookies";

fn password_hash(salt: &str, password: &str) -> String {
    hex(&Sha256::digest(format!("{salt}:{password}").as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /v1/users` with `password`: Appwrite's rule is 8 to 256 characters.
pub(crate) fn store_password(connection: &Connection, user_id: &str, password: &str) -> ApiResult<()> {
    if !(8..=256).contains(&password.chars().count()) {
        return Err(ApiError::argument(
            "Invalid `password` param: Password must be between 8 and 256 characters long.",
        ));
    }
    let salt = format!("{:032x}", rand::random::<u128>());
    connection.execute(
        "INSERT OR REPLACE INTO passwords (user_id, salt, hash) VALUES (?1, ?2, ?3)",
        params![user_id, salt, password_hash(&salt, password)],
    )?;
    Ok(())
}

fn cookie_name(state: &AppState) -> String {
    format!("a_session_{}", state.project_id)
}

fn guest() -> ApiError {
    ApiError::new(401, "general_unauthorized_scope", "User (role: guests) missing scopes ([\"account\"])")
}

fn encode_session(user_id: &str, secret: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!({ "id": user_id, "secret": secret }).to_string())
}

/// The session secret the request carries: the session cookie (or its legacy twin), else the
/// `X-Fallback-Cookies` header.
fn session_secret(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(state);
    let legacy = format!("{name}_legacy");
    let from_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name || *k == legacy)
        .map(|(_, v)| v.to_owned());
    let from_fallback = || {
        let raw = headers.get("x-fallback-cookies")?.to_str().ok()?;
        serde_json::from_str::<Value>(raw).ok()?.get(&name)?.as_str().map(str::to_owned)
    };
    let encoded = from_cookie.or_else(from_fallback)?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let value: Value = serde_json::from_slice(&decoded).ok()?;
    value["secret"].as_str().map(str::to_owned)
}

/// `(session id, user id)` of the request's live session.
fn current_session(state: &AppState, connection: &Connection, headers: &HeaderMap) -> ApiResult<(String, String)> {
    let secret = session_secret(state, headers).ok_or_else(guest)?;
    let row: Option<(String, String, i64)> = connection
        .query_row("SELECT id, user_id, expires_at FROM sessions WHERE secret = ?1", [&secret], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    match row {
        Some((id, user, expires)) if expires > now_millis() => Ok((id, user)),
        _ => Err(guest()),
    }
}

/// The user a request acts as on the account routes: its JWT (`X-Appwrite-JWT`), else its session.
pub(crate) fn account_user(state: &AppState, connection: &Connection, headers: &HeaderMap) -> ApiResult<String> {
    if let Some(jwt) = headers.get("x-appwrite-jwt").and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) {
        let row: Option<(String, i64)> = connection
            .query_row("SELECT user_id, expires_at FROM jwts WHERE token = ?1", [jwt], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        return match row {
            Some((user_id, expires_at)) if expires_at > now_millis() => Ok(user_id),
            _ => Err(ApiError::new(401, "user_jwt_invalid", "The JWT token is invalid. Please check the value of the X-Appwrite-JWT header to ensure the correct token is being used.")),
        };
    }
    current_session(state, connection, headers).map(|(_, user)| user)
}

/// The calling page's host differs from the endpoint's: Appwrite cannot set a first-party cookie there.
fn cross_domain(headers: &HeaderMap) -> bool {
    let host_of = |value: &str| url::Url::parse(value).ok().and_then(|u| u.host_str().map(str::to_owned));
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).and_then(host_of);
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).and_then(|h| host_of(&format!("http://{h}")));
    origin.is_some_and(|o| Some(o) != host)
}

fn session_cookies(state: &AppState, value: &str, expires: chrono::DateTime<chrono::Utc>, https: bool) -> [String; 2] {
    let name = cookie_name(state);
    let expires = expires.format("%a, %d %b %Y %H:%M:%S GMT");
    let secure = if https { "; secure" } else { "" };
    [
        format!("{name}_legacy={value}; expires={expires}; path=/{secure}; httponly"),
        format!("{name}={value}; expires={expires}; path=/{secure}; httponly; samesite=None"),
    ]
}

pub async fn create_email_session(state: State, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let body = object(&body)?;
    let email = required_str(&body, "email")?.trim().to_lowercase();
    let password = required_str(&body, "password")?;
    let invalid =
        || ApiError::new(401, "user_invalid_credentials", "Invalid credentials. Please check the email and password.");
    let connection = state.store.lock();
    let user_id: String = connection
        .query_row("SELECT id FROM users WHERE email = ?1", [&email], |r| r.get(0))
        .optional()?
        .ok_or_else(invalid)?;
    let stored: Option<(String, String)> = connection
        .query_row("SELECT salt, hash FROM passwords WHERE user_id = ?1", [&user_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match stored {
        Some((salt, hash)) if password_hash(&salt, password) == hash => {}
        _ => return Err(invalid()),
    }
    let user = load_user(&connection, &user_id)?;
    if user["status"] == json!(false) {
        return Err(ApiError::new(401, "user_blocked", "The current user has been blocked."));
    }
    let id = resolve_id("unique()", "sessionId")?;
    let secret = format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
    let expires = chrono::Utc::now() + chrono::Duration::seconds(SESSION_SECS);
    connection.execute(
        "INSERT INTO sessions (id, secret, user_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, secret, user_id, expires.timestamp_millis()],
    )?;
    let created = now();
    let session = json!({
        "$id": id, "$createdAt": created, "$updatedAt": created, "userId": user_id, "expire": format_time(expires),
        "provider": "email", "providerUid": email, "providerAccessToken": "", "providerAccessTokenExpiry": "",
        "providerRefreshToken": "", "ip": "127.0.0.1", "osCode": "", "osName": "", "osVersion": "", "clientType": "",
        "clientCode": "", "clientName": "", "clientVersion": "", "clientEngine": "", "clientEngineVersion": "",
        "deviceName": "", "deviceBrand": "", "deviceModel": "", "countryCode": "--", "countryName": "Unknown",
        "current": true, "factors": ["password"], "secret": "", "mfaUpdatedAt": ""
    });
    let value = encode_session(&user_id, &secret);
    let https = headers.get("x-forwarded-proto").is_some_and(|p| p == "https");
    let mut response = (StatusCode::CREATED, Json(session)).into_response();
    for cookie in session_cookies(&state, &value, expires, https) {
        response.headers_mut().append(header::SET_COOKIE, header_value(&cookie)?);
    }
    if cross_domain(&headers) {
        let fallback = json!({ cookie_name(&state): value }).to_string();
        response.headers_mut().insert("x-fallback-cookies", header_value(&fallback)?);
    }
    Ok(response)
}

fn header_value(value: &str) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(value).map_err(|e| ApiError::new(500, "general_server_error", e.to_string()))
}

/// `GET /v1/account`: the user of the request's JWT or session.
pub async fn get(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let connection = state.store.lock();
    let user = account_user(&state, &connection, &headers)?;
    Ok(Json(load_user(&connection, &user)?))
}

/// `POST /v1/account/jwts`: a JWT for the session's user (a server then acts as that user with it).
pub async fn create_jwt(state: State, headers: HeaderMap, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = object(&body)?;
    let duration = super::users::jwt_duration(&body)?;
    let connection = state.store.lock();
    let user = account_user(&state, &connection, &headers)?;
    Ok((StatusCode::CREATED, Json(json!({ "jwt": super::users::issue_jwt(&connection, &user, duration)? }))))
}

/// `DELETE /v1/account/sessions/{sessionId}` (`current`, or the id of one of the user's sessions).
pub async fn delete_session(state: State, headers: HeaderMap, Path(session_id): Path<String>) -> ApiResult<Response> {
    let connection = state.store.lock();
    let (current, user) = current_session(&state, &connection, &headers)?;
    let target = if session_id == "current" { current.clone() } else { session_id };
    let deleted = connection.execute("DELETE FROM sessions WHERE id = ?1 AND user_id = ?2", params![target, user])?;
    if deleted == 0 {
        return Err(ApiError::not_found("user_session_not_found", "The current user session could not be found."));
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if target == current {
        for cookie in session_cookies(&state, "", chrono::DateTime::UNIX_EPOCH, false) {
            response.headers_mut().append(header::SET_COOKIE, header_value(&cookie)?);
        }
    }
    Ok(response)
}

/// CORS as Appwrite answers a registered web platform: the origin echoed with credentials allowed, the
/// SDK's headers, the session headers exposed; preflights answered at once. A client request (no API key)
/// from an unregistered origin is refused.
pub async fn cors(request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Some(origin) = origin else { return next.run(request).await };
    let registered = url::Url::parse(&origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| WEB_PLATFORMS.contains(&h.as_str()));
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else if !registered && !request.headers().contains_key("x-appwrite-key") {
        let host =
            url::Url::parse(&origin).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or(origin.clone());
        return ApiError::new(403, "general_unknown_origin", format!("Invalid Origin. Register your new client ({host}) as a new Web platform on your project console dashboard")).into_response();
    } else {
        next.run(request).await
    };
    if registered {
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        set("access-control-allow-origin", &origin);
        set("access-control-allow-credentials", "true");
        set("access-control-allow-methods", "GET, POST, PUT, PATCH, DELETE");
        set("access-control-allow-headers", ALLOW_HEADERS);
        set("access-control-expose-headers", "X-Appwrite-Session, X-Fallback-Cookies");
    }
    response
}

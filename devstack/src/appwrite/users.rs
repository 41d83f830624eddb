//! Users (a password, when given, is kept by `account.rs`), user JWTs, and `GET /v1/health`.
//!
//! Every user answer is the full user model, `emailVerification` included: Tollgate gives a pending
//! purchase only to an account whose email is verified, and `PATCH /v1/users/{userId}/verification` is how
//! a server (or a test) marks it verified without a verification email.

use super::error::{ApiError, ApiResult};
use super::models::{now, now_millis, object, optional_str, parse_stored, required_str, resolve_id};
use super::queries::{apply, ListQuery, ValueKind};
use super::store::next_seq;
use super::State;
use axum::body::Bytes;
use axum::extract::{Path, Query as UrlQuery};
use axum::http::StatusCode;
use axum::Json;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

/// What `GET /v1/users` may filter and order on: the attributes the spec lists (1.8), plus the id and
/// timestamps Appwrite allows on every list (and `$sequence`, which is how [`ListQuery`] records an
/// `orderAsc`/`orderDesc` without an attribute).
const USER_QUERY_ATTRIBUTES: &[(&str, ValueKind)] = &[
    ("$id", ValueKind::Text),
    ("$createdAt", ValueKind::Text),
    ("$updatedAt", ValueKind::Text),
    ("$sequence", ValueKind::Text),
    ("name", ValueKind::Text),
    ("email", ValueKind::Text),
    ("phone", ValueKind::Text),
    ("status", ValueKind::Boolean),
    ("passwordUpdate", ValueKind::Text),
    ("registration", ValueKind::Text),
    ("emailVerification", ValueKind::Boolean),
    ("phoneVerification", ValueKind::Boolean),
    ("labels", ValueKind::Text),
];

/// Default and largest JWT lifetimes (Appwrite: 900 s, at most 3600 s).
const JWT_DEFAULT_SECS: i64 = 900;
const JWT_MAX_SECS: i64 = 3_600;

pub async fn health() -> Json<Value> {
    Json(json!({ "name": "http", "ping": 0, "status": "pass" }))
}

pub(crate) fn load_user(connection: &Connection, id: &str) -> ApiResult<Value> {
    let json: Option<String> =
        connection.query_row("SELECT json FROM users WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    match json {
        Some(json) => parse_stored(&json),
        None => Err(ApiError::not_found("user_not_found", "User with the requested ID could not be found.")),
    }
}

pub async fn create(state: State, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = object(&body)?;
    let id = resolve_id(required_str(&body, "userId")?, "userId")?;
    let email = optional_str(&body, "email").map(|e| e.trim().to_lowercase());
    if let Some(email) = &email {
        if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
            return Err(ApiError::argument("Invalid `email` param: Value must be a valid email address"));
        }
    }
    let name = optional_str(&body, "name").unwrap_or_default();
    let created = now();
    let user = json!({
        "$id": id, "$createdAt": created, "$updatedAt": created, "name": name,
        "registration": created, "status": true, "labels": [], "passwordUpdate": if body.contains_key("password") { created.clone() } else { String::new() },
        "email": email.clone().unwrap_or_default(), "phone": optional_str(&body, "phone").unwrap_or_default(),
        "emailVerification": false, "phoneVerification": false, "mfa": false, "prefs": {}, "targets": [], "accessedAt": ""
    });
    let connection = state.store.lock();
    if connection.query_row("SELECT 1 FROM users WHERE id = ?1", [&id], |_| Ok(())).optional()?.is_some() {
        return Err(ApiError::conflict(
            "user_already_exists",
            "A user with the same id, email, or phone already exists in this project.",
        ));
    }
    if let Some(email) = &email {
        if connection.query_row("SELECT 1 FROM users WHERE email = ?1", [email], |_| Ok(())).optional()?.is_some() {
            return Err(ApiError::conflict(
                "user_email_already_exists",
                "A user with the same email already exists in the current project.",
            ));
        }
    }
    if let Some(password) = body.get("password") {
        let password = password
            .as_str()
            .ok_or_else(|| ApiError::argument("Invalid `password` param: Value must be a valid string"))?;
        super::account::store_password(&connection, &id, password)?;
    }
    let seq = next_seq(&connection, "users")?;
    connection.execute(
        "INSERT INTO users (id, email, seq, json) VALUES (?1, ?2, ?3, ?4)",
        params![id, email, seq, user.to_string()],
    )?;
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn get(state: State, Path(user_id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(load_user(&state.store.lock(), &user_id)?))
}

pub async fn list(state: State, UrlQuery(raw): UrlQuery<Vec<(String, String)>>) -> ApiResult<Json<Value>> {
    let query = ListQuery::parse(&raw)?;
    query.check_fixed_attributes(USER_QUERY_ATTRIBUTES)?;
    let connection = state.store.lock();
    // An `equal` on `email` or `$id` that every match must satisfy narrows the rows by the table's keys
    // (finding a buyer by email is one lookup per purchase; reading every user made it cost what the
    // users table holds). The whole query is still evaluated on those rows.
    let keyed = query.required_comparisons().into_iter().find_map(|c| {
        let column = match (c.method, c.attribute) {
            ("equal", "email") => "email",
            ("equal", "$id") => "id",
            _ => return None,
        };
        let values: Option<Vec<String>> = c.values.iter().map(|v| v.as_str().map(str::to_owned)).collect();
        values.map(|values| (column, values))
    });
    let rows: Vec<String> = match keyed {
        Some((column, values)) => {
            let marks = vec!["?"; values.len()].join(",");
            let sql = format!("SELECT json FROM users WHERE {column} IN ({marks}) ORDER BY seq");
            let mut statement = connection.prepare(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(values.iter()), |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        }
        None => {
            let mut statement = connection.prepare("SELECT json FROM users ORDER BY seq")?;
            let rows = statement.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        }
    };
    let users = rows.iter().map(|j| parse_stored(j)).collect::<ApiResult<Vec<_>>>()?;
    let users = users.into_iter().filter(|u| query.matches_search(u, &["$id", "name", "email", "phone"])).collect();
    let (total, page) = apply(&query, users)?;
    Ok(Json(json!({ "total": total, "users": page })))
}

/// `PATCH /v1/users/{userId}/verification` (`updateEmailVerification`): the body is checked before the
/// user is looked up, as Appwrite validates parameters before running the action.
pub async fn update_email_verification(
    state: State,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body = object(&body)?;
    let verified = match body.get("emailVerification") {
        None | Some(Value::Null) => return Err(ApiError::argument("Param \"emailVerification\" is not optional.")),
        Some(value) => value
            .as_bool()
            .ok_or_else(|| ApiError::argument("Invalid `emailVerification` param: Value must be a valid boolean"))?,
    };
    let connection = state.store.lock();
    let mut user = load_user(&connection, &user_id)?;
    user["emailVerification"] = json!(verified);
    user["$updatedAt"] = json!(now());
    connection.execute("UPDATE users SET json = ?1 WHERE id = ?2", params![user.to_string(), user_id])?;
    Ok(Json(user))
}

pub async fn delete(state: State, Path(user_id): Path<String>) -> ApiResult<StatusCode> {
    let connection = state.store.lock();
    load_user(&connection, &user_id)?;
    let teams: Vec<String> = connection
        .prepare("SELECT team_id FROM memberships WHERE user_id = ?1")?
        .query_map([&user_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    connection.execute("DELETE FROM memberships WHERE user_id = ?1", [&user_id])?;
    for team in teams {
        super::teams::adjust_total(&connection, &team, -1)?;
    }
    connection.execute("DELETE FROM jwts WHERE user_id = ?1", [&user_id])?;
    connection.execute("DELETE FROM sessions WHERE user_id = ?1", [&user_id])?;
    connection.execute("DELETE FROM passwords WHERE user_id = ?1", [&user_id])?;
    connection.execute("DELETE FROM users WHERE id = ?1", [&user_id])?;
    Ok(StatusCode::NO_CONTENT)
}

/// `duration` of a JWT request (seconds; Appwrite: default 900, at most 3600).
pub(crate) fn jwt_duration(body: &serde_json::Map<String, Value>) -> ApiResult<i64> {
    match body.get("duration") {
        None | Some(Value::Null) => Ok(JWT_DEFAULT_SECS),
        Some(value) => value.as_i64().filter(|d| (0..=JWT_MAX_SECS).contains(d)).ok_or_else(|| {
            ApiError::argument("Invalid `duration` param: Value must be a valid range between 0 and 3,600")
        }),
    }
}

pub(crate) fn issue_jwt(connection: &Connection, user_id: &str, duration: i64) -> ApiResult<String> {
    let token = format!("devstack.{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
    let expires_at = now_millis() + duration * 1_000;
    connection.execute(
        "INSERT INTO jwts (token, user_id, expires_at) VALUES (?1, ?2, ?3)",
        params![token, user_id, expires_at],
    )?;
    Ok(token)
}

pub async fn create_jwt(
    state: State,
    Path(user_id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let duration = jwt_duration(&object(&body)?)?;
    let connection = state.store.lock();
    load_user(&connection, &user_id)?;
    Ok((StatusCode::CREATED, Json(json!({ "jwt": issue_jwt(&connection, &user_id, duration)? }))))
}

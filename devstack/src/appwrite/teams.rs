//! Teams and memberships. An API-key caller's membership is created confirmed (`confirm: true`, `joined`
//! set), with no invitation; adding the same user again answers 409 `membership_already_confirmed`, and
//! the (team, user) pair is unique in the store, so concurrent adds yield exactly one membership.

use super::error::{ApiError, ApiResult};
use super::models::{now, object, optional_str, parse_stored, required_str, resolve_id};
use super::queries::{apply, ListQuery};
use super::store::next_seq;
use super::users::load_user;
use super::State;
use axum::body::Bytes;
use axum::extract::{Path, Query as UrlQuery};
use axum::http::StatusCode;
use axum::Json;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

fn load_team(connection: &Connection, id: &str) -> ApiResult<Value> {
    let json: Option<String> =
        connection.query_row("SELECT json FROM teams WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    json.map(|j| parse_stored(&j))
        .unwrap_or_else(|| Err(ApiError::not_found("team_not_found", "Team with the requested ID could not be found.")))
}

pub(crate) fn adjust_total(connection: &Connection, team_id: &str, by: i64) -> ApiResult<()> {
    let mut team = load_team(connection, team_id)?;
    team["total"] = json!((team["total"].as_i64().unwrap_or(0) + by).max(0));
    connection.execute("UPDATE teams SET json = ?1 WHERE id = ?2", params![team.to_string(), team_id])?;
    Ok(())
}

fn memberships_where(connection: &Connection, sql: &str, arg: &str) -> ApiResult<Vec<Value>> {
    let mut statement = connection.prepare(sql)?;
    let rows = statement.query_map([arg], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    rows.iter().map(|j| parse_stored(j)).collect()
}

pub async fn create(state: State, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = object(&body)?;
    let id = resolve_id(required_str(&body, "teamId")?, "teamId")?;
    let created = now();
    let team = json!({"$id": id, "$createdAt": created, "$updatedAt": created, "name": required_str(&body, "name")?, "total": 0, "prefs": {}});
    let connection = state.store.lock();
    if load_team(&connection, &id).is_ok() {
        return Err(ApiError::conflict(
            "team_already_exists",
            "Team with requested ID already exists. Please choose a different ID and try again.",
        ));
    }
    let seq = next_seq(&connection, "teams")?;
    connection.execute("INSERT INTO teams (id, seq, json) VALUES (?1, ?2, ?3)", params![id, seq, team.to_string()])?;
    Ok((StatusCode::CREATED, Json(team)))
}

pub async fn get(state: State, Path(team_id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(load_team(&state.store.lock(), &team_id)?))
}

pub async fn list(state: State, UrlQuery(raw): UrlQuery<Vec<(String, String)>>) -> ApiResult<Json<Value>> {
    let query = ListQuery::parse(&raw)?;
    let connection = state.store.lock();
    let mut statement = connection.prepare("SELECT json FROM teams ORDER BY seq")?;
    let rows = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    let teams = rows.iter().map(|j| parse_stored(j)).collect::<ApiResult<Vec<_>>>()?;
    let (total, page) =
        apply(&query, teams.into_iter().filter(|t| query.matches_search(t, &["$id", "name"])).collect())?;
    Ok(Json(json!({ "total": total, "teams": page })))
}

pub async fn create_membership(
    state: State,
    Path(team_id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = object(&body)?;
    let roles = body
        .get("roles")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| ApiError::argument("Param \"roles\" is not optional."))?;
    let connection = state.store.lock();
    let team = load_team(&connection, &team_id)?;
    let user = match (optional_str(&body, "userId"), optional_str(&body, "email")) {
        (Some(user_id), email) => {
            let user = load_user(&connection, user_id)?;
            if email.is_some_and(|e| !e.eq_ignore_ascii_case(user["email"].as_str().unwrap_or_default())) {
                return Err(ApiError::conflict(
                    "user_already_exists",
                    "A user with the same id, email, or phone already exists in this project.",
                ));
            }
            user
        }
        (None, Some(email)) => {
            let id: Option<String> = connection
                .query_row("SELECT id FROM users WHERE email = ?1", [email.to_lowercase()], |r| r.get(0))
                .optional()?;
            match id {
                Some(id) => load_user(&connection, &id)?,
                None => {
                    return Err(ApiError::argument(
                        "devstack creates memberships for existing users only (pass userId)",
                    ))
                }
            }
        }
        (None, None) => return Err(ApiError::argument("One of userId, email or phone is required")),
    };
    let user_id = user["$id"].as_str().unwrap_or_default().to_owned();
    let taken = connection
        .query_row("SELECT 1 FROM memberships WHERE team_id = ?1 AND user_id = ?2", [&team_id, &user_id], |_| Ok(()))
        .optional()?;
    if taken.is_some() {
        return Err(ApiError::conflict("membership_already_confirmed", "Membership is already confirmed."));
    }
    let created = now();
    let id = resolve_id("unique()", "membershipId")?;
    let membership = json!({"$id": id, "$createdAt": created, "$updatedAt": created, "userId": user_id,
        "userName": user["name"], "userEmail": user["email"], "teamId": team_id, "teamName": team["name"],
        "invited": created, "joined": created, "confirm": true, "mfa": false, "roles": roles});
    let seq = next_seq(&connection, "memberships")?;
    connection.execute(
        "INSERT INTO memberships (id, team_id, user_id, seq, json) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, team_id, user_id, seq, membership.to_string()],
    )?;
    adjust_total(&connection, &team_id, 1)?;
    Ok((StatusCode::CREATED, Json(membership)))
}

pub async fn list_memberships(
    state: State,
    Path(team_id): Path<String>,
    UrlQuery(raw): UrlQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let query = ListQuery::parse(&raw)?;
    let connection = state.store.lock();
    load_team(&connection, &team_id)?;
    let all = memberships_where(&connection, "SELECT json FROM memberships WHERE team_id = ?1 ORDER BY seq", &team_id)?;
    let all = all.into_iter().filter(|m| query.matches_search(m, &["userName", "userEmail", "userId"])).collect();
    let (total, page) = apply(&query, all)?;
    Ok(Json(json!({ "total": total, "memberships": page })))
}

fn load_membership(connection: &Connection, team_id: &str, id: &str) -> ApiResult<Value> {
    load_team(connection, team_id)?;
    let json: Option<String> = connection
        .query_row("SELECT json FROM memberships WHERE id = ?1 AND team_id = ?2", [id, team_id], |r| r.get(0))
        .optional()?;
    json.map(|j| parse_stored(&j)).unwrap_or_else(|| {
        Err(ApiError::not_found("membership_not_found", "Membership with the requested ID could not be found."))
    })
}

pub async fn get_membership(state: State, Path((team_id, id)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    Ok(Json(load_membership(&state.store.lock(), &team_id, &id)?))
}

pub async fn delete_membership(state: State, Path((team_id, id)): Path<(String, String)>) -> ApiResult<StatusCode> {
    let connection = state.store.lock();
    load_membership(&connection, &team_id, &id)?;
    connection.execute("DELETE FROM memberships WHERE id = ?1", [&id])?;
    adjust_total(&connection, &team_id, -1)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn user_memberships(
    state: State,
    Path(user_id): Path<String>,
    UrlQuery(raw): UrlQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let query = ListQuery::parse(&raw)?;
    let connection = state.store.lock();
    load_user(&connection, &user_id)?;
    let all = memberships_where(&connection, "SELECT json FROM memberships WHERE user_id = ?1 ORDER BY seq", &user_id)?;
    let (total, page) = apply(&query, all)?;
    Ok(Json(json!({ "total": total, "memberships": page })))
}

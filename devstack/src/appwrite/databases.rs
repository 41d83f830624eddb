//! Databases, collections, attributes and indexes. Attributes and indexes answer 202 and are built
//! asynchronously, as in Appwrite: `status` is `processing` until [`BUILD_DELAY_MS`] after creation, then
//! `available` (computed from a stored ready-at time, so it survives restarts). A unique index over
//! documents that already collide ends `failed`.

use super::error::{ApiError, ApiResult};
use super::models::{now, now_millis, object, parse_stored, required_str, resolve_id};
use super::queries::{apply, ListQuery};
use super::store::next_seq;
use super::State;
use axum::body::Bytes;
use axum::extract::{Path, Query as UrlQuery};
use axum::http::StatusCode;
use axum::Json;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

/// How long an attribute or index stays `processing`.
pub const BUILD_DELAY_MS: i64 = 150;
pub const ATTRIBUTE_TYPES: &[&str] =
    &["string", "integer", "float", "boolean", "datetime", "email", "enum", "url", "ip"];

type Json201 = ApiResult<(StatusCode, Json<Value>)>;

pub(crate) fn require_database(connection: &Connection, db: &str) -> ApiResult<Value> {
    let json: Option<String> =
        connection.query_row("SELECT json FROM databases WHERE id = ?1", [db], |r| r.get(0)).optional()?;
    json.map(|j| parse_stored(&j))
        .unwrap_or_else(|| Err(ApiError::not_found("database_not_found", "Database not found")))
}

pub(crate) fn require_collection(connection: &Connection, db: &str, col: &str) -> ApiResult<Value> {
    require_database(connection, db)?;
    let json: Option<String> = connection
        .query_row("SELECT json FROM collections WHERE db = ?1 AND id = ?2", [db, col], |r| r.get(0))
        .optional()?;
    json.map(|j| parse_stored(&j)).unwrap_or_else(|| {
        Err(ApiError::not_found("collection_not_found", "Collection with the requested ID could not be found."))
    })
}

fn with_status(mut model: Value, ready_at: i64) -> Value {
    let failed = model.get("status").and_then(Value::as_str) == Some("failed");
    if !failed {
        model["status"] = json!(if now_millis() >= ready_at { "available" } else { "processing" });
    }
    model
}

/// A collection's attributes with their current status.
pub(crate) fn attributes(connection: &Connection, db: &str, col: &str) -> ApiResult<Vec<Value>> {
    let mut statement =
        connection.prepare("SELECT json, ready_at FROM attributes WHERE db = ?1 AND col = ?2 ORDER BY seq")?;
    let rows = statement
        .query_map([db, col], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.iter().map(|(json, ready_at)| parse_stored(json).map(|m| with_status(m, *ready_at))).collect()
}

pub(crate) fn indexes(connection: &Connection, db: &str, col: &str) -> ApiResult<Vec<Value>> {
    let mut statement =
        connection.prepare("SELECT json, ready_at FROM indexes WHERE db = ?1 AND col = ?2 ORDER BY seq")?;
    let rows = statement
        .query_map([db, col], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.iter().map(|(json, ready_at)| parse_stored(json).map(|m| with_status(m, *ready_at))).collect()
}

fn list_table(
    connection: &Connection,
    sql: &str,
    args: &[&str],
    raw: &[(String, String)],
    search: &[&str],
) -> ApiResult<(usize, Vec<Value>)> {
    let query = ListQuery::parse(raw)?;
    let mut statement = connection.prepare(sql)?;
    let items = statement
        .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .map(|j| parse_stored(j))
        .collect::<ApiResult<Vec<_>>>()?;
    apply(&query, items.into_iter().filter(|i| query.matches_search(i, search)).collect())
}

pub async fn create_database(state: State, body: Bytes) -> Json201 {
    let body = object(&body)?;
    let id = resolve_id(required_str(&body, "databaseId")?, "databaseId")?;
    let created = now();
    let model = json!({"$id": id, "name": required_str(&body, "name")?, "$createdAt": created, "$updatedAt": created,
        "enabled": body.get("enabled").and_then(Value::as_bool).unwrap_or(true), "type": "legacy"});
    let connection = state.store.lock();
    if require_database(&connection, &id).is_ok() {
        return Err(ApiError::conflict("database_already_exists", "Database already exists"));
    }
    let seq = next_seq(&connection, "databases")?;
    connection
        .execute("INSERT INTO databases (id, seq, json) VALUES (?1, ?2, ?3)", params![id, seq, model.to_string()])?;
    Ok((StatusCode::CREATED, Json(model)))
}

pub async fn list_databases(state: State, UrlQuery(raw): UrlQuery<Vec<(String, String)>>) -> ApiResult<Json<Value>> {
    let connection = state.store.lock();
    let (total, page) =
        list_table(&connection, "SELECT json FROM databases ORDER BY seq", &[], &raw, &["$id", "name"])?;
    Ok(Json(json!({ "total": total, "databases": page })))
}

pub async fn get_database(state: State, Path(db): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(require_database(&state.store.lock(), &db)?))
}

fn collection_model(connection: &Connection, stored: Value, db: &str, col: &str) -> ApiResult<Value> {
    let mut model = stored;
    model["attributes"] = Value::Array(attributes(connection, db, col)?);
    model["indexes"] = Value::Array(indexes(connection, db, col)?);
    Ok(model)
}

pub async fn create_collection(state: State, Path(db): Path<String>, body: Bytes) -> Json201 {
    let body = object(&body)?;
    let id = resolve_id(required_str(&body, "collectionId")?, "collectionId")?;
    let created = now();
    let stored = json!({"$id": id, "$createdAt": created, "$updatedAt": created,
        "$permissions": body.get("permissions").cloned().unwrap_or(json!([])), "databaseId": db, "name": required_str(&body, "name")?,
        "enabled": body.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        "documentSecurity": body.get("documentSecurity").and_then(Value::as_bool).unwrap_or(false), "bytesMax": 0, "bytesUsed": 0});
    let connection = state.store.lock();
    require_database(&connection, &db)?;
    if require_collection(&connection, &db, &id).is_ok() {
        return Err(ApiError::conflict(
            "collection_already_exists",
            "A collection with the requested ID already exists.",
        ));
    }
    let seq = next_seq(&connection, "collections")?;
    connection.execute(
        "INSERT INTO collections (db, id, seq, json) VALUES (?1, ?2, ?3, ?4)",
        params![db, id, seq, stored.to_string()],
    )?;
    Ok((StatusCode::CREATED, Json(collection_model(&connection, stored, &db, &id)?)))
}

pub async fn list_collections(
    state: State,
    Path(db): Path<String>,
    UrlQuery(raw): UrlQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let connection = state.store.lock();
    require_database(&connection, &db)?;
    let (total, page) = list_table(
        &connection,
        "SELECT json FROM collections WHERE db = ?1 ORDER BY seq",
        &[&db],
        &raw,
        &["$id", "name"],
    )?;
    let page = page
        .into_iter()
        .map(|c| {
            let id = c["$id"].as_str().unwrap_or_default().to_owned();
            collection_model(&connection, c, &db, &id)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({ "total": total, "collections": page })))
}

pub async fn get_collection(state: State, Path((db, col)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    let connection = state.store.lock();
    let stored = require_collection(&connection, &db, &col)?;
    Ok(Json(collection_model(&connection, stored, &db, &col)?))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 36
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !key.starts_with('$')
}

fn attribute_model(kind: &str, body: &Map<String, Value>) -> ApiResult<Value> {
    let key = required_str(body, "key")?;
    if !valid_key(key) {
        return Err(ApiError::argument(
            "Invalid `key` param: Value must be a valid string and at least 1 chars and no longer than 36 chars",
        ));
    }
    let required = body
        .get("required")
        .and_then(Value::as_bool)
        .ok_or_else(|| ApiError::argument("Param \"required\" is not optional."))?;
    let created = now();
    let mut model = json!({"key": key, "type": kind, "status": "processing", "error": "", "required": required,
        "array": body.get("array").and_then(Value::as_bool).unwrap_or(false), "$createdAt": created, "$updatedAt": created,
        "default": body.get("default").cloned().unwrap_or(Value::Null)});
    match kind {
        "string" => {
            let size = body
                .get("size")
                .and_then(Value::as_u64)
                .ok_or_else(|| ApiError::argument("Param \"size\" is not optional."))?;
            model["size"] = json!(size);
            model["encrypt"] = json!(body.get("encrypt").and_then(Value::as_bool).unwrap_or(false));
        }
        "integer" => {
            model["min"] = body.get("min").filter(|v| !v.is_null()).cloned().unwrap_or(json!(i64::MIN));
            model["max"] = body.get("max").filter(|v| !v.is_null()).cloned().unwrap_or(json!(i64::MAX));
        }
        "float" => {
            model["min"] = body.get("min").filter(|v| !v.is_null()).cloned().unwrap_or(json!(-f64::MAX));
            model["max"] = body.get("max").filter(|v| !v.is_null()).cloned().unwrap_or(json!(f64::MAX));
        }
        "datetime" => model["format"] = json!("datetime"),
        "email" => model["format"] = json!("email"),
        "url" => model["format"] = json!("url"),
        "ip" => model["format"] = json!("ip"),
        "enum" => {
            let elements = body.get("elements").and_then(Value::as_array).filter(|e| !e.is_empty());
            model["elements"] = elements
                .cloned()
                .map(Value::Array)
                .ok_or_else(|| ApiError::argument("Param \"elements\" is not optional."))?;
            model["format"] = json!("enum");
        }
        _ => {}
    }
    if required && !model["default"].is_null() {
        return Err(ApiError::new(
            400,
            "attribute_default_unsupported",
            "Cannot set default value for required attribute",
        ));
    }
    Ok(model)
}

pub async fn create_attribute(
    state: State,
    Path((db, col, kind)): Path<(String, String, String)>,
    body: Bytes,
) -> Json201 {
    if !ATTRIBUTE_TYPES.contains(&kind.as_str()) {
        return Err(ApiError::not_found(
            "general_route_not_found",
            "The requested route was not found. Please refer to the API docs and try again.",
        ));
    }
    let body = object(&body)?;
    let model = attribute_model(&kind, &body)?;
    let key = model["key"].as_str().unwrap_or_default().to_owned();
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    let exists = connection
        .query_row("SELECT 1 FROM attributes WHERE db = ?1 AND col = ?2 AND key = ?3", [&db, &col, &key], |_| Ok(()))
        .optional()?;
    if exists.is_some() {
        return Err(ApiError::conflict("attribute_already_exists", "Attribute with the requested key already exists. Attribute keys must be unique, try again with a different key."));
    }
    let seq = next_seq(&connection, "attributes")?;
    connection.execute(
        "INSERT INTO attributes (db, col, key, seq, ready_at, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![db, col, key, seq, now_millis() + BUILD_DELAY_MS, model.to_string()],
    )?;
    Ok((StatusCode::ACCEPTED, Json(model)))
}

pub async fn list_attributes(state: State, Path((db, col)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    let all = attributes(&connection, &db, &col)?;
    Ok(Json(json!({ "total": all.len(), "attributes": all })))
}

pub async fn get_attribute(
    state: State,
    Path((db, col, key)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    attributes(&connection, &db, &col)?.into_iter().find(|a| a["key"] == key.as_str()).map(Json).ok_or_else(|| {
        ApiError::not_found("attribute_not_found", "Attribute with the requested ID could not be found.")
    })
}

pub async fn create_index(state: State, Path((db, col)): Path<(String, String)>, body: Bytes) -> Json201 {
    let body = object(&body)?;
    let key = required_str(&body, "key")?.to_owned();
    if !valid_key(&key) {
        return Err(ApiError::argument("Invalid `key` param"));
    }
    let kind = required_str(&body, "type")?.to_owned();
    if !["key", "unique", "fulltext"].contains(&kind.as_str()) {
        return Err(ApiError::argument("Invalid `type` param: Value must be one of (key, fulltext, unique)"));
    }
    let wanted: Vec<String> = body
        .get("attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if wanted.is_empty() {
        return Err(ApiError::argument("Param \"attributes\" is not optional."));
    }
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    let existing = attributes(&connection, &db, &col)?;
    for attribute in &wanted {
        match existing.iter().find(|a| a["key"] == attribute.as_str()) {
            None if attribute.starts_with('$') => {}
            None => {
                return Err(ApiError::new(
                    400,
                    "attribute_unknown",
                    format!("Unknown attribute: {attribute}. Verify the attribute name or create the attribute."),
                ))
            }
            Some(a) if a["status"] != "available" => {
                return Err(ApiError::new(
                    400,
                    "attribute_not_available",
                    "The requested attribute is not yet available. Please try again later.",
                ))
            }
            Some(_) => {}
        }
    }
    if indexes(&connection, &db, &col)?.iter().any(|i| i["key"] == key.as_str()) {
        return Err(ApiError::conflict(
            "index_already_exists",
            "Index with the requested key already exists. Try again with a different key.",
        ));
    }
    let created = now();
    let mut model = json!({"$id": key, "$createdAt": created, "$updatedAt": created, "key": key, "type": kind, "status": "processing",
        "error": "", "attributes": wanted, "lengths": body.get("lengths").cloned().unwrap_or(json!([])),
        "orders": body.get("orders").cloned().unwrap_or(json!([]))});
    if kind == "unique" && super::documents::has_duplicates(&connection, &db, &col, &wanted)? {
        model["status"] = json!("failed");
        model["error"] = json!("Duplicate values exist for the unique index");
    }
    let seq = next_seq(&connection, "indexes")?;
    connection.execute(
        "INSERT INTO indexes (db, col, key, seq, ready_at, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![db, col, key, seq, now_millis() + BUILD_DELAY_MS, model.to_string()],
    )?;
    super::indexed::rebuild(&connection, &db, &col)?;
    Ok((StatusCode::ACCEPTED, Json(model)))
}

pub async fn list_indexes(state: State, Path((db, col)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    let all = indexes(&connection, &db, &col)?;
    Ok(Json(json!({ "total": all.len(), "indexes": all })))
}

pub async fn get_index(state: State, Path((db, col, key)): Path<(String, String, String)>) -> ApiResult<Json<Value>> {
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    indexes(&connection, &db, &col)?
        .into_iter()
        .find(|i| i["key"] == key.as_str())
        .map(Json)
        .ok_or_else(|| ApiError::not_found("index_not_found", "Index with the requested ID could not be found."))
}

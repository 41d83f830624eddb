//! Documents: validated against the collection's *available* attributes (an attribute still building is
//! unknown, as in Appwrite), unique indexes enforced under the store's lock, JSON queries for lists and
//! bulk deletes, evaluated over the rows the collection's indexes could not exclude ([`super::indexed`]).

use super::databases::{attributes, indexes, require_collection};
use super::error::{ApiError, ApiResult};
use super::indexed::{candidates, forget, Indexed};
use super::models::{format_time, now, object, parse_stored, required_str, resolve_id};
use super::queries::{apply, ListQuery};
use super::store::next_seq;
use super::State;
use axum::body::Bytes;
use axum::extract::{Path, Query as UrlQuery};
use axum::http::StatusCode;
use axum::Json;
use chrono::DateTime;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

const META: &[&str] = &["$id", "$sequence", "$collectionId", "$databaseId", "$createdAt", "$updatedAt", "$permissions"];

fn load(connection: &Connection, db: &str, col: &str, id: &str) -> ApiResult<Option<Value>> {
    let json: Option<String> = connection
        .query_row("SELECT json FROM documents WHERE db = ?1 AND col = ?2 AND id = ?3", [db, col, id], |r| r.get(0))
        .optional()?;
    json.map(|j| parse_stored(&j)).transpose()
}

fn all(connection: &Connection, db: &str, col: &str) -> ApiResult<Vec<Value>> {
    let mut statement = connection.prepare("SELECT json FROM documents WHERE db = ?1 AND col = ?2 ORDER BY seq")?;
    let rows = statement.query_map([db, col], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    rows.iter().map(|j| parse_stored(j)).collect()
}

fn not_found() -> ApiError {
    ApiError::not_found("document_not_found", "Document with the requested ID could not be found.")
}

/// Checks one value against an attribute; datetimes are normalised to Appwrite's format.
fn check_value(attribute: &Value, key: &str, value: &Value) -> ApiResult<Value> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let kind = attribute["type"].as_str().unwrap_or_default();
    let invalid = |why: &str| ApiError::invalid_structure(format!("Attribute \"{key}\" has invalid type. {why}"));
    match kind {
        "string" | "email" | "url" | "ip" | "enum" => {
            let text = value.as_str().ok_or_else(|| invalid("Value must be a valid string"))?;
            let size = attribute["size"].as_u64().unwrap_or(u64::MAX) as usize;
            if kind == "string" && text.chars().count() > size {
                return Err(invalid(&format!("Value must be a valid string and no longer than {size} chars")));
            }
            if kind == "email" && !text.contains('@') {
                return Err(invalid("Value must be a valid email address"));
            }
            if kind == "enum" && !attribute["elements"].as_array().is_some_and(|e| e.iter().any(|x| x == value)) {
                return Err(invalid("Value must be one of the enum elements"));
            }
            Ok(value.clone())
        }
        "integer" => {
            let n = value.as_i64().ok_or_else(|| invalid("Value must be a valid integer"))?;
            let (min, max) =
                (attribute["min"].as_i64().unwrap_or(i64::MIN), attribute["max"].as_i64().unwrap_or(i64::MAX));
            if n < min || n > max {
                return Err(invalid(&format!("Value must be a valid range between {min} and {max}")));
            }
            Ok(value.clone())
        }
        "float" => value.as_f64().map(|_| value.clone()).ok_or_else(|| invalid("Value must be a valid float")),
        "boolean" => value.as_bool().map(|_| value.clone()).ok_or_else(|| invalid("Value must be a valid boolean")),
        "datetime" => {
            let text = value.as_str().ok_or_else(|| invalid("Value must be valid date"))?;
            let parsed = DateTime::parse_from_rfc3339(text).map_err(|_| invalid("Value must be valid date"))?;
            Ok(json!(format_time(parsed.with_timezone(&chrono::Utc))))
        }
        _ => Ok(value.clone()),
    }
}

/// The document's attributes after `data` is applied over `base` (empty for a create or a replace).
fn validated(
    connection: &Connection,
    db: &str,
    col: &str,
    base: &Map<String, Value>,
    data: &Map<String, Value>,
    is_partial: bool,
) -> ApiResult<Map<String, Value>> {
    let available: Vec<Value> =
        attributes(connection, db, col)?.into_iter().filter(|a| a["status"] == "available").collect();
    let mut result: Map<String, Value> =
        base.iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (key, value) in data {
        if key.starts_with('$') {
            continue;
        }
        let attribute = available
            .iter()
            .find(|a| a["key"] == key.as_str())
            .ok_or_else(|| ApiError::invalid_structure(format!("Unknown attribute: \"{key}\"")))?;
        let checked = if attribute["array"].as_bool() == Some(true) {
            match value {
                Value::Null => Value::Null,
                Value::Array(items) => {
                    Value::Array(items.iter().map(|v| check_value(attribute, key, v)).collect::<ApiResult<_>>()?)
                }
                _ => return Err(ApiError::invalid_structure(format!("Attribute \"{key}\" must be an array"))),
            }
        } else {
            check_value(attribute, key, value)?
        };
        result.insert(key.clone(), checked);
    }
    for attribute in &available {
        let key = attribute["key"].as_str().unwrap_or_default();
        if !result.contains_key(key) && !is_partial {
            result.insert(key.to_owned(), attribute["default"].clone());
        }
        if attribute["required"].as_bool() == Some(true) && result.get(key).is_none_or(Value::is_null) {
            return Err(ApiError::invalid_structure(format!("Missing required attribute \"{key}\"")));
        }
    }
    Ok(result)
}

/// Unique indexes: no other document may have the same values (documents with a null in the index are
/// exempt, as in SQL).
fn check_unique(connection: &Connection, db: &str, col: &str, id: &str, fields: &Map<String, Value>) -> ApiResult<()> {
    let unique: Vec<Vec<String>> = indexes(connection, db, col)?
        .into_iter()
        .filter(|i| i["type"] == "unique" && i["status"] != "failed")
        .map(|i| {
            i["attributes"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_owned)).collect()
        })
        .collect();
    for keys in unique {
        let mine: Vec<&Value> = keys.iter().map(|k| fields.get(k).unwrap_or(&Value::Null)).collect();
        if mine.iter().any(|v| v.is_null()) {
            continue;
        }
        // Only the documents the index finds with the same (scalar) values can collide.
        let same: Vec<String> = keys
            .iter()
            .zip(&mine)
            .filter(|(_, v)| !v.is_array() && !v.is_object())
            .map(|(k, v)| json!({"method": "equal", "attribute": k, "values": [v]}).to_string())
            .collect();
        let narrowed = ListQuery::from_strings(&same.iter().map(String::as_str).collect::<Vec<_>>())?;
        let others: Vec<Value> =
            candidates(connection, db, col, &narrowed)?.into_iter().filter(|d| d["$id"] != id).collect();
        if others.iter().any(|other| keys.iter().zip(&mine).all(|(k, v)| other.get(k) == Some(*v))) {
            return Err(ApiError::conflict("document_already_exists", "Document with the requested ID already exists. Try again with a different ID or use ID.unique() to generate a unique ID."));
        }
    }
    Ok(())
}

pub(crate) fn has_duplicates(connection: &Connection, db: &str, col: &str, keys: &[String]) -> ApiResult<bool> {
    let mut seen = std::collections::HashSet::new();
    for doc in all(connection, db, col)? {
        let values: Vec<Value> = keys.iter().map(|k| doc.get(k).cloned().unwrap_or(Value::Null)).collect();
        if values.iter().any(Value::is_null) {
            continue;
        }
        if !seen.insert(Value::Array(values).to_string()) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn write(
    connection: &Connection,
    db: &str,
    col: &str,
    id: &str,
    existing: Option<&Value>,
    fields: Map<String, Value>,
    permissions: Option<&Value>,
) -> ApiResult<Value> {
    let stamp = now();
    let (seq, created) = match existing {
        Some(doc) => (doc["$sequence"].as_i64().unwrap_or(0), doc["$createdAt"].clone()),
        None => (next_seq(connection, &format!("documents:{db}:{col}"))?, json!(stamp)),
    };
    let mut doc = Map::new();
    doc.insert("$id".into(), json!(id));
    doc.insert("$sequence".into(), json!(seq));
    doc.insert("$collectionId".into(), json!(col));
    doc.insert("$databaseId".into(), json!(db));
    doc.insert("$createdAt".into(), created);
    doc.insert("$updatedAt".into(), json!(stamp));
    let permissions = permissions.cloned().or_else(|| existing.map(|d| d["$permissions"].clone())).unwrap_or(json!([]));
    doc.insert("$permissions".into(), permissions);
    doc.extend(fields);
    let doc = Value::Object(doc);
    connection.execute(
        "INSERT INTO documents (db, col, id, seq, json) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(db, col, id) DO UPDATE SET json = excluded.json",
        params![db, col, id, seq, doc.to_string()],
    )?;
    Indexed::of(connection, db, col)?.store(connection, db, col, &doc)?;
    Ok(doc)
}

fn data_of(body: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    match body.get("data") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(Value::String(text)) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(ApiError::argument("Invalid `data` param: Value must be a valid JSON")),
        },
        Some(_) => Err(ApiError::argument("Invalid `data` param: Value must be a valid JSON")),
    }
}

pub async fn create(
    state: State,
    Path((db, col)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = object(&body)?;
    let id = resolve_id(required_str(&body, "documentId")?, "documentId")?;
    let data = data_of(&body)?;
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    if load(&connection, &db, &col, &id)?.is_some() {
        return Err(ApiError::conflict("document_already_exists", "Document with the requested ID already exists. Try again with a different ID or use ID.unique() to generate a unique ID."));
    }
    let fields = validated(&connection, &db, &col, &Map::new(), &data, false)?;
    check_unique(&connection, &db, &col, &id, &fields)?;
    let doc = write(&connection, &db, &col, &id, None, fields, body.get("permissions"))?;
    Ok((StatusCode::CREATED, Json(doc)))
}

pub async fn get(state: State, Path((db, col, id)): Path<(String, String, String)>) -> ApiResult<Json<Value>> {
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    load(&connection, &db, &col, &id)?.map(Json).ok_or_else(not_found)
}

pub async fn update(
    state: State,
    Path((db, col, id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body = object(&body)?;
    let data = data_of(&body)?;
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    let existing = load(&connection, &db, &col, &id)?.ok_or_else(not_found)?;
    let base = existing.as_object().cloned().unwrap_or_default();
    let fields = validated(&connection, &db, &col, &base, &data, true)?;
    check_unique(&connection, &db, &col, &id, &fields)?;
    Ok(Json(write(&connection, &db, &col, &id, Some(&existing), fields, body.get("permissions"))?))
}

/// Create, or replace every attribute of, the document (Appwrite 1.8: 201 either way).
pub async fn upsert(
    state: State,
    Path((db, col, id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    state.require_1_7()?;
    let body = object(&body)?;
    let id = resolve_id(&id, "documentId")?;
    let data = data_of(&body)?;
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    let existing = load(&connection, &db, &col, &id)?;
    let fields = validated(&connection, &db, &col, &Map::new(), &data, false)?;
    check_unique(&connection, &db, &col, &id, &fields)?;
    let doc = write(&connection, &db, &col, &id, existing.as_ref(), fields, body.get("permissions"))?;
    Ok((StatusCode::CREATED, Json(doc)))
}

pub async fn delete(state: State, Path((db, col, id)): Path<(String, String, String)>) -> ApiResult<StatusCode> {
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    let removed =
        connection.execute("DELETE FROM documents WHERE db = ?1 AND col = ?2 AND id = ?3", [&db, &col, &id])?;
    if removed == 0 {
        return Err(not_found());
    }
    forget(&connection, &db, &col, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

fn check_query_attributes(connection: &Connection, db: &str, col: &str, query: &ListQuery) -> ApiResult<()> {
    let known: Vec<String> =
        attributes(connection, db, col)?.iter().filter_map(|a| a["key"].as_str().map(str::to_owned)).collect();
    for attribute in query.attributes() {
        if !META.contains(&attribute.as_str()) && !known.contains(&attribute) {
            return Err(ApiError::query(format!("Attribute not found in schema: {attribute}")));
        }
    }
    Ok(())
}

pub async fn list(
    state: State,
    Path((db, col)): Path<(String, String)>,
    UrlQuery(raw): UrlQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let query = ListQuery::parse(&raw)?;
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    check_query_attributes(&connection, &db, &col, &query)?;
    let (total, page) = apply(&query, candidates(&connection, &db, &col, &query)?)?;
    let page: Vec<Value> = page.into_iter().map(|doc| query.project(doc)).collect();
    Ok(Json(json!({ "total": total, "documents": page })))
}

/// Deletes every document matching the body's `queries` (API key only); answers the deleted documents.
pub async fn bulk_delete(state: State, Path((db, col)): Path<(String, String)>, body: Bytes) -> ApiResult<Json<Value>> {
    state.require_1_7()?;
    let body = object(&body)?;
    let strings: Vec<String> = body
        .get("queries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|q| q.as_str().map(str::to_owned))
        .collect();
    let query = ListQuery::from_strings(&strings.iter().map(String::as_str).collect::<Vec<_>>())?;
    let connection = state.store.lock();
    require_collection(&connection, &db, &col)?;
    check_query_attributes(&connection, &db, &col, &query)?;
    let deleted: Vec<Value> =
        candidates(&connection, &db, &col, &query)?.into_iter().filter(|d| query.matches(d)).collect();
    for doc in &deleted {
        let id = doc["$id"].as_str().unwrap_or_default();
        connection.execute("DELETE FROM documents WHERE db = ?1 AND col = ?2 AND id = ?3", [&db, &col, id])?;
        forget(&connection, &db, &col, id)?;
    }
    Ok(Json(json!({ "total": deleted.len(), "documents": deleted })))
}

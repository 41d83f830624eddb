//! Shared helpers for building Appwrite's response models and reading request bodies.

use super::error::{ApiError, ApiResult};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// Appwrite's timestamps: ISO 8601 with milliseconds and an explicit `+00:00`.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, false)
}

pub fn now() -> String {
    format_time(Utc::now())
}

pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// An id from a request: a fixed one, or `unique()` for a generated one (Appwrite's 20 hex characters).
pub fn resolve_id(raw: &str, what: &str) -> ApiResult<String> {
    if raw == "unique()" {
        return Ok(format!("{:020x}", rand::random::<u128>() & ((1u128 << 80) - 1)));
    }
    let valid = !raw.is_empty()
        && raw.len() <= 36
        && raw.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::argument(format!(
            "Invalid `{what}` param: Parameter must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, period, hyphen, and underscore. Can't start with a special char"
        )))
    }
}

/// The body as a JSON object, or 400.
pub fn object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::argument("The request body must be a JSON object.")),
    }
}

pub fn required_str<'m>(map: &'m Map<String, Value>, key: &str) -> ApiResult<&'m str> {
    map.get(key).and_then(Value::as_str).ok_or_else(|| ApiError::argument(format!("Param \"{key}\" is not optional.")))
}

pub fn optional_str<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m str> {
    map.get(key).and_then(Value::as_str)
}

/// Loads a stored JSON entity.
pub fn parse_stored(json: &str) -> ApiResult<Value> {
    serde_json::from_str(json).map_err(|e| ApiError::new(500, "general_server_error", format!("corrupt record: {e}")))
}

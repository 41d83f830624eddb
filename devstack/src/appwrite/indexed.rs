//! The collection indexes (`key` and `unique`) as real SQLite indexes, so that a list filtered on an
//! indexed attribute, and a unique check, cost what the matching rows cost rather than what the collection
//! costs (a load test of Tollgate must measure Tollgate, not the stand-in).
//!
//! Documents are stored as JSON, one table for every collection, so the values of indexed attributes are
//! copied into `document_values` (one row per document and indexed attribute, kept in step by every write)
//! and indexed on `(db, col, attr, present, v)`. A list turns the comparisons every match must satisfy into
//! SQL over that table; the rows SQL returns are then filtered, ordered and paged by [`super::queries`]
//! exactly as before. SQL is only ever a *superset*: a comparison is pushed down only where SQLite's
//! ordering provably agrees with the query engine's (numbers as doubles, booleans as 0/1, text by bytes,
//! datetimes of `datetime` attributes in their stored UTC form with bounds loosened to the millisecond),
//! and is left to Rust otherwise, so answers cannot change.

use super::error::ApiResult;
use super::models::{format_time, parse_stored};
use super::queries::{Comparison, ListQuery};
use chrono::DateTime;
use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection};
use serde_json::Value;

/// Meta attributes that hold datetimes in their stored (UTC, milliseconds) form.
const META_DATETIMES: &[&str] = &["$createdAt", "$updatedAt"];

/// `v` has no declared type, so SQLite keeps each value's own type (text stays text).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS document_values (db TEXT NOT NULL, col TEXT NOT NULL, id TEXT NOT NULL, attr TEXT NOT NULL, present INTEGER NOT NULL, v, PRIMARY KEY (db, col, id, attr)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS document_values_by_value ON document_values (db, col, attr, present, v);
";

/// The attributes a collection's `key` and `unique` indexes cover, with whether each holds datetimes.
pub(crate) struct Indexed(Vec<(String, bool)>);

impl Indexed {
    pub(crate) fn of(connection: &Connection, db: &str, col: &str) -> ApiResult<Self> {
        let mut statement = connection.prepare("SELECT json FROM indexes WHERE db = ?1 AND col = ?2 ORDER BY seq")?;
        let rows = statement.query_map([db, col], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
        let mut names: Vec<String> = Vec::new();
        for row in rows {
            let index = parse_stored(&row)?;
            if !matches!(index["type"].as_str(), Some("key" | "unique")) {
                continue;
            }
            for name in index["attributes"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
        let mut statement = connection.prepare(
            "SELECT key FROM attributes WHERE db = ?1 AND col = ?2 AND json_extract(json, '$.type') = 'datetime'",
        )?;
        let datetimes = statement.query_map([db, col], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
        Ok(Self(
            names
                .into_iter()
                .map(|name| {
                    let datetime = datetimes.contains(&name) || META_DATETIMES.contains(&name.as_str());
                    (name, datetime)
                })
                .collect(),
        ))
    }

    fn find(&self, attribute: &str) -> Option<bool> {
        self.0.iter().find(|(name, _)| name == attribute).map(|(_, datetime)| *datetime)
    }

    /// Replaces the document's rows: one per indexed attribute, `present = 0` when it is null or absent.
    pub(crate) fn store(&self, connection: &Connection, db: &str, col: &str, doc: &Value) -> ApiResult<()> {
        let id = doc["$id"].as_str().unwrap_or_default();
        forget(connection, db, col, id)?;
        let mut insert = connection.prepare_cached(
            "INSERT INTO document_values (db, col, id, attr, present, v) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (attribute, _) in &self.0 {
            let value = doc.get(attribute).filter(|v| !v.is_null());
            insert.execute(params![db, col, id, attribute, value.is_some(), value.and_then(stored)])?;
        }
        Ok(())
    }
}

/// A value as it is kept in `document_values`: arrays and objects are present but match no comparison.
fn stored(value: &Value) -> Option<Sql> {
    match value {
        Value::Number(n) => n.as_f64().map(Sql::Real),
        Value::Bool(b) => Some(Sql::Integer(i64::from(*b))),
        Value::String(s) => Some(Sql::Text(s.clone())),
        _ => None,
    }
}

pub(crate) fn forget(connection: &Connection, db: &str, col: &str, id: &str) -> ApiResult<()> {
    connection
        .prepare_cached("DELETE FROM document_values WHERE db = ?1 AND col = ?2 AND id = ?3")?
        .execute([db, col, id])?;
    Ok(())
}

/// Rebuilds a collection's rows (after an index is created, or when a store from before this table opens).
pub(crate) fn rebuild(connection: &Connection, db: &str, col: &str) -> ApiResult<()> {
    let indexed = Indexed::of(connection, db, col)?;
    connection.execute("DELETE FROM document_values WHERE db = ?1 AND col = ?2", [db, col])?;
    let mut statement = connection.prepare("SELECT json FROM documents WHERE db = ?1 AND col = ?2")?;
    let rows = statement.query_map([db, col], |r| r.get::<_, String>(0))?;
    for row in rows {
        indexed.store(connection, db, col, &parse_stored(&row?)?)?;
    }
    Ok(())
}

pub(crate) fn rebuild_all(connection: &Connection) -> ApiResult<()> {
    let mut statement = connection.prepare("SELECT db, id FROM collections")?;
    let collections = statement
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    collections.iter().try_for_each(|(db, col)| rebuild(connection, db, col))
}

/// A query value as a bound SQLite can compare like the query engine does; `loose` when it was rounded
/// down to the millisecond (a datetime), so a strict comparison must be widened to an inclusive one.
struct Bound {
    value: Sql,
    loose: bool,
}

fn bound(value: &Value, datetime: bool) -> Option<Option<Bound>> {
    let exact = |value| Some(Some(Bound { value, loose: false }));
    match value {
        Value::Number(n) => n.as_f64().map(|f| Some(Bound { value: Sql::Real(f), loose: false })),
        Value::Bool(b) => exact(Sql::Integer(i64::from(*b))),
        // The engine compares two RFC 3339 strings as instants: only the stored UTC form of a datetime
        // attribute orders like that as text.
        Value::String(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(at) if datetime => {
                let text = format_time(at.with_timezone(&chrono::Utc));
                Some(Some(Bound { value: Sql::Text(text), loose: true }))
            }
            Ok(_) => None,
            Err(_) => exact(Sql::Text(s.clone())),
        },
        // Null, arrays and objects equal or order against nothing: a bound that matches no row.
        _ => Some(None),
    }
}

/// A condition on one attribute's rows of `document_values`, with its arguments.
type Test = (String, Vec<Sql>);

/// One comparison as SQL over `document_values`, or `None` when it is left to Rust.
fn condition(comparison: &Comparison<'_>, datetime: bool) -> Option<Test> {
    let Comparison { method, values, .. } = *comparison;
    let bounds: Vec<Option<Bound>> = match method {
        "isNull" | "isNotNull" => Vec::new(),
        _ => values.iter().map(|v| bound(v, datetime)).collect::<Option<_>>()?,
    };
    // The engine's ranges match when *any* value does; an index range is one bound.
    let single = || match bounds.as_slice() {
        [Some(bound)] => Some(bound),
        _ => None,
    };
    let range = |strict: &str, inclusive: &str| {
        let bound = single()?;
        let op = if bound.loose { inclusive } else { strict };
        Some((format!("present = 1 AND v {op} ?"), vec![bound.value.clone()]))
    };
    match method {
        "isNull" => Some(("present = 0".to_owned(), Vec::new())),
        "isNotNull" => Some(("present = 1".to_owned(), Vec::new())),
        "equal" => {
            let args: Vec<Sql> = bounds.iter().flatten().map(|b| b.value.clone()).collect();
            if args.is_empty() {
                return Some(("0".to_owned(), Vec::new()));
            }
            let marks = vec!["?"; args.len()].join(", ");
            Some((format!("present = 1 AND v IN ({marks})"), args))
        }
        "lessThan" => range("<", "<="),
        "lessThanEqual" => range("<=", "<="),
        "greaterThan" => range(">", ">="),
        "greaterThanEqual" => range(">=", ">="),
        "between" => match (bounds.first(), bounds.get(1)) {
            (Some(Some(low)), Some(Some(high))) => {
                Some(("present = 1 AND v >= ? AND v <= ?".to_owned(), vec![low.value.clone(), high.value.clone()]))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The collection's documents (in creation order) that may match `query`: every comparison on an indexed
/// attribute (or `equal` on `$id`) is answered by SQLite; the caller still evaluates the whole query.
pub(crate) fn candidates(connection: &Connection, db: &str, col: &str, query: &ListQuery) -> ApiResult<Vec<Value>> {
    let indexed = Indexed::of(connection, db, col)?;
    let mut sql = "SELECT json FROM documents WHERE db = ?1 AND col = ?2".to_owned();
    let mut args: Vec<Sql> = vec![Sql::Text(db.to_owned()), Sql::Text(col.to_owned())];
    let mut by_attribute: Vec<(&str, Vec<Test>)> = Vec::new();
    for comparison in query.required_comparisons() {
        if comparison.attribute == "$id" && comparison.method == "equal" {
            let ids: Vec<Sql> =
                comparison.values.iter().filter_map(Value::as_str).map(|s| Sql::Text(s.to_owned())).collect();
            match ids.len() {
                0 => sql.push_str(" AND 0"),
                n => sql.push_str(&format!(" AND id IN ({})", vec!["?"; n].join(", "))),
            }
            args.extend(ids);
            continue;
        }
        let Some(datetime) = indexed.find(comparison.attribute) else { continue };
        let Some(test) = condition(&comparison, datetime) else { continue };
        match by_attribute.iter_mut().find(|(attribute, _)| *attribute == comparison.attribute) {
            Some((_, tests)) => tests.push(test),
            None => by_attribute.push((comparison.attribute, vec![test])),
        }
    }
    // One index range per attribute: `n >= a AND n < b` reads the rows between a and b, not two halves.
    for (attribute, tests) in by_attribute {
        let conditions: Vec<&str> = tests.iter().map(|(test, _)| test.as_str()).collect();
        sql.push_str(&format!(
            " AND id IN (SELECT id FROM document_values WHERE db = ?1 AND col = ?2 AND attr = ? AND {})",
            conditions.join(" AND ")
        ));
        args.push(Sql::Text(attribute.to_owned()));
        args.extend(tests.into_iter().flat_map(|(_, values)| values));
    }
    sql.push_str(" ORDER BY seq");
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(args), |r| r.get::<_, String>(0))?;
    rows.map(|row| parse_stored(&row?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pushed(method: &str, values: &[Value], datetime: bool) -> Option<Test> {
        condition(&Comparison { method, attribute: "a", values }, datetime)
    }

    #[test]
    fn rfc3339_text_is_left_to_rust_unless_the_attribute_stores_datetimes() {
        let at = [json!("2026-01-01T11:00:00.000+00:30")];
        assert!(pushed("lessThan", &at, false).is_none());
        let (test, args) = pushed("lessThan", &at, true).expect("pushed down");
        assert_eq!(test, "present = 1 AND v <= ?");
        assert_eq!(args, vec![Sql::Text("2026-01-01T10:30:00.000+00:00".into())]);
    }

    #[test]
    fn a_range_with_several_values_is_left_to_rust_which_matches_any_of_them() {
        assert!(pushed("lessThan", &[json!(5), json!(10)], false).is_none());
        assert!(pushed("greaterThan", &[json!(null)], false).is_none());
        assert_eq!(pushed("greaterThan", &[json!(5)], false).map(|(t, _)| t), Some("present = 1 AND v > ?".into()));
    }

    #[test]
    fn an_equal_on_values_that_match_nothing_selects_nothing() {
        assert_eq!(pushed("equal", &[json!(null), json!([1])], false).map(|(t, _)| t), Some("0".to_owned()));
    }

    #[test]
    fn methods_the_index_cannot_answer_exactly_are_left_to_rust() {
        for method in ["notEqual", "contains", "search", "startsWith", "endsWith"] {
            assert!(pushed(method, &[json!("x")], false).is_none(), "{method}");
        }
    }
}

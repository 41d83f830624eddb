//! Appwrite's JSON query language (1.5+), evaluated over JSON entities: each `queries[]` parameter is
//! `{"method", "attribute", "values"}`. Filtering, ordering, cursors, offset and limit follow Appwrite:
//! `total` counts every match, the default page is 25, a page is at most 5,000, a cursor that names no
//! entity is a 400.

use super::error::{ApiError, ApiResult};
use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;
use std::cmp::Ordering;

pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 5_000;
pub const MAX_QUERIES: usize = 100;

#[derive(Debug, Deserialize)]
struct RawQuery {
    method: String,
    #[serde(default)]
    attribute: Option<String>,
    #[serde(default)]
    values: Vec<Value>,
}

#[derive(Debug, Clone)]
enum Filter {
    Compare { method: String, attribute: String, values: Vec<Value> },
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    filters: Vec<Filter>,
    order: Vec<(String, bool)>,
    limit: Option<usize>,
    offset: usize,
    cursor_after: Option<String>,
    cursor_before: Option<String>,
    search: Option<String>,
    /// `select`: the attributes each returned document keeps (`None`: all).
    select: Option<Vec<String>>,
}

/// What a document keeps whatever `select` names (Appwrite 1.5+: the database layer adds its internal
/// attributes to every selection; `$collectionId` and `$databaseId` are only kept when selected).
const ALWAYS_SELECTED: &[&str] = &["$id", "$sequence", "$createdAt", "$updatedAt", "$permissions"];

const COMPARISONS: &[&str] = &[
    "equal",
    "notEqual",
    "lessThan",
    "lessThanEqual",
    "greaterThan",
    "greaterThanEqual",
    "isNull",
    "isNotNull",
    "contains",
    "search",
    "startsWith",
    "endsWith",
    "between",
];

impl ListQuery {
    /// From the URL's `queries[]` (and `search`) parameters.
    pub fn parse(params: &[(String, String)]) -> ApiResult<Self> {
        let queries: Vec<&str> =
            params.iter().filter(|(k, _)| k == "queries[]" || k == "queries").map(|(_, v)| v.as_str()).collect();
        let mut query = Self::from_strings(&queries)?;
        query.search = params.iter().find(|(k, _)| k == "search").map(|(_, v)| v.clone()).filter(|s| !s.is_empty());
        Ok(query)
    }

    /// From JSON strings (also the body form of bulk operations).
    pub fn from_strings(queries: &[&str]) -> ApiResult<Self> {
        if queries.len() > MAX_QUERIES {
            return Err(ApiError::query(format!("at most {MAX_QUERIES} queries are allowed")));
        }
        let mut query = Self::default();
        for raw in queries {
            let parsed: RawQuery =
                serde_json::from_str(raw).map_err(|_| ApiError::query(format!("Syntax error in query: {raw}")))?;
            query.add(parsed)?;
        }
        Ok(query)
    }

    fn add(&mut self, raw: RawQuery) -> ApiResult<()> {
        let number = |values: &[Value]| values.first().and_then(Value::as_u64).map(|n| n as usize);
        let text = |values: &[Value]| values.first().and_then(Value::as_str).map(str::to_owned);
        match raw.method.as_str() {
            "limit" => {
                let limit = number(&raw.values).filter(|l| (1..=MAX_LIMIT).contains(l));
                self.limit = Some(limit.ok_or_else(|| {
                    ApiError::query(format!("Invalid limit: Value must be a valid range between 1 and {MAX_LIMIT}"))
                })?);
            }
            "offset" => self.offset = number(&raw.values).ok_or_else(|| ApiError::query("Invalid offset"))?,
            "cursorAfter" => {
                self.cursor_after = Some(text(&raw.values).ok_or_else(|| ApiError::query("Invalid cursor"))?)
            }
            "cursorBefore" => {
                self.cursor_before = Some(text(&raw.values).ok_or_else(|| ApiError::query("Invalid cursor"))?)
            }
            "orderAsc" | "orderDesc" => {
                let attribute = raw.attribute.filter(|a| !a.is_empty()).unwrap_or_else(|| "$sequence".to_owned());
                self.order.push((attribute, raw.method == "orderDesc"));
            }
            "select" => {
                let names: Option<Vec<String>> =
                    raw.values.iter().map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)).collect();
                let names = names
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| ApiError::query("select queries require at least one attribute name.".to_owned()))?;
                self.select.get_or_insert_with(Vec::new).extend(names);
            }
            _ => self.filters.push(Self::filter(raw)?),
        }
        Ok(())
    }

    fn filter(raw: RawQuery) -> ApiResult<Filter> {
        match raw.method.as_str() {
            "and" | "or" => {
                let nested = raw
                    .values
                    .into_iter()
                    .map(|v| {
                        serde_json::from_value::<RawQuery>(v)
                            .map_err(|_| ApiError::query("Invalid nested query"))
                            .and_then(Self::filter)
                    })
                    .collect::<ApiResult<Vec<_>>>()?;
                Ok(if raw.method == "and" { Filter::And(nested) } else { Filter::Or(nested) })
            }
            method if COMPARISONS.contains(&method) => {
                let attribute = raw
                    .attribute
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| ApiError::query(format!("{method} needs an attribute")))?;
                if !matches!(method, "isNull" | "isNotNull") && raw.values.is_empty() {
                    return Err(ApiError::query(format!("{method} queries require at least one value.")));
                }
                Ok(Filter::Compare { method: method.to_owned(), attribute, values: raw.values })
            }
            other => Err(ApiError::query(format!("Invalid query method: {other}"))),
        }
    }

    /// Every attribute the query names, to check against a collection's schema.
    pub fn attributes(&self) -> Vec<String> {
        fn walk(filter: &Filter, out: &mut Vec<String>) {
            match filter {
                Filter::Compare { attribute, .. } => out.push(attribute.clone()),
                Filter::And(all) | Filter::Or(all) => all.iter().for_each(|f| walk(f, out)),
            }
        }
        let mut out = Vec::new();
        self.filters.iter().for_each(|f| walk(f, &mut out));
        out.extend(self.order.iter().map(|(a, _)| a.clone()));
        out.extend(self.select.iter().flatten().filter(|a| a.as_str() != "*").cloned());
        out
    }

    /// The document as `select` shapes it: the selected attributes and the internal ones (all with
    /// no `select`, or with `*`).
    pub fn project(&self, document: Value) -> Value {
        let Some(selected) = self.select.as_ref().filter(|s| !s.iter().any(|a| a == "*")) else { return document };
        match document {
            Value::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .filter(|(key, _)| ALWAYS_SELECTED.contains(&key.as_str()) || selected.contains(key))
                    .collect(),
            ),
            other => other,
        }
    }

    /// For lists whose filterable attributes are fixed (users): every attribute named must be one of
    /// `allowed`, and every filter value must have the attribute's type, as Appwrite's query validator
    /// requires (400 `general_query_invalid` otherwise).
    pub fn check_fixed_attributes(&self, allowed: &[(&str, ValueKind)]) -> ApiResult<()> {
        fn walk(filter: &Filter, allowed: &[(&str, ValueKind)]) -> ApiResult<()> {
            match filter {
                Filter::And(all) | Filter::Or(all) => all.iter().try_for_each(|f| walk(f, allowed)),
                Filter::Compare { attribute, values, .. } => {
                    let kind = kind_of(allowed, attribute)?;
                    if values.iter().all(|v| kind.accepts(v)) {
                        Ok(())
                    } else {
                        Err(ApiError::query(format!("Query value is invalid for attribute \"{attribute}\"")))
                    }
                }
            }
        }
        fn kind_of(allowed: &[(&str, ValueKind)], attribute: &str) -> ApiResult<ValueKind> {
            allowed
                .iter()
                .find(|(name, _)| *name == attribute)
                .map(|(_, kind)| *kind)
                .ok_or_else(|| ApiError::query(format!("Attribute not found in schema: {attribute}")))
        }
        self.filters.iter().try_for_each(|f| walk(f, allowed))?;
        self.order.iter().try_for_each(|(attribute, _)| kind_of(allowed, attribute).map(drop))
    }

    /// The comparisons every match satisfies (the top-level filters and those inside a top-level `and`):
    /// what an index may narrow the rows by before [`apply`] evaluates the whole query.
    pub fn required_comparisons(&self) -> Vec<Comparison<'_>> {
        fn walk<'q>(filter: &'q Filter, out: &mut Vec<Comparison<'q>>) {
            match filter {
                Filter::Compare { method, attribute, values } => {
                    out.push(Comparison { method, attribute, values });
                }
                Filter::And(all) => all.iter().for_each(|f| walk(f, out)),
                Filter::Or(_) => {}
            }
        }
        let mut out = Vec::new();
        self.filters.iter().for_each(|f| walk(f, &mut out));
        out
    }

    pub fn matches(&self, item: &Value) -> bool {
        self.filters.iter().all(|f| matches(f, item))
    }

    /// The `search` parameter: a case-insensitive substring of any of `fields`.
    pub fn matches_search(&self, item: &Value, fields: &[&str]) -> bool {
        let Some(search) = &self.search else { return true };
        let needle = search.to_lowercase();
        fields.iter().any(|f| item.get(*f).and_then(Value::as_str).is_some_and(|v| v.to_lowercase().contains(&needle)))
    }
}

/// One comparison a match must satisfy (see [`ListQuery::required_comparisons`]).
#[derive(Debug, Clone, Copy)]
pub struct Comparison<'q> {
    pub method: &'q str,
    pub attribute: &'q str,
    pub values: &'q [Value],
}

/// The type of a fixed attribute, for [`ListQuery::check_fixed_attributes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Strings, datetimes and string arrays: filter values must be strings.
    Text,
    /// Filter values must be JSON booleans (`"true"` is refused).
    Boolean,
}

impl ValueKind {
    fn accepts(self, value: &Value) -> bool {
        match self {
            Self::Text => value.is_string(),
            Self::Boolean => value.is_boolean(),
        }
    }
}

/// Filters, orders and pages `items` (already in creation order). Returns `(total, page)`.
pub fn apply(query: &ListQuery, items: Vec<Value>) -> ApiResult<(usize, Vec<Value>)> {
    let mut matching: Vec<Value> = items.into_iter().filter(|item| query.matches(item)).collect();
    for (attribute, descending) in query.order.iter().rev() {
        matching.sort_by(|a, b| {
            let ordering = compare_optional(a.get(attribute), b.get(attribute));
            if *descending {
                ordering.reverse()
            } else {
                ordering
            }
        });
    }
    let total = matching.len();
    let position = |id: &str| matching.iter().position(|item| item.get("$id").and_then(Value::as_str) == Some(id));
    let mut start = 0;
    let mut end = matching.len();
    if let Some(after) = &query.cursor_after {
        start = position(after).ok_or_else(|| cursor_not_found(after))? + 1;
    }
    if let Some(before) = &query.cursor_before {
        end = position(before).ok_or_else(|| cursor_not_found(before))?;
    }
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let window: Vec<Value> = if query.cursor_before.is_some() && query.cursor_after.is_none() {
        let slice = &matching[start.min(end)..end];
        let skip = slice.len().saturating_sub(query.offset + limit);
        slice[skip..slice.len().saturating_sub(query.offset)].to_vec()
    } else {
        matching.get(start..end).unwrap_or_default().iter().skip(query.offset).take(limit).cloned().collect()
    };
    Ok((total, window))
}

fn cursor_not_found(id: &str) -> ApiError {
    ApiError::new(
        400,
        "general_cursor_not_found",
        format!("The cursor is invalid: document with the requested ID '{id}' could not be found."),
    )
}

fn matches(filter: &Filter, item: &Value) -> bool {
    match filter {
        Filter::And(all) => all.iter().all(|f| matches(f, item)),
        Filter::Or(any) => any.iter().any(|f| matches(f, item)),
        Filter::Compare { method, attribute, values } => {
            let field = item.get(attribute).filter(|v| !v.is_null());
            let any = |test: &dyn Fn(Ordering) -> bool| {
                field.is_some_and(|f| values.iter().any(|v| compare(f, v).is_some_and(test)))
            };
            match method.as_str() {
                "isNull" => field.is_none(),
                "isNotNull" => field.is_some(),
                "equal" => any(&|o| o == Ordering::Equal),
                "notEqual" => field.is_some_and(|f| values.iter().all(|v| compare(f, v) != Some(Ordering::Equal))),
                "lessThan" => any(&|o| o == Ordering::Less),
                "lessThanEqual" => any(&|o| o != Ordering::Greater),
                "greaterThan" => any(&|o| o == Ordering::Greater),
                "greaterThanEqual" => any(&|o| o != Ordering::Less),
                "between" => match (values.first(), values.get(1), field) {
                    (Some(low), Some(high), Some(f)) => {
                        compare(f, low).is_some_and(|o| o != Ordering::Less)
                            && compare(f, high).is_some_and(|o| o != Ordering::Greater)
                    }
                    _ => false,
                },
                "contains" => field.is_some_and(|f| match f {
                    Value::Array(elements) => values.iter().any(|v| elements.contains(v)),
                    Value::String(s) => values.iter().any(|v| v.as_str().is_some_and(|needle| s.contains(needle))),
                    _ => false,
                }),
                "search" => field.and_then(Value::as_str).is_some_and(|s| {
                    let s = s.to_lowercase();
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .any(|needle| needle.split_whitespace().any(|w| s.contains(&w.to_lowercase())))
                }),
                "startsWith" => field
                    .and_then(Value::as_str)
                    .is_some_and(|s| values.iter().filter_map(Value::as_str).any(|p| s.starts_with(p))),
                "endsWith" => field
                    .and_then(Value::as_str)
                    .is_some_and(|s| values.iter().filter_map(Value::as_str).any(|p| s.ends_with(p))),
                _ => false,
            }
        }
    }
}

/// Numbers numerically, datetimes as instants, other strings by their text, booleans by value.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => {
            match (DateTime::parse_from_rfc3339(x), DateTime::parse_from_rfc3339(y)) {
                (Ok(x), Ok(y)) => Some(x.cmp(&y)),
                _ => Some(x.cmp(y)),
            }
        }
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare_optional(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a.filter(|v| !v.is_null()), b.filter(|v| !v.is_null())) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => compare(x, y).unwrap_or(Ordering::Equal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(queries: &[Value]) -> ListQuery {
        let strings: Vec<String> = queries.iter().map(Value::to_string).collect();
        ListQuery::from_strings(&strings.iter().map(String::as_str).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn select_keeps_the_named_attributes_and_the_internal_ones_as_appwrite_does() {
        let doc = json!({"$id": "a", "$collectionId": "c", "$databaseId": "d", "$createdAt": "t", "$updatedAt": "t",
            "$permissions": [], "email": "x", "bodyText": "big"});
        let selected = q(&[json!({"method": "select", "values": ["email"]})]).project(doc.clone());
        assert_eq!(
            selected,
            json!({"$id": "a", "$createdAt": "t", "$updatedAt": "t", "$permissions": [], "email": "x"})
        );
        assert_eq!(q(&[json!({"method": "select", "values": ["*"]})]).project(doc.clone()), doc);
        assert_eq!(q(&[]).project(doc.clone()), doc);
        assert!(q(&[json!({"method": "select", "values": ["email"]})]).attributes().contains(&"email".to_owned()));
        let empty = ListQuery::from_strings(&[&json!({"method": "select", "values": []}).to_string()]);
        assert!(empty.is_err(), "a select without attributes is refused");
    }

    #[test]
    fn datetimes_compare_as_instants_across_offsets() {
        let item = json!({"at": "2026-01-01T10:00:00.000+00:00"});
        assert!(q(&[json!({"method": "lessThan", "attribute": "at", "values": ["2026-01-01T11:00:00.000+00:30"]})])
            .matches(&item));
    }

    #[test]
    fn unknown_methods_and_bad_json_are_query_errors() {
        assert_eq!(
            ListQuery::from_strings(&["{\"method\":\"frobnicate\",\"attribute\":\"a\",\"values\":[1]}"])
                .unwrap_err()
                .kind,
            "general_query_invalid"
        );
        assert_eq!(ListQuery::from_strings(&["equal(\"a\", [1])"]).unwrap_err().kind, "general_query_invalid");
    }
}

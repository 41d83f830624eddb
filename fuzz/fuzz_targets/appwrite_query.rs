//! The Appwrite query encoder: whatever the attribute names and values (quotes, backslashes, control
//! characters, any Unicode), each query encodes to one JSON object, with no other key than `method`,
//! `attribute` and `values`, that decodes back to the same method, attribute and values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;
use tollgate_appwrite::Query;

/// What a query must decode to. Decoded into this struct rather than a `Value` map: the same check, and
/// stricter (an unknown or repeated key is refused; `attribute` and `values`, when present, must be a string
/// and an array, never `null`), without building a map and looking keys up in it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decoded {
    method: String,
    #[serde(default, deserialize_with = "present")]
    attribute: Option<String>,
    #[serde(default, deserialize_with = "present")]
    values: Option<Vec<Value>>,
}

/// A key that is there holds a `T` (`null` is refused); `None` only when the key is missing.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn check(query: Query, method: &str, attribute: Option<&str>, values: Option<&[Value]>) {
    let param = query.to_param();
    let decoded: Decoded = serde_json::from_str(&param).expect("a query encodes to one JSON object");
    assert_eq!(decoded.method, method, "{param}");
    assert_eq!(decoded.attribute.as_deref(), attribute, "{param}");
    assert_eq!(decoded.values.as_deref(), values, "{param}");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (attribute, value) = text.split_once('\u{0}').unwrap_or((&text, ""));
    let number = data.iter().fold(0u32, |n, b| n.wrapping_mul(31).wrapping_add(u32::from(*b)));
    let (a, v, n) = (Some(attribute), Value::from(value), Value::from(number));
    let one = Some(std::slice::from_ref(&v));
    let both = [v.clone(), Value::from(attribute)];
    let by_number = Some(std::slice::from_ref(&n));
    check(Query::equal(attribute, [value, attribute]), "equal", a, Some(&both));
    check(Query::not_equal(attribute, value), "notEqual", a, one);
    check(Query::less_than(attribute, value), "lessThan", a, one);
    check(Query::less_than_equal(attribute, value), "lessThanEqual", a, one);
    check(Query::greater_than(attribute, number), "greaterThan", a, by_number);
    check(Query::greater_than_equal(attribute, value), "greaterThanEqual", a, one);
    check(Query::starts_with(attribute, value), "startsWith", a, one);
    check(Query::contains(attribute, value), "contains", a, one);
    check(Query::is_null(attribute), "isNull", a, None);
    check(Query::is_not_null(attribute), "isNotNull", a, None);
    check(Query::limit(number), "limit", None, by_number);
    check(Query::offset(number), "offset", None, by_number);
    check(Query::cursor_after(value), "cursorAfter", None, one);
    let both = [Value::from(attribute), v.clone()];
    check(Query::select([attribute, value]), "select", None, Some(&both));
    check(Query::order_asc(attribute), "orderAsc", a, None);
    check(Query::order_desc(attribute), "orderDesc", a, None);
});

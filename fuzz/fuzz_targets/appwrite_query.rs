//! The Appwrite query encoder: whatever the attribute names and values (quotes, backslashes, control
//! characters, any Unicode), each query encodes to one JSON object that decodes back to the same method,
//! attribute and values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tollgate_appwrite::Query;

fn check(query: Query, method: &str, attribute: Option<&str>, values: Option<Value>) {
    let decoded: Value = serde_json::from_str(&query.to_param()).expect("a query encodes to JSON");
    assert_eq!(decoded["method"], json!(method));
    assert_eq!(decoded.get("attribute").and_then(Value::as_str), attribute);
    assert_eq!(decoded.get("values").cloned(), values);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (attribute, value) = text.split_once('\u{0}').unwrap_or((&text, ""));
    let number = data.iter().fold(0u32, |n, b| n.wrapping_mul(31).wrapping_add(u32::from(*b)));
    let one = Some(json!([value]));
    check(Query::equal(attribute, [value, attribute]), "equal", Some(attribute), Some(json!([value, attribute])));
    check(Query::not_equal(attribute, value), "notEqual", Some(attribute), one.clone());
    check(Query::less_than(attribute, value), "lessThan", Some(attribute), one.clone());
    check(Query::less_than_equal(attribute, value), "lessThanEqual", Some(attribute), one.clone());
    check(Query::greater_than(attribute, number), "greaterThan", Some(attribute), Some(json!([number])));
    check(Query::greater_than_equal(attribute, value), "greaterThanEqual", Some(attribute), one.clone());
    check(Query::starts_with(attribute, value), "startsWith", Some(attribute), one.clone());
    check(Query::contains(attribute, value), "contains", Some(attribute), one.clone());
    check(Query::is_null(attribute), "isNull", Some(attribute), None);
    check(Query::is_not_null(attribute), "isNotNull", Some(attribute), None);
    check(Query::limit(number), "limit", None, Some(json!([number])));
    check(Query::offset(number), "offset", None, Some(json!([number])));
    check(Query::cursor_after(value), "cursorAfter", None, one);
    check(Query::select([attribute, value]), "select", None, Some(json!([attribute, value])));
    check(Query::order_asc(attribute), "orderAsc", Some(attribute), None);
    check(Query::order_desc(attribute), "orderDesc", Some(attribute), None);
});

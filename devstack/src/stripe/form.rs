//! Stripe's request encoding and error bodies.
//!
//! Stripe takes `application/x-www-form-urlencoded` bodies (and query strings for GETs) with bracket
//! notation for nesting: `metadata[k]=v`, `items[0][price]=price_…`, `expand[]=customer`. [`Form`] decodes
//! them into a JSON tree (`items[0][price]` → `{"items": {"0": {"price": …}}}`, `expand[]` → an array), so
//! handlers read parameters by path and answer Stripe's `parameter_unknown`, `parameter_missing` and
//! `parameter_invalid_*` errors for what they cannot use.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// Stripe's error body: `{"error": {"type", "code", "message", "param", …}}` with Stripe's status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    fn new(status: StatusCode, kind: &str, code: Option<&str>, message: String, param: Option<&str>) -> Self {
        let mut error = json!({ "type": kind, "message": message });
        if let Some(code) = code {
            error["code"] = json!(code);
            error["doc_url"] = json!(format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")));
        }
        if let Some(param) = param {
            error["param"] = json!(param);
        }
        Self { status, body: json!({ "error": error }) }
    }

    /// 400 `invalid_request_error` with a code.
    pub fn invalid(code: &str, message: impl Into<String>, param: Option<&str>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", Some(code), message.into(), param)
    }

    /// 400 `invalid_request_error` without a code (Stripe's state errors, e.g. a closed dispute).
    pub fn state(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", None, message.into(), None)
    }

    /// 404 `resource_missing`: `No such customer: 'cus_x'`.
    pub fn missing(noun: &str, id: &str, param: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("resource_missing"),
            format!("No such {noun}: '{id}'"),
            Some(param),
        )
    }

    /// 401 without a key, or with one that is not the account's.
    pub fn unauthorized(message: String) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", None, message, None)
    }

    /// 402 `card_error` (`card_declined`), naming the failed charge when one was made.
    pub fn card_declined(charge: Option<&str>, payment_intent: Option<&str>) -> Self {
        let mut error = Self::new(
            StatusCode::PAYMENT_REQUIRED,
            "card_error",
            Some("card_declined"),
            "Your card was declined.".to_owned(),
            None,
        );
        error.body["error"]["decline_code"] = json!("generic_decline");
        if let Some(charge) = charge {
            error.body["error"]["charge"] = json!(charge);
        }
        if let Some(pi) = payment_intent {
            error.body["error"]["payment_intent"] = json!({ "id": pi, "object": "payment_intent" });
        }
        error
    }

    pub fn not_found_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            None,
            format!("Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."),
            None,
        )
    }

    pub fn fault(status: u16, message: &str) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let kind = if status == StatusCode::TOO_MANY_REQUESTS { "invalid_request_error" } else { "api_error" };
        let code = (status == StatusCode::TOO_MANY_REQUESTS).then_some("rate_limit");
        Self::new(status, kind, code, message.to_owned(), None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

pub type ApiResult<T = Value> = Result<T, ApiError>;

/// A decoded form (or query string).
#[derive(Debug, Clone, Default)]
pub struct Form {
    pub root: Map<String, Value>,
}

impl Form {
    /// Decodes `a=1&b[c]=2&d[]=x&e[0][f]=y`. A key that is used both as a value and as a container
    /// (`a=1&a[b]=2`) is a 400, as Stripe answers.
    pub fn parse(raw: &[u8]) -> ApiResult<Self> {
        let mut root = Value::Object(Map::new());
        for (key, value) in url::form_urlencoded::parse(raw) {
            let path = split_key(&key).ok_or_else(|| {
                ApiError::invalid("parameter_invalid_string", format!("Invalid parameter name: {key}"), Some(&key))
            })?;
            insert(&mut root, &path, Value::String(value.into_owned()))
                .map_err(|()| ApiError::invalid("parameter_unknown", format!("Invalid array or hash: {key}"), None))?;
        }
        match root {
            Value::Object(root) => Ok(Self { root }),
            _ => Ok(Self::default()),
        }
    }

    /// `parameter_unknown` for the first top-level key not in `known` (`expand` is always allowed).
    pub fn only(&self, known: &[&str]) -> ApiResult<()> {
        match self.root.keys().find(|k| k.as_str() != "expand" && !known.contains(&k.as_str())) {
            Some(key) => {
                Err(ApiError::invalid("parameter_unknown", format!("Received unknown parameter: {key}"), Some(key)))
            }
            None => Ok(()),
        }
    }

    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut current = self.root.get(parts.next()?)?;
        for part in parts {
            current = match current {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(current)
    }

    /// A string parameter (`a.b` for `a[b]`); an empty string counts as given and empty, as Stripe
    /// uses it to unset.
    pub fn str(&self, path: &str) -> ApiResult<Option<&str>> {
        match self.get(path) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::invalid(
                "parameter_invalid_string",
                format!("Invalid string: {path} must be a string"),
                Some(&bracketed(path)),
            )),
        }
    }

    pub fn required(&self, path: &str) -> ApiResult<&str> {
        match self.str(path)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::invalid(
                "parameter_missing",
                format!("Missing required param: {}.", bracketed(path)),
                Some(&bracketed(path)),
            )),
        }
    }

    pub fn int(&self, path: &str) -> ApiResult<Option<i64>> {
        match self.str(path)? {
            None => Ok(None),
            Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
                ApiError::invalid("parameter_invalid_integer", format!("Invalid integer: {s}"), Some(&bracketed(path)))
            }),
        }
    }

    pub fn bool(&self, path: &str) -> ApiResult<Option<bool>> {
        match self.str(path)? {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid(
                "parameter_invalid_boolean",
                format!("Invalid boolean: {other}"),
                Some(&bracketed(path)),
            )),
        }
    }

    /// The elements of `items[0][…]`, `items[1][…]` (or `items[][…]`) in index order.
    pub fn indexed(&self, name: &str) -> ApiResult<Vec<Map<String, Value>>> {
        let entries: Vec<(usize, &Value)> = match self.root.get(name) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().enumerate().collect(),
            Some(Value::Object(map)) => {
                let mut entries = Vec::new();
                for (k, v) in map {
                    let index = k.parse::<usize>().map_err(|_| {
                        ApiError::invalid("parameter_invalid_integer", format!("Invalid array: {name}"), Some(name))
                    })?;
                    entries.push((index, v));
                }
                entries.sort_by_key(|(i, _)| *i);
                entries
            }
            Some(_) => {
                return Err(ApiError::invalid("parameter_invalid_array", format!("Invalid array: {name}"), Some(name)))
            }
        };
        entries
            .into_iter()
            .map(|(_, v)| match v {
                Value::Object(map) => Ok(map.clone()),
                _ => Err(ApiError::invalid("parameter_invalid_array", format!("Invalid array: {name}"), Some(name))),
            })
            .collect()
    }

    /// A list of strings: `name[]=a&name[]=b` or `name[0]=a`.
    pub fn strings(&self, name: &str) -> ApiResult<Vec<String>> {
        let values: Vec<&Value> = match self.root.get(name) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(Value::Object(map)) => {
                let mut entries: Vec<(usize, &Value)> =
                    map.iter().filter_map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v))).collect();
                entries.sort_by_key(|(i, _)| *i);
                entries.into_iter().map(|(_, v)| v).collect()
            }
            Some(Value::String(one)) => return Ok(vec![one.clone()]),
            Some(_) => Vec::new(),
        };
        values
            .into_iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::invalid("parameter_invalid_array", format!("Invalid array: {name}"), Some(name))
                })
            })
            .collect()
    }

    /// `metadata[k]=v` as a JSON object of strings (`None`: not given).
    pub fn metadata(&self) -> ApiResult<Option<Map<String, Value>>> {
        match self.root.get("metadata") {
            None => Ok(None),
            Some(Value::Object(map)) if map.values().all(Value::is_string) => Ok(Some(map.clone())),
            Some(Value::String(s)) if s.is_empty() => Ok(Some(Map::new())),
            Some(_) => Err(ApiError::invalid(
                "parameter_invalid_string",
                "Invalid metadata: metadata must be a hash of strings",
                Some("metadata"),
            )),
        }
    }

    pub fn expand(&self) -> ApiResult<Vec<String>> {
        self.strings("expand")
    }
}

/// `items[0][price]` → `["items", "0", "price"]`; `expand[]` → `["expand", ""]`.
fn split_key(key: &str) -> Option<Vec<String>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut path = vec![head.to_owned()];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        path.push(inner[..close].to_owned());
        rest = &inner[close + 1..];
    }
    Some(path)
}

fn insert(node: &mut Value, path: &[String], value: Value) -> Result<(), ()> {
    let Some((first, rest)) = path.split_first() else { return Err(()) };
    if first.is_empty() {
        // `name[]`: append.
        let Value::Array(items) = node else { return Err(()) };
        if rest.is_empty() {
            items.push(value);
            return Ok(());
        }
        let mut child = Value::Object(Map::new());
        insert(&mut child, rest, value)?;
        items.push(child);
        return Ok(());
    }
    let Value::Object(map) = node else { return Err(()) };
    if rest.is_empty() {
        if map.get(first).is_some_and(|v| !v.is_string()) {
            return Err(());
        }
        map.insert(first.clone(), value);
        return Ok(());
    }
    let container = if rest[0].is_empty() { Value::Array(Vec::new()) } else { Value::Object(Map::new()) };
    let child = map.entry(first.clone()).or_insert(container);
    if child.is_string() {
        return Err(());
    }
    insert(child, rest, value)
}

/// `a.b.c` as Stripe names it in errors: `a[b][c]`.
fn bracketed(path: &str) -> String {
    let mut parts = path.split('.');
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        out.push_str(&format!("[{part}]"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_nest_and_empty_brackets_append() {
        let form = Form::parse(
            b"customer=cus_1&items[0][price]=price_a&items[1][price]=price_b&expand[]=a&expand[]=b.c&metadata[k]=v%20w",
        )
        .unwrap();
        assert_eq!(form.str("customer").unwrap(), Some("cus_1"));
        let items = form.indexed("items").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["price"], "price_b");
        assert_eq!(form.expand().unwrap(), vec!["a".to_owned(), "b.c".to_owned()]);
        assert_eq!(form.metadata().unwrap().unwrap()["k"], "v w");
        assert_eq!(form.get("items.0.price").and_then(Value::as_str), Some("price_a"));
    }

    #[test]
    fn bad_values_and_unknown_parameters_are_stripes_400s() {
        let form = Form::parse(b"limit=ten&extra=1").unwrap();
        assert_eq!(form.int("limit").unwrap_err().body["error"]["code"], "parameter_invalid_integer");
        assert_eq!(form.only(&["limit"]).unwrap_err().body["error"]["param"], "extra");
        assert_eq!(form.required("customer").unwrap_err().body["error"]["code"], "parameter_missing");
        assert!(Form::parse(b"a=1&a[b]=2").is_err());
        assert!(Form::parse(b"[x]=1").is_err());
    }
}

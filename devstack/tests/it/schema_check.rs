//! Checks a response against the official Appwrite OpenAPI spec: the operation is found by method and
//! path (literal segments preferred over parameters), the status must be one the operation documents
//! (or an error answered with the spec's `error` model), and the body is validated against the schema,
//! `$ref`s resolved. The validator covers what the spec uses: type, properties, required, items,
//! nullable, enum, anyOf/oneOf.
//!
//! One deliberate exception, from PROTOCOLS.md §4.2: the spec types the error `code` as a string, but
//! Appwrite servers send the HTTP status as an integer; devstack does what the servers do.

use serde_json::Value;

pub const APPWRITE_SPEC: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/specs/appwrite/open-api3-1.8.x-server.json");
pub const DISCORD_SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/specs/discord/openapi.json");

pub struct Spec(Value);

impl Spec {
    pub fn load() -> Self {
        Self::load_from(APPWRITE_SPEC)
    }

    pub fn load_from(path: &str) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        Self(serde_json::from_str(&text).expect("the spec is JSON"))
    }

    /// Discord documents its errors per operation (`429`, `4XX`), with rate-limit headers on every
    /// answer: checks the status, the body and that every documented header is present.
    pub fn check_documented(
        &self,
        method: &str,
        path: &str,
        status: u16,
        headers: &[String],
        body: &Value,
    ) -> Vec<String> {
        let Some(template) = self.find_path(method, path) else {
            return vec![format!("{method} {path}: no operation in the spec")];
        };
        let responses = &self.0["paths"][&template][method.to_lowercase()]["responses"];
        let wildcard = format!("{}XX", status / 100);
        let Some(response) = responses.get(status.to_string()).or_else(|| responses.get(&wildcard)) else {
            return vec![format!("{method} {template}: status {status} is not documented")];
        };
        let response = self.resolve(response);
        let mut problems = Vec::new();
        for header in response
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(name, _)| name.to_lowercase())
        {
            if !headers.contains(&header) {
                problems.push(format!("{method} {template} ({status}): documented header `{header}` missing"));
            }
        }
        if let Some(schema) = response.pointer("/content/application~1json/schema") {
            self.validate(schema, body, &format!("{method} {template} ({status})"), &mut problems);
        }
        problems
    }

    /// The spec path template matching a concrete path (without `/v1`).
    pub fn find_path(&self, method: &str, path: &str) -> Option<String> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best: Option<(usize, String)> = None;
        for (template, operations) in self.0["paths"].as_object()? {
            if operations.get(method.to_lowercase()).is_none() {
                continue;
            }
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let fits = parts.iter().zip(&segments).all(|(p, s)| {
                if p.starts_with('{') {
                    true
                } else {
                    literal += 1;
                    p == s
                }
            });
            if fits && best.as_ref().is_none_or(|(n, _)| literal > *n) {
                best = Some((literal, template.clone()));
            }
        }
        best.map(|(_, template)| template)
    }

    /// Problems found with one response; empty when it conforms.
    pub fn check(&self, method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
        let Some(template) = self.find_path(method, path) else {
            return vec![format!("{method} {path}: no operation in the spec")];
        };
        let operation = &self.0["paths"][&template][method.to_lowercase()];
        let responses = &operation["responses"];
        let mut problems = Vec::new();
        if status >= 400 {
            let error_schema = serde_json::json!({"$ref": "#/components/schemas/error"});
            let mut body = body.clone();
            if body["code"].is_i64() {
                assert_eq!(body["code"].as_i64(), Some(i64::from(status)), "{method} {path}: code must be the status");
                body["code"] = Value::String(status.to_string());
            }
            self.validate(&error_schema, &body, "error", &mut problems);
            return problems;
        }
        let Some(response) = responses.get(status.to_string()) else {
            let documented: Vec<&String> = responses.as_object().map(|r| r.keys().collect()).unwrap_or_default();
            return vec![format!(
                "{method} {template}: status {status} is not documented (documented: {documented:?})"
            )];
        };
        match response.pointer("/content/application~1json/schema") {
            Some(schema) => self.validate(schema, body, &format!("{method} {template}"), &mut problems),
            None if status == 204 => {}
            None => {}
        }
        problems
    }

    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.0.pointer(reference.trim_start_matches('#')).unwrap_or(&Value::Null),
            None => schema,
        }
    }

    pub fn validate(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if value.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for part in all {
                self.validate(part, value, at, problems);
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(options) = schema.get(key).and_then(Value::as_array) {
                let fits = options.iter().any(|option| {
                    let mut inner = Vec::new();
                    self.validate(option, value, at, &mut inner);
                    inner.is_empty()
                });
                if !fits {
                    problems.push(format!("{at}: matches none of {key}"));
                }
                return;
            }
        }
        // OpenAPI 3.1 writes `"type": ["string", "null"]`: any listed type will do.
        if let Some(kinds) = schema.get("type").and_then(Value::as_array) {
            let fits = kinds.iter().filter_map(Value::as_str).any(|k| {
                let mut inner = Vec::new();
                let mut single = schema.clone();
                single["type"] = Value::String(k.to_owned());
                if k == "null" {
                    return value.is_null();
                }
                self.validate(&single, value, at, &mut inner);
                inner.is_empty()
            });
            if !fits {
                problems.push(format!("{at}: {value} is none of the types {kinds:?}"));
            }
            return;
        }
        let kind = schema.get("type").and_then(Value::as_str);
        let type_ok = match kind {
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            Some("array") => value.is_array(),
            Some("object") => value.is_object(),
            _ => true,
        };
        if !type_ok {
            problems.push(format!("{at}: expected {}, got {value}", kind.unwrap_or("?")));
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                problems.push(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
            for (i, item) in values.iter().enumerate() {
                self.validate(items, item, &format!("{at}[{i}]"), problems);
            }
        }
        if let Some(object) = value.as_object() {
            for required in
                schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
            {
                if !object.contains_key(required) {
                    problems.push(format!("{at}: missing required `{required}`"));
                }
            }
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    if let Some(field) = object.get(name) {
                        self.validate(property, field, &format!("{at}.{name}"), problems);
                    }
                }
            }
        }
    }
}

#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    let spec = Spec::load();
    let mut problems = Vec::new();
    spec.validate(
        &serde_json::json!({"$ref": "#/components/schemas/team"}),
        &serde_json::json!({"$id": "t", "name": 3}),
        "team",
        &mut problems,
    );
    assert!(problems.iter().any(|p| p.contains("missing required `total`")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("team.name")), "{problems:?}");
    assert_eq!(
        spec.find_path("POST", "/databases/db/collections/col/attributes/string").as_deref(),
        Some("/databases/{databaseId}/collections/{collectionId}/attributes/string")
    );
}

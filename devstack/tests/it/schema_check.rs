//! Checks a response against an official OpenAPI document (`testdata/specs/`): the operation is found by
//! method and path (literal segments preferred over parameters), the status must be one the operation
//! documents (or an error answered with the spec's `error` model), and the body is validated against the
//! operation's schema by the `jsonschema` crate: every keyword, every `$ref`, and formats.
//!
//! OpenAPI schemas are JSON Schema with dialect differences, adapted here (in the harness, never in the
//! copied documents) so that the validator reads them as their authors meant:
//! - OpenAPI 3.0 (Appwrite) is a draft-4 dialect where `nullable: true` allows `null`; JSON Schema has no
//!   such keyword, so it becomes `type: [T, "null"]` (or `anyOf: [schema, {type: null}]` next to a `$ref`,
//!   whose siblings draft 4 ignores).
//! - Appwrite's generated 3.0 document lists response models under `oneOf` without a discriminator, and the
//!   models overlap (a string attribute also fits `attributeBoolean`: same required keys, nullable
//!   `default`), so no real answer could match exactly one; there `oneOf` means "one of these models" and is
//!   read as `anyOf`. Discord's 3.1 document keeps JSON Schema's exclusive `oneOf`.
//! - OpenAPI's `int32` / `int64` formats bound integers, but JSON Schema applies formats to strings only,
//!   so they become `minimum` / `maximum`. Discord's `snowflake` format is checked as a decimal `u64`.
//! - The document's `components` are put beside the schema under test so `#/components/...` refs resolve.
//!
//! One deliberate exception, from `docs/protocols.md` §4.2: the Appwrite spec types the error `code` as a
//! string, but Appwrite servers send the HTTP status as an integer; devstack does what the servers do.

use jsonschema::{Draft, Validator};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const APPWRITE_SPEC: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/specs/appwrite/open-api3-1.8.x-server.json");
pub const DISCORD_SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/specs/discord/openapi.json");

pub struct Spec {
    document: Value,
    /// The document's `components`, adapted for JSON Schema (see the module docs).
    components: Value,
    draft: Draft,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

impl Spec {
    pub fn load() -> Self {
        Self::load_from(APPWRITE_SPEC)
    }

    pub fn load_from(path: &str) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let document: Value = serde_json::from_str(&text).expect("the spec is JSON");
        let version = document["openapi"].as_str().unwrap_or_default().to_owned();
        // 3.0 schemas are a draft-4 dialect; 3.1 schemas are JSON Schema 2020-12.
        let draft = if version.starts_with("3.0") { Draft::Draft4 } else { Draft::Draft202012 };
        let components = adapt(document["components"].clone(), draft);
        Self { document, components, draft, validators: Mutex::new(HashMap::new()) }
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
        let responses = &self.document["paths"][&template][method.to_lowercase()]["responses"];
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
        for (template, operations) in self.document["paths"].as_object()? {
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
        let operation = &self.document["paths"][&template][method.to_lowercase()];
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
            Some(reference) => self.document.pointer(reference.trim_start_matches('#')).unwrap_or(&Value::Null),
            None => schema,
        }
    }

    /// The compiled validator of one schema of this document, built once.
    fn validator(&self, schema: &Value) -> Arc<Validator> {
        let key = schema.to_string();
        let mut validators = self.validators.lock().expect("validator cache");
        let validator = validators.entry(key).or_insert_with(|| {
            let mut root = adapt(schema.clone(), self.draft);
            if let Some(object) = root.as_object_mut() {
                object.insert("components".to_owned(), self.components.clone());
            }
            let validator = jsonschema::options()
                .with_draft(self.draft)
                .should_validate_formats(true)
                .with_format("snowflake", |s: &str| s.parse::<u64>().is_ok())
                .build(&root)
                .unwrap_or_else(|e| panic!("the spec's schema {schema} does not compile: {e}"));
            Arc::new(validator)
        });
        Arc::clone(validator)
    }

    pub fn validate(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let validator = self.validator(schema);
        for error in validator.iter_errors(value) {
            problems.push(format!("{at}{}: {error}", error.instance_path()));
        }
    }
}

/// Rewrites OpenAPI-only schema conventions into JSON Schema (see the module docs).
fn adapt(schema: Value, draft: Draft) -> Value {
    match schema {
        Value::Array(items) => Value::Array(items.into_iter().map(|item| adapt(item, draft)).collect()),
        Value::Object(object) => {
            let mut object: Map<String, Value> =
                object.into_iter().map(|(key, value)| (key, adapt(value, draft))).collect();
            if let Some((min, max)) = match object.get("format").and_then(Value::as_str) {
                Some("int32") => Some((json!(i32::MIN), json!(i32::MAX))),
                Some("int64") => Some((json!(i64::MIN), json!(i64::MAX))),
                _ => None,
            } {
                object.entry("minimum").or_insert(min);
                object.entry("maximum").or_insert(max);
                object.remove("format");
            }
            if draft == Draft::Draft4 {
                if let Some(models) = object.remove("oneOf") {
                    object.insert("anyOf".to_owned(), models);
                }
            }
            if draft == Draft::Draft4 && object.remove("nullable") == Some(Value::Bool(true)) {
                if object.contains_key("$ref") {
                    return json!({"anyOf": [Value::Object(object), {"type": "null"}]});
                }
                match object.get("type").cloned() {
                    Some(Value::String(kind)) => {
                        object.insert("type".to_owned(), json!([kind, "null"]));
                        if let Some(Value::Array(allowed)) = object.get_mut("enum") {
                            allowed.push(Value::Null);
                        }
                    }
                    Some(_) => {}
                    None => return json!({"anyOf": [Value::Object(object), {"type": "null"}]}),
                }
            }
            Value::Object(object)
        }
        other => other,
    }
}

#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    let spec = Spec::load();
    let mut problems = Vec::new();
    spec.validate(
        &json!({"$ref": "#/components/schemas/team"}),
        &json!({"$id": "t", "name": 3}),
        "team",
        &mut problems,
    );
    assert!(problems.iter().any(|p| p.contains("\"total\" is a required property")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("team/name")), "{problems:?}");
    assert_eq!(
        spec.find_path("POST", "/databases/db/collections/col/attributes/string").as_deref(),
        Some("/databases/{databaseId}/collections/{collectionId}/attributes/string")
    );
}

#[test]
fn openapi_nullable_and_integer_formats_are_enforced() {
    let spec = Spec::load();
    // `attributeString.default` is `nullable: true` in the 3.0 document: null is allowed, a number is not.
    let schema = json!({"$ref": "#/components/schemas/attributeString"});
    let attribute = json!({"key": "k", "type": "string", "status": "available", "error": "", "required": false,
        "array": false, "$createdAt": "2026-01-01T00:00:00.000+00:00", "$updatedAt": "2026-01-01T00:00:00.000+00:00",
        "size": 64, "default": null});
    let mut problems = Vec::new();
    spec.validate(&schema, &attribute, "attribute", &mut problems);
    assert_eq!(problems, Vec::<String>::new());
    let mut wrong = attribute.clone();
    wrong["size"] = json!(i64::from(i32::MAX) + 1);
    spec.validate(&schema, &wrong, "attribute", &mut problems);
    assert!(problems.iter().any(|p| p.starts_with("attribute/size")), "an int32 beyond its range: {problems:?}");
}

#[test]
fn discord_snowflakes_and_refs_are_checked() {
    let spec = Spec::load_from(DISCORD_SPEC);
    let mut problems = Vec::new();
    spec.validate(
        &json!({"$ref": "#/components/schemas/SnowflakeType"}),
        &json!("1100000000000000100"),
        "id",
        &mut problems,
    );
    assert_eq!(problems, Vec::<String>::new());
    spec.validate(
        &json!({"$ref": "#/components/schemas/SnowflakeType"}),
        &json!("99999999999999999999"),
        "id",
        &mut problems,
    );
    assert!(!problems.is_empty(), "a snowflake beyond u64 is not one");
}

//! A devstack per test and a small HTTP client with Appwrite's headers.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tollgate_devstack::{DevstackConfig, RunningDevstack};

pub struct Stand {
    pub devstack: RunningDevstack,
    pub http: reqwest::Client,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

pub async fn stand() -> Stand {
    stand_with(DevstackConfig::for_tests()).await
}

pub async fn stand_with(config: DevstackConfig) -> Stand {
    let devstack = tollgate_devstack::start(config).await.expect("devstack starts");
    Stand { devstack, http: reqwest::Client::new() }
}

pub fn q(value: Value) -> String {
    value.to_string()
}

impl Stand {
    pub async fn call(&self, method: Method, path: &str, query: &[(&str, String)], body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.devstack.appwrite_endpoint()))
            .header("X-Appwrite-Project", self.devstack.project_id())
            .header("X-Appwrite-Key", self.devstack.api_key())
            .query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request reaches devstack");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Reply {
        self.call(Method::GET, path, query, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, &[], Some(body)).await
    }

    pub async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.devstack.appwrite_base_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("control route");
        assert!(response.status().is_success(), "control {path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    /// A database `db` with collection `col` holding `attributes` (key, type, extra fields), all available.
    pub async fn collection(&self, attributes: &[(&str, &str, Value)]) {
        assert_eq!(
            self.post("/databases", json!({"databaseId": "db", "name": "DB"})).await.status,
            StatusCode::CREATED
        );
        let created = self.post("/databases/db/collections", json!({"collectionId": "col", "name": "Col"})).await;
        assert_eq!(created.status, StatusCode::CREATED);
        for (key, kind, extra) in attributes {
            let mut body = json!({"key": key, "required": false});
            if let Value::Object(extra) = extra {
                for (k, v) in extra {
                    body[k] = v.clone();
                }
            }
            let reply = self.post(&format!("/databases/db/collections/col/attributes/{kind}"), body).await;
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{key}: {}", reply.body);
        }
        for (key, _, _) in attributes {
            self.wait_available(&format!("/databases/db/collections/col/attributes/{key}")).await;
        }
    }

    pub async fn wait_available(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reply = self.get(path, &[]).await;
            if reply.body["status"] == "available" {
                return;
            }
            assert!(Instant::now() < deadline, "{path} never became available: {}", reply.body);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Routes of `routes` that `calls` (a stand-in's `/_devstack/calls`) never counted.
pub fn unexercised(routes: &[(&str, &str)], calls: &Value) -> Vec<String> {
    routes
        .iter()
        .map(|(method, route)| format!("{method} {route}"))
        .filter(|key| calls.get(key).and_then(Value::as_u64).unwrap_or(0) == 0)
        .collect()
}

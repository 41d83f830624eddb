//! The Appwrite stand-in: `/v1` routes, their auth, and the test-only control routes on the same port.
//! It answers as Appwrite 1.8 unless `POST /_devstack/version {"version": "1.5"}` (or `"1.6"`) makes the
//! routes those versions lack (`DELETE …/documents` bulk delete, `PUT …/documents/{id}` upsert; docs/protocols.md
//! §4.4) answer as those servers do: 404 `general_route_not_found`. `"1.7"`/`"1.8"` or a reset go back.

pub mod account;
pub mod auth;
pub mod databases;
pub mod documents;
pub mod error;
pub mod indexed;
pub mod models;
pub mod queries;
pub mod store;
pub mod teams;
pub mod users;

use crate::control::{self, Control, Stand};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use error::ApiError;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use store::Store;

pub struct AppState {
    pub store: Store,
    pub project_id: String,
    pub api_key: String,
    pub control: Control,
    /// Answering as Appwrite 1.5/1.6: no bulk document routes, no single-document upsert.
    before_1_7: AtomicBool,
}

impl AppState {
    pub fn new(store: Store, project_id: String, api_key: String) -> Self {
        Self { store, project_id, api_key, control: Control::default(), before_1_7: AtomicBool::new(false) }
    }

    /// A route Appwrite added in 1.7 answers as an unknown route when devstack plays an older server.
    pub fn require_1_7(&self) -> Result<(), ApiError> {
        match self.before_1_7.load(Ordering::Relaxed) {
            true => Err(route_not_found_error()),
            false => Ok(()),
        }
    }
}

pub type State = axum::extract::State<Arc<AppState>>;

impl Stand for AppState {
    const ROUTES: &'static [(&'static str, &'static str)] = ROUTES;

    fn control(&self) -> &Control {
        &self.control
    }

    fn reset(&self) -> Result<(), String> {
        self.before_1_7.store(false, Ordering::Relaxed);
        self.store.reset().map_err(|e| e.to_string())
    }

    fn fault(&self, status: u16, message: &str) -> Response {
        ApiError::new(status, "general_server_error", message).into_response()
    }
}

/// Every (method, route) the stand-in serves under `/v1`. The conformance test drives each of them and
/// checks it against the official spec; the call counter refuses to count a route missing here.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/health"),
    ("GET", "/v1/account"),
    ("POST", "/v1/account/sessions/email"),
    ("POST", "/v1/account/jwts"),
    ("DELETE", "/v1/account/sessions/{sessionId}"),
    ("POST", "/v1/users"),
    ("GET", "/v1/users"),
    ("GET", "/v1/users/{userId}"),
    ("DELETE", "/v1/users/{userId}"),
    ("PATCH", "/v1/users/{userId}/verification"),
    ("GET", "/v1/users/{userId}/memberships"),
    ("POST", "/v1/users/{userId}/jwts"),
    ("POST", "/v1/databases"),
    ("GET", "/v1/databases"),
    ("GET", "/v1/databases/{databaseId}"),
    ("POST", "/v1/databases/{databaseId}/collections"),
    ("GET", "/v1/databases/{databaseId}/collections"),
    ("GET", "/v1/databases/{databaseId}/collections/{collectionId}"),
    ("GET", "/v1/databases/{databaseId}/collections/{collectionId}/attributes"),
    ("POST", "/v1/databases/{databaseId}/collections/{collectionId}/attributes/{key}"),
    ("GET", "/v1/databases/{databaseId}/collections/{collectionId}/attributes/{key}"),
    ("POST", "/v1/databases/{databaseId}/collections/{collectionId}/indexes"),
    ("GET", "/v1/databases/{databaseId}/collections/{collectionId}/indexes"),
    ("GET", "/v1/databases/{databaseId}/collections/{collectionId}/indexes/{key}"),
    ("POST", "/v1/databases/{databaseId}/collections/{collectionId}/documents"),
    ("GET", "/v1/databases/{databaseId}/collections/{collectionId}/documents"),
    ("DELETE", "/v1/databases/{databaseId}/collections/{collectionId}/documents"),
    ("GET", "/v1/databases/{databaseId}/collections/{collectionId}/documents/{documentId}"),
    ("PATCH", "/v1/databases/{databaseId}/collections/{collectionId}/documents/{documentId}"),
    ("PUT", "/v1/databases/{databaseId}/collections/{collectionId}/documents/{documentId}"),
    ("DELETE", "/v1/databases/{databaseId}/collections/{collectionId}/documents/{documentId}"),
    ("POST", "/v1/teams"),
    ("GET", "/v1/teams"),
    ("GET", "/v1/teams/{teamId}"),
    ("POST", "/v1/teams/{teamId}/memberships"),
    ("GET", "/v1/teams/{teamId}/memberships"),
    ("GET", "/v1/teams/{teamId}/memberships/{membershipId}"),
    ("DELETE", "/v1/teams/{teamId}/memberships/{membershipId}"),
];

pub fn router(state: Arc<AppState>) -> Router {
    const COL: &str = "/v1/databases/{databaseId}/collections/{collectionId}";
    let v1 = Router::new()
        .route("/v1/health", get(users::health))
        .route("/v1/account", get(account::get))
        .route("/v1/account/sessions/email", post(account::create_email_session))
        .route("/v1/account/jwts", post(account::create_jwt))
        .route("/v1/account/sessions/{sessionId}", axum::routing::delete(account::delete_session))
        .route("/v1/users", post(users::create).get(users::list))
        .route("/v1/users/{userId}", get(users::get).delete(users::delete))
        .route("/v1/users/{userId}/verification", patch(users::update_email_verification))
        .route("/v1/users/{userId}/memberships", get(teams::user_memberships))
        .route("/v1/users/{userId}/jwts", post(users::create_jwt))
        .route("/v1/databases", post(databases::create_database).get(databases::list_databases))
        .route("/v1/databases/{databaseId}", get(databases::get_database))
        .route(
            "/v1/databases/{databaseId}/collections",
            post(databases::create_collection).get(databases::list_collections),
        )
        .route(COL, get(databases::get_collection))
        .route(&format!("{COL}/attributes"), get(databases::list_attributes))
        .route(&format!("{COL}/attributes/{{key}}"), post(databases::create_attribute).get(databases::get_attribute))
        .route(&format!("{COL}/indexes"), post(databases::create_index).get(databases::list_indexes))
        .route(&format!("{COL}/indexes/{{key}}"), get(databases::get_index))
        .route(&format!("{COL}/documents"), post(documents::create).get(documents::list).delete(documents::bulk_delete))
        .route(
            &format!("{COL}/documents/{{documentId}}"),
            get(documents::get).patch(documents::update).put(documents::upsert).delete(documents::delete),
        )
        .route("/v1/teams", post(teams::create).get(teams::list))
        .route("/v1/teams/{teamId}", get(teams::get))
        .route("/v1/teams/{teamId}/memberships", post(teams::create_membership).get(teams::list_memberships))
        .route(
            "/v1/teams/{teamId}/memberships/{membershipId}",
            get(teams::get_membership).delete(teams::delete_membership),
        )
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_project_and_key))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), control::faults_and_counts::<AppState>))
        .layer(axum::middleware::from_fn(account::cors));
    v1.merge(control::routes::<AppState>())
        .route("/_devstack/version", post(set_version))
        .fallback(route_not_found)
        .with_state(state)
}

/// `POST /_devstack/version {"version": "1.5" | "1.6" | "1.7" | "1.8"}`: which server devstack plays.
async fn set_version(state: State, Json(body): Json<Value>) -> Response {
    let before_1_7 = match body.get("version").and_then(Value::as_str) {
        Some("1.5" | "1.6") => true,
        Some("1.7" | "1.8") => false,
        _ => {
            let message = "version must be one of 1.5, 1.6, 1.7, 1.8";
            return (StatusCode::BAD_REQUEST, Json(json!({ "ok": false, "message": message }))).into_response();
        }
    };
    state.before_1_7.store(before_1_7, Ordering::Relaxed);
    Json(json!({ "ok": true })).into_response()
}

fn route_not_found_error() -> ApiError {
    ApiError::not_found(
        "general_route_not_found",
        "The requested route was not found. Please refer to the API docs and try again.",
    )
}

async fn route_not_found() -> ApiError {
    route_not_found_error()
}

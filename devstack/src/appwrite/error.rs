//! Appwrite's error body: `{"message", "code" (the HTTP status as an integer), "type", "version"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// The server version devstack answers as (the spec it is checked against is 1.8.x).
pub const VERSION: &str = "1.8.1";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into() }
    }

    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, kind, message)
    }

    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, kind, message)
    }

    pub fn invalid_structure(message: impl Into<String>) -> Self {
        Self::new(400, "document_invalid_structure", format!("Invalid document structure: {}", message.into()))
    }

    pub fn argument(message: impl Into<String>) -> Self {
        Self::new(400, "general_argument_invalid", message)
    }

    pub fn query(message: impl Into<String>) -> Self {
        Self::new(400, "general_query_invalid", format!("Invalid query: {}", message.into()))
    }

    pub fn storage(error: rusqlite::Error) -> Self {
        Self::new(500, "general_server_error", format!("Server Error: {error}"))
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> Self {
        Self::storage(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({ "message": self.message, "code": self.status, "type": self.kind, "version": VERSION });
        (status, Json(body)).into_response()
    }
}

//! `X-Appwrite-Project` on every route; `X-Appwrite-Key` on server routes; a JWT or a session instead of
//! the key on the account routes (`/v1/account…`, see `account.rs`).

use super::error::ApiError;
use super::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn require_project_and_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let (project, key) = {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        (header("x-appwrite-project"), header("x-appwrite-key"))
    };
    match project.as_deref() {
        Some(project) if project == state.project_id => {}
        // Without the header Appwrite serves the console project, where this caller is a guest.
        None => {
            return ApiError::new(401, "general_unauthorized_scope", "User (role: guests) missing scopes ([\"users.read\"])")
                .into_response()
        }
        Some(_) => {
            return ApiError::not_found("project_not_found", "Project with the requested ID could not be found. Please check the value of the X-Appwrite-Project header to ensure the correct project ID is being used.")
                .into_response()
        }
    }
    // The account routes are the client API: a JWT or a session (checked by each route), no key.
    if request.uri().path() == "/v1/account" || request.uri().path().starts_with("/v1/account/") {
        return next.run(request).await;
    }
    match key {
        Some(key) if key == state.api_key => next.run(request).await,
        Some(_) => ApiError::new(
            401,
            "user_unauthorized",
            "The current user is not authorized to perform the requested action.",
        )
        .into_response(),
        None => ApiError::new(
            401,
            "general_unauthorized_scope",
            "User (role: guests) missing scopes ([\"users.read\",\"databases.read\",\"teams.read\"])",
        )
        .into_response(),
    }
}

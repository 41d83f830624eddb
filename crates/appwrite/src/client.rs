//! The one HTTP path every call goes through: auth headers, a timeout, path segments percent-encoded,
//! and error bodies decoded into [`AppwriteError`]. The transport ([`tollgate_http::Transport`]) is `fetch`
//! inside workerd and reqwest natively, so the same code serves the workers, the CLI and the tests.

use crate::error::AppwriteError;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::Secret;
use tollgate_http::{Incoming, Outgoing, Transport};

/// No outbound request waits longer than this (workerd and reqwest have no default timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct AppwriteConfig {
    /// e.g. `https://cloud.appwrite.io/v1`; a trailing slash is tolerated.
    pub endpoint: String,
    pub project_id: String,
    pub api_key: Secret,
}

#[derive(Debug, Clone)]
pub struct AppwriteClient {
    http: Transport,
    endpoint: url::Url,
    project_id: String,
    api_key: Secret,
    /// Set once the server answered that it has no bulk document delete (Appwrite 1.5/1.6), so the
    /// client (and its clones) stop probing for it; a new client probes again.
    no_bulk_delete: Arc<AtomicBool>,
    /// The invocation's subrequest counter (shared with its other clients), taken before each request.
    subrequests: Subrequests,
}

pub(crate) enum Auth<'a> {
    ApiKey,
    /// A user's JWT instead of the API key (`GET /account`).
    Jwt(&'a str),
}

impl AppwriteClient {
    pub fn new(config: AppwriteConfig) -> Result<Self, AppwriteError> {
        let trimmed = config.endpoint.trim().trim_end_matches('/');
        let endpoint = url::Url::parse(trimmed)
            .map_err(|e| AppwriteError::transport(format!("APPWRITE_ENDPOINT `{trimmed}` is not a URL: {e}")))?;
        if endpoint.cannot_be_a_base() {
            return Err(AppwriteError::transport(format!("APPWRITE_ENDPOINT `{trimmed}` cannot have paths")));
        }
        Ok(Self {
            http: Transport::new(),
            endpoint,
            project_id: config.project_id,
            api_key: config.api_key,
            no_bulk_delete: Arc::new(AtomicBool::new(false)),
            subrequests: Subrequests::unlimited(),
        })
    }

    /// Counts (and, with a limit, bounds) this client's requests in `subrequests`, the invocation's meter.
    pub fn with_subrequests(mut self, subrequests: Subrequests) -> Self {
        self.subrequests = subrequests;
        self
    }

    pub fn subrequests(&self) -> &Subrequests {
        &self.subrequests
    }

    pub(crate) fn lacks_bulk_delete(&self) -> bool {
        self.no_bulk_delete.load(Ordering::Relaxed)
    }

    pub(crate) fn remember_no_bulk_delete(&self) {
        self.no_bulk_delete.store(true, Ordering::Relaxed);
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
        auth: Auth<'_>,
    ) -> Result<(u16, String), AppwriteError> {
        self.subrequests.take().map_err(|spent| AppwriteError::transport(spent.to_string()))?;
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let auth = match auth {
            Auth::ApiKey => ("X-Appwrite-Key", self.api_key.expose()),
            Auth::Jwt(jwt) => ("X-Appwrite-JWT", jwt),
        };
        let body = body.map(Value::to_string);
        let project = ("X-Appwrite-Project", self.project_id.as_str());
        let json = ("content-type", "application/json");
        let with_body = [project, auth, json];
        let headers = if body.is_some() { &with_body[..] } else { &with_body[..2] };
        let mut request = Outgoing::new(method.as_str(), &url, headers, REQUEST_TIMEOUT);
        if let Some(body) = &body {
            request = request.with_body(body);
        }
        let Incoming { status, text, .. } =
            self.http.send(request).await.map_err(|e| AppwriteError::transport(e.to_string()))?;
        if (200..300).contains(&status) {
            Ok((status, text))
        } else {
            Err(AppwriteError::from_response(status, &text))
        }
    }

    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, AppwriteError> {
        let (status, text) = self.send(method, segments, query, body, Auth::ApiKey).await?;
        decode(status, &text)
    }

    pub(crate) async fn call_no_content(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> Result<(), AppwriteError> {
        self.send(method, segments, &[], body, Auth::ApiKey).await.map(drop)
    }
}

pub(crate) fn decode<T: DeserializeOwned>(status: u16, text: &str) -> Result<T, AppwriteError> {
    serde_json::from_str(text).map_err(|e| AppwriteError::decode(status, format!("unexpected response body: {e}")))
}

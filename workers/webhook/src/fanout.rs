//! Fan-out of due failures beyond one invocation's subrequest budget (`tollgate_app::scheduled`, "Fan-out").
//!
//! The cron hands slices of due failure ids to `POST /cron/retries` on this worker's own URL
//! (`WEBHOOK_URL`, the same setting the api worker forwards replays to), authenticated with `ADMIN_TOKEN`;
//! that invocation hands each id to `POST /admin/failures/{id}/replay`, where the retry runs in an
//! invocation of its own. Every hop is one subrequest of its caller, so each invocation stays within its
//! budget however long the backlog. Plain HTTP, as the role-sync prompt: it runs the same way in
//! `wrangler dev` and in production. Without `WEBHOOK_URL` or `ADMIN_TOKEN` the cron retries what fits
//! its own budget, as before.

use crate::error::{json, WebhookError};
use serde_json::json;
use std::time::Duration;
use tollgate_app::scheduled::{FanOut, FANOUT_SLICE};
use tollgate_core::subrequests::Subrequests;
use tollgate_core::AppwriteId;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::{bearer_matches, setting};
use worker::{Env, Request, Response};

/// The route a slice is handed to.
pub const SLICE_PATH: &str = "/cron/retries";
const HAND_OFF_TIMEOUT: Duration = Duration::from_secs(60);

/// The worker's own URL and token, and the invocation's meter that every hand-off counts into.
pub struct HttpFanOut<'a> {
    /// `(base URL, token)`; `None` when `WEBHOOK_URL` or `ADMIN_TOKEN` is not set (no fan-out).
    target: Option<(String, String)>,
    subrequests: &'a Subrequests,
}

impl<'a> HttpFanOut<'a> {
    pub fn from_env(env: &Env, subrequests: &'a Subrequests) -> Self {
        let base = setting(env, "WEBHOOK_URL").filter(|u| !u.trim().is_empty());
        let token = setting(env, "ADMIN_TOKEN").filter(|t| !t.is_empty());
        let target = base.zip(token).map(|(base, token)| (base.trim().trim_end_matches('/').to_owned(), token));
        Self { target, subrequests }
    }

    /// POSTs `body` to `path` on this worker; `true` on a 2xx. Asks the budget first.
    async fn post(&self, path: &str, body: &serde_json::Value) -> bool {
        let Some((base, token)) = &self.target else { return false };
        if !self.subrequests.fits(1) || self.subrequests.take().is_err() {
            return false;
        }
        let sent = reqwest::Client::new()
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(body)
            .timeout(HAND_OFF_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(response) => response.status().is_success(),
            Err(_) => false,
        }
    }
}

impl FanOut for HttpFanOut<'_> {
    fn enabled(&self) -> bool {
        self.target.is_some()
    }

    async fn hand(&self, ids: Vec<String>) -> bool {
        let handed = self.post(SLICE_PATH, &json!({ "ids": ids })).await;
        if !handed {
            worker::console_warn!("fan-out: a slice was not accepted; its failures stay due for the next run");
        }
        handed
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Slice {
    ids: Vec<String>,
}

/// `POST /cron/retries` `{"ids": [...]}` (`ADMIN_TOKEN`): hands each id to the replay route, all at once
/// (workerd queues past its six connections). Answers how many were accepted.
pub async fn retries(mut req: Request, env: &Env, invocation: &Invocation) -> Result<Response, WebhookError> {
    if !bearer_matches(&req, env, "ADMIN_TOKEN") {
        return Err(WebhookError::AdminUnauthenticated);
    }
    let slice: Slice = req.json().await.map_err(|_| WebhookError::BadRequest("invalid_body"))?;
    if slice.ids.is_empty() || slice.ids.len() > FANOUT_SLICE as usize {
        return Err(WebhookError::BadRequest("invalid_slice"));
    }
    let ids = slice
        .ids
        .iter()
        .map(|id| AppwriteId::parse(id))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| WebhookError::BadRequest("invalid_id"))?;
    let fan_out = HttpFanOut::from_env(env, invocation.subrequests());
    if !fan_out.enabled() {
        return Err(WebhookError::Misconfigured("WEBHOOK_URL".to_owned()));
    }
    let replays = ids.iter().map(|id| {
        let path = format!("/admin/failures/{}/replay", id.as_str());
        let fan_out = &fan_out;
        async move { fan_out.post(&path, &json!({})).await }
    });
    let accepted = futures::future::join_all(replays).await.into_iter().filter(|ok| *ok).count();
    invocation.note("handedOut", accepted);
    invocation.note("outcome", if accepted == ids.len() { "handed_out" } else { "partly_handed_out" });
    json(200, &json!({ "ok": true, "handedOut": accepted })).map_err(|e| WebhookError::Internal(e.to_string()))
}

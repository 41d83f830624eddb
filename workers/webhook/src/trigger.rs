//! The prompt hand-off to role-sync: after an access change, the webhook worker asks the role-sync worker
//! (`ROLE_SYNC_URL`, authenticated with `ROLE_SYNC_TOKEN`) to sync the user, after the answer has been
//! sent (`wait_until`). It is only the fast path: the `role_sync_jobs` outbox entry was written before,
//! and role-sync's cron runs every due job, so a lost or failed trigger delays a sync by a minute at most.

use serde_json::json;
use std::time::Duration;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::AppwriteId;
use tollgate_worker_common::setting;
use worker::{Context, Env};

/// The role-sync worker's route for one user.
pub const ROLE_SYNC_PATH: &str = "/sync";
const TRIGGER_TIMEOUT: Duration = Duration::from_secs(20);

/// Users prompted per cron run at most (each prompt is one subrequest); the rest wait for role-sync's cron.
pub const PROMPTS_PER_RUN: usize = 10;

pub fn request_role_sync(env: &Env, ctx: &Context, user_id: &AppwriteId, subrequests: &Subrequests) {
    if let Some(prompt) = prompt(env, user_id, subrequests) {
        ctx.wait_until(prompt);
    }
}

/// The cron's changes (retries that applied, pending entitlements claimed) prompt role-sync too, as
/// deliveries do, so their projection runs now rather than on role-sync's next cron run.
pub async fn prompt_after_cron(env: &Env, users: &[AppwriteId], subrequests: &Subrequests) {
    let mut seen = std::collections::BTreeSet::new();
    for user in users.iter().filter(|u| seen.insert(u.as_str().to_owned())).take(PROMPTS_PER_RUN) {
        if let Some(prompt) = prompt(env, user, subrequests) {
            prompt.await;
        }
    }
}

/// The request to role-sync for one user, if it is configured and the invocation's budget allows it.
fn prompt(
    env: &Env,
    user_id: &AppwriteId,
    subrequests: &Subrequests,
) -> Option<impl std::future::Future<Output = ()> + 'static> {
    let (Some(base), Some(token)) = (setting(env, "ROLE_SYNC_URL"), setting(env, "ROLE_SYNC_TOKEN")) else {
        return None;
    };
    // Asked first, so that a spent budget is a skipped prompt, not a refused call.
    if !subrequests.fits(1) || subrequests.take().is_err() {
        worker::console_warn!(
            "role-sync trigger skipped: the subrequest budget is spent; the cron will pick the job up"
        );
        return None;
    }
    let url = format!("{}{ROLE_SYNC_PATH}", base.trim_end_matches('/'));
    let body = json!({ "userId": user_id.as_str() });
    Some(async move {
        let sent =
            reqwest::Client::new().post(&url).bearer_auth(token).json(&body).timeout(TRIGGER_TIMEOUT).send().await;
        match sent {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                worker::console_warn!("role-sync trigger answered {}; the cron will pick the job up", response.status())
            }
            Err(_) => worker::console_warn!("role-sync trigger failed; the cron will pick the job up"),
        }
    })
}

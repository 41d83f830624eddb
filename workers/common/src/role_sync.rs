//! The prompt to the role-sync worker (`ROLE_SYNC_URL`, authenticated with `ROLE_SYNC_TOKEN`): "sync this
//! user now". Role-sync is the one worker that writes roles and projections; the others queue the user's
//! job in the `role_sync_jobs` outbox first and then prompt it, so a prompt is only the fast path: role-sync's
//! cron runs every due job, and a lost or failed prompt delays a sync by a minute at most.

use serde_json::json;
use std::time::Duration;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::AppwriteId;
use worker::Env;

use crate::setting;

/// The role-sync worker's route for one user.
pub const ROLE_SYNC_PATH: &str = "/sync";

/// The request to role-sync for one user, if it is configured and the invocation's budget allows it; it
/// gives up after `timeout` (and says so in the log: the cron picks the job up).
pub fn prompt(
    env: &Env,
    user_id: &AppwriteId,
    subrequests: &Subrequests,
    timeout: Duration,
) -> Option<impl std::future::Future<Output = ()> + 'static> {
    let (Some(base), Some(token)) = (setting(env, "ROLE_SYNC_URL"), setting(env, "ROLE_SYNC_TOKEN")) else {
        return None;
    };
    // Asked first, so that a spent budget is a skipped prompt, not a refused call.
    if !subrequests.fits(1) || subrequests.take().is_err() {
        worker::console_warn!(
            "role-sync prompt skipped: the subrequest budget is spent; the cron will pick the job up"
        );
        return None;
    }
    let url = format!("{}{ROLE_SYNC_PATH}", base.trim_end_matches('/'));
    let body = json!({ "userId": user_id.as_str() });
    Some(async move {
        match crate::post_json(&url, &token, &body, timeout).await {
            Ok(answer) if answer.is_success() => {}
            Ok(answer) => {
                worker::console_warn!("role-sync prompt answered {}; the cron will pick the job up", answer.status)
            }
            Err(_) => worker::console_warn!("role-sync prompt failed; the cron will pick the job up"),
        }
    })
}

//! The prompt hand-off to role-sync (`tollgate_worker_common::role_sync`): after an access change, the
//! webhook worker asks the role-sync worker to sync the user, after the answer has been sent
//! (`wait_until`). It is only the fast path: the `role_sync_jobs` outbox entry was written before.

use std::time::Duration;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::AppwriteId;
use worker::{Context, Env};

const TRIGGER_TIMEOUT: Duration = Duration::from_secs(20);

/// Users prompted per cron run at most (each prompt is one subrequest); the rest wait for role-sync's cron.
pub const PROMPTS_PER_RUN: usize = 10;

pub fn request_role_sync(env: &Env, ctx: &Context, user_id: &AppwriteId, subrequests: &Subrequests) {
    if let Some(prompt) = prompt(env, user_id, subrequests) {
        ctx.wait_until(prompt);
    }
}

/// Prompts role-sync for one user and waits for it (a delivery finished after its answer).
pub async fn prompt_now(env: &Env, user_id: &AppwriteId, subrequests: &Subrequests) {
    if let Some(prompt) = prompt(env, user_id, subrequests) {
        prompt.await;
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

/// The request to role-sync for one user ([`tollgate_worker_common::role_sync::prompt`]).
fn prompt(
    env: &Env,
    user_id: &AppwriteId,
    subrequests: &Subrequests,
) -> Option<impl std::future::Future<Output = ()> + 'static> {
    tollgate_worker_common::role_sync::prompt(env, user_id, subrequests, TRIGGER_TIMEOUT)
}

//! workers/role-sync: Discord roles as a projection of Appwrite.
//!
//! - `POST /sync` `{"userId"}` (`Authorization: Bearer <ROLE_SYNC_TOKEN>`): sync one user now; the webhook
//!   worker calls it after every access change.
//! - cron: the webhook's due failures, then its stale inbox claims, then the due `role_sync_jobs`, handed
//!   out in slices through `/replays` (when `ROLE_SYNC_URL` is set; without it the cron runs as many jobs
//!   as fit the budget itself), then a bounded slice of the whole guild (reconciliation) within what is
//!   left of `CRON_SUBREQUEST_BUDGET`.
//! - `POST /replays` `{"kind": "failures"|"claims"|"jobs", "ids": [...]}` (`ROLE_SYNC_TOKEN`; no `kind`:
//!   failures): a slice handed out by this worker's cron; each id goes to the webhook worker's replay or
//!   sweep route (`WEBHOOK_URL`, `ADMIN_TOKEN`) or, for a job, to this worker's `POST /sync`
//!   (`ROLE_SYNC_URL`, `ROLE_SYNC_TOKEN`), one invocation each, `RELAY_CONCURRENCY` at a time.
//! - `GET /health`.
//! - Discord calls ask the `DiscordLimiter` Durable Object of the limiter worker (workers/limiter), shared
//!   with the api and console workers.
#![cfg(target_arch = "wasm32")]

use serde_json::json;
use tollgate_app::concurrent::in_waves;
use tollgate_app::role_sync::{RoleSync, RoleSyncRequest, RECONCILE_PAGES_PER_RUN};
use tollgate_app::scheduled::{Backlog, FanOut, Processor, BACKLOGS, FANOUT_SLICE, RELAY_CONCURRENCY};
use tollgate_app::settings::customer_guild_id;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::AppwriteId;
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::{bearer_matches, setting, AppParts};
use worker::{event, Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent};

/// Due jobs listed per cron invocation at most; `CRON_SUBREQUEST_BUDGET` decides how many run
/// (`tollgate_app::role_sync::SYNC_COST` each), and reconciliation gets what they leave.
pub const JOBS_PER_RUN: u32 = 20;

#[event(start)]
fn start() {
    tollgate_worker_common::observe::install();
}

fn answer(status: u16, body: serde_json::Value) -> Result<Response> {
    Ok(Response::from_json(&body)?.with_status(status))
}

fn error(status: u16, code: &str) -> Result<Response> {
    answer(status, json!({ "ok": false, "error": code }))
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let invocation = Invocation::request("role-sync", &req);
    let response = route(req, &env, &invocation).await?;
    invocation.finish(response)
}

async fn route(mut req: Request, env: &Env, invocation: &Invocation) -> Result<Response> {
    match (req.method(), req.path().as_str()) {
        (Method::Get, "/health") => answer(200, json!({ "ok": true })),
        (Method::Post, "/sync") => {
            if !bearer_matches(&req, env, "ROLE_SYNC_TOKEN") {
                return error(401, "unauthorized");
            }
            let Ok(request) = req.json::<RoleSyncRequest>().await else { return error(400, "invalid_body") };
            let Ok(user_id) = AppwriteId::parse(&request.user_id) else { return error(400, "invalid_user_id") };
            let Ok(parts) = AppParts::from_env(env, invocation.subrequests()) else {
                return error(503, "not_configured");
            };
            let (Ok(discord), Ok(guild)) = (parts.discord(env), customer_guild_id(|n| setting(env, n))) else {
                return error(503, "not_configured");
            };
            invocation.note("userId", user_id.as_str());
            match RoleSync::new(parts.app(), &discord, guild).sync_user(&user_id).await {
                Ok(outcome) => {
                    invocation.note("outcome", outcome.code());
                    answer(200, json!({ "ok": true, "outcome": outcome.code() }))
                }
                Err(e) => {
                    worker::console_error!("role-sync: {e}");
                    error(503, "temporarily_unavailable")
                }
            }
        }
        (Method::Post, "/replays") => relay_replays(req, env, invocation).await,
        (_, "/health" | "/sync" | "/replays") => error(405, "method_not_allowed"),
        _ => error(404, "not_found"),
    }
}

/// The relay of the fan-out (`tollgate_app::scheduled`, "Fan-out"): up to `FANOUT_SLICE` due failure ids
/// (`kind` `failures`, or none), stale claim ids (`claims`) or user ids of due jobs (`jobs`), each handed to
/// the webhook worker's `POST /admin/failures/{id}/replay` or `POST /admin/claims/{id}/sweep`, or this
/// worker's `POST /sync` (`Backlog::request`; one subrequest each,
/// `RELAY_CONCURRENCY` at a time: "Pacing"), where it runs in an invocation of its own. It lives here
/// because it needs none of the processing code, and the webhook worker's size budget has no room for it;
/// this worker's cron hands the slices out ([`Relay`]).
async fn relay_replays(mut req: Request, env: &Env, invocation: &Invocation) -> Result<Response> {
    if !bearer_matches(&req, env, "ROLE_SYNC_TOKEN") {
        return error(401, "unauthorized");
    }
    let Ok(body) = req.json::<serde_json::Value>().await else { return error(400, "invalid_body") };
    let Some(raw) = body.get("ids").and_then(|ids| ids.as_array()) else { return error(400, "invalid_body") };
    let backlog = match body.get("kind") {
        None => Backlog::DueFailures,
        Some(kind) => match kind.as_str().and_then(Backlog::from_name) {
            Some(backlog) => backlog,
            None => return error(400, "invalid_kind"),
        },
    };
    if raw.is_empty() || raw.len() > FANOUT_SLICE as usize {
        return error(400, "invalid_slice");
    }
    let ids: Option<Vec<AppwriteId>> =
        raw.iter().map(|id| id.as_str().and_then(|id| AppwriteId::parse(id).ok())).collect();
    let Some(ids) = ids else { return error(400, "invalid_id") };
    let (url_setting, token_setting) = match backlog.processor() {
        Processor::Webhook => ("WEBHOOK_URL", "ADMIN_TOKEN"),
        Processor::RoleSync => ("ROLE_SYNC_URL", "ROLE_SYNC_TOKEN"),
    };
    let (Some(base), Some(token)) = (setting(env, url_setting), setting(env, token_setting)) else {
        return error(503, "not_configured");
    };
    let base = base.trim().trim_end_matches('/').to_owned();
    let subrequests = invocation.subrequests();
    let handed = in_waves(&ids, RELAY_CONCURRENCY, |id| {
        let (path, body) = backlog.request(id.as_str());
        let (url, token) = (format!("{base}{path}"), &token);
        async move { post_json(&url, token, &body, subrequests).await }
    })
    .await
    .into_iter()
    .filter(|ok| *ok)
    .count();
    invocation.note("kind", backlog.name());
    invocation.note("handedOut", handed);
    answer(200, json!({ "ok": true, "handedOut": handed }))
}

/// The fan-out of the webhook's due failures and stale claims and of the due jobs: slices go to this
/// worker's own `POST /replays` (`ROLE_SYNC_URL`, `ROLE_SYNC_TOKEN`), each an invocation with a budget of its own.
struct Relay<'a> {
    target: Option<(String, String)>,
    subrequests: &'a Subrequests,
}

impl<'a> Relay<'a> {
    fn from_env(env: &Env, subrequests: &'a Subrequests) -> Self {
        let base = setting(env, "ROLE_SYNC_URL").filter(|u| !u.trim().is_empty());
        let token = setting(env, "ROLE_SYNC_TOKEN").filter(|t| !t.is_empty());
        let target =
            base.zip(token).map(|(base, token)| (format!("{}/replays", base.trim().trim_end_matches('/')), token));
        Self { target, subrequests }
    }
}

impl FanOut for Relay<'_> {
    fn enabled(&self) -> bool {
        self.target.is_some()
    }

    async fn hand(&self, backlog: Backlog, ids: Vec<String>) -> bool {
        let Some((url, token)) = &self.target else { return false };
        let handed = post_json(url, token, &json!({ "kind": backlog.name(), "ids": ids }), self.subrequests).await;
        if !handed {
            worker::console_warn!(
                "role-sync: a slice of {} was not accepted; they wait for the next run",
                backlog.name()
            );
        }
        handed
    }
}

/// POSTs `body` with the bearer `token`; `true` on a 2xx. Asks the invocation's budget first.
async fn post_json(url: &str, token: &str, body: &serde_json::Value, subrequests: &Subrequests) -> bool {
    if !subrequests.fits(1) || subrequests.take().is_err() {
        return false;
    }
    let sent = tollgate_worker_common::post_json(url, token, body, std::time::Duration::from_secs(60)).await;
    matches!(sent, Ok(answer) if answer.is_success())
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let budget = tollgate_app::settings::cron_subrequest_budget(|name| setting(&env, name));
    let invocation = Invocation::cron("role-sync", &event.cron(), *budget.as_ref().unwrap_or(&0));
    if let Err(e) = budget {
        worker::console_error!("role-sync: not configured: {e}");
        return invocation.finish_cron("not_configured");
    }
    let outcome = run_cron(&env, &invocation).await;
    invocation.finish_cron(outcome);
}

async fn run_cron(env: &Env, invocation: &Invocation) -> &'static str {
    let Ok(parts) = AppParts::from_env(env, invocation.subrequests()) else {
        worker::console_error!("role-sync: not configured (Appwrite settings)");
        return "not_configured";
    };
    let (Ok(discord), Ok(guild)) = (parts.discord(env), customer_guild_id(|n| setting(env, n))) else {
        worker::console_error!("role-sync: not configured (DISCORD_BOT_TOKEN, CUSTOMER_GUILD_ID)");
        return "not_configured";
    };
    let sync = RoleSync::new(parts.app(), &discord, guild);
    let mut outcome = "ok";
    // First the webhook's due failures, then its stale claims (buyers waiting for access), then the due
    // role-sync jobs, relayed through `/replays`; each hand-out with what the one before left of the budget.
    let relay = Relay::from_env(env, invocation.subrequests());
    let mut jobs_handed = 0;
    for backlog in BACKLOGS.into_iter().filter(|_| relay.enabled()) {
        let key = match backlog {
            Backlog::DueFailures => "handedOutFailures",
            Backlog::StaleClaims => "handedOutClaims",
            Backlog::DueJobs => "handedOutJobs",
        };
        match sync.app.hand_out(backlog, &relay).await {
            Ok((handed, failed_slices)) => {
                if backlog == Backlog::DueJobs {
                    jobs_handed = handed;
                }
                invocation.note(key, json!({ backlog.name(): handed, "failedSlices": failed_slices }))
            }
            Err(e) => {
                worker::console_error!("role-sync: handing out {}: {e}", backlog.name());
                outcome = "errors";
            }
        }
    }
    // Jobs handed out are still pending until their syncs finish: not run here too. Without the fan-out
    // (no `ROLE_SYNC_URL`) or when no slice was accepted, the cron runs what fits itself.
    if jobs_handed == 0 {
        match sync.run_due_jobs(JOBS_PER_RUN).await {
            Ok(ran) => invocation.note("dueJobs", ran.len()),
            Err(e) => {
                worker::console_error!("role-sync: due jobs: {e}");
                outcome = "errors";
            }
        }
    }
    match sync.reconcile_once(RECONCILE_PAGES_PER_RUN).await {
        Ok(report) => {
            invocation.note(
                "reconciliation",
                json!({
                    "membersSeen": report.members_seen,
                    "roleChanges": report.role_changes,
                    "passFinished": report.pass_finished,
                    "budgetSpent": report.budget_spent,
                    "stopped": report.stopped.as_ref().map(|s| format!("{s:?}")),
                    "skipped": report.skipped.len(),
                    "unreadableMappings": report.unreadable_mappings.len(),
                }),
            );
            for skipped in &report.skipped {
                worker::console_warn!("role-sync: skipped member {}: {}", skipped.discord_user, skipped.reason);
            }
            for mapping in &report.unreadable_mappings {
                worker::console_error!(
                    "role-sync: a role mapping cannot be read, its roles are not managed: {mapping}"
                );
            }
        }
        Err(e) => {
            worker::console_error!("role-sync: reconciliation: {e}");
            outcome = "errors";
        }
    }
    outcome
}

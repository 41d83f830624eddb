//! `tollgate sync`: one user, or `--all`, the whole guild from its first member to its last.
//!
//! `--all` walks with a cursor of its own, held in memory, and never reads or moves the cron's
//! (`sync_state`): starting at the cron's cursor would leave every member before it unchecked. A rate
//! limit pauses the walk until Discord's time (up to [`MAX_WAIT`]) and it resumes where it stopped.

use crate::cli::SyncArgs;
use crate::config::{Config, SystemClock};
use crate::output::print;
use anyhow::{anyhow, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tollgate_app::role_sync::{RoleSync, RECONCILE_PAGES_PER_RUN};
use tollgate_app::App;
use tollgate_core::{AppwriteId, Clock};

/// The walk takes at most this many slices of [`RECONCILE_PAGES_PER_RUN`] pages (10 million members).
const MAX_SLICES: u32 = 1_000;
/// The longest pause for a rate limit; a longer one stops the walk (run it again later).
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(300);
/// Pauses in a row without a member dealt with before the walk gives up (Discord is down, not busy).
const MAX_PAUSES_WITHOUT_PROGRESS: u32 = 5;

pub async fn run(config: &Config, json: bool, args: SyncArgs) -> Result<i32> {
    let (appwrite, settings, discord, guild) =
        (config.appwrite()?, config.settings()?, config.discord()?, config.guild()?);
    let sync = RoleSync::new(App::new(&appwrite, &settings, &SystemClock), &discord, guild);
    if let Some(user) = args.user {
        let user = AppwriteId::parse(&user).map_err(|e| anyhow!("--user: {e}"))?;
        let outcome = sync.sync_user(&user).await?;
        let value = json!({ "userId": user.as_str(), "outcome": outcome.code() });
        print(json, &value, || format!("{user}: {} ({outcome:?})", outcome.code()));
        return Ok(0);
    }
    let progress = if json { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos} members checked, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let (mut seen, mut changes, mut members_changed, mut stopped) = (0, 0, 0, None);
    let (mut skipped, mut unreadable) = (Vec::new(), Vec::new());
    let (mut cursor, mut idle_pauses) = (None, 0);
    for _ in 0..MAX_SLICES {
        let report = sync.reconcile_from(cursor, RECONCILE_PAGES_PER_RUN).await?;
        seen += report.members_seen;
        changes += report.role_changes;
        members_changed += report.members_changed;
        skipped.extend(
            report.skipped.iter().map(|s| json!({ "discordUserId": s.discord_user.to_string(), "reason": s.reason })),
        );
        unreadable = report.unreadable_mappings.clone();
        cursor = report.resume_after;
        progress.set_position(seen as u64);
        progress.set_message(format!("{changes} role changes"));
        if report.pass_finished {
            break;
        }
        if let Some(reason) = report.stopped {
            idle_pauses = if report.members_seen == 0 { idle_pauses + 1 } else { 0 };
            let wait = report.retry_at.and_then(|at| (at - SystemClock.now()).to_std().ok()).unwrap_or_default();
            if report.retry_at.is_none() || wait > MAX_WAIT || idle_pauses > MAX_PAUSES_WITHOUT_PROGRESS {
                stopped = Some(reason);
                break;
            }
            progress.set_message(format!("{changes} role changes, paused {}s: {reason}", wait.as_secs()));
            tokio::time::sleep(wait).await;
        }
    }
    progress.finish_and_clear();
    let value = json!({
        "membersChecked": seen,
        "membersChanged": members_changed,
        "roleChanges": changes,
        "skipped": skipped,
        "unreadableMappings": unreadable,
        "stopped": stopped,
    });
    print(json, &value, || {
        let mut text = format!("{seen} members checked, {members_changed} changed, {changes} role changes");
        for member in &skipped {
            text.push_str(&format!(
                "\nskipped member {}: {}",
                member["discordUserId"].as_str().unwrap_or_default(),
                member["reason"].as_str().unwrap_or_default()
            ));
        }
        for mapping in &unreadable {
            text.push_str(&format!("\nunreadable role mapping (its roles are not managed) {mapping}"));
        }
        if let Some(reason) = &stopped {
            text.push_str(&format!("\nstopped early: {reason} (run again later)"));
        }
        text
    });
    Ok(if stopped.is_some() || !unreadable.is_empty() { 2 } else { 0 })
}

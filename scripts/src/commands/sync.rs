use crate::cli::SyncArgs;
use crate::config::{Config, SystemClock};
use crate::output::print;
use anyhow::{anyhow, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tollgate_app::role_sync::{RoleSync, RECONCILE_PAGES_PER_RUN};
use tollgate_app::App;
use tollgate_core::AppwriteId;

/// Reconciliation runs until the pass over the guild finishes, at most this many slices.
const MAX_SLICES: u32 = 1_000;

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
    for _ in 0..MAX_SLICES {
        let report = sync.reconcile_once(RECONCILE_PAGES_PER_RUN).await?;
        seen += report.members_seen;
        changes += report.role_changes;
        members_changed += report.members_changed;
        progress.set_position(seen as u64);
        progress.set_message(format!("{changes} role changes"));
        if report.stopped.is_some() || report.pass_finished {
            stopped = report.stopped;
            break;
        }
    }
    progress.finish_and_clear();
    let value = json!({ "membersChecked": seen, "membersChanged": members_changed, "roleChanges": changes, "stopped": stopped });
    print(json, &value, || {
        let mut text = format!("{seen} members checked, {members_changed} changed, {changes} role changes");
        if let Some(reason) = &stopped {
            text.push_str(&format!("\nstopped early: {reason} (run again later)"));
        }
        text
    });
    Ok(if stopped.is_some() { 2 } else { 0 })
}

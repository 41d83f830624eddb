use crate::cli::{FailureStateArg, FailuresCommand};
use crate::config::{Config, SystemClock};
use crate::output::{confirm, print};
use anyhow::{anyhow, Result};
use serde_json::{json, Value};
use tollgate_app::failures::RetryReport;
use tollgate_app::lookup::failure_summary;
use tollgate_app::records::{FailureRecord, FailureState};
use tollgate_app::App;
use tollgate_appwrite::Query;
use tollgate_core::AppwriteId;

/// Failures listed per page while reading them all.
const PAGE: u32 = 100;
/// `--all-due` replays at most this many per run.
const REPLAY_ALL_LIMIT: u32 = 1_000;

pub async fn run(config: &Config, json: bool, yes: bool, command: FailuresCommand) -> Result<i32> {
    let (appwrite, settings, stripe) = (config.appwrite()?, config.settings()?, config.stripe()?);
    let app = App::new(&appwrite, &settings, &SystemClock).with_stripe(stripe.as_ref());
    match command {
        FailuresCommand::List { state } => {
            let mut filters = Vec::new();
            if let Some(state) = state {
                let state = match state {
                    FailureStateArg::Due => FailureState::Due,
                    FailureStateArg::Dead => FailureState::Dead,
                    FailureStateArg::Settled => FailureState::Settled,
                };
                filters.push(Query::equal("state", [state.as_str()]));
            }
            let docs = appwrite
                .list_all_documents(&settings.database_id, &settings.collections.webhook_failures, &filters, PAGE)
                .await?;
            let items: Vec<Value> =
                docs.iter().map(|d| failure_summary(&d.id, &d.decode::<FailureRecord>().unwrap_or_default())).collect();
            let value = json!({ "total": items.len(), "failures": items });
            print(json, &value, || {
                let mut lines =
                    vec![format!("{:<38} {:<8} {:>8}  {:<24} {}", "id", "state", "attempts", "error", "email")];
                for f in &items {
                    let text = |k: &str| f[k].as_str().unwrap_or("-").to_owned();
                    lines.push(format!(
                        "{:<38} {:<8} {:>8}  {:<24} {}",
                        text("id"),
                        text("state"),
                        f["attempts"],
                        text("errorCode"),
                        text("email")
                    ));
                }
                lines.push(format!("{} failure(s)", items.len()));
                lines.join("\n")
            });
            Ok(0)
        }
        FailuresCommand::Replay { id: Some(id), .. } => {
            let id = AppwriteId::parse(&id).map_err(|e| anyhow!("failure id: {e}"))?;
            let outcome = app.replay_failure(&id).await?;
            let value = json!({ "id": id.as_str(), "outcome": format!("{outcome:?}").to_lowercase() });
            print(json, &value, || format!("{id}: {}", format!("{outcome:?}").to_lowercase()));
            Ok(0)
        }
        FailuresCommand::Replay { id: None, all_due: true } => {
            confirm(yes, "This replays every due failure now")?;
            let report: RetryReport = app.retry_due_failures(REPLAY_ALL_LIMIT).await?;
            let value = json!({ "settled": report.settled, "rescheduled": report.rescheduled, "dead": report.dead });
            print(json, &value, || {
                format!("settled {}, failed again {}, now dead {}", report.settled, report.rescheduled, report.dead)
            });
            Ok(0)
        }
        FailuresCommand::Replay { id: None, all_due: false } => Err(anyhow!("name a failure id, or pass --all-due")),
    }
}

use crate::config::Config;
use crate::output::print;
use anyhow::Result;
use serde_json::json;
use std::time::Duration;
use tollgate_app::bootstrap::{bootstrap as run_bootstrap, missing, Pause};

struct TokioPause;

impl Pause for TokioPause {
    async fn pause(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

pub async fn bootstrap(config: &Config, json: bool) -> Result<i32> {
    let report = run_bootstrap(&config.appwrite()?, &config.settings()?, &TokioPause).await?;
    let value = json!({ "created": report.created, "found": report.found });
    print(json, &value, || {
        let mut lines: Vec<String> = report.created.iter().map(|c| format!("created  {c}")).collect();
        lines.push(format!("{} created, {} already there", report.created.len(), report.found.len()));
        lines.join("\n")
    });
    Ok(0)
}

pub async fn dry_run(config: &Config, json: bool) -> Result<i32> {
    let missing = missing(&config.appwrite()?, &config.settings()?).await?;
    let value = json!({ "wouldCreate": missing });
    print(json, &value, || {
        let mut lines: Vec<String> = missing.iter().map(|m| format!("would create  {m}")).collect();
        lines.push(if missing.is_empty() {
            "nothing to create: the schema is complete".to_owned()
        } else {
            format!("{} to create", missing.len())
        });
        lines.join("\n")
    });
    Ok(0)
}

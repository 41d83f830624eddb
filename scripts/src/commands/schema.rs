use crate::config::Config;
use crate::output::print;
use anyhow::Result;
use serde_json::json;
use std::time::Duration;
use tollgate_app::bootstrap::{bootstrap as run_bootstrap, Pause};

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

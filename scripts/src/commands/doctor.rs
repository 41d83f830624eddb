//! `tollgate doctor`: the webhook worker's settings, then the checks shared with the admin console
//! (`tollgate_app::doctor`). Each check prints pass/fail and, when it fails, the fix. The exit code is
//! non-zero when any check fails.

use crate::config::{Config, SystemClock};
use crate::output::print;
use anyhow::Result;
use serde_json::json;
use tollgate_app::doctor::{oauth_redirect_check, run_checks, stripe_checks, Checks, Inputs};

pub async fn run(config: &Config, json: bool) -> Result<i32> {
    let mut checks = Checks::default();
    let settings = config.settings()?;
    match config.get("SELLAPP_WEBHOOK_SECRET").filter(|s| !s.trim().is_empty()) {
        Some(_) => checks.pass("webhook secret", "SELLAPP_WEBHOOK_SECRET is set"),
        None => checks.fail(
            "webhook secret",
            "SELLAPP_WEBHOOK_SECRET is not set",
            "copy the webhook secret from Sell.app (store settings → Developers) into SELLAPP_WEBHOOK_SECRET",
        ),
    }
    match config.get("SELLAPP_API_KEY").filter(|s| !s.trim().is_empty()) {
        Some(_) => checks.pass("refund reconciliation", "SELLAPP_API_KEY is set: refunded orders lose their access"),
        None => checks.warn(
            "refund reconciliation",
            "SELLAPP_API_KEY is not set: refunds are NOT caught (Sell.app sends no refund event), access stays after a refund",
            "create an API key in Sell.app (store settings → Developers → API) and set SELLAPP_API_KEY on the webhook worker",
        ),
    }
    stripe_checks(|name| config.get(name), &mut checks).await;
    let appwrite = config.appwrite().map_err(|e| e.to_string());
    let discord = config.discord().and_then(|d| Ok((d, config.guild()?))).map_err(|e| e.to_string());
    oauth_redirect_check(|name| config.get(name), &mut checks);
    let inputs = Inputs {
        settings: &settings,
        appwrite: appwrite.as_ref().map_err(Clone::clone),
        discord: discord.as_ref().map(|(d, g)| (d, *g)).map_err(Clone::clone),
        clock: &SystemClock,
    };
    run_checks(&inputs, &mut checks).await;

    let failed = checks.failed();
    let value = json!({ "ok": failed == 0, "checks": checks });
    print(json, &value, || {
        let mut lines: Vec<String> = checks
            .0
            .iter()
            .map(|c| {
                if c.warning {
                    format!("warn  {:<24} {}\n      fix: {}", c.name, c.detail, c.fix.unwrap_or_default())
                } else if c.passed {
                    format!("pass  {:<24} {}", c.name, c.detail)
                } else {
                    format!("FAIL  {:<24} {}\n      fix: {}", c.name, c.detail, c.fix.unwrap_or_default())
                }
            })
            .collect();
        lines.push(if failed == 0 { "all checks passed".to_owned() } else { format!("{failed} check(s) failed") });
        lines.join("\n")
    });
    Ok(if failed == 0 { 0 } else { 1 })
}

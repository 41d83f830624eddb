//! What the workers say about each invocation: one JSON line per request and per cron run (route,
//! outcome, status, subrequests, request id echoed as `X-Request-Id`), and the app's `tracing` events as
//! JSON lines in the same output, never with the buyer's email, the signature or a secret.

use crate::support::*;
use serde_json::Value;
use std::time::Duration;

/// The JSON lines of a worker's log: wrangler prints `console.log` as it is and wraps `console.warn` in a
/// coloured `WARNING` frame, so each line's object is read from its first `{`, up to where it ends.
pub(crate) fn json_lines(log: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let object = &line[line.find('{')?..];
            serde_json::Deserializer::from_str(object).into_iter::<Value>().next()?.ok()
        })
        .filter(|value| value.get("log").is_some())
        .collect()
}

async fn line_for(log: &std::path::Path, request_id: &str) -> Value {
    line_where(log, &format!("request {request_id}"), |l| l["requestId"] == request_id).await
}

/// The first line of `log` that matches, waiting up to 5 s for the worker to write it (wrangler writes
/// the worker's output after the answer has left).
async fn line_where(log: &std::path::Path, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..50 {
        if let Some(line) = json_lines(log).into_iter().find(&matches) {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    panic!("no log line for {what} in {}:\n{text}", log.display());
}

async fn devstack_calls(app: &TestApp, method: reqwest::Method) -> u64 {
    let url = format!("{}/_devstack/calls", app.devstack.appwrite_base_url());
    let counts: Value = app.http.request(method, url).send().await.unwrap().json().await.unwrap_or(Value::Null);
    counts.as_object().map(|c| c.values().filter_map(Value::as_u64).sum()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_delivery_has_one_line_with_its_outcome_and_the_calls_it_made() {
    let app = spawn_app().await;
    app.create_user("obs-user", "obs@example.com").await;
    let body = order_body("order.completed", 7301, "Obs@Example.com");
    app.deliver(&body, 200).await;
    app.projected("obs-user", "active").await;

    // A duplicate makes no role-sync prompt, so devstack's count is the delivery's own once the purchase's
    // role sync (still finishing its job after the projection is visible) has gone quiet.
    let mut quiet = false;
    for _ in 0..40 {
        devstack_calls(&app, reqwest::Method::DELETE).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if devstack_calls(&app, reqwest::Method::GET).await == 0 {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "devstack never went quiet after the purchase");
    let response = app
        .http
        .post(app.url("/sell/webhook"))
        .header("signature", sign(&body))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(request_id.len() == 16 && request_id.bytes().all(|b| b.is_ascii_hexdigit()), "{request_id}");
    let calls = devstack_calls(&app, reqwest::Method::GET).await;
    let line = line_for(app.worker.log_path(), &request_id).await;
    assert_eq!(
        (line["worker"].as_str(), line["kind"].as_str(), line["route"].as_str(), line["status"].as_u64()),
        (Some("webhook"), Some("request"), Some("POST /sell/webhook"), Some(200)),
        "{line}"
    );
    assert_eq!(line["outcome"], "duplicate", "{line}");
    assert_eq!(line["subrequests"].as_u64(), Some(calls), "the line counts what devstack saw: {line}");
    assert_eq!(calls, 2, "a duplicate costs the claim and reading it");

    // A refusal carries its code; an applied purchase its user.
    let refused = app.post_sellapp_webhook(&body, Some(&"0".repeat(64))).await;
    assert_eq!(refused.status, 401);
    line_where(app.worker.log_path(), "the refused delivery", |l| {
        l["status"] == 401 && l["outcome"] == refused.body["error"] && l["subrequests"] == 0
    })
    .await;
    let lines = json_lines(app.worker.log_path());
    assert!(lines.iter().any(|l| l["outcome"] == "applied" && l["userId"] == "obs-user"), "{lines:?}");

    // The app's tracing events arrive as JSON too (the purchase matched its plan by the default rule).
    assert!(
        lines.iter().any(|l| l["log"] == "event" && l["level"] == "warn" && l["target"].as_str().is_some()),
        "no tracing event in the webhook's log: {lines:?}"
    );

    // Nothing private in any line.
    let log = std::fs::read_to_string(app.worker.log_path()).unwrap();
    for private in ["obs@example.com", "Obs@Example.com", SECRET, &sign(&body)] {
        assert!(!log.contains(private), "the log holds {private}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cron_run_has_one_line_with_its_counts_and_subrequests() {
    let app = spawn_app().await;
    let before = json_lines(app.worker.log_path()).iter().filter(|l| l["kind"] == "cron").count();
    app.trigger_scheduled().await;
    app.trigger_role_sync_cron().await;
    let mut webhook_cron = None;
    for _ in 0..50 {
        let lines = json_lines(app.worker.log_path());
        webhook_cron = lines.into_iter().filter(|l| l["kind"] == "cron").nth(before);
        if webhook_cron.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = webhook_cron.expect("the webhook cron's line");
    assert_eq!((line["worker"].as_str(), line["outcome"].as_str()), (Some("webhook"), Some("ok")), "{line}");
    assert!(line["subrequests"].as_u64().is_some_and(|n| n >= 1), "{line}");
    assert!(line["retries"]["settled"].is_u64() && line["pendingClaims"]["checked"].is_u64(), "{line}");
    assert_eq!(line["budget"], 40, "CRON_SUBREQUEST_BUDGET's default is the run's limit: {line}");
    assert!(line["subrequests"].as_u64() <= line["budget"].as_u64() && line.get("refusedSubrequests").is_none());

    let mut role_sync_cron = None;
    for _ in 0..50 {
        role_sync_cron = json_lines(app.role_sync.log_path()).into_iter().find(|l| l["kind"] == "cron");
        if role_sync_cron.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = role_sync_cron.expect("the role-sync cron's line");
    assert_eq!(line["outcome"], "ok", "{line}");
    assert!(line["subrequests"].as_u64().is_some_and(|n| n >= 2), "{line}");
    assert!(line["reconciliation"]["membersSeen"].is_u64(), "{line}");
    assert!(line["subrequests"].as_u64() <= line["budget"].as_u64() && line.get("refusedSubrequests").is_none());
}

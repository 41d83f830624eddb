//! Crons within their subrequest budget, through workerd: a backlog of due failures, and one of stale inbox
//! claims, is handed out by one role-sync cron run (the cron → its `POST /replays` → the webhook's replay or
//! sweep route), and every invocation's line stays within `CRON_SUBREQUEST_BUDGET` with nothing refused.

use crate::observability::json_lines;
use crate::support::{event_document_id, order_body, spawn_app, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cron_run_hands_a_backlog_of_due_failures_out_and_every_invocation_stays_within_its_budget() {
    let app = spawn_app().await;
    // More than one invocation could retry itself (about two on Workers Free's budget).
    let backlog: u64 = 12;
    for i in 0..backlog {
        app.create_user(&format!("fan{i}"), &format!("fan{i}@example.com")).await;
    }
    app.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/databases/crypto/collections/entitlements"]}))
        .await;
    let ids: Vec<String> =
        (0..backlog).map(|i| event_document_id("order.completed", &(900 + i).to_string(), "1")).collect();
    for i in 0..backlog {
        let body = order_body("order.completed", 900 + i, &format!("fan{i}@example.com"));
        app.deliver(&body, 202).await;
    }
    app.clear_faults().await;
    for id in &ids {
        app.let_backoff_pass(id).await;
    }

    app.trigger_role_sync_cron().await;

    for id in &ids {
        let failure = app.document("webhook_failures", id).await.expect("failure record");
        assert_eq!(failure["state"], "settled", "{id} was retried by the one cron run: {failure}");
    }
    let relay_log = role_sync_lines_with_the_cron(&app).await;
    let cron = relay_log.iter().find(|l| l["kind"] == "cron").expect("the role-sync cron's line");
    assert_eq!(cron["handedOutFailures"], json!({"failures": backlog, "failedSlices": 0}), "{cron}");
    assert!(cron["subrequests"].as_u64() <= cron["budget"].as_u64(), "{cron}");
    // The purchases it applied queue role-sync jobs, which the same run may hand out in a relay of their own.
    let relay: Vec<&Value> =
        relay_log.iter().filter(|l| l["route"] == "POST /replays" && l["kind"] == "failures").collect();
    assert_eq!(relay.len(), 1, "twelve ids are one slice");
    assert_eq!(relay[0]["handedOut"], backlog, "{}", relay[0]);
    let lines: Vec<Value> = json_lines(app.worker.log_path());
    let replays = lines.iter().filter(|l| l["route"].as_str().is_some_and(|r| r.ends_with("/replay"))).count();
    assert_eq!(replays as u64, backlog);
    within_free_budget(lines.iter().chain(&relay_log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_sync_cron_hands_due_jobs_through_its_relay_to_its_own_sync_route_and_stays_within_its_budget() {
    let app = spawn_app().await;
    let jobs: u64 = 8;
    for i in 0..jobs {
        let data = json!({"userId": format!("job{i}"), "status": "pending", "nextAttemptAt": "2000-01-01T00:00:00.000+00:00",
            "requestId": format!("r{i}")});
        app.put_document("role_sync_jobs", &format!("job{i}"), data).await;
    }

    app.trigger_role_sync_cron().await;

    for i in 0..jobs {
        let job = app.document("role_sync_jobs", &format!("job{i}")).await.expect("job");
        assert_eq!(job["status"], "done", "job{i} ran in the one cron run: {job}");
    }
    let lines: Vec<Value> =
        json_lines(app.role_sync.log_path()).into_iter().filter(|l| l["log"] == "invocation").collect();
    let cron = lines.iter().find(|l| l["kind"] == "cron").expect("the cron's line");
    assert_eq!(cron["handedOutJobs"], json!({"jobs": jobs, "failedSlices": 0}), "{cron}");
    assert!(cron.get("dueJobs").is_none(), "not run twice: {cron}");
    // One relay (a slice of up to 30) handed each job to `POST /sync`.
    let relay: Vec<&Value> = lines.iter().filter(|l| l["route"] == "POST /replays").collect();
    assert_eq!(relay.len(), 1, "{relay:?}");
    assert_eq!((relay[0]["kind"].as_str(), relay[0]["handedOut"].as_u64()), (Some("jobs"), Some(jobs)));
    assert!(cron["subrequests"].as_u64() <= cron["budget"].as_u64() && cron.get("refusedSubrequests").is_none());
    let syncs = lines.iter().filter(|l| l["route"] == "POST /sync").count();
    assert_eq!(syncs as u64, jobs);
    for line in &lines {
        assert!(line["subrequests"].as_u64().is_some_and(|n| n <= 40), "over Free's default budget: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cron_run_hands_a_backlog_of_stale_claims_out_and_every_invocation_stays_within_its_budget() {
    let app = spawn_app().await;
    // More than the webhook cron sweeps itself (3 a run), and more than one wave of a relay (5).
    let backlog: u64 = 12;
    for i in 0..backlog {
        app.create_user(&format!("stale{i}"), &format!("stale{i}@example.com")).await;
    }
    // Finding the buyer fails, and so does recording the failure: each delivery is answered 202 `accepted`
    // and only its claim, with the body, remains.
    let failing = ["/v1/users", "/v1/databases/crypto/collections/webhook_failures"];
    app.set_faults(json!({"rate": 1.0, "status": 503, "paths": failing})).await;
    for i in 0..backlog {
        let body = order_body("order.completed", 950 + i, &format!("stale{i}@example.com"));
        assert_eq!(app.deliver(&body, 202).await, json!({"ok": true, "accepted": true}));
    }
    app.clear_faults().await;
    let ids: Vec<String> =
        (0..backlog).map(|i| event_document_id("order.completed", &(950 + i).to_string(), "1")).collect();
    for id in &ids {
        assert_eq!(app.document("webhook_events", id).await.expect("claim")["status"], "processing");
        // Stale (workerd's clock cannot be moved: the claim is aged instead).
        app.update_document("webhook_events", id, json!({"claimedAt": "2000-01-01T00:00:00.000+00:00"})).await;
    }

    app.trigger_role_sync_cron().await;

    for id in &ids {
        let claim = app.document("webhook_events", id).await.expect("claim");
        assert_eq!(claim["status"], "completed", "{id} was swept by the one cron run: {claim}");
    }
    assert_eq!(app.documents("entitlements").await.len() as u64, backlog, "each purchase granted once");
    let relay_log = role_sync_lines_with_the_cron(&app).await;
    let cron = relay_log.iter().find(|l| l["kind"] == "cron").expect("the role-sync cron's line");
    assert_eq!(cron["handedOutFailures"], json!({"failures": 0, "failedSlices": 0}), "{cron}");
    assert_eq!(cron["handedOutClaims"], json!({"claims": backlog, "failedSlices": 0}), "{cron}");
    let relay: Vec<&Value> =
        relay_log.iter().filter(|l| l["route"] == "POST /replays" && l["kind"] == "claims").collect();
    assert_eq!(relay.len(), 1, "twelve ids are one slice");
    assert_eq!(relay[0]["handedOut"].as_u64(), Some(backlog), "{}", relay[0]);
    let lines: Vec<Value> = json_lines(app.worker.log_path());
    let sweeps: Vec<&Value> =
        lines.iter().filter(|l| l["route"].as_str().is_some_and(|r| r.ends_with("/sweep"))).collect();
    assert_eq!(sweeps.len() as u64, backlog);
    assert!(sweeps.iter().all(|l| l["outcome"] == "finished"), "{sweeps:?}");
    within_free_budget(lines.iter().chain(&relay_log));
}

/// The role-sync worker's invocation lines, once the cron's is among them (they reach the log a moment
/// after the run).
async fn role_sync_lines_with_the_cron(app: &TestApp) -> Vec<Value> {
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..50 {
        lines = json_lines(app.role_sync.log_path()).into_iter().filter(|l| l["log"] == "invocation").collect();
        if lines.iter().any(|l| l["kind"] == "cron") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lines
}

/// Every invocation line stayed within Workers Free's default budget, and no call was refused.
fn within_free_budget<'a>(lines: impl Iterator<Item = &'a Value>) {
    for line in lines.filter(|l| l["log"] == "invocation") {
        assert!(line["subrequests"].as_u64().is_some_and(|n| n <= 40), "over Free's default budget: {line}");
        assert!(line.get("refusedSubrequests").is_none(), "a call was refused: {line}");
    }
}

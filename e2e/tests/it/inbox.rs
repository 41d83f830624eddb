//! The durable inbox through workerd. A delivery slower than the webhook worker's deadline is answered 202
//! `accepted` by then (its claim holds the body) and goes on beside the request until it is applied; a
//! delivery left `processing` with its body (here: its failure could not be recorded either) is finished by
//! the cron once its claim is stale.

use crate::observability::json_lines;
use crate::support::{event_document_id, order_body, spawn_app};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_slower_than_its_deadline_is_answered_202_and_finishes_in_the_background() {
    let app = spawn_app().await;
    app.create_user("slowbuyer", "slowbuyer@example.com").await;
    // Finding the buyer takes longer than the worker's deadline (8 s), less than the client's timeout (10 s).
    app.set_faults(json!({"rate": 1.0, "paths": ["/v1/users"], "delay_ms": 9000})).await;
    let body = order_body("order.completed", 802, "slowbuyer@example.com");
    let started = Instant::now();
    assert_eq!(app.deliver(&body, 202).await, json!({"ok": true, "accepted": true}));
    assert!(started.elapsed() < Duration::from_secs(9), "answered by the deadline, after {:?}", started.elapsed());
    // The slow call is under way already; nothing else is slow.
    app.clear_faults().await;
    // No cron runs: the processing the answer did not wait for applies the purchase and prompts role-sync.
    app.projected("slowbuyer", "active").await;
    let claim_id = event_document_id("order.completed", "802", "1");
    assert_eq!(app.document("webhook_events", &claim_id).await.expect("claim")["status"], "completed");
    assert_eq!(app.documents("entitlements").await.len(), 1);
    assert!(app.documents("webhook_failures").await.is_empty(), "nothing failed");
    assert_eq!(app.deliver(&body, 200).await, json!({"ok": true, "duplicate": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_left_processing_with_its_body_is_finished_by_the_cron_once_stale() {
    let app = spawn_app().await;
    app.create_user("cutbuyer", "cutbuyer@example.com").await;
    // Finding the buyer fails, and so does recording the failure: only the claim with its body remains.
    let failing = ["/v1/users", "/v1/databases/crypto/collections/webhook_failures"];
    app.set_faults(json!({"rate": 1.0, "status": 503, "paths": failing})).await;
    let body = order_body("order.completed", 801, "cutbuyer@example.com");
    assert_eq!(app.deliver(&body, 202).await, json!({"ok": true, "accepted": true}));
    app.clear_faults().await;
    let claim_id = event_document_id("order.completed", "801", "1");
    let claim = app.document("webhook_events", &claim_id).await.expect("claim");
    assert_eq!(claim["status"], "processing");
    assert_eq!(claim["bodyText"], body.as_str(), "the exact body is stored with the claim");
    assert!(app.documents("entitlements").await.is_empty(), "stopped before any side effect");

    // A cron run now leaves the fresh claim alone: its delivery may still be running.
    app.trigger_scheduled().await;
    assert_eq!(app.document("webhook_events", &claim_id).await.expect("claim")["status"], "processing");

    // Stale (workerd's clock cannot be moved: the claim is aged instead), the cron finishes it from its body.
    app.update_document("webhook_events", &claim_id, json!({"claimedAt": "2000-01-01T00:00:00.000+00:00"})).await;
    app.trigger_scheduled().await;
    assert_eq!(app.document("webhook_events", &claim_id).await.expect("claim")["status"], "completed");
    app.projected("cutbuyer", "active").await;
    assert_eq!(app.documents("entitlements").await.len(), 1);
    assert_eq!(app.deliver(&body, 200).await, json!({"ok": true, "duplicate": true}));

    // The cron's line counts it (the lines reach the log a moment after the runs).
    let swept = json!({"found": 1, "finished": 1, "failed": 0, "unrecoverable": 0});
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..50 {
        lines = json_lines(app.worker.log_path()).into_iter().filter(|l| l["kind"] == "cron").collect();
        if lines.iter().any(|l| l["inbox"] == swept) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lines.iter().any(|l| l["inbox"] == swept), "no cron line counts the sweep: {lines:?}");
}

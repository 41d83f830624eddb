//! The durable inbox through workerd: a delivery cut by the webhook worker's deadline is answered 202
//! `accepted` (its claim holds the body), and the cron finishes it once the claim is stale.

use crate::observability::json_lines;
use crate::support::{event_document_id, order_body, spawn_app};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_by_its_deadline_is_accepted_and_the_cron_finishes_it_once_stale() {
    let app = spawn_app().await;
    app.create_user("cutbuyer", "cutbuyer@example.com").await;
    // Finding the buyer hangs for longer than the worker's deadline (8 s) and the client's timeout (10 s).
    app.set_faults(json!({"rate": 1.0, "paths": ["/v1/users"], "delay_ms": 12000})).await;
    let body = order_body("order.completed", 801, "cutbuyer@example.com");
    let started = Instant::now();
    assert_eq!(app.deliver(&body, 202).await, json!({"ok": true, "accepted": true}));
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(10), "answered by the deadline, after {waited:?}");
    app.clear_faults().await;
    let claim_id = event_document_id("order.completed", "801", "1");
    let claim = app.document("webhook_events", &claim_id).await.expect("claim");
    assert_eq!(claim["status"], "processing");
    assert_eq!(claim["bodyText"], body.as_str(), "the exact body is stored with the claim");
    assert!(app.documents("entitlements").await.is_empty(), "cut before any side effect");

    // A cron run now leaves the fresh claim alone: its delivery may still be running.
    app.trigger_scheduled().await;
    assert_eq!(app.document("webhook_events", &claim_id).await.expect("claim")["status"], "processing");

    // Stale (workerd's clock cannot be moved: the claim is aged instead), the cron finishes it from its body.
    let before = json_lines(app.worker.log_path()).iter().filter(|l| l["kind"] == "cron").count();
    app.update_document("webhook_events", &claim_id, json!({"claimedAt": "2000-01-01T00:00:00.000+00:00"})).await;
    app.trigger_scheduled().await;
    assert_eq!(app.document("webhook_events", &claim_id).await.expect("claim")["status"], "completed");
    app.projected("cutbuyer", "active").await;
    assert_eq!(app.documents("entitlements").await.len(), 1);
    assert_eq!(app.deliver(&body, 200).await, json!({"ok": true, "duplicate": true}));

    // The cron's line counts it.
    let mut line = Value::Null;
    for _ in 0..50 {
        if let Some(found) = json_lines(app.worker.log_path()).into_iter().filter(|l| l["kind"] == "cron").nth(before) {
            line = found;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(line["inbox"], json!({"found": 1, "finished": 1, "failed": 0, "unrecoverable": 0}), "{line}");
}

use crate::support::{event_document_id, order_body, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_appwrite_is_down_entirely_the_worker_answers_503_so_the_provider_retries() {
    let app = spawn_app().await;
    app.create_user("buyer3", "buyer3@example.com").await;
    app.set_faults(json!({"rate": 1.0, "status": 503})).await;
    let body = order_body("order.completed", 701, "buyer3@example.com");
    let answer = app.deliver(&body, 503).await;
    assert_eq!(answer, json!({"ok": false, "error": "temporarily_unavailable"}));
    app.clear_faults().await;
    assert!(app.documents("webhook_failures").await.is_empty());
    // The provider's retry then goes through.
    app.deliver(&body, 200).await;
    app.projected("buyer3", "active").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_is_recorded_and_the_cron_applies_it_later() {
    let app = spawn_app().await;
    app.create_user("buyer4", "buyer4@example.com").await;
    app.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/databases/crypto/collections/entitlements"]}))
        .await;
    let body = order_body("order.completed", 702, "buyer4@example.com");
    assert_eq!(app.deliver(&body, 202).await, json!({"ok": true, "recorded": true}));

    let failure_id = event_document_id("order.completed", "702", "1");
    let failure = app.document("webhook_failures", &failure_id).await.expect("failure record");
    assert_eq!(failure["state"], "due");
    assert_eq!(failure["errorCode"], "appwrite_error");
    assert_eq!(failure["errorStatus"], 503);
    assert_eq!(failure["attempts"], 1);
    assert_eq!(failure["bodyText"], body.as_str(), "the exact raw body is kept");
    assert_eq!(failure["email"], "buyer4@example.com");
    assert!(!failure.to_string().contains(crate::support::SECRET), "no secret in the record");
    let claim = app.document("webhook_events", &failure_id).await.expect("claim");
    assert_eq!(claim["status"], "failed", "not completed while a side effect is missing; the failure record owns it");
    assert!(app.memberships("buyer4").await.is_empty());

    // Still failing: the cron reschedules it with one more attempt.
    app.let_backoff_pass(&failure_id).await;
    app.trigger_scheduled().await;
    let failure = app.document("webhook_failures", &failure_id).await.expect("failure record");
    assert_eq!((failure["state"].as_str(), failure["attempts"].as_i64()), (Some("due"), Some(2)));

    app.clear_faults().await;
    app.let_backoff_pass(&failure_id).await;
    app.trigger_scheduled().await;
    // The retry queued the buyer's projection and the webhook cron prompted role-sync to run it now.
    app.projected("buyer4", "active").await;
    let failure = app.document("webhook_failures", &failure_id).await.expect("failure record");
    assert_eq!(failure["state"], "settled");
    assert!(failure["settledAt"].is_string());
    let claim = app.document("webhook_events", &failure_id).await.expect("claim");
    assert_eq!(claim["status"], "completed");
    // Now it is a duplicate.
    assert_eq!(app.deliver(&body, 200).await, json!({"ok": true, "duplicate": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_after_a_crash_mid_way_is_processed_not_treated_as_a_duplicate() {
    let app = spawn_app().await;
    app.create_user("buyer5", "buyer5@example.com").await;
    app.set_faults(json!({"rate": 1.0, "status": 500, "paths": ["/v1/users"]})).await;
    let body = order_body("order.completed", 703, "buyer5@example.com");
    app.deliver(&body, 202).await;
    app.clear_faults().await;

    // The provider delivers the same event again before the cron ran.
    assert_eq!(app.deliver(&body, 200).await, json!({"ok": true}));
    app.projected("buyer5", "active").await;
    let failure_id = event_document_id("order.completed", "703", "1");
    let failure = app.document("webhook_failures", &failure_id).await.expect("failure record");
    assert_eq!(failure["state"], "settled", "the provider's retry settled the recorded failure");
}

use crate::support::{order_body, sign, sign_with, spawn_app, spawn_app_with_secret, TestApp};
use serde_json::json;

async fn assert_nothing_written(app: &TestApp) {
    assert!(app.documents("webhook_events").await.is_empty(), "no claim written");
    assert!(app.documents("webhook_failures").await.is_empty(), "no failure written");
    assert!(app.documents("subscriptions").await.is_empty(), "no subscription written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_oversized_and_misrouted_requests_are_refused_without_writes() {
    let app = spawn_app().await;
    app.create_user("buyer6", "buyer6@example.com").await;
    let body = order_body("order.completed", 801, "buyer6@example.com");

    let missing = app.post_sellapp_webhook(&body, None).await;
    assert_eq!((missing.status.as_u16(), missing.body.clone()), (401, json!({"ok": false, "error": "missing_header"})));

    let wrong = app.post_sellapp_webhook(&body, Some(&"0".repeat(64))).await;
    assert_eq!((wrong.status.as_u16(), wrong.body.clone()), (401, json!({"ok": false, "error": "signature_mismatch"})));

    let tampered = body.replace("801", "802");
    let replayed = app.post_sellapp_webhook(&tampered, Some(&sign(&body))).await;
    assert_eq!(replayed.status.as_u16(), 401);

    let huge = format!("{{\"event\":\"order.completed\",\"pad\":\"{}\"}}", "x".repeat((1 << 20) + 1));
    let too_large = app.post_sellapp_webhook(&huge, Some(&sign(&huge))).await;
    assert_eq!(
        (too_large.status.as_u16(), too_large.body.clone()),
        (413, json!({"ok": false, "error": "payload_too_large"}))
    );

    let get = app.http.get(app.url("/sell/webhook")).send().await.expect("GET /sell/webhook");
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(get.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    let unknown = app.http.post(app.url("/nope")).send().await.expect("POST /nope");
    assert_eq!(unknown.status().as_u16(), 404);

    assert_nothing_written(&app).await;
    assert!(app.memberships("buyer6").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whsec_secret_that_is_not_base64_answers_503_not_configured_so_the_provider_keeps_retrying() {
    const BAD_SECRET: &str = "whsec_not-base64";
    let app = spawn_app_with_secret(BAD_SECRET).await;
    app.create_user("buyer7", "buyer7@example.com").await;
    let body = order_body("order.completed", 803, "buyer7@example.com");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let response = app
        .http
        .post(app.url("/sell/webhook"))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_803")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", "v1,c2lnbmF0dXJl")
        .body(body.clone())
        .send()
        .await
        .expect("POST /sell/webhook");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("60"));
    let answer: serde_json::Value = response.json().await.expect("json");
    assert_eq!(answer, json!({"ok": false, "error": "not_configured"}));
    assert_nothing_written(&app).await;

    // Deliveries signed the legacy way use the secret as it is, so they are unaffected.
    let legacy = app.post_sellapp_webhook(&body, Some(&sign_with(BAD_SECRET, &body))).await;
    assert_eq!((legacy.status.as_u16(), legacy.body), (200, json!({"ok": true})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentic_but_unusable_payloads_are_recorded_for_an_admin() {
    let app = spawn_app().await;
    let not_json = "this is not json";
    assert_eq!(app.deliver(not_json, 202).await, json!({"ok": true, "recorded": true}));
    let no_email = json!({"event": "order.completed", "data": {"id": 901}, "store": 1}).to_string();
    app.deliver(&no_email, 202).await;

    let failures = app.documents("webhook_failures").await;
    let codes: Vec<&str> = failures.iter().filter_map(|f| f["errorCode"].as_str()).collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(codes.contains(&"invalid_json") && codes.contains(&"no_email_in_payload"), "{codes:?}");
    for failure in &failures {
        assert_eq!(failure["state"], "dead", "retrying the same body cannot help; an admin replays after a fix");
    }
    assert!(failures.iter().any(|f| f["bodyText"] == not_json));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_on_the_worker() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/health")).send().await.expect("GET /health");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.expect("json"), json!({"ok": true}));
}

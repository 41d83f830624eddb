use crate::support::{event_document_id, order_body, sign, spawn_app};
use futures::future::join_all;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_grants_access_a_redelivery_changes_nothing_and_a_dispute_revokes() {
    let app = spawn_app().await;
    app.create_user("buyer1", "buyer1@example.com").await;

    // Mixed case and spaces in the payload's email still find the account.
    let completed = order_body("order.completed", 501, "  Buyer1@Example.COM ");
    assert_eq!(app.deliver(&completed, 200).await, json!({"ok": true}));

    let subscription = app.projected("buyer1", "active").await;
    assert_eq!(subscription["userId"], "buyer1");
    assert_eq!(subscription["sellappOrderId"], "501");
    assert_eq!(app.memberships("buyer1").await, vec!["paid".to_owned()]);

    let event_id = event_document_id("order.completed", "501", "1");
    let event =
        app.document("webhook_events", &event_id).await.expect("webhook_events document, id per compatibility.md");
    assert_eq!(event["eventId"], "order.completed:501:1");
    assert_eq!(event["provider"], "sellapp");
    assert_eq!(event["status"], "completed");
    assert!(event["processedAt"].is_string());

    // The same delivery again: a duplicate, and nothing changes.
    assert_eq!(app.deliver(&completed, 200).await, json!({"ok": true, "duplicate": true}));
    let again = app.document("subscriptions", "buyer1").await.expect("subscription");
    assert_eq!(again["$updatedAt"], subscription["$updatedAt"]);
    assert_eq!(app.paid_team_size().await, 1);

    // A dispute revokes: inactive, and the membership is gone.
    app.deliver(&order_body("order.disputed", 501, "buyer1@example.com"), 200).await;
    app.projected("buyer1", "inactive").await;
    assert!(app.documents("webhook_failures").await.is_empty(), "nothing failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_identical_deliveries_at_once_all_succeed_and_apply_once() {
    let app = spawn_app().await;
    app.create_user("buyer2", "buyer2@example.com").await;
    let body = order_body("order.completed", 502, "buyer2@example.com");
    let signature = sign(&body);
    let answers = join_all((0..10).map(|_| app.post_sellapp_webhook(&body, Some(&signature)))).await;
    for answer in &answers {
        assert!(answer.status.is_success(), "every answer is 2xx, got {} {}", answer.status, answer.body);
    }
    app.projected("buyer2", "active").await;
    assert_eq!(app.documents("subscriptions").await.len(), 1);
    assert_eq!(app.documents("entitlements").await.len(), 1, "one entitlement for the order");
    assert_eq!(app.paid_team_size().await, 1);
    assert_eq!(app.memberships("buyer2").await, vec!["paid".to_owned()]);
    assert!(app.documents("webhook_failures").await.is_empty(), "no delivery needed a failure record");
    let event = app.document("webhook_events", &event_document_id("order.completed", "502", "1")).await.expect("claim");
    assert_eq!(event["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tollgate_does_not_act_on_are_acknowledged_without_writes() {
    let app = spawn_app().await;
    let body = json!({"event": "product.updated", "data": {"id": 9}, "store": 1}).to_string();
    assert_eq!(app.deliver(&body, 200).await, json!({"ok": true, "ignored": true}));
    assert!(app.documents("webhook_events").await.is_empty());
    assert!(app.documents("webhook_failures").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_without_an_order_id_are_each_applied_and_only_a_redelivery_is_a_duplicate() {
    let app = spawn_app().await;
    app.create_user("noid1", "noid1@example.com").await;
    app.create_user("noid2", "noid2@example.com").await;
    let purchase = |email: &str| {
        json!({"event": "order.completed", "data": {"customer": {"email": email}}, "store": 1}).to_string()
    };

    assert_eq!(app.deliver(&purchase("noid1@example.com"), 200).await, json!({"ok": true}));
    assert_eq!(app.deliver(&purchase("noid2@example.com"), 200).await, json!({"ok": true}), "not a duplicate");
    for user in ["noid1", "noid2"] {
        app.projected(user, "active").await;
    }
    assert_eq!(app.paid_team_size().await, 2);
    assert_eq!(app.deliver(&purchase("noid1@example.com"), 200).await, json!({"ok": true, "duplicate": true}));
    let claims = app.documents("webhook_events").await;
    assert_eq!(claims.len(), 2, "{claims:?}");
    assert!(claims.iter().all(|c| c["eventId"].as_str().is_some_and(|k| k.contains(":no-order-"))), "{claims:?}");
}

use crate::support::{order_body, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_before_the_account_exists_is_kept_and_granted_once_it_does() {
    let app = spawn_app().await;
    let body = order_body("order.completed", 601, "Newcomer@Example.com");
    assert_eq!(app.deliver(&body, 200).await, json!({"ok": true, "pending": true}));

    let pending = app.documents("pending_entitlements").await;
    assert_eq!(pending.len(), 1, "one pending entitlement: {pending:?}");
    assert_eq!(pending[0]["email"], "newcomer@example.com");
    assert_eq!(pending[0]["status"], "active");
    assert!(pending[0]["claimedAt"].is_null());
    assert!(app.documents("subscriptions").await.is_empty());

    // The cron before the account exists changes nothing.
    app.trigger_scheduled().await;
    assert!(app.documents("subscriptions").await.is_empty());

    app.create_user("newcomer", "newcomer@example.com").await;
    app.trigger_scheduled().await;

    let subscription = app.document("subscriptions", "newcomer").await.expect("subscription after the claim");
    assert_eq!(subscription["status"], "active");
    assert_eq!(app.memberships("newcomer").await, vec!["paid".to_owned()]);
    let claimed = app.documents("pending_entitlements").await;
    assert_eq!(claimed[0]["claimedByUserId"], "newcomer");
    assert_eq!(claimed[0]["claimOutcome"], "applied");

    // A second cron run does not apply it again.
    app.trigger_scheduled().await;
    assert_eq!(app.paid_team_size().await, 1);
}

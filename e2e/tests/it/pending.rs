use crate::support::{order_body, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_waits_for_an_account_that_verifies_the_email_and_is_granted_once_it_does() {
    let app = spawn_app().await;
    let body = order_body("order.completed", 601, "Newcomer@Example.com");
    assert_eq!(app.deliver(&body, 200).await, json!({"ok": true, "pending": true}));

    let pending = app.documents("entitlements").await;
    assert_eq!(pending.len(), 1, "one pending entitlement: {pending:?}");
    assert_eq!(pending[0]["email"], "newcomer@example.com");
    assert_eq!(pending[0]["source"], "sellapp:1:601");
    assert!(pending[0]["userId"].is_null());
    assert!(app.documents("subscriptions").await.is_empty());

    // Someone signs up with the buyer's address but never proves it: they get nothing, whatever they do.
    app.create_unverified_user("newcomer", "newcomer@example.com").await;
    app.trigger_scheduled().await;
    assert!(app.documents("entitlements").await[0]["userId"].is_null());
    assert!(app.documents("subscriptions").await.is_empty());
    assert!(app.memberships("newcomer").await.is_empty());

    app.verify_email("newcomer").await;
    app.trigger_scheduled().await;
    let claimed = app.documents("entitlements").await;
    assert_eq!(claimed[0]["userId"], "newcomer");
    assert!(claimed[0]["claimedAt"].is_string());
    app.projected("newcomer", "active").await;

    // A second cron run does not apply it again.
    app.trigger_scheduled().await;
    assert_eq!(app.paid_team_size().await, 1);
}

use crate::support::{context, order};
use chrono::Duration;
use tollgate_app::IngestOutcome;
use tollgate_core::{AppwriteId, Email};

#[tokio::test]
async fn a_pending_purchase_is_claimed_when_the_user_is_seen() {
    let ctx = context().await;
    assert_eq!(
        ctx.app().ingest_sellapp(&order("order.completed", 31, "later@example.com")).await,
        Ok(IngestOutcome::Pending)
    );
    ctx.create_user("p1", "later@example.com").await;
    let email = Email::parse("later@example.com").expect("email");
    let id = AppwriteId::parse("p1").expect("id");
    assert!(ctx.app().claim_pending_for_user(&id, &email).await.expect("claim"));
    assert!(ctx.is_paid("p1").await);
    assert!(!ctx.app().claim_pending_for_user(&id, &email).await.expect("claim"), "claimed only once");
}

#[tokio::test]
async fn the_latest_event_for_an_email_wins_before_the_account_exists() {
    let ctx = context().await;
    ctx.app().ingest_sellapp(&order("order.completed", 32, "flip@example.com")).await.expect("pending");
    ctx.app().ingest_sellapp(&order("order.disputed", 32, "flip@example.com")).await.expect("pending");
    ctx.create_user("p2", "flip@example.com").await;
    let report = ctx.app().claim_pending_entitlements(2).await.expect("claims");
    assert_eq!(report.applied, 1);
    assert_eq!(ctx.document("subscriptions", "p2").await.expect("subscription")["status"], "inactive");
    assert!(!ctx.is_paid("p2").await);
}

#[tokio::test]
async fn a_pending_entitlement_older_than_the_subscription_is_superseded_not_applied() {
    let ctx = context().await;
    ctx.app().ingest_sellapp(&order("order.completed", 33, "race@example.com")).await.expect("pending");
    ctx.create_user("p3", "race@example.com").await;
    ctx.clock.advance(Duration::minutes(5));
    // A newer event found the account first and revoked.
    assert_eq!(
        ctx.app().ingest_sellapp(&order("order.disputed", 33, "race@example.com")).await,
        Ok(crate::support::applied("p3"))
    );
    let report = ctx.app().claim_pending_entitlements(2).await.expect("claims");
    assert_eq!((report.applied, report.superseded), (0, 1));
    assert!(!ctx.is_paid("p3").await);
}

use crate::support::{applied, context, order};
use tollgate_app::IngestOutcome;

#[tokio::test]
async fn a_pending_purchase_is_claimed_when_the_verified_user_is_seen() {
    let ctx = context().await;
    assert_eq!(
        ctx.app().ingest_sellapp(&order("order.completed", 31, "later@example.com")).await,
        Ok(IngestOutcome::Pending)
    );
    ctx.create_user("p1", "later@example.com").await;
    assert_eq!(ctx.app().claim_pending_for_user(&ctx.user("p1").await).await.expect("claim"), 1);
    let job = ctx.document("role_sync_jobs", "p1").await.expect("claiming queues the user's role sync");
    assert_eq!(job["status"], "pending");
    ctx.project("p1").await;
    assert!(ctx.is_paid("p1").await, "the role sync projects the claimed access");
    assert_eq!(ctx.app().claim_pending_for_user(&ctx.user("p1").await).await.expect("claim"), 0, "claimed once");
}

#[tokio::test]
async fn a_purchase_disputed_before_the_account_exists_gives_nothing_when_claimed() {
    let ctx = context().await;
    ctx.app().ingest_sellapp(&order("order.completed", 32, "flip@example.com")).await.expect("pending");
    ctx.app().ingest_sellapp(&order("order.disputed", 32, "flip@example.com")).await.expect("pending");
    ctx.create_user("p2", "flip@example.com").await;
    let report = ctx.app().claim_pending_entitlements(2).await.expect("claims");
    assert_eq!((report.claimed, report.users.len()), (1, 1), "the claim queues the account's role sync");
    ctx.project("p2").await;
    assert_eq!(ctx.document("subscriptions", "p2").await.expect("subscription")["status"], "inactive");
    assert!(!ctx.is_paid("p2").await);
}

#[tokio::test]
async fn a_dispute_after_the_account_claimed_the_purchase_revokes_it() {
    let ctx = context().await;
    ctx.app().ingest_sellapp(&order("order.completed", 33, "race@example.com")).await.expect("pending");
    ctx.create_user("p3", "race@example.com").await;
    assert_eq!(ctx.app().claim_pending_entitlements(2).await.expect("claims").claimed, 1);
    ctx.project("p3").await;
    assert!(ctx.is_paid("p3").await);
    assert_eq!(ctx.app().ingest_sellapp(&order("order.disputed", 33, "race@example.com")).await, Ok(applied("p3")));
    ctx.project("p3").await;
    assert!(!ctx.is_paid("p3").await);
}

#[tokio::test]
async fn a_cursor_whose_document_was_deleted_does_not_stop_the_claims() {
    let ctx = context().await;
    ctx.app().ingest_sellapp(&order("order.completed", 34, "cursor@example.com")).await.expect("pending");
    let cursor = serde_json::json!({"cursor": "deletedbyhand0000000000000000000000"});
    ctx.client.upsert_document("crypto", "sync_state", "pending-claims", &cursor).await.expect("cursor");
    ctx.create_user("p4", "cursor@example.com").await;
    let report = ctx.app().claim_pending_entitlements(2).await.expect("claims despite the stale cursor");
    assert_eq!(report.claimed, 1);
    ctx.project("p4").await;
    assert!(ctx.is_paid("p4").await);
}

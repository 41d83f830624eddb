use crate::support::{context, order};
use tollgate_app::IngestOutcome;

#[tokio::test]
async fn a_purchase_is_applied_once_and_its_redelivery_is_a_duplicate() {
    let ctx = context().await;
    ctx.create_user("u1", "one@example.com").await;
    let event = order("order.completed", 11, "ONE@example.com ");
    assert_eq!(ctx.app().ingest_sellapp(&event).await, Ok(crate::support::applied("u1")));
    assert!(!ctx.is_paid("u1").await, "the request records the purchase; role-sync projects it");
    ctx.project("u1").await;
    assert!(ctx.is_paid("u1").await);
    let subscription = ctx.document("subscriptions", "u1").await.expect("subscription");
    assert_eq!(subscription["plan"], "member", "no product title: the default plan");
    assert_eq!(ctx.app().ingest_sellapp(&event).await, Ok(IngestOutcome::Duplicate));
}

#[tokio::test]
async fn the_product_title_names_the_plan() {
    let ctx = context().await;
    ctx.create_user("u2", "two@example.com").await;
    let body = serde_json::json!({
        "event": "order.completed",
        "data": {"id": 12, "customer_information": {"email": "two@example.com"}, "product_variants": [{"product_title": "VIP Signals"}]},
        "store": 7
    });
    let event = crate::support::signed_event(&body.to_string());
    assert_eq!(ctx.app().ingest_sellapp(&event).await, Ok(crate::support::applied("u2")));
    ctx.project("u2").await;
    assert_eq!(ctx.document("subscriptions", "u2").await.expect("subscription")["plan"], "VIP Signals");
}

#[tokio::test]
async fn a_user_beyond_the_first_page_of_users_is_still_found() {
    let ctx = context().await;
    for i in 0..40 {
        ctx.create_user(&format!("filler{i}"), &format!("filler{i}@example.com")).await;
    }
    ctx.create_user("late", "late@example.com").await;
    assert_eq!(
        ctx.app().ingest_sellapp(&order("order.completed", 13, "late@example.com")).await,
        Ok(crate::support::applied("late"))
    );
    ctx.project("late").await;
    assert!(ctx.is_paid("late").await);
}

#[tokio::test]
async fn a_dispute_for_a_user_without_a_subscription_still_records_inactive() {
    let ctx = context().await;
    ctx.create_user("u3", "three@example.com").await;
    assert_eq!(
        ctx.app().ingest_sellapp(&order("order.disputed", 14, "three@example.com")).await,
        Ok(crate::support::applied("u3"))
    );
    ctx.project("u3").await;
    assert_eq!(ctx.document("subscriptions", "u3").await.expect("subscription")["status"], "inactive");
    assert!(!ctx.is_paid("u3").await);
}

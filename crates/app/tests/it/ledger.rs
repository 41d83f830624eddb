//! The entitlement ledger against devstack: one test per way access used to leak (issue 9's symptoms),
//! named after what it proves, plus the request budgets.

use crate::support::{applied, context, order, signed_event, TestContext};
use chrono::Duration;
use serde_json::{json, Value};
use tollgate_app::admin_grants::GrantOutcome;
use tollgate_app::failures::RetryOutcome;
use tollgate_app::IngestOutcome;
use tollgate_core::retry_schedule::RETRY_SCHEDULE_SECS;
use tollgate_core::{AppwriteId, Clock, Email, IdempotencyKey};

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("email")
}

fn id(raw: &str) -> AppwriteId {
    AppwriteId::parse(raw).expect("id")
}

pub(crate) async fn entitlements(ctx: &TestContext) -> Vec<Value> {
    let docs = ctx
        .client
        .list_all_documents(&ctx.settings.database_id, &ctx.settings.collections.entitlements, &[], 100)
        .await
        .expect("entitlements");
    docs.into_iter().map(|d| Value::Object(d.data)).collect()
}

pub(crate) async fn total_calls(ctx: &TestContext) -> u64 {
    ctx.calls().await.as_object().expect("counts").values().filter_map(Value::as_u64).sum()
}

pub(crate) async fn clear_calls(ctx: &TestContext) {
    let url = format!("{}/_devstack/calls", ctx.devstack.appwrite_base_url());
    assert!(reqwest::Client::new().delete(url).send().await.expect("clear").status().is_success());
}

// 1
#[tokio::test]
async fn an_entitlement_with_an_end_loses_the_paid_membership_once_it_ends() {
    let ctx = context().await;
    ctx.create_user("e1", "e1@example.com").await;
    let end = ctx.clock.now() + Duration::hours(1);
    ctx.app().admin_grant(&email("e1@example.com"), "member", Some(end)).await.expect("grant");
    assert!(ctx.is_paid("e1").await);
    ctx.clock.advance(Duration::hours(1) + ctx.settings.access_grace + Duration::seconds(1));
    let plans = ctx.app().plans_by_user().await.expect("plans");
    let drift = ctx.app().reconcile_access(&plans, 25).await.expect("drift");
    assert_eq!(drift.queued, vec!["e1".to_owned()]);
    ctx.project("e1").await;
    assert!(!ctx.is_paid("e1").await);
    assert_eq!(ctx.document("subscriptions", "e1").await.expect("subscription")["status"], "inactive");
}

// 2
#[tokio::test]
async fn a_purchase_is_not_given_to_an_account_that_has_not_verified_the_email() {
    let ctx = context().await;
    ctx.create_unverified_user("squatter", "buyer@example.com").await;
    let outcome = ctx.app().ingest_sellapp(&order("order.completed", 41, "buyer@example.com")).await;
    assert_eq!(outcome, Ok(IngestOutcome::Pending));
    assert_eq!(ctx.app().claim_pending_for_user(&ctx.user("squatter").await).await.expect("claim"), 0);
    let report = ctx.app().claim_pending_entitlements(2).await.expect("cron");
    assert_eq!((report.claimed, report.awaiting_verification), (0, 1));
    assert!(!ctx.is_paid("squatter").await);

    ctx.verify_email("squatter").await;
    assert_eq!(ctx.app().claim_pending_for_user(&ctx.user("squatter").await).await.expect("claim"), 1);
    let job = ctx.document("role_sync_jobs", "squatter").await.expect("the claim queues the user's role sync");
    assert_eq!(job["status"], "pending");
    ctx.project("squatter").await;
    assert!(ctx.is_paid("squatter").await, "once the email is proven, the purchase is theirs");
}

#[tokio::test]
async fn the_replaced_deployments_behaviour_can_be_chosen_on_purpose() {
    let mut ctx = context().await;
    ctx.settings.allow_unverified_email_claims = true;
    ctx.create_unverified_user("trusting", "trust@example.com").await;
    let outcome = ctx.app().ingest_sellapp(&order("order.completed", 42, "trust@example.com")).await;
    assert_eq!(outcome, Ok(applied("trusting")));
}

// 3
#[tokio::test]
async fn two_hundred_and_ten_never_claimed_purchases_do_not_stop_a_new_one_from_being_claimed() {
    let ctx = context().await;
    for i in 0..210 {
        let outcome =
            ctx.app().ingest_sellapp(&order("order.completed", 1_000 + i, &format!("ghost{i}@example.com"))).await;
        assert_eq!(outcome, Ok(IngestOutcome::Pending));
    }
    ctx.app().ingest_sellapp(&order("order.completed", 2_000, "real@example.com")).await.expect("pending");
    ctx.create_user("real", "real@example.com").await;
    let mut runs = 0;
    let real = tollgate_core::AppwriteId::parse("real").unwrap();
    loop {
        runs += 1;
        assert!(runs <= 2, "claimed within two cron runs of two pages");
        let report = ctx.app().claim_pending_entitlements(2).await.expect("cron");
        if report.users.contains(&real) {
            break;
        }
    }
    ctx.project("real").await;
    assert!(ctx.is_paid("real").await);
}

// 4a
#[tokio::test]
async fn a_retried_purchase_after_a_pending_dispute_stays_revoked() {
    let ctx = context().await;
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    let failed = ctx.app().ingest_sellapp(&order("order.completed", 43, "p4a@example.com")).await;
    assert!(matches!(failed, Ok(IngestOutcome::FailureRecorded { .. })));
    ctx.set_faults(json!({"rate": 0})).await;
    let disputed = ctx.app().ingest_sellapp(&order("order.disputed", 43, "p4a@example.com")).await;
    assert_eq!(disputed, Ok(IngestOutcome::Pending));
    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[0]));
    assert_eq!(ctx.app().retry_due_failures(5).await.expect("retry").settled, 1);
    ctx.create_user("p4a", "p4a@example.com").await;
    ctx.app().claim_pending_for_user(&ctx.user("p4a").await).await.expect("claim");
    assert!(!ctx.is_paid("p4a").await, "the dispute stands");
}

// 4b
#[tokio::test]
async fn an_admin_revoke_survives_the_retry_of_a_failed_grant() {
    let ctx = context().await;
    ctx.create_user("p4b", "p4b@example.com").await;
    // The grant is recorded on the ledger, then completing the claim fails: a failure to retry.
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/databases/crypto/collections/role_sync_jobs"]}))
        .await;
    let failed = ctx.app().ingest_sellapp(&order("order.completed", 44, "p4b@example.com")).await;
    assert!(matches!(failed, Ok(IngestOutcome::FailureRecorded { .. })), "{failed:?}");
    ctx.set_faults(json!({"rate": 0})).await;
    let report = ctx.app().admin_revoke(&email("p4b@example.com"), None).await.expect("revoke");
    assert_eq!(report.revoked, vec!["sellapp:7:44".to_owned()]);
    ctx.clock.advance(Duration::seconds(RETRY_SCHEDULE_SECS[0]));
    assert_eq!(ctx.app().retry_due_failures(5).await.expect("retry").settled, 1);
    ctx.project("p4b").await;
    assert!(!ctx.is_paid("p4b").await, "the admin's revocation stands");
    let again = ctx.app().admin_revoke(&email("p4b@example.com"), None).await.expect("revoke again");
    assert_eq!((again.revoked.len(), again.already_revoked.len()), (0, 1), "revoking is idempotent");
}

// 4c
#[tokio::test]
async fn a_redelivered_purchase_whose_claim_stayed_processing_after_the_dispute_stays_revoked() {
    let ctx = context().await;
    ctx.create_user("p4c", "p4c@example.com").await;
    let grant = order("order.completed", 45, "p4c@example.com");
    ctx.app().ingest_sellapp(&grant).await.expect("granted");
    // As if the request had been cut before completing: the claim stays `processing`.
    let key = IdempotencyKey::sellapp(Some("order.completed"), Some("45"), Some("7"), b"");
    let claim = key.document_id();
    ctx.client
        .update_document("crypto", "webhook_events", claim.as_str(), &json!({"status": "processing"}))
        .await
        .expect("reopen the claim");
    ctx.app().ingest_sellapp(&order("order.disputed", 45, "p4c@example.com")).await.expect("disputed");
    assert_eq!(ctx.app().ingest_sellapp(&grant).await, Ok(applied("p4c")), "processed again, not a duplicate");
    ctx.project("p4c").await;
    assert!(!ctx.is_paid("p4c").await);
}

// 5
#[tokio::test]
async fn a_purchase_and_its_dispute_applied_at_once_end_revoked_and_unpaid() {
    let ctx = context().await;
    for round in 0..5u64 {
        let user = format!("p5u{round}");
        let address = format!("{user}@example.com");
        ctx.create_user(&user, &address).await;
        let (grant, dispute) =
            (order("order.completed", 50 + round, &address), order("order.disputed", 50 + round, &address));
        let app = ctx.app();
        let (a, b) = tokio::join!(app.ingest_sellapp(&grant), app.ingest_sellapp(&dispute));
        assert!(a.is_ok() && b.is_ok());
        let user_id = id(&user);
        let (p1, p2) = tokio::join!(app.project_user(&user_id), app.project_user(&user_id));
        p1.expect("projection");
        p2.expect("projection");
        assert!(!ctx.is_paid(&user).await, "round {round}");
        assert_eq!(ctx.document("subscriptions", &user).await.expect("subscription")["status"], "inactive");
    }
}

// 6
#[tokio::test]
async fn a_dispute_of_an_old_order_leaves_the_access_a_newer_order_gives() {
    let ctx = context().await;
    ctx.create_user("p6", "p6@example.com").await;
    ctx.app().ingest_sellapp(&order("order.completed", 61, "p6@example.com")).await.expect("old order");
    ctx.app().ingest_sellapp(&order("order.completed", 62, "p6@example.com")).await.expect("new order");
    ctx.app().ingest_sellapp(&order("order.disputed", 61, "p6@example.com")).await.expect("dispute of the old");
    let projected = ctx.project("p6").await;
    assert_eq!(projected.access.plans["member"].sources, vec!["sellapp:7:62".to_owned()]);
    assert!(ctx.is_paid("p6").await);
}

// 7
#[tokio::test]
async fn replaying_a_failure_the_replaced_deployment_recorded_applies_it() {
    let ctx = context().await;
    ctx.create_user("p7", "p7@example.com").await;
    let body =
        json!({"event": "order.completed", "data": {"id": 70, "customer": {"email": "p7@example.com"}}, "store": 7})
            .to_string();
    let key = IdempotencyKey::sellapp(Some("order.completed"), Some("70"), Some("7"), body.as_bytes());
    let claim = key.document_id();
    // The replaced deployment: its dedupe record (no status) written before the side effects, and a
    // failure record (no state) when they failed.
    let legacy_claim = json!({"provider": "sellapp", "eventId": "order.completed:70:7", "orderId": "70"});
    ctx.client.create_document("crypto", "webhook_events", claim.as_str(), &legacy_claim, None).await.expect("claim");
    let legacy_failure =
        json!({"provider": "sellapp", "event": "order.completed", "bodyText": body, "errorCode": "appwrite_error"});
    ctx.client.create_document("crypto", "webhook_failures", "legacyfail1", &legacy_failure, None).await.expect("f");
    // A delivery of it still counts as done (the replaced deployment applied most of what it recorded)…
    assert_eq!(ctx.app().ingest_sellapp(&signed_event(&body)).await, Ok(IngestOutcome::Duplicate));
    // …but the admin's replay of its recorded failure applies it.
    assert_eq!(ctx.app().replay_failure(&id("legacyfail1")).await, Ok(RetryOutcome::Settled));
    ctx.project("p7").await;
    assert!(ctx.is_paid("p7").await);
}

// 8
#[tokio::test]
async fn purchases_without_an_order_id_are_distinct_purchases() {
    let ctx = context().await;
    ctx.create_user("p8", "p8@example.com").await;
    for product in ["Gold", "Silver"] {
        let body = json!({"event": "order.completed", "data": {"customer": {"email": "p8@example.com"},
            "product_variants": [{"product_title": product}]}, "store": 7});
        assert_eq!(ctx.app().ingest_sellapp(&signed_event(&body.to_string())).await, Ok(applied("p8")));
    }
    let projected = ctx.project("p8").await;
    assert_eq!(
        projected.access.plans.keys().cloned().collect::<Vec<_>>(),
        vec!["Gold".to_owned(), "Silver".to_owned()]
    );
}

// 9
#[tokio::test]
async fn an_authentic_payload_with_over_long_fields_is_always_recorded() {
    let ctx = context().await;
    ctx.create_user("p9", "p9@example.com").await;
    let title = "T".repeat(300);
    let order_id = "9".repeat(100);
    let body = json!({"event": "order.completed", "data": {"id": order_id, "customer": {"email": "p9@example.com"},
        "product_variants": [{"product_title": title}]}, "store": 7});
    assert_eq!(ctx.app().ingest_sellapp(&signed_event(&body.to_string())).await, Ok(applied("p9")));
    let plan = ctx.project("p9").await.access.primary_plan().map(str::to_owned).expect("a plan");
    assert!(plan.chars().count() <= 128 && plan.starts_with("TTT"), "{plan}");

    // An email too long for any attribute: the failure record is still written, with the body whole.
    let long_email = format!("{}@example.com", "x".repeat(300));
    let body = json!({"event": "order.completed", "data": {"id": 91, "customer": {"email": long_email}}, "store": 7});
    let outcome = ctx.app().ingest_sellapp(&signed_event(&body.to_string())).await;
    assert!(matches!(outcome, Ok(IngestOutcome::FailureRecorded { retryable: false, .. })), "{outcome:?}");
    let failures = ctx.client.list_documents("crypto", "webhook_failures", &[]).await.expect("failures");
    let record = &failures.documents[0].data;
    assert_eq!(record["bodyText"], body.to_string());
    assert!(record["email"].as_str().expect("email").chars().count() <= 254);
}

// 10
#[tokio::test]
async fn failures_keep_the_normalised_email_so_the_lookup_finds_them() {
    let ctx = context().await;
    ctx.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    ctx.app().ingest_sellapp(&order("order.completed", 100, "  Mixed.Case@Example.COM ")).await.expect("recorded");
    ctx.set_faults(json!({"rate": 0})).await;
    let failures = ctx.client.list_documents("crypto", "webhook_failures", &[]).await.expect("failures");
    let record = &failures.documents[0].data;
    assert_eq!(record["email"], "mixed.case@example.com");
    assert_eq!(record["emailRaw"], "  Mixed.Case@Example.COM ");
}

// 11
#[tokio::test]
async fn an_entitlement_that_does_not_decode_stops_the_projection_instead_of_changing_access() {
    let ctx = context().await;
    ctx.create_user("p11", "p11@example.com").await;
    ctx.app().ingest_sellapp(&order("order.completed", 110, "p11@example.com")).await.expect("granted");
    ctx.project("p11").await;
    assert!(ctx.is_paid("p11").await);
    // Someone edits the ledger by hand and leaves a revocation without a reason.
    let doc = tollgate_app::ledger::entitlement_document_id("sellapp:7:110");
    ctx.client
        .update_document("crypto", "entitlements", doc.as_str(), &json!({"revokedAt": "2026-03-01T12:00:00.000Z"}))
        .await
        .expect("corrupt");
    let err = ctx.app().project_user(&id("p11")).await.expect_err("unreadable");
    assert_eq!(err.code, "unreadable_entitlement");
    assert!(ctx.is_paid("p11").await, "nothing was changed on a guess");
}

#[tokio::test]
async fn an_admin_grant_stacks_with_a_purchase_and_never_shortens_it() {
    let ctx = context().await;
    ctx.create_user("g1", "g1@example.com").await;
    ctx.app().ingest_sellapp(&order("order.completed", 120, "g1@example.com")).await.expect("purchase");
    let soon = ctx.clock.now() + Duration::days(1);
    let (outcome, _) = ctx.app().admin_grant(&email("g1@example.com"), "member", Some(soon)).await.expect("gift");
    assert_eq!(outcome, GrantOutcome::Applied { user_id: id("g1") });
    ctx.clock.advance(Duration::days(30));
    let projected = ctx.project("g1").await;
    assert!(projected.access.has_access() && projected.access.ends_at().is_none(), "the purchase is open-ended");
    assert_eq!(entitlements(&ctx).await.len(), 2);
    // Granting the same plan again is the same entitlement with the new end.
    ctx.app().admin_grant(&email("g1@example.com"), "member", None).await.expect("again");
    assert_eq!(entitlements(&ctx).await.len(), 2);
}

#[tokio::test]
async fn a_subscription_written_before_the_ledger_keeps_its_access() {
    let ctx = context().await;
    ctx.create_unverified_user("old", "old@example.com").await;
    let legacy = json!({"userId": "old", "status": "active", "plan": "member", "sellappOrderId": "9001"});
    ctx.client.create_document("crypto", "subscriptions", "old", &legacy, None).await.expect("legacy doc");
    let projected = ctx.project("old").await;
    assert!(projected.access.has_access());
    assert!(ctx.is_paid("old").await);
    // Its order's dispute (no account verification needed to revoke) takes it away.
    ctx.app().ingest_sellapp(&order("order.disputed", 9001, "old@example.com")).await.expect("dispute");
    let projected = ctx.project("old").await;
    assert!(!projected.access.has_access());
    assert!(!ctx.is_paid("old").await);
}

#[tokio::test]
async fn a_new_purchase_costs_at_most_seven_appwrite_calls_and_a_duplicate_two() {
    let ctx = context().await;
    ctx.create_user("budget", "budget@example.com").await;
    let event = order("order.completed", 130, "budget@example.com");
    clear_calls(&ctx).await;
    ctx.app().ingest_sellapp(&event).await.expect("purchase");
    let purchase = total_calls(&ctx).await;
    // claim, user, plans catalogue, entitlement, job PATCH (404) + create, complete.
    assert!(purchase <= 7, "a new purchase cost {purchase} calls: {}", ctx.calls().await);
    clear_calls(&ctx).await;
    assert_eq!(ctx.app().ingest_sellapp(&event).await, Ok(IngestOutcome::Duplicate));
    let duplicate = total_calls(&ctx).await;
    assert!(duplicate <= 2, "a duplicate cost {duplicate} calls");
    // A second purchase by the same buyer (their outbox entry exists): one call fewer.
    clear_calls(&ctx).await;
    ctx.app().ingest_sellapp(&order("order.completed", 131, "budget@example.com")).await.expect("purchase");
    let repeat = total_calls(&ctx).await;
    assert!(repeat <= 6, "a repeat purchase cost {repeat}");
    println!("budget: new purchase {purchase} calls, repeat buyer {repeat}, duplicate {duplicate}");
}

//! Refund reconciliation against devstack's Sell.app stand-in, on the injected clock: a refunded order
//! loses its access within one check interval, another paid order keeps its own, and each run stays within
//! its budget and resumes where it stopped.

use crate::ledger::entitlements;
use crate::support::{applied, context, signed_event, TestContext};
use chrono::Duration;
use serde_json::{json, Value};
use tollgate_app::refunds::{RefundPolicy, SellappApi, SellappApiConfig};
use tollgate_core::{AppwriteId, Clock, Secret};

fn api(ctx: &TestContext, key: &str) -> SellappApi {
    SellappApi::new(SellappApiConfig { api_base: ctx.devstack.sellapp_api_base(), api_key: Secret::new(key) })
        .expect("client")
}

fn good_api(ctx: &TestContext) -> SellappApi {
    api(ctx, ctx.devstack.sellapp_api_key())
}

async fn control(ctx: &TestContext, path: &str, body: Value) {
    let url = format!("{}{path}", ctx.devstack.sellapp_base_url());
    let response = reqwest::Client::new().post(url).json(&body).send().await.expect("stand-in");
    assert!(response.status().is_success(), "{path}: {}", response.status());
}

/// An order paid on the stand-in, and its `order.completed` delivered to Tollgate.
async fn paid_order(ctx: &TestContext, id: u64, email: &str) {
    control(ctx, "/_devstack/orders", json!({"id": id, "email": email, "product_id": 55, "product_title": "Pro"}))
        .await;
    let body = json!({"event": "order.completed", "store": ctx.devstack.sellapp_store(), "data": {
        "id": id, "status": "COMPLETED", "customer": {"email": email},
        "line_items": [{"product_id": 55, "product_title": "Pro"}]}});
    let outcome = ctx.app().ingest_sellapp(&signed_event(&body.to_string())).await.expect("delivery");
    assert!(
        matches!(outcome, tollgate_app::IngestOutcome::Applied { .. } | tollgate_app::IngestOutcome::Pending),
        "{outcome:?}"
    );
}

async fn set_status(ctx: &TestContext, id: u64, status: &str) {
    control(ctx, &format!("/_devstack/orders/{id}/status"), json!({"status": status})).await;
}

async fn sellapp_calls(ctx: &TestContext) -> u64 {
    let url = format!("{}/_devstack/calls", ctx.devstack.sellapp_base_url());
    let calls: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    calls.as_object().unwrap().values().filter_map(Value::as_u64).sum()
}

fn policy(per_run: u32) -> RefundPolicy {
    RefundPolicy { per_run, ..RefundPolicy::default() }
}

#[tokio::test]
async fn a_refunded_order_loses_its_access_within_one_check_interval_and_another_paid_order_keeps_access() {
    let ctx = context().await;
    ctx.create_user("refunded", "refunded@example.com").await;
    paid_order(&ctx, 1, "refunded@example.com").await;
    paid_order(&ctx, 2, "refunded@example.com").await;
    ctx.project("refunded").await;
    assert!(ctx.is_paid("refunded").await);

    let first = ctx.app().reconcile_refunds(&good_api(&ctx), &policy(5)).await.unwrap();
    assert_eq!((first.checked, first.revoked.len()), (2, 0), "{first:?}");

    // Refunded on Sell.app after the first check: caught within one interval.
    set_status(&ctx, 1, "REFUNDED").await;
    let early = ctx.app().reconcile_refunds(&good_api(&ctx), &policy(5)).await.unwrap();
    assert_eq!(early.checked, 0, "nothing is read twice within the interval");
    ctx.clock.advance(Duration::hours(24));
    let report = ctx.app().reconcile_refunds(&good_api(&ctx), &policy(5)).await.unwrap();
    assert_eq!(report.revoked, vec!["sellapp:7:1".to_owned()], "{report:?}");
    let projected = ctx.project("refunded").await;
    assert!(projected.access.has_access(), "the other paid order keeps its access");
    assert!(ctx.is_paid("refunded").await);
    let list = entitlements(&ctx).await;
    let refunded = list.iter().find(|e| e["source"] == "sellapp:7:1").unwrap();
    assert_eq!(
        (refunded["revokeReason"].as_str(), refunded["providerStatus"].as_str()),
        (Some("refund"), Some("REFUNDED"))
    );

    // The lookup shows each order's last known status and when it was read.
    let lookup = ctx.app().user_entitlements(&AppwriteId::parse("refunded").unwrap()).await.unwrap();
    let shown: Vec<Value> = lookup
        .iter()
        .map(|e| tollgate_app::lookup::entitlement_json(e, ctx.clock.now(), ctx.settings.access_grace))
        .collect();
    let kept = shown.iter().find(|e| e["source"] == "sellapp:7:2").unwrap();
    assert_eq!(kept["sellapp"]["order"], "2");
    assert_eq!(kept["sellapp"]["providerStatus"], "COMPLETED");
    assert!(kept["sellapp"]["lastCheckedAt"].is_string());

    set_status(&ctx, 2, "VOIDED").await;
    ctx.clock.advance(Duration::hours(24));
    let last = ctx.app().reconcile_refunds(&good_api(&ctx), &policy(5)).await.unwrap();
    assert_eq!(last.revoked, vec!["sellapp:7:2".to_owned()]);
    assert!(!ctx.project("refunded").await.access.has_access());
    assert!(!ctx.is_paid("refunded").await);
    assert_eq!(ctx.document("role_sync_jobs", "refunded").await.unwrap()["status"], "pending", "roles follow");
}

#[tokio::test]
async fn each_run_stays_within_its_budget_newest_first_and_resumes_where_it_stopped() {
    let ctx = context().await;
    ctx.create_user("many", "many@example.com").await;
    // Subscriptions are bounded by their period end: never read, and never in the way of the budget.
    for id in 1..=3 {
        let body = json!({"event": "subscription.created", "store": 7, "data": {"id": id, "customer": {"email": "many@example.com"},
            "current_period_end": "2030-01-01T00:00:00Z"}});
        assert_eq!(ctx.app().ingest_sellapp(&signed_event(&body.to_string())).await, Ok(applied("many")));
    }
    for id in 1..=5 {
        paid_order(&ctx, id, "many@example.com").await;
        ctx.clock.advance(Duration::minutes(1));
    }
    let mut order_of_checks = Vec::new();
    for _ in 0..3 {
        let before = sellapp_calls(&ctx).await;
        let report = ctx.app().reconcile_refunds(&good_api(&ctx), &policy(2)).await.unwrap();
        assert!(sellapp_calls(&ctx).await - before <= 2, "at most the per-run budget of Sell.app calls");
        let list = entitlements(&ctx).await;
        let mut checked: Vec<String> = list
            .iter()
            .filter(|e| e["lastCheckedAt"].is_string())
            .inspect(|e| assert!(e["source"].as_str().is_some_and(|s| s.starts_with("sellapp:")), "{e}"))
            .map(|e| e["orderId"].as_str().unwrap().to_owned())
            .filter(|o| !order_of_checks.contains(o))
            .collect();
        checked.sort_by(|a, b| b.cmp(a));
        assert_eq!(checked.len(), report.checked);
        order_of_checks.extend(checked);
    }
    assert_eq!(order_of_checks, ["5", "4", "3", "2", "1"], "newest purchases first, each exactly once");
    let idle = ctx.app().reconcile_refunds(&good_api(&ctx), &policy(2)).await.unwrap();
    assert_eq!(idle.checked, 0);

    // A day later they are due again; a refused key stops the run without marking anything.
    ctx.clock.advance(Duration::hours(24));
    let refused = ctx.app().reconcile_refunds(&api(&ctx, "wrong"), &policy(2)).await.unwrap();
    assert_eq!(refused.checked, 0);
    assert!(refused.stopped.as_deref().is_some_and(|s| s.contains("401")), "{refused:?}");
    let resumed = ctx.app().reconcile_refunds(&good_api(&ctx), &policy(2)).await.unwrap();
    assert_eq!(resumed.checked, 2);
}

#[tokio::test]
async fn a_disputing_or_unknown_order_is_reported_not_revoked_and_old_orders_are_left_alone() {
    let ctx = context().await;
    ctx.create_user("watch", "watch@example.com").await;
    paid_order(&ctx, 1, "watch@example.com").await;
    set_status(&ctx, 1, "DISPUTING").await;
    // An order Sell.app does not know (delivered, never created on the stand-in).
    let body = json!({"event": "order.completed", "store": "7", "data": {"id": 99, "customer": {"email": "watch@example.com"}}});
    assert_eq!(ctx.app().ingest_sellapp(&signed_event(&body.to_string())).await, Ok(applied("watch")));
    let report = ctx.app().reconcile_refunds(&good_api(&ctx), &policy(5)).await.unwrap();
    let mut attention = report.attention.clone();
    attention.sort();
    assert_eq!(
        attention,
        vec![("sellapp:7:1".to_owned(), "DISPUTING".to_owned()), ("sellapp:7:99".to_owned(), "NOT_FOUND".to_owned())]
    );
    assert!(report.revoked.is_empty());
    assert!(ctx.project("watch").await.access.has_access());

    // Past the window (60 days after purchase) orders are no longer read.
    ctx.clock.advance(Duration::days(61));
    set_status(&ctx, 1, "REFUNDED").await;
    let late = ctx.app().reconcile_refunds(&good_api(&ctx), &policy(5)).await.unwrap();
    assert_eq!(late.checked, 0);
}

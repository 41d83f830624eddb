//! Access follows payment through workerd: the entitlement ledger's promises as a provider, an admin and
//! the crons exercise them.

use crate::support::{event_document_id, order_body, spawn_app, spawn_app_with, ADMIN_TOKEN};
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use tollgate_core::{Email, SystemClock};
use tollgate_devstack::discord_seed as seed;

fn email(raw: &str) -> Email {
    Email::parse(raw).expect("email")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_followed_by_a_late_redelivery_of_the_purchase_stays_revoked() {
    let app = spawn_app().await;
    app.create_user("late", "late@example.com").await;
    let purchase = order_body("order.completed", 901, "late@example.com");
    app.deliver(&purchase, 200).await;
    app.projected("late", "active").await;
    app.deliver(&order_body("order.disputed", 901, "late@example.com"), 200).await;
    app.projected("late", "inactive").await;
    // The provider redelivers the purchase (its claim was completed: a duplicate), and even with the claim
    // reopened (as if the first attempt had been cut off mid-way) it stays revoked.
    assert_eq!(app.deliver(&purchase, 200).await, json!({"ok": true, "duplicate": true}));
    let claim = event_document_id("order.completed", "901", "1");
    app.update_document("webhook_events", &claim, json!({"status": "processing"})).await;
    assert_eq!(app.deliver(&purchase, 200).await, json!({"ok": true}));
    app.trigger_role_sync_cron().await;
    app.projected("late", "inactive").await;
    let entitlement = &app.documents("entitlements").await[0];
    assert_eq!(entitlement["revokeReason"], "dispute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_revoke_survives_the_retry_of_a_failed_purchase() {
    let app = spawn_app().await;
    app.create_user("revoked", "revoked@example.com").await;
    // The purchase lands on the ledger, then completing it fails: recorded, to be retried.
    app.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/databases/crypto/collections/role_sync_jobs"]}))
        .await;
    let purchase = order_body("order.completed", 902, "revoked@example.com");
    assert_eq!(app.deliver(&purchase, 202).await, json!({"ok": true, "recorded": true}));
    app.clear_faults().await;
    let admin = tollgate_app::App::new(&app.client, &app.settings, &SystemClock);
    let report = admin.admin_revoke(&email("revoked@example.com"), None).await.expect("revoke");
    assert_eq!(report.revoked, vec!["sellapp:1:902".to_owned()]);

    let failure_id = event_document_id("order.completed", "902", "1");
    app.let_backoff_pass(&failure_id).await;
    app.trigger_scheduled().await;
    assert_eq!(app.document("webhook_failures", &failure_id).await.expect("failure")["state"], "settled");
    app.trigger_role_sync_cron().await;
    app.projected("revoked", "inactive").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entitlement_with_an_end_loses_the_paid_membership_and_the_roles_once_it_ends() {
    // The local settings override, as `cargo xtask dev --set ACCESS_GRACE_HOURS=0` writes it.
    let app = spawn_app_with(&[("ACCESS_GRACE_HOURS", "0")]).await;
    let discord_id = seed::TEST_USERS[0].0;
    app.create_user("ending", "ending@example.com").await;
    app.link_discord("ending", discord_id).await;
    app.join_guild(discord_id).await;
    let mut settings = app.settings.clone();
    settings.access_grace = chrono::Duration::zero();
    let admin = tollgate_app::App::new(&app.client, &settings, &SystemClock);
    let end = chrono::Utc::now() + chrono::Duration::seconds(4);
    admin.admin_grant(&email("ending@example.com"), "member", Some(end)).await.expect("grant");
    app.trigger_role_sync_cron().await;
    app.projected("ending", "active").await;
    let roles = || async { app.member_roles(discord_id).await.unwrap_or_default() };
    app.eventually("the plan's roles", || async { roles().await.len() == 2 }).await;

    tokio::time::sleep(Duration::from_secs(5)).await;
    // The first run finds the drift (and strips the roles), the next runs the queued projection.
    app.trigger_role_sync_cron().await;
    app.trigger_role_sync_cron().await;
    app.projected("ending", "inactive").await;
    assert!(roles().await.is_empty(), "roles gone with the membership");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_failure_recorded_by_the_replaced_deployment_grants_the_purchase() {
    let app = spawn_app().await;
    app.create_user("legacy", "legacy@example.com").await;
    let body = order_body("order.completed", 903, "legacy@example.com");
    let claim = event_document_id("order.completed", "903", "1");
    // What the replaced deployment left: its dedupe record (no status), then a failure record (no state).
    let appwrite = &app.client;
    appwrite
        .create_document("crypto", "webhook_events", &claim, &json!({"provider": "sellapp", "orderId": "903"}), None)
        .await
        .expect("legacy claim");
    let failure =
        json!({"provider": "sellapp", "event": "order.completed", "bodyText": body, "errorCode": "user_not_found"});
    appwrite.create_document("crypto", "webhook_failures", "oldfailure903", &failure, None).await.expect("failure");

    let response = app
        .http
        .post(format!("{}/admin/failures/oldfailure903/replay", app.api.url()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("replay");
    assert!(response.status().is_success());
    assert_eq!(response.json::<serde_json::Value>().await.expect("json")["outcome"], "settled");
    app.trigger_role_sync_cron().await;
    app.projected("legacy", "active").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_and_ten_never_claimed_purchases_do_not_stop_a_new_one_from_being_claimed() {
    let app = spawn_app().await;
    let deliveries = (0..210u64).map(|i| {
        let body = order_body("order.completed", 10_000 + i, &format!("ghost{i}@example.com"));
        let app = &app;
        async move { app.deliver(&body, 200).await }
    });
    futures::stream::iter(deliveries).buffer_unordered(10).collect::<Vec<_>>().await;
    app.deliver(&order_body("order.completed", 20_000, "wanted@example.com"), 200).await;
    app.create_user("wanted", "wanted@example.com").await;
    // Two cron runs of two pages each reach every pending entitlement.
    app.trigger_scheduled().await;
    app.trigger_scheduled().await;
    app.projected("wanted", "active").await;
}

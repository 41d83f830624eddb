//! Refund reconciliation through workerd: the webhook worker's cron reads the order from devstack's
//! Sell.app stand-in (`SELLAPP_API_BASE`/`SELLAPP_API_KEY` from the env file, as `cargo xtask dev` writes
//! them) and revokes a refunded order's access; a paid one is recorded as checked.

use crate::support::spawn_app;
use serde_json::{json, Value};

async fn stand_in(app: &crate::support::TestApp, path: &str, body: Value) {
    let url = format!("{}{path}", app.devstack.sellapp_base_url());
    let response = app.http.post(url).json(&body).send().await.expect("Sell.app stand-in");
    assert!(response.status().is_success(), "{path}: {}", response.status());
}

fn purchase(order: u64, email: &str) -> String {
    json!({"event": "order.completed", "store": 7, "data": {"id": order, "status": "COMPLETED", "customer": {"email": email}}})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_workers_cron_revokes_a_refunded_order_and_keeps_a_paid_one() {
    let app = spawn_app().await;
    app.create_user("refund", "refund@example.com").await;
    for order in [31, 32] {
        stand_in(&app, "/_devstack/orders", json!({"id": order, "email": "refund@example.com"})).await;
        app.deliver(&purchase(order, "refund@example.com"), 200).await;
    }
    app.projected("refund", "active").await;
    stand_in(&app, "/_devstack/orders/31/status", json!({"status": "REFUNDED"})).await;

    app.trigger_scheduled().await;
    let entitlements = app.documents("entitlements").await;
    let of = |source: &str| entitlements.iter().find(|e| e["source"] == source).cloned().expect(source);
    let refunded = of("sellapp:7:31");
    assert_eq!(
        (refunded["revokeReason"].as_str(), refunded["providerStatus"].as_str()),
        (Some("refund"), Some("REFUNDED"))
    );
    let paid = of("sellapp:7:32");
    assert!(paid["revokedAt"].is_null());
    assert_eq!(paid["providerStatus"], "COMPLETED");
    assert!(paid["lastCheckedAt"].is_string());
    app.trigger_role_sync_cron().await;
    app.projected("refund", "active").await;
}

//! The client against devstack's Sell.app stand-in: status, 404, refused keys and stores.

use tollgate_core::Secret;
use tollgate_devstack::DevstackConfig;
use tollgate_sellapp::{SellappApi, SellappApiConfig, SellappApiError};

#[tokio::test]
async fn the_client_reads_an_orders_status_and_names_each_refusal() {
    let devstack = tollgate_devstack::start(DevstackConfig::for_tests()).await.expect("devstack");
    let created = reqwest::Client::new()
        .post(format!("{}/_devstack/orders", devstack.sellapp_base_url()))
        .body(r#"{"email": "buyer@example.com", "product_id": 55}"#)
        .header("Content-Type", "application/json")
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let api = |key: &str| {
        SellappApi::new(SellappApiConfig { api_base: devstack.sellapp_api_base(), api_key: Secret::new(key) }).unwrap()
    };
    let good = api(devstack.sellapp_api_key());
    let store = Some(devstack.sellapp_store());
    let order = good.order_status(store, "1").await.unwrap().expect("the order");
    assert_eq!(order.status, "COMPLETED");
    assert!(order.updated_at.is_some());
    assert_eq!(good.order_status(store, "404").await, Ok(None));
    assert!(matches!(api("wrong").order_status(store, "1").await, Err(SellappApiError::Refused { status: 401, .. })));
    assert!(matches!(good.order_status(Some("8"), "1").await, Err(SellappApiError::Refused { status: 403, .. })));
    let error = api("wrong-key-text").order_status(store, "1").await.unwrap_err().to_string();
    assert!(!error.contains("wrong-key-text"), "the key never shows: {error}");
}

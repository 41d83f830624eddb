//! The Sell.app stand-in against the facts its module doc lists (there is no official OpenAPI document to
//! check it against): bearer key, store header, order shape and statuses, error bodies, pagination, and the
//! control routes that make and refund orders. Every served route is exercised.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_devstack::sellapp::{ROUTES, STATUSES};
use tollgate_devstack::DevstackConfig;

#[tokio::test]
async fn the_sellapp_stand_in_serves_orders_with_sellapps_auth_errors_and_pages() {
    let devstack = tollgate_devstack::start(DevstackConfig::for_tests()).await.expect("devstack");
    let http = reqwest::Client::new();
    let api = devstack.sellapp_api_base();
    let control = |path: &str| format!("{}{path}", devstack.sellapp_base_url());
    let get = |path: &str, key: Option<&str>, store: Option<&str>| {
        let mut request = http.get(format!("{api}{path}"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(store) = store {
            request = request.header("X-STORE", store);
        }
        request.send()
    };
    let key = devstack.sellapp_api_key();
    let store = devstack.sellapp_store();

    for n in 0..3 {
        let created = http
            .post(control("/_devstack/orders"))
            .json(&json!({"email": format!("b{n}@example.com"), "product_id": 55, "product_title": "Pro"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    let order = get("/v2/orders/2", Some(key), Some(store)).await.unwrap();
    assert_eq!(order.status(), StatusCode::OK);
    let order: Value = order.json().await.unwrap();
    let data = &order["data"];
    assert_eq!((data["id"].clone(), data["status"].clone()), (json!(2), json!("COMPLETED")));
    assert_eq!(data["customer"]["email"], "b1@example.com");
    assert_eq!(data["line_items"][0]["product_id"], 55);
    for field in ["timeline", "payment", "totals", "coupon_id", "created_at", "updated_at"] {
        assert!(data.get(field).is_some(), "the order has {field}");
    }

    let refunded =
        http.post(control("/_devstack/orders/2/status")).json(&json!({"status": "REFUNDED"})).send().await.unwrap();
    assert_eq!(refunded.status(), StatusCode::OK);
    let order: Value = get("/v2/orders/2", Some(key), None).await.unwrap().json().await.unwrap();
    assert_eq!(order["data"]["status"], "REFUNDED", "X-STORE may be omitted with a store's key");
    assert_eq!(order["data"]["timeline"].as_array().map(Vec::len), Some(2));
    let bad = http.post(control("/_devstack/orders/2/status")).json(&json!({"status": "GONE"})).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(STATUSES.contains(&"VOIDED") && STATUSES.contains(&"DISPUTING"));

    let cases = [
        ("/v2/orders/2", None, None, 401, "Unauthenticated."),
        ("/v2/orders/2", Some("wrong"), None, 401, "Unauthenticated."),
        ("/v2/orders/2", Some(key), Some("8"), 403, "This action is unauthorized."),
        ("/v2/orders/99", Some(key), Some(store), 404, "Not found."),
        ("/v2/orders?limit=500", Some(key), None, 422, ""),
    ];
    for (path, key, store, status, message) in cases {
        let answer = get(path, key, store).await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert!(body["message"].as_str().is_some_and(|m| m.starts_with(message)), "{path}: {body}");
    }

    let page: Value = get("/v2/orders?page=1&limit=2", Some(key), Some(store)).await.unwrap().json().await.unwrap();
    let ids: Vec<i64> = page["data"].as_array().unwrap().iter().filter_map(|o| o["id"].as_i64()).collect();
    assert_eq!(ids, vec![3, 2], "newest first");
    assert_eq!(page["meta"], json!({"current_page": 1, "last_page": 2, "per_page": 2, "total": 3}));
    let last: Value = get("/v2/orders?page=2&limit=2", Some(key), Some(store)).await.unwrap().json().await.unwrap();
    assert_eq!(last["data"].as_array().map(Vec::len), Some(1));

    let calls: Value = http.get(control("/_devstack/calls")).send().await.unwrap().json().await.unwrap();
    let missed = crate::support::unexercised(ROUTES, &calls);
    assert!(missed.is_empty(), "routes served but not exercised: {missed:?}");
}

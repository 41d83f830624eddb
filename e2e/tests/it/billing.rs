//! The customer's Stripe billing routes through the api worker in workerd, against devstack's Stripe stand-in:
//! `POST /me/checkout`, `/me/cancel`, `/me/billing-portal` for a customer with no subscription, an active one,
//! a past_due one and a canceled one, and the refusals and errors in the API's usual shape.

use crate::support::jwt_for;
use crate::support::{spawn_app_with, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_app::role_sync::PlanUpdate;
use tollgate_core::GuildId;
use tollgate_devstack::discord_seed as seed;

const T0: i64 = 1_800_000_000;

/// The stand-in's Stripe API, as a merchant's own scripts would call it.
async fn stripe(app: &TestApp, method: reqwest::Method, path: &str, params: &[(&str, &str)]) -> Value {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    let response = app
        .http
        .request(method, format!("{}{path}", app.devstack.stripe_base_url()))
        .bearer_auth(app.devstack.stripe_secret_key())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn post(app: &TestApp, path: &str, params: &[(&str, &str)]) -> Value {
    stripe(app, reqwest::Method::POST, path, params).await
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("an id in {value}")).to_owned()
}

/// `POST {path}` on the api worker as `user`.
async fn me(app: &TestApp, path: &str, jwt: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = app.http.post(format!("{}{path}", app.api.url()));
    if let Some(jwt) = jwt {
        request = request.bearer_auth(jwt);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

/// Plans `member` and `pro`, each sold through a monthly Stripe price: the two price ids.
async fn prices(app: &TestApp) -> (String, String) {
    let product = id(&post(app, "/v1/products", &[("name", "Community")]).await);
    let mut ids = Vec::new();
    let clock = tollgate_core::FixedClock::at(Default::default());
    let catalogue = tollgate_app::App::new(&app.client, &app.settings, &clock);
    for (plan, amount) in [("member", "500"), ("pro", "1500")] {
        let price = post(
            app,
            "/v1/prices",
            &[("product", &product), ("currency", "usd"), ("unit_amount", amount), ("recurring[interval]", "month")],
        )
        .await;
        let update = PlanUpdate { stripe_prices: Some(vec![id(&price)]), ..PlanUpdate::default() };
        catalogue.set_plan(plan, GuildId::parse(seed::GUILD_ID).unwrap(), &update).await.unwrap();
        ids.push(id(&price));
    }
    (ids[0].clone(), ids[1].clone())
}

/// A verified user paying `price` on Stripe with a good card (on a test clock): their JWT, subscription id
/// and clock.
async fn subscriber(app: &TestApp, user: &str, price: &str) -> (String, String, String) {
    let email = format!("{user}@example.com");
    app.create_user(user, &email).await;
    let clock = id(&post(app, "/v1/test_helpers/test_clocks", &[("frozen_time", &T0.to_string())]).await);
    let customer = id(&post(app, "/v1/customers", &[("email", &email), ("test_clock", &clock)]).await);
    let card = id(&post(app, "/v1/payment_methods/pm_card_visa/attach", &[("customer", &customer)]).await);
    let params = [("customer", customer.as_str()), ("items[0][price]", price), ("default_payment_method", &card)];
    let subscription = id(&post(app, "/v1/subscriptions", &params).await);
    (jwt_for(app, user).await, subscription, clock)
}

async fn subscription(app: &TestApp, id: &str) -> Value {
    stripe(app, reqwest::Method::GET, &format!("/v1/subscriptions/{id}"), &[]).await
}

fn price_of(subscription: &Value) -> &str {
    subscription["items"]["data"][0]["price"]["id"].as_str().unwrap()
}

fn refusal(answer: &(StatusCode, Value)) -> (u16, &str) {
    (answer.0.as_u16(), answer.1["error"]["code"].as_str().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_billing_action_does_what_the_matrix_says_for_none_active_past_due_and_canceled() {
    let app = spawn_app_with(&[]).await;
    let (member, pro) = prices(&app).await;
    let stand_in = app.devstack.stripe_base_url();

    // No subscription: a Checkout Session naming the user; nothing to cancel; no portal.
    app.create_user("fresh", "fresh@example.com").await;
    let fresh = jwt_for(&app, "fresh").await;
    let (status, body) = me(&app, "/me/checkout", Some(&fresh), Some(json!({"plan": "pro"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["url"].as_str().unwrap();
    let session = url.strip_prefix(&format!("{stand_in}/checkout/pay/")).expect("the stand-in's checkout page");
    let session = stripe(&app, reqwest::Method::GET, &format!("/v1/checkout/sessions/{session}"), &[]).await;
    assert_eq!(
        (session["client_reference_id"].as_str(), session["mode"].as_str()),
        (Some("fresh"), Some("subscription"))
    );
    assert_eq!(session["success_url"], "http://127.0.0.1:3000/?billing=checkout_success", "back to APP_BASE_URL");
    assert_eq!(refusal(&me(&app, "/me/cancel", Some(&fresh), None).await), (409, "nothing_to_cancel"));
    assert_eq!(refusal(&me(&app, "/me/billing-portal", Some(&fresh), None).await), (409, "no_subscription"));
    let unknown = me(&app, "/me/checkout", Some(&fresh), Some(json!({"plan": "platinum"}))).await;
    assert_eq!(refusal(&unknown), (400, "unknown_plan"));
    assert_eq!(refusal(&me(&app, "/me/checkout", Some(&fresh), Some(json!({"plan": 7}))).await), (400, "invalid_body"));
    assert_eq!(refusal(&me(&app, "/me/checkout", None, Some(json!({"plan": "pro"}))).await), (401, "unauthenticated"));

    // Active: the price changes in the same cycle, cancel at period end, the portal opens.
    let (active, sub, _) = subscriber(&app, "steady", &member).await;
    let (status, body) = me(&app, "/me/checkout", Some(&active), Some(json!({"plan": "pro"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["changed"].as_bool(), body["subscription"]["plan"].as_str()), (Some(true), Some("pro")));
    assert_eq!(price_of(&subscription(&app, &sub).await), pro);
    let (status, body) = me(&app, "/me/cancel", Some(&active), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cancelAtPeriodEnd"], true);
    assert!(body["periodEnd"].as_str().is_some_and(|end| end.starts_with("2027-")), "{body}");
    assert_eq!(subscription(&app, &sub).await["cancel_at_period_end"], true);
    assert_eq!(refusal(&me(&app, "/me/cancel", Some(&active), None).await), (409, "already_canceling"));
    let (status, body) = me(&app, "/me/billing-portal", Some(&active), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["url"].as_str().unwrap().starts_with(&format!("{stand_in}/billing_portal/")), "{body}");

    // Past due (the renewal's card declined): the same three work, so the customer can fix the card.
    let (late, sub, clock) = subscriber(&app, "late", &member).await;
    let current = subscription(&app, &sub).await;
    let customer = current["customer"].as_str().unwrap().to_owned();
    let failing =
        id(&post(&app, "/v1/payment_methods/pm_card_chargeCustomerFail/attach", &[("customer", &customer)]).await);
    post(&app, &format!("/v1/subscriptions/{sub}"), &[("default_payment_method", &failing)]).await;
    let renewal = current["items"]["data"][0]["current_period_end"].as_i64().unwrap() + 3_600;
    post(&app, &format!("/v1/test_helpers/test_clocks/{clock}/advance"), &[("frozen_time", &renewal.to_string())])
        .await;
    assert_eq!(subscription(&app, &sub).await["status"], "past_due");
    let portal = me(&app, "/me/billing-portal", Some(&late), Some(json!({"purpose": "update"}))).await;
    assert_eq!(portal.0, StatusCode::OK, "{}", portal.1);
    let (status, body) = me(&app, "/me/checkout", Some(&late), Some(json!({"plan": "pro"}))).await;
    assert_eq!((status, body["changed"].as_bool()), (StatusCode::OK, Some(true)), "{body}");
    assert_eq!(me(&app, "/me/cancel", Some(&late), None).await.0, StatusCode::OK);

    // Canceled: a new Checkout Session for the same customer; cancel and card updates are refused, removal not.
    let (ended, sub, _) = subscriber(&app, "ended", &pro).await;
    let customer = subscription(&app, &sub).await["customer"].as_str().unwrap().to_owned();
    stripe(&app, reqwest::Method::DELETE, &format!("/v1/subscriptions/{sub}"), &[]).await;
    let (status, body) = me(&app, "/me/checkout", Some(&ended), Some(json!({"plan": "member"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = body["url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let session = stripe(&app, reqwest::Method::GET, &format!("/v1/checkout/sessions/{session}"), &[]).await;
    assert_eq!(session["customer"], customer.as_str());
    assert_eq!(refusal(&me(&app, "/me/cancel", Some(&ended), None).await), (409, "subscription_ended"));
    let update = me(&app, "/me/billing-portal", Some(&ended), None).await;
    assert_eq!(refusal(&update), (409, "subscription_ended"));
    let remove = me(&app, "/me/billing-portal", Some(&ended), Some(json!({"purpose": "remove"}))).await;
    assert_eq!(remove.0, StatusCode::OK, "{}", remove.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_stripe_key_the_billing_routes_say_stripe_is_not_configured_and_a_refused_key_is_a_502() {
    let app = spawn_app_with(&[("STRIPE_API_KEY", "")]).await;
    app.create_user("nokey", "nokey@example.com").await;
    let jwt = jwt_for(&app, "nokey").await;
    for path in ["/me/checkout", "/me/cancel", "/me/billing-portal"] {
        let answer = me(&app, path, Some(&jwt), Some(json!({"plan": "member"}))).await;
        assert_eq!(refusal(&answer), (501, "stripe_not_configured"), "{path}");
    }
    drop(app);

    let app = spawn_app_with(&[("STRIPE_API_KEY", "sk_test_refused_by_the_stand_in_42")]).await;
    app.create_user("badkey", "badkey@example.com").await;
    let jwt = jwt_for(&app, "badkey").await;
    let answer = me(&app, "/me/cancel", Some(&jwt), None).await;
    assert_eq!(refusal(&answer), (502, "stripe_error"));
    assert!(!answer.1.to_string().contains("refused_by_the_stand_in"), "no secret in the answer: {}", answer.1);
}

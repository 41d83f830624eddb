//! The Stripe stand-in against Stripe's example objects (`testdata/stripe/fixtures.json`): every object any
//! route returns, and every event's `data.object`, has only fields Stripe's object of that type has, with
//! its JSON types. Also Stripe's error bodies, auth, idempotency and list pagination. Every served route is
//! exercised.

use crate::stripe_support::{fixtures, id, mismatches, monthly_price, stripe, Stripe};
use reqwest::Method;
use serde_json::{json, Value};
use tollgate_devstack::stripe::ROUTES;

/// path, parameters, status, error code, error param.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str, &'a str);

const T0: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

async fn product_and_prices(stripe: &Stripe) -> (String, String, String) {
    let product = stripe.post("/v1/products", &[("name", "Member"), ("metadata[plan]", "member")]).await;
    let product = product["id"].as_str().unwrap().to_owned();
    let monthly = stripe
        .post(
            "/v1/prices",
            &[("product", &product), ("currency", "usd"), ("unit_amount", "1000"), ("recurring[interval]", "month")],
        )
        .await;
    let once = stripe.post("/v1/prices", &[("product", &product), ("currency", "usd"), ("unit_amount", "2500")]).await;
    (product, monthly["id"].as_str().unwrap().to_owned(), once["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_object_and_event_the_stand_in_returns_has_the_fields_and_types_of_stripes_examples() {
    let stripe = stripe().await;
    let (product, monthly, once) = product_and_prices(&stripe).await;
    let endpoint = stripe
        .post(
            "/v1/webhook_endpoints",
            &[("url", "http://127.0.0.1:9/hook"), ("enabled_events[]", "*"), ("api_version", "2024-06-20")],
        )
        .await;
    assert!(endpoint["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{endpoint}");
    let updated = stripe.post(&format!("/v1/webhook_endpoints/{}", id(&endpoint)), &[("disabled", "true")]).await;
    assert_eq!(updated["status"], "disabled");
    assert!(updated.get("secret").is_none(), "the secret is only shown on creation");
    stripe.get(&format!("/v1/webhook_endpoints/{}", id(&endpoint)), &[]).await;
    stripe.get("/v1/webhook_endpoints", &[]).await;

    let clock =
        stripe.post("/v1/test_helpers/test_clocks", &[("frozen_time", &T0.to_string()), ("name", "conformance")]).await;
    let customer = stripe
        .post(
            "/v1/customers",
            &[("email", "c@example.com"), ("name", "C"), ("test_clock", &id(&clock)), ("metadata[user]", "u1")],
        )
        .await;
    let cus = id(&customer);
    let visa = stripe.post("/v1/payment_methods/pm_card_visa/attach", &[("customer", &cus)]).await;
    stripe
        .post(
            &format!("/v1/customers/{cus}"),
            &[("invoice_settings[default_payment_method]", &id(&visa)), ("name", "Cee")],
        )
        .await;
    stripe.get(&format!("/v1/payment_methods/{}", id(&visa)), &[]).await;
    stripe.get("/v1/payment_methods", &[("customer", &cus), ("type", "card")]).await;

    let session = stripe
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "subscription"),
                ("customer", &cus),
                ("line_items[0][price]", &monthly),
                ("line_items[0][quantity]", "1"),
                ("client_reference_id", "u1"),
                ("success_url", "http://127.0.0.1:3000/ok?session={CHECKOUT_SESSION_ID}"),
                ("cancel_url", "http://127.0.0.1:3000/cancel"),
                ("subscription_data[trial_period_days]", "7"),
            ],
        )
        .await;
    let completed = stripe
        .control(
            &format!("/_devstack/stripe/checkout/{}/complete", id(&session)),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    stripe.seen.lock().unwrap().push(completed.clone());
    let sub = completed["subscription"].as_str().unwrap().to_owned();
    stripe.get(&format!("/v1/checkout/sessions/{}", id(&session)), &[("expand[]", "subscription")]).await;
    stripe.get("/v1/checkout/sessions", &[("customer", &cus)]).await;
    let subscription = stripe
        .get(&format!("/v1/subscriptions/{sub}"), &[("expand[]", "latest_invoice"), ("expand[]", "customer")])
        .await;
    assert_eq!(subscription["status"], "trialing");
    assert!(subscription["latest_invoice"]["object"] == "invoice" && subscription["customer"]["object"] == "customer");
    stripe.get("/v1/subscriptions", &[("customer", &cus), ("status", "all"), ("price", &monthly)]).await;
    // A trial that ends without a card pauses (its trial_settings say so), and resumes once there is one.
    let pauser = id(&stripe.post("/v1/customers", &[("email", "p@example.com"), ("test_clock", &id(&clock))]).await);
    let pausing = stripe
        .post(
            "/v1/subscriptions",
            &[
                ("customer", &pauser),
                ("items[0][price]", &monthly),
                ("trial_period_days", "1"),
                ("trial_settings[end_behavior][missing_payment_method]", "pause"),
            ],
        )
        .await;
    stripe
        .post(
            &format!("/v1/test_helpers/test_clocks/{}/advance", id(&clock)),
            &[("frozen_time", &(T0 + 8 * DAY).to_string())],
        )
        .await;
    assert_eq!(stripe.get(&format!("/v1/subscriptions/{}", id(&pausing)), &[]).await["status"], "paused");
    let card = stripe.post("/v1/payment_methods/pm_card_visa/attach", &[("customer", &pauser)]).await;
    stripe.post(&format!("/v1/customers/{pauser}"), &[("invoice_settings[default_payment_method]", &id(&card))]).await;
    let resumed =
        stripe.post(&format!("/v1/subscriptions/{}/resume", id(&pausing)), &[("billing_cycle_anchor", "now")]).await;
    assert_eq!(
        (resumed["status"].clone(), resumed["items"]["data"][0]["current_period_start"].clone()),
        (json!("active"), json!(T0 + 8 * DAY))
    );
    let again = stripe.call(Method::POST, &format!("/v1/subscriptions/{}/resume", id(&pausing)), &[]).await;
    assert_eq!(again.status, 400, "only a paused subscription resumes: {}", again.body);
    stripe.get(&format!("/v1/test_helpers/test_clocks/{}", id(&clock)), &[]).await;
    let item = stripe.get(&format!("/v1/subscriptions/{sub}"), &[]).await["items"]["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = stripe
        .post(
            "/v1/prices",
            &[("product", &product), ("currency", "usd"), ("unit_amount", "3000"), ("recurring[interval]", "month")],
        )
        .await;
    stripe
        .post(
            &format!("/v1/subscriptions/{sub}"),
            &[("items[0][id]", &item), ("items[0][price]", &id(&second)), ("proration_behavior", "none")],
        )
        .await;
    let invoices = stripe.get("/v1/invoices", &[("subscription", &sub), ("expand[]", "data.customer")]).await;
    let invoice = id(&invoices["data"][0]);
    stripe.get(&format!("/v1/invoices/{invoice}"), &[]).await;
    let charges = stripe.get("/v1/charges", &[("customer", &cus)]).await;
    let charge = id(&charges["data"][0]);
    let charge = stripe.get(&format!("/v1/charges/{charge}"), &[("expand[]", "payment_intent")]).await;
    stripe.get(&format!("/v1/payment_intents/{}", charge["payment_intent"]["id"].as_str().unwrap()), &[]).await;
    let refund = stripe
        .post("/v1/refunds", &[("charge", &id(&charge)), ("amount", "100"), ("reason", "requested_by_customer")])
        .await;
    stripe.get(&format!("/v1/refunds/{}", id(&refund)), &[]).await;
    stripe.get("/v1/refunds", &[("charge", &id(&charge))]).await;

    // A failed renewal, paid by hand with a new card.
    let failing = stripe.post("/v1/payment_methods/pm_card_chargeCustomerFail/attach", &[("customer", &cus)]).await;
    stripe.post(&format!("/v1/subscriptions/{sub}"), &[("default_payment_method", &id(&failing))]).await;
    stripe
        .post(
            &format!("/v1/test_helpers/test_clocks/{}/advance", id(&clock)),
            &[("frozen_time", &(T0 + 40 * DAY).to_string())],
        )
        .await;
    let open = stripe.get("/v1/invoices", &[("subscription", &sub), ("status", "open")]).await;
    let declined = stripe.call(Method::POST, &format!("/v1/invoices/{}/pay", id(&open["data"][0])), &[]).await;
    assert_eq!(declined.status, 402, "{}", declined.body);
    stripe.post(&format!("/v1/payment_methods/{}/detach", id(&failing)), &[]).await;
    stripe.post(&format!("/v1/invoices/{}/pay", id(&open["data"][0])), &[("payment_method", &id(&visa))]).await;

    let portal = stripe
        .post("/v1/billing_portal/sessions", &[("customer", &cus), ("return_url", "http://127.0.0.1:3000/account")])
        .await;
    assert!(portal["url"].as_str().unwrap().contains("/billing_portal/"));
    stripe
        .post(&format!("/v1/subscriptions/{sub}"), &[("cancel_at_period_end", "true"), ("metadata[why]", "test")])
        .await;
    let direct = stripe
        .post(
            "/v1/subscriptions",
            &[("customer", &cus), ("items[0][price]", &monthly), ("default_payment_method", &id(&visa))],
        )
        .await;
    assert_eq!(direct["status"], "active");
    stripe.call(Method::DELETE, &format!("/v1/subscriptions/{}", id(&direct)), &[]).await;

    // A one-time payment that is disputed, and a customer found by email.
    let payment = stripe
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "payment"),
                ("customer_email", "d@example.com"),
                ("line_items[0][price]", &once),
                ("success_url", "http://127.0.0.1:3000/ok"),
            ],
        )
        .await;
    let paid = stripe
        .control(
            &format!("/_devstack/stripe/checkout/{}/complete", id(&payment)),
            json!({"payment_method": "pm_card_createDispute"}),
        )
        .await;
    stripe.seen.lock().unwrap().push(paid.clone());
    let disputes = stripe.get("/v1/disputes", &[("payment_intent", paid["payment_intent"].as_str().unwrap())]).await;
    let dispute = id(&disputes["data"][0]);
    stripe.get(&format!("/v1/disputes/{dispute}"), &[]).await;
    stripe.post(&format!("/v1/disputes/{dispute}"), &[("evidence[uncategorized_text]", "winning_evidence")]).await;
    let again = stripe
        .post(
            "/v1/checkout/sessions",
            &[
                ("mode", "payment"),
                ("customer_email", "e@example.com"),
                ("line_items[0][price]", &once),
                ("success_url", "http://127.0.0.1:3000/ok"),
            ],
        )
        .await;
    let paid = stripe
        .control(
            &format!("/_devstack/stripe/checkout/{}/complete", id(&again)),
            json!({"payment_method": "pm_card_createDispute"}),
        )
        .await;
    let lost = stripe.get("/v1/disputes", &[("payment_intent", paid["payment_intent"].as_str().unwrap())]).await;
    stripe.post(&format!("/v1/disputes/{}/close", id(&lost["data"][0])), &[]).await;
    stripe.get("/v1/customers", &[("email", "d@example.com")]).await;
    stripe.get(&format!("/v1/customers/{cus}"), &[]).await;
    stripe.get("/v1/products", &[]).await;
    stripe.get(&format!("/v1/products/{product}"), &[]).await;
    stripe.get("/v1/prices", &[("product", &product)]).await;
    stripe.get(&format!("/v1/prices/{monthly}"), &[]).await;
    let events = stripe.get("/v1/events", &[("limit", "100")]).await;
    stripe.get(&format!("/v1/events/{}", id(&events["data"][0])), &[]).await;
    stripe.call(Method::DELETE, &format!("/v1/webhook_endpoints/{}", id(&endpoint)), &[]).await;

    let fixtures = fixtures();
    let mut problems = Vec::new();
    let seen = stripe.seen.lock().unwrap().clone();
    for object in &seen {
        problems.extend(mismatches(object, &fixtures).into_iter().map(|p| format!("{}: {p}", object["object"])));
    }
    let mut types = std::collections::BTreeSet::new();
    for event in events["data"].as_array().unwrap() {
        types.insert(event["type"].as_str().unwrap().to_owned());
        problems.extend(mismatches(event, &fixtures).into_iter().map(|p| format!("event {}: {p}", event["type"])));
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{} mismatches:\n{}", problems.len(), problems.join("\n"));
    let objects: std::collections::BTreeSet<&str> = seen.iter().filter_map(|o| o["object"].as_str()).collect();
    for kind in [
        "customer",
        "product",
        "price",
        "payment_method",
        "checkout.session",
        "subscription",
        "invoice",
        "charge",
        "payment_intent",
        "refund",
        "dispute",
        "billing_portal.session",
        "test_helpers.test_clock",
        "webhook_endpoint",
        "event",
        "list",
    ] {
        assert!(objects.contains(kind), "the check saw no {kind}: {objects:?}");
    }
    for kind in [
        "checkout.session.completed",
        "customer.subscription.updated",
        "invoice.paid",
        "invoice.payment_failed",
        "charge.refunded",
        "charge.dispute.created",
        "charge.dispute.closed",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    ] {
        assert!(types.contains(kind), "no {kind} event: {types:?}");
    }

    let calls: Value = stripe.http.get(stripe.url("/_devstack/calls")).send().await.unwrap().json().await.unwrap();
    let missed = crate::support::unexercised(ROUTES, &calls);
    assert!(missed.is_empty(), "routes served but not exercised: {missed:?}");
}

#[tokio::test]
async fn errors_are_stripes_bodies_with_stripes_statuses() {
    let stripe = stripe().await;
    let no_key = stripe.send(stripe.http.get(stripe.url("/v1/customers"))).await;
    assert_eq!(no_key.status, 401);
    assert_eq!(no_key.body["error"]["type"], "invalid_request_error");
    assert!(no_key.body["error"]["message"].as_str().unwrap().contains("did not provide an API key"));
    let wrong = stripe.send(stripe.http.get(stripe.url("/v1/customers")).bearer_auth("sk_test_wrongwrong1234")).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body["error"]["message"], "Invalid API Key provided: sk_test_****1234");
    let basic = stripe.send(stripe.http.get(stripe.url("/v1/customers")).basic_auth(&stripe.key, Some(""))).await;
    assert_eq!(basic.status, 200, "HTTP Basic with the key as user name");

    let missing = stripe.call(Method::GET, "/v1/customers/cus_x", &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body["error"].clone(),
        json!({"type": "invalid_request_error", "code": "resource_missing", "message": "No such customer: 'cus_x'", "param": "id", "doc_url": "https://stripe.com/docs/error-codes/resource-missing"})
    );
    let cases: &[Case] = &[
        ("/v1/customers", &[("bogus", "1")], 400, "parameter_unknown", "bogus"),
        ("/v1/products", &[], 400, "parameter_missing", "name"),
        (
            "/v1/prices",
            &[("product", "prod_x"), ("currency", "usd"), ("unit_amount", "1")],
            404,
            "resource_missing",
            "product",
        ),
        ("/v1/test_helpers/test_clocks", &[("frozen_time", "soon")], 400, "parameter_invalid_integer", "frozen_time"),
        (
            "/v1/checkout/sessions",
            &[("mode", "subscription"), ("success_url", "http://x")],
            400,
            "parameter_missing",
            "line_items",
        ),
        ("/v1/refunds", &[("charge", "ch_nope")], 404, "resource_missing", "charge"),
        ("/v1/webhook_endpoints", &[("url", "not a url"), ("enabled_events[]", "*")], 400, "url_invalid", "url"),
    ];
    for (path, params, status, code, param) in cases {
        let answer = stripe.call(Method::POST, path, params).await;
        assert_eq!(answer.status, *status, "{path} {params:?}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], *code, "{path}: {}", answer.body);
        assert_eq!(answer.body["error"]["param"], *param, "{path}: {}", answer.body);
    }
    let unknown = stripe.call(Method::GET, "/v1/nothing_here", &[]).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Unrecognized request URL (GET: /v1/nothing_here)"));
    let version = stripe
        .send(
            stripe.http.get(stripe.url("/v1/customers")).bearer_auth(&stripe.key).header("Stripe-Version", "yesterday"),
        )
        .await;
    assert_eq!(version.status, 400, "{}", version.body);

    // A declined card is a 402 card_error naming the charge.
    let customer = stripe.post("/v1/customers", &[("email", "x@example.com")]).await;
    let price = monthly_price(&stripe, "P", "500").await;
    let failing =
        stripe.post("/v1/payment_methods/pm_card_chargeCustomerFail/attach", &[("customer", &id(&customer))]).await;
    let incomplete = stripe
        .post(
            "/v1/subscriptions",
            &[("customer", &id(&customer)), ("items[0][price]", &price), ("default_payment_method", &id(&failing))],
        )
        .await;
    assert_eq!(incomplete["status"], "incomplete", "the default allow_incomplete behaviour");
    let pay = stripe
        .call(Method::POST, &format!("/v1/invoices/{}/pay", incomplete["latest_invoice"].as_str().unwrap()), &[])
        .await;
    assert_eq!(pay.status, 402);
    assert_eq!(
        (pay.body["error"]["type"].clone(), pay.body["error"]["code"].clone()),
        (json!("card_error"), json!("card_declined"))
    );
    assert!(pay.body["error"]["charge"].as_str().unwrap().starts_with("ch_"));
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_answer_and_refuse_other_parameters() {
    let stripe = stripe().await;
    let post = |key: &'static str, email: &'static str| {
        stripe
            .http
            .post(stripe.url("/v1/customers"))
            .bearer_auth(&stripe.key)
            .header("Idempotency-Key", key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("email={email}"))
    };
    let first = stripe.send(post("k1", "a@example.com")).await;
    let second = stripe.send(post("k1", "a@example.com")).await;
    assert_eq!(first.body["id"], second.body["id"], "the same customer, not a second one");
    assert_eq!(second.headers.get("idempotent-replayed").unwrap(), "true");
    let customers = stripe.get("/v1/customers", &[]).await;
    assert_eq!(customers["data"].as_array().unwrap().len(), 1);
    let other = stripe.send(post("k1", "b@example.com")).await;
    assert_eq!(other.status, 400);
    assert_eq!(other.body["error"]["type"], "idempotency_error");
    let events = stripe.get("/v1/events", &[("type", "customer.created")]).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    assert_eq!(events["data"][0]["request"]["idempotency_key"], "k1");
    assert!(events["data"][0]["request"]["id"].as_str().unwrap().starts_with("req_"));
}

#[tokio::test]
async fn lists_page_newest_first_with_limit_starting_after_and_ending_before() {
    let stripe = stripe().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(id(&stripe.post("/v1/customers", &[("email", &format!("p{n}@example.com"))]).await));
    }
    ids.reverse();
    let ids_of = |list: &Value| list["data"].as_array().unwrap().iter().map(id).collect::<Vec<_>>();
    let first = stripe.get("/v1/customers", &[("limit", "2")]).await;
    assert_eq!(
        (ids_of(&first), first["has_more"].clone(), first["url"].clone()),
        (ids[..2].to_vec(), json!(true), json!("/v1/customers"))
    );
    let next = stripe.get("/v1/customers", &[("limit", "2"), ("starting_after", &ids[1])]).await;
    assert_eq!((ids_of(&next), next["has_more"].clone()), (ids[2..4].to_vec(), json!(true)));
    let last = stripe.get("/v1/customers", &[("limit", "2"), ("starting_after", &ids[3])]).await;
    assert_eq!((ids_of(&last), last["has_more"].clone()), (ids[4..].to_vec(), json!(false)));
    let back = stripe.get("/v1/customers", &[("limit", "2"), ("ending_before", &ids[4])]).await;
    assert_eq!((ids_of(&back), back["has_more"].clone()), (ids[2..4].to_vec(), json!(true)));
    let all = stripe.get("/v1/customers", &[]).await;
    assert_eq!(ids_of(&all), ids, "the default limit (10) holds all five");
    let by_email = stripe.get("/v1/customers", &[("email", "p3@example.com")]).await;
    assert_eq!(ids_of(&by_email), vec![ids[1].clone()]);
    for limit in ["0", "101"] {
        let answer = stripe.call(Method::GET, "/v1/customers", &[("limit", limit)]).await;
        assert_eq!((answer.status, answer.body["error"]["param"].clone()), (400, json!("limit")));
    }
}

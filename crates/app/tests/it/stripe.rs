//! Stripe's webhooks against devstack on the injected clock: checkout, renewal, failed renewal and grace,
//! cancellation, out-of-order and repeated events, refunds, disputes, tier changes, unverified accounts,
//! and the request budget. Payloads are Stripe's own example objects
//! (`testdata/stripe/events/fixture_objects.json`) with the fields each case is about set on them.

use crate::ledger::{clear_calls, entitlements, total_calls};
use crate::support::stripe::{checkout, event, fixture, secs, subscription};
use crate::support::{applied, context, TestContext};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use tollgate_app::role_sync::PlanUpdate;
use tollgate_app::stripe_ingest::NoStripeApi;
use tollgate_app::IngestOutcome;
use tollgate_core::{Clock, GuildId, RoleId, Secret};
use tollgate_devstack::discord_seed as seed;
use tollgate_providers::VerifiedEvent;

fn invoice(id: &str, subscription: &str, customer: &str, price: &str, end: DateTime<Utc>) -> Value {
    let mut inv = fixture("invoice");
    inv["id"] = json!(id);
    inv["customer"] = json!(customer);
    inv["parent"] = json!({"type": "subscription_details", "quote_details": null,
        "subscription_details": {"metadata": {}, "subscription": subscription}});
    let line = &mut inv["lines"]["data"][0];
    line["period"] = json!({"start": secs(end - Duration::days(30)), "end": secs(end)});
    line["pricing"] = json!({"type": "price_details", "unit_amount_decimal": "2000",
        "price_details": {"price": price, "product": "prod_1"}});
    inv
}

fn guild() -> GuildId {
    GuildId::parse(seed::GUILD_ID).unwrap()
}

/// Plans `pro` (price_pro) and `vip` (price_vip); `day` is a one-off plan lasting a day (price_day).
async fn catalogue(ctx: &TestContext) {
    for (plan, price, role, days) in [
        ("pro", "price_pro", seed::MEMBER_ROLE_ID, None),
        ("vip", "price_vip", seed::VIP_ROLE_ID, None),
        ("day", "price_day", seed::MEMBER_ROLE_ID, Some(1)),
    ] {
        let update = PlanUpdate {
            roles: Some(vec![RoleId::parse(role).unwrap()]),
            stripe_prices: Some(vec![price.to_owned()]),
            duration: days.map(|d| Some(Duration::days(d))),
            ..PlanUpdate::default()
        };
        ctx.app().set_plan(plan, guild(), &update).await.expect("plan");
    }
}

/// A context with the catalogue and a verified account `user` (`user@example.com`).
async fn with_buyer(user: &str) -> TestContext {
    let ctx = context().await;
    catalogue(&ctx).await;
    ctx.create_user(user, &format!("{user}@example.com")).await;
    ctx
}

async fn deliver(ctx: &TestContext, event: &VerifiedEvent) -> IngestOutcome {
    ctx.app().ingest_stripe(event, None::<&NoStripeApi>).await.expect("answered 2xx")
}

/// The subscription's entitlement as stored.
async fn stripe_entitlement(ctx: &TestContext, subscription: &str) -> Value {
    let source = format!("stripe-sub:{subscription}");
    entitlements(ctx).await.into_iter().find(|e| e["source"] == source.as_str()).expect("the entitlement")
}

fn ends_at(entitlement: &Value) -> Option<DateTime<Utc>> {
    entitlement["endsAt"].as_str().and_then(|raw| DateTime::parse_from_rfc3339(raw).ok()).map(|t| t.with_timezone(&Utc))
}

async fn has_access(ctx: &TestContext, user: &str) -> bool {
    ctx.project(user).await.access.has_access()
}

async fn plans_of(ctx: &TestContext, user: &str) -> Vec<String> {
    ctx.project(user).await.access.plans.keys().cloned().collect()
}

/// A verified buyer whose checkout (client_reference_id) and subscription `sub_{user}` are recorded: active,
/// a 30-day period from now.
async fn subscribed(ctx: &TestContext, user: &str) -> DateTime<Utc> {
    ctx.create_user(user, &format!("{user}@example.com")).await;
    let now = ctx.clock.now();
    let end = now + Duration::days(30);
    let (sub, cus) = (format!("sub_{user}"), format!("cus_{user}"));
    let created = subscription(&sub, &cus, "active", "price_pro", now, end);
    deliver(ctx, &event(&format!("evt_{user}_created"), "customer.subscription.created", now, created)).await;
    let cs = checkout(&format!("cs_{user}"), &sub, &cus, Some(user), &format!("{user}@example.com"));
    assert_eq!(
        deliver(ctx, &event(&format!("evt_{user}_checkout"), "checkout.session.completed", now, cs)).await,
        applied(user)
    );
    end
}

#[tokio::test]
async fn a_checkout_grants_the_plan_of_its_price_to_the_account_it_names() {
    let ctx = with_buyer("buyer").await;
    let now = ctx.clock.now();
    let cs = checkout("cs_1", "sub_1", "cus_1", Some("buyer"), "someone-else@example.com");
    // Same second, and the checkout's id sorts after the subscription event's: the checkout names the buyer
    // only, so the subscription's event is not stale.
    assert_eq!(deliver(&ctx, &event("evt_z", "checkout.session.completed", now, cs)).await, applied("buyer"));
    assert!(!has_access(&ctx, "buyer").await, "the subscription's status and plan come with its own event");
    let sub = subscription("sub_1", "cus_1", "active", "price_pro", now, now + Duration::days(30));
    assert_eq!(deliver(&ctx, &event("evt_a", "customer.subscription.created", now, sub)).await, applied("buyer"));
    assert_eq!(plans_of(&ctx, "buyer").await, ["pro"]);
    assert!(ctx.is_paid("buyer").await);
    let stored = stripe_entitlement(&ctx, "sub_1").await;
    assert_eq!(
        (
            &stored["provider"],
            &stored["orderId"],
            &stored["customerRef"],
            &stored["productRef"],
            &stored["providerStatus"]
        ),
        (&json!("stripe"), &json!("sub_1"), &json!("cus_1"), &json!("price_pro"), &json!("active"))
    );
    assert_eq!(stored["email"], "buyer@example.com", "the account's email: it bought from its account");

    // `tollgate lookup` and `/admin/users` show the Stripe facts of each entitlement.
    let entries = ctx.app().user_entitlements(&tollgate_core::AppwriteId::parse("buyer").unwrap()).await.unwrap();
    let shown = tollgate_app::lookup::entitlement_json(&entries[0], now, ctx.settings.access_grace);
    assert_eq!(
        (&shown["stripe"]["customer"], &shown["stripe"]["subscription"], &shown["stripe"]["status"]),
        (&json!("cus_1"), &json!("sub_1"), &json!("active"))
    );
    let period_end = shown["stripe"]["periodEnd"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    assert_eq!(period_end.map(|t| t.with_timezone(&Utc)), Some(now + Duration::days(30)));
}

#[tokio::test]
async fn a_subscription_event_before_its_checkout_waits_for_it_and_the_checkout_completes_it() {
    let ctx = with_buyer("early").await;
    let now = ctx.clock.now();
    let sub = subscription("sub_e", "cus_e", "active", "price_vip", now, now + Duration::days(30));
    assert_eq!(
        deliver(&ctx, &event("evt_e1", "customer.subscription.created", now, sub)).await,
        IngestOutcome::Pending
    );
    let paid = invoice("in_e", "sub_e", "cus_e", "price_vip", now + Duration::days(30));
    assert_eq!(deliver(&ctx, &event("evt_e2", "invoice.paid", now, paid)).await, IngestOutcome::Pending);
    let waiting = stripe_entitlement(&ctx, "sub_e").await;
    assert_eq!((waiting["userId"].clone(), waiting["plan"].clone()), (Value::Null, json!("vip")));
    // No client_reference_id: the customer's email names the (verified) account.
    let cs = checkout("cs_e", "sub_e", "cus_e", None, "Early@Example.com");
    assert_eq!(deliver(&ctx, &event("evt_e3", "checkout.session.completed", now, cs)).await, applied("early"));
    assert_eq!(plans_of(&ctx, "early").await, ["vip"]);
}

#[tokio::test]
async fn a_renewal_keeps_access_past_the_first_period_without_a_gap() {
    let ctx = context().await;
    catalogue(&ctx).await;
    let first_end = subscribed(&ctx, "renew").await;
    ctx.clock.advance(Duration::days(30));
    let now = ctx.clock.now();
    let second_end = first_end + Duration::days(30);
    let paid = invoice("in_r2", "sub_renew", "cus_renew", "price_pro", second_end);
    deliver(&ctx, &event("evt_r_paid", "invoice.paid", now, paid)).await;
    let updated = subscription("sub_renew", "cus_renew", "active", "price_pro", first_end, second_end);
    deliver(&ctx, &event("evt_r_updated", "customer.subscription.updated", now, updated)).await;
    for (step, total) in [(1, 1), (9, 10), (19, 29)] {
        ctx.clock.advance(Duration::days(step));
        assert!(has_access(&ctx, "renew").await, "access {total} days into the second period");
    }
    assert_eq!(ends_at(&stripe_entitlement(&ctx, "sub_renew").await), Some(second_end));
}

#[tokio::test]
async fn a_failed_renewal_keeps_access_through_the_grace_period_and_loses_it_after() {
    let ctx = context().await;
    catalogue(&ctx).await;
    let first_end = subscribed(&ctx, "late").await;
    ctx.clock.advance(Duration::days(30));
    let now = ctx.clock.now();
    let failed = invoice("in_l2", "sub_late", "cus_late", "price_pro", first_end + Duration::days(30));
    deliver(&ctx, &event("evt_l_failed", "invoice.payment_failed", now, failed)).await;
    let past_due =
        subscription("sub_late", "cus_late", "past_due", "price_pro", first_end, first_end + Duration::days(30));
    deliver(&ctx, &event("evt_l_past_due", "customer.subscription.updated", now, past_due)).await;
    assert_eq!(stripe_entitlement(&ctx, "sub_late").await["providerStatus"], "past_due");
    let grace = ctx.settings.access_grace;
    ctx.clock.advance(grace);
    assert!(has_access(&ctx, "late").await, "within grace (inclusive)");
    ctx.clock.advance(Duration::seconds(1));
    assert!(!has_access(&ctx, "late").await, "after grace");
    assert!(!ctx.is_paid("late").await);

    // The card is fixed and the invoice paid: access is back.
    let later = ctx.clock.now();
    let paid = invoice("in_l2", "sub_late", "cus_late", "price_pro", first_end + Duration::days(30));
    deliver(&ctx, &event("evt_l_paid", "invoice.paid", later, paid)).await;
    assert!(has_access(&ctx, "late").await);
}

#[tokio::test]
async fn a_deletion_delivered_before_an_older_update_ends_revoked() {
    let ctx = context().await;
    catalogue(&ctx).await;
    let end = subscribed(&ctx, "gone").await;
    let t1 = ctx.clock.now() + Duration::days(3);
    let t2 = t1 + Duration::minutes(5);
    ctx.clock.advance(Duration::days(4));
    let deleted = subscription("sub_gone", "cus_gone", "canceled", "price_pro", t1, end);
    deliver(&ctx, &event("evt_g_deleted", "customer.subscription.deleted", t2, deleted)).await;
    let older = subscription("sub_gone", "cus_gone", "active", "price_pro", t1, end + Duration::days(30));
    deliver(&ctx, &event("evt_g_updated", "customer.subscription.updated", t1, older)).await;
    let stored = stripe_entitlement(&ctx, "sub_gone").await;
    assert_eq!(
        (stored["revokeReason"].clone(), stored["providerStatus"].clone()),
        (json!("cancellation"), json!("canceled"))
    );
    assert_eq!(ends_at(&stored), Some(end), "the older update changed nothing");
    assert!(!has_access(&ctx, "gone").await);
    // Even a newer "active" (a stray event) does not undo a deletion.
    let stray = subscription("sub_gone", "cus_gone", "active", "price_pro", t1, end + Duration::days(30));
    deliver(&ctx, &event("evt_g_stray", "customer.subscription.updated", t2 + Duration::minutes(1), stray)).await;
    assert!(!has_access(&ctx, "gone").await);
}

#[tokio::test]
async fn every_event_delivered_twice_changes_nothing_the_second_time() {
    let ctx = with_buyer("twice").await;
    let now = ctx.clock.now();
    let events = [
        event(
            "evt_t1",
            "customer.subscription.created",
            now,
            subscription("sub_t", "cus_t", "active", "price_pro", now, now + Duration::days(30)),
        ),
        event(
            "evt_t2",
            "checkout.session.completed",
            now,
            checkout("cs_t", "sub_t", "cus_t", Some("twice"), "twice@example.com"),
        ),
        event("evt_t3", "invoice.paid", now, invoice("in_t", "sub_t", "cus_t", "price_pro", now + Duration::days(30))),
    ];
    for e in &events {
        deliver(&ctx, e).await;
    }
    let before = stripe_entitlement(&ctx, "sub_t").await;
    for e in &events {
        assert_eq!(deliver(&ctx, e).await, IngestOutcome::Duplicate);
    }
    assert_eq!(stripe_entitlement(&ctx, "sub_t").await, before);
}

#[tokio::test]
async fn a_refund_revokes_and_a_later_renewal_does_not_give_access_back() {
    let ctx = context().await;
    catalogue(&ctx).await;
    subscribed(&ctx, "refunded").await;
    let now = ctx.clock.now() + Duration::minutes(10);
    ctx.clock.advance(Duration::minutes(10));
    let mut charge = fixture("charge");
    charge["customer"] = json!("cus_refunded");
    charge["refunded"] = json!(true);
    charge["amount_refunded"] = charge["amount"].clone();
    assert_eq!(deliver(&ctx, &event("evt_rf", "charge.refunded", now, charge)).await, applied("refunded"));
    assert!(!has_access(&ctx, "refunded").await);
    assert_eq!(stripe_entitlement(&ctx, "sub_refunded").await["revokeReason"], "refund");
    let renewal = invoice("in_rf2", "sub_refunded", "cus_refunded", "price_pro", now + Duration::days(60));
    deliver(&ctx, &event("evt_rf_paid", "invoice.paid", now + Duration::minutes(1), renewal)).await;
    assert!(!has_access(&ctx, "refunded").await);
}

#[tokio::test]
async fn a_dispute_revokes_a_won_dispute_restores_and_a_lost_one_stays_revoked() {
    let ctx = with_buyer("disputer").await;
    let now = ctx.clock.now();
    for (n, intent) in [(1, "pi_won"), (2, "pi_lost")] {
        let mut cs = fixture("checkout.session");
        cs["id"] = json!(format!("cs_pay{n}"));
        cs["payment_status"] = json!("paid");
        cs["payment_intent"] = json!(intent);
        cs["client_reference_id"] = json!("disputer");
        cs["metadata"] = json!({"price": "price_day"});
        assert_eq!(
            deliver(&ctx, &event(&format!("evt_pay{n}"), "checkout.session.completed", now, cs)).await,
            applied("disputer")
        );
    }
    let all = entitlements(&ctx).await;
    assert!(all.iter().all(|e| e["plan"] == "day" && ends_at(e) == Some(now + Duration::days(1))), "{all:?}");
    let dispute = |intent: &str, status: &str| {
        let mut d = fixture("dispute");
        d["payment_intent"] = json!(intent);
        d["status"] = json!(status);
        d
    };
    for (n, intent) in [(1, "pi_won"), (2, "pi_lost")] {
        let created = event(
            &format!("evt_dp{n}"),
            "charge.dispute.created",
            now + Duration::minutes(1),
            dispute(intent, "needs_response"),
        );
        deliver(&ctx, &created).await;
    }
    assert!(!has_access(&ctx, "disputer").await, "both payments disputed");
    let won = event("evt_won", "charge.dispute.closed", now + Duration::minutes(2), dispute("pi_won", "won"));
    let lost = event("evt_lost", "charge.dispute.closed", now + Duration::minutes(2), dispute("pi_lost", "lost"));
    deliver(&ctx, &won).await;
    deliver(&ctx, &lost).await;
    let project = ctx.project("disputer").await;
    assert_eq!(project.access.plans["day"].sources, ["stripe-pay:cs_pay1"], "the won one only");
}

#[tokio::test]
async fn a_price_change_in_an_update_moves_the_plan() {
    let ctx = context().await;
    catalogue(&ctx).await;
    let end = subscribed(&ctx, "tier").await;
    assert_eq!(plans_of(&ctx, "tier").await, ["pro"]);
    let now = ctx.clock.now() + Duration::hours(1);
    ctx.clock.advance(Duration::hours(1));
    let upgraded = subscription("sub_tier", "cus_tier", "active", "price_vip", now, end);
    deliver(&ctx, &event("evt_tier_up", "customer.subscription.updated", now, upgraded)).await;
    assert_eq!(plans_of(&ctx, "tier").await, ["vip"]);
    assert_eq!(stripe_entitlement(&ctx, "sub_tier").await["productRef"], "price_vip");
}

#[tokio::test]
async fn an_account_that_has_not_verified_its_email_gets_nothing_until_it_does() {
    let ctx = context().await;
    catalogue(&ctx).await;
    ctx.create_unverified_user("unverified", "unverified@example.com").await;
    let now = ctx.clock.now();
    let cs = checkout("cs_u", "sub_u", "cus_u", Some("unverified"), "unverified@example.com");
    assert_eq!(deliver(&ctx, &event("evt_u1", "checkout.session.completed", now, cs)).await, IngestOutcome::Pending);
    let sub = subscription("sub_u", "cus_u", "active", "price_pro", now, now + Duration::days(30));
    assert_eq!(
        deliver(&ctx, &event("evt_u2", "customer.subscription.created", now, sub)).await,
        IngestOutcome::Pending
    );
    assert!(!has_access(&ctx, "unverified").await);
    ctx.verify_email("unverified").await;
    let user = ctx.user("unverified").await;
    assert_eq!(ctx.app().claim_pending_for_user(&user).await.expect("claim"), 1);
    assert_eq!(plans_of(&ctx, "unverified").await, ["pro"]);
}

#[tokio::test]
async fn an_unmapped_price_is_recorded_and_applied_by_the_retry_once_a_plan_lists_it() {
    let ctx = with_buyer("unmapped").await;
    let now = ctx.clock.now();
    let cs = checkout("cs_x", "sub_x", "cus_x", Some("unmapped"), "unmapped@example.com");
    deliver(&ctx, &event("evt_x1", "checkout.session.completed", now, cs)).await;
    let sub = subscription("sub_x", "cus_x", "active", "price_new", now, now + Duration::days(30));
    let outcome = deliver(&ctx, &event("evt_x2", "customer.subscription.created", now, sub)).await;
    assert_eq!(outcome, IngestOutcome::FailureRecorded { code: "stripe_price_unmapped", retryable: true });
    let update =
        PlanUpdate { stripe_prices: Some(vec!["price_vip".into(), "price_new".into()]), ..PlanUpdate::default() };
    ctx.app().set_plan("vip", guild(), &update).await.expect("plan");
    ctx.clock.advance(Duration::hours(1));
    let report = ctx.app().retry_due_failures(10).await.expect("retries");
    assert_eq!(report.settled, 1, "{report:?}");
    assert_eq!(plans_of(&ctx, "unmapped").await, ["vip"]);
}

#[tokio::test]
async fn an_ignored_type_writes_nothing_and_a_subscription_event_costs_few_appwrite_calls() {
    let ctx = with_buyer("budget").await;
    let now = ctx.clock.now();
    clear_calls(&ctx).await;
    let other = event("evt_plan", "plan.created", now, fixture("event")["data"]["object"].clone());
    assert_eq!(deliver(&ctx, &other).await, IngestOutcome::Ignored { event: Some("plan.created".into()) });
    assert_eq!(total_calls(&ctx).await, 0, "nothing read or written");

    // An authentic body that is not a Stripe event is a failure for an admin, never "no access".
    let mut no_status = subscription("sub_bad", "cus_bad", "active", "price_pro", now, now + Duration::days(30));
    no_status.as_object_mut().unwrap().remove("status");
    let outcome = deliver(&ctx, &event("evt_bad", "customer.subscription.updated", now, no_status)).await;
    assert_eq!(outcome, IngestOutcome::FailureRecorded { code: "unknown_stripe_shape", retryable: false });
    clear_calls(&ctx).await;

    let cs = checkout("cs_b", "sub_b", "cus_b", Some("budget"), "budget@example.com");
    deliver(&ctx, &event("evt_b1", "checkout.session.completed", now, cs)).await;
    let checkout_calls = total_calls(&ctx).await;
    clear_calls(&ctx).await;
    let sub = event(
        "evt_b2",
        "customer.subscription.created",
        now,
        subscription("sub_b", "cus_b", "active", "price_pro", now, now + Duration::days(30)),
    );
    deliver(&ctx, &sub).await;
    let subscription_calls = total_calls(&ctx).await;
    clear_calls(&ctx).await;
    assert_eq!(deliver(&ctx, &sub).await, IngestOutcome::Duplicate);
    let duplicate_calls = total_calls(&ctx).await;
    println!("budget: checkout {checkout_calls}, subscription event {subscription_calls}, duplicate {duplicate_calls}");
    // checkout: claim, user, entitlement read + create, job PATCH (404) + create, complete.
    assert!(checkout_calls <= 7, "{checkout_calls}");
    // subscription: claim, catalogue, entitlement read + update, job PATCH, complete.
    assert!(subscription_calls <= 6, "{subscription_calls}");
    assert_eq!(duplicate_calls, 2);
}

/// The Stripe stand-in's API, form-encoded with the account's key.
async fn stand_in(ctx: &TestContext, method: reqwest::Method, path: &str, params: &[(&str, &str)]) -> Value {
    let url = format!("{}{path}", ctx.devstack.stripe_base_url());
    let request = reqwest::Client::new().request(method.clone(), url).bearer_auth(ctx.devstack.stripe_secret_key());
    let request = if method == reqwest::Method::POST { request.form(params) } else { request.query(params) };
    let response = request.send().await.expect("the stand-in answers");
    assert!(response.status().is_success(), "{method} {path}: {}", response.status());
    response.json().await.expect("json")
}

fn api(ctx: &TestContext) -> tollgate_app::billing::StripeApi {
    tollgate_app::billing::StripeApi::new(tollgate_app::billing::StripeConfig {
        api_base: ctx.devstack.stripe_base_url(),
        api_key: Secret::new(ctx.devstack.stripe_secret_key()),
    })
    .expect("client")
}

/// A customer with `email` and an active subscription to a new monthly price mapped to `pro`, created
/// through the stand-in's API: (customer, subscription).
async fn live_subscription(ctx: &TestContext, email: &str) -> (String, String) {
    let post = reqwest::Method::POST;
    let product = stand_in(ctx, post.clone(), "/v1/products", &[("name", "Pro")]).await;
    let product = product["id"].as_str().unwrap();
    let price = stand_in(
        ctx,
        post.clone(),
        "/v1/prices",
        &[("product", product), ("currency", "usd"), ("unit_amount", "1000"), ("recurring[interval]", "month")],
    )
    .await;
    let price = price["id"].as_str().unwrap().to_owned();
    let update = PlanUpdate { stripe_prices: Some(vec![price.clone()]), ..PlanUpdate::default() };
    ctx.app().set_plan("pro", guild(), &update).await.expect("plan");
    let customer = stand_in(ctx, post.clone(), "/v1/customers", &[("email", email)]).await;
    let customer = customer["id"].as_str().unwrap().to_owned();
    let card = stand_in(ctx, post.clone(), "/v1/payment_methods/pm_card_visa/attach", &[("customer", &customer)]).await;
    let sub = stand_in(
        ctx,
        post,
        "/v1/subscriptions",
        &[
            ("customer", &customer),
            ("items[0][price]", &price),
            ("default_payment_method", card["id"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(sub["status"], "active");
    (customer, sub["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn with_the_stripe_api_the_subscription_read_from_stripe_is_the_truth_and_its_customer_names_the_buyer() {
    let ctx = with_buyer("api").await;
    let (customer, sub) = live_subscription(&ctx, "api@example.com").await;
    let api = api(&ctx);
    let now = ctx.clock.now();
    // A stale event (past_due, an old period): Stripe's own object says active, and that is recorded. No
    // checkout was seen: the customer's email names the (verified) account.
    let stale =
        subscription(&sub, &customer, "past_due", "price_pro", now - Duration::days(60), now - Duration::days(30));
    let outcome =
        ctx.app().ingest_stripe(&event("evt_api1", "customer.subscription.updated", now, stale), Some(&api)).await;
    assert_eq!(outcome, Ok(applied("api")));
    let stored = stripe_entitlement(&ctx, &sub).await;
    assert_eq!((stored["providerStatus"].clone(), stored["plan"].clone()), (json!("active"), json!("pro")));
    assert!(has_access(&ctx, "api").await);

    // Cancelled at Stripe; an older "active" event arrives afterwards: the API says canceled.
    stand_in(&ctx, reqwest::Method::DELETE, &format!("/v1/subscriptions/{sub}"), &[]).await;
    ctx.clock.advance(Duration::minutes(5));
    let older = subscription(&sub, &customer, "active", "price_pro", now, now + Duration::days(30));
    let late = event("evt_api0", "customer.subscription.updated", now - Duration::minutes(1), older);
    assert_eq!(ctx.app().ingest_stripe(&late, Some(&api)).await, Ok(applied("api")));
    assert_eq!(stripe_entitlement(&ctx, &sub).await["revokeReason"], "cancellation");
    assert!(!has_access(&ctx, "api").await);
}

#[tokio::test]
async fn a_dispute_of_a_subscription_payment_is_traced_to_its_customer_through_the_stripe_api() {
    let ctx = with_buyer("traced").await;
    let (customer, sub) = live_subscription(&ctx, "traced@example.com").await;
    let api = api(&ctx);
    let now = ctx.clock.now();
    let live = subscription(&sub, &customer, "active", "price_pro", now, now + Duration::days(30));
    ctx.app().ingest_stripe(&event("evt_tr1", "customer.subscription.created", now, live), Some(&api)).await.unwrap();
    assert!(has_access(&ctx, "traced").await);
    // The first invoice's charge, as Stripe lists it for the customer: its payment intent is all a dispute names.
    let charges = stand_in(&ctx, reqwest::Method::GET, "/v1/charges", &[("customer", &customer)]).await;
    let intent = charges["data"][0]["payment_intent"].as_str().expect("the charge's payment intent").to_owned();
    let mut dispute = fixture("dispute");
    dispute["payment_intent"] = json!(intent);
    let created = event("evt_tr2", "charge.dispute.created", now + Duration::minutes(1), dispute.clone());
    // Without the API the dispute cannot be traced yet: recorded and retried, never dropped.
    assert_eq!(
        deliver(&ctx, &created).await,
        IngestOutcome::FailureRecorded { code: "stripe_payment_unknown", retryable: true }
    );
    assert_eq!(ctx.app().ingest_stripe(&created, Some(&api)).await, Ok(applied("traced")));
    assert_eq!(stripe_entitlement(&ctx, &sub).await["revokeReason"], "dispute");
    assert!(!has_access(&ctx, "traced").await);
    dispute["status"] = json!("won");
    let won = event("evt_tr3", "charge.dispute.closed", now + Duration::minutes(2), dispute);
    assert_eq!(ctx.app().ingest_stripe(&won, Some(&api)).await, Ok(applied("traced")));
    assert!(has_access(&ctx, "traced").await, "a won dispute restores");
}

#[tokio::test]
async fn a_stripe_delivery_cut_after_its_claim_is_finished_by_the_inbox_sweep() {
    let ctx = with_buyer("swept").await;
    let now = ctx.clock.now();
    let sub = subscription("sub_s", "cus_s", "active", "price_pro", now, now + Duration::days(30));
    assert_eq!(
        deliver(&ctx, &event("evt_s1", "customer.subscription.created", now, sub)).await,
        IngestOutcome::Pending
    );
    // Reading the account the checkout names hangs past the deadline: cut after the claim.
    ctx.set_faults(json!({"rate": 1.0, "paths": ["/v1/users"], "delay_ms": 3000})).await;
    let cs = event(
        "evt_s2",
        "checkout.session.completed",
        now,
        checkout("cs_s", "sub_s", "cus_s", Some("swept"), "swept@example.com"),
    );
    let deadline = tokio::time::sleep(std::time::Duration::from_millis(300));
    let cut = ctx.app().ingest_stripe_within(&cs, None::<&NoStripeApi>, deadline).await;
    assert_eq!(cut, Ok(IngestOutcome::Accepted));
    ctx.set_faults(json!({"rate": 0})).await;
    assert!(!has_access(&ctx, "swept").await);

    ctx.clock.advance(Duration::seconds(tollgate_app::inbox::STALE_CLAIM_AFTER_SECS + 1));
    let report = ctx.app().sweep_stale_claims(tollgate_app::scheduled::SWEEPS_PER_RUN).await.expect("sweep");
    assert_eq!((report.found, report.finished, report.failed), (1, 1, 0));
    assert_eq!(report.users, [tollgate_core::AppwriteId::parse("swept").unwrap()]);
    assert_eq!(plans_of(&ctx, "swept").await, ["pro"]);
    assert_eq!(deliver(&ctx, &cs).await, IngestOutcome::Duplicate);
}

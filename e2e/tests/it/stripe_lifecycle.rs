//! The Stripe lifecycle end to end, driven only through the Stripe stand-in's API (devstack): buyers pay on
//! its hosted checkout page, its test clocks renew and fail renewals, refunds and disputes are made through
//! it, and every webhook the workers see is one the stand-in sent and signed, to the endpoint `cargo xtask
//! dev` registers. Run in both modes: with `STRIPE_API_KEY` (the subscription read from Stripe is the truth)
//! and without (event order decides).
//!
//! Tollgate derives access with the real clock, while the stand-in's subscriptions live on test clocks; each
//! stage is therefore placed so that the moment it is about falls next to the real now (a trial that ends in
//! a week, a last paid moment nine days ago for "after the grace period").

use crate::support::*;
use serde_json::Value;
use tollgate_app::role_sync::PlanUpdate;
use tollgate_core::{GuildId, RoleId};
use tollgate_devstack::discord_seed as seed;

const DAY: i64 = 86_400;

/// A client of the stand-in's Stripe API, as a merchant's code (or Stripe's dashboard) would call it.
struct StandIn<'a> {
    app: &'a TestApp,
    /// The buyer's browser: it stops at the hosted page's redirect to the merchant's success URL.
    browser: reqwest::Client,
}

impl StandIn<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.devstack.stripe_base_url())
    }

    async fn post(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let response = self
            .app
            .http
            .post(self.url(path))
            .bearer_auth(self.app.devstack.stripe_secret_key())
            .form(params)
            .send()
            .await
            .expect("the stand-in answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path} {params:?}: {status} {body}");
        body
    }

    async fn get(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let response = self
            .app
            .http
            .get(self.url(path))
            .bearer_auth(self.app.devstack.stripe_secret_key())
            .query(params)
            .send()
            .await
            .expect("the stand-in answers");
        assert!(response.status().is_success(), "GET {path}");
        response.json().await.unwrap()
    }

    async fn clock(&self, frozen_time: i64) -> String {
        id(&self.post("/v1/test_helpers/test_clocks", &[("frozen_time", &frozen_time.to_string())]).await)
    }

    async fn advance(&self, clock: &str, to: i64) {
        self.post(&format!("/v1/test_helpers/test_clocks/{clock}/advance"), &[("frozen_time", &to.to_string())]).await;
        let ready = self.get(&format!("/v1/test_helpers/test_clocks/{clock}"), &[]).await;
        assert_eq!(ready["status"], "ready");
    }

    /// A minute passes on the clock: what the buyer or merchant does next is dated after what came before
    /// (without Stripe's API, event order is by `created` seconds, and a frozen clock would date every
    /// action the same second).
    async fn tick(&self, clock: &str) {
        let now =
            self.get(&format!("/v1/test_helpers/test_clocks/{clock}"), &[]).await["frozen_time"].as_i64().unwrap();
        self.advance(clock, now + 60).await;
    }

    async fn customer(&self, email: &str, clock: &str) -> String {
        id(&self.post("/v1/customers", &[("email", email), ("test_clock", clock)]).await)
    }

    /// A checkout session for `price`, completed on the hosted page with `card`, as the buyer would.
    async fn buy(&self, customer: &str, user: &str, price: &str, card: &str, trial_days: Option<u32>) -> String {
        let trial = trial_days.map(|d| d.to_string());
        let mut params = vec![
            ("mode", "subscription"),
            ("customer", customer),
            ("line_items[0][price]", price),
            ("line_items[0][quantity]", "1"),
            ("client_reference_id", user),
            ("success_url", "http://127.0.0.1:3000/access?checkout=done"),
            ("cancel_url", "http://127.0.0.1:3000/access"),
        ];
        if let Some(days) = &trial {
            params.push(("subscription_data[trial_period_days]", days));
        }
        let session = self.post("/v1/checkout/sessions", &params).await;
        let page = session["url"].as_str().expect("a hosted page").to_owned();
        let email = self.get(&format!("/v1/customers/{customer}"), &[]).await["email"].as_str().unwrap().to_owned();
        if card != "pm_card_visa" {
            let declined =
                self.browser.post(&page).form(&[("email", email.as_str()), ("card", "pm_card_chargeCustomerFail")]);
            assert_eq!(declined.send().await.unwrap().status(), 402, "a declined card on the hosted page");
        }
        let paid = self.browser.post(&page).form(&[("email", email.as_str()), ("card", card)]).send().await.unwrap();
        assert!(paid.status().is_redirection(), "paying on the hosted page with {card}: {}", paid.status());
        let session = self.get(&format!("/v1/checkout/sessions/{}", id(&session)), &[]).await;
        session["subscription"].as_str().expect("the session's subscription").to_owned()
    }

    async fn subscription(&self, id: &str) -> Value {
        self.get(&format!("/v1/subscriptions/{id}"), &[]).await
    }

    /// The buyer changes their card (then a minute passes, so what follows is dated after it).
    async fn use_card(&self, clock: &str, customer: &str, subscription: &str, card: &str) {
        let method = id(&self.post(&format!("/v1/payment_methods/{card}/attach"), &[("customer", customer)]).await);
        self.post(&format!("/v1/customers/{customer}"), &[("invoice_settings[default_payment_method]", &method)]).await;
        self.post(&format!("/v1/subscriptions/{subscription}"), &[("default_payment_method", &method)]).await;
        self.tick(clock).await;
    }

    async fn price(&self, name: &str, amount: &str) -> String {
        let product = id(&self.post("/v1/products", &[("name", name)]).await);
        id(&self
            .post(
                "/v1/prices",
                &[
                    ("product", &product),
                    ("currency", "usd"),
                    ("unit_amount", amount),
                    ("recurring[interval]", "month"),
                ],
            )
            .await)
    }
}

fn id(object: &Value) -> String {
    object["id"].as_str().expect("an object with an id").to_owned()
}

fn period_end(subscription: &Value) -> i64 {
    subscription["items"]["data"][0]["current_period_end"].as_i64().expect("the item's period")
}

/// The stand-in's delivery log (`/_devstack/stripe/deliveries`).
fn deliveries_of(answer: &Value) -> Vec<Value> {
    answer.as_array().or_else(|| answer["data"].as_array()).cloned().unwrap_or_default()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Waits until the stand-in has delivered every event it emitted (none pending or held).
async fn delivered(app: &TestApp) {
    let url = format!("{}/_devstack/stripe/deliveries", app.devstack.stripe_base_url());
    app.eventually("every Stripe event delivered", || async {
        let list = deliveries_of(&app.http.get(&url).send().await.unwrap().json().await.unwrap());
        list.iter().all(|d| d["state"] == "delivered")
    })
    .await;
}

/// The ledger's entitlement of a Stripe subscription, once it says `status`. Without Stripe's API, two
/// events of the same second (a renewal's `invoice.paid` and `customer.subscription.updated`) are ordered by
/// event id, so the status shown may be the invoice's view of the same moment: then only the deliveries
/// are awaited, and the access checks that follow decide.
async fn entitlement_says(app: &TestApp, api_mode: bool, subscription: &str, status: &str) {
    if !api_mode {
        return delivered(app).await;
    }
    let source = format!("stripe-sub:{subscription}");
    let find = || async {
        app.documents("entitlements").await.into_iter().find(|e| e["source"] == source).unwrap_or_default()
    };
    app.eventually(&format!("{source} recorded as {status}"), || async { find().await["providerStatus"] == status })
        .await;
}

async fn lifecycle(api_mode: bool) {
    let key_override = [("STRIPE_API_KEY", "")];
    let app = spawn_app_with(if api_mode { &[] } else { &key_override }).await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let stripe = StandIn { app: &app, browser };
    let price = app.stripe_price.clone();

    // 1. Trial → paid → renewal. The trial started yesterday and ends in six days.
    app.create_user("ana", "ana@example.com").await;
    let t0 = now() - DAY;
    let clock = stripe.clock(t0).await;
    let ana = stripe.customer("ana@example.com", &clock).await;
    let sub = stripe.buy(&ana, "ana", &price, "pm_card_visa", Some(7)).await;
    assert_eq!(stripe.subscription(&sub).await["status"], "trialing");
    entitlement_says(&app, api_mode, &sub, "trialing").await;
    app.projected("ana", "active").await;
    stripe.advance(&clock, t0 + 7 * DAY + 3_600).await;
    let paid = stripe.subscription(&sub).await;
    assert_eq!(paid["status"], "active", "the trial ended and the first invoice was paid");
    let first_end = period_end(&paid);
    app.eventually("the paid period on the ledger", || async {
        let source = format!("stripe-sub:{sub}");
        let docs = app.documents("entitlements").await;
        let e = docs.iter().find(|e| e["source"] == source).cloned().unwrap_or_default();
        e["endsAt"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp())
            == Some(first_end)
    })
    .await;
    stripe.advance(&clock, first_end + 3_600).await;
    let renewed = stripe.subscription(&sub).await;
    assert!(period_end(&renewed) > first_end, "renewed: {renewed}");
    app.eventually("the renewal on the ledger", || async {
        let source = format!("stripe-sub:{sub}");
        app.documents("entitlements").await.iter().any(|e| {
            e["source"] == source
                && e["endsAt"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp())
                    == Some(period_end(&renewed))
        })
    })
    .await;
    app.projected("ana", "active").await;

    // 2. A failed renewal: past_due keeps access (the last paid moment is still ahead).
    stripe.tick(&clock).await;
    stripe.use_card(&clock, &ana, &sub, "pm_card_chargeCustomerFail").await;
    stripe.advance(&clock, period_end(&renewed) + 3_600).await;
    assert_eq!(stripe.subscription(&sub).await["status"], "past_due");
    entitlement_says(&app, api_mode, &sub, "past_due").await;
    app.projected("ana", "active").await;

    // 3. A tier change moves the roles: ana links Discord, holds the member roles, then switches to VIP.
    let alice = seed::TEST_USERS[0].0;
    stripe.tick(&clock).await;
    stripe.use_card(&clock, &ana, &sub, "pm_card_visa").await;
    let open = stripe.get("/v1/invoices", &[("subscription", &sub), ("status", "open")]).await;
    stripe.post(&format!("/v1/invoices/{}/pay", id(&open["data"][0])), &[]).await;
    entitlement_says(&app, api_mode, &sub, "active").await;
    let guild = GuildId::parse(seed::GUILD_ID).unwrap();
    let vip_price = stripe.price("VIP", "2500").await;
    let fixed = tollgate_core::FixedClock::at(Default::default());
    let plans = tollgate_app::App::new(&app.client, &app.settings, &fixed);
    let member_role = RoleId::parse(seed::MEMBER_ROLE_ID).unwrap();
    let vip_role = RoleId::parse(seed::VIP_ROLE_ID).unwrap();
    plans
        .set_plan(PLAN, guild, &PlanUpdate { roles: Some(vec![member_role]), ..PlanUpdate::default() })
        .await
        .expect("member: the Member role");
    plans
        .set_plan(
            "vip",
            guild,
            &PlanUpdate {
                roles: Some(vec![vip_role]),
                stripe_prices: Some(vec![vip_price.clone()]),
                ..PlanUpdate::default()
            },
        )
        .await
        .expect("vip: the VIP role and its price");
    app.join_guild(alice).await;
    app.link_discord("ana", alice).await;
    app.trigger_role_sync_cron().await;
    app.eventually("ana's member role", || async {
        app.member_roles(alice).await == Some(vec![seed::MEMBER_ROLE_ID.to_owned()])
    })
    .await;
    let item = stripe.subscription(&sub).await["items"]["data"][0]["id"].as_str().unwrap().to_owned();
    stripe.tick(&clock).await;
    stripe
        .post(
            &format!("/v1/subscriptions/{sub}"),
            &[("items[0][id]", &item), ("items[0][price]", &vip_price), ("proration_behavior", "none")],
        )
        .await;
    app.eventually("the entitlement moved to vip", || async {
        let source = format!("stripe-sub:{sub}");
        app.documents("entitlements").await.iter().any(|e| e["source"] == source && e["plan"] == "vip")
    })
    .await;
    app.trigger_role_sync_cron().await;
    app.eventually("ana's VIP role instead", || async {
        app.member_roles(alice).await == Some(vec![seed::VIP_ROLE_ID.to_owned()])
    })
    .await;

    // 4. Cancel at period end: access until then, none after.
    stripe.tick(&clock).await;
    let cancelling = stripe.post(&format!("/v1/subscriptions/{sub}"), &[("cancel_at_period_end", "true")]).await;
    assert_eq!(cancelling["status"], "active");
    app.eventually("the cancellation seen", || async {
        let source = format!("stripe-sub:{sub}");
        app.documents("entitlements").await.iter().any(|e| e["source"] == source && e["revokedAt"].is_null())
    })
    .await;
    app.projected("ana", "active").await;
    stripe.advance(&clock, period_end(&cancelling) + 60).await;
    assert_eq!(stripe.subscription(&sub).await["status"], "canceled");
    app.projected("ana", "inactive").await;
    app.trigger_role_sync_cron().await;
    app.eventually("ana's roles gone", || async { app.member_roles(alice).await == Some(vec![]) }).await;

    // 5. After the grace period: ben's last paid moment was nine days ago and his renewal failed.
    app.create_user("ben", "ben@example.com").await;
    let t1 = now() - 40 * DAY;
    let ben_clock = stripe.clock(t1).await;
    let ben = stripe.customer("ben@example.com", &ben_clock).await;
    // A declined card leaves the hosted page open (402) and creates nothing; the buyer pays with another.
    let ben_sub = stripe.buy(&ben, "ben", &price, "pm_card_visa", None).await;
    let ben_paid = stripe.subscription(&ben_sub).await;
    assert_eq!(ben_paid["status"], "active");
    stripe.tick(&ben_clock).await;
    stripe.use_card(&ben_clock, &ben, &ben_sub, "pm_card_chargeCustomerFail").await;
    stripe.advance(&ben_clock, period_end(&ben_paid) + 3_600).await;
    assert_eq!(stripe.subscription(&ben_sub).await["status"], "past_due");
    entitlement_says(&app, api_mode, &ben_sub, "past_due").await;
    app.projected("ben", "inactive").await;
    // The card is fixed and the invoice paid: access again, to the new period's end.
    stripe.tick(&ben_clock).await;
    stripe.use_card(&ben_clock, &ben, &ben_sub, "pm_card_visa").await;
    let open = stripe.get("/v1/invoices", &[("subscription", &ben_sub), ("status", "open")]).await;
    stripe.post(&format!("/v1/invoices/{}/pay", id(&open["data"][0])), &[]).await;
    assert_eq!(stripe.subscription(&ben_sub).await["status"], "active");
    entitlement_says(&app, api_mode, &ben_sub, "active").await;
    app.projected("ben", "active").await;

    // 6. A refund revokes.
    stripe.tick(&ben_clock).await;
    let invoices = stripe.get("/v1/invoices", &[("subscription", &ben_sub), ("status", "paid")]).await;
    let intent = invoices["data"][0]["payment_intent"].as_str().map(str::to_owned);
    let charge = invoices["data"][0]["charge"].as_str().map(str::to_owned);
    match (intent, charge) {
        (Some(intent), _) => stripe.post("/v1/refunds", &[("payment_intent", &intent)]).await,
        (None, Some(charge)) => stripe.post("/v1/refunds", &[("charge", &charge)]).await,
        (None, None) => {
            let payments = stripe.get("/v1/charges", &[("customer", &ben)]).await;
            stripe.post("/v1/refunds", &[("charge", &id(&payments["data"][0]))]).await
        }
    };
    app.projected("ben", "inactive").await;

    // 7. A dispute revokes; the merchant wins it and access comes back.
    app.create_user("cleo", "cleo@example.com").await;
    let cleo_clock = stripe.clock(now()).await;
    let cleo = stripe.customer("cleo@example.com", &cleo_clock).await;
    let cleo_sub = stripe.buy(&cleo, "cleo", &price, "pm_card_createDispute", None).await;
    let disputes = stripe.get("/v1/disputes", &[]).await;
    let dispute = disputes["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["status"] != "won" && d["status"] != "lost")
        .cloned()
        .expect("the dispute opened by pm_card_createDispute");
    // The stand-in opens the dispute with the first charge, so its event can arrive before the checkout's:
    // it is then recorded as a failure (nothing to revoke yet) and the cron's retry applies it.
    app.eventually("the dispute delivered", || async {
        let list: Value =
            app.http.get(stripe.url("/_devstack/stripe/deliveries")).send().await.unwrap().json().await.unwrap();
        deliveries_of(&list).iter().any(|d| d["type"] == "charge.dispute.created" && d["state"] == "delivered")
    })
    .await;
    // A cron run retries what fits its subrequest budget (two on Free's default): a few runs retry them all.
    for _ in 0..3 {
        for failure in app.documents("webhook_failures").await {
            if failure["state"] == "due" {
                app.let_backoff_pass(failure["$id"].as_str().unwrap()).await;
            }
        }
        app.trigger_scheduled().await;
    }
    if !api_mode {
        // A dispute names a charge and a payment intent, not a customer or a subscription; without Stripe's
        // API nothing ties it to the subscription it disputes. It is never dropped: it stays a failure an
        // admin sees (and the cron retries), and a replay after STRIPE_API_KEY is set applies it.
        let open: Vec<_> =
            app.documents("webhook_failures").await.into_iter().filter(|f| f["state"] != "settled").collect();
        assert!(
            open.len() == 1
                && open[0]["event"] == "charge.dispute.created"
                && open[0]["errorCode"] == "stripe_payment_unknown"
                && open[0]["state"] == "due",
            "only the untraceable dispute is left, kept for a retry or an admin: {open:?}"
        );
        return all_delivered(&stripe).await;
    }
    app.eventually("cleo's subscription revoked by the dispute", || async {
        let source = format!("stripe-sub:{cleo_sub}");
        app.documents("entitlements").await.iter().any(|e| e["source"] == source && !e["revokedAt"].is_null())
    })
    .await;
    app.projected("cleo", "inactive").await;
    stripe.tick(&cleo_clock).await;
    stripe
        .post(&format!("/v1/disputes/{}", id(&dispute)), &[("evidence[uncategorized_text]", "winning_evidence")])
        .await;
    app.projected("cleo", "active").await;

    // Every failure along the way was settled, and every delivery the stand-in made was answered 2xx.
    let unsettled: Vec<_> =
        app.documents("webhook_failures").await.into_iter().filter(|f| f["state"] != "settled").collect();
    assert!(unsettled.is_empty(), "unsettled failures: {unsettled:?}");
    all_delivered(&stripe).await;
}

async fn all_delivered(stripe: &StandIn<'_>) {
    let deliveries = stripe.app.http.get(stripe.url("/_devstack/stripe/deliveries")).send().await.unwrap();
    let list = deliveries_of(&deliveries.json().await.unwrap());
    assert!(list.len() > 20, "the stand-in delivered the lifecycle's events: {list:?}");
    let undelivered: Vec<_> = list.iter().filter(|d| d["state"] != "delivered").collect();
    assert!(undelivered.is_empty(), "every delivery answered 2xx: {undelivered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stripe_lifecycle_through_the_stand_in_with_stripe_as_the_truth() {
    lifecycle(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stripe_lifecycle_through_the_stand_in_in_event_order() {
    lifecycle(false).await;
}

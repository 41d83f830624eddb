//! A customer's own billing actions against devstack's Stripe stand-in, for a customer with no subscription,
//! an active one, a past_due one and a canceled one: what each action asks Stripe for, and what Stripe then
//! holds. The subscriptions are made through the stand-in's Stripe API only (customers, cards, test clocks).

use crate::support::{context, TestContext};
use serde_json::Value;
use tollgate_app::billing::{Billing, BillingError, BillingOutcome, BillingUrls, StripeApi, StripeConfig};
use tollgate_app::role_sync::PlanUpdate;
use tollgate_core::{FixedClock, GuildId, Refusal, Secret};

const T0: i64 = 1_800_000_000;
const APP: &str = "https://app.example.com/account";

struct Shop {
    ctx: TestContext,
    stripe: StripeApi,
    http: reqwest::Client,
    basic: String,
    pro: String,
}

impl Shop {
    /// Plans `basic` and `pro` sold through a Stripe price each, `sellapp-only` without one.
    async fn open() -> Self {
        let ctx = context().await;
        let stripe = api(&ctx, ctx.devstack.stripe_secret_key());
        let mut shop = Self { ctx, stripe, http: reqwest::Client::new(), basic: String::new(), pro: String::new() };
        let product = shop.post("/v1/products", &[("name", "Community")]).await;
        let product = id(&product);
        for (plan, amount) in [("basic", "500"), ("pro", "1500")] {
            let price = shop
                .post(
                    "/v1/prices",
                    &[
                        ("product", &product),
                        ("currency", "usd"),
                        ("unit_amount", amount),
                        ("recurring[interval]", "month"),
                    ],
                )
                .await;
            let update = PlanUpdate { stripe_prices: Some(vec![id(&price)]), ..PlanUpdate::default() };
            shop.ctx.app().set_plan(plan, guild(), &update).await.expect("plan");
            if plan == "basic" {
                shop.basic = id(&price)
            } else {
                shop.pro = id(&price)
            }
        }
        shop.ctx.app().set_plan("sellapp-only", guild(), &PlanUpdate::default()).await.expect("plan");
        shop
    }

    fn billing(&self) -> Billing<'_, FixedClock> {
        Billing::new(self.ctx.app(), &self.stripe)
    }

    async fn call(&self, method: reqwest::Method, path: &str, params: &[(&str, &str)]) -> Value {
        let url = format!("{}{path}", self.ctx.devstack.stripe_base_url());
        let request = self.http.request(method.clone(), url).bearer_auth(self.ctx.devstack.stripe_secret_key());
        let request = if method == reqwest::Method::GET {
            request.query(params)
        } else {
            let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
            request.header("content-type", "application/x-www-form-urlencoded").body(body)
        };
        let response = request.send().await.expect("the stand-in answers");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert!(status.is_success(), "{path} {params:?}: {status} {body}");
        body
    }

    async fn post(&self, path: &str, params: &[(&str, &str)]) -> Value {
        self.call(reqwest::Method::POST, path, params).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, &[]).await
    }

    /// A verified Tollgate user and a Stripe customer with the same email, paying `price` with a good card
    /// on a test clock: the subscription's id and its clock.
    async fn subscriber(&self, user: &str, price: &str) -> (String, String) {
        let email = format!("{user}@example.com");
        self.ctx.create_user(user, &email).await;
        let clock = id(&self.post("/v1/test_helpers/test_clocks", &[("frozen_time", &T0.to_string())]).await);
        let customer = id(&self.post("/v1/customers", &[("email", &email), ("test_clock", &clock)]).await);
        let card = id(&self.post("/v1/payment_methods/pm_card_visa/attach", &[("customer", &customer)]).await);
        let subscription = self
            .post(
                "/v1/subscriptions",
                &[("customer", &customer), ("items[0][price]", price), ("default_payment_method", &card)],
            )
            .await;
        assert_eq!(subscription["status"], "active");
        (id(&subscription), clock)
    }

    /// The renewal fails (the card now declines): `past_due`.
    async fn fail_renewal(&self, subscription: &str, clock: &str) {
        let current = self.get(&format!("/v1/subscriptions/{subscription}")).await;
        let customer = current["customer"].as_str().unwrap().to_owned();
        let failing =
            id(&self.post("/v1/payment_methods/pm_card_chargeCustomerFail/attach", &[("customer", &customer)]).await);
        self.post(&format!("/v1/subscriptions/{subscription}"), &[("default_payment_method", &failing)]).await;
        let end = current["items"]["data"][0]["current_period_end"].as_i64().unwrap();
        self.post(
            &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
            &[("frozen_time", &(end + 3_600).to_string())],
        )
        .await;
        assert_eq!(self.get(&format!("/v1/subscriptions/{subscription}")).await["status"], "past_due");
    }

    async fn subscription(&self, id: &str) -> Value {
        self.get(&format!("/v1/subscriptions/{id}")).await
    }

    async fn checkout(&self, user: &str, plan: &str) -> Result<BillingOutcome, BillingError> {
        self.billing().checkout(&self.ctx.user(user).await, plan, &urls()).await
    }

    async fn cancel(&self, user: &str) -> Result<BillingOutcome, BillingError> {
        self.billing().cancel(&self.ctx.user(user).await).await
    }

    async fn portal(&self, user: &str, remove: bool) -> Result<BillingOutcome, BillingError> {
        self.billing().billing_portal(&self.ctx.user(user).await, remove, &urls()).await
    }

    /// The Checkout Session behind a checkout URL.
    async fn session(&self, outcome: Result<BillingOutcome, BillingError>) -> Value {
        let Ok(BillingOutcome::Checkout { url }) = outcome else { panic!("a checkout session: {outcome:?}") };
        let prefix = format!("{}/checkout/pay/", self.ctx.devstack.stripe_base_url());
        let session = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("the stand-in's page: {url}"));
        self.get(&format!("/v1/checkout/sessions/{session}")).await
    }
}

fn api(ctx: &TestContext, key: &str) -> StripeApi {
    StripeApi::new(StripeConfig { api_base: ctx.devstack.stripe_base_url(), api_key: Secret::new(key) })
        .expect("client")
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("an id in {value}")).to_owned()
}

fn guild() -> GuildId {
    GuildId::parse(tollgate_devstack::discord_seed::GUILD_ID).unwrap()
}

fn urls() -> BillingUrls {
    BillingUrls::from_base(APP).unwrap()
}

fn refused(outcome: Result<BillingOutcome, BillingError>) -> Refusal {
    match outcome {
        Err(BillingError::Refused(refusal)) => refusal,
        other => panic!("a refusal: {other:?}"),
    }
}

fn portal_url(shop: &Shop, outcome: Result<BillingOutcome, BillingError>) -> String {
    let Ok(BillingOutcome::Portal { url }) = outcome else { panic!("a portal session: {outcome:?}") };
    assert!(url.starts_with(&format!("{}/billing_portal/", shop.ctx.devstack.stripe_base_url())), "{url}");
    url
}

#[tokio::test]
async fn without_a_subscription_a_purchase_is_a_checkout_session_and_cancel_or_portal_are_refused() {
    let shop = Shop::open().await;
    shop.ctx.create_user("newbie", "newbie@example.com").await;

    let session = shop.session(shop.checkout("newbie", "pro").await).await;
    assert_eq!(session["mode"], "subscription");
    assert_eq!(session["client_reference_id"], "newbie", "the webhook finds the buyer by it");
    assert_eq!(session["customer_email"], "newbie@example.com");
    assert_eq!(session["customer"], Value::Null);
    assert_eq!(session["success_url"], format!("{APP}?billing=checkout_success"));
    assert_eq!(session["cancel_url"], format!("{APP}?billing=checkout_canceled"));
    assert_eq!(session["metadata"]["tollgate_plan"], "pro");

    assert_eq!(refused(shop.cancel("newbie").await), Refusal::NothingToCancel);
    assert_eq!(refused(shop.portal("newbie", false).await), Refusal::NoSubscription);
    assert_eq!(refused(shop.portal("newbie", true).await), Refusal::NoSubscription);
    assert!(matches!(shop.checkout("newbie", "platinum").await, Err(BillingError::UnknownPlan(p)) if p == "platinum"));
    assert!(matches!(shop.checkout("newbie", "sellapp-only").await, Err(BillingError::PlanNotOnStripe(_))));
}

#[tokio::test]
async fn an_active_subscription_changes_price_in_its_cycle_cancels_at_period_end_and_opens_the_portal() {
    let shop = Shop::open().await;
    let (sub, _) = shop.subscriber("payer", &shop.basic).await;
    let before = shop.subscription(&sub).await;

    let Ok(BillingOutcome::Changed { subscription }) = shop.checkout("payer", "pro").await else { panic!("changed") };
    assert_eq!((subscription["plan"].as_str(), subscription["id"].as_str()), (Some("pro"), Some(sub.as_str())));
    let after = shop.subscription(&sub).await;
    assert_eq!(after["items"]["data"][0]["price"]["id"], shop.pro.as_str());
    assert_eq!(
        after["items"]["data"][0]["current_period_end"], before["items"]["data"][0]["current_period_end"],
        "the same billing cycle"
    );
    assert_eq!(refused(shop.checkout("payer", "pro").await), Refusal::AlreadyOnPlan);

    let Ok(BillingOutcome::Canceling { period_end, subscription }) = shop.cancel("payer").await else {
        panic!("canceling")
    };
    assert_eq!(subscription["cancelAtPeriodEnd"], true);
    let end = after["items"]["data"][0]["current_period_end"].as_i64().unwrap();
    assert_eq!(
        period_end.as_deref(),
        chrono::DateTime::from_timestamp(end, 0).map(tollgate_app::records::timestamp).as_deref()
    );
    let canceling = shop.subscription(&sub).await;
    assert_eq!(
        (canceling["status"].as_str(), canceling["cancel_at_period_end"].as_bool()),
        (Some("active"), Some(true))
    );
    assert_eq!(refused(shop.cancel("payer").await), Refusal::AlreadyCanceling);

    // Buying the current plan again while it is ending keeps it.
    assert!(matches!(shop.checkout("payer", "pro").await, Ok(BillingOutcome::Changed { .. })));
    assert_eq!(shop.subscription(&sub).await["cancel_at_period_end"], false);

    portal_url(&shop, shop.portal("payer", false).await);
    portal_url(&shop, shop.portal("payer", true).await);
}

#[tokio::test]
async fn a_past_due_subscription_changes_price_cancels_at_period_end_and_sends_the_customer_to_fix_the_card() {
    let shop = Shop::open().await;
    let (sub, clock) = shop.subscriber("late", &shop.basic).await;
    shop.fail_renewal(&sub, &clock).await;

    assert!(matches!(shop.checkout("late", "pro").await, Ok(BillingOutcome::Changed { .. })));
    let changed = shop.subscription(&sub).await;
    assert_eq!(
        (changed["status"].as_str(), changed["items"]["data"][0]["price"]["id"].as_str()),
        (Some("past_due"), Some(shop.pro.as_str()))
    );
    portal_url(&shop, shop.portal("late", false).await);
    assert!(matches!(shop.cancel("late").await, Ok(BillingOutcome::Canceling { period_end: Some(_), .. })));
    assert_eq!(shop.subscription(&sub).await["cancel_at_period_end"], true);
    assert_eq!(refused(shop.cancel("late").await), Refusal::AlreadyCanceling);
}

#[tokio::test]
async fn after_a_cancellation_a_purchase_is_a_new_checkout_for_the_same_customer_and_only_removing_the_card_is_offered()
{
    let shop = Shop::open().await;
    let (sub, _) = shop.subscriber("gone", &shop.pro).await;
    let customer = shop.subscription(&sub).await["customer"].as_str().unwrap().to_owned();
    shop.call(reqwest::Method::DELETE, &format!("/v1/subscriptions/{sub}"), &[]).await;
    assert_eq!(shop.subscription(&sub).await["status"], "canceled");

    let session = shop.session(shop.checkout("gone", "basic").await).await;
    assert_eq!(session["customer"], customer.as_str(), "the known customer, not a new one");
    assert_eq!(session["customer_email"], Value::Null);
    assert_eq!(session["client_reference_id"], "gone");

    assert_eq!(refused(shop.cancel("gone").await), Refusal::SubscriptionEnded);
    assert_eq!(refused(shop.portal("gone", false).await), Refusal::SubscriptionEnded);
    portal_url(&shop, shop.portal("gone", true).await);
}

#[tokio::test]
async fn a_checkout_completed_on_stripe_is_found_and_the_next_purchase_changes_it() {
    let shop = Shop::open().await;
    shop.ctx.create_user("buyer", "buyer@example.com").await;
    let Ok(BillingOutcome::Checkout { url }) = shop.checkout("buyer", "basic").await else { panic!("checkout") };
    let paid = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(&url)
        .form(&[("email", "buyer@example.com"), ("card", "pm_card_visa")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303, "paid on the hosted page");
    assert_eq!(paid.headers()["location"], format!("{APP}?billing=checkout_success"));

    let Ok(BillingOutcome::Changed { subscription }) = shop.checkout("buyer", "pro").await else { panic!("changed") };
    assert_eq!((subscription["status"].as_str(), subscription["plan"].as_str()), (Some("active"), Some("pro")));
}

#[tokio::test]
async fn an_unverified_email_never_finds_someone_elses_billing() {
    let shop = Shop::open().await;
    let (sub, _) = shop.subscriber("owner", &shop.basic).await;
    // Someone signs up with the owner's address and does not prove it.
    shop.ctx.create_unverified_user("squatter", "owner+x@example.com").await;
    let squatter = shop.ctx.user("squatter").await;
    let squatter = tollgate_appwrite::User { email: "owner@example.com".into(), ..squatter };
    let billing = shop.billing();
    assert_eq!(refused(billing.cancel(&squatter).await), Refusal::NothingToCancel);
    let session = shop.session(billing.checkout(&squatter, "pro", &urls()).await).await;
    assert_eq!(session["customer"], Value::Null, "not the owner's customer");
    assert_eq!(shop.subscription(&sub).await["items"]["data"][0]["price"]["id"], shop.basic.as_str(), "untouched");
}

#[tokio::test]
async fn a_refused_key_is_a_stripe_error_that_does_not_show_the_key() {
    let shop = Shop::open().await;
    shop.ctx.create_user("keyless", "keyless@example.com").await;
    let wrong = api(&shop.ctx, "sk_test_not_the_right_key_123456");
    let outcome = Billing::new(shop.ctx.app(), &wrong).cancel(&shop.ctx.user("keyless").await).await;
    let Err(error @ BillingError::Stripe(_)) = outcome else { panic!("a Stripe error: {outcome:?}") };
    assert_eq!(error.code(), "stripe_error");
    assert!(!format!("{error} {error:?}").contains("not_the_right_key"), "{error:?}");
}

#[tokio::test]
async fn the_ledger_names_the_subscription_even_when_the_email_cannot_be_used() {
    let shop = Shop::open().await;
    let (sub, _) = shop.subscriber("paid-elsewhere", &shop.basic).await;
    // The account's email differs from the one paid with, and is not verified: only the ledger (written by the
    // webhook worker from the checkout's client_reference_id) links them.
    shop.ctx.create_unverified_user("ledgered", "other-address@example.com").await;
    let source = format!("stripe-sub:{sub}");
    let entitlement = serde_json::json!({"source": source, "provider": "stripe", "userId": "ledgered", "orderId": sub});
    let doc = tollgate_app::ledger::entitlement_document_id(&source);
    shop.ctx.client.upsert_document("crypto", "entitlements", doc.as_str(), &entitlement).await.unwrap();

    assert!(matches!(shop.checkout("ledgered", "pro").await, Ok(BillingOutcome::Changed { .. })));
    assert_eq!(shop.subscription(&sub).await["items"]["data"][0]["price"]["id"], shop.pro.as_str());
    assert!(matches!(shop.cancel("ledgered").await, Ok(BillingOutcome::Canceling { .. })));

    // A one-off payment's entitlement remembers only the customer: its subscriptions are found through it.
    let customer = shop.subscription(&sub).await["customer"].as_str().unwrap().to_owned();
    shop.ctx.create_unverified_user("by-customer", "third-address@example.com").await;
    let source = "stripe-pay:cs_test_once";
    let entitlement = serde_json::json!({"source": source, "provider": "stripe", "userId": "by-customer",
        "orderId": "pi_test_once", "customerRef": customer});
    let doc = tollgate_app::ledger::entitlement_document_id(source);
    shop.ctx.client.upsert_document("crypto", "entitlements", doc.as_str(), &entitlement).await.unwrap();
    assert_eq!(refused(shop.cancel("by-customer").await), Refusal::AlreadyCanceling, "the customer's subscription");
    assert!(matches!(shop.checkout("by-customer", "basic").await, Ok(BillingOutcome::Changed { .. })));
}

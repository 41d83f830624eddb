//! Checkout Sessions and Billing Portal sessions, and the pages their `url`s open.
//!
//! A session's `url` is `{base}/checkout/pay/{id}`: a small form (email, one of the test cards) whose POST
//! completes the session as the buyer would on Stripe's page: the customer (the session's, or a new one
//! with the email), the card attached, then the subscription (with its first invoice charged, or its trial)
//! or the payment's charge, and the events, `checkout.session.completed` last. A declined card leaves the
//! session open and says so, as Stripe's page does. `POST /_devstack/stripe/checkout/{id}/complete` does the
//! same for tests. A portal session's `url` (`{base}/billing_portal/{id}`) lets the customer change the card
//! of their subscriptions or cancel one at period end.

use super::billing::{cancel_at_period_end, Terms};
use super::form::{ApiError, ApiResult, Form};
use super::resources::{attach, list, materialize, out, recurring_price, set_customer};
use super::store::{new_id, Card, Store};
use super::{Params, Reply, StripeState, S};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

/// 24 hours, Stripe's default session lifetime.
const SESSION_LIFETIME: i64 = 24 * 3_600;

pub fn api_routes() -> Router<Arc<StripeState>> {
    Router::new()
        .route("/v1/checkout/sessions", get(list_sessions).post(create_session))
        .route("/v1/checkout/sessions/{id}", get(get_session))
        .route("/v1/billing_portal/sessions", post(create_portal_session))
}

pub fn page_routes() -> Router<Arc<StripeState>> {
    Router::new()
        .route("/checkout/pay/{id}", get(pay_page).post(pay_submit))
        .route("/billing_portal/{id}", get(portal_page).post(portal_submit))
        .route("/_devstack/stripe/checkout/{id}/complete", post(complete_for_tests))
}

async fn create_session(state: S, Params(form): Params) -> Reply {
    form.only(&[
        "mode",
        "line_items",
        "customer",
        "customer_email",
        "client_reference_id",
        "success_url",
        "cancel_url",
        "subscription_data",
        "metadata",
        "payment_method_types",
        "allow_promotion_codes",
        "customer_creation",
        "locale",
        "billing_address_collection",
    ])?;
    let mode = form.required("mode")?;
    if !matches!(mode, "subscription" | "payment") {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            format!("Invalid mode: {mode}; this stand-in serves subscription and payment"),
            Some("mode"),
        ));
    }
    let success_url = form.required("success_url")?.to_owned();
    let mut store = state.store();
    let customer = match form.str("customer")? {
        Some(c) => Some(store.find("customer", c, "customer", "customer")?),
        None => None,
    };
    let email = form.str("customer_email")?;
    if customer.is_some() && email.is_some() {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            "You may only specify one of these parameters: customer, customer_email.",
            Some("customer_email"),
        ));
    }
    let items = form.indexed("line_items")?;
    if items.is_empty() {
        return Err(ApiError::invalid("parameter_missing", "Missing required param: line_items.", Some("line_items")));
    }
    let mut lines = Vec::new();
    let (mut total, mut currency) = (0i64, None::<String>);
    for (n, item) in items.iter().enumerate() {
        let param = format!("line_items[{n}][price]");
        let price_id = item.get("price").and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid("parameter_missing", format!("Missing required param: {param}."), Some(&param))
        })?;
        let price = if mode == "subscription" {
            recurring_price(&store, price_id, &param)?
        } else {
            let price = store.find("price", price_id, "price", &param)?;
            if price["type"] == "recurring" {
                return Err(ApiError::invalid("parameter_invalid_string", "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.", Some(&param)));
            }
            price
        };
        let quantity = match item.get("quantity").and_then(Value::as_str) {
            None => 1,
            Some(q) => q.parse::<i64>().ok().filter(|q| *q >= 1).ok_or_else(|| {
                ApiError::invalid(
                    "parameter_invalid_integer",
                    format!("Invalid integer: {q}"),
                    Some(&format!("line_items[{n}][quantity]")),
                )
            })?,
        };
        total += price["unit_amount"].as_i64().unwrap_or(0) * quantity;
        currency.get_or_insert_with(|| price["currency"].as_str().unwrap_or("usd").to_owned());
        lines.push(json!({ "price": price["id"], "quantity": quantity }));
    }
    if mode == "subscription" && lines.len() != 1 {
        return Err(ApiError::invalid(
            "parameter_invalid_array",
            "This stand-in serves subscriptions of exactly one item.",
            Some("line_items"),
        ));
    }
    let trial = form.int("subscription_data.trial_period_days")?;
    if mode == "payment" && form.get("subscription_data").is_some() {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            "subscription_data can only be used in subscription mode.",
            Some("subscription_data"),
        ));
    }
    let subscription_metadata = match form.get("subscription_data.metadata") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => json!({}),
    };
    let at = store.now(customer.as_ref().and_then(|c| c["test_clock"].as_str()));
    let id = new_id("cs_test");
    let session = store.insert(json!({
        "id": id,
        "object": "checkout.session",
        "allow_promotion_codes": form.bool("allow_promotion_codes")?,
        "amount_subtotal": total,
        "amount_total": total,
        "automatic_tax": { "enabled": false, "liability": null, "status": null, "provider": null },
        "billing_address_collection": form.str("billing_address_collection")?,
        "cancel_url": form.str("cancel_url")?,
        "client_reference_id": form.str("client_reference_id")?,
        "client_secret": null,
        "created": at,
        "currency": currency,
        "custom_fields": [],
        "customer": customer.as_ref().map(|c| c["id"].clone()),
        "customer_account": null,
        "customer_creation": if customer.is_some() { Value::Null } else { json!(form.str("customer_creation")?.unwrap_or(if mode == "subscription" { "always" } else { "if_required" })) },
        "customer_details": null,
        "customer_email": email,
        "discounts": [],
        "expires_at": at + SESSION_LIFETIME,
        "invoice": null,
        "livemode": false,
        "locale": form.str("locale")?,
        "metadata": form.metadata()?.unwrap_or_default(),
        "mode": mode,
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": if mode == "subscription" { json!("always") } else { Value::Null },
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "phone_number_collection": { "enabled": false },
        "recovered_from": null,
        "setup_intent": null,
        "shipping_options": [],
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": success_url,
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted",
        "url": format!("{}/checkout/pay/{id}", state.base_url()),
    }));
    store.checkout_lines.insert(id.clone(), (lines, trial, subscription_metadata));
    out(&store, &form, session)
}

async fn get_session(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&[])?;
    let store = state.store();
    let session = store.find("checkout.session", &id, "checkout.session", "session")?;
    out(&store, &form, session)
}

async fn list_sessions(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let (customer, subscription) =
        (form.str("customer")?.map(str::to_owned), form.str("subscription")?.map(str::to_owned));
    let (status, intent) = (form.str("status")?.map(str::to_owned), form.str("payment_intent")?.map(str::to_owned));
    list(
        &store,
        &form,
        "checkout.session",
        "/v1/checkout/sessions",
        &["customer", "subscription", "status", "payment_intent"],
        |s| {
            customer.as_ref().is_none_or(|w| s["customer"] == **w)
                && subscription.as_ref().is_none_or(|w| s["subscription"] == **w)
                && status.as_ref().is_none_or(|w| s["status"] == **w)
                && intent.as_ref().is_none_or(|w| s["payment_intent"] == **w)
        },
    )
}

impl Store {
    /// Completes an open session as its buyer: `card` is a test token or a payment method id, `email` the
    /// one typed on the page (needed when the session has neither a customer nor `customer_email`).
    pub fn complete_checkout(&mut self, id: &str, card: &str, email: Option<&str>) -> ApiResult {
        let mut session = self.find("checkout.session", id, "checkout.session", "session")?;
        if session["status"] != "open" {
            return Err(ApiError::state(format!(
                "This Checkout Session is {} and can no longer be completed.",
                session["status"].as_str().unwrap_or_default()
            )));
        }
        let existing = session["customer"].as_str().map(str::to_owned);
        let at = self.now(existing.as_deref().and_then(|c| self.clock_of_customer(c)).as_deref());
        if at > session["expires_at"].as_i64().unwrap_or(i64::MAX) {
            return Err(ApiError::state("This Checkout Session has expired."));
        }
        let email = session["customer_email"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                existing.as_ref().and_then(|c| self.objects.get(c)).and_then(|c| c["email"].as_str().map(str::to_owned))
            })
            .or_else(|| email.map(str::trim).filter(|e| e.contains('@')).map(str::to_owned))
            .ok_or_else(|| ApiError::invalid("email_invalid", "Enter the buyer's email address.", Some("email")))?;
        let Some((lines, trial, subscription_metadata)) = self.checkout_lines.get(id).cloned() else {
            return Err(ApiError::state("This Checkout Session has no line items."));
        };
        let card_kind = match Card::from_token(card) {
            Some((kind, ..)) => kind,
            None => {
                let method = self.find("payment_method", card, "PaymentMethod", "payment_method")?;
                if method["customer"].as_str().is_some_and(|c| Some(c) != existing.as_deref()) {
                    return Err(ApiError::invalid(
                        "payment_method_unexpected_state",
                        "The payment method you provided has already been attached to a customer.",
                        None,
                    ));
                }
                self.cards.get(card).copied().unwrap_or(Card::Visa)
            }
        };
        let due_now = trial.unwrap_or(0) == 0 && session["amount_total"].as_i64().unwrap_or(0) > 0;
        if card_kind == Card::ChargeFails && due_now {
            // Stripe's page shows the decline and the session stays open; nothing is created.
            return Err(ApiError::card_declined(None, None));
        }
        // In payment mode without `customer_creation=always` the buyer is a guest: no customer object, the
        // charge names none (Stripe's "guest customer").
        let guest = session["mode"] == "payment" && existing.is_none() && session["customer_creation"] != "always";
        let (customer, method_id) = if guest {
            let method = materialize(self, card, at)?;
            (json!({ "id": null, "email": email }), method["id"].as_str().unwrap_or_default().to_owned())
        } else {
            let customer_id = match existing {
                Some(c) => c,
                None => {
                    let id = new_id("cus");
                    let customer =
                        self.insert(super::objects::customer(&id, Some(&email), None, Default::default(), None, at));
                    self.emit("customer.created", &customer, None, at);
                    id
                }
            };
            let method = attach(self, card, &customer_id)?;
            let customer = self.find("customer", &customer_id, "customer", "customer")?;
            (customer, method["id"].as_str().unwrap_or_default().to_owned())
        };
        let customer_id = customer["id"].as_str().unwrap_or_default().to_owned();
        if session["mode"] == "subscription" {
            let line = &lines[0];
            let price =
                self.find("price", line["price"].as_str().unwrap_or_default(), "price", "line_items[0][price]")?;
            let metadata = subscription_metadata.as_object().cloned().unwrap_or_default();
            let terms = Terms {
                quantity: line["quantity"].as_i64().unwrap_or(1),
                payment_method: Some(method_id),
                trial_days: trial,
                metadata,
                missing_payment_method: None,
            };
            let subscription = self.create_subscription(&customer_id, &price, terms)?;
            session["subscription"] = subscription["id"].clone();
            session["invoice"] = subscription["latest_invoice"].clone();
            session["payment_status"] = json!(if due_now { "paid" } else { "no_payment_required" });
        } else {
            let currency = session["currency"].as_str().unwrap_or("usd").to_owned();
            let amount = session["amount_total"].as_i64().unwrap_or(0);
            let outcome = self.charge_card(&customer, &method_id, amount, &currency, Some("Checkout payment"))?;
            if !outcome.succeeded() {
                return Err(outcome.declined());
            }
            session["payment_intent"] = outcome.payment_intent["id"].clone();
            session["payment_status"] = json!("paid");
        }
        session["status"] = json!("complete");
        session["customer"] = customer["id"].clone();
        session["url"] = Value::Null;
        session["customer_details"] = json!({
            "address": { "city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null },
            "email": email, "name": null, "phone": null, "tax_exempt": "none", "tax_ids": [],
            "business_name": null, "individual_name": null,
        });
        self.put(&session);
        self.emit("checkout.session.completed", &session, None, at);
        Ok(session)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head><body><h1>{}</h1>{body}<p><small>Stripe stand-in (devstack): test mode only.</small></p></body></html>", escape(title), escape(title))
}

fn card_choices() -> String {
    Card::TOKENS
        .iter()
        .enumerate()
        .map(|(n, (token, _, brand, last4))| {
            let checked = if n == 0 { " checked" } else { "" };
            format!("<label><input type=\"radio\" name=\"card\" value=\"{token}\"{checked}> {brand} •••• {last4} (<code>{token}</code>)</label><br>")
        })
        .collect()
}

fn pay_form(session: &Value, email: &str, error: Option<&str>) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    let amount = session["amount_total"].as_i64().unwrap_or(0);
    let currency = session["currency"].as_str().unwrap_or("usd").to_uppercase();
    let error = error.map(|e| format!("<p role=\"alert\" style=\"color:#b00\">{}</p>", escape(e))).unwrap_or_default();
    page(
        "Pay",
        &format!(
            "<p>{} {}.{:02} ({})</p>{error}<form method=\"post\" action=\"/checkout/pay/{}\"><label>Email <input type=\"email\" name=\"email\" value=\"{}\" required></label><br>{}<button type=\"submit\">Pay</button></form>",
            escape(&currency), amount / 100, amount % 100, escape(session["mode"].as_str().unwrap_or_default()), escape(id), escape(email), card_choices()
        ),
    )
}

fn session_email(store: &Store, session: &Value) -> String {
    session["customer_email"]
        .as_str()
        .or_else(|| session["customer"].as_str().and_then(|c| store.objects.get(c)).and_then(|c| c["email"].as_str()))
        .unwrap_or_default()
        .to_owned()
}

async fn pay_page(state: S, Path(id): Path<String>) -> Response {
    let store = state.store();
    match store.find("checkout.session", &id, "checkout.session", "session") {
        Ok(session) if session["status"] == "open" => {
            Html(pay_form(&session, &session_email(&store, &session), None)).into_response()
        }
        Ok(_) => {
            (StatusCode::GONE, Html(page("This checkout is complete", "<p>Nothing left to pay.</p>"))).into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, Html(page("Not found", "<p>No such checkout session.</p>"))).into_response(),
    }
}

async fn pay_submit(state: S, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::parse(&body) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let card = form.str("card").ok().flatten().unwrap_or("pm_card_visa").to_owned();
    let email = form.str("email").ok().flatten().unwrap_or_default().to_owned();
    let result = {
        let mut store = state.store();
        store.complete_checkout(&id, &card, Some(&email)).map_err(|e| {
            let session = store.objects.get(&id).cloned();
            (e, session)
        })
    };
    state.flush();
    match result {
        Ok(session) => {
            let target = session["success_url"].as_str().unwrap_or("/").replace("{CHECKOUT_SESSION_ID}", &id);
            Redirect::to(&target).into_response()
        }
        Err((error, Some(session))) if session["status"] == "open" => {
            let message = error.body["error"]["message"].as_str().unwrap_or("The payment failed.").to_owned();
            (error.status, Html(pay_form(&session, &email, Some(&message)))).into_response()
        }
        Err((error, _)) => error.into_response(),
    }
}

/// Form or JSON: `payment_method` (a test token or `pm_…`), optional `email`.
async fn complete_for_tests(state: S, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let json_body =
        headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/json"));
    let (method, email) = if json_body {
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (value["payment_method"].as_str().map(str::to_owned), value["email"].as_str().map(str::to_owned))
    } else {
        match Form::parse(&body) {
            Ok(form) => (
                form.str("payment_method").ok().flatten().map(str::to_owned),
                form.str("email").ok().flatten().map(str::to_owned),
            ),
            Err(e) => return e.into_response(),
        }
    };
    let method = method.unwrap_or_else(|| "pm_card_visa".to_owned());
    let result = state.store().complete_checkout(&id, &method, email.as_deref());
    state.flush();
    match result {
        Ok(session) => Json(session).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn create_portal_session(state: S, Params(form): Params) -> Reply {
    form.only(&["customer", "return_url", "configuration", "locale", "flow_data"])?;
    let mut store = state.store();
    let customer = form.required("customer")?;
    let owner = store.find("customer", customer, "customer", "customer")?;
    let at = store.now(owner["test_clock"].as_str());
    let id = new_id("bps");
    let session = store.insert(json!({
        "id": id,
        "object": "billing_portal.session",
        "configuration": "bpc_devstack_default",
        "created": at,
        "customer": customer,
        "customer_account": null,
        "flow": null,
        "livemode": false,
        "locale": form.str("locale")?,
        "on_behalf_of": null,
        "return_url": form.str("return_url")?,
        "url": format!("{}/billing_portal/{id}", state.base_url()),
    }));
    out(&store, &form, session)
}

fn portal_body(store: &Store, session: &Value, notice: Option<&str>) -> String {
    let id = escape(session["id"].as_str().unwrap_or_default());
    let customer = session["customer"].as_str().unwrap_or_default();
    let mut body = notice.map(|n| format!("<p role=\"status\">{}</p>", escape(n))).unwrap_or_default();
    for subscription in store.all("subscription").iter().filter(|s| s["customer"] == customer) {
        let sub = escape(subscription["id"].as_str().unwrap_or_default());
        let status = escape(subscription["status"].as_str().unwrap_or_default());
        let cancel = if subscription["cancel_at_period_end"] == true || status == "canceled" {
            String::new()
        } else {
            format!("<form method=\"post\" action=\"/billing_portal/{id}\"><input type=\"hidden\" name=\"action\" value=\"cancel\"><input type=\"hidden\" name=\"subscription\" value=\"{sub}\"><button>Cancel at period end</button></form>")
        };
        body.push_str(&format!("<p>Subscription <code>{sub}</code>: {status}</p>{cancel}"));
    }
    body.push_str(&format!("<form method=\"post\" action=\"/billing_portal/{id}\"><input type=\"hidden\" name=\"action\" value=\"update_card\">{}<button>Use this card</button></form>", card_choices()));
    if let Some(back) = session["return_url"].as_str() {
        body.push_str(&format!("<p><a href=\"{}\">Return</a></p>", escape(back)));
    }
    page("Billing", &body)
}

async fn portal_page(state: S, Path(id): Path<String>) -> Response {
    let store = state.store();
    match store.find("billing_portal.session", &id, "billing portal session", "id") {
        Ok(session) => Html(portal_body(&store, &session, None)).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, Html(page("Not found", "<p>No such portal session.</p>"))).into_response(),
    }
}

/// `action=update_card&card=pm_card_…`: the card becomes the customer's default and that of each live
/// subscription; `action=cancel&subscription=sub_…`: cancel at period end.
async fn portal_submit(state: S, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::parse(&body) {
        Ok(form) => form,
        Err(e) => return e.into_response(),
    };
    let result = {
        let mut store = state.store();
        portal_action(&mut store, &id, &form).map(|notice| {
            let session = store.objects.get(&id).cloned().unwrap_or(Value::Null);
            portal_body(&store, &session, Some(notice))
        })
    };
    state.flush();
    match result {
        Ok(html) => Html(html).into_response(),
        Err(e) => e.into_response(),
    }
}

fn portal_action(store: &mut Store, id: &str, form: &Form) -> ApiResult<&'static str> {
    let session = store.find("billing_portal.session", id, "billing portal session", "id")?;
    let customer = session["customer"].as_str().unwrap_or_default().to_owned();
    match form.required("action")? {
        "update_card" => {
            let method = attach(store, form.required("card")?, &customer)?;
            let method_id = method["id"].clone();
            set_customer(store, &customer, |c| c["invoice_settings"]["default_payment_method"] = method_id.clone())?;
            for subscription in store.all("subscription").into_iter().filter(|s| s["customer"] == customer.as_str()) {
                if !matches!(subscription["status"].as_str(), Some("canceled" | "incomplete_expired")) {
                    let sub = subscription["id"].as_str().unwrap_or_default().to_owned();
                    store.update_subscription(&sub, "customer.subscription.updated", |s| {
                        s["default_payment_method"] = method_id.clone()
                    })?;
                }
            }
            Ok("Your card was updated.")
        }
        "cancel" => {
            let sub = form.required("subscription")?.to_owned();
            let found = store.find("subscription", &sub, "subscription", "subscription")?;
            if found["customer"] != customer.as_str() {
                return Err(ApiError::missing("subscription", &sub, "subscription"));
            }
            let at = store.now(found["test_clock"].as_str());
            store.update_subscription(&sub, "customer.subscription.updated", |s| cancel_at_period_end(s, true, at))?;
            Ok("Your subscription will end at the end of the period.")
        }
        other => Err(ApiError::invalid("parameter_invalid_string", format!("Unknown action {other}"), Some("action"))),
    }
}

//! The `/v1` handlers of the plain resources: customers, products, prices, payment methods, subscriptions,
//! invoices, charges, payment intents, refunds, disputes, webhook endpoints and events.

use super::billing::Terms;
use super::form::{ApiError, ApiResult, Form};
use super::objects::{self, NewPrice};
use super::store::{new_id, page, Card, Store};
use super::{Params, Reply, StripeState, S};
use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub fn routes() -> Router<Arc<StripeState>> {
    Router::new()
        .route("/v1/customers", get(list_customers).post(create_customer))
        .route("/v1/customers/{id}", get(get_customer).post(update_customer))
        .route("/v1/products", get(list_products).post(create_product))
        .route("/v1/products/{id}", get(get_product))
        .route("/v1/prices", get(list_prices).post(create_price))
        .route("/v1/prices/{id}", get(get_price))
        .route("/v1/payment_methods", get(list_payment_methods))
        .route("/v1/payment_methods/{id}", get(get_payment_method))
        .route("/v1/payment_methods/{id}/attach", post(attach_payment_method))
        .route("/v1/payment_methods/{id}/detach", post(detach_payment_method))
        .route("/v1/subscriptions", get(list_subscriptions).post(create_subscription))
        .route("/v1/subscriptions/{id}", get(get_subscription).post(update_subscription).delete(cancel_subscription))
        .route("/v1/subscriptions/{id}/resume", post(resume_subscription))
        .route("/v1/invoices", get(list_invoices))
        .route("/v1/invoices/{id}", get(get_invoice))
        .route("/v1/invoices/{id}/pay", post(pay_invoice))
        .route("/v1/charges", get(list_charges))
        .route("/v1/charges/{id}", get(get_charge))
        .route("/v1/payment_intents/{id}", get(get_payment_intent))
        .route("/v1/refunds", get(list_refunds).post(create_refund))
        .route("/v1/refunds/{id}", get(get_refund))
        .route("/v1/disputes", get(list_disputes))
        .route("/v1/disputes/{id}", get(get_dispute).post(update_dispute))
        .route("/v1/disputes/{id}/close", post(close_dispute))
        .route("/v1/webhook_endpoints", get(list_endpoints).post(create_endpoint))
        .route("/v1/webhook_endpoints/{id}", get(get_endpoint).post(update_endpoint).delete(delete_endpoint))
        .route("/v1/events", get(list_events))
        .route("/v1/events/{id}", get(get_event))
}

/// The answer: `value` with the request's `expand[]` applied.
pub fn out(store: &Store, form: &Form, value: Value) -> Reply {
    Ok(Json(store.expand(value, &form.expand()?)))
}

/// A list of one object type, newest first, filtered by `keep`; `filters` are the parameters besides paging.
pub fn list(
    store: &Store,
    form: &Form,
    object: &str,
    url: &str,
    filters: &[&str],
    keep: impl Fn(&Value) -> bool,
) -> Reply {
    let mut known = vec!["limit", "starting_after", "ending_before"];
    known.extend_from_slice(filters);
    form.only(&known)?;
    let items: Vec<Value> = store.all(object).into_iter().filter(|o| keep(o)).collect();
    let listed = page(items, url, form.int("limit")?, form.str("starting_after")?, form.str("ending_before")?)?;
    out(store, form, listed)
}

fn get_one(state: &StripeState, object: &str, noun: &str, id: &str, form: &Form) -> Reply {
    form.only(&[])?;
    let store = state.store();
    let found = store.find(object, id, noun, "id")?;
    out(&store, form, found)
}

// ---- customers

async fn create_customer(state: S, Params(form): Params) -> Reply {
    form.only(&[
        "email",
        "name",
        "description",
        "metadata",
        "test_clock",
        "payment_method",
        "invoice_settings",
        "phone",
    ])?;
    let mut store = state.store();
    let clock = match form.str("test_clock")? {
        Some(clock) => Some(
            store.find("test_helpers.test_clock", clock, "test_clock", "test_clock")?["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        None => None,
    };
    let at = store.now(clock.as_deref());
    let id = new_id("cus");
    let mut customer = objects::customer(
        &id,
        form.str("email")?,
        form.str("name")?,
        form.metadata()?.unwrap_or_default(),
        clock.as_deref(),
        at,
    );
    if let Some(description) = form.str("description")? {
        customer["description"] = json!(description);
    }
    store.insert(customer.clone());
    store.emit("customer.created", &customer, None, at);
    if let Some(method) = form.str("payment_method")? {
        let method = attach(&mut store, method, &id)?;
        set_customer(&mut store, &id, |c| c["invoice_settings"]["default_payment_method"] = method["id"].clone())?;
    }
    if form.get("invoice_settings").is_some() {
        apply_invoice_settings(&mut store, &form, &id)?;
    }
    let customer = store.find("customer", &id, "customer", "id")?;
    out(&store, &form, customer)
}

pub fn set_customer(store: &mut Store, id: &str, change: impl FnOnce(&mut Value)) -> ApiResult {
    let before = store.find("customer", id, "customer", "id")?;
    let mut after = before.clone();
    change(&mut after);
    let previous = super::billing::changed(&before, &after);
    if !previous.is_empty() {
        store.put(&after);
        let at = store.now(after["test_clock"].as_str());
        store.emit("customer.updated", &after, Some(Value::Object(previous)), at);
    }
    Ok(after)
}

fn apply_invoice_settings(store: &mut Store, form: &Form, id: &str) -> ApiResult<()> {
    if let Some(method) = form.str("invoice_settings.default_payment_method")? {
        let method = method.to_owned();
        if !method.is_empty() {
            let found =
                store.find("payment_method", &method, "PaymentMethod", "invoice_settings[default_payment_method]")?;
            if found["customer"] != id {
                return Err(ApiError::invalid(
                    "resource_missing",
                    format!("No such PaymentMethod: '{method}'; It's possible this PaymentMethod exists on one of your connected accounts, in which case you should retry this request on that connected account."),
                    Some("invoice_settings[default_payment_method]"),
                ));
            }
        }
        let value = if method.is_empty() { Value::Null } else { json!(method) };
        set_customer(store, id, |c| c["invoice_settings"]["default_payment_method"] = value)?;
    }
    Ok(())
}

async fn update_customer(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&["email", "name", "description", "metadata", "invoice_settings", "phone"])?;
    let mut store = state.store();
    store.find("customer", &id, "customer", "id")?;
    apply_invoice_settings(&mut store, &form, &id)?;
    let (email, name, description, phone, metadata) =
        (form.str("email")?, form.str("name")?, form.str("description")?, form.str("phone")?, form.metadata()?);
    let text = |v: &str| if v.is_empty() { Value::Null } else { json!(v) };
    let customer = set_customer(&mut store, &id, |c| {
        for (field, value) in [("email", email), ("name", name), ("description", description), ("phone", phone)] {
            if let Some(value) = value {
                c[field] = text(value);
            }
        }
        if let Some(metadata) = metadata {
            merge_metadata(c, metadata);
        }
    })?;
    out(&store, &form, customer)
}

/// Stripe merges `metadata[k]=v` into the object's metadata; an empty value removes the key.
pub fn merge_metadata(object: &mut Value, metadata: Map<String, Value>) {
    if metadata.is_empty() {
        object["metadata"] = json!({});
    }
    for (k, v) in metadata {
        if v == "" {
            object["metadata"].as_object_mut().map(|m| m.remove(&k));
        } else {
            object["metadata"][k] = v;
        }
    }
}

async fn get_customer(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "customer", "customer", &id, &form)
}

async fn list_customers(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let email = form.str("email")?.map(str::to_owned);
    let clock = form.str("test_clock")?.map(str::to_owned);
    list(&store, &form, "customer", "/v1/customers", &["email", "test_clock"], |c| {
        email.as_ref().is_none_or(|e| c["email"] == **e) && clock.as_ref().is_none_or(|k| c["test_clock"] == **k)
    })
}

// ---- products and prices

async fn create_product(state: S, Params(form): Params) -> Reply {
    form.only(&["name", "description", "metadata", "id", "active"])?;
    let mut store = state.store();
    let name = form.required("name")?;
    let id = form.str("id")?.map(str::to_owned).unwrap_or_else(|| new_id("prod"));
    if store.objects.contains_key(&id) {
        return Err(ApiError::invalid("resource_already_exists", "Product already exists.", Some("id")));
    }
    let at = store.now(None);
    let product =
        store.insert(objects::product(&id, name, form.str("description")?, form.metadata()?.unwrap_or_default(), at));
    store.emit("product.created", &product, None, at);
    out(&store, &form, product)
}

async fn get_product(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "product", "product", &id, &form)
}

async fn list_products(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let active = form.bool("active")?;
    list(&store, &form, "product", "/v1/products", &["active"], |p| active.is_none_or(|a| p["active"] == a))
}

async fn create_price(state: S, Params(form): Params) -> Reply {
    form.only(&["product", "currency", "unit_amount", "recurring", "nickname", "lookup_key", "metadata", "active"])?;
    let mut store = state.store();
    let product = form.required("product")?;
    store.find("product", product, "product", "product")?;
    let currency = form.required("currency")?.to_ascii_lowercase();
    let unit_amount = form.int("unit_amount")?.ok_or_else(|| {
        ApiError::invalid("parameter_missing", "Missing required param: unit_amount.", Some("unit_amount"))
    })?;
    if unit_amount < 0 {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            "This value must be greater than or equal to 0.",
            Some("unit_amount"),
        ));
    }
    let recurring = match form.get("recurring") {
        None => None,
        Some(_) => {
            let interval = form.required("recurring.interval")?;
            if !matches!(interval, "day" | "week" | "month" | "year") {
                return Err(ApiError::invalid(
                    "parameter_invalid_string",
                    "Invalid recurring[interval]: must be one of day, week, month, or year",
                    Some("recurring[interval]"),
                ));
            }
            let count = form.int("recurring.interval_count")?.unwrap_or(1);
            if !(1..=12).contains(&count) {
                return Err(ApiError::invalid(
                    "parameter_invalid_integer",
                    "recurring[interval_count] must be between 1 and 12 (a year).",
                    Some("recurring[interval_count]"),
                ));
            }
            Some((interval, count))
        }
    };
    let at = store.now(None);
    let price = store.insert(objects::price(NewPrice {
        id: &new_id("price"),
        product,
        currency: &currency,
        unit_amount,
        recurring,
        nickname: form.str("nickname")?,
        lookup_key: form.str("lookup_key")?,
        metadata: form.metadata()?.unwrap_or_default(),
        created: at,
    }));
    store.emit("price.created", &price, None, at);
    out(&store, &form, price)
}

async fn get_price(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "price", "price", &id, &form)
}

async fn list_prices(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let product = form.str("product")?.map(str::to_owned);
    let active = form.bool("active")?;
    list(&store, &form, "price", "/v1/prices", &["product", "active", "type"], |p| {
        product.as_ref().is_none_or(|w| p["product"] == **w) && active.is_none_or(|a| p["active"] == a)
    })
}

// ---- payment methods

/// The payment method `method` names: a test token (`pm_card_visa`, …) makes a new one each time, as in
/// Stripe's test mode; anything else must be an existing `pm_…`.
pub fn materialize(store: &mut Store, method: &str, at: i64) -> ApiResult {
    match Card::from_token(method) {
        Some((card, brand, last4)) => {
            let id = new_id("pm");
            store.cards.insert(id.clone(), card);
            Ok(store.insert(objects::payment_method(&id, brand, last4, None, at)))
        }
        None => store.find("payment_method", method, "PaymentMethod", "payment_method"),
    }
}

/// Attaches a payment method to a customer. A test token (`pm_card_visa`, …) makes a new payment method
/// each time, as in Stripe's test mode.
pub fn attach(store: &mut Store, method: &str, customer: &str) -> ApiResult {
    let owner = store.find("customer", customer, "customer", "customer")?;
    let at = store.now(owner["test_clock"].as_str());
    let mut found = materialize(store, method, at)?;
    match found["customer"].as_str() {
        Some(other) if other != customer => {
            return Err(ApiError::invalid(
                "payment_method_unexpected_state",
                "The payment method you provided has already been attached to a customer.",
                None,
            ))
        }
        Some(_) => return Ok(found),
        None => {}
    }
    found["customer"] = json!(customer);
    store.put(&found);
    store.emit("payment_method.attached", &found, None, at);
    Ok(found)
}

async fn attach_payment_method(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&["customer"])?;
    let mut store = state.store();
    let customer = form.required("customer")?;
    let method = attach(&mut store, &id, customer)?;
    out(&store, &form, method)
}

async fn detach_payment_method(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&[])?;
    let mut store = state.store();
    let mut method = store.find("payment_method", &id, "PaymentMethod", "payment_method")?;
    let Some(customer) = method["customer"].as_str().map(str::to_owned) else {
        return Err(ApiError::invalid(
            "payment_method_unexpected_state",
            "The payment method you provided is not attached to a customer so detachment is impossible.",
            None,
        ));
    };
    let at = store.now(store.clock_of_customer(&customer).as_deref());
    method["customer"] = Value::Null;
    store.put(&method);
    set_customer(&mut store, &customer, |c| {
        if c["invoice_settings"]["default_payment_method"] == id {
            c["invoice_settings"]["default_payment_method"] = Value::Null;
        }
    })?;
    for subscription in store.all("subscription").into_iter().filter(|s| s["default_payment_method"] == id) {
        let sub = subscription["id"].as_str().unwrap_or_default().to_owned();
        store.update_subscription(&sub, "customer.subscription.updated", |s| {
            s["default_payment_method"] = Value::Null
        })?;
    }
    store.emit("payment_method.detached", &method, Some(json!({ "customer": customer })), at);
    out(&store, &form, method)
}

async fn get_payment_method(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "payment_method", "PaymentMethod", &id, &form)
}

async fn list_payment_methods(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let customer = form.str("customer")?.map(str::to_owned);
    if let Some(customer) = &customer {
        store.find("customer", customer, "customer", "customer")?;
    }
    list(&store, &form, "payment_method", "/v1/payment_methods", &["customer", "type"], |m| {
        customer.as_ref().is_none_or(|c| m["customer"] == **c)
    })
}

// ---- subscriptions

/// The recurring price an item names.
pub fn recurring_price(store: &Store, id: &str, param: &str) -> ApiResult {
    let price = store.find("price", id, "price", param)?;
    if price["type"] != "recurring" {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            format!("The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`. Price: {id}"),
            Some(param),
        ));
    }
    Ok(price)
}

fn quantity(item: &Map<String, Value>, param: &str) -> ApiResult<i64> {
    match item.get("quantity").and_then(Value::as_str) {
        None => Ok(1),
        Some(q) => q.parse::<i64>().ok().filter(|q| *q >= 1).ok_or_else(|| {
            ApiError::invalid("parameter_invalid_integer", format!("Invalid integer: {q}"), Some(param))
        }),
    }
}

/// A payment method the customer has (attached to it).
fn customers_method(store: &Store, method: &str, customer: &str, param: &str) -> ApiResult<String> {
    let found = store.find("payment_method", method, "PaymentMethod", param)?;
    if found["customer"] != customer {
        return Err(ApiError::invalid(
            "resource_missing",
            format!("The customer does not have a payment method with the ID {method}. The payment method must be attached to the customer."),
            Some(param),
        ));
    }
    Ok(method.to_owned())
}

async fn create_subscription(state: S, Params(form): Params) -> Reply {
    form.only(&[
        "customer",
        "items",
        "default_payment_method",
        "trial_period_days",
        "trial_settings",
        "metadata",
        "payment_behavior",
        "proration_behavior",
        "collection_method",
        "off_session",
    ])?;
    let end_behavior = form.str("trial_settings.end_behavior.missing_payment_method")?.map(str::to_owned);
    if end_behavior.as_deref().is_some_and(|b| !matches!(b, "cancel" | "create_invoice" | "pause")) {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            "Invalid trial_settings[end_behavior][missing_payment_method]: must be one of cancel, create_invoice, or pause",
            Some("trial_settings[end_behavior][missing_payment_method]"),
        ));
    }
    let mut store = state.store();
    let customer = form.required("customer")?.to_owned();
    store.find("customer", &customer, "customer", "customer")?;
    let items = form.indexed("items")?;
    let [item] = items.as_slice() else {
        return Err(ApiError::invalid(
            if items.is_empty() { "parameter_missing" } else { "parameter_invalid_array" },
            "This stand-in serves subscriptions of exactly one item: pass items[0][price].",
            Some("items"),
        ));
    };
    let price_id = item.get("price").and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid("parameter_missing", "Missing required param: items[0][price].", Some("items[0][price]"))
    })?;
    let price = recurring_price(&store, price_id, "items[0][price]")?;
    let quantity = quantity(item, "items[0][quantity]")?;
    let method = match form.str("default_payment_method")? {
        Some(m) => Some(customers_method(&store, m, &customer, "default_payment_method")?),
        None => None,
    };
    let trial = form.int("trial_period_days")?;
    if trial.is_some_and(|d| !(0..=730).contains(&d)) {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            "trial_period_days must be between 0 and 730.",
            Some("trial_period_days"),
        ));
    }
    if form.str("payment_behavior")? == Some("error_if_incomplete") && trial.unwrap_or(0) == 0 {
        let payer = method.clone().or_else(|| {
            store
                .objects
                .get(&customer)
                .and_then(|c| c["invoice_settings"]["default_payment_method"].as_str().map(str::to_owned))
        });
        if payer.is_some_and(|m| store.cards.get(&m) == Some(&Card::ChargeFails)) {
            return Err(ApiError::card_declined(None, None));
        }
    }
    let terms = Terms {
        quantity,
        payment_method: method,
        trial_days: trial,
        metadata: form.metadata()?.unwrap_or_default(),
        missing_payment_method: end_behavior,
    };
    let subscription = store.create_subscription(&customer, &price, terms)?;
    out(&store, &form, subscription)
}

async fn get_subscription(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "subscription", "subscription", &id, &form)
}

async fn list_subscriptions(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let status = form.str("status")?.map(str::to_owned);
    const STATUSES: &[&str] = &[
        "active",
        "all",
        "canceled",
        "ended",
        "incomplete",
        "incomplete_expired",
        "past_due",
        "paused",
        "trialing",
        "unpaid",
    ];
    if let Some(status) = &status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(ApiError::invalid(
                "parameter_invalid_string",
                format!("Invalid status: must be one of {}", STATUSES.join(", ")),
                Some("status"),
            ));
        }
    }
    let price = form.str("price")?.map(str::to_owned);
    let customer = form.str("customer")?.map(str::to_owned);
    let clock = form.str("test_clock")?.map(str::to_owned);
    list(&store, &form, "subscription", "/v1/subscriptions", &["customer", "status", "price", "test_clock"], |s| {
        let state = s["status"].as_str().unwrap_or_default();
        let status_ok = match status.as_deref() {
            None => state != "canceled" && state != "incomplete_expired",
            Some("all") => true,
            Some("ended") => state == "canceled" || state == "incomplete_expired",
            Some(wanted) => state == wanted,
        };
        status_ok
            && customer.as_ref().is_none_or(|c| s["customer"] == **c)
            && clock.as_ref().is_none_or(|c| s["test_clock"] == **c)
            && price.as_ref().is_none_or(|p| {
                s["items"]["data"].as_array().is_some_and(|items| items.iter().any(|i| i["price"]["id"] == **p))
            })
    })
}

async fn update_subscription(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&[
        "items",
        "cancel_at_period_end",
        "default_payment_method",
        "metadata",
        "proration_behavior",
        "payment_behavior",
        "cancellation_details",
    ])?;
    let mut store = state.store();
    let current = store.find("subscription", &id, "subscription", "id")?;
    let customer = current["customer"].as_str().unwrap_or_default().to_owned();
    let live = !matches!(current["status"].as_str(), Some("canceled" | "incomplete_expired"));
    if !live && form.root.keys().any(|k| !matches!(k.as_str(), "metadata" | "cancellation_details" | "expand")) {
        return Err(ApiError::state("A canceled subscription can only update its cancellation_details and metadata."));
    }
    let mut new_price = None;
    for (n, item) in form.indexed("items")?.iter().enumerate() {
        let Some(item_id) = item.get("id").and_then(Value::as_str) else {
            return Err(ApiError::invalid(
                "parameter_missing",
                "This stand-in changes the price of the existing item: pass items[0][id] with items[0][price].",
                Some(&format!("items[{n}][id]")),
            ));
        };
        if current["items"]["data"][0]["id"] != item_id {
            return Err(ApiError::invalid(
                "resource_missing",
                format!("No such subscription item: '{item_id}'"),
                Some(&format!("items[{n}][id]")),
            ));
        }
        if item.contains_key("deleted") {
            return Err(ApiError::invalid(
                "parameter_invalid_string",
                "A subscription must keep one item: change its price instead.",
                Some(&format!("items[{n}][deleted]")),
            ));
        }
        let price = match item.get("price").and_then(Value::as_str) {
            Some(p) => Some(recurring_price(&store, p, &format!("items[{n}][price]"))?),
            None => None,
        };
        new_price = Some((price, quantity(item, &format!("items[{n}][quantity]"))?, item.contains_key("quantity")));
    }
    let method = match form.str("default_payment_method")? {
        Some("") => Some(None),
        Some(m) => Some(Some(customers_method(&store, m, &customer, "default_payment_method")?)),
        None => None,
    };
    let cancel = form.bool("cancel_at_period_end")?;
    let metadata = form.metadata()?;
    let comment = form.str("cancellation_details.comment")?.map(str::to_owned);
    let feedback = form.str("cancellation_details.feedback")?.map(str::to_owned);
    let at = store.now(current["test_clock"].as_str());
    let updated = store.update_subscription(&id, "customer.subscription.updated", |s| {
        if let Some((price, quantity, quantity_given)) = new_price {
            if let Some(price) = price {
                let item = &mut s["items"]["data"][0];
                item["plan"] = objects::plan(&price);
                item["price"] = price;
            }
            if quantity_given {
                s["items"]["data"][0]["quantity"] = json!(quantity);
            }
        }
        if let Some(method) = method {
            s["default_payment_method"] = json!(method);
        }
        if let Some(cancel) = cancel {
            super::billing::cancel_at_period_end(s, cancel, at);
        }
        if let Some(comment) = comment {
            s["cancellation_details"]["comment"] = json!(comment);
        }
        if let Some(feedback) = feedback {
            s["cancellation_details"]["feedback"] = json!(feedback);
        }
        if let Some(metadata) = metadata {
            merge_metadata(s, metadata);
        }
    })?;
    out(&store, &form, updated)
}

async fn resume_subscription(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&["billing_cycle_anchor", "proration_behavior"])?;
    if form.str("billing_cycle_anchor")?.is_some_and(|a| a != "now") {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            "This stand-in resumes with billing_cycle_anchor=now.",
            Some("billing_cycle_anchor"),
        ));
    }
    let mut store = state.store();
    let resumed = store.resume(&id)?;
    out(&store, &form, resumed)
}

async fn cancel_subscription(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&["invoice_now", "prorate", "cancellation_details"])?;
    let mut store = state.store();
    let current = store.find("subscription", &id, "subscription", "id")?;
    if matches!(current["status"].as_str(), Some("canceled" | "incomplete_expired")) {
        return Err(ApiError::invalid("resource_missing", format!("No such subscription: '{id}'"), Some("id")));
    }
    let ended = store.end_subscription(&id, "cancellation_requested")?;
    out(&store, &form, ended)
}

// ---- invoices, charges, payment intents

async fn get_invoice(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "invoice", "invoice", &id, &form)
}

async fn list_invoices(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let subscription = form.str("subscription")?.map(str::to_owned);
    let (customer, status) = (form.str("customer")?.map(str::to_owned), form.str("status")?.map(str::to_owned));
    list(&store, &form, "invoice", "/v1/invoices", &["customer", "subscription", "status"], |i| {
        customer.as_ref().is_none_or(|c| i["customer"] == **c)
            && status.as_ref().is_none_or(|s| i["status"] == **s)
            && subscription
                .as_ref()
                .is_none_or(|s| i.pointer("/parent/subscription_details/subscription").is_some_and(|v| v == &json!(s)))
    })
}

/// `POST /v1/invoices/{id}/pay`: one more attempt, with `payment_method` or the now-default one.
async fn pay_invoice(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&["payment_method", "off_session"])?;
    let mut store = state.store();
    let invoice = store.find("invoice", &id, "invoice", "id")?;
    match invoice["status"].as_str() {
        Some("paid") => return Err(ApiError::invalid("invoice_already_paid", "Invoice is already paid", None)),
        Some("open") => {}
        other => {
            return Err(ApiError::invalid(
                "invoice_not_open",
                format!("This invoice can not be paid because it is {}.", other.unwrap_or("unknown")),
                None,
            ))
        }
    }
    let customer = invoice["customer"].as_str().unwrap_or_default().to_owned();
    let method = match form.str("payment_method")? {
        Some(m) => Some(customers_method(&store, m, &customer, "payment_method")?),
        None => None,
    };
    if let Some(failure) = store.attempt_invoice(&id, method.as_deref())? {
        return Err(failure);
    }
    if let Some(subscription) = invoice.pointer("/parent/subscription_details/subscription").and_then(Value::as_str) {
        store.settle(subscription)?;
    }
    let paid = store.find("invoice", &id, "invoice", "id")?;
    out(&store, &form, paid)
}

async fn get_charge(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "charge", "charge", &id, &form)
}

async fn list_charges(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let (customer, intent) = (form.str("customer")?.map(str::to_owned), form.str("payment_intent")?.map(str::to_owned));
    list(&store, &form, "charge", "/v1/charges", &["customer", "payment_intent"], |c| {
        customer.as_ref().is_none_or(|w| c["customer"] == **w)
            && intent.as_ref().is_none_or(|w| c["payment_intent"] == **w)
    })
}

async fn get_payment_intent(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "payment_intent", "payment_intent", &id, &form)
}

// ---- refunds and disputes

async fn create_refund(state: S, Params(form): Params) -> Reply {
    form.only(&["charge", "payment_intent", "amount", "reason", "metadata"])?;
    let mut store = state.store();
    let charge = match (form.str("charge")?, form.str("payment_intent")?) {
        (Some(charge), None) => charge.to_owned(),
        (None, Some(intent)) => {
            let intent = store.find("payment_intent", intent, "payment_intent", "payment_intent")?;
            intent["latest_charge"].as_str().unwrap_or_default().to_owned()
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "parameter_invalid_string",
                "You cannot pass both charge and payment_intent.",
                Some("payment_intent"),
            ))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "parameter_missing",
                "One of the following params should be provided for this request: payment_intent or charge.",
                None,
            ))
        }
    };
    let reason = form.str("reason")?;
    if reason.is_some_and(|r| !matches!(r, "duplicate" | "fraudulent" | "requested_by_customer")) {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
            Some("reason"),
        ));
    }
    let refund = store.refund(&charge, form.int("amount")?, reason, form.metadata()?.unwrap_or_default())?;
    out(&store, &form, refund)
}

async fn get_refund(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "refund", "refund", &id, &form)
}

async fn list_refunds(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let charge = form.str("charge")?.map(str::to_owned);
    list(&store, &form, "refund", "/v1/refunds", &["charge", "payment_intent"], |r| {
        charge.as_ref().is_none_or(|c| r["charge"] == **c)
    })
}

async fn get_dispute(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "dispute", "dispute", &id, &form)
}

async fn list_disputes(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let charge = form.str("charge")?.map(str::to_owned);
    let intent = form.str("payment_intent")?.map(str::to_owned);
    list(&store, &form, "dispute", "/v1/disputes", &["charge", "payment_intent"], |d| {
        charge.as_ref().is_none_or(|c| d["charge"] == **c) && intent.as_ref().is_none_or(|c| d["payment_intent"] == **c)
    })
}

async fn update_dispute(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&["evidence", "metadata", "submit"])?;
    let evidence = match form.get("evidence") {
        None => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                "parameter_invalid_string",
                "Invalid evidence: must be a hash",
                Some("evidence"),
            ))
        }
    };
    let mut store = state.store();
    let dispute = store.dispute_update(&id, evidence, form.metadata()?, form.bool("submit")?.unwrap_or(true), false)?;
    out(&store, &form, dispute)
}

async fn close_dispute(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&[])?;
    let mut store = state.store();
    let dispute = store.dispute_update(&id, Map::new(), None, false, true)?;
    out(&store, &form, dispute)
}

// ---- webhook endpoints and events

fn enabled_events(form: &Form) -> ApiResult<Option<Vec<String>>> {
    if form.get("enabled_events").is_none() {
        return Ok(None);
    }
    let events = form.strings("enabled_events")?;
    if events.is_empty() || events.iter().any(|e| e.is_empty() || e.contains(char::is_whitespace)) {
        return Err(ApiError::invalid(
            "parameter_invalid_array",
            "Invalid enabled_events: name event types or *",
            Some("enabled_events"),
        ));
    }
    Ok(Some(events))
}

fn endpoint_url(form: &Form, required: bool) -> ApiResult<Option<String>> {
    let url = if required { Some(form.required("url")?) } else { form.str("url")? };
    match url {
        None => Ok(None),
        Some(url) => match url::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => {
                Ok(Some(url.to_owned()))
            }
            _ => Err(ApiError::invalid("url_invalid", format!("Invalid URL: {url}"), Some("url"))),
        },
    }
}

async fn create_endpoint(state: S, Params(form): Params) -> Reply {
    form.only(&["url", "enabled_events", "api_version", "description", "metadata"])?;
    let url = endpoint_url(&form, true)?.unwrap_or_default();
    let events = enabled_events(&form)?.ok_or_else(|| {
        ApiError::invalid("parameter_missing", "Missing required param: enabled_events.", Some("enabled_events"))
    })?;
    let version = form.str("api_version")?;
    if version.is_some_and(|v| !super::valid_version(v)) {
        return Err(ApiError::invalid(
            "parameter_invalid_string",
            format!("Invalid api_version: {}", version.unwrap_or_default()),
            Some("api_version"),
        ));
    }
    let mut store = state.store();
    let at = store.now(None);
    let id = new_id("we");
    let secret = format!("whsec_{}", super::store::random_string(32));
    let endpoint = store.insert(json!({
        "id": id,
        "object": "webhook_endpoint",
        "api_version": version,
        "application": null,
        "created": at,
        "description": form.str("description")?,
        "enabled_events": events,
        "livemode": false,
        "metadata": form.metadata()?.unwrap_or_default(),
        "status": "enabled",
        "url": url,
    }));
    store.webhook_secrets.insert(id, secret.clone());
    // The secret is only ever shown in the answer to the creation, as Stripe does.
    let mut shown = endpoint;
    shown["secret"] = json!(secret);
    out(&store, &form, shown)
}

async fn update_endpoint(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&["url", "enabled_events", "description", "metadata", "disabled"])?;
    let url = endpoint_url(&form, false)?;
    let events = enabled_events(&form)?;
    let disabled = form.bool("disabled")?;
    let mut store = state.store();
    let mut endpoint = store.find("webhook_endpoint", &id, "webhook endpoint", "id")?;
    if let Some(url) = url {
        endpoint["url"] = json!(url);
    }
    if let Some(events) = events {
        endpoint["enabled_events"] = json!(events);
    }
    if let Some(disabled) = disabled {
        endpoint["status"] = json!(if disabled { "disabled" } else { "enabled" });
    }
    if let Some(description) = form.str("description")? {
        endpoint["description"] = json!(description);
    }
    if let Some(metadata) = form.metadata()? {
        merge_metadata(&mut endpoint, metadata);
    }
    store.put(&endpoint);
    out(&store, &form, endpoint)
}

async fn get_endpoint(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "webhook_endpoint", "webhook endpoint", &id, &form)
}

async fn list_endpoints(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    list(&store, &form, "webhook_endpoint", "/v1/webhook_endpoints", &[], |_| true)
}

async fn delete_endpoint(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&[])?;
    let mut store = state.store();
    store.find("webhook_endpoint", &id, "webhook endpoint", "id")?;
    store.remove(&id);
    store.webhook_secrets.remove(&id);
    Ok(Json(objects::deleted(&id, "webhook_endpoint")))
}

async fn get_event(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    get_one(&state, "event", "event", &id, &form)
}

async fn list_events(state: S, Params(form): Params) -> Reply {
    let store = state.store();
    let kind = form.str("type")?.map(str::to_owned);
    let matches = |t: &str| match &kind {
        None => true,
        Some(pattern) => match pattern.strip_suffix('*') {
            Some(prefix) => t.starts_with(prefix),
            None => t == pattern,
        },
    };
    list(&store, &form, "event", "/v1/events", &["type", "created", "delivery_success"], |e| {
        matches(e["type"].as_str().unwrap_or_default())
    })
}

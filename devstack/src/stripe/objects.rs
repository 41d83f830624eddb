//! Stripe's objects as API version `2025-03-31.basil` returns them, field names and types after Stripe's
//! example objects (`testdata/stripe/fixtures.json`), and the older layout an endpoint or request pinned to
//! an earlier version gets (§ "API version" in `docs/protocols.md`).

use serde_json::{json, Map, Value};

/// The first version with the basil layout.
const BASIL: &str = "2025-03-31";

fn card_details(brand: &str, last4: &str) -> Value {
    json!({
        "brand": brand,
        "checks": { "address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass" },
        "country": "US",
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": format!("devstack{last4}"),
        "funding": "credit",
        "last4": last4,
    })
}

pub fn customer(
    id: &str,
    email: Option<&str>,
    name: Option<&str>,
    metadata: Map<String, Value>,
    clock: Option<&str>,
    created: i64,
) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": created,
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": email,
        "invoice_prefix": id.trim_start_matches("cus_").chars().take(8).collect::<String>().to_uppercase(),
        "invoice_settings": { "custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null },
        "livemode": false,
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": clock,
    })
}

pub fn product(id: &str, name: &str, description: Option<&str>, metadata: Map<String, Value>, created: i64) -> Value {
    json!({
        "id": id,
        "object": "product",
        "active": true,
        "created": created,
        "default_price": null,
        "description": description,
        "images": [],
        "livemode": false,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": null,
        "tax_code": null,
        "unit_label": null,
        "updated": created,
        "url": null,
        "type": "service",
    })
}

pub struct NewPrice<'a> {
    pub id: &'a str,
    pub product: &'a str,
    pub currency: &'a str,
    pub unit_amount: i64,
    /// `(interval, interval_count)`; `None`: a one-time price.
    pub recurring: Option<(&'a str, i64)>,
    pub nickname: Option<&'a str>,
    pub lookup_key: Option<&'a str>,
    pub metadata: Map<String, Value>,
    pub created: i64,
}

pub fn price(new: NewPrice<'_>) -> Value {
    let recurring = new.recurring.map(|(interval, count)| {
        json!({ "interval": interval, "interval_count": count, "meter": null, "usage_type": "licensed", "trial_period_days": null })
    });
    json!({
        "id": new.id,
        "object": "price",
        "active": true,
        "billing_scheme": "per_unit",
        "created": new.created,
        "currency": new.currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": new.lookup_key,
        "metadata": new.metadata,
        "nickname": new.nickname,
        "product": new.product,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": if new.recurring.is_some() { "recurring" } else { "one_time" },
        "unit_amount": new.unit_amount,
        "unit_amount_decimal": new.unit_amount.to_string(),
    })
}

/// The legacy `plan` view of a recurring price that subscription items still carry.
pub fn plan(price: &Value) -> Value {
    json!({
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"],
        "livemode": false,
        "metadata": price["metadata"],
        "meter": null,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": null,
        "trial_period_days": null,
        "usage_type": "licensed",
    })
}

pub fn payment_method(id: &str, brand: &str, last4: &str, customer: Option<&str>, created: i64) -> Value {
    let mut card = card_details(brand, last4);
    card["display_brand"] = json!(brand);
    card["networks"] = json!({ "available": [brand], "preferred": null });
    card["three_d_secure_usage"] = json!({ "supported": true });
    card["regulated_status"] = json!("unregulated");
    json!({
        "id": id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": { "city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null },
            "email": null, "name": null, "phone": null, "tax_id": null
        },
        "card": card,
        "created": created,
        "customer": customer,
        "customer_account": null,
        "livemode": false,
        "metadata": {},
        "type": "card",
    })
}

pub fn subscription_item(
    id: &str,
    subscription: &str,
    price: &Value,
    quantity: i64,
    start: i64,
    end: i64,
    created: i64,
) -> Value {
    json!({
        "id": id,
        "object": "subscription_item",
        "created": created,
        "current_period_end": end,
        "current_period_start": start,
        "discounts": [],
        "metadata": {},
        "plan": plan(price),
        "price": price,
        "quantity": quantity,
        "subscription": subscription,
        "tax_rates": [],
    })
}

pub struct NewSubscription<'a> {
    pub id: &'a str,
    pub customer: &'a str,
    pub item: Value,
    pub status: &'a str,
    pub default_payment_method: Option<&'a str>,
    pub trial: Option<(i64, i64)>,
    pub metadata: Map<String, Value>,
    pub clock: Option<&'a str>,
    pub created: i64,
}

pub fn subscription(new: NewSubscription<'_>) -> Value {
    json!({
        "id": new.id,
        "object": "subscription",
        "application": null,
        "application_fee_percent": null,
        "automatic_tax": { "enabled": false, "liability": null, "disabled_reason": null },
        "billing_cycle_anchor": new.item["current_period_end"],
        "billing_cycle_anchor_config": null,
        "billing_mode": { "type": "classic" },
        "cancel_at": null,
        "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": { "comment": null, "feedback": null, "reason": null },
        "collection_method": "charge_automatically",
        "created": new.created,
        "currency": new.item["price"]["currency"],
        "customer": new.customer,
        "customer_account": null,
        "days_until_due": null,
        "default_payment_method": new.default_payment_method,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "ended_at": null,
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": {
            "object": "list",
            "data": [new.item],
            "has_more": false,
            "url": format!("/v1/subscription_items?subscription={}", new.id),
        },
        "latest_invoice": null,
        "livemode": false,
        "metadata": new.metadata,
        "next_pending_invoice_item_invoice": null,
        "on_behalf_of": null,
        "pause_collection": null,
        "payment_settings": { "payment_method_types": null, "save_default_payment_method": "off" },
        "pending_invoice_item_interval": null,
        "pending_setup_intent": null,
        "pending_update": null,
        "schedule": null,
        "start_date": new.created,
        "status": new.status,
        "test_clock": new.clock,
        "transfer_data": null,
        "trial_end": new.trial.map(|t| t.1),
        "trial_settings": { "end_behavior": { "missing_payment_method": "create_invoice" } },
        "trial_start": new.trial.map(|t| t.0),
    })
}

pub struct NewInvoice<'a> {
    pub id: &'a str,
    pub customer: &'a Value,
    pub subscription: &'a Value,
    pub billing_reason: &'a str,
    /// The name of the price's product, for the line's description.
    pub product_name: &'a str,
    pub amount: i64,
    pub created: i64,
}

/// A finalized, still open invoice for one period of a subscription (its only line: the item's price).
pub fn invoice(new: NewInvoice<'_>) -> Value {
    let item = &new.subscription["items"]["data"][0];
    let price = &item["price"];
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let (start, end) = (item["current_period_start"].clone(), item["current_period_end"].clone());
    let line = json!({
        "id": format!("il_{}", new.id.trim_start_matches("in_")),
        "object": "line_item",
        "amount": new.amount,
        "currency": price["currency"],
        "description": format!(
            "{quantity} × {} (at {} {}.{:02} / {})",
            new.product_name,
            price["currency"].as_str().unwrap_or("usd").to_uppercase(),
            price["unit_amount"].as_i64().unwrap_or(0) / 100,
            price["unit_amount"].as_i64().unwrap_or(0) % 100,
            price["recurring"]["interval"].as_str().unwrap_or("month")
        ),
        "discount_amounts": [],
        "discountable": true,
        "discounts": [],
        "invoice": new.id,
        "livemode": false,
        "metadata": {},
        "parent": {
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": null,
                "proration": false,
                "subscription": new.subscription["id"],
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        },
        "period": { "end": end, "start": start },
        "pretax_credit_amounts": [],
        "pricing": { "type": "price_details", "unit_amount_decimal": price["unit_amount_decimal"] },
        "quantity": quantity,
        "subtotal": new.amount,
        "taxes": [],
    });
    let sequence = new.customer["next_invoice_sequence"].as_i64().unwrap_or(1);
    json!({
        "id": new.id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Tollgate devstack",
        "account_tax_ids": null,
        "amount_due": new.amount,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": new.amount,
        "amount_shipping": 0,
        "application": null,
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": true,
        "automatic_tax": { "enabled": false, "liability": null, "status": null, "disabled_reason": null, "provider": null },
        "automatically_finalizes_at": null,
        "billing_reason": new.billing_reason,
        "collection_method": "charge_automatically",
        "created": new.created,
        "currency": price["currency"],
        "custom_fields": null,
        "customer": new.customer["id"],
        "customer_account": null,
        "customer_address": null,
        "customer_email": new.customer["email"],
        "customer_name": new.customer["name"],
        "customer_phone": null,
        "customer_shipping": null,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "due_date": null,
        "effective_at": new.created,
        "ending_balance": 0,
        "footer": null,
        "from_invoice": null,
        "hosted_invoice_url": format!("https://invoice.stripe.com/i/devstack/{}", new.id),
        "invoice_pdf": null,
        "issuer": { "type": "self" },
        "last_finalization_error": null,
        "latest_revision": null,
        "lines": { "object": "list", "data": [line], "has_more": false, "url": format!("/v1/invoices/{}/lines", new.id) },
        "livemode": false,
        "metadata": {},
        "next_payment_attempt": null,
        "number": format!("{}-{sequence:04}", new.customer["invoice_prefix"].as_str().unwrap_or("DEV")),
        "on_behalf_of": null,
        "parent": {
            "quote_details": null,
            "subscription_details": { "metadata": new.subscription["metadata"], "subscription": new.subscription["id"] },
            "type": "subscription_details",
        },
        "payment_settings": { "default_mandate": null, "payment_method_types": null },
        "period_end": end,
        "period_start": start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": null,
        "rendering": null,
        "shipping_cost": null,
        "shipping_details": null,
        "starting_balance": 0,
        "statement_descriptor": null,
        "status": "open",
        "status_transitions": { "finalized_at": new.created, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null },
        "subtotal": new.amount,
        "subtotal_excluding_tax": new.amount,
        "test_clock": new.subscription["test_clock"],
        "total": new.amount,
        "total_discount_amounts": [],
        "total_excluding_tax": new.amount,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": new.created,
    })
}

pub struct NewCharge<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub customer: Option<&'a str>,
    pub email: Option<&'a str>,
    pub payment_intent: &'a str,
    pub payment_method: &'a Value,
    pub description: Option<&'a str>,
    pub succeeded: bool,
    pub created: i64,
}

pub fn charge(new: NewCharge<'_>) -> Value {
    let card = &new.payment_method["card"];
    let mut details = card_details(card["brand"].as_str().unwrap_or("visa"), card["last4"].as_str().unwrap_or("4242"));
    details["network"] = card["brand"].clone();
    details["amount_authorized"] = json!(new.succeeded.then_some(new.amount));
    let outcome = if new.succeeded {
        json!({ "advice_code": null, "network_advice_code": null, "network_decline_code": null, "network_status": "approved_by_network", "reason": null, "seller_message": "Payment complete.", "type": "authorized" })
    } else {
        json!({ "advice_code": "try_again_later", "network_advice_code": null, "network_decline_code": null, "network_status": "declined_by_network", "reason": "generic_decline", "seller_message": "The bank did not return any further details with this decline.", "type": "issuer_declined" })
    };
    json!({
        "id": new.id,
        "object": "charge",
        "amount": new.amount,
        "amount_captured": if new.succeeded { new.amount } else { 0 },
        "amount_refunded": 0,
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": new.succeeded.then(|| format!("txn_{}", new.id.trim_start_matches("ch_"))),
        "billing_details": {
            "address": { "city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null },
            "email": new.email, "name": null, "phone": null, "tax_id": null
        },
        "calculated_statement_descriptor": "TOLLGATE DEVSTACK",
        "captured": new.succeeded,
        "created": new.created,
        "currency": new.currency,
        "customer": new.customer,
        "description": new.description,
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": (!new.succeeded).then_some("card_declined"),
        "failure_message": (!new.succeeded).then_some("Your card was declined."),
        "fraud_details": {},
        "livemode": false,
        "metadata": {},
        "on_behalf_of": null,
        "outcome": outcome,
        "paid": new.succeeded,
        "payment_intent": new.payment_intent,
        "payment_method": new.payment_method["id"],
        "payment_method_details": { "card": details, "type": "card" },
        "receipt_email": null,
        "receipt_number": null,
        "receipt_url": format!("https://pay.stripe.com/receipts/devstack/{}", new.id),
        "refunded": false,
        "review": null,
        "shipping": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": if new.succeeded { "succeeded" } else { "failed" },
        "transfer_data": null,
        "transfer_group": null,
    })
}

pub fn payment_intent(id: &str, charge: &Value, description: Option<&str>) -> Value {
    let succeeded = charge["status"] == "succeeded";
    let amount = charge["amount"].clone();
    let error = (!succeeded).then(|| {
        json!({
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
            "charge": charge["id"],
        })
    });
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": { "tip": {} },
        "amount_received": if succeeded { amount } else { json!(0) },
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": null,
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic",
        "client_secret": format!("{id}_secret_{}", super::store::random_string(24)),
        "confirmation_method": "automatic",
        "created": charge["created"],
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": null,
        "description": description,
        "excluded_payment_method_types": null,
        "last_payment_error": error,
        "latest_charge": charge["id"],
        "livemode": false,
        "metadata": {},
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": if succeeded { charge["payment_method"].clone() } else { Value::Null },
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": if succeeded { "succeeded" } else { "requires_payment_method" },
        "transfer_data": null,
        "transfer_group": null,
    })
}

pub fn refund(
    id: &str,
    charge: &Value,
    amount: i64,
    reason: Option<&str>,
    metadata: Map<String, Value>,
    created: i64,
) -> Value {
    json!({
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": format!("txn_{}", id.trim_start_matches("re_")),
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "destination_details": { "card": { "type": "refund" }, "type": "card" },
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null,
    })
}

pub const EVIDENCE_FIELDS: &[&str] = &[
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
];

pub fn dispute(id: &str, charge: &Value, created: i64) -> Value {
    let mut evidence: Map<String, Value> = EVIDENCE_FIELDS.iter().map(|f| ((*f).to_owned(), Value::Null)).collect();
    evidence.insert("enhanced_evidence".to_owned(), json!({}));
    let card = &charge["payment_method_details"]["card"];
    json!({
        "id": id,
        "object": "dispute",
        "amount": charge["amount"],
        "balance_transactions": [],
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": evidence,
        "evidence_details": { "due_by": created + 21 * 86_400, "enhanced_eligibility": {}, "has_evidence": false, "past_due": false, "submission_count": 0 },
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "payment_method_details": { "card": { "brand": card["brand"], "case_type": "chargeback", "network": card["network"], "network_reason_code": "10.4" }, "type": "card" },
        "reason": "fraudulent",
        "status": "needs_response",
    })
}

pub fn test_clock(id: &str, frozen_time: i64, name: Option<&str>, created: i64) -> Value {
    json!({
        "id": id,
        "object": "test_helpers.test_clock",
        "created": created,
        "deletes_after": created + 30 * 86_400,
        "frozen_time": frozen_time,
        "livemode": false,
        "name": name,
        "status": "ready",
        "status_details": {},
    })
}

pub fn deleted(id: &str, object: &str) -> Value {
    json!({ "id": id, "object": object, "deleted": true })
}

/// Whether `version` predates basil (`2024-06-20`, `2025-02-24.acacia`, …).
pub fn is_legacy(version: &str) -> bool {
    version.get(..10).is_some_and(|date| date < BASIL)
}

/// `value` in the layout of an API version before basil: a subscription's period on the subscription (not
/// its items), an invoice's subscription on `invoice.subscription` (not `parent`). Applied to every
/// object inside `value` (lists, expanded fields).
pub fn legacy_tree(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(legacy_tree),
        Value::Object(map) => {
            for child in map.values_mut() {
                legacy_tree(child);
            }
            match value["object"].as_str() {
                Some("subscription") => legacy_subscription(value),
                Some("invoice") => legacy_invoice(value),
                _ => {}
            }
        }
        _ => {}
    }
}

/// The same move on a subscription's `previous_attributes`.
pub fn legacy_subscription(value: &mut Value) {
    let first = value.pointer("/items/data/0").cloned();
    if let (Some(first), Some(map)) = (first, value.as_object_mut()) {
        for field in ["current_period_start", "current_period_end"] {
            if let Some(v) = first.get(field) {
                map.insert(field.to_owned(), v.clone());
            }
        }
    }
    if let Some(items) = value.pointer_mut("/items/data").and_then(Value::as_array_mut) {
        for item in items {
            if let Some(item) = item.as_object_mut() {
                item.remove("current_period_start");
                item.remove("current_period_end");
            }
        }
    }
}

pub fn legacy_invoice(value: &mut Value) {
    let subscription = value.pointer("/parent/subscription_details/subscription").cloned();
    if let Some(map) = value.as_object_mut() {
        if map.contains_key("parent") || subscription.is_some() {
            map.insert("subscription".to_owned(), subscription.unwrap_or(Value::Null));
            map.remove("parent");
        }
    }
}

//! What Stripe Billing does with the objects: charging a test card, paying an invoice, creating a
//! subscription, renewing it at period end (and retrying a failed renewal on the account's retry
//! schedule), ending it, refunds and disputes. Every state change emits the event Stripe would, at the time
//! of the customer's clock.

use super::form::{ApiError, ApiResult};
use super::objects::{self, NewCharge, NewInvoice, NewSubscription};
use super::store::{new_id, Card, Store};
use chrono::{DateTime, Months, TimeDelta};
use serde_json::{json, Map, Value};

/// 23 hours: an `incomplete` subscription whose first invoice stays unpaid expires (Stripe's documented window).
pub const INCOMPLETE_EXPIRES_AFTER: i64 = 23 * 3_600;

/// The end of one billing period that starts at `start`.
pub fn period_end(start: i64, interval: &str, count: i64) -> i64 {
    let Some(at) = DateTime::from_timestamp(start, 0) else { return start };
    let count = count.max(1);
    let end = match interval {
        "day" => at.checked_add_signed(TimeDelta::days(count)),
        "week" => at.checked_add_signed(TimeDelta::weeks(count)),
        "year" => at.checked_add_months(Months::new((12 * count) as u32)),
        _ => at.checked_add_months(Months::new(count as u32)),
    };
    end.map(|e| e.timestamp()).unwrap_or(start)
}

/// `previous_attributes`: the top-level fields of `before` that differ in `after`, with their old values.
pub fn changed(before: &Value, after: &Value) -> Map<String, Value> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else { return Map::new() };
    before.iter().filter(|(k, v)| after.get(k.as_str()) != Some(v)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// `cancel_at_period_end` set or cleared, with the fields Stripe sets beside it.
pub fn cancel_at_period_end(subscription: &mut Value, cancel: bool, at: i64) {
    subscription["cancel_at_period_end"] = json!(cancel);
    subscription["cancel_at"] =
        if cancel { subscription["items"]["data"][0]["current_period_end"].clone() } else { Value::Null };
    subscription["canceled_at"] = if cancel { json!(at) } else { Value::Null };
    subscription["cancellation_details"]["reason"] = if cancel { json!("cancellation_requested") } else { Value::Null };
}

pub struct ChargeOutcome {
    pub charge: Value,
    pub payment_intent: Value,
}

impl ChargeOutcome {
    pub fn succeeded(&self) -> bool {
        self.charge["status"] == "succeeded"
    }

    pub fn declined(&self) -> ApiError {
        ApiError::card_declined(self.charge["id"].as_str(), self.payment_intent["id"].as_str())
    }
}

impl Store {
    fn customer_time(&self, customer: &str) -> i64 {
        self.now(self.clock_of_customer(customer).as_deref())
    }

    /// Charges `amount` to a card of the customer: a payment intent and its charge, the events of both, and
    /// for `pm_card_createDispute` the dispute that follows.
    pub fn charge_card(
        &mut self,
        customer: &Value,
        payment_method: &str,
        amount: i64,
        currency: &str,
        description: Option<&str>,
    ) -> ApiResult<ChargeOutcome> {
        let method = self.find("payment_method", payment_method, "PaymentMethod", "payment_method")?;
        let card = self.cards.get(payment_method).copied().unwrap_or(Card::Visa);
        let customer_id = customer["id"].as_str();
        let at = customer_id.map(|c| self.customer_time(c)).unwrap_or_else(|| self.now(None));
        let (charge_id, pi_id) = (new_id("ch"), new_id("pi"));
        let charge = objects::charge(NewCharge {
            id: &charge_id,
            amount,
            currency,
            customer: customer_id,
            email: customer["email"].as_str(),
            payment_intent: &pi_id,
            payment_method: &method,
            description,
            succeeded: card != Card::ChargeFails,
            created: at,
        });
        let payment_intent = objects::payment_intent(&pi_id, &charge, description);
        self.insert(payment_intent.clone());
        let mut charge = self.insert(charge);
        if charge["status"] == "succeeded" {
            self.emit("payment_intent.succeeded", &payment_intent, None, at);
            self.emit("charge.succeeded", &charge, None, at);
            if card == Card::Disputed {
                let dispute = self.insert(objects::dispute(&new_id("dp"), &charge, at));
                charge["disputed"] = json!(true);
                self.put(&charge);
                self.emit("charge.dispute.created", &dispute, None, at);
                self.emit("charge.dispute.funds_withdrawn", &dispute, None, at);
            }
        } else {
            self.emit("payment_intent.payment_failed", &payment_intent, None, at);
            self.emit("charge.failed", &charge, None, at);
        }
        Ok(ChargeOutcome { charge, payment_intent })
    }

    /// One payment attempt on an open invoice. `Ok(None)`: paid (or nothing to pay); `Ok(Some(error))`:
    /// declined or no payment method, the invoice stays open and `invoice.payment_failed` was emitted.
    pub fn attempt_invoice(&mut self, invoice_id: &str, payment_method: Option<&str>) -> ApiResult<Option<ApiError>> {
        let mut invoice = self.find("invoice", invoice_id, "invoice", "invoice")?;
        let customer_id = invoice["customer"].as_str().unwrap_or_default().to_owned();
        let customer = self.find("customer", &customer_id, "customer", "customer")?;
        let at = self.customer_time(&customer_id);
        let amount = invoice["amount_remaining"].as_i64().unwrap_or(0);
        let subscription = invoice.pointer("/parent/subscription_details/subscription").and_then(Value::as_str);
        let from_subscription =
            subscription.and_then(|s| self.objects.get(s)).and_then(|s| self.subscription_payment_method(s));
        let method = payment_method.map(str::to_owned).or(from_subscription).or_else(|| {
            let customer = self.objects.get(&customer_id);
            customer.and_then(|c| c["invoice_settings"]["default_payment_method"].as_str()).map(str::to_owned)
        });
        let failure = if amount == 0 {
            None
        } else if let Some(method) = method {
            let currency = invoice["currency"].as_str().unwrap_or("usd").to_owned();
            let description = if invoice["billing_reason"] == "subscription_create" {
                "Subscription creation"
            } else {
                "Subscription update"
            };
            let outcome = self.charge_card(&customer, &method, amount, &currency, Some(description))?;
            (!outcome.succeeded()).then(|| outcome.declined())
        } else {
            Some(ApiError::invalid(
                "invoice_no_payment_method_types",
                "This invoice cannot be paid: the customer has no default payment method and none was given.",
                Some("payment_method"),
            ))
        };
        invoice["attempted"] = json!(true);
        invoice["attempt_count"] = json!(invoice["attempt_count"].as_i64().unwrap_or(0) + i64::from(amount > 0));
        match &failure {
            None => {
                invoice["status"] = json!("paid");
                invoice["amount_paid"] = json!(amount + invoice["amount_paid"].as_i64().unwrap_or(0));
                invoice["amount_remaining"] = json!(0);
                invoice["next_payment_attempt"] = Value::Null;
                invoice["status_transitions"]["paid_at"] = json!(at);
                self.put(&invoice);
                self.attempts.remove(invoice_id);
                self.emit("invoice.paid", &invoice, None, at);
                self.emit("invoice.payment_succeeded", &invoice, None, at);
            }
            Some(_) => {
                let failed = self.attempts.entry(invoice_id.to_owned()).or_insert(0);
                *failed += 1;
                let failed = *failed;
                // Stripe retries renewals on the account's schedule; a first invoice is never retried.
                let next = if invoice["billing_reason"] == "subscription_create" {
                    None
                } else {
                    self.settings.retry_days.get(failed - 1).map(|days| at + days * 86_400)
                };
                invoice["next_payment_attempt"] = json!(next);
                self.put(&invoice);
                self.emit("invoice.payment_failed", &invoice, None, at);
            }
        }
        Ok(failure)
    }

    /// Applies `change` to a subscription and emits `customer.subscription.updated` with the fields it
    /// changed (`kind` for the paused/resumed/deleted variants).
    pub fn update_subscription(&mut self, id: &str, kind: &str, change: impl FnOnce(&mut Value)) -> ApiResult {
        let before = self.find("subscription", id, "subscription", "id")?;
        let mut after = before.clone();
        change(&mut after);
        let previous = changed(&before, &after);
        self.put(&after);
        if !previous.is_empty() || kind != "customer.subscription.updated" {
            let at = self.customer_time(after["customer"].as_str().unwrap_or_default());
            let previous = (kind == "customer.subscription.updated").then_some(Value::Object(previous));
            self.emit(kind, &after, previous, at);
        }
        Ok(after)
    }

    /// A new invoice for the subscription's current period, charged at once.
    fn bill(&mut self, subscription_id: &str, reason: &str, free: bool) -> ApiResult<(Value, Option<ApiError>)> {
        let subscription = self.find("subscription", subscription_id, "subscription", "subscription")?;
        let customer_id = subscription["customer"].as_str().unwrap_or_default().to_owned();
        let mut customer = self.find("customer", &customer_id, "customer", "customer")?;
        let at = self.customer_time(&customer_id);
        let item = &subscription["items"]["data"][0];
        let amount = if free {
            0
        } else {
            item["price"]["unit_amount"].as_i64().unwrap_or(0) * item["quantity"].as_i64().unwrap_or(1)
        };
        let id = new_id("in");
        let product = item["price"]["product"].as_str().and_then(|p| self.objects.get(p));
        let product_name = product.and_then(|p| p["name"].as_str()).unwrap_or("Subscription").to_owned();
        let invoice = self.insert(objects::invoice(NewInvoice {
            id: &id,
            customer: &customer,
            subscription: &subscription,
            billing_reason: reason,
            product_name: &product_name,
            amount,
            created: at,
        }));
        customer["next_invoice_sequence"] = json!(customer["next_invoice_sequence"].as_i64().unwrap_or(1) + 1);
        if customer["currency"].is_null() {
            customer["currency"] = invoice["currency"].clone();
        }
        self.put(&customer);
        let mut stored = subscription;
        stored["latest_invoice"] = json!(id);
        self.put(&stored);
        self.emit("invoice.created", &invoice, None, at);
        self.emit("invoice.finalized", &invoice, None, at);
        let failure = self.attempt_invoice(&id, None)?;
        let invoice = self.find("invoice", &id, "invoice", "invoice")?;
        Ok((invoice, failure))
    }

    /// `POST /v1/subscriptions` and Checkout's subscription: the first invoice is charged at once (free during
    /// a trial); a declined first payment leaves the subscription `incomplete`.
    pub fn create_subscription(&mut self, customer_id: &str, price: &Value, terms: Terms) -> ApiResult {
        let Terms { quantity, payment_method, trial_days, metadata, missing_payment_method } = terms;
        let payment_method = payment_method.as_deref();
        let clock = self.clock_of_customer(customer_id);
        let at = self.now(clock.as_deref());
        let (interval, count) = (
            price["recurring"]["interval"].as_str().unwrap_or("month"),
            price["recurring"]["interval_count"].as_i64().unwrap_or(1),
        );
        let trial = trial_days.filter(|d| *d > 0).map(|days| (at, at + days * 86_400));
        let end = trial.map(|t| t.1).unwrap_or_else(|| period_end(at, interval, count));
        let id = new_id("sub");
        let item = objects::subscription_item(&new_id("si"), &id, price, quantity, at, end, at);
        let status = if trial.is_some() { "trialing" } else { "incomplete" };
        let mut subscription = objects::subscription(NewSubscription {
            id: &id,
            customer: customer_id,
            item,
            status,
            default_payment_method: payment_method,
            trial,
            metadata,
            clock: clock.as_deref(),
            created: at,
        });
        if let Some(behavior) = missing_payment_method {
            subscription["trial_settings"]["end_behavior"]["missing_payment_method"] = json!(behavior);
        }
        self.insert(subscription);
        let (_, failure) = self.bill(&id, "subscription_create", trial.is_some())?;
        let mut subscription = self.find("subscription", &id, "subscription", "subscription")?;
        if trial.is_none() && failure.is_none() {
            subscription["status"] = json!("active");
            self.put(&subscription);
        }
        self.emit("customer.subscription.created", &subscription, None, at);
        Ok(subscription)
    }

    /// Ends a subscription now (`DELETE`, the end of a period with `cancel_at_period_end`, or retries run out).
    pub fn end_subscription(&mut self, id: &str, reason: &str) -> ApiResult {
        let subscription = self.find("subscription", id, "subscription", "id")?;
        let at = self.customer_time(subscription["customer"].as_str().unwrap_or_default());
        self.update_subscription(id, "customer.subscription.deleted", |s| {
            s["status"] = json!("canceled");
            s["ended_at"] = json!(at);
            if s["canceled_at"].is_null() {
                s["canceled_at"] = json!(at);
            }
            s["cancellation_details"]["reason"] = json!(reason);
        })
    }

    /// The subscription's next due moment and what happens then, if it is billed at all.
    pub fn next_due(&self, subscription: &Value) -> Option<(i64, Due)> {
        let status = subscription["status"].as_str()?;
        let id = subscription["id"].as_str()?.to_owned();
        if status == "incomplete" {
            let expires = subscription["created"].as_i64()? + INCOMPLETE_EXPIRES_AFTER;
            return Some((expires, Due::Expire(id)));
        }
        if !matches!(status, "trialing" | "active" | "past_due") {
            return None;
        }
        let end = subscription.pointer("/items/data/0/current_period_end")?.as_i64()?;
        let period =
            if subscription["cancel_at_period_end"] == true { Due::End(id.clone()) } else { Due::Renew(id.clone()) };
        let retry = subscription["latest_invoice"]
            .as_str()
            .and_then(|i| self.objects.get(i))
            .filter(|i| i["status"] == "open")
            .and_then(|i| Some((i["next_payment_attempt"].as_i64()?, Due::Retry(i["id"].as_str()?.to_owned()))));
        match retry {
            Some(retry) if retry.0 < end => Some(retry),
            _ => Some((end, period)),
        }
    }

    /// Does what is due: a renewal, a retry, an end, or an expiry.
    pub fn run_due(&mut self, due: Due) -> ApiResult<()> {
        match due {
            Due::Expire(id) => {
                self.update_subscription(&id, "customer.subscription.updated", |s| {
                    s["status"] = json!("incomplete_expired")
                })?;
            }
            Due::End(id) => {
                self.end_subscription(&id, "cancellation_requested")?;
            }
            Due::Renew(id) => self.renew(&id)?,
            Due::Retry(invoice) => self.retry(&invoice)?,
        }
        Ok(())
    }

    fn renew(&mut self, id: &str) -> ApiResult<()> {
        let before = self.find("subscription", id, "subscription", "id")?;
        let item = &before["items"]["data"][0];
        let start = item["current_period_end"].as_i64().unwrap_or_default();
        if before["status"] == "trialing" && self.subscription_payment_method(&before).is_none() {
            // A trial that ends without a payment method does what `trial_settings` says.
            match before["trial_settings"]["end_behavior"]["missing_payment_method"].as_str() {
                Some("pause") => return self.pause(id),
                Some("cancel") => return self.end_subscription(id, "cancellation_requested").map(drop),
                _ => {}
            }
        }
        self.start_period(id, start, "subscription_cycle")
    }

    /// The card a subscription is charged to: its own default, else its customer's.
    pub fn subscription_payment_method(&self, subscription: &Value) -> Option<String> {
        let customer = subscription["customer"].as_str().and_then(|c| self.objects.get(c));
        subscription["default_payment_method"]
            .as_str()
            .or_else(|| customer.and_then(|c| c["invoice_settings"]["default_payment_method"].as_str()))
            .map(str::to_owned)
    }

    fn pause(&mut self, id: &str) -> ApiResult<()> {
        let paused =
            self.update_subscription(id, "customer.subscription.updated", |s| s["status"] = json!("paused"))?;
        let at = self.customer_time(paused["customer"].as_str().unwrap_or_default());
        self.emit("customer.subscription.paused", &paused, None, at);
        Ok(())
    }

    /// `POST /v1/subscriptions/{id}/resume`: a paused subscription starts a new period now, charged at once.
    pub fn resume(&mut self, id: &str) -> ApiResult {
        let current = self.find("subscription", id, "subscription", "id")?;
        if current["status"] != "paused" {
            return Err(ApiError::state(format!(
                "Subscription {id} is not paused; only paused subscriptions can be resumed."
            )));
        }
        let at = self.customer_time(current["customer"].as_str().unwrap_or_default());
        self.start_period(id, at, "subscription_update")?;
        let resumed = self.find("subscription", id, "subscription", "id")?;
        self.emit("customer.subscription.resumed", &resumed, None, at);
        Ok(resumed)
    }

    /// A new period from `start`, its invoice charged: `active`, or `past_due` when the payment fails.
    fn start_period(&mut self, id: &str, start: i64, reason: &str) -> ApiResult<()> {
        let before = self.find("subscription", id, "subscription", "id")?;
        let item = &before["items"]["data"][0];
        let price = &item["price"]["recurring"];
        let end = period_end(
            start,
            price["interval"].as_str().unwrap_or("month"),
            price["interval_count"].as_i64().unwrap_or(1),
        );
        let mut renewed = before.clone();
        renewed["items"]["data"][0]["current_period_start"] = json!(start);
        renewed["items"]["data"][0]["current_period_end"] = json!(end);
        self.put(&renewed);
        let (_, failure) = self.bill(id, reason, false)?;
        let open_elsewhere = self.open_invoices(id) > usize::from(failure.is_some());
        let mut after = self.find("subscription", id, "subscription", "id")?;
        after["status"] = json!(if failure.is_some() || open_elsewhere { "past_due" } else { "active" });
        if reason == "subscription_update" {
            // Resumed: the billing cycle starts again now.
            after["billing_cycle_anchor"] = json!(start);
        }
        if failure.is_some() && self.settings.retry_days.is_empty() {
            self.put(&after);
            return self.exhausted(id, &before);
        }
        self.put(&before);
        self.update_subscription(id, "customer.subscription.updated", |s| *s = after)?;
        Ok(())
    }

    fn open_invoices(&self, subscription: &str) -> usize {
        self.all("invoice")
            .iter()
            .filter(|i| {
                i["status"] == "open"
                    && i.pointer("/parent/subscription_details/subscription").and_then(Value::as_str)
                        == Some(subscription)
            })
            .count()
    }

    fn retry(&mut self, invoice_id: &str) -> ApiResult<()> {
        let invoice = self.find("invoice", invoice_id, "invoice", "invoice")?;
        let subscription = invoice
            .pointer("/parent/subscription_details/subscription")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let failure = self.attempt_invoice(invoice_id, None)?;
        match failure {
            None => self.settle(&subscription),
            Some(_) => {
                let invoice = self.find("invoice", invoice_id, "invoice", "invoice")?;
                if invoice["next_payment_attempt"].is_null() {
                    let before = self.find("subscription", &subscription, "subscription", "id")?;
                    self.exhausted(&subscription, &before)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Retries ran out: the account setting decides between `canceled` and `unpaid`.
    fn exhausted(&mut self, subscription: &str, before: &Value) -> ApiResult<()> {
        let current = self.find("subscription", subscription, "subscription", "id")?;
        self.put(before);
        if self.settings.after_retries == "unpaid" {
            self.update_subscription(subscription, "customer.subscription.updated", |s| {
                *s = current;
                s["status"] = json!("unpaid");
            })?;
        } else {
            self.put(&current);
            self.end_subscription(subscription, "payment_failed")?;
        }
        Ok(())
    }

    /// After a payment: a `past_due` or `unpaid` subscription with no open invoice left is `active` again.
    pub fn settle(&mut self, subscription: &str) -> ApiResult<()> {
        let Some(current) = self.objects.get(subscription).cloned() else { return Ok(()) };
        if matches!(current["status"].as_str(), Some("past_due" | "unpaid" | "incomplete"))
            && self.open_invoices(subscription) == 0
        {
            self.update_subscription(subscription, "customer.subscription.updated", |s| s["status"] = json!("active"))?;
        }
        Ok(())
    }

    /// `POST /v1/refunds`.
    pub fn refund(
        &mut self,
        charge_id: &str,
        amount: Option<i64>,
        reason: Option<&str>,
        metadata: Map<String, Value>,
    ) -> ApiResult {
        let mut charge = self.find("charge", charge_id, "charge", "charge")?;
        if charge["status"] != "succeeded" {
            return Err(ApiError::invalid(
                "charge_not_refundable",
                format!("Charge {charge_id} has not succeeded; it cannot be refunded."),
                Some("charge"),
            ));
        }
        if charge["disputed"] == true {
            return Err(ApiError::invalid(
                "charge_disputed",
                format!("Charge {charge_id} has been charged back; cannot issue a refund."),
                Some("charge"),
            ));
        }
        let remaining = charge["amount"].as_i64().unwrap_or(0) - charge["amount_refunded"].as_i64().unwrap_or(0);
        if remaining <= 0 {
            return Err(ApiError::invalid(
                "charge_already_refunded",
                format!("Charge {charge_id} has already been refunded."),
                Some("charge"),
            ));
        }
        let amount = amount.unwrap_or(remaining);
        if amount <= 0 || amount > remaining {
            return Err(ApiError::invalid(
                "amount_too_large",
                format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"),
                Some("amount"),
            ));
        }
        let at = charge["customer"].as_str().map(|c| self.customer_time(c)).unwrap_or_else(|| self.now(None));
        let refund = self.insert(objects::refund(&new_id("re"), &charge, amount, reason, metadata, at));
        let before = charge.clone();
        charge["amount_refunded"] = json!(charge["amount_refunded"].as_i64().unwrap_or(0) + amount);
        charge["refunded"] = json!(amount == remaining);
        self.put(&charge);
        self.emit("refund.created", &refund, None, at);
        self.emit("charge.refunded", &charge, Some(Value::Object(changed(&before, &charge))), at);
        Ok(refund)
    }

    /// `POST /v1/disputes/{id}` (submitting evidence) and `…/close`. In test mode the evidence text
    /// `winning_evidence` wins the dispute and `losing_evidence` loses it (Stripe's documented behaviour);
    /// other evidence leaves it `under_review`.
    pub fn dispute_update(
        &mut self,
        id: &str,
        evidence: Map<String, Value>,
        metadata: Option<Map<String, Value>>,
        submit: bool,
        close: bool,
    ) -> ApiResult {
        let mut dispute = self.find("dispute", id, "dispute", "dispute")?;
        if !matches!(
            dispute["status"].as_str(),
            Some("needs_response" | "warning_needs_response" | "under_review" | "warning_under_review")
        ) || (close && dispute["status"] == "under_review")
        {
            return Err(ApiError::state(format!(
                "This dispute is already closed (status {}).",
                dispute["status"].as_str().unwrap_or_default()
            )));
        }
        let before = dispute.clone();
        let charge = self.find("charge", dispute["charge"].as_str().unwrap_or_default(), "charge", "charge")?;
        let at = charge["customer"].as_str().map(|c| self.customer_time(c)).unwrap_or_else(|| self.now(None));
        for (field, value) in evidence {
            if !objects::EVIDENCE_FIELDS.contains(&field.as_str()) {
                return Err(ApiError::invalid(
                    "parameter_unknown",
                    format!("Received unknown parameter: evidence[{field}]"),
                    Some(&format!("evidence[{field}]")),
                ));
            }
            dispute["evidence"][&field] = value;
        }
        if let Some(metadata) = metadata {
            dispute["metadata"] = Value::Object(metadata);
        }
        let text = dispute["evidence"]["uncategorized_text"].as_str().unwrap_or_default().to_owned();
        let has_evidence = dispute["evidence"]
            .as_object()
            .is_some_and(|e| e.iter().any(|(k, v)| k != "enhanced_evidence" && !v.is_null()));
        dispute["evidence_details"]["has_evidence"] = json!(has_evidence);
        let status = if close {
            "lost"
        } else if submit {
            dispute["evidence_details"]["submission_count"] =
                json!(dispute["evidence_details"]["submission_count"].as_i64().unwrap_or(0) + 1);
            match text.as_str() {
                "winning_evidence" => "won",
                "losing_evidence" => "lost",
                _ => "under_review",
            }
        } else {
            dispute["status"].as_str().unwrap_or("needs_response")
        }
        .to_owned();
        dispute["status"] = json!(status);
        self.put(&dispute);
        if !close {
            self.emit("charge.dispute.updated", &dispute, Some(Value::Object(changed(&before, &dispute))), at);
        }
        if matches!(status.as_str(), "won" | "lost") {
            self.emit("charge.dispute.closed", &dispute, None, at);
            if status == "won" {
                self.emit("charge.dispute.funds_reinstated", &dispute, None, at);
            }
        }
        Ok(dispute)
    }
}

/// What a new subscription is made of besides its customer and price.
#[derive(Debug, Default)]
pub struct Terms {
    pub quantity: i64,
    pub payment_method: Option<String>,
    pub trial_days: Option<i64>,
    pub metadata: Map<String, Value>,
    /// `trial_settings[end_behavior][missing_payment_method]`: `create_invoice` (default), `pause`, `cancel`.
    pub missing_payment_method: Option<String>,
}

/// What is due on a subscription.
#[derive(Debug, Clone)]
pub enum Due {
    Expire(String),
    End(String),
    Renew(String),
    Retry(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monthly_periods_follow_the_calendar_and_yearly_ones_the_year() {
        // 2026-01-31 + 1 month = 2026-02-28 (chrono clamps to the month's last day, as Stripe does).
        assert_eq!(period_end(1_769_817_600, "month", 1), 1_772_236_800);
        assert_eq!(period_end(1_767_225_600, "year", 1), 1_798_761_600);
        assert_eq!(period_end(0, "week", 2), 14 * 86_400);
        assert_eq!(period_end(0, "day", 3), 3 * 86_400);
    }

    #[test]
    fn previous_attributes_name_only_what_changed() {
        let before = json!({"status": "active", "cancel_at_period_end": false, "id": "sub_1"});
        let after = json!({"status": "active", "cancel_at_period_end": true, "id": "sub_1"});
        assert_eq!(Value::Object(changed(&before, &after)), json!({"cancel_at_period_end": false}));
    }
}

//! The provider deliveries of a history (Sell.app and Stripe bodies, signed) and how each was answered.

use super::*;

/// The time a subscription event of `period` says it happened (`data.updated_at`): `hours` into the period.
pub(super) fn subscription_event_time(period: u32, hours: i64) -> DateTime<Utc> {
    start_time() + Duration::days(i64::from(period)) + Duration::hours(hours)
}

/// A provider's delivery: the signed event and which provider's route it goes to.
pub(super) struct Delivery {
    pub(super) name: String,
    event: VerifiedEvent,
    stripe: bool,
}

impl Delivery {
    fn claim_id(&self) -> String {
        if self.stripe {
            tollgate_providers::stripe_payload::interpret(&self.event).key.document_id().to_string()
        } else {
            interpret(&self.event).key.document_id().to_string()
        }
    }

    pub(super) async fn ingest(&self, w: &World) -> Result<IngestOutcome, NotRecorded> {
        if self.stripe {
            w.app().ingest_stripe(&self.event, None::<&NoStripeApi>).await
        } else {
            w.app().ingest_sellapp(&self.event).await
        }
    }
}

/// The Stripe delivery of a Stripe step (Stripe's example objects with the step's fields set).
fn stripe_delivery(op: &Op) -> Option<Delivery> {
    let (name, event) = match op {
        Op::StripeCheckout { sub, user } => {
            let object = stripe::checkout(
                &format!("cs_{sub}"),
                &format!("sub_{sub}"),
                &format!("cus_{sub}"),
                Some(user_id(*user).as_str()),
                email(*user).as_ref(),
            );
            let event =
                stripe::event(&format!("evt_{sub}_checkout"), "checkout.session.completed", start_time(), object);
            (format!("stripe checkout sub_{sub} u{user}"), event)
        }
        Op::StripeSubscription { sub, user, status, period } => {
            let kind = match (status.as_str(), period) {
                ("canceled", _) => "customer.subscription.deleted",
                ("active", 0) => "customer.subscription.created",
                _ => "customer.subscription.updated",
            };
            let start = start_time() + Duration::days(i64::from(*period));
            let created = if status == "active" { start } else { start + Duration::hours(6) };
            let object = stripe::subscription(
                &format!("sub_{sub}"),
                &format!("cus_{sub}"),
                status,
                STRIPE_VIP_PRICE,
                start,
                start + Duration::days(1),
            );
            let event = stripe::event(&format!("evt_{sub}_{status}_{period}"), kind, created, object);
            (format!("stripe {kind} sub_{sub}/{period} {status} u{user}"), event)
        }
        Op::StripeRefund { sub, user } => {
            let mut charge = stripe::fixture("charge");
            charge["id"] = json!(format!("ch_{sub}"));
            charge["customer"] = json!(format!("cus_{sub}"));
            charge["payment_intent"] = json!(format!("pi_{sub}"));
            charge["amount_refunded"] = charge["amount"].clone();
            charge["refunded"] = json!(true);
            let created = start_time() + Duration::hours(18);
            let event = stripe::event(&format!("evt_{sub}_refunded"), "charge.refunded", created, charge);
            (format!("stripe charge.refunded sub_{sub} u{user}"), event)
        }
        _ => return None,
    };
    Some(Delivery { name, event, stripe: true })
}

/// The signed delivery of a delivery step, and a short name for it.
fn delivery(op: &Op) -> Option<Delivery> {
    if let Some(stripe) = stripe_delivery(op) {
        return Some(stripe);
    }
    let store: u64 = STORE.parse().ok()?;
    let subscription = |event: &str, sub: u64, user: usize, period: u32, at_hours: i64| {
        let end = start_time() + Duration::days(i64::from(period) + 1);
        let at = subscription_event_time(period, at_hours);
        json!({"event": event, "store": store, "data": {
            "id": sub, "status": "active", "customer": {"email": email(user).to_string()}, "product_id": VIP_PRODUCT,
            "current_period_end": rfc3339(end), "updated_at": rfc3339(at)
        }})
    };
    let (name, body) = match op {
        Op::Purchase { order, user, product } => {
            let mut data = json!({"id": order, "status": "COMPLETED", "customer": {"email": email(*user).to_string()}});
            if let Some(product) = product {
                data["line_items"] = json!([{"product_id": product, "product_variant_id": format!("v{product}"), "product_title": "Day pass"}]);
            }
            (
                format!("order.completed {order} u{user}"),
                json!({"event": "order.completed", "store": store, "data": data}),
            )
        }
        Op::Dispute { order, user } => (
            format!("order.disputed {order} u{user}"),
            json!({"event": "order.disputed", "store": store, "data": {"id": order, "customer": {"email": email(*user).to_string()}}}),
        ),
        Op::SubCreated { sub, user, period } => (
            format!("subscription.created {sub}/{period} u{user}"),
            subscription("subscription.created", *sub, *user, *period, 0),
        ),
        Op::SubRenewed { sub, user, period } => (
            format!("subscription.renewed {sub}/{period} u{user}"),
            subscription("subscription.renewed", *sub, *user, *period, 0),
        ),
        Op::SubCancelled { sub, user, period } => (
            format!("subscription.cancelled {sub}/{period} u{user}"),
            subscription("subscription.cancelled", *sub, *user, *period, 12),
        ),
        _ => return None,
    };
    Some(Delivery { name, event: signed_event(&body.to_string()), stripe: false })
}

fn outcome_name(outcome: &IngestOutcome, stripe: bool) -> &'static str {
    match (outcome, stripe) {
        (IngestOutcome::Applied { .. }, false) => "delivery applied",
        (IngestOutcome::Pending, false) => "delivery pending",
        (IngestOutcome::Duplicate, false) => "delivery duplicate",
        (IngestOutcome::Ignored { .. }, false) => "delivery ignored",
        (IngestOutcome::FailureRecorded { .. }, false) => "delivery failure recorded",
        (IngestOutcome::Applied { .. }, true) => "stripe delivery applied",
        (IngestOutcome::Pending, true) => "stripe delivery pending",
        (IngestOutcome::Duplicate, true) => "stripe delivery duplicate",
        (IngestOutcome::Ignored { .. }, true) => "stripe delivery ignored",
        (IngestOutcome::FailureRecorded { .. }, true) => "stripe delivery failure recorded",
        // Only a delivery cut by a deadline is answered so; the runner ingests without one.
        (IngestOutcome::Accepted, _) => "delivery accepted (left to the inbox sweep)",
    }
}

/// One copy of a delivery, redelivered on 503 as the provider does.
pub(super) async fn deliver(w: &World, op: &Op, at: u32, log: &Mutex<Log>) {
    pause(at).await;
    let Some(delivery) = delivery(op) else { return };
    let claim = delivery.claim_id();
    for attempt in 0..PROVIDER_ATTEMPTS {
        match delivery.ingest(w).await {
            Ok(outcome) => {
                count(log, outcome_name(&outcome, delivery.stripe));
                lock(log).claims.push((delivery.name, claim));
                return;
            }
            Err(_) => {
                count(log, "delivery answered 503");
                pause(2 + attempt).await;
            }
        }
    }
    lock(log).undelivered.push((delivery, claim));
}

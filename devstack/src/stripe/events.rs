//! Events and their delivery to webhook endpoints, as Stripe does it: every state change is an `event`
//! (`GET /v1/events`), sent as a POST to each enabled endpoint whose `enabled_events` name its type (`*`:
//! all), in the layout of the endpoint's `api_version`, signed with `Stripe-Signature: t=<unix>,v1=<hex>`
//! (HMAC-SHA256 over `"{t}.{body}"` keyed with the whole `whsec_…` secret), asynchronously, and retried
//! on a non-2xx answer or a connection failure after the account's backoff.
//!
//! Test controls (no auth) under `/_devstack/stripe/`: `GET deliveries` (`?event=evt_…`), `POST hold`
//! `{"hold": true|false}` (queue deliveries without sending), `POST release` `{"order": ["evt_…", …]}` (send
//! the held deliveries of those events in that order; no `order`: every held one, oldest first), `POST
//! events/{id}/redeliver` (a new delivery of the same event to each matching endpoint, for duplicate tests).

use super::objects;
use super::store::{new_id, random_string, real_now, Attempt, Delivery, Store};
use super::StripeState;
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

tokio::task_local! {
    /// The API request being served (`request.id`, `request.idempotency_key` of the events it causes).
    pub static REQUEST: (String, Option<String>);
}

/// An error with its causes: `error sending request: … Connection refused`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `Stripe-Signature` for `body` sent at `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn matches(endpoint: &Value, kind: &str) -> bool {
    endpoint["status"] == "enabled"
        && endpoint["enabled_events"].as_array().is_some_and(|events| events.iter().any(|e| e == "*" || e == kind))
}

impl Store {
    /// Records the event of a state change at `at` (the object's clock time) and queues its deliveries.
    pub fn emit(&mut self, kind: &str, object: &Value, previous: Option<Value>, at: i64) {
        let endpoints: Vec<Value> = self.all("webhook_endpoint").into_iter().filter(|e| matches(e, kind)).collect();
        let (request, idempotency_key) = if self.automatic {
            (None, None)
        } else {
            REQUEST.try_with(|r| (Some(r.0.clone()), r.1.clone())).unwrap_or((None, None))
        };
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let event = json!({
            "id": new_id("evt"),
            "object": "event",
            "api_version": super::API_VERSION,
            "created": at,
            "data": data,
            "livemode": false,
            "pending_webhooks": endpoints.len(),
            "request": { "id": request, "idempotency_key": idempotency_key },
            "type": kind,
        });
        let event_id = event["id"].as_str().unwrap_or_default().to_owned();
        self.insert(event);
        for endpoint in endpoints {
            self.queue_delivery(&event_id, kind, &endpoint);
        }
    }

    fn queue_delivery(&mut self, event: &str, kind: &str, endpoint: &Value) {
        let id = format!("dlv_{}", random_string(16));
        self.deliveries.push(Delivery {
            id: id.clone(),
            event: event.to_owned(),
            kind: kind.to_owned(),
            endpoint: endpoint["id"].as_str().unwrap_or_default().to_owned(),
            url: endpoint["url"].as_str().unwrap_or_default().to_owned(),
            state: if self.hold { "held" } else { "pending" }.to_owned(),
            attempts: Vec::new(),
        });
        if !self.hold {
            self.outbox.push(id);
        }
    }

    /// New deliveries of `event` to every matching endpoint (or only `endpoint`), sent even while held.
    pub fn redeliver(&mut self, event: &str, endpoint: Option<&str>) -> Vec<String> {
        let Some(kind) = self.objects.get(event).and_then(|e| e["type"].as_str()).map(str::to_owned) else {
            return Vec::new();
        };
        let targets: Vec<Value> = self
            .all("webhook_endpoint")
            .into_iter()
            .filter(|e| endpoint.is_none_or(|id| e["id"] == id) && matches(e, &kind))
            .collect();
        let hold = std::mem::replace(&mut self.hold, false);
        let before = self.outbox.len();
        for target in targets {
            self.queue_delivery(event, &kind, &target);
        }
        self.hold = hold;
        self.outbox[before..].to_vec()
    }

    /// The body an endpoint receives: the event in the layout of the endpoint's API version.
    fn body_for(&self, delivery: &Delivery) -> Option<(String, String)> {
        let mut event = self.objects.get(&delivery.event)?.clone();
        let endpoint = self.objects.get(&delivery.endpoint);
        let secret = self.webhook_secrets.get(&delivery.endpoint)?.clone();
        if let Some(version) = endpoint.and_then(|e| e["api_version"].as_str()) {
            event["api_version"] = json!(version);
            if objects::is_legacy(version) {
                objects::legacy_tree(&mut event["data"]["object"]);
                let kind = event["data"]["object"]["object"].as_str().unwrap_or_default().to_owned();
                if let Some(previous) = event["data"].get_mut("previous_attributes") {
                    match kind.as_str() {
                        "subscription" => objects::legacy_subscription(previous),
                        "invoice" => objects::legacy_invoice(previous),
                        _ => {}
                    }
                }
            }
        }
        Some((event.to_string(), secret))
    }
}

impl StripeState {
    /// Sends what the last state changes queued, in order, on a task of its own.
    pub fn flush(self: &Arc<Self>) {
        let queued = std::mem::take(&mut self.store().outbox);
        self.send(queued);
    }

    pub fn send(self: &Arc<Self>, deliveries: Vec<String>) {
        if deliveries.is_empty() {
            return;
        }
        let state = self.clone();
        tokio::spawn(async move {
            for id in deliveries {
                state.deliver(id).await;
            }
        });
    }

    /// The first attempt of a delivery, awaited (so a batch keeps its order); the retries after a failure
    /// run on a task of their own, after the account's backoff, so they hold up nothing else.
    async fn deliver(self: &Arc<Self>, id: String) {
        let backoff = self.store().settings.delivery_backoff_ms.clone();
        if self.attempt(&id, backoff.is_empty()).await {
            return;
        }
        let state = self.clone();
        tokio::spawn(async move {
            for (n, delay) in backoff.iter().enumerate() {
                tokio::time::sleep(Duration::from_millis(*delay)).await;
                if state.attempt(&id, n + 1 == backoff.len()).await {
                    return;
                }
            }
        });
    }

    /// One attempt; `true` when nothing more is to be done (delivered, the last attempt, or gone).
    async fn attempt(&self, id: &str, last: bool) -> bool {
        let prepared = {
            let mut store = self.store();
            let Some(delivery) = store.deliveries.iter_mut().find(|d| d.id == id) else { return true };
            delivery.state = "pending".to_owned();
            let delivery = delivery.clone();
            store.body_for(&delivery).map(|(body, secret)| (delivery.url, body, secret))
        };
        let Some((url, body, secret)) = prepared else {
            // The endpoint was deleted meanwhile: nothing more is sent.
            self.record(id, Attempt { at: real_now(), status: None, error: Some("endpoint deleted".to_owned()) }, true);
            return true;
        };
        let t = real_now();
        let sent = self
            .http
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .header("stripe-signature", signature(&secret, t, &body))
            .header("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .body(body)
            .send()
            .await;
        let (status, error) = match sent {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(e) => (None, Some(error_chain(&e.without_url()))),
        };
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        self.record(id, Attempt { at: t, status, error }, last);
        ok || last
    }

    fn record(&self, id: &str, attempt: Attempt, last: bool) {
        let mut store = self.store();
        let Some(delivery) = store.deliveries.iter_mut().find(|d| d.id == id) else { return };
        let ok = attempt.status.is_some_and(|s| (200..300).contains(&s));
        delivery.attempts.push(attempt);
        delivery.state = if ok {
            "delivered"
        } else if last {
            "failed"
        } else {
            "pending"
        }
        .to_owned();
        let event = delivery.event.clone();
        if ok {
            if let Some(event) = store.objects.get_mut(&event) {
                let pending = event["pending_webhooks"].as_u64().unwrap_or(0);
                event["pending_webhooks"] = json!(pending.saturating_sub(1));
            }
        }
    }

    /// Held deliveries of the named events, in that order (all held ones, oldest first, without `order`).
    pub fn release(self: &Arc<Self>, order: Option<Vec<String>>) -> Vec<String> {
        let mut store = self.store();
        let held: Vec<(String, String)> =
            store.deliveries.iter().filter(|d| d.state == "held").map(|d| (d.id.clone(), d.event.clone())).collect();
        let chosen: Vec<String> = match order {
            None => held.iter().map(|(id, _)| id.clone()).collect(),
            Some(events) => events
                .iter()
                .flat_map(|event| held.iter().filter(move |(_, e)| e == event).map(|(id, _)| id.clone()))
                .collect(),
        };
        for delivery in store.deliveries.iter_mut().filter(|d| chosen.contains(&d.id)) {
            delivery.state = "pending".to_owned();
        }
        drop(store);
        self.send(chosen.clone());
        chosen
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_match_the_computed_stripe_vector() {
        // docs/protocols.md §2.1: `stripe-valid`.
        let body = r#"{"id":"evt_test_webhook","object":"event","type":"invoice.paid","created":1700000000}"#;
        assert_eq!(
            super::signature("whsec_test_secret", 1_700_000_000, body),
            "t=1700000000,v1=f95709f458165896f52c60f3d8109a63dfb31a7f3a92ec8eec6245b437365a2f"
        );
    }
}

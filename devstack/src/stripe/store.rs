//! The account's state: every object as the JSON Stripe returns for it (API version
//! [`super::API_VERSION`]), in creation order, plus what Stripe keeps behind them (a test card's
//! behaviour, webhook secrets, idempotent replies, deliveries).
//!
//! Kept in memory: a restart of the stand-in is a fresh test-mode account (`cargo xtask dev` re-seeds it
//! and rewrites the settings that name its objects).

use super::form::{ApiError, ApiResult};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashMap;

/// What a test card does when charged (Stripe's documented test payment methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    /// `pm_card_visa`: every charge succeeds.
    Visa,
    /// `pm_card_chargeCustomerFail`: attaches fine, every charge is declined.
    ChargeFails,
    /// `pm_card_createDispute`: the charge succeeds, then a dispute opens.
    Disputed,
}

impl Card {
    /// The test token and the card it stands for: (token, brand, last4).
    pub const TOKENS: &'static [(&'static str, Card, &'static str, &'static str)] = &[
        ("pm_card_visa", Card::Visa, "visa", "4242"),
        ("pm_card_chargeCustomerFail", Card::ChargeFails, "visa", "0341"),
        ("pm_card_createDispute", Card::Disputed, "visa", "0259"),
    ];

    pub fn from_token(token: &str) -> Option<(Card, &'static str, &'static str)> {
        Self::TOKENS.iter().find(|(t, ..)| *t == token).map(|(_, card, brand, last4)| (*card, *brand, *last4))
    }
}

/// The account's billing settings (a test can change them through `/_devstack/stripe/settings`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Days after a failed renewal at which payment is retried (Stripe's custom retry schedule).
    pub retry_days: Vec<i64>,
    /// What a subscription becomes when retries run out: `canceled` or `unpaid`.
    pub after_retries: String,
    /// Delays before the 2nd, 3rd, … delivery attempt of an event, in milliseconds.
    pub delivery_backoff_ms: Vec<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            retry_days: vec![3, 5, 7],
            after_retries: "canceled".to_owned(),
            delivery_backoff_ms: vec![100, 300, 900],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Idempotent {
    pub request: String,
    pub status: u16,
    pub body: Value,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    pub at: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub id: String,
    pub event: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub endpoint: String,
    pub url: String,
    /// `held`, `pending`, `delivered` or `failed` (every attempt answered non-2xx).
    pub state: String,
    pub attempts: Vec<Attempt>,
}

#[derive(Default)]
pub struct Store {
    /// Every object by id, as served at the account's API version.
    pub objects: HashMap<String, Value>,
    /// Ids in creation order (lists are newest first).
    pub order: Vec<String>,
    pub cards: HashMap<String, Card>,
    pub webhook_secrets: HashMap<String, String>,
    pub idempotency: HashMap<String, Idempotent>,
    pub deliveries: Vec<Delivery>,
    pub hold: bool,
    pub settings: Settings,
    /// Failed payment attempts of an open subscription invoice, by invoice id.
    pub attempts: HashMap<String, usize>,
    /// Deliveries queued by the state changes of the current request, sent once it is done.
    pub outbox: Vec<String>,
    /// A checkout session's line items (`{price, quantity}`), trial days and subscription metadata.
    pub checkout_lines: HashMap<String, (Vec<Value>, Option<i64>, Value)>,
    /// Set while a test clock advances: its events come from no API request.
    pub automatic: bool,
}

pub const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn random_string(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())] as char).collect()
}

/// `cus_…`, `cs_test_…` (Checkout ids are long), `whsec_…`.
pub fn new_id(prefix: &str) -> String {
    let len = if prefix == "cs_test" { 58 } else { 24 };
    format!("{prefix}_{}", random_string(len))
}

pub fn real_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Store {
    pub fn insert(&mut self, object: Value) -> Value {
        let id = object["id"].as_str().unwrap_or_default().to_owned();
        if !self.objects.contains_key(&id) {
            self.order.push(id.clone());
        }
        self.objects.insert(id, object.clone());
        object
    }

    pub fn put(&mut self, object: &Value) {
        if let Some(id) = object["id"].as_str() {
            self.objects.insert(id.to_owned(), object.clone());
        }
    }

    pub fn remove(&mut self, id: &str) {
        self.objects.remove(id);
        self.order.retain(|i| i != id);
    }

    /// The object of that type and id (`object` field), or Stripe's 404 naming `noun` and `param`.
    pub fn find(&self, object: &str, id: &str, noun: &str, param: &str) -> ApiResult {
        match self.objects.get(id) {
            Some(found) if found["object"] == object => Ok(found.clone()),
            _ => Err(ApiError::missing(noun, id, param)),
        }
    }

    pub fn all(&self, object: &str) -> Vec<Value> {
        self.order
            .iter()
            .rev()
            .filter_map(|id| self.objects.get(id))
            .filter(|o| o["object"] == object)
            .cloned()
            .collect()
    }

    /// "now" for objects under `clock` (its frozen time), else the real clock.
    pub fn now(&self, clock: Option<&str>) -> i64 {
        clock.and_then(|c| self.objects.get(c)).and_then(|c| c["frozen_time"].as_i64()).unwrap_or_else(real_now)
    }

    /// The test clock a customer lives under.
    pub fn clock_of_customer(&self, customer: &str) -> Option<String> {
        self.objects.get(customer).and_then(|c| c["test_clock"].as_str()).map(str::to_owned)
    }

    /// Replaces string ids at the `expand[]` paths with the objects they name (`data.` for lists).
    pub fn expand(&self, mut value: Value, paths: &[String]) -> Value {
        for path in paths {
            let parts: Vec<&str> = path.split('.').collect();
            self.expand_at(&mut value, &parts);
        }
        value
    }

    fn expand_at(&self, node: &mut Value, parts: &[&str]) {
        let Some((first, rest)) = parts.split_first() else { return };
        if let Value::Array(items) = node {
            for item in items {
                self.expand_at(item, parts);
            }
            return;
        }
        let Some(child) = node.get_mut(*first) else { return };
        if rest.is_empty() {
            if let Some(found) = child.as_str().and_then(|id| self.objects.get(id)) {
                *child = found.clone();
            }
        } else {
            self.expand_at(child, rest);
        }
    }
}

/// A list page: `limit` (1–100, default 10), `starting_after`, `ending_before` over `items` (newest first).
pub fn page(items: Vec<Value>, url: &str, limit: Option<i64>, after: Option<&str>, before: Option<&str>) -> ApiResult {
    let limit = limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            "Invalid integer: limit must be between 1 and 100",
            Some("limit"),
        ));
    }
    let limit = limit as usize;
    let position = |id: &str, param: &str| {
        items
            .iter()
            .position(|o| o["id"] == id)
            .ok_or_else(|| ApiError::invalid("resource_missing", format!("No such object: '{id}'"), Some(param)))
    };
    let (data, has_more): (Vec<Value>, bool) = match (after, before) {
        (Some(after), _) => {
            let start = position(after, "starting_after")? + 1;
            let rest = &items[start..];
            (rest.iter().take(limit).cloned().collect(), rest.len() > limit)
        }
        (None, Some(before)) => {
            let end = position(before, "ending_before")?;
            let start = end.saturating_sub(limit);
            (items[start..end].to_vec(), start > 0)
        }
        (None, None) => (items.iter().take(limit).cloned().collect(), items.len() > limit),
    };
    Ok(json!({ "object": "list", "data": data, "has_more": has_more, "url": url }))
}

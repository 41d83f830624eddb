//! # tollgate-stripe
//!
//! The Stripe API calls Tollgate makes, and nothing else: reading a subscription or a customer (the truth behind
//! a webhook event, and finding a signed-in user's subscription), listing a customer's subscriptions, creating a
//! Checkout Session (a purchase) and a Billing Portal session (the customer fixes or removes the card), changing a
//! subscription's price in the same billing cycle, cancelling at period end, and listing webhook endpoints (for
//! `tollgate doctor`).
//!
//! Stripe's conventions, as documented at <https://docs.stripe.com/api>: requests go to `{base}/v1/...`
//! (`STRIPE_API_BASE`, default [`STRIPE_API_BASE`]), `Authorization: Bearer <secret key>`, a pinned
//! `Stripe-Version` ([`STRIPE_VERSION`], so a change of the account's default version changes nothing here),
//! form-encoded bodies with bracket notation (`items[0][price]`, `metadata[user_id]`), an `Idempotency-Key` on
//! the POSTs a caller may repeat, errors as `{"error": {type, code, message, param}}` (decoded into
//! [`StripeError::Api`], 429 and 5xx retryable), lists as `{"data": [...], "has_more": bool}` paged with
//! `starting_after`.
//!
//! Typed structs carry only what Tollgate reads; a subscription and a customer also keep the raw JSON object, for
//! callers that parse Stripe objects with their own parser. An answer that lacks what Tollgate needs is a
//! [`StripeError::Decode`], never a default (fail closed).
//!
//! [`tollgate_http::Transport`] is `fetch` inside workerd and reqwest natively. Errors never carry the key, the headers or a query
//! string; a message from Stripe is cut short and any key-shaped word in it is masked.

use serde_json::Value;
use std::time::Duration;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::Secret;
use tollgate_http::{Outgoing, Transport};

mod objects;
use objects::id_of;
pub use objects::{
    customer_from, page_from, session_from, subscription_from, webhook_endpoint_from, Customer, Page, SessionLink,
    Subscription, SubscriptionItem, WebhookEndpoint,
};

/// Stripe's own API base; paths are `/v1/...` under it.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com";
/// The API version every request pins (field locations differ between versions, e.g. the period end moved to
/// the subscription items in `2025-03-31.basil`).
pub const STRIPE_VERSION: &str = "2025-03-31.basil";
/// No request waits longer than this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Stripe's largest page.
pub const PAGE_LIMIT: u32 = 100;
/// A listing stops after this many pages (10 000 objects): a runaway `has_more` never loops forever.
pub const MAX_PAGES: usize = 100;
/// Every subscription status Stripe documents.
pub const SUBSCRIPTION_STATUSES: &[&str] =
    &["incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid", "paused"];

#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// e.g. `https://api.stripe.com`; a trailing slash is tolerated.
    pub api_base: String,
    pub api_key: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    #[error("STRIPE_API_BASE `{0}` is not a URL")]
    BadBase(String),
    /// Stripe answered with an error object (or an unreadable body with an error status).
    #[error("Stripe answered {status} ({kind}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Api {
        status: u16,
        /// `error.type`: `api_error`, `card_error`, `idempotency_error`, `invalid_request_error`, ...
        kind: String,
        /// `error.code`, e.g. `resource_missing`.
        code: Option<String>,
        /// `error.message`, cut to 200 characters, key-shaped words masked.
        message: String,
        /// `error.param`: the request parameter at fault.
        param: Option<String>,
    },
    #[error("the Stripe request {0}")]
    Transport(String),
    #[error("Stripe's answer cannot be read: {0}")]
    Decode(String),
}

impl StripeError {
    /// Worth trying again later (with the same idempotency key for a POST).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// Stripe knows no such object (404 `resource_missing`).
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }

    /// The key is wrong, revoked (401) or may not do this (403).
    pub fn is_refused_key(&self) -> bool {
        matches!(self, Self::Api { status: 401 | 403, .. })
    }

    /// The HTTP status Stripe answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A new subscription through Stripe Checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub price: String,
    /// The Appwrite user id, so the webhook finds the buyer.
    pub client_reference_id: String,
    /// An existing customer (`cus_...`); else [`Self::customer_email`] pre-fills the form.
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    /// Copied to the session and to the subscription it creates (`subscription_data[metadata][...]`).
    pub metadata: Vec<(String, String)>,
}

/// How Stripe bills a price change within the cycle (`proration_behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proration {
    CreateProrations,
    AlwaysInvoice,
    None,
}

impl Proration {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateProrations => "create_prorations",
            Self::AlwaysInvoice => "always_invoice",
            Self::None => "none",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StripeApi {
    http: Transport,
    base: url::Url,
    key: Secret,
    /// The invocation's subrequest counter (shared with its other clients), taken before each request.
    subrequests: Subrequests,
}

impl StripeApi {
    pub fn new(config: StripeConfig) -> Result<Self, StripeError> {
        let trimmed = config.api_base.trim().trim_end_matches('/');
        let base = url::Url::parse(trimmed).map_err(|_| StripeError::BadBase(trimmed.to_owned()))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") || base.query().is_some() {
            return Err(StripeError::BadBase(trimmed.to_owned()));
        }
        Ok(Self { http: Transport::new(), base, key: config.api_key, subrequests: Subrequests::unlimited() })
    }

    /// Counts (and, with a limit, bounds) this client's requests in `subrequests`, the invocation's meter.
    pub fn with_subrequests(mut self, subrequests: Subrequests) -> Self {
        self.subrequests = subrequests;
        self
    }

    /// `GET /v1/subscriptions/{id}`.
    pub async fn retrieve_subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        let value = self.get(&["subscriptions", id], &[]).await?;
        subscription_from(value)
    }

    /// `GET /v1/customers/{id}`.
    pub async fn retrieve_customer(&self, id: &str) -> Result<Customer, StripeError> {
        let value = self.get(&["customers", id], &[]).await?;
        customer_from(value)
    }

    /// A cheap authenticated read (`GET /v1/customers?limit=1`): `Ok` when the key may read customers.
    pub async fn check_key(&self) -> Result<(), StripeError> {
        self.get(&["customers"], &[("limit", "1")]).await.map(drop)
    }

    /// `GET /v1/customers?email=...`, every page. Stripe matches the email exactly (case-sensitive).
    pub async fn list_customers_by_email(&self, email: &str) -> Result<Vec<Customer>, StripeError> {
        self.list_all(&["customers"], &[("email", email)], customer_from).await
    }

    /// `GET /v1/subscriptions?customer=...&status=all`, every page (ended ones too; newest first).
    pub async fn list_subscriptions(&self, customer: &str) -> Result<Vec<Subscription>, StripeError> {
        self.list_all(&["subscriptions"], &[("customer", customer), ("status", "all")], subscription_from).await
    }

    /// `GET /v1/webhook_endpoints`, every page.
    pub async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StripeError> {
        self.list_all(&["webhook_endpoints"], &[], webhook_endpoint_from).await
    }

    /// One page of `GET /v1/{path}`: `starting_after` is the last id of the previous page.
    pub async fn list_page(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        starting_after: Option<&str>,
    ) -> Result<Page<Value>, StripeError> {
        let limit = PAGE_LIMIT.to_string();
        let mut params: Vec<(&str, &str)> = query.to_vec();
        params.push(("limit", &limit));
        if let Some(after) = starting_after {
            params.push(("starting_after", after));
        }
        page_from(self.get(path, &params).await?)
    }

    /// `POST /v1/checkout/sessions` in `subscription` mode for one price.
    pub async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
        idempotency_key: Option<&str>,
    ) -> Result<SessionLink, StripeError> {
        let mut form = vec![
            ("mode".to_owned(), "subscription".to_owned()),
            ("line_items[0][price]".to_owned(), request.price.clone()),
            ("line_items[0][quantity]".to_owned(), "1".to_owned()),
            ("client_reference_id".to_owned(), request.client_reference_id.clone()),
            ("success_url".to_owned(), request.success_url.clone()),
            ("cancel_url".to_owned(), request.cancel_url.clone()),
        ];
        match (&request.customer, &request.customer_email) {
            (Some(customer), _) => form.push(("customer".to_owned(), customer.clone())),
            (None, Some(email)) => form.push(("customer_email".to_owned(), email.clone())),
            (None, None) => {}
        }
        for (name, value) in &request.metadata {
            form.push((format!("metadata[{name}]"), value.clone()));
            form.push((format!("subscription_data[metadata][{name}]"), value.clone()));
        }
        let value = self.post(&["checkout", "sessions"], &form, idempotency_key).await?;
        session_from(value)
    }

    /// `POST /v1/subscriptions/{id}` replacing one item's price; the billing cycle stays
    /// (`billing_cycle_anchor` unchanged), `proration` says how the difference is billed.
    pub async fn update_subscription_price(
        &self,
        subscription: &str,
        item: &str,
        price: &str,
        proration: Proration,
        idempotency_key: Option<&str>,
    ) -> Result<Subscription, StripeError> {
        let form = vec![
            ("items[0][id]".to_owned(), item.to_owned()),
            ("items[0][price]".to_owned(), price.to_owned()),
            ("proration_behavior".to_owned(), proration.as_str().to_owned()),
            // A price change also lifts a pending cancellation: the customer chose to stay.
            ("cancel_at_period_end".to_owned(), "false".to_owned()),
        ];
        let value = self.post(&["subscriptions", subscription], &form, idempotency_key).await?;
        subscription_from(value)
    }

    /// `POST /v1/subscriptions/{id}` with `cancel_at_period_end`: access and billing run to the period end.
    pub async fn set_cancel_at_period_end(
        &self,
        subscription: &str,
        cancel: bool,
        idempotency_key: Option<&str>,
    ) -> Result<Subscription, StripeError> {
        let form = vec![("cancel_at_period_end".to_owned(), cancel.to_string())];
        let value = self.post(&["subscriptions", subscription], &form, idempotency_key).await?;
        subscription_from(value)
    }

    /// `POST /v1/billing_portal/sessions`: the customer updates or removes the payment method there.
    pub async fn create_billing_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: Option<&str>,
    ) -> Result<SessionLink, StripeError> {
        let form = vec![("customer".to_owned(), customer.to_owned()), ("return_url".to_owned(), return_url.to_owned())];
        let value = self.post(&["billing_portal", "sessions"], &form, idempotency_key).await?;
        session_from(value)
    }

    async fn list_all<T>(
        &self,
        path: &[&str],
        query: &[(&str, &str)],
        decode: fn(Value) -> Result<T, StripeError>,
    ) -> Result<Vec<T>, StripeError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self.list_page(path, query, after.as_deref()).await?;
            let last = page.data.last().map(id_of).transpose()?;
            for item in page.data {
                all.push(decode(item)?);
            }
            match (page.has_more, last) {
                (true, Some(last)) => after = Some(last),
                // has_more on an empty page cannot advance: stop rather than loop.
                (true, None) => return Err(StripeError::Decode("has_more on an empty page".into())),
                (false, _) => return Ok(all),
            }
        }
        Err(StripeError::Decode(format!("more than {MAX_PAGES} pages")))
    }

    fn url(&self, path: &[&str]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("v1").extend(path);
        }
        url
    }

    async fn get(&self, path: &[&str], query: &[(&str, &str)]) -> Result<Value, StripeError> {
        let mut url = self.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send("GET", &url, None, None).await
    }

    async fn post(
        &self,
        path: &[&str],
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Value, StripeError> {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        self.send("POST", &self.url(path), Some(&body), idempotency_key).await
    }

    /// One call: the key as a bearer token, the pinned version, a form body when given.
    async fn send(
        &self,
        method: &str,
        url: &url::Url,
        form: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, StripeError> {
        self.subrequests.take().map_err(|spent| StripeError::Transport(spent.to_string()))?;
        let bearer = format!("Bearer {}", self.key.expose());
        let mut headers = vec![
            ("Authorization", bearer.as_str()),
            ("Stripe-Version", STRIPE_VERSION),
            ("Accept", "application/json"),
        ];
        if form.is_some() {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        if let Some(key) = idempotency_key {
            headers.push(("Idempotency-Key", key));
        }
        let mut request = Outgoing::new(method, url, &headers, REQUEST_TIMEOUT);
        if let Some(form) = form {
            request = request.with_body(form);
        }
        let answer = self.http.send(request).await.map_err(|e| StripeError::Transport(e.to_string()))?;
        decode_response(answer.status, &answer.text, &self.key)
    }
}

/// What an answer of Stripe's says before any object is read from it: a 2xx body as JSON (else
/// [`StripeError::Decode`]); any other status as [`StripeError::Api`] from Stripe's `{"error": {...}}`, or a
/// typed `unreadable_error` with the status when the body is not one. Every text taken from the body is cut
/// to 200 characters, with `key` and any word shaped like a Stripe secret masked. Pure (no client), so the
/// fuzz target `stripe_decode` feeds it directly.
pub fn decode_response(status: u16, text: &str, key: &Secret) -> Result<Value, StripeError> {
    if (200..300).contains(&status) {
        return serde_json::from_str(text).map_err(|e| StripeError::Decode(e.to_string()));
    }
    let error = serde_json::from_str::<Value>(text).ok().and_then(|v| v.get("error").cloned());
    let field = |name: &str| error.as_ref().and_then(|e| e.get(name)).and_then(Value::as_str).map(|s| scrub(s, key));
    Err(StripeError::Api {
        status,
        kind: field("type").unwrap_or_else(|| "unreadable_error".to_owned()),
        code: field("code"),
        message: field("message").unwrap_or_default(),
        param: field("param"),
    })
}

/// The key masked, then cut to 200 characters, then any word shaped like a Stripe secret masked. Masking the
/// key before the cut: a key that straddled the 200th character would otherwise survive as its first part.
fn scrub(text: &str, key: &Secret) -> String {
    let masked = if key.is_empty() { text.to_owned() } else { text.replace(key.expose(), "[redacted]") };
    let short: String = masked.chars().take(200).collect();
    short
        .split(' ')
        .map(|word| {
            let bare = word.trim_start_matches(['\'', '"', '(']);
            if ["sk_", "rk_", "whsec_", "pk_"].iter().any(|p| bare.starts_with(p)) {
                "[redacted]"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_subscription_without_a_status_or_customer_is_an_error_not_a_default() {
        assert!(subscription_from(json!({"id": "sub_1", "customer": "cus_1"})).is_err());
        assert!(subscription_from(json!({"id": "sub_1", "status": "active"})).is_err());
        assert!(subscription_from(json!({"customer": "cus_1", "status": "active"})).is_err());
        assert!(subscription_from(json!({"id": "sub_1", "customer": "cus_1", "status": "active", "items": 3})).is_err());
    }

    #[test]
    fn the_period_end_is_read_from_the_items_in_basil_and_from_the_subscription_before() {
        let basil = subscription_from(json!({
            "id": "sub_1", "customer": {"id": "cus_1", "object": "customer"}, "status": "active",
            "items": {"data": [{"id": "si_1", "price": {"id": "price_1"}, "current_period_end": 1_800_000_000}]}
        }))
        .unwrap();
        assert_eq!(basil.customer, "cus_1");
        assert_eq!(basil.current_period_end, Some(1_800_000_000));
        assert_eq!(basil.items[0].price_id, "price_1");
        let older = subscription_from(json!({
            "id": "sub_1", "customer": "cus_1", "status": "past_due", "current_period_end": 1_700_000_000,
            "items": {"data": [{"id": "si_1", "price": "price_2"}]}
        }))
        .unwrap();
        assert_eq!(older.current_period_end, Some(1_700_000_000));
        assert_eq!(older.items[0].price_id, "price_2");
        assert_eq!(older.raw["current_period_end"], 1_700_000_000);
    }

    #[test]
    fn a_base_that_is_not_a_web_url_is_refused() {
        let config = |base: &str| StripeConfig { api_base: base.into(), api_key: Secret::new("sk_test_x") };
        assert!(StripeApi::new(config("not a url")).is_err());
        assert!(StripeApi::new(config("mailto:a@b.c")).is_err());
        assert!(StripeApi::new(config("https://api.stripe.com/?x=1")).is_err());
        assert_eq!(
            StripeApi::new(config("https://api.stripe.com/")).unwrap().url(&["customers"]).as_str(),
            "https://api.stripe.com/v1/customers"
        );
        assert_eq!(
            StripeApi::new(config("http://127.0.0.1:9/stripe")).unwrap().url(&["a b"]).as_str(),
            "http://127.0.0.1:9/stripe/v1/a%20b"
        );
    }

    #[test]
    fn error_messages_lose_the_key_and_key_shaped_words() {
        let key = Secret::new("sk_test_abc123");
        let error = decode_response(401, r#"{"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****c123 (rk_live_x) sk_test_abc123"}}"#, &key).unwrap_err();
        let text = error.to_string();
        assert!(!text.contains("abc123") && !text.contains("c123") && !text.contains("rk_live"), "{text}");
        assert!(error.is_refused_key());
        let unreadable = decode_response(502, "<html>bad gateway</html>", &key).unwrap_err();
        assert!(matches!(&unreadable, StripeError::Api { kind, .. } if kind == "unreadable_error"));
        assert!(unreadable.is_retryable());
    }

    #[test]
    fn a_key_across_the_200th_character_of_a_message_is_masked_whole() {
        let key = Secret::new("sk_test_abc123");
        let message = format!("{}:sk_test_abc123 was refused", "x".repeat(190));
        let body = json!({"error": {"type": "invalid_request_error", "message": message}}).to_string();
        let Err(StripeError::Api { message, .. }) = decode_response(401, &body, &key) else { panic!("an API error") };
        // Cut after the key was masked: the cut takes part of the mask, never part of the key.
        assert!(!message.contains("sk_test_"), "{message}");
        assert_eq!(message, format!("{}:[redacted", "x".repeat(190)));
    }

    #[test]
    fn a_2xx_answer_is_its_json_and_an_unreadable_one_is_a_decode_error() {
        let key = Secret::new("sk_test_abc123");
        assert_eq!(decode_response(200, r#"{"id": "cus_1"}"#, &key), Ok(json!({"id": "cus_1"})));
        assert!(matches!(decode_response(201, "<html>", &key), Err(StripeError::Decode(_))));
    }

    #[test]
    fn a_list_needs_data_and_has_more() {
        let page = page_from(json!({"object": "list", "data": [{"id": "cus_1"}], "has_more": true})).unwrap();
        assert_eq!((page.data.len(), page.has_more), (1, true));
        assert!(page_from(json!({"data": []})).is_err());
        assert!(page_from(json!({"has_more": false, "data": {}})).is_err());
    }
}

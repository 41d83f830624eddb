//! The Stripe stand-in set up as a merchant sets up Stripe, through its Stripe API: the webhook worker's
//! `/stripe/webhook` as a webhook endpoint for [`tollgate_devstack::stripe::WEBHOOK_EVENTS`] (its `whsec_`
//! secret is shown once, in that answer), and the demo product "Member" with a monthly price. The stand-in
//! keeps its account in memory, so every `cargo xtask dev` seeds afresh and `dev.env` gets the new secret and
//! price id; end-to-end tests seed their own stand-in the same way.

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The demo price: 10.00 USD a month.
pub const DEMO_PRICE_CENTS: &str = "1000";

/// What the stand-in was seeded with.
#[derive(Debug, Clone)]
pub struct StripeSeed {
    pub endpoint_id: String,
    /// `STRIPE_WEBHOOK_SECRET`.
    pub webhook_secret: String,
    /// `DEMO_STRIPE_PRICE_ID`.
    pub price_id: String,
}

/// Seeds the stand-in at `base` (its `STRIPE_API_BASE`) with `key`; `plan` goes in the product's metadata.
pub async fn seed(base: &str, key: &str, webhook_url: &str, plan: &str) -> Result<StripeSeed> {
    let http = reqwest::Client::new();
    let mut endpoint = vec![("url", format!("{webhook_url}/stripe/webhook"))];
    endpoint.extend(tollgate_devstack::stripe::WEBHOOK_EVENTS.iter().map(|e| ("enabled_events[]", (*e).to_owned())));
    let endpoint = post(&http, base, key, "webhook_endpoints", endpoint).await?;
    let product =
        post(&http, base, key, "products", vec![("name", "Member".to_owned()), ("metadata[plan]", plan.to_owned())])
            .await?;
    let price = vec![
        ("product", text(&product, "id")?),
        ("currency", "usd".to_owned()),
        ("unit_amount", DEMO_PRICE_CENTS.to_owned()),
        ("recurring[interval]", "month".to_owned()),
        ("lookup_key", format!("{plan}_monthly")),
    ];
    let price = post(&http, base, key, "prices", price).await?;
    Ok(StripeSeed {
        endpoint_id: text(&endpoint, "id")?,
        webhook_secret: text(&endpoint, "secret")?,
        price_id: text(&price, "id")?,
    })
}

fn text(value: &Value, field: &str) -> Result<String> {
    value[field].as_str().map(str::to_owned).with_context(|| format!("no {field} in a Stripe answer"))
}

async fn post(http: &reqwest::Client, base: &str, key: &str, path: &str, params: Vec<(&str, String)>) -> Result<Value> {
    let request = http.post(format!("{base}/v1/{path}")).bearer_auth(key).form(&params);
    let response = request.send().await.with_context(|| format!("POST /v1/{path} on the Stripe stand-in"))?;
    let status = response.status();
    let body: Value = response.json().await.context("a Stripe answer")?;
    if !status.is_success() {
        bail!("the Stripe stand-in refused POST /v1/{path}: {status} {}", body["error"]["message"]);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_stand_in_gets_the_webhook_worker_as_endpoint_and_a_monthly_demo_price() {
        let devstack = tollgate_devstack::start(tollgate_devstack::DevstackConfig::for_tests()).await.unwrap();
        let (base, key) = (devstack.stripe_base_url(), devstack.stripe_secret_key().to_owned());
        let seeded = seed(&base, &key, "http://127.0.0.1:8787", "member").await.unwrap();
        assert!(seeded.webhook_secret.starts_with("whsec_") && seeded.price_id.starts_with("price_"), "{seeded:?}");
        let get = |path: String| reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(&key).send();
        let endpoint: Value =
            get(format!("/v1/webhook_endpoints/{}", seeded.endpoint_id)).await.unwrap().json().await.unwrap();
        assert_eq!(endpoint["url"], "http://127.0.0.1:8787/stripe/webhook");
        assert_eq!(endpoint["enabled_events"], serde_json::json!(tollgate_devstack::stripe::WEBHOOK_EVENTS));
        let price: Value = get(format!("/v1/prices/{}", seeded.price_id)).await.unwrap().json().await.unwrap();
        assert_eq!(
            (price["unit_amount"].clone(), price["recurring"]["interval"].clone()),
            (1000.into(), "month".into())
        );
        let product: Value =
            get(format!("/v1/products/{}", price["product"].as_str().unwrap())).await.unwrap().json().await.unwrap();
        assert_eq!((product["name"].clone(), product["metadata"]["plan"].clone()), ("Member".into(), "member".into()));
        assert!(tollgate_app::settings::check("DEMO_STRIPE_PRICE_ID", &seeded.price_id).is_ok());
        assert!(tollgate_app::settings::check("STRIPE_WEBHOOK_SECRET", &seeded.webhook_secret).is_ok());
        let refused = seed(&base, "sk_test_wrong", "http://127.0.0.1:8787", "member").await.unwrap_err();
        assert!(format!("{refused:#}").contains("401"), "{refused:#}");
    }
}

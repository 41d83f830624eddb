//! Refund reconciliation: Sell.app pushes no refund event (a refund is only an order status, `REFUNDED`,
//! `REVERSED` or `VOIDED`), so the webhook worker's cron re-reads, through Sell.app's API, the orders
//! behind live Sell.app entitlements and revokes (reason `refund`) those whose status became one of those.
//! A `DISPUTING` or `FAILED` order is reported, not revoked (a dispute has its own webhook).
//!
//! ## Which orders, in what order, within what budget
//! An order is examined while its entitlement is not revoked and was granted within the **window**
//! (`REFUND_CHECK_DAYS`, default 60 days after purchase), at most once per **interval**
//! (`REFUND_CHECK_INTERVAL_HOURS`, default 24). Each run reads at most `REFUND_CHECKS_PER_RUN` orders
//! (default 5): first those never checked, most recent purchase first (a refund right after buying is the
//! common case), then those whose last check is older than the interval, the longest-unchecked first. Each
//! check stores `lastCheckedAt` and `providerStatus` on the entitlement, which moves it to the back of the
//! queue: the next run resumes where this one stopped, with no cursor to lose. With the cron every minute
//! that is 7,200 checks a day, so every order of the last 60 days is read daily up to 7,200 live orders
//! (more with a bigger per-run budget).
//!
//! A run costs two Appwrite listings plus, per order, one Sell.app call and one Appwrite write; a refund
//! adds the revocation (read + write), the legacy-import check (one listing) and the buyer's role-sync
//! request (one or two). An error of Sell.app's (key refused, rate limit, outage) stops the run: what was
//! not checked is still due and is read first next time. An answer that cannot be read is never taken as
//! "not refunded": it is reported, and marked checked so that it does not block the queue.

use crate::error::StepError;
use crate::ledger::{decode_entries, LedgerChange, LedgerEntry, PROVIDER_SELLAPP};
use crate::records::timestamp;
use crate::settings::{value, with_default, SettingsError};
use crate::App;
use chrono::Duration;
use serde_json::json;
use tollgate_appwrite::Query;
use tollgate_core::{AppwriteId, Clock, LedgerEvent, Revocation, RevokeReason, Secret};
pub use tollgate_sellapp::{SellappApi, SellappApiConfig, SellappApiError};

/// Statuses that end access.
pub const REFUNDED_STATUSES: &[&str] = &["REFUNDED", "REVERSED", "VOIDED"];
/// Statuses reported for an admin.
pub const ATTENTION_STATUSES: &[&str] = &["DISPUTING", "FAILED"];
/// `providerStatus` of an order Sell.app does not know (404), and of an answer that cannot be read.
pub const STATUS_NOT_FOUND: &str = "NOT_FOUND";
pub const STATUS_UNREADABLE: &str = "UNREADABLE";

/// How refund reconciliation runs (settings `REFUND_CHECK_DAYS`, `REFUND_CHECK_INTERVAL_HOURS`,
/// `REFUND_CHECKS_PER_RUN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundPolicy {
    pub window: Duration,
    pub interval: Duration,
    pub per_run: u32,
}

impl Default for RefundPolicy {
    fn default() -> Self {
        Self { window: Duration::days(60), interval: Duration::hours(24), per_run: 5 }
    }
}

/// The largest values the refund settings accept.
const MAX_DAYS: i64 = 3_650;
const MAX_HOURS: i64 = 24 * 365;
const MAX_PER_RUN: i64 = 200;

fn whole_number(value: &str, max: i64) -> Result<i64, String> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("expected a whole number from 1 to {max}, got `{value}`"))
}

/// Registry checks (`settings::SETTINGS`).
pub(crate) fn check_days(value: &str) -> Result<(), String> {
    whole_number(value, MAX_DAYS).map(drop)
}
pub(crate) fn check_hours(value: &str) -> Result<(), String> {
    whole_number(value, MAX_HOURS).map(drop)
}
pub(crate) fn check_per_run(value: &str) -> Result<(), String> {
    whole_number(value, MAX_PER_RUN).map(drop)
}

impl RefundPolicy {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        // The registry has checked each value; parsing again cannot fail on it.
        let number = |name: &'static str, max: i64| -> Result<i64, SettingsError> {
            whole_number(&with_default(&lookup, name)?, max).map_err(|reason| SettingsError::Invalid { name, reason })
        };
        Ok(Self {
            window: Duration::days(number("REFUND_CHECK_DAYS", MAX_DAYS)?),
            interval: Duration::hours(number("REFUND_CHECK_INTERVAL_HOURS", MAX_HOURS)?),
            per_run: u32::try_from(number("REFUND_CHECKS_PER_RUN", MAX_PER_RUN)?).unwrap_or(u32::MAX),
        })
    }
}

/// `SELLAPP_API_KEY` (unset: refunds are not caught) and `SELLAPP_API_BASE` (default Sell.app's own).
pub fn sellapp_api_config(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<SellappApiConfig>, SettingsError> {
    let Some(key) = value(&lookup, "SELLAPP_API_KEY")? else { return Ok(None) };
    let api_base = with_default(&lookup, "SELLAPP_API_BASE")?;
    Ok(Some(SellappApiConfig { api_base, api_key: Secret::new(key) }))
}

/// Why the Sell.app client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SellappSetupError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Client(#[from] SellappApiError),
}

/// The Sell.app client when `SELLAPP_API_KEY` is set.
pub fn sellapp_api(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<SellappApi>, SellappSetupError> {
    match sellapp_api_config(lookup)? {
        None => Ok(None),
        Some(config) => Ok(Some(SellappApi::new(config)?)),
    }
}

/// What one run found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundReport {
    pub checked: usize,
    /// Sources revoked for a refund.
    pub revoked: Vec<String>,
    /// `(source, status)` of orders an admin should look at (`DISPUTING`, `FAILED`, unknown to Sell.app,
    /// unreadable answers, statuses Tollgate does not know).
    pub attention: Vec<(String, String)>,
    /// Why the run stopped before its budget (Sell.app refused or is unavailable).
    pub stopped: Option<String>,
}

impl<C: Clock> App<'_, C> {
    /// One bounded run of refund reconciliation (see the module doc).
    pub async fn reconcile_refunds(&self, api: &SellappApi, policy: &RefundPolicy) -> Result<RefundReport, StepError> {
        let mut report = RefundReport::default();
        for entry in self.orders_due_for_refund_check(policy).await? {
            let Some(order) = entry.order_id.clone() else { continue };
            let status = match api.order_status(entry.store.as_deref(), &order).await {
                Ok(Some(found)) => found.status,
                Ok(None) => STATUS_NOT_FOUND.to_owned(),
                Err(SellappApiError::Decode(why)) => {
                    tracing::error!(
                        order,
                        why,
                        "a Sell.app order answer cannot be read; not taken as paid or refunded"
                    );
                    STATUS_UNREADABLE.to_owned()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "refund reconciliation stopped; it resumes on the next run");
                    report.stopped = Some(e.to_string());
                    break;
                }
            };
            self.note_provider_status(&entry, &status).await?;
            report.checked += 1;
            let source = entry.entitlement.source.clone();
            if REFUNDED_STATUSES.contains(&status.as_str()) {
                self.revoke_for_refund(&entry, &order, &status).await?;
                report.revoked.push(source);
            } else if !matches!(status.as_str(), "COMPLETED" | "PAID") {
                tracing::warn!(order, status, source, "a Sell.app order needs an admin's attention");
                report.attention.push((source, status));
            }
        }
        Ok(report)
    }

    /// Never-checked orders (newest purchase first), then overdue ones (longest unchecked first).
    async fn orders_due_for_refund_check(&self, policy: &RefundPolicy) -> Result<Vec<LedgerEntry>, StepError> {
        let now = self.clock.now();
        let since = timestamp(now - policy.window);
        let base = || {
            vec![
                Query::equal("provider", [PROVIDER_SELLAPP]),
                // Orders only: a subscription's period end already bounds it.
                Query::starts_with("source", "sellapp:"),
                Query::is_null("revokedAt"),
                Query::is_not_null("orderId"),
                Query::greater_than_equal("grantedAt", since.clone()),
            ]
        };
        let mut never = base();
        never.extend([Query::is_null("lastCheckedAt"), Query::order_desc("grantedAt"), Query::limit(policy.per_run)]);
        let mut due = self.list_entitlements(&never).await?;
        let left = policy.per_run.saturating_sub(due.len() as u32);
        if left > 0 {
            let mut overdue = base();
            overdue.extend([
                Query::less_than_equal("lastCheckedAt", timestamp(now - policy.interval)),
                Query::order_asc("lastCheckedAt"),
                Query::limit(left),
            ]);
            due.extend(self.list_entitlements(&overdue).await?);
        }
        due.retain(|e| e.entitlement.source.starts_with("sellapp:") && !e.entitlement.is_revoked());
        Ok(due)
    }

    async fn list_entitlements(&self, queries: &[Query]) -> Result<Vec<LedgerEntry>, StepError> {
        let docs = self
            .appwrite
            .list_documents(&self.settings.database_id, &self.settings.collections.entitlements, queries)
            .await
            .map_err(|e| StepError::appwrite("listing Sell.app orders to check for refunds", &e))?;
        decode_entries(&docs.documents)
    }

    async fn note_provider_status(&self, entry: &LedgerEntry, status: &str) -> Result<(), StepError> {
        let data = json!({ "lastCheckedAt": timestamp(self.clock.now()), "providerStatus": crate::records::fit(status, crate::schema::SHORT_TEXT_SIZE) });
        self.appwrite
            .update_document(&self.settings.database_id, &self.settings.collections.entitlements, &entry.id, &data)
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("recording the order's provider status", &e))
    }

    async fn revoke_for_refund(&self, entry: &LedgerEntry, order: &str, status: &str) -> Result<(), StepError> {
        let revocation = Revocation { at: self.clock.now(), reason: RevokeReason::Refund };
        let change = LedgerChange {
            source: entry.entitlement.source.clone(),
            provider: PROVIDER_SELLAPP,
            email: None,
            user_id: None,
            order_id: Some(order.to_owned()),
            store: entry.store.clone(),
            event: LedgerEvent::Revoke(revocation),
            event_key: format!("refund-check:{order}:{status}"),
            annotations: Vec::new(),
        };
        let recorded = self.record_ledger_event(&change).await?;
        self.revoke_other_sources_of_order(order, &change.source, revocation, &change.event_key).await?;
        tracing::info!(order, status, source = %change.source, "a refunded Sell.app order lost its access");
        if let Some(raw) = recorded.entry.user_id.as_deref() {
            let user = AppwriteId::parse(raw).map_err(|e| StepError::unexpected_user_id(raw, &e))?;
            self.request_role_sync(&user).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_defaults_to_daily_for_sixty_days_and_refuses_nonsense() {
        assert_eq!(RefundPolicy::from_lookup(|_| None), Ok(RefundPolicy::default()));
        let custom = RefundPolicy::from_lookup(|n| (n == "REFUND_CHECK_DAYS").then(|| "30".into())).unwrap();
        assert_eq!(custom.window, Duration::days(30));
        for bad in ["0", "-1", "soon"] {
            assert!(RefundPolicy::from_lookup(|n| (n == "REFUND_CHECKS_PER_RUN").then(|| bad.into())).is_err());
        }
    }

    #[test]
    fn without_a_key_there_is_no_client_and_the_base_defaults_to_sellapps() {
        assert!(sellapp_api_config(|_| None).unwrap().is_none());
        let config = sellapp_api_config(|n| (n == "SELLAPP_API_KEY").then(|| "k".into())).unwrap().unwrap();
        assert_eq!(config.api_base, "https://sell.app/api");
        let bad_base = |n: &str| match n {
            "SELLAPP_API_KEY" => Some("k".to_owned()),
            "SELLAPP_API_BASE" => Some("sell.app".to_owned()),
            _ => None,
        };
        assert!(sellapp_api_config(bad_base).is_err());
    }
}

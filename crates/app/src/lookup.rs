//! Everything that decides a user's access, in one read: for the customer's `GET /me/access` and the
//! admin's user lookup: the entitlements with their sources, status and end, the access derived from
//! them, and each projection as it stands (`subscriptions`, `paid` membership, Discord roles) so a
//! disagreement shows. Reads only, except that pending entitlements the user may now claim are claimed
//! (Tollgate "sees" the user here).

use crate::error::StepError;
use crate::ledger::LedgerEntry;
use crate::records::timestamp;
use crate::records::FailureRecord;
use crate::role_sync::RoleSync;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tollgate_appwrite::{Query, User};
use tollgate_core::{desired_roles, managed_roles, Access, AppwriteId, Clock, Email};
use tollgate_discord::DiscordError;

/// Failures shown with a lookup.
const RECENT_FAILURES: u32 = 10;
/// A user's access report reads their Discord member at most this often (anyone can reload it in a loop;
/// every read would spend the bot's rate limit); in between, the last answer is shown. A role change by
/// role sync makes that answer stale at once.
pub const MEMBER_READ_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessReport {
    pub user: Value,
    /// Derived from the entitlements: the truth.
    pub has_access: bool,
    /// The primary plan (the one the `subscriptions` document names).
    pub plan: Option<String>,
    /// Every plan with access, until when (before the grace period) and from which sources.
    pub plans: Vec<Value>,
    /// When access ends (before grace); `null` when open-ended or when there is none.
    pub access_ends_at: Option<String>,
    pub grace_hours: i64,
    /// The user's entitlements (owned).
    pub entitlements: Vec<Value>,
    /// Entitlements bought with the user's email that they have not claimed: they wait for the email to
    /// be verified.
    pub pending_entitlements: Vec<Value>,
    /// Projections as they stand.
    pub subscription: Option<Value>,
    pub paid_membership: bool,
    pub discord: Option<Value>,
    /// The member's managed roles as Discord has them now (`None`: not linked or not in the guild).
    pub discord_managed_roles: Option<Vec<String>>,
    /// The managed roles the member should hold now, from the access above (`None`: not linked).
    pub desired_roles: Option<Vec<String>>,
    pub last_sync: Option<Value>,
    pub recent_failures: Vec<Value>,
    /// Pending entitlements this read gave the user (their role sync is queued: the caller prompts it).
    #[serde(skip)]
    pub claimed_now: u32,
}

fn user_json(user: &User) -> Value {
    serde_json::json!({ "id": user.id, "email": user.email, "name": user.name, "emailVerification": user.email_verification })
}

/// An entitlement as admins and customers see it.
pub fn entitlement_json(entry: &LedgerEntry, now: DateTime<Utc>, grace: chrono::Duration) -> Value {
    let e = &entry.entitlement;
    serde_json::json!({
        "id": entry.id,
        "source": e.source,
        "provider": entry.provider,
        "orderId": entry.order_id,
        "plan": e.grant.as_ref().map(|g| g.plan.clone()),
        "status": e.status(now, grace).as_str(),
        "startsAt": e.grant.as_ref().and_then(|g| g.starts_at).map(timestamp),
        "endsAt": e.grant.as_ref().and_then(|g| g.ends_at).map(timestamp),
        "revokedAt": e.revocation.map(|r| timestamp(r.at)),
        "revokeReason": e.revocation.map(|r| r.reason.as_str()),
        "reinstatedAt": e.reinstated_at.map(timestamp),
        "userId": entry.user_id,
        "eventKeys": entry.event_keys,
        "sellapp": (entry.provider == crate::ledger::PROVIDER_SELLAPP).then(|| serde_json::json!({
            "order": entry.order_id,
            "store": entry.store,
            // What refund reconciliation last read from Sell.app, and when (`null`: not read yet).
            "providerStatus": entry.provider_status,
            "lastCheckedAt": entry.last_checked_at.map(timestamp),
            "planMatch": entry.plan_match,
            "productRef": entry.product_ref,
        })),
        "stripe": (entry.provider == crate::ledger::PROVIDER_STRIPE).then(|| serde_json::json!({
            "customer": entry.customer_ref,
            // `stripe-sub:` entitlements: the subscription; `stripe-pay:` ones: the payment intent.
            "subscription": e.source.starts_with("stripe-sub:").then_some(entry.order_id.clone()).flatten(),
            "paymentIntent": e.source.starts_with("stripe-pay:").then_some(entry.order_id.clone()).flatten(),
            "status": entry.provider_status,
            "price": entry.product_ref,
            "periodEnd": e.grant.as_ref().and_then(|g| g.ends_at).map(timestamp),
            "lastEventAt": entry.provider_event_at.map(timestamp),
            "lastEventId": entry.provider_event_id,
        })),
    })
}

fn access_json(access: &Access) -> Vec<Value> {
    access
        .plans
        .iter()
        .map(|(plan, a)| serde_json::json!({ "plan": plan, "endsAt": a.ends_at.map(timestamp), "sources": a.sources }))
        .collect()
}

impl<C: Clock> RoleSync<'_, C> {
    async fn optional_document(&self, collection: &str, id: &str) -> Result<Option<Value>, StepError> {
        match self.app.appwrite.get_document(&self.app.settings.database_id, collection, id).await {
            Ok(doc) => {
                let mut data = Value::Object(doc.data);
                data["$id"] = Value::String(doc.id);
                data["$updatedAt"] = Value::String(doc.updated_at.to_rfc3339());
                Ok(Some(data))
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(StepError::appwrite("reading for the lookup", &e)),
        }
    }

    /// The whole picture for one user. `with_failures` adds the recent failures of the user's email (admins).
    pub async fn access_report(&self, user: &User, with_failures: bool) -> Result<AccessReport, StepError> {
        let user_id = AppwriteId::parse(&user.id).map_err(|e| StepError::unexpected_user_id(&user.id, &e))?;
        let claimed_now = self.app.claim_pending_for_user(user).await?;
        let collections = &self.app.settings.collections;
        let (now, grace) = (self.app.clock.now(), self.app.settings.access_grace);
        let (access, entries) = self.app.derived_access(&user_id).await?;
        let pending = match Email::parse(&user.email) {
            Ok(email) => self.app.pending_entitlements_of(&email).await?,
            Err(_) => Vec::new(),
        };
        let subscription = self.optional_document(&collections.subscriptions, user_id.as_str()).await?;
        let paid_membership = self
            .app
            .appwrite
            .find_membership(&self.app.settings.paid_team_id, &user_id)
            .await
            .map_err(|e| StepError::appwrite("reading the paid membership", &e))?
            .is_some();
        let discord = self
            .optional_document(&collections.profiles, user_id.as_str())
            .await?
            .filter(|p| p["discordUserId"].is_string());
        let (discord_managed_roles, desired_roles) = match self.linked_discord_user(&user_id).await? {
            Some(discord_user) => {
                let mappings = self.load_mappings().await?;
                let managed = managed_roles(&mappings, self.guild);
                let desired = desired_roles(&mappings, self.guild, access.plans.keys().map(String::as_str));
                let read = self.discord.get_member_throttled(self.guild, discord_user, MEMBER_READ_INTERVAL).await;
                let current = match read {
                    Ok(member) => {
                        Some(member.roles.iter().filter(|r| managed.contains(r)).map(|r| r.to_string()).collect())
                    }
                    // Fail closed: without the shared limiter Discord is not called at all, and the caller
                    // says so (503) rather than showing roles as unknown for another reason.
                    Err(e @ DiscordError::LimiterUnavailable(_)) => {
                        return Err(StepError::discord_unavailable("reading the member's roles", &e))
                    }
                    Err(_) => None,
                };
                (current, Some(desired.iter().map(|r| r.to_string()).collect()))
            }
            None => (None, None),
        };
        let last_sync = self.optional_document(&collections.role_sync_jobs, user_id.as_str()).await?;
        let recent_failures = match (with_failures, Email::parse(&user.email)) {
            (true, Ok(email)) => self.failures_for(email.as_str()).await?,
            _ => Vec::new(),
        };
        Ok(AccessReport {
            user: user_json(user),
            has_access: access.has_access(),
            plan: access.primary_plan().map(str::to_owned),
            plans: access_json(&access),
            access_ends_at: access.ends_at().filter(|_| access.has_access()).map(timestamp),
            grace_hours: grace.num_hours(),
            entitlements: entries.iter().map(|e| entitlement_json(e, now, grace)).collect(),
            pending_entitlements: pending.iter().map(|e| entitlement_json(e, now, grace)).collect(),
            subscription,
            paid_membership,
            discord,
            discord_managed_roles,
            desired_roles,
            last_sync,
            recent_failures,
            claimed_now,
        })
    }

    async fn failures_for(&self, email: &str) -> Result<Vec<Value>, StepError> {
        let settings = self.app.settings;
        let queries = [
            Query::equal("email", [email]),
            Query::order_desc("$updatedAt"),
            crate::admin_console::failure_summary_select(),
            Query::limit(RECENT_FAILURES),
        ];
        let list = self
            .app
            .appwrite
            .list_documents(&settings.database_id, &settings.collections.webhook_failures, &queries)
            .await
            .map_err(|e| StepError::appwrite("listing the user's failures", &e))?;
        Ok(list.documents.iter().map(crate::admin_console::failure_item).collect())
    }
}

/// A failure document as admins see it; one that does not decode is shown as such, not as empty.
pub fn failure_summary_of(doc: &tollgate_appwrite::Document) -> Value {
    match doc.decode::<FailureRecord>() {
        Ok(record) => failure_summary(&doc.id, &record),
        Err(e) => serde_json::json!({ "id": doc.id, "unreadable": e.to_string() }),
    }
}

/// A failure as admins see it: everything but the raw body.
pub fn failure_summary(id: &str, record: &FailureRecord) -> Value {
    serde_json::json!({
        "id": id,
        "provider": record.provider,
        "event": record.event,
        "eventId": record.event_id,
        "orderId": record.order_id,
        "email": record.email,
        "emailRaw": record.email_raw,
        "errorCode": record.error_code,
        "errorMessage": record.error_message,
        "attempts": record.attempts(),
        "state": record.state().as_str(),
        "nextAttemptAt": record.next_attempt_at,
    })
}

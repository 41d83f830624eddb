//! The entitlement ledger in Appwrite (`entitlements`): one document per source of access, id derived
//! from the source key, so every event of one Sell.app order (or one admin grant) lands on the same
//! document whoever delivers it and however often.
//!
//! A document holds the registers of [`tollgate_core::Entitlement`] (grant, revocation, reinstatement)
//! as separate attributes and every write is a partial update of the registers the event changes
//! ([`tollgate_core::apply_event`]). Appwrite has no compare-and-set; partial updates of disjoint
//! attributes commute, so a purchase and its chargeback applied at the same moment always end revoked.
//!
//! `userId` is empty while the entitlement is **pending**: bought by an email that has no account, or
//! whose account has not verified that email yet. Only a verified account claims it
//! ([`crate::pending_entitlements`]).
//!
//! A document that does not decode is an error, never "no entitlement": the caller stops and reports
//! rather than projecting less access (or more) than was paid for.

use crate::error::StepError;
use crate::records::{fit, parse_timestamp, timestamp};
use crate::schema::{EMAIL_SIZE, NAME_SIZE, SHORT_TEXT_SIZE, SOURCE_SIZE};
use crate::App;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tollgate_appwrite::{Document, Query};
use tollgate_core::{
    apply_event, derived_document_id, AppwriteId, Clock, Email, Entitlement, EntitlementPatch, Grant, LedgerEvent,
    Revocation, RevokeReason,
};

/// Event keys kept on an entitlement (the most recent ones), for admins tracing what changed it.
pub const EVENT_KEYS_KEPT: usize = 10;
/// Entitlements read per page.
pub const LEDGER_PAGE: u32 = tollgate_appwrite::MAX_PAGE_SIZE;
/// Attempts at creating a document another request may be creating at the same moment.
const CREATE_RACE_ATTEMPTS: u32 = 3;

/// Who or what an entitlement comes from (`entitlements.provider`).
pub const PROVIDER_SELLAPP: &str = "sellapp";
pub const PROVIDER_ADMIN: &str = "admin";
pub const PROVIDER_STRIPE: &str = "stripe";
/// Imported from a `subscriptions` document written before the ledger existed.
pub const PROVIDER_LEGACY: &str = "legacy";

/// The source key of a Sell.app order. Orders are numbered per store.
pub fn sellapp_order_source(store: Option<&str>, order_id: &str) -> String {
    format!("sellapp:{}:{}", store.unwrap_or("no-store"), order_id)
}

/// The source key of a Sell.app subscription: every period of it extends the same entitlement.
pub fn sellapp_subscription_source(store: Option<&str>, subscription_id: &str) -> String {
    format!("sellapp-sub:{}:{}", store.unwrap_or("no-store"), subscription_id)
}

/// The source key of a Stripe subscription: every event of it lands on one entitlement.
pub fn stripe_subscription_source(subscription_id: &str) -> String {
    format!("stripe-sub:{subscription_id}")
}

/// The source key of a one-off Stripe payment (a Checkout Session in `payment` mode).
pub fn stripe_payment_source(checkout_session_id: &str) -> String {
    format!("stripe-pay:{checkout_session_id}")
}

/// An admin's grant of `plan` to an email: granting the same plan again extends the same entitlement.
pub fn admin_source(email: &Email, plan: &str) -> String {
    format!("admin:{email}:{plan}")
}

pub fn legacy_source(user_id: &AppwriteId) -> String {
    format!("legacy:{user_id}")
}

pub fn entitlement_document_id(source: &str) -> AppwriteId {
    derived_document_id(&format!("entitlement:{source}"))
}

/// One stored entitlement: the pure value plus what identifies and locates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: String,
    pub entitlement: Entitlement,
    pub provider: String,
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub order_id: Option<String>,
    pub store: Option<String>,
    pub event_keys: Vec<String>,
    /// How a Sell.app purchase found its plan (`product`, `variant`, `title`, `default`).
    pub plan_match: Option<String>,
    /// The product (or title) the purchase named.
    pub product_ref: Option<String>,
    /// When refund reconciliation last read the order from Sell.app, and what it said.
    pub last_checked_at: Option<DateTime<Utc>>,
    pub provider_status: Option<String>,
    /// Stripe: the customer (`cus_…`), so events that name only the customer find the entitlement.
    pub customer_ref: Option<String>,
    /// The provider's time and id of the last event applied (Stripe's `created`, `evt_…`): an older event
    /// changes nothing.
    pub provider_event_at: Option<DateTime<Utc>>,
    pub provider_event_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct EntitlementDoc {
    source: Option<String>,
    provider: Option<String>,
    email: Option<String>,
    user_id: Option<String>,
    plan: Option<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    granted_at: Option<String>,
    revoked_at: Option<String>,
    revoke_reason: Option<String>,
    reinstated_at: Option<String>,
    order_id: Option<String>,
    store: Option<String>,
    event_keys_json: Option<String>,
    plan_match: Option<String>,
    product_ref: Option<String>,
    last_checked_at: Option<String>,
    provider_status: Option<String>,
    customer_ref: Option<String>,
    provider_event_at: Option<String>,
    provider_event_id: Option<String>,
}

fn unreadable(id: &str, why: &str) -> StepError {
    tracing::error!(entitlement = id, why, "an entitlement document does not decode");
    StepError::permanent(
        "unreadable_entitlement",
        format!("entitlement {id} cannot be read ({why}); fix or delete it, then replay"),
    )
}

fn time(id: &str, field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, StepError> {
    match raw {
        None => Ok(None),
        Some(raw) => parse_timestamp(raw).map(Some).ok_or_else(|| unreadable(id, &format!("{field} `{raw}`"))),
    }
}

impl LedgerEntry {
    pub fn decode(doc: &Document) -> Result<Self, StepError> {
        let id = doc.id.as_str();
        let raw: EntitlementDoc = doc.decode().map_err(|e| unreadable(id, &e.to_string()))?;
        let source = raw.source.ok_or_else(|| unreadable(id, "no source"))?;
        let grant = match (raw.plan, time(id, "grantedAt", raw.granted_at.as_deref())?) {
            (Some(plan), Some(at)) => Some(Grant {
                plan,
                starts_at: time(id, "startsAt", raw.starts_at.as_deref())?,
                ends_at: time(id, "endsAt", raw.ends_at.as_deref())?,
                at,
            }),
            (None, None) => None,
            _ => return Err(unreadable(id, "a grant needs both plan and grantedAt")),
        };
        let revocation = match time(id, "revokedAt", raw.revoked_at.as_deref())? {
            None => None,
            Some(at) => {
                let reason = raw
                    .revoke_reason
                    .as_deref()
                    .and_then(RevokeReason::parse)
                    .ok_or_else(|| unreadable(id, "revokedAt without a known revokeReason"))?;
                Some(Revocation { at, reason })
            }
        };
        let event_keys = match raw.event_keys_json.as_deref() {
            None | Some("") => Vec::new(),
            Some(json) => serde_json::from_str(json).map_err(|_| unreadable(id, "eventKeysJson"))?,
        };
        Ok(Self {
            id: doc.id.clone(),
            entitlement: Entitlement {
                source,
                grant,
                revocation,
                reinstated_at: time(id, "reinstatedAt", raw.reinstated_at.as_deref())?,
            },
            provider: raw.provider.unwrap_or_default(),
            email: raw.email,
            user_id: raw.user_id.filter(|u| !u.is_empty()),
            order_id: raw.order_id,
            store: raw.store,
            event_keys,
            plan_match: raw.plan_match,
            product_ref: raw.product_ref,
            last_checked_at: time(id, "lastCheckedAt", raw.last_checked_at.as_deref())?,
            provider_status: raw.provider_status,
            customer_ref: raw.customer_ref,
            provider_event_at: time(id, "providerEventAt", raw.provider_event_at.as_deref())?,
            provider_event_id: raw.provider_event_id,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        })
    }

    pub fn is_pending(&self) -> bool {
        self.user_id.is_none()
    }
}

/// Decodes a page of entitlement documents; one that does not decode fails the whole read.
pub fn decode_entries(docs: &[Document]) -> Result<Vec<LedgerEntry>, StepError> {
    docs.iter().map(LedgerEntry::decode).collect()
}

/// An event about one source of access, ready to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerChange {
    pub source: String,
    pub provider: &'static str,
    /// The buyer's email (`None` only for an entitlement imported from a document that had none).
    pub email: Option<Email>,
    /// The account the entitlement belongs to, when known and allowed to claim it (verified email).
    pub user_id: Option<AppwriteId>,
    pub order_id: Option<String>,
    pub store: Option<String>,
    pub event: LedgerEvent,
    /// The idempotency key of the event (or a description of the admin action).
    pub event_key: String,
    /// Facts about the source written along with the event (e.g. how a Sell.app purchase found its plan:
    /// `planMatch`, `productRef`), for admins and `doctor`; never read to decide access.
    pub annotations: Vec<(&'static str, Value)>,
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The entitlement as it now stands (as far as this request wrote it).
    pub entry: LedgerEntry,
    /// `false`: the event was stale or a repeat, or could not lift a revocation.
    pub changed: bool,
}

pub(crate) fn patch_data(patch: &EntitlementPatch) -> Map<String, Value> {
    let mut data = Map::new();
    if let Some(grant) = &patch.grant {
        data.insert("plan".into(), json!(fit(&grant.plan, NAME_SIZE)));
        data.insert("startsAt".into(), json!(grant.starts_at.map(timestamp)));
        data.insert("endsAt".into(), json!(grant.ends_at.map(timestamp)));
        data.insert("grantedAt".into(), json!(timestamp(grant.at)));
    }
    if let Some(revocation) = &patch.revocation {
        data.insert("revokedAt".into(), json!(timestamp(revocation.at)));
        data.insert("revokeReason".into(), json!(revocation.reason.as_str()));
    }
    if let Some(reinstated) = patch.reinstated_at {
        data.insert("reinstatedAt".into(), json!(timestamp(reinstated)));
    }
    data
}

pub(crate) fn with_key(keys: &[String], key: &str) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().filter(|k| k.as_str() != key).cloned().collect();
    keys.push(key.to_owned());
    let skip = keys.len().saturating_sub(EVENT_KEYS_KEPT);
    keys.split_off(skip)
}

impl<C: Clock> App<'_, C> {
    pub(crate) fn ledger_collection(&self) -> (&str, &str) {
        (&self.settings.database_id, &self.settings.collections.entitlements)
    }

    /// Records `change` on its entitlement. A first grant of a new source costs one call (create); any
    /// other event reads the entitlement and writes only the registers the event changes.
    pub async fn record_ledger_event(&self, change: &LedgerChange) -> Result<Recorded, StepError> {
        let (db, collection) = self.ledger_collection();
        let id = entitlement_document_id(&change.source);
        for _ in 0..CREATE_RACE_ATTEMPTS {
            let existing = if matches!(change.event, LedgerEvent::Grant { .. } | LedgerEvent::GrantOnce(_)) {
                None // try the create first: a new purchase is the common case
            } else {
                self.read_entry(&id).await?
            };
            let Some(entry) = existing else {
                match self.create_entry(&id, change).await? {
                    Some(recorded) => return Ok(recorded),
                    None => match self.read_entry(&id).await? {
                        Some(entry) => return self.update_entry(entry, change).await,
                        None => continue, // created and deleted meanwhile: try again
                    },
                }
            };
            return self.update_entry(entry, change).await;
        }
        Err(StepError::transient(
            "ledger_contention",
            format!("entitlement {id} kept changing while recording {}", change.event_key),
        ))
        .inspect_err(|_| tracing::warn!(collection, db, "ledger write contention"))
    }

    pub(crate) async fn read_entry(&self, id: &AppwriteId) -> Result<Option<LedgerEntry>, StepError> {
        let (db, collection) = self.ledger_collection();
        match self.appwrite.get_document(db, collection, id.as_str()).await {
            Ok(doc) => LedgerEntry::decode(&doc).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(StepError::appwrite("reading the entitlement", &e)),
        }
    }

    /// `None`: it exists already (409).
    async fn create_entry(&self, id: &AppwriteId, change: &LedgerChange) -> Result<Option<Recorded>, StepError> {
        let (db, collection) = self.ledger_collection();
        let fresh = Entitlement::new(change.source.clone());
        let patch = apply_event(&fresh, &change.event);
        let mut data = patch_data(&patch);
        data.insert("source".into(), json!(fit(&change.source, SOURCE_SIZE)));
        data.insert("provider".into(), json!(change.provider));
        data.insert("email".into(), json!(change.email.as_ref().map(|e| fit(e.as_str(), EMAIL_SIZE))));
        data.insert("userId".into(), json!(change.user_id.as_ref().map(|u| u.as_str())));
        data.insert("orderId".into(), json!(change.order_id.as_deref().map(|o| fit(o, SHORT_TEXT_SIZE))));
        data.insert("store".into(), json!(change.store.as_deref().map(|s| fit(s, SHORT_TEXT_SIZE))));
        data.insert("eventKeysJson".into(), json!(json!([change.event_key]).to_string()));
        if change.user_id.is_some() {
            data.insert("claimedAt".into(), json!(timestamp(self.clock.now())));
        }
        for (key, value) in &change.annotations {
            data.insert((*key).into(), value.clone());
        }
        match self.appwrite.create_document(db, collection, id.as_str(), &Value::Object(data), None).await {
            Ok(doc) => Ok(Some(Recorded { entry: LedgerEntry::decode(&doc)?, changed: !patch.is_empty() })),
            Err(e) if e.is_conflict() => Ok(None),
            Err(e) => Err(StepError::appwrite("creating the entitlement", &e)),
        }
    }

    async fn update_entry(&self, entry: LedgerEntry, change: &LedgerChange) -> Result<Recorded, StepError> {
        let (db, collection) = self.ledger_collection();
        let patch = apply_event(&entry.entitlement, &change.event);
        let mut data = patch_data(&patch);
        // A pending entitlement is claimed by the (verified) account an event names; an owned one is
        // never moved to another account by an event.
        if let (None, Some(user)) = (&entry.user_id, &change.user_id) {
            data.insert("userId".into(), json!(user.as_str()));
            data.insert("claimedAt".into(), json!(timestamp(self.clock.now())));
        }
        if data.is_empty() {
            return Ok(Recorded { entry, changed: false });
        }
        for (key, value) in &change.annotations {
            data.insert((*key).into(), value.clone());
        }
        data.insert("eventKeysJson".into(), json!(json!(with_key(&entry.event_keys, &change.event_key)).to_string()));
        let doc = self
            .appwrite
            .update_document(db, collection, &entry.id, &Value::Object(data))
            .await
            .map_err(|e| StepError::appwrite("updating the entitlement", &e))?;
        Ok(Recorded { entry: LedgerEntry::decode(&doc)?, changed: !patch.is_empty() })
    }

    /// Every entitlement of a user.
    pub async fn user_entitlements(&self, user_id: &AppwriteId) -> Result<Vec<LedgerEntry>, StepError> {
        let (db, collection) = self.ledger_collection();
        let docs = self
            .appwrite
            .list_all_documents(db, collection, &[Query::equal("userId", [user_id.as_str()])], LEDGER_PAGE)
            .await
            .map_err(|e| StepError::appwrite("listing the user's entitlements", &e))?;
        decode_entries(&docs)
    }

    /// Entitlements bought by `email` that no account has claimed yet.
    pub async fn pending_entitlements_of(&self, email: &Email) -> Result<Vec<LedgerEntry>, StepError> {
        let (db, collection) = self.ledger_collection();
        let queries = [Query::equal("email", [email.as_str()]), Query::is_null("userId")];
        let docs = self
            .appwrite
            .list_all_documents(db, collection, &queries, LEDGER_PAGE)
            .await
            .map_err(|e| StepError::appwrite("listing pending entitlements", &e))?;
        decode_entries(&docs)
    }

    /// Every entitlement that may give access: owned, and not revoked (or revoked and then reinstated).
    /// Ended ones are among them until they are filtered by time; revoked ones are not read at all.
    pub async fn entitlements_that_may_grant(&self) -> Result<Vec<LedgerEntry>, StepError> {
        let (db, collection) = self.ledger_collection();
        // Never revoked, or revoked and reinstated (Appwrite cannot compare two attributes in a query;
        // the registers decide in core which of the latter still give access).
        let mut docs = Vec::new();
        for register in [Query::is_null("revokedAt"), Query::is_not_null("reinstatedAt")] {
            let page = self
                .appwrite
                .list_all_documents(db, collection, &[Query::is_not_null("userId"), register], LEDGER_PAGE)
                .await
                .map_err(|e| StepError::appwrite("listing entitlements that may grant", &e))?;
            docs.extend(page);
        }
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        docs.dedup_by(|a, b| a.id == b.id);
        decode_entries(&docs)
    }

    /// Revokes every other entitlement that names `order` (an import of a pre-ledger subscription of
    /// that order): a chargeback must take the order's access away whichever document holds it.
    pub(crate) async fn revoke_other_sources_of_order(
        &self,
        order: &str,
        own_source: &str,
        revocation: Revocation,
        event_key: &str,
    ) -> Result<(), StepError> {
        let (db, collection) = self.ledger_collection();
        let docs = self
            .appwrite
            .list_documents(db, collection, &[Query::equal("orderId", [order]), Query::limit(LEDGER_PAGE)])
            .await
            .map_err(|e| StepError::appwrite("listing entitlements of the order", &e))?;
        for entry in decode_entries(&docs.documents)? {
            if entry.entitlement.source == own_source || entry.provider != PROVIDER_LEGACY {
                continue;
            }
            let change = LedgerChange {
                source: entry.entitlement.source.clone(),
                provider: PROVIDER_LEGACY,
                email: None,
                user_id: None,
                order_id: entry.order_id.clone(),
                store: None,
                event: LedgerEvent::Revoke(revocation),
                event_key: event_key.to_owned(),
                annotations: Vec::new(),
            };
            self.update_entry(entry, &change).await?;
        }
        Ok(())
    }

    /// Sets the owner of pending entitlements (the account has verified their email).
    pub(crate) async fn assign_owner(&self, entry: &LedgerEntry, user_id: &AppwriteId) -> Result<(), StepError> {
        let (db, collection) = self.ledger_collection();
        let data = json!({ "userId": user_id.as_str(), "claimedAt": timestamp(self.clock.now()) });
        self.appwrite
            .update_document(db, collection, &entry.id, &data)
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("claiming the pending entitlement", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_keep_the_most_recent_without_repeats() {
        let keys: Vec<String> = (0..EVENT_KEYS_KEPT).map(|i| format!("k{i}")).collect();
        let next = with_key(&keys, "new");
        assert_eq!(next.len(), EVENT_KEYS_KEPT);
        assert_eq!(next.last().map(String::as_str), Some("new"));
        assert_eq!(next.first().map(String::as_str), Some("k1"));
        assert_eq!(with_key(&next, "new"), next);
    }

    #[test]
    fn sources_name_their_origin() {
        assert_eq!(sellapp_order_source(Some("7"), "501"), "sellapp:7:501");
        assert_eq!(sellapp_order_source(None, "501"), "sellapp:no-store:501");
        assert_eq!(sellapp_subscription_source(Some("7"), "12"), "sellapp-sub:7:12");
        let email = Email::parse("A@B.co").unwrap();
        assert_eq!(admin_source(&email, "pro"), "admin:a@b.co:pro");
    }
}

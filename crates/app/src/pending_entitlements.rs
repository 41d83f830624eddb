//! Purchases by an email that has no Appwrite account yet. The replaced deployment acknowledged and
//! dropped them (`user_not_found`); Tollgate stores the entitlement under the email (one document per
//! email, id derived from it, holding that email's latest state) and applies it as soon as an account
//! with that email exists: on the webhook worker's cron, and whenever Tollgate sees that user
//! ([`App::claim_pending_for_user`]).
//!
//! A pending entitlement never overrides something newer: if the user's subscription was written after
//! the entitlement was recorded (a later event found the account), the pending one is marked superseded.

use crate::apply_entitlement::EntitlementChange;
use crate::error::StepError;
use crate::records::{parse_timestamp, timestamp, PendingRecord};
use crate::App;
use serde_json::json;
use tollgate_appwrite::{Document, Query};
use tollgate_core::{derived_document_id, AppwriteId, Clock, Email, Entitlement, SubscriptionStatus};

/// Unclaimed pending entitlements read per page, and emails looked up per users query (Appwrite allows
/// up to 100 values in one `equal`).
pub const PENDING_PAGE_SIZE: u32 = 100;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClaimReport {
    pub checked: u32,
    pub applied: u32,
    pub superseded: u32,
}

/// `pending_entitlements.claimOutcome`.
const CLAIM_APPLIED: &str = "applied";
const CLAIM_SUPERSEDED: &str = "superseded";

fn pending_document_id(email: &Email) -> AppwriteId {
    derived_document_id(&format!("pending:{email}"))
}

impl<C: Clock> App<'_, C> {
    pub(crate) async fn record_pending(&self, change: &EntitlementChange) -> Result<(), StepError> {
        let e = &change.entitlement;
        let data = json!({
            "email": change.email.as_str(),
            "plan": e.plan,
            "status": e.status.as_str(),
            "provider": change.provider,
            "orderId": change.order_id,
            "eventId": change.event_id,
            "expiresAt": e.expires_at.map(timestamp),
            "recordedAt": timestamp(self.clock.now()),
            "claimedAt": null,
            "claimedByUserId": null,
            "claimOutcome": null,
        });
        let id = pending_document_id(&change.email);
        self.appwrite
            .upsert_document(
                &self.settings.database_id,
                &self.settings.collections.pending_entitlements,
                id.as_str(),
                &data,
            )
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("recording the pending entitlement", &e))
    }

    /// Claims every unclaimed pending entitlement whose email now has an account, reading at most
    /// `max_pages` pages of them.
    pub async fn claim_pending_entitlements(&self, max_pages: u32) -> Result<ClaimReport, StepError> {
        let mut report = ClaimReport::default();
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages {
            let mut queries = vec![Query::is_null("claimedAt"), Query::limit(PENDING_PAGE_SIZE)];
            if let Some(after) = &cursor {
                queries.push(Query::cursor_after(after.as_str()));
            }
            let page = self
                .appwrite
                .list_documents(&self.settings.database_id, &self.settings.collections.pending_entitlements, &queries)
                .await
                .map_err(|e| StepError::appwrite("listing pending entitlements", &e))?;
            let full_page = page.documents.len() as u32 >= PENDING_PAGE_SIZE;
            cursor = page.documents.last().map(|d| d.id.clone());
            self.claim_page(&page.documents, &mut report).await?;
            if !full_page {
                break;
            }
        }
        Ok(report)
    }

    async fn claim_page(&self, docs: &[Document], report: &mut ClaimReport) -> Result<(), StepError> {
        let emails: Vec<String> = docs
            .iter()
            .filter_map(|d| d.decode::<PendingRecord>().ok()?.email)
            .filter_map(|raw| Email::parse(&raw).ok().map(|e| e.as_str().to_owned()))
            .collect();
        report.checked += docs.len() as u32;
        if emails.is_empty() {
            return Ok(());
        }
        let users = self
            .appwrite
            .list_users(&[Query::equal("email", emails), Query::limit(PENDING_PAGE_SIZE)], None)
            .await
            .map_err(|e| StepError::appwrite("looking up users by email", &e))?;
        for doc in docs {
            let record = doc.decode::<PendingRecord>().unwrap_or_default();
            let Some(email) = record.email.as_deref().and_then(|raw| Email::parse(raw).ok()) else { continue };
            let Some(user) = users.users.iter().find(|u| u.email.eq_ignore_ascii_case(email.as_str())) else {
                continue;
            };
            let user_id = AppwriteId::parse(&user.id).map_err(|e| StepError::unexpected_user_id(&user.id, &e))?;
            match self.claim_one(&doc.id, &record, &email, &user_id).await? {
                CLAIM_APPLIED => report.applied += 1,
                _ => report.superseded += 1,
            }
        }
        Ok(())
    }

    /// Applies the user's pending entitlement, if one is waiting. `Ok(true)` if something was claimed.
    pub async fn claim_pending_for_user(&self, user_id: &AppwriteId, email: &Email) -> Result<bool, StepError> {
        let id = pending_document_id(email);
        let db = &self.settings.database_id;
        let collection = &self.settings.collections.pending_entitlements;
        let doc = match self.appwrite.get_document(db, collection, id.as_str()).await {
            Ok(doc) => doc,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(StepError::appwrite("reading the pending entitlement", &e)),
        };
        let record = doc.decode::<PendingRecord>().unwrap_or_default();
        if record.claimed_at.is_some() {
            return Ok(false);
        }
        self.claim_one(&doc.id, &record, email, user_id).await?;
        Ok(true)
    }

    async fn claim_one(
        &self,
        doc_id: &str,
        record: &PendingRecord,
        email: &Email,
        user_id: &AppwriteId,
    ) -> Result<&'static str, StepError> {
        let recorded_at = record.recorded_at.as_deref().and_then(parse_timestamp);
        let newer_subscription = match (self.read_subscription(user_id).await?, recorded_at) {
            (Some((_, written_at)), Some(recorded_at)) => written_at > recorded_at,
            _ => false,
        };
        let outcome = if newer_subscription {
            CLAIM_SUPERSEDED
        } else {
            let change = EntitlementChange {
                email: email.clone(),
                entitlement: Entitlement {
                    plan: record.plan.clone().unwrap_or_else(|| self.settings.sellapp_default_plan.clone()),
                    status: record
                        .status
                        .as_deref()
                        .and_then(SubscriptionStatus::parse)
                        .unwrap_or(SubscriptionStatus::Inactive),
                    expires_at: record.expires_at.as_deref().and_then(parse_timestamp),
                },
                provider: record.provider.clone().unwrap_or_default(),
                order_id: record.order_id.clone(),
                event_id: record.event_id.clone().unwrap_or_default(),
            };
            self.apply_to_user(user_id, &change).await?;
            CLAIM_APPLIED
        };
        let data = json!({
            "claimedAt": timestamp(self.clock.now()),
            "claimedByUserId": user_id.as_str(),
            "claimOutcome": outcome,
        });
        self.appwrite
            .update_document(&self.settings.database_id, &self.settings.collections.pending_entitlements, doc_id, &data)
            .await
            .map_err(|e| StepError::appwrite("marking the pending entitlement claimed", &e))?;
        Ok(outcome)
    }
}

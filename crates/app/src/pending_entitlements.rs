//! Pending entitlements: purchases (or grants) by an email that no account may claim yet. The replaced
//! deployment acknowledged and dropped them (`user_not_found`); Tollgate keeps them in the ledger with no
//! `userId` and gives them to the account with that email **once the account has verified it**: anyone can
//! sign up with a buyer's address, so an unverified account receives nothing
//! (`ALLOW_UNVERIFIED_EMAIL_CLAIMS` turns that check off, on purpose only).
//!
//! They are claimed whenever Tollgate sees the user ([`App::claim_pending_for_user`]: `/me/access`, the
//! admin lookup) and by the webhook worker's cron ([`App::claim_pending_entitlements`]), which walks the
//! pending entitlements from a cursor kept in `sync_state`: each is examined within a bounded number of
//! runs, however many buyers never sign up before it.
//!
//! Documents of the collection `pending_entitlements` (where Tollgate kept them before the ledger) are
//! moved into the ledger by the same cron, a page per run.

use crate::error::StepError;
use crate::ledger::{LedgerChange, LedgerEntry, PROVIDER_ADMIN, PROVIDER_SELLAPP};
use crate::records::{parse_timestamp, timestamp};
use crate::App;
use serde_json::json;
use std::collections::BTreeSet;
use tollgate_appwrite::{Query, User};
use tollgate_core::{AppwriteId, Clock, Email, Grant, LedgerEvent, Revocation, RevokeReason};

/// Pending entitlements read per page, and emails looked up per users query (Appwrite allows up to 100
/// values in one `equal`).
pub const PENDING_PAGE_SIZE: u32 = 100;
/// The `sync_state` document holding the cron's place among pending entitlements.
const CURSOR_ID: &str = "pending-claims";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClaimReport {
    /// Pending entitlements examined.
    pub checked: u32,
    /// Entitlements given to their (verified) account.
    pub claimed: u32,
    /// Pending entitlements whose account exists but has not verified the email.
    pub awaiting_verification: u32,
    /// Documents that do not decode (skipped, logged).
    pub unreadable: u32,
    /// Documents moved from the collection `pending_entitlements` into the ledger.
    pub migrated: u32,
    /// The walk reached the end and starts again from the first next time.
    pub wrapped: bool,
    /// Accounts that claimed something: projected, and their role sync queued (the caller may prompt it).
    pub users: Vec<AppwriteId>,
}

/// A document of the collection used before the ledger.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct OldPendingRecord {
    email: Option<String>,
    plan: Option<String>,
    status: Option<String>,
    provider: Option<String>,
    order_id: Option<String>,
    expires_at: Option<String>,
    recorded_at: Option<String>,
}

impl<C: Clock> App<'_, C> {
    /// May this account receive purchases made with its email?
    pub fn may_claim(&self, user: &User) -> bool {
        user.email_verification || self.settings.allow_unverified_email_claims
    }

    /// Gives the user the entitlements waiting for their email, if they may claim them, and queues their
    /// role sync (which projects their access: role-sync is the one place that writes projections and
    /// roles; the caller prompts it). Returns how many were claimed.
    pub async fn claim_pending_for_user(&self, user: &User) -> Result<u32, StepError> {
        if !self.may_claim(user) {
            return Ok(0);
        }
        let Ok(email) = Email::parse(&user.email) else { return Ok(0) };
        let user_id = AppwriteId::parse(&user.id).map_err(|e| StepError::unexpected_user_id(&user.id, &e))?;
        let pending = self.pending_entitlements_of(&email).await?;
        for entry in &pending {
            self.assign_owner(entry, &user_id).await?;
        }
        if !pending.is_empty() {
            self.request_role_sync(&user_id).await?;
        }
        Ok(pending.len() as u32)
    }

    /// Examines up to `max_pages` pages of pending entitlements from where the last run stopped and gives
    /// each to its account if that account may claim it, queueing the role sync (and so the projection) of
    /// each account that received something.
    pub async fn claim_pending_entitlements(&self, max_pages: u32) -> Result<ClaimReport, StepError> {
        let mut report = ClaimReport::default();
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.entitlements);
        let mut cursor = self.load_cursor(CURSOR_ID).await?;
        let mut owners: BTreeSet<AppwriteId> = BTreeSet::new();
        for _ in 0..max_pages {
            let mut queries = vec![Query::is_null("userId"), Query::limit(PENDING_PAGE_SIZE)];
            if let Some(after) = &cursor {
                queries.push(Query::cursor_after(after.as_str()));
            }
            let page = match self.appwrite.list_documents(db, collection, &queries).await {
                Ok(page) => page,
                // The cursor's document is gone (deleted by hand): Appwrite refuses the cursor. Starting
                // again from the first is safe; keeping the cursor would fail every run from now on.
                Err(e) if cursor.is_some() && matches!(e.status, Some(400 | 404)) => {
                    tracing::warn!(error = %e, "the pending-claims cursor is refused; starting from the first");
                    cursor = None;
                    continue;
                }
                Err(e) => return Err(StepError::appwrite("listing pending entitlements", &e)),
            };
            let full = page.documents.len() as u32 >= PENDING_PAGE_SIZE;
            cursor = page.documents.last().map(|d| d.id.clone());
            report.checked += page.documents.len() as u32;
            let mut entries = Vec::new();
            for doc in &page.documents {
                match LedgerEntry::decode(doc) {
                    Ok(entry) => entries.push(entry),
                    Err(_) => report.unreadable += 1, // logged by decode; the walk goes on
                }
            }
            self.claim_page(&entries, &mut report, &mut owners).await?;
            if !full {
                cursor = None;
                report.wrapped = true;
                break;
            }
        }
        self.save_cursor(CURSOR_ID, cursor.as_deref(), false).await?;
        for user_id in &owners {
            self.request_role_sync(user_id).await?;
        }
        report.users = owners.into_iter().collect();
        Ok(report)
    }

    async fn claim_page(
        &self,
        entries: &[LedgerEntry],
        report: &mut ClaimReport,
        owners: &mut BTreeSet<AppwriteId>,
    ) -> Result<(), StepError> {
        let emails: BTreeSet<String> = entries.iter().filter_map(|e| e.email.clone()).collect();
        if emails.is_empty() {
            return Ok(());
        }
        let users = self
            .appwrite
            .list_users(&[Query::equal("email", emails), Query::limit(PENDING_PAGE_SIZE)], None)
            .await
            .map_err(|e| StepError::appwrite("looking up users by email", &e))?;
        for entry in entries {
            let Some(email) = entry.email.as_deref() else { continue };
            let Some(user) = users.users.iter().find(|u| u.email.eq_ignore_ascii_case(email)) else { continue };
            if !self.may_claim(user) {
                report.awaiting_verification += 1;
                continue;
            }
            let user_id = AppwriteId::parse(&user.id).map_err(|e| StepError::unexpected_user_id(&user.id, &e))?;
            self.assign_owner(entry, &user_id).await?;
            report.claimed += 1;
            owners.insert(user_id);
        }
        Ok(())
    }

    /// Moves up to one page of unclaimed documents of the pre-ledger `pending_entitlements` collection
    /// into the ledger (as pending entitlements), marking each `claimOutcome: migrated`.
    pub async fn migrate_old_pending(&self, report: &mut ClaimReport) -> Result<(), StepError> {
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.pending_entitlements);
        let queries = [Query::is_null("claimedAt"), Query::limit(PENDING_PAGE_SIZE)];
        let page = match self.appwrite.list_documents(db, collection, &queries).await {
            Ok(page) => page,
            // A project bootstrapped without the old collection has nothing to migrate.
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(StepError::appwrite("listing pre-ledger pending entitlements", &e)),
        };
        for doc in page.documents {
            let Ok(old) = doc.decode::<OldPendingRecord>() else {
                report.unreadable += 1;
                tracing::error!(document = %doc.id, "a pre-ledger pending entitlement does not decode; left as it is");
                continue;
            };
            let Some(email) = old.email.as_deref().and_then(|raw| Email::parse(raw).ok()) else {
                report.unreadable += 1;
                continue;
            };
            let at = old.recorded_at.as_deref().and_then(parse_timestamp).unwrap_or(doc.updated_at);
            let event = match old.status.as_deref() {
                Some("active") => LedgerEvent::Grant {
                    grant: Grant {
                        plan: old.plan.clone().unwrap_or_else(|| self.settings.sellapp_default_plan.clone()),
                        starts_at: None,
                        ends_at: old.expires_at.as_deref().and_then(parse_timestamp),
                        at,
                    },
                    reinstates: false,
                },
                _ => LedgerEvent::Revoke(Revocation { at, reason: RevokeReason::Dispute }),
            };
            let provider =
                if old.provider.as_deref() == Some(PROVIDER_ADMIN) { PROVIDER_ADMIN } else { PROVIDER_SELLAPP };
            let change = LedgerChange {
                source: format!("pending:{}", doc.id),
                provider,
                email: Some(email),
                user_id: None,
                order_id: old.order_id.clone(),
                store: None,
                event,
                event_key: "import:pending_entitlements".to_owned(),
                annotations: Vec::new(),
            };
            self.record_ledger_event(&change).await?;
            let data = json!({ "claimedAt": timestamp(self.clock.now()), "claimOutcome": "migrated" });
            self.appwrite
                .update_document(db, collection, &doc.id, &data)
                .await
                .map_err(|e| StepError::appwrite("marking a pre-ledger pending entitlement migrated", &e))?;
            report.migrated += 1;
        }
        Ok(())
    }
}

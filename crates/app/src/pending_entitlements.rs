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
/// A page: the pending entitlements and the accounts of their emails.
const PAGE_COST: u32 = 2;
/// Saving the cursor.
const CURSOR_SAVE: u32 = 1;
/// The most subrequests one claim makes: the entitlement's owner (1) and the role-sync request (up to 3;
/// role-sync projects the user).
pub const CLAIM_COST: u32 = 1 + 3;
/// Moving one pre-ledger document: the ledger entry's read and create (read, create, read again and
/// update when another writer created it meanwhile), and marking the document migrated.
const MIGRATE_COST: u32 = 5;

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
    /// The run stopped where the next claim did not fit the subrequest budget (the cursor is saved there).
    pub budget_spent: bool,
}

/// The account a pending entitlement's email belongs to, among those looked up.
fn claimant<'u>(entry: &LedgerEntry, users: &'u [User]) -> Option<&'u User> {
    let email = entry.email.as_deref()?;
    users.iter().find(|u| u.email.eq_ignore_ascii_case(email))
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
    /// each to its account if that account may claim it, within the invocation's subrequest budget, and
    /// queues the role sync (and so the projection) of each account that received something.
    ///
    /// The cursor (in `sync_state`) only ever moves past an entitlement that was dealt with: when the next
    /// claim ([`CLAIM_COST`]) does not fit, the run saves the entitlement before it and stops, so the next
    /// run starts with the one it could not afford. A run cut before it saves repeats claims it made,
    /// which is harmless (a claimed entitlement has a `userId` and no longer matches the listing).
    pub async fn claim_pending_entitlements(&self, max_pages: u32) -> Result<ClaimReport, StepError> {
        let mut report = ClaimReport::default();
        let budget = self.appwrite.subrequests();
        // The cursor's read and save, and a page's two listings (entitlements, their accounts).
        if !budget.fits(2 + PAGE_COST) {
            report.budget_spent = true;
            return Ok(report);
        }
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.entitlements);
        let mut cursor = self.load_cursor(CURSOR_ID).await?;
        let mut owners: BTreeSet<AppwriteId> = BTreeSet::new();
        'pages: for _ in 0..max_pages {
            if !budget.fits(PAGE_COST + CURSOR_SAVE) {
                report.budget_spent = true;
                break;
            }
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
            // Decoded once (a document that does not decode is logged by `decode`).
            let entries: Vec<(String, Option<LedgerEntry>)> =
                page.documents.iter().map(|d| (d.id.clone(), LedgerEntry::decode(d).ok())).collect();
            let users = self.accounts_of(entries.iter().filter_map(|(_, e)| e.as_ref())).await?;
            for (id, entry) in entries {
                match entry {
                    Some(entry) => match claimant(&entry, &users) {
                        // No account with that email yet: examined, nothing to do.
                        None => {}
                        Some(user) if !self.may_claim(user) => report.awaiting_verification += 1,
                        Some(_) if !budget.fits(CLAIM_COST + CURSOR_SAVE) => {
                            // Not past this one: the next run starts with it.
                            report.budget_spent = true;
                            break 'pages;
                        }
                        Some(user) => {
                            let user_id =
                                AppwriteId::parse(&user.id).map_err(|e| StepError::unexpected_user_id(&user.id, &e))?;
                            self.assign_owner(&entry, &user_id).await?;
                            self.request_role_sync(&user_id).await?;
                            report.claimed += 1;
                            owners.insert(user_id);
                        }
                    },
                    None => report.unreadable += 1, // the walk goes on
                }
                report.checked += 1;
                cursor = Some(id);
            }
            if !full {
                cursor = None;
                report.wrapped = true;
                break;
            }
        }
        self.save_cursor(CURSOR_ID, cursor.as_deref(), false).await?;
        report.users = owners.into_iter().collect();
        Ok(report)
    }

    /// The accounts of a page's emails (one users query; none when the page has no email).
    async fn accounts_of(&self, entries: impl Iterator<Item = &LedgerEntry>) -> Result<Vec<User>, StepError> {
        let emails: BTreeSet<String> = entries.filter_map(|e| e.email.clone()).collect();
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        self.appwrite
            .list_users(&[Query::equal("email", emails), Query::limit(PENDING_PAGE_SIZE)], None)
            .await
            .map(|list| list.users)
            .map_err(|e| StepError::appwrite("looking up users by email", &e))
    }

    /// Moves up to one page of unclaimed documents of the pre-ledger `pending_entitlements` collection
    /// into the ledger (as pending entitlements), marking each `claimOutcome: migrated`.
    /// `false` when the budget stopped it before the page's end (the rest is moved next run).
    pub async fn migrate_old_pending(&self, report: &mut ClaimReport) -> Result<bool, StepError> {
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.pending_entitlements);
        let limit = self.appwrite.subrequests().units(1, MIGRATE_COST, PENDING_PAGE_SIZE);
        if limit == 0 {
            return Ok(false);
        }
        let queries = [Query::is_null("claimedAt"), Query::limit(limit)];
        let page = match self.appwrite.list_documents(db, collection, &queries).await {
            Ok(page) => page,
            // A project bootstrapped without the old collection has nothing to migrate.
            Err(e) if e.is_not_found() => return Ok(true),
            Err(e) => return Err(StepError::appwrite("listing pre-ledger pending entitlements", &e)),
        };
        for doc in page.documents {
            // The rest stays unclaimed (`claimedAt` null) and is listed again next run.
            if !self.appwrite.subrequests().fits(MIGRATE_COST) {
                return Ok(false);
            }
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
        Ok(true)
    }
}

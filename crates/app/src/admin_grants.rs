//! Access given or taken by an admin (the CLI's `grant`, `upsert-subscription`, `revoke`), in the
//! ledger's terms: a grant is an entitlement of its own (`admin:{email}:{plan}`), which stacks with what
//! was paid for and never shortens it; a revocation revokes the user's entitlements (all of them, or the
//! one named by its source) with reason `admin`. Both are idempotent, and both are followed by the
//! user's projection, like every other change of the ledger.
//!
//! An admin's grant is an explicit action: granting a plan again lifts an earlier admin revocation of
//! that same grant. It never lifts the revocation of a purchase.

use crate::error::StepError;
use crate::ledger::{admin_source, LedgerChange, LedgerEntry, PROVIDER_ADMIN};
use crate::App;
use chrono::{DateTime, Utc};
use tollgate_core::{AppwriteId, Clock, Email, Grant, LedgerEvent, Revocation, RevokeReason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantOutcome {
    /// The entitlement belongs to this account; its access is projected.
    Applied { user_id: AppwriteId },
    /// No account may claim it yet: none has this email, or it has not verified it.
    Pending { account_unverified: bool },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevokeReport {
    /// Sources revoked by this call.
    pub revoked: Vec<String>,
    /// Sources that were revoked already.
    pub already_revoked: Vec<String>,
    pub user_id: Option<AppwriteId>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0} has no entitlement with source `{1}`")]
    NoSuchSource(String, String),
    #[error(transparent)]
    Step(#[from] StepError),
}

impl<C: Clock> App<'_, C> {
    async fn account_of(&self, email: &Email) -> Result<Option<(AppwriteId, bool)>, StepError> {
        let user = self
            .appwrite
            .find_user_by_email(email)
            .await
            .map_err(|e| StepError::appwrite("finding the user by email", &e))?;
        user.map(|u| {
            let id = AppwriteId::parse(&u.id).map_err(|e| StepError::unexpected_user_id(&u.id, &e))?;
            Ok((id, self.may_claim(&u)))
        })
        .transpose()
    }

    /// Grants `plan` to `email` until `until` (`None`: open-ended). Granting it again sets the new end.
    pub async fn admin_grant(
        &self,
        email: &Email,
        plan: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<(GrantOutcome, LedgerEntry), StepError> {
        let account = self.account_of(email).await?;
        let owner = account.as_ref().filter(|(_, may_claim)| *may_claim).map(|(id, _)| id.clone());
        let now = self.clock.now();
        let change = LedgerChange {
            source: admin_source(email, plan),
            provider: PROVIDER_ADMIN,
            email: Some(email.clone()),
            user_id: owner.clone(),
            order_id: None,
            store: None,
            event: LedgerEvent::Grant {
                grant: Grant { plan: plan.to_owned(), starts_at: None, ends_at: until, at: now },
                reinstates: true,
            },
            event_key: format!("admin-grant:{}", crate::records::timestamp(now)),
            annotations: Vec::new(),
        };
        let recorded = self.record_ledger_event(&change).await?;
        let outcome = match recorded.entry.user_id.as_deref() {
            Some(raw) => {
                let user_id = AppwriteId::parse(raw).map_err(|e| StepError::unexpected_user_id(raw, &e))?;
                self.project_user(&user_id).await?;
                self.request_role_sync(&user_id).await?;
                GrantOutcome::Applied { user_id }
            }
            None => GrantOutcome::Pending { account_unverified: account.is_some() },
        };
        Ok((outcome, recorded.entry))
    }

    /// Revokes `email`'s entitlements (owned and pending), or only the one with `source`.
    pub async fn admin_revoke(&self, email: &Email, source: Option<&str>) -> Result<RevokeReport, AdminError> {
        let account = self.account_of(email).await?;
        let mut entries = match &account {
            Some((user_id, _)) => self.user_entitlements(user_id).await?,
            None => Vec::new(),
        };
        entries.extend(self.pending_entitlements_of(email).await?);
        if let Some(source) = source {
            entries.retain(|e| e.entitlement.source == source);
            if entries.is_empty() {
                return Err(AdminError::NoSuchSource(email.to_string(), source.to_owned()));
            }
        }
        let now = self.clock.now();
        let mut report = RevokeReport { user_id: account.map(|(id, _)| id), ..RevokeReport::default() };
        for entry in &entries {
            let change = LedgerChange {
                source: entry.entitlement.source.clone(),
                provider: PROVIDER_ADMIN,
                email: Some(email.clone()),
                user_id: None,
                order_id: None,
                store: None,
                event: LedgerEvent::Revoke(Revocation { at: now, reason: RevokeReason::Admin }),
                event_key: format!("admin-revoke:{}", crate::records::timestamp(now)),
                annotations: Vec::new(),
            };
            let recorded = self.record_ledger_event(&change).await?;
            // Revoking again moves the revocation to now (the register keeps the newest), which is still
            // "already revoked" to the admin.
            let newly = recorded.changed && !entry.entitlement.is_revoked();
            let list = if newly { &mut report.revoked } else { &mut report.already_revoked };
            list.push(entry.entitlement.source.clone());
        }
        if let Some(user_id) = &report.user_id {
            self.project_user(user_id).await?;
            self.request_role_sync(user_id).await?;
        }
        Ok(report)
    }
}

//! Access given or taken by an admin (the CLI's `grant`, `upsert-subscription`, `revoke`): applied to the
//! user when an account with the email exists, otherwise kept as a pending entitlement, exactly like a
//! purchase by an email with no account.

use crate::apply_entitlement::EntitlementChange;
use crate::error::StepError;
use crate::App;
use tollgate_core::{AppwriteId, Clock, Email, Entitlement};

/// The `provider` recorded for admin changes.
pub const ADMIN_PROVIDER: &str = "admin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantOutcome {
    Applied {
        user_id: AppwriteId,
    },
    /// No account has that email yet: applied when it appears.
    Pending,
}

impl<C: Clock> App<'_, C> {
    pub async fn set_entitlement_by_email(
        &self,
        email: &Email,
        entitlement: Entitlement,
    ) -> Result<GrantOutcome, StepError> {
        let change = EntitlementChange {
            email: email.clone(),
            entitlement,
            provider: ADMIN_PROVIDER.to_owned(),
            order_id: None,
            event_id: format!("admin:{}", crate::records::timestamp(self.clock.now())),
        };
        match self
            .appwrite
            .find_user_by_email(email)
            .await
            .map_err(|e| StepError::appwrite("finding the user by email", &e))?
        {
            Some(user) => {
                let user_id = AppwriteId::parse(&user.id).map_err(|e| StepError::unexpected_user_id(&user.id, &e))?;
                self.apply_to_user(&user_id, &change).await?;
                Ok(GrantOutcome::Applied { user_id })
            }
            None => {
                self.record_pending(&change).await?;
                Ok(GrantOutcome::Pending)
            }
        }
    }
}

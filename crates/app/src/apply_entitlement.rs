//! Makes an entitlement true in Appwrite for an existing user: the `subscriptions` document (id = the
//! user id), membership of the `paid` team, which is what "has paid access" means to the web app, and a
//! `role_sync_jobs` entry so Discord roles follow.
//! Every step is idempotent (upsert, "already a member", "already gone"), so applying the same change
//! twice, or concurrently, ends in the same state.

use crate::error::StepError;
use crate::records::{parse_timestamp, timestamp, SubscriptionRecord};
use crate::settings::PAID_TEAM_ROLE;
use crate::App;
use chrono::{DateTime, Utc};
use serde_json::json;
use tollgate_core::{AppwriteId, Clock, Email, Entitlement, SubscriptionStatus};

/// What a provider event (or an admin) says about an email's access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitlementChange {
    pub email: Email,
    pub entitlement: Entitlement,
    pub provider: String,
    pub order_id: Option<String>,
    /// The idempotency key of the event that caused it (`webhook_events.eventId`).
    pub event_id: String,
}

impl<C: Clock> App<'_, C> {
    pub async fn apply_to_user(&self, user_id: &AppwriteId, change: &EntitlementChange) -> Result<(), StepError> {
        self.write_subscription(user_id, change).await?;
        let now = self.clock.now();
        if change.entitlement.has_access(now, self.settings.access_grace) {
            self.appwrite
                .ensure_membership(&self.settings.paid_team_id, user_id, &[PAID_TEAM_ROLE])
                .await
                .map_err(|e| StepError::appwrite("adding the paid membership", &e))?;
        } else {
            self.appwrite
                .remove_user_from_team(&self.settings.paid_team_id, user_id)
                .await
                .map_err(|e| StepError::appwrite("removing the paid membership", &e))?;
        }
        // Durably hand the user to role-sync: the outbox entry is what guarantees the roles follow.
        self.request_role_sync(user_id).await
    }

    /// A grant writes the whole document; a revocation keeps the plan and period on record and changes
    /// only what it is about, unless there is no document yet.
    async fn write_subscription(&self, user_id: &AppwriteId, change: &EntitlementChange) -> Result<(), StepError> {
        let db = &self.settings.database_id;
        let collection = &self.settings.collections.subscriptions;
        let now = timestamp(self.clock.now());
        let full = || {
            let e = &change.entitlement;
            json!({
                "userId": user_id.as_str(),
                "status": e.status.as_str(),
                "plan": e.plan,
                "sellappOrderId": change.order_id,
                "currentPeriodEnd": e.expires_at.map(timestamp),
                "provider": change.provider,
                "email": change.email.as_str(),
                "lastEventId": change.event_id,
                "changedAt": now,
            })
        };
        let written = match change.entitlement.status {
            SubscriptionStatus::Active => {
                self.appwrite.upsert_document(db, collection, user_id.as_str(), &full()).await
            }
            SubscriptionStatus::Inactive => {
                let changed = json!({
                    "status": SubscriptionStatus::Inactive.as_str(),
                    "sellappOrderId": change.order_id,
                    "lastEventId": change.event_id,
                    "changedAt": now,
                });
                match self.appwrite.update_document(db, collection, user_id.as_str(), &changed).await {
                    Err(err) if err.is_not_found() => {
                        self.appwrite.upsert_document(db, collection, user_id.as_str(), &full()).await
                    }
                    other => other,
                }
            }
        };
        written.map(drop).map_err(|e| StepError::appwrite("writing the subscription", &e))
    }

    /// The user's subscription as stored, if any, with the time it last changed: Tollgate's `changedAt`,
    /// or Appwrite's `$updatedAt` for a document the replaced deployment wrote.
    pub async fn read_subscription(
        &self,
        user_id: &AppwriteId,
    ) -> Result<Option<(SubscriptionRecord, DateTime<Utc>)>, StepError> {
        let db = &self.settings.database_id;
        let collection = &self.settings.collections.subscriptions;
        match self.appwrite.get_document(db, collection, user_id.as_str()).await {
            Ok(doc) => {
                let record = doc.decode::<SubscriptionRecord>().unwrap_or_default();
                let changed_at = record.changed_at.as_deref().and_then(parse_timestamp).unwrap_or(doc.updated_at);
                Ok(Some((record, changed_at)))
            }
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(StepError::appwrite("reading the subscription", &err)),
        }
    }
}

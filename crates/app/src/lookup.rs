//! Everything that decides a user's access, in one read: for the customer's `GET /me/access` and the
//! admin's user lookup. Reads only (plus claiming a waiting pending entitlement, since Tollgate "sees" the
//! user here).

use crate::error::StepError;
use crate::records::FailureRecord;
use crate::role_sync::RoleSync;
use serde::Serialize;
use serde_json::Value;
use tollgate_appwrite::{Query, User};
use tollgate_core::{derived_document_id, managed_roles, AppwriteId, Clock, Email};

/// Failures shown with a lookup.
const RECENT_FAILURES: u32 = 10;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessReport {
    pub user: Value,
    pub subscription: Option<Value>,
    pub has_access: bool,
    pub plan: Option<String>,
    pub paid_membership: bool,
    pub pending_entitlement: Option<Value>,
    pub discord: Option<Value>,
    /// The member's managed roles as Discord has them now (`None`: not linked or not in the guild).
    pub discord_managed_roles: Option<Vec<String>>,
    pub last_sync: Option<Value>,
    pub recent_failures: Vec<Value>,
}

fn user_json(user: &User) -> Value {
    serde_json::json!({ "id": user.id, "email": user.email, "name": user.name })
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
        if let Ok(email) = Email::parse(&user.email) {
            self.app.claim_pending_for_user(&user_id, &email).await?;
        }
        let collections = &self.app.settings.collections;
        let subscription = self.optional_document(&collections.subscriptions, user_id.as_str()).await?;
        let plan = self.plan_with_access(&user_id).await?;
        let paid_membership = self
            .app
            .appwrite
            .find_membership(&self.app.settings.paid_team_id, &user_id)
            .await
            .map_err(|e| StepError::appwrite("reading the paid membership", &e))?
            .is_some();
        let pending_entitlement = match Email::parse(&user.email) {
            Ok(email) => {
                self.optional_document(
                    &collections.pending_entitlements,
                    derived_document_id(&format!("pending:{email}")).as_str(),
                )
                .await?
            }
            Err(_) => None,
        };
        let discord = self
            .optional_document(&collections.profiles, user_id.as_str())
            .await?
            .filter(|p| p["discordUserId"].is_string());
        let discord_managed_roles = match self.linked_discord_user(&user_id).await? {
            Some(discord_user) => {
                let managed = managed_roles(&self.load_mappings().await?, self.guild);
                match self.discord.get_member(self.guild, discord_user).await {
                    Ok(member) => {
                        Some(member.roles.iter().filter(|r| managed.contains(r)).map(|r| r.to_string()).collect())
                    }
                    Err(_) => None,
                }
            }
            None => None,
        };
        let last_sync = self.optional_document(&collections.role_sync_jobs, user_id.as_str()).await?;
        let recent_failures = if with_failures { self.failures_for(&user.email).await? } else { Vec::new() };
        Ok(AccessReport {
            user: user_json(user),
            subscription,
            has_access: plan.is_some(),
            plan,
            paid_membership,
            pending_entitlement,
            discord,
            discord_managed_roles,
            last_sync,
            recent_failures,
        })
    }

    async fn failures_for(&self, email: &str) -> Result<Vec<Value>, StepError> {
        let settings = self.app.settings;
        let queries = [Query::equal("email", [email]), Query::order_desc("$updatedAt"), Query::limit(RECENT_FAILURES)];
        let list = self
            .app
            .appwrite
            .list_documents(&settings.database_id, &settings.collections.webhook_failures, &queries)
            .await
            .map_err(|e| StepError::appwrite("listing the user's failures", &e))?;
        Ok(list
            .documents
            .into_iter()
            .map(|doc| failure_summary(&doc.id, &doc.decode::<FailureRecord>().unwrap_or_default()))
            .collect())
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
        "errorCode": record.error_code,
        "errorMessage": record.error_message,
        "attempts": record.attempts(),
        "state": record.state().as_str(),
        "nextAttemptAt": record.next_attempt_at,
    })
}

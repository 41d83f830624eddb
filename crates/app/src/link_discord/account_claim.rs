//! One Discord account, one user: a claim document per Discord account (`discord_links`, id derived from
//! the Discord user id) created before the profile is written, so two callbacks at once cannot both link
//! it (see the module doc of [`super`]).

use super::{LinkError, CLAIM_SETTLE_MINUTES};
use crate::error::StepError;
use crate::records::{parse_timestamp, timestamp};
use crate::role_sync::RoleSync;
use chrono::Duration;
use serde_json::json;
use tollgate_appwrite::Query;
use tollgate_core::{derived_document_id, AppwriteId, Clock, DiscordUserId};

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaimRecord {
    user_id: String,
    claimed_at: String,
}

fn claim_document_id(discord_user: DiscordUserId) -> AppwriteId {
    derived_document_id(&format!("discord-link:{discord_user}"))
}

impl<C: Clock> RoleSync<'_, C> {
    /// Whether a profile other than the user's holds the Discord account.
    pub(super) async fn other_profile_holds(
        &self,
        user_id: &AppwriteId,
        discord_user: DiscordUserId,
    ) -> Result<bool, StepError> {
        let settings = self.app.settings;
        let holders = self
            .app
            .appwrite
            .list_documents(
                &settings.database_id,
                &settings.collections.profiles,
                &[Query::equal("discordUserId", [discord_user.to_string()]), Query::limit(5)],
            )
            .await
            .map_err(|e| StepError::appwrite("checking who holds the Discord account", &e))?;
        Ok(holders.documents.iter().any(|d| d.id != user_id.as_str()))
    }

    /// Makes the claim of `discord_user` the user's, or refuses (see the module doc).
    pub(super) async fn claim(&self, user_id: &AppwriteId, discord_user: DiscordUserId) -> Result<(), LinkError> {
        let settings = self.app.settings;
        let (db, links) = (&settings.database_id, &settings.collections.discord_links);
        let id = claim_document_id(discord_user);
        let now = self.app.clock.now();
        let data = json!({ "discordUserId": discord_user.to_string(), "userId": user_id.as_str(), "claimedAt": timestamp(now) });
        // Twice at most: a claim deleted between our create and our read is created again.
        for _ in 0..2 {
            match self.app.appwrite.create_document(db, links, id.as_str(), &data, None).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(StepError::appwrite("claiming the Discord account", &e).into()),
            }
            let doc = match self.app.appwrite.get_document(db, links, id.as_str()).await {
                Ok(doc) => doc,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(StepError::appwrite("reading the Discord account's claim", &e).into()),
            };
            let Ok(claim) = doc.decode::<ClaimRecord>() else {
                // Fail closed: a claim nobody can read keeps the account taken until an admin looks.
                tracing::warn!(claim = %doc.id, "a Discord link claim does not decode; refusing the link");
                return Err(LinkError::DiscordAccountTaken);
            };
            if claim.user_id == user_id.as_str() {
                return Ok(());
            }
            let holder_holds = match AppwriteId::parse(&claim.user_id) {
                Ok(holder) => self.linked_discord_user(&holder).await? == Some(discord_user),
                Err(_) => false,
            };
            let settled =
                parse_timestamp(&claim.claimed_at).is_some_and(|at| at + Duration::minutes(CLAIM_SETTLE_MINUTES) < now);
            if holder_holds || !settled {
                return Err(LinkError::DiscordAccountTaken);
            }
            // Left over: take it over. Two users taking one over at once are settled by the profile query
            // after the profile write.
            tracing::warn!(claim = %doc.id, "taking over a Discord link claim its user no longer holds");
            self.app
                .appwrite
                .update_document(db, links, id.as_str(), &data)
                .await
                .map_err(|e| StepError::appwrite("taking over the Discord account's claim", &e))?;
            return Ok(());
        }
        Err(LinkError::DiscordAccountTaken)
    }

    /// Deletes the claim of `discord_user` if it is the user's (best effort: a claim left over is taken
    /// over once it is older than [`CLAIM_SETTLE_MINUTES`]).
    pub(super) async fn release_claim(&self, user_id: &AppwriteId, discord_user: DiscordUserId) {
        let settings = self.app.settings;
        let (db, links) = (&settings.database_id, &settings.collections.discord_links);
        let id = claim_document_id(discord_user);
        let mine = match self.app.appwrite.get_document(db, links, id.as_str()).await {
            Ok(doc) => doc.decode::<ClaimRecord>().is_ok_and(|c| c.user_id == user_id.as_str()),
            Err(_) => false,
        };
        if mine {
            if let Err(e) = self.app.appwrite.delete_document(db, links, id.as_str()).await {
                if !e.is_not_found() {
                    tracing::warn!(claim = %id, error = %e, "could not release a Discord link claim");
                }
            }
        }
    }
}

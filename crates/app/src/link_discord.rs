//! Linking a Discord account by OAuth2 only (a typed username or email is spoofable).
//!
//! `start_link` stores a random, single-use `state` bound to the user (in Appwrite, not KV: KV is
//! eventually consistent, so a state could be used twice) with a PKCE verifier, and returns Discord's
//! authorize URL. `finish_link` consumes the state by deleting its document — a delete succeeds once, so a
//! replayed state fails — exchanges the code, reads `/users/@me`, refuses a Discord account linked to
//! someone else, writes the profile, adds the member to the guild with the user's token, then revokes the
//! token (Tollgate keeps no user tokens) and syncs the roles. Relinking to another Discord account first
//! strips the managed roles from the old one.

use crate::error::StepError;
use crate::records::{parse_timestamp, timestamp};
use crate::role_sync::RoleSync;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use tollgate_appwrite::Query;
use tollgate_core::{derived_document_id, managed_roles, AppwriteId, Clock, DiscordUserId};
use tollgate_discord::{DiscordError, OAuthApp};

/// How long a `state` stays valid.
pub const LINK_STATE_TTL_MINUTES: i64 = 10;
pub const LINK_SCOPES: &str = "identify guilds.join";
/// Random bytes in a `state` and in a PKCE verifier.
const STATE_BYTES: usize = 32;
const VERIFIER_BYTES: usize = 48;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Unknown, used, expired, or bound to another user.
    #[error("the link request is invalid or has expired; start again")]
    StateInvalid,
    #[error("this Discord account is already linked to another user")]
    DiscordAccountTaken,
    #[error("Discord refused: {0}")]
    Discord(DiscordError),
    #[error(transparent)]
    Step(#[from] StepError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub user_id: AppwriteId,
    pub discord_user: DiscordUserId,
    pub username: String,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct StateRecord {
    user_id: Option<String>,
    code_verifier: Option<String>,
    expires_at: Option<String>,
}

fn random_token(bytes: usize) -> Result<String, StepError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| StepError {
        code: "no_randomness",
        message: format!("no secure randomness available: {e}"),
        status: None,
        error_type: None,
        retryable: true,
    })?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn state_document_id(state: &str) -> AppwriteId {
    derived_document_id(&format!("oauth-state:{state}"))
}

/// Query values: RFC 3986 unreserved characters stay, everything else is percent-encoded (a space is %20).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

impl<C: Clock> RoleSync<'_, C> {
    /// The authorize URL for `user_id`; the state behind it is valid for [`LINK_STATE_TTL_MINUTES`].
    pub async fn start_link(
        &self,
        user_id: &AppwriteId,
        oauth: &OAuthApp,
        authorize_url: &str,
    ) -> Result<String, StepError> {
        let state = random_token(STATE_BYTES)?;
        let verifier = random_token(VERIFIER_BYTES)?;
        let settings = self.app.settings;
        let data = json!({
            "userId": user_id.as_str(),
            "codeVerifier": verifier,
            "expiresAt": timestamp(self.app.clock.now() + Duration::minutes(LINK_STATE_TTL_MINUTES)),
        });
        self.app
            .appwrite
            .create_document(
                &settings.database_id,
                &settings.collections.oauth_states,
                state_document_id(&state).as_str(),
                &data,
                None,
            )
            .await
            .map_err(|e| StepError::appwrite("storing the link state", &e))?;
        Ok(format!(
            "{authorize_url}?response_type=code&client_id={}&scope={}&state={state}&redirect_uri={}&prompt=consent&code_challenge={}&code_challenge_method=S256",
            encode(&oauth.client_id),
            encode(LINK_SCOPES),
            encode(&oauth.redirect_uri),
            pkce_challenge(&verifier),
        ))
    }

    /// Consumes the state: `(user, verifier)` if it was valid, unused and unexpired.
    async fn consume_state(
        &self,
        state: &str,
        expected_user: Option<&AppwriteId>,
    ) -> Result<(AppwriteId, String), LinkError> {
        let settings = self.app.settings;
        let (db, collection) = (&settings.database_id, &settings.collections.oauth_states);
        let id = state_document_id(state);
        let doc = match self.app.appwrite.get_document(db, collection, id.as_str()).await {
            Ok(doc) => doc,
            Err(e) if e.is_not_found() => return Err(LinkError::StateInvalid),
            Err(e) => return Err(StepError::appwrite("reading the link state", &e).into()),
        };
        match self.app.appwrite.delete_document(db, collection, id.as_str()).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Err(LinkError::StateInvalid),
            Err(e) => return Err(StepError::appwrite("consuming the link state", &e).into()),
        }
        let record = doc.decode::<StateRecord>().unwrap_or_default();
        let expired = record.expires_at.as_deref().and_then(parse_timestamp).is_none_or(|at| at < self.app.clock.now());
        let user = record.user_id.as_deref().and_then(|u| AppwriteId::parse(u).ok());
        match (user, record.code_verifier) {
            (Some(user), Some(verifier)) if !expired && expected_user.is_none_or(|e| *e == user) => {
                Ok((user, verifier))
            }
            _ => Err(LinkError::StateInvalid),
        }
    }

    pub async fn finish_link(
        &self,
        code: &str,
        state: &str,
        oauth: &OAuthApp,
        expected_user: Option<&AppwriteId>,
    ) -> Result<Linked, LinkError> {
        let (user_id, verifier) = self.consume_state(state, expected_user).await?;
        let token = self.discord.exchange_code(oauth, code, Some(&verifier)).await.map_err(LinkError::Discord)?;
        let me = self.discord.current_user(&token.access_token).await.map_err(LinkError::Discord)?;
        let settings = self.app.settings;
        let (db, profiles) = (&settings.database_id, &settings.collections.profiles);
        let holders = self
            .app
            .appwrite
            .list_documents(db, profiles, &[Query::equal("discordUserId", [me.id.to_string()]), Query::limit(5)])
            .await
            .map_err(|e| StepError::appwrite("checking who holds the Discord account", &e))?;
        if holders.documents.iter().any(|d| d.id != user_id.as_str()) {
            let _ = self.discord.revoke_token(oauth, &token.access_token).await;
            return Err(LinkError::DiscordAccountTaken);
        }
        if let Some(previous) = self.linked_discord_user(&user_id).await? {
            if previous != me.id {
                self.strip_managed_roles(previous).await;
            }
        }
        let data = json!({
            "discordUserId": me.id.to_string(),
            "discordLinkedAt": timestamp(self.app.clock.now()),
            "discordUsername": me.username,
        });
        self.app
            .appwrite
            .upsert_document(db, profiles, user_id.as_str(), &data)
            .await
            .map_err(|e| StepError::appwrite("writing the profile", &e))?;
        let joined = self.discord.add_guild_member(self.guild, me.id, &token.access_token).await;
        // The user's token was needed only to add them to the guild; Tollgate keeps none.
        let _ = self.discord.revoke_token(oauth, &token.access_token).await;
        if let Err(e) = joined {
            tracing::warn!(error = %e, "could not add the member to the guild; roles follow when they join");
        }
        self.app.request_role_sync(&user_id).await?;
        self.sync_user(&user_id).await?;
        Ok(Linked { user_id, discord_user: me.id, username: me.username })
    }

    /// Removes the managed roles from a Discord account that is no longer the user's (best effort: the
    /// reconciliation removes them anyway once nobody with access is linked to it).
    async fn strip_managed_roles(&self, discord_user: DiscordUserId) {
        let Ok(mappings) = self.load_mappings().await else { return };
        let managed = managed_roles(&mappings, self.guild);
        if let Ok(member) = self.discord.get_member(self.guild, discord_user).await {
            let current: BTreeSet<_> = member.roles.into_iter().collect();
            let _ = self.apply(discord_user, &current, BTreeSet::new(), &managed).await;
        }
    }

    /// Removes the managed roles and clears the link. Unlinking an unlinked user changes nothing.
    pub async fn unlink(&self, user_id: &AppwriteId) -> Result<bool, StepError> {
        let Some(discord_user) = self.linked_discord_user(user_id).await? else { return Ok(false) };
        self.strip_managed_roles(discord_user).await;
        let settings = self.app.settings;
        let data = json!({ "discordUserId": null, "discordLinkedAt": null, "discordUsername": null });
        self.app
            .appwrite
            .update_document(&settings.database_id, &settings.collections.profiles, user_id.as_str(), &data)
            .await
            .map_err(|e| StepError::appwrite("clearing the profile", &e))?;
        self.sync_user(user_id).await?;
        Ok(true)
    }
}

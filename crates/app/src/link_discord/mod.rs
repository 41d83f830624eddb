//! Linking a Discord account by OAuth2 only (a typed username or email is spoofable).
//!
//! `start_link` stores a random, single-use `state` bound to the user (in Appwrite, not KV: KV is
//! eventually consistent, so a state could be used twice) with a PKCE verifier, and returns Discord's
//! authorize URL. `finish_link` consumes the state by deleting its document — a delete succeeds once, so a
//! replayed state fails — exchanges the code, reads `/users/@me`, refuses a Discord account linked to
//! someone else, writes the profile, adds the member to the guild with the user's token, then revokes the
//! token (Tollgate keeps no user tokens) and queues the user's role sync in the outbox. The roles
//! themselves are written by the role-sync worker, the one place that writes roles and projections: the
//! caller prompts it right away (the api worker does, before it redirects the browser), and its cron
//! runs every queued job, so a lost prompt delays the roles by a minute at most. Relinking to another
//! Discord account first strips the managed roles from the old one (that account is no longer the
//! user's, so no later sync of the user would touch it). Once the profile is written the link stands:
//! an outbox write that fails afterwards is logged and left to reconciliation, not reported as a failure.
//!
//! ## One Discord account, one user, under concurrency
//! Appwrite has no unique constraint Tollgate can rely on for `profiles.discordUserId` (profiles of the
//! replaced deployment may hold duplicates already), so "is it linked to someone else? then write" alone
//! lets two concurrent callbacks link one account to two users. Before the profile is written, a claim
//! document is created in `discord_links` under an id derived from the Discord user id: a create succeeds
//! once, so of two concurrent links exactly one gets the claim and the other is refused
//! (`DiscordAccountTaken`). A claim of another user counts only while that user's profile holds the
//! account, or while it is younger than [`CLAIM_SETTLE_MINUTES`] (a link in flight); an older one is left
//! over (an unlink that stopped half-way, a profile changed by hand) and is taken over. Profiles of the
//! replaced deployment have no claim: they are found by querying `profiles`, before the claim and again
//! after the profile is written; a holder found after the write undoes this link (of two such writers at
//! least one sees the other, so they cannot both stand). Unlinking and relinking release the claim.
//!
//! ## Bound to the browser
//! The state is also bound to the browser that started the link (`browser.rs`): a random key in an
//! HttpOnly cookie, its hash stored with the state. The callback of another browser is refused
//! (`browser_mismatch`) before the code is exchanged, so a link URL sent to someone else links nothing.
//!
//! [`RoleSync::finish_callback`] is the callback as Discord calls it (`code` and `state`, or `error` when
//! the customer pressed Cancel), and [`LinkError::reason`] the short code the customer's page is given.

use crate::error::StepError;
use crate::random::random_token;
use crate::records::{parse_timestamp, timestamp};
use crate::role_sync::RoleSync;
use crate::App;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use tollgate_appwrite::{Deletion, Query};
use tollgate_core::{derived_document_id, AppwriteId, Clock, DiscordUserId};
use tollgate_discord::{DiscordError, OAuthApp};

mod account_claim;
mod browser;
mod outcome;

pub use browser::{clear_link_cookie, link_cookie, link_cookie_value, LINK_COOKIE};
pub use outcome::{callback_location, CallbackParams, LinkError, Linked};

/// How long a `state` stays valid.
pub const LINK_STATE_TTL_MINUTES: i64 = 10;
/// A state is pruned this long after it expired: the api worker that wrote `expiresAt` and the webhook
/// worker that prunes read different clocks, and a callback in flight at expiry still finds its state
/// (and is refused as expired, by the same rule as always).
pub const STATE_PRUNE_MARGIN_MINUTES: i64 = 10;
/// How long a claim of another user's stands without that user's profile holding the account (a link in
/// flight takes seconds).
pub const CLAIM_SETTLE_MINUTES: i64 = 10;
pub const LINK_SCOPES: &str = "identify guilds.join";
/// Random bytes in a `state` and in a PKCE verifier.
const STATE_BYTES: usize = 32;
const VERIFIER_BYTES: usize = 48;

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ProfileLink {
    discord_user_id: Option<String>,
    discord_linked_at: Option<String>,
    discord_username: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct StateRecord {
    user_id: Option<String>,
    code_verifier: Option<String>,
    expires_at: Option<String>,
    browser_hash: Option<String>,
}

/// A started link: the authorize URL to send the browser to, and the key that browser must bring back in
/// the [`LINK_COOKIE`] (set it with [`link_cookie`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStart {
    pub url: String,
    pub browser_key: String,
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

impl<C: Clock> App<'_, C> {
    /// Deletes link states that expired more than [`STATE_PRUNE_MARGIN_MINUTES`] ago (a state that was
    /// never used stays otherwise: consuming it is what deletes it), at most `max` of them on an Appwrite
    /// without bulk delete (the next run continues).
    pub async fn prune_expired_oauth_states(&self, max: u32) -> Result<Deletion, StepError> {
        let cutoff = timestamp(self.clock.now() - Duration::minutes(STATE_PRUNE_MARGIN_MINUTES));
        let queries = [Query::less_than("expiresAt", cutoff)];
        self.appwrite
            .delete_matching(&self.settings.database_id, &self.settings.collections.oauth_states, &queries, max)
            .await
            .map_err(|e| StepError::appwrite("pruning expired link states", &e))
    }
}

impl<C: Clock> RoleSync<'_, C> {
    /// The authorize URL for `user_id` and the browser key; the state behind them is valid for
    /// [`LINK_STATE_TTL_MINUTES`].
    pub async fn start_link(
        &self,
        user_id: &AppwriteId,
        oauth: &OAuthApp,
        authorize_url: &str,
    ) -> Result<LinkStart, StepError> {
        let state = random_token(STATE_BYTES)?;
        let verifier = random_token(VERIFIER_BYTES)?;
        let browser_key = random_token(STATE_BYTES)?;
        let settings = self.app.settings;
        let data = json!({
            "userId": user_id.as_str(),
            "codeVerifier": verifier,
            "browserHash": browser::browser_hash(&browser_key),
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
        let url = format!(
            "{authorize_url}?response_type=code&client_id={}&scope={}&state={state}&redirect_uri={}&prompt=consent&code_challenge={}&code_challenge_method=S256",
            encode(&oauth.client_id),
            encode(LINK_SCOPES),
            encode(&oauth.redirect_uri),
            pkce_challenge(&verifier),
        );
        Ok(LinkStart { url, browser_key })
    }

    /// Consumes the state: `(user, verifier)` if it was valid, unused and unexpired, and `browser_key` (the
    /// link cookie) is the one it was started with. A state brought by another browser is spent too.
    async fn consume_state(
        &self,
        state: &str,
        browser_key: Option<&str>,
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
        // A record that does not decode is no valid state (its fields are all needed below).
        let record = doc.decode::<StateRecord>().map_err(|_| LinkError::StateInvalid)?;
        let expired = record.expires_at.as_deref().and_then(parse_timestamp).is_none_or(|at| at < self.app.clock.now());
        let user = record.user_id.as_deref().and_then(|u| AppwriteId::parse(u).ok());
        let (user, verifier) = match (user, record.code_verifier) {
            (Some(user), Some(verifier)) if !expired && expected_user.is_none_or(|e| *e == user) => (user, verifier),
            _ => return Err(LinkError::StateInvalid),
        };
        // A state stored before browsers were bound has no hash: it is refused like a foreign browser's.
        let same_browser = match (record.browser_hash.as_deref(), browser_key) {
            (Some(stored), Some(key)) => browser::same_hash(stored, &browser::browser_hash(key)),
            _ => false,
        };
        if !same_browser {
            return Err(LinkError::BrowserMismatch);
        }
        Ok((user, verifier))
    }

    /// The callback as Discord calls it: `code` and `state`, or `error` (and `state`) when the customer
    /// cancelled, with the link cookie's value as `browser_key`. A cancelled state is spent, so the
    /// authorize URL cannot be reused.
    pub async fn finish_callback(
        &self,
        params: &CallbackParams,
        browser_key: Option<&str>,
        oauth: &OAuthApp,
    ) -> Result<Linked, LinkError> {
        if let Some(error) = &params.error {
            if let Some(state) = &params.state {
                // Only to spend it: whatever it was, the answer is the cancellation.
                let _ = self.consume_state(state, browser_key, None).await;
            }
            return Err(if error == "access_denied" {
                LinkError::Cancelled
            } else {
                LinkError::NotAuthorized(error.clone())
            });
        }
        match (&params.code, &params.state) {
            (Some(code), Some(state)) => self.finish_link(code, state, browser_key, oauth, None).await,
            _ => Err(LinkError::StateInvalid),
        }
    }

    /// Finishes a link in the browser that brought `browser_key` (see [`LinkStart`]).
    pub async fn finish_link(
        &self,
        code: &str,
        state: &str,
        browser_key: Option<&str>,
        oauth: &OAuthApp,
        expected_user: Option<&AppwriteId>,
    ) -> Result<Linked, LinkError> {
        let (user_id, verifier) = self.consume_state(state, browser_key, expected_user).await?;
        let token = self.discord.exchange_code(oauth, code, Some(&verifier)).await.map_err(LinkError::Discord)?;
        let result = self.link_account(&user_id, &token.access_token).await;
        // The user's token was needed only to read who they are and add them to the guild; Tollgate keeps none.
        let _ = self.discord.revoke_token(oauth, &token.access_token).await;
        let (me, joined) = result?;
        if let Err(e) = joined {
            tracing::warn!(error = %e, "could not add the member to the guild; roles follow when they join");
        }
        // The link stands from here: if the outbox cannot take the job, reconciliation finds the member.
        let role_sync_error = self.app.request_role_sync(&user_id).await.err();
        if let Some(e) = &role_sync_error {
            tracing::warn!(user = %user_id, error = %e, "linked, but the role sync could not be queued");
        }
        Ok(Linked { user_id, discord_user: me.id, username: me.username, role_sync_error })
    }

    /// Claims the account for the user, writes the profile and adds the member to the guild.
    async fn link_account(
        &self,
        user_id: &AppwriteId,
        access_token: &str,
    ) -> Result<(tollgate_discord::User, Result<tollgate_discord::AddMemberOutcome, DiscordError>), LinkError> {
        let me = self.discord.current_user(access_token).await.map_err(LinkError::Discord)?;
        if self.other_profile_holds(user_id, me.id).await? {
            return Err(LinkError::DiscordAccountTaken);
        }
        self.claim(user_id, me.id).await?;
        let previous = self.profile_link(user_id).await?;
        let previous_discord = previous.discord_user_id.as_deref().and_then(|id| DiscordUserId::parse(id).ok());
        if let Some(previous) = previous_discord.filter(|p| *p != me.id) {
            self.strip_managed_roles(previous).await;
        }
        let data = json!({
            "discordUserId": me.id.to_string(),
            "discordLinkedAt": timestamp(self.app.clock.now()),
            "discordUsername": me.username,
        });
        self.write_profile(user_id, &data).await?;
        if self.other_profile_holds(user_id, me.id).await? {
            // Another profile (one without a claim) got the account meanwhile: undo this link.
            let restore = json!({
                "discordUserId": previous.discord_user_id,
                "discordLinkedAt": previous.discord_linked_at,
                "discordUsername": previous.discord_username,
            });
            self.write_profile(user_id, &restore).await?;
            return Err(LinkError::DiscordAccountTaken);
        }
        if let Some(previous) = previous_discord.filter(|p| *p != me.id) {
            self.release_claim(user_id, previous).await;
        }
        let joined = self.discord.add_guild_member(self.guild, me.id, access_token).await;
        Ok((me, joined))
    }

    async fn profile_link(&self, user_id: &AppwriteId) -> Result<ProfileLink, StepError> {
        let settings = self.app.settings;
        match self
            .app
            .appwrite
            .get_document(&settings.database_id, &settings.collections.profiles, user_id.as_str())
            .await
        {
            Ok(doc) => doc.decode::<ProfileLink>().map_err(|e| StepError {
                code: "appwrite_error",
                message: format!("the profile of {user_id} does not decode: {e}"),
                status: None,
                error_type: None,
                retryable: false,
            }),
            Err(e) if e.is_not_found() => Ok(ProfileLink::default()),
            Err(e) => Err(StepError::appwrite("reading the profile", &e)),
        }
    }

    /// Sets the link fields only (PATCH; created if the user has no profile yet): the profile's other
    /// attributes, which web apps may write, are left alone.
    async fn write_profile(&self, user_id: &AppwriteId, data: &serde_json::Value) -> Result<(), StepError> {
        let settings = self.app.settings;
        let (db, profiles) = (&settings.database_id, &settings.collections.profiles);
        match self.app.appwrite.update_document(db, profiles, user_id.as_str(), data).await {
            Err(e) if e.is_not_found() => {
                match self.app.appwrite.create_document(db, profiles, user_id.as_str(), data, None).await {
                    Err(e) if e.is_conflict() => {
                        self.app.appwrite.update_document(db, profiles, user_id.as_str(), data).await.map(drop)
                    }
                    other => other.map(drop),
                }
            }
            other => other.map(drop),
        }
        .map_err(|e| StepError::appwrite("writing the profile", &e))
    }

    /// Removes the managed roles from a Discord account that is no longer the user's (best effort: the
    /// reconciliation removes them anyway once nobody with access is linked to it).
    async fn strip_managed_roles(&self, discord_user: DiscordUserId) {
        let Ok(mappings) = self.role_mappings().await else { return };
        let managed = mappings.managed(self.guild);
        if let Ok(member) = self.discord.get_member(self.guild, discord_user).await {
            let current: BTreeSet<_> = member.roles.into_iter().collect();
            let _ = self.apply(discord_user, &current, BTreeSet::new(), &managed).await;
        }
    }

    /// Removes the managed roles from the linked account, clears the link and queues the user's role sync
    /// (their projection; the caller prompts it). Unlinking an unlinked user changes nothing.
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
        self.release_claim(user_id, discord_user).await;
        self.app.request_role_sync(user_id).await?;
        Ok(true)
    }
}

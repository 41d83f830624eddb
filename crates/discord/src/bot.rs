//! Bot endpoints (`Authorization: Bot …`): guilds, roles, members. Routes are named by their template,
//! the guild is the major parameter of their rate-limit bucket.

use crate::client::{Auth, Body, Call, DiscordClient};
use crate::error::DiscordError;
use crate::models::{AddMemberOutcome, Guild, Member, Role};
use crate::permit::{member_cache_key, CacheRead};
use reqwest::Method;
use serde_json::json;
use tollgate_core::{DiscordUserId, GuildId, RoleId};

/// Discord's largest page of guild members.
pub const GUILD_MEMBERS_PAGE_LIMIT: u16 = 1_000;

impl DiscordClient {
    fn bot_call<'a>(method: Method, route: &'static str, major: &'a str, path: String) -> Call<'a> {
        Call {
            method,
            route,
            major,
            path,
            query: &[],
            body: Body::Empty,
            auth: Auth::Bot,
            audit_reason: None,
            cache: None,
            invalidate: None,
        }
    }

    /// The bot's own user (`GET /users/@me` with the bot token): checks the token too.
    pub async fn current_bot_user(&self) -> Result<crate::models::User, DiscordError> {
        let (status, text) =
            self.send(Self::bot_call(Method::GET, "GET /users/@me", "", "/users/@me".to_owned())).await?;
        Self::decode(status, &text)
    }

    pub async fn get_guild(&self, guild: GuildId) -> Result<Guild, DiscordError> {
        let major = guild.to_string();
        let (status, text) =
            self.send(Self::bot_call(Method::GET, "GET /guilds/{guild}", &major, format!("/guilds/{guild}"))).await?;
        Self::decode(status, &text)
    }

    pub async fn guild_roles(&self, guild: GuildId) -> Result<Vec<Role>, DiscordError> {
        let major = guild.to_string();
        let call = Self::bot_call(Method::GET, "GET /guilds/{guild}/roles", &major, format!("/guilds/{guild}/roles"));
        let (status, text) = self.send(call).await?;
        Self::decode(status, &text)
    }

    /// The member, or `UnknownMember` (10007) if the user is not in the guild.
    pub async fn get_member(&self, guild: GuildId, user: DiscordUserId) -> Result<Member, DiscordError> {
        self.read_member(guild, user, None).await
    }

    /// [`Self::get_member`] for a read anyone can repeat at will (a customer's access page): Discord is
    /// asked at most once per `interval` for this member; meanwhile the answer it gave is returned (or
    /// `RateLimited` while that first read is in flight). A role change through this client makes the kept
    /// answer stale at once.
    pub async fn get_member_throttled(
        &self,
        guild: GuildId,
        user: DiscordUserId,
        interval: std::time::Duration,
    ) -> Result<Member, DiscordError> {
        let key = member_cache_key(&guild.to_string(), &user.to_string());
        let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        self.read_member(guild, user, Some(CacheRead { key, interval_ms })).await
    }

    async fn read_member(
        &self,
        guild: GuildId,
        user: DiscordUserId,
        cache: Option<CacheRead>,
    ) -> Result<Member, DiscordError> {
        let major = guild.to_string();
        let mut call = Self::bot_call(
            Method::GET,
            "GET /guilds/{guild}/members/{user}",
            &major,
            format!("/guilds/{guild}/members/{user}"),
        );
        call.cache = cache;
        let (status, text) = self.send(call).await?;
        Self::decode(status, &text)
    }

    /// One page of members with ids above `after`, in id order (needs the Server Members intent).
    pub async fn list_members(
        &self,
        guild: GuildId,
        limit: u16,
        after: Option<DiscordUserId>,
    ) -> Result<Vec<Member>, DiscordError> {
        let major = guild.to_string();
        let query = [
            ("limit", limit.clamp(1, GUILD_MEMBERS_PAGE_LIMIT).to_string()),
            ("after", after.map_or("0".to_owned(), |a| a.to_string())),
        ];
        let mut call =
            Self::bot_call(Method::GET, "GET /guilds/{guild}/members", &major, format!("/guilds/{guild}/members"));
        call.query = &query;
        let (status, text) = self.send(call).await?;
        Self::decode(status, &text)
    }

    async fn member_role(
        &self,
        method: Method,
        route: &'static str,
        ids: (GuildId, DiscordUserId, RoleId),
        reason: &str,
    ) -> Result<(), DiscordError> {
        let (guild, user, role) = ids;
        let major = guild.to_string();
        let mut call = Self::bot_call(method, route, &major, format!("/guilds/{guild}/members/{user}/roles/{role}"));
        call.audit_reason = Some(reason);
        call.invalidate = Some(member_cache_key(&major, &user.to_string()));
        self.send(call).await.map(drop)
    }

    pub async fn add_member_role(
        &self,
        guild: GuildId,
        user: DiscordUserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), DiscordError> {
        self.member_role(Method::PUT, "PUT /guilds/{guild}/members/{user}/roles/{role}", (guild, user, role), reason)
            .await
    }

    pub async fn remove_member_role(
        &self,
        guild: GuildId,
        user: DiscordUserId,
        role: RoleId,
        reason: &str,
    ) -> Result<(), DiscordError> {
        self.member_role(
            Method::DELETE,
            "DELETE /guilds/{guild}/members/{user}/roles/{role}",
            (guild, user, role),
            reason,
        )
        .await
    }

    /// Adds the user to the guild with their `guilds.join` token (201), or finds them there (204).
    pub async fn add_guild_member(
        &self,
        guild: GuildId,
        user: DiscordUserId,
        user_access_token: &str,
    ) -> Result<AddMemberOutcome, DiscordError> {
        let major = guild.to_string();
        let body = json!({ "access_token": user_access_token });
        let mut call = Self::bot_call(
            Method::PUT,
            "PUT /guilds/{guild}/members/{user}",
            &major,
            format!("/guilds/{guild}/members/{user}"),
        );
        call.body = Body::Json(&body);
        call.invalidate = Some(member_cache_key(&major, &user.to_string()));
        let (status, _) = self.send(call).await?;
        Ok(if status == 201 { AddMemberOutcome::Added } else { AddMemberOutcome::AlreadyMember })
    }
}

//! What a request needs, assembled from the environment, and who is calling.

use crate::error::ApiError;
use std::time::Duration;
use tollgate_app::role_sync::RoleSync;
use tollgate_app::settings::{customer_guild_id, discord_oauth};
use tollgate_appwrite::{AppwriteClient, User};
use tollgate_core::{AppwriteId, GuildId};
use tollgate_discord::{DiscordClient, OAuthApp};
use tollgate_worker_common::observe::Invocation;
use tollgate_worker_common::{bearer_matches, role_sync, setting, AppParts, JsClock};
use worker::{Env, Request};

pub struct Ctx {
    pub parts: AppParts,
    pub discord: DiscordClient,
    pub guild: GuildId,
}

impl Ctx {
    pub fn from_env(env: &Env, invocation: &Invocation) -> Result<Self, ApiError> {
        let parts =
            AppParts::from_env(env, invocation.subrequests()).map_err(|e| ApiError::Misconfigured(e.to_string()))?;
        let discord = parts.discord(env).map_err(|e| ApiError::Misconfigured(e.to_string()))?;
        let guild = customer_guild_id(|n| setting(env, n)).map_err(|e| ApiError::Misconfigured(e.to_string()))?;
        Ok(Self { parts, discord, guild })
    }

    pub fn sync(&self) -> RoleSync<'_, JsClock> {
        RoleSync::new(self.parts.app(), &self.discord, self.guild)
    }

    /// The user behind `Authorization: Bearer <jwt>` or `X-Appwrite-JWT`, checked by Appwrite.
    pub async fn user(&self, req: &Request) -> Result<User, ApiError> {
        signed_in_user(&self.parts.appwrite, req).await
    }
}

/// The user behind `Authorization: Bearer <jwt>` or `X-Appwrite-JWT`, checked by Appwrite.
pub async fn signed_in_user(appwrite: &AppwriteClient, req: &Request) -> Result<User, ApiError> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let jwt = header("x-appwrite-jwt")
        .or_else(|| header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned)))
        .filter(|j| !j.trim().is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    match appwrite.get_account(jwt.trim()).await {
        Ok(user) => Ok(user),
        Err(e) if e.status == Some(401) => Err(ApiError::Unauthenticated),
        Err(e) => Err(ApiError::Upstream(e.to_string())),
    }
}

pub fn oauth(env: &Env) -> Result<(OAuthApp, String), ApiError> {
    discord_oauth(|n| setting(env, n)).map_err(|e| ApiError::Misconfigured(e.to_string()))
}

/// An admin: `Authorization: Bearer <ADMIN_TOKEN>` (the CLI, automation; compared in constant time), or
/// `Bearer <Appwrite JWT>` of a confirmed member of the admins team (`ADMIN_TEAM_ID`, the console). A valid
/// JWT of anyone else (a customer) is 403 `not_an_admin`; anything else 401.
pub async fn admin(req: &Request, env: &Env, invocation: &Invocation) -> Result<Ctx, ApiError> {
    let given = req.headers().get("authorization").ok().flatten().unwrap_or_default();
    let given = given.strip_prefix("Bearer ").map(str::trim).filter(|g| !g.is_empty());
    let given = given.ok_or(ApiError::AdminUnauthenticated)?.to_owned();
    let ctx = Ctx::from_env(env, invocation)?;
    if bearer_matches(req, env, "ADMIN_TOKEN") {
        return Ok(ctx);
    }
    let given = given.as_str();
    let user = match ctx.parts.appwrite.get_account(given).await {
        Ok(user) => user,
        Err(e) if e.status == Some(401) => return Err(ApiError::AdminUnauthenticated),
        Err(e) => return Err(ApiError::Upstream(e.to_string())),
    };
    let user_id = AppwriteId::parse(&user.id).map_err(|_| ApiError::AdminUnauthenticated)?;
    if ctx.parts.app().is_admin(&user_id).await? {
        Ok(ctx)
    } else {
        Err(ApiError::Forbidden {
            code: "not_an_admin",
            reason: "this account is not a member of the admins team; ask an admin to add it",
        })
    }
}

/// How long a request waits for role-sync to sync them (then the cron does it).
const PROMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks role-sync to sync the user now (their job is queued already), so the roles are there when the
/// customer's page next reads their access.
pub async fn sync_now(env: &Env, inv: &Invocation, user_id: &AppwriteId) {
    if let Some(prompt) = role_sync::prompt(env, user_id, inv.subrequests(), PROMPT_TIMEOUT) {
        prompt.await;
    }
}

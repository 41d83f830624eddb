//! Guild, role and member endpoints (bot token), with Discord's documented behaviour: 404 `10004` unknown
//! guild, `10007` unknown member, `10011` unknown role; 403 `50013` when the bot lacks Manage Roles or its
//! highest role is not above the role; add member answers 201 with the member, or 204 if already there.

use super::store::seed;
use super::{DResult, DiscordError, State};
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};

const MANAGE_ROLES: u64 = 1 << 28;
const ADMINISTRATOR: u64 = 1 << 3;
const MAX_MEMBERS_PAGE: u32 = 1_000;

pub(crate) fn require_bot(headers: &HeaderMap) -> DResult<()> {
    let expected = format!("Bot {}", seed::BOT_TOKEN);
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(value) if value == expected => Ok(()),
        _ => Err(DiscordError::unauthorized()),
    }
}

fn require_guild(c: &Connection, guild: &str) -> DResult<(String, String)> {
    c.query_row("SELECT name, owner_id FROM guilds WHERE id = ?1", [guild], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| DiscordError::new(404, 10004, "Unknown Guild"))
}

pub(crate) fn user_json(c: &Connection, id: &str) -> DResult<Option<Value>> {
    let row: Option<(String, Option<String>, bool)> = c
        .query_row("SELECT username, global_name, bot FROM users WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    Ok(row.map(|(username, global_name, bot)| {
        json!({"id": id, "username": username, "avatar": null, "discriminator": "0", "public_flags": 0, "flags": 0,
            "global_name": global_name, "primary_guild": null, "bot": bot})
    }))
}

fn role_json(id: &str, name: &str, position: i64, permissions: &str, guild: &str) -> Value {
    json!({"id": id, "name": name, "permissions": permissions, "position": position, "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null}, "hoist": false,
        "managed": id == seed::BOT_ROLE_ID && guild == seed::GUILD_ID, "mentionable": false, "icon": null, "unicode_emoji": null, "flags": 0})
}

fn roles(c: &Connection, guild: &str) -> DResult<Vec<(String, String, i64, String)>> {
    let mut statement =
        c.prepare("SELECT id, name, position, permissions FROM roles WHERE guild_id = ?1 ORDER BY position, id")?;
    let rows = statement
        .query_map([guild], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn member_roles(c: &Connection, guild: &str, user: &str) -> DResult<Option<(Vec<String>, String)>> {
    let row: Option<(String, String)> = c
        .query_row("SELECT roles, joined_at FROM members WHERE guild_id = ?1 AND user_id = ?2", [guild, user], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(row.map(|(roles, joined)| (serde_json::from_str(&roles).unwrap_or_default(), joined)))
}

fn member_json(c: &Connection, guild: &str, user: &str) -> DResult<Option<Value>> {
    let Some((roles, joined_at)) = member_roles(c, guild, user)? else { return Ok(None) };
    let user = user_json(c, user)?.unwrap_or_else(|| json!({"id": user}));
    Ok(Some(
        json!({"avatar": null, "banner": null, "communication_disabled_until": null, "flags": 0, "joined_at": joined_at,
        "nick": null, "pending": false, "premium_since": null, "roles": roles, "user": user, "mute": false, "deaf": false}),
    ))
}

pub async fn get_guild(state: State, headers: HeaderMap, Path(guild): Path<String>) -> DResult<Json<Value>> {
    require_bot(&headers)?;
    let c = state.store.lock();
    let (name, owner_id) = require_guild(&c, &guild)?;
    let roles: Vec<Value> =
        roles(&c, &guild)?.iter().map(|(id, n, p, perms)| role_json(id, n, *p, perms, &guild)).collect();
    Ok(Json(json!({"id": guild, "name": name, "icon": null, "description": null, "home_header": null, "splash": null,
        "discovery_splash": null, "features": [], "banner": null, "owner_id": owner_id, "application_id": null, "region": "auto",
        "afk_channel_id": null, "afk_timeout": 300, "system_channel_id": null, "system_channel_flags": 0, "widget_enabled": false,
        "widget_channel_id": null, "verification_level": 0, "roles": roles, "default_message_notifications": 0, "mfa_level": 0,
        "explicit_content_filter": 0, "max_presences": null, "max_members": 500000, "max_stage_video_channel_users": 50,
        "max_video_channel_users": 25, "vanity_url_code": null, "premium_tier": 0, "premium_subscription_count": 0,
        "preferred_locale": "en-US", "rules_channel_id": null, "safety_alerts_channel_id": null, "public_updates_channel_id": null,
        "premium_progress_bar_enabled": false, "nsfw": false, "nsfw_level": 0, "emojis": [], "stickers": [], "incidents_data": null})))
}

pub async fn list_roles(state: State, headers: HeaderMap, Path(guild): Path<String>) -> DResult<Json<Value>> {
    require_bot(&headers)?;
    let c = state.store.lock();
    require_guild(&c, &guild)?;
    Ok(Json(Value::Array(
        roles(&c, &guild)?.iter().map(|(id, n, p, perms)| role_json(id, n, *p, perms, &guild)).collect(),
    )))
}

#[derive(Deserialize)]
pub struct Page {
    limit: Option<u32>,
    after: Option<String>,
}

pub async fn list_members(
    state: State,
    headers: HeaderMap,
    Path(guild): Path<String>,
    Query(page): Query<Page>,
) -> DResult<Json<Value>> {
    require_bot(&headers)?;
    let limit = page.limit.unwrap_or(1);
    if !(1..=MAX_MEMBERS_PAGE).contains(&limit) {
        return Err(DiscordError::new(400, 50035, "Invalid Form Body: limit must be between 1 and 1000"));
    }
    let after: u64 = page
        .after
        .as_deref()
        .unwrap_or("0")
        .parse()
        .map_err(|_| DiscordError::new(400, 50035, "Invalid Form Body: after"))?;
    let c = state.store.lock();
    require_guild(&c, &guild)?;
    let mut statement = c.prepare("SELECT user_id FROM members WHERE guild_id = ?1")?;
    let mut ids: Vec<u64> = statement
        .query_map([&guild], |r| r.get::<_, String>(0))?
        .filter_map(|r| r.ok()?.parse().ok())
        .filter(|id| *id > after)
        .collect();
    ids.sort_unstable();
    ids.truncate(limit as usize);
    let members = ids
        .iter()
        .map(|id| member_json(&c, &guild, &id.to_string()))
        .collect::<DResult<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(Json(Value::Array(members)))
}

pub async fn get_member(
    state: State,
    headers: HeaderMap,
    Path((guild, user)): Path<(String, String)>,
) -> DResult<Json<Value>> {
    require_bot(&headers)?;
    let c = state.store.lock();
    require_guild(&c, &guild)?;
    member_json(&c, &guild, &user)?.map(Json).ok_or_else(|| DiscordError::new(404, 10007, "Unknown Member"))
}

/// `PUT /guilds/{guild}/members/{user}` with the user's `guilds.join` token.
pub async fn add_member(
    state: State,
    headers: HeaderMap,
    Path((guild, user)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> DResult<Response> {
    require_bot(&headers)?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|_| DiscordError::new(400, 50109, "The request body contains invalid JSON."))?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| DiscordError::new(400, 50035, "Invalid Form Body: access_token is required"))?;
    let c = state.store.lock();
    require_guild(&c, &guild)?;
    let holder: Option<(String, String)> = c
        .query_row(
            "SELECT user_id, scope FROM tokens WHERE access_token = ?1 AND revoked = 0 AND expires_at > ?2",
            params![token, super::oauth::now_ms() as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match holder {
        Some((holder, scope)) if holder == user && scope.split(' ').any(|s| s == "guilds.join") => {}
        _ => return Err(DiscordError::new(403, 50025, "Invalid OAuth2 access token")),
    }
    if member_roles(&c, &guild, &user)?.is_some() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    c.execute(
        "INSERT INTO members (guild_id, user_id, roles, joined_at) VALUES (?1, ?2, '[]', ?3)",
        params![guild, user, super::oauth::now_iso()],
    )?;
    let member = member_json(&c, &guild, &user)?.unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, Json(member)).into_response())
}

/// The bot's highest role position and whether it may manage roles.
fn bot_standing(c: &Connection, guild: &str) -> DResult<(i64, bool)> {
    let (bot_roles, _) =
        member_roles(c, guild, seed::BOT_USER_ID)?.ok_or_else(|| DiscordError::new(403, 50001, "Missing Access"))?;
    let all = roles(c, guild)?;
    let mut top = 0;
    let mut permissions = 0u64;
    for (id, _, position, perms) in &all {
        if bot_roles.contains(id) || id == guild {
            top = top.max(*position);
            permissions |= perms.parse::<u64>().unwrap_or(0);
        }
    }
    Ok((top, permissions & (MANAGE_ROLES | ADMINISTRATOR) != 0))
}

fn change_role(
    state: &State,
    headers: &HeaderMap,
    guild: &str,
    user: &str,
    role: &str,
    add: bool,
) -> DResult<StatusCode> {
    require_bot(headers)?;
    let c = state.store.lock();
    require_guild(&c, guild)?;
    let position = roles(&c, guild)?
        .into_iter()
        .find(|(id, ..)| id == role)
        .map(|(_, _, p, _)| p)
        .ok_or_else(|| DiscordError::new(404, 10011, "Unknown Role"))?;
    let (mut current, _) =
        member_roles(&c, guild, user)?.ok_or_else(|| DiscordError::new(404, 10007, "Unknown Member"))?;
    let (top, may_manage) = bot_standing(&c, guild)?;
    if !may_manage || position >= top {
        return Err(DiscordError::new(403, 50013, "Missing Permissions"));
    }
    if add && !current.iter().any(|r| r == role) {
        current.push(role.to_owned());
    }
    if !add {
        current.retain(|r| r != role);
    }
    c.execute(
        "UPDATE members SET roles = ?1 WHERE guild_id = ?2 AND user_id = ?3",
        params![serde_json::to_string(&current).unwrap_or_default(), guild, user],
    )?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_role(
    state: State,
    headers: HeaderMap,
    Path((guild, user, role)): Path<(String, String, String)>,
) -> DResult<StatusCode> {
    change_role(&state, &headers, &guild, &user, &role, true)
}

pub async fn remove_role(
    state: State,
    headers: HeaderMap,
    Path((guild, user, role)): Path<(String, String, String)>,
) -> DResult<StatusCode> {
    change_role(&state, &headers, &guild, &user, &role, false)
}

/// Test-only: the user joins the guild (no roles), as if they accepted an invite.
pub async fn test_join(state: State, Path((guild, user)): Path<(String, String)>) -> DResult<StatusCode> {
    let c = state.store.lock();
    require_guild(&c, &guild)?;
    if user_json(&c, &user)?.is_none() {
        c.execute(
            "INSERT INTO users (id, username, global_name, bot) VALUES (?1, ?2, NULL, 0)",
            params![user, format!("user{user}")],
        )?;
    }
    c.execute(
        "INSERT OR IGNORE INTO members (guild_id, user_id, roles, joined_at) VALUES (?1, ?2, '[]', ?3)",
        params![guild, user, super::oauth::now_iso()],
    )?;
    Ok(StatusCode::NO_CONTENT)
}

/// Test-only: the user leaves the guild (their roles go with them, as on Discord).
pub async fn test_leave(state: State, Path((guild, user)): Path<(String, String)>) -> DResult<StatusCode> {
    let c = state.store.lock();
    c.execute("DELETE FROM members WHERE guild_id = ?1 AND user_id = ?2", [&guild, &user])?;
    Ok(StatusCode::NO_CONTENT)
}

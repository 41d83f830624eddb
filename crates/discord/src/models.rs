//! The parts of Discord's objects Tollgate reads. Decoding is lenient (unknown fields ignored), so new
//! fields Discord adds never break a sync.

use serde::Deserialize;
use tollgate_core::{DiscordUserId, GuildId, RoleId};

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Guild {
    pub id: GuildId,
    pub name: String,
    #[serde(default)]
    pub owner_id: Option<DiscordUserId>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Role {
    pub id: RoleId,
    pub name: String,
    pub position: i64,
    /// The permission bit set, as Discord sends it (a decimal string).
    #[serde(default)]
    pub permissions: String,
    #[serde(default)]
    pub managed: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct User {
    pub id: DiscordUserId,
    pub username: String,
    #[serde(default)]
    pub global_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    #[serde(default)]
    pub roles: Vec<RoleId>,
    #[serde(default)]
    pub pending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddMemberOutcome {
    /// 201: the user joined the guild.
    Added,
    /// 204: the user was already a member.
    AlreadyMember,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: String,
}

//! The Discord stand-in's SQLite store, behind one mutex like the Appwrite side, seeded with a demo guild.

use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, username TEXT NOT NULL, global_name TEXT, bot INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS guilds (id TEXT PRIMARY KEY, name TEXT NOT NULL, owner_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS roles (guild_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, position INTEGER NOT NULL, permissions TEXT NOT NULL, PRIMARY KEY (guild_id, id));
CREATE TABLE IF NOT EXISTS members (guild_id TEXT NOT NULL, user_id TEXT NOT NULL, roles TEXT NOT NULL, joined_at TEXT NOT NULL, PRIMARY KEY (guild_id, user_id));
CREATE TABLE IF NOT EXISTS codes (code TEXT PRIMARY KEY, user_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, scope TEXT NOT NULL, challenge TEXT, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (access_token TEXT PRIMARY KEY, refresh_token TEXT NOT NULL, user_id TEXT NOT NULL, scope TEXT NOT NULL, expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
";
const TABLES: &[&str] = &["users", "guilds", "roles", "members", "codes", "tokens"];

/// The seeded world: one guild with the bot, four roles and three test users (not members yet).
pub mod seed {
    pub const GUILD_ID: &str = "1100000000000000001";
    pub const BOT_USER_ID: &str = "1100000000000000002";
    /// The application's client id (the bot user's id, as on Discord).
    pub const CLIENT_ID: &str = BOT_USER_ID;
    /// Local-only development values, not secrets.
    pub const BOT_TOKEN: &str = "devstack-bot-token";
    pub const CLIENT_SECRET: &str = "devstack-client-secret";
    pub const BOT_ROLE_ID: &str = "1100000000000000009";
    pub const MEMBER_ROLE_ID: &str = "1100000000000000010";
    pub const VIP_ROLE_ID: &str = "1100000000000000011";
    pub const MODERATOR_ROLE_ID: &str = "1100000000000000012";
    /// Positioned above the bot's role: managing it fails with 50013.
    pub const ABOVE_BOT_ROLE_ID: &str = "1100000000000000013";
    pub const TEST_USERS: &[(&str, &str)] =
        &[("1100000000000000100", "alice"), ("1100000000000000101", "bob"), ("1100000000000000102", "carol")];
    /// MANAGE_ROLES | CREATE_INSTANT_INVITE.
    pub const BOT_PERMISSIONS: u64 = (1 << 28) | 1;
}

pub struct DiscordStore(Mutex<Connection>);

impl DiscordStore {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::init(Connection::open(path)?)
    }

    pub fn in_memory() -> anyhow::Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(connection: Connection) -> anyhow::Result<Self> {
        connection.execute_batch(SCHEMA)?;
        let store = Self(Mutex::new(connection));
        store.seed()?;
        Ok(store)
    }

    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn seed(&self) -> rusqlite::Result<()> {
        use seed::*;
        let c = self.lock();
        c.execute(
            "INSERT OR IGNORE INTO users (id, username, global_name, bot) VALUES (?1, 'Tollgate', 'Tollgate', 1)",
            [BOT_USER_ID],
        )?;
        for (id, name) in TEST_USERS {
            c.execute(
                "INSERT OR IGNORE INTO users (id, username, global_name, bot) VALUES (?1, ?2, ?2, 0)",
                params![id, name],
            )?;
        }
        c.execute(
            "INSERT OR IGNORE INTO guilds (id, name, owner_id) VALUES (?1, 'Tollgate Demo', '1100000000000000999')",
            [GUILD_ID],
        )?;
        let roles = [
            (GUILD_ID, "@everyone", 0, 0u64),
            (BOT_ROLE_ID, "Tollgate Bot", 10, BOT_PERMISSIONS),
            (MEMBER_ROLE_ID, "Member", 2, 0),
            (VIP_ROLE_ID, "VIP", 3, 0),
            (MODERATOR_ROLE_ID, "Moderator", 5, 0),
            (ABOVE_BOT_ROLE_ID, "Staff", 20, 0),
        ];
        for (id, name, position, permissions) in roles {
            c.execute(
                "INSERT OR IGNORE INTO roles (guild_id, id, name, position, permissions) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![GUILD_ID, id, name, position, permissions.to_string()],
            )?;
        }
        c.execute(
            "INSERT OR IGNORE INTO members (guild_id, user_id, roles, joined_at) VALUES (?1, ?2, ?3, '2026-01-01T00:00:00.000000+00:00')",
            params![GUILD_ID, BOT_USER_ID, format!("[\"{BOT_ROLE_ID}\"]")],
        )?;
        Ok(())
    }

    pub fn reset(&self) -> rusqlite::Result<()> {
        {
            let c = self.lock();
            for table in TABLES {
                c.execute(&format!("DELETE FROM {table}"), [])?;
            }
        }
        self.seed()
    }
}

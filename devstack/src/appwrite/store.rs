//! SQLite behind one mutex: every request's reads and writes happen under the lock, so concurrent
//! requests are serialised and unique constraints (document ids, unique indexes, one membership per user
//! and team) hold exactly. Entities are stored as JSON; queries are evaluated in [`super::queries`], over
//! the rows the collection indexes ([`super::indexed`]) could not exclude.

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT UNIQUE, seq INTEGER NOT NULL, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jwts (token TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS databases (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (db TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (db, id));
CREATE TABLE IF NOT EXISTS attributes (db TEXT NOT NULL, col TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, ready_at INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (db, col, key));
CREATE TABLE IF NOT EXISTS indexes (db TEXT NOT NULL, col TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, ready_at INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (db, col, key));
CREATE TABLE IF NOT EXISTS documents (db TEXT NOT NULL, col TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (db, col, id));
CREATE TABLE IF NOT EXISTS teams (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (id TEXT PRIMARY KEY, team_id TEXT NOT NULL, user_id TEXT NOT NULL, seq INTEGER NOT NULL, json TEXT NOT NULL, UNIQUE (team_id, user_id));
CREATE TABLE IF NOT EXISTS passwords (user_id TEXT PRIMARY KEY, salt TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, secret TEXT UNIQUE NOT NULL, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

const TABLES: &[&str] = &[
    "users",
    "jwts",
    "passwords",
    "sessions",
    "databases",
    "collections",
    "attributes",
    "indexes",
    "documents",
    "teams",
    "memberships",
    "counters",
    "document_values",
];

pub struct Store(Mutex<Connection>);

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        Self::init(connection)
    }

    pub fn in_memory() -> anyhow::Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(connection: Connection) -> anyhow::Result<Self> {
        let had_values: bool = connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'document_values')",
            [],
            |r| r.get(0),
        )?;
        connection.execute_batch(SCHEMA)?;
        connection.execute_batch(super::indexed::SCHEMA)?;
        if !had_values {
            // A store written before indexed values were kept: fill them in once.
            super::indexed::rebuild_all(&connection)
                .map_err(|e| anyhow::anyhow!("indexing documents: {}", e.message))?;
        }
        Ok(Self(Mutex::new(connection)))
    }

    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn reset(&self) -> rusqlite::Result<()> {
        let connection = self.lock();
        for table in TABLES {
            connection.execute(&format!("DELETE FROM {table}"), [])?;
        }
        Ok(())
    }
}

/// The next value of a named sequence (Appwrite's `$sequence`, creation order).
pub fn next_seq(connection: &Connection, name: &str) -> rusqlite::Result<i64> {
    connection.execute(
        "INSERT INTO counters (name, value) VALUES (?1, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
        [name],
    )?;
    connection.query_row("SELECT value FROM counters WHERE name = ?1", [name], |row| row.get(0))
}

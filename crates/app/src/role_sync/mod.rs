//! Discord roles as a projection of Appwrite. For every user, the managed roles they should hold follow
//! from their subscription and the plan's `discord_role_mappings`; [`RoleSync::sync_user`] makes one
//! member right and records the outcome in `role_sync_jobs` (the outbox and the admin's view), and
//! [`RoleSync::reconcile_once`] walks the whole guild a bounded slice at a time.
//!
//! Discord calls go through the rate-limited client and never wait: a call it holds back (or a 429)
//! defers the job to the time Discord named, so nothing is dropped and nothing sleeps in a Worker.

mod jobs;
mod mappings;
mod reconcile;
mod sync_user;

pub use jobs::{JobStatus, RoleSyncRequest, SYNC_COST};
pub use mappings::{BrokenMapping, PlanUpdate, RoleMappings};
pub use reconcile::{ReconcileReport, RECONCILE_FIXED_COST, RECONCILE_PAGES_PER_RUN};
pub use sync_user::SyncOutcome;

use crate::App;
use tollgate_core::{Clock, GuildId};
use tollgate_discord::DiscordClient;

/// Reason shown in Discord's audit log for every change Tollgate makes.
pub const AUDIT_LOG_REASON: &str = "Tollgate: paid access changed";

pub struct RoleSync<'a, C: Clock> {
    pub app: App<'a, C>,
    pub discord: &'a DiscordClient,
    pub guild: GuildId,
}

impl<'a, C: Clock> RoleSync<'a, C> {
    pub fn new(app: App<'a, C>, discord: &'a DiscordClient, guild: GuildId) -> Self {
        Self { app, discord, guild }
    }
}

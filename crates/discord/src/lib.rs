//! # tollgate-discord
//!
//! A client for the Discord REST and OAuth2 endpoints Tollgate uses, over reqwest (fetch inside workerd,
//! hyper natively). `twilight-http` cannot be used (it does not compile for wasm32), so requests are
//! written here; every call asks one shared [`ratelimit::RateLimiter`] for a permit first.
//!
//! Why a 401 and repeated 403s stop the client: Discord bans an IP for a while after 10,000 invalid
//! (401/403/429) requests in 10 minutes, and Workers share egress IPs with other tenants. A bot that keeps
//! calling with a bad token or without permission would get every Tollgate on that IP banned, so the
//! client stops on a 401 and pauses well before the limit.
//!
//! ## Layout
//! - [`ratelimit`]: buckets, 429s, global and shared scopes, the invalid-request budget (pure).
//! - [`permit`]: the protocol with the one owner of that state shared by every worker, and the owner's
//!   state (pure; the workers keep it in a Durable Object), incl. the per-member read throttle.
//! - [`error`]: [`DiscordError`], with the codes Tollgate branches on.
//! - [`client`]: [`DiscordClient`], the one HTTP path (auth, User-Agent, audit-log reason, limits).
//! - `bot`, `oauth`: the endpoints, one file per family; [`models`]: what Tollgate reads of the answers.

mod bot;
pub mod client;
pub mod error;
pub mod models;
mod oauth;
pub mod permit;
pub mod ratelimit;

pub use bot::GUILD_MEMBERS_PAGE_LIMIT;
pub use client::{DiscordClient, DiscordConfig, LimiterStore, LocalLimiter, DISCORD_API_BASE, DISCORD_USER_AGENT};
pub use error::DiscordError;
pub use models::{AddMemberOutcome, Guild, Member, Role, TokenResponse, User};
pub use oauth::OAuthApp;
pub use ratelimit::{Admission, Halt, Observed, RateLimiter, RouteKey, Scope};

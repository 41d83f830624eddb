//! Discord's rate limits, tracked from response headers (docs/protocols.md §5.4), as a pure state machine:
//! time is passed in, nothing sleeps. Before a request the client asks [`RateLimiter::admit`]; a request
//! that would be refused is not sent: the caller gets the time to come back and defers the work.
//!
//! - Buckets: a route is mapped to its `X-RateLimit-Bucket` once Discord names it; a bucket is per major
//!   parameter (the guild), so two guilds never share one. `Remaining: 0` holds the bucket until
//!   `Reset-After` has passed.
//! - 429: the body's `retry_after` (or `Retry-After`) holds the bucket, or everything when `global`. A
//!   429 without rate-limit headers is Cloudflare blocking the (shared Workers) IP: everything backs off
//!   for [`CLOUDFLARE_BLOCK_BACKOFF_MS`].
//! - Invalid requests (401, 403, and 429 except `shared` scope) are counted over Discord's 10-minute
//!   window; at [`INVALID_REQUEST_BUDGET`] the client stops until the window drains, far below the 10,000
//!   that gets the IP banned. A 401 stops the client for good: the token is wrong, and every further call
//!   would only count towards the ban.
//!
//! The state is serializable: the workers keep one [`RateLimiter`] in a Durable Object (see [`crate::permit`])
//! so that it outlives an invocation and is shared by every worker that calls Discord.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Discord bans an IP at 10,000 invalid requests per 10 minutes; Tollgate stops at a tenth of that.
pub const INVALID_REQUEST_BUDGET: usize = 1_000;
pub const INVALID_REQUEST_WINDOW_MS: u64 = 10 * 60 * 1_000;
/// How long to stay away after a 429 that carries no rate-limit headers (a Cloudflare block).
pub const CLOUDFLARE_BLOCK_BACKOFF_MS: u64 = 5 * 60 * 1_000;

/// A route and its major parameter: the unit Discord limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteKey {
    pub route: String,
    pub major: String,
}

impl RouteKey {
    pub fn new(route: &str, major: &str) -> Self {
        Self { route: route.to_owned(), major: major.to_owned() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    User,
    Global,
    Shared,
}

impl Scope {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(Self::User),
            "global" => Some(Self::Global),
            "shared" => Some(Self::Shared),
            _ => None,
        }
    }
}

/// What a response said about limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub status: u16,
    pub bucket: Option<String>,
    pub remaining: Option<u32>,
    pub reset_after_ms: Option<u64>,
    /// From a 429: the body's `retry_after` or the `Retry-After` header.
    pub retry_after_ms: Option<u64>,
    pub global: bool,
    pub scope: Option<Scope>,
    /// Sent with the bot token: only then does a 401 stop the client (a user's expired OAuth token does not).
    pub bot_token: bool,
}

impl Observed {
    fn has_rate_limit_headers(&self) -> bool {
        self.bucket.is_some() || self.remaining.is_some() || self.reset_after_ms.is_some() || self.scope.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// A 401: the bot token is wrong. Nothing more is sent.
    Unauthorized,
    /// Too many invalid requests in the window.
    InvalidRequestBudget { until_ms: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Not before this time.
    WaitUntil(u64),
    Halted(Halt),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Bucket {
    remaining: u32,
    reset_at_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RateLimiter {
    bucket_of_route: HashMap<String, String>,
    buckets: HashMap<String, Bucket>,
    global_until_ms: u64,
    invalid: VecDeque<u64>,
    unauthorized: bool,
}

impl RateLimiter {
    fn bucket_key(&self, key: &RouteKey) -> Option<String> {
        self.bucket_of_route.get(&key.route).map(|bucket| format!("{bucket}:{}", key.major))
    }

    fn drain_invalid(&mut self, now_ms: u64) {
        while self.invalid.front().is_some_and(|t| now_ms.saturating_sub(*t) >= INVALID_REQUEST_WINDOW_MS) {
            self.invalid.pop_front();
        }
    }

    /// What must outlive a restart of the state's owner: everything but the buckets that still have
    /// requests left (their counts are refreshed by the next response anyway). Storing only this keeps a
    /// plain success from costing a storage write.
    pub fn durable_part(&self, now_ms: u64) -> Self {
        let held = self.buckets.iter().filter(|(_, b)| b.remaining == 0 && b.reset_at_ms > now_ms);
        Self {
            bucket_of_route: self.bucket_of_route.clone(),
            buckets: held.map(|(k, b)| (k.clone(), *b)).collect(),
            global_until_ms: self.global_until_ms,
            invalid: self.invalid.clone(),
            unauthorized: self.unauthorized,
        }
    }

    /// A new bot token lifts the 401 halt (the old one was refused; the new one has not been tried).
    pub fn token_replaced(&mut self) {
        self.unauthorized = false;
    }

    pub fn admit(&mut self, key: &RouteKey, now_ms: u64) -> Admission {
        if self.unauthorized {
            return Admission::Halted(Halt::Unauthorized);
        }
        self.drain_invalid(now_ms);
        if self.invalid.len() >= INVALID_REQUEST_BUDGET {
            let until_ms = self.invalid.front().map_or(now_ms, |t| t + INVALID_REQUEST_WINDOW_MS);
            return Admission::Halted(Halt::InvalidRequestBudget { until_ms });
        }
        if now_ms < self.global_until_ms {
            return Admission::WaitUntil(self.global_until_ms);
        }
        let bucket = self.bucket_key(key).and_then(|k| self.buckets.get(&k).copied());
        match bucket {
            Some(b) if b.remaining == 0 && now_ms < b.reset_at_ms => Admission::WaitUntil(b.reset_at_ms),
            _ => {
                // Count the request against its bucket now, so a burst cannot overrun it before the
                // responses come back.
                if let Some(k) = self.bucket_key(key) {
                    if let Some(b) = self.buckets.get_mut(&k) {
                        if now_ms >= b.reset_at_ms {
                            b.remaining = u32::MAX;
                        }
                        b.remaining = b.remaining.saturating_sub(1);
                    }
                }
                Admission::Go
            }
        }
    }

    pub fn record(&mut self, key: &RouteKey, observed: &Observed, now_ms: u64) {
        if let Some(bucket) = &observed.bucket {
            self.bucket_of_route.insert(key.route.clone(), bucket.clone());
        }
        if let (Some(k), Some(remaining), Some(reset_after)) =
            (self.bucket_key(key), observed.remaining, observed.reset_after_ms)
        {
            self.buckets.insert(k, Bucket { remaining, reset_at_ms: now_ms + reset_after });
        }
        match observed.status {
            401 => {
                self.unauthorized |= observed.bot_token;
                self.invalid.push_back(now_ms);
            }
            403 => self.invalid.push_back(now_ms),
            429 => {
                if observed.scope != Some(Scope::Shared) {
                    self.invalid.push_back(now_ms);
                }
                if !observed.has_rate_limit_headers() && observed.retry_after_ms.is_none() {
                    self.global_until_ms = self.global_until_ms.max(now_ms + CLOUDFLARE_BLOCK_BACKOFF_MS);
                    return;
                }
                let wait = observed.retry_after_ms.or(observed.reset_after_ms).unwrap_or(1_000);
                if observed.global || observed.scope == Some(Scope::Global) {
                    self.global_until_ms = self.global_until_ms.max(now_ms + wait);
                } else if let Some(k) = self.bucket_key(key) {
                    self.buckets.insert(k, Bucket { remaining: 0, reset_at_ms: now_ms + wait });
                } else {
                    // No bucket known yet: hold this route alone under a bucket named after it.
                    self.bucket_of_route.insert(key.route.clone(), format!("route:{}", key.route));
                    if let Some(k) = self.bucket_key(key) {
                        self.buckets.insert(k, Bucket { remaining: 0, reset_at_ms: now_ms + wait });
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;

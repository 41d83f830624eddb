//! The shared limiter's protocol and state, pure: what a [`DiscordClient`](crate::DiscordClient) sends to
//! the one place that holds the [`RateLimiter`] for every worker (a Durable Object in production, a mutex
//! in-process natively), and what that place does with it.
//!
//! Why a protocol: a limiter per invocation forgets a 429, a global back-off and the 401 halt as soon as
//! the invocation ends, and two workers never see each other's. One serialized owner of the state fixes
//! both; the price is a round trip to it, which is a subrequest. So an [`Exchange`] carries everything in
//! one round trip: the reports of earlier calls and the permit for the next. A report that restricts
//! anything (an error status, an exhausted bucket, an answer to keep) is sent at once; a plain success is
//! carried by the next call's permit, and the last one of an invocation is dropped, which costs nothing
//! because the permit already counted the call against its bucket.
//!
//! The same owner throttles reads of one member ([`CacheRead`]): a customer refreshing `/me/access` in a
//! loop gets the last answer for the interval, and Discord sees at most one read per interval.

use crate::ratelimit::{Admission, Halt, Observed, RateLimiter, RouteKey};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Member answers kept at most (the oldest go first once expired ones are gone); about 1 KB each.
pub const CACHE_CAPACITY: usize = 10_000;

/// One round trip to the shared limiter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// [`token_fingerprint`] of the bot token the caller uses: a new token lifts the 401 halt.
    pub token: String,
    /// What earlier calls saw, oldest first.
    #[serde(default)]
    pub reports: Vec<Report>,
    /// The call about to be made, if any.
    #[serde(default)]
    pub permit: Option<PermitRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermitRequest {
    pub key: RouteKey,
    /// A read that may be answered from the last answer kept under this key.
    #[serde(default)]
    pub cache: Option<CacheRead>,
    /// A write that makes the answer kept under this key stale (a role change of that member).
    #[serde(default)]
    pub invalidate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRead {
    pub key: String,
    /// At most one call per key per interval; the answer is kept and served for the rest of it.
    pub interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub key: RouteKey,
    pub observed: Observed,
    /// The answer to keep for a [`CacheRead`] that was let through.
    #[serde(default)]
    pub cache: Option<CachedAnswer>,
}

impl Report {
    /// Whether it must reach the limiter now rather than with the next permit.
    pub fn is_urgent(&self) -> bool {
        let observed = &self.observed;
        self.cache.is_some() || !(200..300).contains(&observed.status) || observed.remaining == Some(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedAnswer {
    pub key: String,
    pub status: u16,
    pub body: String,
}

/// The answer to a [`PermitRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit {
    Go,
    /// Not before this time (a bucket, a global or Cloudflare back-off, or a throttled read in flight).
    Wait {
        until_ms: u64,
    },
    Halted {
        halt: Halt,
    },
    /// The last answer to this read, still within its interval: Discord is not called.
    Cached {
        status: u16,
        body: String,
    },
}

impl From<Admission> for Permit {
    fn from(admission: Admission) -> Self {
        match admission {
            Admission::Go => Self::Go,
            Admission::WaitUntil(until_ms) => Self::Wait { until_ms },
            Admission::Halted(halt) => Self::Halted { halt },
        }
    }
}

/// The answer to an [`Exchange`]: `permit` is set exactly when the exchange asked for one.
///
/// On the wire it is a line of text, not JSON ([`Self::encode`], [`Self::decode`]): every worker that calls
/// Discord decodes it, and a derived JSON decoder for these enums costs the api worker ~7 KB of wasm.
/// `none`, `go`, `wait <ms>`, `halted unauthorized`, `halted budget <ms>`, `cached <status>` then a
/// newline and the kept body as it came from Discord.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeAnswer {
    pub permit: Option<Permit>,
}

impl ExchangeAnswer {
    pub fn encode(&self) -> String {
        match &self.permit {
            None => "none".to_owned(),
            Some(Permit::Go) => "go".to_owned(),
            Some(Permit::Wait { until_ms }) => format!("wait {until_ms}"),
            Some(Permit::Halted { halt: Halt::Unauthorized }) => "halted unauthorized".to_owned(),
            Some(Permit::Halted { halt: Halt::InvalidRequestBudget { until_ms } }) => {
                format!("halted budget {until_ms}")
            }
            Some(Permit::Cached { status, body }) => format!("cached {status}\n{body}"),
        }
    }

    /// `None` for anything that is not an answer [`Self::encode`] writes.
    pub fn decode(text: &str) -> Option<Self> {
        let (head, body) = match text.split_once('\n') {
            Some((head, body)) => (head, Some(body)),
            None => (text, None),
        };
        let permit = match (head.split_once(' '), body) {
            (None, None) if head == "none" => None,
            (None, None) if head == "go" => Some(Permit::Go),
            (Some(("wait", ms)), None) => Some(Permit::Wait { until_ms: ms.parse().ok()? }),
            (Some(("halted", "unauthorized")), None) => Some(Permit::Halted { halt: Halt::Unauthorized }),
            (Some(("halted", rest)), None) => {
                let until_ms = rest.strip_prefix("budget ")?.parse().ok()?;
                Some(Permit::Halted { halt: Halt::InvalidRequestBudget { until_ms } })
            }
            (Some(("cached", status)), Some(body)) => {
                Some(Permit::Cached { status: status.parse().ok()?, body: body.to_owned() })
            }
            _ => return None,
        };
        Some(Self { permit })
    }
}

#[derive(Debug, Clone)]
struct CacheEntry {
    until_ms: u64,
    /// `None` while the call that was let through has not reported.
    answer: Option<(u16, String)>,
}

/// The limiter's whole state. The [`RateLimiter`] and the token are persisted (they must outlive the
/// owner's restarts: a 401 halt above all); the member answers are kept in memory only, as a lost one
/// costs at most one extra read.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SharedLimiter {
    limiter: RateLimiter,
    token: String,
    #[serde(skip)]
    cache: HashMap<String, CacheEntry>,
}

impl SharedLimiter {
    /// Applies the reports, then answers the permit (time from the owner's clock).
    pub fn exchange(&mut self, exchange: &Exchange, now_ms: u64) -> ExchangeAnswer {
        if exchange.token != self.token {
            if !self.token.is_empty() {
                self.limiter.token_replaced();
            }
            self.token.clone_from(&exchange.token);
        }
        for report in &exchange.reports {
            self.limiter.record(&report.key, &report.observed, now_ms);
            if let Some(answer) = &report.cache {
                let entry =
                    self.cache.entry(answer.key.clone()).or_insert(CacheEntry { until_ms: now_ms, answer: None });
                entry.answer = Some((answer.status, answer.body.clone()));
            }
        }
        ExchangeAnswer { permit: exchange.permit.as_ref().map(|request| self.permit(request, now_ms)) }
    }

    fn permit(&mut self, request: &PermitRequest, now_ms: u64) -> Permit {
        if let Some(stale) = &request.invalidate {
            self.cache.remove(stale);
        }
        if let Some(read) = &request.cache {
            if let Some(entry) = self.cache.get(&read.key).filter(|e| now_ms < e.until_ms) {
                return match &entry.answer {
                    Some((status, body)) => Permit::Cached { status: *status, body: body.clone() },
                    None => Permit::Wait { until_ms: entry.until_ms },
                };
            }
        }
        let admission = self.limiter.admit(&request.key, now_ms);
        if let (Admission::Go, Some(read)) = (admission, &request.cache) {
            self.keep(read.key.clone(), CacheEntry { until_ms: now_ms + read.interval_ms, answer: None }, now_ms);
        }
        admission.into()
    }

    fn keep(&mut self, key: String, entry: CacheEntry, now_ms: u64) {
        if self.cache.len() >= CACHE_CAPACITY {
            self.cache.retain(|_, e| e.until_ms > now_ms);
        }
        while self.cache.len() >= CACHE_CAPACITY {
            let oldest = self.cache.iter().min_by_key(|(_, e)| e.until_ms).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.cache.remove(&k),
                None => break,
            };
        }
        self.cache.insert(key, entry);
    }

    /// The persisted part, as the owner stores it: the limiter's [`RateLimiter::durable_part`] and the
    /// token, not the member answers. The owner writes it when it differs from what it stored last, so an
    /// exchange that changes nothing durable (most successes) costs no write.
    pub fn to_stored(&self, now_ms: u64) -> Result<String, serde_json::Error> {
        #[derive(Serialize)]
        struct Stored<'a> {
            limiter: RateLimiter,
            token: &'a str,
        }
        serde_json::to_string(&Stored { limiter: self.limiter.durable_part(now_ms), token: &self.token })
    }

    /// The persisted part back. A stored state that does not decode is an error, never a fresh limiter:
    /// a fresh one would forget a 401 halt.
    pub fn from_stored(stored: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(stored)
    }
}

/// A short, one-way fingerprint of the bot token: tells tokens apart without storing or sending the token.
pub fn token_fingerprint(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest([b"tollgate discord limiter\0".as_slice(), token.as_bytes()].concat());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The cache key of one member's read (and of the role changes that make it stale).
pub fn member_cache_key(guild: &str, user: &str) -> String {
    format!("member:{guild}:{user}")
}

#[cfg(test)]
mod tests;

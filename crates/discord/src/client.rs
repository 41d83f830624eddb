//! The one HTTP path: a permit from the shared limiter ([`LimiterStore`]), auth, `User-Agent`, URL-encoded
//! `X-Audit-Log-Reason`, then the response's limits reported and errors decoded. Nothing here sleeps:
//! a request the limiter holds back is not sent and comes back as [`DiscordError::RateLimited`]; a limiter
//! that cannot be reached sends nothing either ([`DiscordError::LimiterUnavailable`]): an unthrottled call
//! is never the fallback.

use crate::error::DiscordError;
use crate::permit::{
    token_fingerprint, CacheRead, CachedAnswer, Exchange, ExchangeAnswer, Permit, PermitRequest, Report, SharedLimiter,
};
use crate::ratelimit::{Observed, RouteKey, Scope};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::Method;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::{Clock, Secret};
use tollgate_http::{Incoming, Outgoing, Transport};

pub const DISCORD_API_BASE: &str = "https://discord.com/api/v10";
/// Discord requires `DiscordBot ($url, $versionNumber)`; requests without it may be blocked.
pub const DISCORD_USER_AGENT: &str =
    concat!("DiscordBot (https://github.com/tollgate-dev/tollgate, ", env!("CARGO_PKG_VERSION"), ")");
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Discord's limit for `X-Audit-Log-Reason`, in characters.
pub const AUDIT_LOG_REASON_MAX_CHARS: usize = 512;

#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// `https://discord.com/api/v10`, or devstack's `http://127.0.0.1:8791/api/v10`.
    pub api_base: String,
    pub bot_token: Secret,
}

/// Where the limiter's state lives: this process ([`LocalLimiter`]) or a Durable Object shared by every
/// worker (`workers/common`). An error means the state could not be reached: the call is not made.
pub trait LimiterStore: Send + Sync {
    fn exchange<'a>(
        &'a self,
        exchange: &'a Exchange,
    ) -> Pin<Box<dyn Future<Output = Result<ExchangeAnswer, String>> + Send + 'a>>;

    /// Whether an exchange is a subrequest of the invocation (a Durable Object call is).
    fn is_subrequest(&self) -> bool;
}

/// The limiter in this process (the CLI, native tests): shared by the clients that share it, forgotten on exit.
pub struct LocalLimiter {
    state: Mutex<SharedLimiter>,
    clock: Arc<dyn Clock + Send + Sync>,
}

impl LocalLimiter {
    pub fn new(clock: Arc<dyn Clock + Send + Sync>) -> Self {
        Self { state: Mutex::new(SharedLimiter::default()), clock }
    }
}

impl LimiterStore for LocalLimiter {
    fn exchange<'a>(
        &'a self,
        exchange: &'a Exchange,
    ) -> Pin<Box<dyn Future<Output = Result<ExchangeAnswer, String>> + Send + 'a>> {
        let now_ms = u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0);
        let answer = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).exchange(exchange, now_ms);
        Box::pin(std::future::ready(Ok(answer)))
    }

    fn is_subrequest(&self) -> bool {
        false
    }
}

pub struct DiscordClient {
    http: Transport,
    api_base: String,
    bot_token: Secret,
    /// [`token_fingerprint`] of `bot_token`, sent with every exchange.
    token_fingerprint: String,
    limiter: Arc<dyn LimiterStore>,
    /// Plain successes not reported yet: they ride along with the next permit.
    unreported: Mutex<Vec<Report>>,
    clock: Arc<dyn Clock + Send + Sync>,
    /// The invocation's subrequest counter (shared with its other clients), taken before each request.
    subrequests: Subrequests,
}

pub(crate) enum Auth<'a> {
    Bot,
    Bearer(&'a str),
    /// OAuth2 client credentials in the form body.
    None,
}

pub(crate) enum Body<'a> {
    Empty,
    Json(&'a serde_json::Value),
    Form(&'a [(&'a str, &'a str)]),
}

pub(crate) struct Call<'a> {
    pub method: Method,
    pub route: &'static str,
    pub major: &'a str,
    pub path: String,
    pub query: &'a [(&'a str, String)],
    pub body: Body<'a>,
    pub auth: Auth<'a>,
    pub audit_reason: Option<&'a str>,
    /// A read the limiter may answer from its last answer (at most one call per key and interval).
    pub cache: Option<CacheRead>,
    /// The kept answer this call makes stale.
    pub invalidate: Option<String>,
}

impl DiscordClient {
    /// A client with its own in-process limiter (the CLI, native tests).
    pub fn new(config: DiscordConfig, clock: Arc<dyn Clock + Send + Sync>) -> Self {
        Self::with_shared_limiter(config, clock.clone(), Arc::new(LocalLimiter::new(clock)))
    }

    /// A client that asks `limiter` for every permit (the workers: the Durable Object). Without [`Self::new`]
    /// the in-process limiter is not linked into a worker at all.
    pub fn with_shared_limiter(
        config: DiscordConfig,
        clock: Arc<dyn Clock + Send + Sync>,
        limiter: Arc<dyn LimiterStore>,
    ) -> Self {
        Self {
            http: Transport::new(),
            api_base: config.api_base.trim_end_matches('/').to_owned(),
            token_fingerprint: token_fingerprint(config.bot_token.expose()),
            bot_token: config.bot_token,
            limiter,
            unreported: Mutex::new(Vec::new()),
            clock,
            subrequests: Subrequests::unlimited(),
        }
    }

    /// Counts (and, with a limit, bounds) this client's requests in `subrequests`, the invocation's meter.
    pub fn with_subrequests(mut self, subrequests: Subrequests) -> Self {
        self.subrequests = subrequests;
        self
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0)
    }

    fn unreported(&self) -> std::sync::MutexGuard<'_, Vec<Report>> {
        self.unreported.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One round trip to the limiter, with the reports not sent yet. Reports that did not arrive are kept
    /// for the next exchange.
    async fn exchange(&self, permit: Option<PermitRequest>) -> Result<ExchangeAnswer, DiscordError> {
        let reports = std::mem::take(&mut *self.unreported());
        let exchange = Exchange { token: self.token_fingerprint.clone(), reports, permit };
        if self.limiter.is_subrequest() {
            if let Err(spent) = self.subrequests.take() {
                self.unreported().splice(0..0, exchange.reports);
                return Err(DiscordError::Transport(spent.to_string()));
            }
        }
        match self.limiter.exchange(&exchange).await {
            Ok(answer) => Ok(answer),
            Err(e) => {
                self.unreported().splice(0..0, exchange.reports);
                Err(DiscordError::LimiterUnavailable(e))
            }
        }
    }

    /// The permit for one call, or why it is not made. `Ok(Some(..))`: the limiter's kept answer.
    async fn permit(&self, request: PermitRequest) -> Result<Option<(u16, String)>, DiscordError> {
        let answer = self.exchange(Some(request)).await?;
        match answer.permit {
            Some(Permit::Go) => Ok(None),
            Some(Permit::Wait { until_ms }) => Err(DiscordError::RateLimited { retry_at_ms: until_ms }),
            Some(Permit::Halted { halt }) => Err(DiscordError::from_halt(halt)),
            Some(Permit::Cached { status, body }) => Ok(Some((status, body))),
            None => Err(DiscordError::LimiterUnavailable("the limiter answered without a permit".to_owned())),
        }
    }

    /// Sends one request; `Ok((status, body))` for a 2xx.
    pub(crate) async fn send(&self, mut call: Call<'_>) -> Result<(u16, String), DiscordError> {
        let key = RouteKey::new(call.route, call.major);
        let cache = call.cache.take();
        let cache_key = cache.as_ref().map(|read| read.key.clone());
        let request = PermitRequest { key: key.clone(), cache, invalidate: call.invalidate.take() };
        // The kept answer of a throttled read (a 2xx or a 404), or Discord's.
        let (status, text, retry_after_ms) = match self.permit(request).await? {
            Some((status, body)) => (status, body, None),
            None => self.call_discord(call, key, cache_key).await?,
        };
        match status {
            200..=299 => Ok((status, text)),
            429 => Err(DiscordError::RateLimited {
                retry_at_ms: self.now_ms() + retry_after_ms.unwrap_or(crate::ratelimit::CLOUDFLARE_BLOCK_BACKOFF_MS),
            }),
            _ => Err(DiscordError::from_response(status, &text)),
        }
    }

    /// The call itself, once permitted; its report goes to the limiter (now if urgent, else with the next
    /// permit). `(status, body, retry_after_ms)`.
    async fn call_discord(
        &self,
        call: Call<'_>,
        key: RouteKey,
        cache_key: Option<String>,
    ) -> Result<(u16, String, Option<u64>), DiscordError> {
        self.subrequests.take().map_err(|spent| DiscordError::Transport(spent.to_string()))?;
        let mut url = url::Url::parse(&format!("{}{}", self.api_base, call.path))
            .map_err(|e| DiscordError::Transport(format!("not a URL: {e}")))?;
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(call.query);
        }
        let bot = matches!(call.auth, Auth::Bot);
        let authorization = match call.auth {
            Auth::Bot => Some(format!("Bot {}", self.bot_token.expose())),
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
            Auth::None => None,
        };
        let reason = call.audit_reason.map(|reason| {
            let reason: String = reason.chars().take(AUDIT_LOG_REASON_MAX_CHARS).collect();
            utf8_percent_encode(&reason, NON_ALPHANUMERIC).to_string()
        });
        let (body, content_type) = match call.body {
            Body::Empty => (None, None),
            Body::Json(json) => (Some(json.to_string()), Some("application/json")),
            Body::Form(form) => (
                Some(url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish()),
                Some("application/x-www-form-urlencoded"),
            ),
        };
        let mut headers = vec![("User-Agent", DISCORD_USER_AGENT)];
        headers.extend(authorization.as_deref().map(|a| ("Authorization", a)));
        headers.extend(reason.as_deref().map(|r| ("X-Audit-Log-Reason", r)));
        headers.extend(content_type.map(|c| ("Content-Type", c)));
        let mut request =
            Outgoing::new(call.method.as_str(), &url, &headers, REQUEST_TIMEOUT).reading(OBSERVED_HEADERS);
        if let Some(body) = &body {
            request = request.with_body(body);
        }
        let answer = self.http.send(request).await.map_err(|e| DiscordError::Transport(e.to_string()))?;
        let status = answer.status;
        let observed = observe(&answer, bot);
        let text = answer.text;
        let retry_after_ms = observed.retry_after_ms;
        // Only answers worth keeping: the member, or that they are not one (a 404).
        let cache = cache_key.filter(|_| (200..300).contains(&status) || status == 404).map(|key| CachedAnswer {
            key,
            status,
            body: text.clone(),
        });
        let report = Report { key, observed, cache };
        let urgent = report.is_urgent();
        self.unreported().push(report);
        if urgent {
            // Not delivered: it stays queued for the next exchange, and this call's own answer stands.
            let _ = self.exchange(None).await;
        }
        Ok((status, text, retry_after_ms))
    }

    pub(crate) fn decode<T: serde::de::DeserializeOwned>(status: u16, text: &str) -> Result<T, DiscordError> {
        serde_json::from_str(text).map_err(|e| DiscordError::Http {
            status,
            code: None,
            message: format!("unexpected response body: {e}"),
        })
    }
}

/// The answer's headers the rate limiter reads ([`observe`]); no other header is read back.
const OBSERVED_HEADERS: &[&str] = &[
    "x-ratelimit-bucket",
    "x-ratelimit-remaining",
    "x-ratelimit-reset-after",
    "x-ratelimit-global",
    "x-ratelimit-scope",
    "retry-after",
];

fn header_f64(headers: &Incoming, name: &str) -> Option<f64> {
    headers.header(name)?.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

fn seconds_to_ms(seconds: f64) -> u64 {
    (seconds * 1_000.0).ceil() as u64
}

fn observe(answer: &Incoming, bot_token: bool) -> Observed {
    let (status, headers, body) = (answer.status, answer, answer.text.as_str());
    let text = |name: &str| headers.header(name).map(str::to_owned);
    let mut observed = Observed {
        status,
        bucket: text("x-ratelimit-bucket"),
        remaining: text("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()),
        reset_after_ms: header_f64(headers, "x-ratelimit-reset-after").map(seconds_to_ms),
        retry_after_ms: None,
        global: text("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        scope: text("x-ratelimit-scope").as_deref().and_then(Scope::parse),
        bot_token,
    };
    if status == 429 {
        #[derive(serde::Deserialize)]
        struct TooMany {
            retry_after: Option<f64>,
            #[serde(default)]
            global: bool,
        }
        let parsed = serde_json::from_str::<TooMany>(body).ok();
        observed.global |= parsed.as_ref().is_some_and(|p| p.global);
        observed.retry_after_ms = parsed
            .and_then(|p| p.retry_after)
            .filter(|v| v.is_finite() && *v >= 0.0)
            .or_else(|| header_f64(headers, "retry-after"))
            .map(seconds_to_ms);
    }
    observed
}

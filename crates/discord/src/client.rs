//! The one HTTP path: admission by the rate limiter, auth, `User-Agent`, URL-encoded
//! `X-Audit-Log-Reason`, then the response's limits recorded and errors decoded. Nothing here sleeps:
//! a request the limiter holds back is not sent and comes back as [`DiscordError::RateLimited`].

use crate::error::DiscordError;
use crate::ratelimit::{Admission, Observed, RateLimiter, RouteKey, Scope};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::header::HeaderMap;
use reqwest::Method;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tollgate_core::subrequests::Subrequests;
use tollgate_core::{Clock, Secret};

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

pub struct DiscordClient {
    http: reqwest::Client,
    api_base: String,
    bot_token: Secret,
    limiter: Mutex<RateLimiter>,
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
}

impl DiscordClient {
    pub fn new(config: DiscordConfig, clock: Arc<dyn Clock + Send + Sync>) -> Self {
        Self {
            http: reqwest::Client::new(),
            api_base: config.api_base.trim_end_matches('/').to_owned(),
            bot_token: config.bot_token,
            limiter: Mutex::new(RateLimiter::default()),
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

    fn limiter(&self) -> std::sync::MutexGuard<'_, RateLimiter> {
        self.limiter.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends one request; `Ok((status, body))` for a 2xx.
    pub(crate) async fn send(&self, call: Call<'_>) -> Result<(u16, String), DiscordError> {
        let key = RouteKey { route: call.route, major: call.major.to_owned() };
        match self.limiter().admit(&key, self.now_ms()) {
            Admission::Go => {}
            Admission::WaitUntil(retry_at_ms) => return Err(DiscordError::RateLimited { retry_at_ms }),
            Admission::Halted(halt) => return Err(DiscordError::from_halt(halt)),
        }
        self.subrequests.take().map_err(|spent| DiscordError::Transport(spent.to_string()))?;
        let mut request = self
            .http
            .request(call.method, format!("{}{}", self.api_base, call.path))
            .header("User-Agent", DISCORD_USER_AGENT)
            .timeout(REQUEST_TIMEOUT);
        if !call.query.is_empty() {
            request = request.query(call.query);
        }
        let bot = matches!(call.auth, Auth::Bot);
        request = match call.auth {
            Auth::Bot => request.header("Authorization", format!("Bot {}", self.bot_token.expose())),
            Auth::Bearer(token) => request.header("Authorization", format!("Bearer {token}")),
            Auth::None => request,
        };
        if let Some(reason) = call.audit_reason {
            let reason: String = reason.chars().take(AUDIT_LOG_REASON_MAX_CHARS).collect();
            request = request.header("X-Audit-Log-Reason", utf8_percent_encode(&reason, NON_ALPHANUMERIC).to_string());
        }
        request = match call.body {
            Body::Empty => request,
            Body::Json(json) => request.json(json),
            Body::Form(form) => request.form(form),
        };
        let response = request.send().await.map_err(|e| DiscordError::Transport(describe(&e)))?;
        let status = response.status().as_u16();
        let observed_headers = response.headers().clone();
        let text = response.text().await.map_err(|e| DiscordError::Transport(describe(&e)))?;
        let observed = observe(status, &observed_headers, &text, bot);
        let now = self.now_ms();
        self.limiter().record(&key, &observed, now);
        match status {
            200..=299 => Ok((status, text)),
            429 => Err(DiscordError::RateLimited {
                retry_at_ms: now + observed.retry_after_ms.unwrap_or(crate::ratelimit::CLOUDFLARE_BLOCK_BACKOFF_MS),
            }),
            _ => Err(DiscordError::from_response(status, &text)),
        }
    }

    pub(crate) fn decode<T: serde::de::DeserializeOwned>(status: u16, text: &str) -> Result<T, DiscordError> {
        serde_json::from_str(text).map_err(|e| DiscordError::Http {
            status,
            code: None,
            message: format!("unexpected response body: {e}"),
        })
    }
}

fn header_f64(headers: &HeaderMap, name: &str) -> Option<f64> {
    headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

fn seconds_to_ms(seconds: f64) -> u64 {
    (seconds * 1_000.0).ceil() as u64
}

fn observe(status: u16, headers: &HeaderMap, body: &str, bot_token: bool) -> Observed {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
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

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else {
        "request failed".to_owned()
    }
}

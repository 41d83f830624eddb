//! What a worker says about each invocation: one JSON line per request and per cron run, and the app's
//! `tracing` events as JSON lines in the same output (`wrangler tail`, Workers Logs).
//!
//! ## The line
//! `{"log":"invocation","worker","kind":"request"|"cron","requestId","route","status","outcome",
//! "durationMs","subrequests", …notes}`: `route` is the method and path (never the query string, which
//! carries OAuth codes and states), `outcome` the machine-readable result (the error code of a refusal,
//! else what the handler noted, else `ok`), `subrequests` the outbound calls counted by the invocation's
//! clients ([`Subrequests`]) up to the moment the line is written (a role-sync prompt sent in `waitUntil`
//! after the answer is not in it). Handlers add notes (`userId`, cron counts): ids and
//! counts only, never a secret, a token, a body or an email address.
//!
//! ## Why the request id
//! `X-Request-Id` is echoed on every answer: Cloudflare's `cf-ray` when present (so a line can be matched
//! with Cloudflare's own logs), else a random id, so a customer or a provider's delivery log can quote it.
//!
//! `Date.now()` only advances across I/O inside Workers, so `durationMs` is the time spent waiting on
//! subrequests, not CPU time (which Cloudflare reports per invocation on its own).

use serde_json::{json, Map, Value};
use std::cell::RefCell;
use tollgate_core::subrequests::Subrequests;
use worker::{Request, Response};

/// Outbound requests one invocation may make on Workers Free; a line above it is logged as an error.
pub const FREE_PLAN_SUBREQUESTS: u32 = 50;
const MAX_ROUTE_CHARS: usize = 200;

pub struct Invocation {
    worker: &'static str,
    kind: &'static str,
    route: String,
    request_id: String,
    started_ms: f64,
    subrequests: Subrequests,
    notes: RefCell<Map<String, Value>>,
}

impl Invocation {
    /// A fetch: its route and request id are read from the request (headers only: the body is untouched).
    pub fn request(worker: &'static str, req: &Request) -> Self {
        let header = |name: &str| req.headers().get(name).ok().flatten();
        let request_id = header("cf-ray").filter(|id| valid_request_id(id)).unwrap_or_else(random_id);
        let mut route = format!("{} {}", req.method(), req.path());
        route.truncate(MAX_ROUTE_CHARS);
        Self::new(worker, "request", route, request_id)
    }

    /// A cron run (`cron` is its schedule, e.g. `*/1 * * * *`) held to `budget` subrequests
    /// (`CRON_SUBREQUEST_BUDGET`): its steps pace themselves by it, and a call past it is refused.
    pub fn cron(worker: &'static str, cron: &str, budget: u32) -> Self {
        let mut invocation = Self::new(worker, "cron", format!("cron {cron}"), random_id());
        invocation.subrequests = Subrequests::with_limit(budget);
        invocation.note("budget", budget);
        invocation
    }

    fn new(worker: &'static str, kind: &'static str, route: String, request_id: String) -> Self {
        Self {
            worker,
            kind,
            route,
            request_id,
            started_ms: js_sys::Date::now(),
            subrequests: Subrequests::unlimited(),
            notes: RefCell::new(Map::new()),
        }
    }

    /// The meter every client built for this invocation counts into.
    pub fn subrequests(&self) -> &Subrequests {
        &self.subrequests
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Adds a field to the invocation's line (`outcome` replaces the default outcome). Ids and counts only.
    pub fn note(&self, key: &str, value: impl Into<Value>) {
        self.notes.borrow_mut().insert(key.to_owned(), value.into());
    }

    /// Echoes the request id on `response` and writes the request's line.
    pub fn finish(self, mut response: Response) -> worker::Result<Response> {
        let _ = response.headers_mut().set("X-Request-Id", &self.request_id);
        let status = response.status_code();
        let default_outcome = if status < 400 { "ok" } else { "refused" };
        self.write(Some(status), default_outcome);
        Ok(response)
    }

    /// Writes a cron run's line; `outcome` is `ok` or what went wrong, in a word.
    pub fn finish_cron(self, outcome: &str) {
        self.write(None, outcome);
    }

    fn write(self, status: Option<u16>, default_outcome: &str) {
        let used = self.subrequests.used();
        let mut line = json!({
            "log": "invocation",
            "worker": self.worker,
            "kind": self.kind,
            "requestId": self.request_id,
            "route": self.route,
            "outcome": default_outcome,
            "durationMs": (js_sys::Date::now() - self.started_ms).max(0.0).round() as u64,
            "subrequests": used,
        });
        if let (Some(status), Some(map)) = (status, line.as_object_mut()) {
            map.insert("status".into(), status.into());
        }
        let refused = self.subrequests.refused();
        if let Some(map) = line.as_object_mut() {
            map.extend(self.notes.into_inner());
            if refused > 0 {
                map.insert("refusedSubrequests".into(), refused.into());
            }
        }
        let text = line.to_string();
        match status {
            _ if used > FREE_PLAN_SUBREQUESTS || refused > 0 => worker::console_error!("{text}"),
            Some(s) if s >= 500 => worker::console_error!("{text}"),
            Some(s) if s >= 400 => worker::console_warn!("{text}"),
            _ => worker::console_log!("{text}"),
        }
    }
}

/// Cloudflare's ray ids are hex with a `-colo` suffix; anything else a client sends is not trusted.
fn valid_request_id(id: &str) -> bool {
    (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// 16 hex digits. Not a secret (it is echoed to the caller), so `Math.random` is enough.
fn random_id() -> String {
    let high = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    let low = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    format!("{high:08x}{low:08x}")
}

/// Routes the app's `tracing` events (info and above) to the console as JSON lines
/// (`{"log":"event","level","target","message", …fields}`), once per isolate.
pub fn install() {
    console_error_panic_hook::set_once();
    let _ = tracing::subscriber::set_global_default(ConsoleSubscriber);
}

struct ConsoleSubscriber;

impl tracing::Subscriber for ConsoleSubscriber {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::INFO
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let metadata = event.metadata();
        let mut fields = JsonFields(Map::new());
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert("log".into(), "event".into());
        line.insert("level".into(), metadata.level().as_str().to_lowercase().into());
        line.insert("target".into(), metadata.target().into());
        line.extend(fields.0);
        let text = Value::Object(line).to_string();
        match *metadata.level() {
            tracing::Level::ERROR => worker::console_error!("{text}"),
            tracing::Level::WARN => worker::console_warn!("{text}"),
            _ => worker::console_log!("{text}"),
        }
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
}

struct JsonFields(Map<String, Value>);

impl tracing::field::Visit for JsonFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

//! The `DiscordLimiter` Durable Object: the one owner of the Discord rate-limiter state for the whole
//! deployment (buckets, global and Cloudflare back-offs, the invalid-request window, the 401 halt, and the
//! per-member read throttle). The policy is pure ([`tollgate_discord::permit::SharedLimiter`]); this is
//! its storage and serialization point. Hosted by a worker of its own (workers/limiter); the role-sync, api
//! and console workers bind the class with `script_name` (their bundles only carry the small client side).
//!
//! Requests are handled one at a time as far as the state goes: the state is changed synchronously and
//! written before the answer leaves (the runtime's output gate holds the answer until the write is
//! durable, its input gate holds other requests during the load). The persisted part is written only when
//! it changed (a cached member answer does not write).

use std::cell::RefCell;
use tollgate_discord::permit::{Exchange, SharedLimiter};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

const STATE_KEY: &str = "limiter";

#[durable_object]
pub struct DiscordLimiter {
    state: State,
    limiter: RefCell<Option<SharedLimiter>>,
    /// The persisted form last written (or read), to skip writes that change nothing.
    stored: RefCell<String>,
}

impl DurableObject for DiscordLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self { state, limiter: RefCell::new(None), stored: RefCell::new(String::new()) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post || req.path() != "/exchange" {
            return Response::error("not found", 404);
        }
        let Ok(exchange) = req.json::<Exchange>().await else {
            return Response::error("invalid exchange", 400);
        };
        if let Err(e) = self.load().await {
            // Fail closed and loud: an unreadable state is not replaced by a fresh one (that would
            // forget a 401 halt); every caller gets an error and calls nothing.
            worker::console_error!("discord limiter: the stored state cannot be read: {e}");
            return Response::error("limiter state unreadable", 500);
        }
        let now_ms = js_sys::Date::now() as u64;
        let (answer, stored) = {
            let mut limiter = self.limiter.borrow_mut();
            let Some(limiter) = limiter.as_mut() else { return Response::error("limiter state not loaded", 500) };
            let answer = limiter.exchange(&exchange, now_ms);
            (answer, limiter.to_stored(now_ms))
        };
        let stored = stored.map_err(|e| worker::Error::RustError(format!("encoding the limiter state: {e}")))?;
        if *self.stored.borrow() != stored {
            // Stored as a plain string (`put_raw`): the typed `put`/`get` would bring serde-wasm-bindgen.
            self.state.storage().put_raw(STATE_KEY, stored.as_str()).await?;
            *self.stored.borrow_mut() = stored;
        }
        Response::ok(answer.encode())
    }
}

impl DiscordLimiter {
    async fn load(&self) -> std::result::Result<(), String> {
        if self.limiter.borrow().is_some() {
            return Ok(());
        }
        let found = self.state.storage().get_multiple(vec![STATE_KEY]).await.map_err(|e| e.to_string())?;
        let stored = match found.get(&STATE_KEY.into()) {
            value if value.is_undefined() => None,
            value => Some(value.as_string().ok_or("the stored limiter state is not a string")?),
        };
        let limiter = match &stored {
            Some(text) => SharedLimiter::from_stored(text).map_err(|e| e.to_string())?,
            None => SharedLimiter::default(),
        };
        // Another request may have loaded it while this one waited on storage.
        if self.limiter.borrow().is_none() {
            *self.limiter.borrow_mut() = Some(limiter);
            *self.stored.borrow_mut() = stored.unwrap_or_default();
        }
        Ok(())
    }
}

//! The api and role-sync workers' side of the shared Discord limiter: every permit and report is one
//! `POST /exchange` to the `DiscordLimiter` Durable Object (hosted by the role-sync worker, bound as
//! `DISCORD_LIMITER` in both). Why a Durable Object and not KV: the limiter must be read and changed
//! atomically by concurrent invocations (a bucket's last request, a 401 seen once), and KV is eventually
//! consistent (a write may take a minute to be seen elsewhere); one object is a single serialization
//! point with strongly consistent storage. Each exchange is one subrequest, counted in the invocation's
//! meter by the client.
//!
//! Anything that is not a well-formed answer (no binding, the object unreachable, an error status, a body
//! that does not decode) is an error: the client then makes no Discord call at all.

use std::future::Future;
use std::pin::Pin;
use tollgate_discord::permit::{Exchange, ExchangeAnswer};
use tollgate_discord::LimiterStore;
use worker::send::{SendFuture, SendWrapper};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;
use worker::worker_sys::DurableObject;
use worker::Env;

/// The binding of the `DiscordLimiter` namespace in both workers' `wrangler.toml`.
pub const LIMITER_BINDING: &str = "DISCORD_LIMITER";
/// One object for the whole deployment: Discord limits the bot, not a user or a worker.
pub const LIMITER_OBJECT: &str = "discord-bot";

pub struct DurableLimiter {
    /// The object's stub as the runtime gives it: a plain `fetch(request)` on it and on the answer keeps
    /// `worker`'s request and response wrappers (their `cf` serializer, stream readers: ~10 KB of wasm)
    /// out of the api worker.
    stub: Result<SendWrapper<DurableObject>, String>,
}

fn js_error(what: &str, error: JsValue) -> String {
    format!("{what}: {}", error.as_string().unwrap_or_else(|| format!("{error:?}")))
}

impl DurableLimiter {
    pub fn from_env(env: &Env) -> Self {
        let stub = env
            .durable_object(LIMITER_BINDING)
            .and_then(|namespace| namespace.get_by_name(LIMITER_OBJECT))
            .map(|stub| SendWrapper::new(stub.into_rpc::<DurableObject>()))
            .map_err(|e| format!("the {LIMITER_BINDING} binding: {e}"));
        Self { stub }
    }

    async fn call(&self, exchange: &Exchange) -> Result<ExchangeAnswer, String> {
        let stub = self.stub.as_ref().map_err(Clone::clone)?;
        let body = serde_json::to_string(exchange).map_err(|e| format!("encoding the exchange: {e}"))?;
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_body(&JsValue::from_str(&body));
        let request = web_sys::Request::new_with_str_and_init("https://discord-limiter/exchange", &init)
            .map_err(|e| js_error("building the request", e))?;
        let promise = stub.fetch_with_request(&request).map_err(|e| js_error("calling the limiter object", e))?;
        let response: web_sys::Response = JsFuture::from(promise)
            .await
            .map_err(|e| js_error("the limiter object failed", e))?
            .dyn_into()
            .map_err(|e| js_error("the limiter object answered no response", e))?;
        let text = response.text().map_err(|e| js_error("reading the limiter's answer", e))?;
        let text = JsFuture::from(text).await.map_err(|e| js_error("reading the limiter's answer", e))?;
        let text = text.as_string().unwrap_or_default();
        if response.status() != 200 {
            return Err(format!("the limiter object answered {}: {text}", response.status()));
        }
        ExchangeAnswer::decode(&text).ok_or_else(|| format!("the limiter's answer does not decode: {text:?}"))
    }
}

impl LimiterStore for DurableLimiter {
    fn exchange<'a>(
        &'a self,
        exchange: &'a Exchange,
    ) -> Pin<Box<dyn Future<Output = Result<ExchangeAnswer, String>> + Send + 'a>> {
        Box::pin(SendFuture::new(async move {
            let answer = self.call(exchange).await;
            if let Err(e) = &answer {
                worker::console_error!("discord limiter unavailable, Discord not called: {e}");
            }
            answer
        }))
    }

    fn is_subrequest(&self) -> bool {
        true
    }
}

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
use worker::send::SendFuture;
use worker::{Env, Method, Request, RequestInit, Stub};

/// The binding of the `DiscordLimiter` namespace in both workers' `wrangler.toml`.
pub const LIMITER_BINDING: &str = "DISCORD_LIMITER";
/// One object for the whole deployment: Discord limits the bot, not a user or a worker.
pub const LIMITER_OBJECT: &str = "discord-bot";

pub struct DurableLimiter {
    stub: Result<Stub, String>,
}

impl DurableLimiter {
    pub fn from_env(env: &Env) -> Self {
        let stub = env
            .durable_object(LIMITER_BINDING)
            .and_then(|namespace| namespace.get_by_name(LIMITER_OBJECT))
            .map_err(|e| format!("the {LIMITER_BINDING} binding: {e}"));
        Self { stub }
    }

    async fn call(&self, exchange: &Exchange) -> Result<ExchangeAnswer, String> {
        let stub = self.stub.as_ref().map_err(Clone::clone)?;
        let body = serde_json::to_string(exchange).map_err(|e| format!("encoding the exchange: {e}"))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(body.into()));
        let request = Request::new_with_init("https://discord-limiter/exchange", &init).map_err(|e| e.to_string())?;
        let mut response =
            stub.fetch_with_request(request).await.map_err(|e| format!("the limiter object failed: {e}"))?;
        let text = response.text().await.map_err(|e| format!("reading the limiter's answer: {e}"))?;
        if response.status_code() != 200 {
            return Err(format!("the limiter object answered {}: {}", response.status_code(), text));
        }
        serde_json::from_str(&text).map_err(|e| format!("the limiter's answer does not decode: {e}"))
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

//! Clients sharing one limiter (as the workers share the Durable Object): what one sees, the others obey.

use crate::support::{alice, ctx, guild, role, Ctx};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tollgate_devstack::discord_seed as seed;
use tollgate_discord::permit::{Exchange, ExchangeAnswer};
use tollgate_discord::{DiscordClient, DiscordConfig, DiscordError, LimiterStore, LocalLimiter};

const MEMBER_ROUTE: &str = "GET /api/v10/guilds/{guild_id}/members/{user_id}";

fn client_on(ctx: &Ctx, limiter: Arc<dyn LimiterStore>) -> DiscordClient {
    DiscordClient::with_shared_limiter(
        DiscordConfig {
            api_base: ctx.devstack.discord_api_base(),
            bot_token: tollgate_core::Secret::new(seed::BOT_TOKEN),
        },
        ctx.clock.clone(),
        limiter,
    )
}

async fn calls(ctx: &Ctx) -> serde_json::Value {
    ctx.control(reqwest::Method::GET, "/_devstack/calls", None).await
}

#[tokio::test]
async fn a_global_429_seen_by_one_client_holds_every_route_of_every_client_sharing_the_limiter() {
    let ctx = ctx().await;
    let shared: Arc<dyn LimiterStore> = Arc::new(LocalLimiter::new(ctx.clock.clone()));
    let (role_sync, api) = (client_on(&ctx, shared.clone()), client_on(&ctx, shared));
    let body = json!({"limit": 1, "window_ms": 60_000, "global": true});
    ctx.control(reqwest::Method::POST, "/_devstack/rate-limit", Some(body)).await;
    role_sync.get_guild(guild()).await.unwrap();
    let limited = role_sync.guild_roles(guild()).await.unwrap_err();
    assert!(matches!(limited, DiscordError::RateLimited { .. }), "Discord's global 429: {limited:?}");

    let held = api.get_member(guild(), alice()).await.unwrap_err();
    assert!(matches!(held, DiscordError::RateLimited { .. }), "{held:?}");
    let calls = calls(&ctx).await;
    assert_eq!(calls.get(MEMBER_ROUTE), None, "the other client did not call Discord: {calls}");
}

#[tokio::test]
async fn a_throttled_member_read_reaches_discord_once_per_interval_until_a_role_change() {
    let ctx = ctx().await;
    ctx.join(&alice().to_string()).await;
    let interval = Duration::from_secs(15);
    for _ in 0..3 {
        let member = ctx.client.get_member_throttled(guild(), alice(), interval).await.unwrap();
        assert!(member.roles.is_empty());
    }
    assert_eq!(calls(&ctx).await[MEMBER_ROUTE], 1, "one read, then the kept answer");

    ctx.client.add_member_role(guild(), alice(), role(seed::VIP_ROLE_ID), "test").await.unwrap();
    let member = ctx.client.get_member_throttled(guild(), alice(), interval).await.unwrap();
    assert_eq!(member.roles, vec![role(seed::VIP_ROLE_ID)], "the role change made the kept answer stale");
    assert_eq!(calls(&ctx).await[MEMBER_ROUTE], 2);

    ctx.clock.advance(chrono::Duration::seconds(16));
    ctx.client.get_member_throttled(guild(), alice(), interval).await.unwrap();
    assert_eq!(calls(&ctx).await[MEMBER_ROUTE], 3, "a new interval, a new read");
}

/// A limiter that cannot be reached (the Durable Object down, its binding missing).
struct Unreachable;

impl LimiterStore for Unreachable {
    fn exchange<'a>(
        &'a self,
        _exchange: &'a Exchange,
    ) -> Pin<Box<dyn Future<Output = Result<ExchangeAnswer, String>> + Send + 'a>> {
        Box::pin(std::future::ready(Err("connection refused".to_owned())))
    }

    fn is_subrequest(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn without_its_limiter_the_client_calls_nothing_and_says_so_retryably() {
    let ctx = ctx().await;
    let client = client_on(&ctx, Arc::new(Unreachable));
    let error = client.get_guild(guild()).await.unwrap_err();
    assert!(matches!(error, DiscordError::LimiterUnavailable(_)), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(calls(&ctx).await, json!({}), "not one call to Discord");
}

use crate::support::{alice, ctx, guild, role};
use chrono::Duration;
use serde_json::json;
use tollgate_devstack::discord_seed as seed;
use tollgate_discord::DiscordError;

#[tokio::test]
async fn an_exhausted_bucket_is_not_called_again_until_it_resets() {
    let ctx = ctx().await;
    ctx.control(reqwest::Method::POST, "/_devstack/rate-limit", Some(json!({"limit": 2, "window_ms": 60_000}))).await;
    ctx.join(&alice().to_string()).await;
    ctx.client.get_member(guild(), alice()).await.unwrap();
    ctx.client.get_member(guild(), alice()).await.unwrap();
    let held = ctx.client.get_member(guild(), alice()).await.unwrap_err();
    assert!(matches!(held, DiscordError::RateLimited { .. }), "{held:?}");
    let calls = ctx.control(reqwest::Method::GET, "/_devstack/calls", None).await;
    assert_eq!(
        calls["GET /api/v10/guilds/{guild_id}/members/{user_id}"], 2,
        "the third call was held back by the client, not refused by Discord"
    );
    // Another route has its own bucket.
    ctx.client.add_member_role(guild(), alice(), role(seed::VIP_ROLE_ID), "test").await.unwrap();
    // Once the reset has passed (by the client's clock), the bucket is open again.
    ctx.control(reqwest::Method::POST, "/_devstack/rate-limit", Some(json!({"limit": 50, "window_ms": 1_000}))).await;
    ctx.clock.advance(Duration::seconds(61));
    ctx.client.get_member(guild(), alice()).await.unwrap();
}

#[tokio::test]
async fn a_429_from_discord_is_honoured_and_the_call_is_deferred_not_dropped() {
    let ctx = ctx().await;
    ctx.control(reqwest::Method::POST, "/_devstack/rate-limit", Some(json!({"limit": 1, "window_ms": 60_000}))).await;
    // A second client on the same bot (another isolate) spends the bucket without this one knowing.
    let other = tollgate_discord::DiscordClient::new(
        tollgate_discord::DiscordConfig {
            api_base: ctx.devstack.discord_api_base(),
            bot_token: tollgate_core::Secret::new(seed::BOT_TOKEN),
        },
        ctx.clock.clone(),
    );
    other.get_guild(guild()).await.unwrap();
    let limited = ctx.client.get_guild(guild()).await.unwrap_err();
    let DiscordError::RateLimited { retry_at_ms } = limited else { panic!("expected RateLimited, got {limited:?}") };
    let now_ms = ctx.clock_ms();
    assert!(retry_at_ms > now_ms + 50_000, "retry_after from the 429 body is honoured: {retry_at_ms} vs {now_ms}");
    assert!(
        matches!(ctx.client.get_guild(guild()).await.unwrap_err(), DiscordError::RateLimited { .. }),
        "held back locally now"
    );
    let calls = ctx.control(reqwest::Method::GET, "/_devstack/calls", None).await;
    assert_eq!(calls["GET /api/v10/guilds/{guild_id}"], 2);
}

impl crate::support::Ctx {
    fn clock_ms(&self) -> u64 {
        use tollgate_core::Clock;
        self.clock.now().timestamp_millis() as u64
    }
}

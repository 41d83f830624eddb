use crate::support::{context, order, TestContext};
use chrono::Duration;
use serde_json::json;
use tollgate_app::lookup::AccessReport;
use tollgate_app::role_sync::RoleSync;
use tollgate_core::{AppwriteId, Clock, GuildId, RoleId};
use tollgate_devstack::discord_seed as seed;
use tollgate_discord::DiscordClient;

async fn report(ctx: &TestContext, discord: &DiscordClient, user: &str) -> AccessReport {
    let sync = RoleSync::new(ctx.app(), discord, GuildId::parse(seed::GUILD_ID).unwrap());
    let user = ctx.client.get_user(&AppwriteId::parse(user).unwrap()).await.unwrap();
    sync.access_report(&user, true).await.unwrap()
}

async fn join(ctx: &TestContext, discord_id: &str) {
    let url = format!("{}/_devstack/guilds/{}/members/{discord_id}", ctx.devstack.discord_base_url(), seed::GUILD_ID);
    assert!(reqwest::Client::new().put(url).send().await.unwrap().status().is_success());
}

#[tokio::test]
async fn the_lookup_tells_every_state_a_user_can_be_in() {
    let ctx = context().await;
    let discord = ctx.discord();
    let roles = [RoleId::parse(seed::MEMBER_ROLE_ID).unwrap()];
    ctx.app().set_role_mapping("member", GuildId::parse(seed::GUILD_ID).unwrap(), &roles).await.unwrap();
    let link = |user: &'static str, discord_id: &'static str| {
        let client = ctx.client.clone();
        async move {
            client.upsert_document("crypto", "profiles", user, &json!({"discordUserId": discord_id})).await.unwrap()
        }
    };

    // Never paid.
    ctx.create_user("never", "never@example.com").await;
    let r = report(&ctx, &discord, "never").await;
    assert!(!r.has_access && r.subscription.is_none() && !r.paid_membership && r.discord.is_none());

    // Paid and linked, in the guild: roles live from Discord, last sync done.
    ctx.create_user("linked", "linked@example.com").await;
    link("linked", seed::TEST_USERS[0].0).await;
    join(&ctx, seed::TEST_USERS[0].0).await;
    ctx.app().ingest_sellapp(&order("order.completed", 8_001, "linked@example.com")).await.unwrap();
    RoleSync::new(ctx.app(), &discord, GuildId::parse(seed::GUILD_ID).unwrap())
        .sync_user(&AppwriteId::parse("linked").unwrap())
        .await
        .unwrap();
    let r = report(&ctx, &discord, "linked").await;
    assert!(r.has_access && r.paid_membership);
    assert_eq!(r.plan.as_deref(), Some("member"));
    assert_eq!(r.discord_managed_roles, Some(vec![seed::MEMBER_ROLE_ID.to_owned()]));
    assert_eq!(r.last_sync.as_ref().map(|j| j["status"].clone()), Some(json!("done")));

    // Paid, linked, not in the guild.
    ctx.create_user("outside", "outside@example.com").await;
    link("outside", seed::TEST_USERS[1].0).await;
    ctx.app().ingest_sellapp(&order("order.completed", 8_002, "outside@example.com")).await.unwrap();
    RoleSync::new(ctx.app(), &discord, GuildId::parse(seed::GUILD_ID).unwrap())
        .sync_user(&AppwriteId::parse("outside").unwrap())
        .await
        .unwrap();
    let r = report(&ctx, &discord, "outside").await;
    assert!(r.has_access && r.discord_managed_roles.is_none());
    assert_eq!(r.last_sync.as_ref().map(|j| j["outcome"].clone()), Some(json!("not_in_guild")));

    // Expired (past the grace period).
    ctx.create_user("expired", "expired@example.com").await;
    let email = tollgate_core::Email::parse("expired@example.com").unwrap();
    let ended = ctx.clock.now() - Duration::days(3);
    ctx.app().admin_grant(&email, "member", Some(ended)).await.unwrap();
    let r = report(&ctx, &discord, "expired").await;
    assert!(!r.has_access && r.subscription.is_some());
    assert_eq!(r.entitlements[0]["status"], "ended");

    // A pending entitlement: bought before the account existed, claimed as the user is seen.
    ctx.app().ingest_sellapp(&order("order.completed", 8_004, "late@example.com")).await.unwrap();
    ctx.create_user("late", "late@example.com").await;
    let r = report(&ctx, &discord, "late").await;
    assert!(r.pending_entitlements.is_empty() && r.entitlements.len() == 1);
    assert!(r.has_access && r.claimed_now == 1, "seeing the user claimed the purchase");
    assert!(!r.paid_membership, "projected by the role sync the claim queued, not by the read");
    ctx.project("late").await;
    let r = report(&ctx, &discord, "late").await;
    assert!(r.has_access && r.paid_membership && r.claimed_now == 0);

    // Bought with an email whose account has not verified it: waiting, not given.
    ctx.app().ingest_sellapp(&order("order.completed", 8_005, "unproven@example.com")).await.unwrap();
    ctx.create_unverified_user("unproven", "unproven@example.com").await;
    let r = report(&ctx, &discord, "unproven").await;
    assert!(!r.has_access && !r.paid_membership && r.entitlements.is_empty());
    assert_eq!(r.pending_entitlements.len(), 1);
    assert_eq!(r.user["emailVerification"], false);

    // A failed sync: the mapping points above the bot.
    let above = [RoleId::parse(seed::ABOVE_BOT_ROLE_ID).unwrap()];
    ctx.app().set_role_mapping("member", GuildId::parse(seed::GUILD_ID).unwrap(), &above).await.unwrap();
    ctx.clock.advance(Duration::minutes(1));
    RoleSync::new(ctx.app(), &discord, GuildId::parse(seed::GUILD_ID).unwrap())
        .sync_user(&AppwriteId::parse("linked").unwrap())
        .await
        .unwrap();
    let r = report(&ctx, &discord, "linked").await;
    let job = r.last_sync.expect("a job");
    assert_eq!(job["status"], "failed");
    assert!(job["lastError"].as_str().unwrap_or_default().contains("50013"));
}

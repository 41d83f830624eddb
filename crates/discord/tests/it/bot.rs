use crate::support::{alice, ctx, ctx_with_token, guild, role};
use tollgate_devstack::discord_seed as seed;
use tollgate_discord::DiscordError;

#[tokio::test]
async fn the_seeded_guild_and_its_roles_are_read() {
    let ctx = ctx().await;
    let found = ctx.client.get_guild(guild()).await.unwrap();
    assert_eq!(found.name, "Tollgate Demo");
    let roles = ctx.client.guild_roles(guild()).await.unwrap();
    assert!(roles.iter().any(|r| r.id == role(seed::VIP_ROLE_ID) && r.position == 3));
}

#[tokio::test]
async fn roles_are_added_and_removed_and_a_non_member_is_unknown() {
    let ctx = ctx().await;
    let user = alice();
    assert_eq!(ctx.client.get_member(guild(), user).await.unwrap_err(), DiscordError::UnknownMember);
    assert_eq!(
        ctx.client.add_member_role(guild(), user, role(seed::VIP_ROLE_ID), "test").await.unwrap_err(),
        DiscordError::UnknownMember
    );
    ctx.join(&user.to_string()).await;
    ctx.client.add_member_role(guild(), user, role(seed::VIP_ROLE_ID), "Tollgate: paid plan").await.unwrap();
    ctx.client.add_member_role(guild(), user, role(seed::MODERATOR_ROLE_ID), "test").await.unwrap();
    let member = ctx.client.get_member(guild(), user).await.unwrap();
    assert_eq!(member.roles, vec![role(seed::VIP_ROLE_ID), role(seed::MODERATOR_ROLE_ID)]);
    ctx.client.remove_member_role(guild(), user, role(seed::VIP_ROLE_ID), "Tollgate: access ended").await.unwrap();
    assert_eq!(ctx.client.get_member(guild(), user).await.unwrap().roles, vec![role(seed::MODERATOR_ROLE_ID)]);
    ctx.leave(&user.to_string()).await;
    assert_eq!(ctx.client.get_member(guild(), user).await.unwrap_err(), DiscordError::UnknownMember);
}

#[tokio::test]
async fn a_role_above_the_bots_is_refused_with_50013_and_an_unknown_role_with_10011() {
    let ctx = ctx().await;
    let user = alice();
    ctx.join(&user.to_string()).await;
    let refused = ctx.client.add_member_role(guild(), user, role(seed::ABOVE_BOT_ROLE_ID), "test").await.unwrap_err();
    assert_eq!(refused, DiscordError::MissingPermissions);
    assert!(refused.needs_admin());
    assert_eq!(
        ctx.client.add_member_role(guild(), user, role("999"), "test").await.unwrap_err(),
        DiscordError::UnknownRole
    );
}

#[tokio::test]
async fn members_are_listed_in_id_order_a_page_at_a_time() {
    let ctx = ctx().await;
    for id in 2_000..2_025u64 {
        ctx.join(&id.to_string()).await;
    }
    let first = ctx.client.list_members(guild(), 10, None).await.unwrap();
    assert_eq!(first.len(), 10);
    let mut seen: Vec<u64> = first.iter().map(|m| m.user.id.get()).collect();
    let mut after = first.last().map(|m| m.user.id);
    loop {
        let page = ctx.client.list_members(guild(), 10, after).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|m| m.user.id);
        seen.extend(page.iter().map(|m| m.user.id.get()));
    }
    assert_eq!(seen.len(), 26, "25 users and the bot");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn a_wrong_bot_token_is_refused_once_and_then_nothing_more_is_sent() {
    let ctx = ctx_with_token("not-the-token").await;
    assert_eq!(ctx.client.get_guild(guild()).await.unwrap_err(), DiscordError::Unauthorized);
    assert_eq!(ctx.client.guild_roles(guild()).await.unwrap_err(), DiscordError::Unauthorized);
    let calls = ctx.control(reqwest::Method::GET, "/_devstack/calls", None).await;
    assert_eq!(calls["GET /api/v10/guilds/{guild_id}"], 1);
    assert!(
        calls.get("GET /api/v10/guilds/{guild_id}/roles").is_none(),
        "the second call never left the client: {calls}"
    );
}

use crate::support::{alice, ctx, guild};
use base64::Engine;
use sha2::{Digest, Sha256};
use tollgate_core::Secret;
use tollgate_devstack::discord_seed as seed;
use tollgate_discord::{AddMemberOutcome, DiscordError, OAuthApp};

const REDIRECT: &str = "http://127.0.0.1:3000/discord/callback";

fn app() -> OAuthApp {
    OAuthApp {
        client_id: seed::CLIENT_ID.to_owned(),
        client_secret: Secret::new(seed::CLIENT_SECRET),
        redirect_uri: REDIRECT.to_owned(),
    }
}

/// Follows devstack's authorize page as `user` and returns the code from the redirect.
async fn authorize(ctx: &crate::support::Ctx, user: &str, challenge: Option<&str>) -> String {
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", seed::CLIENT_ID),
        ("scope", "identify guilds.join"),
        ("state", "s1"),
        ("redirect_uri", REDIRECT),
        ("test_user", user),
    ];
    if let Some(challenge) = challenge {
        query.extend([("code_challenge", challenge), ("code_challenge_method", "S256")]);
    }
    let response = no_redirects
        .get(format!("{}/oauth2/authorize", ctx.devstack.discord_base_url()))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT) && location.contains("state=s1"), "{location}");
    let url = reqwest::Url::parse(&location).unwrap();
    url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).unwrap()
}

#[tokio::test]
async fn a_code_is_exchanged_once_the_user_read_and_added_to_the_guild() {
    let ctx = ctx().await;
    let user = alice();
    let code = authorize(&ctx, &user.to_string(), None).await;
    let token = ctx.client.exchange_code(&app(), &code, None).await.unwrap();
    assert_eq!((token.token_type.as_str(), token.expires_in), ("Bearer", 604_800));
    assert!(ctx.client.exchange_code(&app(), &code, None).await.is_err(), "a code works once");
    let me = ctx.client.current_user(&token.access_token).await.unwrap();
    assert_eq!((me.id, me.username.as_str()), (user, "alice"));
    assert_eq!(ctx.client.add_guild_member(guild(), user, &token.access_token).await.unwrap(), AddMemberOutcome::Added);
    assert_eq!(
        ctx.client.add_guild_member(guild(), user, &token.access_token).await.unwrap(),
        AddMemberOutcome::AlreadyMember
    );
    ctx.client.revoke_token(&app(), &token.access_token).await.unwrap();
    assert!(ctx.client.current_user(&token.access_token).await.is_err());
    ctx.client.get_guild(guild()).await.expect("a user's revoked token never stops the bot");
}

#[tokio::test]
async fn pkce_is_checked_and_a_refresh_gives_a_new_token() {
    let ctx = ctx().await;
    let verifier = "a-verifier-that-is-at-least-forty-three-characters-long-123";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let code = authorize(&ctx, &alice().to_string(), Some(&challenge)).await;
    assert!(ctx
        .client
        .exchange_code(&app(), &code, Some("wrong-verifier-wrong-verifier-wrong-verifier"))
        .await
        .is_err());
    let code = authorize(&ctx, &alice().to_string(), Some(&challenge)).await;
    let token = ctx.client.exchange_code(&app(), &code, Some(verifier)).await.unwrap();
    let refreshed = ctx.client.refresh_token(&app(), token.refresh_token.as_deref().unwrap()).await.unwrap();
    assert_ne!(refreshed.access_token, token.access_token);
}

#[tokio::test]
async fn adding_a_member_with_a_token_of_someone_else_is_an_invalid_oauth_token() {
    let ctx = ctx().await;
    let code = authorize(&ctx, seed::TEST_USERS[1].0, None).await;
    let bobs = ctx.client.exchange_code(&app(), &code, None).await.unwrap();
    assert_eq!(
        ctx.client.add_guild_member(guild(), alice(), &bobs.access_token).await.unwrap_err(),
        DiscordError::InvalidOAuthToken
    );
}

use crate::support::{context, order, TestContext};
use chrono::Duration;
use serde_json::Value;
use tollgate_app::link_discord::{LinkError, LINK_STATE_TTL_MINUTES, STATE_PRUNE_MARGIN_MINUTES};
use tollgate_app::role_sync::RoleSync;
use tollgate_core::{AppwriteId, DiscordUserId, GuildId, RoleId, Secret};
use tollgate_devstack::discord_seed as seed;
use tollgate_discord::{DiscordClient, OAuthApp};

const REDIRECT: &str = "http://127.0.0.1:8788/discord/callback";

struct Linking {
    ctx: TestContext,
    discord: DiscordClient,
    oauth: OAuthApp,
    authorize: String,
}

async fn linking() -> Linking {
    let ctx = context().await;
    let discord = ctx.discord();
    let oauth = OAuthApp {
        client_id: seed::CLIENT_ID.into(),
        client_secret: Secret::new(seed::CLIENT_SECRET),
        redirect_uri: REDIRECT.into(),
    };
    let authorize = format!("{}/oauth2/authorize", ctx.devstack.discord_base_url());
    let world = Linking { ctx, discord, oauth, authorize };
    let app = world.ctx.app();
    let roles = [RoleId::parse(seed::MEMBER_ROLE_ID).unwrap(), RoleId::parse(seed::VIP_ROLE_ID).unwrap()];
    app.set_role_mapping("member", GuildId::parse(seed::GUILD_ID).unwrap(), &roles).await.unwrap();
    world
}

impl Linking {
    fn sync(&self) -> RoleSync<'_, tollgate_core::FixedClock> {
        RoleSync::new(self.ctx.app(), &self.discord, GuildId::parse(seed::GUILD_ID).unwrap())
    }

    async fn paid_user(&self, id: &str, order_id: u64) -> AppwriteId {
        self.ctx.create_user(id, &format!("{id}@example.com")).await;
        self.ctx.app().ingest_sellapp(&order("order.completed", order_id, &format!("{id}@example.com"))).await.unwrap();
        AppwriteId::parse(id).unwrap()
    }

    /// Starts a link and approves it in devstack as `discord_user`: `(code, state, browser key)`.
    async fn approve(&self, user: &AppwriteId, discord_user: &str) -> (String, String, String) {
        let start = self.sync().start_link(user, &self.oauth, &self.authorize).await.unwrap();
        let url = start.url;
        assert!(url.contains("scope=identify%20guilds.join") && url.contains("code_challenge_method=S256"), "{url}");
        let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let response = no_redirects.get(format!("{url}&test_user={discord_user}")).send().await.unwrap();
        let location = reqwest::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        let param = |name: &str| location.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap();
        (param("code"), param("state"), start.browser_key)
    }

    async fn profile(&self, user: &str) -> Option<Value> {
        self.ctx.document("profiles", user).await
    }

    /// What the role-sync worker does when the api worker prompts it after a link: the queued job, now.
    async fn role_sync_prompted(&self, user: &AppwriteId) {
        let job = self.ctx.document("role_sync_jobs", user.as_str()).await.expect("the link queued a role sync");
        assert_eq!(job["status"], "pending");
        self.sync().sync_user(user).await.expect("role sync");
    }

    async fn roles_of(&self, discord_user: &str) -> Vec<RoleId> {
        self.discord
            .get_member(GuildId::parse(seed::GUILD_ID).unwrap(), DiscordUserId::parse(discord_user).unwrap())
            .await
            .map(|m| m.roles)
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn a_paid_user_links_joins_the_guild_with_the_plans_roles_and_unlinks() {
    let l = linking().await;
    let alice = seed::TEST_USERS[0].0;
    let user = l.paid_user("linker", 7_001).await;
    let (code, state, browser) = l.approve(&user, alice).await;
    let linked = l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await.unwrap();
    assert_eq!((linked.discord_user.to_string(), linked.username.as_str()), (alice.to_owned(), "alice"));
    let profile = l.profile("linker").await.expect("profile");
    assert_eq!(profile["discordUserId"], alice);
    assert!(profile["discordLinkedAt"].is_string());
    assert!(l.roles_of(alice).await.is_empty(), "the link writes no roles: it queues the user's role sync");
    l.role_sync_prompted(&user).await;
    let mut roles = l.roles_of(alice).await;
    roles.sort();
    assert_eq!(roles, vec![RoleId::parse(seed::MEMBER_ROLE_ID).unwrap(), RoleId::parse(seed::VIP_ROLE_ID).unwrap()]);

    assert!(l.sync().unlink(&user).await.unwrap());
    assert!(l.roles_of(alice).await.is_empty(), "managed roles removed");
    assert!(l.profile("linker").await.expect("profile")["discordUserId"].is_null());
    assert!(!l.sync().unlink(&user).await.unwrap(), "unlinking again changes nothing");
}

#[tokio::test]
async fn reused_expired_forged_and_foreign_states_are_refused_without_writes() {
    let l = linking().await;
    let user = l.paid_user("stater", 7_002).await;
    let other = AppwriteId::parse("someone-else").unwrap();
    let (code, state, browser) = l.approve(&user, seed::TEST_USERS[0].0).await;
    assert!(
        matches!(
            l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, Some(&other)).await,
            Err(LinkError::StateInvalid)
        ),
        "bound to another user"
    );
    assert!(
        matches!(
            l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await,
            Err(LinkError::StateInvalid)
        ),
        "a state works once"
    );
    assert!(matches!(
        l.sync().finish_link(&code, "forged", Some(&browser), &l.oauth, None).await,
        Err(LinkError::StateInvalid)
    ));
    let (code, state, browser) = l.approve(&user, seed::TEST_USERS[0].0).await;
    l.ctx.clock.advance(Duration::minutes(11));
    assert!(
        matches!(
            l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await,
            Err(LinkError::StateInvalid)
        ),
        "expired"
    );
    assert!(l.profile("stater").await.is_none(), "nothing written");
}

#[tokio::test]
async fn a_link_started_in_another_browser_is_refused_spent_and_writes_nothing() {
    let l = linking().await;
    // The attacker starts a link with their own account and sends the authorize URL to the victim, whose
    // browser approves it: the victim's browser has no cookie for that state, or another one.
    let attacker = l.paid_user("attacker", 7_020).await;
    let (code, state, _attackers_key) = l.approve(&attacker, seed::TEST_USERS[0].0).await;
    let refused = l.sync().finish_link(&code, &state, Some("the-victims-own-key"), &l.oauth, None).await;
    assert!(matches!(refused, Err(LinkError::BrowserMismatch)), "{refused:?}");
    assert_eq!(LinkError::BrowserMismatch.reason(), "browser_mismatch");
    let (code, state, attackers_key) = l.approve(&attacker, seed::TEST_USERS[0].0).await;
    let refused = l.sync().finish_link(&code, &state, None, &l.oauth, None).await;
    assert!(matches!(refused, Err(LinkError::BrowserMismatch)), "no cookie at all: {refused:?}");
    let again = l.sync().finish_link(&code, &state, Some(&attackers_key), &l.oauth, None).await;
    assert!(matches!(again, Err(LinkError::StateInvalid)), "the refused state is spent: {again:?}");
    assert!(l.profile("attacker").await.is_none(), "nothing written");
    assert!(l.roles_of(seed::TEST_USERS[0].0).await.is_empty());
}

#[tokio::test]
async fn a_discord_account_linked_elsewhere_is_refused_and_a_failed_exchange_writes_nothing() {
    let l = linking().await;
    let bob = seed::TEST_USERS[1].0;
    let first = l.paid_user("first", 7_003).await;
    let (code, state, browser) = l.approve(&first, bob).await;
    l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await.unwrap();
    let second = l.paid_user("second", 7_004).await;
    let (code, state, browser) = l.approve(&second, bob).await;
    assert!(matches!(
        l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await,
        Err(LinkError::DiscordAccountTaken)
    ));
    assert!(l.profile("second").await.is_none());

    let (_, state, browser) = l.approve(&second, seed::TEST_USERS[2].0).await;
    assert!(matches!(
        l.sync().finish_link("not-a-code", &state, Some(&browser), &l.oauth, None).await,
        Err(LinkError::Discord(_))
    ));
    assert!(l.profile("second").await.is_none(), "nothing half-written");
}

#[tokio::test]
async fn relinking_to_another_discord_account_strips_the_old_ones_roles() {
    let l = linking().await;
    let (alice, carol) = (seed::TEST_USERS[0].0, seed::TEST_USERS[2].0);
    let user = l.paid_user("mover", 7_005).await;
    let (code, state, browser) = l.approve(&user, alice).await;
    l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await.unwrap();
    l.role_sync_prompted(&user).await;
    assert_eq!(l.roles_of(alice).await.len(), 2);
    let (code, state, browser) = l.approve(&user, carol).await;
    l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await.unwrap();
    assert!(l.roles_of(alice).await.is_empty(), "the old account lost the managed roles at once");
    l.role_sync_prompted(&user).await;
    assert_eq!(l.roles_of(carol).await.len(), 2);
}

#[tokio::test]
async fn two_users_linking_one_discord_account_at_once_end_with_exactly_one_link() {
    let l = linking().await;
    let alice = seed::TEST_USERS[0].0;
    let (first, second) = (l.paid_user("racer1", 7_010).await, l.paid_user("racer2", 7_011).await);
    let (code1, state1, browser1) = l.approve(&first, alice).await;
    let (code2, state2, browser2) = l.approve(&second, alice).await;
    let (sync1, sync2) = (l.sync(), l.sync());
    let (one, two) = tokio::join!(
        sync1.finish_link(&code1, &state1, Some(&browser1), &l.oauth, None),
        sync2.finish_link(&code2, &state2, Some(&browser2), &l.oauth, None)
    );
    let won: Vec<&str> = [(&one, "racer1"), (&two, "racer2")]
        .into_iter()
        .filter_map(|(result, user)| result.is_ok().then_some(user))
        .collect();
    assert_eq!(won.len(), 1, "exactly one wins: {one:?} / {two:?}");
    let lost = if won[0] == "racer1" { &two } else { &one };
    assert!(matches!(lost, Err(LinkError::DiscordAccountTaken)), "{lost:?}");
    let mut holders = Vec::new();
    for user in ["racer1", "racer2"] {
        if l.profile(user).await.is_some_and(|p| p["discordUserId"] == alice) {
            holders.push(user);
        }
    }
    assert_eq!(holders, won, "only the winner's profile holds the account");
}

#[tokio::test]
async fn unlinking_frees_the_account_at_once_and_a_claim_left_by_an_interrupted_unlink_expires() {
    let l = linking().await;
    let bob = seed::TEST_USERS[1].0;
    let (first, second) = (l.paid_user("holder", 7_012).await, l.paid_user("next", 7_013).await);
    let (code, state, browser) = l.approve(&first, bob).await;
    l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await.unwrap();
    assert!(l.sync().unlink(&first).await.unwrap());
    let (code, state, browser) = l.approve(&second, bob).await;
    l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await.expect("free again after the unlink");

    // An unlink that stopped after clearing the profile leaves the claim behind.
    l.ctx
        .client
        .update_document("crypto", "profiles", "next", &serde_json::json!({"discordUserId": null}))
        .await
        .unwrap();
    let (code, state, browser) = l.approve(&first, bob).await;
    assert!(
        matches!(
            l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await,
            Err(LinkError::DiscordAccountTaken)
        ),
        "a fresh claim may be a link in flight"
    );
    l.ctx.clock.advance(Duration::minutes(tollgate_app::link_discord::CLAIM_SETTLE_MINUTES + 1));
    let (code, state, browser) = l.approve(&first, bob).await;
    l.sync()
        .finish_link(&code, &state, Some(&browser), &l.oauth, None)
        .await
        .expect("a claim nobody holds is taken over");
    assert_eq!(l.profile("holder").await.expect("profile")["discordUserId"], bob);
}

#[tokio::test]
async fn a_role_sync_that_fails_after_the_profile_is_written_still_counts_as_linked() {
    let l = linking().await;
    let carol = seed::TEST_USERS[2].0;
    let user = l.paid_user("hiccup", 7_014).await;
    let (code, state, browser) = l.approve(&user, carol).await;
    l.ctx
        .set_faults(serde_json::json!({"rate": 1.0, "status": 503, "paths": ["/v1/databases/crypto/collections/role_sync_jobs"]}))
        .await;
    let linked = l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await.expect("linked");
    assert!(linked.role_sync_error.is_some(), "the hiccup is reported to the caller, for its log");
    assert_eq!(l.profile("hiccup").await.expect("profile")["discordUserId"], carol);
}

async fn link_states(l: &Linking) -> usize {
    l.ctx.count(&l.ctx.settings.collections.oauth_states, &[tollgate_appwrite::Query::limit(100)]).await
}

#[tokio::test]
async fn the_webhook_cron_prunes_expired_link_states_and_keeps_live_ones() {
    let l = linking().await;
    let user = l.paid_user("pruner", 7_101).await;
    l.sync().start_link(&user, &l.oauth, &l.authorize).await.unwrap();
    // Expired 10 minutes ago: still within the margin.
    l.ctx.clock.advance(Duration::minutes(LINK_STATE_TTL_MINUTES + STATE_PRUNE_MARGIN_MINUTES));
    let (code, state, browser) = l.approve(&user, seed::TEST_USERS[0].0).await;
    assert_eq!(l.ctx.app().run_scheduled(None).await.pruned_oauth_states.deleted, 0);
    assert_eq!(link_states(&l).await, 2);
    l.ctx.clock.advance(Duration::minutes(1));
    let report = l.ctx.app().run_scheduled(None).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.pruned_oauth_states.deleted, 1);
    assert_eq!(link_states(&l).await, 1);
    // The live state still links.
    l.sync().finish_link(&code, &state, Some(&browser), &l.oauth, None).await.unwrap();
}

#[tokio::test]
async fn without_bulk_delete_expired_link_states_are_pruned_a_bounded_number_per_run() {
    let l = linking().await;
    l.ctx.play_appwrite_version("1.5").await;
    let user = AppwriteId::parse("many-starts").unwrap();
    for _ in 0..5 {
        l.sync().start_link(&user, &l.oauth, &l.authorize).await.unwrap();
    }
    l.ctx.clock.advance(Duration::minutes(LINK_STATE_TTL_MINUTES + STATE_PRUNE_MARGIN_MINUTES + 1));
    l.sync().start_link(&user, &l.oauth, &l.authorize).await.unwrap();
    let first = l.ctx.app().prune_expired_oauth_states(3).await.unwrap();
    assert_eq!((first.deleted, first.more_remain), (3, true));
    let second = l.ctx.app().prune_expired_oauth_states(3).await.unwrap();
    assert_eq!((second.deleted, second.more_remain), (2, false));
    assert_eq!(link_states(&l).await, 1, "the unexpired state is kept");
}

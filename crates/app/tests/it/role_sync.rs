use crate::support::{context, order, TestContext};
use chrono::Duration;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use tollgate_app::role_sync::{RoleSync, SyncOutcome};
use tollgate_core::{AppwriteId, DiscordUserId, GuildId, RoleId, Secret};
use tollgate_devstack::discord_seed as seed;
use tollgate_discord::{DiscordClient, DiscordConfig};

fn guild() -> GuildId {
    GuildId::parse(seed::GUILD_ID).unwrap()
}

fn roles(ids: &[&str]) -> BTreeSet<RoleId> {
    ids.iter().map(|id| RoleId::parse(id).unwrap()).collect()
}

pub(crate) struct World {
    pub(crate) ctx: TestContext,
    pub(crate) discord: DiscordClient,
    http: reqwest::Client,
}

impl World {
    pub(crate) async fn new() -> Self {
        Self::with_token(seed::BOT_TOKEN).await
    }

    async fn with_token(token: &str) -> Self {
        let ctx = context().await;
        let discord = DiscordClient::new(
            DiscordConfig { api_base: ctx.devstack.discord_api_base(), bot_token: Secret::new(token) },
            ctx.clock.clone(),
        );
        let world = Self { ctx, discord, http: reqwest::Client::new() };
        world.map("member", &[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID]).await;
        world
    }

    pub(crate) fn sync(&self) -> RoleSync<'_, tollgate_core::FixedClock> {
        RoleSync::new(self.ctx.app(), &self.discord, guild())
    }

    async fn map(&self, plan: &str, role_ids: &[&str]) {
        let data =
            json!({"plan": plan, "guildId": seed::GUILD_ID, "roleIdsJson": serde_json::to_string(role_ids).unwrap()});
        self.ctx.client.upsert_document("crypto", "discord_role_mappings", plan, &data).await.unwrap();
    }

    async fn discord_control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.ctx.devstack.discord_base_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}");
        response.json().await.unwrap_or(Value::Null)
    }

    pub(crate) async fn join(&self, discord_id: &str) {
        self.discord_control(
            reqwest::Method::PUT,
            &format!("/_devstack/guilds/{}/members/{discord_id}", seed::GUILD_ID),
            None,
        )
        .await;
    }

    /// A user with an account, a linked Discord account and (if `paid`) an active purchase.
    pub(crate) async fn linked_user(&self, user: &str, discord_id: &str, paid: bool) -> AppwriteId {
        self.ctx.create_user(user, &format!("{user}@example.com")).await;
        self.ctx
            .client
            .upsert_document("crypto", "profiles", user, &json!({"discordUserId": discord_id}))
            .await
            .unwrap();
        if paid {
            static NEXT_ORDER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(10_000);
            let order_id = NEXT_ORDER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let email = format!("{user}@example.com");
            let outcome = self.ctx.app().ingest_sellapp(&order("order.completed", order_id, &email)).await;
            assert!(matches!(outcome, Ok(tollgate_app::IngestOutcome::Applied { .. })), "{outcome:?}");
        }
        AppwriteId::parse(user).unwrap()
    }

    pub(crate) async fn member_roles(&self, discord_id: &str) -> BTreeSet<RoleId> {
        self.discord
            .get_member(guild(), DiscordUserId::parse(discord_id).unwrap())
            .await
            .unwrap()
            .roles
            .into_iter()
            .collect()
    }

    async fn job(&self, user: &str) -> Value {
        self.ctx.document("role_sync_jobs", user).await.expect("a job document")
    }
}

#[tokio::test]
async fn a_paying_member_gets_exactly_the_plans_roles_and_loses_only_them_on_dispute() {
    let w = World::new().await;
    let alice = seed::TEST_USERS[0].0;
    w.join(alice).await;
    w.discord
        .add_member_role(
            guild(),
            DiscordUserId::parse(alice).unwrap(),
            RoleId::parse(seed::MODERATOR_ROLE_ID).unwrap(),
            "test",
        )
        .await
        .unwrap();
    let user = w.linked_user("alice", alice, true).await;

    let outcome = w.sync().sync_user(&user).await.unwrap();
    assert!(matches!(outcome, SyncOutcome::Applied { added: 2, removed: 0, .. }), "{outcome:?}");
    assert_eq!(w.member_roles(alice).await, roles(&[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID, seed::MODERATOR_ROLE_ID]));
    assert_eq!(w.job("alice").await["status"], "done");
    assert!(
        matches!(w.sync().sync_user(&user).await.unwrap(), SyncOutcome::InSync { .. }),
        "a second sync changes nothing"
    );

    let sub = w.ctx.document("subscriptions", "alice").await.expect("subscription");
    let order_id: u64 = sub["sellappOrderId"].as_str().unwrap().parse().unwrap();
    w.ctx.app().ingest_sellapp(&order("order.disputed", order_id, "alice@example.com")).await.unwrap();
    let outcome = w.sync().sync_user(&user).await.unwrap();
    assert!(matches!(outcome, SyncOutcome::Applied { added: 0, removed: 2, .. }), "{outcome:?}");
    assert_eq!(w.member_roles(alice).await, roles(&[seed::MODERATOR_ROLE_ID]), "the unmanaged role stays");
}

#[tokio::test]
async fn a_member_not_in_the_guild_is_noted_and_granted_by_reconciliation_when_they_join() {
    let w = World::new().await;
    let bob = seed::TEST_USERS[1].0;
    let user = w.linked_user("bob", bob, true).await;
    assert!(matches!(w.sync().sync_user(&user).await.unwrap(), SyncOutcome::NotInGuild { .. }));
    let job = w.job("bob").await;
    assert_eq!((job["status"].as_str(), job["outcome"].as_str()), (Some("done"), Some("not_in_guild")));

    w.join(bob).await;
    let report = w.sync().reconcile_once(10).await.unwrap();
    assert!(report.pass_finished);
    assert_eq!(w.member_roles(bob).await, roles(&[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID]));

    // A role taken away by hand comes back on the next reconciliation.
    w.discord
        .remove_member_role(
            guild(),
            DiscordUserId::parse(bob).unwrap(),
            RoleId::parse(seed::VIP_ROLE_ID).unwrap(),
            "test",
        )
        .await
        .unwrap();
    let report = w.sync().reconcile_once(10).await.unwrap();
    assert_eq!(report.role_changes, 1);
    assert_eq!(w.member_roles(bob).await, roles(&[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID]));
}

#[tokio::test]
async fn an_ended_entitlement_loses_its_roles_and_paid_membership_once_the_grace_period_is_over() {
    let w = World::new().await;
    let carol = seed::TEST_USERS[2].0;
    w.join(carol).await;
    let user = w.linked_user("carol", carol, false).await;
    let end = chrono::DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let email = tollgate_core::Email::parse("carol@example.com").unwrap();
    w.ctx.app().admin_grant(&email, "member", Some(end)).await.unwrap();
    w.sync().sync_user(&user).await.unwrap();
    assert!(w.ctx.is_paid("carol").await);
    w.ctx.clock.advance(Duration::days(1));
    let report = w.sync().reconcile_once(10).await.unwrap();
    assert_eq!(w.member_roles(carol).await.len(), 2, "still within the grace period");
    assert!(report.access_drift.queued.is_empty());
    w.ctx.clock.advance(Duration::days(2));
    let report = w.sync().reconcile_once(10).await.unwrap();
    assert!(w.member_roles(carol).await.is_empty(), "ended plus grace: roles revoked");
    assert_eq!(report.access_drift.queued, vec!["carol".to_owned()], "membership and document drifted");
    w.sync().run_due_jobs(10).await.unwrap();
    assert!(!w.ctx.is_paid("carol").await, "the paid membership goes with the roles");
    let sub = w.ctx.document("subscriptions", "carol").await.expect("subscription");
    assert_eq!(sub["status"], "inactive");
    assert_eq!(w.sync().reconcile_once(10).await.unwrap().access_drift.queued.len(), 0, "in sync again");
}

#[tokio::test]
async fn a_role_above_the_bot_fails_with_an_actionable_message_and_no_retry() {
    let w = World::new().await;
    w.map("member", &[seed::ABOVE_BOT_ROLE_ID]).await;
    let alice = seed::TEST_USERS[0].0;
    w.join(alice).await;
    let user = w.linked_user("alice", alice, true).await;
    let outcome = w.sync().sync_user(&user).await.unwrap();
    let SyncOutcome::Failed { message } = outcome else { panic!("expected Failed, got {outcome:?}") };
    assert!(message.contains("50013") && message.contains("highest role"), "{message}");
    let job = w.job("alice").await;
    assert_eq!(job["status"], "failed");
    assert!(job["lastError"].as_str().unwrap_or_default().contains("Manage Roles"));
    assert!(w.sync().run_due_jobs(10).await.unwrap().is_empty(), "a failed job is not retried by itself");
}

#[tokio::test]
async fn rate_limited_syncs_are_deferred_to_the_time_discord_names_and_then_converge() {
    let w = World::new().await;
    let alice = seed::TEST_USERS[0].0;
    w.join(alice).await;
    let user = w.linked_user("alice", alice, true).await;
    w.discord_control(reqwest::Method::POST, "/_devstack/rate-limit", Some(json!({"limit": 1, "window_ms": 30_000})))
        .await;
    let outcome = w.sync().sync_user(&user).await.unwrap();
    let SyncOutcome::Deferred { retry_at, .. } = outcome else { panic!("expected Deferred, got {outcome:?}") };
    assert!(retry_at > w.ctx.clock_now());
    assert_eq!(w.job("alice").await["status"], "pending");
    assert!(w.sync().run_due_jobs(10).await.unwrap().is_empty(), "not due before retry_after");

    w.discord_control(reqwest::Method::POST, "/_devstack/rate-limit", Some(json!({"limit": 50, "window_ms": 1_000})))
        .await;
    w.ctx.clock.advance(Duration::seconds(31));
    let ran = w.sync().run_due_jobs(10).await.unwrap();
    assert_eq!(ran.len(), 1);
    assert_eq!(w.member_roles(alice).await, roles(&[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID]));
    assert_eq!(w.job("alice").await["status"], "done");
}

#[tokio::test]
async fn a_wrong_bot_token_stops_syncing_and_says_so() {
    let w = World::with_token("wrong-token").await;
    let alice = seed::TEST_USERS[0].0;
    w.join(alice).await;
    let user = w.linked_user("alice", alice, true).await;
    let SyncOutcome::Failed { message } = w.sync().sync_user(&user).await.unwrap() else { panic!("expected Failed") };
    assert!(message.contains("DISCORD_BOT_TOKEN"), "{message}");
}

#[tokio::test]
async fn reconciling_a_guild_in_the_right_state_costs_one_list_call_per_thousand_members_and_no_writes() {
    let w = World::new().await;
    for i in 0..2_099u64 {
        w.join(&(3_000_000 + i).to_string()).await;
    }
    w.discord_control(reqwest::Method::DELETE, "/_devstack/calls", None).await;
    let report = w.sync().reconcile_once(10).await.unwrap();
    assert_eq!((report.members_seen, report.role_changes), (2_100, 0));
    let calls = w.discord_control(reqwest::Method::GET, "/_devstack/calls", None).await;
    assert_eq!(calls["GET /api/v10/guilds/{guild_id}/members"], 3);
    assert_eq!(calls.as_object().map(|c| c.len()), Some(1), "no other Discord call: {calls}");

    // Drift: 15 unlinked members hold a managed role they should not have.
    for i in 0..15u64 {
        let id = DiscordUserId::parse(&(3_000_000 + i).to_string()).unwrap();
        w.discord.add_member_role(guild(), id, RoleId::parse(seed::VIP_ROLE_ID).unwrap(), "drift").await.unwrap();
    }
    w.discord_control(reqwest::Method::DELETE, "/_devstack/calls", None).await;
    let report = w.sync().reconcile_once(10).await.unwrap();
    assert_eq!(report.role_changes, 15);
    let calls = w.discord_control(reqwest::Method::GET, "/_devstack/calls", None).await;
    assert_eq!(calls["DELETE /api/v10/guilds/{guild_id}/members/{user_id}/roles/{role_id}"], 15);
}

#[tokio::test]
async fn with_discord_answering_429_or_503_to_a_share_of_calls_every_job_still_converges() {
    let w = World::new().await;
    let mut users = Vec::new();
    for (i, (discord_id, _)) in seed::TEST_USERS.iter().enumerate() {
        w.join(discord_id).await;
        users.push((w.linked_user(&format!("flaky{i}"), discord_id, true).await, *discord_id));
    }
    for status in [429, 503] {
        w.discord_control(
            reqwest::Method::POST,
            "/_devstack/faults",
            Some(json!({"rate": 0.5, "status": status, "paths": ["/api/v10/guilds"]})),
        )
        .await;
        for (user, _) in &users {
            w.ctx.app().request_role_sync(user).await.unwrap();
        }
        for _ in 0..40 {
            w.sync().run_due_jobs(10).await.unwrap();
            w.ctx.clock.advance(Duration::seconds(61));
        }
        w.discord_control(reqwest::Method::POST, "/_devstack/faults", Some(json!({"rate": 0}))).await;
        for (user, discord_id) in &users {
            assert_eq!(
                w.member_roles(discord_id).await,
                roles(&[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID]),
                "{user} under {status}s"
            );
            assert_eq!(w.job(user.as_str()).await["status"], "done", "{user}'s job under {status}s");
        }
        // Start the next round from no roles.
        for (_, discord_id) in &users {
            for role_id in [seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID] {
                w.discord
                    .remove_member_role(
                        guild(),
                        DiscordUserId::parse(discord_id).unwrap(),
                        RoleId::parse(role_id).unwrap(),
                        "reset",
                    )
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_ten_thousand_member_guild_in_order_costs_ten_list_calls_and_a_hundred_drifted_cost_a_hundred_writes() {
    let w = World::new().await;
    for i in 0..9_999u64 {
        w.join(&(4_000_000 + i).to_string()).await;
    }
    w.discord_control(reqwest::Method::DELETE, "/_devstack/calls", None).await;
    let report = w.sync().reconcile_once(10).await.unwrap();
    assert_eq!((report.members_seen, report.role_changes), (10_000, 0));
    let calls = w.discord_control(reqwest::Method::GET, "/_devstack/calls", None).await;
    assert_eq!(calls, json!({"GET /api/v10/guilds/{guild_id}/members": 10}), "ten list calls and nothing else");

    w.discord_control(
        reqwest::Method::POST,
        "/_devstack/rate-limit",
        Some(json!({"limit": 1_000, "window_ms": 1_000})),
    )
    .await;
    for i in 0..100u64 {
        let id = DiscordUserId::parse(&(4_000_000 + i * 97).to_string()).unwrap();
        w.discord.add_member_role(guild(), id, RoleId::parse(seed::MEMBER_ROLE_ID).unwrap(), "drift").await.unwrap();
    }
    w.discord_control(reqwest::Method::DELETE, "/_devstack/calls", None).await;
    // Room for the hundred writes within one window; rate limiting itself is tested above.
    w.discord_control(
        reqwest::Method::POST,
        "/_devstack/rate-limit",
        Some(json!({"limit": 1_000, "window_ms": 1_000})),
    )
    .await;
    let mut changes = 0;
    for _ in 0..3 {
        changes += w.sync().reconcile_once(10).await.unwrap().role_changes;
    }
    assert_eq!(changes, 100);
    let calls = w.discord_control(reqwest::Method::GET, "/_devstack/calls", None).await;
    assert_eq!(
        calls["DELETE /api/v10/guilds/{guild_id}/members/{user_id}/roles/{role_id}"], 100,
        "exactly one write per drifted role"
    );
}

#[tokio::test]
async fn reconciling_a_thousand_users_already_in_sync_costs_at_most_fifteen_calls() {
    let w = World::new().await;
    w.discord_control(
        reqwest::Method::POST,
        "/_devstack/rate-limit",
        Some(json!({"limit": 100_000, "window_ms": 1_000})),
    )
    .await;
    let granted_at = "2026-03-01T00:00:00.000Z";
    let seeds = (0..1_000u64).map(|i| {
        let w = &w;
        async move {
            let (user, discord_id) = (format!("sync{i}"), (5_000_000 + i).to_string());
            w.ctx.create_unverified_user(&user, &format!("{user}@example.com")).await;
            let source = format!("admin:{user}@example.com:member");
            let entitlement = json!({"source": source, "provider": "admin", "email": format!("{user}@example.com"),
                "userId": user, "plan": "member", "grantedAt": granted_at});
            let doc = tollgate_app::ledger::entitlement_document_id(&source);
            w.ctx.client.create_document("crypto", "entitlements", doc.as_str(), &entitlement, None).await.unwrap();
            w.ctx
                .client
                .upsert_document("crypto", "profiles", &user, &json!({"discordUserId": discord_id}))
                .await
                .unwrap();
            let subscription = json!({"userId": user, "status": "active", "plan": "member", "projectedAt": granted_at});
            w.ctx.client.upsert_document("crypto", "subscriptions", &user, &subscription).await.unwrap();
            w.ctx.client.ensure_membership("paid", &AppwriteId::parse(&user).unwrap(), &["member"]).await.unwrap();
            w.join(&discord_id).await;
            let member = DiscordUserId::parse(&discord_id).unwrap();
            for role in [seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID] {
                w.discord.add_member_role(guild(), member, RoleId::parse(role).unwrap(), "seed").await.unwrap();
            }
        }
    });
    futures::stream::iter(seeds).buffer_unordered(16).collect::<Vec<_>>().await;

    let clear = |base: String| async move {
        assert!(reqwest::Client::new()
            .delete(format!("{base}/_devstack/calls"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success());
    };
    clear(w.ctx.devstack.appwrite_base_url()).await;
    clear(w.ctx.devstack.discord_base_url()).await;
    let report = w.sync().reconcile_once(10).await.unwrap();
    // The seeded guild has its bot as a member too.
    assert_eq!((report.members_seen, report.role_changes), (1_001, 0));
    assert!(report.access_drift.queued.is_empty(), "{:?}", report.access_drift);
    assert_eq!(report.access_drift.with_access, 1_000);
    let appwrite: u64 = w.ctx.calls().await.as_object().unwrap().values().filter_map(Value::as_u64).sum();
    let calls = w.discord_control(reqwest::Method::GET, "/_devstack/calls", None).await;
    let discord: u64 = calls.as_object().unwrap().values().filter_map(Value::as_u64).sum();
    println!("reconciling 1,000 users in sync: {appwrite} Appwrite calls, {discord} Discord calls");
    assert!(appwrite + discord <= 15, "{appwrite} Appwrite + {discord} Discord calls: {}", w.ctx.calls().await);
}

/// Members with ids after every seeded user (Discord lists members in id order).
fn later_member(n: u64) -> String {
    (1_200_000_000_000_000_000u64 + n).to_string()
}

impl World {
    async fn join_with_role(&self, discord_id: &str, role_id: &str) {
        self.join(discord_id).await;
        self.discord
            .add_member_role(guild(), DiscordUserId::parse(discord_id).unwrap(), RoleId::parse(role_id).unwrap(), "t")
            .await
            .unwrap();
    }

    async fn raw_mapping(&self, id: &str, data: Value) {
        self.ctx.client.upsert_document("crypto", "discord_role_mappings", id, &data).await.unwrap();
    }
}

#[tokio::test]
async fn reconciliation_skips_a_member_it_cannot_change_reports_them_and_reconciles_everyone_after() {
    let w = World::new().await;
    // Alice's plan grants a role above the bot's: every change to her is refused with 50013.
    w.map("member", &[seed::ABOVE_BOT_ROLE_ID]).await;
    w.map("vip", &[seed::VIP_ROLE_ID]).await;
    let alice = seed::TEST_USERS[0].0;
    w.join(alice).await;
    w.linked_user("alice", alice, true).await;
    let drifted: Vec<String> = (1..=3).map(later_member).collect();
    for id in &drifted {
        w.join_with_role(id, seed::VIP_ROLE_ID).await;
    }

    for run in 0..2 {
        let report = w.sync().reconcile_once(10).await.unwrap();
        assert_eq!(report.stopped, None, "run {run}: {report:?}");
        assert!(report.pass_finished, "run {run}");
        assert_eq!(report.skipped.len(), 1, "run {run}: {:?}", report.skipped);
        assert_eq!(report.skipped[0].discord_user.to_string(), alice);
        assert!(report.skipped[0].reason.contains("50013"), "{}", report.skipped[0].reason);
        assert_eq!(report.role_changes, if run == 0 { 3 } else { 0 }, "run {run}");
    }
    for id in &drifted {
        assert!(w.member_roles(id).await.is_empty(), "{id} was reconciled although alice comes first");
    }
}

#[tokio::test]
async fn a_rate_limit_stops_reconciliation_and_the_next_run_resumes_at_the_member_it_stopped_at() {
    let w = World::new().await;
    let drifted: Vec<String> = (1..=6).map(later_member).collect();
    for id in &drifted {
        w.join_with_role(id, seed::VIP_ROLE_ID).await;
    }
    w.discord_control(reqwest::Method::POST, "/_devstack/rate-limit", Some(json!({"limit": 2, "window_ms": 30_000})))
        .await;
    let first = w.sync().reconcile_once(10).await.unwrap();
    assert!(first.stopped.is_some() && first.retry_at.is_some(), "{first:?}");
    assert!(!first.pass_finished);
    assert_eq!(first.members_changed, 2, "two writes fit in the window");
    assert_eq!(first.resume_after.map(|m| m.to_string()), Some(drifted[1].clone()));
    let state = w.ctx.document("sync_state", &format!("guild-{}", seed::GUILD_ID)).await.expect("cursor saved");
    assert_eq!(state["cursor"].as_str(), Some(drifted[1].as_str()), "saved just before the member it stopped at");

    w.discord_control(reqwest::Method::POST, "/_devstack/rate-limit", Some(json!({"limit": 50, "window_ms": 1_000})))
        .await;
    w.ctx.clock.advance(Duration::seconds(31));
    let second = w.sync().reconcile_once(10).await.unwrap();
    assert_eq!((second.members_seen, second.members_changed), (4, 4), "resumed at the third drifted member");
    assert!(second.pass_finished && second.stopped.is_none());
    for id in &drifted {
        assert!(w.member_roles(id).await.is_empty(), "{id}");
    }
}

#[tokio::test]
async fn a_mapping_that_does_not_parse_keeps_its_roles_managed_never_grants_them_and_is_reported() {
    let w = World::new().await;
    // The plan's mapping, broken: its guild is not a snowflake and its role list is cut short.
    w.raw_mapping(
        "member",
        json!({"plan": "member", "guildId": "not-a-guild", "roleIdsJson": format!("[\"{}\", ", seed::MEMBER_ROLE_ID)}),
    )
    .await;
    // A mapping none of whose roles can be read.
    w.raw_mapping("hopeless", json!({"plan": "old", "guildId": seed::GUILD_ID, "roleIdsJson": "{}"})).await;
    let alice = seed::TEST_USERS[0].0;
    w.join_with_role(alice, seed::MEMBER_ROLE_ID).await;
    let user = w.linked_user("alice", alice, true).await;
    let stranger = later_member(1);
    w.join_with_role(&stranger, seed::MEMBER_ROLE_ID).await;

    let report = w.sync().reconcile_once(10).await.unwrap();
    assert_eq!(report.unreadable_mappings.len(), 1, "{:?}", report.unreadable_mappings);
    assert!(report.unreadable_mappings[0].starts_with("hopeless:"), "{:?}", report.unreadable_mappings);
    assert!(w.member_roles(&stranger).await.is_empty(), "the broken mapping's role stays managed: taken away");
    assert!(w.member_roles(alice).await.is_empty(), "and never granted, even to a paying member of its plan");
    let outcome = w.sync().sync_user(&user).await.unwrap();
    assert!(matches!(&outcome, SyncOutcome::InSync { desired, .. } if desired.is_empty()), "{outcome:?}");

    let all = w.sync().role_mappings().await.unwrap();
    assert!(all.readable.is_empty());
    assert_eq!(all.managed(guild()), roles(&[seed::MEMBER_ROLE_ID]));
}

#[tokio::test]
async fn a_pending_job_of_the_replaced_deployment_without_a_due_time_runs() {
    let w = World::new().await;
    let alice = seed::TEST_USERS[0].0;
    w.join(alice).await;
    w.linked_user("alice", alice, true).await;
    w.ctx.client.delete_document("crypto", "role_sync_jobs", "alice").await.unwrap();
    w.ctx
        .client
        .create_document("crypto", "role_sync_jobs", "alice", &json!({"userId": "alice", "status": "pending"}), None)
        .await
        .unwrap();
    let ran = w.sync().run_due_jobs(10).await.unwrap();
    assert_eq!(ran.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), vec!["alice"]);
    assert_eq!(w.member_roles(alice).await, roles(&[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID]));
    assert_eq!(w.job("alice").await["status"], "done");
}

#[tokio::test]
async fn a_sync_request_that_lands_while_a_sync_runs_leaves_the_job_pending() {
    let w = World::new().await;
    let alice = seed::TEST_USERS[0].0;
    w.join(alice).await;
    let user = w.linked_user("alice", alice, true).await;
    // Discord answers slowly, so the request below lands after the sync read the job and before it records.
    w.discord_control(
        reqwest::Method::POST,
        "/_devstack/faults",
        Some(json!({"rate": 1.0, "delay_ms": 400, "paths": ["/api/v10/guilds"]})),
    )
    .await;
    let app = w.ctx.app();
    let sync = w.sync();
    let (outcome, requested) = tokio::join!(sync.sync_user(&user), async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        app.request_role_sync(&user).await
    });
    requested.unwrap();
    assert!(matches!(outcome.unwrap(), SyncOutcome::Applied { .. }));
    let job = w.job("alice").await;
    assert_eq!(job["status"], "pending", "the request is not lost: {job}");
    assert_eq!(job["outcome"], "applied", "the outcome is still recorded");
    w.discord_control(reqwest::Method::POST, "/_devstack/faults", Some(json!({"rate": 0}))).await;

    let ran = w.sync().run_due_jobs(10).await.unwrap();
    assert_eq!(ran.len(), 1, "due now");
    assert_eq!(w.job("alice").await["status"], "done", "no request since: done");
}

use crate::support::{order_body, spawn_app};
use tollgate_devstack::discord_seed as seed;

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_buyer_gets_the_plans_roles_within_seconds_and_a_dispute_takes_only_them_away() {
    let app = spawn_app().await;
    let alice = seed::TEST_USERS[0].0;
    app.create_user("linked1", "linked1@example.com").await;
    app.link_discord("linked1", alice).await;
    app.join_guild(alice).await;
    app.discord(
        reqwest::Method::PUT,
        &format!("/api/v10/guilds/{}/members/{alice}/roles/{}", seed::GUILD_ID, seed::MODERATOR_ROLE_ID),
    )
    .await;

    app.deliver(&order_body("order.completed", 1_001, "linked1@example.com"), 200).await;
    let paid = sorted(&[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID, seed::MODERATOR_ROLE_ID]);
    app.eventually("the plan's roles", || async { app.member_roles(alice).await == Some(paid.clone()) }).await;

    app.deliver(&order_body("order.disputed", 1_001, "linked1@example.com"), 200).await;
    let left = sorted(&[seed::MODERATOR_ROLE_ID]);
    app.eventually("the managed roles removed, the unmanaged one kept", || async {
        app.member_roles(alice).await == Some(left.clone())
    })
    .await;
    let job = app.document("role_sync_jobs", "linked1").await.expect("the job");
    assert_eq!(job["status"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_outside_the_guild_gets_the_roles_from_the_cron_once_they_join() {
    let app = spawn_app().await;
    let bob = seed::TEST_USERS[1].0;
    app.create_user("linked2", "linked2@example.com").await;
    app.link_discord("linked2", bob).await;
    app.deliver(&order_body("order.completed", 1_002, "linked2@example.com"), 200).await;
    app.eventually("the job noting the member is not in the guild", || async {
        app.document("role_sync_jobs", "linked2").await.is_some_and(|job| job["outcome"] == "not_in_guild")
    })
    .await;
    assert_eq!(app.member_roles(bob).await, None);
    app.join_guild(bob).await;
    app.trigger_role_sync_cron().await;
    assert_eq!(app.member_roles(bob).await, Some(sorted(&[seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID])));
}

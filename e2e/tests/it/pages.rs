//! The pages in a real browser (headless Chromium through WebDriver) against the local system: the admin
//! console and the customer's access page, signed in through Appwrite's own email/password session.
//! Screenshots go to the test's temporary directory; `readme_screenshots` (ignored) writes the README's
//! to `docs/screenshots/`.

use crate::support::{order_body, spawn_app, spawn_app_with, TestApp};
use crate::webdriver::Browser;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use tollgate_devstack::discord_seed as seed;

const PASSWORD: &str = "correct horse battery";

async fn sign_in(browser: &Browser, email: &str) {
    browser.type_into("#email", email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#sign-in-form button[type=submit]").await;
}

/// A Sell.app delivery that fails (Appwrite's users route down) and is recorded, for `email`.
async fn recorded_failure(app: &TestApp, order: u64, email: &str) {
    app.set_faults(serde_json::json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    app.deliver(&order_body("order.completed", order, email), 202).await;
    app.clear_faults().await;
}

async fn admin_console(shots: Option<&Path>) {
    let app = spawn_app().await;
    let shots = shots.unwrap_or(app.state_dir()).to_owned();
    app.create_user_with_password("root", "root@example.com", PASSWORD).await;
    app.add_to_team("admins", "root").await;
    app.create_user_with_password("helper", "helper@example.com", PASSWORD).await;
    app.create_user("looked", "looked@example.com").await;
    recorded_failure(&app, 3_001, "looked@example.com").await;

    let browser = Browser::start(app.state_dir(), &shots).await;
    browser.goto(&format!("{}/admin", app.api.url())).await;
    // Signed in, but not in the admins team: refused with a clear message.
    sign_in(&browser, "helper@example.com").await;
    browser.wait_text("#status", "not an admin").await;
    assert!(browser.script("return document.querySelector('#console').hidden", serde_json::json!([])).await == true);
    browser.screenshot("admin-refused.png").await;

    sign_in(&browser, "root@example.com").await;
    browser.wait_text("#status", "Signed in.").await;
    browser.type_into("#lookup-value", "Looked@Example.com").await;
    browser.keys("#lookup-value", "\u{E007}").await; // Enter submits: the keyboard is enough.
    browser.wait_text("#report", "looked@example.com").await;
    browser.wait_text("#report", "due").await;
    browser.click("#report [data-details]").await;
    browser.wait_text("#report-detail", "order.completed").await;
    browser.click("#report [data-replay]").await;
    browser.confirm().await;
    browser.wait_text("#status", "Replayed: settled.").await;
    app.trigger_role_sync_cron().await;
    app.projected("looked", "active").await;
    assert_eq!(app.paid_team_size().await, 1, "applied exactly once");

    browser.click("#force-sync").await;
    browser.confirm().await;
    browser.wait_text("#status", "Role sync: not_linked.").await;
    browser.wait_text("#report", "paid membership\nyes").await;
    browser.wait_text("#report", "Recorded").await;
    browser.script("window.scrollTo(0, 0)", serde_json::json!([])).await;
    browser.screenshot("admin.png").await;

    browser.click("[data-tab=failures]").await;
    browser.click("#failures-form button[type=submit]").await;
    browser.wait_text("#failures", "1 failure(s).").await;
    browser.wait_text("#failures", "settled").await;
    browser.click("[data-tab=plans]").await;
    browser.wait_text("#plans", seed::MEMBER_ROLE_ID).await;
    browser.click("[data-tab=health]").await;
    browser.click("#run-health").await;
    browser.wait_text("#status", "All checks passed.").await;
    browser.wait_text("#health", "role order").await;
    browser.screenshot("admin-health.png").await;
    browser.quit().await;
}

async fn access_page(shots: Option<&Path>) {
    // No APP_BASE_URL: the link callback returns to the api's own /access page.
    let app = spawn_app_with(&[("APP_BASE_URL", "")]).await;
    let shots = shots.unwrap_or(app.state_dir()).to_owned();
    let alice = seed::TEST_USERS[0].0;
    app.create_user_with_password("buyer", "buyer@example.com", PASSWORD).await;
    app.deliver(&order_body("order.completed", 3_101, "buyer@example.com"), 200).await;
    app.projected("buyer", "active").await;
    app.create_user("attacker", "attacker@example.com").await;

    let browser = Browser::start(app.state_dir(), &shots).await;
    let access = format!("{}/access", app.api.url());
    browser.goto(&access).await;
    sign_in(&browser, "buyer@example.com").await;
    browser.wait_text("#access", "member").await;
    browser.click("#link").await;
    // devstack's Discord consent page: pick the test user, Authorize.
    browser.click("input[name=test_user][value='1100000000000000100']").await;
    browser.click("#authorize").await;
    browser.wait_text("#status", "Your Discord account is linked").await;
    assert_eq!(browser.url().await, access, "back on the access page, the outcome taken out of the address");
    browser.wait_text("#discord", "Linked as alice").await;
    let roles = browser.wait_text("#roles", seed::MEMBER_ROLE_ID).await;
    assert!(roles.contains(seed::VIP_ROLE_ID), "{roles}");
    assert_eq!(app.member_roles(alice).await.map(|r| r.len()), Some(2), "the roles arrived in Discord");
    browser.screenshot("access.png").await;
    browser.resize(390, 844).await;
    browser.screenshot("access-phone.png").await;
    browser.resize(1280, 900).await;

    browser.click("#unlink").await;
    browser.confirm().await;
    browser.wait_text("#status", "Discord unlinked.").await;
    browser.wait_text("#discord", "Link your Discord account").await;
    assert_eq!(app.member_roles(alice).await, Some(vec![]), "the managed roles were removed");

    // The attacker's link: started with the attacker's own JWT elsewhere, followed in this browser.
    let started = app
        .http
        .post(format!("{}/discord/link", app.api.url()))
        .bearer_auth(app.jwt_for("attacker").await)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::OK);
    let url = started.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    browser.goto(&url).await;
    browser.click("#authorize").await;
    browser.wait_text("#status", "started in another browser").await;
    browser.screenshot("access-refused.png").await;
    assert!(app.document("profiles", "attacker").await.is_none(), "nothing linked to the attacker");
    assert_eq!(app.member_roles(alice).await, Some(vec![]), "the victim's account got nothing");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_finds_a_user_replays_a_failure_and_forces_a_sync_and_a_non_admin_is_refused() {
    admin_console(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_links_discord_through_the_consent_page_sees_the_roles_unlinks_and_an_attackers_link_is_refused() {
    access_page(None).await;
}

/// Regenerates `docs/screenshots/*.png` for the README:
/// `cargo test -p tollgate-e2e --test it readme_screenshots -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/screenshots; run on purpose"]
async fn readme_screenshots() {
    let dir = xtask::paths::workspace_root().join("docs").join("screenshots");
    std::fs::create_dir_all(&dir).expect("docs/screenshots");
    admin_console(Some(&dir)).await;
    access_page(Some(&dir)).await;
}

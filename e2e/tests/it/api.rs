use crate::support::{event_document_id, jwt_for, order_body, spawn_app, TestApp, ADMIN_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_devstack::discord_seed as seed;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn api(app: &TestApp, method: reqwest::Method, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
    let mut request = app.http.request(method, format!("{}{path}", app.api.url()));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// POST /discord/link, approve in devstack as `discord_user`: the callback URL Discord would redirect to.
async fn approve(app: &TestApp, jwt: &str, discord_user: &str) -> String {
    let (status, body) = api(app, reqwest::Method::POST, "/discord/link", Some(jwt)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["url"].as_str().unwrap().to_owned();
    let authorize = no_redirects().get(format!("{url}&test_user={discord_user}")).send().await.unwrap();
    authorize.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paying_user_links_discord_in_one_click_and_sees_everything_in_me_access() {
    let app = spawn_app().await;
    let alice = seed::TEST_USERS[0].0;
    app.create_user("linkdemo", "linkdemo@example.com").await;
    app.deliver(&order_body("order.completed", 2_001, "linkdemo@example.com"), 200).await;
    let jwt = jwt_for(&app, "linkdemo").await;

    let callback = approve(&app, &jwt, alice).await;
    assert!(callback.starts_with(&format!("{}/discord/callback?", app.api.url())), "{callback}");
    let landed = no_redirects().get(&callback).send().await.unwrap();
    assert_eq!(landed.status(), StatusCode::FOUND);
    assert_eq!(landed.headers()["location"].to_str().unwrap(), "http://127.0.0.1:3000/?discord=linked");
    let paid = {
        let mut roles = vec![seed::MEMBER_ROLE_ID.to_owned(), seed::VIP_ROLE_ID.to_owned()];
        roles.sort();
        roles
    };
    assert_eq!(app.member_roles(alice).await, Some(paid.clone()), "in the guild with the plan's roles");

    let (status, access) = api(&app, reqwest::Method::GET, "/me/access", Some(&jwt)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (access["hasAccess"].as_bool(), access["plan"].as_str(), access["paidMembership"].as_bool()),
        (Some(true), Some("member"), Some(true))
    );
    assert_eq!(access["discord"]["discordUserId"], alice);
    let mut managed: Vec<String> =
        access["discordManagedRoles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    managed.sort();
    assert_eq!(managed, paid);
    assert_eq!(access["lastSync"]["status"], "done");

    // The same state again: refused, nothing changes, and the browser still lands on the web app.
    let again = no_redirects().get(&callback).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::FOUND);
    assert_eq!(again.headers()["location"], "http://127.0.0.1:3000/?discord=error&reason=state_invalid");

    let (status, body) = api(&app, reqwest::Method::POST, "/discord/unlink", Some(&jwt)).await;
    assert_eq!((status, body["unlinked"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(app.member_roles(alice).await, Some(vec![]), "managed roles removed");
    let (status, body) = api(&app, reqwest::Method::POST, "/discord/unlink", Some(&jwt)).await;
    assert_eq!((status, body["unlinked"].as_bool()), (StatusCode::OK, Some(false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jwts_forged_states_taken_accounts_and_failed_exchanges_are_refused_clearly() {
    let app = spawn_app().await;
    let bob = seed::TEST_USERS[1].0;
    let (status, body) = api(&app, reqwest::Method::POST, "/discord/link", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")));
    let preflight =
        app.http.request(reqwest::Method::OPTIONS, format!("{}/discord/link", app.api.url())).send().await.unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://127.0.0.1:3000",
        "CORS for the web app's origin"
    );
    let (status, _) = api(&app, reqwest::Method::GET, "/me/access", Some("forged.jwt")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let forged =
        no_redirects().get(format!("{}/discord/callback?code=x&state=forged", app.api.url())).send().await.unwrap();
    assert_eq!(forged.headers()["location"], "http://127.0.0.1:3000/?discord=error&reason=state_invalid");

    app.create_user("owner", "owner@example.com").await;
    app.create_user("thief", "thief@example.com").await;
    let owner_callback = approve(&app, &jwt_for(&app, "owner").await, bob).await;
    assert_eq!(no_redirects().get(&owner_callback).send().await.unwrap().status(), StatusCode::FOUND);
    let thief_jwt = jwt_for(&app, "thief").await;
    let thief_callback = approve(&app, &thief_jwt, bob).await;
    let taken = no_redirects().get(&thief_callback).send().await.unwrap();
    assert_eq!(taken.status(), StatusCode::FOUND);
    assert_eq!(taken.headers()["location"], "http://127.0.0.1:3000/?discord=error&reason=account_taken");

    let state = state_of(&approve(&app, &thief_jwt, seed::TEST_USERS[2].0).await);
    let refused = no_redirects()
        .get(format!("{}/discord/callback?code=not-a-code&state={state}", app.api.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(
        refused.headers()["location"].to_str().unwrap(),
        "http://127.0.0.1:3000/?discord=error&reason=discord_refused"
    );
    assert!(app.document("profiles", "thief").await.is_none(), "nothing half-written");
}

fn state_of(url: &str) -> String {
    reqwest::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).unwrap()
}

/// Where the callback sent the browser (it must always be a redirect).
async fn landing(app: &TestApp, query: &str) -> String {
    let response = no_redirects().get(format!("{}/discord/callback?{query}", app.api.url())).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "the callback answers a browser with a redirect");
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_always_redirects_to_the_web_app_with_the_outcome() {
    let app = spawn_app().await;
    let (alice, bob) = (seed::TEST_USERS[0].0, seed::TEST_USERS[1].0);
    app.create_user("first", "first@example.com").await;
    app.create_user("second", "second@example.com").await;
    let (first, second) = (jwt_for(&app, "first").await, jwt_for(&app, "second").await);
    let base = "http://127.0.0.1:3000/";

    // Success.
    let callback = approve(&app, &first, alice).await;
    let query = callback.split_once('?').unwrap().1.to_owned();
    assert_eq!(landing(&app, &query).await, format!("{base}?discord=linked"));

    // The customer presses Cancel on Discord's page: Discord comes back with an error and no code.
    let (_, body) = api(&app, reqwest::Method::POST, "/discord/link", Some(&second)).await;
    let authorize = body["url"].as_str().unwrap().to_owned();
    let state = state_of(&authorize);
    let cancelled = landing(&app, &format!("error=access_denied&error_description=denied&state={state}")).await;
    assert_eq!(cancelled, format!("{base}?discord=error&reason=cancelled"));
    // The cancelled state is spent: approving the same authorize URL afterwards gets nowhere.
    let late = no_redirects().get(format!("{authorize}&test_user={bob}")).send().await.unwrap();
    let late = late.headers()["location"].to_str().unwrap().split_once('?').unwrap().1.to_owned();
    assert_eq!(landing(&app, &late).await, format!("{base}?discord=error&reason=state_invalid"));

    // A bad or missing state.
    assert_eq!(landing(&app, "code=x&state=forged").await, format!("{base}?discord=error&reason=state_invalid"));
    assert_eq!(landing(&app, "").await, format!("{base}?discord=error&reason=state_invalid"));

    // An account linked to someone else.
    let taken = approve(&app, &second, alice).await;
    let taken = landing(&app, taken.split_once('?').unwrap().1).await;
    assert_eq!(taken, format!("{base}?discord=error&reason=account_taken"));
    assert!(app.document("profiles", "second").await.is_none(), "nothing written for the refused user");
    assert_eq!(app.document("profiles", "first").await.unwrap()["discordUserId"], alice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_look_users_up_list_and_replay_failures_and_force_a_sync() {
    let app = spawn_app().await;
    assert_eq!(
        api(&app, reqwest::Method::GET, "/admin/users?email=a@example.com", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api(&app, reqwest::Method::GET, "/admin/failures", Some("wrong-token")).await.0,
        StatusCode::UNAUTHORIZED
    );

    app.create_user("looked", "looked@example.com").await;
    app.set_faults(json!({"rate": 1.0, "status": 503, "paths": ["/v1/users"]})).await;
    let body = order_body("order.completed", 2_003, "looked@example.com");
    app.deliver(&body, 202).await;
    app.clear_faults().await;

    let (status, report) =
        api(&app, reqwest::Method::GET, "/admin/users?email=Looked@Example.com", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    for field in [
        "user",
        "subscription",
        "hasAccess",
        "paidMembership",
        "entitlements",
        "pendingEntitlements",
        "plans",
        "discord",
        "discordManagedRoles",
        "lastSync",
        "recentFailures",
    ] {
        assert!(report.get(field).is_some(), "lookup lacks {field}: {report}");
    }
    assert_eq!(report["paidMembership"], false);
    assert_eq!(report["recentFailures"][0]["state"], "due");

    let (status, list) = api(&app, reqwest::Method::GET, "/admin/failures?state=due", Some(ADMIN_TOKEN)).await;
    assert_eq!((status, list["total"].as_u64()), (StatusCode::OK, Some(1)));
    let id = event_document_id("order.completed", "2003", "1");
    let (status, replayed) =
        api(&app, reqwest::Method::POST, &format!("/admin/failures/{id}/replay"), Some(ADMIN_TOKEN)).await;
    assert_eq!((status, replayed["outcome"].as_str()), (StatusCode::OK, Some("settled")));
    api(&app, reqwest::Method::POST, &format!("/admin/failures/{id}/replay"), Some(ADMIN_TOKEN)).await;
    // The replay queued the user's projection; role-sync's cron runs it.
    app.trigger_role_sync_cron().await;
    app.projected("looked", "active").await;
    assert_eq!(app.paid_team_size().await, 1, "applied exactly once");
    assert_eq!(app.documents("entitlements").await.len(), 1);

    let (status, synced) = api(&app, reqwest::Method::POST, "/admin/users/looked/sync", Some(ADMIN_TOKEN)).await;
    assert_eq!((status, synced["outcome"].as_str()), (StatusCode::OK, Some("not_linked")));
    let (status, _) = api(&app, reqwest::Method::GET, "/admin/users?email=nobody@example.com", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

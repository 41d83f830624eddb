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

/// What `POST /discord/link` gave a browser: the authorize URL and its link cookie (`name=value`).
struct Started {
    url: String,
    cookie: String,
}

async fn start_link(app: &TestApp, jwt: &str) -> Started {
    let response = app.http.post(format!("{}/discord/link", app.api.url())).bearer_auth(jwt).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/discord") && set_cookie.contains("Max-Age=600"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "no Secure on a plain-http loopback api: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    Started { url: body["url"].as_str().unwrap().to_owned(), cookie }
}

/// A callback URL Discord would redirect to, and the browser's link cookie to bring with it.
struct Approved {
    callback: String,
    cookie: String,
}

/// POST /discord/link, approve in devstack as `discord_user`.
async fn approve(app: &TestApp, jwt: &str, discord_user: &str) -> Approved {
    let started = start_link(app, jwt).await;
    let authorize = no_redirects().get(format!("{}&test_user={discord_user}", started.url)).send().await.unwrap();
    Approved { callback: authorize.headers()["location"].to_str().unwrap().to_owned(), cookie: started.cookie }
}

/// The browser follows Discord's redirect to the callback with its cookie: where it lands (always a 302,
/// and the link cookie is cleared).
async fn follow(approved: &Approved) -> String {
    follow_with(&approved.callback, Some(&approved.cookie)).await
}

async fn follow_with(callback: &str, cookie: Option<&str>) -> String {
    let mut request = no_redirects().get(callback);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND, "the callback answers a browser with a redirect");
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("tollgate_link=;") && cleared.contains("Max-Age=0"), "{cleared}");
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paying_user_links_discord_in_one_click_and_sees_everything_in_me_access() {
    let app = spawn_app().await;
    let alice = seed::TEST_USERS[0].0;
    app.create_user("linkdemo", "linkdemo@example.com").await;
    app.deliver(&order_body("order.completed", 2_001, "linkdemo@example.com"), 200).await;
    let jwt = jwt_for(&app, "linkdemo").await;

    let approved = approve(&app, &jwt, alice).await;
    assert!(approved.callback.starts_with(&format!("{}/discord/callback?", app.api.url())), "{}", approved.callback);
    assert_eq!(follow(&approved).await, "http://127.0.0.1:3000/?discord=linked");
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
    let (status, found) =
        api(&app, reqwest::Method::GET, &format!("/admin/users?discord={alice}"), Some(ADMIN_TOKEN)).await;
    assert_eq!((status, found["user"]["id"].as_str()), (StatusCode::OK, Some("linkdemo")), "found by Discord id");
    let mut desired: Vec<String> =
        found["desiredRoles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    desired.sort();
    assert_eq!(desired, paid, "the roles it should have");

    // The same state again: refused, nothing changes, and the browser still lands on the web app.
    assert_eq!(follow(&approved).await, "http://127.0.0.1:3000/?discord=error&reason=state_invalid");

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
    let forged = follow_with(&format!("{}/discord/callback?code=x&state=forged", app.api.url()), None).await;
    assert_eq!(forged, "http://127.0.0.1:3000/?discord=error&reason=state_invalid");

    app.create_user("owner", "owner@example.com").await;
    app.create_user("thief", "thief@example.com").await;
    let owner = approve(&app, &jwt_for(&app, "owner").await, bob).await;
    assert_eq!(follow(&owner).await, "http://127.0.0.1:3000/?discord=linked");
    let thief_jwt = jwt_for(&app, "thief").await;
    let thief = approve(&app, &thief_jwt, bob).await;
    assert_eq!(follow(&thief).await, "http://127.0.0.1:3000/?discord=error&reason=account_taken");

    let approved = approve(&app, &thief_jwt, seed::TEST_USERS[2].0).await;
    let state = state_of(&approved.callback);
    let bad_code = format!("{}/discord/callback?code=not-a-code&state={state}", app.api.url());
    let refused = follow_with(&bad_code, Some(&approved.cookie)).await;
    assert_eq!(refused, "http://127.0.0.1:3000/?discord=error&reason=discord_refused");
    assert!(app.document("profiles", "thief").await.is_none(), "nothing half-written");
}

fn state_of(url: &str) -> String {
    reqwest::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()).unwrap()
}

/// Where the callback sent the browser that holds `cookie` (it must always be a redirect).
async fn landing(app: &TestApp, query: &str, cookie: Option<&str>) -> String {
    follow_with(&format!("{}/discord/callback?{query}", app.api.url()), cookie).await
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
    let approved = approve(&app, &first, alice).await;
    assert_eq!(follow(&approved).await, format!("{base}?discord=linked"));

    // The customer presses Cancel on Discord's page: Discord comes back with an error and no code.
    let started = start_link(&app, &second).await;
    let state = state_of(&started.url);
    let cancel = format!("error=access_denied&error_description=denied&state={state}");
    let cancelled = landing(&app, &cancel, Some(&started.cookie)).await;
    assert_eq!(cancelled, format!("{base}?discord=error&reason=cancelled"));
    // The cancelled state is spent: approving the same authorize URL afterwards gets nowhere.
    let late = no_redirects().get(format!("{}&test_user={bob}", started.url)).send().await.unwrap();
    let late = late.headers()["location"].to_str().unwrap().split_once('?').unwrap().1.to_owned();
    let late = landing(&app, &late, Some(&started.cookie)).await;
    assert_eq!(late, format!("{base}?discord=error&reason=state_invalid"));

    // A bad or missing state.
    let forged = landing(&app, "code=x&state=forged", Some(&started.cookie)).await;
    assert_eq!(forged, format!("{base}?discord=error&reason=state_invalid"));
    assert_eq!(landing(&app, "", None).await, format!("{base}?discord=error&reason=state_invalid"));

    // An account linked to someone else.
    let taken = follow(&approve(&app, &second, alice).await).await;
    assert_eq!(taken, format!("{base}?discord=error&reason=account_taken"));
    assert!(app.document("profiles", "second").await.is_none(), "nothing written for the refused user");
    assert_eq!(app.document("profiles", "first").await.unwrap()["discordUserId"], alice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_url_followed_in_another_browser_is_refused_and_links_nothing() {
    let app = spawn_app().await;
    let alice = seed::TEST_USERS[0].0;
    app.create_user("attacker", "attacker@example.com").await;
    let attacker = jwt_for(&app, "attacker").await;
    let base = "http://127.0.0.1:3000/";

    // The attacker sends their authorize URL; the victim's browser approves it as the victim (alice) and
    // arrives at the callback without the attacker's cookie: refused.
    let approved = approve(&app, &attacker, alice).await;
    let refused = follow_with(&approved.callback, None).await;
    assert_eq!(refused, format!("{base}?discord=error&reason=browser_mismatch"));
    // The victim's browser holds a link cookie of its own (from its own, unrelated start): still refused.
    app.create_user("victim", "victim@example.com").await;
    let own = start_link(&app, &jwt_for(&app, "victim").await).await;
    let approved = approve(&app, &attacker, alice).await;
    let forged = follow_with(&approved.callback, Some(&own.cookie)).await;
    assert_eq!(forged, format!("{base}?discord=error&reason=browser_mismatch"));
    let forged = follow_with(&approved.callback, Some("tollgate_link=forged-value")).await;
    assert_eq!(forged, format!("{base}?discord=error&reason=state_invalid"), "the refused state was spent");

    assert!(app.document("profiles", "attacker").await.is_none(), "nothing linked");
    assert_eq!(app.member_roles(alice).await, None, "the victim's account was not even added to the guild");

    // A page of another site (or an opaque origin) cannot start a link in a visitor's browser.
    for origin in ["https://evil.example", "null"] {
        let response = app
            .http
            .post(format!("{}/discord/link", app.api.url()))
            .bearer_auth(&attacker)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
        assert!(response.headers().get("set-cookie").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "origin_not_allowed");
    }
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
    assert!(report["recentFailures"][0]["createdAt"].is_string(), "when it was recorded: {report}");

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

    // An Appwrite JWT works on the admin routes only for a member of the admins team.
    let customer = jwt_for(&app, "looked").await;
    let (status, refused) = api(&app, reqwest::Method::GET, "/admin/users?id=looked", Some(&customer)).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("not_an_admin")), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("admins team"), "{refused}");
    app.create_user("staff", "staff@example.com").await;
    app.add_to_team("admins", "staff").await;
    let staff = jwt_for(&app, "staff").await;
    let (status, report) = api(&app, reqwest::Method::GET, "/admin/users?id=looked", Some(&staff)).await;
    assert_eq!((status, report["user"]["id"].as_str()), (StatusCode::OK, Some("looked")), "{report}");
    let (status, _) = api(&app, reqwest::Method::GET, "/admin/me", Some("forged.jwt")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The console's other routes: one failure with its delivery, filters, plans, health.
    let (status, detail) = api(&app, reqwest::Method::GET, &format!("/admin/failures/{id}"), Some(&staff)).await;
    assert_eq!((status, detail["state"].as_str()), (StatusCode::OK, Some("settled")), "{detail}");
    assert_eq!(detail["bodyText"], body, "the delivery exactly as received");
    let (status, list) =
        api(&app, reqwest::Method::GET, "/admin/failures?provider=sellapp&since=2000-01-01T00:00:00Z", Some(&staff))
            .await;
    assert_eq!((status, list["total"].as_u64()), (StatusCode::OK, Some(1)), "{list}");
    let (status, list) =
        api(&app, reqwest::Method::GET, "/admin/failures?until=2000-01-01T00:00:00Z", Some(&staff)).await;
    assert_eq!((status, list["total"].as_u64()), (StatusCode::OK, Some(0)), "{list}");
    let (status, bad) = api(&app, reqwest::Method::GET, "/admin/failures?since=yesterday", Some(&staff)).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_date")));
    let (status, plans) = api(&app, reqwest::Method::GET, "/admin/plans", Some(&staff)).await;
    assert_eq!((status, plans["plans"][0]["plan"].as_str()), (StatusCode::OK, Some("member")), "{plans}");
    let (status, health) = api(&app, reqwest::Method::GET, "/admin/health", Some(&staff)).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    let names: Vec<&str> = health["checks"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    for name in ["oauth redirect uri", "bot token", "bot permissions", "server members intent", "role order"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert_eq!(health["ok"], true, "devstack is healthy: {health}");

    // The pages: a strict policy naming only this origin and Appwrite's; assets cached and revalidated.
    for page in ["/admin", "/access"] {
        let response = app.http.get(format!("{}{page}", app.api.url())).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
        let appwrite = app.devstack.appwrite_base_url();
        for part in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"] {
            assert!(csp.contains(part), "{page}: {csp}");
        }
        assert!(csp.contains(&format!("connect-src 'self' {appwrite}")), "{page}: {csp}");
        let html = response.text().await.unwrap();
        assert!(!html.contains(ADMIN_TOKEN) && !html.contains(app.devstack.api_key()), "no secret in {page}");
        assert!(!html.contains("{{"), "every placeholder filled in {page}");
    }
    let asset = app.http.get(format!("{}/assets/common.js", app.api.url())).send().await.unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(asset.headers()["cache-control"], "public, max-age=86400");
    let etag = asset.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .http
        .get(format!("{}/assets/common.js", app.api.url()))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let missing = app.http.get(format!("{}/assets/nope.js", app.api.url())).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

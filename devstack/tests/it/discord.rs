//! The Discord stand-in: its documented behaviour, and every `/api/v10` route checked against the official
//! Discord OpenAPI spec (status, body, and the rate-limit headers each answer documents). The OAuth2 token
//! routes and the authorize page are not in that spec; their behaviour is checked here directly.

use crate::schema_check::{Spec, DISCORD_SPEC};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate_devstack::discord::ROUTES;
use tollgate_devstack::discord_seed as seed;
use tollgate_devstack::{DevstackConfig, RunningDevstack};

struct Discord {
    devstack: RunningDevstack,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: Vec<String>,
    body: Value,
    location: Option<String>,
}

async fn discord() -> Discord {
    let devstack = tollgate_devstack::start(DevstackConfig::for_tests()).await.expect("devstack");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    Discord { devstack, http }
}

impl Discord {
    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().keys().map(|k| k.as_str().to_lowercase()).collect();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.json().await.unwrap_or(Value::Null);
        Answer { status, headers, body, location }
    }

    async fn bot(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.devstack.discord_api_base()))
            .header("Authorization", format!("Bot {}", seed::BOT_TOKEN));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.devstack.discord_base_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("control");
        assert!(response.status().is_success());
        response.json().await.unwrap_or(Value::Null)
    }

    /// Authorizes as `user` and exchanges the code: a user token with `identify guilds.join`.
    async fn user_token(&self, user: &str) -> String {
        let authorize = self
            .send(self.http.get(format!("{}/oauth2/authorize", self.devstack.discord_base_url())).query(&[
                ("response_type", "code"),
                ("client_id", seed::CLIENT_ID),
                ("scope", "identify guilds.join"),
                ("redirect_uri", "http://app/cb"),
                ("state", "xyz"),
                ("test_user", user),
            ]))
            .await;
        assert_eq!(authorize.status, 303, "authorize redirects: {}", authorize.body);
        let location = authorize.location.expect("a redirect");
        let code = reqwest::Url::parse(&location)
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code");
        let token = self
            .send(self.http.post(format!("{}/api/oauth2/token", self.devstack.discord_base_url())).form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "http://app/cb"),
                ("client_id", seed::CLIENT_ID),
                ("client_secret", seed::CLIENT_SECRET),
            ]))
            .await;
        assert_eq!(token.status, 200, "{}", token.body);
        token.body["access_token"].as_str().expect("access_token").to_owned()
    }
}

#[tokio::test]
async fn every_api_route_answers_as_the_official_discord_spec_documents() {
    let d = discord().await;
    let spec = Spec::load_from(DISCORD_SPEC);
    let guild = format!("/guilds/{}", seed::GUILD_ID);
    let alice = seed::TEST_USERS[0].0;
    let token = d.user_token(alice).await;
    let mut problems = Vec::new();
    let mut check = |method: &str, path: &str, answer: &Answer| {
        problems.extend(spec.check_documented(method, path, answer.status, &answer.headers, &answer.body))
    };

    check("GET", &guild, &d.bot(Method::GET, &guild, None).await);
    check("GET", &format!("{guild}/roles"), &d.bot(Method::GET, &format!("{guild}/roles"), None).await);
    check(
        "GET",
        &format!("{guild}/members/{alice}"),
        &d.bot(Method::GET, &format!("{guild}/members/{alice}"), None).await,
    ); // 404 10007
    let added = d.bot(Method::PUT, &format!("{guild}/members/{alice}"), Some(json!({"access_token": token}))).await;
    assert_eq!(added.status, 201);
    check("PUT", &format!("{guild}/members/{alice}"), &added);
    let again = d.bot(Method::PUT, &format!("{guild}/members/{alice}"), Some(json!({"access_token": token}))).await;
    assert_eq!(again.status, 204);
    check("PUT", &format!("{guild}/members/{alice}"), &again);
    check("GET", &format!("{guild}/members"), &d.bot(Method::GET, &format!("{guild}/members?limit=1000"), None).await);
    check(
        "GET",
        &format!("{guild}/members/{alice}"),
        &d.bot(Method::GET, &format!("{guild}/members/{alice}"), None).await,
    );
    let role_path = format!("{guild}/members/{alice}/roles/{}", seed::VIP_ROLE_ID);
    check("PUT", &role_path, &d.bot(Method::PUT, &role_path, None).await);
    check("DELETE", &role_path, &d.bot(Method::DELETE, &role_path, None).await);
    let above = format!("{guild}/members/{alice}/roles/{}", seed::ABOVE_BOT_ROLE_ID);
    check("PUT", &above, &d.bot(Method::PUT, &above, None).await); // 403 50013
    let me = d.send(d.http.get(format!("{}/users/@me", d.devstack.discord_api_base())).bearer_auth(&token)).await;
    check("GET", "/users/@me", &me);

    assert!(problems.is_empty(), "answers that do not conform:\n{}", problems.join("\n"));

    let revoke = d
        .send(d.http.post(format!("{}/api/v10/oauth2/token/revoke", d.devstack.discord_base_url())).form(&[
            ("token", token.as_str()),
            ("client_id", seed::CLIENT_ID),
            ("client_secret", seed::CLIENT_SECRET),
        ]))
        .await;
    assert_eq!(revoke.status, 200);
    let refresh = d
        .send(d.http.post(format!("{}/api/v10/oauth2/token", d.devstack.discord_base_url())).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "nope"),
            ("client_id", seed::CLIENT_ID),
            ("client_secret", seed::CLIENT_SECRET),
        ]))
        .await;
    assert_eq!((refresh.status, refresh.body["error"].as_str()), (400, Some("invalid_grant")));
    d.send(d.http.post(format!("{}/api/oauth2/token/revoke", d.devstack.discord_base_url())).form(&[
        ("token", "x"),
        ("client_id", seed::CLIENT_ID),
        ("client_secret", seed::CLIENT_SECRET),
    ]))
    .await;

    let calls = d.control(Method::GET, "/_devstack/calls", None).await;
    let missed = crate::support::unexercised(ROUTES, &calls);
    assert!(missed.is_empty(), "routes served but not exercised: {missed:?}");
}

#[tokio::test]
async fn bot_routes_need_the_bot_token_and_answer_discords_error_body() {
    let d = discord().await;
    let answer = d
        .send(
            d.http
                .get(format!("{}/guilds/{}", d.devstack.discord_api_base(), seed::GUILD_ID))
                .header("Authorization", "Bot wrong"),
        )
        .await;
    assert_eq!((answer.status, answer.body.clone()), (401, json!({"code": 0, "message": "401: Unauthorized"})));
    let unknown = d.bot(Method::GET, "/guilds/42", None).await;
    assert_eq!((unknown.status, unknown.body["code"].as_u64()), (404, Some(10004)));
}

#[tokio::test]
async fn over_the_limit_a_route_answers_429_with_retry_after_and_other_buckets_still_work() {
    let d = discord().await;
    d.control(Method::POST, "/_devstack/rate-limit", Some(json!({"limit": 2, "window_ms": 30_000}))).await;
    let guild = format!("/guilds/{}", seed::GUILD_ID);
    let first = d.bot(Method::GET, &guild, None).await;
    assert_eq!(first.status, 200);
    assert!(first.headers.iter().any(|h| h == "x-ratelimit-bucket"));
    d.bot(Method::GET, &guild, None).await;
    let limited = d.bot(Method::GET, &guild, None).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS.as_u16());
    let retry_after = limited.body["retry_after"].as_f64().expect("retry_after");
    assert!(retry_after > 25.0 && retry_after <= 30.0, "{retry_after}");
    assert!(
        limited.headers.iter().any(|h| h == "retry-after") && limited.headers.iter().any(|h| h == "x-ratelimit-scope")
    );
    assert_eq!(
        d.bot(Method::GET, &format!("{guild}/roles"), None).await.status,
        200,
        "another route has its own bucket"
    );
}

#[tokio::test]
async fn the_token_endpoint_takes_only_forms_and_the_right_client() {
    let d = discord().await;
    let url = format!("{}/api/oauth2/token", d.devstack.discord_base_url());
    let as_json = d.send(d.http.post(&url).json(&json!({"grant_type": "authorization_code", "code": "x"}))).await;
    assert_eq!(as_json.status, 400);
    let wrong_client = d
        .send(d.http.post(&url).form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", seed::CLIENT_ID),
            ("client_secret", "nope"),
        ]))
        .await;
    assert_eq!((wrong_client.status, wrong_client.body["error"].as_str()), (401, Some("invalid_client")));
}

#[tokio::test]
async fn a_test_user_leaves_and_rejoins_without_their_roles() {
    let d = discord().await;
    let bob = seed::TEST_USERS[1].0;
    let member = format!("/_devstack/guilds/{}/members/{bob}", seed::GUILD_ID);
    d.control(Method::PUT, &member, None).await;
    let role = format!("/guilds/{}/members/{bob}/roles/{}", seed::GUILD_ID, seed::MEMBER_ROLE_ID);
    assert_eq!(d.bot(Method::PUT, &role, None).await.status, 204);
    d.control(Method::DELETE, &member, None).await;
    assert_eq!(d.bot(Method::GET, &format!("/guilds/{}/members/{bob}", seed::GUILD_ID), None).await.status, 404);
    d.control(Method::PUT, &member, None).await;
    let back = d.bot(Method::GET, &format!("/guilds/{}/members/{bob}", seed::GUILD_ID), None).await;
    assert_eq!(back.body["roles"], json!([]));
}

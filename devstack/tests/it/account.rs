//! The browser's side of the Appwrite stand-in: email/password sessions (cookie and `X-Fallback-Cookies`),
//! JWTs minted from a session, signing out, and CORS for the registered web platforms.

use crate::support::{stand, Stand};
use reqwest::Method;
use serde_json::{json, Value};

fn client(stand: &Stand, method: Method, path: &str) -> reqwest::RequestBuilder {
    stand
        .http
        .request(method, format!("{}{path}", stand.devstack.appwrite_endpoint()))
        .header("X-Appwrite-Project", stand.devstack.project_id())
}

async fn body(request: reqwest::RequestBuilder) -> Value {
    request.send().await.expect("devstack answers").json().await.expect("a JSON body")
}

async fn user_with_password(stand: &Stand, id: &str, email: &str, password: &str) {
    let reply = stand
        .call(Method::POST, "/users", &[], Some(json!({"userId": id, "email": email, "password": password})))
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    assert!(reply.body.get("password").is_none() && reply.body["passwordUpdate"] != "", "{}", reply.body);
}

#[tokio::test]
async fn a_page_on_another_domain_signs_in_with_the_fallback_header_and_mints_jwts_for_its_user() {
    let stand = stand().await;
    user_with_password(&stand, "ana", "ana@example.com", "correct horse").await;
    let response = client(&stand, Method::POST, "/account/sessions/email")
        .header("origin", "http://localhost:9999")
        .json(&json!({"email": " Ana@Example.com", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.headers()["access-control-allow-origin"], "http://localhost:9999");
    assert_eq!(response.headers()["access-control-allow-credentials"], "true");
    assert!(response.headers()["access-control-expose-headers"].to_str().unwrap().contains("X-Fallback-Cookies"));
    let fallback = response.headers()["x-fallback-cookies"].to_str().unwrap().to_owned();
    let session: Value = response.json().await.unwrap();
    assert_eq!((session["userId"].as_str(), session["secret"].as_str()), (Some("ana"), Some("")));

    let jwt =
        body(client(&stand, Method::POST, "/account/jwts").header("x-fallback-cookies", &fallback).json(&json!({})))
            .await;
    let jwt = jwt["jwt"].as_str().expect("a jwt").to_owned();
    let me = body(client(&stand, Method::GET, "/account").header("x-appwrite-jwt", &jwt)).await;
    assert_eq!(me["$id"], "ana");

    let out = client(&stand, Method::DELETE, "/account/sessions/current")
        .header("x-fallback-cookies", &fallback)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    let after = client(&stand, Method::GET, "/account").header("x-fallback-cookies", &fallback).send().await.unwrap();
    assert_eq!(after.status().as_u16(), 401);
    let body: Value = after.json().await.unwrap();
    assert_eq!(body["type"], "general_unauthorized_scope");
}

#[tokio::test]
async fn wrong_passwords_unknown_emails_and_guests_get_appwrites_errors() {
    let stand = stand().await;
    user_with_password(&stand, "bea", "bea@example.com", "correct horse").await;
    for (email, password) in [("bea@example.com", "wrong horse"), ("nobody@example.com", "correct horse")] {
        let response = client(&stand, Method::POST, "/account/sessions/email")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        assert!(response.headers().get("set-cookie").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!((body["type"].as_str(), body["code"].as_i64()), (Some("user_invalid_credentials"), Some(401)));
    }
    let guest = client(&stand, Method::POST, "/account/jwts").json(&json!({})).send().await.unwrap();
    assert_eq!(guest.status().as_u16(), 401);
    let forged = client(&stand, Method::GET, "/account")
        .header("cookie", format!("a_session_{}=bm90IGEgc2Vzc2lvbg==", stand.devstack.project_id()))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
}

#[tokio::test]
async fn only_registered_web_platforms_may_call_from_a_browser() {
    let stand = stand().await;
    let preflight = client(&stand, Method::OPTIONS, "/account/sessions/email")
        .header("origin", "http://127.0.0.1:4000")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "http://127.0.0.1:4000");
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("X-Appwrite-Project"));
    let foreign =
        client(&stand, Method::GET, "/account").header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(foreign.status().as_u16(), 403);
    assert!(foreign.headers().get("access-control-allow-origin").is_none());
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["type"], "general_unknown_origin");
    // A server (with its key) is not a browser platform.
    let server = stand.call(Method::GET, "/users", &[], None).await;
    assert_eq!(server.status.as_u16(), 200);
}

//! Drives every route devstack serves (success and typical errors) and checks each response against the
//! official Appwrite spec. Coverage is proven with `/_devstack/calls`: every entry of `ROUTES` must have
//! been called, so a route added to the stand-in cannot escape this test.

use crate::schema_check::Spec;
use crate::support::{q, stand, Stand};
use reqwest::Method;
use serde_json::{json, Value};
use tollgate_devstack::appwrite::ROUTES;

struct Recorder<'a> {
    stand: &'a Stand,
    spec: Spec,
    problems: Vec<String>,
}

impl Recorder<'_> {
    async fn call(&mut self, method: Method, path: &str, query: &[(&str, String)], body: Option<Value>) -> Value {
        let reply = self.stand.call(method.clone(), path, query, body).await;
        self.problems.extend(self.spec.check(method.as_str(), path, reply.status.as_u16(), &reply.body));
        reply.body
    }
}

#[tokio::test]
async fn every_served_route_answers_as_the_official_spec_documents() {
    let stand = stand().await;
    let mut r = Recorder { stand: &stand, spec: Spec::load(), problems: Vec::new() };
    let col = "/databases/db/collections/col";

    r.call(Method::GET, "/health", &[], None).await;
    r.call(Method::POST, "/users", &[], Some(json!({"userId": "u1", "email": "U1@Example.com", "name": "One"}))).await;
    r.call(Method::POST, "/users", &[], Some(json!({"userId": "u1", "email": "other@example.com"}))).await; // 409
    r.call(
        Method::GET,
        "/users",
        &[("queries[]", q(json!({"method": "equal", "attribute": "email", "values": ["u1@example.com"]})))],
        None,
    )
    .await;
    r.call(Method::GET, "/users", &[("search", "One".to_owned())], None).await;
    r.call(Method::PATCH, "/users/u1/verification", &[], Some(json!({"emailVerification": true}))).await;
    r.call(Method::PATCH, "/users/u1/verification", &[], Some(json!({"emailVerification": "yes"}))).await; // 400
    r.call(Method::PATCH, "/users/nobody/verification", &[], Some(json!({"emailVerification": true}))).await; // 404
    r.call(
        Method::GET,
        "/users",
        &[("queries[]", q(json!({"method": "equal", "attribute": "emailVerification", "values": [true]})))],
        None,
    )
    .await;
    r.call(Method::GET, "/users/u1", &[], None).await;
    r.call(Method::GET, "/users/nobody", &[], None).await; // 404
    let jwt = r.call(Method::POST, "/users/u1/jwts", &[], Some(json!({"duration": 60}))).await;
    let account = stand
        .http
        .get(format!("{}/account", stand.devstack.appwrite_endpoint()))
        .header("X-Appwrite-Project", stand.devstack.project_id())
        .header("X-Appwrite-JWT", jwt["jwt"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("account");
    let status = account.status().as_u16();
    let body: Value = account.json().await.expect("json");
    r.problems.extend(r.spec.check("GET", "/account", status, &body));

    // The browser's account routes: a password user signs in, mints a JWT, signs out.
    r.call(
        Method::POST,
        "/users",
        &[],
        Some(json!({"userId": "pw", "email": "pw@example.com", "password": "long enough"})),
    )
    .await;
    r.call(
        Method::POST,
        "/users",
        &[],
        Some(json!({"userId": "pw2", "email": "pw2@example.com", "password": "short"})),
    )
    .await; // 400
    let account = |method: Method, path: &str, session: Option<&str>, body: Option<Value>| {
        let mut request = stand
            .http
            .request(method, format!("{}{path}", stand.devstack.appwrite_endpoint()))
            .header("X-Appwrite-Project", stand.devstack.project_id());
        if let Some(session) = session {
            request = request.header("cookie", session.to_owned());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    for (password, expected) in [("wrong password", 401), ("long enough", 201)] {
        let response = account(
            Method::POST,
            "/account/sessions/email",
            None,
            Some(json!({"email": "pw@example.com", "password": password})),
        )
        .await
        .expect("sign-in");
        let status = response.status().as_u16();
        assert_eq!(status, expected);
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("a_session_{}=", stand.devstack.project_id())))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned());
        let body: Value = response.json().await.expect("json");
        r.problems.extend(r.spec.check("POST", "/account/sessions/email", status, &body));
        let Some(cookie) = cookie else { continue };
        for (method, path) in [(Method::POST, "/account/jwts"), (Method::GET, "/account")] {
            let response = account(method.clone(), path, Some(&cookie), Some(json!({}))).await.expect("account");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            assert!(status < 300, "{path}: {status} {body}");
            r.problems.extend(r.spec.check(method.as_str(), path, status, &body));
        }
        let response = account(Method::DELETE, "/account/sessions/current", Some(&cookie), None).await.expect("out");
        assert_eq!(response.status().as_u16(), 204);
        let response = account(Method::POST, "/account/jwts", Some(&cookie), Some(json!({}))).await.expect("jwt");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 401, "signed out: {body}");
        r.problems.extend(r.spec.check("POST", "/account/jwts", status, &body));
    }

    r.call(Method::POST, "/databases", &[], Some(json!({"databaseId": "db", "name": "DB"}))).await;
    r.call(Method::GET, "/databases", &[], None).await;
    r.call(Method::GET, "/databases/db", &[], None).await;
    r.call(Method::POST, "/databases/db/collections", &[], Some(json!({"collectionId": "col", "name": "Col"}))).await;
    r.call(Method::GET, "/databases/db/collections", &[], None).await;
    r.call(
        Method::POST,
        &format!("{col}/attributes/string"),
        &[],
        Some(json!({"key": "name", "size": 64, "required": false})),
    )
    .await;
    r.call(Method::POST, &format!("{col}/attributes/integer"), &[], Some(json!({"key": "n", "required": false}))).await;
    r.call(Method::POST, &format!("{col}/attributes/boolean"), &[], Some(json!({"key": "b", "required": false}))).await;
    r.call(Method::POST, &format!("{col}/attributes/datetime"), &[], Some(json!({"key": "at", "required": false})))
        .await;
    r.call(
        Method::POST,
        &format!("{col}/attributes/string"),
        &[],
        Some(json!({"key": "name", "size": 64, "required": false})),
    )
    .await; // 409
    for key in ["name", "n", "b", "at"] {
        stand.wait_available(&format!("{col}/attributes/{key}")).await;
    }
    r.call(Method::GET, &format!("{col}/attributes"), &[], None).await;
    r.call(Method::GET, &format!("{col}/attributes/name"), &[], None).await;
    r.call(Method::GET, col, &[], None).await;
    r.call(
        Method::POST,
        &format!("{col}/indexes"),
        &[],
        Some(json!({"key": "name_unique", "type": "unique", "attributes": ["name"]})),
    )
    .await;
    stand.wait_available(&format!("{col}/indexes/name_unique")).await;
    r.call(Method::GET, &format!("{col}/indexes"), &[], None).await;
    r.call(Method::GET, &format!("{col}/indexes/name_unique"), &[], None).await;

    r.call(
        Method::POST,
        &format!("{col}/documents"),
        &[],
        Some(json!({"documentId": "d1", "data": {"name": "a", "n": 1, "b": true, "at": "2026-01-01T00:00:00Z"}})),
    )
    .await;
    r.call(
        Method::POST,
        &format!("{col}/documents"),
        &[],
        Some(json!({"documentId": "unique()", "data": {"name": "b"}})),
    )
    .await;
    r.call(Method::POST, &format!("{col}/documents"), &[], Some(json!({"documentId": "d1", "data": {"name": "c"}})))
        .await; // 409
    r.call(Method::POST, &format!("{col}/documents"), &[], Some(json!({"documentId": "d9", "data": {"nope": 1}})))
        .await; // 400
    r.call(
        Method::GET,
        &format!("{col}/documents"),
        &[("queries[]", q(json!({"method": "greaterThan", "attribute": "n", "values": [0]})))],
        None,
    )
    .await;
    r.call(Method::GET, &format!("{col}/documents/d1"), &[], None).await;
    r.call(Method::GET, &format!("{col}/documents/missing"), &[], None).await; // 404
    r.call(Method::PATCH, &format!("{col}/documents/d1"), &[], Some(json!({"data": {"n": 2}}))).await;
    r.call(Method::PUT, &format!("{col}/documents/d2"), &[], Some(json!({"data": {"name": "z"}}))).await;
    r.call(Method::DELETE, &format!("{col}/documents/d2"), &[], None).await;
    r.call(
        Method::DELETE,
        &format!("{col}/documents"),
        &[],
        Some(json!({"queries": [q(json!({"method": "equal", "attribute": "name", "values": ["b"]}))]})),
    )
    .await;

    r.call(Method::POST, "/teams", &[], Some(json!({"teamId": "paid", "name": "Paid"}))).await;
    r.call(Method::GET, "/teams", &[], None).await;
    r.call(Method::GET, "/teams/paid", &[], None).await;
    let membership =
        r.call(Method::POST, "/teams/paid/memberships", &[], Some(json!({"userId": "u1", "roles": ["member"]}))).await;
    r.call(Method::POST, "/teams/paid/memberships", &[], Some(json!({"userId": "u1", "roles": ["member"]}))).await; // 409
    r.call(
        Method::GET,
        "/teams/paid/memberships",
        &[("queries[]", q(json!({"method": "equal", "attribute": "userId", "values": ["u1"]})))],
        None,
    )
    .await;
    r.call(Method::GET, "/users/u1/memberships", &[], None).await;
    let membership_id = membership["$id"].as_str().unwrap_or_default().to_owned();
    r.call(Method::GET, &format!("/teams/paid/memberships/{membership_id}"), &[], None).await;
    r.call(Method::DELETE, &format!("/teams/paid/memberships/{membership_id}"), &[], None).await;
    r.call(Method::DELETE, "/users/u1", &[], None).await;

    assert!(r.problems.is_empty(), "responses that do not conform:\n{}", r.problems.join("\n"));

    let calls = stand.control(Method::GET, "/_devstack/calls", None).await;
    let missed = crate::support::unexercised(ROUTES, &calls);
    assert!(missed.is_empty(), "routes served but not checked against the spec: {missed:?}");
}

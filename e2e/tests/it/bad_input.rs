use crate::support::{
    jwt_for, order_body, sign, sign_with, spawn_app, spawn_app_with_secret, TestApp, ADMIN_TOKEN, DB,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

async fn assert_nothing_written(app: &TestApp) {
    assert!(app.documents("webhook_events").await.is_empty(), "no claim written");
    assert!(app.documents("webhook_failures").await.is_empty(), "no failure written");
    assert!(app.documents("subscriptions").await.is_empty(), "no subscription written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_oversized_and_misrouted_requests_are_refused_without_writes() {
    let app = spawn_app().await;
    app.create_user("buyer6", "buyer6@example.com").await;
    let body = order_body("order.completed", 801, "buyer6@example.com");

    let missing = app.post_sellapp_webhook(&body, None).await;
    assert_eq!((missing.status.as_u16(), missing.body.clone()), (401, json!({"ok": false, "error": "missing_header"})));

    let wrong = app.post_sellapp_webhook(&body, Some(&"0".repeat(64))).await;
    assert_eq!((wrong.status.as_u16(), wrong.body.clone()), (401, json!({"ok": false, "error": "signature_mismatch"})));

    let tampered = body.replace("801", "802");
    let replayed = app.post_sellapp_webhook(&tampered, Some(&sign(&body))).await;
    assert_eq!(replayed.status.as_u16(), 401);

    let huge = format!("{{\"event\":\"order.completed\",\"pad\":\"{}\"}}", "x".repeat((1 << 20) + 1));
    let too_large = app.post_sellapp_webhook(&huge, Some(&sign(&huge))).await;
    assert_eq!(
        (too_large.status.as_u16(), too_large.body.clone()),
        (413, json!({"ok": false, "error": "payload_too_large"}))
    );

    let get = app.http.get(app.url("/sell/webhook")).send().await.expect("GET /sell/webhook");
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(get.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));
    let unknown = app.http.post(app.url("/nope")).send().await.expect("POST /nope");
    assert_eq!(unknown.status().as_u16(), 404);

    assert_nothing_written(&app).await;
    assert!(app.memberships("buyer6").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whsec_secret_that_is_not_base64_answers_503_not_configured_so_the_provider_keeps_retrying() {
    const BAD_SECRET: &str = "whsec_not-base64";
    let app = spawn_app_with_secret(BAD_SECRET).await;
    app.create_user("buyer7", "buyer7@example.com").await;
    let body = order_body("order.completed", 803, "buyer7@example.com");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let response = app
        .http
        .post(app.url("/sell/webhook"))
        .header("content-type", "application/json")
        .header("webhook-id", "msg_803")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", "v1,c2lnbmF0dXJl")
        .body(body.clone())
        .send()
        .await
        .expect("POST /sell/webhook");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("60"));
    let answer: serde_json::Value = response.json().await.expect("json");
    assert_eq!(answer, json!({"ok": false, "error": "not_configured"}));
    assert_nothing_written(&app).await;

    // Deliveries signed the legacy way use the secret as it is, so they are unaffected.
    let legacy = app.post_sellapp_webhook(&body, Some(&sign_with(BAD_SECRET, &body))).await;
    assert_eq!((legacy.status.as_u16(), legacy.body), (200, json!({"ok": true})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentic_but_unusable_payloads_are_recorded_for_an_admin() {
    let app = spawn_app().await;
    let not_json = "this is not json";
    assert_eq!(app.deliver(not_json, 202).await, json!({"ok": true, "recorded": true}));
    let no_email = json!({"event": "order.completed", "data": {"id": 901}, "store": 1}).to_string();
    app.deliver(&no_email, 202).await;

    let failures = app.documents("webhook_failures").await;
    let codes: Vec<&str> = failures.iter().filter_map(|f| f["errorCode"].as_str()).collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(codes.contains(&"invalid_json") && codes.contains(&"no_email_in_payload"), "{codes:?}");
    for failure in &failures {
        assert_eq!(failure["state"], "dead", "retrying the same body cannot help; an admin replays after a fix");
    }
    assert!(failures.iter().any(|f| f["bodyText"] == not_json));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_on_the_worker() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/health")).send().await.expect("GET /health");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.expect("json"), json!({"ok": true}));
}

/// Every case of `e2e/tests/corpus/bad_input.json` (its `about` describes the format), replayed through
/// workerd against the webhook and api workers: each answers its expected status and machine-readable
/// reason, and afterwards nothing was written (no write route of any stand-in was called, and every
/// collection, the users and the `paid` team hold what they held before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_input_corpus_is_refused_with_clear_reasons_and_writes_nothing() {
    let corpus: Value = serde_json::from_str(include_str!("../corpus/bad_input.json")).expect("the corpus is JSON");
    let cases = corpus["cases"].as_array().expect("cases");
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let app = spawn_app().await;
    app.create_user("corpus", "corpus@example.com").await;
    let jwt = jwt_for(&app, "corpus").await;
    let before = Footprint::of(&app).await;

    let (mut wrong, mut skipped) = (Vec::new(), Vec::new());
    for case in cases {
        let name = case["name"].as_str().expect("a name");
        let (status, reason) = replay(&app, case, &jwt).await;
        let expected = (case["expect"]["status"].as_u64().map(|s| s as u16), case["expect"]["reason"].as_str());
        if case["skip_if_route_missing"] == true && status == 404 && reason.as_deref() == Some("not_found") {
            skipped.push(name);
        } else if (Some(status), reason.as_deref()) != expected {
            wrong.push(format!("{name}: expected {expected:?}, got ({status}, {reason:?})"));
        }
    }
    eprintln!("bad-input corpus: {} cases, {} skipped (route missing): {skipped:?}", cases.len(), skipped.len());
    assert!(wrong.is_empty(), "{} of {} cases answered otherwise:\n{}", wrong.len(), cases.len(), wrong.join("\n"));

    let after = Footprint::of(&app).await;
    assert_eq!(after.counts, before.counts, "document, user and membership counts changed");
    let writes: Vec<String> = after
        .calls
        .iter()
        .filter(|(route, count)| is_write(route) && before.calls.get(*route) != Some(*count))
        .map(|(route, count)| format!("{route}: {} -> {count}", before.calls.get(route).copied().unwrap_or(0)))
        .collect();
    assert!(writes.is_empty(), "write routes were called: {writes:?}");
}

fn is_write(route: &str) -> bool {
    ["POST ", "PUT ", "PATCH ", "DELETE "].iter().any(|method| route.starts_with(method))
}

/// What the stand-ins hold and how often each route was called.
struct Footprint {
    counts: BTreeMap<String, u64>,
    calls: BTreeMap<String, u64>,
}

impl Footprint {
    async fn of(app: &TestApp) -> Self {
        let appwrite = |path: &str| {
            app.http
                .get(format!("{}{path}", app.devstack.appwrite_endpoint()))
                .header("X-Appwrite-Project", app.devstack.project_id())
                .header("X-Appwrite-Key", app.devstack.api_key())
        };
        let total = |body: Value| body["total"].as_u64().expect("a total");
        let get = |request: reqwest::RequestBuilder| async move {
            request.send().await.expect("devstack").json::<Value>().await.expect("json")
        };
        let mut counts = BTreeMap::new();
        let collections = get(appwrite(&format!("/databases/{DB}/collections"))).await;
        for collection in collections["collections"].as_array().expect("collections") {
            let id = collection["$id"].as_str().expect("an id");
            let documents = get(appwrite(&format!("/databases/{DB}/collections/{id}/documents"))).await;
            counts.insert(format!("documents {id}"), total(documents));
        }
        counts.insert("users".to_owned(), total(get(appwrite("/users")).await));
        counts.insert("paid members".to_owned(), app.paid_team_size().await);
        let mut calls = BTreeMap::new();
        for (stand, base) in [
            ("appwrite", app.devstack.appwrite_base_url()),
            ("discord", app.devstack.discord_base_url()),
            ("sellapp", app.devstack.sellapp_base_url()),
        ] {
            let counted = get(app.http.get(format!("{base}/_devstack/calls"))).await;
            for (route, count) in counted.as_object().expect("calls") {
                calls.insert(format!("{route} ({stand})"), count.as_u64().unwrap_or(0));
            }
        }
        Self { counts, calls }
    }
}

/// Sends one case; answers the status and the reason (the webhook's `error`, the api's `error.code`, or a
/// redirect's `reason=`).
async fn replay(app: &TestApp, case: &Value, jwt: &str) -> (u16, Option<String>) {
    let base = match case["worker"].as_str() {
        Some("webhook") => app.worker.url(),
        Some("api") => app.api.url(),
        other => panic!("unknown worker {other:?}"),
    };
    let url = format!("{base}{}", case["path"].as_str().expect("a path"));
    let body = case_body(case);
    let mut headers = Vec::new();
    for pair in case["headers"].as_array().into_iter().flatten() {
        let name = pair[0].as_str().expect("a header name");
        headers.push((name.to_owned(), header_value(&pair[1], &body, jwt)));
    }
    let method = case["method"].as_str().expect("a method");
    if case["chunked"] == true {
        return send_chunked(&url, method, &headers, &body).await;
    }
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
    let mut request = client.request(method.parse().expect("a method"), &url);
    for (name, value) in headers {
        let value = reqwest::header::HeaderValue::from_bytes(&value).expect("a header value");
        request = request.header(name.as_str(), value);
    }
    let response = request.body(body).send().await.unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
    let status = response.status().as_u16();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    (status, reason_of(status, location.as_deref(), &text))
}

fn reason_of(status: u16, location: Option<&str>, body: &str) -> Option<String> {
    if (300..400).contains(&status) {
        let url = reqwest::Url::parse(location?).ok()?;
        return url.query_pairs().find(|(k, _)| k == "reason").map(|(_, v)| v.into_owned());
    }
    let body: Value = serde_json::from_str(body).ok()?;
    body["error"].as_str().or_else(|| body["error"]["code"].as_str()).map(str::to_owned)
}

fn case_body(case: &Value) -> Vec<u8> {
    if let Some(text) = case["body"].as_str() {
        text.as_bytes().to_vec()
    } else if let Some(hex) = case["body_hex"].as_str() {
        hex::decode(hex).expect("body_hex is hex")
    } else if case["body_repeat"].is_object() {
        repeated(&case["body_repeat"]).into_bytes()
    } else {
        Vec::new()
    }
}

fn repeated(spec: &Value) -> String {
    let part = |key: &str| spec[key].as_str().unwrap_or_default();
    let times = spec["times"].as_u64().expect("times") as usize;
    format!("{}{}{}", part("prefix"), part("repeat").repeat(times), part("suffix"))
}

fn header_value(spec: &Value, body: &[u8], jwt: &str) -> Vec<u8> {
    if let Some(hex) = spec["hex"].as_str() {
        return hex::decode(hex).expect("hex");
    }
    let template = match spec.as_str() {
        Some(text) => text.to_owned(),
        None => repeated(spec),
    };
    let body_text = String::from_utf8_lossy(body);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let value = if let Some(text) = template.strip_prefix("{signature_of:").and_then(|t| t.strip_suffix('}')) {
        sign(text)
    } else if let Some(secret) = template.strip_prefix("{signature_with:").and_then(|t| t.strip_suffix('}')) {
        sign_with(secret, &body_text)
    } else {
        template
            .replace("{signature}", &sign(&body_text))
            .replace("{now}", &now.to_string())
            .replace("{jwt}", jwt)
            .replace("{admin}", ADMIN_TOKEN)
    };
    value.into_bytes()
}

/// HTTP/1.1 with `Transfer-Encoding: chunked` (no length announced), written by hand.
async fn send_chunked(url: &str, method: &str, headers: &[(String, Vec<u8>)], body: &[u8]) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(url).expect("a url");
    let address = format!("{}:{}", url.host_str().expect("a host"), url.port().expect("a port"));
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connecting");
    let mut request = format!(
        "{method} {} HTTP/1.1\r\nhost: {}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n",
        url.path(),
        url.host_str().unwrap_or_default()
    )
    .into_bytes();
    for (name, value) in headers {
        request.extend_from_slice(format!("{name}: ").as_bytes());
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).await.expect("writing the head");
    for chunk in body.chunks(64 * 1024) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
        // The worker may answer (and close) before the whole body is sent.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    let json = body.find('{').and_then(|start| body.rfind('}').map(|end| &body[start..=end])).unwrap_or_default();
    (status, reason_of(status, None, json))
}

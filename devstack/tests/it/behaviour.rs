use crate::support::{q, stand, stand_with};
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate_devstack::DevstackConfig;

const COL: &str = "/databases/db/collections/col";

#[tokio::test]
async fn requests_without_the_right_project_or_key_are_refused_with_appwrites_errors() {
    let stand = stand().await;
    let url = format!("{}/users", stand.devstack.appwrite_endpoint());
    let no_key =
        stand.http.get(&url).header("X-Appwrite-Project", stand.devstack.project_id()).send().await.expect("request");
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    let body: Value = no_key.json().await.expect("json");
    assert_eq!((body["type"].as_str(), body["code"].as_i64()), (Some("general_unauthorized_scope"), Some(401)));
    let wrong_key = stand
        .http
        .get(&url)
        .header("X-Appwrite-Project", stand.devstack.project_id())
        .header("X-Appwrite-Key", "nope")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong_key.json::<Value>().await.expect("json")["type"], "user_unauthorized");
    let no_project =
        stand.http.get(&url).header("X-Appwrite-Key", stand.devstack.api_key()).send().await.expect("request");
    assert_eq!(no_project.status(), StatusCode::UNAUTHORIZED);
    let wrong_project = stand
        .http
        .get(&url)
        .header("X-Appwrite-Project", "other")
        .header("X-Appwrite-Key", stand.devstack.api_key())
        .send()
        .await
        .expect("request");
    assert_eq!(wrong_project.status(), StatusCode::NOT_FOUND);
    let jwt = stand
        .http
        .get(format!("{}/account", stand.devstack.appwrite_endpoint()))
        .header("X-Appwrite-Project", stand.devstack.project_id())
        .header("X-Appwrite-JWT", "forged")
        .send()
        .await
        .expect("request");
    assert_eq!(jwt.json::<Value>().await.expect("json")["type"], "user_jwt_invalid");
}

#[tokio::test]
async fn users_are_found_by_exact_lower_cased_email_and_duplicates_conflict() {
    let stand = stand().await;
    assert_eq!(
        stand.post("/users", json!({"userId": "a", "email": " Mixed@Example.COM "})).await.status,
        StatusCode::CREATED
    );
    let dup = stand.post("/users", json!({"userId": "b", "email": "mixed@example.com"})).await;
    assert_eq!((dup.status, dup.body["type"].as_str()), (StatusCode::CONFLICT, Some("user_email_already_exists")));
    let found = stand
        .get(
            "/users",
            &[("queries[]", q(json!({"method": "equal", "attribute": "email", "values": ["mixed@example.com"]})))],
        )
        .await;
    assert_eq!(found.body["total"], 1);
    assert_eq!(found.body["users"][0]["$id"], "a");

    // Narrowed by the key, the whole query still decides: several values, another filter, `$id`.
    stand.post("/users", json!({"userId": "c", "email": "other@example.com"})).await;
    let equal =
        |attribute: &str, values: Value| q(json!({"method": "equal", "attribute": attribute, "values": values}));
    let both = stand
        .get(
            "/users",
            &[("queries[]", equal("email", json!(["mixed@example.com", "other@example.com", "none@example.com"])))],
        )
        .await;
    assert_eq!(both.body["total"], 2);
    let narrowed = stand
        .get(
            "/users",
            &[
                ("queries[]", equal("email", json!(["mixed@example.com", "other@example.com"]))),
                ("queries[]", equal("$id", json!(["c"]))),
            ],
        )
        .await;
    assert_eq!((narrowed.body["total"].clone(), narrowed.body["users"][0]["$id"].clone()), (json!(1), json!("c")));
    let case = stand.get("/users", &[("queries[]", equal("email", json!(["Mixed@Example.COM"])))]).await;
    assert_eq!(case.body["total"], 0, "stored lower-cased, matched exactly");
}

#[tokio::test]
async fn an_email_is_marked_verified_by_the_server_and_every_user_answer_reports_it() {
    let stand = stand().await;
    let created = stand.post("/users", json!({"userId": "v1", "email": "v1@example.com"})).await;
    assert_eq!((created.status, &created.body["emailVerification"]), (StatusCode::CREATED, &json!(false)));
    stand.post("/users", json!({"userId": "v2", "email": "v2@example.com"})).await;

    let verified =
        stand.call(Method::PATCH, "/users/v1/verification", &[], Some(json!({"emailVerification": true}))).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!((verified.body["$id"].as_str(), &verified.body["emailVerification"]), (Some("v1"), &json!(true)));
    assert_eq!(verified.body["email"], "v1@example.com", "the whole user model is returned");
    assert_eq!(stand.get("/users/v1", &[]).await.body["emailVerification"], true);

    let jwt = stand.post("/users/v1/jwts", json!({})).await.body["jwt"].as_str().unwrap_or_default().to_owned();
    let account = stand
        .http
        .get(format!("{}/account", stand.devstack.appwrite_endpoint()))
        .header("X-Appwrite-Project", stand.devstack.project_id())
        .header("X-Appwrite-JWT", jwt)
        .send()
        .await
        .expect("account");
    assert_eq!(account.json::<Value>().await.expect("json")["emailVerification"], true);

    let only_verified = stand
        .get(
            "/users",
            &[("queries[]", q(json!({"method": "equal", "attribute": "emailVerification", "values": [true]})))],
        )
        .await;
    assert_eq!(
        (only_verified.body["total"].as_u64(), only_verified.body["users"][0]["$id"].as_str()),
        (Some(1), Some("v1"))
    );
    let unverified = stand
        .get(
            "/users",
            &[("queries[]", q(json!({"method": "equal", "attribute": "emailVerification", "values": [false]})))],
        )
        .await;
    assert_eq!((unverified.body["total"].as_u64(), unverified.body["users"][0]["$id"].as_str()), (Some(1), Some("v2")));

    let unverify =
        stand.call(Method::PATCH, "/users/v1/verification", &[], Some(json!({"emailVerification": false}))).await;
    assert_eq!((unverify.status, &unverify.body["emailVerification"]), (StatusCode::OK, &json!(false)));
}

#[tokio::test]
async fn verification_updates_and_user_queries_refuse_what_appwrite_refuses() {
    let stand = stand().await;
    stand.post("/users", json!({"userId": "v1", "email": "v1@example.com"})).await;
    let patch = |path: &'static str, body: Value| stand.call(Method::PATCH, path, &[], Some(body));

    let missing_user = patch("/users/nobody/verification", json!({"emailVerification": true})).await;
    assert_eq!(
        (missing_user.status, missing_user.body["type"].as_str()),
        (StatusCode::NOT_FOUND, Some("user_not_found"))
    );
    for bad in [json!({}), json!({"emailVerification": "true"}), json!({"emailVerification": null}), json!([true])] {
        let refused = patch("/users/v1/verification", bad.clone()).await;
        assert_eq!(
            (refused.status, refused.body["type"].as_str()),
            (StatusCode::BAD_REQUEST, Some("general_argument_invalid")),
            "{bad}"
        );
    }
    let still = stand.get("/users/v1", &[]).await;
    assert_eq!(still.body["emailVerification"], false, "a refused update changes nothing");

    let with_jwt_only = stand
        .http
        .patch(format!("{}/users/v1/verification", stand.devstack.appwrite_endpoint()))
        .header("X-Appwrite-Project", stand.devstack.project_id())
        .json(&json!({"emailVerification": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(with_jwt_only.status(), StatusCode::UNAUTHORIZED, "an API key is required");

    let string_value = stand
        .get(
            "/users",
            &[("queries[]", q(json!({"method": "equal", "attribute": "emailVerification", "values": ["true"]})))],
        )
        .await;
    assert_eq!(
        (string_value.status, string_value.body["type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("general_query_invalid"))
    );
    let not_filterable = stand
        .get("/users", &[("queries[]", q(json!({"method": "equal", "attribute": "prefs", "values": ["x"]})))])
        .await;
    assert_eq!(
        (not_filterable.status, not_filterable.body["type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("general_query_invalid"))
    );
}

#[tokio::test]
async fn attributes_build_asynchronously_and_documents_are_validated_against_them() {
    let stand = stand().await;
    stand.post("/databases", json!({"databaseId": "db", "name": "DB"})).await;
    stand.post("/databases/db/collections", json!({"collectionId": "col", "name": "Col"})).await;
    let created =
        stand.post(&format!("{COL}/attributes/string"), json!({"key": "s", "size": 3, "required": true})).await;
    assert_eq!((created.status, created.body["status"].as_str()), (StatusCode::ACCEPTED, Some("processing")));
    let early = stand.post(&format!("{COL}/documents"), json!({"documentId": "x", "data": {"s": "ok"}})).await;
    assert_eq!(early.body["type"], "document_invalid_structure", "an attribute still building is unknown");
    stand.wait_available(&format!("{COL}/attributes/s")).await;
    let too_long = stand.post(&format!("{COL}/documents"), json!({"documentId": "x", "data": {"s": "long"}})).await;
    assert_eq!(
        (too_long.status, too_long.body["type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("document_invalid_structure"))
    );
    let missing = stand.post(&format!("{COL}/documents"), json!({"documentId": "x", "data": {}})).await;
    assert_eq!(missing.body["type"], "document_invalid_structure");
    assert_eq!(
        stand.post(&format!("{COL}/documents"), json!({"documentId": "x", "data": {"s": "ok"}})).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn every_query_method_filters_as_documented() {
    let stand = stand().await;
    stand
        .collection(&[
            ("name", "string", json!({"size": 32})),
            ("n", "integer", json!({})),
            ("at", "datetime", json!({})),
            ("tags", "string", json!({"size": 16, "array": true})),
        ])
        .await;
    for (id, name, n, at, tags) in [
        ("d1", Some("alpha"), 1, Some("2026-01-01T00:00:00.000+00:00"), json!(["x"])),
        ("d2", Some("beta"), 2, Some("2026-02-01T00:00:00.000+00:00"), json!(["y"])),
        ("d3", None, 3, None, json!([])),
    ] {
        let reply = stand
            .post(
                &format!("{COL}/documents"),
                json!({"documentId": id, "data": {"name": name, "n": n, "at": at, "tags": tags}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let ids = |reply: crate::support::Reply| -> Vec<String> {
        reply.body["documents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["$id"].as_str().map(str::to_owned))
            .collect()
    };
    let cases = [
        (json!({"method": "equal", "attribute": "name", "values": ["alpha", "beta"]}), vec!["d1", "d2"]),
        (json!({"method": "notEqual", "attribute": "name", "values": ["alpha"]}), vec!["d2"]),
        (json!({"method": "lessThan", "attribute": "n", "values": [2]}), vec!["d1"]),
        (json!({"method": "lessThanEqual", "attribute": "n", "values": [2]}), vec!["d1", "d2"]),
        (json!({"method": "greaterThan", "attribute": "n", "values": [2]}), vec!["d3"]),
        (json!({"method": "greaterThanEqual", "attribute": "at", "values": ["2026-01-15T00:00:00Z"]}), vec!["d2"]),
        (json!({"method": "isNull", "attribute": "name"}), vec!["d3"]),
        (json!({"method": "isNotNull", "attribute": "at"}), vec!["d1", "d2"]),
        (json!({"method": "contains", "attribute": "tags", "values": ["y"]}), vec!["d2"]),
    ];
    for (query, expected) in cases {
        let reply = stand.get(&format!("{COL}/documents"), &[("queries[]", q(query.clone()))]).await;
        assert_eq!(ids(reply), expected, "{query}");
    }
    let desc = stand
        .get(&format!("{COL}/documents"), &[("queries[]", q(json!({"method": "orderDesc", "attribute": "n"})))])
        .await;
    assert_eq!(ids(desc), vec!["d3", "d2", "d1"]);
    let page = stand
        .get(
            &format!("{COL}/documents"),
            &[
                ("queries[]", q(json!({"method": "offset", "values": [1]}))),
                ("queries[]", q(json!({"method": "limit", "values": [1]}))),
            ],
        )
        .await;
    assert_eq!(page.body["total"], 3, "total ignores limit and offset");
    assert_eq!(ids(page), vec!["d2"]);
    let bad = stand.get(&format!("{COL}/documents"), &[("queries[]", "not json".to_owned())]).await;
    assert_eq!((bad.status, bad.body["type"].as_str()), (StatusCode::BAD_REQUEST, Some("general_query_invalid")));
    let unknown = stand
        .get(
            &format!("{COL}/documents"),
            &[("queries[]", q(json!({"method": "equal", "attribute": "nope", "values": [1]})))],
        )
        .await;
    assert_eq!(unknown.body["type"], "general_query_invalid");
}

#[tokio::test]
async fn cursor_pagination_walks_every_page_exactly_once() {
    let stand = stand().await;
    stand.collection(&[("n", "integer", json!({}))]).await;
    for i in 0..7 {
        stand.post(&format!("{COL}/documents"), json!({"documentId": format!("d{i}"), "data": {"n": i}})).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..3 {
        let mut query = vec![("queries[]", q(json!({"method": "limit", "values": [3]})))];
        if let Some(after) = &cursor {
            query.push(("queries[]", q(json!({"method": "cursorAfter", "values": [after]}))));
        }
        let page = stand.get(&format!("{COL}/documents"), &query).await;
        let ids: Vec<String> = page.body["documents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["$id"].as_str().map(str::to_owned))
            .collect();
        cursor = ids.last().cloned();
        seen.extend(ids);
    }
    assert_eq!(seen, (0..7).map(|i| format!("d{i}")).collect::<Vec<_>>());
    let unknown = stand
        .get(&format!("{COL}/documents"), &[("queries[]", q(json!({"method": "cursorAfter", "values": ["nope"]})))])
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unique_indexes_and_ids_hold_under_concurrent_writes() {
    let stand = stand().await;
    stand.collection(&[("plan", "string", json!({"size": 16}))]).await;
    let index = stand
        .post(&format!("{COL}/indexes"), json!({"key": "plan_unique", "type": "unique", "attributes": ["plan"]}))
        .await;
    assert_eq!(index.status, StatusCode::ACCEPTED);
    stand.wait_available(&format!("{COL}/indexes/plan_unique")).await;
    stand.post(&format!("{COL}/documents"), json!({"documentId": "a", "data": {"plan": "pro"}})).await;
    let clash = stand.post(&format!("{COL}/documents"), json!({"documentId": "b", "data": {"plan": "pro"}})).await;
    assert_eq!((clash.status, clash.body["type"].as_str()), (StatusCode::CONFLICT, Some("document_already_exists")));

    let documents = format!("{COL}/documents");
    let same_id = join_all(
        (0..10).map(|i| stand.post(&documents, json!({"documentId": "race", "data": {"plan": format!("p{i}")}}))),
    )
    .await;
    assert_eq!(same_id.iter().filter(|r| r.status == StatusCode::CREATED).count(), 1);
    assert_eq!(same_id.iter().filter(|r| r.status == StatusCode::CONFLICT).count(), 9);

    stand.post("/users", json!({"userId": "u", "email": "u@example.com"})).await;
    stand.post("/teams", json!({"teamId": "paid", "name": "Paid"})).await;
    let adds =
        join_all((0..10).map(|_| stand.post("/teams/paid/memberships", json!({"userId": "u", "roles": ["member"]}))))
            .await;
    assert_eq!(adds.iter().filter(|r| r.status == StatusCode::CREATED).count(), 1);
    assert!(adds
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .all(|r| r.body["type"] == "membership_already_confirmed"));
    assert_eq!(stand.get("/teams/paid", &[]).await.body["total"], 1);
}

#[tokio::test]
async fn upsert_creates_then_replaces_and_bulk_delete_removes_only_matches() {
    let stand = stand().await;
    stand.collection(&[("s", "string", json!({"size": 8})), ("k", "string", json!({"size": 8}))]).await;
    let first =
        stand.call(Method::PUT, &format!("{COL}/documents/u1"), &[], Some(json!({"data": {"s": "a", "k": "x"}}))).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = stand.call(Method::PUT, &format!("{COL}/documents/u1"), &[], Some(json!({"data": {"s": "b"}}))).await;
    assert_eq!((second.body["s"].as_str(), second.body["k"].clone()), (Some("b"), Value::Null));
    assert_eq!(second.body["$createdAt"], first.body["$createdAt"]);
    stand.post(&format!("{COL}/documents"), json!({"documentId": "u2", "data": {"s": "keep"}})).await;
    let deleted = stand
        .call(
            Method::DELETE,
            &format!("{COL}/documents"),
            &[],
            Some(json!({"queries": [q(json!({"method": "equal", "attribute": "s", "values": ["b"]}))]})),
        )
        .await;
    assert_eq!(deleted.body["total"], 1);
    assert_eq!(stand.get(&format!("{COL}/documents"), &[]).await.body["total"], 1);
}

#[tokio::test]
async fn playing_a_1_5_server_hides_the_routes_added_in_1_7_until_reset() {
    let stand = stand().await;
    stand.collection(&[("s", "string", json!({"size": 8}))]).await;
    stand.post(&format!("{COL}/documents"), json!({"documentId": "d1", "data": {"s": "a"}})).await;
    stand.control(Method::POST, "/_devstack/version", Some(json!({"version": "1.5"}))).await;
    let bulk = stand.call(Method::DELETE, &format!("{COL}/documents"), &[], Some(json!({"queries": []}))).await;
    let upsert = stand.call(Method::PUT, &format!("{COL}/documents/d2"), &[], Some(json!({"data": {"s": "b"}}))).await;
    for reply in [&bulk, &upsert] {
        assert_eq!(
            (reply.status, reply.body["type"].as_str()),
            (StatusCode::NOT_FOUND, Some("general_route_not_found"))
        );
    }
    assert_eq!(stand.get(&format!("{COL}/documents"), &[]).await.body["total"], 1, "nothing was deleted");
    let single = stand.call(Method::DELETE, &format!("{COL}/documents/d1"), &[], None).await;
    assert_eq!(single.status, StatusCode::NO_CONTENT, "1.5 routes still work");
    let refused = stand
        .http
        .post(format!("{}/_devstack/version", stand.devstack.appwrite_base_url()))
        .json(&json!({"version": "1.4"}))
        .send()
        .await
        .expect("control route");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    stand.control(Method::POST, "/_devstack/reset", None).await;
    stand.collection(&[("s", "string", json!({"size": 8}))]).await;
    let upsert = stand.call(Method::PUT, &format!("{COL}/documents/d2"), &[], Some(json!({"data": {"s": "b"}}))).await;
    assert_eq!(upsert.status, StatusCode::CREATED, "a reset plays 1.8 again");
}

#[tokio::test]
async fn faults_fail_a_share_of_requests_by_path_and_are_cleared() {
    let stand = stand().await;
    stand
        .control(Method::POST, "/_devstack/faults", Some(json!({"rate": 1.0, "status": 503, "paths": ["/v1/teams"]})))
        .await;
    let teams = stand.get("/teams", &[]).await;
    assert_eq!((teams.status, teams.body["code"].as_i64()), (StatusCode::SERVICE_UNAVAILABLE, Some(503)));
    assert_eq!(stand.get("/users", &[]).await.status, StatusCode::OK, "other paths are untouched");
    stand.control(Method::POST, "/_devstack/faults", Some(json!({"rate": 0}))).await;
    assert_eq!(stand.get("/teams", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn seeded_faults_fail_the_same_requests_each_time_the_seed_is_set() {
    let stand = stand().await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let faults = json!({"rate": 0.5, "status": 503, "paths": ["/v1/teams"], "seed": 42});
        stand.control(Method::POST, "/_devstack/faults", Some(faults)).await;
        let mut pattern = Vec::new();
        for _ in 0..32 {
            pattern.push(stand.get("/teams", &[]).await.status == StatusCode::SERVICE_UNAVAILABLE);
        }
        runs.push(pattern);
    }
    assert_eq!(runs[0], runs[1], "the same seed fails the same requests");
    assert!(runs[0].iter().any(|failed| *failed) && runs[0].iter().any(|failed| !*failed), "{:?}", runs[0]);
}

#[tokio::test]
async fn calls_are_counted_by_route_and_reset_wipes_everything() {
    let stand = stand().await;
    stand.post("/users", json!({"userId": "a", "email": "a@example.com"})).await;
    stand.get("/users/a", &[]).await;
    stand.get("/users/a", &[]).await;
    let calls = stand.control(Method::GET, "/_devstack/calls", None).await;
    assert_eq!(calls["GET /v1/users/{userId}"], 2);
    assert_eq!(calls["POST /v1/users"], 1);
    stand.control(Method::POST, "/_devstack/reset", None).await;
    assert_eq!(stand.get("/users/a", &[]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn data_survives_a_restart_with_a_data_dir() {
    let dir = std::env::temp_dir().join(format!("devstack-persist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = DevstackConfig::for_tests();
    config.data_dir = Some(dir.clone());
    let first = stand_with(config.clone()).await;
    first.post("/users", json!({"userId": "kept", "email": "kept@example.com"})).await;
    first.devstack.shutdown().await;
    let second = stand_with(config).await;
    assert_eq!(second.get("/users/kept", &[]).await.status, StatusCode::OK);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two stands with the same documents, one with a key index over every attribute: every query answers
/// the same on both (the index only narrows the rows; devstack/src/appwrite/indexed.rs), including the
/// cases where SQLite's own ordering would differ (datetimes across offsets, mixed types, arrays).
#[tokio::test]
async fn indexed_attributes_answer_every_query_exactly_as_unindexed_ones() {
    let attributes = [
        ("name", "string", json!({"size": 40})),
        ("n", "integer", json!({})),
        ("f", "float", json!({})),
        ("b", "boolean", json!({})),
        ("at", "datetime", json!({})),
        ("tags", "string", json!({"size": 16, "array": true})),
    ];
    let documents = [
        (
            "d1",
            json!({"name": "alpha", "n": 1, "f": 1.5, "b": true, "at": "2026-01-01T00:00:00.000+00:00", "tags": ["x"]}),
        ),
        (
            "d2",
            json!({"name": "beta", "n": 2, "f": 2.0, "b": false, "at": "2026-01-01T10:30:00.250+02:00", "tags": []}),
        ),
        ("d3", json!({"name": null, "n": 3, "f": null, "b": null, "at": null, "tags": null})),
        (
            "d4",
            json!({"name": "2026-01-01T00:00:00Z", "n": -9007199254740993_i64, "f": 2, "b": true, "at": "1999-12-31T23:59:59.999Z"}),
        ),
        ("d5", json!({"name": "Beta gamma", "n": 9007199254740992_i64, "f": -0.0})),
    ];
    let plain = stand().await;
    let indexed = stand().await;
    for (stand, with_index) in [(&plain, false), (&indexed, true)] {
        stand.collection(&attributes).await;
        if with_index {
            let keys: Vec<&str> = attributes.iter().map(|(key, _, _)| *key).collect();
            for (key, kind, fields) in [("all_idx", "key", json!(keys)), ("meta_idx", "key", json!(["$createdAt"]))] {
                let body = json!({"key": key, "type": kind, "attributes": fields});
                let reply = stand.post(&format!("{COL}/indexes"), body).await;
                assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
            }
        }
        for (id, data) in &documents {
            let reply = stand.post(&format!("{COL}/documents"), json!({"documentId": id, "data": data})).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        }
        // An update moves a document between index entries.
        let update = json!({"data": {"n": 4, "name": "delta"}});
        let reply = stand.call(Method::PATCH, &format!("{COL}/documents/d3"), &[], Some(update)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let queries = [
        json!({"method": "equal", "attribute": "name", "values": ["alpha", "delta"]}),
        json!({"method": "equal", "attribute": "name", "values": ["2026-01-01T00:00:00.000+00:00"]}),
        json!({"method": "equal", "attribute": "n", "values": [-9007199254740992_i64]}),
        json!({"method": "equal", "attribute": "n", "values": [true]}),
        json!({"method": "equal", "attribute": "f", "values": [2]}),
        json!({"method": "equal", "attribute": "f", "values": [0]}),
        json!({"method": "equal", "attribute": "b", "values": [true]}),
        json!({"method": "equal", "attribute": "b", "values": [1]}),
        json!({"method": "equal", "attribute": "at", "values": ["2026-01-01T08:30:00.25Z"]}),
        json!({"method": "equal", "attribute": "tags", "values": ["x"]}),
        json!({"method": "equal", "attribute": "$id", "values": ["d2", "d5", "nope"]}),
        json!({"method": "equal", "attribute": "name", "values": [null]}),
        json!({"method": "notEqual", "attribute": "b", "values": [true]}),
        json!({"method": "lessThan", "attribute": "n", "values": [3]}),
        json!({"method": "lessThan", "attribute": "n", "values": [1, 3]}),
        json!({"method": "lessThan", "attribute": "name", "values": ["b"]}),
        json!({"method": "lessThan", "attribute": "name", "values": ["2027-01-01T00:00:00Z"]}),
        json!({"method": "lessThanEqual", "attribute": "at", "values": ["2026-01-01T08:30:00.2504Z"]}),
        json!({"method": "lessThan", "attribute": "at", "values": ["2026-01-01T08:30:00.250Z"]}),
        json!({"method": "greaterThan", "attribute": "at", "values": ["2026-01-01T01:00:00.000+01:00"]}),
        json!({"method": "greaterThan", "attribute": "at", "values": ["2026-01-01T08:30:00.2499+00:00"]}),
        json!({"method": "greaterThanEqual", "attribute": "f", "values": [1.5]}),
        json!({"method": "greaterThan", "attribute": "b", "values": [false]}),
        json!({"method": "greaterThan", "attribute": "name", "values": [1]}),
        json!({"method": "between", "attribute": "n", "values": [1, 3]}),
        json!({"method": "between", "attribute": "at", "values": ["1999-12-31T23:59:59.999Z", "2026-01-01T00:00:00Z"]}),
        json!({"method": "isNull", "attribute": "f"}),
        json!({"method": "isNull", "attribute": "tags"}),
        json!({"method": "isNotNull", "attribute": "tags"}),
        json!({"method": "isNotNull", "attribute": "at"}),
        json!({"method": "startsWith", "attribute": "name", "values": ["Be"]}),
        json!({"method": "lessThan", "attribute": "$createdAt", "values": ["2100-01-01T00:00:00+05:00"]}),
        json!({"method": "and", "values": [
            {"method": "greaterThan", "attribute": "n", "values": [0]},
            {"method": "isNotNull", "attribute": "b"}]}),
        json!({"method": "and", "values": [
            {"method": "greaterThanEqual", "attribute": "n", "values": [1]},
            {"method": "lessThan", "attribute": "n", "values": [4]},
            {"method": "isNotNull", "attribute": "n"}]}),
        json!({"method": "or", "values": [
            {"method": "equal", "attribute": "n", "values": [1]},
            {"method": "isNull", "attribute": "at"}]}),
    ];
    let answer =
        |reply: crate::support::Reply| (reply.status, reply.body["total"].clone(), reply.body["documents"].clone());
    for query in queries {
        let params = [("queries[]", q(query.clone()))];
        let (status, total, documents) = answer(plain.get(&format!("{COL}/documents"), &params).await);
        assert_eq!(status, StatusCode::OK, "{query}");
        let expected: Vec<&Value> = documents.as_array().into_iter().flatten().map(|d| &d["$id"]).collect();
        let (status, indexed_total, indexed_documents) =
            answer(indexed.get(&format!("{COL}/documents"), &params).await);
        let got: Vec<&Value> = indexed_documents.as_array().into_iter().flatten().map(|d| &d["$id"]).collect();
        assert_eq!((status, indexed_total, got), (StatusCode::OK, total, expected), "{query}");
    }
    // Deleting a document takes it out of the index too.
    let reply = indexed.call(Method::DELETE, &format!("{COL}/documents/d1"), &[], None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let params = [("queries[]", q(json!({"method": "equal", "attribute": "name", "values": ["alpha"]})))];
    assert_eq!(indexed.get(&format!("{COL}/documents"), &params).await.body["total"], 0);
}

#[tokio::test]
async fn a_store_written_before_indexed_values_were_kept_is_indexed_when_it_opens() {
    let dir = std::env::temp_dir().join(format!("devstack-reindex-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = DevstackConfig::for_tests();
    config.data_dir = Some(dir.clone());
    let first = stand_with(config.clone()).await;
    first.collection(&[("email", "string", json!({"size": 64}))]).await;
    let body = json!({"key": "email_idx", "type": "key", "attributes": ["email"]});
    assert_eq!(first.post(&format!("{COL}/indexes"), body).await.status, StatusCode::ACCEPTED);
    for id in ["a", "b"] {
        let data = json!({"documentId": id, "data": {"email": format!("{id}@example.com")}});
        assert_eq!(first.post(&format!("{COL}/documents"), data).await.status, StatusCode::CREATED);
    }
    first.devstack.shutdown().await;
    let connection = rusqlite::Connection::open(dir.join("appwrite.sqlite")).expect("the store opens");
    connection.execute_batch("DROP TABLE document_values").expect("the table drops");
    drop(connection);
    let second = stand_with(config).await;
    let params = [("queries[]", q(json!({"method": "equal", "attribute": "email", "values": ["b@example.com"]})))];
    let reply = second.get(&format!("{COL}/documents"), &params).await;
    assert_eq!(reply.body["documents"][0]["$id"], "b", "{}", reply.body);
    let _ = std::fs::remove_dir_all(&dir);
}

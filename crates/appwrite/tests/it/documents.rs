use crate::support::{client, collection};
use serde_json::json;
use tollgate_appwrite::{ErrorKind, Query};

#[tokio::test]
async fn documents_are_created_read_updated_upserted_and_deleted() {
    let (_devstack, client) = client().await;
    collection(&client).await;
    let created = client.create_document("db", "col", "d1", &json!({"name": "a"}), None).await.unwrap();
    assert_eq!(created.id, "d1");
    let duplicate = client.create_document("db", "col", "d1", &json!({"name": "b"}), None).await.unwrap_err();
    assert_eq!(duplicate.kind, ErrorKind::DocumentAlreadyExists);
    let updated = client.update_document("db", "col", "d1", &json!({"tag": "t"})).await.unwrap();
    assert_eq!((updated.data["name"].as_str(), updated.data["tag"].as_str()), (Some("a"), Some("t")));
    let upserted = client.upsert_document("db", "col", "d2", &json!({"name": "new"})).await.unwrap();
    assert_eq!(upserted.data["name"], "new");
    let replaced = client.upsert_document("db", "col", "d2", &json!({"name": "again"})).await.unwrap();
    assert_eq!(replaced.data["name"], "again");
    client.delete_document("db", "col", "d2").await.unwrap();
    let gone = client.get_document("db", "col", "d2").await.unwrap_err();
    assert!(gone.is_not_found());
}

#[tokio::test]
async fn queries_filter_and_list_all_documents_pages_through_everything() {
    let (_devstack, client) = client().await;
    collection(&client).await;
    for i in 0..23 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        client
            .create_document("db", "col", &format!("d{i:02}"), &json!({"name": format!("n{i}"), "tag": tag}), None)
            .await
            .unwrap();
    }
    let evens = client.list_all_documents("db", "col", &[Query::equal("tag", ["even"])], 5).await.unwrap();
    assert_eq!(evens.len(), 12);
    let odd_page = client.list_documents("db", "col", &[Query::equal("tag", ["odd"]), Query::limit(3)]).await.unwrap();
    assert_eq!((odd_page.total, odd_page.documents.len()), (11, 3));
    let deleted = client.delete_documents("db", "col", &[Query::equal("tag", ["odd"])]).await.unwrap();
    assert_eq!(deleted, 11);
    assert_eq!(client.list_all_documents("db", "col", &[], 100).await.unwrap().len(), 12);
}

#[tokio::test]
async fn schema_creation_conflicts_are_reported_as_already_exists() {
    let (_devstack, client) = client().await;
    collection(&client).await;
    assert_eq!(client.create_database("db", "DB").await.unwrap_err().kind, ErrorKind::DatabaseAlreadyExists);
    assert_eq!(
        client.create_collection("db", "col", "Col", false).await.unwrap_err().kind,
        ErrorKind::CollectionAlreadyExists
    );
    let again = client.create_string_attribute("db", "col", "name", 64, false, None).await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::AttributeAlreadyExists);
    let index =
        client.create_index("db", "col", "name_idx", tollgate_appwrite::IndexKind::Unique, &["name"]).await.unwrap();
    assert_eq!(index.key, "name_idx");
}

/// Documents `d00`..`d22`, tagged `even` (12) and `odd` (11).
async fn tagged_documents(client: &tollgate_appwrite::AppwriteClient) {
    for i in 0..23 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        client.create_document("db", "col", &format!("d{i:02}"), &json!({"tag": tag}), None).await.unwrap();
    }
}

async fn play_version(devstack: &tollgate_devstack::RunningDevstack, version: &str) {
    let url = format!("{}/_devstack/version", devstack.appwrite_base_url());
    let response = reqwest::Client::new().post(url).json(&json!({ "version": version })).send().await.unwrap();
    assert!(response.status().is_success(), "devstack refused version {version}");
}

async fn bulk_delete_calls(devstack: &tollgate_devstack::RunningDevstack) -> u64 {
    let calls: serde_json::Value =
        reqwest::get(format!("{}/_devstack/calls", devstack.appwrite_base_url())).await.unwrap().json().await.unwrap();
    calls["DELETE /v1/databases/{databaseId}/collections/{collectionId}/documents"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn delete_matching_uses_bulk_delete_where_the_server_has_it() {
    let (devstack, client) = client().await;
    collection(&client).await;
    tagged_documents(&client).await;
    let deletion = client.delete_matching("db", "col", &[Query::equal("tag", ["odd"])], 4).await.unwrap();
    assert_eq!((deletion.deleted, deletion.more_remain), (11, false), "one bulk call deletes every match");
    assert_eq!(bulk_delete_calls(&devstack).await, 1);
    assert_eq!(client.list_all_documents("db", "col", &[], 100).await.unwrap().len(), 12);
}

#[tokio::test]
async fn without_bulk_delete_matching_documents_are_deleted_at_most_max_per_call() {
    let (devstack, client) = client().await;
    collection(&client).await;
    tagged_documents(&client).await;
    play_version(&devstack, "1.5").await;
    let odd = [Query::equal("tag", ["odd"])];
    let mut runs = Vec::new();
    for _ in 0..3 {
        let deletion = client.delete_matching("db", "col", &odd, 4).await.unwrap();
        runs.push((deletion.deleted, deletion.more_remain));
    }
    assert_eq!(runs, [(4, true), (4, true), (3, false)]);
    assert_eq!(bulk_delete_calls(&devstack).await, 1, "the missing route is probed once per client");
    let left = client.list_all_documents("db", "col", &[], 100).await.unwrap();
    assert_eq!(left.len(), 12);
    assert!(left.iter().all(|d| d.data["tag"] == "even"));
    // The rest of a 1.5 server's documents API still works: upsert is emulated.
    let upserted = client.upsert_document("db", "col", "d99", &json!({"tag": "new"})).await.unwrap();
    assert_eq!(upserted.data["tag"], "new");
}

#[tokio::test]
async fn a_missing_collection_is_an_error_not_a_missing_bulk_route() {
    let (_devstack, client) = client().await;
    collection(&client).await;
    let error = client.delete_matching("db", "nope", &[Query::equal("tag", ["odd"])], 4).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::CollectionNotFound);
}

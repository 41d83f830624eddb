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

use crate::support::client;
use tollgate_appwrite::{AppwriteClient, AppwriteConfig, ErrorKind};
use tollgate_core::Secret;

#[tokio::test]
async fn a_wrong_api_key_is_unauthorized_and_never_echoed() {
    let (devstack, _) = client().await;
    let wrong = AppwriteClient::new(AppwriteConfig {
        endpoint: devstack.appwrite_endpoint(),
        project_id: devstack.project_id().to_owned(),
        api_key: Secret::new("sk-wrong-key-value"),
    })
    .unwrap();
    let error = wrong.health().await.unwrap_err();
    assert_eq!((error.status, error.kind.clone()), (Some(401), ErrorKind::Unauthorized));
    assert!(!error.to_string().contains("sk-wrong-key-value"));
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_transport_error() {
    let client = AppwriteClient::new(AppwriteConfig {
        endpoint: "http://127.0.0.1:9/v1".into(),
        project_id: "p".into(),
        api_key: Secret::new("k"),
    })
    .unwrap();
    let error = client.health().await.unwrap_err();
    assert_eq!((error.status, error.kind.clone()), (None, ErrorKind::Transport));
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_missing_document_is_not_found_and_a_missing_route_is_not() {
    let (_devstack, client) = client().await;
    client.create_database("db", "DB").await.unwrap();
    client.create_collection("db", "col", "Col", false).await.unwrap();
    assert!(client.get_document("db", "col", "nope").await.unwrap_err().is_not_found());
    let missing_collection = client.get_document("db", "nope", "x").await.unwrap_err();
    assert_eq!(missing_collection.kind, ErrorKind::CollectionNotFound);
    assert!(
        !missing_collection.is_not_found(),
        "a missing collection is a configuration error, not an absent document"
    );
}

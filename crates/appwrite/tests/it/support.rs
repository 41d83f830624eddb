use std::time::{Duration, Instant};
use tollgate_appwrite::{AppwriteClient, AppwriteConfig};
use tollgate_core::Secret;
use tollgate_devstack::{DevstackConfig, RunningDevstack};

pub async fn client() -> (RunningDevstack, AppwriteClient) {
    let devstack = tollgate_devstack::start(DevstackConfig::for_tests()).await.expect("devstack");
    let client = AppwriteClient::new(AppwriteConfig {
        endpoint: format!("{}/", devstack.appwrite_endpoint()),
        project_id: devstack.project_id().to_owned(),
        api_key: Secret::new(devstack.api_key()),
    })
    .expect("client");
    (devstack, client)
}

/// Database `db`, collection `col` with string attributes `name` and `tag`, built.
pub async fn collection(client: &AppwriteClient) {
    client.create_database("db", "DB").await.expect("database");
    client.create_collection("db", "col", "Col", false).await.expect("collection");
    for key in ["name", "tag"] {
        client.create_string_attribute("db", "col", key, 64, false, None).await.expect("attribute");
    }
    for key in ["name", "tag"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.get_attribute("db", "col", key).await.expect("attribute").status != "available" {
            assert!(Instant::now() < deadline, "{key} never became available");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

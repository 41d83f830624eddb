//! Databases, collections, attributes and indexes, for bootstrapping. Attributes and indexes are built
//! asynchronously: created with 202 and `status: processing`, usable once `available`.

use crate::error::AppwriteError;
use crate::models::{BuildStatus, IndexKind};
use crate::AppwriteClient;
use reqwest::Method;
use serde_json::{json, Value};

impl AppwriteClient {
    pub async fn create_database(&self, id: &str, name: &str) -> Result<Value, AppwriteError> {
        self.call(Method::POST, &["databases"], &[], Some(&json!({ "databaseId": id, "name": name }))).await
    }

    pub async fn get_database(&self, id: &str) -> Result<Value, AppwriteError> {
        self.call(Method::GET, &["databases", id], &[], None).await
    }

    pub async fn create_collection(
        &self,
        db: &str,
        id: &str,
        name: &str,
        document_security: bool,
    ) -> Result<Value, AppwriteError> {
        let body = json!({ "collectionId": id, "name": name, "documentSecurity": document_security });
        self.call(Method::POST, &["databases", db, "collections"], &[], Some(&body)).await
    }

    pub async fn get_collection(&self, db: &str, id: &str) -> Result<Value, AppwriteError> {
        self.call(Method::GET, &["databases", db, "collections", id], &[], None).await
    }

    async fn create_attribute(
        &self,
        db: &str,
        collection: &str,
        kind: &str,
        body: Value,
    ) -> Result<BuildStatus, AppwriteError> {
        self.call(Method::POST, &["databases", db, "collections", collection, "attributes", kind], &[], Some(&body))
            .await
    }

    pub async fn create_string_attribute(
        &self,
        db: &str,
        collection: &str,
        key: &str,
        size: u32,
        required: bool,
        default: Option<&str>,
    ) -> Result<BuildStatus, AppwriteError> {
        let body = json!({ "key": key, "size": size, "required": required, "default": default });
        self.create_attribute(db, collection, "string", body).await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_integer_attribute(
        &self,
        db: &str,
        collection: &str,
        key: &str,
        required: bool,
        min: Option<i64>,
        max: Option<i64>,
        default: Option<i64>,
    ) -> Result<BuildStatus, AppwriteError> {
        let body = json!({ "key": key, "required": required, "min": min, "max": max, "default": default });
        self.create_attribute(db, collection, "integer", body).await
    }

    pub async fn create_boolean_attribute(
        &self,
        db: &str,
        collection: &str,
        key: &str,
        required: bool,
        default: Option<bool>,
    ) -> Result<BuildStatus, AppwriteError> {
        let body = json!({ "key": key, "required": required, "default": default });
        self.create_attribute(db, collection, "boolean", body).await
    }

    pub async fn create_datetime_attribute(
        &self,
        db: &str,
        collection: &str,
        key: &str,
        required: bool,
    ) -> Result<BuildStatus, AppwriteError> {
        self.create_attribute(db, collection, "datetime", json!({ "key": key, "required": required })).await
    }

    pub async fn get_attribute(&self, db: &str, collection: &str, key: &str) -> Result<BuildStatus, AppwriteError> {
        self.call(Method::GET, &["databases", db, "collections", collection, "attributes", key], &[], None).await
    }

    pub async fn list_attributes(&self, db: &str, collection: &str) -> Result<Vec<BuildStatus>, AppwriteError> {
        #[derive(serde::Deserialize)]
        struct List {
            attributes: Vec<BuildStatus>,
        }
        let list: List =
            self.call(Method::GET, &["databases", db, "collections", collection, "attributes"], &[], None).await?;
        Ok(list.attributes)
    }

    pub async fn create_index(
        &self,
        db: &str,
        collection: &str,
        key: &str,
        kind: IndexKind,
        attributes: &[&str],
    ) -> Result<BuildStatus, AppwriteError> {
        let body = json!({ "key": key, "type": kind.as_str(), "attributes": attributes });
        self.call(Method::POST, &["databases", db, "collections", collection, "indexes"], &[], Some(&body)).await
    }

    pub async fn get_index(&self, db: &str, collection: &str, key: &str) -> Result<BuildStatus, AppwriteError> {
        self.call(Method::GET, &["databases", db, "collections", collection, "indexes", key], &[], None).await
    }

    pub async fn health(&self) -> Result<crate::models::Health, AppwriteError> {
        self.call(Method::GET, &["health"], &[], None).await
    }
}

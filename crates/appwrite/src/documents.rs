//! Documents of a collection (`/databases/{db}/collections/{col}/documents`).

use crate::client::decode;
use crate::error::{AppwriteError, ErrorKind};
use crate::models::{Document, DocumentList};
use crate::query::{params, Query};
use crate::AppwriteClient;
use reqwest::Method;
use serde_json::{json, Value};

/// The most documents one list call may return in Appwrite.
pub const MAX_PAGE_SIZE: u32 = 5_000;

/// What one [`AppwriteClient::delete_matching`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deletion {
    pub deleted: u64,
    /// Matching documents were left for a later call (only when deleting one by one, past `max`).
    pub more_remain: bool,
}

/// Whether an error says the server has no such route, as Appwrite 1.5/1.6 answer the bulk endpoints
/// that arrived in 1.7: the router finds no (method, path) match and its wildcard route answers 404
/// `general_route_not_found`; 405 is what a router or proxy that knows the path but not the method says.
/// Any other 404 (`collection_not_found`, `database_not_found`) is a real error, not a missing feature.
fn route_missing(error: &AppwriteError) -> bool {
    error.kind == ErrorKind::RouteNotFound || error.status == Some(405)
}

impl AppwriteClient {
    async fn document_call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Document, AppwriteError> {
        let value: Value = self.call(method, segments, query, body).await?;
        Document::from_value(value).map_err(|e| AppwriteError::decode(200, e))
    }

    /// `document_id` is an id or `"unique()"`. A duplicate id (or unique-index value) is a 409.
    pub async fn create_document(
        &self,
        db: &str,
        collection: &str,
        document_id: &str,
        data: &Value,
        permissions: Option<&[String]>,
    ) -> Result<Document, AppwriteError> {
        let mut body = json!({ "documentId": document_id, "data": data });
        if let Some(permissions) = permissions {
            body["permissions"] = json!(permissions);
        }
        self.document_call(Method::POST, &["databases", db, "collections", collection, "documents"], &[], Some(&body))
            .await
    }

    pub async fn get_document(&self, db: &str, collection: &str, id: &str) -> Result<Document, AppwriteError> {
        self.document_call(Method::GET, &["databases", db, "collections", collection, "documents", id], &[], None).await
    }

    /// PATCH: only the attributes in `data` change.
    pub async fn update_document(
        &self,
        db: &str,
        collection: &str,
        id: &str,
        data: &Value,
    ) -> Result<Document, AppwriteError> {
        let body = json!({ "data": data });
        self.document_call(
            Method::PATCH,
            &["databases", db, "collections", collection, "documents", id],
            &[],
            Some(&body),
        )
        .await
    }

    /// Create or replace (PUT, Appwrite 1.7+: 200 or 201). Servers without it (1.5/1.6) answer 404/405;
    /// then it is emulated: create with the id, and on 409 update.
    pub async fn upsert_document(
        &self,
        db: &str,
        collection: &str,
        id: &str,
        data: &Value,
    ) -> Result<Document, AppwriteError> {
        let body = json!({ "data": data });
        let segments = ["databases", db, "collections", collection, "documents", id];
        match self.document_call(Method::PUT, &segments, &[], Some(&body)).await {
            Err(e) if route_missing(&e) => match self.create_document(db, collection, id, data, None).await {
                Err(e) if e.kind == ErrorKind::DocumentAlreadyExists => {
                    self.update_document(db, collection, id, data).await
                }
                other => other,
            },
            other => other,
        }
    }

    pub async fn delete_document(&self, db: &str, collection: &str, id: &str) -> Result<(), AppwriteError> {
        self.call_no_content(Method::DELETE, &["databases", db, "collections", collection, "documents", id], None).await
    }

    pub async fn list_documents(
        &self,
        db: &str,
        collection: &str,
        queries: &[Query],
    ) -> Result<DocumentList, AppwriteError> {
        let segments = ["databases", db, "collections", collection, "documents"];
        let (status, text) =
            self.send(Method::GET, &segments, &params(queries), None, crate::client::Auth::ApiKey).await?;
        decode_list(status, &text)
    }

    /// Every document matching `filters`, page by page (`cursorAfter`) until a short page.
    pub async fn list_all_documents(
        &self,
        db: &str,
        collection: &str,
        filters: &[Query],
        page_size: u32,
    ) -> Result<Vec<Document>, AppwriteError> {
        let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        let mut all = Vec::new();
        loop {
            let mut queries = filters.to_vec();
            queries.push(Query::limit(page_size));
            if let Some(last) = all.last().map(|d: &Document| d.id.clone()) {
                queries.push(Query::cursor_after(&last));
            }
            let page = self.list_documents(db, collection, &queries).await?;
            let short = (page.documents.len() as u32) < page_size;
            all.extend(page.documents);
            if short {
                return Ok(all);
            }
        }
    }

    /// Bulk delete of every document matching `queries` (API key only).
    pub async fn delete_documents(&self, db: &str, collection: &str, queries: &[Query]) -> Result<u64, AppwriteError> {
        let body = json!({ "queries": queries.iter().map(Query::to_param).collect::<Vec<_>>() });
        let segments = ["databases", db, "collections", collection, "documents"];
        let (status, text) =
            self.send(Method::DELETE, &segments, &[], Some(&body), crate::client::Auth::ApiKey).await?;
        if text.trim().is_empty() {
            return Ok(0);
        }
        Ok(decode_list(status, &text).map(|list| list.total).unwrap_or(0))
    }

    /// Deletes the documents matching `filters` (filters only: no limit, order or cursor) on every
    /// supported Appwrite version. Bulk delete first (1.7+: one call, every match). A server without it
    /// (1.5/1.6, see [`route_missing`]) is remembered by this client, and then at most `max` matching ids
    /// are listed (`select` `$id`: documents such as failure records can be large) and deleted one by
    /// one: 1 + `max` calls (+ 1 for the first probe), so a cron run stays within its subrequest budget
    /// and the next run continues where [`Deletion::more_remain`] says there is more. `max` is clamped
    /// to 1..=[`MAX_PAGE_SIZE`].
    pub async fn delete_matching(
        &self,
        db: &str,
        collection: &str,
        filters: &[Query],
        max: u32,
    ) -> Result<Deletion, AppwriteError> {
        if !self.lacks_bulk_delete() {
            match self.delete_documents(db, collection, filters).await {
                Ok(deleted) => return Ok(Deletion { deleted, more_remain: false }),
                Err(e) if route_missing(&e) => self.remember_no_bulk_delete(),
                Err(e) => return Err(e),
            }
        }
        let max = max.clamp(1, MAX_PAGE_SIZE);
        let mut queries = filters.to_vec();
        queries.extend([Query::select(["$id"]), Query::limit(max)]);
        let segments = ["databases", db, "collections", collection, "documents"];
        let (status, text) =
            self.send(Method::GET, &segments, &params(&queries), None, crate::client::Auth::ApiKey).await?;
        #[derive(serde::Deserialize)]
        struct Id {
            #[serde(rename = "$id")]
            id: String,
        }
        #[derive(serde::Deserialize)]
        struct Ids {
            total: u64,
            documents: Vec<Id>,
        }
        let page: Ids = decode(status, &text)?;
        let mut deleted = 0;
        for doc in &page.documents {
            match self.delete_document(db, collection, &doc.id).await {
                Ok(()) => deleted += 1,
                // Deleted meanwhile (another run): what was wanted.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Deletion { deleted, more_remain: page.total > page.documents.len() as u64 })
    }
}

/// A document list response: every document must decode, or the whole list is a decode error. Public
/// for the fuzz targets (`fuzz/`).
pub fn decode_list(status: u16, text: &str) -> Result<DocumentList, AppwriteError> {
    #[derive(serde::Deserialize)]
    struct Raw {
        total: u64,
        documents: Vec<Value>,
    }
    let raw: Raw = decode(status, text)?;
    let documents = raw
        .documents
        .into_iter()
        .map(Document::from_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AppwriteError::decode(status, e))?;
    Ok(DocumentList { total: raw.total, documents })
}

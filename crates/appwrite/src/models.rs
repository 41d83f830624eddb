//! Response models, decoded leniently: unknown fields are ignored and optional ones may be absent, so the
//! same client reads Appwrite 1.5 to 1.8.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    /// Whether the user proved they own `email`: what a pending purchase is given on. Required, so a
    /// response without it is a decode error rather than an unverified (or verified) user.
    pub email_verification: bool,
    #[serde(default)]
    pub status: bool,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(rename = "$createdAt")]
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct UserList {
    pub total: u64,
    pub users: Vec<User>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    #[serde(rename = "$id")]
    pub id: String,
    pub user_id: String,
    pub team_id: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub joined: Option<String>,
    #[serde(default)]
    pub user_email: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct MembershipList {
    pub total: u64,
    pub memberships: Vec<Membership>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipOutcome {
    Created,
    AlreadyMember,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Team {
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub collection_id: String,
    pub database_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every attribute that is not a `$` meta field.
    pub data: Map<String, Value>,
}

impl Document {
    /// From one document of a response (public for the fuzz targets, `fuzz/`).
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(mut fields) = value else { return Err("a document must be a JSON object".into()) };
        let mut take = |key: &str| fields.remove(key);
        let text = |v: Option<Value>, key: &str| -> Result<String, String> {
            v.and_then(|v| v.as_str().map(str::to_owned)).ok_or_else(|| format!("document without `{key}`"))
        };
        let time = |v: Option<Value>, key: &str| -> Result<DateTime<Utc>, String> {
            let raw =
                v.and_then(|v| v.as_str().map(str::to_owned)).ok_or_else(|| format!("document without `{key}`"))?;
            DateTime::parse_from_rfc3339(&raw).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("`{key}`: {e}"))
        };
        let id = text(take("$id"), "$id")?;
        let collection_id = take("$collectionId").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let database_id = take("$databaseId").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let created_at = time(take("$createdAt"), "$createdAt")?;
        let updated_at = time(take("$updatedAt"), "$updatedAt")?;
        fields.retain(|key, _| !key.starts_with('$'));
        Ok(Self { id, collection_id, database_id, created_at, updated_at, data: fields })
    }

    /// The attributes as a typed value.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(Value::Object(self.data.clone()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DocumentList {
    pub total: u64,
    pub documents: Vec<Document>,
}

/// An attribute or index as Appwrite reports it while building it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BuildStatus {
    pub key: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Key,
    Unique,
    Fulltext,
}

impl IndexKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Unique => "unique",
            Self::Fulltext => "fulltext",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Health {
    #[serde(default)]
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_separates_meta_fields_from_attributes() {
        let doc = Document::from_value(json!({
            "$id": "u1", "$collectionId": "subscriptions", "$databaseId": "crypto",
            "$createdAt": "2026-01-01T00:00:00.000+00:00", "$updatedAt": "2026-01-02T00:00:00.000+00:00",
            "$permissions": [], "$sequence": 3, "status": "active"
        }))
        .unwrap();
        assert_eq!(doc.id, "u1");
        assert_eq!(doc.data.len(), 1);
        assert_eq!(doc.data["status"], "active");
    }

    #[test]
    fn a_user_decodes_its_email_verification_and_is_refused_without_it() {
        let user = json!({"$id": "u1", "email": "a@example.com", "emailVerification": true, "status": true});
        assert!(serde_json::from_value::<User>(user.clone()).unwrap().email_verification);
        let mut without = user;
        without.as_object_mut().unwrap().remove("emailVerification");
        assert!(serde_json::from_value::<User>(without).is_err());
    }

    #[test]
    fn a_document_without_an_id_is_a_decode_error() {
        assert!(Document::from_value(json!({"status": "active"})).is_err());
    }
}

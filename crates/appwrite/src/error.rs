//! Appwrite errors: `{message, code, type, version}` with `code` an integer (what the server sends) or a
//! string (what the OpenAPI spec says). Callers branch on [`ErrorKind`], decoded from `type`, never on
//! message text; several 409s mean different things.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    DocumentNotFound,
    DocumentAlreadyExists,
    DocumentInvalidStructure,
    UserNotFound,
    UserAlreadyExists,
    UserEmailAlreadyExists,
    UserJwtInvalid,
    Unauthorized,
    TeamNotFound,
    TeamAlreadyExists,
    MembershipNotFound,
    MembershipAlreadyConfirmed,
    TeamInviteAlreadyExists,
    DatabaseNotFound,
    CollectionNotFound,
    AttributeNotFound,
    IndexNotFound,
    DatabaseAlreadyExists,
    CollectionAlreadyExists,
    AttributeAlreadyExists,
    IndexAlreadyExists,
    AttributeNotAvailable,
    QueryInvalid,
    RouteNotFound,
    RateLimited,
    /// No response: connection refused, timeout, DNS.
    Transport,
    /// A response that is not what the endpoint documents.
    Decode,
    Other(String),
}

const TYPES: &[(&str, ErrorKind)] = &[
    ("document_not_found", ErrorKind::DocumentNotFound),
    ("document_already_exists", ErrorKind::DocumentAlreadyExists),
    ("document_invalid_structure", ErrorKind::DocumentInvalidStructure),
    ("user_not_found", ErrorKind::UserNotFound),
    ("user_already_exists", ErrorKind::UserAlreadyExists),
    ("user_email_already_exists", ErrorKind::UserEmailAlreadyExists),
    ("user_jwt_invalid", ErrorKind::UserJwtInvalid),
    ("user_unauthorized", ErrorKind::Unauthorized),
    ("general_unauthorized_scope", ErrorKind::Unauthorized),
    ("team_not_found", ErrorKind::TeamNotFound),
    ("team_already_exists", ErrorKind::TeamAlreadyExists),
    ("membership_not_found", ErrorKind::MembershipNotFound),
    ("membership_already_confirmed", ErrorKind::MembershipAlreadyConfirmed),
    ("team_invite_already_exists", ErrorKind::TeamInviteAlreadyExists),
    ("database_not_found", ErrorKind::DatabaseNotFound),
    ("collection_not_found", ErrorKind::CollectionNotFound),
    ("attribute_not_found", ErrorKind::AttributeNotFound),
    ("index_not_found", ErrorKind::IndexNotFound),
    ("database_already_exists", ErrorKind::DatabaseAlreadyExists),
    ("collection_already_exists", ErrorKind::CollectionAlreadyExists),
    ("attribute_already_exists", ErrorKind::AttributeAlreadyExists),
    ("index_already_exists", ErrorKind::IndexAlreadyExists),
    ("attribute_not_available", ErrorKind::AttributeNotAvailable),
    ("general_query_invalid", ErrorKind::QueryInvalid),
    ("general_route_not_found", ErrorKind::RouteNotFound),
    ("general_rate_limit_exceeded", ErrorKind::RateLimited),
];

impl ErrorKind {
    pub fn from_type(raw: &str) -> Self {
        TYPES.iter().find(|(t, _)| *t == raw).map(|(_, k)| k.clone()).unwrap_or_else(|| Self::Other(raw.to_owned()))
    }

    /// The Appwrite `type` this kind stands for (stored as `errorType` in failure records).
    pub fn as_type(&self) -> &str {
        match self {
            Self::Other(raw) => raw,
            Self::Transport => "transport_error",
            Self::Decode => "unexpected_response",
            kind => TYPES.iter().find(|(_, k)| k == kind).map(|(t, _)| *t).unwrap_or("unknown"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppwriteError {
    /// `None`: no HTTP response at all.
    pub status: Option<u16>,
    pub kind: ErrorKind,
    pub message: String,
}

impl AppwriteError {
    pub fn transport(message: impl Into<String>) -> Self {
        Self { status: None, kind: ErrorKind::Transport, message: message.into() }
    }

    pub fn decode(status: u16, message: impl Into<String>) -> Self {
        Self { status: Some(status), kind: ErrorKind::Decode, message: message.into() }
    }

    /// From an error response's status and body.
    pub fn from_response(status: u16, body: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default)]
            message: String,
            #[serde(default, rename = "type")]
            kind: String,
        }
        match serde_json::from_str::<Body>(body) {
            Ok(parsed) if !parsed.kind.is_empty() => {
                Self { status: Some(status), kind: ErrorKind::from_type(&parsed.kind), message: parsed.message }
            }
            _ => {
                let snippet: String = body.chars().take(200).collect();
                let kind = match status {
                    429 => ErrorKind::RateLimited,
                    _ => ErrorKind::Other(format!("http_{status}")),
                };
                Self { status: Some(status), kind, message: snippet }
            }
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
            && !matches!(
                self.kind,
                ErrorKind::RouteNotFound | ErrorKind::DatabaseNotFound | ErrorKind::CollectionNotFound
            )
    }

    pub fn is_conflict(&self) -> bool {
        self.status == Some(409)
    }

    pub fn is_already_member(&self) -> bool {
        matches!(self.kind, ErrorKind::MembershipAlreadyConfirmed | ErrorKind::TeamInviteAlreadyExists)
    }

    pub fn is_retryable(&self) -> bool {
        match self.status {
            None => true,
            Some(status) => status == 429 || status >= 500,
        }
    }
}

impl fmt::Display for AppwriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "Appwrite answered {status} {}: {}", self.kind.as_type(), self.message),
            None => write!(f, "Appwrite could not be reached: {}", self.message),
        }
    }
}

impl std::error::Error for AppwriteError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_code_as_an_integer_or_a_string() {
        let int = AppwriteError::from_response(
            409,
            r#"{"message":"m","code":409,"type":"document_already_exists","version":"1.8.1"}"#,
        );
        let string =
            AppwriteError::from_response(409, r#"{"message":"m","code":"409","type":"document_already_exists"}"#);
        assert_eq!(int.kind, ErrorKind::DocumentAlreadyExists);
        assert_eq!(string.kind, ErrorKind::DocumentAlreadyExists);
        assert!(int.is_conflict());
    }

    #[test]
    fn a_non_json_error_body_keeps_its_status() {
        let error = AppwriteError::from_response(502, "<html>Bad gateway</html>");
        assert_eq!(error.status, Some(502));
        assert!(error.is_retryable());
        assert_eq!(error.kind.as_type(), "http_502");
    }

    #[test]
    fn both_already_member_types_count_as_membership() {
        for t in ["membership_already_confirmed", "team_invite_already_exists"] {
            let body = format!(r#"{{"message":"","code":409,"type":"{t}"}}"#);
            assert!(AppwriteError::from_response(409, &body).is_already_member());
        }
    }

    #[test]
    fn a_missing_route_is_not_a_missing_document() {
        let error = AppwriteError::from_response(404, r#"{"message":"","code":404,"type":"general_route_not_found"}"#);
        assert!(!error.is_not_found());
        let error = AppwriteError::from_response(404, r#"{"message":"","code":404,"type":"document_not_found"}"#);
        assert!(error.is_not_found());
        assert_eq!(error.kind.as_type(), "document_not_found");
    }
}

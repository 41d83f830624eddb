//! Appwrite ids: at most 36 characters of `a-z A-Z 0-9 . - _`, not starting with a special character
//! (Appwrite's `UID` validator). Anything used as a document id passes through here first.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const MAX_APPWRITE_ID_LEN: usize = 36;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("id is empty")]
    Empty,
    #[error("id is longer than {MAX_APPWRITE_ID_LEN} characters")]
    TooLong,
    #[error("id may contain only a-z, A-Z, 0-9, '.', '-', '_' and must not start with a special character")]
    BadCharacter,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppwriteId(String);

impl AppwriteId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() {
            return Err(IdError::Empty);
        }
        if raw.len() > MAX_APPWRITE_ID_LEN {
            return Err(IdError::TooLong);
        }
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        let first_ok = raw.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_ok || !raw.chars().all(valid_char) {
            return Err(IdError::BadCharacter);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AppwriteId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AppwriteId> for String {
    fn from(id: AppwriteId) -> Self {
        id.0
    }
}

impl fmt::Display for AppwriteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AppwriteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// An Appwrite user's id. It is also the id of that user's `subscriptions` and `profiles` documents.
pub type UserId = AppwriteId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_appwrite_style_ids() {
        for ok in ["user1", "65f0c0ffee", "a.b-c_d", &"x".repeat(36)] {
            assert!(AppwriteId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_ids_appwrite_would_refuse() {
        assert_eq!(AppwriteId::parse(""), Err(IdError::Empty));
        assert_eq!(AppwriteId::parse(&"x".repeat(37)), Err(IdError::TooLong));
        assert_eq!(AppwriteId::parse("_leading"), Err(IdError::BadCharacter));
        assert_eq!(AppwriteId::parse("has space"), Err(IdError::BadCharacter));
        assert_eq!(AppwriteId::parse("slash/es"), Err(IdError::BadCharacter));
    }
}

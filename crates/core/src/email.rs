//! An order's email is matched to an Appwrite user **exactly** (docs/compatibility.md). Appwrite stores emails
//! lower-cased, so an `Email` is trimmed and lower-cased when it is parsed, and from then on it is the key.

use serde::{Serialize, Serializer};
use std::fmt;

/// The longest address SMTP allows (RFC 5321 path limit less the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email is empty")]
    Empty,
    #[error("email is longer than {MAX_EMAIL_LEN} characters")]
    TooLong,
    #[error("email must have exactly one '@' with text on both sides")]
    BadShape,
    #[error("email must not contain whitespace or control characters")]
    BadCharacter,
    #[error("email domain must contain a dot")]
    BadDomain,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.chars().count() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::BadCharacter);
        }
        let lowered = trimmed.to_lowercase();
        let (local, domain) = lowered.split_once('@').ok_or(EmailError::BadShape)?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return Err(EmailError::BadShape);
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(EmailError::BadDomain);
        }
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mixed_case_and_surrounding_spaces_are_normalised() {
        let email = Email::parse("  Buyer.Name@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "buyer.name@example.com");
    }

    #[test]
    fn malformed_addresses_are_rejected_with_a_reason() {
        assert_eq!(Email::parse("   "), Err(EmailError::Empty));
        assert_eq!(Email::parse("no-at-sign.example.com"), Err(EmailError::BadShape));
        assert_eq!(Email::parse("@example.com"), Err(EmailError::BadShape));
        assert_eq!(Email::parse("a@b@example.com"), Err(EmailError::BadShape));
        assert_eq!(Email::parse("a b@example.com"), Err(EmailError::BadCharacter));
        assert_eq!(Email::parse("a@localhost"), Err(EmailError::BadDomain));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent_and_case_insensitive(local in "[a-zA-Z0-9._+-]{1,30}", domain in "[a-zA-Z0-9-]{1,20}\\.[a-zA-Z]{2,6}") {
            let raw = format!(" {local}@{domain} ");
            let once = Email::parse(&raw).unwrap();
            let twice = Email::parse(once.as_str()).unwrap();
            prop_assert_eq!(&once, &twice);
            prop_assert_eq!(Email::parse(&raw.to_uppercase()).unwrap(), once);
        }
    }
}

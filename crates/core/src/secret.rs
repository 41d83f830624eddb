//! Secrets (API keys, webhook secrets, tokens) are wrapped so that no `{}` or `{:?}` can leak them into a
//! log line, a failure record or an error message.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's value, for the one place that must send or use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_value() {
        let secret = Secret::new("sk_live_very_secret");
        assert!(!format!("{secret:?}").contains("very_secret"));
        assert_eq!(secret.expose(), "sk_live_very_secret");
    }
}

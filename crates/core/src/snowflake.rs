//! Discord ids (snowflakes): strings of digits in JSON, parsed to `u64` here so that a role id can never be
//! passed where a user id goes, and a malformed id is refused at the boundary.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Discord id (a snowflake: digits only)")]
pub struct SnowflakeError(pub String);

fn parse_snowflake(raw: &str) -> Result<u64, SnowflakeError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SnowflakeError(raw.to_owned()));
    }
    trimmed.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| SnowflakeError(raw.to_owned()))
}

macro_rules! snowflake {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(u64);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, SnowflakeError> {
                parse_snowflake(raw).map(Self)
            }

            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = SnowflakeError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

snowflake!(
    /// A Discord user.
    DiscordUserId
);
snowflake!(
    /// A guild (server).
    GuildId
);
snowflake!(
    /// A role of a guild.
    RoleId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_are_digit_strings() {
        assert_eq!(RoleId::parse("1234567890123456789").map(RoleId::get), Ok(1_234_567_890_123_456_789));
        assert!(RoleId::parse("").is_err());
        assert!(RoleId::parse("12a").is_err());
        assert!(RoleId::parse("-5").is_err());
        assert!(RoleId::parse("0").is_err());
        assert!(RoleId::parse("99999999999999999999999").is_err(), "beyond u64");
    }

    #[test]
    fn they_serialise_as_strings_like_discord_sends_them() {
        let id: GuildId = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"42\"");
        assert!(serde_json::from_str::<GuildId>("42").is_err(), "numbers are not accepted: Discord ids are strings");
    }
}

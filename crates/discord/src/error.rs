//! Discord errors as Tollgate branches on them: named variants for the codes that change what happens
//! next (docs/protocols.md §5.5), the rest kept with status, code and message.

use crate::ratelimit::Halt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscordError {
    /// 10007: the user is not a member of the guild.
    #[error("the user is not a member of the guild (10007)")]
    UnknownMember,
    /// 10011: a mapped role no longer exists.
    #[error("the role does not exist (10011)")]
    UnknownRole,
    /// 50013: the bot lacks Manage Roles, or its highest role is not above the role it manages.
    #[error(
        "the bot lacks permission (50013): give it Manage Roles and move its highest role above every managed role"
    )]
    MissingPermissions,
    /// 40007: the user is banned from the guild.
    #[error("the user is banned from the guild (40007)")]
    Banned,
    /// 50025: the user's OAuth2 token is invalid: they must link again.
    #[error("the user's Discord authorisation is no longer valid (50025): they must link again")]
    InvalidOAuthToken,
    /// Not sent (or answered 429): come back at `retry_at_ms`.
    #[error("rate limited until {retry_at_ms} ms")]
    RateLimited { retry_at_ms: u64 },
    /// A 401 for the bot token: every bot call stops until the token is fixed.
    #[error("Discord refused the bot token (401): check DISCORD_BOT_TOKEN")]
    Unauthorized,
    /// The client stopped itself to stay clear of Discord's invalid-request ban.
    #[error("too many refused requests; paused until {until_ms} ms to avoid a Discord ban")]
    InvalidRequestBudget { until_ms: u64 },
    /// The shared rate limiter could not be reached, so nothing was sent (never an unthrottled call).
    #[error("the Discord rate limiter could not be reached: {0}")]
    LimiterUnavailable(String),
    #[error("Discord could not be reached: {0}")]
    Transport(String),
    #[error("Discord answered {status} (code {code:?}): {message}")]
    Http { status: u16, code: Option<u64>, message: String },
}

impl DiscordError {
    pub(crate) fn from_halt(halt: Halt) -> Self {
        match halt {
            Halt::Unauthorized => Self::Unauthorized,
            Halt::InvalidRequestBudget { until_ms } => Self::InvalidRequestBudget { until_ms },
        }
    }

    /// From an error response (not 429, which the rate limiter turns into `RateLimited`). Public for the
    /// fuzz targets (`fuzz/`): any status and body give an error, never a panic.
    pub fn from_response(status: u16, body: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default)]
            code: Option<u64>,
            #[serde(default)]
            message: String,
        }
        let parsed = serde_json::from_str::<Body>(body).ok();
        let code = parsed.as_ref().and_then(|b| b.code);
        match (status, code) {
            (401, _) => Self::Unauthorized,
            (_, Some(10007)) => Self::UnknownMember,
            (_, Some(10011)) => Self::UnknownRole,
            (_, Some(50013)) => Self::MissingPermissions,
            (_, Some(40007)) => Self::Banned,
            (_, Some(50025)) => Self::InvalidOAuthToken,
            _ => Self::Http {
                status,
                code,
                message: parsed.map(|b| b.message).unwrap_or_else(|| body.chars().take(200).collect()),
            },
        }
    }

    /// Worth trying again later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::Transport(_)
            | Self::LimiterUnavailable(_)
            | Self::InvalidRequestBudget { .. } => true,
            Self::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Needs an admin (configuration or permissions), not a retry.
    pub fn needs_admin(&self) -> bool {
        matches!(self, Self::MissingPermissions | Self::UnknownRole | Self::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_tollgate_branches_on_have_their_own_variants() {
        let cases = [
            (10007, DiscordError::UnknownMember),
            (10011, DiscordError::UnknownRole),
            (50013, DiscordError::MissingPermissions),
            (40007, DiscordError::Banned),
            (50025, DiscordError::InvalidOAuthToken),
        ];
        for (code, expected) in cases {
            let body = format!(r#"{{"code": {code}, "message": "m"}}"#);
            assert_eq!(DiscordError::from_response(403, &body), expected);
        }
        assert_eq!(DiscordError::from_response(401, "{}"), DiscordError::Unauthorized);
    }

    #[test]
    fn other_errors_keep_status_code_and_message() {
        let error = DiscordError::from_response(400, r#"{"code": 50035, "message": "Invalid Form Body"}"#);
        assert_eq!(error, DiscordError::Http { status: 400, code: Some(50035), message: "Invalid Form Body".into() });
        assert!(!error.is_retryable());
        assert!(DiscordError::from_response(502, "<html>").is_retryable());
        assert!(DiscordError::MissingPermissions.to_string().contains("highest role"));
    }
}

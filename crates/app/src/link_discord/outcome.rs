//! How a link ends, in the customer's terms: [`LinkError`] with its short reason, the callback's redirect
//! ([`callback_location`]) and what Discord's redirect carries ([`CallbackParams`]).

use crate::error::StepError;
use tollgate_core::{AppwriteId, DiscordUserId};
use tollgate_discord::DiscordError;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The customer pressed Cancel on Discord's page (`error=access_denied`).
    #[error("the Discord authorisation was cancelled")]
    Cancelled,
    /// Discord redirected with another `error` (its OAuth2 error code).
    #[error("Discord did not authorise the link: {0}")]
    NotAuthorized(String),
    /// Unknown, used, expired, or bound to another user (or no state at all).
    #[error("the link request is invalid or has expired; start again")]
    StateInvalid,
    /// The state was started in another browser (its link cookie is missing or different): someone else's
    /// link URL, followed here.
    #[error("this link was started in another browser; start again from your own account page")]
    BrowserMismatch,
    #[error("this Discord account is already linked to another user")]
    DiscordAccountTaken,
    #[error("Discord refused: {0}")]
    Discord(DiscordError),
    #[error(transparent)]
    Step(#[from] StepError),
    /// The callback's own settings are missing or invalid.
    #[error("not configured: {0}")]
    NotConfigured(String),
}

impl LinkError {
    /// The short, stable code the customer's page receives (`?discord=error&reason=…`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::StateInvalid => "state_invalid",
            Self::BrowserMismatch => "browser_mismatch",
            Self::DiscordAccountTaken => "account_taken",
            Self::NotAuthorized(code) if matches!(code.as_str(), "server_error" | "temporarily_unavailable") => {
                "discord_unavailable"
            }
            Self::Discord(e) if e.is_retryable() => "discord_unavailable",
            Self::NotAuthorized(_) | Self::Discord(_) => "discord_refused",
            Self::Step(_) | Self::NotConfigured(_) => "internal",
        }
    }
}

/// Where the callback sends the browser: `app_base_url` (a valid absolute URL; its own query and fragment
/// kept) with `discord=linked`, or `discord=error&reason=<LinkError::reason>`.
pub fn callback_location(app_base_url: &str, outcome: &Result<Linked, LinkError>) -> String {
    let outcome = match outcome {
        Ok(_) => "discord=linked".to_owned(),
        Err(e) => format!("discord=error&reason={}", e.reason()),
    };
    let (base, fragment) = match app_base_url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (app_base_url, None),
    };
    let separator = match base.split_once('?') {
        None => "?",
        Some((_, "")) => "",
        Some((_, query)) if query.ends_with('&') => "",
        Some(_) => "&",
    };
    let mut location = format!("{base}{separator}{outcome}");
    if let Some(fragment) = fragment {
        location.push('#');
        location.push_str(fragment);
    }
    location
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub user_id: AppwriteId,
    pub discord_user: DiscordUserId,
    pub username: String,
    /// The link stands; its role sync could not be queued (reconciliation gives the roles later).
    pub role_sync_error: Option<StepError>,
}

/// What Discord's redirect to the callback carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Discord's OAuth2 error (`access_denied` when the customer pressed Cancel).
    pub error: Option<String>,
}

impl CallbackParams {
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    ) -> Self {
        let mut params = Self::default();
        for (key, value) in pairs {
            let slot = match key.as_ref() {
                "code" => &mut params.code,
                "state" => &mut params.state,
                "error" => &mut params.error,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancelled() -> Result<Linked, LinkError> {
        Err(LinkError::Cancelled)
    }

    #[test]
    fn the_callback_location_keeps_the_apps_own_query_and_fragment() {
        let cases = [
            ("https://app.example.com/", "https://app.example.com/?discord=error&reason=cancelled"),
            (
                "https://app.example.com/account?tab=discord",
                "https://app.example.com/account?tab=discord&discord=error&reason=cancelled",
            ),
            ("https://app.example.com/?", "https://app.example.com/?discord=error&reason=cancelled"),
            ("https://app.example.com/#/settings", "https://app.example.com/?discord=error&reason=cancelled#/settings"),
        ];
        for (base, expected) in cases {
            assert_eq!(callback_location(base, &cancelled()), expected);
        }
    }

    #[test]
    fn every_failure_has_a_short_reason_and_a_retryable_discord_error_is_unavailable() {
        assert_eq!(LinkError::StateInvalid.reason(), "state_invalid");
        assert_eq!(LinkError::BrowserMismatch.reason(), "browser_mismatch");
        assert_eq!(LinkError::DiscordAccountTaken.reason(), "account_taken");
        assert_eq!(LinkError::Discord(DiscordError::Transport("reset".into())).reason(), "discord_unavailable");
        assert_eq!(LinkError::NotAuthorized("temporarily_unavailable".into()).reason(), "discord_unavailable");
        assert_eq!(LinkError::NotAuthorized("invalid_scope".into()).reason(), "discord_refused");
        let step = StepError { code: "x", message: "m".into(), status: None, error_type: None, retryable: true };
        assert_eq!(LinkError::Step(step).reason(), "internal");
    }
}

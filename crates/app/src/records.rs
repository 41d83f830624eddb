//! The documents Tollgate reads and writes, by their attribute names in [`crate::schema`]. Decoding is
//! lenient (every field optional) because documents written by the replaced deployment lack the
//! attributes Tollgate added.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

/// Timestamps as Appwrite writes them (ISO 8601, milliseconds, UTC).
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw).ok().map(|t| t.with_timezone(&Utc))
}

/// `webhook_events.status`.
pub const EVENT_PROCESSING: &str = "processing";
pub const EVENT_COMPLETED: &str = "completed";
/// Not completed, and a `webhook_failures` record (same id) owns it: the retry cron finishes it, so the
/// inbox sweep leaves it alone. Read as [`ClaimStatus::Failed`]: a redelivery applies it, unless its record
/// says it was applied since.
pub const EVENT_FAILED: &str = "failed";
/// Not completed, and the inbox sweep found no body to finish it with (a claim written before claims kept
/// their body): only the provider's redelivery or an admin can apply it. Read as [`ClaimStatus::Processing`].
pub const EVENT_UNRECOVERABLE: &str = "unrecoverable";

/// A verified body as Tollgate stores it (`bodyText` of claims and failure records): the raw text, exactly
/// (a body that is not UTF-8 cannot be a JSON payload either; it is kept lossily, for an admin to see).
pub fn body_text(body: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(body)
}

/// A `webhook_events` document: the claim on an idempotency key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventClaim {
    pub provider: Option<String>,
    pub event_id: Option<String>,
    pub status: Option<String>,
    pub processed_at: Option<String>,
    pub claimed_at: Option<String>,
    /// The verified body, stored with the claim (absent on claims written before the inbox): what the
    /// inbox sweep processes a cut delivery from.
    pub body_text: Option<String>,
}

/// What a claim says about its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStatus {
    /// Every side effect is done.
    Completed,
    /// Claimed, not (yet) completed: process again.
    Processing,
    /// Handed to its failure record ([`EVENT_FAILED`]). Done once that record is settled (the completion
    /// written after settling may have been lost); else process again.
    Failed,
    /// No `status`: written by the replaced deployment, *before* its side effects.
    Legacy,
}

impl EventClaim {
    pub fn status(&self) -> ClaimStatus {
        match self.status.as_deref() {
            None => ClaimStatus::Legacy,
            Some(EVENT_COMPLETED) => ClaimStatus::Completed,
            Some(EVENT_FAILED) => ClaimStatus::Failed,
            // `processing`, or a value Tollgate does not know: not done.
            Some(_) => ClaimStatus::Processing,
        }
    }
}

/// `webhook_failures.state`: `due` (will be retried at `nextAttemptAt`), `dead` (no more automatic
/// attempts; an admin can replay it), `settled` (applied since; pruned after the retention period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureState {
    Due,
    Dead,
    Settled,
}

impl FailureState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Due => "due",
            Self::Dead => "dead",
            Self::Settled => "settled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "due" => Some(Self::Due),
            "dead" => Some(Self::Dead),
            "settled" => Some(Self::Settled),
            _ => None,
        }
    }
}

/// A `webhook_failures` document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FailureRecord {
    pub provider: Option<String>,
    pub event: Option<String>,
    pub event_id: Option<String>,
    pub order_id: Option<String>,
    pub email: Option<String>,
    pub email_raw: Option<String>,
    pub body_text: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub attempts: Option<i64>,
    pub state: Option<String>,
    pub next_attempt_at: Option<String>,
}

impl FailureRecord {
    /// Records written by the replaced deployment have no state. It never retried them and they may be
    /// months old, so they are not retried automatically either: they count as dead, for an admin to
    /// look at and replay.
    pub fn state(&self) -> FailureState {
        self.state.as_deref().and_then(FailureState::parse).unwrap_or(FailureState::Dead)
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.and_then(|a| u32::try_from(a).ok()).unwrap_or(1)
    }
}

/// A `subscriptions` document: a projection of the user's access ([`crate::projection`]). Decoded
/// leniently: documents of the replaced deployment lack the attributes Tollgate added.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionRecord {
    pub user_id: Option<String>,
    pub status: Option<String>,
    pub plan: Option<String>,
    pub sellapp_order_id: Option<String>,
    pub current_period_end: Option<String>,
    pub email: Option<String>,
    pub plans_json: Option<String>,
    /// When the projection last wrote it (absent on documents written before the ledger).
    pub projected_at: Option<String>,
    /// Appwrite's `$updatedAt`.
    #[serde(skip)]
    pub updated_at: Option<DateTime<Utc>>,
    /// The stored document did not decode.
    #[serde(skip)]
    pub unreadable: bool,
}

/// Fits a payload string into an attribute of `max_chars` characters (Appwrite sizes count characters).
/// A longer value keeps its beginning and ends with a hash of the whole value, so distinct values stay
/// distinct; the full value is kept in the failure record's body. An authentic payload with an
/// over-long field must still be recorded: otherwise every redelivery answers 503 forever.
pub fn fit(value: &str, max_chars: u32) -> String {
    tollgate_core::fit_to_attribute(value, max_chars as usize).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_without_status_is_the_replaced_deployments() {
        assert_eq!(EventClaim::default().status(), ClaimStatus::Legacy);
        let processing = EventClaim { status: Some(EVENT_PROCESSING.into()), ..Default::default() };
        assert_eq!(processing.status(), ClaimStatus::Processing);
        let odd = EventClaim { status: Some("weird".into()), ..Default::default() };
        assert_eq!(odd.status(), ClaimStatus::Processing);
        let failed = EventClaim { status: Some(EVENT_FAILED.into()), ..Default::default() };
        assert_eq!(failed.status(), ClaimStatus::Failed);
    }

    #[test]
    fn timestamps_round_trip() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap();
        assert_eq!(timestamp(at), "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_timestamp(&timestamp(at)), Some(at));
        assert_eq!(parse_timestamp("2023-11-14T22:13:20.123+00:00"), Some(at));
    }

    #[test]
    fn legacy_failure_records_wait_for_an_admin_after_one_attempt() {
        let legacy = FailureRecord::default();
        assert_eq!(legacy.state(), FailureState::Dead);
        assert_eq!(legacy.attempts(), 1);
    }
}

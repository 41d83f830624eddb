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

/// A `webhook_events` document: the claim on an idempotency key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EventClaim {
    pub provider: Option<String>,
    pub event_id: Option<String>,
    pub status: Option<String>,
    pub processed_at: Option<String>,
}

impl EventClaim {
    /// Completed means its side effects are all done. A record with no `status` was written by the
    /// replaced deployment, which recorded events it then processed in the same request; it is treated
    /// as completed so that events it already applied are not applied again.
    pub fn is_completed(&self) -> bool {
        match self.status.as_deref() {
            Some(status) => status == EVENT_COMPLETED,
            None => true,
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

/// A `pending_entitlements` document: what an email bought before an account with it existed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PendingRecord {
    pub email: Option<String>,
    pub plan: Option<String>,
    pub status: Option<String>,
    pub provider: Option<String>,
    pub order_id: Option<String>,
    pub event_id: Option<String>,
    pub expires_at: Option<String>,
    pub recorded_at: Option<String>,
    pub claimed_at: Option<String>,
}

/// A `subscriptions` document.
///
/// Its entitlement: a missing or unknown status counts as inactive, a missing end date as none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionRecord {
    pub user_id: Option<String>,
    pub status: Option<String>,
    pub plan: Option<String>,
    pub sellapp_order_id: Option<String>,
    pub current_period_end: Option<String>,
    /// When Tollgate last wrote it, by Tollgate's clock (absent on documents of the replaced deployment).
    pub changed_at: Option<String>,
}

impl SubscriptionRecord {
    pub fn entitlement(&self) -> tollgate_core::Entitlement {
        use tollgate_core::SubscriptionStatus;
        tollgate_core::Entitlement {
            plan: self.plan.clone().unwrap_or_default(),
            status: self.status.as_deref().and_then(SubscriptionStatus::parse).unwrap_or(SubscriptionStatus::Inactive),
            expires_at: self.current_period_end.as_deref().and_then(parse_timestamp),
        }
    }

    /// The plan, if the subscription gives access at `now` (allowing `grace` past its end).
    pub fn plan_with_access(&self, now: chrono::DateTime<chrono::Utc>, grace: chrono::Duration) -> Option<String> {
        let entitlement = self.entitlement();
        entitlement.has_access(now, grace).then_some(entitlement.plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_without_status_is_a_legacy_completed_record() {
        assert!(EventClaim::default().is_completed());
        let processing = EventClaim { status: Some(EVENT_PROCESSING.into()), ..Default::default() };
        assert!(!processing.is_completed());
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

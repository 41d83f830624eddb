//! What a buyer is entitled to and the access decision. `status` is the provider's word; `expires_at`
//! (when known) bounds it; a grace period lets a renewal that arrives a little late keep access unbroken.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    Active,
    Inactive,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub plan: String,
    pub status: SubscriptionStatus,
    /// `None`: no end date is known (a one-off purchase, or an open subscription).
    pub expires_at: Option<DateTime<Utc>>,
}

impl Entitlement {
    /// Does this entitlement give access at `now`, allowing `grace` past the end date?
    pub fn has_access(&self, now: DateTime<Utc>, grace: Duration) -> bool {
        match (self.status, self.expires_at) {
            (SubscriptionStatus::Inactive, _) => false,
            (SubscriptionStatus::Active, None) => true,
            (SubscriptionStatus::Active, Some(end)) => now <= end + grace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn active_without_end_date_has_access() {
        let e = Entitlement { plan: "pro".into(), status: SubscriptionStatus::Active, expires_at: None };
        assert!(e.has_access(at(0), Duration::zero()));
    }

    #[test]
    fn inactive_never_has_access() {
        let e = Entitlement { plan: "pro".into(), status: SubscriptionStatus::Inactive, expires_at: None };
        assert!(!e.has_access(at(0), Duration::days(30)));
    }

    #[test]
    fn expiry_is_extended_by_the_grace_period_only() {
        let e = Entitlement { plan: "pro".into(), status: SubscriptionStatus::Active, expires_at: Some(at(1_000)) };
        let grace = Duration::seconds(100);
        assert!(e.has_access(at(1_100), grace));
        assert!(!e.has_access(at(1_101), grace));
    }
}

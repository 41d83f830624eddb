//! When a failed webhook is tried again. Attempt 1 is the delivery itself; after attempt `n` fails, the
//! next one is due `RETRY_SCHEDULE_SECS[n - 1]` seconds later; after the last one the failure is dead and
//! stays visible to admins, who can replay it by hand.
//!
//! The first delay is a minute because the webhook worker's cron fires at most once a minute. The whole
//! schedule spans about 3 days, like Stripe's own retries, so an Appwrite outage over a weekend is
//! recovered without anyone acting.

use chrono::{DateTime, Duration, Utc};

pub const RETRY_SCHEDULE_SECS: [i64; 9] = [60, 300, 1_800, 7_200, 18_000, 36_000, 36_000, 86_400, 86_400];

/// Attempts in all, the delivery included.
pub const MAX_ATTEMPTS: u32 = RETRY_SCHEDULE_SECS.len() as u32 + 1;

/// After `attempts_made` failed attempts, when is the next one due? `None`: give up (dead).
pub fn next_attempt_at(attempts_made: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let index = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
    RETRY_SCHEDULE_SECS.get(index).map(|secs| now + Duration::seconds(*secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_retry_is_a_minute_after_the_delivery() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        assert_eq!(next_attempt_at(1, now), Some(now + Duration::seconds(60)));
    }

    #[test]
    fn the_last_attempt_has_no_successor() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        assert!(next_attempt_at(MAX_ATTEMPTS - 1, now).is_some());
        assert_eq!(next_attempt_at(MAX_ATTEMPTS, now), None);
        assert_eq!(next_attempt_at(0, now), None);
    }

    #[test]
    fn delays_never_shrink() {
        assert!(RETRY_SCHEDULE_SECS.windows(2).all(|w| w[0] <= w[1]));
    }
}

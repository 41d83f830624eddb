//! Stripe subscriptions as ledger events: the subscription statuses, what each status means for access
//! (docs/protocols.md §2.3), and the webhook half of the status × event matrix
//! (docs/plans/2026-12-01-stripe-lifecycle.md). The customer-action half lives in `stripe_actions`.
//!
//! ## Why statuses are written to the grant register, and endings to the revocation register
//! A Stripe subscription moves between statuses that give access (`active`, `trialing`), one that gives
//! access for a grace period (`past_due`), and ones that give none but may still recover (`unpaid`,
//! `paused`, `incomplete`). Those are all *grant* register writes: the grant's `endsAt` is the moment the
//! subscription is paid through (the current period's end while it is paid, its start once a renewal is
//! owed), and the newer event (by Stripe's `created`, then event id) wins. Access then lasts until
//! `endsAt + ACCESS_GRACE_HOURS`, the same grace every ending gets: a failed renewal keeps access through
//! the grace period and loses it after, with nothing to schedule. A subscription that never gave access
//! (`incomplete`, `incomplete_expired`) writes no grant at all.
//!
//! Endings that must never be undone by a late or repeated event (the subscription deleted, a refund, a
//! dispute) are revocations: monotonic, and commuting with every grant. Only a dispute closed as won
//! reinstates ([`LedgerEvent::Reinstate`]).

use crate::entitlement::{Grant, LedgerEvent, Revocation, RevokeReason};
use chrono::{DateTime, Utc};

/// A Stripe subscription's `status`, plus `None` (no subscription known) and statuses Stripe may add.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StripeStatus {
    None,
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    Unknown(String),
}

impl StripeStatus {
    /// Every status Stripe documents, plus `None`.
    pub const KNOWN: [Self; 9] = [
        Self::None,
        Self::Incomplete,
        Self::IncompleteExpired,
        Self::Trialing,
        Self::Active,
        Self::PastDue,
        Self::Canceled,
        Self::Unpaid,
        Self::Paused,
    ];

    pub fn parse(raw: &str) -> Self {
        match raw.trim() {
            "" | "none" => Self::None,
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "unpaid" => Self::Unpaid,
            "paused" => Self::Paused,
            other => Self::Unknown(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::None => "none",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
            Self::Unknown(raw) => raw,
        }
    }

    /// What the status means for access (docs/protocols.md §2.3). An unknown status revokes; the caller
    /// logs it.
    pub fn access(&self) -> StatusAccess {
        match self {
            Self::Active | Self::Trialing => StatusAccess::Grant,
            Self::PastDue => StatusAccess::GraceThenRevoke,
            Self::None
            | Self::Incomplete
            | Self::IncompleteExpired
            | Self::Canceled
            | Self::Unpaid
            | Self::Paused
            | Self::Unknown(_) => StatusAccess::Revoke,
        }
    }
}

/// Access as a subscription status gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusAccess {
    Grant,
    /// Access until the paid-through time plus the grace period, then none.
    GraceThenRevoke,
    Revoke,
}

/// The webhooks of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeWebhook {
    /// `checkout.session.completed`, mode `setup`: a payment method saved (a card fixed).
    CheckoutSetup,
    /// `checkout.session.completed`, mode `subscription`: names the buyer of the subscription.
    CheckoutSubscription,
    InvoicePaid,
    InvoicePaymentFailed,
    /// `customer.subscription.created` / `.updated`: the row's status is the object's.
    SubscriptionUpdated,
    /// `customer.subscription.deleted`.
    SubscriptionDeleted,
    SubscriptionPaused,
    SubscriptionResumed,
    /// `charge.refunded`, fully refunded.
    ChargeRefunded,
    DisputeCreated,
    DisputeWon,
    DisputeLost,
}

impl StripeWebhook {
    pub const ALL: [Self; 12] = [
        Self::CheckoutSetup,
        Self::CheckoutSubscription,
        Self::InvoicePaid,
        Self::InvoicePaymentFailed,
        Self::SubscriptionUpdated,
        Self::SubscriptionDeleted,
        Self::SubscriptionPaused,
        Self::SubscriptionResumed,
        Self::ChargeRefunded,
        Self::DisputeCreated,
        Self::DisputeWon,
        Self::DisputeLost,
    ];
}

/// Which end a grant written for a webhook gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantEnd {
    /// Paid through the current period: `current_period_end` (or the paid invoice's period end).
    PeriodEnd,
    /// A renewal is owed: paid through the current period's start (then grace, then nothing).
    PeriodStart,
}

/// What a webhook does to the subscription's entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// No register changes (the facts the event carries, such as the status, are still noted).
    Nothing,
    /// Names the buyer (email, account, customer) of the entitlement; no register changes.
    AttachBuyer,
    /// A grant of the subscription's plan until the given end.
    Grant(GrantEnd),
    Revoke(RevokeReason),
    Reinstate,
}

/// One cell of the matrix: the effect on the ledger, and the access the entitlement then gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub effect: Effect,
    pub access: StatusAccess,
}

/// The webhook half of the matrix. `status` is the subscription's status as the event reports it
/// (subscription events) or as Tollgate last recorded it (every other event; `None`: no subscription
/// known yet).
pub fn webhook_cell(status: &StripeStatus, webhook: StripeWebhook) -> Cell {
    use StripeWebhook as W;
    let status_access = status.access();
    let by_status = |status: &StripeStatus| match status {
        StripeStatus::Active | StripeStatus::Trialing => Effect::Grant(GrantEnd::PeriodEnd),
        StripeStatus::PastDue | StripeStatus::Unpaid | StripeStatus::Paused | StripeStatus::Unknown(_) => {
            Effect::Grant(GrantEnd::PeriodStart)
        }
        StripeStatus::Canceled => Effect::Revoke(RevokeReason::Cancellation),
        StripeStatus::None | StripeStatus::Incomplete | StripeStatus::IncompleteExpired => Effect::Nothing,
    };
    let cell = |effect, access| Cell { effect, access };
    match webhook {
        W::CheckoutSetup => cell(Effect::Nothing, status_access),
        W::CheckoutSubscription => cell(Effect::AttachBuyer, status_access),
        W::InvoicePaid => match status {
            // Terminal: a payment cannot bring these back (a new subscription is a new source).
            StripeStatus::Canceled | StripeStatus::IncompleteExpired => cell(Effect::Nothing, StatusAccess::Revoke),
            _ => cell(Effect::Grant(GrantEnd::PeriodEnd), StatusAccess::Grant),
        },
        // The paid-through time stands; Stripe's `customer.subscription.updated` (past_due) follows.
        W::InvoicePaymentFailed => match status {
            StripeStatus::Active | StripeStatus::Trialing | StripeStatus::PastDue => {
                cell(Effect::Nothing, StatusAccess::GraceThenRevoke)
            }
            _ => cell(Effect::Nothing, StatusAccess::Revoke),
        },
        W::SubscriptionUpdated => cell(by_status(status), status_access),
        W::SubscriptionDeleted => cell(Effect::Revoke(RevokeReason::Cancellation), StatusAccess::Revoke),
        W::SubscriptionPaused => cell(by_status(&StripeStatus::Paused), StatusAccess::Revoke),
        W::SubscriptionResumed => cell(by_status(status), status_access),
        W::ChargeRefunded => cell(Effect::Revoke(RevokeReason::Refund), StatusAccess::Revoke),
        W::DisputeCreated | W::DisputeLost => cell(Effect::Revoke(RevokeReason::Dispute), StatusAccess::Revoke),
        W::DisputeWon => cell(Effect::Reinstate, status_access),
    }
}

/// The ledger event of an effect. `plan` and the period are the subscription's; `at` is the event's
/// `created` (or, with the Stripe API, the time the subscription was read). `None`: no register changes.
pub fn ledger_event(
    effect: Effect,
    plan: Option<&str>,
    period_start: Option<DateTime<Utc>>,
    period_end: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Option<LedgerEvent> {
    match effect {
        Effect::Nothing | Effect::AttachBuyer => None,
        Effect::Grant(end) => {
            let ends_at = match end {
                GrantEnd::PeriodEnd => period_end?,
                // Never later than the event: a status without access must not outlast its report.
                GrantEnd::PeriodStart => period_start.map_or(at, |start| start.min(at)),
            };
            let grant = Grant { plan: plan?.to_owned(), starts_at: None, ends_at: Some(ends_at), at };
            // Stripe's grants never lift a revocation: its revocations (deleted, refund, dispute) are final
            // but for a won dispute, which reinstates explicitly.
            Some(LedgerEvent::Grant { grant, reinstates: false })
        }
        Effect::Revoke(reason) => Some(LedgerEvent::Revoke(Revocation { at, reason })),
        Effect::Reinstate => Some(LedgerEvent::Reinstate { at }),
    }
}

/// Event order on one subscription: Stripe's `created` (seconds), then the event id. `true` when `event`
/// comes after `last` (an event older than or equal to the last applied one changes nothing).
pub fn is_newer_event(event: (DateTime<Utc>, &str), last: Option<(DateTime<Utc>, &str)>) -> bool {
    last.is_none_or(|last| event > last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entitlement::{apply_event, Entitlement};
    use chrono::Duration;
    use StatusAccess::{GraceThenRevoke as Grace, Grant as G, Revoke as R};
    use StripeStatus as S;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    const NONE: Effect = Effect::Nothing;
    const ATTACH: Effect = Effect::AttachBuyer;
    const TO_END: Effect = Effect::Grant(GrantEnd::PeriodEnd);
    const TO_START: Effect = Effect::Grant(GrantEnd::PeriodStart);
    const CANCEL: Effect = Effect::Revoke(RevokeReason::Cancellation);
    const REFUND: Effect = Effect::Revoke(RevokeReason::Refund);
    const DISPUTE: Effect = Effect::Revoke(RevokeReason::Dispute);
    const REINSTATE: Effect = Effect::Reinstate;

    /// Every cell written out: status × (checkout setup, checkout subscription, invoice.paid,
    /// invoice.payment_failed, updated, deleted, paused, resumed, refunded, dispute created, won, lost).
    #[rustfmt::skip]
    fn matrix() -> Vec<(StripeStatus, [(Effect, StatusAccess); 12])> {
        vec![
            (S::None,              [(NONE, R), (ATTACH, R), (TO_END, G), (NONE, R), (NONE, R), (CANCEL, R), (TO_START, R), (NONE, R), (REFUND, R), (DISPUTE, R), (REINSTATE, R), (DISPUTE, R)]),
            (S::Incomplete,        [(NONE, R), (ATTACH, R), (TO_END, G), (NONE, R), (NONE, R), (CANCEL, R), (TO_START, R), (NONE, R), (REFUND, R), (DISPUTE, R), (REINSTATE, R), (DISPUTE, R)]),
            (S::IncompleteExpired, [(NONE, R), (ATTACH, R), (NONE, R), (NONE, R), (NONE, R), (CANCEL, R), (TO_START, R), (NONE, R), (REFUND, R), (DISPUTE, R), (REINSTATE, R), (DISPUTE, R)]),
            (S::Trialing,          [(NONE, G), (ATTACH, G), (TO_END, G), (NONE, Grace), (TO_END, G), (CANCEL, R), (TO_START, R), (TO_END, G), (REFUND, R), (DISPUTE, R), (REINSTATE, G), (DISPUTE, R)]),
            (S::Active,            [(NONE, G), (ATTACH, G), (TO_END, G), (NONE, Grace), (TO_END, G), (CANCEL, R), (TO_START, R), (TO_END, G), (REFUND, R), (DISPUTE, R), (REINSTATE, G), (DISPUTE, R)]),
            (S::PastDue,           [(NONE, Grace), (ATTACH, Grace), (TO_END, G), (NONE, Grace), (TO_START, Grace), (CANCEL, R), (TO_START, R), (TO_START, Grace), (REFUND, R), (DISPUTE, R), (REINSTATE, Grace), (DISPUTE, R)]),
            (S::Canceled,          [(NONE, R), (ATTACH, R), (NONE, R), (NONE, R), (CANCEL, R), (CANCEL, R), (TO_START, R), (CANCEL, R), (REFUND, R), (DISPUTE, R), (REINSTATE, R), (DISPUTE, R)]),
            (S::Unpaid,            [(NONE, R), (ATTACH, R), (TO_END, G), (NONE, R), (TO_START, R), (CANCEL, R), (TO_START, R), (TO_START, R), (REFUND, R), (DISPUTE, R), (REINSTATE, R), (DISPUTE, R)]),
            (S::Paused,            [(NONE, R), (ATTACH, R), (TO_END, G), (NONE, R), (TO_START, R), (CANCEL, R), (TO_START, R), (TO_START, R), (REFUND, R), (DISPUTE, R), (REINSTATE, R), (DISPUTE, R)]),
            (S::Unknown("frozen".into()), [(NONE, R), (ATTACH, R), (TO_END, G), (NONE, R), (TO_START, R), (CANCEL, R), (TO_START, R), (TO_START, R), (REFUND, R), (DISPUTE, R), (REINSTATE, R), (DISPUTE, R)]),
        ]
    }

    #[test]
    fn every_cell_of_the_webhook_matrix_is_as_written() {
        let rows = matrix();
        assert_eq!(rows.len(), StripeStatus::KNOWN.len() + 1, "every status, and an unknown one");
        for (status, cells) in rows {
            for (webhook, (effect, access)) in StripeWebhook::ALL.into_iter().zip(cells) {
                assert_eq!(webhook_cell(&status, webhook), Cell { effect, access }, "{status:?} × {webhook:?}");
            }
        }
    }

    #[test]
    fn statuses_read_and_print_as_stripe_writes_them() {
        for status in StripeStatus::KNOWN {
            assert_eq!(StripeStatus::parse(status.as_str()), status);
        }
        assert_eq!(StripeStatus::parse("frozen"), StripeStatus::Unknown("frozen".into()));
        assert_eq!(StripeStatus::parse("frozen").access(), StatusAccess::Revoke);
    }

    fn live_after(events: &[LedgerEvent], now: i64, grace: i64) -> bool {
        let e = events.iter().fold(Entitlement::new("stripe-sub:sub_1"), |e, ev| apply_event(&e, ev).applied_to(&e));
        e.is_live(at(now), Duration::seconds(grace))
    }

    #[test]
    fn a_failed_renewal_keeps_access_through_the_grace_period_only() {
        let paid = ledger_event(TO_END, Some("pro"), Some(at(0)), Some(at(1_000)), at(10)).unwrap();
        let past_due = ledger_event(TO_START, Some("pro"), Some(at(1_000)), Some(at(2_000)), at(1_001)).unwrap();
        assert!(live_after(&[paid.clone(), past_due.clone()], 1_050, 100));
        assert!(!live_after(&[paid, past_due], 1_101, 100));
    }

    #[test]
    fn a_status_without_access_never_outlasts_its_report_and_a_never_paid_one_grants_nothing() {
        let paused = ledger_event(TO_START, Some("pro"), Some(at(5_000)), Some(at(9_000)), at(100)).unwrap();
        assert!(!live_after(&[paused], 101, 0));
        assert_eq!(ledger_event(NONE, Some("pro"), None, None, at(1)), None);
        assert_eq!(ledger_event(TO_END, None, None, Some(at(5)), at(1)), None, "no plan, no grant");
    }

    #[test]
    fn a_won_dispute_restores_and_a_late_renewal_never_undoes_a_refund() {
        let paid = ledger_event(TO_END, Some("pro"), None, Some(at(1_000)), at(10)).unwrap();
        let dispute = ledger_event(DISPUTE, None, None, None, at(20)).unwrap();
        let won = ledger_event(REINSTATE, None, None, None, at(30)).unwrap();
        assert!(live_after(&[paid.clone(), dispute.clone(), won], 40, 0));
        let refund = ledger_event(REFUND, None, None, None, at(20)).unwrap();
        let renewal = ledger_event(TO_END, Some("pro"), None, Some(at(2_000)), at(50)).unwrap();
        assert!(!live_after(&[paid, refund, renewal], 60, 0));
        assert!(!live_after(&[dispute], 60, 0));
    }

    #[test]
    fn events_are_ordered_by_time_then_id() {
        assert!(is_newer_event((at(5), "evt_b"), None));
        assert!(is_newer_event((at(5), "evt_b"), Some((at(5), "evt_a"))));
        assert!(!is_newer_event((at(5), "evt_a"), Some((at(5), "evt_a"))), "a repeat is not newer");
        assert!(!is_newer_event((at(5), "evt_z"), Some((at(6), "evt_a"))));
    }
}

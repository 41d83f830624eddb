//! What a customer's own billing action does, given their Stripe subscription's status: the customer-action
//! half of the Stripe matrix (the webhook half decides access and lives apart).
//!
//! ## Why a pure table
//! Each of the four actions (purchase a tier, cancel, update the payment method, disconnect it) is defined for
//! every status Stripe documents, plus "no subscription" and an unknown status, so nothing a customer clicks
//! falls through to a guess. The decisions follow the matrix Tollgate was designed from: a purchase while a
//! subscription is alive (`incomplete`, `trialing`, `active`, `past_due`) changes that subscription's price in
//! the same billing cycle, a purchase after it ended (`incomplete_expired`, `canceled`, and `unpaid`, whose
//! access is already gone) starts a new one through Checkout. Where the matrix is silent, the choices are:
//! - cancel means "at period end" (access stays until then, PROTOCOLS §2.3); an `incomplete` subscription
//!   lapses by itself within 23 hours and grants nothing, so there is nothing to cancel;
//! - the payment method is changed or removed in Stripe's Billing Portal; updating it on an ended subscription
//!   is refused, but removing a stored card stays possible after the end;
//! - `paused` (a trial ended without a payment method) is resumed by adding a payment method, so only the
//!   portal is offered;
//! - an unknown status refuses everything (fail closed) rather than starting a second subscription.

pub use crate::stripe::StripeStatus;

/// Which of a customer's subscriptions is "the" subscription: higher first (ties: the newest). A paying or
/// trying one beats one that waits for a payment method, which beats an ended one; an unknown status ranks
/// above the ended ones so that it is seen (and refused) rather than hidden behind an old cancellation.
pub fn subscription_rank(status: &StripeStatus) -> u8 {
    use StripeStatus::*;
    match status {
        Active | Trialing | PastDue => 4,
        Incomplete | Paused | Unpaid => 3,
        Unknown(_) => 2,
        IncompleteExpired | Canceled => 1,
        None => 0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerAction {
    /// Buy a tier; `same_price`: the subscription already bills exactly this price.
    Purchase {
        same_price: bool,
    },
    Cancel,
    UpdatePaymentMethod,
    DisconnectPaymentMethod,
}

/// Why an action is refused (the API's machine-readable reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NothingToCancel,
    AlreadyCanceling,
    SubscriptionEnded,
    AlreadyOnPlan,
    SubscriptionIncomplete,
    SubscriptionPaused,
    NoSubscription,
    UnknownStatus,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NothingToCancel => "nothing_to_cancel",
            Self::AlreadyCanceling => "already_canceling",
            Self::SubscriptionEnded => "subscription_ended",
            Self::AlreadyOnPlan => "already_on_plan",
            Self::SubscriptionIncomplete => "subscription_incomplete",
            Self::SubscriptionPaused => "subscription_paused",
            Self::NoSubscription => "no_subscription",
            Self::UnknownStatus => "unknown_subscription_status",
        }
    }
}

/// What to ask Stripe for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingStep {
    /// A new Checkout Session (mode subscription) for the plan's price.
    Checkout,
    /// The subscription's item to the new price, same billing cycle (also lifts a pending cancellation).
    ChangePrice,
    /// `cancel_at_period_end = true`: access and billing run to the period end.
    CancelAtPeriodEnd,
    /// A Billing Portal session, where the customer updates or removes the payment method.
    BillingPortal,
    Refuse(Refusal),
}

/// The matrix: what `action` does when the customer's subscription has `status` (`None`: they have none) and
/// is (`cancel_at_period_end`) or is not already set to end at the period end.
pub fn decide_customer_action(
    status: &StripeStatus,
    cancel_at_period_end: bool,
    action: CustomerAction,
) -> BillingStep {
    use BillingStep::*;
    use CustomerAction::*;
    use StripeStatus::*;
    match (status, action) {
        (Unknown(_), _) => Refuse(Refusal::UnknownStatus),
        (None | IncompleteExpired | Canceled | Unpaid, Purchase { .. }) => Checkout,
        (Paused, Purchase { .. }) => Refuse(Refusal::SubscriptionPaused),
        (Incomplete | Trialing | Active | PastDue, Purchase { same_price }) => {
            if same_price && !cancel_at_period_end {
                Refuse(Refusal::AlreadyOnPlan)
            } else {
                ChangePrice
            }
        }
        (None, Cancel) => Refuse(Refusal::NothingToCancel),
        (IncompleteExpired | Canceled, Cancel) => Refuse(Refusal::SubscriptionEnded),
        (Incomplete, Cancel) => Refuse(Refusal::SubscriptionIncomplete),
        (Paused, Cancel) => Refuse(Refusal::SubscriptionPaused),
        (Trialing | Active | PastDue | Unpaid, Cancel) => {
            if cancel_at_period_end {
                Refuse(Refusal::AlreadyCanceling)
            } else {
                CancelAtPeriodEnd
            }
        }
        (None, UpdatePaymentMethod | DisconnectPaymentMethod) => Refuse(Refusal::NoSubscription),
        (IncompleteExpired | Canceled, UpdatePaymentMethod) => Refuse(Refusal::SubscriptionEnded),
        (Incomplete | Trialing | Active | PastDue | Unpaid | Paused, UpdatePaymentMethod) => BillingPortal,
        (_, DisconnectPaymentMethod) => BillingPortal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short names for the cells, so the table below reads as the matrix.
    fn cell(step: BillingStep) -> &'static str {
        match step {
            BillingStep::Checkout => "checkout",
            BillingStep::ChangePrice => "change_price",
            BillingStep::CancelAtPeriodEnd => "cancel_at_period_end",
            BillingStep::BillingPortal => "billing_portal",
            BillingStep::Refuse(reason) => reason.as_str(),
        }
    }

    #[test]
    fn every_status_and_action_has_its_written_down_step() {
        // status ("none": no subscription), cancel_at_period_end,
        //   [purchase another tier, purchase the current tier, cancel, update payment method, disconnect it]
        #[rustfmt::skip]
        let table: &[(&str, bool, [&str; 5])] = &[
            ("none",               false, ["checkout",     "checkout",        "nothing_to_cancel",       "no_subscription",    "no_subscription"]),
            ("incomplete",         false, ["change_price", "already_on_plan", "subscription_incomplete", "billing_portal",     "billing_portal"]),
            ("incomplete",         true,  ["change_price", "change_price",    "subscription_incomplete", "billing_portal",     "billing_portal"]),
            ("incomplete_expired", false, ["checkout",     "checkout",        "subscription_ended",      "subscription_ended", "billing_portal"]),
            ("incomplete_expired", true,  ["checkout",     "checkout",        "subscription_ended",      "subscription_ended", "billing_portal"]),
            ("trialing",           false, ["change_price", "already_on_plan", "cancel_at_period_end",    "billing_portal",     "billing_portal"]),
            ("trialing",           true,  ["change_price", "change_price",    "already_canceling",       "billing_portal",     "billing_portal"]),
            ("active",             false, ["change_price", "already_on_plan", "cancel_at_period_end",    "billing_portal",     "billing_portal"]),
            ("active",             true,  ["change_price", "change_price",    "already_canceling",       "billing_portal",     "billing_portal"]),
            ("past_due",           false, ["change_price", "already_on_plan", "cancel_at_period_end",    "billing_portal",     "billing_portal"]),
            ("past_due",           true,  ["change_price", "change_price",    "already_canceling",       "billing_portal",     "billing_portal"]),
            ("canceled",           false, ["checkout",     "checkout",        "subscription_ended",      "subscription_ended", "billing_portal"]),
            ("canceled",           true,  ["checkout",     "checkout",        "subscription_ended",      "subscription_ended", "billing_portal"]),
            ("unpaid",             false, ["checkout",     "checkout",        "cancel_at_period_end",    "billing_portal",     "billing_portal"]),
            ("unpaid",             true,  ["checkout",     "checkout",        "already_canceling",       "billing_portal",     "billing_portal"]),
            ("paused",             false, ["subscription_paused", "subscription_paused", "subscription_paused", "billing_portal", "billing_portal"]),
            ("paused",             true,  ["subscription_paused", "subscription_paused", "subscription_paused", "billing_portal", "billing_portal"]),
            ("frozen",             false, ["unknown_subscription_status"; 5]),
            ("frozen",             true,  ["unknown_subscription_status"; 5]),
        ];
        let actions = [
            CustomerAction::Purchase { same_price: false },
            CustomerAction::Purchase { same_price: true },
            CustomerAction::Cancel,
            CustomerAction::UpdatePaymentMethod,
            CustomerAction::DisconnectPaymentMethod,
        ];
        for (status, cancel_at_period_end, expected) in table {
            for (action, want) in actions.iter().zip(expected) {
                let got = cell(decide_customer_action(&StripeStatus::parse(status), *cancel_at_period_end, *action));
                assert_eq!(got, *want, "{status} (canceling: {cancel_at_period_end}) × {action:?}");
            }
        }
        // Every documented status, and none, is in the table.
        let covered: Vec<&str> = table.iter().map(|row| row.0).collect();
        for status in [
            "none",
            "incomplete",
            "incomplete_expired",
            "trialing",
            "active",
            "past_due",
            "canceled",
            "unpaid",
            "paused",
        ] {
            assert!(covered.contains(&status), "{status} is in the table");
            assert!(!matches!(StripeStatus::parse(status), StripeStatus::Unknown(_)));
        }
    }

    #[test]
    fn a_live_subscription_outranks_an_ended_one_and_an_unknown_one_is_not_hidden() {
        let rank = |s: &str| subscription_rank(&StripeStatus::parse(s));
        assert!(rank("past_due") > rank("unpaid"));
        assert!(rank("incomplete") > rank("frozen"));
        assert!(rank("frozen") > rank("canceled"));
        assert!(rank("canceled") > rank("none"));
        assert_eq!(rank("canceled"), rank("incomplete_expired"));
        assert_eq!(rank("active"), rank("trialing"));
    }
}

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

/// A Stripe subscription status, as documented; anything else is [`StripeStatus::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StripeStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    Unknown,
}

impl StripeStatus {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "unpaid" => Self::Unpaid,
            "paused" => Self::Paused,
            _ => Self::Unknown,
        }
    }

    /// Which of a customer's subscriptions is "the" subscription: higher first. A paying or trying one beats
    /// one that waits for a payment method, which beats an ended one; an unknown status ranks above the ended
    /// ones so that it is seen (and refused) rather than hidden behind an old cancellation.
    pub fn rank(self) -> u8 {
        match self {
            Self::Active | Self::Trialing | Self::PastDue => 4,
            Self::Incomplete | Self::Paused | Self::Unpaid => 3,
            Self::Unknown => 2,
            Self::IncompleteExpired | Self::Canceled => 1,
        }
    }
}

/// The customer's current subscription, as far as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentSubscription {
    pub status: StripeStatus,
    /// Already set to end at the period end.
    pub cancel_at_period_end: bool,
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

/// The matrix: `current` is `None` when the customer has no subscription at all.
pub fn decide_customer_action(current: Option<CurrentSubscription>, action: CustomerAction) -> BillingStep {
    use BillingStep::*;
    use StripeStatus::*;
    let Some(current) = current else {
        return match action {
            CustomerAction::Purchase { .. } => Checkout,
            CustomerAction::Cancel => Refuse(Refusal::NothingToCancel),
            CustomerAction::UpdatePaymentMethod | CustomerAction::DisconnectPaymentMethod => {
                Refuse(Refusal::NoSubscription)
            }
        };
    };
    match (current.status, action) {
        (Unknown, _) => Refuse(Refusal::UnknownStatus),
        (IncompleteExpired | Canceled | Unpaid, CustomerAction::Purchase { .. }) => Checkout,
        (Paused, CustomerAction::Purchase { .. }) => Refuse(Refusal::SubscriptionPaused),
        (Incomplete | Trialing | Active | PastDue, CustomerAction::Purchase { same_price }) => {
            if same_price && !current.cancel_at_period_end {
                Refuse(Refusal::AlreadyOnPlan)
            } else {
                ChangePrice
            }
        }
        (IncompleteExpired | Canceled, CustomerAction::Cancel) => Refuse(Refusal::SubscriptionEnded),
        (Incomplete, CustomerAction::Cancel) => Refuse(Refusal::SubscriptionIncomplete),
        (Paused, CustomerAction::Cancel) => Refuse(Refusal::SubscriptionPaused),
        (Trialing | Active | PastDue | Unpaid, CustomerAction::Cancel) => {
            if current.cancel_at_period_end {
                Refuse(Refusal::AlreadyCanceling)
            } else {
                CancelAtPeriodEnd
            }
        }
        (IncompleteExpired | Canceled, CustomerAction::UpdatePaymentMethod) => Refuse(Refusal::SubscriptionEnded),
        (Incomplete | Trialing | Active | PastDue | Unpaid | Paused, CustomerAction::UpdatePaymentMethod) => {
            BillingPortal
        }
        (_, CustomerAction::DisconnectPaymentMethod) => BillingPortal,
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
        // status (None: no subscription), cancel_at_period_end,
        //   [purchase another tier, purchase the current tier, cancel, update payment method, disconnect it]
        #[rustfmt::skip]
        let table: &[(Option<&str>, bool, [&str; 5])] = &[
            (None,                       false, ["checkout",     "checkout",        "nothing_to_cancel",       "no_subscription",    "no_subscription"]),
            (Some("incomplete"),         false, ["change_price", "already_on_plan", "subscription_incomplete", "billing_portal",     "billing_portal"]),
            (Some("incomplete"),         true,  ["change_price", "change_price",    "subscription_incomplete", "billing_portal",     "billing_portal"]),
            (Some("incomplete_expired"), false, ["checkout",     "checkout",        "subscription_ended",      "subscription_ended", "billing_portal"]),
            (Some("incomplete_expired"), true,  ["checkout",     "checkout",        "subscription_ended",      "subscription_ended", "billing_portal"]),
            (Some("trialing"),           false, ["change_price", "already_on_plan", "cancel_at_period_end",    "billing_portal",     "billing_portal"]),
            (Some("trialing"),           true,  ["change_price", "change_price",    "already_canceling",       "billing_portal",     "billing_portal"]),
            (Some("active"),             false, ["change_price", "already_on_plan", "cancel_at_period_end",    "billing_portal",     "billing_portal"]),
            (Some("active"),             true,  ["change_price", "change_price",    "already_canceling",       "billing_portal",     "billing_portal"]),
            (Some("past_due"),           false, ["change_price", "already_on_plan", "cancel_at_period_end",    "billing_portal",     "billing_portal"]),
            (Some("past_due"),           true,  ["change_price", "change_price",    "already_canceling",       "billing_portal",     "billing_portal"]),
            (Some("canceled"),           false, ["checkout",     "checkout",        "subscription_ended",      "subscription_ended", "billing_portal"]),
            (Some("canceled"),           true,  ["checkout",     "checkout",        "subscription_ended",      "subscription_ended", "billing_portal"]),
            (Some("unpaid"),             false, ["checkout",     "checkout",        "cancel_at_period_end",    "billing_portal",     "billing_portal"]),
            (Some("unpaid"),             true,  ["checkout",     "checkout",        "already_canceling",       "billing_portal",     "billing_portal"]),
            (Some("paused"),             false, ["subscription_paused", "subscription_paused", "subscription_paused", "billing_portal", "billing_portal"]),
            (Some("paused"),             true,  ["subscription_paused", "subscription_paused", "subscription_paused", "billing_portal", "billing_portal"]),
            (Some("frozen"),             false, ["unknown_subscription_status"; 5]),
            (Some("frozen"),             true,  ["unknown_subscription_status"; 5]),
        ];
        let actions = [
            CustomerAction::Purchase { same_price: false },
            CustomerAction::Purchase { same_price: true },
            CustomerAction::Cancel,
            CustomerAction::UpdatePaymentMethod,
            CustomerAction::DisconnectPaymentMethod,
        ];
        for (status, cancel_at_period_end, expected) in table {
            let current = status.map(|s| CurrentSubscription {
                status: StripeStatus::parse(s),
                cancel_at_period_end: *cancel_at_period_end,
            });
            for (action, want) in actions.iter().zip(expected) {
                let got = cell(decide_customer_action(current, *action));
                assert_eq!(got, *want, "{status:?} (canceling: {cancel_at_period_end}) × {action:?}");
            }
        }
        // Every documented status (and none) appears in the table.
        let covered: Vec<_> = table.iter().filter_map(|row| row.0).collect();
        for status in
            ["incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid", "paused"]
        {
            assert!(covered.contains(&status), "{status} is in the table");
            assert_ne!(StripeStatus::parse(status), StripeStatus::Unknown);
        }
    }

    #[test]
    fn a_live_subscription_outranks_an_ended_one_and_an_unknown_one_is_not_hidden() {
        let rank = |s: &str| StripeStatus::parse(s).rank();
        assert!(rank("past_due") > rank("unpaid"));
        assert!(rank("incomplete") > rank("frozen"));
        assert!(rank("frozen") > rank("canceled"));
        assert_eq!(rank("canceled"), rank("incomplete_expired"));
        assert_eq!(rank("active"), rank("trialing"));
    }
}

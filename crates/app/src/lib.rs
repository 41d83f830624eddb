//! # tollgate-app
//!
//! Tollgate's use cases, the same in a worker, the CLI and tests. They talk to Appwrite through
//! `tollgate-appwrite` and take time from an injected [`tollgate_core::Clock`]; nothing here knows whether
//! it runs in workerd or natively.
//!
//! ## Layout
//! - [`settings`]: every setting by its docs/compatibility.md name, with defaults.
//! - [`schema`] / [`bootstrap`]: the collections Tollgate needs, created idempotently.
//! - [`records`]: the documents Tollgate reads and writes, as typed values.
//! - [`ingest_webhook`]: a verified Sell.app delivery applied exactly once (the webhook contract).
//! - [`stripe_ingest`]: a verified Stripe delivery applied exactly once, by the status × event matrix.
//! - [`admin_grants`]: access given or taken by an admin, before or after the account exists.
//! - [`ledger`]: the entitlement ledger (`entitlements`): one document per source of access.
//! - [`projection`]: a user's `subscriptions` document and `paid` membership made equal to their access.
//! - [`failures`]: failure records, their retry on a schedule, replay, and pruning.
//! - [`inbox`]: claims keep their body; the cron finishes a delivery that was cut after its claim.
//! - [`pending_entitlements`]: purchases no account may claim yet, claimed once an account verifies the email.
//! - [`link_discord`]: linking a Discord account by OAuth2 (single-use state, PKCE), unlinking.
//! - [`billing`]: a customer's own Stripe billing actions (checkout or tier change, cancel, billing portal).
//! - [`lookup`]: everything that decides a user's access, for `/me/access` and the admin lookup.
//! - [`random`]: secure random tokens.
//! - [`role_sync`]: Discord roles as a projection of Appwrite (sync one user, the outbox, reconciliation).
//! - [`sync_state`]: where bounded walks resume (reconciliation, pending claims).
//! - [`scheduled`]: everything a cron run does.
//! - [`concurrent`]: awaiting several calls at once (the crons' fan-out).

pub mod admin_console;
pub mod admin_grants;
pub mod billing;
pub mod bootstrap;
pub mod catalogue_report;
pub mod concurrent;
pub mod doctor;
pub mod error;
pub mod failures;
pub mod inbox;
pub mod ingest_webhook;
pub mod ledger;
pub mod link_discord;
pub mod lookup;
pub mod pending_entitlements;
pub mod projection;
pub mod random;
pub mod records;
pub mod refunds;
pub mod role_sync;
pub mod scheduled;
pub mod schema;
pub mod settings;
pub mod stripe_ingest;
pub mod stripe_reader;
pub mod sync_state;

pub use error::StepError;
pub use ingest_webhook::{DeliveryProgress, IngestOutcome, NotRecorded};

use settings::Settings;
use tollgate_appwrite::AppwriteClient;
use tollgate_core::Clock;

/// What every use case needs: the Appwrite client, the settings and the clock; and Stripe's API where
/// `STRIPE_API_KEY` is set, so that a retried or replayed Stripe event reads the truth as its delivery did.
pub struct App<'a, C: Clock> {
    pub appwrite: &'a AppwriteClient,
    pub settings: &'a Settings,
    pub clock: &'a C,
    pub stripe: Option<&'a tollgate_stripe::StripeApi>,
}

impl<'a, C: Clock> App<'a, C> {
    pub fn new(appwrite: &'a AppwriteClient, settings: &'a Settings, clock: &'a C) -> Self {
        Self { appwrite, settings, clock, stripe: None }
    }

    /// With Stripe's API (`STRIPE_API_KEY` set): retries and replays of Stripe events read it too.
    pub fn with_stripe(mut self, stripe: Option<&'a tollgate_stripe::StripeApi>) -> Self {
        self.stripe = stripe;
        self
    }
}

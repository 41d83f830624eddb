//! # tollgate-providers
//!
//! Webhook signature verification and payload parsing, pure: raw bytes and headers in, a
//! [`VerifiedEvent`] out. Nothing unverified reaches the use cases, because only the verifiers here (and
//! [`VerifiedEvent::from_recorded_failure`], for bodies Tollgate verified earlier) can make one. Time is
//! passed in, never read from the system.
//!
//! ## Layout
//! - [`headers`]: case-insensitive request headers.
//! - [`error`]: [`VerifyError`], one variant per way a signature can fail, with the machine-readable reason;
//!   [`InvalidSecret`] / [`VerifyFailure`], a configured secret that cannot be used (not the sender's fault).
//! - [`verified`]: [`VerifiedEvent`] and [`Provider`].
//! - [`sellapp`]: Sell.app's legacy hex `signature`, or Standard Webhooks headers when present.
//! - [`sellapp_payload`]: what a verified Sell.app body means (email, order, line items; grant, revoke,
//!   subscription period, ignore).
//! - [`stripe`]: the `Stripe-Signature` header.
//! - [`stripe_payload`]: what a verified Stripe event means (both API versions' field locations).
//! - [`standard_webhooks`]: `webhook-id` / `webhook-timestamp` / `webhook-signature`.

pub mod error;
pub mod headers;
pub mod sellapp;
pub mod sellapp_payload;
pub mod standard_webhooks;
pub mod stripe;
pub mod stripe_payload;
pub mod verified;

pub use error::{InvalidSecret, VerifyError, VerifyFailure};
pub use headers::Headers;
pub use sellapp_payload::{PayloadError, SellappAction, SellappDelivery};
pub use verified::{Provider, VerifiedEvent};

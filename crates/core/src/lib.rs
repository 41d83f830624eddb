//! # tollgate-core
//!
//! The domain of Tollgate, free of I/O and async: values that are valid once they exist, and the pure
//! decisions the use cases in `tollgate-app` are built from.
//!
//! ## Layout
//! - [`email`]: `Email`, trimmed, lower-cased and validated on parse (Appwrite stores emails lower-cased).
//! - [`ids`]: typed Appwrite ids (`AppwriteId`, `UserId`).
//! - [`secret`]: `Secret`, a string that never prints itself.
//! - [`attribute_fit`]: provider strings fitted to Appwrite attribute sizes (prefix + hash when too long).
//! - [`idempotency`]: webhook idempotency keys and the document ids derived from them (docs/compatibility.md).
//! - [`entitlement`]: the ledger: one entitlement per source of access, and how events change it.
//! - [`access`]: access derived from a user's entitlements (pure; the projections follow it).
//! - [`plans`]: the plans catalogue's decisions: product → plan, durations, exclusive tier groups.
//! - [`stripe`]: Stripe subscription statuses, their access, and the webhook half of the status × event matrix.
//! - [`retry_schedule`]: when a failed webhook is tried again, and when it is given up on.
//! - [`clock`]: the injected clock; nothing in Tollgate reads the wall clock directly.
//! - [`subrequests`]: the subrequests one Worker invocation made, and its budget.
//! - [`snowflake`]: Discord ids (`DiscordUserId`, `GuildId`, `RoleId`).
//! - [`stripe_actions`]: what a customer's own billing action does for each Stripe subscription status.
//! - [`desired_roles`] / [`role_diff`]: which managed roles a member should hold, and the changes to get there.

pub mod access;
pub mod attribute_fit;
pub mod clock;
pub mod desired_roles;
pub mod email;
pub mod entitlement;
pub mod idempotency;
pub mod ids;
pub mod plans;
pub mod retry_schedule;
pub mod role_diff;
pub mod secret;
pub mod snowflake;
pub mod stripe;
pub mod stripe_actions;
pub mod subrequests;

pub use access::{derive_access, Access, PlanAccess};
pub use attribute_fit::fit_to_attribute;
#[cfg(not(target_arch = "wasm32"))]
pub use clock::SystemClock;
pub use clock::{Clock, FixedClock};
pub use desired_roles::{desired_roles, managed_roles, RoleMapping};
pub use email::{Email, EmailError};
pub use entitlement::{
    apply_event, Entitlement, EntitlementPatch, EntitlementStatus, Grant, LedgerEvent, Revocation, RevokeReason,
    SubscriptionStatus,
};
pub use idempotency::{derived_document_id, payload_hash, IdempotencyKey};
pub use ids::{AppwriteId, IdError, UserId};
pub use plans::{
    exclusive_plans, parse_duration, plan_for_purchase, plan_for_stripe_price, stripe_price_for_plan, LineItem,
    PlanMatch, PlanOffer, Tier,
};
pub use role_diff::{role_diff, RoleDiff};
pub use secret::Secret;
pub use snowflake::{DiscordUserId, GuildId, RoleId, SnowflakeError};
pub use stripe_actions::{decide_customer_action, subscription_rank, BillingStep, CustomerAction, Refusal};

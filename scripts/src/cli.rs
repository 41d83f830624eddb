//! The command line's shape (clap). Every read command has `--json`; destructive ones ask unless `--yes`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about = "Administer Tollgate: schema, access, failures, Discord roles.")]
pub struct Cli {
    /// Read settings from this KEY=VALUE file (e.g. .tollgate/dev.env); it overrides the environment.
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Print machine-readable JSON instead of a report.
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not ask for confirmation before changing things.
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database, the `paid` team, and every collection, attribute and index that is missing.
    Bootstrap {
        /// Only list what would be created.
        #[arg(long)]
        dry_run: bool,
    },
    /// Set a subscription by email (works before the account exists: a pending entitlement).
    UpsertSubscription(UpsertArgs),
    /// Give access to a plan until a time (works before the account exists).
    Grant(GrantArgs),
    /// Take access away.
    Revoke(RevokeArgs),
    /// Everything that decides a user's access.
    Lookup(LookupArgs),
    /// Webhook deliveries that could not be applied.
    #[command(subcommand)]
    Failures(FailuresCommand),
    /// Make Discord roles match access now.
    Sync(SyncArgs),
    /// Which Discord roles each plan grants.
    #[command(subcommand)]
    Plans(PlansCommand),
    /// Check everything that makes paid roles fail (exit code 1 if anything does).
    Doctor,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Status {
    Active,
    Inactive,
}

#[derive(Debug, Args)]
pub struct UpsertArgs {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub plan: String,
    #[arg(long, value_enum, default_value = "active")]
    pub status: Status,
    /// When access ends (RFC 3339, e.g. 2027-01-01T00:00:00Z); none: no end.
    #[arg(long)]
    pub expires: Option<String>,
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub plan: String,
    /// When access ends (RFC 3339); none: open-ended. Granting the same plan again sets the new end.
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[arg(long)]
    pub email: String,
    /// Revoke only the entitlement with this source (as `lookup` shows it); none: all of them.
    #[arg(long)]
    pub source: Option<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct LookupArgs {
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FailureStateArg {
    Due,
    Dead,
    Settled,
}

#[derive(Debug, Subcommand)]
pub enum FailuresCommand {
    /// List failures (newest state first), optionally one state only.
    List {
        #[arg(long, value_enum)]
        state: Option<FailureStateArg>,
    },
    /// Re-send a failure's exact body through the webhook path.
    Replay {
        /// The failure's id.
        id: Option<String>,
        /// Every failure that is due now.
        #[arg(long, conflicts_with = "id")]
        all_due: bool,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SyncArgs {
    /// One user (Appwrite id).
    #[arg(long)]
    pub user: Option<String>,
    /// The whole guild (reconciliation), with a progress bar.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum PlansCommand {
    /// Every plan: its roles, the Sell.app products that sell it, its duration and tier.
    List,
    /// Create or edit a plan; only the options given change.
    Set(Box<PlanSet>),
}

/// `tollgate plans set`'s arguments (boxed: the largest subcommand).
#[derive(Debug, clap::Args)]
pub struct PlanSet {
    pub plan: String,
    /// Role ids, comma-separated (replaces the plan's roles).
    #[arg(long, value_delimiter = ',')]
    pub roles: Option<Vec<String>>,
    /// The guild (default CUSTOMER_GUILD_ID).
    #[arg(long)]
    pub guild: Option<String>,
    /// A Sell.app product id that sells this plan (repeatable; replaces the list; `--sellapp-product ''` clears it).
    #[arg(long = "sellapp-product")]
    pub sellapp_products: Vec<String>,
    /// A Sell.app product variant id that sells this plan (repeatable; replaces the list).
    #[arg(long = "sellapp-variant")]
    pub sellapp_variants: Vec<String>,
    /// A Stripe price id (`price_…`) that sells this plan (repeatable; replaces the list; `--stripe-price ''` clears it).
    #[arg(long = "stripe-price")]
    pub stripe_prices: Vec<String>,
    /// How long a one-off purchase lasts, e.g. 30d, 2w, 12h (`none`: open-ended).
    #[arg(long)]
    pub duration: Option<String>,
    /// The exclusive tier group this plan belongs to (`none`: leave it); needs --rank.
    #[arg(long, requires = "rank")]
    pub group: Option<String>,
    /// The plan's rank in its group (higher wins).
    #[arg(long, requires = "group")]
    pub rank: Option<i64>,
}

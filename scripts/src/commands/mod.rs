//! One file per family of subcommands; `run` dispatches and returns the exit code.

mod access;
mod doctor;
mod failures;
mod plans;
mod schema;
mod sync;

use crate::cli::{Cli, Command};
use crate::config::Config;
use anyhow::Result;

pub async fn run(cli: Cli) -> Result<i32> {
    let config = Config::load(cli.env_file.as_deref())?;
    match cli.command {
        Command::Bootstrap { dry_run: false } => schema::bootstrap(&config, cli.json).await,
        Command::Bootstrap { dry_run: true } => schema::dry_run(&config, cli.json).await,
        Command::UpsertSubscription(args) => access::upsert(&config, cli.json, args).await,
        Command::Grant(args) => access::grant(&config, cli.json, args).await,
        Command::Revoke(args) => access::revoke(&config, cli.json, cli.yes, args).await,
        Command::Lookup(args) => access::lookup(&config, cli.json, args).await,
        Command::Failures(command) => failures::run(&config, cli.json, cli.yes, command).await,
        Command::Sync(args) => sync::run(&config, cli.json, args).await,
        Command::Plans(command) => plans::run(&config, cli.json, command).await,
        Command::Doctor => doctor::run(&config, cli.json).await,
    }
}

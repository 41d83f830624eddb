//! `cargo xtask load [--deliveries N] [--duplicates P] [--concurrency C] [--faults 0,10,30,50] [--outage S]
//! [--backlog N] [--seed S]`: builds the workers and the load runner (`crates/load`, optimised: devstack's
//! CPU is part of what it measures) and runs it. It talks to its own devstack and `wrangler dev` workers on
//! loopback only, stops by itself, and fails when any buyer ends lost, duplicated or stuck. Not part of
//! `cargo xtask test` (a default run takes minutes of both cores); its unit tests are.

use anyhow::{bail, Result};
use std::process::Command;
use xtask::paths::{cargo, workspace_root};

pub fn run(args: &[&str]) -> Result<()> {
    if !args.iter().any(|a| matches!(*a, "--help" | "-h")) {
        xtask::toolchain::ensure_all()?;
        xtask::build::build_workers(xtask::paths::WORKERS)?;
    }
    let status = Command::new(cargo())
        .args(["run", "--quiet", "--release", "-p", "tollgate-load", "--"])
        .args(args)
        .current_dir(workspace_root())
        .status()?;
    if !status.success() {
        bail!("load: the run failed (see above)");
    }
    Ok(())
}

//! `cargo xtask chaos --seeds N [--start S] [--jobs J] [--history FILE]`: builds the chaos runner
//! (`crates/chaos`, optimised: a thousand seeds spend their time in JSON and SQLite) and runs it, which
//! prints every failing seed's history with the command to replay it, then the pass/fail count and the
//! time. It talks to its own in-process devstacks on loopback only. A fixed handful of seeds also runs in
//! `cargo xtask test`, as `tollgate-chaos`'s regression test.

use anyhow::{bail, Result};
use std::process::Command;
use xtask::paths::{cargo, workspace_root};

const USAGE: &str = "usage: cargo xtask chaos [--seeds N] [--start S] [--jobs J] [--history FILE] [--verbose]
  (default: 100 seeds from 0, 4 at a time)";

pub fn run(args: &[&str]) -> Result<()> {
    if args.iter().any(|a| matches!(*a, "--help" | "-h")) {
        println!("{USAGE}");
        return Ok(());
    }
    let mut forwarded: Vec<&str> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--seeds" | "--start" | "--jobs" | "--history" => {
                let Some(value) = rest.next() else { bail!("{arg} needs a value\n{USAGE}") };
                forwarded.extend([*arg, *value]);
            }
            "--verbose" => forwarded.push(arg),
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if !forwarded.contains(&"--seeds") && !forwarded.contains(&"--history") {
        forwarded.extend(["--seeds", "100"]);
    }
    let status = Command::new(cargo())
        .args(["run", "--quiet", "--release", "-p", "tollgate-chaos", "--"])
        .args(&forwarded)
        .current_dir(workspace_root())
        .status()?;
    if !status.success() {
        bail!("chaos: some seeds failed (their histories and replay commands are printed above)");
    }
    Ok(())
}

//! `cargo xtask test`: everything CI checks, in the order that fails fastest.

use anyhow::{bail, Result};
use std::process::Command;
use std::time::Instant;
use xtask::paths::{cargo, workspace_root, WORKERS};
use xtask::process::run as run_command;
use xtask::toolchain::WASM_TARGET;

pub fn run_steps() -> Result<()> {
    let started = Instant::now();
    step("toolchain", xtask::toolchain::ensure_all)?;
    step("browser for the page tests (chromium, chromedriver)", xtask::toolchain::ensure_browser)?;
    step("rustfmt", || cargo_run("cargo fmt --check", &["fmt", "--all", "--check"]))?;
    step("clippy (native, all targets)", || {
        cargo_run("cargo clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
    })?;
    step("clippy (workers, wasm32)", || {
        let mut args = vec!["clippy", "--target", WASM_TARGET, "-p", "tollgate-worker-common", "-p", "tollgate-web"];
        // The bench workloads are compiled to wasm too (`cargo xtask bench`).
        args.extend(["-p", "tollgate-bench"]);
        for worker in WORKERS {
            args.extend(["-p", worker.package]);
        }
        args.extend(["--", "-D", "warnings"]);
        cargo_run("cargo clippy (wasm32)", &args)
    })?;
    step("build workers (wasm32 → workerd)", || xtask::build::build_workers(WORKERS))?;
    step("deploy configuration (wrangler deploy --dry-run of every worker)", || {
        let scratch = std::env::temp_dir().join(format!("tollgate-dry-run-{}", std::process::id()));
        let mut over = Vec::new();
        for worker in WORKERS {
            let output = xtask::wrangler::deploy_dry_run(*worker, &scratch.join(worker.name))?;
            let size = output.lines().find(|l| l.contains("Total Upload")).unwrap_or_default().trim().to_owned();
            let Some(gzip) = xtask::wrangler::gzip_kib(&output) else {
                bail!("wrangler did not report {}'s gzipped size:\n{output}", worker.name);
            };
            let budget = xtask::wrangler::GZIP_BUDGET_KIB;
            if gzip > budget {
                over.push(format!("{} is {gzip:.2} KiB gzipped (budget {budget} KiB)", worker.name));
            }
            eprintln!("xtask: {} deploys cleanly ({size}; budget {budget} KiB)", worker.name);
        }
        if !over.is_empty() {
            bail!("over the gzip budget: {}", over.join(", "));
        }
        let _ = std::fs::remove_dir_all(&scratch);
        Ok(())
    })?;
    step("tests (unit, integration, end-to-end through workerd)", || {
        cargo_run("cargo test", &["test", "--workspace", "--no-fail-fast"])
    })?;
    eprintln!("xtask test: all steps passed in {:.0?}", started.elapsed());
    Ok(())
}

pub fn run(args: &[&str]) -> Result<()> {
    if let Some(extra) = args.first() {
        bail!("`cargo xtask test` takes no arguments (got `{extra}`)");
    }
    run_steps()
}

fn step(name: &str, action: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("\n==> {name}");
    let started = Instant::now();
    action()?;
    eprintln!("<== {name}: ok ({:.0?})", started.elapsed());
    Ok(())
}

fn cargo_run(what: &str, args: &[&str]) -> Result<()> {
    run_command(what, Command::new(cargo()).args(args).current_dir(workspace_root()))
}

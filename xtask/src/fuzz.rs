//! `cargo xtask fuzz --seconds N [--target T]`: runs each cargo-fuzz target of `fuzz/` (nightly, libFuzzer)
//! for N seconds and prints the executions per target. Each corpus (`fuzz/corpus/<target>/`, not committed)
//! is seeded first from `testdata/vectors/signatures.json` (the signature targets, framed as
//! `tollgate_fuzz::SignedRequest::parse` reads them; their bodies also seed the payload target) and from the
//! committed examples in `fuzz/seeds/<target>/`. A crash is saved by libFuzzer under
//! `fuzz/artifacts/<target>/`; the command then fails after running the other targets.
//!
//! Not part of `cargo xtask test`: fuzzing for a meaningful time does not fit CI's budget, and building the
//! targets means a second, sanitizer-instrumented build of every dependency on the nightly toolchain.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use xtask::paths::workspace_root;
use xtask::toolchain::{ensure_fuzzing, NIGHTLY};

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--target T]...   (default: 60 seconds, every target)";

struct Outcome {
    target: String,
    executions: u64,
    seconds: f64,
    crashed: bool,
}

pub fn run(args: &[&str]) -> Result<()> {
    let mut seconds: u64 = 60;
    let mut only: Vec<String> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--seconds" => {
                let value = rest.next().context(USAGE)?;
                seconds =
                    value.parse().ok().filter(|s| *s > 0).with_context(|| format!("--seconds {value}: {USAGE}"))?;
            }
            "--target" => only.push(rest.next().context(USAGE)?.to_string()),
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    ensure_fuzzing()?;
    let fuzz_dir = workspace_root().join("fuzz");
    let targets = list_targets(&fuzz_dir)?;
    if let Some(unknown) = only.iter().find(|t| !targets.contains(t)) {
        bail!("no fuzz target `{unknown}`; the targets are: {}", targets.join(", "));
    }
    let chosen: Vec<&String> = targets.iter().filter(|t| only.is_empty() || only.contains(t)).collect();
    let seeds = Seeds::from_testdata()?;
    let mut outcomes = Vec::new();
    for target in chosen {
        let corpus = fuzz_dir.join("corpus").join(target);
        seeds.write(target, &corpus)?;
        eprintln!("\n==> fuzz {target} for {seconds} s");
        outcomes.push(run_target(&fuzz_dir, target, &corpus, seconds)?);
    }
    println!("\n{:<30} {:>8} {:>14} {:>10}  result", "target", "seconds", "executions", "exec/s");
    for o in &outcomes {
        let rate = o.executions as f64 / o.seconds.max(1.0);
        let result = if o.crashed { "CRASH (see fuzz/artifacts/)" } else { "no crash" };
        println!("{:<30} {:>8.0} {:>14} {:>10.0}  {result}", o.target, o.seconds, o.executions, rate);
    }
    let crashed: Vec<&str> = outcomes.iter().filter(|o| o.crashed).map(|o| o.target.as_str()).collect();
    if !crashed.is_empty() {
        bail!("fuzz targets crashed: {}", crashed.join(", "));
    }
    Ok(())
}

/// `cargo +nightly fuzz …` through the rustup proxy, without the variables `cargo xtask` (stable) set, so the
/// nightly toolchain builds into `fuzz/target/`.
fn nightly_cargo(fuzz_dir: &Path) -> Command {
    let mut command = Command::new("cargo");
    command.arg(format!("+{NIGHTLY}")).arg("fuzz").current_dir(fuzz_dir);
    for variable in ["RUSTUP_TOOLCHAIN", "CARGO", "RUSTC", "RUSTDOC", "CARGO_TARGET_DIR", "CARGO_INCREMENTAL"] {
        command.env_remove(variable);
    }
    command
}

fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let output = nightly_cargo(fuzz_dir).arg("list").output().context("running cargo fuzz list")?;
    if !output.status.success() {
        bail!("cargo fuzz list failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn run_target(fuzz_dir: &Path, target: &str, corpus: &Path, seconds: u64) -> Result<Outcome> {
    let mut command = nightly_cargo(fuzz_dir);
    command.args(["run", target]).arg(corpus);
    let committed = fuzz_dir.join("seeds").join(target);
    if committed.is_dir() {
        command.arg(&committed);
    }
    command
        .args(["--", &format!("-max_total_time={seconds}"), "-print_final_stats=1"])
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let output = command.spawn().context("starting cargo fuzz run")?.wait_with_output()?;
    let elapsed = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = log.lines().rev().take(12).collect();
    tail.iter().rev().for_each(|line| eprintln!("{line}"));
    let executions = final_stat(&log, "stat::number_of_executed_units:")
        .or_else(|| log.lines().rev().find_map(|l| l.strip_prefix("Done ")?.split(' ').next()?.parse().ok()));
    let crashed = !output.status.success();
    match executions {
        Some(executions) => {
            Ok(Outcome { target: target.to_owned(), executions, seconds: elapsed.min(seconds as f64), crashed })
        }
        None if crashed => Ok(Outcome { target: target.to_owned(), executions: 0, seconds: elapsed, crashed }),
        None => bail!("cargo fuzz run {target} printed no execution count"),
    }
}

fn final_stat(log: &str, name: &str) -> Option<u64> {
    log.lines().find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

/// Seeds derived from `testdata/`: (target, file name, bytes).
struct Seeds(Vec<(&'static str, String, Vec<u8>)>);

impl Seeds {
    fn from_testdata() -> Result<Self> {
        let path = workspace_root().join("testdata/vectors/signatures.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let document: Value = serde_json::from_str(&text).context("signatures.json is not JSON")?;
        let mut seeds = Vec::new();
        for vector in document["vectors"].as_array().into_iter().flatten() {
            let id = vector["id"].as_str().unwrap_or("vector");
            let body = vector["body"].as_str().unwrap_or_default();
            let targets: &[&'static str] = match vector["scheme"].as_str() {
                Some("sellapp-hex") => &["sellapp_signature"],
                Some("stripe") => &["stripe_signature"],
                Some("standard-webhooks") => &["standard_webhooks_signature", "sellapp_signature"],
                _ => &[],
            };
            for target in targets {
                seeds.push((*target, id.to_owned(), framed(vector, body)));
            }
            seeds.push(("sellapp_payload", id.to_owned(), body.as_bytes().to_vec()));
        }
        Ok(Self(seeds))
    }

    /// Writes the target's seeds into its corpus (a file that is already there is left as it is).
    fn write(&self, target: &str, corpus: &PathBuf) -> Result<()> {
        std::fs::create_dir_all(corpus).with_context(|| format!("creating {}", corpus.display()))?;
        for (_, name, bytes) in self.0.iter().filter(|(t, _, _)| *t == target) {
            let file = corpus.join(format!("seed-{name}"));
            if !file.exists() {
                std::fs::write(&file, bytes).with_context(|| format!("writing {}", file.display()))?;
            }
        }
        Ok(())
    }
}

/// `<secret>\n<now>\n<name>: <value>\n…\n\n<body>`, the framing the signature targets read.
fn framed(vector: &Value, body: &str) -> Vec<u8> {
    let secret = vector["secret"].as_str().unwrap_or_default();
    let now = vector["now"].as_i64().unwrap_or_default();
    let mut out = format!("{secret}\n{now}\n");
    for (name, value) in vector["headers"].as_object().into_iter().flatten() {
        out.push_str(&format!("{name}: {}\n", value.as_str().unwrap_or_default()));
    }
    out.push('\n');
    out.push_str(body);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_vector_is_framed_as_the_signature_targets_read_it() {
        let vector = json!({"secret": "s", "now": 7, "headers": {"signature": "ab"}});
        assert_eq!(framed(&vector, "{\"a\":1}"), b"s\n7\nsignature: ab\n\n{\"a\":1}");
    }

    #[test]
    fn libfuzzers_final_stats_give_the_execution_count() {
        let log = "#1024\tpulse\nDone 52 runs in 1 second(s)\nstat::number_of_executed_units: 123456\nstat::peak_rss_mb: 40\n";
        assert_eq!(final_stat(log, "stat::number_of_executed_units:"), Some(123456));
    }
}

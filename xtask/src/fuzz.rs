//! `cargo xtask fuzz [--seconds N] [--runs R] [--jobs J] [--sanitizer S] [--target T]`: runs each cargo-fuzz
//! target of `fuzz/` (nightly, libFuzzer) for N seconds and/or R executions and prints the executions per
//! target. Each corpus (`fuzz/corpus/<target>/`, not committed) is seeded first from `testdata/` (the
//! signature vectors of `testdata/vectors/signatures.json`, framed as `tollgate_fuzz::SignedRequest::parse`
//! reads them, their bodies for the payload targets; events and API answers built from Stripe's example
//! objects in `testdata/stripe/`) and from the committed examples in `fuzz/seeds/<target>/`. A crash is saved
//! by libFuzzer under `fuzz/artifacts/<target>/`; the command then fails after running the other targets.
//!
//! `--sanitizer none` drops AddressSanitizer (cargo-fuzz's default): the targets and what they reach are safe
//! Rust, and the instrumented allocator costs more than the code under test. Each sanitizer is its own build
//! (`fuzz/target/`; the first one of a sanitizer builds every dependency, aws-lc-sys's C included: about
//! 35 min on a busy 2-core machine). The table names the sanitizer each count ran with.
//!
//! `--jobs J` runs J libFuzzer processes of a target at once on the same corpus (libFuzzer reloads the corpus
//! directory, so each sees what the others found); `--runs R` is split between them (`-runs` each) and the
//! executions printed are the sum of every process's own final `stat::number_of_executed_units`.
//!
//! Not part of `cargo xtask test`: fuzzing for a meaningful time does not fit CI's budget, and building the
//! targets means a second, sanitizer-instrumented build of every dependency on the nightly toolchain.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;
use xtask::paths::workspace_root;
use xtask::toolchain::{ensure_fuzzing, NIGHTLY};

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--runs R] [--jobs J] [--sanitizer address|none|...] \
                     [--target T]...   (default: 60 seconds, 1 job, AddressSanitizer, every target)";

/// cargo-fuzz's `--sanitizer` values.
const SANITIZERS: [&str; 5] = ["address", "leak", "memory", "thread", "none"];

#[derive(Debug, PartialEq)]
struct Options {
    /// `-max_total_time` of each process; `None`: no time limit (then `runs` is set).
    seconds: Option<u64>,
    /// Executions in all, split between the jobs.
    runs: Option<u64>,
    jobs: u64,
    sanitizer: String,
    only: Vec<String>,
}

impl Options {
    fn parse(args: &[&str]) -> Result<Option<Self>> {
        let mut options = Self { seconds: None, runs: None, jobs: 1, sanitizer: "address".into(), only: Vec::new() };
        let positive = |flag: &str, value: Option<&&str>| -> Result<u64> {
            let value = value.with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            value.parse().ok().filter(|n| *n > 0).with_context(|| format!("{flag} {value}: a positive number\n{USAGE}"))
        };
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            match *arg {
                "--seconds" => options.seconds = Some(positive("--seconds", rest.next())?),
                "--runs" => options.runs = Some(positive("--runs", rest.next())?),
                "--jobs" => options.jobs = positive("--jobs", rest.next())?,
                "--sanitizer" => {
                    let value = rest.next().context(USAGE)?;
                    if !SANITIZERS.contains(value) {
                        bail!("--sanitizer {value}: one of {}\n{USAGE}", SANITIZERS.join(", "));
                    }
                    options.sanitizer = value.to_string();
                }
                "--target" => options.only.push(rest.next().context(USAGE)?.to_string()),
                "--help" | "-h" => return Ok(None),
                other => bail!("unknown argument `{other}`\n{USAGE}"),
            }
        }
        if options.seconds.is_none() && options.runs.is_none() {
            options.seconds = Some(60);
        }
        Ok(Some(options))
    }

    /// libFuzzer's arguments for each of the jobs: the time limit, that job's share of the runs, final stats.
    fn libfuzzer_args(&self) -> Vec<Vec<String>> {
        let shares = match self.runs {
            // Fewer runs than jobs: a job with no runs is not started.
            Some(runs) => split(runs, self.jobs).into_iter().filter(|share| *share > 0).map(Some).collect(),
            None => vec![None; self.jobs as usize],
        };
        shares
            .into_iter()
            .map(|share| {
                let mut args = vec![format!("-max_total_time={}", self.seconds.unwrap_or(0))];
                args.extend(share.map(|runs| format!("-runs={runs}")));
                args.push("-print_final_stats=1".into());
                args
            })
            .collect()
    }
}

/// `total` in `parts` shares that differ by at most one and add up to `total`.
fn split(total: u64, parts: u64) -> Vec<u64> {
    (0..parts).map(|i| total / parts + u64::from(i < total % parts)).collect()
}

struct Outcome {
    target: String,
    executions: u64,
    seconds: f64,
    crashed: bool,
}

pub fn run(args: &[&str]) -> Result<()> {
    let Some(options) = Options::parse(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    ensure_fuzzing()?;
    let fuzz_dir = workspace_root().join("fuzz");
    let targets = list_targets(&fuzz_dir)?;
    if let Some(unknown) = options.only.iter().find(|t| !targets.contains(t)) {
        bail!("no fuzz target `{unknown}`; the targets are: {}", targets.join(", "));
    }
    let chosen: Vec<&String> = targets.iter().filter(|t| options.only.is_empty() || options.only.contains(t)).collect();
    let seeds = Seeds::from_testdata()?;
    let mut outcomes = Vec::new();
    for target in chosen {
        let corpus = fuzz_dir.join("corpus").join(target);
        seeds.write(target, &corpus)?;
        build_target(&fuzz_dir, target, &options.sanitizer)?;
        let limits = match (options.seconds, options.runs) {
            (Some(seconds), Some(runs)) => format!("{seconds} s or {runs} executions"),
            (Some(seconds), None) => format!("{seconds} s"),
            (None, runs) => format!("{} executions", runs.unwrap_or_default()),
        };
        eprintln!("\n==> fuzz {target} for {limits}, {} job(s), sanitizer {}", options.jobs, options.sanitizer);
        outcomes.push(run_target(&fuzz_dir, target, &corpus, &options)?);
    }
    println!(
        "\n{:<30} {:>9} {:>4} {:>8} {:>14} {:>10}  result",
        "target", "sanitizer", "jobs", "seconds", "executions", "exec/s"
    );
    for o in &outcomes {
        let rate = o.executions as f64 / o.seconds.max(1.0);
        let result = if o.crashed { "CRASH (see fuzz/artifacts/)" } else { "no crash" };
        println!(
            "{:<30} {:>9} {:>4} {:>8.0} {:>14} {:>10.0}  {result}",
            o.target, options.sanitizer, options.jobs, o.seconds, o.executions, rate
        );
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

/// Builds before the clock starts, so that the seconds printed are fuzzing only.
fn build_target(fuzz_dir: &Path, target: &str, sanitizer: &str) -> Result<()> {
    let status = nightly_cargo(fuzz_dir)
        .args(["build", target, "--sanitizer", sanitizer])
        .status()
        .context("running cargo fuzz build")?;
    if !status.success() {
        bail!("cargo fuzz build {target} --sanitizer {sanitizer} failed");
    }
    Ok(())
}

fn run_target(fuzz_dir: &Path, target: &str, corpus: &Path, options: &Options) -> Result<Outcome> {
    let committed = fuzz_dir.join("seeds").join(target);
    let started = Instant::now();
    let logs: Vec<(bool, String)> = std::thread::scope(|scope| {
        let jobs: Vec<_> = options
            .libfuzzer_args()
            .into_iter()
            .map(|args| {
                let committed = &committed;
                scope.spawn(move || -> Result<(bool, String)> {
                    let mut command = nightly_cargo(fuzz_dir);
                    command.args(["run", target, "--sanitizer", &options.sanitizer]).arg(corpus);
                    if committed.is_dir() {
                        command.arg(committed);
                    }
                    command.arg("--").args(&args).stdout(Stdio::inherit()).stderr(Stdio::piped());
                    let output = command.spawn().context("starting cargo fuzz run")?.wait_with_output()?;
                    Ok((output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned()))
                })
            })
            .collect();
        jobs.into_iter().map(|job| job.join().expect("a fuzz job's thread panicked")).collect::<Result<_>>()
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut executions = 0;
    let mut crashed = false;
    for (job, (success, log)) in logs.iter().enumerate() {
        let tail: Vec<&str> = log.lines().rev().take(12).collect();
        eprintln!("--- job {job} of {target}:");
        tail.iter().rev().for_each(|line| eprintln!("{line}"));
        crashed |= !success;
        match job_executions(log) {
            Some(count) => executions += count,
            None if !success => {}
            None => bail!("cargo fuzz run {target} (job {job}) printed no execution count"),
        }
    }
    let seconds = match options.seconds {
        Some(limit) if options.runs.is_none() => elapsed.min(limit as f64),
        _ => elapsed,
    };
    Ok(Outcome { target: target.to_owned(), executions, seconds, crashed })
}

/// One libFuzzer process's executions: its final stats, else its `Done N runs` line.
fn job_executions(log: &str) -> Option<u64> {
    final_stat(log, "stat::number_of_executed_units:")
        .or_else(|| log.lines().rev().find_map(|l| l.strip_prefix("Done ")?.split(' ').next()?.parse().ok()))
}

fn final_stat(log: &str, name: &str) -> Option<u64> {
    log.lines().find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

/// Seeds derived from `testdata/`: (target, file name, bytes).
struct Seeds(Vec<(&'static str, String, Vec<u8>)>);

impl Seeds {
    fn from_testdata() -> Result<Self> {
        let document = read_json("testdata/vectors/signatures.json")?;
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
            let payload = if vector["scheme"] == "stripe" { "stripe_payload" } else { "sellapp_payload" };
            seeds.push((payload, id.to_owned(), body.as_bytes().to_vec()));
        }
        let objects = read_json("testdata/stripe/events/fixture_objects.json")?;
        seeds.extend(stripe_events(&objects).into_iter().map(|(name, bytes)| ("stripe_payload", name, bytes)));
        let fixtures = read_json("testdata/stripe/fixtures.json")?;
        seeds.extend(
            stripe_answers(&fixtures["resources"]).into_iter().map(|(name, bytes)| ("stripe_decode", name, bytes)),
        );
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

fn read_json(relative: &str) -> Result<Value> {
    let path = workspace_root().join(relative);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{relative} is not JSON"))
}

/// The event types Tollgate handles, by the type of the object they carry (and one it ignores).
const STRIPE_EVENT_TYPES: [(&str, &[&str]); 6] = [
    ("checkout.session", &["checkout.session.completed"]),
    (
        "subscription",
        &[
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.paused",
            "customer.subscription.resumed",
        ],
    ),
    ("invoice", &["invoice.paid", "invoice.payment_failed"]),
    ("charge", &["charge.refunded"]),
    ("dispute", &["charge.dispute.created", "charge.dispute.closed"]),
    ("customer", &["customer.updated"]),
];

/// Stripe's example event carrying each example object under each event type of that object (file name: the
/// event type). `objects` is `testdata/stripe/events/fixture_objects.json`.
fn stripe_events(objects: &Value) -> Vec<(String, Vec<u8>)> {
    let mut events = Vec::new();
    for (object_type, kinds) in STRIPE_EVENT_TYPES {
        let Some(object) = objects.get(object_type) else { continue };
        for kind in kinds {
            let mut event = objects.get("event").cloned().unwrap_or_else(|| json!({"id": "evt_1", "created": 1}));
            event["type"] = json!(kind);
            event["data"] = json!({ "object": object });
            events.push((kind.to_string(), event.to_string().into_bytes()));
        }
    }
    events
}

/// Each example object as a 200 answer, the subscriptions also as a one-item list, and the list of all:
/// framed as `tollgate_fuzz::status_and_body` reads them (two status bytes, then the body). `resources` is
/// `testdata/stripe/fixtures.json`'s `resources`.
fn stripe_answers(resources: &Value) -> Vec<(String, Vec<u8>)> {
    // Status 100 + 100: `status_and_body` adds 100 to the first two bytes.
    let ok = |body: &Value| [&100u16.to_be_bytes()[..], body.to_string().as_bytes()].concat();
    let mut answers = Vec::new();
    for (name, object) in resources.as_object().into_iter().flatten() {
        answers.push((name.clone(), ok(object)));
    }
    if let Some(subscription) = resources.get("subscription") {
        let list = json!({"object": "list", "url": "/v1/subscriptions", "has_more": false, "data": [subscription]});
        answers.push(("subscription_list".into(), ok(&list)));
    }
    answers
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
    fn stripe_objects_become_one_event_per_type_that_carries_them() {
        let objects = json!({"event": {"id": "evt_9", "created": 5, "data": {"object": {}}}, "charge": {"id": "ch_1"}});
        let events = stripe_events(&objects);
        assert_eq!(events.len(), 1);
        let (name, bytes) = &events[0];
        assert_eq!(name, "charge.refunded");
        let event: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(
            event,
            json!({"id": "evt_9", "created": 5, "type": "charge.refunded", "data": {"object": {"id": "ch_1"}}})
        );
    }

    #[test]
    fn stripe_answers_are_framed_with_status_200() {
        let answers = stripe_answers(&json!({"customer": {"id": "cus_1"}, "subscription": {"id": "sub_1"}}));
        let names: Vec<&str> = answers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["customer", "subscription", "subscription_list"]);
        // tollgate_fuzz::status_and_body: 100 + the first two bytes (big-endian) modulo 500.
        let (head, body) = answers[0].1.split_at(2);
        assert_eq!(100 + u16::from_be_bytes([head[0], head[1]]) % 500, 200);
        assert_eq!(body, br#"{"id":"cus_1"}"#);
        let list: Value = serde_json::from_slice(&answers[2].1[2..]).unwrap();
        assert_eq!((list["data"][0]["id"].as_str(), list["has_more"].as_bool()), (Some("sub_1"), Some(false)));
    }

    #[test]
    fn options_default_to_60_seconds_one_job_and_addresssanitizer() {
        let options = Options::parse(&[]).unwrap().unwrap();
        let expected = Options { seconds: Some(60), runs: None, jobs: 1, sanitizer: "address".into(), only: vec![] };
        assert_eq!(options, expected);
        assert_eq!(options.libfuzzer_args(), [["-max_total_time=60", "-print_final_stats=1"]]);
        assert!(Options::parse(&["--help"]).unwrap().is_none());
    }

    #[test]
    fn runs_alone_have_no_time_limit_and_are_split_between_the_jobs() {
        let options = Options::parse(&["--runs", "10000001", "--jobs", "2", "--sanitizer", "none"]).unwrap().unwrap();
        assert_eq!((options.seconds, options.sanitizer.as_str()), (None, "none"));
        assert_eq!(
            options.libfuzzer_args(),
            [
                ["-max_total_time=0", "-runs=5000001", "-print_final_stats=1"],
                ["-max_total_time=0", "-runs=5000000", "-print_final_stats=1"]
            ]
        );
    }

    #[test]
    fn a_job_with_no_runs_is_not_started() {
        let options = Options::parse(&["--runs", "1", "--jobs", "2", "--seconds", "5"]).unwrap().unwrap();
        assert_eq!(options.libfuzzer_args(), [["-max_total_time=5", "-runs=1", "-print_final_stats=1"]]);
    }

    #[test]
    fn bad_options_are_refused() {
        for args in [&["--jobs", "0"][..], &["--runs", "x"], &["--sanitizer", "asan"], &["--seconds"], &["--fast"]] {
            assert!(Options::parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        assert_eq!(split(7, 3), [3, 2, 2]);
        assert_eq!(split(2, 4), [1, 1, 0, 0]);
        assert_eq!(split(10_000_000, 2).iter().sum::<u64>(), 10_000_000);
    }

    #[test]
    fn a_jobs_count_is_its_final_stat_else_its_done_line() {
        assert_eq!(
            job_executions("#2 INITED\nDone 5000001 runs in 420 second(s)\nstat::number_of_executed_units: 5000001\n"),
            Some(5_000_001)
        );
        assert_eq!(job_executions("Done 77 runs in 1 second(s)\n"), Some(77));
        assert_eq!(job_executions("==1== ERROR: libFuzzer: deadly signal\n"), None);
    }

    #[test]
    fn libfuzzers_final_stats_give_the_execution_count() {
        let log = "#1024\tpulse\nDone 52 runs in 1 second(s)\nstat::number_of_executed_units: 123456\nstat::peak_rss_mb: 40\n";
        assert_eq!(final_stat(log, "stat::number_of_executed_units:"), Some(123456));
    }
}

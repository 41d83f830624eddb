//! `cargo xtask bench [--quick]`: the webhook's CPU per delivery and the workers' sizes, one table
//! (docs/plans/2026-12-01-bench.md; figures in docs/benchmarks.md "bench").
//!
//! - Native: criterion over `tollgate-bench`'s workloads (verify + parse + decide per provider at 1/10/100
//!   KB), in the thread's CPU time; the medians are read from criterion's own `estimates.json`.
//! - wasm: the same crate compiled to wasm32 with the workers' settings (release profile, `opt-level = "z"`,
//!   wasm-opt `-Oz` by [`crate::build::optimise`]) and run in node's V8 by `crates/bench/node/run.mjs`,
//!   which warms up and then times batches in CPU time (`process.cpuUsage`: on a shared machine a batch's
//!   wall time includes other processes' turns) and wall time; the median and p95 of the batches' time per
//!   operation are computed here ([`Summary`]).
//! - Each worker's wasm (raw) and its upload gzipped, as `wrangler deploy --dry-run` reports it
//!   ([`crate::wrangler::gzip_kib`], the figure `cargo xtask test` checks against the budget).
//!
//! `--profile` ([`profile`]) instead profiles whole deliveries in workerd through its inspector.

pub mod profile;

use crate::paths::{cargo, node_bin_dir, target_dir, workspace_root, WORKERS};
use crate::process::run as run_command;
use crate::toolchain::WASM_TARGET;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The package of the workloads, and its crate name in file names.
const BENCH_PACKAGE: &str = "tollgate-bench";
const BENCH_LIB: &str = "tollgate_bench";
/// Issue 12's budget for the wasm CPU of one webhook (verify + parse + decide) at 10 KB.
pub const WASM_BUDGET_AT_10KB_NS: f64 = 1_000_000.0;

/// How long each measurement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effort {
    criterion_args: &'static [&'static str],
    batches: u32,
    batch_ms: u32,
    warm_up_ms: u32,
}

impl Effort {
    pub const FULL: Effort = Effort {
        criterion_args: &["--warm-up-time", "2", "--measurement-time", "5"],
        batches: 40,
        batch_ms: 50,
        warm_up_ms: 1_000,
    };
    pub const QUICK: Effort = Effort {
        criterion_args: &["--warm-up-time", "1", "--measurement-time", "1", "--sample-size", "10"],
        batches: 10,
        batch_ms: 20,
        warm_up_ms: 300,
    };
}

/// Median and 95th percentile (nearest rank) of a set of timings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub p95: f64,
    pub samples: usize,
}

impl Summary {
    /// `None` for no samples or a sample that is not a finite number (a broken measurement is not a figure).
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() || samples.iter().any(|s| !s.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Summary { median, p95: nearest_rank(&sorted, 95), samples: n })
    }
}

/// The smallest sample with at least `percent` % of the samples at or below it.
fn nearest_rank(sorted: &[f64], percent: usize) -> f64 {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// One workload's wasm timings, as `run.mjs` prints them: CPU time per operation (the figure), and wall
/// time (which on a shared machine includes other processes' turns on the core).
#[derive(Debug, Clone, PartialEq)]
pub struct WasmTiming {
    pub name: String,
    pub summary: Summary,
    pub wall: Option<Summary>,
}

/// `run.mjs`'s output: one JSON object per line. Any other line, or a line without timings, is an error.
pub fn parse_wasm_timings(output: &str) -> Result<Vec<WasmTiming>> {
    let mut timings = Vec::new();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).with_context(|| format!("run.mjs printed `{line}`"))?;
        let name = value["name"].as_str().with_context(|| format!("no name in `{line}`"))?.to_owned();
        let samples = |field: &str| -> Vec<f64> {
            value[field].as_array().into_iter().flatten().filter_map(Value::as_f64).collect()
        };
        let Some(summary) = Summary::of(&samples("ns_per_op")) else { bail!("no timings for {name} in `{line}`") };
        timings.push(WasmTiming { name, summary, wall: Summary::of(&samples("wall_ns_per_op")) });
    }
    Ok(timings)
}

/// Criterion's median (ns) from a benchmark's `estimates.json`.
pub fn criterion_median_ns(estimates: &str) -> Option<f64> {
    let value: Value = serde_json::from_str(estimates).ok()?;
    value["median"]["point_estimate"].as_f64().filter(|ns| ns.is_finite())
}

/// Where criterion keeps the latest estimates of workload `name` (`sellapp-hex/10KB`: group, then function).
fn criterion_estimates(name: &str) -> PathBuf {
    let mut path = target_dir().join("criterion");
    for part in name.split('/') {
        path.push(part);
    }
    path.join("new").join("estimates.json")
}

/// `1.23 µs`, `456 µs`, `1.20 ms`
pub fn format_ns(ns: f64) -> String {
    match ns {
        n if n < 1_000.0 => format!("{n:.0} ns"),
        n if n < 10_000.0 => format!("{:.2} µs", n / 1e3),
        n if n < 1_000_000.0 => format!("{:.0} µs", n / 1e3),
        n => format!("{:.2} ms", n / 1e6),
    }
}

/// One row of the table: a workload, natively and in wasm (CPU time, and the wall time's median).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub native_median_ns: Option<f64>,
    pub wasm: Option<Summary>,
    pub wasm_wall: Option<Summary>,
}

/// The table of workloads (Markdown, so it goes into docs/benchmarks.md as printed).
pub fn workload_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| workload | native CPU median | wasm CPU median | wasm CPU p95 | wasm wall median | wasm / native |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let missing = || "–".to_owned();
    for row in rows {
        let native = row.native_median_ns.map(format_ns).unwrap_or_else(missing);
        let (median, p95) =
            row.wasm.map(|w| (format_ns(w.median), format_ns(w.p95))).unwrap_or_else(|| (missing(), missing()));
        let ratio = match (row.native_median_ns, row.wasm) {
            (Some(native), Some(wasm)) if native > 0.0 => format!("{:.1}×", wasm.median / native),
            _ => missing(),
        };
        let wall = row.wasm_wall.map(|w| format_ns(w.median)).unwrap_or_else(missing);
        out.push_str(&format!("| {} | {native} | {median} | {p95} | {wall} | {ratio} |\n", row.name));
    }
    out
}

/// Workloads at 10 KB whose wasm median is over [`WASM_BUDGET_AT_10KB_NS`].
pub fn over_budget(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.name.ends_with("/10KB"))
        .filter_map(|r| Some((r, r.wasm?)))
        .filter(|(_, w)| w.median > WASM_BUDGET_AT_10KB_NS)
        .map(|(r, w)| format!("{} takes {} of CPU in wasm (budget 1 ms)", r.name, format_ns(w.median)))
        .collect()
}

pub fn run(args: &[&str]) -> Result<()> {
    let mut effort = Effort::FULL;
    let mut profile_deliveries = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--quick" => effort = Effort::QUICK,
            "--profile" => profile_deliveries = Some(profile::DEFAULT_DELIVERIES),
            "--deliveries" => {
                let n = args.next().context("--deliveries needs a number")?;
                profile_deliveries = Some(n.parse().with_context(|| format!("--deliveries {n}"))?);
            }
            other => {
                bail!("unknown argument `{other}` (usage: cargo xtask bench [--quick] [--profile [--deliveries N]])")
            }
        }
    }
    crate::toolchain::ensure_all()?;
    if let Some(deliveries) = profile_deliveries {
        return profile::run(deliveries);
    }
    let load_before = load_average();
    let native = run_criterion(effort)?;
    let wasm = run_wasm(effort)?;
    let rows: Vec<Row> = native
        .iter()
        .map(|(name, ns)| Row {
            name: name.clone(),
            native_median_ns: *ns,
            wasm: wasm.iter().find(|w| &w.name == name).map(|w| w.summary),
            wasm_wall: wasm.iter().find(|w| &w.name == name).and_then(|w| w.wall),
        })
        .collect();
    let sizes = worker_sizes()?;
    println!(
        "\nverify + parse + decide per delivery (load average before: {load_before}, after: {})\n",
        load_average()
    );
    println!("{}", workload_table(&rows));
    println!("{}", sizes);
    let over = over_budget(&rows);
    if !over.is_empty() {
        bail!("over the wasm CPU budget: {}", over.join(", "));
    }
    Ok(())
}

/// `cargo bench` of the workloads; the median of each, by workload name.
fn run_criterion(effort: Effort) -> Result<Vec<(String, Option<f64>)>> {
    let mut command = Command::new(cargo());
    command.args(["bench", "-p", BENCH_PACKAGE, "--bench", "webhook", "--"]).args(effort.criterion_args);
    run_command("cargo bench (native workloads)", command.current_dir(workspace_root()))?;
    Ok(tollgate_bench::all_workloads()
        .iter()
        .map(|workload| {
            let name = workload.name();
            let median = std::fs::read_to_string(criterion_estimates(&name)).ok().and_then(|e| criterion_median_ns(&e));
            (name, median)
        })
        .collect())
}

/// Builds the workloads for wasm32 as the workers are built and times them in node.
fn run_wasm(effort: Effort) -> Result<Vec<WasmTiming>> {
    let mut command = Command::new(cargo());
    command.args(["build", "--release", "--target", WASM_TARGET, "-p", BENCH_PACKAGE]);
    run_command("cargo build (wasm32 workloads)", command.current_dir(workspace_root()))?;
    let wasm = target_dir().join(WASM_TARGET).join("release").join(format!("{BENCH_LIB}.wasm"));
    let out = target_dir().join("bench-wasm");
    let _ = std::fs::remove_dir_all(&out);
    run_command(
        "wasm-bindgen (workloads)",
        Command::new("wasm-bindgen").arg(&wasm).arg("--out-dir").arg(&out).args([
            "--target",
            "nodejs",
            "--no-typescript",
        ]),
    )?;
    crate::build::optimise(&out.join(format!("{BENCH_LIB}_bg.wasm")), crate::build::Names::Strip)?;
    let script = workspace_root().join("crates").join("bench").join("node").join("run.mjs");
    let output = Command::new(node_bin_dir().join("node"))
        .arg(&script)
        .arg(&out)
        .args([effort.batches.to_string(), effort.batch_ms.to_string(), effort.warm_up_ms.to_string()])
        .output()
        .context("running node")?;
    if !output.status.success() {
        bail!("{} failed:\n{}", script.display(), String::from_utf8_lossy(&output.stderr));
    }
    parse_wasm_timings(&String::from_utf8_lossy(&output.stdout))
}

/// Each worker's optimised wasm and its upload gzipped, as a Markdown table. Builds the workers first.
fn worker_sizes() -> Result<String> {
    crate::build::build_workers(WORKERS)?;
    let scratch = std::env::temp_dir().join(format!("tollgate-bench-sizes-{}", std::process::id()));
    let mut table =
        String::from("| worker | wasm (raw) | upload gzipped (wasm + JS) | budget |\n| --- | ---: | ---: | ---: |\n");
    for worker in WORKERS {
        let raw = std::fs::metadata(worker.build_dir().join("index_bg.wasm")).map(|m| m.len()).unwrap_or(0);
        let output = crate::wrangler::deploy_dry_run(*worker, &scratch.join(worker.name))?;
        let gzip = crate::wrangler::gzip_kib(&output).map_or("–".to_owned(), |kib| format!("{kib:.1} KiB"));
        table.push_str(&format!(
            "| {} | {:.1} KiB | {gzip} | {} KiB |\n",
            worker.name,
            raw as f64 / 1024.0,
            crate::wrangler::GZIP_BUDGET_KIB
        ));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(table)
}

/// `/proc/loadavg`'s three figures, or `unknown`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_and_p95_are_the_middle_and_the_nearest_rank() {
        let odd = Summary::of(&[5.0, 1.0, 3.0]).expect("a summary");
        assert_eq!((odd.median, odd.p95, odd.samples), (3.0, 5.0, 3));
        let even = Summary::of(&[4.0, 1.0, 3.0, 2.0]).expect("a summary");
        assert_eq!(even.median, 2.5);
        let hundred: Vec<f64> = (1..=100).map(f64::from).rev().collect();
        let s = Summary::of(&hundred).expect("a summary");
        assert_eq!((s.median, s.p95), (50.5, 95.0));
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(Summary::of(&twenty).map(|s| s.p95), Some(19.0));
        assert_eq!(Summary::of(&[7.0]).map(|s| (s.median, s.p95)), Some((7.0, 7.0)));
    }

    #[test]
    fn no_samples_or_a_broken_sample_is_no_figure() {
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
        assert_eq!(Summary::of(&[f64::INFINITY]), None);
    }

    #[test]
    fn the_node_output_is_read_line_by_line_and_refused_when_malformed() {
        let out = "{\"name\":\"stripe/1KB\",\"iterations\":9,\"ns_per_op\":[30,10,20],\"wall_ns_per_op\":[40]}\n\n\
                   {\"name\":\"stripe/10KB\",\"iterations\":3,\"ns_per_op\":[100]}\n";
        let timings = parse_wasm_timings(out).expect("parsed");
        assert_eq!(timings.len(), 2);
        assert_eq!((timings[0].name.as_str(), timings[0].summary.median), ("stripe/1KB", 20.0));
        assert_eq!(timings[0].wall.map(|w| w.median), Some(40.0));
        assert_eq!(timings[1].wall, None, "wall time is optional");
        assert!(parse_wasm_timings("warming up\n").is_err());
        assert!(parse_wasm_timings("{\"name\":\"x\",\"ns_per_op\":[]}").is_err());
        assert!(parse_wasm_timings("{\"ns_per_op\":[1]}").is_err());
    }

    #[test]
    fn criterions_median_is_read_from_its_estimates() {
        let estimates =
            r#"{"mean":{"point_estimate":1200.5},"median":{"point_estimate":1100.25,"standard_error":3.0}}"#;
        assert_eq!(criterion_median_ns(estimates), Some(1100.25));
        assert_eq!(criterion_median_ns(r#"{"mean":{"point_estimate":1.0}}"#), None);
        assert_eq!(criterion_median_ns("not json"), None);
    }

    #[test]
    fn times_are_printed_in_a_readable_unit() {
        assert_eq!(format_ns(850.0), "850 ns");
        assert_eq!(format_ns(1_234.0), "1.23 µs");
        assert_eq!(format_ns(456_000.0), "456 µs");
        assert_eq!(format_ns(1_200_000.0), "1.20 ms");
    }

    #[test]
    fn the_table_shows_each_workload_and_only_10kb_rows_count_against_the_budget() {
        let wasm = |ms: f64| Some(Summary { median: ms * 1e6, p95: ms * 1e6, samples: 1 });
        let rows = vec![
            Row { name: "stripe/1KB".into(), native_median_ns: Some(2e5), wasm: wasm(0.4), wasm_wall: wasm(0.5) },
            Row { name: "stripe/10KB".into(), native_median_ns: None, wasm: wasm(1.5), wasm_wall: None },
            Row { name: "stripe/100KB".into(), native_median_ns: Some(1e6), wasm: wasm(9.0), wasm_wall: None },
            Row { name: "sellapp-hex/10KB".into(), native_median_ns: Some(1e5), wasm: None, wasm_wall: None },
        ];
        let table = workload_table(&rows);
        assert!(table.contains("| stripe/1KB | 200 µs | 400 µs | 400 µs | 500 µs | 2.0× |"), "{table}");
        assert!(table.contains("| stripe/10KB | – | 1.50 ms | 1.50 ms | – | – |"), "{table}");
        assert!(table.contains("| sellapp-hex/10KB | 100 µs | – | – | – | – |"), "{table}");
        assert_eq!(over_budget(&rows), vec!["stripe/10KB takes 1.50 ms of CPU in wasm (budget 1 ms)".to_owned()]);
    }
}

//! `tollgate-chaos --seeds N [--start S]`: runs seeds S..S+N one after another, prints each failing seed's
//! history and the command to replay it, then the pass/fail count and the time. Exit status 1 if any failed.
//! `--history FILE` replays a history printed by a failing run (edited or not); `--jobs J` (default 4)
//! seeds run at once, each on its own devstack; `--verbose` prints each seed's phases.

use futures::StreamExt;
use std::time::Instant;
use tollgate_chaos::{failure_report, run, History};

const USAGE: &str = "usage: tollgate-chaos [--seeds N] [--start S] [--jobs J] [--history FILE] [--verbose]";

fn number(value: Option<&String>, flag: &str) -> Result<u64, String> {
    value.and_then(|v| v.parse().ok()).ok_or_else(|| format!("{flag} needs a number\n{USAGE}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut seeds, mut start, mut file, mut verbose, mut jobs) = (20u64, 0u64, None, false, 4u64);
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1);
        let parsed = match args[i].as_str() {
            "--seeds" => number(value, "--seeds").map(|n| seeds = n),
            "--start" => number(value, "--start").map(|n| start = n),
            "--jobs" => number(value, "--jobs").map(|n| jobs = n),
            "--verbose" => {
                verbose = true;
                i -= 1;
                Ok(())
            }
            "--history" => {
                value.cloned().ok_or_else(|| format!("--history needs a file\n{USAGE}")).map(|f| file = Some(f))
            }
            other => Err(format!("unknown argument `{other}`\n{USAGE}")),
        };
        if let Err(e) = parsed {
            eprintln!("{e}");
            std::process::exit(2);
        }
        i += 2;
    }
    let histories: Vec<History> = match file {
        Some(path) => {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                eprintln!("reading {path}: {e}");
                std::process::exit(2);
            });
            match History::parse(&text) {
                Ok(history) => vec![history],
                Err(e) => {
                    eprintln!("{path}: {e}");
                    std::process::exit(2);
                }
            }
        }
        None => (start..start.saturating_add(seeds)).map(History::generate).collect(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let started = Instant::now();
    let (mut passed, mut failed) = (0u64, Vec::new());
    let outcomes = runtime.block_on(async {
        // Seeds run `jobs` at a time (most of a run is waiting: schema builds, pauses), each on its own
        // devstack; results come back in seed order.
        let runs = histories.iter().map(|history| async move { (history, run(history).await) });
        futures::stream::iter(runs).buffered(jobs.max(1) as usize).collect::<Vec<_>>().await
    });
    let mut counts = std::collections::BTreeMap::new();
    for (history, outcome) in outcomes {
        for (what, n) in &outcome.counts {
            *counts.entry(*what).or_insert(0u64) += n;
        }
        if verbose {
            let [setup, chaos, quiet] = outcome.phases;
            eprintln!(
                "seed {}: {} steps, setup {setup:.1?}, chaos {chaos:.1?}, quiet {quiet:.1?} ({} rounds), notes {:?}",
                history.seed,
                history.steps.len(),
                outcome.quiet_rounds,
                outcome.notes
            );
        }
        if outcome.violations.is_empty() {
            passed += 1;
        } else {
            println!("{}", failure_report(history, &outcome));
            failed.push(history.seed);
        }
    }
    let elapsed = started.elapsed();
    println!(
        "chaos: {passed} passed, {} failed of {} seeds in {:.1} s ({:.0} ms per seed){}",
        failed.len(),
        histories.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / histories.len().max(1) as f64,
        if failed.is_empty() { String::new() } else { format!("; failing seeds: {failed:?}") }
    );
    let counts: Vec<String> = counts.iter().map(|(what, n)| format!("{what}: {n}")).collect();
    println!("chaos: over all seeds: {}", counts.join(", "));
    if !failed.is_empty() {
        std::process::exit(1);
    }
}

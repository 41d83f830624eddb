//! `cargo xtask dev | test | build | fuzz | chaos | bench | load`: see the crate docs in `lib.rs` and the README.

mod chaos;
mod dev;
mod fuzz;
mod load;
mod test;

use anyhow::Result;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  dev [--fresh] [--set NAME=VALUE]...
                  install what is missing, build every worker (incrementally), and run the whole
                  system locally (devstack + the three workers in wrangler dev); --fresh starts from
                  empty state, --set overrides a setting (see `cargo xtask dev --help`)
  test            run every test: clippy, the wasm build of every worker, unit, integration and
                  end-to-end tests (the command CI runs)
  build           install what is missing and build every worker for workerd
  fuzz [--seconds N] [--runs R] [--jobs J] [--sanitizer S] [--target T]...
                  run each cargo-fuzz target of fuzz/ (nightly; cargo-fuzz installed if missing) for
                  N seconds (default 60) and/or R executions, J libFuzzer processes at once (R split
                  between them, their counts summed), sanitizer S (default address; none: no ASan),
                  seeded from testdata/, and print the executions per target; not part of `test`
  chaos [--seeds N] [--start S] [--jobs J] [--history FILE]
                  randomized, seed-reproducible histories (purchases, duplicates, disputes,
                  subscriptions, expiries, admin grants/revokes, links) against devstack with faults
                  and crons running, then the invariants; prints failing seeds' histories, the
                  pass/fail count and the time (20 seeds also run in `test`)
  bench [--quick] [--profile [--deliveries N]]
                  verify + parse + decide per provider at 1/10/100 KB, natively (criterion) and in
                  wasm under node's V8, and each worker's size raw and gzipped, as one table;
                  --profile records a CPU profile of N (200) deliveries to the webhook worker in
                  workerd through its inspector and prints where the CPU goes; not part of `test`
  load [--deliveries N] [--duplicates P] [--concurrency C] [--faults 0,10,30,50] [--outage S] [--backlog N]
                  Sell.app deliveries through the workers in workerd against devstack under fault
                  rates and an outage, then crons, then a backlog drain; prints throughput, p50/p99,
                  Appwrite calls and CPU per phase and fails if any buyer is lost, duplicated or stuck
";

/// Errors end the process with one readable message (and its causes), never a backtrace.
fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.first().map(String::as_str) {
        Some("dev") => dev::run(&rest),
        Some("test") => test::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        Some("chaos") => chaos::run(&rest),
        Some("bench") => xtask::bench::run(&rest),
        Some("load") => load::run(&rest),
        Some("build") => {
            xtask::toolchain::ensure_all()?;
            xtask::build::build_workers(xtask::paths::WORKERS)
        }
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => {
            eprint!("unknown command `{other}`\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}

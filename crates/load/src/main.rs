//! `tollgate-load [--deliveries N] [--duplicates P] [--concurrency C] [--faults 0,10,30,50] [--outage S]
//! [--backlog N] [--seed S]`: see the crate docs. devstack runs on a tokio runtime of its own whose threads
//! are named `devstack`, so its CPU is read apart from the load generator's; the workers run in
//! `wrangler dev` processes that stop with this one.

use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use tollgate_devstack::DevstackConfig;
use tollgate_load::args::{parse, Through, USAGE};
use tollgate_load::cpu::DEVSTACK_THREADS;
use tollgate_load::run::{loadavg, plans, Runner};
use xtask::paths::WEBHOOK_WORKER;
use xtask::system::LocalStack;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args.iter().map(String::as_str).collect::<Vec<_>>()) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    match run(args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn run(args: tollgate_load::args::Args) -> Result<bool> {
    let devstack_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name(DEVSTACK_THREADS)
        .enable_all()
        .build()
        .context("devstack's runtime")?;
    let devstack = devstack_runtime.block_on(tollgate_devstack::start(DevstackConfig::for_tests()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().thread_name("load").enable_all().build()?;
    let passed = runtime.block_on(async {
        tokio::select! {
            passed = load(&devstack, &args) => passed,
            // Dropping the run stops the workers (and removes their state): nothing outlives the command.
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    })?;
    devstack_runtime.block_on(devstack.shutdown());
    Ok(passed)
}

async fn load(devstack: &tollgate_devstack::RunningDevstack, args: &tollgate_load::args::Args) -> Result<bool> {
    let started = Instant::now();
    println!("load: {}", machine());
    println!("load: load average at start {}; starting devstack and the workers", loadavg());
    let stack = LocalStack::start(devstack, "tollgate-load", &[]).await?;
    let alone = match args.through {
        Through::Workerd => {
            let state = stack.state.path().join("webhook-alone");
            let port = xtask::wrangler::free_port()?;
            let worker = xtask::workerd::start(WEBHOOK_WORKER, port, &stack.env_file(), &state).await?;
            println!("load: deliveries go to the webhook worker in workerd alone at {}", worker.url());
            Some(worker)
        }
        Through::Wrangler => None,
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(64).build()?;
    let runner = Runner {
        devstack,
        stack: &stack,
        alone: alone.as_ref(),
        http,
        concurrency: args.concurrency as usize,
        seed: args.seed,
    };
    let run_tag = format!("l{}", std::process::id());
    let plans = plans(&run_tag, args);
    let all: Vec<_> = plans.iter().flat_map(|p| p.buyers.iter().cloned()).collect();
    println!("load: creating {} verified buyers ({} phases)", all.len(), plans.len());
    runner.create_buyers(&all).await?;
    let mut names = Vec::new();
    for (i, fault) in args.faults.iter().enumerate() {
        let name = format!("{fault}% faults");
        runner.phase(&name, &plans[i], *fault, None).await?.print();
        names.push(name);
    }
    if args.outage_secs > 0 {
        let name = format!("outage {} s", args.outage_secs);
        let window = Duration::from_secs(u64::from(args.outage_secs));
        runner.phase(&name, &plans[args.faults.len()], 100, Some(window)).await?.print();
        names.push(name);
    }
    runner.quiet().await?.print();
    if args.backlog > 0 {
        let (report, drain) = runner.backlog(plans.last().context("the backlog plan")?).await?;
        report.print();
        println!(
            "backlog: {} failures recorded; first retry due after {:.0} s; {} cron invocations per worker until none due ({} minutes on Cloudflare, budget 10), {:.0} s wall; drained: {}",
            drain.recorded,
            drain.first_due_wait.as_secs_f64(),
            drain.invocations,
            drain.cloudflare_minutes(),
            drain.wall.as_secs_f64(),
            drain.drained,
        );
        runner.quiet().await?.print();
        names.push("backlog".into());
    }
    let mut passed = true;
    for (name, plan) in names.iter().zip(&plans) {
        let v = runner.check_phase(plan).await?;
        println!(
            "final state {name}: {} orders: lost {}, duplicated {}, stuck {}, projection mismatches {}",
            plan.buyers.len(),
            v.lost.len(),
            v.duplicated.len(),
            v.stuck.len(),
            v.projection.len()
        );
        for line in v.lost.iter().chain(&v.duplicated).chain(&v.stuck).chain(&v.projection).take(50) {
            println!("  - {line}");
        }
        passed &= v.passed();
    }
    println!(
        "load: {} in {:.0} s; load average at end {}",
        if passed { "PASSED" } else { "FAILED" },
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    Ok(passed)
}

/// CPU model and count, for the record.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{} × {}", cores, model.unwrap_or_else(|| "unknown CPU".into()))
}

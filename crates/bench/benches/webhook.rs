//! Criterion: verify + parse + decide per provider and body size, natively (`cargo xtask bench` runs it
//! and reads criterion's estimates; `cargo bench -p tollgate-bench` alone works too). The workloads are
//! the crate's, the same the wasm measurement runs.
//!
//! Measured in the benchmark thread's CPU time ([`ThreadCpuTime`]), as the wasm side is measured in the node
//! process's CPU time: on a shared machine, wall time counts the turns other processes had on the core.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tollgate_bench::{all_workloads, Kind};

/// `CLOCK_THREAD_CPUTIME_ID`: CPU time of the calling thread, in nanoseconds (criterion runs the routine on
/// the thread that calls `start` and `end`).
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant Linux supports.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap_or(0)
}

/// Formats like criterion's wall time (the values are nanoseconds either way).
static NANOSECONDS: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, started: u64) -> u64 {
        thread_cpu_ns().saturating_sub(started)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        NANOSECONDS.formatter()
    }
}

fn webhook(c: &mut Criterion<ThreadCpuTime>) {
    let workloads = all_workloads();
    for kind in Kind::ALL {
        let mut group = c.benchmark_group(kind.as_str());
        for workload in workloads.iter().filter(|w| w.kind == kind) {
            if let Err(e) = workload.run() {
                panic!("{} does not run through: {e}", workload.name());
            }
            group.throughput(Throughput::Bytes(workload.size as u64));
            group.bench_function(format!("{}KB", workload.size / 1000), |b| b.iter(|| black_box(workload.run())));
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = webhook
}
criterion_main!(benches);

//! Criterion: verify + parse + decide per provider and body size, natively (`cargo xtask bench` runs it
//! and reads criterion's estimates; `cargo bench -p tollgate-bench` alone works too). The workloads are
//! the crate's, the same the wasm measurement runs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tollgate_bench::{all_workloads, Kind};

fn webhook(c: &mut Criterion) {
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

criterion_group!(benches, webhook);
criterion_main!(benches);

//! devstack at scale: what a filtered list and a get cost at 1,000 and at 100,000 documents, through the
//! HTTP API as Tollgate calls it. Lists filtered on indexed attributes (`equal`, a range, `isNull`) and a
//! get by id should cost about the same at both sizes; a list filtered on an attribute no index covers
//! is measured too, as the contrast (it still reads the whole collection, as Appwrite would without an
//! index). Results: docs/benchmarks.md, "devstack at scale".

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use futures::future::join_all;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{q, stand, Stand};

/// The devstack integration tests' stand (a devstack per run, Appwrite's headers).
#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

const SIZES: &[usize] = &[1_000, 100_000];
const COL: &str = "/databases/db/collections/col";

/// A collection shaped like Tollgate's `entitlements`: `email`, `n` and `claimedAt` indexed, `note` not.
async fn stand_with(documents: usize) -> Stand {
    let stand = stand().await;
    stand
        .collection(&[
            ("email", "string", json!({"size": 64})),
            ("n", "integer", json!({})),
            ("claimedAt", "datetime", json!({})),
            ("note", "string", json!({"size": 64})),
        ])
        .await;
    for (key, attribute) in [("email_idx", "email"), ("n_idx", "n"), ("claimed_idx", "claimedAt")] {
        let reply =
            stand.post(&format!("{COL}/indexes"), json!({"key": key, "type": "key", "attributes": [attribute]})).await;
        assert!(reply.status.is_success(), "{}", reply.body);
    }
    let started = Instant::now();
    let documents_path = format!("{COL}/documents");
    for chunk in (0..documents).collect::<Vec<_>>().chunks(64) {
        let created = join_all(chunk.iter().map(|i| {
            let claimed = (i % 100 != 0).then_some("2026-01-01T00:00:00.000+00:00");
            let data = json!({"email": format!("user{i}@example.com"), "n": i, "claimedAt": claimed, "note": format!("note {i}")});
            stand.post(&documents_path, json!({"documentId": format!("doc{i}"), "data": data}))
        }))
        .await;
        assert!(created.iter().all(|reply| reply.status.is_success()), "writing documents");
    }
    eprintln!("scale: {documents} documents written in {:.1?}", started.elapsed());
    stand
}

fn list(stand: &Stand, runtime: &tokio::runtime::Runtime, queries: &[Value], expected_total: usize) {
    let params: Vec<(&str, String)> = queries.iter().map(|query| ("queries[]", q(query.clone()))).collect();
    let reply = runtime.block_on(stand.get(&format!("{COL}/documents"), &params));
    assert_eq!(reply.body["total"], expected_total, "{queries:?}");
}

fn scale(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let mut group = c.benchmark_group("devstack");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for &size in SIZES {
        let stand = runtime.block_on(stand_with(size));
        let middle = size / 2;
        group.bench_function(BenchmarkId::new("get by id", size), |b| {
            let path = format!("{COL}/documents/doc{middle}");
            b.iter(|| assert!(runtime.block_on(stand.get(&path, &[])).status.is_success()))
        });
        let by_email =
            [json!({"method": "equal", "attribute": "email", "values": [format!("user{middle}@example.com")]})];
        group.bench_function(BenchmarkId::new("list equal (indexed)", size), |b| {
            b.iter(|| list(&stand, &runtime, &by_email, 1))
        });
        let range = [
            json!({"method": "greaterThanEqual", "attribute": "n", "values": [middle]}),
            json!({"method": "lessThan", "attribute": "n", "values": [middle + 10]}),
            json!({"method": "orderDesc", "attribute": "n"}),
        ];
        group.bench_function(BenchmarkId::new("list range + order (indexed)", size), |b| {
            b.iter(|| list(&stand, &runtime, &range, 10))
        });
        let unclaimed =
            [json!({"method": "isNull", "attribute": "claimedAt"}), json!({"method": "limit", "values": [10]})];
        group.bench_function(BenchmarkId::new("list isNull, 1 % match (indexed)", size), |b| {
            b.iter(|| list(&stand, &runtime, &unclaimed, size / 100))
        });
        let by_note = [json!({"method": "equal", "attribute": "note", "values": [format!("note {middle}")]})];
        group.bench_function(BenchmarkId::new("list equal (not indexed)", size), |b| {
            b.iter(|| list(&stand, &runtime, &by_note, 1))
        });
        runtime.block_on(stand.devstack.shutdown());
    }
    group.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);

// Times the bench workloads compiled to wasm in node's V8 (the engine family of workerd).
// usage: node run.mjs <dir of the wasm-bindgen --target nodejs output> <batches> <ms per batch> <warm-up ms>
// Prints one JSON line per workload: {"name", "iterations" (per batch), "ns_per_op": the process's CPU time
// (user + system, `process.cpuUsage`) per operation, one figure per batch, and "wall_ns_per_op": the same in
// wall time}; `cargo xtask bench` turns them into the median and p95. CPU time is the figure: on a shared
// machine the wall time of a batch includes the time other processes had the core.
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";

const [dir, batchesArg, batchMsArg, warmMsArg] = process.argv.slice(2);
const batches = Number(batchesArg);
const batchMs = Number(batchMsArg);
const warmMs = Number(warmMsArg);
if (!dir || !(batches > 0) || !(batchMs > 0) || !(warmMs >= 0)) {
  console.error("usage: node run.mjs <dir> <batches> <ms per batch> <warm-up ms>");
  process.exit(2);
}
const bench = createRequire(import.meta.url)(`${dir}/tollgate_bench.js`);

const count = bench.workload_count();
for (let index = 0; index < count; index++) {
  const name = bench.workload_name(index);
  // Warm-up: batches doubling in size until `warmMs` has passed (V8 tiers the code up meanwhile); the
  // rate seen sizes the timed batches.
  let size = 1;
  let spent = 0;
  let runs = 0;
  const warmStart = performance.now();
  do {
    const t = performance.now();
    bench.run_batch(index, size);
    spent += performance.now() - t;
    runs += size;
    size = Math.min(size * 2, 1_000_000);
  } while (performance.now() - warmStart < warmMs);
  const iterations = Math.max(1, Math.round(batchMs / (spent / runs)));
  const cpuNs = [];
  const wallNs = [];
  for (let batch = 0; batch < batches; batch++) {
    const wall = performance.now();
    const cpu = process.cpuUsage();
    bench.run_batch(index, iterations);
    const used = process.cpuUsage(cpu);
    wallNs.push(((performance.now() - wall) * 1e6) / iterations);
    cpuNs.push(((used.user + used.system) * 1e3) / iterations);
  }
  console.log(JSON.stringify({ name, iterations, ns_per_op: cpuNs, wall_ns_per_op: wallNs }));
}

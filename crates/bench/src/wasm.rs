//! The workloads as a wasm module for node (`node/run.mjs`): the script times batches of
//! [`run_batch`] with `performance.now()` and `cargo xtask bench` turns its batch times into statistics.

use crate::{all_workloads, Workload};
use std::sync::OnceLock;
use wasm_bindgen::prelude::*;

/// Built on first use, outside the timed batches (the script calls [`workload_count`] first).
fn workloads() -> &'static [Workload] {
    static WORKLOADS: OnceLock<Vec<Workload>> = OnceLock::new();
    WORKLOADS.get_or_init(all_workloads)
}

#[wasm_bindgen]
pub fn workload_count() -> usize {
    workloads().len()
}

/// `stripe/10KB`, or an empty string past the end.
#[wasm_bindgen]
pub fn workload_name(index: usize) -> String {
    workloads().get(index).map(Workload::name).unwrap_or_default()
}

/// Runs workload `index` `iterations` times. Returns the claim bytes of the last run (so the work cannot be
/// optimised away); throws when the workload does not run through (a broken benchmark must not look fast).
#[wasm_bindgen]
pub fn run_batch(index: usize, iterations: u32) -> Result<usize, JsError> {
    let workload = workloads().get(index).ok_or_else(|| JsError::new("no such workload"))?;
    let mut last = 0;
    for _ in 0..iterations {
        last = workload.run().map_err(|e| JsError::new(&format!("{}: {e}", workload.name())))?;
    }
    Ok(last)
}

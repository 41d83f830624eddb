//! Builds each worker for workerd without worker-build (docs/toolchain.md §2.1): cargo for wasm32,
//! wasm-bindgen (`--target module`), binaryen's wasm-opt, and the shared ES-module entry
//! (`workers/entry.mjs`) that forwards fetch / scheduled / queue events to the Rust exports.
//!
//! Incremental: cargo rebuilds only what changed, and a worker is packaged again only when its compiled wasm
//! or the entry differs from what its `build/` was made from (a SHA-256 stamp written last, so an interrupted
//! packaging is redone). Nothing stale is ever served: cargo always runs first.

use crate::paths::{path_with_node, target_dir, wasm_opt, workspace_root, WorkerSpec};
use crate::process::run;
use crate::toolchain::WASM_TARGET;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

/// In `workers/<name>/build/`: the fingerprint of the inputs that build was packaged from.
const STAMP: &str = ".built-from";

pub fn build_workers(workers: &[WorkerSpec]) -> Result<()> {
    build_workers_with(workers, Names::Strip)
}

/// [`build_workers`], keeping function names in the wasm when `names` says so (`cargo xtask bench
/// --profile`). The build stamp records the choice, so the next plain build packages again.
pub fn build_workers_with(workers: &[WorkerSpec], names: Names) -> Result<()> {
    let mut cargo = Command::new(crate::paths::cargo());
    cargo.args(["build", "--release", "--target", WASM_TARGET]).current_dir(workspace_root());
    for worker in workers {
        cargo.args(["-p", worker.package]);
    }
    run("cargo build (wasm32 workers)", &mut cargo)?;
    for worker in workers {
        package_worker(worker, names)?;
    }
    Ok(())
}

/// SHA-256 over the compiled wasm and the entry module (and, for a build that keeps names, that fact).
fn fingerprint(wasm: &Path, entry: &Path, names: Names) -> Result<String> {
    let mut hash = Sha256::new();
    if names == Names::Keep {
        hash.update(b"names kept");
    }
    for input in [wasm, entry] {
        hash.update(std::fs::read(input).with_context(|| format!("reading {}", input.display()))?);
    }
    Ok(hex::encode(hash.finalize()))
}

fn package_worker(worker: &WorkerSpec, names: Names) -> Result<()> {
    let wasm = target_dir().join(WASM_TARGET).join("release").join(format!("{}.wasm", worker.lib_name));
    let entry = workspace_root().join("workers").join("entry.mjs");
    let out = worker.build_dir();
    let stamp = fingerprint(&wasm, &entry, names)?;
    let module = out.join("index_bg.wasm");
    let packaged = std::fs::read_to_string(out.join(STAMP)).ok();
    if packaged.as_deref() == Some(stamp.as_str()) && worker.entry().exists() && module.exists() {
        eprintln!("xtask: worker {} is up to date", worker.name);
        return Ok(());
    }
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    run(
        "wasm-bindgen",
        Command::new("wasm-bindgen").arg(&wasm).args(["--out-dir"]).arg(&out).args([
            "--target",
            "module",
            "--out-name",
            "index",
            "--no-typescript",
        ]),
    )?;
    let index = out.join("index.js");
    let glue = std::fs::read_to_string(&index).context("reading wasm-bindgen output")?;
    // workerd takes a plain import of the .wasm file as a compiled module; `import source` is the
    // newer spelling wasm-bindgen emits, which esbuild in wrangler does not bundle.
    std::fs::write(&index, glue.replacen("import source ", "import ", 1)).context("writing index.js")?;
    optimise(&module, names)?;
    std::fs::copy(&entry, worker.entry()).context("copying entry.mjs")?;
    std::fs::write(out.join(STAMP), &stamp).context("writing the build stamp")?;
    let size = std::fs::metadata(&module).map(|m| m.len()).unwrap_or(0);
    eprintln!("xtask: built worker {} ({} KiB wasm)", worker.name, size / 1024);
    Ok(())
}

/// Whether wasm-opt keeps the function names (the `name` section): a profile then shows Rust functions
/// instead of `wasm-function[123]`; the code is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    Strip,
    Keep,
}

/// binaryen's wasm-opt with the workers' settings (`-Oz`), in place: every wasm Tollgate measures or ships
/// is optimised by this one function.
pub fn optimise(module: &Path, names: Names) -> Result<()> {
    let mut command = Command::new(wasm_opt());
    command.env("PATH", path_with_node()).arg("-Oz");
    if names == Names::Keep {
        command.arg("--debuginfo");
    }
    run("wasm-opt", command.arg(module).arg("-o").arg(module))
}

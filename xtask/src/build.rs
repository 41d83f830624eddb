//! Builds each worker for workerd without worker-build (TOOLCHAIN.md §2.1): cargo for wasm32,
//! wasm-bindgen (`--target module`), binaryen's wasm-opt, and the shared ES-module entry
//! (`workers/entry.mjs`) that forwards fetch / scheduled / queue events to the Rust exports.

use crate::paths::{path_with_node, wasm_opt, workspace_root, WorkerSpec};
use crate::process::run;
use crate::toolchain::WASM_TARGET;
use anyhow::{Context, Result};
use std::process::Command;

pub fn build_workers(workers: &[WorkerSpec]) -> Result<()> {
    let mut cargo = Command::new(crate::paths::cargo());
    cargo.args(["build", "--release", "--target", WASM_TARGET]).current_dir(workspace_root());
    for worker in workers {
        cargo.args(["-p", worker.package]);
    }
    run("cargo build (wasm32 workers)", &mut cargo)?;
    for worker in workers {
        package_worker(worker)?;
    }
    Ok(())
}

fn package_worker(worker: &WorkerSpec) -> Result<()> {
    let wasm =
        workspace_root().join("target").join(WASM_TARGET).join("release").join(format!("{}.wasm", worker.lib_name));
    let out = worker.build_dir();
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
    let module = out.join("index_bg.wasm");
    run(
        "wasm-opt",
        Command::new(wasm_opt()).env("PATH", path_with_node()).arg("-Oz").arg(&module).arg("-o").arg(&module),
    )?;
    std::fs::copy(workspace_root().join("workers").join("entry.mjs"), worker.entry()).context("copying entry.mjs")?;
    let size = std::fs::metadata(&module).map(|m| m.len()).unwrap_or(0);
    eprintln!("xtask: built worker {} ({} KiB wasm)", worker.name, size / 1024);
    Ok(())
}

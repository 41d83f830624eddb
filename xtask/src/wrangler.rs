//! Runs a built worker in `wrangler dev --local`: the real workerd runtime, offline, with its settings
//! from an env file and its state (KV, logs, wrangler's config) under a directory of the caller's.

use crate::paths::{path_with_node, wrangler_js, WorkerSpec};
use crate::process::ChildGroup;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a worker may take to answer its first `GET /health` (workerd start + wasm compile).
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
const READY_POLL: Duration = Duration::from_millis(200);

pub struct WorkerLaunch<'a> {
    pub worker: WorkerSpec,
    pub port: u16,
    /// The system's settings. Workers started with the same env file are one system: they find each
    /// other's Durable Objects (the api worker binds the limiter worker's `DiscordLimiter` with `script_name`)
    /// through wrangler's dev registry in [`registry_dir`], next to the file, and no other system's.
    pub env_file: &'a Path,
    /// wrangler's persistence, config home and this worker's log go here.
    pub state_dir: &'a Path,
}

pub struct RunningWorker {
    group: ChildGroup,
    url: String,
    log: PathBuf,
}

impl RunningWorker {
    pub(crate) fn new(group: ChildGroup, url: String, log: PathBuf) -> Self {
        Self { group, url, log }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `wrangler dev` (node) process, workerd as its descendant; or workerd itself ([`crate::workerd`]).
    pub fn pid(&self) -> u32 {
        self.group.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn stop(&mut self) {
        self.group.stop();
    }

    pub fn has_exited(&mut self) -> bool {
        self.group.exited().is_some()
    }
}

pub async fn start(launch: WorkerLaunch<'_>) -> Result<RunningWorker> {
    start_inspected(launch, None).await
}

/// [`start`], with workerd's inspector (Chrome DevTools Protocol, through wrangler's inspector proxy) on
/// `inspector_port` when given (`cargo xtask bench --profile` records CPU profiles there); else on a free
/// port nobody is told about.
pub async fn start_inspected(launch: WorkerLaunch<'_>, inspector_port: Option<u16>) -> Result<RunningWorker> {
    let inspector_port = match inspector_port {
        Some(port) => port,
        None => free_port()?,
    };
    let WorkerLaunch { worker, port, env_file, state_dir } = launch;
    if !worker.entry().exists() {
        bail!("worker {} is not built ({} is missing): run `cargo xtask build`", worker.name, worker.entry().display());
    }
    std::fs::create_dir_all(state_dir).with_context(|| format!("creating {}", state_dir.display()))?;
    let log = state_dir.join("wrangler.log");
    let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = Command::new(crate::paths::node_bin_dir().join("node"));
    command.arg(wrangler_js()).arg("dev");
    // The worker's own config first (it gets the port), then the workers it binds to, in the same process.
    if !worker.bound.is_empty() {
        command.arg("--config").arg(worker.dir().join("wrangler.toml"));
        for bound in worker.bound {
            command.arg("--config").arg(bound_config(bound, env_file, state_dir)?);
        }
    }
    command
        .args(["--local", "--ip", "127.0.0.1", "--test-scheduled", "--show-interactive-dev-session=false"])
        .args(["--port", &port.to_string(), "--inspector-port", &inspector_port.to_string()])
        .arg("--persist-to")
        .arg(state_dir.join("persist"))
        .arg("--env-file")
        .arg(env_file)
        .current_dir(worker.dir())
        .env("PATH", path_with_node())
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true")
        .env("XDG_CONFIG_HOME", state_dir.join("config"))
        .env("WRANGLER_REGISTRY_PATH", registry_dir(env_file))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let group = ChildGroup::spawn(&format!("wrangler dev ({})", worker.name), command)?;
    let mut running = RunningWorker::new(group, format!("http://127.0.0.1:{port}"), log);
    wait_until_healthy(&mut running).await?;
    Ok(running)
}

/// A worker run beside another one gets no `--env-file` from wrangler: it reads `.dev.vars` next to its
/// config. So its config is copied into this launch's state directory (its `main` made absolute) with the
/// env file beside it as `.dev.vars`: parallel launches never share settings.
fn bound_config(bound: &WorkerSpec, env_file: &Path, state_dir: &Path) -> Result<PathBuf> {
    if !bound.entry().exists() {
        bail!("worker {} is not built ({} is missing): run `cargo xtask build`", bound.name, bound.entry().display());
    }
    let dir = state_dir.join(format!("bound-{}", bound.name));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let original = bound.dir().join("wrangler.toml");
    let config = std::fs::read_to_string(&original).with_context(|| format!("reading {}", original.display()))?;
    // `main` made absolute (the entry's own imports are relative to where it is, so they still resolve).
    let Some(line) = config.lines().find(|l| l.trim_start().starts_with("main = \"")) else {
        bail!("{} has no main", original.display());
    };
    let relative = line.trim().trim_start_matches("main = \"").trim_end_matches('"');
    let main = format!("main = {:?}", bound.dir().join(relative).display().to_string());
    let config = config.replace(line, &main);
    std::fs::write(dir.join("wrangler.toml"), config).context("writing the bound worker's config")?;
    std::fs::copy(env_file, dir.join(".dev.vars")).context("writing the bound worker's .dev.vars")?;
    Ok(dir.join("wrangler.toml"))
}

/// Wrangler's dev registry of the system whose settings are `env_file`: a directory beside it. Parallel
/// systems (the e2e tests) each have their own, so two `tollgate-role-sync` never collide.
pub fn registry_dir(env_file: &Path) -> PathBuf {
    env_file.parent().unwrap_or_else(|| Path::new(".")).join("wrangler-registry")
}

pub(crate) async fn wait_until_healthy(worker: &mut RunningWorker) -> Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let health = format!("{}/health", worker.url);
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(response) = client.get(&health).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if worker.has_exited() || Instant::now() > deadline {
            let tail = log_tail(&worker.log);
            bail!("{} did not become healthy at {health}; its log ends:\n{tail}", worker.group.name());
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// The last lines of a log, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Where [`free_port`] looks: below Linux's ephemeral range (32768 and up), so a port it hands out is never
/// one the kernel gives a process binding port 0 (workerd binds several), and parallel tests cannot race
/// each other for it.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// A port that is free now on 127.0.0.1, unique within this process.
pub fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    // Different processes start at different places in the range.
    let offset = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = PORT_RANGE.start + u16::try_from((offset + step) % span).unwrap_or(0);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port in {PORT_RANGE:?} on 127.0.0.1")
}

/// `wrangler deploy --dry-run` of a built worker: validates its `wrangler.toml` and bundles it as a
/// deploy would, without an account or the network. Returns wrangler's output.
pub fn deploy_dry_run(worker: WorkerSpec, scratch: &Path) -> Result<String> {
    let output = Command::new(crate::paths::node_bin_dir().join("node"))
        .arg(wrangler_js())
        .args(["deploy", "--dry-run", "--outdir"])
        .arg(scratch.join("bundle"))
        .current_dir(worker.dir())
        .env("PATH", path_with_node())
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true")
        .env("XDG_CONFIG_HOME", scratch.join("config"))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running wrangler deploy --dry-run for {}", worker.name))?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if !output.status.success() || !text.contains("--dry-run: exiting now.") {
        bail!("wrangler deploy --dry-run failed for {}:\n{text}", worker.name);
    }
    Ok(text)
}

/// The most a worker may weigh gzipped, as `wrangler deploy` reports it (wasm and JS glue together). Workers
/// Free allows 3 MB; Tollgate keeps each worker an order of magnitude under it so cold starts stay fast and
/// a dependency that drags in tables (ICU, regex) is noticed the day it arrives.
pub const GZIP_BUDGET_KIB: f64 = 300.0;

/// The gzipped size in KiB from wrangler's `Total Upload: 650.12 KiB / gzip: 287.34 KiB` line.
pub fn gzip_kib(dry_run_output: &str) -> Option<f64> {
    let line = dry_run_output.lines().find(|l| l.contains("Total Upload"))?;
    let after = line.split("gzip:").nth(1)?.trim();
    after.strip_suffix("KiB")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::gzip_kib;

    #[test]
    fn the_gzipped_size_is_read_from_wrangler_output() {
        let out = "Upload: ...\nTotal Upload: 650.12 KiB / gzip: 287.34 KiB\n--dry-run: exiting now.";
        assert_eq!(gzip_kib(out), Some(287.34));
        assert_eq!(gzip_kib("Total Upload: 1.2 MiB / gzip: 0.4 MiB"), None, "other units are not guessed");
        assert_eq!(gzip_kib("no size here"), None);
    }
}

//! Runs a built worker in workerd alone: the runtime `wrangler dev` starts, without wrangler.
//!
//! ## Why
//! `wrangler dev` runs the worker in a workerd process together with Miniflare's own workers: an entry
//! worker in front of every request, an outbound worker behind every `fetch`, an observability collector
//! fed by every invocation, and a DevTools session on the inspector. Measured on a plain JS worker
//! (docs/plans/2026-12-01-load.md, "What the process measures"), that costs about 1.2 ms of the process's
//! CPU per request and 0.5 ms per subrequest, none of which runs on Cloudflare. `cargo xtask load` sends
//! its deliveries here, so the "CPU per delivery of the user worker's process" is the worker's.
//!
//! Only a worker whose bindings are plain settings can run here (the webhook worker: `[vars]` and its
//! env file become text bindings). Its crons are not: workerd alone has no scheduler and no
//! `/__scheduled`, so whoever needs them runs the same worker in `wrangler dev` beside this one (two
//! isolates of one worker against one backend, as on Cloudflare).

use crate::dev_env::DevEnv;
use crate::paths::WorkerSpec;
use crate::process::ChildGroup;
use crate::wrangler::{wait_until_healthy, RunningWorker};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workerd binary wrangler itself runs (npm package `@cloudflare/workerd-linux-64`).
pub fn workerd_binary() -> PathBuf {
    crate::paths::node_modules().join("@cloudflare/workerd-linux-64/bin/workerd")
}

/// Starts `worker` in workerd on `port` with the settings of `env_file` over its `[vars]`; its config and
/// log go to `state_dir`.
pub async fn start(worker: WorkerSpec, port: u16, env_file: &Path, state_dir: &Path) -> Result<RunningWorker> {
    if !worker.entry().exists() {
        bail!("worker {} is not built ({} is missing): run `cargo xtask build`", worker.name, worker.entry().display());
    }
    let toml_path = worker.dir().join("wrangler.toml");
    let toml = std::fs::read_to_string(&toml_path).with_context(|| format!("reading {}", toml_path.display()))?;
    let mut bindings = plain_vars(&toml).with_context(|| format!("{} cannot run in workerd alone", worker.name))?;
    for (name, value) in DevEnv::read(env_file)?.entries() {
        bindings.retain(|(n, _)| n != name);
        bindings.push((name.clone(), value.clone()));
    }
    let date = value_of(&toml, "compatibility_date").context("wrangler.toml has no compatibility_date")?;
    // workerd embeds files relative to its config only: the build is copied beside it.
    let build = state_dir.join("build");
    let modules = modules(&worker.build_dir())?;
    for (name, path) in &modules {
        let copy = build.join(name);
        std::fs::create_dir_all(copy.parent().unwrap_or(&build))?;
        std::fs::copy(path, &copy).with_context(|| format!("copying {}", path.display()))?;
    }
    let config_path = state_dir.join("workerd.capnp");
    std::fs::write(&config_path, config(port, &date, &modules, &bindings)).context("writing the workerd config")?;
    let log = state_dir.join("workerd.log");
    let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = Command::new(workerd_binary());
    command
        .arg("serve")
        .arg(&config_path)
        .arg("--verbose")
        .current_dir(state_dir)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let group = ChildGroup::spawn(&format!("workerd ({})", worker.name), command)?;
    let mut running = RunningWorker::new(group, format!("http://127.0.0.1:{port}"), log);
    wait_until_healthy(&mut running).await?;
    Ok(running)
}

/// The `[vars]` of a wrangler.toml, refusing any other binding (KV, Durable Objects, services, queues…).
fn plain_vars(toml: &str) -> Result<Vec<(String, String)>> {
    let mut vars = Vec::new();
    let mut section = String::new();
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            if !matches!(section.as_str(), "vars" | "build" | "triggers") {
                bail!("it has bindings other than [vars] ([{section}])");
            }
            continue;
        }
        if section != "vars" || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else { bail!("unreadable [vars] line: {line}") };
        let value = value.trim();
        let Some(value) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            bail!("only string [vars] are supported: {line}");
        };
        vars.push((name.trim().to_owned(), value.to_owned()));
    }
    Ok(vars)
}

/// A top-level `key = "value"` of a wrangler.toml.
fn value_of(toml: &str, key: &str) -> Option<String> {
    toml.lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

/// The build's modules, named as they import each other: the entry first.
fn modules(build: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    collect(build, build, &mut found)?;
    found.sort_by_key(|(name, _)| (name != "entry.mjs", name.clone()));
    if found.first().map(|(name, _)| name.as_str()) != Some("entry.mjs") {
        bail!("{} has no entry.mjs", build.display());
    }
    Ok(found)
}

fn collect(root: &Path, dir: &Path, found: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, found)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("js" | "mjs" | "wasm")) {
            let name = path.strip_prefix(root)?.to_string_lossy().into_owned();
            found.push((name, path));
        }
    }
    Ok(())
}

/// A Cap'n Proto text string.
fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// workerd's config: one socket on `port`, the worker (its modules copied to `build/` beside the config),
/// and the network (loopback included) as its outbound.
fn config(port: u16, date: &str, modules: &[(String, PathBuf)], bindings: &[(String, String)]) -> String {
    let modules = modules
        .iter()
        .map(|(name, _)| {
            let kind = if name.ends_with(".wasm") { "wasm" } else { "esModule" };
            format!("    (name = {}, {kind} = embed {}),\n", quoted(name), quoted(&format!("build/{name}")))
        })
        .collect::<String>();
    let bindings = bindings
        .iter()
        .map(|(name, value)| format!("    (name = {}, text = {}),\n", quoted(name), quoted(value)))
        .collect::<String>();
    format!(
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [
{modules}  ],
  compatibilityDate = {date},
  bindings = [
{bindings}  ],
  globalOutbound = "net",
);
"#,
        date = quoted(date)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_are_read_and_any_other_binding_is_refused() {
        let toml = "name = \"w\"\ncompatibility_date = \"2026-11-01\"\n[build]\ncommand = \"\"\n[vars]\nA = \"1\"\n# c\nB = \"x y\"\n";
        assert_eq!(plain_vars(toml).unwrap(), [("A".into(), "1".into()), ("B".into(), "x y".into())]);
        assert_eq!(value_of(toml, "compatibility_date").as_deref(), Some("2026-11-01"));
        let kv = format!("{toml}[[kv_namespaces]]\nbinding = \"K\"\n");
        assert!(plain_vars(&kv).unwrap_err().to_string().contains("kv_namespaces"));
    }

    #[test]
    fn the_config_quotes_every_value_and_names_the_entry_first() {
        let modules = [
            ("entry.mjs".to_owned(), PathBuf::from("/b/entry.mjs")),
            ("index_bg.wasm".into(), "/b/index_bg.wasm".into()),
        ];
        let text = config(8000, "2026-11-01", &modules, &[("S".into(), "a\"b\\c".into())]);
        assert!(text.contains(r#"(name = "entry.mjs", esModule = embed "build/entry.mjs"),"#), "{text}");
        assert!(text.contains(r#"(name = "index_bg.wasm", wasm = embed "build/index_bg.wasm"),"#), "{text}");
        assert!(text.contains(r#"(name = "S", text = "a\"b\\c"),"#), "{text}");
        assert!(text.contains(r#"address = "127.0.0.1:8000""#), "{text}");
    }
}

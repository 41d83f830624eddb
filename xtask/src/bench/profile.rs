//! `cargo xtask bench --profile [--deliveries N]`: where the CPU of a whole delivery goes in workerd.
//!
//! devstack in process with the schema bootstrapped (the library functions `cargo xtask dev` uses), the
//! webhook worker in `wrangler dev` with its wasm keeping function names ([`crate::build::Names::Keep`]) and
//! its inspector on a known port; `crates/bench/node/profile.mjs` starts V8's sampling profiler through the
//! inspector (Chrome DevTools Protocol), N signed Sell.app purchases (10 KB, buyers without an account: a
//! claim, a user lookup, the catalogue, the ledger, the completion) are delivered one at a time, and the
//! profile is saved (`target/bench-profile/webhook.cpuprofile`, opens in Chrome DevTools) and summarised
//! ([`summarise`]): self time per function and per kind of code ([`Category`]).

use crate::build::{build_workers_with, Names};
use crate::dev_env::{DevEnv, LocalSystem};
use crate::paths::{node_bin_dir, target_dir, workspace_root, WEBHOOK_WORKER};
use crate::wrangler::{free_port, start_inspected, WorkerLaunch};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tollgate_app::bootstrap::bootstrap;
use tollgate_app::settings::{appwrite_config, Settings};
use tollgate_appwrite::AppwriteClient;

pub const DEFAULT_DELIVERIES: u32 = 200;
/// The body size of each delivery (issue 12's budget is stated at 10 KB).
const DELIVERY_BYTES: usize = 10_000;
const SECRET: &str = "bench-profile-sellapp-secret";
/// Functions listed in the printed summary.
const TOP: usize = 25;

/// What kind of code a sampled function is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Tollgate's Rust, compiled to wasm (`wasm://` scripts).
    Wasm,
    /// The worker's JavaScript: wasm-bindgen's glue and `entry.mjs` (bundled by wrangler).
    Glue,
    /// Other JavaScript in the bundle or the runtime (wrangler's middleware, workerd's own JS).
    OtherJs,
    /// No script: V8 and workerd native code (builtins such as `JSON.parse`, `fetch`, `(program)`,
    /// `(garbage collector)`).
    Runtime,
    /// The isolate waiting: not CPU.
    Idle,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Wasm => "wasm (Rust)",
            Category::Glue => "JS glue (wasm-bindgen, entry)",
            Category::OtherJs => "other JS",
            Category::Runtime => "runtime (V8/workerd native, GC)",
            Category::Idle => "idle",
        }
    }

    /// `url` and `function` of a profile node's call frame.
    pub fn of(function: &str, url: &str) -> Category {
        if function == "(idle)" {
            Category::Idle
        } else if url.starts_with("wasm://") || function.starts_with("wasm-function[") || function.starts_with("$") {
            Category::Wasm
        } else if url.is_empty() {
            Category::Runtime
        } else if url.ends_with("index.js") || url.ends_with("entry.mjs") || url.contains("/build/") {
            Category::Glue
        } else {
            Category::OtherJs
        }
    }
}

/// Self time of one function (all its nodes in the call tree together).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTime {
    pub function: String,
    pub url: String,
    pub category: Category,
    pub self_us: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSummary {
    /// Sampled time that was not idle.
    pub busy_us: f64,
    pub idle_us: f64,
    /// Busy time per category, largest first (idle left out).
    pub categories: Vec<(Category, f64)>,
    /// Functions by self time, largest first (idle left out).
    pub functions: Vec<FunctionTime>,
}

/// A `.cpuprofile` (`Profiler.stop`'s `profile`): self time per function from the samples. Sample `i`
/// lasts until sample `i + 1` (its time is `startTime` plus the `timeDeltas` up to it); the last one until
/// `endTime`, as Chrome DevTools counts them.
pub fn summarise(profile: &Value) -> Result<ProfileSummary> {
    let nodes = profile["nodes"].as_array().context("the profile has no nodes")?;
    let samples = profile["samples"].as_array().context("the profile has no samples")?;
    let deltas = profile["timeDeltas"].as_array().context("the profile has no timeDeltas")?;
    if samples.len() != deltas.len() {
        bail!("the profile has {} samples but {} time deltas", samples.len(), deltas.len());
    }
    let frame_of: HashMap<u64, (String, String)> = nodes
        .iter()
        .filter_map(|node| {
            let frame = &node["callFrame"];
            let function = frame["functionName"].as_str().unwrap_or_default();
            let function = if function.is_empty() { "(anonymous)" } else { function };
            Some((node["id"].as_u64()?, (function.to_owned(), frame["url"].as_str().unwrap_or_default().to_owned())))
        })
        .collect();
    let mut at = profile["startTime"].as_f64().context("the profile has no startTime")?;
    let mut times = Vec::with_capacity(samples.len());
    for delta in deltas {
        at += delta.as_f64().context("a time delta is not a number")?;
        times.push(at);
    }
    let end = profile["endTime"].as_f64().unwrap_or(at).max(at);
    let mut by_function: HashMap<(String, String), f64> = HashMap::new();
    for (i, sample) in samples.iter().enumerate() {
        let id = sample.as_u64().context("a sample is not a node id")?;
        let frame = frame_of.get(&id).with_context(|| format!("sample of unknown node {id}"))?;
        let duration = times.get(i + 1).copied().unwrap_or(end) - times[i];
        *by_function.entry(frame.clone()).or_default() += duration;
    }
    let mut functions: Vec<FunctionTime> = by_function
        .into_iter()
        .map(|((function, url), self_us)| FunctionTime {
            category: Category::of(&function, &url),
            function,
            url,
            self_us,
        })
        .collect();
    functions.sort_by(|a, b| b.self_us.total_cmp(&a.self_us).then_with(|| a.function.cmp(&b.function)));
    let idle_us = functions.iter().filter(|f| f.category == Category::Idle).map(|f| f.self_us).sum();
    functions.retain(|f| f.category != Category::Idle);
    let mut categories: HashMap<Category, f64> = HashMap::new();
    for f in &functions {
        *categories.entry(f.category).or_default() += f.self_us;
    }
    let mut categories: Vec<(Category, f64)> = categories.into_iter().collect();
    categories.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let busy_us = functions.iter().map(|f| f.self_us).sum();
    Ok(ProfileSummary { busy_us, idle_us, categories, functions })
}

/// The summary as Markdown tables: per category and the `top` functions, with the CPU per delivery.
pub fn report(summary: &ProfileSummary, deliveries: u32, top: usize) -> String {
    let per = |us: f64| us / 1_000.0 / f64::from(deliveries.max(1));
    let share = |us: f64| if summary.busy_us > 0.0 { 100.0 * us / summary.busy_us } else { 0.0 };
    let mut out = format!(
        "sampled CPU: {:.1} ms busy over {deliveries} deliveries = {:.2} ms per delivery (idle {:.1} ms)\n\n",
        summary.busy_us / 1_000.0,
        per(summary.busy_us),
        summary.idle_us / 1_000.0
    );
    out.push_str("| kind of code | ms per delivery | share |\n| --- | ---: | ---: |\n");
    for (category, us) in &summary.categories {
        out.push_str(&format!("| {} | {:.3} | {:.1} % |\n", category.as_str(), per(*us), share(*us)));
    }
    out.push_str("\n| function (self time) | kind | ms per delivery | share |\n| --- | --- | ---: | ---: |\n");
    for f in summary.functions.iter().take(top) {
        let name = f.function.replace('|', "\\|");
        out.push_str(&format!(
            "| `{name}` | {} | {:.3} | {:.1} % |\n",
            f.category.as_str(),
            per(f.self_us),
            share(f.self_us)
        ));
    }
    out
}

pub fn run(deliveries: u32) -> Result<()> {
    build_workers_with(&[WEBHOOK_WORKER], Names::Keep)?;
    let outcome = tokio::runtime::Runtime::new()?.block_on(profile_deliveries(deliveries));
    // The build directory back to what `cargo xtask build` makes (names stripped).
    let restored = crate::build::build_workers(&[WEBHOOK_WORKER]);
    let text = outcome?;
    restored?;
    println!("{text}");
    Ok(())
}

async fn profile_deliveries(deliveries: u32) -> Result<String> {
    let out_dir = target_dir().join("bench-profile");
    let state = out_dir.join(format!("state-{}", std::process::id()));
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    let devstack =
        tollgate_devstack::start(tollgate_devstack::DevstackConfig::for_tests()).await.context("starting devstack")?;
    let (port, inspector) = (free_port()?, free_port()?);
    let webhook_url = format!("http://127.0.0.1:{port}");
    // Only the webhook worker runs: role sync's prompt after a purchase goes nowhere (a pending buyer
    // prompts none), and no delivery here pays Stripe.
    let unused = format!("http://127.0.0.1:{}", free_port()?);
    let env = DevEnv::for_local(&LocalSystem {
        appwrite_endpoint: &devstack.appwrite_endpoint(),
        project_id: devstack.project_id(),
        api_key: devstack.api_key(),
        sellapp_webhook_secret: SECRET,
        webhook_url: &webhook_url,
        role_sync_url: &unused,
        role_sync_token: "bench-role-sync-token",
        api_url: &unused,
        admin_token: "bench-admin-token",
        devstack_appwrite_url: &devstack.appwrite_base_url(),
        devstack_discord_url: &devstack.discord_base_url(),
        devstack_sellapp_url: &devstack.sellapp_base_url(),
        devstack_stripe_url: &devstack.stripe_base_url(),
        stripe_api_key: devstack.stripe_secret_key(),
        stripe_webhook_secret: "whsec_bench_profile",
        demo_stripe_price_id: "price_bench_profile",
    });
    let env_file = state.join("dev.env");
    env.write(&env_file)?;
    let lookup = |key: &str| env.get(key).map(str::to_owned);
    let settings = Settings::from_lookup(lookup).context("settings")?;
    let client = AppwriteClient::new(appwrite_config(lookup)?)?;
    bootstrap(&client, &settings, &crate::TokioPause).await.context("bootstrapping the schema")?;
    let launch = WorkerLaunch { worker: WEBHOOK_WORKER, port, env_file: &env_file, state_dir: &state.join("webhook") };
    let mut worker = start_inspected(launch, Some(inspector)).await?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let deliver = |n: u64| {
        let (body, signature) =
            tollgate_bench::signed_sellapp_order(SECRET, n, &format!("buyer{n}@example.com"), DELIVERY_BYTES);
        http.post(format!("{webhook_url}/sell/webhook")).header("signature", signature).body(body).send()
    };
    // Warm-up outside the profile: the first requests compile the wasm and fill caches.
    for n in 0..10 {
        expect_ok(deliver(1_000_000 + n).await?).await?;
    }
    let profile_file = out_dir.join("webhook.cpuprofile");
    let script = workspace_root().join("crates").join("bench").join("node").join("profile.mjs");
    let mut node = Command::new(node_bin_dir().join("node"))
        .arg(&script)
        .arg(inspector.to_string())
        .arg(&profile_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting node")?;
    let mut lines = BufReader::new(node.stdout.take().context("node's stdout")?).lines();
    if lines.next().transpose()?.as_deref() != Some("started") {
        let _ = node.kill();
        bail!("the profiler did not start (see node's error above)");
    }
    let load_before = super::load_average();
    let started = Instant::now();
    for n in 0..u64::from(deliveries) {
        expect_ok(deliver(n).await?).await?;
    }
    let elapsed = started.elapsed();
    writeln!(node.stdin.take().context("node's stdin")?, "stop")?;
    let saved = lines.next().transpose()?;
    let status = node.wait()?;
    worker.stop();
    if saved.as_deref() != Some("saved") || !status.success() {
        bail!("the profile was not saved ({status})");
    }
    let profile: Value = serde_json::from_str(&std::fs::read_to_string(&profile_file)?)?;
    let summary = summarise(&profile)?;
    let _ = std::fs::remove_dir_all(&state);
    Ok(format!(
        "\nwebhook worker in workerd: {deliveries} Sell.app purchases of {} KB one at a time in {:.1} s ({:.1} ms each, \
         wall), load average before {load_before}, after {}; profile in {}\n\n{}",
        DELIVERY_BYTES / 1000,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / f64::from(deliveries.max(1)),
        super::load_average(),
        profile_file.display(),
        report(&summary, deliveries, TOP)
    ))
}

async fn expect_ok(response: reqwest::Response) -> Result<()> {
    let status = response.status();
    if !status.is_success() {
        bail!("a delivery was answered {status}: {}", response.text().await.unwrap_or_default());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(id: u64, function: &str, url: &str) -> Value {
        json!({ "id": id, "callFrame": { "functionName": function, "url": url, "scriptId": "1", "lineNumber": 0 } })
    }

    /// root → (program); entry.mjs fetch → wasm function → JSON.parse (native); idle.
    fn crafted() -> Value {
        json!({
            "nodes": [
                node(1, "(root)", ""),
                node(2, "(program)", ""),
                node(3, "fetch", "file:///w/build/entry.mjs"),
                node(4, "tollgate_providers::sellapp::verify", "wasm://wasm/0012abcd"),
                node(5, "parse", ""),
                node(6, "(idle)", ""),
                node(7, "", "file:///w/node_modules/wrangler/templates/middleware.js"),
            ],
            "startTime": 1_000,
            // Samples at 1010, 1030, 1060, 1100, 1110, 1150; end at 1200.
            "samples": [4, 4, 5, 3, 6, 7],
            "timeDeltas": [10, 20, 30, 40, 10, 40],
            "endTime": 1_200,
        })
    }

    #[test]
    fn each_sample_lasts_until_the_next_and_idle_is_not_cpu() {
        let summary = summarise(&crafted()).expect("a summary");
        let self_of = |name: &str| summary.functions.iter().find(|f| f.function == name).map(|f| f.self_us);
        assert_eq!(self_of("tollgate_providers::sellapp::verify"), Some(50.0));
        assert_eq!(self_of("parse"), Some(40.0));
        assert_eq!(self_of("fetch"), Some(10.0));
        assert_eq!(self_of("(anonymous)"), Some(50.0), "the last sample lasts until endTime");
        assert_eq!(self_of("(idle)"), None);
        assert_eq!((summary.busy_us, summary.idle_us), (150.0, 40.0));
        assert_eq!(summary.functions[0].function, "(anonymous)", "largest first, ties by name");
    }

    #[test]
    fn time_is_split_by_kind_of_code() {
        let summary = summarise(&crafted()).expect("a summary");
        assert_eq!(
            summary.categories,
            vec![(Category::Wasm, 50.0), (Category::OtherJs, 50.0), (Category::Runtime, 40.0), (Category::Glue, 10.0)]
        );
        let text = report(&summary, 2, 2);
        assert!(text.contains("0.1 ms busy over 2 deliveries = 0.07 ms per delivery"), "{text}");
        assert!(text.contains("| wasm (Rust) | 0.025 | 33.3 % |"), "{text}");
        assert_eq!(text.matches("| `").count(), 2, "only the top 2 functions: {text}");
    }

    #[test]
    fn code_is_classified_by_its_script() {
        assert_eq!(Category::of("wasm-function[812]", ""), Category::Wasm);
        assert_eq!(Category::of("$tollgate_app::claim", "wasm://wasm/abc"), Category::Wasm);
        assert_eq!(Category::of("passStringToWasm0", "file:///x/workers/webhook/build/index.js"), Category::Glue);
        assert_eq!(Category::of("(garbage collector)", ""), Category::Runtime);
        assert_eq!(Category::of("(idle)", ""), Category::Idle);
        assert_eq!(Category::of("handler", "file:///x/.wrangler/tmp/middleware-loader.entry.ts"), Category::OtherJs);
    }

    #[test]
    fn a_profile_that_does_not_add_up_is_refused() {
        let mut broken = crafted();
        broken["timeDeltas"] = json!([10]);
        assert!(summarise(&broken).is_err());
        let mut unknown = crafted();
        unknown["samples"] = json!([4, 4, 5, 3, 6, 99]);
        assert!(summarise(&unknown).is_err());
        assert!(summarise(&json!({})).is_err());
    }
}

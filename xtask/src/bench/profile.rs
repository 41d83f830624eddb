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

/// What kind of code a sampled function is, and whether Rust called it. wrangler bundles wasm-bindgen's
/// glue, `entry.mjs` and its own middleware into one script, so JavaScript is told apart by its callers:
/// JavaScript with a wasm frame below it on the stack is glue (Rust calling out: `console.log`, `fetch`,
/// closures), the rest is the entry and wrangler's middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Tollgate's Rust, compiled to wasm (`wasm://` scripts).
    Wasm,
    /// JavaScript called from Rust: wasm-bindgen's import shims and closures.
    Glue,
    /// Native code called from Rust through the glue: `fetch`, `Request`/`Response`, `console.log`,
    /// timers, `TextDecoder` (workerd's C++ and V8 builtins, and workerd's own internal JS modules).
    RuntimeForRust,
    /// JavaScript Rust did not call: the entry's dispatch, wrangler's dev middleware.
    OtherJs,
    /// Native code Rust did not call: request dispatch, `(program)`, `(garbage collector)`.
    Runtime,
    /// The isolate waiting: not CPU.
    Idle,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Wasm => "wasm (Rust)",
            Category::Glue => "JS glue called from Rust (wasm-bindgen)",
            Category::RuntimeForRust => "runtime called from Rust (fetch, Request, console, timers)",
            Category::OtherJs => "other JS (entry, wrangler middleware)",
            Category::Runtime => "runtime, not from Rust (dispatch, GC, program)",
            Category::Idle => "idle",
        }
    }

    /// A frame's category from its `function` and script `url`, and whether a wasm frame is below it.
    pub fn of(function: &str, url: &str, called_from_wasm: bool) -> Category {
        let native = url.is_empty() || url.starts_with("node-internal:") || url.starts_with("cloudflare-internal:");
        if function == "(idle)" {
            Category::Idle
        } else if is_wasm(function, url) {
            Category::Wasm
        } else if native && called_from_wasm {
            Category::RuntimeForRust
        } else if native {
            Category::Runtime
        } else if called_from_wasm {
            Category::Glue
        } else {
            Category::OtherJs
        }
    }
}

/// A Rust symbol without its `::h0123456789abcdef` suffix.
fn without_hash(function: &str) -> &str {
    match function.rsplit_once("::h") {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => function,
    }
}

fn is_wasm(function: &str, url: &str) -> bool {
    url.starts_with("wasm://") || function.starts_with("wasm-function[")
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
    /// Gaps between samples beyond [`SAMPLE_CAP_US`]: the isolate waiting (or the machine too busy to sample).
    pub unsampled_us: f64,
    /// Busy time per category, largest first (idle left out).
    pub categories: Vec<(Category, f64)>,
    /// Functions by self time, largest first (idle left out).
    pub functions: Vec<FunctionTime>,
    /// Rust functions by total time (their own and everything below them: the glue and runtime they
    /// call), largest first: where a delivery's time goes in Tollgate's terms.
    pub rust_totals: Vec<(String, f64)>,
}

/// The profiler's sampling interval (µs), asked of the inspector by `profile.mjs`.
pub const SAMPLING_INTERVAL_US: f64 = 100.0;
/// The longest a sample is taken to last. workerd does not tell V8 when the isolate waits for I/O, so the
/// sampler goes quiet then and the next sample comes much later (up to 200 ms seen): counting that gap
/// as the previous function's time, as DevTools does, would charge a delivery's waits to whatever ran last.
pub const SAMPLE_CAP_US: f64 = 10.0 * SAMPLING_INTERVAL_US;

/// A `.cpuprofile` (`Profiler.stop`'s `profile`): self time per function from the samples. Sample `i`
/// lasts until sample `i + 1` (its time is `startTime` plus the `timeDeltas` up to it; the last one until
/// `endTime`), at most [`SAMPLE_CAP_US`]; the rest of a longer gap is [`ProfileSummary::unsampled_us`].
pub fn summarise(profile: &Value) -> Result<ProfileSummary> {
    let nodes = profile["nodes"].as_array().context("the profile has no nodes")?;
    let samples = profile["samples"].as_array().context("the profile has no samples")?;
    let deltas = profile["timeDeltas"].as_array().context("the profile has no timeDeltas")?;
    if samples.len() != deltas.len() {
        bail!("the profile has {} samples but {} time deltas", samples.len(), deltas.len());
    }
    // Each node's function, script and category (which needs whether a wasm frame is below it).
    let mut parent_of: HashMap<u64, u64> = HashMap::new();
    for node in nodes {
        let id = node["id"].as_u64().context("a node without an id")?;
        for child in node["children"].as_array().into_iter().flatten().filter_map(Value::as_u64) {
            parent_of.insert(child, id);
        }
    }
    let frames: HashMap<u64, (String, String)> = nodes
        .iter()
        .filter_map(|node| {
            let frame = &node["callFrame"];
            let function = frame["functionName"].as_str().unwrap_or_default();
            let function = if function.is_empty() { "(anonymous)" } else { without_hash(function) };
            Some((node["id"].as_u64()?, (function.to_owned(), frame["url"].as_str().unwrap_or_default().to_owned())))
        })
        .collect();
    let called_from_wasm = |id: u64| {
        let mut at = parent_of.get(&id);
        // A call tree has no cycles; the bound keeps a malformed profile from looping.
        for _ in 0..nodes.len() {
            let Some(parent) = at else { return false };
            if frames.get(parent).is_some_and(|(f, u)| is_wasm(f, u)) {
                return true;
            }
            at = parent_of.get(parent);
        }
        false
    };
    let frame_of: HashMap<u64, (String, String, Category)> = frames
        .iter()
        .map(|(&id, (function, url))| {
            (id, (function.clone(), url.clone(), Category::of(function, url, called_from_wasm(id))))
        })
        .collect();
    let mut at = profile["startTime"].as_f64().context("the profile has no startTime")?;
    let mut times = Vec::with_capacity(samples.len());
    for delta in deltas {
        at += delta.as_f64().context("a time delta is not a number")?;
        times.push(at);
    }
    let end = profile["endTime"].as_f64().unwrap_or(at).max(at);
    let mut by_function: HashMap<(String, String, Category), f64> = HashMap::new();
    let mut unsampled_us = 0.0;
    let mut rust_totals: HashMap<String, f64> = HashMap::new();
    for (i, sample) in samples.iter().enumerate() {
        let id = sample.as_u64().context("a sample is not a node id")?;
        let frame = frame_of.get(&id).with_context(|| format!("sample of unknown node {id}"))?;
        let gap = times.get(i + 1).copied().unwrap_or(end) - times[i];
        let duration = gap.min(SAMPLE_CAP_US);
        unsampled_us += gap - duration;
        *by_function.entry(frame.clone()).or_default() += duration;
        let mut seen = std::collections::HashSet::new();
        let mut at = Some(id);
        for _ in 0..nodes.len() {
            let Some(node) = at else { break };
            if let Some((function, _, Category::Wasm)) = frame_of.get(&node) {
                if seen.insert(function) {
                    *rust_totals.entry(function.clone()).or_default() += duration;
                }
            }
            at = parent_of.get(&node).copied();
        }
    }
    let mut rust_totals: Vec<(String, f64)> = rust_totals.into_iter().collect();
    rust_totals.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut functions: Vec<FunctionTime> = by_function
        .into_iter()
        .map(|((function, url, category), self_us)| FunctionTime { function, url, category, self_us })
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
    Ok(ProfileSummary { busy_us, idle_us, unsampled_us, categories, functions, rust_totals })
}

/// The summary as Markdown tables: per category and the `top` functions, with the CPU per delivery.
pub fn report(summary: &ProfileSummary, deliveries: u32, top: usize) -> String {
    let per = |us: f64| us / 1_000.0 / f64::from(deliveries.max(1));
    let share = |us: f64| if summary.busy_us > 0.0 { 100.0 * us / summary.busy_us } else { 0.0 };
    let mut out = format!(
        "sampled: {:.1} ms busy over {deliveries} deliveries = {:.2} ms per delivery (idle {:.1} ms, unsampled gaps \
         {:.1} ms)\n\n",
        summary.busy_us / 1_000.0,
        per(summary.busy_us),
        summary.idle_us / 1_000.0,
        summary.unsampled_us / 1_000.0
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
    out.push_str(
        "\n| Rust function (total: itself and what it calls) | ms per delivery | share |\n| --- | ---: | ---: |\n",
    );
    for (function, us) in summary.rust_totals.iter().take(top) {
        out.push_str(&format!("| `{}` | {:.3} | {:.1} % |\n", function.replace('|', "\\|"), per(*us), share(*us)));
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
    map_the_product(&client, &settings).await?;
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
        .arg(SAMPLING_INTERVAL_US.to_string())
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

/// The catalogue as a shop has it: the purchases' product maps to a plan (no fallback, no warning).
async fn map_the_product(client: &AppwriteClient, settings: &Settings) -> Result<()> {
    use tollgate_devstack::discord_seed as seed;
    let app = tollgate_app::App::new(client, settings, &tollgate_core::SystemClock);
    let update = tollgate_app::role_sync::PlanUpdate {
        roles: Some(vec![tollgate_core::RoleId::parse(seed::MEMBER_ROLE_ID)?]),
        sellapp_products: Some(vec![tollgate_bench::PRODUCT_ID.to_owned()]),
        ..Default::default()
    };
    app.set_plan(tollgate_bench::PLAN, tollgate_core::GuildId::parse(seed::GUILD_ID)?, &update).await?;
    Ok(())
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

    fn node(id: u64, function: &str, url: &str, children: &[u64]) -> Value {
        json!({
            "id": id,
            "callFrame": { "functionName": function, "url": url, "scriptId": "1", "lineNumber": 0 },
            "children": children,
        })
    }

    /// (root) → (program); (root) → the entry's `fetch` (bundle) → wasm `verify` → `parse` (native) and a
    /// glue shim (bundle) → `log` (native); (root) → (idle); (root) → an anonymous middleware function.
    fn crafted() -> Value {
        const BUNDLE: &str = "file:///w/.wrangler/tmp/dev-x/entry.js";
        json!({
            "nodes": [
                node(1, "(root)", "", &[2, 3, 6, 7]),
                node(2, "(program)", "", &[]),
                node(3, "fetch", BUNDLE, &[4]),
                node(4, "tollgate_providers::sellapp::verify", "wasm://wasm/0012abcd", &[5, 8]),
                node(5, "parse", "", &[]),
                node(6, "(idle)", "", &[]),
                node(7, "", BUNDLE, &[]),
                node(8, "__wbg_log", BUNDLE, &[9]),
                node(9, "log", "", &[]),
            ],
            "startTime": 1_000,
            // Samples at 1010, 1030, 1060, 1100, 1110, 1150, 1160, 1170; end at 1200.
            "samples": [4, 4, 5, 3, 6, 7, 8, 9],
            "timeDeltas": [10, 20, 30, 40, 10, 40, 10, 10],
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
        assert_eq!(self_of("(anonymous)"), Some(10.0));
        assert_eq!(self_of("log"), Some(30.0), "the last sample lasts until endTime");
        assert_eq!(self_of("(idle)"), None);
        assert_eq!((summary.busy_us, summary.idle_us, summary.unsampled_us), (150.0, 40.0, 0.0));
        assert_eq!(summary.functions[0].function, "tollgate_providers::sellapp::verify", "largest first");
        let verify_total = 50.0 + 40.0 + 10.0 + 30.0;
        assert_eq!(summary.rust_totals, vec![("tollgate_providers::sellapp::verify".to_owned(), verify_total)]);
    }

    #[test]
    fn a_long_gap_between_samples_is_not_charged_to_the_function_before_it() {
        let mut waited = crafted();
        // The fourth sample (fetch, at 1100) is followed by 50 ms without samples.
        waited["timeDeltas"] = json!([10, 20, 30, 40, 50_000, 40, 10, 10]);
        waited["endTime"] = json!(51_200);
        let summary = summarise(&waited).expect("a summary");
        let fetch = summary.functions.iter().find(|f| f.function == "fetch").expect("fetch");
        assert_eq!(fetch.self_us, SAMPLE_CAP_US);
        assert_eq!(summary.unsampled_us, 50_000.0 - SAMPLE_CAP_US);
    }

    #[test]
    fn time_is_split_by_kind_of_code_and_by_whether_rust_called_it() {
        let summary = summarise(&crafted()).expect("a summary");
        assert_eq!(
            summary.categories,
            vec![
                (Category::RuntimeForRust, 70.0),
                (Category::Wasm, 50.0),
                (Category::OtherJs, 20.0),
                (Category::Glue, 10.0)
            ]
        );
        let text = report(&summary, 2, 2);
        assert!(text.contains("sampled: 0.1 ms busy over 2 deliveries = 0.07 ms per delivery"), "{text}");
        assert!(text.contains("| wasm (Rust) | 0.025 | 33.3 % |"), "{text}");
        assert_eq!(text.matches("| `").count(), 2 + 1, "the top 2 functions and the one Rust total: {text}");
    }

    #[test]
    fn rust_symbols_lose_only_their_hash() {
        assert_eq!(without_hash("sha2::sha256::compress256::h88cc99b967bb0b1b"), "sha2::sha256::compress256");
        assert_eq!(without_hash("a::hello"), "a::hello");
        assert_eq!(without_hash("fetch"), "fetch");
    }

    #[test]
    fn code_is_classified_by_its_script_and_its_caller() {
        let bundle = "file:///x/.wrangler/tmp/dev-1/entry.js";
        assert_eq!(Category::of("wasm-function[812]", "", false), Category::Wasm);
        assert_eq!(Category::of("tollgate_app::claim", "wasm://wasm/abc", true), Category::Wasm);
        assert_eq!(Category::of("passStringToWasm0", bundle, true), Category::Glue);
        assert_eq!(Category::of("fetch", bundle, false), Category::OtherJs);
        assert_eq!(Category::of("fetch", "", true), Category::RuntimeForRust);
        assert_eq!(Category::of("setTimeout", "node-internal:internal_timers", true), Category::RuntimeForRust);
        assert_eq!(Category::of("(garbage collector)", "", false), Category::Runtime);
        assert_eq!(Category::of("(idle)", "", false), Category::Idle);
    }

    #[test]
    fn a_profile_that_does_not_add_up_is_refused() {
        let mut broken = crafted();
        broken["timeDeltas"] = json!([10]);
        assert!(summarise(&broken).is_err());
        let mut unknown = crafted();
        unknown["samples"] = json!([4, 4, 5, 3, 6, 7, 8, 99]);
        assert!(summarise(&unknown).is_err());
        assert!(summarise(&json!({})).is_err());
    }
}

//! `cargo xtask dev` from a checkout without worker builds: it builds every worker it starts, comes up with
//! all five services answering (devstack's Appwrite `GET /v1/health` and Discord API, and each worker's
//! `GET /health` in workerd), writes `--set` overrides into `dev.env` where the workers read them, and stops
//! everything it started on SIGTERM (as on Ctrl-C). It runs with another state directory and free ports so it
//! never touches a developer's running system, but it does delete `workers/*/build` first (and leaves them
//! rebuilt). On a fresh machine this compiles the workers to wasm: minutes.
//!
//! Also: a bad `--set` is refused before anything is built or started.

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tollgate_devstack::discord_seed as seed;
use xtask::process::ChildGroup;
use xtask::wrangler::free_port;

/// Building three workers for wasm from nothing, on a busy 2-core machine, then starting them.
const STARTUP_LIMIT: Duration = Duration::from_secs(20 * 60);

async fn answers(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> bool {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    matches!(request.send().await, Ok(response) if response.status().is_success())
}

struct Ports {
    appwrite: u16,
    discord: u16,
    sellapp: u16,
    stripe: u16,
    webhook: u16,
    role_sync: u16,
    api: u16,
}

fn xtask_dev(args: &[&str], state: &std::path::Path, ports: &Ports, log: Stdio) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .arg("dev")
        .args(args)
        .env("TOLLGATE_STATE_DIR", state)
        .env("DEVSTACK_APPWRITE_PORT", ports.appwrite.to_string())
        .env("DEVSTACK_DISCORD_PORT", ports.discord.to_string())
        .env("DEVSTACK_SELLAPP_PORT", ports.sellapp.to_string())
        .env("DEVSTACK_STRIPE_PORT", ports.stripe.to_string())
        .env("TOLLGATE_WEBHOOK_PORT", ports.webhook.to_string())
        .env("TOLLGATE_ROLE_SYNC_PORT", ports.role_sync.to_string())
        .env("TOLLGATE_API_PORT", ports.api.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    command
}

fn free_ports() -> Ports {
    let port = || free_port().unwrap();
    Ports {
        appwrite: port(),
        discord: port(),
        sellapp: port(),
        stripe: port(),
        webhook: port(),
        role_sync: port(),
        api: port(),
    }
}

fn env_value(env: &str, key: &str) -> String {
    let line = env.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key}"));
    line.trim_matches('\'').to_owned()
}

#[test]
fn a_bad_or_unknown_setting_is_refused_before_anything_starts() {
    let state = std::env::temp_dir().join(format!("tollgate-xtask-dev-refused-{}", std::process::id()));
    for (set, expected) in [
        ("NOPE=1", "there is no setting NOPE; known settings: APPWRITE_ENDPOINT,"),
        ("ACCESS_GRACE_HOURS=100000", "ACCESS_GRACE_HOURS is invalid"),
        ("APPWRITE_TEAM_PAID_ID=not valid", "APPWRITE_TEAM_PAID_ID is invalid"),
    ] {
        let output = xtask_dev(&["--set", set], &state, &free_ports(), Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--set {set} was accepted");
        assert!(stderr.contains(expected), "--set {set}: {stderr}");
        assert!(!state.exists(), "--set {set}: something was started");
    }
    let output = xtask_dev(&["--set", "NOPE=1"], &state, &free_ports(), Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ACCESS_GRACE_HOURS") && stderr.contains("SELLAPP_WEBHOOK_SECRET"), "{stderr}");
}

#[tokio::test]
async fn xtask_dev_builds_and_serves_all_five_services_applies_set_and_stops_everything_on_sigterm() {
    for worker in xtask::paths::WORKERS {
        match std::fs::remove_dir_all(worker.build_dir()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("removing {}: {e}", worker.name),
            _ => {}
        }
    }
    let state = std::env::temp_dir().join(format!("tollgate-xtask-dev-{}", std::process::id()));
    let log_path = std::env::temp_dir().join(format!("tollgate-xtask-dev-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let ports = free_ports();
    let command = xtask_dev(&["--fresh", "--set", "ACCESS_GRACE_HOURS=0"], &state, &ports, log.into());
    let mut dev = ChildGroup::spawn("cargo xtask dev", command).unwrap();
    let log_tail = || xtask::wrangler::log_tail(&log_path);

    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let appwrite_headers = [
        ("X-Appwrite-Project", tollgate_devstack::DEFAULT_PROJECT_ID),
        ("X-Appwrite-Key", tollgate_devstack::DEFAULT_API_KEY),
    ];
    let bot = format!("Bot {}", seed::BOT_TOKEN);
    let discord_headers = [("Authorization", bot.as_str())];
    let devstack_health = format!("http://127.0.0.1:{}/v1/health", ports.appwrite);
    let discord_guild = format!("http://127.0.0.1:{}/api/v10/guilds/{}", ports.discord, seed::GUILD_ID);
    let workers = [
        ("webhook", format!("http://127.0.0.1:{}/health", ports.webhook)),
        ("role-sync", format!("http://127.0.0.1:{}/health", ports.role_sync)),
        ("api", format!("http://127.0.0.1:{}/health", ports.api)),
    ];
    let all_answer = || async {
        let mut up = answers(&client, &devstack_health, &appwrite_headers).await
            && answers(&client, &discord_guild, &discord_headers).await;
        for (_, health) in &workers {
            up = up && answers(&client, health, &[]).await;
        }
        up
    };
    let deadline = Instant::now() + STARTUP_LIMIT;
    while !all_answer().await {
        assert!(dev.exited().is_none(), "xtask dev exited early; its log ends:\n{}", log_tail());
        assert!(Instant::now() < deadline, "xtask dev did not come up within {STARTUP_LIMIT:?}:\n{}", log_tail());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for worker in xtask::paths::WORKERS {
        assert!(worker.entry().exists(), "xtask dev served {} without building it", worker.name);
    }

    let env = std::fs::read_to_string(state.join("dev.env")).unwrap();
    for key in ["APPWRITE_ENDPOINT", "SELLAPP_WEBHOOK_SECRET", "WEBHOOK_URL", "DEVSTACK_APPWRITE_URL", "ADMIN_TOKEN"] {
        assert!(env.lines().any(|l| l.starts_with(&format!("{key}="))), "dev.env lacks {key}");
    }
    assert_eq!(env_value(&env, "ACCESS_GRACE_HOURS"), "0", "the --set override is in dev.env");

    // The api worker reads the override: an entitlement that ended an hour ago gives no access with a grace
    // period of 0 hours (with the default 24 it would), while one that ends in an hour does.
    let endpoint = env_value(&env, "APPWRITE_ENDPOINT");
    let admin = format!("Bearer {}", env_value(&env, "ADMIN_TOKEN"));
    let entitlements = format!("{endpoint}/databases/crypto/collections/entitlements/documents");
    let source = "admin:demo@example.com:member";
    let id = tollgate_app::ledger::entitlement_document_id(source).as_str().to_owned();
    let has_access = |ends: chrono::DateTime<chrono::Utc>, first: bool| {
        let (client, entitlements, admin, id) = (&client, &entitlements, &admin, &id);
        async move {
            let data = json!({"source": source, "provider": "admin", "email": "demo@example.com",
                "userId": "demo-user", "plan": "member", "grantedAt": "2026-01-01T00:00:00.000Z",
                "endsAt": ends.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)});
            let request = if first {
                client.post(entitlements.as_str()).json(&json!({"documentId": id, "data": data}))
            } else {
                client.patch(format!("{entitlements}/{id}")).json(&json!({"data": data}))
            };
            let mut request = request;
            for (name, value) in appwrite_headers {
                request = request.header(name, value);
            }
            let written = request.send().await.unwrap();
            assert!(written.status().is_success(), "writing the entitlement: {}", written.status());
            let url = format!("http://127.0.0.1:{}/admin/users?email=demo@example.com", ports.api);
            let report: Value =
                client.get(url).header("Authorization", admin.as_str()).send().await.unwrap().json().await.unwrap();
            report["hasAccess"].as_bool().unwrap_or_else(|| panic!("no hasAccess in {report}"))
        }
    };
    let now = chrono::Utc::now();
    assert!(has_access(now + chrono::Duration::hours(1), true).await, "a running entitlement gives access");
    assert!(!has_access(now - chrono::Duration::hours(1), false).await, "ACCESS_GRACE_HOURS=0 reached the api worker");

    Command::new("kill").args(["-s", "TERM", &dev.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while dev.exited().is_none() {
        assert!(Instant::now() < deadline, "xtask dev did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (name, health) in &workers {
        assert!(!answers(&client, health, &[]).await, "the {name} worker was left running");
    }
    assert!(!answers(&client, &devstack_health, &appwrite_headers).await, "devstack (Appwrite) was left running");
    assert!(!answers(&client, &discord_guild, &discord_headers).await, "devstack (Discord) was left running");
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_file(&log_path);
}

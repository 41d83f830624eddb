//! `cargo xtask dev` comes up on its defaults — devstack answering `GET /v1/health`, the webhook worker
//! answering `GET /health` in workerd — and stops everything it started on SIGTERM (as on Ctrl-C).
//! Run with another state directory and free ports so it never touches a developer's running system.
//! It needs the workers built (`cargo xtask test` builds them first), so it passes `--no-build`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use xtask::process::ChildGroup;
use xtask::wrangler::free_port;

const STARTUP_LIMIT: Duration = Duration::from_secs(180);

async fn answers(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> bool {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    matches!(request.send().await, Ok(response) if response.status().is_success())
}

#[tokio::test]
async fn xtask_dev_serves_both_health_endpoints_and_stops_everything_on_sigterm() {
    let state = std::env::temp_dir().join(format!("tollgate-xtask-dev-{}", std::process::id()));
    let (appwrite_port, webhook_port) = (free_port().unwrap(), free_port().unwrap());
    let (discord_port, role_sync_port, api_port) = (free_port().unwrap(), free_port().unwrap(), free_port().unwrap());
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(["dev", "--fresh", "--no-build"])
        .env("TOLLGATE_STATE_DIR", &state)
        .env("DEVSTACK_APPWRITE_PORT", appwrite_port.to_string())
        .env("TOLLGATE_WEBHOOK_PORT", webhook_port.to_string())
        .env("DEVSTACK_DISCORD_PORT", discord_port.to_string())
        .env("DEVSTACK_SELLAPP_PORT", free_port().unwrap().to_string())
        .env("TOLLGATE_ROLE_SYNC_PORT", role_sync_port.to_string())
        .env("TOLLGATE_API_PORT", api_port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut dev = ChildGroup::spawn("cargo xtask dev", command).unwrap();

    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let worker_health = format!("http://127.0.0.1:{webhook_port}/health");
    let devstack_health = format!("http://127.0.0.1:{appwrite_port}/v1/health");
    let role_sync_health = format!("http://127.0.0.1:{role_sync_port}/health");
    let api_health = format!("http://127.0.0.1:{api_port}/health");
    let appwrite_headers = [
        ("X-Appwrite-Project", tollgate_devstack::DEFAULT_PROJECT_ID),
        ("X-Appwrite-Key", tollgate_devstack::DEFAULT_API_KEY),
    ];
    let deadline = Instant::now() + STARTUP_LIMIT;
    while !(answers(&client, &worker_health, &[]).await && answers(&client, &devstack_health, &appwrite_headers).await)
    {
        assert!(dev.exited().is_none(), "xtask dev exited early");
        assert!(Instant::now() < deadline, "xtask dev did not come up within {STARTUP_LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let env = std::fs::read_to_string(state.join("dev.env")).unwrap();
    for key in [
        "APPWRITE_ENDPOINT",
        "APPWRITE_PROJECT_ID",
        "APPWRITE_API_KEY",
        "SELLAPP_WEBHOOK_SECRET",
        "WEBHOOK_URL",
        "DEVSTACK_APPWRITE_URL",
    ] {
        assert!(env.lines().any(|l| l.starts_with(&format!("{key}="))), "dev.env lacks {key}");
    }

    Command::new("kill").args(["-s", "TERM", &dev.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while dev.exited().is_none() {
        assert!(Instant::now() < deadline, "xtask dev did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!answers(&client, &worker_health, &[]).await, "the webhook worker was left running");
    assert!(!answers(&client, &role_sync_health, &[]).await, "the role-sync worker was left running");
    assert!(!answers(&client, &api_health, &[]).await, "the api worker was left running");
    assert!(!answers(&client, &devstack_health, &appwrite_headers).await, "devstack was left running");
    let _ = std::fs::remove_dir_all(&state);
}

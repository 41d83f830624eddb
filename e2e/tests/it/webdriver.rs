//! A small WebDriver client (W3C protocol over HTTP, with reqwest) driving Debian's headless Chromium
//! through `chromedriver`: enough to sign in, click, type, read text, wait, and take screenshots.
//! `cargo xtask test` installs `chromium` and `chromium-driver` when they are missing.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use xtask::process::ChildGroup;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a page may take to show what a step waits for.
pub const PAGE_WAIT: Duration = Duration::from_secs(20);

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]).map(|d| d.join(name)).find(|p| p.is_file())
    })
}

pub struct Browser {
    http: reqwest::Client,
    session: String,
    /// chromedriver's process group (Chromium included): stopped when the browser is dropped.
    _driver: ChildGroup,
    profile: PathBuf,
    /// Where screenshots go (the test's temporary directory, or `docs/screenshots`).
    pub shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free port and a fresh headless Chromium session with its own profile (under
    /// `work`); screenshots go to `shots`.
    pub async fn start(work: &Path, shots: &Path) -> Browser {
        let driver_bin = find_program(&["chromedriver"])
            .expect("chromedriver is not installed: run `cargo xtask test` (it installs chromium and chromium-driver) or `apt-get install -y chromium chromium-driver`");
        let chromium = find_program(&["chromium", "chromium-browser"]).expect("chromium is not installed");
        let port = xtask::wrangler::free_port().expect("a free port");
        let profile = work.join(format!("chromium-profile-{port}"));
        std::fs::create_dir_all(&profile).expect("a profile directory");
        let mut command = Command::new(driver_bin);
        command.arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null());
        let driver = ChildGroup::spawn("chromedriver", command).expect("starting chromedriver");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("http client");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await.ok();
            let ready = match ready {
                Some(r) => r.json::<Value>().await.ok().is_some_and(|v| v["value"]["ready"] == true),
                None => false,
            };
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .unwrap();
        let session =
            created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_owned();
        Browser {
            http,
            session: format!("{base}/session/{session}"),
            _driver: driver,
            profile,
            shots: shots.to_owned(),
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.expect("webdriver").json().await.expect("webdriver json");
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn goto(&self, url: &str) {
        let answer = self.post("/url", json!({ "url": url })).await;
        assert!(answer.is_null(), "navigating to {url}: {answer}");
    }

    pub async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body; `arguments` available) in the page and returns its value.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// The first element matching `css` that is displayed, waiting for it.
    pub async fn element(&self, css: &str) -> String {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let found = self.post("/elements", json!({ "using": "css selector", "value": css })).await;
            for element in found.as_array().into_iter().flatten() {
                let Some(id) = element[ELEMENT].as_str() else { continue };
                if self.command(reqwest::Method::GET, &format!("/element/{id}/displayed"), None).await == true {
                    return id.to_owned();
                }
            }
            assert!(Instant::now() < deadline, "no visible `{css}` on {}", self.url().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        let answer = self.post(&format!("/element/{id}/click"), json!({})).await;
        assert!(answer.is_null(), "clicking {css}: {answer}");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/clear"), json!({})).await;
        let answer = self.post(&format!("/element/{id}/value"), json!({ "text": text })).await;
        assert!(answer.is_null(), "typing into {css}: {answer}");
    }

    /// Presses keys on the focused element (e.g. "\u{E007}" is Enter).
    pub async fn keys(&self, css: &str, keys: &str) {
        let id = self.element(css).await;
        self.post(&format!("/element/{id}/value"), json!({ "text": keys })).await;
    }

    /// Waits until the text of `css` contains `expected`; returns it.
    pub async fn wait_text(&self, css: &str, expected: &str) -> String {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let text = self
                .script("const n = document.querySelector(arguments[0]); return n ? n.innerText : null;", json!([css]))
                .await;
            let text = text.as_str().unwrap_or_default().to_owned();
            if text.contains(expected) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` never said `{expected}`; it says `{text}` on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Confirms the page's confirmation dialog.
    pub async fn confirm(&self) {
        self.wait_text("#confirm-text", "?").await;
        self.click("#confirm-ok").await;
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height })).await;
    }

    /// Saves a PNG of the viewport as `name` in [`Self::shots`]; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine;
        let data = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let png =
            base64::engine::general_purpose::STANDARD.decode(data.as_str().expect("a screenshot")).expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = self.shots.join(name);
        std::fs::write(&path, png).expect("writing the screenshot");
        path
    }

    /// Ends the session and stops chromedriver (dropping the browser does too).
    pub async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session (chromedriver then stops its Chromium), without async; the process group is
        // stopped after this, whatever happened.
        if let Some(rest) = self.session.strip_prefix("http://") {
            if let Some((host, path)) = rest.split_once('/') {
                use std::io::{Read, Write};
                if let Ok(mut stream) = std::net::TcpStream::connect(host) {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let request = format!(
                        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(request.as_bytes());
                    let _ = stream.read_to_end(&mut Vec::new());
                }
            }
        }
    }
}

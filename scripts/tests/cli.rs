//! The `tollgate` binary against devstack, configured through `--env-file` as an operator would.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use tollgate_devstack::discord_seed as seed;
use tollgate_devstack::{DevstackConfig, RunningDevstack};

struct Cli {
    devstack: RunningDevstack,
    env_file: PathBuf,
}

impl Drop for Cli {
    /// The env files go with the test (the directory holds nothing else).
    fn drop(&mut self) {
        if let Some(dir) = self.env_file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn cli() -> Cli {
    let devstack = tollgate_devstack::start(DevstackConfig::for_tests()).await.unwrap();
    let dir = std::env::temp_dir().join(format!(
        "tollgate-cli-{}-{}",
        std::process::id(),
        devstack.appwrite_base_url().rsplit(':').next().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let env_file = dir.join("dev.env");
    let lines = [
        format!("APPWRITE_ENDPOINT={}", devstack.appwrite_endpoint()),
        format!("APPWRITE_PROJECT_ID={}", devstack.project_id()),
        format!("APPWRITE_API_KEY={}", devstack.api_key()),
        format!("DISCORD_API_BASE={}", devstack.discord_api_base()),
        format!("DISCORD_BOT_TOKEN={}", seed::BOT_TOKEN),
        format!("CUSTOMER_GUILD_ID={}", seed::GUILD_ID),
        "SELLAPP_WEBHOOK_SECRET=cli-test-secret".to_owned(),
        "DISCORD_REDIRECT_URI=http://127.0.0.1:8788/discord/callback".to_owned(),
    ];
    std::fs::write(&env_file, lines.join("\n")).unwrap();
    Cli { devstack, env_file }
}

impl Cli {
    async fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command.arg("--env-file").arg(&self.env_file).args(args).stdin(Stdio::null());
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }

    /// Runs with some settings overridden (later lines of the env file win).
    async fn run_with(&self, overrides: &[&str], args: &[&str]) -> Output {
        let file = self.env_file.with_extension(format!("env.{}", overrides.len()));
        let mut text = std::fs::read_to_string(&self.env_file).unwrap();
        for line in overrides {
            text.push('\n');
            text.push_str(line);
        }
        std::fs::write(&file, text).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command.arg("--env-file").arg(&file).args(args).stdin(Stdio::null());
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(output.status.success(), "tollgate {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all).await).expect("--json prints JSON")
    }

    async fn create_user(&self, id: &str, email: &str) {
        let response = reqwest::Client::new()
            .post(format!("{}/users", self.devstack.appwrite_endpoint()))
            .header("X-Appwrite-Project", self.devstack.project_id())
            .header("X-Appwrite-Key", self.devstack.api_key())
            .json(&json!({"userId": id, "email": email}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// The account proves its email (Appwrite's server-side `PATCH /users/{id}/verification`).
    async fn verify_email(&self, id: &str) {
        let response = reqwest::Client::new()
            .patch(format!("{}/users/{id}/verification", self.devstack.appwrite_endpoint()))
            .header("X-Appwrite-Project", self.devstack.project_id())
            .header("X-Appwrite-Key", self.devstack.api_key())
            .json(&json!({"emailVerification": true}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    async fn appwrite(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}/databases/crypto/collections/{path}", self.devstack.appwrite_endpoint()))
            .header("X-Appwrite-Project", self.devstack.project_id())
            .header("X-Appwrite-Key", self.devstack.api_key());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    async fn discord(&self, method: reqwest::Method, path: &str) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.devstack.discord_base_url()))
            .header("Authorization", format!("Bot {}", seed::BOT_TOKEN))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_has_help() {
    let cli = cli().await;
    for args in [
        vec!["--help"],
        vec!["bootstrap", "--help"],
        vec!["upsert-subscription", "--help"],
        vec!["grant", "--help"],
        vec!["revoke", "--help"],
        vec!["lookup", "--help"],
        vec!["failures", "list", "--help"],
        vec!["failures", "replay", "--help"],
        vec!["sync", "--help"],
        vec!["plans", "list", "--help"],
        vec!["plans", "set", "--help"],
        vec!["doctor", "--help"],
    ] {
        assert!(cli.ok(&args).await.contains("Usage"), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_twice_changes_nothing_the_second_time() {
    let cli = cli().await;
    let planned = cli.json(&["bootstrap", "--dry-run"]).await;
    let planned = planned["wouldCreate"].as_array().unwrap().len();
    let first = cli.json(&["bootstrap"]).await;
    assert_eq!(
        first["created"].as_array().unwrap().len(),
        planned,
        "the dry run listed exactly what bootstrap created"
    );
    assert_eq!(cli.json(&["bootstrap", "--dry-run"]).await["wouldCreate"], json!([]));
    assert!(first["created"].as_array().unwrap().len() > 50);
    let second = cli.json(&["bootstrap"]).await;
    assert_eq!(second["created"], json!([]));
    assert!(cli.ok(&["bootstrap"]).await.contains("0 created"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_before_the_account_exists_is_applied_once_it_does_and_lookup_shows_it() {
    let cli = cli().await;
    cli.ok(&["bootstrap"]).await;
    let granted =
        cli.json(&["grant", "--email", "Early@Example.com", "--plan", "vip", "--until", "2099-01-01T00:00:00Z"]).await;
    assert_eq!(granted["outcome"], "pending");
    cli.create_user("early", "early@example.com").await;
    let report = cli.json(&["lookup", "--email", "early@example.com"]).await;
    assert_eq!(report["hasAccess"], false, "not before the account has verified the email");
    assert_eq!(report["pendingEntitlements"][0]["source"], "admin:early@example.com:vip");
    cli.verify_email("early").await;
    let report = cli.json(&["lookup", "--email", "early@example.com"]).await;
    assert_eq!(
        (report["hasAccess"].as_bool(), report["plan"].as_str(), report["paidMembership"].as_bool()),
        (Some(true), Some("vip"), Some(true))
    );
    assert!(cli.ok(&["lookup", "--id", "early"]).await.contains("hasAccess: true"));

    let output = cli.run(&["revoke", "--email", "early@example.com"]).await;
    assert!(!output.status.success(), "a destructive command without --yes and no terminal refuses");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--yes"));
    cli.ok(&["revoke", "--email", "early@example.com", "--yes"]).await;
    let report = cli.json(&["lookup", "--email", "early@example.com"]).await;
    assert_eq!(report["hasAccess"], false);
    assert_eq!(report["entitlements"][0]["revokeReason"], "admin");
    let upserted = cli.json(&["upsert-subscription", "--email", "early@example.com", "--plan", "member"]).await;
    assert_eq!((upserted["outcome"].as_str(), upserted["plan"].as_str()), (Some("applied"), Some("member")));
    let report = cli.json(&["lookup", "--email", "early@example.com"]).await;
    assert_eq!((report["hasAccess"].as_bool(), report["plan"].as_str()), (Some(true), Some("member")));
    let revoked =
        cli.json(&["revoke", "--email", "early@example.com", "--source", "admin:early@example.com:vip", "--yes"]).await;
    assert_eq!(revoked["alreadyRevoked"], json!(["admin:early@example.com:vip"]), "revoking twice is idempotent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_are_set_and_listed_and_sync_all_fixes_drift_and_reports_counts() {
    let cli = cli().await;
    cli.ok(&["bootstrap"]).await;
    let roles = format!("{},{}", seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID);
    cli.ok(&["plans", "set", "member", "--roles", &roles]).await;
    let plans = cli.json(&["plans", "list"]).await;
    assert_eq!(plans["plans"][0]["roleIds"].as_array().unwrap().len(), 2);
    for id in 5_000..5_010u64 {
        cli.discord(reqwest::Method::PUT, &format!("/_devstack/guilds/{}/members/{id}", seed::GUILD_ID)).await;
    }
    for id in 5_000..5_004u64 {
        cli.discord(
            reqwest::Method::PUT,
            &format!("/api/v10/guilds/{}/members/{id}/roles/{}", seed::GUILD_ID, seed::VIP_ROLE_ID),
        )
        .await;
    }
    let report = cli.json(&["sync", "--all"]).await;
    assert_eq!((report["membersChecked"].as_u64(), report["roleChanges"].as_u64()), (Some(11), Some(4)));
    let again = cli.json(&["sync", "--all"]).await;
    assert_eq!(again["roleChanges"], 0, "nothing left to fix");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_listed_and_replayed() {
    let cli = cli().await;
    cli.ok(&["bootstrap"]).await;
    let listed = cli.json(&["failures", "list", "--state", "due"]).await;
    assert_eq!(listed["total"], 0);
    assert!(cli.ok(&["failures", "list"]).await.contains("0 failure(s)"));
    let missing = cli.run(&["failures", "replay", "nonexistent-failure"]).await;
    assert!(!missing.status.success());
    let message = String::from_utf8_lossy(&missing.stderr);
    assert!(message.starts_with("error:") && message.lines().count() == 1, "one clear line: {message}");
    let all = cli.json(&["failures", "replay", "--all-due", "--yes"]).await;
    assert_eq!(all["settled"], 0);
}

fn failed_checks(output: &Output) -> Vec<String> {
    let report: Value = serde_json::from_slice(&output.stdout).expect("doctor --json prints JSON");
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_the_seeded_devstack_and_names_each_misconfiguration() {
    let cli = cli().await;
    let missing_schema = cli.run(&["doctor", "--json"]).await;
    assert!(!missing_schema.status.success());
    assert!(failed_checks(&missing_schema).contains(&"schema".to_owned()), "missing collections are reported");

    cli.ok(&["bootstrap"]).await;
    let roles = format!("{},{}", seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID);
    cli.ok(&["plans", "set", "member", "--roles", &roles]).await;
    let healthy = cli.run(&["doctor"]).await;
    let text = String::from_utf8_lossy(&healthy.stdout);
    assert!(healthy.status.success(), "doctor fails on the seeded devstack:\n{text}");
    assert!(text.contains("all checks passed"));

    let cases: [(&[&str], &str, &[&str]); 5] = [
        (&["DISCORD_BOT_TOKEN=not-the-token"], "bot token", &[]),
        (&["APPWRITE_API_KEY=wrong-key"], "appwrite", &[]),
        (&["CUSTOMER_GUILD_ID=1234567890"], "bot in guild", &[]),
        (&["APPWRITE_PROFILES_COLLECTION_ID=no_such_collection"], "schema", &[]),
        (&[], "role order", &["plans", "set", "member", "--roles", seed::ABOVE_BOT_ROLE_ID]),
    ];
    for (overrides, check, setup) in cases {
        if !setup.is_empty() {
            cli.ok(setup).await;
        }
        let output = cli.run_with(overrides, &["doctor", "--json"]).await;
        assert_eq!(output.status.code(), Some(1), "{check}");
        let failed = failed_checks(&output);
        assert!(failed.contains(&check.to_owned()), "{check} should fail, failed: {failed:?}");
        let human = String::from_utf8_lossy(&cli.run_with(overrides, &["doctor"]).await.stdout).into_owned();
        assert!(human.contains("fix:"), "each failure says how to fix it:\n{human}");
    }
    cli.ok(&["plans", "set", "member", "--roles", "999999"]).await;
    assert!(failed_checks(&cli.run(&["doctor", "--json"]).await).contains(&"mapped roles exist".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_set_updates_in_place_a_mapping_the_replaced_deployment_created_under_its_own_id() {
    let cli = cli().await;
    cli.ok(&["bootstrap"]).await;
    let legacy =
        json!({"plan": "member", "guildId": seed::GUILD_ID, "roleIdsJson": format!("[\"{}\"]", seed::VIP_ROLE_ID)});
    cli.appwrite(
        reqwest::Method::POST,
        "discord_role_mappings/documents",
        Some(json!({"documentId": "65f0c1a2b3d4e5f60718", "data": legacy})),
    )
    .await;
    cli.ok(&["plans", "set", "member", "--roles", &format!("{},{}", seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID)]).await;
    let listed = cli.appwrite(reqwest::Method::GET, "discord_role_mappings/documents", None).await;
    let documents = listed["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 1, "updated, not duplicated: {listed}");
    assert_eq!(documents[0]["$id"], "65f0c1a2b3d4e5f60718");
    assert_eq!(cli.json(&["plans", "list"]).await["plans"][0]["roleIds"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_set_edits_products_duration_and_tier_and_leaves_what_it_is_not_given() {
    let cli = cli().await;
    cli.ok(&["bootstrap"]).await;
    cli.ok(&["plans", "set", "pro", "--roles", seed::VIP_ROLE_ID]).await;
    let args = ["plans", "set", "pro", "--sellapp-product", "55", "--sellapp-product", "56", "--sellapp-variant", "9"];
    cli.ok(&args).await;
    cli.ok(&["plans", "set", "pro", "--stripe-price", "price_pro_month", "--stripe-price", "price_pro_year"]).await;
    cli.ok(&["plans", "set", "pro", "--duration", "30d", "--group", "main", "--rank", "2"]).await;
    let pro = cli.json(&["plans", "list"]).await["plans"][0].clone();
    assert_eq!(pro["roleIds"], json!([seed::VIP_ROLE_ID]), "roles kept: {pro}");
    assert_eq!((pro["sellappProducts"].clone(), pro["sellappVariants"].clone()), (json!(["55", "56"]), json!(["9"])));
    assert_eq!(pro["stripePrices"], json!(["price_pro_month", "price_pro_year"]), "{pro}");
    assert_eq!(
        (pro["duration"].as_str(), pro["group"].as_str(), pro["rank"].as_i64()),
        (Some("30d"), Some("main"), Some(2))
    );
    let text = cli.ok(&["plans", "list"]).await;
    assert!(
        text.contains("sellapp products 55,56")
            && text.contains("stripe prices price_pro_month,price_pro_year")
            && text.contains("lasts 30d")
            && text.contains("tier main#2"),
        "{text}"
    );

    cli.ok(&["plans", "set", "pro", "--duration", "none", "--group", "none", "--rank", "0", "--sellapp-product", ""])
        .await;
    cli.ok(&["plans", "set", "pro", "--stripe-price", ""]).await;
    let cleared = cli.json(&["plans", "list"]).await["plans"][0].clone();
    assert_eq!((cleared["duration"].clone(), cleared["group"].clone()), (Value::Null, Value::Null));
    assert_eq!((cleared["sellappProducts"].clone(), cleared["stripePrices"].clone()), (json!([]), json!([])));
    for bad in [
        &["plans", "set", "pro", "--duration", "soon"][..],
        &["plans", "set", "pro"],
        &["plans", "set", "pro", "--group", "x"],
    ] {
        assert!(!cli.run(bad).await.status.success(), "{bad:?} is refused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_all_checks_the_members_before_the_crons_cursor_and_leaves_that_cursor_alone() {
    let cli = cli().await;
    cli.ok(&["bootstrap"]).await;
    cli.ok(&["plans", "set", "member", "--roles", &format!("{},{}", seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID)]).await;
    let members: Vec<String> = (1..=6u64).map(|n| (1_200_000_000_000_000_000u64 + n).to_string()).collect();
    for id in &members {
        cli.discord(reqwest::Method::PUT, &format!("/_devstack/guilds/{}/members/{id}", seed::GUILD_ID)).await;
        cli.discord(
            reqwest::Method::PUT,
            &format!("/api/v10/guilds/{}/members/{id}/roles/{}", seed::GUILD_ID, seed::VIP_ROLE_ID),
        )
        .await;
    }
    // The cron stopped half-way through its pass.
    let state_id = format!("guild-{}", seed::GUILD_ID);
    let cron_state = json!({"cursor": members[3], "updatedAt": "2026-03-01T12:00:00.000+00:00"});
    cli.appwrite(
        reqwest::Method::POST,
        "sync_state/documents",
        Some(json!({"documentId": state_id, "data": cron_state})),
    )
    .await;
    let report = cli.json(&["sync", "--all"]).await;
    assert_eq!(report["roleChanges"], 6, "every drifted member, those before the cron's cursor too: {report}");
    let state = cli.appwrite(reqwest::Method::GET, &format!("sync_state/documents/{state_id}"), None).await;
    assert_eq!(state["cursor"].as_str(), Some(members[3].as_str()), "the cron's cursor is the cron's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_and_sync_all_report_a_role_mapping_that_cannot_be_read() {
    let cli = cli().await;
    cli.ok(&["bootstrap"]).await;
    cli.ok(&["plans", "set", "member", "--roles", &format!("{},{}", seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID)]).await;
    let broken = json!({"plan": "legacy", "guildId": seed::GUILD_ID, "roleIdsJson": "member,vip"});
    cli.appwrite(
        reqwest::Method::POST,
        "discord_role_mappings/documents",
        Some(json!({"documentId": "broken-mapping", "data": broken})),
    )
    .await;
    let output = cli.run(&["doctor", "--json"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(failed_checks(&output).contains(&"role mappings readable".to_owned()));
    let sync = cli.run(&["sync", "--all", "--json"]).await;
    assert_eq!(sync.status.code(), Some(2), "reported as incomplete");
    let report: Value = serde_json::from_slice(&sync.stdout).unwrap();
    assert!(report["unreadableMappings"][0].as_str().unwrap().starts_with("broken-mapping:"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_all_waits_out_a_rate_limit_and_resumes_its_walk_where_it_paused() {
    let cli = cli().await;
    cli.ok(&["bootstrap"]).await;
    cli.ok(&["plans", "set", "member", "--roles", &format!("{},{}", seed::MEMBER_ROLE_ID, seed::VIP_ROLE_ID)]).await;
    for n in 1..=6u64 {
        let id = 1_200_000_000_000_000_000u64 + n;
        cli.discord(reqwest::Method::PUT, &format!("/_devstack/guilds/{}/members/{id}", seed::GUILD_ID)).await;
        cli.discord(
            reqwest::Method::PUT,
            &format!("/api/v10/guilds/{}/members/{id}/roles/{}", seed::GUILD_ID, seed::VIP_ROLE_ID),
        )
        .await;
    }
    let limited = reqwest::Client::new()
        .post(format!("{}/_devstack/rate-limit", cli.devstack.discord_base_url()))
        .json(&json!({"limit": 2, "window_ms": 1_500}))
        .send()
        .await
        .unwrap();
    assert!(limited.status().is_success());
    let report = cli.json(&["sync", "--all"]).await;
    assert_eq!(report["stopped"], Value::Null, "{report}");
    assert_eq!((report["membersChecked"].as_u64(), report["roleChanges"].as_u64()), (Some(7), Some(6)), "{report}");
    let calls: Value = reqwest::get(format!("{}/_devstack/calls", cli.devstack.discord_base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lists = calls["GET /api/v10/guilds/{guild_id}/members"].as_u64().unwrap_or(0);
    assert!(lists >= 3, "paused twice and resumed after the last member dealt with: {calls}");
}

fn check(output: &Output, name: &str) -> Value {
    let report: Value = serde_json::from_slice(&output.stdout).expect("doctor --json prints JSON");
    report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_stripe_key_and_the_webhook_endpoint_and_skips_stripe_without_a_key() {
    let cli = cli().await;
    let skipped = cli.run(&["doctor", "--json"]).await;
    let key_check = check(&skipped, "stripe api key");
    assert_eq!(key_check["passed"], true);
    assert!(key_check["detail"].as_str().unwrap().contains("skipped"), "{key_check}");
    assert_eq!(check(&skipped, "stripe webhook endpoint"), Value::Null, "nothing else about Stripe without a key");

    let base = cli.devstack.stripe_base_url();
    let key = cli.devstack.stripe_secret_key().to_owned();
    let with_key = [format!("STRIPE_API_KEY={key}"), format!("STRIPE_API_BASE={base}")];
    let with_key: Vec<&str> = with_key.iter().map(String::as_str).collect();
    let stripe = |path: &str, params: &[(&str, &str)]| {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        reqwest::Client::new()
            .post(format!("{base}{path}"))
            .bearer_auth(&key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let cli = &cli;
    let doctor = |overrides: Vec<&'static str>| {
        let mut all: Vec<&str> = with_key.clone();
        all.extend(overrides);
        async move { cli.run_with(&all, &["doctor", "--json"]).await }
    };

    let none = doctor(vec![]).await;
    assert_eq!(check(&none, "stripe api key")["passed"], true, "{}", check(&none, "stripe api key"));
    let endpoint = check(&none, "stripe webhook endpoint");
    assert_eq!(endpoint["passed"], false);
    assert!(endpoint["detail"].as_str().unwrap().contains("no webhook endpoint"), "{endpoint}");

    let other =
        stripe("/v1/webhook_endpoints", &[("url", "https://elsewhere.example.com/hook"), ("enabled_events[]", "*")]);
    assert!(other.await.unwrap().status().is_success());
    let ours = stripe(
        "/v1/webhook_endpoints",
        &[("url", "https://webhooks.example.com/stripe/webhook"), ("enabled_events[]", "invoice.paid")],
    );
    let ours: Value = ours.await.unwrap().json().await.unwrap();
    let partial = check(&doctor(vec![]).await, "stripe webhook endpoint");
    assert_eq!(partial["passed"], false);
    assert!(
        partial["detail"].as_str().unwrap().contains("checkout.session.completed"),
        "names what is missing: {partial}"
    );
    assert!(!partial["detail"].as_str().unwrap().contains("invoice.paid,"), "{partial}");

    let id = ours["id"].as_str().unwrap();
    let path = format!("/v1/webhook_endpoints/{id}");
    assert!(stripe(&path, &[("enabled_events[]", "*")]).await.unwrap().status().is_success());
    assert_eq!(check(&doctor(vec![]).await, "stripe webhook endpoint")["passed"], true);
    assert!(stripe(&path, &[("disabled", "true")]).await.unwrap().status().is_success());
    let disabled = check(&doctor(vec![]).await, "stripe webhook endpoint");
    assert!(disabled["passed"] == false && disabled["detail"].as_str().unwrap().contains("disabled"), "{disabled}");

    let refused = doctor(vec!["STRIPE_API_KEY=sk_test_not_this_one_1234"]).await;
    let refused = check(&refused, "stripe api key");
    assert_eq!(refused["passed"], false);
    assert!(!refused.to_string().contains("not_this_one"), "the key never shows: {refused}");
}

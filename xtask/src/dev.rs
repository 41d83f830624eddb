//! `cargo xtask dev`: the whole system on this machine, on its embedded defaults.
//!
//! Builds every worker it starts (incrementally: cargo's own, plus packaging skipped when the wasm did not
//! change), so it never serves a stale build. Then devstack (Appwrite, Discord, Sell.app and Stripe stand-ins,
//! 8790–8793), the schema bootstrapped, a demo user and plan mapping seeded, the Stripe stand-in given the
//! webhook worker as its webhook endpoint and a demo product "Member" with a monthly price, every setting written to `.tollgate/dev.env`
//! (with the `--set NAME=VALUE` overrides, checked before anything starts), and the three workers in
//! `wrangler dev` (8787, 8788, 8789) reading that file. Ports come from environment variables. Ctrl-C or
//! SIGTERM stops everything.

use anyhow::{bail, Context, Result};
use std::time::Duration;
use tollgate_app::bootstrap::bootstrap;
use tollgate_app::settings::{appwrite_config, Settings};
use tollgate_appwrite::AppwriteClient;
use tollgate_core::Email;
use xtask::dev_env::{generate_secret, parse_override, DevEnv, LocalSystem};
use xtask::paths::{state_dir, API_WORKER, ROLE_SYNC_WORKER, WEBHOOK_WORKER, WORKERS};
use xtask::TokioPause;

pub const DEFAULT_WEBHOOK_PORT: u16 = 8787;
pub const DEFAULT_ROLE_SYNC_PORT: u16 = 8789;
pub const DEFAULT_API_PORT: u16 = 8788;
/// The demo plan and the seeded roles it grants.
pub const DEMO_PLAN: &str = "member";
pub const DEMO_USER_ID: &str = "demo-user";
pub const DEMO_USER_EMAIL: &str = "demo@example.com";
/// The demo admin (a member of the admins team), for the console at `/admin`.
pub const DEMO_ADMIN_ID: &str = "demo-admin";
pub const DEMO_ADMIN_EMAIL: &str = "admin@example.com";
/// The password of both demo accounts (local only).
pub const DEMO_PASSWORD: &str = "demo-password";

pub const HELP: &str = "\
usage: cargo xtask dev [--fresh] [--set NAME=VALUE]...

Installs what is missing, builds every worker (incrementally), and runs the whole system locally:
devstack (Appwrite, Discord, Sell.app and Stripe stand-ins) and the webhook, api and role-sync workers in wrangler dev.
Every setting is written to .tollgate/dev.env, which the workers read.

options:
  --fresh             start from empty local state (removes .tollgate/ first)
  --set NAME=VALUE    override a setting in .tollgate/dev.env (repeatable), e.g. --set ACCESS_GRACE_HOURS=0;
                      NAME must be a known setting and VALUE must pass the workers' own check, or nothing starts
  -h, --help          this help

ports (environment): DEVSTACK_APPWRITE_PORT (8790), DEVSTACK_DISCORD_PORT (8791), DEVSTACK_SELLAPP_PORT (8792),
DEVSTACK_STRIPE_PORT (8793), TOLLGATE_WEBHOOK_PORT (8787),
TOLLGATE_API_PORT (8788), TOLLGATE_ROLE_SYNC_PORT (8789); TOLLGATE_STATE_DIR moves .tollgate/.
";

pub fn run(args: &[&str]) -> Result<()> {
    let mut fresh = false;
    let mut overrides = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--fresh" => fresh = true,
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(());
            }
            "--set" => {
                let Some(setting) = args.next() else { bail!("--set needs NAME=VALUE") };
                overrides.push(parse_override(setting)?);
            }
            other => match other.strip_prefix("--set=") {
                Some(setting) => overrides.push(parse_override(setting)?),
                None => bail!("unknown option `{other}` for `cargo xtask dev`\n\n{HELP}"),
            },
        }
    }
    xtask::toolchain::ensure_all()?;
    xtask::build::build_workers(WORKERS)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(serve(fresh, &overrides))
}

fn port_from_env(name: &str, default: u16) -> Result<u16> {
    match std::env::var(name) {
        Ok(value) => value.parse().with_context(|| format!("{name} must be a port number, got `{value}`")),
        Err(_) => Ok(default),
    }
}

async fn serve(fresh: bool, overrides: &[(String, String)]) -> Result<()> {
    // Handlers first: a signal that arrives while the system is starting must still stop what started.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let state = state_dir();
    if fresh && state.exists() {
        std::fs::remove_dir_all(&state).context("removing .tollgate for --fresh")?;
    }
    std::fs::create_dir_all(&state)?;
    let appwrite_port = port_from_env("DEVSTACK_APPWRITE_PORT", tollgate_devstack::DEFAULT_APPWRITE_PORT)?;
    let discord_port = port_from_env("DEVSTACK_DISCORD_PORT", tollgate_devstack::DEFAULT_DISCORD_PORT)?;
    let sellapp_port = port_from_env("DEVSTACK_SELLAPP_PORT", tollgate_devstack::DEFAULT_SELLAPP_PORT)?;
    let stripe_port = port_from_env("DEVSTACK_STRIPE_PORT", tollgate_devstack::DEFAULT_STRIPE_PORT)?;
    let webhook_port = port_from_env("TOLLGATE_WEBHOOK_PORT", DEFAULT_WEBHOOK_PORT)?;
    let role_sync_port = port_from_env("TOLLGATE_ROLE_SYNC_PORT", DEFAULT_ROLE_SYNC_PORT)?;
    let api_port = port_from_env("TOLLGATE_API_PORT", DEFAULT_API_PORT)?;

    let mut devstack_config = tollgate_devstack::DevstackConfig::for_tests();
    devstack_config.appwrite_addr = ([127, 0, 0, 1], appwrite_port).into();
    devstack_config.discord_addr = ([127, 0, 0, 1], discord_port).into();
    devstack_config.sellapp_addr = ([127, 0, 0, 1], sellapp_port).into();
    devstack_config.stripe_addr = ([127, 0, 0, 1], stripe_port).into();
    devstack_config.data_dir = Some(state.join("devstack"));
    let devstack = tollgate_devstack::start(devstack_config).await.context("starting devstack")?;

    let env_path = state.join("dev.env");
    let previous = DevEnv::read(&env_path).ok();
    let kept = |key: &str| -> Result<String> {
        match previous.as_ref().and_then(|e| e.get(key)).filter(|v| !v.is_empty()) {
            Some(existing) => Ok(existing.to_owned()),
            None => generate_secret(),
        }
    };
    let secret = kept("SELLAPP_WEBHOOK_SECRET")?;
    let role_sync_token = kept("ROLE_SYNC_TOKEN")?;
    let admin_token = kept("ADMIN_TOKEN")?;
    let api_url = format!("http://127.0.0.1:{api_port}");
    let webhook_url = format!("http://127.0.0.1:{webhook_port}");
    let role_sync_url = format!("http://127.0.0.1:{role_sync_port}");
    let stripe =
        xtask::stripe_seed::seed(&devstack.stripe_base_url(), devstack.stripe_secret_key(), &webhook_url, DEMO_PLAN)
            .await
            .context("seeding the Stripe stand-in")?;
    eprintln!("xtask dev: Stripe stand-in seeded (webhook endpoint {}, price {})", stripe.endpoint_id, stripe.price_id);
    let mut env = DevEnv::for_local(&LocalSystem {
        appwrite_endpoint: &devstack.appwrite_endpoint(),
        project_id: devstack.project_id(),
        api_key: devstack.api_key(),
        sellapp_webhook_secret: &secret,
        webhook_url: &webhook_url,
        role_sync_url: &role_sync_url,
        role_sync_token: &role_sync_token,
        api_url: &api_url,
        admin_token: &admin_token,
        devstack_appwrite_url: &devstack.appwrite_base_url(),
        devstack_discord_url: &devstack.discord_base_url(),
        devstack_sellapp_url: &devstack.sellapp_base_url(),
        devstack_stripe_url: &devstack.stripe_base_url(),
        stripe_api_key: devstack.stripe_secret_key(),
        stripe_webhook_secret: &stripe.webhook_secret,
        demo_stripe_price_id: &stripe.price_id,
    });
    for (name, value) in overrides {
        // Only the name: the value may be a secret.
        eprintln!("xtask dev: {name} set by --set");
        env.set(name, value);
    }
    env.write(&env_path)?;

    let lookup = |key: &str| env.get(key).map(str::to_owned);
    let settings = Settings::from_lookup(lookup).context("settings in dev.env")?;
    let client = AppwriteClient::new(appwrite_config(lookup)?)?;
    let report = bootstrap(&client, &settings, &TokioPause).await.context("bootstrapping the Appwrite schema")?;
    eprintln!("xtask dev: schema ready ({} created, {} already there)", report.created.len(), report.found.len());
    seed_demo_user(&client, &settings).await?;
    seed_demo_mapping(&client, &settings, &stripe.price_id).await?;

    let mut workers = Vec::new();
    for (worker, port) in [(WEBHOOK_WORKER, webhook_port), (ROLE_SYNC_WORKER, role_sync_port), (API_WORKER, api_port)] {
        workers.push(
            xtask::wrangler::start(xtask::wrangler::WorkerLaunch {
                worker,
                port,
                env_file: &env_path,
                state_dir: &state.join("wrangler").join(worker.name),
            })
            .await?,
        );
    }
    let worker = &workers[0];

    print_try_it(&env, &devstack.appwrite_base_url(), worker.url());
    eprintln!("xtask dev: Discord stand-in at {}", devstack.discord_api_base());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => eprintln!("\nxtask dev: stopping"),
        _ = terminate.recv() => eprintln!("xtask dev: terminated, stopping"),
        _ = watch(&mut workers) => eprintln!("xtask dev: a worker exited; see the logs under {}", state.join("wrangler").display()),
    }
    for worker in &mut workers {
        worker.stop();
    }
    devstack.shutdown().await;
    Ok(())
}

async fn watch(workers: &mut [xtask::wrangler::RunningWorker]) {
    while !workers.iter_mut().any(|w| w.has_exited()) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The demo plan: the seeded Member and VIP roles, sold by the Stripe stand-in's demo price.
async fn seed_demo_mapping(client: &AppwriteClient, settings: &Settings, stripe_price: &str) -> Result<()> {
    use tollgate_core::{GuildId, RoleId};
    use tollgate_devstack::discord_seed as seed;
    let app = tollgate_app::App::new(client, settings, &tollgate_core::SystemClock);
    let roles = [RoleId::parse(seed::MEMBER_ROLE_ID)?, RoleId::parse(seed::VIP_ROLE_ID)?];
    let update = tollgate_app::role_sync::PlanUpdate {
        roles: Some(roles.to_vec()),
        stripe_prices: Some(vec![stripe_price.to_owned()]),
        ..Default::default()
    };
    app.set_plan(DEMO_PLAN, GuildId::parse(seed::GUILD_ID)?, &update).await?;
    Ok(())
}

async fn seed_demo_user(client: &AppwriteClient, settings: &Settings) -> Result<()> {
    let email = Email::parse(DEMO_USER_EMAIL)?;
    if client.find_user_by_email(&email).await?.is_none() {
        client.create_user(DEMO_USER_ID, &email, Some(DEMO_PASSWORD), Some("Demo Buyer")).await?;
    }
    let admin = Email::parse(DEMO_ADMIN_EMAIL)?;
    if client.find_user_by_email(&admin).await?.is_none() {
        client.create_user(DEMO_ADMIN_ID, &admin, Some(DEMO_PASSWORD), Some("Demo Admin")).await?;
    }
    let admin_id = tollgate_core::AppwriteId::parse(DEMO_ADMIN_ID)?;
    client.ensure_membership(&settings.admin_team_id, &admin_id, &["owner"]).await?;
    // The demo buyer has proven their email: purchases made with it are theirs (an unverified account
    // would see them wait, see docs/plans/2026-12-01-entitlement-ledger.md).
    client.update_email_verification(&tollgate_core::AppwriteId::parse(DEMO_USER_ID)?, true).await?;
    Ok(())
}

fn print_try_it(env: &DevEnv, devstack_url: &str, webhook_url: &str) {
    let db = env.get("APPWRITE_DATABASE_ID").unwrap_or("crypto");
    let state = state_dir().display().to_string();
    let discord_url = env.get("DEVSTACK_DISCORD_URL").unwrap_or_default();
    let role_sync_url = env.get("ROLE_SYNC_URL").unwrap_or_default();
    let api_url = env.get("API_URL").unwrap_or_default();
    let guild = env.get("CUSTOMER_GUILD_ID").unwrap_or_default();
    let stripe_url = env.get("STRIPE_API_BASE").unwrap_or_default();
    println!(
        r#"
Tollgate is running locally.
  webhook worker   {webhook_url}          (GET /health, POST /sell/webhook)
  role-sync worker {role_sync_url}          (GET /health, POST /sync; cron on GET /__scheduled)
  api worker       {api_url}          (GET /health, /discord/link, /discord/callback, /me/access, /admin/...;
                                                the console worker runs behind it, CONSOLE binding)
  pages            {api_url}/access   (demo@example.com) and {api_url}/admin (admin@example.com), password {DEMO_PASSWORD}
  devstack         {devstack_url}/v1      (Appwrite stand-in; GET /v1/health)
  devstack         {discord_url}/api/v10  (Discord stand-in; demo guild {guild})
  devstack         {stripe_url}/v1        (Stripe stand-in; key in STRIPE_API_KEY, price DEMO_STRIPE_PRICE_ID)
  settings         {state}/dev.env
  logs             {state}/wrangler/webhook/wrangler.log

Try it (in another shell, from the project root):
  set -a; . {state}/dev.env; set +a
  BODY='{{"event":"order.completed","data":{{"id":1001,"customer_information":{{"email":" Demo@Example.com "}}}},"store":1}}'
  SIG=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$SELLAPP_WEBHOOK_SECRET" | sed 's/^.* //')
  curl -s -X POST "$WEBHOOK_URL/sell/webhook" -H "signature: $SIG" -H 'content-type: application/json' --data-binary "$BODY"; echo
  sleep 1   # role-sync projects the purchase (subscription, paid membership) right after the answer
  curl -s "$APPWRITE_ENDPOINT/databases/{db}/collections/subscriptions/documents/{DEMO_USER_ID}" \
    -H "X-Appwrite-Project: $APPWRITE_PROJECT_ID" -H "X-Appwrite-Key: $APPWRITE_API_KEY"; echo
  curl -s "$APPWRITE_ENDPOINT/users/{DEMO_USER_ID}/memberships" \
    -H "X-Appwrite-Project: $APPWRITE_PROJECT_ID" -H "X-Appwrite-Key: $APPWRITE_API_KEY"; echo

Link the demo user's Discord account (as devstack's test user alice), then look at the result:
  JWT=$(curl -s -X POST "$APPWRITE_ENDPOINT/users/{DEMO_USER_ID}/jwts" -H "X-Appwrite-Project: $APPWRITE_PROJECT_ID" \
    -H "X-Appwrite-Key: $APPWRITE_API_KEY" -H 'content-type: application/json' -d '{{}}' | sed 's/.*"jwt":"\([^"]*\)".*/\1/')
  URL=$(curl -s -c .tollgate/link.cookies -X POST "$API_URL/discord/link" -H "Authorization: Bearer $JWT" | sed 's/.*"url":"\([^"]*\)".*/\1/')
  CALLBACK=$(curl -s -o /dev/null -w '%{{redirect_url}}' "$URL&test_user=1100000000000000100")
  curl -s -b .tollgate/link.cookies -o /dev/null -w '%{{redirect_url}}\n' "$CALLBACK"
  curl -s "$API_URL/me/access" -H "Authorization: Bearer $JWT"; echo
  curl -s "$API_URL/admin/users?email=demo@example.com" -H "Authorization: Bearer $ADMIN_TOKEN"; echo

Buy with Stripe (the stand-in's hosted checkout page; its events go to $WEBHOOK_URL/stripe/webhook):
  URL=$(curl -s "$STRIPE_API_BASE/v1/checkout/sessions" -u "$STRIPE_API_KEY:" -d mode=subscription \
    -d "line_items[0][price]=$DEMO_STRIPE_PRICE_ID" -d "line_items[0][quantity]=1" -d client_reference_id={DEMO_USER_ID} \
    -d customer_email={DEMO_USER_EMAIL} -d success_url=http://127.0.0.1:3000/ | sed 's/.*"url":"\([^"]*\)".*/\1/')
  curl -s -o /dev/null -w '%{{redirect_url}}\n' -X POST "$URL" -d email={DEMO_USER_EMAIL} -d card=pm_card_visa
  curl -s "$STRIPE_API_BASE/_devstack/stripe/deliveries"; echo

Press Ctrl-C to stop everything.
"#
    );
}

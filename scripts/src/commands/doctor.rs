//! `tollgate doctor`: everything that makes paid roles fail, checked before a customer notices. Each
//! check prints pass/fail and, when it fails, the fix. The exit code is non-zero when any check fails.

use crate::config::{Config, SystemClock};
use crate::output::print;
use anyhow::Result;
use serde_json::json;
use std::collections::BTreeSet;
use tollgate_app::role_sync::RoleSync;
use tollgate_app::schema::collections;
use tollgate_app::settings::stripe_config;
use tollgate_app::App;
use tollgate_appwrite::Query;
use tollgate_core::{GuildId, RoleId};
use tollgate_discord::{DiscordError, Role};
use tollgate_providers::stripe_payload::HANDLED_EVENTS;
use tollgate_stripe::StripeApi;

const MANAGE_ROLES: u64 = 1 << 28;
const CREATE_INSTANT_INVITE: u64 = 1;
const ADMINISTRATOR: u64 = 1 << 3;

struct Check {
    name: &'static str,
    passed: bool,
    /// Passed, but something an admin should act on (does not fail the exit code).
    warning: bool,
    detail: String,
    fix: &'static str,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.0.push(Check { name, passed: true, warning: false, detail: detail.into(), fix: "" });
    }

    fn warn(&mut self, name: &'static str, detail: impl Into<String>, fix: &'static str) {
        self.0.push(Check { name, passed: true, warning: true, detail: detail.into(), fix });
    }

    fn fail(&mut self, name: &'static str, detail: impl Into<String>, fix: &'static str) {
        self.0.push(Check { name, passed: false, warning: false, detail: detail.into(), fix });
    }
}

pub async fn run(config: &Config, json: bool) -> Result<i32> {
    let mut checks = Checks::default();
    let settings = config.settings()?;
    match config.get("SELLAPP_WEBHOOK_SECRET").filter(|s| !s.trim().is_empty()) {
        Some(_) => checks.pass("webhook secret", "SELLAPP_WEBHOOK_SECRET is set"),
        None => checks.fail(
            "webhook secret",
            "SELLAPP_WEBHOOK_SECRET is not set",
            "copy the webhook secret from Sell.app (store settings → Developers) into SELLAPP_WEBHOOK_SECRET",
        ),
    }
    match config.get("SELLAPP_API_KEY").filter(|s| !s.trim().is_empty()) {
        Some(_) => checks.pass("refund reconciliation", "SELLAPP_API_KEY is set: refunded orders lose their access"),
        None => checks.warn(
            "refund reconciliation",
            "SELLAPP_API_KEY is not set: refunds are NOT caught (Sell.app sends no refund event), access stays after a refund",
            "create an API key in Sell.app (store settings → Developers → API) and set SELLAPP_API_KEY on the webhook worker",
        ),
    }
    stripe_checks(config, &mut checks).await;
    let appwrite_ok = appwrite_checks(config, &settings, &mut checks).await;
    discord_checks(config, &settings, appwrite_ok, &mut checks).await;

    let failed = checks.0.iter().filter(|c| !c.passed).count();
    let value = json!({
        "ok": failed == 0,
        "checks": checks.0.iter().map(|c| json!({ "name": c.name, "passed": c.passed, "warning": c.warning, "detail": c.detail, "fix": (!c.passed || c.warning).then_some(c.fix) })).collect::<Vec<_>>(),
    });
    print(json, &value, || {
        let mut lines: Vec<String> = checks
            .0
            .iter()
            .map(|c| {
                if c.warning {
                    format!("warn  {:<24} {}\n      fix: {}", c.name, c.detail, c.fix)
                } else if c.passed {
                    format!("pass  {:<24} {}", c.name, c.detail)
                } else {
                    format!("FAIL  {:<24} {}\n      fix: {}", c.name, c.detail, c.fix)
                }
            })
            .collect();
        lines.push(if failed == 0 { "all checks passed".to_owned() } else { format!("{failed} check(s) failed") });
        lines.join("\n")
    });
    Ok(if failed == 0 { 0 } else { 1 })
}

async fn appwrite_checks(config: &Config, settings: &tollgate_app::settings::Settings, checks: &mut Checks) -> bool {
    let appwrite = match config.appwrite() {
        Ok(client) => client,
        Err(e) => {
            checks.fail("appwrite", e.to_string(), "set APPWRITE_ENDPOINT, APPWRITE_PROJECT_ID and APPWRITE_API_KEY");
            return false;
        }
    };
    match appwrite.list_users(&[Query::limit(1)], None).await {
        Ok(_) => checks.pass("appwrite", "reachable, and the API key may read users"),
        Err(e) if e.status == Some(401) || e.status == Some(403) => {
            checks.fail(
                "appwrite",
                format!("the API key was refused: {e}"),
                "use an API key of this project with the users, databases, documents and teams scopes",
            );
            return false;
        }
        Err(e) => {
            checks.fail(
                "appwrite",
                format!("not reachable: {e}"),
                "check APPWRITE_ENDPOINT (it ends in /v1) and that Appwrite is up",
            );
            return false;
        }
    }
    let mut missing = Vec::new();
    for collection in collections(settings) {
        match appwrite.list_attributes(&settings.database_id, &collection.id).await {
            Ok(attributes) => {
                let available: BTreeSet<String> =
                    attributes.into_iter().filter(|a| a.status == "available").map(|a| a.key).collect();
                missing.extend(
                    collection
                        .attributes
                        .iter()
                        .filter(|a| !available.contains(a.key))
                        .map(|a| format!("{}.{}", collection.id, a.key)),
                );
            }
            Err(_) => missing.push(format!("collection {}", collection.id)),
        }
    }
    if missing.is_empty() {
        checks.pass("schema", "every collection and attribute is there");
    } else {
        checks.fail("schema", format!("missing: {}", missing.join(", ")), "run `tollgate bootstrap`");
    }
    match appwrite.get_team(&settings.paid_team_id).await {
        Ok(_) => checks.pass("paid team", format!("team `{}` exists", settings.paid_team_id)),
        Err(e) => checks.fail(
            "paid team",
            format!("team `{}`: {e}", settings.paid_team_id),
            "run `tollgate bootstrap` (or set APPWRITE_TEAM_PAID_ID)",
        ),
    }
    if missing.is_empty() {
        catalogue_checks(&App::new(&appwrite, settings, &SystemClock), checks).await;
    }
    true
}

/// Recent Sell.app purchases whose product the catalogue does not list by id.
async fn catalogue_checks(app: &App<'_, SystemClock>, checks: &mut Checks) {
    let gaps = match app.catalogue_gaps().await {
        Ok(gaps) => gaps,
        Err(e) => return checks.fail("sellapp products", e.to_string(), "fix the plan or entitlement documents named"),
    };
    let show = |set: &BTreeSet<(String, String)>| {
        set.iter().map(|(p, plan)| format!("{p} → {plan}")).collect::<Vec<_>>().join("; ")
    };
    if !gaps.unmapped.is_empty() {
        checks.warn(
            "sellapp products",
            format!("recent purchases of products no plan lists: {}", show(&gaps.unmapped)),
            "map each product to its plan: `tollgate plans set PLAN --sellapp-product ID` (and --roles)",
        );
    } else if !gaps.by_title.is_empty() {
        checks.warn(
            "sellapp products",
            format!(
                "recent purchases found their plan by product title only (a rename unmaps them): {}",
                show(&gaps.by_title)
            ),
            "add the product ids: `tollgate plans set PLAN --sellapp-product ID`",
        );
    } else {
        checks.pass("sellapp products", format!("{} recent purchase(s), every product mapped by id", gaps.examined));
    }
}

/// The Stripe key works (a cheap authenticated read), and a webhook endpoint for `/stripe/webhook` exists,
/// enabled, with every event the webhook worker handles (or `*`). Skipped with a note without a key.
async fn stripe_checks(config: &Config, checks: &mut Checks) {
    let stripe = match stripe_config(|k| config.get(k)) {
        Ok(Some(config)) => StripeApi::new(config),
        Ok(None) => {
            return checks.pass("stripe api key", "skipped: STRIPE_API_KEY is not set (Stripe is not checked)");
        }
        Err(e) => return checks.fail("stripe api key", e.to_string(), "set STRIPE_API_KEY (sk_…) and STRIPE_API_BASE"),
    };
    let stripe = match stripe {
        Ok(stripe) => stripe,
        Err(e) => return checks.fail("stripe api key", e.to_string(), "set STRIPE_API_BASE to Stripe's API URL"),
    };
    match stripe.check_key().await {
        Ok(()) => checks.pass("stripe api key", "Stripe accepts the key"),
        Err(e) if e.is_refused_key() => return checks.fail(
            "stripe api key",
            format!("Stripe refused the key: {e}"),
            "use a secret key (sk_…) or a restricted key that may read customers, subscriptions and webhook endpoints",
        ),
        Err(e) => {
            return checks.fail("stripe api key", format!("Stripe is not reachable: {e}"), "check STRIPE_API_BASE")
        }
    }
    let endpoints = match stripe.list_webhook_endpoints().await {
        Ok(endpoints) => endpoints,
        Err(e) => {
            return checks.fail(
                "stripe webhook endpoint",
                format!("cannot list webhook endpoints: {e}"),
                "let the key read webhook endpoints (Developers → API keys)",
            )
        }
    };
    const FIX: &str = "add an endpoint https://webhooks.<domain>/stripe/webhook in Stripe (Developers → Webhooks) with the events named, and put its signing secret in STRIPE_WEBHOOK_SECRET";
    let ours: Vec<_> = endpoints
        .iter()
        .filter(|e| url::Url::parse(&e.url).is_ok_and(|u| u.path().trim_end_matches('/').ends_with("/stripe/webhook")))
        .collect();
    let missing = |e: &tollgate_stripe::WebhookEndpoint| -> Vec<&str> {
        if e.enabled_events.iter().any(|event| event == "*") {
            return Vec::new();
        }
        HANDLED_EVENTS.iter().copied().filter(|needed| !e.enabled_events.iter().any(|event| event == needed)).collect()
    };
    match ours.iter().find(|e| e.status == "enabled" && missing(e).is_empty()) {
        Some(endpoint) => {
            checks.pass("stripe webhook endpoint", format!("{} receives every event Tollgate handles", endpoint.url))
        }
        None => match ours.first() {
            None => checks.fail(
                "stripe webhook endpoint",
                format!("no webhook endpoint ends in /stripe/webhook (of {})", endpoints.len()),
                FIX,
            ),
            Some(endpoint) if endpoint.status != "enabled" => {
                checks.fail("stripe webhook endpoint", format!("{} is {}", endpoint.url, endpoint.status), FIX)
            }
            Some(endpoint) => checks.fail(
                "stripe webhook endpoint",
                format!("{} does not receive: {}", endpoint.url, missing(endpoint).join(", ")),
                FIX,
            ),
        },
    }
}

fn permissions(roles: &[Role], held: &BTreeSet<RoleId>, guild: GuildId) -> u64 {
    roles
        .iter()
        .filter(|r| held.contains(&r.id) || r.id.get() == guild.get())
        .fold(0, |acc, r| acc | r.permissions.parse::<u64>().unwrap_or(0))
}

async fn discord_checks(
    config: &Config,
    settings: &tollgate_app::settings::Settings,
    appwrite_ok: bool,
    checks: &mut Checks,
) {
    match config.get("DISCORD_REDIRECT_URI").filter(|v| !v.trim().is_empty()) {
        Some(uri) if (uri.starts_with("https://") || uri.starts_with("http://127.0.0.1") || uri.starts_with("http://localhost")) && uri.ends_with("/discord/callback") => {
            checks.pass("oauth redirect uri", format!("{uri} (register exactly this in the Discord application's OAuth2 settings)"))
        }
        Some(uri) => checks.fail("oauth redirect uri", format!("{uri} is not https://<api>/discord/callback"), "set DISCORD_REDIRECT_URI to https://api.<domain>/discord/callback and register it in the Discord application"),
        None => checks.fail("oauth redirect uri", "DISCORD_REDIRECT_URI is not set", "set DISCORD_REDIRECT_URI to https://api.<domain>/discord/callback and register it in the Discord application"),
    }
    let (discord, guild) = match (config.discord(), config.guild()) {
        (Ok(discord), Ok(guild)) => (discord, guild),
        (Err(e), _) | (_, Err(e)) => {
            checks.fail("discord settings", e.to_string(), "set DISCORD_BOT_TOKEN and CUSTOMER_GUILD_ID");
            return;
        }
    };
    let bot = match discord.current_bot_user().await {
        Ok(bot) => {
            checks.pass("bot token", format!("valid (bot {})", bot.username));
            bot
        }
        Err(e) => {
            checks.fail(
                "bot token",
                format!("refused: {e}"),
                "reset the bot token in the Discord developer portal (Bot → Reset Token) and set DISCORD_BOT_TOKEN",
            );
            return;
        }
    };
    let member = match discord.get_member(guild, bot.id).await {
        Ok(member) => {
            checks.pass("bot in guild", format!("the bot is a member of guild {guild}"));
            member
        }
        Err(e) => {
            checks.fail("bot in guild", format!("the bot is not in guild {guild}: {e}"), "invite the bot to the guild with the OAuth2 URL generator (scopes bot; Manage Roles, Create Invite) and check CUSTOMER_GUILD_ID");
            return;
        }
    };
    let roles = match discord.guild_roles(guild).await {
        Ok(roles) => roles,
        Err(e) => {
            checks.fail("guild roles", e.to_string(), "check the bot's access to the guild");
            return;
        }
    };
    let held: BTreeSet<RoleId> = member.roles.iter().copied().collect();
    let perms = permissions(&roles, &held, guild);
    if perms & ADMINISTRATOR != 0 || (perms & MANAGE_ROLES != 0 && perms & CREATE_INSTANT_INVITE != 0) {
        checks.pass("bot permissions", "Manage Roles and Create Invite");
    } else {
        checks.fail(
            "bot permissions",
            "the bot lacks Manage Roles or Create Invite",
            "give the bot's role Manage Roles and Create Invite in Server Settings → Roles",
        );
    }
    match discord.list_members(guild, 1, None).await {
        Ok(_) => checks.pass("server members intent", "listing members works"),
        Err(DiscordError::Http { status: 403, .. }) | Err(DiscordError::MissingPermissions) => checks.fail(
            "server members intent",
            "listing members is refused",
            "enable the Server Members privileged intent (developer portal → Bot → Privileged Gateway Intents)",
        ),
        Err(e) => checks.fail("server members intent", e.to_string(), "check the bot's access"),
    }
    if !appwrite_ok {
        return;
    }
    let Ok(appwrite) = config.appwrite() else { return };
    let all = match RoleSync::new(App::new(&appwrite, settings, &SystemClock), &discord, guild).role_mappings().await {
        Ok(mappings) => mappings,
        Err(e) => {
            checks.fail("role mappings", e.to_string(), "run `tollgate bootstrap`");
            return;
        }
    };
    if all.broken.is_empty() {
        checks.pass("role mappings readable", format!("{} mapping(s)", all.readable.len()));
    } else {
        let described: Vec<String> = all
            .broken
            .iter()
            .map(|b| match b.role_ids.len() {
                0 => format!("{}: {} (no role id readable: its roles are NOT managed)", b.document_id, b.reason),
                n => format!("{}: {} ({n} role(s) still taken away, never granted)", b.document_id, b.reason),
            })
            .collect();
        checks.fail(
            "role mappings readable",
            described.join("; "),
            "rewrite each mapping with `tollgate plans set PLAN --roles ID,ID` (or fix the document in Appwrite)",
        );
    }
    // Broken mappings' readable roles are managed too (taken away): they must exist and sit below the bot.
    let managed = all.managed(guild);
    if managed.is_empty() {
        checks.fail(
            "role mappings",
            "no plan is mapped to a role in this guild",
            "map plans to roles: `tollgate plans set PLAN --roles ID,ID`",
        );
        return;
    }
    let missing: Vec<String> =
        managed.iter().filter(|id| !roles.iter().any(|r| r.id == **id)).map(|id| id.to_string()).collect();
    if missing.is_empty() {
        checks.pass("mapped roles exist", format!("{} managed role(s)", managed.len()));
    } else {
        checks.fail(
            "mapped roles exist",
            format!("roles not in the guild: {}", missing.join(", ")),
            "fix the mapping: `tollgate plans set PLAN --roles ID,ID` with existing role ids",
        );
    }
    let top = roles.iter().filter(|r| held.contains(&r.id)).map(|r| r.position).max().unwrap_or(0);
    let above: Vec<String> = roles
        .iter()
        .filter(|r| managed.contains(&r.id) && r.position >= top)
        .map(|r| format!("{} ({})", r.name, r.id))
        .collect();
    if above.is_empty() {
        checks.pass("role order", "the bot's highest role is above every managed role");
    } else {
        checks.fail(
            "role order",
            format!("managed roles at or above the bot's highest role: {}", above.join(", ")),
            "drag the bot's role above every managed role in Server Settings → Roles",
        );
    }
}

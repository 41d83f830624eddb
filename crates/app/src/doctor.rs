//! The doctor's checks: everything that makes paid roles fail, checked before a customer notices: Appwrite
//! reachable with a key that may read, the schema and teams in place, recent purchases mapped to plans, the
//! OAuth redirect, the bot's token, membership, permissions and intents, the role mappings and the role
//! order. `tollgate doctor` runs them all (and the settings only the webhook worker holds); the admin
//! console's health panel runs the OAuth redirect and bot checks ([`bot_checks`]) in the api worker, whose
//! size budget the schema and catalogue checks would not fit. Each failed check carries its fix.

use crate::role_sync::RoleSync;
use crate::schema::collections;
use crate::settings::Settings;
use crate::App;
use serde::Serialize;
use std::collections::BTreeSet;
use tollgate_appwrite::{AppwriteClient, Query};
use tollgate_core::{Clock, GuildId, RoleId};
use tollgate_discord::{DiscordClient, DiscordError, Role};

const MANAGE_ROLES: u64 = 1 << 28;
const CREATE_INSTANT_INVITE: u64 = 1;
const ADMINISTRATOR: u64 = 1 << 3;

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// Passed, but something an admin should act on (does not fail the exit code).
    pub warning: bool,
    pub detail: String,
    /// What to do (`None` when passed without a warning).
    pub fix: Option<&'static str>,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(transparent)]
pub struct Checks(pub Vec<Check>);

impl Checks {
    pub fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.0.push(Check { name, passed: true, warning: false, detail: detail.into(), fix: None });
    }

    pub fn warn(&mut self, name: &'static str, detail: impl Into<String>, fix: &'static str) {
        self.0.push(Check { name, passed: true, warning: true, detail: detail.into(), fix: Some(fix) });
    }

    pub fn fail(&mut self, name: &'static str, detail: impl Into<String>, fix: &'static str) {
        self.0.push(Check { name, passed: false, warning: false, detail: detail.into(), fix: Some(fix) });
    }

    pub fn failed(&self) -> usize {
        self.0.iter().filter(|c| !c.passed).count()
    }
}

/// `DISCORD_REDIRECT_URI`: the api worker's callback, over https (or a local http one). The api worker
/// runs this one itself (it holds the setting); the others run where the bot's settings are.
pub fn oauth_redirect_check(lookup: impl Fn(&str) -> Option<String>, checks: &mut Checks) {
    const FIX: &str =
        "set DISCORD_REDIRECT_URI to https://api.<domain>/discord/callback and register it in the Discord application";
    match lookup("DISCORD_REDIRECT_URI").filter(|v| !v.trim().is_empty()) {
        Some(uri)
            if (uri.starts_with("https://")
                || uri.starts_with("http://127.0.0.1")
                || uri.starts_with("http://localhost"))
                && uri.ends_with("/discord/callback") =>
        {
            checks.pass(
                "oauth redirect uri",
                format!("{uri} (register exactly this in the Discord application's OAuth2 settings)"),
            )
        }
        Some(uri) => checks.fail("oauth redirect uri", format!("{uri} is not https://<api>/discord/callback"), FIX),
        None => checks.fail("oauth redirect uri", "DISCORD_REDIRECT_URI is not set", FIX),
    }
}

/// What the checks read: the settings (parsed), and the clients, or why they could not be built.
pub struct Inputs<'a, C: Clock> {
    pub settings: &'a Settings,
    pub appwrite: Result<&'a AppwriteClient, String>,
    pub discord: Result<(&'a DiscordClient, GuildId), String>,
    pub clock: &'a C,
}

/// Runs the Appwrite and Discord checks, appending them to `checks` (`tollgate doctor`).
pub async fn run_checks<C: Clock>(inputs: &Inputs<'_, C>, checks: &mut Checks) {
    let appwrite_ok = appwrite_checks(inputs, checks).await;
    discord_checks(inputs, appwrite_ok, checks).await;
}

/// The bot's checks only (token, membership, permissions, the members intent, the role mappings and the
/// role order): the admin console's health panel. The schema and catalogue checks need the admin's key and
/// much code, so they stay with `tollgate doctor`.
pub async fn bot_checks<C: Clock>(inputs: &Inputs<'_, C>, checks: &mut Checks) {
    discord_checks(inputs, inputs.appwrite.is_ok(), checks).await;
}

async fn appwrite_checks<C: Clock>(inputs: &Inputs<'_, C>, checks: &mut Checks) -> bool {
    let settings = inputs.settings;
    let appwrite = match &inputs.appwrite {
        Ok(client) => *client,
        Err(e) => {
            checks.fail("appwrite", e.clone(), "set APPWRITE_ENDPOINT, APPWRITE_PROJECT_ID and APPWRITE_API_KEY");
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
    match appwrite.get_team(&settings.admin_team_id).await {
        Ok(_) => checks.pass("admins team", format!("team `{}` exists", settings.admin_team_id)),
        Err(e) => checks.fail(
            "admins team",
            format!("team `{}`: {e}", settings.admin_team_id),
            "run `tollgate bootstrap` (or set ADMIN_TEAM_ID), then add the admins' accounts to the team",
        ),
    }
    if missing.is_empty() {
        catalogue_checks(&App::new(appwrite, settings, inputs.clock), checks).await;
    }
    true
}

/// Recent Sell.app purchases whose product the catalogue does not list by id.
async fn catalogue_checks<C: Clock>(app: &App<'_, C>, checks: &mut Checks) {
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

fn permissions(roles: &[Role], held: &BTreeSet<RoleId>, guild: GuildId) -> u64 {
    roles
        .iter()
        .filter(|r| held.contains(&r.id) || r.id.get() == guild.get())
        .fold(0, |acc, r| acc | r.permissions.parse::<u64>().unwrap_or(0))
}

async fn discord_checks<C: Clock>(inputs: &Inputs<'_, C>, appwrite_ok: bool, checks: &mut Checks) {
    let (discord, guild) = match &inputs.discord {
        Ok((discord, guild)) => (*discord, *guild),
        Err(e) => {
            checks.fail("discord settings", e.clone(), "set DISCORD_BOT_TOKEN and CUSTOMER_GUILD_ID");
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
    let appwrite = match (&inputs.appwrite, appwrite_ok) {
        (Ok(appwrite), true) => *appwrite,
        _ => return,
    };
    let all =
        match RoleSync::new(App::new(appwrite, inputs.settings, inputs.clock), discord, guild).role_mappings().await {
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

/// `tollgate doctor`'s Stripe checks: the key (a cheap authenticated read) and an enabled webhook endpoint for
/// `/stripe/webhook` that receives every event Tollgate handles. Skipped (one passing line) without a key.
pub async fn stripe_checks(lookup: impl Fn(&str) -> Option<String>, checks: &mut Checks) {
    let stripe = match crate::settings::stripe_config(lookup) {
        Ok(Some(config)) => tollgate_stripe::StripeApi::new(config),
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
        tollgate_providers::stripe_payload::HANDLED_EVENTS
            .iter()
            .copied()
            .filter(|needed| !e.enabled_events.iter().any(|event| event == needed))
            .collect()
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

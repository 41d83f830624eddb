use crate::cli::{GrantArgs, LookupArgs, RevokeArgs, Status, UpsertArgs};
use crate::config::{Config, SystemClock};
use crate::output::{confirm, print, report};
use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::json;
use tollgate_app::admin_grants::GrantOutcome;
use tollgate_app::role_sync::RoleSync;
use tollgate_app::App;
use tollgate_core::{AppwriteId, Email};

fn parse_time(raw: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("`{raw}` is not an RFC 3339 time (e.g. 2027-01-01T00:00:00Z)"))
}

fn parse_email(raw: &str) -> Result<Email> {
    Email::parse(raw).map_err(|e| anyhow!("--email: {e}"))
}

/// An admin entitlement of `plan` for `email` (the user's projection follows).
async fn grant_plan(config: &Config, json: bool, email: &str, plan: &str, until: Option<DateTime<Utc>>) -> Result<i32> {
    let email = parse_email(email)?;
    let (appwrite, settings) = (config.appwrite()?, config.settings()?);
    let (outcome, entry) = App::new(&appwrite, &settings, &SystemClock).admin_grant(&email, plan, until).await?;
    let (state, user) = match &outcome {
        GrantOutcome::Applied { user_id } => ("applied", Some(user_id.to_string())),
        GrantOutcome::Pending { .. } => ("pending", None),
    };
    let value = json!({
        "email": email.as_str(), "outcome": state, "userId": user, "plan": plan,
        "source": entry.entitlement.source, "until": until.map(|t| t.to_rfc3339()),
    });
    print(json, &value, || match &outcome {
        GrantOutcome::Applied { user_id } => format!(
            "{email}: {plan} granted to user {user_id} until {} (source {})",
            until.map_or("no end".to_owned(), |t| t.to_rfc3339()),
            entry.entitlement.source
        ),
        GrantOutcome::Pending { account_unverified: true } => {
            format!("{email}: the account has not verified this email; the grant waits until it does")
        }
        GrantOutcome::Pending { account_unverified: false } => {
            format!("{email}: no account yet; the grant waits for an account that verifies this email")
        }
    });
    Ok(0)
}

async fn revoke_all(config: &Config, json: bool, email: &str, source: Option<&str>) -> Result<i32> {
    let email = parse_email(email)?;
    let (appwrite, settings) = (config.appwrite()?, config.settings()?);
    let report = App::new(&appwrite, &settings, &SystemClock).admin_revoke(&email, source).await?;
    let value = json!({
        "email": email.as_str(), "revoked": report.revoked, "alreadyRevoked": report.already_revoked,
        "userId": report.user_id.as_ref().map(|u| u.to_string()),
    });
    print(json, &value, || {
        format!(
            "{email}: revoked {} entitlement(s), {} already revoked",
            report.revoked.len(),
            report.already_revoked.len()
        )
    });
    Ok(0)
}

/// The replaced deployment's way to set access: `active` grants the plan (until `--expires`), `inactive`
/// revokes everything. Both go through the ledger.
pub async fn upsert(config: &Config, json: bool, args: UpsertArgs) -> Result<i32> {
    let expires_at = args.expires.as_deref().map(parse_time).transpose()?;
    match args.status {
        Status::Active => grant_plan(config, json, &args.email, &args.plan, expires_at).await,
        Status::Inactive => revoke_all(config, json, &args.email, None).await,
    }
}

pub async fn grant(config: &Config, json: bool, args: GrantArgs) -> Result<i32> {
    let until = args.until.as_deref().map(parse_time).transpose()?;
    grant_plan(config, json, &args.email, &args.plan, until).await
}

pub async fn revoke(config: &Config, json: bool, yes: bool, args: RevokeArgs) -> Result<i32> {
    let what = args.source.as_deref().map_or("every entitlement".to_owned(), |s| format!("the entitlement {s}"));
    confirm(yes, &format!("This revokes {what} of {}", args.email))?;
    revoke_all(config, json, &args.email, args.source.as_deref()).await
}

pub async fn lookup(config: &Config, json: bool, args: LookupArgs) -> Result<i32> {
    let (appwrite, settings, discord, guild) =
        (config.appwrite()?, config.settings()?, config.discord()?, config.guild()?);
    let user = match (args.email, args.id) {
        (Some(email), _) => appwrite.find_user_by_email(&parse_email(&email)?).await?,
        (None, Some(id)) => Some(appwrite.get_user(&AppwriteId::parse(&id).map_err(|e| anyhow!("--id: {e}"))?).await?),
        (None, None) => None,
    };
    let user = user.ok_or_else(|| anyhow!("no user with that email or id"))?;
    let sync = RoleSync::new(App::new(&appwrite, &settings, &SystemClock), &discord, guild);
    let mut access = sync.access_report(&user, true).await?;
    if access.claimed_now > 0 {
        // The lookup claimed purchases waiting for this account: sync it now, as role-sync would when
        // prompted, and show the result.
        let user_id = AppwriteId::parse(&user.id).map_err(|e| anyhow!("user id: {e}"))?;
        sync.sync_user(&user_id).await?;
        access = sync.access_report(&user, true).await?;
    }
    let value = serde_json::to_value(access)?;
    print(json, &value, || report(&value, 0));
    Ok(0)
}

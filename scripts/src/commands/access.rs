use crate::cli::{GrantArgs, LookupArgs, RevokeArgs, Status, UpsertArgs};
use crate::config::{Config, SystemClock};
use crate::output::{confirm, print, report};
use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::json;
use tollgate_app::admin_grants::GrantOutcome;
use tollgate_app::role_sync::RoleSync;
use tollgate_app::App;
use tollgate_core::{AppwriteId, Email, Entitlement, SubscriptionStatus};

fn parse_time(raw: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("`{raw}` is not an RFC 3339 time (e.g. 2027-01-01T00:00:00Z)"))
}

async fn set(config: &Config, json: bool, email: &str, entitlement: Entitlement) -> Result<i32> {
    let email = Email::parse(email).map_err(|e| anyhow!("--email: {e}"))?;
    let (appwrite, settings) = (config.appwrite()?, config.settings()?);
    let outcome =
        App::new(&appwrite, &settings, &SystemClock).set_entitlement_by_email(&email, entitlement.clone()).await?;
    let (state, user) = match &outcome {
        GrantOutcome::Applied { user_id } => ("applied", Some(user_id.to_string())),
        GrantOutcome::Pending => ("pending", None),
    };
    let value = json!({
        "email": email.as_str(), "outcome": state, "userId": user, "plan": entitlement.plan,
        "status": entitlement.status.as_str(), "expiresAt": entitlement.expires_at.map(|t| t.to_rfc3339()),
    });
    print(json, &value, || match outcome {
        GrantOutcome::Applied { user_id } => {
            format!("{email}: {} {} applied to user {user_id}", entitlement.status.as_str(), entitlement.plan)
        }
        GrantOutcome::Pending => {
            format!("{email}: no account yet; kept as a pending entitlement, applied when it appears")
        }
    });
    Ok(0)
}

pub async fn upsert(config: &Config, json: bool, args: UpsertArgs) -> Result<i32> {
    let status = match args.status {
        Status::Active => SubscriptionStatus::Active,
        Status::Inactive => SubscriptionStatus::Inactive,
    };
    let expires_at = args.expires.as_deref().map(parse_time).transpose()?;
    set(config, json, &args.email, Entitlement { plan: args.plan, status, expires_at }).await
}

pub async fn grant(config: &Config, json: bool, args: GrantArgs) -> Result<i32> {
    let until = parse_time(&args.until)?;
    set(
        config,
        json,
        &args.email,
        Entitlement { plan: args.plan, status: SubscriptionStatus::Active, expires_at: Some(until) },
    )
    .await
}

pub async fn revoke(config: &Config, json: bool, yes: bool, args: RevokeArgs) -> Result<i32> {
    confirm(yes, &format!("This takes paid access away from {}", args.email))?;
    let plan = config.settings()?.sellapp_default_plan;
    set(config, json, &args.email, Entitlement { plan, status: SubscriptionStatus::Inactive, expires_at: None }).await
}

pub async fn lookup(config: &Config, json: bool, args: LookupArgs) -> Result<i32> {
    let (appwrite, settings, discord, guild) =
        (config.appwrite()?, config.settings()?, config.discord()?, config.guild()?);
    let user = match (args.email, args.id) {
        (Some(email), _) => {
            appwrite.find_user_by_email(&Email::parse(&email).map_err(|e| anyhow!("--email: {e}"))?).await?
        }
        (None, Some(id)) => Some(appwrite.get_user(&AppwriteId::parse(&id).map_err(|e| anyhow!("--id: {e}"))?).await?),
        (None, None) => None,
    };
    let user = user.ok_or_else(|| anyhow!("no user with that email or id"))?;
    let sync = RoleSync::new(App::new(&appwrite, &settings, &SystemClock), &discord, guild);
    let value = serde_json::to_value(sync.access_report(&user, true).await?)?;
    print(json, &value, || report(&value, 0));
    Ok(0)
}

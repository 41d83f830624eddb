//! Reading the final state the invariants judge: one account, and one delivery's claim and failure record.
//! Shared by the chaos runner and `cargo xtask load` (`crates/load`), which read the same documents.

use crate::invariants::{EntitlementView, SubscriptionView, UserView};
use serde_json::Value;
use tollgate_app::ledger::LedgerEntry;
use tollgate_app::App;
use tollgate_appwrite::Query;
use tollgate_core::{AppwriteId, Clock, DiscordUserId, Email};

fn views(entries: Vec<LedgerEntry>) -> Vec<EntitlementView> {
    entries.into_iter().map(|e| EntitlementView { entitlement: e.entitlement, event_keys: e.event_keys }).collect()
}

/// The account, its entitlements, what is still pending on its email, its `subscriptions` document and its
/// `paid` memberships; `discord` is the Discord account its profile names (each caller reads it its way).
pub async fn read_user<C: Clock>(
    app: &App<'_, C>,
    id: &AppwriteId,
    email: &Email,
    discord: Option<DiscordUserId>,
) -> Result<UserView, String> {
    let account = app.appwrite.get_user(id).await.map_err(|e| format!("{id}: {e}"))?;
    let entitlements = views(app.user_entitlements(id).await.map_err(|e| format!("{id}: {e}"))?);
    let pending = views(app.pending_entitlements_of(email).await.map_err(|e| format!("{id}: {e}"))?);
    let subscription = app.read_subscription(id).await.map_err(|e| format!("{id}: {e}"))?.map(|sub| SubscriptionView {
        status: sub.status,
        plans: sub.plans_json.as_deref().and_then(|raw| serde_json::from_str(raw).ok()),
    });
    let memberships = app
        .appwrite
        .list_memberships(&app.settings.paid_team_id, &[Query::equal("userId", [id.as_str()])])
        .await
        .map_err(|e| format!("{id}: {e}"))?;
    Ok(UserView {
        id: id.to_string(),
        verified: account.email_verification,
        entitlements,
        pending,
        subscription,
        paid_memberships: memberships.memberships.len(),
        discord,
    })
}

/// A delivery's claim status (`webhook_events`) and, unless the claim is completed, its failure record's
/// state (`webhook_failures`, same id); `None` where the document does not exist.
pub async fn read_delivery<C: Clock>(
    app: &App<'_, C>,
    claim: &str,
) -> Result<(Option<String>, Option<String>), String> {
    let collections = &app.settings.collections;
    let status = field_of(app, &collections.webhook_events, claim, "status").await?;
    let failure = match status.as_deref() {
        Some("completed") => None,
        _ => field_of(app, &collections.webhook_failures, claim, "state").await?,
    };
    Ok((status, failure))
}

/// A string attribute of one document; `None` when the document or the attribute does not exist.
async fn field_of<C: Clock>(
    app: &App<'_, C>,
    collection: &str,
    id: &str,
    name: &str,
) -> Result<Option<String>, String> {
    match app.appwrite.get_document(&app.settings.database_id, collection, id).await {
        Ok(doc) => Ok(doc.data.get(name).and_then(Value::as_str).map(str::to_owned)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(format!("reading {collection}/{id}: {e}")),
    }
}

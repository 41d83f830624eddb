//! What the admin routes (and the console page on them) need beyond the lookup: who is an admin, finding a
//! user by their Discord account, the failures list with its filters and one failure with its delivery,
//! and the plans catalogue as admins read it (the CLI's `plans list` shows the same listing).

use crate::error::StepError;
use crate::lookup::failure_summary_of;
use crate::records::{parse_timestamp, timestamp, FailureState};
use crate::role_sync::RoleMappings;
use crate::App;
use serde_json::{json, Value};
use tollgate_appwrite::{Document, Query};
use tollgate_core::plans::format_duration;
use tollgate_core::{AppwriteId, Clock, DiscordUserId, PlanOffer, RoleMapping};

pub const FAILURES_PAGE_DEFAULT: u32 = 25;
pub const FAILURES_PAGE_MAX: u32 = 100;

/// A filter an admin got wrong: `(code, message)` for a 400.
pub type BadFilter = (&'static str, String);

/// `state`, `provider`, `since`, `until` (RFC 3339, on when the failure was first recorded), `limit` (1-100)
/// and `cursor` (the last id of the previous page) as Appwrite queries, newest first; and the page size.
pub fn failure_queries<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(Vec<Query>, u32), BadFilter> {
    let mut queries = Vec::new();
    let mut limit = FAILURES_PAGE_DEFAULT;
    let mut cursor = None;
    for (key, value) in pairs {
        let date = |name: &'static str| {
            parse_timestamp(value).map(timestamp).ok_or(("invalid_date", format!("{name} is an RFC 3339 date")))
        };
        match key {
            "state" => {
                let state = FailureState::parse(value)
                    .ok_or_else(|| ("invalid_state", "state is due, dead or settled".to_owned()))?;
                queries.push(Query::equal("state", [state.as_str()]));
            }
            "provider" if value.chars().all(|c| c.is_ascii_lowercase()) && !value.is_empty() => {
                queries.push(Query::equal("provider", [value]));
            }
            "provider" => return Err(("invalid_provider", "provider is a provider name, e.g. sellapp".to_owned())),
            "since" => queries.push(Query::greater_than_equal("$createdAt", date("since")?)),
            "until" => queries.push(Query::less_than("$createdAt", date("until")?)),
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|l| (1..=FAILURES_PAGE_MAX).contains(l))
                    .ok_or_else(|| ("invalid_limit", "limit is 1-100".to_owned()))?;
            }
            "cursor" => cursor = Some(value),
            _ => {}
        }
    }
    queries.push(Query::order_desc("$createdAt"));
    queries.push(failure_summary_select());
    queries.push(Query::limit(limit));
    if let Some(cursor) = cursor {
        queries.push(Query::cursor_after(cursor));
    }
    Ok((queries, limit))
}

/// A failure in a list: the summary, and when it was recorded and last changed.
/// The attributes a failure's summary shows: lists never read the raw bodies (up to 1 MiB each).
pub fn failure_summary_select() -> Query {
    Query::select([
        "provider",
        "event",
        "eventId",
        "orderId",
        "email",
        "emailRaw",
        "errorCode",
        "errorMessage",
        "attempts",
        "state",
        "nextAttemptAt",
    ])
}

pub fn failure_item(doc: &Document) -> Value {
    let mut item = failure_summary_of(doc);
    item["createdAt"] = json!(timestamp(doc.created_at));
    item["updatedAt"] = json!(timestamp(doc.updated_at));
    item
}

/// The catalogue as admins read it: one entry per readable plan.
pub fn plan_listing(catalogue: &RoleMappings) -> Vec<Value> {
    let offer = |plan: &str| catalogue.offers.iter().find(|o| o.plan == plan);
    catalogue.readable.iter().map(|m| describe_plan(m, offer(&m.plan))).collect()
}

fn describe_plan(mapping: &RoleMapping, offer: Option<&PlanOffer>) -> Value {
    let list = |set: Option<&std::collections::BTreeSet<String>>| {
        set.map(|s| s.iter().cloned().collect::<Vec<_>>()).unwrap_or_default()
    };
    json!({
        "plan": mapping.plan,
        "guildId": mapping.guild_id.to_string(),
        "roleIds": mapping.role_ids.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "sellappProducts": list(offer.map(|o| &o.sellapp_products)),
        "sellappVariants": list(offer.map(|o| &o.sellapp_variants)),
        "stripePrices": list(offer.map(|o| &o.stripe_prices)),
        "duration": offer.and_then(|o| o.duration).map(format_duration),
        "group": mapping.tier.as_ref().map(|t| t.group.clone()),
        "rank": mapping.tier.as_ref().map(|t| t.rank),
    })
}

impl<C: Clock> App<'_, C> {
    /// A confirmed member of the admins team (`ADMIN_TEAM_ID`); an invitation not accepted is not one.
    pub async fn is_admin(&self, user_id: &AppwriteId) -> Result<bool, StepError> {
        let membership = self
            .appwrite
            .find_membership(&self.settings.admin_team_id, user_id)
            .await
            .map_err(|e| StepError::appwrite("reading the admins team", &e))?;
        Ok(membership.is_some_and(|m| m.confirm))
    }

    /// The user whose profile holds the Discord account (the first, should several: the lookup shows it).
    pub async fn user_by_discord(&self, discord_user: DiscordUserId) -> Result<Option<AppwriteId>, StepError> {
        let settings = self.settings;
        let queries = [Query::equal("discordUserId", [discord_user.to_string()]), Query::limit(1)];
        let list = self
            .appwrite
            .list_documents(&settings.database_id, &settings.collections.profiles, &queries)
            .await
            .map_err(|e| StepError::appwrite("finding the Discord account's user", &e))?;
        Ok(list.documents.first().and_then(|d| AppwriteId::parse(&d.id).ok()))
    }

    /// One failure with the delivery as it arrived (`bodyText`), for the console's detail view.
    pub async fn failure_detail(&self, id: &AppwriteId) -> Result<Option<Value>, StepError> {
        let settings = self.settings;
        let (db, collection) = (&settings.database_id, &settings.collections.webhook_failures);
        let doc = match self.appwrite.get_document(db, collection, id.as_str()).await {
            Ok(doc) => doc,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(StepError::appwrite("reading the failure", &e)),
        };
        let mut item = failure_item(&doc);
        item["store"] = doc.data.get("store").cloned().unwrap_or(Value::Null);
        item["bodyText"] = doc.data.get("bodyText").cloned().unwrap_or(Value::Null);
        item["errorStatus"] = doc.data.get("errorStatus").cloned().unwrap_or(Value::Null);
        Ok(Some(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(pairs: &[(&str, &str)]) -> Result<(Vec<String>, u32), BadFilter> {
        failure_queries(pairs.iter().copied()).map(|(q, l)| (q.iter().map(Query::to_param).collect(), l))
    }

    #[test]
    fn failure_filters_become_queries_newest_first() {
        let (queries, limit) = rendered(&[
            ("state", "due"),
            ("provider", "sellapp"),
            ("since", "2026-12-01T00:00:00Z"),
            ("until", "2026-12-02T00:00:00.000+00:00"),
            ("limit", "10"),
            ("cursor", "abc"),
            ("other", "ignored"),
        ])
        .unwrap();
        assert_eq!(limit, 10);
        let all = queries.join(" ");
        for part in ["\"state\"", "\"sellapp\"", "greaterThanEqual", "lessThan", "orderDesc", "cursorAfter", "select"] {
            assert!(all.contains(part), "{part} in {all}");
        }
        assert_eq!(rendered(&[]).unwrap().1, FAILURES_PAGE_DEFAULT);
    }

    #[test]
    fn a_bad_filter_is_named() {
        assert_eq!(rendered(&[("state", "lost")]).unwrap_err().0, "invalid_state");
        assert_eq!(rendered(&[("provider", "Sell App")]).unwrap_err().0, "invalid_provider");
        assert_eq!(rendered(&[("since", "yesterday")]).unwrap_err().0, "invalid_date");
        assert_eq!(rendered(&[("limit", "0")]).unwrap_err().0, "invalid_limit");
        assert_eq!(rendered(&[("limit", "101")]).unwrap_err().0, "invalid_limit");
    }
}

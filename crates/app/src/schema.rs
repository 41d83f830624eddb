//! The Appwrite schema Tollgate needs: docs/compatibility.md's collections with their existing attributes
//! (never renamed or retyped) plus the attributes and collections Tollgate adds. [`crate::bootstrap`]
//! creates whatever of it is missing.

use crate::settings::Settings;
use tollgate_appwrite::IndexKind;

/// Appwrite's largest string attribute size that stays a plain column; a raw webhook body is at most
/// 1 MiB (`MAX_WEBHOOK_BODY_BYTES`), which this holds.
pub const BODY_TEXT_SIZE: u32 = 1_048_576;
pub const ID_SIZE: u32 = 36;
pub const EMAIL_SIZE: u32 = 254;
pub const SHORT_TEXT_SIZE: u32 = 64;
pub const NAME_SIZE: u32 = 128;
pub const MESSAGE_SIZE: u32 = 2_048;
/// An entitlement's source key (`sellapp:{store}:{order}`, `admin:{email}:{plan}`, …).
pub const SOURCE_SIZE: u32 = 320;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeType {
    String { size: u32 },
    Integer,
    Boolean,
    Datetime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeSpec {
    pub key: &'static str,
    pub kind: AttributeType,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub key: &'static str,
    pub kind: IndexKind,
    pub attributes: &'static [&'static str],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionSpec {
    pub id: String,
    pub name: &'static str,
    pub attributes: Vec<AttributeSpec>,
    pub indexes: Vec<IndexSpec>,
}

const fn string(key: &'static str, size: u32) -> AttributeSpec {
    AttributeSpec { key, kind: AttributeType::String { size }, required: false }
}
const fn integer(key: &'static str) -> AttributeSpec {
    AttributeSpec { key, kind: AttributeType::Integer, required: false }
}
const fn datetime(key: &'static str) -> AttributeSpec {
    AttributeSpec { key, kind: AttributeType::Datetime, required: false }
}
const fn index(key: &'static str, kind: IndexKind, attributes: &'static [&'static str]) -> IndexSpec {
    IndexSpec { key, kind, attributes }
}

/// Every collection, with the ids the settings give them.
pub fn collections(settings: &Settings) -> Vec<CollectionSpec> {
    let c = &settings.collections;
    vec![
        CollectionSpec {
            id: c.subscriptions.clone(),
            name: "Subscriptions",
            attributes: vec![
                string("userId", ID_SIZE),
                string("status", SHORT_TEXT_SIZE),
                string("plan", NAME_SIZE),
                string("sellappOrderId", SHORT_TEXT_SIZE),
                datetime("currentPeriodEnd"),
                string("provider", SHORT_TEXT_SIZE),
                string("email", EMAIL_SIZE),
                string("lastEventId", NAME_SIZE),
                datetime("changedAt"),
                string("plansJson", MESSAGE_SIZE),
                datetime("projectedAt"),
            ],
            indexes: vec![index("status_idx", IndexKind::Key, &["status"])],
        },
        CollectionSpec {
            id: c.entitlements.clone(),
            name: "Entitlements",
            attributes: vec![
                string("source", SOURCE_SIZE),
                string("provider", SHORT_TEXT_SIZE),
                string("email", EMAIL_SIZE),
                string("userId", ID_SIZE),
                string("plan", NAME_SIZE),
                datetime("startsAt"),
                datetime("endsAt"),
                datetime("grantedAt"),
                datetime("revokedAt"),
                string("revokeReason", SHORT_TEXT_SIZE),
                datetime("reinstatedAt"),
                string("orderId", SHORT_TEXT_SIZE),
                string("store", SHORT_TEXT_SIZE),
                string("eventKeysJson", MESSAGE_SIZE * 2),
                datetime("claimedAt"),
                string("planMatch", SHORT_TEXT_SIZE),
                string("productRef", NAME_SIZE),
                datetime("lastCheckedAt"),
                string("providerStatus", SHORT_TEXT_SIZE),
                string("customerRef", SHORT_TEXT_SIZE),
                datetime("providerEventAt"),
                string("providerEventId", SHORT_TEXT_SIZE),
            ],
            indexes: vec![
                index("source_unique", IndexKind::Unique, &["source"]),
                index("user_idx", IndexKind::Key, &["userId"]),
                index("email_user_idx", IndexKind::Key, &["email", "userId"]),
                index("order_idx", IndexKind::Key, &["orderId"]),
                index("revoked_idx", IndexKind::Key, &["userId", "revokedAt"]),
                index("provider_checked_idx", IndexKind::Key, &["provider", "lastCheckedAt"]),
                index("customer_idx", IndexKind::Key, &["customerRef"]),
            ],
        },
        CollectionSpec {
            id: c.webhook_events.clone(),
            name: "Webhook events",
            attributes: vec![
                string("provider", SHORT_TEXT_SIZE),
                string("eventId", NAME_SIZE * 2),
                string("orderId", SHORT_TEXT_SIZE),
                string("payloadHash", SHORT_TEXT_SIZE),
                datetime("processedAt"),
                string("status", SHORT_TEXT_SIZE),
                datetime("claimedAt"),
                // The verified body, stored with the claim: the inbox sweep finishes a cut delivery from it.
                string("bodyText", BODY_TEXT_SIZE),
            ],
            // What the inbox sweep finds stale `processing` claims by.
            indexes: vec![index("status_claimed_idx", IndexKind::Key, &["status", "claimedAt"])],
        },
        CollectionSpec {
            id: c.webhook_failures.clone(),
            name: "Webhook failures",
            attributes: vec![
                string("provider", SHORT_TEXT_SIZE),
                string("event", NAME_SIZE),
                string("eventId", NAME_SIZE * 2),
                string("orderId", SHORT_TEXT_SIZE),
                string("store", SHORT_TEXT_SIZE),
                string("email", EMAIL_SIZE),
                string("emailRaw", EMAIL_SIZE),
                string("payloadHash", SHORT_TEXT_SIZE),
                string("bodyText", BODY_TEXT_SIZE),
                string("errorCode", SHORT_TEXT_SIZE),
                string("errorMessage", MESSAGE_SIZE),
                integer("errorStatus"),
                string("errorType", NAME_SIZE),
                integer("attempts"),
                string("state", SHORT_TEXT_SIZE),
                datetime("nextAttemptAt"),
                datetime("lastAttemptAt"),
                datetime("settledAt"),
            ],
            indexes: vec![
                index("state_next_idx", IndexKind::Key, &["state", "nextAttemptAt"]),
                index("state_settled_idx", IndexKind::Key, &["state", "settledAt"]),
                index("failure_email_idx", IndexKind::Key, &["email"]),
            ],
        },
        CollectionSpec {
            id: c.profiles.clone(),
            name: "Profiles",
            attributes: vec![
                string("discordUserId", SHORT_TEXT_SIZE),
                datetime("discordLinkedAt"),
                string("discordUsername", NAME_SIZE),
            ],
            indexes: vec![index("discord_user_idx", IndexKind::Key, &["discordUserId"])],
        },
        CollectionSpec {
            id: c.discord_role_mappings.clone(),
            name: "Discord role mappings",
            attributes: vec![
                string("plan", NAME_SIZE),
                string("guildId", SHORT_TEXT_SIZE),
                string("roleIdsJson", MESSAGE_SIZE),
                string("sellappProductIdsJson", MESSAGE_SIZE),
                string("sellappVariantIdsJson", MESSAGE_SIZE),
                string("stripePriceIdsJson", MESSAGE_SIZE),
                integer("durationSeconds"),
                string("tierGroup", NAME_SIZE),
                integer("tierRank"),
            ],
            indexes: vec![index("plan_unique", IndexKind::Unique, &["plan"])],
        },
        CollectionSpec {
            id: c.role_sync_jobs.clone(),
            name: "Role sync jobs",
            attributes: vec![
                string("userId", ID_SIZE),
                string("discordUserId", SHORT_TEXT_SIZE),
                string("guildId", SHORT_TEXT_SIZE),
                string("desiredRoleIdsJson", MESSAGE_SIZE),
                string("status", SHORT_TEXT_SIZE),
                integer("attempts"),
                string("lastError", MESSAGE_SIZE),
                datetime("lastAttemptAt"),
                datetime("nextAttemptAt"),
                string("outcome", SHORT_TEXT_SIZE),
                // A fresh random id per request, so a sync notices a request that landed while it ran.
                string("requestId", SHORT_TEXT_SIZE),
            ],
            indexes: vec![index("status_next_idx", IndexKind::Key, &["status", "nextAttemptAt"])],
        },
        CollectionSpec {
            id: c.oauth_states.clone(),
            name: "OAuth states",
            attributes: vec![
                string("userId", ID_SIZE),
                string("codeVerifier", NAME_SIZE),
                datetime("expiresAt"),
                // sha256 (hex) of the key in the browser's link cookie.
                string("browserHash", NAME_SIZE),
            ],
            // What the cron prunes expired states by.
            indexes: vec![index("expires_idx", IndexKind::Key, &["expiresAt"])],
        },
        CollectionSpec {
            id: c.sync_state.clone(),
            name: "Sync state",
            attributes: vec![string("cursor", SHORT_TEXT_SIZE), datetime("updatedAt"), datetime("passFinishedAt")],
            indexes: vec![],
        },
        CollectionSpec {
            // One document per linked Discord account (id derived from the Discord user id): creating it
            // is what makes one Discord account linkable to at most one user, even under concurrency.
            id: c.discord_links.clone(),
            name: "Discord links",
            attributes: vec![
                string("discordUserId", SHORT_TEXT_SIZE),
                string("userId", ID_SIZE),
                datetime("claimedAt"),
            ],
            indexes: vec![],
        },
        CollectionSpec {
            id: c.pending_entitlements.clone(),
            name: "Pending entitlements",
            attributes: vec![
                string("email", EMAIL_SIZE),
                string("plan", NAME_SIZE),
                string("status", SHORT_TEXT_SIZE),
                string("provider", SHORT_TEXT_SIZE),
                string("orderId", SHORT_TEXT_SIZE),
                string("eventId", NAME_SIZE * 2),
                datetime("expiresAt"),
                datetime("recordedAt"),
                datetime("claimedAt"),
                string("claimedByUserId", ID_SIZE),
                string("claimOutcome", SHORT_TEXT_SIZE),
            ],
            indexes: vec![
                index("email_idx", IndexKind::Key, &["email"]),
                index("claimed_idx", IndexKind::Key, &["claimedAt"]),
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_existing_collection_keeps_its_existing_attributes() {
        let settings = Settings::from_lookup(|_| None).unwrap();
        let all = collections(&settings);
        let keys = |id: &str| -> Vec<&str> {
            all.iter().find(|c| c.id == id).map(|c| c.attributes.iter().map(|a| a.key).collect()).unwrap_or_default()
        };
        let existing: [(&str, &[&str]); 6] = [
            ("subscriptions", &["userId", "status", "plan", "sellappOrderId", "currentPeriodEnd"]),
            ("webhook_events", &["provider", "eventId", "orderId", "payloadHash", "processedAt"]),
            (
                "webhook_failures",
                &[
                    "provider",
                    "event",
                    "eventId",
                    "orderId",
                    "store",
                    "email",
                    "payloadHash",
                    "bodyText",
                    "errorCode",
                    "errorMessage",
                    "errorStatus",
                    "errorType",
                ],
            ),
            ("profiles", &["discordUserId", "discordLinkedAt"]),
            ("discord_role_mappings", &["plan", "guildId", "roleIdsJson"]),
            (
                "role_sync_jobs",
                &[
                    "userId",
                    "discordUserId",
                    "guildId",
                    "desiredRoleIdsJson",
                    "status",
                    "attempts",
                    "lastError",
                    "lastAttemptAt",
                ],
            ),
        ];
        for (collection, attributes) in existing {
            for attribute in attributes {
                assert!(keys(collection).contains(attribute), "{collection}.{attribute} missing");
            }
        }
    }

    #[test]
    fn index_attributes_exist_in_their_collection() {
        let settings = Settings::from_lookup(|_| None).unwrap();
        for collection in collections(&settings) {
            for index in &collection.indexes {
                for attribute in index.attributes {
                    assert!(
                        collection.attributes.iter().any(|a| a.key == *attribute),
                        "{}.{}",
                        collection.id,
                        attribute
                    );
                }
            }
        }
    }
}

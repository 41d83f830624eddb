//! Creates the database, the `paid` and admins teams, every collection, attribute and index of [`crate::schema`] that
//! is missing, and waits until Appwrite has built them. Idempotent: what exists is reported as found and
//! left alone (Appwrite's 409 `*_already_exists`), so running it against the replaced deployment's
//! project only adds Tollgate's new attributes and collections.

use crate::schema::{collections, AttributeSpec, AttributeType, CollectionSpec};
use crate::settings::Settings;
use std::time::Duration;
use tollgate_appwrite::{AppwriteClient, AppwriteError};

/// How often to ask whether Appwrite finished building an attribute or index.
pub const BUILD_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How many polls before a still-building attribute or index is reported as stuck.
pub const BUILD_POLL_LIMIT: u32 = 600;

/// Waiting between polls; the caller's runtime provides it.
#[allow(async_fn_in_trait)]
pub trait Pause {
    async fn pause(&self, duration: Duration);
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BootstrapReport {
    /// What this run created, e.g. `collection webhook_events`, `attribute webhook_events.status`.
    pub created: Vec<String>,
    /// What already existed.
    pub found: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("creating {what}: {source}")]
    Appwrite { what: String, source: AppwriteError },
    #[error("{what} is still `{status}` after waiting; Appwrite says: {detail}")]
    NotAvailable { what: String, status: String, detail: String },
}

impl BootstrapReport {
    fn note(&mut self, what: String, result: Result<(), AppwriteError>) -> Result<(), BootstrapError> {
        match result {
            Ok(()) => self.created.push(what),
            Err(e) if e.is_conflict() => self.found.push(what),
            Err(source) => return Err(BootstrapError::Appwrite { what, source }),
        }
        Ok(())
    }
}

pub async fn bootstrap(
    client: &AppwriteClient,
    settings: &Settings,
    pause: &impl Pause,
) -> Result<BootstrapReport, BootstrapError> {
    let mut report = BootstrapReport::default();
    let db = settings.database_id.as_str();
    let result = client.create_database(db, "Tollgate").await.map(drop);
    report.note(format!("database {db}"), result)?;
    for (team, name) in [(settings.paid_team_id.as_str(), "Paid"), (settings.admin_team_id.as_str(), "Admins")] {
        let result = client.create_team(team, name).await.map(drop);
        report.note(format!("team {team}"), result)?;
    }
    let specs = collections(settings);
    for spec in &specs {
        let result = client.create_collection(db, &spec.id, spec.name, true).await.map(drop);
        report.note(format!("collection {}", spec.id), result)?;
        for attribute in &spec.attributes {
            let result = create_attribute(client, db, &spec.id, attribute).await;
            report.note(format!("attribute {}.{}", spec.id, attribute.key), result)?;
        }
    }
    for spec in &specs {
        wait_for_attributes(client, db, spec, pause).await?;
        for index in &spec.indexes {
            let result = client.create_index(db, &spec.id, index.key, index.kind, index.attributes).await.map(drop);
            report.note(format!("index {}.{}", spec.id, index.key), result)?;
        }
        for index in &spec.indexes {
            let what = format!("index {}.{}", spec.id, index.key);
            wait_until_available(&what, pause, || async {
                client.get_index(db, &spec.id, index.key).await.map(|i| (i.status, i.error.unwrap_or_default()))
            })
            .await?;
        }
    }
    Ok(report)
}

async fn create_attribute(
    client: &AppwriteClient,
    db: &str,
    collection: &str,
    attribute: &AttributeSpec,
) -> Result<(), AppwriteError> {
    let AttributeSpec { key, required, kind } = *attribute;
    match kind {
        AttributeType::String { size } => {
            client.create_string_attribute(db, collection, key, size, required, None).await.map(drop)
        }
        AttributeType::Integer => {
            client.create_integer_attribute(db, collection, key, required, None, None, None).await.map(drop)
        }
        AttributeType::Boolean => client.create_boolean_attribute(db, collection, key, required, None).await.map(drop),
        AttributeType::Datetime => client.create_datetime_attribute(db, collection, key, required).await.map(drop),
    }
}

async fn wait_for_attributes(
    client: &AppwriteClient,
    db: &str,
    spec: &CollectionSpec,
    pause: &impl Pause,
) -> Result<(), BootstrapError> {
    for attribute in &spec.attributes {
        let what = format!("attribute {}.{}", spec.id, attribute.key);
        wait_until_available(&what, pause, || async {
            client.get_attribute(db, &spec.id, attribute.key).await.map(|a| (a.status, a.error.unwrap_or_default()))
        })
        .await?;
    }
    Ok(())
}

async fn wait_until_available<F, Fut>(what: &str, pause: &impl Pause, mut status: F) -> Result<(), BootstrapError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(String, String), AppwriteError>>,
{
    let mut last = (String::new(), String::new());
    for _ in 0..BUILD_POLL_LIMIT {
        last = status().await.map_err(|source| BootstrapError::Appwrite { what: what.to_owned(), source })?;
        match last.0.as_str() {
            "available" => return Ok(()),
            "failed" | "stuck" => break,
            _ => pause.pause(BUILD_POLL_INTERVAL).await,
        }
    }
    Err(BootstrapError::NotAvailable { what: what.to_owned(), status: last.0, detail: last.1 })
}

/// What `bootstrap` would create, without creating anything (`tollgate bootstrap --dry-run`).
pub async fn missing(client: &AppwriteClient, settings: &Settings) -> Result<Vec<String>, BootstrapError> {
    let db = settings.database_id.as_str();
    let absent = |what: String, result: Result<(), AppwriteError>| -> Result<Option<String>, BootstrapError> {
        match result {
            Ok(()) => Ok(None),
            Err(e) if e.status == Some(404) => Ok(Some(what)),
            Err(source) => Err(BootstrapError::Appwrite { what, source }),
        }
    };
    let mut missing = Vec::new();
    missing.extend(absent(format!("database {db}"), client.get_database(db).await.map(drop))?);
    for team in [&settings.paid_team_id, &settings.admin_team_id] {
        missing.extend(absent(format!("team {team}"), client.get_team(team).await.map(drop))?);
    }
    for spec in collections(settings) {
        let attributes = match client.list_attributes(db, &spec.id).await {
            Ok(attributes) => attributes,
            Err(e) if e.status == Some(404) => {
                missing.push(format!("collection {}", spec.id));
                missing.extend(spec.attributes.iter().map(|a| format!("attribute {}.{}", spec.id, a.key)));
                missing.extend(spec.indexes.iter().map(|i| format!("index {}.{}", spec.id, i.key)));
                continue;
            }
            Err(source) => return Err(BootstrapError::Appwrite { what: format!("collection {}", spec.id), source }),
        };
        for attribute in &spec.attributes {
            if !attributes.iter().any(|a| a.key == attribute.key) {
                missing.push(format!("attribute {}.{}", spec.id, attribute.key));
            }
        }
        for index in &spec.indexes {
            missing.extend(absent(
                format!("index {}.{}", spec.id, index.key),
                client.get_index(db, &spec.id, index.key).await.map(drop),
            )?);
        }
    }
    Ok(missing)
}

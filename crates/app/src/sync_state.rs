//! `sync_state`: where a bounded walk resumes (one document per walk: `guild-{id}` for reconciliation,
//! `pending-claims` for the pending entitlements). One place reads and writes them.

use crate::error::StepError;
use crate::records::timestamp;
use crate::App;
use serde_json::json;
use tollgate_core::Clock;

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Cursor {
    cursor: Option<String>,
}

impl<C: Clock> App<'_, C> {
    /// The walk's saved place; `None` when it starts from the first. A document that does not decode is
    /// treated as "from the first" (safe: the walk only examines things again), with a warning.
    pub(crate) async fn load_cursor(&self, walk: &str) -> Result<Option<String>, StepError> {
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.sync_state);
        match self.appwrite.get_document(db, collection, walk).await {
            Ok(doc) => match doc.decode::<Cursor>() {
                Ok(c) => Ok(c.cursor.filter(|c| !c.is_empty())),
                Err(e) => {
                    tracing::warn!(walk, error = %e, "a saved cursor does not decode; starting from the first");
                    Ok(None)
                }
            },
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(StepError::appwrite("reading a saved cursor", &e)),
        }
    }

    /// Saves the walk's place (`None`: from the first next time); `pass_finished` also stamps the end of a pass.
    pub(crate) async fn save_cursor(
        &self,
        walk: &str,
        cursor: Option<&str>,
        pass_finished: bool,
    ) -> Result<(), StepError> {
        let (db, collection) = (&self.settings.database_id, &self.settings.collections.sync_state);
        let now = timestamp(self.clock.now());
        let mut data = json!({ "cursor": cursor, "updatedAt": now });
        if pass_finished {
            data["passFinishedAt"] = json!(now);
        }
        self.appwrite
            .upsert_document(db, collection, walk, &data)
            .await
            .map(drop)
            .map_err(|e| StepError::appwrite("saving a cursor", &e))
    }
}

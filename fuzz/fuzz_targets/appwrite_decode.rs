//! Appwrite responses: every model the client decodes, and error bodies. Any status and body decode to a
//! model or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_appwrite::models::{BuildStatus, Document, Health, Membership, MembershipList, Team, User, UserList};
use tollgate_appwrite::{decode_document_list, AppwriteError};
use tollgate_fuzz::{decode, status_and_body};

fuzz_target!(|data: &[u8]| {
    let (status, body) = status_and_body(data);
    let error = AppwriteError::from_response(status, body);
    let _ = (error.is_not_found(), error.is_conflict(), error.is_already_member(), error.is_retryable());
    let _ = error.to_string();
    let _ = decode::<User>(body);
    let _ = decode::<UserList>(body);
    let _ = decode::<Membership>(body);
    let _ = decode::<MembershipList>(body);
    let _ = decode::<Team>(body);
    let _ = decode::<BuildStatus>(body);
    let _ = decode::<Health>(body);
    if let Ok(list) = decode_document_list(status, body) {
        for document in &list.documents {
            assert!(document.data.keys().all(|key| !key.starts_with('$')));
            let _ = document.decode::<serde_json::Value>();
        }
    }
    if let Some(Ok(document)) = decode::<serde_json::Value>(body).map(Document::from_value) {
        let _ = document.decode::<std::collections::BTreeMap<String, serde_json::Value>>();
    }
});

//! # tollgate-appwrite
//!
//! A typed client for the Appwrite REST endpoints Tollgate uses, over [`tollgate_http::Transport`]
//! (`fetch` inside workerd, reqwest with rustls natively). One [`AppwriteClient`] per configuration; every call is a method.
//!
//! ## Layout
//! - [`client`]: configuration, auth headers, timeouts, error decoding: the one HTTP path.
//! - [`error`]: [`AppwriteError`] and [`ErrorKind`] (decoded from the body's `type`).
//! - [`query`]: the 1.5+ JSON query syntax.
//! - [`models`]: users, memberships, teams, documents, build status.
//! - `users`, `documents`, `teams`, `schema`: the endpoint families, one file each.

pub mod client;
mod documents;
pub mod error;
pub mod models;
pub mod query;
mod schema;
mod teams;
mod users;

pub use client::{AppwriteClient, AppwriteConfig, REQUEST_TIMEOUT};
pub use documents::{decode_list as decode_document_list, Deletion, MAX_PAGE_SIZE};
pub use error::{AppwriteError, ErrorKind};
pub use models::{
    BuildStatus, Document, DocumentList, Health, IndexKind, Membership, MembershipList, MembershipOutcome, Team, User,
    UserList,
};
pub use query::Query;

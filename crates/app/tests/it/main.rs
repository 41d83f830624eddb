mod failures;
mod ingest;
mod linking;
mod pending;
mod role_sync;
mod support;

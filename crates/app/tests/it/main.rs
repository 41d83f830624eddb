mod failures;
mod ingest;
mod pending;
mod role_sync;
mod support;

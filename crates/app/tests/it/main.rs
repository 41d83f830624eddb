mod failures;
mod ingest;
mod ledger;
mod linking;
mod lookup;
mod pending;
mod role_sync;
mod support;

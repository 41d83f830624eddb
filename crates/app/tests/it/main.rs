mod failures;
mod ingest;
mod pending;
mod support;

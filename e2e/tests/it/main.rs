mod api;
mod bad_input;
mod failures;
mod ledger;
mod pending;
mod roles;
mod sellapp_webhook;
mod support;

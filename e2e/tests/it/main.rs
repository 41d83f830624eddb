mod bad_input;
mod failures;
mod pending;
mod sellapp_webhook;
mod support;

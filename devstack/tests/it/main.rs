mod account;
mod behaviour;
mod conformance;
mod discord;
mod schema_check;
mod sellapp;
mod support;

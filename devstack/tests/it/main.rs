mod behaviour;
mod conformance;
mod schema_check;
mod support;

//! Test clocks (`/v1/test_helpers/test_clocks`): objects created under a clock (customers made with
//! `test_clock=`, and their subscriptions, invoices and charges) live at the clock's `frozen_time`, and
//! `POST …/{id}/advance` moves it forward, doing in time order everything that falls due on the way: trials
//! end, periods renew (a new invoice, charged), failed renewals are retried on the account's schedule and
//! end `canceled` or `unpaid`, `cancel_at_period_end` subscriptions end, unpaid `incomplete` ones expire.
//! Each event's `created` is the moment it happened on the clock.
//!
//! Stripe advances asynchronously (`advancing`, then `ready` with `test_helpers.test_clock.ready`); here the
//! work is done before the answer, which still says `advancing`, and a retrieve then shows `ready`.

use super::form::{ApiError, ApiResult};
use super::objects;
use super::resources::out;
use super::store::{new_id, Store};
use super::{Params, Reply, StripeState, S};
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;

/// Stripe refuses to advance a clock more than two billing intervals of its subscriptions at once; the
/// stand-in bounds the work of one advance instead.
const MAX_STEPS: usize = 1_000;

pub fn routes() -> Router<Arc<StripeState>> {
    Router::new()
        .route("/v1/test_helpers/test_clocks", post(create_clock))
        .route("/v1/test_helpers/test_clocks/{id}", get(get_clock))
        .route("/v1/test_helpers/test_clocks/{id}/advance", post(advance_clock))
}

async fn create_clock(state: S, Params(form): Params) -> Reply {
    form.only(&["frozen_time", "name"])?;
    let frozen = form.int("frozen_time")?.ok_or_else(|| {
        ApiError::invalid("parameter_missing", "Missing required param: frozen_time.", Some("frozen_time"))
    })?;
    let mut store = state.store();
    let at = store.now(None);
    let clock = store.insert(objects::test_clock(&new_id("clock"), frozen, form.str("name")?, at));
    store.emit("test_helpers.test_clock.created", &clock, None, frozen);
    out(&store, &form, clock)
}

async fn get_clock(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&[])?;
    let store = state.store();
    let clock = store.find("test_helpers.test_clock", &id, "test_clock", "id")?;
    out(&store, &form, clock)
}

async fn advance_clock(state: S, Path(id): Path<String>, Params(form): Params) -> Reply {
    form.only(&["frozen_time"])?;
    let target = form.int("frozen_time")?.ok_or_else(|| {
        ApiError::invalid("parameter_missing", "Missing required param: frozen_time.", Some("frozen_time"))
    })?;
    let mut store = state.store();
    let clock = store.find("test_helpers.test_clock", &id, "test_clock", "id")?;
    let current = clock["frozen_time"].as_i64().unwrap_or_default();
    if target <= current {
        return Err(ApiError::invalid(
            "test_clock_advance_invalid",
            format!("The test clock can only move forward: frozen_time must be after {current}."),
            Some("frozen_time"),
        ));
    }
    store.automatic = true;
    let advanced = advance(&mut store, &id, target);
    store.automatic = false;
    advanced?;
    let mut answer = store.find("test_helpers.test_clock", &id, "test_clock", "id")?;
    answer["status"] = json!("advancing");
    out(&store, &form, answer)
}

fn set_time(store: &mut Store, clock: &str, at: i64) -> ApiResult<()> {
    let mut found = store.find("test_helpers.test_clock", clock, "test_clock", "id")?;
    found["frozen_time"] = json!(at);
    store.put(&found);
    Ok(())
}

/// Moves `clock` to `target`, running every due step in time order at its own moment.
pub fn advance(store: &mut Store, clock: &str, target: i64) -> ApiResult<()> {
    let start = store.now(Some(clock));
    let mut advancing = store.find("test_helpers.test_clock", clock, "test_clock", "id")?;
    advancing["status"] = json!("advancing");
    store.emit("test_helpers.test_clock.advancing", &advancing, None, start);
    for _ in 0..MAX_STEPS {
        let next = store
            .all("subscription")
            .iter()
            .filter(|s| s["test_clock"] == clock)
            .filter_map(|s| store.next_due(s))
            .filter(|(at, _)| *at <= target)
            .min_by_key(|(at, _)| *at);
        let Some((at, due)) = next else { break };
        set_time(store, clock, at.max(store.now(Some(clock))))?;
        store.run_due(due)?;
    }
    set_time(store, clock, target)?;
    let ready: Value = store.find("test_helpers.test_clock", clock, "test_clock", "id")?;
    store.emit("test_helpers.test_clock.ready", &ready, None, target);
    Ok(())
}

//! The Sell.app stand-in: the order lookup Tollgate's refund reconciliation uses, under `/api` (so
//! `SELLAPP_API_BASE` is `http://127.0.0.1:PORT/api`, as Sell.app's own is `https://sell.app/api`).
//!
//! Sell.app publishes **no official OpenAPI document**. What this follows, and where it comes from (the
//! provider facts are in `docs/protocols.md` §1.5–1.6):
//! - Auth: `Authorization: Bearer <API key>`; the store is chosen with the `X-STORE` header (Sell.app's
//!   Rust SDK README). Here an API key belongs to one store: `X-STORE` may be omitted, and naming another
//!   store is refused (403).
//! - `GET /api/v2/orders/{id}` → `{"data": order}`; `GET /api/v2/orders?page=N&limit=M` →
//!   `{"data": [...], "meta": {"current_page", "last_page", "per_page", "total"}}`, newest first
//!   (the generated Node SDK's `/v2/orders` routes and its page-number pagination).
//! - The order object of the new API (SDK `get-order-response`): `id`, `status` ∈ `PENDING, REVERSED,
//!   PARTIAL, VOIDED, REFUNDED, PAID, COMPLETED, DISPUTING, REVIEW, FAILED`, `timeline[]` {`status`,
//!   `created_at`}, `customer` {`id`, `email`, `country`, `location`, `proxied`}, `payment`, `totals`,
//!   `coupon_id`, `line_items[]` {`id`, `product_id`, `product_variant_id`, `product_title`,
//!   `variant_title`, `quantity`, `status`, `currency`, `*_cents`, `subscription_id`, `created_at`},
//!   `created_at`, `updated_at` (ISO 8601).
//! - Error bodies `{"message": "..."}` with 401 (no or wrong key), 403 (another store), 404 (no such
//!   order in this store), 422 (bad paging), 429: the Laravel shape Sell.app's API answers with
//!   (unverified: no stored document shows an error body).
//!
//! Test-only control routes (no auth): `POST /_devstack/orders` creates an order (body: `email`,
//! optional `id`, `status` (default `COMPLETED`), `product_id`, `product_variant_id`, `product_title`,
//! `created_at`); `POST /_devstack/orders/{id}/status` `{"status": "REFUNDED", "at"?}` changes its status
//! and appends to its timeline; plus the shared `/_devstack/faults|reset|calls`.
//!
//! Like the other stand-ins it shares no code with the client it stands in front of.

use crate::control::{self, Control, Stand};
use axum::extract::{Path, Query, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, MutexGuard};

/// The store devstack's API key belongs to.
pub const DEFAULT_STORE_ID: &str = "7";
/// A local-only development value, not a secret.
pub const DEFAULT_API_KEY: &str = "devstack-sellapp-api-key";
pub const STATUSES: &[&str] =
    &["PENDING", "REVERSED", "PARTIAL", "VOIDED", "REFUNDED", "PAID", "COMPLETED", "DISPUTING", "REVIEW", "FAILED"];
const MAX_PER_PAGE: u64 = 100;

pub const ROUTES: &[(&str, &str)] = &[("GET", "/api/v2/orders"), ("GET", "/api/v2/orders/{id}")];

pub struct SellappState {
    orders: Mutex<Connection>,
    api_key: String,
    store: String,
    pub control: Control,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY AUTOINCREMENT, store TEXT NOT NULL, body TEXT NOT NULL);";

impl SellappState {
    pub fn new(connection: Connection, api_key: String, store: String) -> anyhow::Result<Self> {
        connection.execute_batch(SCHEMA)?;
        Ok(Self { orders: Mutex::new(connection), api_key, store, control: Control::default() })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.orders.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

type State = axum::extract::State<Arc<SellappState>>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

fn storage(e: rusqlite::Error) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, &format!("Server Error ({e})"))
}

impl Stand for SellappState {
    const ROUTES: &'static [(&'static str, &'static str)] = ROUTES;

    fn control(&self) -> &Control {
        &self.control
    }

    fn reset(&self) -> Result<(), String> {
        self.db()
            .execute_batch("DELETE FROM orders; DELETE FROM sqlite_sequence WHERE name = 'orders';")
            .map_err(|e| e.to_string())
    }

    fn fault(&self, status: u16, message: &str) -> Response {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = error(status, message);
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

/// Bearer key, then the store header.
async fn authenticate(state: State, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let key = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !key.is_some_and(|k| constant_time_eq(k.as_bytes(), state.api_key.as_bytes())) {
        return error(StatusCode::UNAUTHORIZED, "Unauthenticated.");
    }
    if let Some(store) = store_header(headers) {
        if store != state.store {
            return error(StatusCode::FORBIDDEN, "This action is unauthorized.");
        }
    }
    next.run(request).await
}

fn store_header(headers: &HeaderMap) -> Option<String> {
    headers.get("x-store").and_then(|v| v.to_str().ok()).map(|s| s.trim().to_owned())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn get_order(state: State, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else { return error(StatusCode::NOT_FOUND, "Not found.") };
    let found: Result<Option<String>, _> = state
        .db()
        .query_row("SELECT body FROM orders WHERE id = ?1 AND store = ?2", params![id, state.store], |row| row.get(0))
        .optional();
    match found {
        Ok(Some(body)) => {
            Json(json!({ "data": serde_json::from_str::<Value>(&body).unwrap_or(Value::Null) })).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "Not found."),
        Err(e) => storage(e),
    }
}

#[derive(Deserialize)]
struct Paging {
    page: Option<String>,
    limit: Option<String>,
}

async fn list_orders(state: State, Query(paging): Query<Paging>) -> Response {
    let number = |raw: Option<&str>, default: u64| raw.map(|r| r.parse::<u64>().ok()).unwrap_or(Some(default));
    let (Some(page), Some(per_page)) = (number(paging.page.as_deref(), 1), number(paging.limit.as_deref(), 15)) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "The page and limit fields must be integers.");
    };
    if page == 0 || per_page == 0 || per_page > MAX_PER_PAGE {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "The page must be at least 1 and the limit between 1 and 100.");
    }
    let db = state.db();
    let total: u64 = match db
        .query_row("SELECT COUNT(*) FROM orders WHERE store = ?1", params![state.store], |r| r.get::<_, i64>(0))
    {
        Ok(n) => n.max(0) as u64,
        Err(e) => return storage(e),
    };
    let offset = (page - 1).saturating_mul(per_page);
    let rows: Result<Vec<String>, _> = db
        .prepare("SELECT body FROM orders WHERE store = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3")
        .and_then(|mut statement| {
            statement
                .query_map(params![state.store, per_page as i64, offset.min(i64::MAX as u64) as i64], |r| r.get(0))?
                .collect()
        });
    let data: Vec<Value> = match rows {
        Ok(rows) => rows.iter().map(|b| serde_json::from_str(b).unwrap_or(Value::Null)).collect(),
        Err(e) => return storage(e),
    };
    let last_page = total.div_ceil(per_page).max(1);
    Json(json!({ "data": data, "meta": { "current_page": page, "last_page": last_page, "per_page": per_page, "total": total } }))
        .into_response()
}

#[derive(Deserialize)]
struct NewOrder {
    id: Option<i64>,
    email: String,
    status: Option<String>,
    product_id: Option<Value>,
    product_variant_id: Option<Value>,
    product_title: Option<String>,
    created_at: Option<String>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The status, upper-cased, if Sell.app has it.
fn valid_status(raw: Option<&str>) -> Option<String> {
    let status = raw.unwrap_or("COMPLETED").trim().to_ascii_uppercase();
    STATUSES.contains(&status.as_str()).then_some(status)
}

fn unknown_status() -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, &format!("status must be one of {}", STATUSES.join(", ")))
}

async fn test_create_order(state: State, Json(new): Json<NewOrder>) -> Response {
    let Some(status) = valid_status(new.status.as_deref()) else { return unknown_status() };
    if !new.email.contains('@') {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "The customer email must be a valid email address.");
    }
    let created = new.created_at.unwrap_or_else(now);
    let db = state.db();
    let inserted = match new.id {
        Some(id) => db
            .execute("INSERT INTO orders (id, store, body) VALUES (?1, ?2, '{}')", params![id, state.store])
            .map(|_| id),
        None => db
            .execute("INSERT INTO orders (store, body) VALUES (?1, '{}')", params![state.store])
            .map(|_| db.last_insert_rowid()),
    };
    let id = match inserted {
        Ok(id) => id,
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            return error(StatusCode::CONFLICT, "An order with this id exists.")
        }
        Err(e) => return storage(e),
    };
    let order = json!({
        "id": id,
        "status": status,
        "timeline": [{ "status": status, "created_at": created }],
        "customer": { "id": id, "email": new.email, "country": "NL", "location": "Amsterdam", "proxied": false },
        "payment": { "gateway": "STRIPE", "currency": "USD" },
        "totals": { "subtotal_cents": 1000, "total_cents": 1000 },
        "coupon_id": null,
        "line_items": [{
            "id": id, "product_id": new.product_id, "product_variant_id": new.product_variant_id,
            "product_title": new.product_title, "variant_title": "Default", "quantity": 1, "status": status,
            "currency": "USD", "subtotal_cents": 1000, "total_exclusive_cents": 1000, "total_cents": 1000,
            "subscription_id": null, "created_at": created
        }],
        "created_at": created,
        "updated_at": created,
    });
    if let Err(e) = db.execute("UPDATE orders SET body = ?1 WHERE id = ?2", params![order.to_string(), id]) {
        return storage(e);
    }
    (StatusCode::CREATED, Json(json!({ "data": order }))).into_response()
}

#[derive(Deserialize)]
struct StatusChange {
    status: String,
    at: Option<String>,
}

async fn test_set_status(state: State, Path(id): Path<i64>, Json(change): Json<StatusChange>) -> Response {
    let Some(status) = valid_status(Some(&change.status)) else { return unknown_status() };
    let db = state.db();
    let body: Option<String> =
        match db.query_row("SELECT body FROM orders WHERE id = ?1", params![id], |r| r.get(0)).optional() {
            Ok(body) => body,
            Err(e) => return storage(e),
        };
    let Some(mut order) = body.and_then(|b| serde_json::from_str::<Value>(&b).ok()) else {
        return error(StatusCode::NOT_FOUND, "Not found.");
    };
    let at = change.at.unwrap_or_else(now);
    order["status"] = json!(status);
    order["updated_at"] = json!(at);
    if let Some(timeline) = order["timeline"].as_array_mut() {
        timeline.push(json!({ "status": status, "created_at": at }));
    }
    if let Err(e) = db.execute("UPDATE orders SET body = ?1 WHERE id = ?2", params![order.to_string(), id]) {
        return storage(e);
    }
    Json(json!({ "data": order })).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not found.")
}

pub fn router(state: Arc<SellappState>) -> Router {
    let api = Router::new()
        .route("/api/v2/orders", get(list_orders))
        .route("/api/v2/orders/{id}", get(get_order))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), control::faults_and_counts::<SellappState>));
    let devstack = Router::new()
        .route("/_devstack/orders", post(test_create_order))
        .route("/_devstack/orders/{id}/status", post(test_set_status));
    api.merge(devstack).merge(control::routes::<SellappState>()).fallback(not_found).with_state(state)
}

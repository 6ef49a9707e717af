//! Urja's REST API: `fn app(state) -> Router`, under `/api/v1`, with its OpenAPI 3 document at
//! `/api/openapi.json`.
//!
//! - Every `/api/v1` route needs `Authorization: Bearer <token>` ([`auth`]); tokens have a role
//!   (`admin` ⊇ `operator` ⊇ `reader`). A missing, unknown, expired or revoked token is 401; a
//!   role that does not grant the call is 403. The OpenAPI document is public. Exceptions: the
//!   payment gateway's webhook (signed instead), and the consumer portal ([`portal`]): its
//!   registration and login take no token, and its other routes a consumer's session, which
//!   no staff route accepts.
//! - Times go out in ISO 8601 with the IST offset (`2026-12-01T00:15:00+05:30`) and come in as
//!   RFC 3339 with any offset ([`time`]).
//! - Errors are `{"code": "...", "message": "..."}` with a fitting status; internal details are
//!   logged, never answered ([`error`]).
//! - Every list pages: `limit` (default 100, at most 1000) and an opaque `cursor`;
//!   `{"items": [...], "next_cursor": ...}` ([`paging`]).
//!
//! The store is synchronous; handlers call it on tokio's blocking pool ([`AppState::db`]).

pub mod auth;
pub mod bills;
pub mod care;
pub mod commands;
pub mod consumers;
pub mod error;
pub mod exceptions;
pub mod extract;
pub mod field;
pub mod meters;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod outages;
pub mod paging;
pub mod payments;
pub mod portal;
pub mod prepaid;
pub mod readings;
pub mod tamper;
pub mod time;
pub mod tokens;
pub mod wallets;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use hes::commands::Commands;
use store::Store;

use crate::error::ApiError;

pub use auth::{Caller, IssuedToken, issue_token};

/// Where "now" comes from (the system clock, or a fixed one in tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Request bodies are small JSON documents; a group command with a thousand serials is about
/// 40 KB.
const BODY_LIMIT: usize = 256 * 1024;

/// What the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    store: Store,
    commands: Option<Commands>,
    clock: Clock,
    firmware_dir: PathBuf,
    prepaid: Option<::prepaid::service::Prepaid>,
    /// Payment gateways by name, with the secret each signs its webhooks with.
    gateways: Arc<HashMap<String, GatewaySecret>>,
}

/// A secret shared with a payment gateway; never printed.
#[derive(Clone)]
pub struct GatewaySecret(Vec<u8>);

impl GatewaySecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        GatewaySecret(secret.into())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for GatewaySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewaySecret(…)")
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("commands", &self.commands.is_some())
            .field("firmware_dir", &self.firmware_dir)
            .field("prepaid", &self.prepaid.is_some())
            .field("gateways", &self.gateways.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The API over `store`, on the system clock, without a command executor (command
    /// endpoints answer 503), taking firmware images from `firmware/` beside the database.
    pub fn new(store: Store) -> Self {
        let firmware_dir = store
            .path()
            .parent()
            .map(|p| p.join("firmware"))
            .unwrap_or_else(|| PathBuf::from("firmware"));
        AppState {
            store,
            commands: None,
            clock: Arc::new(Utc::now),
            firmware_dir,
            prepaid: None,
            gateways: Arc::new(HashMap::new()),
        }
    }

    /// Commands are sent to meters through `commands`.
    pub fn with_commands(mut self, commands: Commands) -> Self {
        self.commands = Some(commands);
        self
    }

    /// The prepaid engine behind the prepaid routes (without it they answer 503).
    pub fn with_prepaid(mut self, engine: ::prepaid::service::Prepaid) -> Self {
        self.prepaid = Some(engine);
        self
    }

    /// Accepts payment confirmations from gateway `name`, signed with `secret`.
    pub fn with_gateway(mut self, name: impl Into<String>, secret: GatewaySecret) -> Self {
        Arc::make_mut(&mut self.gateways).insert(name.into(), secret);
        self
    }

    /// "Now" comes from `clock` (token expiry, default time ranges, edit and close times).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Firmware images named in upgrade commands are looked up in `dir` (and only there).
    pub fn with_firmware_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.firmware_dir = dir.into();
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn firmware_dir(&self) -> &std::path::Path {
        &self.firmware_dir
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The command executor, or 503 when this process has none.
    pub fn commands(&self) -> Result<&Commands, ApiError> {
        self.commands.as_ref().ok_or_else(|| {
            ApiError::unavailable(
                "commands_unavailable",
                "this server does not send commands to meters (no head-end runs in it)",
            )
        })
    }

    /// Runs `f` on the store on tokio's blocking pool.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> store::Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(ApiError::internal("a store task failed", &e)),
        }
    }
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics::prometheus))
        .route("/api/v1/meters", get(meters::list))
        .route("/api/v1/meters/{serial}", get(meters::one))
        .route(
            "/api/v1/meters/{serial}/intervals",
            get(readings::intervals),
        )
        .route(
            "/api/v1/meters/{serial}/intervals/{end}",
            get(readings::interval).put(readings::edit_interval),
        )
        .route(
            "/api/v1/meters/{serial}/intervals/{end}/history",
            get(readings::interval_history),
        )
        .route("/api/v1/meters/{serial}/daily", get(readings::daily))
        .route("/api/v1/meters/{serial}/billing", get(readings::billing))
        .route(
            "/api/v1/meters/{serial}/instantaneous",
            get(readings::instantaneous),
        )
        .route("/api/v1/meters/{serial}/events", get(readings::events))
        .route("/api/v1/meters/{serial}/alarms", get(readings::alarms))
        .route(
            "/api/v1/consumers/{consumer_no}/daily",
            get(consumers::daily),
        )
        .route(
            "/api/v1/consumers/{consumer_no}/determinants",
            get(consumers::determinants),
        )
        .route("/api/v1/completeness", get(consumers::completeness))
        .route("/api/v1/notices", get(consumers::notices))
        .route(
            "/api/v1/consumers/{consumer_no}/wallet",
            get(wallets::wallet),
        )
        .route(
            "/api/v1/consumers/{consumer_no}/ledger",
            get(wallets::ledger),
        )
        .route(
            "/api/v1/consumers/{consumer_no}/payments",
            get(prepaid::payments),
        )
        .route(
            "/api/v1/consumers/{consumer_no}/emergency-credit",
            post(prepaid::emergency_credit),
        )
        .route("/api/v1/payments/{gateway}/webhook", post(prepaid::webhook))
        .route("/api/v1/payments/import", post(payments::import))
        .route(
            "/api/v1/work-orders",
            get(field::work_orders).post(field::raise),
        )
        .route("/api/v1/work-orders/{number}", get(field::work_order))
        .route("/api/v1/work-orders/{number}/assign", post(field::assign))
        .route(
            "/api/v1/work-orders/{number}/complete",
            post(field::complete),
        )
        .route("/api/v1/work-orders/{number}/resolve", post(field::resolve))
        .route("/api/v1/work-orders/{number}/cancel", post(field::cancel))
        .route(
            "/api/v1/connections",
            get(field::connections).post(field::request_connection),
        )
        .route("/api/v1/connections/{number}", get(field::connection))
        .route("/api/v1/consumers/{consumer_no}", get(field::consumer))
        .route(
            "/api/v1/consumers/{consumer_no}/history",
            get(field::history),
        )
        .route("/api/v1/receipts/{receipt_no}", get(payments::receipt))
        .route(
            "/api/v1/consumers/{consumer_no}/receipts",
            get(payments::receipts),
        )
        .route(
            "/api/v1/consumers/{consumer_no}/statement",
            get(payments::statement),
        )
        .route(
            "/api/v1/consumers/{consumer_no}/contact",
            get(notifications::contact).put(notifications::put_contact),
        )
        .route("/api/v1/notifications", get(notifications::list))
        .route("/api/v1/notifications/{seq}", get(notifications::one))
        .route("/api/v1/portal/registrations", post(portal::start))
        .route(
            "/api/v1/portal/registrations/{id}/verify",
            post(portal::verify),
        )
        .route(
            "/api/v1/portal/registrations/{id}/resend",
            post(portal::resend),
        )
        .route("/api/v1/portal/login", post(portal::login))
        .route("/api/v1/portal/password", post(portal::change_password))
        .route("/api/v1/portal/me", get(portal::me))
        .route(
            "/api/v1/consumers/{consumer_no}/bills",
            get(bills::of_consumer),
        )
        .route("/api/v1/bills/{id}/pdf", get(bills::pdf))
        .route(
            "/api/v1/consumers/{consumer_no}/tamper-periods",
            get(tamper::list).post(tamper::confirm),
        )
        .route("/api/v1/billing-cycles/{day}/run", post(bills::run_cycle))
        .route(
            "/api/v1/consumers/{consumer_no}/billing",
            axum::routing::put(bills::put_account),
        )
        .route(
            "/api/v1/tariffs",
            get(prepaid::tariffs).post(prepaid::put_tariff),
        )
        .route("/api/v1/care/types", get(care::types))
        .route("/api/v1/care/ageing", get(care::ageing))
        .route(
            "/api/v1/service-requests",
            get(care::list_requests).post(care::register_request),
        )
        .route("/api/v1/service-requests/{srn}", get(care::request))
        .route(
            "/api/v1/service-requests/{srn}/updates",
            post(care::update_request),
        )
        .route(
            "/api/v1/service-requests/{srn}/completion",
            post(care::complete_request),
        )
        .route(
            "/api/v1/complaints",
            get(care::list_complaints).post(care::register_complaint),
        )
        .route("/api/v1/complaints/{crn}", get(care::complaint))
        .route(
            "/api/v1/complaints/{crn}/updates",
            post(care::update_complaint),
        )
        .route(
            "/api/v1/complaints/{crn}/completion",
            post(care::complete_complaint),
        )
        .route("/api/v1/disconnections", get(prepaid::cases))
        .route("/api/v1/disconnections/{id}", get(prepaid::case))
        .route(
            "/api/v1/migrations",
            get(prepaid::migrations).post(prepaid::start_migration),
        )
        .route("/api/v1/migrations/{id}", get(prepaid::migration))
        .route(
            "/api/v1/network/{node}/meters",
            get(consumers::meters_below),
        )
        .route("/api/v1/exceptions", get(exceptions::list))
        .route("/api/v1/exceptions/{id}/close", post(exceptions::close))
        .route("/api/v1/commands", post(commands::submit))
        .route("/api/v1/commands/{id}", get(commands::status))
        .route("/api/v1/command-groups", post(commands::submit_group))
        .route(
            "/api/v1/command-groups/{batch}",
            get(commands::group_status),
        )
        .route("/api/v1/outages", get(outages::list))
        .route("/api/v1/outages/{id}", get(outages::one))
        .route("/api/v1/outages/{id}/ping", post(outages::ping_outage))
        .route("/api/v1/oms/ping", post(outages::ping_request))
        .route("/api/v1/oms/ping/{batch}", get(outages::ping_report))
        .route("/api/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/api/v1/tokens/{id}", axum::routing::delete(tokens::revoke))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers every answer carries: nothing here is to be sniffed as another type, framed,
/// cached by a shared cache, or allowed to load anything (the API serves data, not pages).
async fn security_headers(mut res: axum::response::Response) -> axum::response::Response {
    use axum::http::header::{self, HeaderValue};
    let h = res.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; the API is described at /api/openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /api/openapi.json",
    )
}

/// A serial from a path or body, checked.
pub(crate) fn serial(s: &str) -> Result<model::MeterSerial, ApiError> {
    model::MeterSerial::new(s)
        .map_err(|e| ApiError::bad_request("invalid_serial", format!("meter serial {s:?}: {e}")))
}

/// Serves the API on `listener` until `shutdown` completes (connections in flight are
/// finished; idle ones are closed).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

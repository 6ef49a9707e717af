//! The prepaid engine's API: the payment gateway's webhook (signed, not a bearer token), a
//! consumer's payments and emergency credit, tariff versions, the disconnection cases and the
//! payment-mode migrations.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::NaiveDate;
use model::Paise;
use prepaid::gateway::{self, GatewayError};
use prepaid::service::{Prepaid, PrepaidError};
use prepaid::tariff::Tariff;
use serde::{Deserialize, Serialize};
use store::Role;
use store::prepaid_ops::{CaseState, ModeMigration, Payment, SupplyCase, TariffVersion};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::{ist, ist_opt};

impl From<PrepaidError> for ApiError {
    fn from(e: PrepaidError) -> Self {
        match e {
            PrepaidError::Store(e) => ApiError::from(e),
            PrepaidError::NotFound(m) => ApiError::not_found(m),
            PrepaidError::Refused(m) => ApiError::conflict("refused", m),
            PrepaidError::Command(e) => ApiError::internal("a command to the head-end failed", &e),
            PrepaidError::Billing(billing::payments::PaymentError::Store(e)) => ApiError::from(e),
            other => ApiError::internal("the prepaid engine failed", &other),
        }
    }
}

pub(crate) fn engine(state: &AppState) -> Result<&Prepaid, ApiError> {
    state.prepaid.as_ref().ok_or_else(|| {
        ApiError::unavailable(
            "prepaid_unavailable",
            "the prepaid engine does not run in this server",
        )
    })
}

/// What became of a payment confirmation.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// `credited` (to a prepaid wallet), `applied` (to a postpaid account), `refused` (to be
    /// refunded), `unmatched` (no such consumer) or `ignored` (an event not acted on).
    pub status: String,
    pub reason: Option<String>,
    /// Prepaid: the balance after the credit.
    pub balance_paise: Option<i64>,
    /// Postpaid: what is owed after it (negative: in advance).
    pub outstanding_paise: Option<i64>,
    pub receipt_no: Option<String>,
    /// False for a confirmation seen before: nothing was done again.
    pub first_time: bool,
}

/// The payment gateway's confirmation of a captured payment (use case 17.5). Authenticated by
/// the `X-Urja-Signature` header (`t=<unix s>,v1=<hex HMAC-SHA256 of "t.body">` under the
/// gateway's secret), not by a token. Every signed confirmation is kept whole before anything
/// else; a replay is answered as the first one was and credits nothing.
#[utoipa::path(
    post,
    path = "/api/v1/payments/{gateway}/webhook",
    tag = "prepaid",
    params(("gateway" = String, Path, description = "The gateway's name as configured")),
    request_body(content = Object, description = "{\"event\": \"payment.captured\", \"payment\": {\"id\", \"amount\" (paise), \"currency\": \"INR\", \"consumer_no\", \"captured_at\"}}"),
    responses(
        (status = 200, description = "Kept; what became of it", body = WebhookAnswer),
        (status = 400, description = "Signed, but not a payment confirmation", body = ErrorBody),
        (status = 401, description = "Unknown gateway; bad, missing or stale signature", body = ErrorBody),
    )
)]
pub async fn webhook(
    State(state): State<AppState>,
    Path(gateway_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAnswer>, ApiError> {
    // Unknown to us is unauthenticated: the same answer as a bad signature.
    let secret = state.gateways.get(&gateway_name).ok_or_else(|| {
        ApiError::unauthorized(format!("no payment gateway {gateway_name:?} is configured"))
    })?;
    let header = headers
        .get(gateway::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let now = state.now();
    let confirmation = match gateway::verify(&gateway_name, secret.bytes(), header, &body, now) {
        Ok(c) => c,
        Err(GatewayError::Ignored(event)) => {
            return Ok(Json(WebhookAnswer {
                status: "ignored".into(),
                reason: Some(format!("event {event} is not acted on")),
                balance_paise: None,
                outstanding_paise: None,
                receipt_no: None,
                first_time: false,
            }));
        }
        Err(e @ GatewayError::Body(_)) => {
            tracing::warn!(gateway = gateway_name, error = %e, "signed webhook refused");
            return Err(ApiError::bad_request("bad_confirmation", e.to_string()));
        }
        Err(e) => {
            tracing::warn!(gateway = gateway_name, error = %e, "webhook signature refused");
            return Err(ApiError::unauthorized(e.to_string()));
        }
    };
    let done = engine(&state)?.payment_confirmed(confirmation, now).await?;
    Ok(Json(WebhookAnswer {
        status: done.status,
        reason: done.reason,
        balance_paise: done.balance.map(|b| b.0),
        outstanding_paise: done.outstanding.map(|b| b.0),
        receipt_no: done.receipt_no,
        first_time: done.new,
    }))
}

/// A payment as kept.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub gateway: String,
    pub payment_id: String,
    pub consumer_no: String,
    pub amount_paise: i64,
    pub amount: String,
    /// `received`, `credited` (a wallet), `applied` (a postpaid account), `refused` or
    /// `unmatched`.
    pub status: String,
    /// Through a digital channel (gateway, bank transfer, card, UPI).
    pub digital: bool,
    pub reason: Option<String>,
    pub paid_at: String,
    pub received_at: String,
    pub balance_after_paise: Option<i64>,
}

impl From<Payment> for PaymentView {
    fn from(p: Payment) -> Self {
        PaymentView {
            gateway: p.gateway,
            payment_id: p.payment_id,
            consumer_no: p.consumer_no,
            amount_paise: p.amount.0,
            amount: p.amount.to_string(),
            status: p.status,
            digital: p.digital,
            reason: p.reason,
            paid_at: ist(p.paid_at),
            received_at: ist(p.received_at),
            balance_after_paise: p.balance.map(|b| b.0),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    pub limit: Option<u32>,
}

/// A consumer's payments (recharges), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/payments",
    tag = "prepaid",
    params(("consumer_no" = String, Path, description = "Consumer number"), LimitQuery),
    responses(
        (status = 200, description = "Payments, newest first", body = Vec<PaymentView>),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn payments(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Vec<PaymentView>>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let rows = state.db(move |s| s.payments_of(&no, limit)).await?;
    Ok(Json(rows.into_iter().map(PaymentView::from).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmergencyCreditView {
    pub consumer_no: String,
    pub granted_paise: i64,
    pub balance_paise: i64,
    pub balance: String,
}

/// Grants emergency credit (once per recharge cycle, when the balance is low); recovered from
/// the next recharge, and the supply protected while it runs.
#[utoipa::path(
    post,
    path = "/api/v1/consumers/{consumer_no}/emergency-credit",
    tag = "prepaid",
    params(("consumer_no" = String, Path, description = "Consumer number")),
    responses(
        (status = 200, description = "Granted", body = EmergencyCreditView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "Not a prepaid consumer", body = ErrorBody),
        (status = 409, description = "Not now: balance not low, or granted in this cycle", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn emergency_credit(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
) -> Result<Json<EmergencyCreditView>, ApiError> {
    caller.require(Role::Operator)?;
    let engine = engine(&state)?;
    let balance = engine.grant_emergency_credit(&no, state.now()).await?;
    Ok(Json(EmergencyCreditView {
        consumer_no: no,
        granted_paise: engine.config().emergency.amount.0,
        balance_paise: balance.0,
        balance: balance.to_string(),
    }))
}

/// A tariff version.
#[derive(Debug, Serialize, ToSchema)]
pub struct TariffVersionView {
    /// `prepaid` (daily charges) or `postpaid` (monthly bills).
    pub scheme: String,
    pub category: String,
    #[schema(value_type = String, format = Date)]
    pub effective_from: NaiveDate,
    pub code: String,
    /// The tariff: unit, fixed charge per kW per day, slabs, duty, …
    #[schema(value_type = Object)]
    pub tariff: serde_json::Value,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SchemeQuery {
    /// `prepaid` or `postpaid`: reading, only that scheme's; adding, the tariff's scheme
    /// (default `prepaid`).
    pub scheme: Option<String>,
}

fn scheme(q: &SchemeQuery) -> Result<Option<&'static str>, ApiError> {
    match q.scheme.as_deref() {
        None => Ok(None),
        Some("prepaid") => Ok(Some("prepaid")),
        Some("postpaid") => Ok(Some("postpaid")),
        Some(other) => Err(ApiError::bad_request(
            "invalid_scheme",
            format!("scheme {other:?}: prepaid or postpaid"),
        )),
    }
}

/// Every tariff version, by scheme, category and date.
#[utoipa::path(
    get,
    path = "/api/v1/tariffs",
    tag = "prepaid",
    params(SchemeQuery),
    responses(
        (status = 200, description = "Versions", body = Vec<TariffVersionView>),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn tariffs(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<SchemeQuery>,
) -> Result<Json<Vec<TariffVersionView>>, ApiError> {
    caller.require(Role::Reader)?;
    let only = scheme(&q)?;
    let rows = state.db(move |s| s.tariff_versions(only)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|v| TariffVersionView {
                scheme: v.scheme,
                tariff: serde_json::from_str(&v.body).unwrap_or(serde_json::Value::String(v.body)),
                category: v.category,
                effective_from: v.effective_from,
                code: v.code,
                created_by: v.created_by,
                created_at: ist(v.created_at),
            })
            .collect(),
    ))
}

/// Adds a tariff version (admin). A version already in force cannot be changed (409): add a
/// new one with a later date.
#[utoipa::path(
    post,
    path = "/api/v1/tariffs",
    tag = "prepaid",
    params(SchemeQuery),
    request_body(content = Object, description = "Prepaid: a tariff: code, category, effective_from, unit (kwh|kvah), fixed_per_kw_day, slabs [{up_to_kwh, rate}], duty_bp, tod_bp, cess_per_unit, levies, subsidies; rates in rupees as decimal strings. Postpaid: {base: <a tariff>, demand, power_factor, fppa_per_unit, minimum_per_kw_month, tamper_rate_bp, due_days, late_payment_bp, prompt_rebate_bp, prompt_days, digital_rebate_bp, digital_rebate_cap}"),
    responses(
        (status = 201, description = "Stored"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs admin", body = ErrorBody),
        (status = 409, description = "That version is in force", body = ErrorBody),
        (status = 422, description = "Not a valid tariff", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_tariff(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<SchemeQuery>,
    Json(body): Json<serde_json::Value>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let invalid = |e: String| ApiError::unprocessable("invalid_tariff", e);
    let scheme = scheme(&q)?.unwrap_or("prepaid");
    // The tariff as it reads, checked; stored as read (defaults filled in).
    let (base, stored) = if scheme == "postpaid" {
        let t: billing::bill::PostpaidTariff =
            serde_json::from_value(body).map_err(|e| invalid(e.to_string()))?;
        let json = serde_json::to_string(&t).map_err(|e| invalid(e.to_string()))?;
        (t.base, json)
    } else {
        let t: Tariff = serde_json::from_value(body).map_err(|e| invalid(e.to_string()))?;
        let json = serde_json::to_string(&t).map_err(|e| invalid(e.to_string()))?;
        (t, json)
    };
    base.check().map_err(|e| invalid(e.to_string()))?;
    let now = state.now();
    let version = TariffVersion {
        scheme: scheme.into(),
        category: base.category.clone(),
        effective_from: base.effective_from,
        code: base.code.clone(),
        body: stored,
        created_by: caller.who(),
        created_at: now,
    };
    let today = mdm::calendar::ist_date(now);
    state.db(move |s| s.tariff_put(&version, today)).await?;
    Ok(StatusCode::CREATED)
}

/// A disconnection case, from the shortfall to the reconnection.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    pub id: u64,
    pub consumer_no: String,
    pub meter: String,
    /// `short`, `disconnecting`, `disconnected`, `reconnecting` or `closed`.
    pub state: String,
    pub opened_at: String,
    pub balance_at_open_paise: i64,
    pub warned_at: Option<String>,
    /// The earliest disconnection the warning announced.
    pub disconnect_from: Option<String>,
    pub disconnect_command: Option<String>,
    /// When the open relay was read back.
    pub disconnected_at: Option<String>,
    pub recharged_at: Option<String>,
    /// The regulator's limit for the reconnection.
    pub reconnect_due_by: Option<String>,
    pub reconnect_command: Option<String>,
    /// When the closed relay was read back.
    pub reconnected_at: Option<String>,
    /// Minutes from the recharge to the confirmed reconnection.
    pub reconnection_minutes: Option<i64>,
    /// The reconnection is not confirmed and its limit has passed.
    pub overdue: bool,
    pub attempts: u32,
    pub closed_at: Option<String>,
    pub outcome: Option<String>,
    pub last_error: Option<String>,
}

fn case_view(c: SupplyCase, now: chrono::DateTime<chrono::Utc>) -> CaseView {
    CaseView {
        reconnection_minutes: c
            .recharged_at
            .zip(c.reconnected_at)
            .map(|(r, done)| (done - r).num_minutes()),
        overdue: c.reconnected_at.is_none() && c.reconnect_due_by.is_some_and(|due| due < now),
        id: c.id,
        consumer_no: c.consumer_no,
        meter: c.meter.to_string(),
        state: c.state.name().into(),
        opened_at: ist(c.opened_at),
        balance_at_open_paise: c.balance_at_open.0,
        warned_at: ist_opt(c.warned_at),
        disconnect_from: ist_opt(c.disconnect_from),
        disconnect_command: c.disconnect_command,
        disconnected_at: ist_opt(c.disconnected_at),
        recharged_at: ist_opt(c.recharged_at),
        reconnect_due_by: ist_opt(c.reconnect_due_by),
        reconnect_command: c.reconnect_command,
        reconnected_at: ist_opt(c.reconnected_at),
        attempts: c.attempts,
        closed_at: ist_opt(c.closed_at),
        outcome: c.outcome,
        last_error: c.last_error,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    /// `short`, `disconnecting`, `disconnected`, `reconnecting` or `closed`.
    pub state: Option<String>,
    pub consumer_no: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseView>,
    pub next_cursor: Option<String>,
}

const CASE_CURSOR: &str = "disconnections";

/// Disconnection cases, oldest first (use cases 3 and 4).
#[utoipa::path(
    get,
    path = "/api/v1/disconnections",
    tag = "prepaid",
    params(CaseQuery),
    responses(
        (status = 200, description = "Cases", body = CasePage),
        (status = 400, description = "Bad state, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cases(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<CaseQuery>,
) -> Result<Json<CasePage>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<u64>(CASE_CURSOR, q.cursor.as_deref())?.unwrap_or(0);
    let case_state = q
        .state
        .as_deref()
        .map(|s| {
            CaseState::parse(s)
                .ok_or_else(|| ApiError::bad_request("invalid_state", format!("state {s:?}")))
        })
        .transpose()?;
    let rows = state
        .db(move |s| s.supply_cases(case_state, q.consumer_no.as_deref(), after, limit + 1))
        .await?;
    let (rows, next) = paging::split(rows, limit, CASE_CURSOR, |c| c.id);
    let now = state.now();
    Ok(Json(CasePage {
        items: rows.into_iter().map(|c| case_view(c, now)).collect(),
        next_cursor: next,
    }))
}

/// One disconnection case.
#[utoipa::path(
    get,
    path = "/api/v1/disconnections/{id}",
    tag = "prepaid",
    params(("id" = u64, Path, description = "Case id")),
    responses(
        (status = 200, description = "The case", body = CaseView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn case(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<CaseView>, ApiError> {
    caller.require(Role::Reader)?;
    let found = state.db(move |s| s.supply_case(id)).await?;
    let c = found.ok_or_else(|| ApiError::not_found(format!("no disconnection case {id}")))?;
    Ok(Json(case_view(c, state.now())))
}

/// A payment-mode migration.
#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationView {
    pub id: u64,
    pub consumer_no: String,
    pub meter: String,
    /// `prepaid` or `postpaid`.
    pub to: String,
    /// `requested`, `running`, `completed` or `failed`.
    pub state: String,
    /// To prepaid: the opening balance; to postpaid: the closing balance carried over.
    pub balance_paise: i64,
    pub requested_by: String,
    pub requested_at: String,
    /// The step under way (0-based) and its command.
    pub step: u32,
    pub command: Option<String>,
    /// The steps done: name, command, state, what the meter answered.
    #[schema(value_type = Vec<Object>)]
    pub steps: serde_json::Value,
    pub completed_at: Option<String>,
    pub last_error: Option<String>,
}

impl From<ModeMigration> for MigrationView {
    fn from(m: ModeMigration) -> Self {
        MigrationView {
            id: m.id,
            consumer_no: m.consumer_no,
            meter: m.meter.to_string(),
            to: if m.to_prepaid { "prepaid" } else { "postpaid" }.into(),
            state: m.state.name().into(),
            balance_paise: m.balance.0,
            requested_by: m.requested_by,
            requested_at: ist(m.requested_at),
            step: m.step,
            command: m.command,
            steps: serde_json::from_str(&m.log).unwrap_or_default(),
            completed_at: ist_opt(m.completed_at),
            last_error: m.last_error,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MigrationRequest {
    pub consumer_no: String,
    /// `prepaid` (use case 13) or `postpaid` (14).
    pub to: String,
    /// To prepaid: the opening balance (the security deposit or an advance; what the postpaid
    /// account still owes is carried into the wallet when the move completes).
    #[serde(default)]
    pub opening_balance_paise: i64,
}

/// Moves a consumer between postpaid and prepaid (use cases 13 and 14) through the head-end,
/// one confirmed step after another. To prepaid: the mode written and read back, then
/// instantaneous, interval and event data read. To postpaid: the final read, the supply off
/// (confirmed), the mode written and read back, the supply on (confirmed), the verification
/// read. Then the wallet is opened with its opening balance (or closed, its balance carried to
/// the postpaid account) and the completion reported to billing and CIS. Poll the migration for
/// its progress.
#[utoipa::path(
    post,
    path = "/api/v1/migrations",
    tag = "prepaid",
    request_body = MigrationRequest,
    responses(
        (status = 202, description = "Started (or the one in progress)", body = MigrationView),
        (status = 400, description = "Bad request", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
        (status = 409, description = "Already in that mode, or no meter", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn start_migration(
    caller: Caller,
    State(state): State<AppState>,
    Json(req): Json<MigrationRequest>,
) -> Result<(StatusCode, Json<MigrationView>), ApiError> {
    caller.require(Role::Operator)?;
    let to_prepaid = match req.to.as_str() {
        "prepaid" => true,
        "postpaid" => false,
        other => {
            return Err(ApiError::bad_request(
                "invalid_mode",
                format!("to must be prepaid or postpaid, not {other:?}"),
            ));
        }
    };
    state.commands()?;
    let m = engine(&state)?
        .start_migration(
            &req.consumer_no,
            to_prepaid,
            Paise(req.opening_balance_paise),
            &caller.who(),
            state.now(),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(m.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MigrationQuery {
    /// Only those in progress.
    pub active: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationPage {
    pub items: Vec<MigrationView>,
    pub next_cursor: Option<String>,
}

const MIGRATION_CURSOR: &str = "migrations";

/// Payment-mode migrations, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/migrations",
    tag = "prepaid",
    params(MigrationQuery),
    responses(
        (status = 200, description = "Migrations", body = MigrationPage),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn migrations(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<MigrationQuery>,
) -> Result<Json<MigrationPage>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<u64>(MIGRATION_CURSOR, q.cursor.as_deref())?.unwrap_or(0);
    let active = q.active.unwrap_or(false);
    let rows = state
        .db(move |s| s.mode_migrations(active, after, limit + 1))
        .await?;
    let (rows, next) = paging::split(rows, limit, MIGRATION_CURSOR, |m| m.id);
    Ok(Json(MigrationPage {
        items: rows.into_iter().map(MigrationView::from).collect(),
        next_cursor: next,
    }))
}

/// One payment-mode migration.
#[utoipa::path(
    get,
    path = "/api/v1/migrations/{id}",
    tag = "prepaid",
    params(("id" = u64, Path, description = "Migration id")),
    responses(
        (status = 200, description = "The migration", body = MigrationView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such migration", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn migration(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<MigrationView>, ApiError> {
    caller.require(Role::Reader)?;
    let found = state.db(move |s| s.mode_migration(id)).await?;
    let m = found.ok_or_else(|| ApiError::not_found(format!("no migration {id}")))?;
    Ok(Json(m.into()))
}

//! Postpaid bills: a consumer's bills with every version, and a bill as PDF.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use store::Role;
use store::billing::StoredBill;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::ist;

/// A bill as issued.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillView {
    pub id: u64,
    pub consumer_no: String,
    pub period_from: String,
    pub period_to: String,
    pub version: u32,
    /// `issued` (in force) or `superseded` (by a revision).
    pub state: String,
    /// Computed from estimated or missing readings: trued up by a revision later.
    pub provisional: bool,
    pub current_paise: i64,
    pub payable_paise: i64,
    pub due_date: String,
    /// The bill: its lines, what is payable by and after the due date, …
    #[schema(value_type = Object)]
    pub bill: serde_json::Value,
    pub issued_at: String,
}

impl From<StoredBill> for BillView {
    fn from(b: StoredBill) -> Self {
        BillView {
            id: b.id,
            consumer_no: b.consumer_no,
            period_from: b.period_from.to_string(),
            period_to: b.period_to.to_string(),
            version: b.version,
            state: b.state,
            provisional: b.provisional,
            current_paise: b.current.0,
            payable_paise: b.payable.0,
            due_date: b.due_date.to_string(),
            bill: serde_json::from_str(&b.body).unwrap_or(serde_json::Value::String(b.body)),
            issued_at: ist(b.created_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BillQuery {
    pub limit: Option<u32>,
}

/// A consumer's bills, newest period first, every version.
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/bills",
    tag = "billing",
    params(("consumer_no" = String, Path, description = "Consumer number"), BillQuery),
    responses(
        (status = 200, description = "Bills", body = Vec<BillView>),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn of_consumer(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Query(q): Query<BillQuery>,
) -> Result<Json<Vec<BillView>>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let rows = state.db(move |s| s.bills_of(&no, limit)).await?;
    Ok(Json(rows.into_iter().map(BillView::from).collect()))
}

/// A bill as a one-page PDF, with the consumer's last twelve months of consumption.
#[utoipa::path(
    get,
    path = "/api/v1/bills/{id}/pdf",
    tag = "billing",
    params(("id" = u64, Path, description = "Bill id")),
    responses(
        (status = 200, description = "The bill", content_type = "application/pdf"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such bill", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn pdf(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Reader)?;
    let now = state.now();
    let pdf = state
        .db(move |s| billing::pdf::from_store(s, id, now))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no bill {id}")))?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CycleRun {
    /// The day the cycle runs as of (IST); the period billed is the one that ended before it.
    /// Default: today.
    #[schema(value_type = Option<String>, format = Date)]
    pub run_date: Option<chrono::NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CycleFailure {
    pub consumer_no: String,
    pub reason: String,
}

/// What a cycle run did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CycleView {
    pub cycle_day: u8,
    pub period_from: String,
    pub period_to: String,
    pub consumers: usize,
    pub new: usize,
    pub revised: usize,
    pub unchanged: usize,
    pub provisional: usize,
    pub failed: Vec<CycleFailure>,
}

/// Runs billing cycle `day` (use case 2.1): every consumer of the cycle billed for the period
/// that just ended, from the MDM's determinants; provisional where readings are estimated or
/// missing; the same figures again issue nothing, changed figures a revision.
#[utoipa::path(
    post,
    path = "/api/v1/billing-cycles/{day}/run",
    tag = "billing",
    params(("day" = u8, Path, description = "The cycle: the day of the month its periods start (1–28)")),
    request_body = CycleRun,
    responses(
        (status = 200, description = "The run", body = CycleView),
        (status = 400, description = "Not a cycle day", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn run_cycle(
    caller: Caller,
    State(state): State<AppState>,
    Path(day): Path<u8>,
    Json(body): Json<CycleRun>,
) -> Result<Json<CycleView>, ApiError> {
    caller.require(Role::Operator)?;
    if !(1..=28).contains(&day) {
        return Err(ApiError::bad_request(
            "invalid_cycle",
            format!("cycle day {day}: give 1 to 28"),
        ));
    }
    let run_date = body
        .run_date
        .unwrap_or_else(|| mdm::calendar::ist_date(state.now()));
    let (from, to) = billing::cycle::period(day, run_date);
    let report = state
        .db(move |s| {
            let book =
                billing::cycle::PostpaidBook::from_store(s).map_err(store::StoreError::Corrupt)?;
            billing::cycle::run_cycle(
                s,
                &book,
                day,
                run_date,
                &mdm::determinants::Metering::default(),
            )
        })
        .await?;
    Ok(Json(CycleView {
        cycle_day: day,
        period_from: from.to_string(),
        period_to: to.to_string(),
        consumers: report.consumers,
        new: report.new,
        revised: report.revised,
        unchanged: report.unchanged,
        provisional: report.provisional,
        failed: report
            .failed
            .into_iter()
            .map(|(consumer_no, reason)| CycleFailure {
                consumer_no,
                reason,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BillingAccountView {
    /// The day of the month the consumer's billing periods start (1–28).
    pub cycle_day: u8,
    /// VA, for tariffs with a demand charge.
    pub contract_demand_va: Option<u32>,
    /// What the consumer owed when billing started here, paise.
    #[serde(default)]
    pub opening_arrears_paise: i64,
}

/// Puts a postpaid consumer in a billing cycle.
#[utoipa::path(
    put,
    path = "/api/v1/consumers/{consumer_no}/billing",
    tag = "billing",
    params(("consumer_no" = String, Path, description = "Consumer number")),
    request_body = BillingAccountView,
    responses(
        (status = 204, description = "Stored"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
        (status = 409, description = "A prepaid consumer", body = ErrorBody),
        (status = 422, description = "Not a cycle day", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_account(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Json(body): Json<BillingAccountView>,
) -> Result<axum::http::StatusCode, ApiError> {
    caller.require(Role::Operator)?;
    let now = state.now();
    state
        .db(move |s| {
            if s.mdm_consumer(&no)?.is_none() {
                return Err(store::StoreError::NotFound(format!("consumer {no}")));
            }
            if s.prepaid_account(&no)?.is_some_and(|a| a.prepaid) {
                return Err(store::StoreError::Conflict(format!(
                    "{no} is prepaid: move them to postpaid (POST /api/v1/migrations) instead"
                )));
            }
            s.billing_account_put(
                &store::billing::BillingAccount {
                    consumer_no: no,
                    cycle_day: body.cycle_day,
                    contract_demand: body.contract_demand_va,
                    opening_arrears: model::Paise(body.opening_arrears_paise),
                    billed_from: None,
                    closed_on: None,
                },
                now,
            )
        })
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

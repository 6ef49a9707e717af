//! Money received beyond the gateway's webhook (use cases 18.1–18.6): counter and bank files,
//! receipts, and a postpaid account's statement (what each payment paid, oldest dues first).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use billing::payments::{FILE_COLUMNS, LineError, Source, read_file};
use prepaid::service::PaymentConfirmation;
use serde::{Deserialize, Serialize};
use store::Role;
use store::billing::Receipt;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::prepaid::{LimitQuery, engine};
use crate::time::ist;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `counter` (cash counters) or `bank` (the bank's collection file).
    pub source: String,
}

/// One payment of a file, and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedPayment {
    pub line: u64,
    pub reference: String,
    pub consumer_no: String,
    pub amount_paise: i64,
    /// `credited` (a prepaid wallet), `applied` (a postpaid account), `refused` or `unmatched`.
    pub status: String,
    pub reason: Option<String>,
    pub receipt_no: Option<String>,
    /// False when this reference was taken before (the file sent again): nothing done again.
    pub first_time: bool,
}

/// What a file import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReport {
    pub source: String,
    pub payments: Vec<ImportedPayment>,
    pub new: usize,
    pub seen_before: usize,
    pub unmatched: usize,
}

/// Why a file was refused: every line that cannot be taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportRefused {
    pub code: String,
    pub message: String,
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<LineError>,
}

/// Imports a counter or bank collection file (CSV with a header naming `reference`,
/// `consumer_no`, `amount` in rupees, `paid_at` in IST, `mode`). The whole file or nothing: a
/// file with any bad line (a half-written upload, a bad amount, a reference twice) is refused
/// with every bad line listed and nothing taken. Each payment is taken once per source and
/// reference, so sending a file again takes nothing twice; prepaid consumers' payments are
/// recharges, postpaid consumers' are applied to their accounts with a receipt, and each
/// consumer is told.
#[utoipa::path(
    post,
    path = "/api/v1/payments/import",
    tag = "billing",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "reference,consumer_no,amount,paid_at,mode"),
    responses(
        (status = 200, description = "Taken", body = ImportReport),
        (status = 400, description = "Unknown source", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 422, description = "Refused whole: the lines that cannot be taken", body = ImportRefused),
    ),
    security(("bearer" = []))
)]
pub async fn import(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<ImportQuery>,
    body: String,
) -> Result<Response, ApiError> {
    caller.require(Role::Operator)?;
    let source = Source::parse(&q.source).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_source",
            format!("source {:?}: give counter or bank", q.source),
        )
    })?;
    let rows = match read_file(&body) {
        Ok(rows) => rows,
        Err(lines) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(ImportRefused {
                    code: "bad_file".into(),
                    message: format!(
                        "{} line(s) cannot be taken; nothing was taken (columns: {})",
                        lines.len(),
                        FILE_COLUMNS.join(", ")
                    ),
                    lines,
                }),
            )
                .into_response());
        }
    };
    let engine = engine(&state)?;
    let now = state.now();
    let mut report = ImportReport {
        source: source.name().into(),
        payments: Vec::with_capacity(rows.len()),
        new: 0,
        seen_before: 0,
        unmatched: 0,
    };
    for row in rows {
        let done = engine
            .payment_confirmed(
                PaymentConfirmation {
                    gateway: source.name().into(),
                    payment_id: row.reference.clone(),
                    consumer_no: row.consumer_no.clone(),
                    amount: row.amount,
                    paid_at: row.paid_at,
                    body: row.record,
                    digital: row.digital,
                },
                now,
            )
            .await?;
        if done.new {
            report.new += 1;
        } else {
            report.seen_before += 1;
        }
        report.unmatched += usize::from(done.status == "unmatched");
        report.payments.push(ImportedPayment {
            line: row.line,
            reference: row.reference,
            consumer_no: row.consumer_no,
            amount_paise: row.amount.0,
            status: done.status,
            reason: done.reason,
            receipt_no: done.receipt_no,
            first_time: done.new,
        });
    }
    tracing::info!(
        source = source.name(),
        new = report.new,
        seen_before = report.seen_before,
        unmatched = report.unmatched,
        "payment file imported"
    );
    Ok(axum::Json(report).into_response())
}

/// A receipt.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptView {
    pub receipt_no: String,
    /// Where it came from: the gateway's name, `counter` or `bank`.
    pub source: String,
    pub reference: String,
    pub consumer_no: String,
    pub amount_paise: i64,
    pub amount: String,
    pub paid_at: String,
    /// Postpaid: the dues it paid (`due`: `opening` or a bill's period start; `amount`;
    /// `rebate` earned) and what is left as an advance. Prepaid: the wallet.
    #[schema(value_type = Object)]
    pub allocation: serde_json::Value,
    /// Postpaid: owed after it (negative: in advance). Prepaid: the balance after it.
    pub standing_paise: i64,
    pub standing: String,
    pub issued_at: String,
}

impl From<Receipt> for ReceiptView {
    fn from(r: Receipt) -> Self {
        ReceiptView {
            receipt_no: r.receipt_no,
            source: r.gateway,
            reference: r.payment_id,
            consumer_no: r.consumer_no,
            amount_paise: r.amount.0,
            amount: r.amount.to_string(),
            paid_at: ist(r.paid_at),
            allocation: serde_json::from_str(&r.allocation).unwrap_or(serde_json::Value::Null),
            standing_paise: r.standing.0,
            standing: r.standing.to_string(),
            issued_at: ist(r.issued_at),
        }
    }
}

/// One receipt.
#[utoipa::path(
    get,
    path = "/api/v1/receipts/{receipt_no}",
    tag = "billing",
    params(("receipt_no" = String, Path, description = "Receipt number")),
    responses(
        (status = 200, description = "The receipt", body = ReceiptView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such receipt", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn receipt(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
) -> Result<Json<ReceiptView>, ApiError> {
    caller.require(Role::Reader)?;
    let found = state.db(move |s| s.receipt(&no)).await?;
    found
        .map(|r| Json(r.into()))
        .ok_or_else(|| ApiError::not_found("no such receipt"))
}

/// A consumer's receipts, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/receipts",
    tag = "billing",
    params(("consumer_no" = String, Path, description = "Consumer number"), LimitQuery),
    responses(
        (status = 200, description = "Receipts, newest first", body = Vec<ReceiptView>),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn receipts(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Vec<ReceiptView>>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let rows = state.db(move |s| s.receipts_of(&no, limit)).await?;
    Ok(Json(rows.into_iter().map(ReceiptView::from).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// The day (IST, `YYYY-MM-DD`) the account is shown as on; today by default.
    #[param(value_type = Option<String>, format = Date)]
    pub as_on: Option<chrono::NaiveDate>,
}

/// A postpaid account's statement.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementView {
    pub consumer_no: String,
    pub as_on: String,
    /// Owed in all (negative: paid in advance).
    pub outstanding_paise: i64,
    pub outstanding: String,
    /// Each due (`opening` arrears, then bills by period start): amount, paid, rebate,
    /// outstanding, and what was unpaid at its due date.
    #[schema(value_type = Vec<Object>)]
    pub dues: Vec<billing::account::DueState>,
    /// Each payment applied, in the order paid, with where it went.
    #[schema(value_type = Vec<Object>)]
    pub payments: Vec<billing::account::PaymentState>,
}

/// A postpaid consumer's account as on a day: every bill and payment, each payment allocated
/// to the oldest dues first, rebates taken, and what is owed.
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/statement",
    tag = "billing",
    params(("consumer_no" = String, Path, description = "Consumer number"), StatementQuery),
    responses(
        (status = 200, description = "The statement", body = StatementView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "Not in a billing cycle", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn statement(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Query(q): Query<StatementQuery>,
) -> Result<Json<StatementView>, ApiError> {
    caller.require(Role::Reader)?;
    let as_on = q
        .as_on
        .unwrap_or_else(|| mdm::calendar::ist_date(state.now()));
    let consumer_no = no.clone();
    let found = state
        .db(move |s| {
            billing::payments::account_statement(s, &consumer_no, as_on).map_err(|e| match e {
                billing::payments::PaymentError::Store(e) => e,
                other => store::StoreError::Corrupt(other.to_string()),
            })
        })
        .await?;
    let s = found.ok_or_else(|| ApiError::not_found(format!("{no} is not in a billing cycle")))?;
    Ok(Json(StatementView {
        consumer_no: no,
        as_on: s.as_on.to_string(),
        outstanding_paise: s.outstanding.0,
        outstanding: s.outstanding.to_string(),
        dues: s.dues,
        payments: s.payments,
    }))
}

//! Confirmed tamper periods of a consumer (use case 5.6): an operator confirms one, the next
//! billing cycle assesses it by the tariff's policy as its own bill line, once.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::Role;
use store::tamper::{NewTamperPeriod, TamperPeriod, TamperSource};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::{ist, parse_time};

/// A tamper period to confirm.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TamperPeriodRequest {
    /// The meter tampered with; it measured the consumer's supply in the period.
    pub meter: String,
    /// The IS 15959 event code of the tamper, when a meter event shows it (e.g. 201, magnet).
    pub tamper_code: Option<u16>,
    /// Shown on the bill, e.g. "Magnet tamper".
    pub reason: String,
    /// RFC 3339 with an offset.
    #[schema(format = DateTime, example = "2026-11-10T00:00:00+05:30")]
    pub from: String,
    /// RFC 3339 with an offset; after `from`, not in the future.
    #[schema(format = DateTime, example = "2026-11-17T00:00:00+05:30")]
    pub to: String,
}

/// A confirmed tamper period.
#[derive(Debug, Serialize, ToSchema)]
pub struct TamperPeriodView {
    pub id: u64,
    pub consumer_no: String,
    pub meter: String,
    pub tamper_code: Option<u16>,
    pub reason: String,
    pub from: String,
    pub to: String,
    pub confirmed_by: String,
    pub confirmed_at: String,
    /// `operator` or `inspection`.
    pub source: String,
    /// The first day of the bill period it was assessed in; absent until billed.
    pub billed_period_from: Option<String>,
}

impl From<TamperPeriod> for TamperPeriodView {
    fn from(p: TamperPeriod) -> Self {
        TamperPeriodView {
            id: p.id,
            consumer_no: p.consumer_no,
            meter: p.meter.to_string(),
            tamper_code: p.tamper_code,
            reason: p.reason,
            from: ist(p.from),
            to: ist(p.to),
            confirmed_by: p.confirmed_by,
            confirmed_at: ist(p.confirmed_at),
            source: p.source.as_str().into(),
            billed_period_from: p.billed_period_from.map(|d| d.to_string()),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TamperQuery {
    pub limit: Option<u32>,
}

/// A consumer's confirmed tamper periods, latest first.
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/tamper-periods",
    tag = "billing",
    params(("consumer_no" = String, Path, description = "Consumer number"), TamperQuery),
    responses(
        (status = 200, description = "Tamper periods", body = Vec<TamperPeriodView>),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Query(q): Query<TamperQuery>,
) -> Result<Json<Vec<TamperPeriodView>>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let rows = state.db(move |s| s.tamper_periods_of(&no, limit)).await?;
    Ok(Json(rows.into_iter().map(TamperPeriodView::from).collect()))
}

/// Confirms a tamper period (use case 5.6): the consumer's next bill assesses it by the
/// tariff's policy, as its own line with its reason.
#[utoipa::path(
    post,
    path = "/api/v1/consumers/{consumer_no}/tamper-periods",
    tag = "billing",
    params(("consumer_no" = String, Path, description = "Consumer number")),
    request_body = TamperPeriodRequest,
    responses(
        (status = 201, description = "Confirmed", body = TamperPeriodView),
        (status = 400, description = "A time or serial that does not read", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
        (status = 409, description = "Overlaps another tamper period of the consumer", body = ErrorBody),
        (status = 422, description = "An empty or future span, or a meter that did not measure the consumer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn confirm(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Json(body): Json<TamperPeriodRequest>,
) -> Result<(StatusCode, Json<TamperPeriodView>), ApiError> {
    caller.require(Role::Operator)?;
    let meter = crate::serial(&body.meter)?;
    let from = parse_time("from", &body.from)?;
    let to = parse_time("to", &body.to)?;
    let now = state.now();
    let by = caller.who();
    let stored = state
        .db(move |s| {
            s.tamper_period_record(
                &NewTamperPeriod {
                    consumer_no: &no,
                    meter: &meter,
                    tamper_code: body.tamper_code,
                    reason: &body.reason,
                    from,
                    to,
                    confirmed_by: &by,
                    source: TamperSource::Operator,
                },
                now,
            )
        })
        .await?;
    tracing::info!(by = %caller.who(), consumer = %stored.consumer_no, id = stored.id, "tamper period confirmed");
    Ok((StatusCode::CREATED, Json(stored.into())))
}

//! What the MDM hands on, and how complete its data is: a consumer's daily consumption (use
//! case 1.4) and billing determinants (2.5), the data completeness of a day, and the meters
//! below a node of the network.

use axum::extract::State;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use mdm::completeness::{CompletenessConfig, DayCompleteness};
use mdm::determinants::{BillingDeterminants, DailyConsumption, Figures, Metering, PeakDemand};
use serde::{Deserialize, Serialize};
use store::Role;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::{ist, parse_time};

/// A local (IST) day.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The IST day, `YYYY-MM-DD`. Default: yesterday.
    pub day: Option<String>,
}

/// A day of the completeness report, with a page of the meters short of it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompletenessQuery {
    /// The IST day, `YYYY-MM-DD`. Default: yesterday.
    pub day: Option<String>,
    /// Hours after the day's end that still count as on time (default 8).
    pub on_time_hours: Option<i64>,
    /// Meters short of complete, per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A billing period.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Start (RFC 3339 with an offset), inclusive of intervals ending after it.
    pub from: String,
    /// End, inclusive of the interval ending at it. At most 92 days after `from`.
    pub to: String,
}

/// An instant for a question about the network.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtQuery {
    /// As of when (RFC 3339 with an offset). Default: now.
    pub at: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A highest demand and the end of the interval it was in.
#[derive(Debug, Serialize, ToSchema)]
pub struct Peak {
    /// W or VA.
    pub value: i64,
    pub at: String,
}

/// Sums and peaks over a set of intervals.
#[derive(Debug, Serialize, ToSchema)]
pub struct Totals {
    pub import_wh: i64,
    pub import_vah: i64,
    pub export_wh: i64,
    pub export_vah: i64,
    /// Highest average demand of an interval, W.
    pub max_w: Option<Peak>,
    pub max_va: Option<Peak>,
    pub average_pf: Option<f64>,
    pub intervals: u32,
    pub estimated_intervals: u32,
    /// Intervals flagged suspect by VEE: not in the sums until a person edits them.
    pub suspect_intervals: u32,
}

fn peak(p: &Option<PeakDemand>) -> Option<Peak> {
    p.as_ref().map(|p| Peak {
        value: p.value,
        at: ist(p.at),
    })
}

fn totals(f: &Figures) -> Totals {
    Totals {
        import_wh: f.import_wh,
        import_vah: f.import_vah,
        export_wh: f.export_wh,
        export_vah: f.export_vah,
        max_w: peak(&f.max_w),
        max_va: peak(&f.max_va),
        average_pf: f.average_pf(),
        intervals: f.intervals,
        estimated_intervals: f.estimated_intervals,
        suspect_intervals: f.suspect_intervals,
    }
}

/// A consumer's consumption on one IST day.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyConsumptionView {
    pub consumer_no: String,
    #[schema(example = "2026-12-01")]
    pub day: String,
    /// The meters that measured it (more than one across a meter change).
    pub meters: Vec<String>,
    pub totals: Totals,
    /// Whether any interval of the day was estimated.
    pub estimated: bool,
    /// Intervals of the day not in the store.
    pub missing_intervals: u32,
}

impl From<DailyConsumption> for DailyConsumptionView {
    fn from(d: DailyConsumption) -> Self {
        DailyConsumptionView {
            consumer_no: d.consumer_no,
            day: d.day.to_string(),
            meters: d.meters.iter().map(ToString::to_string).collect(),
            totals: totals(&d.figures),
            estimated: d.estimated,
            missing_intervals: d.missing_intervals,
        }
    }
}

/// A consumer's billing determinants for a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeterminantsView {
    pub consumer_no: String,
    pub from: String,
    pub to: String,
    pub meters: Vec<String>,
    /// kWh import per TOD zone 1..=8, Wh.
    pub zone_import_wh: Vec<i64>,
    /// kVAh import per TOD zone 1..=8, VAh.
    pub zone_import_vah: Vec<i64>,
    pub totals: Totals,
    /// Export, for net-metered consumers only.
    pub export_wh: Option<i64>,
    pub export_vah: Option<i64>,
    pub estimated_intervals: u32,
}

impl From<BillingDeterminants> for DeterminantsView {
    fn from(d: BillingDeterminants) -> Self {
        DeterminantsView {
            consumer_no: d.consumer_no,
            from: ist(d.from),
            to: ist(d.to),
            meters: d.meters.iter().map(ToString::to_string).collect(),
            zone_import_wh: d.zone_import_wh.to_vec(),
            zone_import_vah: d.zone_import_vah.to_vec(),
            totals: totals(&d.figures),
            export_wh: d.export_wh,
            export_vah: d.export_vah,
            estimated_intervals: d.estimated_intervals,
        }
    }
}

/// A meter short of a complete, on-time day.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShortMeter {
    pub meter: String,
    pub missing_intervals: u32,
    pub estimated_intervals: u32,
    /// Intervals inside reported power failures (not expected).
    pub explained_intervals: u32,
    pub daily_missing: bool,
    /// Complete, but some of it came after the deadline.
    pub late: bool,
}

/// The data completeness of one IST day.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletenessView {
    #[schema(example = "2026-12-01")]
    pub day: String,
    pub meters: u32,
    pub full_block_load: u32,
    pub full_daily: u32,
    pub on_time: u32,
    pub share_full_block_load: f64,
    pub share_full_daily: f64,
    pub share_on_time: f64,
    /// Data received by then was on time.
    pub deadline: String,
    /// A page of the meters short of it, by serial.
    pub short: Vec<ShortMeter>,
    pub next_cursor: Option<String>,
}

/// A page of meter serials.
#[derive(Debug, Serialize, ToSchema)]
pub struct SerialPage {
    pub items: Vec<String>,
    pub next_cursor: Option<String>,
}

fn day(q: Option<&str>, now: DateTime<Utc>) -> Result<NaiveDate, ApiError> {
    match q {
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            ApiError::bad_request("invalid_day", format!("day {s:?} is not YYYY-MM-DD"))
        }),
        None => Ok(mdm::calendar::ist_date(now) - chrono::Days::new(1)),
    }
}

fn no_consumer(no: &str) -> ApiError {
    ApiError::not_found(format!("no consumer {no}"))
}

/// A consumer's consumption on one IST day (use case 1.4).
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/daily",
    tag = "consumers",
    params(("consumer_no" = String, Path, description = "Consumer number"), DayQuery),
    responses(
        (status = 200, description = "The day's consumption", body = DailyConsumptionView),
        (status = 400, description = "Bad day", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn daily(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Query(q): Query<DayQuery>,
) -> Result<Json<DailyConsumptionView>, ApiError> {
    caller.require(Role::Reader)?;
    let day = day(q.day.as_deref(), state.now())?;
    let key = no.clone();
    let found = state
        .db(move |s| mdm::determinants::daily_for_consumer(s, &key, day, &Metering::default()))
        .await?;
    found
        .map(|d| Json(d.into()))
        .ok_or_else(|| no_consumer(&no))
}

/// A consumer's billing determinants for a period (use case 2.5).
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/determinants",
    tag = "consumers",
    params(("consumer_no" = String, Path, description = "Consumer number"), PeriodQuery),
    responses(
        (status = 200, description = "The period's determinants", body = DeterminantsView),
        (status = 400, description = "Bad times or range", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn determinants(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<DeterminantsView>, ApiError> {
    caller.require(Role::Reader)?;
    let (from, to) = (parse_time("from", &q.from)?, parse_time("to", &q.to)?);
    if from >= to || to - from > Duration::days(92) {
        return Err(ApiError::bad_request(
            "invalid_range",
            "a billing period runs forwards, at most 92 days",
        ));
    }
    let key = no.clone();
    let found = state
        .db(move |s| {
            mdm::determinants::determinants_for_consumer(s, &key, from, to, &Metering::default())
        })
        .await?;
    found
        .map(|d| Json(d.into()))
        .ok_or_else(|| no_consumer(&no))
}

const SHORT_CURSOR: &str = "short";

/// The data completeness of an IST day: shares of meters with full block load, the daily
/// snapshot, and both on time, with the meters short of it.
#[utoipa::path(
    get,
    path = "/api/v1/completeness",
    tag = "consumers",
    params(CompletenessQuery),
    responses(
        (status = 200, description = "The day's completeness", body = CompletenessView),
        (status = 400, description = "Bad day, hours, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn completeness(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<CompletenessQuery>,
) -> Result<Json<CompletenessView>, ApiError> {
    caller.require(Role::Reader)?;
    let day = day(q.day.as_deref(), state.now())?;
    let on_time_hours = q.on_time_hours.unwrap_or(8);
    if !(0..=24 * 31).contains(&on_time_hours) {
        return Err(ApiError::bad_request(
            "invalid_hours",
            "on_time_hours is 0 to 744",
        ));
    }
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<String>(SHORT_CURSOR, q.cursor.as_deref())?;
    let cfg = CompletenessConfig {
        on_time_hours,
        ..CompletenessConfig::default()
    };
    let c: DayCompleteness = state
        .db(move |s| mdm::completeness::for_day(s, day, &cfg))
        .await?;
    let (short, next) = paging::page_after(c.short, |m| m.meter.to_string(), after.as_ref(), limit);
    Ok(Json(CompletenessView {
        day: c.day.to_string(),
        meters: c.meters,
        full_block_load: c.full_block_load,
        full_daily: c.full_daily,
        on_time: c.on_time,
        share_full_block_load: c.share_full_block_load,
        share_full_daily: c.share_full_daily,
        share_on_time: c.share_on_time,
        deadline: ist(c.deadline),
        short: short
            .into_iter()
            .map(|m| ShortMeter {
                meter: m.meter.to_string(),
                missing_intervals: m.missing_intervals,
                estimated_intervals: m.estimated_intervals,
                explained_intervals: m.explained_intervals,
                daily_missing: m.daily_missing,
                late: m.late,
            })
            .collect(),
        next_cursor: next.map(|k| paging::encode(SHORT_CURSOR, &k)),
    }))
}

const SERIAL_CURSOR: &str = "serial";

/// The meters below a node of the network (substation, feeder, transformer or DCU), at any
/// depth, as of a time.
#[utoipa::path(
    get,
    path = "/api/v1/network/{node}/meters",
    tag = "consumers",
    params(("node" = String, Path, description = "Node id"), AtQuery),
    responses(
        (status = 200, description = "Meter serials, in order", body = SerialPage),
        (status = 400, description = "Bad time, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such node", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn meters_below(
    caller: Caller,
    State(state): State<AppState>,
    Path(node): Path<String>,
    Query(q): Query<AtQuery>,
) -> Result<Json<SerialPage>, ApiError> {
    caller.require(Role::Reader)?;
    let at = match &q.at {
        Some(s) => parse_time("at", s)?,
        None => state.now(),
    };
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<String>(SERIAL_CURSOR, q.cursor.as_deref())?;
    let id = node.clone();
    let (found, meters) = state
        .db(move |s| Ok((s.mdm_node(&id)?, s.mdm_meters_under(&id, at)?)))
        .await?;
    if found.is_none() {
        return Err(ApiError::not_found(format!("no network node {node}")));
    }
    let (items, next) = paging::page_after(meters, |m| m.to_string(), after.as_ref(), limit);
    Ok(Json(SerialPage {
        items: items.iter().map(ToString::to_string).collect(),
        next_cursor: next.map(|k| paging::encode(SERIAL_CURSOR, &k)),
    }))
}

/// Notices for one part, or all.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoticeQuery {
    /// `wfm`, `billing`, `crm`, `oms`, …; all when absent.
    pub destination: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A notice the MDM routed to another part (site inspection, tamper flag, outage, load
/// violation, supply status).
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeView {
    /// Idempotency key.
    pub key: String,
    pub meter: String,
    pub destination: String,
    /// The notice (`{"notice": "site_inspection", ...}`).
    #[schema(value_type = Object)]
    pub notice: serde_json::Value,
    pub created_at: String,
    /// When the destination took it; null while pending.
    pub delivered_at: Option<String>,
}

/// A page of notices, in the order they were routed.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticePage {
    pub items: Vec<NoticeView>,
    pub next_cursor: Option<String>,
}

const NOTICE_CURSOR: &str = "notice";

/// The notices the MDM routed from events (use cases 5.3, 5.6, 7.3, 9.1), oldest first: what
/// field work, billing, CRM and OMS are told, kept until those parts take them.
#[utoipa::path(
    get,
    path = "/api/v1/notices",
    tag = "consumers",
    params(NoticeQuery),
    responses(
        (status = 200, description = "Notices, oldest first", body = NoticePage),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn notices(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<NoticeQuery>,
) -> Result<Json<NoticePage>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<i64>(NOTICE_CURSOR, q.cursor.as_deref())?.unwrap_or(0);
    let destination = q.destination.clone();
    let rows = state
        .db(move |s| s.mdm_notices(destination.as_deref(), after, limit + 1))
        .await?;
    let (rows, next) = paging::split(rows, limit, NOTICE_CURSOR, |r| r.seq);
    Ok(Json(NoticePage {
        items: rows
            .into_iter()
            .map(|r| NoticeView {
                key: r.message.key,
                meter: r.message.meter.to_string(),
                destination: r.message.destination,
                notice: serde_json::from_str(&r.message.payload)
                    .unwrap_or(serde_json::Value::String(r.message.payload)),
                created_at: ist(r.created_at),
                delivered_at: r.delivered_at.map(ist),
            })
            .collect(),
        next_cursor: next,
    }))
}

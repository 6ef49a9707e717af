//! The MDM's readings of one meter: intervals (with their versions, and edits), daily and
//! billing readings, the latest instantaneous snapshot, events and alarms.
//!
//! These read the MDM's tables, which do not depend on the head-end's registry (in a split
//! deployment they are separate databases): a serial nobody registered has no readings, not a
//! 404.

use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use model::{Demand, MeterSerial};
use serde::{Deserialize, Serialize};
use store::{Role, StoreError, StoredInterval};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::{ist, ist_opt, parse_time};
use crate::{AppState, serial};

/// A time range and a page of it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// Start, inclusive (RFC 3339 with an offset, e.g. `2026-12-01T00:00:00+05:30`; write `+`
    /// as `%2B`). Default: `to` less the list's default span.
    pub from: Option<String>,
    /// End, inclusive. Default: now.
    pub to: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// How far a list looks back by default, and how wide a range it takes.
#[derive(Debug, Clone, Copy)]
struct Window {
    default_days: i64,
    max_days: i64,
}

const INTERVALS: Window = Window {
    default_days: 1,
    max_days: 92,
};
const DAILY: Window = Window {
    default_days: 31,
    max_days: 731,
};
const BILLING: Window = Window {
    default_days: 366,
    max_days: 3660,
};
const EVENTS: Window = Window {
    default_days: 31,
    max_days: 366,
};

/// The checked `[from, to]` of `q`.
fn range(
    q: &RangeQuery,
    now: DateTime<Utc>,
    w: Window,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = match &q.to {
        Some(s) => parse_time("to", s)?,
        None => now,
    };
    let from = match &q.from {
        Some(s) => parse_time("from", s)?,
        None => to - Duration::days(w.default_days),
    };
    if from > to {
        return Err(ApiError::bad_request(
            "invalid_range",
            format!(
                "the range ends ({}) before it starts ({})",
                ist(to),
                ist(from)
            ),
        ));
    }
    if to - from > Duration::days(w.max_days) {
        return Err(ApiError::bad_request(
            "invalid_range",
            format!("this list takes at most {} days at once", w.max_days),
        ));
    }
    Ok((from, to))
}

/// A cursor's time key as an instant to start the store query from (the query is inclusive:
/// items at or before the cursor's key are then skipped).
fn start_at(from: DateTime<Utc>, after_ms: Option<i64>) -> DateTime<Utc> {
    after_ms
        .and_then(DateTime::from_timestamp_millis)
        .map_or(from, |a| a.max(from))
}

fn names<T: Serialize>(v: &[T]) -> Vec<String> {
    v.iter().map(name).collect()
}

/// The snake_case name serde gives a unit enum variant.
fn name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

macro_rules! page_type {
    ($(#[$doc:meta])* $page:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $page {
            pub items: Vec<$item>,
            /// Pass as `cursor` for the next page; null on the last.
            pub next_cursor: Option<String>,
        }
    };
}

/// One block-load interval: every channel, its quality flags, its version and how it was made.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Interval {
    #[schema(example = "2026-12-01T00:15:00+05:30")]
    pub interval_end: String,
    /// Active energy imported in the interval, Wh.
    pub import_wh: i64,
    /// Apparent energy imported, VAh.
    pub import_vah: i64,
    pub export_wh: Option<i64>,
    pub export_vah: Option<i64>,
    /// Average voltage (single-phase meters), V.
    pub avg_voltage_v: Option<f64>,
    /// Average current (single-phase meters), A.
    pub avg_current_a: Option<f64>,
    /// Average R, Y, B voltages (three-phase meters), V.
    pub avg_phase_voltage_v: Option<Vec<f64>>,
    /// Average R, Y, B currents (three-phase meters), A.
    pub avg_phase_current_a: Option<Vec<f64>>,
    /// `clock_invalid`, `clock_doubtful`, `partial_interval`, `estimated`, `edited`, `suspect`;
    /// empty for a valid meter reading.
    pub quality: Vec<String>,
    /// 1 for the first value; each replacement (estimate, actual, edit) adds one.
    pub version: u32,
    /// The estimation method, or `edit`; null for a meter reading.
    pub estimation_method: Option<String>,
    /// When this version was stored.
    pub received_at: String,
    /// For a version made by an edit (in an interval's history): who made it, why and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edit: Option<EditNote>,
}

/// Who edited an interval, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EditNote {
    pub edited_by: String,
    pub reason: String,
    pub edited_at: String,
}

impl From<&StoredInterval> for Interval {
    fn from(s: &StoredInterval) -> Self {
        let r = &s.reading;
        Interval {
            interval_end: ist(r.interval_end),
            import_wh: r.import_wh,
            import_vah: r.import_vah,
            export_wh: r.export_wh,
            export_vah: r.export_vah,
            avg_voltage_v: r.avg_voltage_v,
            avg_current_a: r.avg_current_a,
            avg_phase_voltage_v: r.avg_phase_voltage_v.map(Vec::from),
            avg_phase_current_a: r.avg_phase_current_a.map(Vec::from),
            quality: names(&r.quality),
            version: s.version,
            estimation_method: s.method.clone(),
            received_at: ist(s.received_at),
            edit: None,
        }
    }
}

page_type!(
    /// A page of intervals, oldest first.
    IntervalPage,
    Interval
);

const INTERVAL_CURSOR: &str = "intervals";

/// A meter's intervals with ends in `[from, to]` (at most 92 days).
#[utoipa::path(
    get,
    path = "/api/v1/meters/{serial}/intervals",
    tag = "readings",
    params(("serial" = String, Path, description = "Meter serial"), RangeQuery),
    responses(
        (status = 200, description = "Intervals, oldest first (default: the last day)", body = IntervalPage),
        (status = 400, description = "Bad serial, time, range, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn intervals(
    caller: Caller,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<IntervalPage>, ApiError> {
    caller.require(Role::Reader)?;
    let meter = serial(&raw)?;
    let (from, to) = range(&q, state.now(), INTERVALS)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<i64>(INTERVAL_CURSOR, q.cursor.as_deref())?;
    let start = start_at(from, after);
    let rows = state
        .db(move |s| s.mdm_intervals(&meter, start, to))
        .await?;
    let (items, next) = paging::page_after(
        rows,
        |r| r.reading.interval_end.timestamp_millis(),
        after.as_ref(),
        limit,
    );
    Ok(Json(IntervalPage {
        items: items.iter().map(Interval::from).collect(),
        next_cursor: next.map(|k| paging::encode(INTERVAL_CURSOR, &k)),
    }))
}

/// The interval of `meter` ending at `end`, as stored now.
async fn current_interval(
    state: &AppState,
    meter: &MeterSerial,
    end: DateTime<Utc>,
) -> Result<Option<StoredInterval>, ApiError> {
    let meter = meter.clone();
    let rows = state.db(move |s| s.mdm_intervals(&meter, end, end)).await?;
    Ok(rows.into_iter().next())
}

fn no_interval(meter: &MeterSerial, end: DateTime<Utc>) -> ApiError {
    ApiError::not_found(format!("no interval of {meter} ends at {}", ist(end)))
}

/// One interval as stored now.
#[utoipa::path(
    get,
    path = "/api/v1/meters/{serial}/intervals/{end}",
    tag = "readings",
    params(
        ("serial" = String, Path, description = "Meter serial"),
        ("end" = String, Path, description = "Interval end, RFC 3339 with an offset"),
    ),
    responses(
        (status = 200, description = "The interval", body = Interval),
        (status = 400, description = "Bad serial or time", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such interval", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn interval(
    caller: Caller,
    State(state): State<AppState>,
    Path((raw, end)): Path<(String, String)>,
) -> Result<Json<Interval>, ApiError> {
    caller.require(Role::Reader)?;
    let meter = serial(&raw)?;
    let end = parse_time("end", &end)?;
    let stored = current_interval(&state, &meter, end)
        .await?
        .ok_or_else(|| no_interval(&meter, end))?;
    Ok(Json(Interval::from(&stored)))
}

const HISTORY_CURSOR: &str = "history";

/// Every version of one interval, oldest first: the replaced ones, then the one in force.
#[utoipa::path(
    get,
    path = "/api/v1/meters/{serial}/intervals/{end}/history",
    tag = "readings",
    params(
        ("serial" = String, Path, description = "Meter serial"),
        ("end" = String, Path, description = "Interval end, RFC 3339 with an offset"),
        ("limit" = Option<u32>, Query, description = "Items per page, 1 to 1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "The interval's versions, by version", body = IntervalPage),
        (status = 400, description = "Bad serial, time, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such interval", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn interval_history(
    caller: Caller,
    State(state): State<AppState>,
    Path((raw, end)): Path<(String, String)>,
    Query(q): Query<crate::meters::PageQuery>,
) -> Result<Json<IntervalPage>, ApiError> {
    caller.require(Role::Reader)?;
    let meter = serial(&raw)?;
    let end = parse_time("end", &end)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<u32>(HISTORY_CURSOR, q.cursor.as_deref())?;
    let (versions, edits) = state
        .db({
            let meter = meter.clone();
            move |s| {
                let mut all = s.mdm_interval_history(&meter, end)?;
                all.extend(s.mdm_intervals(&meter, end, end)?);
                Ok((all, s.mdm_interval_edits(&meter, end)?))
            }
        })
        .await?;
    if versions.is_empty() {
        return Err(no_interval(&meter, end));
    }
    let (items, next) = paging::page_after(versions, |v| v.version, after.as_ref(), limit);
    let with_edit = |v: &StoredInterval| {
        let mut out = Interval::from(v);
        out.edit = edits
            .iter()
            .find(|e| e.version == v.version)
            .map(|e| EditNote {
                edited_by: e.edited_by.clone(),
                reason: e.reason.clone(),
                edited_at: ist(e.edited_at),
            });
        out
    };
    Ok(Json(IntervalPage {
        items: items.iter().map(with_edit).collect(),
        next_cursor: next.map(|k| paging::encode(HISTORY_CURSOR, &k)),
    }))
}

/// A person's correction of one interval's energies.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalEdit {
    /// The version being corrected, as read. If the interval has moved on since, the edit is
    /// refused with 409 (`stale_version`): read it again and decide again.
    pub version: u32,
    /// Active energy imported in the interval, Wh (not negative).
    pub import_wh: i64,
    /// Apparent energy imported, VAh (not negative).
    pub import_vah: i64,
    /// Exported energies; when absent, the stored values stay.
    #[serde(default)]
    pub export_wh: Option<i64>,
    #[serde(default)]
    pub export_vah: Option<i64>,
    /// Why (kept with the edit, with who made it). Required.
    pub reason: String,
}

/// The longest reason kept with an edit or a note with a closed exception.
pub(crate) const MAX_NOTE: usize = 2000;

/// Corrects one interval (operator): a new version, flagged `edited` (no longer `estimated` or
/// `suspect`), the replaced version kept in the history, with who and why.
#[utoipa::path(
    put,
    path = "/api/v1/meters/{serial}/intervals/{end}",
    tag = "readings",
    params(
        ("serial" = String, Path, description = "Meter serial"),
        ("end" = String, Path, description = "Interval end, RFC 3339 with an offset"),
    ),
    request_body = IntervalEdit,
    responses(
        (status = 200, description = "The new version", body = Interval),
        (status = 400, description = "Bad serial or time", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs the operator role", body = ErrorBody),
        (status = 404, description = "No such interval", body = ErrorBody),
        (status = 409, description = "The interval is no longer at that version", body = ErrorBody),
        (status = 422, description = "Missing reason, negative energy or a malformed body", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn edit_interval(
    caller: Caller,
    State(state): State<AppState>,
    Path((raw, end)): Path<(String, String)>,
    Json(edit): Json<IntervalEdit>,
) -> Result<Json<Interval>, ApiError> {
    caller.require(Role::Operator)?;
    let meter = serial(&raw)?;
    let end = parse_time("end", &end)?;
    let reason = edit.reason.trim().to_string();
    if reason.is_empty() || reason.len() > MAX_NOTE {
        return Err(ApiError::unprocessable(
            "invalid_edit",
            format!("an edit needs a reason (1 to {MAX_NOTE} bytes)"),
        ));
    }
    let stored = current_interval(&state, &meter, end)
        .await?
        .ok_or_else(|| no_interval(&meter, end))?;
    let stale = || {
        ApiError::conflict(
            "stale_version",
            format!(
                "the interval is no longer at version {}; read it again",
                edit.version
            ),
        )
    };
    if stored.version != edit.version {
        return Err(stale());
    }
    let values = mdm::vee::NewValues {
        import_wh: edit.import_wh,
        import_vah: edit.import_vah,
        export_wh: edit.export_wh,
        export_vah: edit.export_vah,
    };
    let reading = mdm::vee::edit_interval(&stored.reading, &values)
        .map_err(|e| ApiError::unprocessable("invalid_edit", e.to_string()))?;
    let now = state.now();
    let who = caller.who();
    let version = edit.version;
    let result = state
        .db(move |s| Ok(s.mdm_edit_interval(&reading, version, &who, &reason, now)))
        .await?;
    match result {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => return Err(stale()),
        Err(e) => return Err(e.into()),
    }
    let stored = current_interval(&state, &meter, end)
        .await?
        .ok_or_else(|| no_interval(&meter, end))?;
    Ok(Json(Interval::from(&stored)))
}

/// A midnight snapshot of the cumulative registers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Daily {
    #[schema(example = "2026-12-01T00:00:00+05:30")]
    pub captured_at: String,
    pub import_wh: i64,
    pub import_vah: i64,
    pub export_wh: Option<i64>,
    pub export_vah: Option<i64>,
    pub quality: Vec<String>,
}

page_type!(
    /// A page of daily readings, oldest first.
    DailyPage,
    Daily
);

const DAILY_CURSOR: &str = "daily";

/// A meter's daily readings captured in `[from, to]` (default the last 31 days, at most 731).
#[utoipa::path(
    get,
    path = "/api/v1/meters/{serial}/daily",
    tag = "readings",
    params(("serial" = String, Path, description = "Meter serial"), RangeQuery),
    responses(
        (status = 200, description = "Daily readings, oldest first", body = DailyPage),
        (status = 400, description = "Bad serial, time, range, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn daily(
    caller: Caller,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<DailyPage>, ApiError> {
    caller.require(Role::Reader)?;
    let meter = serial(&raw)?;
    let (from, to) = range(&q, state.now(), DAILY)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<i64>(DAILY_CURSOR, q.cursor.as_deref())?;
    let start = start_at(from, after);
    let rows = state.db(move |s| s.mdm_daily(&meter, start, to)).await?;
    let (items, next) = paging::page_after(
        rows,
        |r| r.captured_at.timestamp_millis(),
        after.as_ref(),
        limit,
    );
    Ok(Json(DailyPage {
        items: items
            .into_iter()
            .map(|d| Daily {
                captured_at: ist(d.captured_at),
                import_wh: d.import_wh,
                import_vah: d.import_vah,
                export_wh: d.export_wh,
                export_vah: d.export_vah,
                quality: names(&d.quality),
            })
            .collect(),
        next_cursor: next.map(|k| paging::encode(DAILY_CURSOR, &k)),
    }))
}

/// A maximum demand and when it occurred.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DemandValue {
    /// W for active demand, VA for apparent.
    pub value: f64,
    pub at: Option<String>,
}

fn demand(d: &Demand) -> DemandValue {
    DemandValue {
        value: d.value,
        at: ist_opt(d.at),
    }
}

/// The billing determinants captured at a billing date.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Billing {
    #[schema(example = "2026-12-01T00:00:00+05:30")]
    pub billing_date: String,
    pub avg_power_factor: Option<f64>,
    /// Cumulative active energy imported, Wh.
    pub import_wh: i64,
    /// Per TOD zone; index 0 is zone 1.
    pub tod_import_wh: Vec<i64>,
    pub import_vah: i64,
    pub tod_import_vah: Vec<i64>,
    pub md_w: Option<DemandValue>,
    pub tod_md_w: Vec<DemandValue>,
    pub md_va: Option<DemandValue>,
    pub tod_md_va: Vec<DemandValue>,
    pub power_on_minutes: Option<i64>,
    pub export_wh: Option<i64>,
    pub export_vah: Option<i64>,
    /// Reactive energy in quadrants I–IV, varh (three-phase meters).
    pub reactive_q1_q4_varh: Option<Vec<i64>>,
    pub quality: Vec<String>,
}

page_type!(
    /// A page of billing readings, oldest first.
    BillingPage,
    Billing
);

const BILLING_CURSOR: &str = "billing";

/// A meter's billing readings with billing dates in `[from, to]` (default the last 366 days).
#[utoipa::path(
    get,
    path = "/api/v1/meters/{serial}/billing",
    tag = "readings",
    params(("serial" = String, Path, description = "Meter serial"), RangeQuery),
    responses(
        (status = 200, description = "Billing readings, oldest first", body = BillingPage),
        (status = 400, description = "Bad serial, time, range, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn billing(
    caller: Caller,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<BillingPage>, ApiError> {
    caller.require(Role::Reader)?;
    let meter = serial(&raw)?;
    let (from, to) = range(&q, state.now(), BILLING)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<i64>(BILLING_CURSOR, q.cursor.as_deref())?;
    let start = start_at(from, after);
    let rows = state.db(move |s| s.mdm_billing(&meter, start, to)).await?;
    let (items, next) = paging::page_after(
        rows,
        |r| r.billing_date.timestamp_millis(),
        after.as_ref(),
        limit,
    );
    Ok(Json(BillingPage {
        items: items
            .into_iter()
            .map(|b| Billing {
                billing_date: ist(b.billing_date),
                avg_power_factor: b.avg_power_factor,
                import_wh: b.import_wh,
                tod_import_wh: b.tod_import_wh,
                import_vah: b.import_vah,
                tod_import_vah: b.tod_import_vah,
                md_w: b.md_w.as_ref().map(demand),
                tod_md_w: b.tod_md_w.iter().map(demand).collect(),
                md_va: b.md_va.as_ref().map(demand),
                tod_md_va: b.tod_md_va.iter().map(demand).collect(),
                power_on_minutes: b.power_on_minutes,
                export_wh: b.export_wh,
                export_vah: b.export_vah,
                reactive_q1_q4_varh: b.reactive_q1_q4_varh.map(Vec::from),
                quality: names(&b.quality),
            })
            .collect(),
        next_cursor: next.map(|k| paging::encode(BILLING_CURSOR, &k)),
    }))
}

/// A snapshot of the instantaneous parameters; what the meter does not provide is null.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Instantaneous {
    #[schema(example = "2026-12-01T10:00:00+05:30")]
    pub at: Option<String>,
    pub voltage_v: Option<f64>,
    pub phase_voltage_v: Option<Vec<f64>>,
    pub current_a: Option<f64>,
    pub phase_current_a: Option<Vec<f64>>,
    pub neutral_current_a: Option<f64>,
    pub power_factor: Option<f64>,
    pub phase_power_factor: Option<Vec<f64>>,
    pub frequency_hz: Option<f64>,
    pub apparent_power_va: Option<f64>,
    pub active_power_w: Option<f64>,
    pub import_wh: Option<i64>,
    pub import_vah: Option<i64>,
    pub export_wh: Option<i64>,
    pub export_vah: Option<i64>,
    pub md_w: Option<DemandValue>,
    pub md_va: Option<DemandValue>,
    pub power_on_minutes: Option<i64>,
    pub power_off_minutes: Option<i64>,
    pub power_failures: Option<i64>,
    pub tamper_count: Option<i64>,
    pub billing_count: Option<i64>,
    pub programming_count: Option<i64>,
    pub quality: Vec<String>,
}

/// The latest instantaneous snapshot of a meter.
#[utoipa::path(
    get,
    path = "/api/v1/meters/{serial}/instantaneous",
    tag = "readings",
    params(("serial" = String, Path, description = "Meter serial")),
    responses(
        (status = 200, description = "The latest snapshot", body = Instantaneous),
        (status = 400, description = "Bad serial", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No snapshot stored for the meter", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn instantaneous(
    caller: Caller,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Instantaneous>, ApiError> {
    caller.require(Role::Reader)?;
    let meter = serial(&raw)?;
    let found = state
        .db({
            let meter = meter.clone();
            move |s| s.mdm_latest_instantaneous(&meter)
        })
        .await?;
    let r = found.ok_or_else(|| {
        ApiError::not_found(format!("no instantaneous reading of {meter} is stored"))
    })?;
    Ok(Json(Instantaneous {
        at: ist_opt(r.at),
        voltage_v: r.voltage_v,
        phase_voltage_v: r.phase_voltage_v.map(Vec::from),
        current_a: r.current_a,
        phase_current_a: r.phase_current_a.map(Vec::from),
        neutral_current_a: r.neutral_current_a,
        power_factor: r.power_factor,
        phase_power_factor: r.phase_power_factor.map(Vec::from),
        frequency_hz: r.frequency_hz,
        apparent_power_va: r.apparent_power_va,
        active_power_w: r.active_power_w,
        import_wh: r.import_wh,
        import_vah: r.import_vah,
        export_wh: r.export_wh,
        export_vah: r.export_vah,
        md_w: r.md_w.as_ref().map(demand),
        md_va: r.md_va.as_ref().map(demand),
        power_on_minutes: r.power_on_minutes,
        power_off_minutes: r.power_off_minutes,
        power_failures: r.power_failures,
        tamper_count: r.tamper_count,
        billing_count: r.billing_count,
        programming_count: r.programming_count,
        quality: names(&r.quality),
    }))
}

/// A meter event, normalised by the MDM.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    pub at: String,
    /// The IS 15959 event code.
    pub code: u16,
    /// `voltage`, `current`, `power`, `transaction`, `other`, `non_rollover`, `control`.
    pub category: String,
    /// `occurrence`, `restoration` or `single`.
    pub kind: String,
    /// The MDM's class: `tamper`, `outage`, `load_violation`, `relay`, `voltage_quality`,
    /// `current_quality`, `configuration`, `payment_mode` or `unknown`.
    pub class: String,
    /// From the MDM's catalogue.
    pub severity: String,
    pub description: String,
    pub quality: Vec<String>,
}

page_type!(
    /// A page of events, oldest first.
    EventPage,
    Event
);

const EVENT_CURSOR: &str = "events";

/// A meter's events in `[from, to]` (default the last 31 days, at most 366).
#[utoipa::path(
    get,
    path = "/api/v1/meters/{serial}/events",
    tag = "readings",
    params(("serial" = String, Path, description = "Meter serial"), RangeQuery),
    responses(
        (status = 200, description = "Events, oldest first", body = EventPage),
        (status = 400, description = "Bad serial, time, range, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn events(
    caller: Caller,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<EventPage>, ApiError> {
    caller.require(Role::Reader)?;
    let meter = serial(&raw)?;
    let (from, to) = range(&q, state.now(), EVENTS)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<(i64, u16)>(EVENT_CURSOR, q.cursor.as_deref())?;
    let start = start_at(from, after.map(|(t, _)| t));
    let rows = state.db(move |s| s.mdm_events(&meter, start, to)).await?;
    let (items, next) = paging::page_after(
        rows,
        |r| (r.event.at.timestamp_millis(), r.event.code),
        after.as_ref(),
        limit,
    );
    Ok(Json(EventPage {
        items: items
            .into_iter()
            .map(|r| Event {
                at: ist(r.event.at),
                code: r.event.code,
                category: name(&r.event.category),
                kind: name(&r.event.kind),
                class: r.class,
                severity: r.severity,
                description: r.event.description,
                quality: names(&r.event.quality),
            })
            .collect(),
        next_cursor: next.map(|k| paging::encode(EVENT_CURSOR, &k)),
    }))
}

/// A push alert or an outage seen as it happened.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alarm {
    pub at: String,
    /// `alarm`, `outage_started`, `outage_restored`, `clock_drift`.
    pub kind: String,
    /// What the head-end decoded.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

page_type!(
    /// A page of alarms, oldest first.
    AlarmPage,
    Alarm
);

const ALARM_CURSOR: &str = "alarms";

/// A meter's alarms in `[from, to]` (default the last 31 days, at most 366).
#[utoipa::path(
    get,
    path = "/api/v1/meters/{serial}/alarms",
    tag = "readings",
    params(("serial" = String, Path, description = "Meter serial"), RangeQuery),
    responses(
        (status = 200, description = "Alarms, oldest first", body = AlarmPage),
        (status = 400, description = "Bad serial, time, range, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn alarms(
    caller: Caller,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<Json<AlarmPage>, ApiError> {
    caller.require(Role::Reader)?;
    let meter = serial(&raw)?;
    let (from, to) = range(&q, state.now(), EVENTS)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<(i64, String)>(ALARM_CURSOR, q.cursor.as_deref())?;
    let start = start_at(from, after.as_ref().map(|(t, _)| *t));
    let rows = state.db(move |s| s.mdm_alarms(&meter, start, to)).await?;
    let (items, next) = paging::page_after(
        rows,
        |r| (r.at.timestamp_millis(), r.kind.clone()),
        after.as_ref(),
        limit,
    );
    Ok(Json(AlarmPage {
        items: items
            .into_iter()
            .map(|r| Alarm {
                at: ist(r.at),
                kind: r.kind,
                detail: serde_json::from_str(&r.detail)
                    .unwrap_or(serde_json::Value::String(r.detail)),
            })
            .collect(),
        next_cursor: next.map(|k| paging::encode(ALARM_CURSOR, &k)),
    }))
}

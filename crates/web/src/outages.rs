//! Outages (use cases 7.3–7.5): the outages the MDM's outage desk grouped from last gasps,
//! first breaths and power-fail events, with their meters, times and power-off/on counts; and
//! the OMS read request that pings meters through the head-end to see which are live.
//!
//! A ping is a group command (`ping` to each meter) under a batch id the answer gives;
//! `GET /api/v1/oms/ping/{batch}` shows each meter `live` (it answered), `dead` (it did not,
//! after the head-end's retries) or `pending`.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use hes::commands::CommandStatus;
use model::{CommandKind, CommandState, MeterSerial};
use serde::{Deserialize, Serialize};
use store::Role;
use store::outages::{Outage, OutageStatus, OutageSummary};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::commands::command_error;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::{ist, ist_opt};
use crate::{AppState, serial};

/// The most meters one ping asks after.
pub const MAX_PING: usize = 10_000;

/// Which outages.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutageQuery {
    /// `active` (no meter back), `partial`, `restored`; all when absent.
    pub state: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// An outage at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutageView {
    pub id: u64,
    /// `dt`, `feeder` or `meter`.
    pub level: String,
    /// The DT or feeder id, or the meter's serial.
    #[schema(example = "DT-SIM-1")]
    pub node: String,
    pub dt: Option<String>,
    pub feeder: Option<String>,
    /// `active`, `partial` or `restored`.
    pub state: String,
    pub started_at: String,
    /// When the last meter came back.
    pub restored_at: Option<String>,
    /// From the start to the restoration.
    pub duration_s: Option<i64>,
    pub meters: usize,
    pub meters_on: usize,
}

impl From<OutageSummary> for OutageView {
    fn from(o: OutageSummary) -> Self {
        OutageView {
            id: o.id,
            level: o.level.as_str().into(),
            node: o.node,
            dt: o.dt,
            feeder: o.feeder,
            state: o.status.as_str().into(),
            started_at: ist(o.started_at),
            restored_at: ist_opt(o.restored_at),
            duration_s: o.restored_at.map(|r| (r - o.started_at).num_seconds()),
            meters: o.meters,
            meters_on: o.meters_on,
        }
    }
}

/// A meter in an outage.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutageMeterView {
    pub meter: String,
    pub off_at: String,
    /// Null while off.
    pub on_at: Option<String>,
    /// Times it was seen going off and coming back during the outage.
    pub power_offs: u32,
    pub power_ons: u32,
}

/// An outage with its meters.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutageDetail {
    #[serde(flatten)]
    pub outage: OutageView,
    pub items: Vec<OutageMeterView>,
}

/// A page of outages, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutagePage {
    pub items: Vec<OutageView>,
    pub next_cursor: Option<String>,
}

const OUTAGE_CURSOR: &str = "outage";

/// Outages, newest first (use case 7.3).
#[utoipa::path(
    get,
    path = "/api/v1/outages",
    tag = "outages",
    params(OutageQuery),
    responses(
        (status = 200, description = "Outages, newest first", body = OutagePage),
        (status = 400, description = "Bad state, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<OutageQuery>,
) -> Result<Json<OutagePage>, ApiError> {
    caller.require(Role::Reader)?;
    let status = q
        .state
        .as_deref()
        .map(|s| {
            OutageStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_state",
                    format!("state {s:?}: active, partial or restored"),
                )
            })
        })
        .transpose()?;
    let limit = paging::limit(q.limit)?;
    let before = paging::decode::<u64>(OUTAGE_CURSOR, q.cursor.as_deref())?;
    let rows = state
        .db(move |s| s.outages(status, before, limit as usize + 1))
        .await?;
    let (rows, next) = paging::split(rows, limit, OUTAGE_CURSOR, |o| o.id);
    Ok(Json(OutagePage {
        items: rows.into_iter().map(OutageView::from).collect(),
        next_cursor: next,
    }))
}

async fn find(state: &AppState, id: u64) -> Result<Outage, ApiError> {
    state
        .db(move |s| s.outage(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no outage {id}")))
}

/// One outage with its meters: when each went off and came back, and how often.
#[utoipa::path(
    get,
    path = "/api/v1/outages/{id}",
    tag = "outages",
    params(("id" = u64, Path, description = "The outage")),
    responses(
        (status = 200, description = "The outage", body = OutageDetail),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such outage", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn one(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<OutageDetail>, ApiError> {
    caller.require(Role::Reader)?;
    let o = find(&state, id).await?;
    Ok(Json(OutageDetail {
        outage: o.summary().into(),
        items: o
            .meters
            .into_iter()
            .map(|m| OutageMeterView {
                meter: m.meter.to_string(),
                off_at: ist(m.off_at),
                on_at: ist_opt(m.on_at),
                power_offs: m.power_offs,
                power_ons: m.power_ons,
            })
            .collect(),
    }))
}

/// What to ping: a network node (every meter below it) or meters; exactly one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PingRequest {
    /// A substation, feeder, DT or DCU id.
    #[schema(example = "DT-SIM-1")]
    pub node: Option<String>,
    pub meters: Option<Vec<String>>,
}

/// A ping sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct PingSubmitted {
    /// Follow it at `/api/v1/oms/ping/{batch}`.
    pub batch: String,
    /// Meters pinged.
    pub meters: usize,
    /// Meters of the network the head-end does not know (not pinged).
    pub skipped: Vec<String>,
}

/// Pings every meter of an outage (for a DT or feeder outage, every meter below the node now,
/// not only those that reported) through the head-end (use case 7.5).
#[utoipa::path(
    post,
    path = "/api/v1/outages/{id}/ping",
    tag = "outages",
    params(("id" = u64, Path, description = "The outage")),
    responses(
        (status = 202, description = "Pings queued", body = PingSubmitted),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such outage", body = ErrorBody),
        (status = 503, description = "No head-end runs in this server", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ping_outage(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<(StatusCode, Json<PingSubmitted>), ApiError> {
    caller.require(Role::Operator)?;
    let o = find(&state, id).await?;
    let mut meters: BTreeSet<MeterSerial> = o.meters.iter().map(|m| m.meter.clone()).collect();
    if o.level != store::outages::OutageLevel::Meter {
        let (node, now) = (o.node.clone(), state.now());
        meters.extend(state.db(move |s| s.mdm_meters_under(&node, now)).await?);
    }
    ping(&state, &caller, &format!("outage-{id}-ping"), meters).await
}

/// Pings the meters below a network node, or the meters given, through the head-end: the
/// OMS read request (use case 7.5).
#[utoipa::path(
    post,
    path = "/api/v1/oms/ping",
    tag = "outages",
    request_body = PingRequest,
    responses(
        (status = 202, description = "Pings queued", body = PingSubmitted),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not an operator", body = ErrorBody),
        (status = 404, description = "No such node", body = ErrorBody),
        (status = 422, description = "Neither or both of node and meters, or too many", body = ErrorBody),
        (status = 503, description = "No head-end runs in this server", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ping_request(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<PingRequest>,
) -> Result<(StatusCode, Json<PingSubmitted>), ApiError> {
    caller.require(Role::Operator)?;
    let meters: BTreeSet<MeterSerial> = match (body.node, body.meters) {
        (Some(node), None) => {
            let (id, now) = (node.clone(), state.now());
            let (known, meters) = state
                .db(move |s| Ok((s.mdm_node(&id)?, s.mdm_meters_under(&id, now)?)))
                .await?;
            if known.is_none() {
                return Err(ApiError::not_found(format!("no network node {node}")));
            }
            meters.into_iter().collect()
        }
        (None, Some(meters)) => meters.iter().map(|m| serial(m)).collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_ping",
                "give exactly one of node and meters",
            ));
        }
    };
    ping(&state, &caller, "oms-ping", meters).await
}

async fn ping(
    state: &AppState,
    caller: &Caller,
    prefix: &str,
    meters: BTreeSet<MeterSerial>,
) -> Result<(StatusCode, Json<PingSubmitted>), ApiError> {
    let commands = state.commands()?;
    if meters.is_empty() || meters.len() > MAX_PING {
        return Err(ApiError::unprocessable(
            "invalid_ping",
            format!(
                "{} meters: 1 to {MAX_PING} can be pinged at once",
                meters.len()
            ),
        ));
    }
    let (known, skipped): (Vec<MeterSerial>, Vec<MeterSerial>) = meters
        .into_iter()
        .partition(|m| commands.head_end().meter(m).is_some());
    if known.is_empty() {
        return Err(ApiError::not_found(
            "none of these meters is in the head-end's registry",
        ));
    }
    let batch = format!("{prefix}-{}", state.now().timestamp_millis());
    commands
        .submit_group(&batch, &known, CommandKind::Ping, &caller.who())
        .await
        .map_err(command_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PingSubmitted {
            batch,
            meters: known.len(),
            skipped: skipped.iter().map(ToString::to_string).collect(),
        }),
    ))
}

/// A meter's answer to a ping.
#[derive(Debug, Serialize, ToSchema)]
pub struct PingMeter {
    pub meter: String,
    /// `live` (it answered), `dead` (no answer after the head-end's retries) or `pending`.
    pub status: String,
    /// What the head-end saw, once final.
    pub detail: Option<String>,
}

/// Which meters of a ping answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct PingReport {
    pub batch: String,
    /// Every meter has answered or given up.
    pub done: bool,
    pub live: usize,
    pub dead: usize,
    pub pending: usize,
    pub items: Vec<PingMeter>,
}

fn ping_meter(c: CommandStatus) -> PingMeter {
    let status = match c.state {
        CommandState::Succeeded => "live",
        CommandState::Failed | CommandState::TimedOut => "dead",
        CommandState::Queued | CommandState::Running => "pending",
    };
    PingMeter {
        meter: c.meter.to_string(),
        status: status.into(),
        detail: c.outcome.map(|o| o.detail),
    }
}

/// Each meter of a ping, live or dead.
#[utoipa::path(
    get,
    path = "/api/v1/oms/ping/{batch}",
    tag = "outages",
    params(("batch" = String, Path, description = "The ping's batch id")),
    responses(
        (status = 200, description = "The ping", body = PingReport),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such ping", body = ErrorBody),
        (status = 503, description = "No head-end runs in this server", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ping_report(
    caller: Caller,
    State(state): State<AppState>,
    Path(batch): Path<String>,
) -> Result<Json<PingReport>, ApiError> {
    caller.require(Role::Reader)?;
    let group = state
        .commands()?
        .batch_status(&batch)
        .await
        .map_err(command_error)?;
    if group.commands.is_empty() || group.commands.iter().any(|c| c.kind != "ping") {
        return Err(ApiError::not_found(format!("no ping {batch}")));
    }
    Ok(Json(PingReport {
        done: group.is_final(),
        live: group.succeeded,
        dead: group.failed + group.timed_out,
        pending: group.queued + group.running,
        items: group.commands.into_iter().map(ping_meter).collect(),
        batch: group.batch,
    }))
}

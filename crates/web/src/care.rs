//! Customer care (use cases 19 and 20): service requests and complaints registered and worked
//! by the desk (operator), listed and read by anyone with a token, the completion a target
//! system (OMS, WFM, CIS, billing, holding an operator token) reports, the kinds with their
//! SLA, and the ageing of what is unfinished.
//!
//! Service requests and complaints share one lifecycle (`care::lifecycle`); each route below
//! exists for both under `/api/v1/service-requests` and `/api/v1/complaints`.

use axum::extract::State;
use axum::http::StatusCode;
use care::CareError;
use care::desk::{self, Registration};
use care::lifecycle::{self, AGE_BUCKETS, Action};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use store::care::{CareType, Case, CaseFilter, CaseKind, CaseState, CaseUpdate};
use store::{Role, Store};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::{ist, ist_opt};

impl From<CareError> for ApiError {
    fn from(e: CareError) -> Self {
        let m = e.to_string();
        match e {
            CareError::NoSuchCase(_) | CareError::WrongKind(..) => ApiError::not_found(m),
            CareError::UnknownType { .. } => ApiError::unprocessable("unknown_type", m),
            CareError::UnknownConsumer(_) => ApiError::unprocessable("unknown_consumer", m),
            CareError::NoMeter(_) => ApiError::unprocessable("no_meter", m),
            CareError::NotAllowed { .. } => ApiError::conflict("not_allowed", m),
            CareError::ReopenWindowPassed(_) => ApiError::conflict("reopen_window_passed", m),
            CareError::NoteNeeded(_) => ApiError::unprocessable("note_needed", m),
            CareError::BadChange(_) | CareError::ChangeNeeded(_) => {
                ApiError::unprocessable("invalid_change", m)
            }
            CareError::Store(e) => e.into(),
            e @ (CareError::Catalogue(_) | CareError::Config(_) | CareError::Notify(_)) => {
                ApiError::internal("care", &e)
            }
        }
    }
}

/// Runs `f` (the care desk) on tokio's blocking pool.
async fn desk<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Store) -> Result<T, CareError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store().clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ApiError::internal("a care task failed", &e))?
        .map_err(ApiError::from)
}

/// A kind of service request or nature of complaint.
#[derive(Debug, Serialize, ToSchema)]
pub struct CareTypeView {
    #[schema(example = "contact_change")]
    pub code: String,
    pub name: String,
    /// Hours from registration to resolution.
    pub sla_hours: u32,
    /// Where its cases are routed: `oms`, `wfm`, `cis`, `billing`; absent: the desk.
    pub route: Option<String>,
    /// The consumer record its resolution changes: `name`, `address`, `contact`, `load`,
    /// `category`; the registration's `change` gives the new values.
    pub applies: Option<String>,
    /// Days after closing within which it may be reopened.
    pub reopen_days: u32,
}

impl From<CareType> for CareTypeView {
    fn from(t: CareType) -> Self {
        CareTypeView {
            code: t.code,
            name: t.name,
            sla_hours: t.sla_hours,
            route: t.route,
            applies: t
                .applies
                .and_then(|a| serde_json::to_value(a).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            reopen_days: t.reopen_days,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CareTypes {
    pub service_requests: Vec<CareTypeView>,
    pub complaints: Vec<CareTypeView>,
}

/// The kinds of service request and natures of complaint, with their SLA and routes.
#[utoipa::path(
    get,
    path = "/api/v1/care/types",
    tag = "care",
    responses(
        (status = 200, description = "Kinds and natures", body = CareTypes),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn types(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<CareTypes>, ApiError> {
    caller.require(Role::Reader)?;
    let all = state.db(|s| s.care_types(None)).await?;
    let (service_requests, complaints): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|t| t.kind == CaseKind::ServiceRequest);
    Ok(Json(CareTypes {
        service_requests: service_requests.into_iter().map(Into::into).collect(),
        complaints: complaints.into_iter().map(Into::into).collect(),
    }))
}

/// A step of a case.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseUpdateView {
    pub seq: u32,
    pub at: String,
    pub by: String,
    /// `register`, `start`, `note`, `resolve`, `close`, `complete`, `reject`, `reopen`.
    pub action: String,
    /// The state after it.
    pub state: String,
    pub note: String,
}

impl From<CaseUpdate> for CaseUpdateView {
    fn from(u: CaseUpdate) -> Self {
        CaseUpdateView {
            seq: u.seq,
            at: ist(u.at),
            by: u.by,
            action: u.action,
            state: u.state.as_str().into(),
            note: u.note,
        }
    }
}

/// A service request or complaint.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    /// The SRN or CRN.
    #[schema(example = "SR-2026-000123")]
    pub number: String,
    pub consumer_no: String,
    /// The kind (service request) or nature (complaint), see `/api/v1/care/types`.
    #[serde(rename = "type")]
    pub type_code: String,
    pub description: String,
    /// The record change its resolution applies, e.g. `{"field": "contact", "mobile": …}`.
    #[schema(value_type = Option<Object>)]
    pub change: Option<serde_json::Value>,
    /// `open`, `in_progress`, `resolved`, `closed` or `rejected`.
    pub state: String,
    /// The target it was routed to.
    pub route: Option<String>,
    pub meter: String,
    pub opened_by: String,
    pub opened_at: String,
    /// From the type's SLA (after a reopening, from then).
    pub due_at: String,
    /// Resolved (or, if not yet, now) after `due_at`.
    pub overdue: bool,
    pub resolved_at: Option<String>,
    pub closed_at: Option<String>,
    pub reopened: u32,
    /// Every step, first first (on a single case only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updates: Option<Vec<CaseUpdateView>>,
}

fn view(c: Case, now: DateTime<Utc>, updates: Option<Vec<CaseUpdate>>) -> CaseView {
    CaseView {
        overdue: lifecycle::overdue(&c, now),
        number: c.number,
        consumer_no: c.consumer_no,
        type_code: c.type_code,
        description: c.description,
        change: c.change.and_then(|ch| serde_json::to_value(ch).ok()),
        state: c.state.as_str().into(),
        route: c.route,
        meter: c.meter.to_string(),
        opened_by: c.opened_by,
        opened_at: ist(c.opened_at),
        due_at: ist(c.due_at),
        resolved_at: ist_opt(c.resolved_at),
        closed_at: ist_opt(c.closed_at),
        reopened: c.reopened,
        updates: updates.map(|u| u.into_iter().map(Into::into).collect()),
    }
}

/// A service request or complaint to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    pub consumer_no: String,
    /// A code from `/api/v1/care/types`.
    #[serde(rename = "type")]
    #[schema(example = "contact_change")]
    pub type_code: String,
    pub description: String,
    /// For a type that changes a record: the new values, e.g. `{"mobile": "+919812345678"}`,
    /// `{"name": "…"}`, `{"address": "…"}`, `{"sanctioned_load_w": 5000}`, `{"category": "…"}`.
    #[schema(value_type = Option<Object>)]
    pub change: Option<serde_json::Value>,
}

/// Something done to a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseUpdateRequest {
    /// `start`, `note`, `resolve` (applies the record change), `close`, `complete` (resolve and
    /// close), `reject` or `reopen`.
    #[schema(example = "resolve")]
    pub action: String,
    /// Needed for everything but `start`; a closure's note is what the consumer is told.
    #[serde(default)]
    pub note: String,
}

/// The target system's report that the case is done.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    /// What was done; the consumer is told it.
    #[schema(example = "Fuse replaced at the transformer; supply restored 14:05")]
    pub note: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    pub consumer_no: Option<String>,
    /// `open`, `in_progress`, `resolved`, `closed` or `rejected`.
    pub state: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseView>,
    pub next_cursor: Option<String>,
}

async fn register(
    caller: Caller,
    state: AppState,
    kind: CaseKind,
    body: CaseRequest,
) -> Result<(StatusCode, Json<CaseView>), ApiError> {
    caller.require(Role::Operator)?;
    let now = state.now();
    let by = caller.who();
    let case = desk(&state, move |s| {
        desk::register(
            s,
            &Registration {
                kind,
                consumer_no: body.consumer_no,
                type_code: body.type_code,
                description: body.description,
                change: body.change,
            },
            &by,
            now,
        )
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view(case, now, None))))
}

async fn list(
    caller: Caller,
    state: AppState,
    kind: CaseKind,
    q: CaseQuery,
) -> Result<Json<CasePage>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let cursor = desk::collection(kind);
    let after = paging::decode::<(i64, String)>(cursor, q.cursor.as_deref())?
        .map(|(ms, no)| {
            DateTime::from_timestamp_millis(ms)
                .map(|t| (t, no))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_cursor",
                        "the cursor is not one this list handed out",
                    )
                })
        })
        .transpose()?;
    let case_state = q
        .state
        .as_deref()
        .map(|s| {
            CaseState::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_state",
                    format!("state {s:?}: open, in_progress, resolved, closed or rejected"),
                )
            })
        })
        .transpose()?;
    let filter = CaseFilter {
        kind: Some(kind),
        consumer_no: q.consumer_no,
        state: case_state,
        after,
    };
    let rows = state.db(move |s| s.care_cases(&filter, limit + 1)).await?;
    let (rows, next) = paging::split(rows, limit, cursor, |c| {
        (c.opened_at.timestamp_millis(), c.number.clone())
    });
    let now = state.now();
    Ok(Json(CasePage {
        items: rows.into_iter().map(|c| view(c, now, None)).collect(),
        next_cursor: next,
    }))
}

async fn one(
    caller: Caller,
    state: AppState,
    kind: CaseKind,
    number: String,
) -> Result<Json<CaseView>, ApiError> {
    caller.require(Role::Reader)?;
    let (case, updates) = desk(&state, move |s| {
        let case = desk::case_of(s, kind, &number)?;
        let updates = s.care_updates(&number)?;
        Ok((case, updates))
    })
    .await?;
    Ok(Json(view(case, state.now(), Some(updates))))
}

async fn act(
    caller: Caller,
    state: AppState,
    kind: CaseKind,
    number: String,
    action: Action,
    note: String,
) -> Result<Json<CaseView>, ApiError> {
    caller.require(Role::Operator)?;
    let now = state.now();
    let by = caller.who();
    let (case, updates) = desk(&state, move |s| {
        let case = desk::act(s, kind, &number, action, &note, &by, now)?;
        let updates = s.care_updates(&number)?;
        Ok((case, updates))
    })
    .await?;
    tracing::info!(by = %caller.who(), number = %case.number, action = action.as_str(), "case updated");
    Ok(Json(view(case, now, Some(updates))))
}

fn action(s: &str) -> Result<Action, ApiError> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        ApiError::bad_request(
            "invalid_action",
            format!("action {s:?}: start, note, resolve, close, complete, reject or reopen"),
        )
    })
}

/// Registers a service request (19.2–19.3): its SRN, the due time from its kind's SLA, the
/// consumer acknowledged by SMS and email, routed if its kind is handled elsewhere.
#[utoipa::path(
    post,
    path = "/api/v1/service-requests",
    tag = "care",
    request_body = CaseRequest,
    responses(
        (status = 201, description = "Registered", body = CaseView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 422, description = "An unknown kind or consumer, a consumer without a meter, no description, or a change that does not fit the kind", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn register_request(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<CaseRequest>,
) -> Result<(StatusCode, Json<CaseView>), ApiError> {
    register(caller, state, CaseKind::ServiceRequest, body).await
}

/// Service requests, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/service-requests",
    tag = "care",
    params(CaseQuery),
    responses(
        (status = 200, description = "Service requests", body = CasePage),
        (status = 400, description = "Bad state, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_requests(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<CaseQuery>,
) -> Result<Json<CasePage>, ApiError> {
    list(caller, state, CaseKind::ServiceRequest, q).await
}

/// A service request with every step.
#[utoipa::path(
    get,
    path = "/api/v1/service-requests/{srn}",
    tag = "care",
    params(("srn" = String, Path, description = "The SRN, e.g. SR-2026-000123")),
    responses(
        (status = 200, description = "The service request", body = CaseView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such service request", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn request(
    caller: Caller,
    State(state): State<AppState>,
    Path(srn): Path<String>,
) -> Result<Json<CaseView>, ApiError> {
    one(caller, state, CaseKind::ServiceRequest, srn).await
}

/// Acts on a service request (19.4–19.5): a resolution applies the record change, a closure
/// or rejection tells the consumer.
#[utoipa::path(
    post,
    path = "/api/v1/service-requests/{srn}/updates",
    tag = "care",
    params(("srn" = String, Path, description = "The SRN")),
    request_body = CaseUpdateRequest,
    responses(
        (status = 200, description = "The service request after it", body = CaseView),
        (status = 400, description = "An unknown action", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such service request", body = ErrorBody),
        (status = 409, description = "Not allowed in its state, or past the reopening window", body = ErrorBody),
        (status = 422, description = "No note", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_request(
    caller: Caller,
    State(state): State<AppState>,
    Path(srn): Path<String>,
    Json(body): Json<CaseUpdateRequest>,
) -> Result<Json<CaseView>, ApiError> {
    let action = action(&body.action)?;
    act(
        caller,
        state,
        CaseKind::ServiceRequest,
        srn,
        action,
        body.note,
    )
    .await
}

/// The target a service request was routed to (e.g. WFM for meter testing) reports it done:
/// resolved and closed, the consumer told.
#[utoipa::path(
    post,
    path = "/api/v1/service-requests/{srn}/completion",
    tag = "care",
    params(("srn" = String, Path, description = "The SRN")),
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "Closed", body = CaseView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such service request", body = ErrorBody),
        (status = 409, description = "Not open or in progress", body = ErrorBody),
        (status = 422, description = "No note", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn complete_request(
    caller: Caller,
    State(state): State<AppState>,
    Path(srn): Path<String>,
    Json(body): Json<CompletionRequest>,
) -> Result<Json<CaseView>, ApiError> {
    act(
        caller,
        state,
        CaseKind::ServiceRequest,
        srn,
        Action::Complete,
        body.note,
    )
    .await
}

/// Registers a complaint (20.2–20.4): its CRN, routed by its nature to OMS, WFM, CIS or
/// billing, the consumer acknowledged by SMS and email.
#[utoipa::path(
    post,
    path = "/api/v1/complaints",
    tag = "care",
    request_body = CaseRequest,
    responses(
        (status = 201, description = "Registered and routed", body = CaseView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 422, description = "An unknown nature or consumer, a consumer without a meter, or no description", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn register_complaint(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<CaseRequest>,
) -> Result<(StatusCode, Json<CaseView>), ApiError> {
    register(caller, state, CaseKind::Complaint, body).await
}

/// Complaints, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/complaints",
    tag = "care",
    params(CaseQuery),
    responses(
        (status = 200, description = "Complaints", body = CasePage),
        (status = 400, description = "Bad state, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_complaints(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<CaseQuery>,
) -> Result<Json<CasePage>, ApiError> {
    list(caller, state, CaseKind::Complaint, q).await
}

/// A complaint with every step.
#[utoipa::path(
    get,
    path = "/api/v1/complaints/{crn}",
    tag = "care",
    params(("crn" = String, Path, description = "The CRN, e.g. CR-2026-000001")),
    responses(
        (status = 200, description = "The complaint", body = CaseView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such complaint", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn complaint(
    caller: Caller,
    State(state): State<AppState>,
    Path(crn): Path<String>,
) -> Result<Json<CaseView>, ApiError> {
    one(caller, state, CaseKind::Complaint, crn).await
}

/// Acts on a complaint at the desk (a note, a rejection, a reopening within the nature's days,
/// which routes it again).
#[utoipa::path(
    post,
    path = "/api/v1/complaints/{crn}/updates",
    tag = "care",
    params(("crn" = String, Path, description = "The CRN")),
    request_body = CaseUpdateRequest,
    responses(
        (status = 200, description = "The complaint after it", body = CaseView),
        (status = 400, description = "An unknown action", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such complaint", body = ErrorBody),
        (status = 409, description = "Not allowed in its state, or past the reopening window", body = ErrorBody),
        (status = 422, description = "No note", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_complaint(
    caller: Caller,
    State(state): State<AppState>,
    Path(crn): Path<String>,
    Json(body): Json<CaseUpdateRequest>,
) -> Result<Json<CaseView>, ApiError> {
    let action = action(&body.action)?;
    act(caller, state, CaseKind::Complaint, crn, action, body.note).await
}

/// The target system (OMS, WFM, CIS) reports the complaint done (20.5): it is closed and the
/// consumer told (20.6).
#[utoipa::path(
    post,
    path = "/api/v1/complaints/{crn}/completion",
    tag = "care",
    params(("crn" = String, Path, description = "The CRN")),
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "Closed", body = CaseView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such complaint", body = ErrorBody),
        (status = 409, description = "Not open or in progress", body = ErrorBody),
        (status = 422, description = "No note", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn complete_complaint(
    caller: Caller,
    State(state): State<AppState>,
    Path(crn): Path<String>,
    Json(body): Json<CompletionRequest>,
) -> Result<Json<CaseView>, ApiError> {
    act(
        caller,
        state,
        CaseKind::Complaint,
        crn,
        Action::Complete,
        body.note,
    )
    .await
}

/// Unfinished cases of one kind or nature by age.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgeingRowView {
    #[serde(rename = "type")]
    pub type_code: String,
    /// One count per bucket of the summary's `buckets`.
    pub counts: Vec<u32>,
    pub unfinished: u32,
    pub overdue: u32,
}

/// What is unfinished, by kind and age.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ageing {
    pub at: String,
    /// The age buckets, e.g. `0-1d`, `1-3d`, … `30d+`.
    pub buckets: Vec<String>,
    pub service_requests: Vec<AgeingRowView>,
    pub complaints: Vec<AgeingRowView>,
}

/// The ageing of unfinished service requests and complaints: counts per kind and age bucket,
/// and how many are past their SLA.
#[utoipa::path(
    get,
    path = "/api/v1/care/ageing",
    tag = "care",
    responses(
        (status = 200, description = "The ageing summary", body = Ageing),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ageing(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Ageing>, ApiError> {
    caller.require(Role::Reader)?;
    let now = state.now();
    let (requests, complaints) = state
        .db(|s| {
            Ok((
                s.care_unfinished(CaseKind::ServiceRequest)?,
                s.care_unfinished(CaseKind::Complaint)?,
            ))
        })
        .await?;
    let rows = |cases: &[Case]| {
        lifecycle::ageing(cases, now)
            .into_iter()
            .map(|r| AgeingRowView {
                type_code: r.type_code,
                counts: r.buckets,
                unfinished: r.unfinished,
                overdue: r.overdue,
            })
            .collect()
    };
    Ok(Json(Ageing {
        at: ist(now),
        buckets: AGE_BUCKETS
            .iter()
            .map(|(name, ..)| name.to_string())
            .collect(),
        service_requests: rows(&requests),
        complaints: rows(&complaints),
    }))
}

//! Field operations and the consumer record on the API (issue 7): work orders (raise, assign,
//! complete with the field report, resolve a confirmed tamper, cancel), new-connection requests
//! with each step, and a consumer's record as CIS shows it, with its history.

use axum::extract::State;
use axum::http::StatusCode;
use field::orders::{Kind, Report};
use field::service::{Field, FieldError, NewConnection};
use serde::{Deserialize, Serialize};
use store::Role;
use store::field::{ConnectionRequest, NewWorkOrder, WorkOrder, connection_number, id_of_number};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::ist;

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        match e {
            FieldError::Store(e) => ApiError::from(e),
            FieldError::NotFound(m) => ApiError::not_found(m),
            FieldError::Refused(m) => ApiError::conflict("refused", m),
            FieldError::Report(e) => ApiError::unprocessable("bad_report", e.to_string()),
            FieldError::Command(e) => ApiError::internal("a command to the head-end failed", &e),
        }
    }
}

fn engine(state: &AppState) -> Field {
    Field::new(
        state.store.clone(),
        state.commands.clone(),
        state.prepaid.clone(),
    )
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

/// A work order.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkOrderView {
    /// `WO-<year>-<six digits>`.
    pub number: String,
    pub id: u64,
    /// `installation`, `tamper_inspection`, `meter_replacement` or `manual_reconnect`.
    pub kind: String,
    /// `open`, `assigned`, `completed`, `resolved` or `cancelled`.
    pub state: String,
    pub consumer_no: Option<String>,
    pub meter: Option<String>,
    pub address: String,
    /// The tamper code and description, the connection, …
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub assigned_to: Option<String>,
    pub due_at: String,
    /// Not completed by its due time.
    pub overdue: bool,
    /// The field completion report.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
    /// Every step: state, by, at, note.
    #[schema(value_type = Vec<Object>)]
    pub log: serde_json::Value,
    pub created_by: String,
    pub created_at: String,
}

fn order_view(w: WorkOrder, now: chrono::DateTime<chrono::Utc>) -> WorkOrderView {
    WorkOrderView {
        number: store::field::work_order_number(w.id, w.created_at),
        id: w.id,
        overdue: matches!(w.state.as_str(), "open" | "assigned") && now > w.due_at,
        kind: w.kind,
        state: w.state,
        consumer_no: w.consumer_no,
        meter: w.meter.map(|m| m.to_string()),
        address: w.address,
        detail: json(&w.detail),
        assigned_to: w.assigned_to,
        due_at: ist(w.due_at),
        report: w.report.as_deref().map_or(serde_json::Value::Null, json),
        log: json(&w.log),
        created_by: w.created_by,
        created_at: ist(w.created_at),
    }
}

/// The work order `number` names (`WO-2026-000017`, or its id).
fn order_id(number: &str) -> Result<u64, ApiError> {
    id_of_number(number, "WO")
        .or_else(|| number.parse().ok())
        .ok_or_else(|| ApiError::not_found(format!("no work order {number}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkOrderQuery {
    pub state: Option<String>,
    pub kind: Option<String>,
    pub consumer_no: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkOrderPage {
    pub items: Vec<WorkOrderView>,
    pub next_cursor: Option<String>,
}

const ORDER_CURSOR: &str = "work-orders";

/// Work orders, newest first (the WFM queue).
#[utoipa::path(
    get,
    path = "/api/v1/work-orders",
    tag = "field",
    params(WorkOrderQuery),
    responses(
        (status = 200, description = "Work orders", body = WorkOrderPage),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn work_orders(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<WorkOrderQuery>,
) -> Result<Json<WorkOrderPage>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let before = paging::decode::<u64>(ORDER_CURSOR, q.cursor.as_deref())?.unwrap_or(0);
    let rows = state
        .db(move |s| {
            s.work_orders(
                q.state.as_deref(),
                q.kind.as_deref(),
                q.consumer_no.as_deref(),
                before,
                limit + 1,
            )
        })
        .await?;
    let (rows, next) = paging::split(rows, limit, ORDER_CURSOR, |w| w.id);
    let now = state.now();
    Ok(Json(WorkOrderPage {
        items: rows.into_iter().map(|w| order_view(w, now)).collect(),
        next_cursor: next,
    }))
}

/// One work order.
#[utoipa::path(
    get,
    path = "/api/v1/work-orders/{number}",
    tag = "field",
    params(("number" = String, Path, description = "WO-<year>-<six digits>")),
    responses(
        (status = 200, description = "The order", body = WorkOrderView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn work_order(
    caller: Caller,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<WorkOrderView>, ApiError> {
    caller.require(Role::Reader)?;
    let id = order_id(&number)?;
    let w = state
        .db(move |s| s.work_order(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no work order {number}")))?;
    Ok(Json(order_view(w, state.now())))
}

/// A work order raised at the desk.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkOrderRequest {
    /// `tamper_inspection`, `meter_replacement` or `manual_reconnect` (installations come with
    /// a connection request).
    pub kind: String,
    pub consumer_no: String,
    /// What the crew should know.
    #[serde(default)]
    pub note: String,
    /// A meter replacement for a move to prepaid (use case 13.3: the meter has no load
    /// switch): `prepaid`, and the move starts once the new meter is in.
    #[serde(default)]
    pub then_migrate_to: Option<String>,
    /// The opening balance of that move, paise.
    #[serde(default)]
    pub opening_balance_paise: i64,
}

/// Raises a work order for a consumer's meter at their address.
#[utoipa::path(
    post,
    path = "/api/v1/work-orders",
    tag = "field",
    request_body = WorkOrderRequest,
    responses(
        (status = 201, description = "Raised", body = WorkOrderView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
        (status = 422, description = "Not a kind raised at the desk, or no meter", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn raise(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<WorkOrderRequest>,
) -> Result<(StatusCode, Json<WorkOrderView>), ApiError> {
    caller.require(Role::Operator)?;
    let kind = Kind::parse(&body.kind)
        .filter(|k| *k != Kind::Installation)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_kind",
                format!(
                    "kind {:?}: tamper_inspection, meter_replacement or manual_reconnect",
                    body.kind
                ),
            )
        })?;
    if body
        .then_migrate_to
        .as_deref()
        .is_some_and(|to| to != "prepaid" || kind != Kind::MeterReplacement)
    {
        return Err(ApiError::unprocessable(
            "invalid_then",
            "then_migrate_to is `prepaid`, with a meter_replacement",
        ));
    }
    let now = state.now();
    let by = caller.label.clone();
    let w = state
        .db(move |s| {
            let meter = s
                .prepaid_supply(&body.consumer_no, now)?
                .map(|(m, _)| m)
                .ok_or_else(|| {
                    store::StoreError::Invalid(format!("{} has no meter", body.consumer_no))
                })?;
            let (_, address) = s.consumer_of_meter(&meter, now)?.unwrap_or_default();
            let detail = serde_json::json!({"note": body.note,
                "then_migrate_to": body.then_migrate_to,
                "opening_balance_paise": body.opening_balance_paise})
            .to_string();
            s.work_order_raise(
                &NewWorkOrder {
                    kind: kind.name(),
                    source_key: None,
                    consumer_no: Some(&body.consumer_no),
                    meter: Some(&meter),
                    address: &address,
                    detail: &detail,
                    due_at: now + kind.allowed(),
                    created_by: &by,
                },
                now,
            )
            .map(|(order, _)| order)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(order_view(w, now))))
}

/// Who takes the order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Assignment {
    pub crew: String,
}

/// Assigns an order to a crew.
#[utoipa::path(
    post,
    path = "/api/v1/work-orders/{number}/assign",
    tag = "field",
    params(("number" = String, Path, description = "WO-<year>-<six digits>")),
    request_body = Assignment,
    responses(
        (status = 200, description = "Assigned", body = WorkOrderView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Completed or cancelled", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn assign(
    caller: Caller,
    State(state): State<AppState>,
    Path(number): Path<String>,
    Json(body): Json<Assignment>,
) -> Result<Json<WorkOrderView>, ApiError> {
    caller.require(Role::Operator)?;
    let id = order_id(&number)?;
    let now = state.now();
    let field = engine(&state);
    let w = state
        .db(move |_| Ok(field.assign(id, &body.crew, &caller.label, now)))
        .await??;
    Ok(Json(order_view(w, now)))
}

/// The field completion report (its `kind` matches the order's).
#[utoipa::path(
    post,
    path = "/api/v1/work-orders/{number}/complete",
    tag = "field",
    params(("number" = String, Path, description = "WO-<year>-<six digits>")),
    request_body(content = Object, description = "{\"kind\": \"tamper_inspection\", \"finding\": \"confirmed\", \"reason\": \"Magnet on the meter\"} | {\"kind\": \"installation\", \"meter\", \"transformer\", \"initial_reading_wh\"} | {\"kind\": \"meter_replacement\", \"new_meter\", \"old_final_wh\", \"new_initial_wh\"} | {\"kind\": \"manual_reconnect\"}"),
    responses(
        (status = 200, description = "Completed; what follows is under way", body = WorkOrderView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Completed or cancelled already", body = ErrorBody),
        (status = 422, description = "A report that does not fit the order", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn complete(
    caller: Caller,
    State(state): State<AppState>,
    Path(number): Path<String>,
    Json(report): Json<Report>,
) -> Result<Json<WorkOrderView>, ApiError> {
    caller.require(Role::Operator)?;
    let id = order_id(&number)?;
    let now = state.now();
    let w = engine(&state)
        .complete(id, report, &caller.label, now)
        .await?;
    Ok(Json(order_view(w, now)))
}

/// A note with a step.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StepNote {
    #[serde(default)]
    pub note: String,
}

/// A confirmed tamper dealt with: the supply reconnected through the head-end (5.7–5.8).
#[utoipa::path(
    post,
    path = "/api/v1/work-orders/{number}/resolve",
    tag = "field",
    params(("number" = String, Path, description = "WO-<year>-<six digits>")),
    request_body = StepNote,
    responses(
        (status = 200, description = "Resolved; reconnection sent", body = WorkOrderView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Not a confirmed tamper", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn resolve(
    caller: Caller,
    State(state): State<AppState>,
    Path(number): Path<String>,
    Json(body): Json<StepNote>,
) -> Result<Json<WorkOrderView>, ApiError> {
    caller.require(Role::Operator)?;
    let id = order_id(&number)?;
    let now = state.now();
    let w = engine(&state)
        .resolve(id, &caller.label, &body.note, now)
        .await?;
    Ok(Json(order_view(w, now)))
}

/// Cancels an order not completed yet.
#[utoipa::path(
    post,
    path = "/api/v1/work-orders/{number}/cancel",
    tag = "field",
    params(("number" = String, Path, description = "WO-<year>-<six digits>")),
    request_body = StepNote,
    responses(
        (status = 200, description = "Cancelled", body = WorkOrderView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Completed, or an installation", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    caller: Caller,
    State(state): State<AppState>,
    Path(number): Path<String>,
    Json(body): Json<StepNote>,
) -> Result<Json<WorkOrderView>, ApiError> {
    caller.require(Role::Operator)?;
    let id = order_id(&number)?;
    let now = state.now();
    let field = engine(&state);
    let w = state
        .db(move |_| Ok(field.cancel(id, &caller.label, &body.note, now)))
        .await??;
    Ok(Json(order_view(w, now)))
}

/// A new connection.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// `NC-<year>-<six digits>`.
    pub number: String,
    pub consumer_no: String,
    /// `installation_ordered`, `reading`, `confirmed` or `failed`.
    pub state: String,
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    /// The installation order's number.
    pub work_order: Option<String>,
    pub meter: Option<String>,
    pub initial_reading_wh: Option<i64>,
    /// Every step with its state and time.
    #[schema(value_type = Vec<Object>)]
    pub log: serde_json::Value,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A connection request with its installation order, as read from the store.
fn with_order(
    s: &store::Store,
    c: ConnectionRequest,
) -> Result<(ConnectionRequest, Option<WorkOrder>), store::StoreError> {
    let order = c
        .work_order
        .map(|id| s.work_order(id))
        .transpose()?
        .flatten();
    Ok((c, order))
}

fn connection_view(c: ConnectionRequest, order: Option<&WorkOrder>) -> ConnectionView {
    ConnectionView {
        number: connection_number(c.id, c.created_at),
        consumer_no: c.consumer_no,
        state: c.state,
        request: json(&c.request),
        work_order: order.map(|w| store::field::work_order_number(w.id, w.created_at)),
        meter: c.meter.map(|m| m.to_string()),
        initial_reading_wh: c.initial_wh,
        log: json(&c.log),
        last_error: c.last_error,
        created_at: ist(c.created_at),
        updated_at: ist(c.updated_at),
    }
}

/// A verified new-connection request (use case 12.1) from CIS/CRM or billing: the consumer
/// recorded and the installation order raised.
#[utoipa::path(
    post,
    path = "/api/v1/connections",
    tag = "field",
    request_body(content = Object, description = "{\"consumer_no\", \"name\", \"address\", \"category\", \"sanctioned_load_w\", \"scheme\": \"prepaid|postpaid\", \"transformer\", \"mobile\"?, \"email\"?, \"cycle_day\"?, \"verified_by\"}"),
    responses(
        (status = 201, description = "Taken; the installation order raised", body = ConnectionView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs operator", body = ErrorBody),
        (status = 409, description = "A consumer already, or a request that makes no sense", body = ErrorBody),
        (status = 422, description = "A bad contact", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn request_connection(
    caller: Caller,
    State(state): State<AppState>,
    Json(body): Json<NewConnection>,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    caller.require(Role::Operator)?;
    let now = state.now();
    let field = engine(&state);
    let (c, order) = state
        .db(move |s| {
            Ok(field
                .request_connection(&body, &caller.label, now)
                .and_then(|c| Ok(with_order(s, c)?)))
        })
        .await??;
    Ok((
        StatusCode::CREATED,
        Json(connection_view(c, order.as_ref())),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectionQuery {
    pub state: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionPage {
    pub items: Vec<ConnectionView>,
    pub next_cursor: Option<String>,
}

const CONNECTION_CURSOR: &str = "connections";

/// New connections, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/connections",
    tag = "field",
    params(ConnectionQuery),
    responses(
        (status = 200, description = "Connections", body = ConnectionPage),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn connections(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<ConnectionQuery>,
) -> Result<Json<ConnectionPage>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let before = paging::decode::<u64>(CONNECTION_CURSOR, q.cursor.as_deref())?.unwrap_or(0);
    let rows = state
        .db(move |s| {
            let rows = s.connection_requests(q.state.as_deref(), before, limit + 1)?;
            rows.into_iter()
                .map(|c| with_order(s, c))
                .collect::<Result<Vec<_>, store::StoreError>>()
        })
        .await?;
    let (rows, next) = paging::split(rows, limit, CONNECTION_CURSOR, |(c, _)| c.id);
    Ok(Json(ConnectionPage {
        items: rows
            .into_iter()
            .map(|(c, o)| connection_view(c, o.as_ref()))
            .collect(),
        next_cursor: next,
    }))
}

/// One new connection, by its number or its consumer number.
#[utoipa::path(
    get,
    path = "/api/v1/connections/{number}",
    tag = "field",
    params(("number" = String, Path, description = "NC-<year>-<six digits>, or the consumer number")),
    responses(
        (status = 200, description = "The connection", body = ConnectionView),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such connection", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn connection(
    caller: Caller,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    caller.require(Role::Reader)?;
    let key = number.clone();
    let found = state
        .db(move |s| {
            let c = match id_of_number(&key, "NC") {
                Some(id) => s.connection_request(id)?,
                None => s.connection_request_of(&key)?,
            };
            c.map(|c| with_order(s, c)).transpose()
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no connection {number}")))?;
    Ok(Json(connection_view(found.0, found.1.as_ref())))
}

/// A consumer as CIS shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumerRecord {
    pub consumer_no: String,
    pub name: String,
    pub category: String,
    pub net_metered: bool,
    pub service_point: Option<String>,
    pub address: String,
    pub sanctioned_load_w: i64,
    pub meter: Option<String>,
    /// The transformer and feeder above the meter.
    pub transformer: Option<String>,
    pub feeder: Option<String>,
    /// `prepaid` or `postpaid` (with a billing cycle), or `none` yet.
    pub scheme: String,
    pub billing_cycle_day: Option<u8>,
    pub mobile: Option<String>,
    pub email: Option<String>,
}

/// A consumer's record: connection, meter, network, scheme, contact (use case 16.2 for staff).
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}",
    tag = "field",
    params(("consumer_no" = String, Path, description = "Consumer number")),
    responses(
        (status = 200, description = "The record", body = ConsumerRecord),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn consumer(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
) -> Result<Json<ConsumerRecord>, ApiError> {
    caller.require(Role::Reader)?;
    let now = state.now();
    let key = no.clone();
    let record = state
        .db(move |s| {
            let Some(c) = s.mdm_consumer(&key)? else {
                return Ok(None);
            };
            let party = s.bill_header(&key, now)?.unwrap_or_default();
            let meter = party
                .meter
                .as_deref()
                .and_then(|m| model::MeterSerial::new(m).ok());
            let place = match &meter {
                Some(m) => s.meter_places(std::slice::from_ref(m), now)?.remove(m),
                None => None,
            }
            .unwrap_or_default();
            let prepaid = s.prepaid_account(&key)?.is_some_and(|a| a.prepaid);
            let account = s.billing_account(&key)?.filter(|a| a.closed_on.is_none());
            let contact = s.contact(&key)?;
            Ok(Some(ConsumerRecord {
                consumer_no: key.clone(),
                name: c.name,
                category: c.category,
                net_metered: c.net_metered,
                service_point: s.service_point_of(&key, now)?,
                address: party.address,
                sanctioned_load_w: party.sanctioned_w,
                meter: party.meter,
                transformer: place.dt,
                feeder: place.feeder,
                scheme: if prepaid {
                    "prepaid"
                } else if account.is_some() {
                    "postpaid"
                } else {
                    "none"
                }
                .into(),
                billing_cycle_day: account.map(|a| a.cycle_day),
                mobile: contact.as_ref().and_then(|c| c.mobile.clone()),
                email: contact.and_then(|c| c.email),
            }))
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no consumer {no}")))?;
    Ok(Json(record))
}

/// One change to a consumer's record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordChange {
    pub at: String,
    /// `details` (name, category, net metering), `work_order`, `connection` or `scheme`.
    pub what: String,
    #[schema(value_type = Object)]
    pub before: serde_json::Value,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
}

/// The history of a consumer's record: changes to their details, their work orders and
/// connection, and moves between prepaid and postpaid, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/consumers/{consumer_no}/history",
    tag = "field",
    params(("consumer_no" = String, Path, description = "Consumer number")),
    responses(
        (status = 200, description = "Changes, oldest first", body = Vec<RecordChange>),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such consumer", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn history(
    caller: Caller,
    State(state): State<AppState>,
    Path(no): Path<String>,
) -> Result<Json<Vec<RecordChange>>, ApiError> {
    caller.require(Role::Reader)?;
    let key = no.clone();
    let changes = state
        .db(move |s| {
            if s.mdm_consumer(&key)?.is_none() {
                return Ok(None);
            }
            let mut out: Vec<(chrono::DateTime<chrono::Utc>, RecordChange)> = Vec::new();
            for c in s.consumer_changes(&key)? {
                out.push((
                    c.at,
                    RecordChange {
                        at: ist(c.at),
                        what: "details".into(),
                        before: c.before.as_deref().map_or(serde_json::Value::Null, json),
                        after: json(&c.after),
                    },
                ));
            }
            for w in s.work_orders(None, None, Some(&key), 0, 1000)? {
                out.push((
                    w.created_at,
                    RecordChange {
                        at: ist(w.created_at),
                        what: "work_order".into(),
                        before: serde_json::Value::Null,
                        after: serde_json::json!({
                            "number": store::field::work_order_number(w.id, w.created_at),
                            "kind": w.kind, "state": w.state}),
                    },
                ));
            }
            if let Some(c) = s.connection_request_of(&key)? {
                out.push((
                    c.created_at,
                    RecordChange {
                        at: ist(c.created_at),
                        what: "connection".into(),
                        before: serde_json::Value::Null,
                        after: serde_json::json!({
                            "number": connection_number(c.id, c.created_at), "state": c.state}),
                    },
                ));
            }
            for m in s.mode_migrations_of(&key)? {
                out.push((
                    m.requested_at,
                    RecordChange {
                        at: ist(m.requested_at),
                        what: "scheme".into(),
                        before: serde_json::Value::Null,
                        after: serde_json::json!({
                            "to": if m.to_prepaid { "prepaid" } else { "postpaid" },
                            "state": m.state.name()}),
                    },
                ));
            }
            out.sort_by_key(|(at, _)| *at);
            Ok(Some(out.into_iter().map(|(_, c)| c).collect()))
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no consumer {no}")))?;
    Ok(Json(changes))
}

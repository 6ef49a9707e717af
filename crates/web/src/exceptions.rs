//! The VEE exception queue: failed validations for people to work through, filtered by state
//! and meter, and closing one (resolved or dismissed) with a note.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use model::MeterSerial;
use serde::{Deserialize, Serialize};
use store::{ExceptionRow, ExceptionState, Role, StoreError};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::readings::MAX_NOTE;
use crate::time::ist;
use crate::{AppState, serial};

/// A failed validation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Exception {
    /// Opaque; names the exception in `POST /exceptions/{id}/close`.
    pub id: String,
    pub meter: String,
    /// The VEE rule that failed.
    pub rule: String,
    /// First and last interval end (or capture time) concerned.
    pub from: String,
    pub to: String,
    pub severity: String,
    pub detail: String,
    /// `open`, `resolved` or `dismissed`.
    pub state: String,
    pub created_at: String,
    pub closed_by: Option<String>,
    pub note: Option<String>,
}

/// The key of an exception, as its opaque id.
#[derive(Debug, Serialize, Deserialize)]
struct Key {
    meter: String,
    rule: String,
    from: i64,
    to: i64,
}

fn id_of(row: &ExceptionRow) -> String {
    let key = Key {
        meter: row.meter.to_string(),
        rule: row.rule.clone(),
        from: row.from.timestamp_millis(),
        to: row.to.timestamp_millis(),
    };
    hex::encode(serde_json::to_vec(&key).unwrap_or_default())
}

fn key_of(id: &str) -> Option<(MeterSerial, String, DateTime<Utc>, DateTime<Utc>)> {
    let key: Key = serde_json::from_slice(&hex::decode(id).ok()?).ok()?;
    Some((
        MeterSerial::new(key.meter).ok()?,
        key.rule,
        DateTime::from_timestamp_millis(key.from)?,
        DateTime::from_timestamp_millis(key.to)?,
    ))
}

impl From<ExceptionRow> for Exception {
    fn from(r: ExceptionRow) -> Self {
        Exception {
            id: id_of(&r),
            meter: r.meter.to_string(),
            rule: r.rule,
            from: ist(r.from),
            to: ist(r.to),
            severity: r.severity,
            detail: r.detail,
            state: r.state.as_str().to_string(),
            created_at: ist(r.created_at),
            closed_by: r.closed_by,
            note: r.note,
        }
    }
}

/// A page of exceptions, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExceptionPage {
    pub items: Vec<Exception>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Filters and a page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    /// `open`, `resolved` or `dismissed` (default: all).
    pub state: Option<String>,
    /// Only this meter's.
    pub meter: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn parse_state(s: &str) -> Option<ExceptionState> {
    [
        ExceptionState::Open,
        ExceptionState::Resolved,
        ExceptionState::Dismissed,
    ]
    .into_iter()
    .find(|x| x.as_str() == s)
}

const CURSOR: &str = "exceptions";

/// The exception queue, oldest first.
///
/// The queue pages by position: closing exceptions while walking a list filtered by
/// `state=open` moves the later ones forward, so walk it again after closing.
#[utoipa::path(
    get,
    path = "/api/v1/exceptions",
    tag = "exceptions",
    params(ExceptionQuery),
    responses(
        (status = 200, description = "Exceptions, oldest first", body = ExceptionPage),
        (status = 400, description = "Bad state, serial, limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<ExceptionQuery>,
) -> Result<Json<ExceptionPage>, ApiError> {
    caller.require(Role::Reader)?;
    let filter_state = q
        .state
        .as_deref()
        .map(|s| {
            parse_state(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("state {s:?}: give open, resolved or dismissed"),
                )
            })
        })
        .transpose()?;
    let meter = q.meter.as_deref().map(serial).transpose()?;
    let limit = paging::limit(q.limit)?;
    let offset = paging::decode::<u64>(CURSOR, q.cursor.as_deref())?.unwrap_or(0);
    let mut rows = state
        .db(move |s| {
            s.mdm_exceptions(
                meter.as_ref(),
                filter_state,
                limit.saturating_add(1),
                offset,
            )
        })
        .await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        Some(paging::encode(
            CURSOR,
            &offset.saturating_add(u64::from(limit)),
        ))
    } else {
        None
    };
    Ok(Json(ExceptionPage {
        items: rows.into_iter().map(Exception::from).collect(),
        next_cursor,
    }))
}

/// How an exception is closed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseException {
    /// `resolved` or `dismissed`.
    #[schema(example = "resolved")]
    pub state: String,
    /// What was found or done. Required.
    pub note: String,
}

/// Closes an open exception (operator), with a note and who closed it.
#[utoipa::path(
    post,
    path = "/api/v1/exceptions/{id}/close",
    tag = "exceptions",
    params(("id" = String, Path, description = "The exception's id from the list")),
    request_body = CloseException,
    responses(
        (status = 204, description = "Closed"),
        (status = 400, description = "Not an exception id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Needs the operator role", body = ErrorBody),
        (status = 404, description = "No open exception with that id", body = ErrorBody),
        (status = 422, description = "Bad state or missing note", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn close(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<CloseException>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Operator)?;
    let (meter, rule, from, to) =
        key_of(&id).ok_or_else(|| ApiError::bad_request("invalid_path", "not an exception id"))?;
    let to_state = match parse_state(&body.state) {
        Some(s @ (ExceptionState::Resolved | ExceptionState::Dismissed)) => s,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_close",
                format!("state {:?}: give resolved or dismissed", body.state),
            ));
        }
    };
    let note = body.note.trim().to_string();
    if note.is_empty() || note.len() > MAX_NOTE {
        return Err(ApiError::unprocessable(
            "invalid_close",
            format!("closing an exception needs a note (1 to {MAX_NOTE} bytes)"),
        ));
    }
    let who = caller.who();
    let now = state.now();
    let result = state
        .db(move |s| Ok(s.mdm_close_exception(&meter, &rule, from, to, to_state, &who, &note, now)))
        .await?;
    match result {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found(
            "no open exception with that id (closed already?)",
        )),
        Err(e) => Err(e.into()),
    }
}

//! The head-end's meter registry: `GET /api/v1/meters` and `GET /api/v1/meters/{serial}`.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::{MeterRecord, Role};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::paging;
use crate::time::ist_opt;
use crate::{AppState, serial};

/// A meter as the head-end knows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Meter {
    #[schema(example = "UP0000001")]
    pub serial: String,
    /// As imported, e.g. `single-phase`, `three-phase`, `ct`.
    pub kind: String,
    /// Where the meter (or its modem or DCU) is reached.
    pub host: String,
    pub port: u16,
    /// `wrapper` or `hdlc`.
    pub transport: String,
    pub server_address: u16,
    /// The data concentrator the meter sits under.
    pub dcu: Option<String>,
    /// The meter group its collection schedule comes from.
    pub group: String,
    /// The last session that reached the meter (only on `GET /meters/{serial}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-12-01T00:15:00+05:30")]
    pub last_contact: Option<String>,
}

impl Meter {
    fn from_record(m: MeterRecord, last_contact: Option<String>) -> Self {
        Meter {
            serial: m.serial.to_string(),
            kind: m.kind,
            host: m.host,
            port: m.port,
            transport: m.transport,
            server_address: m.server_address,
            dcu: m.dcu,
            group: m.group,
            last_contact,
        }
    }
}

/// A page of meters.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeterPage {
    pub items: Vec<Meter>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// `limit` and `cursor`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

const CURSOR: &str = "meters";

/// The registered meters, by serial.
#[utoipa::path(
    get,
    path = "/api/v1/meters",
    tag = "meters",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of meters, ordered by serial", body = MeterPage),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Result<Json<MeterPage>, ApiError> {
    caller.require(Role::Reader)?;
    let limit = paging::limit(q.limit)?;
    let after = paging::decode::<String>(CURSOR, q.cursor.as_deref())?
        .map(|s| serial(&s))
        .transpose()
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_cursor",
                "the cursor is not one this list handed out",
            )
        })?;
    let mut rows = state
        .db(move |s| s.meters_after(after.as_ref(), limit.saturating_add(1)))
        .await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last()
            .map(|m| paging::encode(CURSOR, &m.serial.as_str()))
    } else {
        None
    };
    Ok(Json(MeterPage {
        items: rows
            .into_iter()
            .map(|m| Meter::from_record(m, None))
            .collect(),
        next_cursor,
    }))
}

/// One meter, with its last contact.
#[utoipa::path(
    get,
    path = "/api/v1/meters/{serial}",
    tag = "meters",
    params(("serial" = String, Path, description = "Meter serial")),
    responses(
        (status = 200, description = "The meter", body = Meter),
        (status = 400, description = "Not a valid serial", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "No such meter in the registry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn one(
    caller: Caller,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Meter>, ApiError> {
    caller.require(Role::Reader)?;
    let serial = serial(&raw)?;
    let found = state
        .db({
            let serial = serial.clone();
            move |s| {
                let Some(m) = s.meter(&serial)? else {
                    return Ok(None);
                };
                Ok(Some((m, s.last_contact(&serial)?)))
            }
        })
        .await?;
    let (record, last_contact) =
        found.ok_or_else(|| ApiError::not_found(format!("no meter {serial} in the registry")))?;
    Ok(Json(Meter::from_record(record, ist_opt(last_contact))))
}

//! Field operations and the consumer record (migration `0015_field`): work orders with their
//! log and completion report, new-connection requests from request to confirmation, the
//! history of a consumer's details, and the cursor of a reader of routed notices.

use chrono::{DateTime, Utc};
use model::MeterSerial;
use rusqlite::{OptionalExtension, Row, params};

use crate::prepaid_ops::collect;
use crate::{Result, Store, StoreError, from_ms, ms, narrow, serial};

/// A work order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkOrder {
    pub id: u64,
    /// `installation`, `tamper_inspection`, `meter_replacement` or `manual_reconnect`.
    pub kind: String,
    /// `open`, `assigned`, `completed`, `resolved` (a confirmed tamper dealt with) or
    /// `cancelled`.
    pub state: String,
    pub source_key: Option<String>,
    pub consumer_no: Option<String>,
    pub meter: Option<MeterSerial>,
    pub address: String,
    /// JSON.
    pub detail: String,
    pub assigned_to: Option<String>,
    pub due_at: DateTime<Utc>,
    /// JSON: the field completion report.
    pub report: Option<String>,
    /// JSON array of steps.
    pub log: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A work order to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorkOrder<'a> {
    pub kind: &'a str,
    pub source_key: Option<&'a str>,
    pub consumer_no: Option<&'a str>,
    pub meter: Option<&'a MeterSerial>,
    pub address: &'a str,
    pub detail: &'a str,
    pub due_at: DateTime<Utc>,
    pub created_by: &'a str,
}

/// A new-connection request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRequest {
    pub id: u64,
    pub consumer_no: String,
    /// JSON.
    pub request: String,
    /// `installation_ordered`, `reading`, `confirmed` or `failed`.
    pub state: String,
    pub work_order: Option<u64>,
    pub meter: Option<MeterSerial>,
    pub initial_wh: Option<i64>,
    /// JSON array of the verification reads' command ids.
    pub commands: Option<String>,
    pub attempts: u32,
    /// JSON array of steps.
    pub log: String,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One change to a consumer's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerChange {
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// JSON, `None` when the consumer was added.
    pub before: Option<String>,
    pub after: String,
}

const ORDER_COLUMNS: &str = "id, kind, state, source_key, consumer_no, meter, address, detail, \
     assigned_to, due_at, report, log, created_by, created_at, updated_at";

fn meter(s: Option<String>) -> Result<Option<MeterSerial>> {
    s.map(serial).transpose()
}

fn order(r: &Row<'_>) -> Result<WorkOrder> {
    Ok(WorkOrder {
        id: narrow(r.get(0)?, "work order id")?,
        kind: r.get(1)?,
        state: r.get(2)?,
        source_key: r.get(3)?,
        consumer_no: r.get(4)?,
        meter: meter(r.get(5)?)?,
        address: r.get(6)?,
        detail: r.get(7)?,
        assigned_to: r.get(8)?,
        due_at: from_ms(r.get(9)?)?,
        report: r.get(10)?,
        log: r.get(11)?,
        created_by: r.get(12)?,
        created_at: from_ms(r.get(13)?)?,
        updated_at: from_ms(r.get(14)?)?,
    })
}

const REQUEST_COLUMNS: &str = "id, consumer_no, request, state, work_order, meter, initial_wh, \
     commands, attempts, log, last_error, created_at, updated_at";

fn request(r: &Row<'_>) -> Result<ConnectionRequest> {
    Ok(ConnectionRequest {
        id: narrow(r.get(0)?, "connection request id")?,
        consumer_no: r.get(1)?,
        request: r.get(2)?,
        state: r.get(3)?,
        work_order: r
            .get::<_, Option<i64>>(4)?
            .map(|v| narrow(v, "work order id"))
            .transpose()?,
        meter: meter(r.get(5)?)?,
        initial_wh: r.get(6)?,
        commands: r.get(7)?,
        attempts: narrow(r.get(8)?, "attempts")?,
        log: r.get(9)?,
        last_error: r.get(10)?,
        created_at: from_ms(r.get(11)?)?,
        updated_at: from_ms(r.get(12)?)?,
    })
}

/// A work order's number as people quote it: `WO-<year>-<id, six digits>`.
pub fn work_order_number(id: u64, created_at: DateTime<Utc>) -> String {
    use chrono::Datelike;
    format!("WO-{}-{id:06}", created_at.year())
}

/// A connection request's number: `NC-<year>-<id, six digits>`.
pub fn connection_number(id: u64, created_at: DateTime<Utc>) -> String {
    use chrono::Datelike;
    format!("NC-{}-{id:06}", created_at.year())
}

/// The id in a number like `WO-2026-000017`, if it is one of `prefix`.
pub fn id_of_number(number: &str, prefix: &str) -> Option<u64> {
    let rest = number.strip_prefix(prefix)?.strip_prefix('-')?;
    let (_, id) = rest.split_once('-')?;
    id.parse().ok()
}

impl Store {
    /// Raises a work order, once per `source_key`: the order raised before for the same cause
    /// is returned as it is. True when it was raised now.
    pub fn work_order_raise(
        &self,
        w: &NewWorkOrder<'_>,
        at: DateTime<Utc>,
    ) -> Result<(WorkOrder, bool)> {
        let log = serde_json::json!([{
            "state": "open", "by": w.created_by, "at": at.to_rfc3339(),
        }])
        .to_string();
        let id: Option<i64> = {
            let conn = self.conn();
            conn.query_row(
                "INSERT INTO work_order (kind, state, source_key, consumer_no, meter, address, \
                 detail, due_at, log, created_by, created_at, updated_at) \
                 VALUES (?1, 'open', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
                 ON CONFLICT (source_key) DO NOTHING RETURNING id",
                params![
                    w.kind,
                    w.source_key,
                    w.consumer_no,
                    w.meter.map(|m| m.as_str()),
                    w.address,
                    w.detail,
                    ms(w.due_at),
                    log,
                    w.created_by,
                    ms(at)
                ],
                |r| r.get(0),
            )
            .optional()?
        };
        let found = match id {
            Some(id) => self.work_order(narrow(id, "work order id")?)?,
            None => match w.source_key {
                Some(key) => self.work_order_by_source(key)?,
                None => None,
            },
        };
        found
            .map(|order| (order, id.is_some()))
            .ok_or_else(|| StoreError::NotFound("the work order just raised".into()))
    }

    pub fn work_order(&self, id: u64) -> Result<Option<WorkOrder>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ORDER_COLUMNS} FROM work_order WHERE id = ?1"
        ))?;
        stmt.query_row(params![i64::try_from(id).unwrap_or(-1)], |r| Ok(order(r)))
            .optional()?
            .transpose()
    }

    pub fn work_order_by_source(&self, source_key: &str) -> Result<Option<WorkOrder>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ORDER_COLUMNS} FROM work_order WHERE source_key = ?1"
        ))?;
        stmt.query_row(params![source_key], |r| Ok(order(r)))
            .optional()?
            .transpose()
    }

    /// Work orders, newest first, optionally of one state, kind or consumer, after id
    /// `before` (exclusive; 0 for the newest).
    pub fn work_orders(
        &self,
        state: Option<&str>,
        kind: Option<&str>,
        consumer_no: Option<&str>,
        before: u64,
        limit: u32,
    ) -> Result<Vec<WorkOrder>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ORDER_COLUMNS} FROM work_order WHERE (?1 IS NULL OR state = ?1) \
             AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR consumer_no = ?3) \
             AND (?4 = 0 OR id < ?4) ORDER BY id DESC LIMIT ?5"
        ))?;
        collect(
            &mut stmt,
            params![
                state,
                kind,
                consumer_no,
                i64::try_from(before).unwrap_or(i64::MAX),
                limit
            ],
            order,
        )
    }

    /// Saves a work order's state, assignment, report and log, if it is still at
    /// `updated_at` as read (false: someone else moved it on first).
    pub fn work_order_save(&self, w: &WorkOrder, read_at: DateTime<Utc>) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE work_order SET state = ?2, assigned_to = ?3, report = ?4, log = ?5, \
             updated_at = ?6 WHERE id = ?1 AND updated_at = ?7",
            params![
                i64::try_from(w.id).unwrap_or(-1),
                w.state,
                w.assigned_to,
                w.report,
                w.log,
                ms(w.updated_at),
                ms(read_at)
            ],
        )? == 1)
    }

    /// Records a new-connection request with its installation order, in one transaction:
    /// refused (`Conflict`) if the consumer number has a request already.
    pub fn connection_request_start(
        &self,
        consumer_no: &str,
        request_json: &str,
        order: &NewWorkOrder<'_>,
        at: DateTime<Utc>,
    ) -> Result<ConnectionRequest> {
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let exists: bool = tx
                .query_row(
                    "SELECT 1 FROM connection_request WHERE consumer_no = ?1",
                    params![consumer_no],
                    |_| Ok(true),
                )
                .optional()?
                .unwrap_or(false);
            if exists {
                return Err(StoreError::Conflict(format!(
                    "{consumer_no} has a connection request already"
                )));
            }
            let step = |state: &str| {
                serde_json::json!([{"state": state, "by": order.created_by,
                    "at": at.to_rfc3339()}])
                .to_string()
            };
            tx.execute(
                "INSERT INTO work_order (kind, state, source_key, consumer_no, meter, address, \
                 detail, due_at, log, created_by, created_at, updated_at) \
                 VALUES (?1, 'open', ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    order.kind,
                    order.source_key,
                    consumer_no,
                    order.address,
                    order.detail,
                    ms(order.due_at),
                    step("open"),
                    order.created_by,
                    ms(at)
                ],
            )?;
            let wo = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO connection_request (consumer_no, request, state, work_order, log, \
                 created_at, updated_at) VALUES (?1, ?2, 'installation_ordered', ?3, ?4, ?5, ?5)",
                params![
                    consumer_no,
                    request_json,
                    wo,
                    step("installation_ordered"),
                    ms(at)
                ],
            )?;
            tx.commit()?;
        }
        self.connection_request_of(consumer_no)?
            .ok_or_else(|| StoreError::NotFound(format!("connection of {consumer_no}")))
    }

    pub fn connection_request(&self, id: u64) -> Result<Option<ConnectionRequest>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REQUEST_COLUMNS} FROM connection_request WHERE id = ?1"
        ))?;
        stmt.query_row(params![i64::try_from(id).unwrap_or(-1)], |r| Ok(request(r)))
            .optional()?
            .transpose()
    }

    pub fn connection_request_of(&self, consumer_no: &str) -> Result<Option<ConnectionRequest>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REQUEST_COLUMNS} FROM connection_request WHERE consumer_no = ?1"
        ))?;
        stmt.query_row(params![consumer_no], |r| Ok(request(r)))
            .optional()?
            .transpose()
    }

    /// Connection requests, newest first, after id `before` (0: the newest).
    pub fn connection_requests(
        &self,
        state: Option<&str>,
        before: u64,
        limit: u32,
    ) -> Result<Vec<ConnectionRequest>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {REQUEST_COLUMNS} FROM connection_request WHERE (?1 IS NULL OR state = ?1) \
             AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3"
        ))?;
        collect(
            &mut stmt,
            params![state, i64::try_from(before).unwrap_or(i64::MAX), limit],
            request,
        )
    }

    pub fn connection_request_save(&self, c: &ConnectionRequest) -> Result<()> {
        self.conn().execute(
            "UPDATE connection_request SET state = ?2, meter = ?3, initial_wh = ?4, \
             commands = ?5, attempts = ?6, log = ?7, last_error = ?8, updated_at = ?9 \
             WHERE id = ?1",
            params![
                i64::try_from(c.id).unwrap_or(-1),
                c.state,
                c.meter.as_ref().map(|m| m.as_str()),
                c.initial_wh,
                c.commands,
                c.attempts,
                c.log,
                c.last_error,
                ms(c.updated_at)
            ],
        )?;
        Ok(())
    }

    /// The changes to a consumer's details, oldest first.
    pub fn consumer_changes(&self, consumer_no: &str) -> Result<Vec<ConsumerChange>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at, before, after FROM consumer_change WHERE consumer_no = ?1 \
             ORDER BY seq",
        )?;
        collect(&mut stmt, params![consumer_no], |r| {
            Ok(ConsumerChange {
                seq: narrow(r.get(0)?, "change seq")?,
                at: from_ms(r.get(1)?)?,
                before: r.get(2)?,
                after: r.get(3)?,
            })
        })
    }

    /// How far `reader` has read the routed notices (0: not at all).
    pub fn notice_cursor(&self, reader: &str) -> Result<i64> {
        Ok(self
            .conn()
            .query_row(
                "SELECT seq FROM notice_cursor WHERE reader = ?1",
                params![reader],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    pub fn notice_cursor_set(&self, reader: &str, seq: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO notice_cursor (reader, seq) VALUES (?1, ?2) \
             ON CONFLICT (reader) DO UPDATE SET seq = excluded.seq",
            params![reader, seq],
        )?;
        Ok(())
    }

    /// The service point `consumer_no` is connected at, at `at`.
    pub fn service_point_of(&self, consumer_no: &str, at: DateTime<Utc>) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT service_point FROM service_point_consumer WHERE consumer_no = ?1 \
                 AND valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?2) LIMIT 1",
                params![consumer_no, ms(at)],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The consumer at the service point where `meter` is installed at `at`, with the service
    /// point's address.
    pub fn consumer_of_meter(
        &self,
        meter: &MeterSerial,
        at: DateTime<Utc>,
    ) -> Result<Option<(String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT sc.consumer_no, s.address FROM meter_installation i \
             JOIN service_point s ON s.id = i.service_point \
             JOIN service_point_consumer sc ON sc.service_point = s.id \
                 AND sc.valid_from <= ?2 AND (sc.valid_to IS NULL OR sc.valid_to > ?2) \
             WHERE i.meter = ?1 AND i.valid_from <= ?2 AND (i.valid_to IS NULL OR i.valid_to > ?2) \
             LIMIT 1",
        )?;
        Ok(stmt
            .query_row(params![meter.as_str(), ms(at)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }
}

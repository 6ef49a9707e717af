//! Customer care (migration `0014_care`, use cases 19 and 20): the kinds of service request and
//! natures of complaint with their SLA (`care_type`), the cases themselves (`care_case`,
//! numbered `SR-2026-000123` / `CR-2026-000001` per IST year) and every step of each
//! (`care_update`).
//!
//! The `care` crate decides what a step does; [`Store::care_step`] writes it in one transaction
//! with the consumer record change a resolution applies, and only if the case is still as the
//! caller read it.

use chrono::{DateTime, Utc};
use model::MeterSerial;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::{Result, Store, StoreError, from_ms, from_ms_opt, ms, narrow, serial};

/// A service request (19) or a complaint (20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    ServiceRequest,
    Complaint,
}

impl CaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::ServiceRequest => "service_request",
            CaseKind::Complaint => "complaint",
        }
    }

    /// The number's prefix: SRN or CRN.
    pub fn prefix(self) -> &'static str {
        match self {
            CaseKind::ServiceRequest => "SR",
            CaseKind::Complaint => "CR",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "service_request" => Ok(CaseKind::ServiceRequest),
            "complaint" => Ok(CaseKind::Complaint),
            other => Err(StoreError::Corrupt(format!("case kind {other}"))),
        }
    }
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    Open,
    InProgress,
    Resolved,
    Closed,
    Rejected,
}

impl CaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::InProgress => "in_progress",
            CaseState::Resolved => "resolved",
            CaseState::Closed => "closed",
            CaseState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => CaseState::Open,
            "in_progress" => CaseState::InProgress,
            "resolved" => CaseState::Resolved,
            "closed" => CaseState::Closed,
            "rejected" => CaseState::Rejected,
            _ => return None,
        })
    }

    /// Closed or rejected: nothing more is done unless it is reopened.
    pub fn is_finished(self) -> bool {
        matches!(self, CaseState::Closed | CaseState::Rejected)
    }
}

/// The part of the consumer record a kind of service request changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordField {
    /// The consumer's name (`consumer`).
    Name,
    /// The service point's address.
    Address,
    /// Mobile and email (`consumer_contact`).
    Contact,
    /// The service point's sanctioned load.
    Load,
    /// The consumer's tariff category.
    Category,
}

/// A change to the consumer record, applied when the request is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "snake_case", deny_unknown_fields)]
pub enum RecordChange {
    Name {
        name: String,
    },
    Address {
        address: String,
    },
    /// Either may be absent: that address stays as it is.
    Contact {
        mobile: Option<String>,
        email: Option<String>,
    },
    Load {
        sanctioned_load_w: i64,
    },
    Category {
        category: String,
    },
}

impl RecordChange {
    pub fn field(&self) -> RecordField {
        match self {
            RecordChange::Name { .. } => RecordField::Name,
            RecordChange::Address { .. } => RecordField::Address,
            RecordChange::Contact { .. } => RecordField::Contact,
            RecordChange::Load { .. } => RecordField::Load,
            RecordChange::Category { .. } => RecordField::Category,
        }
    }
}

/// A kind of service request or nature of complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareType {
    pub kind: CaseKind,
    pub code: String,
    pub name: String,
    pub sla_hours: u32,
    /// The destination its cases are routed to (`oms`, `wfm`, `cis`, …), if any.
    pub route: Option<String>,
    pub applies: Option<RecordField>,
    /// A closed case may be reopened this many days after closing.
    pub reopen_days: u32,
}

/// A service request or complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// `SR-2026-000123`, `CR-2026-000001`.
    pub number: String,
    pub kind: CaseKind,
    pub consumer_no: String,
    pub type_code: String,
    pub description: String,
    pub change: Option<RecordChange>,
    pub state: CaseState,
    pub route: Option<String>,
    pub meter: MeterSerial,
    pub opened_by: String,
    pub opened_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub reopened: u32,
}

/// One step of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseUpdate {
    pub seq: u32,
    pub at: DateTime<Utc>,
    pub by: String,
    pub action: String,
    /// The state after the step.
    pub state: CaseState,
    pub note: String,
}

/// A step to record: who did what, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewUpdate<'a> {
    pub by: &'a str,
    pub action: &'a str,
    pub note: &'a str,
}

/// A case to register; its number is assigned by [`Store::care_open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase<'a> {
    pub kind: CaseKind,
    /// The IST year the number is counted in.
    pub year: i32,
    pub consumer_no: &'a str,
    pub type_code: &'a str,
    pub description: &'a str,
    pub change: Option<&'a RecordChange>,
    pub state: CaseState,
    pub route: Option<&'a str>,
    pub meter: &'a MeterSerial,
    pub due_at: DateTime<Utc>,
}

/// Which cases to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    pub kind: Option<CaseKind>,
    pub consumer_no: Option<String>,
    pub state: Option<CaseState>,
    /// Only those after this (opened at, number), in that order.
    pub after: Option<(DateTime<Utc>, String)>,
}

const CASE_COLUMNS: &str = "number, kind, consumer_no, type_code, description, change, state, \
     route, meter, opened_by, opened_at, due_at, resolved_at, closed_at, reopened";

fn case(r: &Row<'_>) -> Result<Case> {
    let state: String = r.get(6)?;
    let change: Option<String> = r.get(5)?;
    Ok(Case {
        number: r.get(0)?,
        kind: CaseKind::parse(&r.get::<_, String>(1)?)?,
        consumer_no: r.get(2)?,
        type_code: r.get(3)?,
        description: r.get(4)?,
        change: change
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("case change: {e}")))?,
        state: CaseState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("case state {state}")))?,
        route: r.get(7)?,
        meter: serial(r.get(8)?)?,
        opened_by: r.get(9)?,
        opened_at: from_ms(r.get(10)?)?,
        due_at: from_ms(r.get(11)?)?,
        resolved_at: from_ms_opt(r.get(12)?)?,
        closed_at: from_ms_opt(r.get(13)?)?,
        reopened: narrow(r.get(14)?, "reopened")?,
    })
}

fn field_name(f: RecordField) -> &'static str {
    match f {
        RecordField::Name => "name",
        RecordField::Address => "address",
        RecordField::Contact => "contact",
        RecordField::Load => "load",
        RecordField::Category => "category",
    }
}

fn parse_field(s: &str) -> Result<RecordField> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| StoreError::Corrupt(format!("record field {s}")))
}

fn case_in(tx: &Transaction<'_>, number: &str) -> Result<Case> {
    tx.query_row(
        &format!("SELECT {CASE_COLUMNS} FROM care_case WHERE number = ?1"),
        params![number],
        |r| Ok(case(r)),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("case {number}")))?
}

fn log_update(
    tx: &Transaction<'_>,
    number: &str,
    state: CaseState,
    u: &NewUpdate<'_>,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO care_update (number, seq, at, by, action, state, note) \
         SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6 FROM care_update \
         WHERE number = ?1",
        params![number, ms(at), u.by, u.action, state.as_str(), u.note],
    )?;
    Ok(())
}

/// Applies `change` to `consumer_no`'s record inside `tx`.
fn apply_change(
    tx: &Transaction<'_>,
    consumer_no: &str,
    change: &RecordChange,
    now: DateTime<Utc>,
) -> Result<()> {
    let missing = || StoreError::NotFound(format!("consumer {consumer_no}"));
    let service_point = || -> Result<String> {
        tx.query_row(
            "SELECT service_point FROM service_point_consumer WHERE consumer_no = ?1 \
             AND valid_from <= ?2 AND (valid_to IS NULL OR valid_to > ?2) \
             ORDER BY valid_from DESC LIMIT 1",
            params![consumer_no, ms(now)],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("a service point of {consumer_no}")))
    };
    let changed = match change {
        RecordChange::Name { name } => tx.execute(
            "UPDATE consumer SET name = ?2 WHERE consumer_no = ?1",
            params![consumer_no, name],
        )?,
        RecordChange::Category { category } => tx.execute(
            "UPDATE consumer SET category = ?2 WHERE consumer_no = ?1",
            params![consumer_no, category],
        )?,
        RecordChange::Address { address } => tx.execute(
            "UPDATE service_point SET address = ?2 WHERE id = ?1",
            params![service_point()?, address],
        )?,
        RecordChange::Load { sanctioned_load_w } => tx.execute(
            "UPDATE service_point SET sanctioned_load_w = ?2 WHERE id = ?1",
            params![service_point()?, sanctioned_load_w],
        )?,
        RecordChange::Contact { mobile, email } => {
            let (old_mobile, old_email): (Option<String>, Option<String>) = tx
                .query_row(
                    "SELECT mobile, email FROM consumer_contact WHERE consumer_no = ?1",
                    params![consumer_no],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .unwrap_or_default();
            crate::notify::put_contact(
                tx,
                consumer_no,
                mobile.as_deref().or(old_mobile.as_deref()),
                email.as_deref().or(old_email.as_deref()),
                now,
            )?;
            1
        }
    };
    if changed == 0 {
        return Err(missing());
    }
    Ok(())
}

impl Store {
    /// Adds the kinds and natures not stored yet (a stored one is left as it is).
    pub fn care_types_seed(&self, types: &[CareType]) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut added = 0;
        for t in types {
            added += tx.execute(
                "INSERT INTO care_type (kind, code, name, sla_hours, route, applies, reopen_days) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (kind, code) DO NOTHING",
                params![
                    t.kind.as_str(),
                    t.code,
                    t.name,
                    t.sla_hours,
                    t.route,
                    t.applies.map(field_name),
                    t.reopen_days
                ],
            )?;
        }
        tx.commit()?;
        Ok(added)
    }

    /// The kinds of one case kind (or all), by code.
    pub fn care_types(&self, kind: Option<CaseKind>) -> Result<Vec<CareType>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT kind, code, name, sla_hours, route, applies, reopen_days FROM care_type \
             WHERE ?1 IS NULL OR kind = ?1 ORDER BY kind, code",
        )?;
        let mut rows = stmt.query(params![kind.map(CaseKind::as_str)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(CareType {
                kind: CaseKind::parse(&r.get::<_, String>(0)?)?,
                code: r.get(1)?,
                name: r.get(2)?,
                sla_hours: narrow(r.get(3)?, "sla_hours")?,
                route: r.get(4)?,
                applies: r
                    .get::<_, Option<String>>(5)?
                    .map(|s| parse_field(&s))
                    .transpose()?,
                reopen_days: narrow(r.get(6)?, "reopen_days")?,
            });
        }
        Ok(out)
    }

    /// Registers a case under the next number of its kind and year, with its first update.
    pub fn care_open(
        &self,
        c: &NewCase<'_>,
        update: &NewUpdate<'_>,
        now: DateTime<Utc>,
    ) -> Result<Case> {
        let change = c
            .change
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("record change: {e}")))?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n: i64 = tx.query_row(
            "INSERT INTO care_number (kind, year, last) VALUES (?1, ?2, 1) \
             ON CONFLICT (kind, year) DO UPDATE SET last = last + 1 RETURNING last",
            params![c.kind.as_str(), c.year],
            |r| r.get(0),
        )?;
        let number = format!("{}-{}-{n:06}", c.kind.prefix(), c.year);
        tx.execute(
            &format!(
                "INSERT INTO care_case ({CASE_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, NULL, 0)"
            ),
            params![
                number,
                c.kind.as_str(),
                c.consumer_no,
                c.type_code,
                c.description,
                change,
                c.state.as_str(),
                c.route,
                c.meter.as_str(),
                update.by,
                ms(now),
                ms(c.due_at)
            ],
        )?;
        log_update(&tx, &number, c.state, update, now)?;
        let stored = case_in(&tx, &number)?;
        tx.commit()?;
        Ok(stored)
    }

    /// Moves `before` to `after` (state, times, reopenings, due time) with `update` logged,
    /// applying the case's record change when `apply` is set, all in one transaction; a
    /// conflict if the case is no longer as `before` says (someone else moved it).
    pub fn care_step(
        &self,
        before: &Case,
        after: &Case,
        update: &NewUpdate<'_>,
        apply: bool,
        now: DateTime<Utc>,
    ) -> Result<Case> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let moved = tx.execute(
            "UPDATE care_case SET state = ?4, due_at = ?5, resolved_at = ?6, closed_at = ?7, \
             reopened = ?8 WHERE number = ?1 AND state = ?2 AND reopened = ?3",
            params![
                before.number,
                before.state.as_str(),
                before.reopened,
                after.state.as_str(),
                ms(after.due_at),
                after.resolved_at.map(ms),
                after.closed_at.map(ms),
                after.reopened
            ],
        )?;
        if moved == 0 {
            return Err(match case_in(&tx, &before.number) {
                Ok(_) => StoreError::Conflict(format!(
                    "case {} changed meanwhile; read it again",
                    before.number
                )),
                Err(e) => e,
            });
        }
        if let (true, Some(change)) = (apply, &after.change) {
            apply_change(&tx, &after.consumer_no, change, now)?;
        }
        log_update(&tx, &before.number, after.state, update, now)?;
        let stored = case_in(&tx, &before.number)?;
        tx.commit()?;
        Ok(stored)
    }

    pub fn care_case(&self, number: &str) -> Result<Option<Case>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CASE_COLUMNS} FROM care_case WHERE number = ?1"
        ))?;
        stmt.query_row(params![number], |r| Ok(case(r)))
            .optional()?
            .transpose()
    }

    /// A case's steps, first first.
    pub fn care_updates(&self, number: &str) -> Result<Vec<CaseUpdate>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, at, by, action, state, note FROM care_update WHERE number = ?1 \
             ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![number])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let state: String = r.get(4)?;
            out.push(CaseUpdate {
                seq: narrow(r.get(0)?, "update seq")?,
                at: from_ms(r.get(1)?)?,
                by: r.get(2)?,
                action: r.get(3)?,
                state: CaseState::parse(&state)
                    .ok_or_else(|| StoreError::Corrupt(format!("case state {state}")))?,
                note: r.get(5)?,
            });
        }
        Ok(out)
    }

    /// Cases matching `filter`, by (opened at, number), at most `limit`.
    pub fn care_cases(&self, filter: &CaseFilter, limit: u32) -> Result<Vec<Case>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CASE_COLUMNS} FROM care_case \
             WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR consumer_no = ?2) \
             AND (?3 IS NULL OR state = ?3) \
             AND (?4 IS NULL OR opened_at > ?4 OR (opened_at = ?4 AND number > ?5)) \
             ORDER BY opened_at, number LIMIT ?6"
        ))?;
        let (after_at, after_no) = match &filter.after {
            Some((at, no)) => (Some(ms(*at)), Some(no.as_str())),
            None => (None, None),
        };
        let mut rows = stmt.query(params![
            filter.kind.map(CaseKind::as_str),
            filter.consumer_no,
            filter.state.map(CaseState::as_str),
            after_at,
            after_no,
            limit
        ])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(case(r)?);
        }
        Ok(out)
    }

    /// Every case of `kind` not closed or rejected (for ageing).
    pub fn care_unfinished(&self, kind: CaseKind) -> Result<Vec<Case>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CASE_COLUMNS} FROM care_case WHERE kind = ?1 \
             AND state NOT IN ('closed', 'rejected') ORDER BY opened_at, number"
        ))?;
        let mut rows = stmt.query(params![kind.as_str()])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(case(r)?);
        }
        Ok(out)
    }
}

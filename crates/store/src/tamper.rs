//! Confirmed tamper periods (migration `0010_tamper`, use case 5.6): a span in which a meter was
//! tampered with, confirmed by a person, assessed on the consumer's bill and billed in exactly
//! one bill period (a re-run of that period's cycle bills it there again, never elsewhere).

use chrono::{DateTime, NaiveDate, Utc};
use model::MeterSerial;
use rusqlite::{OptionalExtension, Row, params};

use crate::{Result, Store, StoreError, day_opt, from_ms, ms, narrow, serial};

/// Who confirmed a tamper period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperSource {
    /// An operator at the desk (from the meter's events, a complaint, …).
    Operator,
    /// A field inspection (issue 7).
    Inspection,
}

impl TamperSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TamperSource::Operator => "operator",
            TamperSource::Inspection => "inspection",
        }
    }

    pub fn parse(s: &str) -> Option<TamperSource> {
        match s {
            "operator" => Some(TamperSource::Operator),
            "inspection" => Some(TamperSource::Inspection),
            _ => None,
        }
    }
}

/// A tamper period to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTamperPeriod<'a> {
    pub consumer_no: &'a str,
    pub meter: &'a MeterSerial,
    /// The IS 15959 event code of the tamper, when a meter event shows it.
    pub tamper_code: Option<u16>,
    /// Shown on the bill, e.g. "Magnet tamper".
    pub reason: &'a str,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub confirmed_by: &'a str,
    pub source: TamperSource,
}

/// A confirmed tamper period as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TamperPeriod {
    pub id: u64,
    pub consumer_no: String,
    pub meter: MeterSerial,
    pub tamper_code: Option<u16>,
    pub reason: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub confirmed_by: String,
    pub confirmed_at: DateTime<Utc>,
    pub source: TamperSource,
    /// The first day of the bill period it was billed in; `None` until billed.
    pub billed_period_from: Option<NaiveDate>,
}

const COLUMNS: &str = "id, consumer_no, meter, tamper_code, reason, from_at, to_at, \
     confirmed_by, confirmed_at, source, billed_period_from";

fn period(r: &Row<'_>) -> Result<TamperPeriod> {
    let source: String = r.get(9)?;
    let billed: Option<String> = r.get(10)?;
    Ok(TamperPeriod {
        id: narrow(r.get(0)?, "tamper period id")?,
        consumer_no: r.get(1)?,
        meter: serial(r.get(2)?)?,
        tamper_code: r
            .get::<_, Option<i64>>(3)?
            .map(|c| narrow(c, "tamper code"))
            .transpose()?,
        reason: r.get(4)?,
        from: from_ms(r.get(5)?)?,
        to: from_ms(r.get(6)?)?,
        confirmed_by: r.get(7)?,
        confirmed_at: from_ms(r.get(8)?)?,
        source: TamperSource::parse(&source)
            .ok_or_else(|| StoreError::Corrupt(format!("tamper source {source:?}")))?,
        billed_period_from: day_opt(billed)?,
    })
}

fn collect(mut rows: rusqlite::Rows<'_>) -> Result<Vec<TamperPeriod>> {
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(period(r)?);
    }
    Ok(out)
}

impl Store {
    /// Records a confirmed tamper period at `at`. Refuses a span that is empty, runs backwards
    /// or ends after `at`, a meter that did not measure the consumer's supply in it
    /// (`Invalid`), an unknown consumer (`NotFound`), and a span overlapping another of the
    /// consumer's periods (`Conflict`: the same energy would be assessed twice).
    pub fn tamper_period_record(
        &self,
        p: &NewTamperPeriod<'_>,
        at: DateTime<Utc>,
    ) -> Result<TamperPeriod> {
        if p.to <= p.from {
            return Err(StoreError::Invalid(format!(
                "the tamper period {} to {} is empty or runs backwards",
                p.from, p.to
            )));
        }
        if p.to > at {
            return Err(StoreError::Invalid(format!(
                "the tamper period ends at {}, in the future",
                p.to
            )));
        }
        if p.reason.trim().is_empty() {
            return Err(StoreError::Invalid(
                "give the reason shown on the bill".into(),
            ));
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM consumer WHERE consumer_no = ?1",
                params![p.consumer_no],
                |r| r.get(0),
            )
            .optional()?;
        if known.is_none() {
            return Err(StoreError::NotFound(format!("consumer {}", p.consumer_no)));
        }
        let measured: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM service_point_consumer c \
                 JOIN meter_installation i ON i.service_point = c.service_point \
                 WHERE c.consumer_no = ?1 AND i.meter = ?2 \
                   AND i.valid_from < ?4 AND (i.valid_to IS NULL OR i.valid_to > ?3) \
                   AND c.valid_from < ?4 AND (c.valid_to IS NULL OR c.valid_to > ?3) LIMIT 1",
                params![p.consumer_no, p.meter.as_str(), ms(p.from), ms(p.to)],
                |r| r.get(0),
            )
            .optional()?;
        if measured.is_none() {
            return Err(StoreError::Invalid(format!(
                "meter {} did not measure {}'s supply between {} and {}",
                p.meter, p.consumer_no, p.from, p.to
            )));
        }
        let overlapping: Option<i64> = tx
            .query_row(
                "SELECT id FROM tamper_period WHERE consumer_no = ?1 \
                 AND from_at < ?3 AND to_at > ?2 LIMIT 1",
                params![p.consumer_no, ms(p.from), ms(p.to)],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = overlapping {
            return Err(StoreError::Conflict(format!(
                "the span overlaps tamper period {other} of {}",
                p.consumer_no
            )));
        }
        let id: i64 = tx.query_row(
            &format!(
                "INSERT INTO tamper_period ({COLUMNS}) VALUES \
                 (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL) RETURNING id"
            ),
            params![
                p.consumer_no,
                p.meter.as_str(),
                p.tamper_code,
                p.reason.trim(),
                ms(p.from),
                ms(p.to),
                p.confirmed_by,
                ms(at),
                p.source.as_str()
            ],
            |r| r.get(0),
        )?;
        let stored = tx.query_row(
            &format!("SELECT {COLUMNS} FROM tamper_period WHERE id = ?1"),
            params![id],
            |r| Ok(period(r)),
        )??;
        tx.commit()?;
        Ok(stored)
    }

    /// A consumer's tamper periods, latest first.
    pub fn tamper_periods_of(&self, consumer_no: &str, limit: u32) -> Result<Vec<TamperPeriod>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tamper_period WHERE consumer_no = ?1 \
             ORDER BY from_at DESC, id DESC LIMIT ?2"
        ))?;
        collect(stmt.query(params![consumer_no, limit])?)
    }

    /// The tamper periods a consumer's bill for the period starting `period_from` assesses:
    /// those ending by `up_to` that are not billed yet or were billed in this same period
    /// (a re-run of the cycle), oldest first.
    pub fn tamper_periods_to_bill(
        &self,
        consumer_no: &str,
        period_from: NaiveDate,
        up_to: DateTime<Utc>,
    ) -> Result<Vec<TamperPeriod>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tamper_period WHERE consumer_no = ?1 AND to_at <= ?2 \
             AND (billed_period_from IS NULL OR billed_period_from = ?3) \
             ORDER BY from_at, id"
        ))?;
        collect(stmt.query(params![consumer_no, ms(up_to), period_from.to_string()])?)
    }

    /// Marks tamper periods `ids` of a consumer billed in the period starting `period_from`.
    /// Marking again in the same period changes nothing; a period billed in another period,
    /// or not the consumer's, is a `Conflict` and nothing is marked.
    pub fn tamper_periods_mark_billed(
        &self,
        consumer_no: &str,
        ids: &[u64],
        period_from: NaiveDate,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for id in ids {
            let changed = tx.execute(
                "UPDATE tamper_period SET billed_period_from = ?3 \
                 WHERE id = ?1 AND consumer_no = ?2 \
                 AND (billed_period_from IS NULL OR billed_period_from = ?3)",
                params![
                    i64::try_from(*id).unwrap_or(-1),
                    consumer_no,
                    period_from.to_string()
                ],
            )?;
            if changed != 1 {
                return Err(StoreError::Conflict(format!(
                    "tamper period {id} is not {consumer_no}'s or was billed in another period"
                )));
            }
        }
        tx.commit()?;
        Ok(())
    }
}

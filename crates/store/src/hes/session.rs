//! Session commits (cursors, gaps, last contact, the attempt row and outbox messages of one
//! session, atomically), and what they leave behind: cursors, gaps, attempts and their reports.

use chrono::{DateTime, Utc};
use model::MeterSerial;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::registry::require_meter;
use super::{AttemptRecord, AttemptSummary, Gap, GapChange, GapState, Outcome, SessionCommit};
use crate::{Result, Store, StoreError, from_ms, ms, narrow, serial};

const GAP_COLUMNS: &str =
    "id, meter, profile, from_at, to_at, state, attempts, reason, detected_at";

impl Store {
    /// Commits everything one session changed, in one transaction.
    pub fn commit_session(&self, c: &SessionCommit) -> Result<()> {
        self.commit_sessions(std::slice::from_ref(c))
    }

    /// Commits many sessions in one transaction: all or nothing. If any commit fails (an
    /// unknown meter or gap, an inverted range) none of the batch is written.
    pub fn commit_sessions(&self, cs: &[SessionCommit]) -> Result<()> {
        self.commit_sessions_then(cs, |_| {})
    }

    /// [`Store::commit_sessions`], then, once the transaction has committed and before any
    /// other call can read what it wrote, `after` with one flag per outbox message (in the
    /// order of the commits and their messages): whether it was written (`false`: its key was
    /// already in the outbox). The head-end's relay learns this way which of the messages it
    /// holds in memory are the stored ones.
    pub fn commit_sessions_then(
        &self,
        cs: &[SessionCommit],
        after: impl FnOnce(&[bool]),
    ) -> Result<()> {
        if cs.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut written = Vec::with_capacity(cs.iter().map(|c| c.outbox.len()).sum());
        for c in cs {
            commit_in(&tx, c, &mut written)?;
        }
        tx.commit()?;
        after(&written);
        Ok(())
    }

    /// How far the meter's profile has been collected (an interval end).
    pub fn cursor(&self, serial: &MeterSerial, profile: &str) -> Result<Option<DateTime<Utc>>> {
        let conn = self.conn();
        let v: Option<i64> = conn
            .prepare_cached(
                "SELECT up_to FROM collection_cursor WHERE meter = ?1 AND profile = ?2",
            )?
            .query_row(params![serial.as_str(), profile], |r| r.get(0))
            .optional()?;
        v.map(from_ms).transpose()
    }

    /// Every collection cursor of the meter (profile → collected up to), in one query.
    pub fn cursors(&self, serial: &MeterSerial) -> Result<Vec<(String, DateTime<Utc>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT profile, up_to FROM collection_cursor WHERE meter = ?1 ORDER BY profile",
        )?;
        let rows = stmt.query_map([serial.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        rows.map(|r| {
            let (profile, up_to) = r?;
            Ok((profile, from_ms(up_to)?))
        })
        .collect()
    }

    /// The open gaps of the meter's profile, earliest first.
    pub fn open_gaps(&self, serial: &MeterSerial, profile: &str) -> Result<Vec<Gap>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {GAP_COLUMNS} FROM gap WHERE meter = ?1 AND profile = ?2 AND state = 'open' \
             ORDER BY from_at, id"
        ))?;
        let rows = stmt.query_map(params![serial.as_str(), profile], raw_gap)?;
        rows.map(|r| gap_from_raw(r?)).collect()
    }

    /// Gaps (in `state`, or in any state) that reach into the period from `since` on (their
    /// `to` is at or after `since`), ordered by meter, then `from`.
    pub fn gaps(&self, state: Option<GapState>, since: DateTime<Utc>) -> Result<Vec<Gap>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {GAP_COLUMNS} FROM gap WHERE to_at >= ?1 AND (?2 IS NULL OR state = ?2) \
             ORDER BY meter, from_at, profile, id"
        ))?;
        let rows = stmt.query_map(params![ms(since), state.map(GapState::as_str)], raw_gap)?;
        rows.map(|r| gap_from_raw(r?)).collect()
    }

    /// Sessions started at or after `since` (only the failed ones if asked), oldest first.
    pub fn attempts(&self, since: DateTime<Utc>, only_failed: bool) -> Result<Vec<AttemptRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT meter, job, attempt, started_at, ended_at, ok, failure_kind, failure_detail, \
             contacted FROM attempt WHERE started_at >= ?1 AND (?2 = 0 OR ok = 0) \
             ORDER BY started_at, meter, job, attempt",
        )?;
        let rows = stmt.query_map(params![ms(since), only_failed], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, bool>(8)?,
            ))
        })?;
        rows.map(|r| {
            let (meter, job, attempt, started, ended, ok, kind, detail, contacted) = r?;
            let outcome = if ok {
                Outcome::Ok
            } else {
                Outcome::Failed {
                    kind: kind.unwrap_or_default(),
                    detail: detail.unwrap_or_default(),
                }
            };
            Ok(AttemptRecord {
                meter: serial(meter)?,
                job,
                attempt: narrow(attempt, "attempt")?,
                started_at: from_ms(started)?,
                ended_at: from_ms(ended)?,
                outcome,
                contacted,
            })
        })
        .collect()
    }

    /// Per job, the sessions started at or after `since`: how many, ok, failed, retries and
    /// failures by kind. Ordered by job.
    pub fn attempt_summary(&self, since: DateTime<Utc>) -> Result<Vec<AttemptSummary>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT job, COUNT(*), SUM(ok), SUM(CASE WHEN attempt > 1 THEN 1 ELSE 0 END) \
             FROM attempt WHERE started_at >= ?1 GROUP BY job ORDER BY job",
        )?;
        let rows = stmt.query_map([ms(since)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (job, sessions, ok, retries) = r?;
            let sessions: u64 = narrow(sessions, "session count")?;
            let ok: u64 = narrow(ok, "ok count")?;
            out.push(AttemptSummary {
                job,
                sessions,
                ok,
                failed: sessions.saturating_sub(ok),
                retries: narrow(retries, "retry count")?,
                by_failure_kind: Vec::new(),
            });
        }
        let mut stmt = conn.prepare_cached(
            "SELECT job, COALESCE(failure_kind, ''), COUNT(*) FROM attempt \
             WHERE started_at >= ?1 AND ok = 0 GROUP BY job, COALESCE(failure_kind, '') \
             ORDER BY job, COUNT(*) DESC, COALESCE(failure_kind, '')",
        )?;
        let rows = stmt.query_map([ms(since)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for r in rows {
            let (job, kind, n) = r?;
            if let Some(s) = out.iter_mut().find(|s| s.job == job) {
                s.by_failure_kind.push((kind, narrow(n, "failure count")?));
            }
        }
        Ok(out)
    }

    /// Every meter and job that needed more than one attempt among sessions started at or
    /// after `since`: (meter, job, highest attempt, whether the latest session succeeded),
    /// ordered by meter, then job.
    pub fn retry_report(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(MeterSerial, String, u32, bool)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT a.meter, a.job, MAX(a.attempt), \
               (SELECT b.ok FROM attempt b WHERE b.meter = a.meter AND b.job = a.job \
                  AND b.started_at >= ?1 ORDER BY b.started_at DESC, b.attempt DESC LIMIT 1) \
             FROM attempt a WHERE a.started_at >= ?1 GROUP BY a.meter, a.job \
             HAVING MAX(a.attempt) > 1 ORDER BY a.meter, a.job",
        )?;
        let rows = stmt.query_map([ms(since)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?;
        rows.map(|r| {
            let (meter, job, max, last_ok) = r?;
            Ok((serial(meter)?, job, narrow(max, "attempt")?, last_ok))
        })
        .collect()
    }

    /// Deletes attempt rows of sessions started before `older_than`; returns how many.
    pub fn purge_attempts(&self, older_than: DateTime<Utc>) -> Result<u64> {
        let conn = self.conn();
        let n = conn
            .prepare_cached("DELETE FROM attempt WHERE started_at < ?1")?
            .execute([ms(older_than)])?;
        Ok(n as u64)
    }
}

fn commit_in(tx: &Connection, c: &SessionCommit, written: &mut Vec<bool>) -> Result<()> {
    let meter = c.meter.as_str();
    let ended = ms(c.ended_at);
    require_meter(tx, &c.meter)?;
    if c.contacted && c.outcome.is_ok() {
        tx.prepare_cached(
            "UPDATE meter SET last_contact = ?2 \
             WHERE serial = ?1 AND (last_contact IS NULL OR last_contact < ?2)",
        )?
        .execute(params![meter, ended])?;
    }
    if let Some(counter) = c.invocation_counter {
        tx.prepare_cached(
            "UPDATE meter SET invocation_counter = ?2 WHERE serial = ?1 \
             AND (invocation_counter IS NULL OR invocation_counter < ?2)",
        )?
        .execute(params![meter, counter])?;
    }
    for (profile, up_to) in &c.cursors {
        tx.prepare_cached(
            "INSERT INTO collection_cursor (meter, profile, up_to) VALUES (?1, ?2, ?3) \
             ON CONFLICT (meter, profile) DO UPDATE SET up_to = excluded.up_to \
             WHERE excluded.up_to > collection_cursor.up_to",
        )?
        .execute(params![meter, profile, ms(*up_to)])?;
    }
    for change in &c.gaps {
        apply_gap_change(tx, &c.meter, change, ended)?;
    }
    let (kind, detail) = match &c.outcome {
        Outcome::Ok => (None, None),
        Outcome::Failed { kind, detail } => (Some(kind.as_str()), Some(detail.as_str())),
    };
    tx.prepare_cached(
        "INSERT INTO attempt (meter, job, attempt, started_at, ended_at, ok, failure_kind, \
         failure_detail, contacted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        meter,
        c.job,
        c.attempt,
        ms(c.started_at),
        ended,
        c.outcome.is_ok(),
        kind,
        detail,
        c.contacted
    ])?;
    super::outbox::insert_outbox_noting(tx, &c.outbox, ended, &mut |w| written.push(w))?;
    Ok(())
}

fn apply_gap_change(
    tx: &Connection,
    serial: &MeterSerial,
    change: &GapChange,
    at: i64,
) -> Result<()> {
    let meter = serial.as_str();
    match change {
        GapChange::Open { profile, from, to } => {
            let (from, to) = (ms(*from), ms(*to));
            if from > to {
                return Err(StoreError::Invalid(format!(
                    "gap of meter {serial} ({profile}) ends before it starts"
                )));
            }
            // Open gaps of the profile that overlap or touch the new range merge into the oldest.
            let overlapping: Vec<(i64, i64, i64, i64, i64)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, from_at, to_at, attempts, detected_at FROM gap \
                     WHERE meter = ?1 AND profile = ?2 AND state = 'open' \
                       AND from_at <= ?4 AND to_at >= ?3 ORDER BY id",
                )?;
                let rows = stmt.query_map(params![meter, profile, from, to], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let Some(&(keep, ..)) = overlapping.first() else {
                tx.prepare_cached(
                    "INSERT INTO gap (meter, profile, from_at, to_at, state, attempts, \
                     detected_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'open', 0, ?5, ?5)",
                )?
                .execute(params![meter, profile, from, to, at])?;
                return Ok(());
            };
            let (mut lo, mut hi, mut attempts, mut detected) = (from, to, 0, at);
            for &(id, f, t, a, d) in &overlapping {
                lo = lo.min(f);
                hi = hi.max(t);
                attempts = attempts.max(a);
                detected = detected.min(d);
                if id != keep {
                    tx.prepare_cached("DELETE FROM gap WHERE meter = ?1 AND id = ?2")?
                        .execute(params![meter, id])?;
                }
            }
            tx.prepare_cached(
                "UPDATE gap SET from_at = ?3, to_at = ?4, attempts = ?5, detected_at = ?6, \
                 updated_at = ?7 WHERE meter = ?1 AND id = ?2",
            )?
            .execute(params![meter, keep, lo, hi, attempts, detected, at])?;
        }
        GapChange::Closed {
            profile,
            from,
            to,
            state,
            reason,
        } => {
            tx.prepare_cached(
                "INSERT INTO gap (meter, profile, from_at, to_at, state, attempts, reason, \
                 detected_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?7)",
            )?
            .execute(params![
                meter,
                profile,
                ms(*from),
                ms(*to),
                state.as_str(),
                reason,
                at
            ])?;
        }
        GapChange::Attempted { id } => {
            let n = tx
                .prepare_cached(
                    "UPDATE gap SET attempts = attempts + 1, updated_at = ?3 \
                     WHERE meter = ?1 AND id = ?2",
                )?
                .execute(params![meter, id, at])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("gap {id} of meter {serial}")));
            }
        }
        GapChange::Resolve { id, state, reason } => {
            let n = tx
                .prepare_cached(
                    "UPDATE gap SET state = ?3, reason = ?4, updated_at = ?5 \
                     WHERE meter = ?1 AND id = ?2",
                )?
                .execute(params![meter, id, state.as_str(), reason, at])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("gap {id} of meter {serial}")));
            }
        }
    }
    Ok(())
}

type RawGap = (
    i64,
    String,
    String,
    i64,
    i64,
    String,
    i64,
    Option<String>,
    i64,
);

fn raw_gap(r: &Row<'_>) -> rusqlite::Result<RawGap> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn gap_from_raw(raw: RawGap) -> Result<Gap> {
    let (id, meter, profile, from, to, state, attempts, reason, detected) = raw;
    Ok(Gap {
        id,
        meter: serial(meter)?,
        profile,
        from: from_ms(from)?,
        to: from_ms(to)?,
        state: state
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("gap {id}: {e}")))?,
        attempts: narrow(attempts, "gap attempts")?,
        reason,
        detected_at: from_ms(detected)?,
    })
}

//! The durable outbox as the relay sees it: pending messages in order of writing, marking them
//! delivered, counting and purging. Messages are written by session commits and command
//! transitions, in the same transaction as the state they describe.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::{OutboxMessage, OutboxRow, PendingMessage};
use crate::{Result, Store, from_ms, ms, narrow};

impl Store {
    /// Up to `limit` undelivered messages, oldest first.
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<OutboxRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, key, kind, payload, created_at FROM outbox \
             WHERE delivered_at IS NULL ORDER BY seq LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        rows.map(|r| {
            let (seq, key, kind, payload, created) = r?;
            Ok(OutboxRow {
                seq,
                key,
                kind,
                payload,
                created_at: from_ms(created)?,
            })
        })
        .collect()
    }

    /// Up to `limit` undelivered messages, oldest first, with the payload read only of those
    /// whose key `want_payload` asks for (a relay that still holds a message in memory need not
    /// read it back).
    pub fn outbox_pending_lazy(
        &self,
        limit: usize,
        mut want_payload: impl FnMut(&str) -> bool,
    ) -> Result<Vec<PendingMessage>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut pending = {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, key, kind, created_at FROM outbox \
                 WHERE delivered_at IS NULL ORDER BY seq LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            rows.map(|r| {
                let (seq, key, kind, created) = r?;
                Ok(PendingMessage {
                    seq,
                    key,
                    kind,
                    payload: None,
                    created_at: from_ms(created)?,
                })
            })
            .collect::<Result<Vec<_>>>()?
        };
        let mut stmt = conn.prepare_cached("SELECT payload FROM outbox WHERE seq = ?1")?;
        for m in pending.iter_mut().filter(|m| want_payload(&m.key)) {
            m.payload = Some(stmt.query_row([m.seq], |r| r.get::<_, Vec<u8>>(0))?);
        }
        Ok(pending)
    }

    /// Marks messages delivered (in one transaction); they are not returned as pending again.
    /// Unknown or already delivered sequence numbers are ignored.
    pub fn outbox_delivered(&self, seqs: &[i64], at: DateTime<Utc>) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET delivered_at = ?2 WHERE seq = ?1 AND delivered_at IS NULL",
            )?;
            for seq in seqs {
                stmt.execute(params![seq, ms(at)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// (pending, delivered) message counts.
    pub fn outbox_counts(&self) -> Result<(u64, u64)> {
        let conn = self.conn();
        let (pending, delivered): (i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(CASE WHEN delivered_at IS NULL THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN delivered_at IS NULL THEN 0 ELSE 1 END), 0) \
             FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((
            narrow(pending, "pending count")?,
            narrow(delivered, "delivered count")?,
        ))
    }

    /// Deletes messages delivered before `older_than`; returns how many.
    pub fn purge_delivered(&self, older_than: DateTime<Utc>) -> Result<u64> {
        let conn = self.conn();
        let n = conn
            .prepare_cached("DELETE FROM outbox WHERE delivered_at < ?1")?
            .execute([ms(older_than)])?;
        Ok(n as u64)
    }
}

/// Writes messages to the outbox, dropping any whose key is already there (delivered or not).
pub(super) fn insert_outbox(conn: &Connection, msgs: &[OutboxMessage], at: i64) -> Result<()> {
    insert_outbox_noting(conn, msgs, at, &mut |_| {})
}

/// [`insert_outbox`], telling `written` for each message, in order, whether it was written
/// (`false`: its key was already there).
pub(super) fn insert_outbox_noting(
    conn: &Connection,
    msgs: &[OutboxMessage],
    at: i64,
    written: &mut dyn FnMut(bool),
) -> Result<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO outbox (key, kind, payload, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (key) DO NOTHING",
    )?;
    for m in msgs {
        written(stmt.execute(params![m.key, m.kind, m.payload, at])? == 1);
    }
    Ok(())
}

//! The durable outbox as the relay sees it: pending messages in order of writing, marking them
//! delivered, counting and purging. Messages are written by session commits and command
//! transitions, in the same transaction as the state they describe.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::{OutboxMessage, OutboxRow};
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
    if msgs.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO outbox (key, kind, payload, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (key) DO NOTHING",
    )?;
    for m in msgs {
        stmt.execute(params![m.key, m.kind, m.payload, at])?;
    }
    Ok(())
}

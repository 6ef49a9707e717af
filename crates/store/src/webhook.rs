//! Delivery of routed messages to external systems' webhooks (migration `0014_care`).
//!
//! Each subscriber (named in the data directory's `webhooks.json`) takes in the routed
//! messages of its destination after its cursor ([`Store::webhook_take_in`]: the deliveries
//! written and the cursor moved in one transaction); each delivery is then pending until the
//! subscriber answers 2xx, tried again later, or given up. A routed message is marked delivered
//! when every delivery of it has been.

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::{Result, RoutedMessage, Store, from_ms, ms, narrow, serial};

/// A routed message due for delivery to a subscriber.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub subscriber: String,
    /// The routed message's sequence number.
    pub seq: i64,
    pub message: RoutedMessage,
    pub routed_at: DateTime<Utc>,
    pub attempts: u32,
}

impl Store {
    /// Takes in up to `limit` routed messages for `destination` that `subscriber` has not seen,
    /// each as a delivery due at `now`; how many.
    pub fn webhook_take_in(
        &self,
        subscriber: &str,
        destination: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let after: i64 = tx.query_row(
            "SELECT COALESCE((SELECT last_seq FROM webhook_cursor WHERE subscriber = ?1), 0)",
            params![subscriber],
            |r| r.get(0),
        )?;
        let last: Option<i64> = tx.query_row(
            "SELECT MAX(seq) FROM (SELECT seq FROM routed_message \
             WHERE destination = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3)",
            params![destination, after, limit],
            |r| r.get(0),
        )?;
        let Some(last) = last else {
            return Ok(0);
        };
        let taken = tx.execute(
            "INSERT INTO webhook_delivery (subscriber, routed_seq, state, next_attempt_at) \
             SELECT ?1, seq, 'pending', ?5 FROM routed_message \
             WHERE destination = ?2 AND seq > ?3 AND seq <= ?4 \
             ON CONFLICT (subscriber, routed_seq) DO NOTHING",
            params![subscriber, destination, after, last, ms(now)],
        )?;
        tx.execute(
            "INSERT INTO webhook_cursor (subscriber, last_seq) VALUES (?1, ?2) \
             ON CONFLICT (subscriber) DO UPDATE SET last_seq = excluded.last_seq",
            params![subscriber, last],
        )?;
        tx.commit()?;
        Ok(taken)
    }

    /// `subscriber`'s pending deliveries due at `now`, oldest message first.
    pub fn webhook_due(
        &self,
        subscriber: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT d.routed_seq, d.attempts, m.key, m.meter, m.destination, m.payload, \
             m.created_at FROM webhook_delivery d JOIN routed_message m ON m.seq = d.routed_seq \
             WHERE d.subscriber = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2 \
             ORDER BY d.routed_seq LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![subscriber, ms(now), limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(Delivery {
                subscriber: subscriber.to_string(),
                seq: r.get(0)?,
                attempts: narrow(r.get(1)?, "attempts")?,
                message: RoutedMessage {
                    key: r.get(2)?,
                    meter: serial(r.get(3)?)?,
                    destination: r.get(4)?,
                    payload: r.get(5)?,
                },
                routed_at: from_ms(r.get(6)?)?,
            });
        }
        Ok(out)
    }

    /// The subscriber took the message; the message is delivered once every subscriber has.
    pub fn webhook_delivered(&self, subscriber: &str, seq: i64, now: DateTime<Utc>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE webhook_delivery SET state = 'delivered', attempts = attempts + 1, \
             delivered_at = ?3, last_error = NULL WHERE subscriber = ?1 AND routed_seq = ?2",
            params![subscriber, seq, ms(now)],
        )?;
        tx.execute(
            "UPDATE routed_message SET delivered_at = ?2 WHERE seq = ?1 AND delivered_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM webhook_delivery WHERE routed_seq = ?1 \
                             AND state <> 'delivered')",
            params![seq, ms(now)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A delivery failed: tried again at `retry_at`, or given up without one.
    pub fn webhook_failed(
        &self,
        subscriber: &str,
        seq: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE webhook_delivery SET attempts = attempts + 1, last_error = ?3, \
             state = CASE WHEN ?4 IS NULL THEN 'failed' ELSE 'pending' END, \
             next_attempt_at = COALESCE(?4, next_attempt_at) \
             WHERE subscriber = ?1 AND routed_seq = ?2",
            params![subscriber, seq, error, retry_at.map(ms)],
        )?;
        Ok(())
    }
}

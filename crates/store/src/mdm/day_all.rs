//! Every consumer's intervals of one span in one pass, for the daily figures of all consumers
//! (the prepaid charge run): each meter installed at a consumer's service point during the
//! span is read by its primary key range, within the part of the span it measured the
//! consumer's supply.

use chrono::{DateTime, Utc};
use model::Quality;
use rusqlite::params;

use crate::mdm::readings::quality_bits;
use crate::{Result, Store, StoreError, ms};

/// A meter's installation at a consumer within the span, with its intervals there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerIntervals<'a> {
    pub consumer_no: &'a str,
    pub meter: &'a str,
    /// The part of the span this meter measured this consumer, ms since the epoch.
    pub from_ms: i64,
    pub to_ms: i64,
    /// The meter's capture period if known (`meter_capture`).
    pub period_s: Option<i64>,
    /// Its intervals ending in `(from_ms, to_ms]`, oldest first.
    pub intervals: &'a [IntervalFigures],
}

/// The figures of one interval the daily sums need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalFigures {
    pub end_ms: i64,
    pub import_wh: i64,
    pub import_vah: i64,
    pub estimated: bool,
    pub suspect: bool,
}

impl Store {
    /// Calls `f` once for every meter installation that measured a consumer's supply in
    /// `[from, to)` (ordered by consumer, then meter and start), with the meter's intervals
    /// ending within that part of the span. One query for the installations, then one
    /// primary-key range per installation; the connection is held throughout.
    pub fn mdm_consumer_intervals_all(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut f: impl FnMut(&ConsumerIntervals<'_>),
    ) -> Result<()> {
        let estimated_bit = quality_bits(&[Quality::Estimated]);
        let suspect_bit = quality_bits(&[Quality::Suspect]);
        let conn = self.conn();
        let mut spans = conn.prepare_cached(
            "SELECT c.consumer_no, i.meter, \
                    MAX(i.valid_from, c.valid_from, ?1), \
                    MIN(COALESCE(i.valid_to, ?2), COALESCE(c.valid_to, ?2), ?2), \
                    (SELECT period_s FROM meter_capture mc WHERE mc.meter = i.meter) \
             FROM service_point_consumer c \
             JOIN meter_installation i ON i.service_point = c.service_point \
             WHERE i.valid_from < ?2 AND (i.valid_to IS NULL OR i.valid_to > ?1) \
               AND c.valid_from < ?2 AND (c.valid_to IS NULL OR c.valid_to > ?1) \
               AND i.valid_from < COALESCE(c.valid_to, ?2) \
               AND (i.valid_to IS NULL OR i.valid_to > c.valid_from) \
             ORDER BY c.consumer_no, i.meter, 3",
        )?;
        let mut intervals = conn.prepare_cached(
            "SELECT interval_end, import_wh, import_vah, quality FROM interval_reading \
             WHERE meter = ?1 AND interval_end > ?2 AND interval_end <= ?3 ORDER BY interval_end",
        )?;
        let text = |v: rusqlite::types::ValueRef<'_>| -> Result<String> {
            v.as_str()
                .map(str::to_owned)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        };
        let mut buf: Vec<IntervalFigures> = Vec::with_capacity(96);
        let mut rows = spans.query(params![ms(from), ms(to)])?;
        let (mut consumer_no, mut meter) = (String::new(), String::new());
        while let Some(r) = rows.next()? {
            if r.get_ref(0)?.as_str().ok() != Some(consumer_no.as_str()) {
                consumer_no = text(r.get_ref(0)?)?;
            }
            if r.get_ref(1)?.as_str().ok() != Some(meter.as_str()) {
                meter = text(r.get_ref(1)?)?;
            }
            let (from_ms, to_ms): (i64, i64) = (r.get(2)?, r.get(3)?);
            let period_s: Option<i64> = r.get(4)?;
            buf.clear();
            let mut found = intervals.query(params![meter, from_ms, to_ms])?;
            while let Some(i) = found.next()? {
                let quality: i64 = i.get(3)?;
                buf.push(IntervalFigures {
                    end_ms: i.get(0)?,
                    import_wh: i.get(1)?,
                    import_vah: i.get(2)?,
                    estimated: quality & estimated_bit != 0,
                    suspect: quality & suspect_bit != 0,
                });
            }
            f(&ConsumerIntervals {
                consumer_no: &consumer_no,
                meter: &meter,
                from_ms,
                to_ms,
                period_s,
                intervals: &buf,
            });
        }
        Ok(())
    }
}

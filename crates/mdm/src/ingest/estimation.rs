//! Filling a day's gaps once it is over: every interval of a local day that neither arrived nor
//! lies in a reported power failure is estimated ([`crate::vee::estimate_gap`]), flagged
//! [`Quality::Estimated`] with its method, and stored as version 1. When the actual reading
//! arrives later, the ingest replaces the estimate with it (the estimate stays in the history).
//!
//! When a day has a single gap and both of its midnight register snapshots are stored, the
//! register advance not covered by the day's actual intervals is the gap's, and the estimates
//! are scaled to it exactly.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use model::{IntervalReading, MeterSerial, Quality};
use store::{IngestWrite, IntervalWrite};

use super::{Ingest, IngestError};
use crate::calendar::{Period, at, day_bounds, ends_within_day, runs};
use crate::vee::{self, EstimateContext, EstimationMethod};

/// Meters estimated per transaction.
const ESTIMATE_CHUNK: usize = 2000;

/// What an estimation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EstimationReport {
    /// Meters with intervals missing.
    pub meters: u64,
    pub gaps: u64,
    pub estimated: u64,
    /// Missing intervals no method could estimate (no neighbours, history or registers).
    pub left_missing: u64,
}

impl EstimationMethod {
    /// The stable name stored with the estimate.
    pub fn as_str(self) -> &'static str {
        match self {
            EstimationMethod::LinearInterpolation => "linear_interpolation",
            EstimationMethod::ScaledToRegister => "scaled_to_register",
            EstimationMethod::LikeDayAverage => "like_day_average",
        }
    }
}

impl Ingest {
    /// Estimates the missing intervals of local day `day` for every meter that should report,
    /// and stores the estimates in one transaction. Blocking. Run it once the day's data is
    /// due (after its on-time deadline); running it again estimates only what is still missing.
    pub fn estimate_day(
        &self,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<EstimationReport, IngestError> {
        let (start, end) = day_bounds(day);
        let expected = |period_s: Option<i64>| {
            Period::new(period_s.unwrap_or(self.config.period_s))
                .map_or(0, |p| u32::try_from(p.slots_per_day()).unwrap_or(u32::MAX))
        };
        let short: Vec<MeterSerial> = self
            .store
            .mdm_day_counts(start, end, end)?
            .into_iter()
            .filter(|c| c.actual.saturating_add(c.estimated) < expected(c.period_s))
            .map(|c| c.meter)
            .collect();
        let power_off = self.store.mdm_missed_between("block_load", start, end)?;
        let mut report = EstimationReport::default();
        // A chunk of meters at a time: the ingest waits for the VEE state at most one chunk,
        // and each chunk's estimates are one transaction of bounded size.
        for chunk in short.chunks(ESTIMATE_CHUNK) {
            self.estimate_chunk(day, chunk, &power_off, now, &mut report)?;
        }
        Ok(report)
    }

    fn estimate_chunk(
        &self,
        day: NaiveDate,
        meters: &[MeterSerial],
        power_off: &[store::MissedRow],
        now: DateTime<Utc>,
        report: &mut EstimationReport,
    ) -> Result<(), IngestError> {
        let (start, end) = day_bounds(day);
        let mut write = IngestWrite::default();
        let mut cache = self.vee.lock().unwrap_or_else(|e| e.into_inner());
        for meter in meters.iter().cloned() {
            // Each meter on its own capture period.
            let Some(period) =
                Period::new(self.vee_state(&mut cache, &meter, now)?.history.period_s())
            else {
                continue;
            };
            let expected = u32::try_from(period.slots_per_day()).unwrap_or(u32::MAX);
            report.meters += 1;
            // The day and the interval either side of it, for neighbours.
            let p = Duration::seconds(period.secs());
            let stored: BTreeMap<DateTime<Utc>, IntervalReading> = self
                .store
                .mdm_intervals(&meter, start, end + p)?
                .into_iter()
                .map(|s| (s.reading.interval_end, s.reading))
                .collect();
            let explained = ends_within_day(
                period,
                day,
                power_off
                    .iter()
                    .filter(|m| m.meter == meter && m.reason == "power_off")
                    .map(|m| (m.from, m.to)),
            );
            let (first_end, last_end) = period.day_ends(day);
            let missing: Vec<DateTime<Utc>> = (0..i64::from(expected))
                .filter_map(|i| at(first_end + i * period.secs()))
                .filter(|t| t.timestamp() <= last_end)
                .filter(|t| !stored.contains_key(t))
                .filter(|t| !explained.contains(&t.timestamp()))
                .collect();
            let gaps = runs(missing, period);
            let register_delta = if gaps.len() == 1 {
                self.unexplained_advance(&meter, start, end, &stored)?
            } else {
                None
            };
            let state = self.vee_state(&mut cache, &meter, now)?;
            let cfg = self
                .config
                .vee
                .for_category(state.category.as_deref().unwrap_or(""));
            for gap in gaps {
                report.gaps += 1;
                let ctx = EstimateContext {
                    meter: &meter,
                    period_s: period.secs(),
                    history: &state.history,
                    before: stored.get(&(gap.from - p)),
                    after: stored.get(&(gap.to + p)),
                    register_delta_wh: register_delta.map(|(wh, _)| wh),
                    register_delta_vah: register_delta.map(|(_, vah)| vah),
                };
                let estimates = vee::estimate_gap(gap.from, gap.to, &ctx, cfg);
                let made = estimates.len() as u64;
                report.estimated += made;
                report.left_missing += u64::try_from(gap.count).unwrap_or(0).saturating_sub(made);
                write
                    .intervals
                    .extend(estimates.into_iter().map(|e| IntervalWrite::New {
                        method: Some(e.method.as_str().to_string()),
                        reading: flagged(e.reading),
                    }));
            }
        }
        // Written under the lock: an ingest batch planned meanwhile sees the estimates.
        if !write.is_empty() {
            self.store.mdm_write(&write, now)?;
        }
        drop(cache);
        Ok(())
    }

    /// The register advance over the day that its actual intervals do not account for:
    /// (Wh, VAh), when both midnight snapshots are stored and it is not negative.
    fn unexplained_advance(
        &self,
        meter: &MeterSerial,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        stored: &BTreeMap<DateTime<Utc>, IntervalReading>,
    ) -> Result<Option<(i64, i64)>, IngestError> {
        let snapshots = self.store.mdm_daily(meter, start, end)?;
        let (Some(open), Some(close)) = (
            snapshots.iter().find(|s| s.captured_at == start),
            snapshots.iter().find(|s| s.captured_at == end),
        ) else {
            return Ok(None);
        };
        let day = stored
            .range(start + Duration::seconds(1)..=end)
            .map(|(_, r)| r);
        let (wh, vah) = day.fold((0i64, 0i64), |(wh, vah), r| {
            (
                wh.saturating_add(r.import_wh),
                vah.saturating_add(r.import_vah),
            )
        });
        let rest = (
            close
                .import_wh
                .saturating_sub(open.import_wh)
                .saturating_sub(wh),
            close
                .import_vah
                .saturating_sub(open.import_vah)
                .saturating_sub(vah),
        );
        Ok((rest.0 >= 0 && rest.1 >= 0).then_some(rest))
    }
}

fn flagged(mut r: IntervalReading) -> IntervalReading {
    if !r.quality.contains(&Quality::Estimated) {
        r.quality.push(Quality::Estimated);
    }
    r
}

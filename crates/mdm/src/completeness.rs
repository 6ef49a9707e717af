//! Data completeness per local (IST) day: the share of meters whose block load and daily
//! snapshot for the day are complete, the share received on time, and the meters short of it
//! with what they lack. A meter's intervals inside a reported power failure are not expected
//! (the meter had nothing to record), so they count as explained, not missing.
//!
//! [`assess`] is the rule, over counts; [`for_day`] reads the counts from the store.

use chrono::{DateTime, NaiveDate, Utc};
use model::MeterSerial;
use serde::{Deserialize, Serialize};
use store::{MeterDayCounts, MissedRow, Store, StoreError};

use crate::calendar::{Period, day_bounds, ends_within_day};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompletenessConfig {
    /// Capture period of the block-load profile of meters whose data has not shown theirs yet,
    /// seconds.
    pub period_s: i64,
    /// Data received within this many hours after the day's end is on time.
    pub on_time_hours: i64,
}

impl Default for CompletenessConfig {
    fn default() -> Self {
        CompletenessConfig {
            period_s: crate::calendar::DEFAULT_PERIOD_S,
            on_time_hours: 8,
        }
    }
}

/// One meter short of a complete, on-time day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shortfall {
    pub meter: MeterSerial,
    /// Intervals neither received nor explained by a power failure.
    pub missing_intervals: u32,
    /// Intervals filled by estimation.
    pub estimated_intervals: u32,
    /// Intervals inside reported power failures.
    pub explained_intervals: u32,
    pub daily_missing: bool,
    /// Complete, but some of it came after the deadline.
    pub late: bool,
}

/// The completeness of one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayCompleteness {
    pub day: NaiveDate,
    pub meters: u32,
    /// Meters with every interval of the day received or explained.
    pub full_block_load: u32,
    /// Meters with the midnight snapshot that closes the day.
    pub full_daily: u32,
    /// Meters with both, all received by the deadline.
    pub on_time: u32,
    pub share_full_block_load: f64,
    pub share_full_daily: f64,
    pub share_on_time: f64,
    pub deadline: DateTime<Utc>,
    /// Meters short of complete and on time, by serial.
    pub short: Vec<Shortfall>,
}

/// Judges one day from each meter's counts and the reported power failures.
pub fn assess(
    day: NaiveDate,
    counts: &[MeterDayCounts],
    power_off: &[MissedRow],
    cfg: &CompletenessConfig,
) -> DayCompleteness {
    let (_, end) = day_bounds(day);
    let deadline = end + chrono::Duration::hours(cfg.on_time_hours.max(0));
    let default_period = Period::new(cfg.period_s).unwrap_or(Period::QUARTER_HOUR);
    let mut out = DayCompleteness {
        day,
        meters: counts.len() as u32,
        full_block_load: 0,
        full_daily: 0,
        on_time: 0,
        share_full_block_load: 0.0,
        share_full_daily: 0.0,
        share_on_time: 0.0,
        deadline,
        short: Vec::new(),
    };
    for c in counts {
        // Each meter on its own capture period (as its data showed it).
        let period = c.period_s.and_then(Period::new).unwrap_or(default_period);
        let expected = u32::try_from(period.slots_per_day()).unwrap_or(u32::MAX);
        let explained = ends_within_day(
            period,
            day,
            power_off
                .iter()
                .filter(|m| m.meter == c.meter)
                .map(|m| (m.from, m.to)),
        )
        .len();
        let explained = u32::try_from(explained).unwrap_or(u32::MAX).min(expected);
        let have = c.actual.saturating_add(explained);
        let full = have >= expected;
        let daily = c.daily_received.is_some();
        let timely = c.actual_on_time + explained >= expected
            && c.daily_received.is_some_and(|t| t <= deadline);
        out.full_block_load += full as u32;
        out.full_daily += daily as u32;
        out.on_time += (full && daily && timely) as u32;
        if !(full && daily && timely) {
            out.short.push(Shortfall {
                meter: c.meter.clone(),
                missing_intervals: expected.saturating_sub(have),
                estimated_intervals: c.estimated,
                explained_intervals: explained,
                daily_missing: !daily,
                late: full && daily && !timely,
            });
        }
    }
    let share = |n: u32| {
        if out.meters == 0 {
            0.0
        } else {
            f64::from(n) / f64::from(out.meters)
        }
    };
    out.share_full_block_load = share(out.full_block_load);
    out.share_full_daily = share(out.full_daily);
    out.share_on_time = share(out.on_time);
    out
}

/// The completeness of `day`, from the store.
pub fn for_day(
    store: &Store,
    day: NaiveDate,
    cfg: &CompletenessConfig,
) -> Result<DayCompleteness, StoreError> {
    let (start, end) = day_bounds(day);
    let deadline = end + chrono::Duration::hours(cfg.on_time_hours.max(0));
    let counts = store.mdm_day_counts(start, end, deadline)?;
    let missed: Vec<MissedRow> = store
        .mdm_missed_between("block_load", start, end)?
        .into_iter()
        .filter(|m| m.reason == "power_off")
        .collect();
    Ok(assess(day, &counts, &missed, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(s: &str) -> MeterSerial {
        MeterSerial::new(s).unwrap()
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
    }

    fn counts(m: &str, actual: u32, on_time: u32, daily_after_h: Option<i64>) -> MeterDayCounts {
        let (_, end) = day_bounds(day());
        MeterDayCounts {
            meter: meter(m),
            actual,
            actual_on_time: on_time,
            estimated: 96 - actual.min(96),
            period_s: None,
            daily_received: daily_after_h.map(|h| end + chrono::Duration::hours(h)),
        }
    }

    #[test]
    fn shares_and_shortfalls_of_a_day() {
        let (start, _) = day_bounds(day());
        // M3 was off from 02:00 to 03:00 IST: intervals ending 02:15..03:00 (4) are explained.
        let off = MissedRow {
            meter: meter("M3"),
            profile: "block_load".into(),
            from: start + chrono::Duration::minutes(135),
            to: start + chrono::Duration::minutes(180),
            reason: "power_off".into(),
            detail: "{}".into(),
        };
        let rows = [
            counts("M1", 96, 96, Some(1)),  // complete, on time
            counts("M2", 90, 90, Some(1)),  // six intervals missing
            counts("M3", 92, 92, Some(2)),  // complete once the outage is explained
            counts("M4", 96, 96, None),     // no daily snapshot
            counts("M5", 96, 40, Some(30)), // complete but late
        ];
        let c = assess(day(), &rows, &[off], &CompletenessConfig::default());
        assert_eq!(c.meters, 5);
        assert_eq!(c.full_block_load, 4);
        assert_eq!(c.full_daily, 4);
        assert_eq!(c.on_time, 2);
        assert!((c.share_on_time - 0.4).abs() < 1e-9);
        assert!((c.share_full_block_load - 0.8).abs() < 1e-9);
        let short: Vec<(&str, u32, bool, bool)> = c
            .short
            .iter()
            .map(|s| {
                (
                    s.meter.as_str(),
                    s.missing_intervals,
                    s.daily_missing,
                    s.late,
                )
            })
            .collect();
        assert_eq!(
            short,
            vec![
                ("M2", 6, false, false),
                ("M4", 0, true, false),
                ("M5", 0, false, true)
            ]
        );
        assert_eq!(c.deadline, day_bounds(day()).1 + chrono::Duration::hours(8));
    }

    #[test]
    fn an_outage_from_before_midnight_explains_only_the_days_own_intervals() {
        let (start, _) = day_bounds(day());
        // Off from 23:45 the day before to 01:00: the day's intervals ending 00:15..01:00 (4)
        // are explained, twice over by an overlapping report; one more is simply missing.
        let off = |from: i64, to: i64| MissedRow {
            meter: meter("M1"),
            profile: "block_load".into(),
            from: start + chrono::Duration::minutes(from),
            to: start + chrono::Duration::minutes(to),
            reason: "power_off".into(),
            detail: "{}".into(),
        };
        let c = assess(
            day(),
            &[counts("M1", 91, 91, Some(1))],
            &[off(-15, 60), off(15, 45)],
            &CompletenessConfig::default(),
        );
        assert_eq!(c.full_block_load, 0);
        assert_eq!(
            (c.short[0].missing_intervals, c.short[0].explained_intervals),
            (1, 4)
        );
    }

    #[test]
    fn no_meters_no_shares() {
        let c = assess(day(), &[], &[], &CompletenessConfig::default());
        assert_eq!((c.meters, c.share_on_time), (0, 0.0));
    }
}

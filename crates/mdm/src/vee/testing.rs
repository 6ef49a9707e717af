//! Builders for the tests' hand-made series.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use model::{DailyReading, IntervalReading, MeterSerial};

use crate::calendar::{IST_OFFSET_S, Period};

/// A UTC time from an IST wall-clock string "YYYY-MM-DD HH:MM".
pub(crate) fn t(ist_wall_clock: &str) -> DateTime<Utc> {
    let local =
        chrono::NaiveDateTime::parse_from_str(ist_wall_clock, "%Y-%m-%d %H:%M").expect("test time");
    DateTime::from_naive_utc_and_offset(local, Utc) - TimeDelta::seconds(IST_OFFSET_S)
}

pub(crate) fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

pub(crate) fn quarter() -> Period {
    Period::new(900).expect("900 s divides a day")
}

pub(crate) fn meter() -> MeterSerial {
    MeterSerial::new("M1").expect("test serial")
}

/// A 15-minute interval with `wh` imported (VAh = Wh), 230 V, no flags.
pub(crate) fn interval(end: DateTime<Utc>, wh: i64) -> IntervalReading {
    IntervalReading {
        meter: meter(),
        interval_end: end,
        avg_voltage_v: Some(230.0),
        avg_current_a: Some(1.0),
        avg_phase_voltage_v: None,
        avg_phase_current_a: None,
        import_wh: wh,
        import_vah: wh,
        export_wh: None,
        export_vah: None,
        quality: Vec::new(),
    }
}

/// Consecutive 15-minute intervals, the first ending at `first_end`.
pub(crate) fn series(first_end: DateTime<Utc>, whs: &[i64]) -> Vec<IntervalReading> {
    whs.iter()
        .zip(0..)
        .map(|(&wh, i)| interval(first_end + TimeDelta::minutes(15 * i), wh))
        .collect()
}

/// Every interval of a local day with the same energy.
pub(crate) fn flat_day(day: &str, wh: i64) -> Vec<IntervalReading> {
    series(t(&format!("{day} 00:15")), &[wh; 96])
}

/// A register snapshot.
pub(crate) fn snapshot(at: DateTime<Utc>, wh: i64, vah: i64) -> DailyReading {
    DailyReading {
        meter: meter(),
        captured_at: at,
        import_wh: wh,
        import_vah: vah,
        export_wh: None,
        export_vah: None,
        quality: Vec::new(),
    }
}

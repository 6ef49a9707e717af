//! Validation, estimation and editing (VEE) of interval data: pure functions over series.
//!
//! Per meter and batch, the ingest calls [`validate_intervals`] on block-load intervals (each
//! [`Finding`] says which interval ends to flag [`Quality::Suspect`]), then
//! [`History::absorb`] on the rows it keeps, [`validate_daily`] on midnight register snapshots
//! with the intervals of the days they close, [`estimate_gap`] for intervals that stay missing,
//! and [`edit_interval`] for an operator's correction. A failed check is data (a finding), not
//! an error; nothing here panics on any input.
//!
//! "A day" is a local (IST) day, and an interval belongs to the day its start falls in: at 15
//! minutes a day's intervals end from 00:15 to 24:00 IST, that is 18:45 UTC the day before to
//! 18:30 UTC. Interval ends lie on the capture period's grid in IST. Every threshold is in
//! [`VeeConfig`]; validate a batch before absorbing it into the [`History`], so that what the
//! rules flag stays out of it.
//!
//! [`Quality::Suspect`]: model::Quality::Suspect

mod config;
mod daily;
mod edit;
mod estimate;
mod history;
#[cfg(test)]
mod robustness;
mod rules;
mod series;
#[cfg(test)]
pub(crate) mod testing;

use std::fmt;

use chrono::{DateTime, Utc};
use model::{DailyReading, IntervalReading};
use serde::{Deserialize, Serialize};

pub use crate::calendar::DayType;
pub use config::{VeeConfig, VeeConfigs};
pub use daily::validate_daily;
pub use edit::{EditError, NewValues, edit_interval};
pub use estimate::{
    Estimate, EstimateContext, EstimationMethod, MAX_ESTIMATE_INTERVALS, estimate_gap,
};
pub use history::History;
pub use rules::validate_intervals;

/// A validation rule; the names are stable (they are stored with findings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Intervals expected but neither received nor explained by a power failure.
    MissingInterval,
    /// The same interval received again with the same values.
    Duplicate,
    /// The same interval received again with different values.
    Overlap,
    /// A negative energy.
    Negative,
    /// A cumulative register went down (or rolled over: then the finding is only `Info`).
    RegisterBackwards,
    /// An interval far above the meter's recent typical interval.
    Spike,
    /// A day's total far above or below its like days'.
    HighLow,
    /// No consumption for hours while the supply was on.
    ZeroWithVoltage,
    /// A day's intervals do not add up to its register advance.
    SumCheck,
    /// An interval that ends in the future.
    FutureTimestamp,
    /// An interval end off the capture period's grid.
    Misaligned,
    /// The meter's clock was marked invalid or doubtful, or drifted too far.
    ClockDrift,
    /// An average voltage outside the plausible range.
    VoltageOutOfRange,
}

impl Rule {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::MissingInterval => "missing_interval",
            Rule::Duplicate => "duplicate",
            Rule::Overlap => "overlap",
            Rule::Negative => "negative",
            Rule::RegisterBackwards => "register_backwards",
            Rule::Spike => "spike",
            Rule::HighLow => "high_low",
            Rule::ZeroWithVoltage => "zero_with_voltage",
            Rule::SumCheck => "sum_check",
            Rule::FutureTimestamp => "future_timestamp",
            Rule::Misaligned => "misaligned",
            Rule::ClockDrift => "clock_drift",
            Rule::VoltageOutOfRange => "voltage_out_of_range",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    /// The stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a rule found about a run of intervals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: Rule,
    /// The first interval end affected (for register findings: the snapshot's time).
    pub from: DateTime<Utc>,
    /// The last interval end affected, included.
    pub to: DateTime<Utc>,
    pub severity: Severity,
    /// A sentence with the numbers, times in IST.
    pub detail: String,
    /// Whether the readings from `from` to `to` should be flagged `Suspect`.
    pub suspect: bool,
}

impl Finding {
    fn new(
        rule: Rule,
        severity: Severity,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        suspect: bool,
        detail: String,
    ) -> Finding {
        Finding {
            rule,
            from,
            to,
            severity,
            detail,
            suspect,
        }
    }
}

/// What the interval rules know besides the batch.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The meter's capture period, 900 or 1800 s (any whole number of minutes that divides a
    /// day works). Rules that need the grid (missing, duplicate, misaligned, spike, clock, zero
    /// with voltage, high/low, sum check) are skipped for any other value.
    pub period_s: i64,
    pub now: DateTime<Utc>,
    pub history: &'a History,
    /// The last clock drift the head-end reported (meter minus head-end), if any.
    pub clock_drift_s: Option<i64>,
    /// Stored rows of the meter for the batch's interval ends, for duplicates and overlaps;
    /// rows for other ends of the `expected` range may be passed too and count as received.
    pub already_stored: &'a [IntervalReading],
    /// Interval ends (first and last, included) that should all be present, for missing
    /// intervals; `None` skips the check.
    pub expected: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Interval ends (first and last, included) known to be missing for a reason, such as a
    /// power failure: not reported missing.
    pub explained: &'a [(DateTime<Utc>, DateTime<Utc>)],
}

impl<'a> Context<'a> {
    /// A context with no drift, no stored rows and no expected range.
    pub fn new(period_s: i64, now: DateTime<Utc>, history: &'a History) -> Self {
        Context {
            period_s,
            now,
            history,
            clock_drift_s: None,
            already_stored: &[],
            expected: None,
            explained: &[],
        }
    }
}

/// One of the energies a reading carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    ImportWh,
    ImportVah,
    ExportWh,
    ExportVah,
}

impl Channel {
    const ALL: [Channel; 4] = [
        Channel::ImportWh,
        Channel::ImportVah,
        Channel::ExportWh,
        Channel::ExportVah,
    ];

    fn name(self) -> &'static str {
        match self {
            Channel::ImportWh => "import Wh",
            Channel::ImportVah => "import VAh",
            Channel::ExportWh => "export Wh",
            Channel::ExportVah => "export VAh",
        }
    }

    fn of_interval(self, r: &IntervalReading) -> Option<i64> {
        match self {
            Channel::ImportWh => Some(r.import_wh),
            Channel::ImportVah => Some(r.import_vah),
            Channel::ExportWh => r.export_wh,
            Channel::ExportVah => r.export_vah,
        }
    }

    fn of_register(self, r: &DailyReading) -> Option<i64> {
        match self {
            Channel::ImportWh => Some(r.import_wh),
            Channel::ImportVah => Some(r.import_vah),
            Channel::ExportWh => r.export_wh,
            Channel::ExportVah => r.export_vah,
        }
    }
}

/// Readings sorted by interval end (stable: equal ends keep their order).
fn by_end(rows: &[IntervalReading]) -> Vec<&IntervalReading> {
    let mut sorted: Vec<&IntervalReading> = rows.iter().collect();
    sorted.sort_by_key(|r| r.interval_end);
    sorted
}

/// The energies of an interval, for comparing two readings of it.
fn energies(r: &IntervalReading) -> [Option<i64>; 4] {
    Channel::ALL.map(|c| c.of_interval(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_stable_and_match_serde() {
        let all = [
            Rule::MissingInterval,
            Rule::Duplicate,
            Rule::Overlap,
            Rule::Negative,
            Rule::RegisterBackwards,
            Rule::Spike,
            Rule::HighLow,
            Rule::ZeroWithVoltage,
            Rule::SumCheck,
            Rule::FutureTimestamp,
            Rule::Misaligned,
            Rule::ClockDrift,
            Rule::VoltageOutOfRange,
        ];
        for rule in all {
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(json, format!("\"{rule}\""));
            assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
        }
        assert_eq!(Rule::ZeroWithVoltage.to_string(), "zero_with_voltage");
    }
}

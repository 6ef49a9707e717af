//! The local calendar of interval data: capture periods, interval alignment, the IST day and slot
//! an interval falls in, weekdays and weekends, and runs of consecutive intervals.
//!
//! An interval is named by its end and covers the period before it, so it belongs to the local
//! day its *start* falls in: a day's intervals end from 00:15 to 24:00 IST at 15 minutes, and
//! the last one ends at the next day's midnight (18:30 UTC). Alignment is judged in IST, where
//! the meter keeps its clock; for periods that divide 30 minutes that is the same as in UTC.
//!
//! Times are handled as Unix seconds here. chrono bounds every `DateTime` to about ±8.3·10^12
//! seconds, so adding a period or the IST offset to one cannot overflow an `i64`.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc, Weekday};
use serde::{Deserialize, Serialize};

/// The usual block-load capture period (15 minutes): the default until a meter's data shows
/// its own.
pub const DEFAULT_PERIOD_S: i64 = 900;

/// IST, +05:30, in seconds.
pub const IST_OFFSET_S: i64 = 19_800;
const DAY_S: i64 = 86_400;
/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const UNIX_EPOCH_DAY_FROM_CE: i64 = 719_163;

/// A capture period of whole minutes that divides a day: the only kind whose intervals make up
/// whole local days (IS 15959 meters capture every 15 or 30 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period(i64);

/// Where an interval sits in the local calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The local day the interval starts in.
    pub day: NaiveDate,
    /// Its position in the day, 0 for the interval that starts at midnight.
    pub index: usize,
}

impl Period {
    /// Fifteen minutes, the usual block-load capture period.
    pub(crate) const QUARTER_HOUR: Period = Period(DEFAULT_PERIOD_S);

    /// `None` unless the period is whole minutes, at most a day, and divides the day.
    pub(crate) fn new(period_s: i64) -> Option<Period> {
        let valid = (60..=DAY_S).contains(&period_s) && period_s % 60 == 0 && DAY_S % period_s == 0;
        valid.then_some(Period(period_s))
    }

    pub(crate) fn secs(self) -> i64 {
        self.0
    }

    pub(crate) fn slots_per_day(self) -> usize {
        // At most 1 440, so the cast is exact.
        (DAY_S / self.0) as usize
    }

    /// Whether `secs` (Unix seconds) is an interval end: a whole multiple of the period in IST.
    pub(crate) fn is_aligned_secs(self, secs: i64) -> bool {
        (secs + IST_OFFSET_S).rem_euclid(self.0) == 0
    }

    pub(crate) fn is_aligned(self, end: DateTime<Utc>) -> bool {
        end.timestamp_subsec_nanos() == 0 && self.is_aligned_secs(end.timestamp())
    }

    /// The first interval end at or after `secs`.
    pub(crate) fn ceil(self, secs: i64) -> i64 {
        let past = (secs + IST_OFFSET_S).rem_euclid(self.0);
        if past == 0 {
            secs
        } else {
            secs + (self.0 - past)
        }
    }

    /// The last interval end at or before `secs`.
    pub(crate) fn floor(self, secs: i64) -> i64 {
        secs - (secs + IST_OFFSET_S).rem_euclid(self.0)
    }

    /// How many interval ends lie in `from..=to`, both aligned (0 if `to < from`).
    pub(crate) fn count(self, from: i64, to: i64) -> i64 {
        if to < from {
            0
        } else {
            (to - from) / self.0 + 1
        }
    }

    /// The local day and slot of an aligned interval end; `None` if it is not aligned.
    pub(crate) fn slot_of(self, end: DateTime<Utc>) -> Option<Slot> {
        if !self.is_aligned(end) {
            return None;
        }
        let local_start = end.timestamp() + IST_OFFSET_S - self.0;
        let day = day_from_unix_days(local_start.div_euclid(DAY_S))?;
        let index = usize::try_from(local_start.rem_euclid(DAY_S) / self.0).ok()?;
        Some(Slot { day, index })
    }

    /// The first and last interval ends of a local day, in Unix seconds.
    pub(crate) fn day_ends(self, day: NaiveDate) -> (i64, i64) {
        let midnight = local_midnight_secs(day);
        (midnight + self.0, midnight + DAY_S)
    }
}

/// The local day `day` as `(midnight, next midnight)`.
pub fn day_bounds(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = local_midnight_secs(day);
    let t = |secs| DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
    (t(midnight), t(midnight + DAY_S))
}

/// Local midnight at the start of `day`, in Unix seconds.
fn local_midnight_secs(day: NaiveDate) -> i64 {
    (i64::from(day.num_days_from_ce()) - UNIX_EPOCH_DAY_FROM_CE) * DAY_S - IST_OFFSET_S
}

fn day_from_unix_days(days: i64) -> Option<NaiveDate> {
    let from_ce = i32::try_from(days.checked_add(UNIX_EPOCH_DAY_FROM_CE)?).ok()?;
    NaiveDate::from_num_days_from_ce_opt(from_ce)
}

/// Unix seconds back to a time; `None` outside chrono's range.
pub(crate) fn at(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

/// Like days: load follows the week, so a day is compared with days of its own type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayType {
    /// Monday to Friday.
    Weekday,
    /// Saturday and Sunday.
    Weekend,
}

impl DayType {
    pub fn of(day: NaiveDate) -> DayType {
        match day.weekday() {
            Weekday::Sat | Weekday::Sun => DayType::Weekend,
            _ => DayType::Weekday,
        }
    }
}

impl fmt::Display for DayType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DayType::Weekday => "weekday",
            DayType::Weekend => "weekend day",
        })
    }
}

/// The interval ends of local day `day` that lie inside any of `ranges` (interval ends, both
/// included): each end counted once however the ranges overlap, and none of another day.
pub(crate) fn ends_within_day(
    period: Period,
    day: NaiveDate,
    ranges: impl IntoIterator<Item = (DateTime<Utc>, DateTime<Utc>)>,
) -> std::collections::BTreeSet<i64> {
    let (first, last) = period.day_ends(day);
    let mut out = std::collections::BTreeSet::new();
    for (from, to) in ranges {
        let from = period.ceil(from.timestamp().max(first));
        let to = period.floor(to.timestamp().min(last));
        let mut t = from;
        while t <= to {
            out.insert(t);
            t += period.secs();
        }
    }
    out
}

/// The IST date of an instant.
pub fn ist_date(t: DateTime<Utc>) -> NaiveDate {
    (t + chrono::Duration::seconds(IST_OFFSET_S)).date_naive()
}

/// A time as people read it in findings: IST.
pub(crate) fn ist(t: DateTime<Utc>) -> impl fmt::Display {
    let offset = FixedOffset::east_opt(IST_OFFSET_S as i32).expect("+05:30 is a valid offset");
    t.with_timezone(&offset).format("%Y-%m-%d %H:%M:%S IST")
}

/// A run of consecutive interval ends: `count` ends from `from` to `to`, one period apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub count: i64,
}

/// Groups interval ends into runs one period apart. The ends need not be sorted or distinct; an
/// end off the period's grid makes a run of its own.
pub(crate) fn runs(mut ends: Vec<DateTime<Utc>>, period: Period) -> Vec<Run> {
    ends.sort_unstable();
    ends.dedup();
    let mut out: Vec<Run> = Vec::new();
    for end in ends {
        match out.last_mut() {
            Some(run) if end.timestamp() == run.to.timestamp() + period.secs() => {
                run.to = end;
                run.count += 1;
            }
            _ => out.push(Run {
                from: end,
                to: end,
                count: 1,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vee::testing::{quarter, t};

    #[test]
    fn ends_within_a_day_are_counted_once_and_never_of_the_day_before() {
        let p = quarter();
        let day = NaiveDate::from_ymd_opt(2024, 5, 10).unwrap();
        // An outage from 23:45 the day before to 01:00, and an overlapping one to 00:30.
        let ends = ends_within_day(
            p,
            day,
            [
                (t("2024-05-09 23:45"), t("2024-05-10 01:00")),
                (t("2024-05-10 00:15"), t("2024-05-10 00:30")),
            ],
        );
        // 00:15, 00:30, 00:45, 01:00: not 00:00, which ends the day before.
        assert_eq!(ends.len(), 4);
        assert_eq!(ends.first(), Some(&t("2024-05-10 00:15").timestamp()));
        assert_eq!(ist_date(t("2024-05-10 00:00")), day);
    }

    #[test]
    fn periods_must_divide_the_day() {
        assert!(Period::new(900).is_some());
        assert!(Period::new(1800).is_some());
        assert!(Period::new(86_400).is_some());
        for bad in [0, -900, 1, 30, 64, 1000, 86_401, i64::MIN, i64::MAX] {
            assert_eq!(Period::new(bad), None, "{bad}");
        }
        assert_eq!(quarter().slots_per_day(), 96);
    }

    #[test]
    fn the_interval_ending_at_midnight_is_the_last_of_the_day_before() {
        let p = quarter();
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            p.slot_of(t("2024-05-04 00:00")),
            Some(Slot {
                day: d("2024-05-03"),
                index: 95
            })
        );
        assert_eq!(
            p.slot_of(t("2024-05-04 00:15")),
            Some(Slot {
                day: d("2024-05-04"),
                index: 0
            })
        );
        // Midnight IST is 18:30 UTC the day before.
        assert_eq!(
            t("2024-05-04 00:00").to_rfc3339(),
            "2024-05-03T18:30:00+00:00"
        );
        let (first, last) = p.day_ends(d("2024-05-04"));
        assert_eq!(
            (first, last),
            (
                t("2024-05-04 00:15").timestamp(),
                t("2024-05-05 00:00").timestamp()
            )
        );
    }

    #[test]
    fn alignment_is_judged_in_ist() {
        let hourly = Period::new(3600).unwrap();
        assert!(hourly.is_aligned(t("2024-05-04 10:00")));
        assert!(!hourly.is_aligned(t("2024-05-04 10:30")));
        assert!(!quarter().is_aligned(t("2024-05-04 10:00") + chrono::TimeDelta::seconds(1)));
        let x = t("2024-05-04 10:07").timestamp();
        assert_eq!(quarter().ceil(x), t("2024-05-04 10:15").timestamp());
        assert_eq!(quarter().floor(x), t("2024-05-04 10:00").timestamp());
    }

    #[test]
    fn weekends_are_saturday_and_sunday() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(DayType::of(d("2024-05-03")), DayType::Weekday); // Friday
        assert_eq!(DayType::of(d("2024-05-04")), DayType::Weekend);
        assert_eq!(DayType::of(d("2024-05-05")), DayType::Weekend);
        assert_eq!(DayType::of(d("2024-05-06")), DayType::Weekday);
    }

    #[test]
    fn runs_join_consecutive_ends() {
        let ends = vec![
            t("2024-05-04 10:30"),
            t("2024-05-04 10:00"),
            t("2024-05-04 10:15"),
            t("2024-05-04 10:15"),
            t("2024-05-04 11:00"),
        ];
        let r = runs(ends, quarter());
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].from, r[0].to, r[0].count),
            (t("2024-05-04 10:00"), t("2024-05-04 10:30"), 3)
        );
        assert_eq!((r[1].from, r[1].count), (t("2024-05-04 11:00"), 1));
    }

    #[test]
    fn findings_print_ist() {
        assert_eq!(
            ist(t("2024-05-04 00:15")).to_string(),
            "2024-05-04 00:15:00 IST"
        );
    }
}

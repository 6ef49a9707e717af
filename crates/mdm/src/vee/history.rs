//! What the rules need of a meter's past, in bounded memory: the import of each slot of the
//! latest [`History::MAX_LIKE_DAYS`] local days of each [`DayType`], and the latest register
//! snapshot.
//!
//! From it come the recent typical interval (spikes), like-day totals (high/low) and like-day
//! slot means (estimation). At 15 minutes a History holds at most 16 days × 96 slots of two
//! `u32`s, about 14 KB; it is serde so the store can keep it between runs.

use chrono::{DateTime, NaiveDate, Utc};
use model::{DailyReading, IntervalReading, Quality};
use serde::{Deserialize, Serialize};

use crate::calendar::{DayType, Period};

/// A meter's recent past, built from actual readings. See [`History::absorb`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    period_s: i64,
    /// Latest weekdays, oldest first, at most `MAX_LIKE_DAYS`.
    weekdays: Vec<DayRecord>,
    /// Latest weekend days, oldest first, at most `MAX_LIKE_DAYS`.
    weekends: Vec<DayRecord>,
    /// The latest register snapshot absorbed.
    last_register: Option<DailyReading>,
}

/// One local day: the energy of each slot, `None` where no actual interval was absorbed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DayRecord {
    day: NaiveDate,
    slots: Vec<Option<SlotEnergy>>,
}

/// Import Wh and VAh of one interval (an interval above 4.29 GWh is not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct SlotEnergy(u32, u32);

impl DayRecord {
    fn total_wh(&self, slots_per_day: usize) -> Option<i64> {
        if self.slots.len() != slots_per_day {
            return None;
        }
        self.slots
            .iter()
            .try_fold(0i64, |sum, s| Some(sum + i64::from(s.as_ref()?.0)))
    }
}

impl History {
    /// How many days of each type are kept: the most [`VeeConfig::like_days`] can use.
    ///
    /// [`VeeConfig::like_days`]: super::VeeConfig::like_days
    pub const MAX_LIKE_DAYS: usize = 8;

    /// An empty history for a meter with this capture period. A period that is not whole
    /// minutes dividing a day keeps nothing.
    pub fn new(period_s: i64) -> Self {
        History {
            period_s,
            weekdays: Vec::new(),
            weekends: Vec::new(),
            last_register: None,
        }
    }

    pub fn period_s(&self) -> i64 {
        self.period_s
    }

    /// Takes in a meter's intervals, in any order, in O(rows).
    ///
    /// Skipped: rows flagged `Estimated`, `Suspect` or `ClockInvalid` (so absorb after
    /// validation has flagged them), negative or misaligned ones, and days older than the
    /// oldest kept day of their type once `MAX_LIKE_DAYS` are kept. Each row *sets* its slot, so
    /// absorbing the same rows again leaves the history exactly as it was, and a corrected
    /// (edited) row replaces the value absorbed before.
    pub fn absorb(&mut self, rows: &[IntervalReading]) {
        let Some(period) = Period::new(self.period_s) else {
            return;
        };
        for row in rows {
            let unusable = row.quality.iter().any(|q| {
                matches!(
                    q,
                    Quality::Estimated | Quality::Suspect | Quality::ClockInvalid
                )
            });
            if unusable {
                continue;
            }
            let (Ok(wh), Ok(vah)) = (u32::try_from(row.import_wh), u32::try_from(row.import_vah))
            else {
                continue;
            };
            let Some(slot) = period.slot_of(row.interval_end) else {
                continue;
            };
            let days = match DayType::of(slot.day) {
                DayType::Weekday => &mut self.weekdays,
                DayType::Weekend => &mut self.weekends,
            };
            let record = day_record(days, slot.day, period.slots_per_day());
            if let Some(energy) = record.and_then(|r| r.slots.get_mut(slot.index)) {
                *energy = Some(SlotEnergy(wh, vah));
            }
        }
    }

    /// Keeps the latest of these register snapshots (by capture time) that is not flagged
    /// `Estimated` or `Suspect`, if it is later than the one kept.
    pub fn absorb_daily(&mut self, snapshots: &[DailyReading]) {
        let latest = snapshots
            .iter()
            .filter(|s| {
                !s.quality
                    .iter()
                    .any(|q| matches!(q, Quality::Estimated | Quality::Suspect))
            })
            .max_by_key(|s| s.captured_at);
        let kept_at = self.last_register.as_ref().map(|kept| kept.captured_at);
        if let Some(s) = latest.filter(|s| kept_at.is_none_or(|at| at < s.captured_at)) {
            self.last_register = Some(s.clone());
        }
    }

    /// The latest register snapshot absorbed.
    pub fn last_register(&self) -> Option<&DailyReading> {
        self.last_register.as_ref()
    }

    /// The meter's typical interval import: the median over the intervals of its latest `days`
    /// days (of either type). `None` with less than a day's worth of intervals.
    pub fn recent_typical_wh(&self, days: usize) -> Option<i64> {
        let period = Period::new(self.period_s)?;
        let mut recent: Vec<&DayRecord> = self.weekdays.iter().chain(&self.weekends).collect();
        recent.sort_unstable_by_key(|d| std::cmp::Reverse(d.day));
        let mut values: Vec<u32> = recent
            .iter()
            .take(days)
            .flat_map(|d| d.slots.iter().flatten().map(|s| s.0))
            .collect();
        if values.len() < period.slots_per_day() {
            return None;
        }
        let middle = values.len() / 2;
        let (_, median, _) = values.select_nth_unstable(middle);
        Some(i64::from(*median))
    }

    /// The mean total of the latest `n` complete like days (same type as `day`) before `day`,
    /// rounded down, and how many days it is over; `None` if there are none.
    pub fn like_day_mean_total_wh(&self, day: NaiveDate, n: usize) -> Option<(i64, usize)> {
        let period = Period::new(self.period_s)?;
        let totals: Vec<i64> = self
            .like_days(DayType::of(day))
            .iter()
            .rev()
            .filter(|d| d.day < day)
            .filter_map(|d| d.total_wh(period.slots_per_day()))
            .take(n)
            .collect();
        let count = totals.len();
        let sum: i128 = totals.iter().map(|&t| i128::from(t)).sum();
        let mean = sum / i128::try_from(count).ok().filter(|&c| c > 0)?;
        Some((i64::try_from(mean).ok()?, count))
    }

    /// The mean import (Wh, VAh) of the slot of `end` over the latest `n` like days that have
    /// it, rounded to the nearest; `None` if none has it or `end` is not an interval end.
    pub fn like_day_slot_mean(&self, end: DateTime<Utc>, n: usize) -> Option<(i64, i64)> {
        let slot = Period::new(self.period_s)?.slot_of(end)?;
        let values: Vec<SlotEnergy> = self
            .like_days(DayType::of(slot.day))
            .iter()
            .rev()
            .filter_map(|d| *d.slots.get(slot.index)?)
            .take(n)
            .collect();
        let count = i128::try_from(values.len()).ok().filter(|&c| c > 0)?;
        // Each mean lies between the smallest and largest u32 summed: it fits an i64.
        let mean = |sum: i128| i64::try_from((2 * sum + count) / (2 * count)).unwrap_or(i64::MAX);
        let wh = values.iter().map(|s| i128::from(s.0)).sum();
        let vah = values.iter().map(|s| i128::from(s.1)).sum();
        Some((mean(wh), mean(vah)))
    }

    fn like_days(&self, day_type: DayType) -> &[DayRecord] {
        match day_type {
            DayType::Weekday => &self.weekdays,
            DayType::Weekend => &self.weekends,
        }
    }
}

/// The record of `day` in `days` (sorted, oldest first), made if needed; the oldest is dropped
/// beyond `MAX_LIKE_DAYS`. `None` if `day` is older than all of a full list.
fn day_record(
    days: &mut Vec<DayRecord>,
    day: NaiveDate,
    slots_per_day: usize,
) -> Option<&mut DayRecord> {
    let mut at = match days.binary_search_by(|d| d.day.cmp(&day)) {
        Ok(at) => return days.get_mut(at),
        Err(at) => at,
    };
    if at == 0 && days.len() >= History::MAX_LIKE_DAYS {
        return None;
    }
    days.insert(
        at,
        DayRecord {
            day,
            slots: vec![None; slots_per_day],
        },
    );
    if days.len() > History::MAX_LIKE_DAYS {
        days.remove(0);
        at -= 1;
    }
    days.get_mut(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vee::testing::{date, flat_day, interval, series, snapshot, t};

    fn weekdays(h: &History) -> Vec<NaiveDate> {
        h.weekdays.iter().map(|d| d.day).collect()
    }

    #[test]
    fn rows_fall_into_their_local_day_and_type() {
        let mut h = History::new(900);
        // Friday 23:45–24:00 IST belongs to Friday; Saturday 00:00–00:15 to Saturday.
        h.absorb(&series(t("2024-05-04 00:00"), &[10, 20]));
        assert_eq!(weekdays(&h), vec![date("2024-05-03")]);
        assert_eq!(h.weekdays[0].slots[95], Some(SlotEnergy(10, 10)));
        assert_eq!(h.weekends[0].day, date("2024-05-04"));
        assert_eq!(h.weekends[0].slots[0], Some(SlotEnergy(20, 20)));
    }

    #[test]
    fn absorbing_twice_changes_nothing_and_corrections_replace() {
        let rows = series(t("2024-05-03 10:15"), &[100, 200, 300]);
        let mut once = History::new(900);
        once.absorb(&rows);
        let mut twice = once.clone();
        twice.absorb(&rows);
        assert_eq!(once, twice);

        let mut edited = interval(t("2024-05-03 10:30"), 250);
        edited.quality.push(Quality::Edited);
        twice.absorb(&[edited]);
        assert_eq!(twice.weekdays[0].slots[41], Some(SlotEnergy(250, 250)));
    }

    #[test]
    fn estimated_suspect_negative_and_misaligned_rows_are_skipped() {
        let mut h = History::new(900);
        let mut estimated = interval(t("2024-05-03 10:15"), 1);
        estimated.quality.push(Quality::Estimated);
        let mut suspect = interval(t("2024-05-03 10:30"), 1);
        suspect.quality.push(Quality::Suspect);
        let negative = interval(t("2024-05-03 10:45"), -1);
        let misaligned = interval(t("2024-05-03 10:46"), 1);
        h.absorb(&[estimated, suspect, negative, misaligned]);
        assert_eq!(h, History::new(900));
    }

    #[test]
    fn keeps_the_latest_days_of_each_type() {
        let mut h = History::new(900);
        // Ten weekdays, Mon 6 May to Fri 17 May 2024, absorbed newest first.
        let days = [6, 7, 8, 9, 10, 13, 14, 15, 16, 17];
        for d in days.iter().rev() {
            h.absorb(&flat_day(&format!("2024-05-{d:02}"), 10));
        }
        let kept: Vec<NaiveDate> = days[2..]
            .iter()
            .map(|d| date(&format!("2024-05-{d:02}")))
            .collect();
        assert_eq!(weekdays(&h), kept);
        assert!(h.weekends.is_empty());
    }

    #[test]
    fn recent_typical_is_the_median_of_the_latest_days() {
        let mut h = History::new(900);
        assert_eq!(h.recent_typical_wh(3), None);
        h.absorb(&flat_day("2024-05-01", 1000)); // the oldest, left out of 3 days
        h.absorb(&flat_day("2024-05-02", 40));
        h.absorb(&flat_day("2024-05-03", 50));
        h.absorb(&flat_day("2024-05-04", 60));
        assert_eq!(h.recent_typical_wh(3), Some(50));
        assert_eq!(h.recent_typical_wh(4), Some(60)); // upper middle of 384 values
    }

    #[test]
    fn like_day_totals_use_complete_earlier_days_of_the_same_type() {
        let mut h = History::new(900);
        h.absorb(&flat_day("2024-05-06", 10)); // Mon: 960 Wh
        h.absorb(&flat_day("2024-05-07", 20)); // Tue: 1920 Wh
        h.absorb(&flat_day("2024-05-05", 99)); // Sun: another type
        h.absorb(&series(t("2024-05-08 00:15"), &[5; 95])); // Wed, incomplete
        h.absorb(&flat_day("2024-05-09", 30)); // Thu: not before Thursday
        assert_eq!(
            h.like_day_mean_total_wh(date("2024-05-09"), 4),
            Some((1440, 2))
        );
        assert_eq!(
            h.like_day_mean_total_wh(date("2024-05-09"), 1),
            Some((1920, 1))
        );
        assert_eq!(h.like_day_mean_total_wh(date("2024-05-06"), 4), None);
    }

    #[test]
    fn like_day_slot_means_round_to_the_nearest() {
        let mut h = History::new(900);
        h.absorb(&[interval(t("2024-05-06 10:15"), 10)]);
        h.absorb(&[interval(t("2024-05-07 10:15"), 11)]);
        h.absorb(&[interval(t("2024-05-11 10:15"), 500)]); // Saturday
        assert_eq!(
            h.like_day_slot_mean(t("2024-05-08 10:15"), 4),
            Some((11, 11))
        );
        assert_eq!(h.like_day_slot_mean(t("2024-05-08 10:30"), 4), None);
        assert_eq!(
            h.like_day_slot_mean(t("2024-05-12 10:15"), 4),
            Some((500, 500))
        );
    }

    #[test]
    fn keeps_the_latest_usable_register_snapshot() {
        let mut h = History::new(900);
        let mut suspect = snapshot(t("2024-05-05 00:00"), 9, 9);
        suspect.quality.push(Quality::Suspect);
        h.absorb_daily(&[snapshot(t("2024-05-04 00:00"), 5, 6), suspect]);
        assert_eq!(h.last_register().map(|s| s.import_wh), Some(5));
        h.absorb_daily(&[snapshot(t("2024-05-03 00:00"), 1, 1)]);
        assert_eq!(h.last_register().map(|s| s.import_wh), Some(5));
    }

    #[test]
    fn round_trips_through_json() {
        let mut h = History::new(900);
        h.absorb(&flat_day("2024-05-06", 10));
        h.absorb_daily(&[snapshot(t("2024-05-07 00:00"), 5, 6)]);
        let back: History = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn a_period_off_the_minute_grid_keeps_nothing() {
        let mut h = History::new(7);
        h.absorb(&flat_day("2024-05-06", 10));
        assert_eq!(h, History::new(7));
        assert_eq!(h.recent_typical_wh(3), None);
    }
}

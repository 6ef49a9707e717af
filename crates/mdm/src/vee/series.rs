//! The interval rules over a whole series: missing intervals, duplicates and overlaps, runs of
//! zero consumption with the supply on, and days far off their like days.

use chrono::NaiveDate;
use model::IntervalReading;

use super::rules::voltages;
use super::{Context, Finding, History, Rule, Severity, VeeConfig, by_end, energies};
use crate::calendar::{DayType, Period, at, ist, runs};

/// Expected interval ends that were neither received (in the batch or stored) nor explained,
/// one finding per run. Works on runs, so a year-long range costs no more than a day.
pub(super) fn missing(batch: &[IntervalReading], ctx: &Context, period: Period) -> Vec<Finding> {
    let Some((from, to)) = ctx.expected else {
        return Vec::new();
    };
    let p = period.secs();
    let from_s = from.timestamp() + i64::from(from.timestamp_subsec_nanos() > 0);
    let (first, last) = (period.ceil(from_s), period.floor(to.timestamp()));
    let mut received: Vec<i64> = batch
        .iter()
        .chain(ctx.already_stored)
        .filter(|r| period.is_aligned(r.interval_end))
        .map(|r| r.interval_end.timestamp())
        .filter(|s| (first..=last).contains(s))
        .collect();
    received.sort_unstable();
    received.dedup();
    let mut explained: Vec<(i64, i64)> = ctx
        .explained
        .iter()
        .map(|(a, b)| (period.ceil(a.timestamp()), period.floor(b.timestamp())))
        .filter(|(a, b)| a <= b)
        .collect();
    explained.sort_unstable();

    let mut gaps = Vec::new();
    let mut next = first;
    for end in received {
        if end > next {
            gaps.push((next, end - p));
        }
        next = end + p;
    }
    if next <= last {
        gaps.push((next, last));
    }
    gaps.into_iter()
        .flat_map(|gap| unexplained(gap, &explained, p))
        .filter_map(|(a, b)| {
            let (from, to) = (at(a)?, at(b)?);
            Some(Finding::new(
                Rule::MissingInterval,
                Severity::Warning,
                (from, to),
                false,
                format!(
                    "{} intervals missing from {} to {}",
                    period.count(a, b),
                    ist(from),
                    ist(to)
                ),
            ))
        })
        .collect()
}

/// The parts of `gap` (first and last end) that no explained range (sorted) covers.
fn unexplained((first, last): (i64, i64), explained: &[(i64, i64)], p: i64) -> Vec<(i64, i64)> {
    let mut parts = Vec::new();
    let mut next = first;
    for &(a, b) in explained {
        if b < next {
            continue;
        }
        if a > last {
            break;
        }
        if a > next {
            parts.push((next, a - p));
        }
        next = b + p;
    }
    if next <= last {
        parts.push((next, last));
    }
    parts
}

/// Interval ends received more than once, in the batch or against the stored rows: with the
/// same energies a duplicate (Info, one finding per run), with others an overlap (Error, one
/// finding per interval, both values in the detail).
pub(super) fn duplicates(
    batch: &[IntervalReading],
    stored: &[IntervalReading],
    period: Period,
) -> Vec<Finding> {
    let (batch, stored) = (by_end(batch), by_end(stored));
    let mut repeated = Vec::new();
    let mut findings = Vec::new();
    for (i, row) in batch.iter().enumerate() {
        let end = row.interval_end;
        let first_in_batch = batch
            .get(batch.partition_point(|r| r.interval_end < end))
            .filter(|_| i > 0 && batch[i - 1].interval_end == end);
        let first_stored = stored
            .get(stored.partition_point(|r| r.interval_end < end))
            .filter(|r| r.interval_end == end);
        let (earlier, source) = match (first_in_batch, first_stored) {
            (Some(r), _) => (r, "earlier in the batch"),
            (None, Some(r)) => (r, "already stored"),
            (None, None) => continue,
        };
        if energies(earlier) == energies(row) {
            repeated.push(end);
        } else {
            findings.push(Finding::new(
                Rule::Overlap,
                Severity::Error,
                (end, end),
                true,
                format!(
                    "interval ending {} received as {}, {source} as {}",
                    ist(end),
                    show_energies(row),
                    show_energies(earlier)
                ),
            ));
        }
    }
    let duplicate_runs = runs(repeated, period).into_iter().map(|run| {
        Finding::new(
            Rule::Duplicate,
            Severity::Info,
            (run.from, run.to),
            false,
            format!(
                "{} intervals from {} to {} received again with the same values",
                run.count,
                ist(run.from),
                ist(run.to)
            ),
        )
    });
    findings.extend(duplicate_runs);
    findings
}

fn show_energies(r: &IntervalReading) -> String {
    let mut s = format!("{} Wh/{} VAh", r.import_wh, r.import_vah);
    if r.export_wh.is_some() || r.export_vah.is_some() {
        let show = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
        s += &format!(
            " export {} Wh/{} VAh",
            show(r.export_wh),
            show(r.export_vah)
        );
    }
    s
}

/// Runs of intervals with no import and no export while some voltage was at least the minimum,
/// lasting `zero_with_voltage_min_s` or more (a stuck register, a bypass, or an empty house).
/// Runs are seen within the batch only: one split across two batches is judged in two parts.
pub(super) fn zero_with_voltage(
    batch: &[IntervalReading],
    period: Period,
    cfg: &VeeConfig,
) -> Vec<Finding> {
    let ends = batch
        .iter()
        .filter(|r| r.import_wh == 0 && r.export_wh.unwrap_or(0) == 0)
        .filter(|r| voltages(r).any(|(_, v)| v >= cfg.voltage_min_v))
        .map(|r| r.interval_end)
        .collect();
    runs(ends, period)
        .into_iter()
        .filter(|run| run.count.saturating_mul(period.secs()) >= cfg.zero_with_voltage_min_s)
        .map(|run| {
            Finding::new(
                Rule::ZeroWithVoltage,
                Severity::Warning,
                (run.from, run.to),
                false,
                format!(
                    "no consumption for {} intervals from {} to {} while the supply was on",
                    run.count,
                    ist(run.from),
                    ist(run.to)
                ),
            )
        })
        .collect()
}

/// Complete local days in the batch whose total import is over `high_factor` or under
/// `low_factor` times the mean of their like days, once the history has `like_days_min` of them.
pub(super) fn high_low(
    batch: &[IntervalReading],
    history: &History,
    period: Period,
    cfg: &VeeConfig,
) -> Vec<Finding> {
    // (day, slot, import) of each aligned interval, the first of any duplicate kept: a day is
    // complete when it has every slot.
    let mut slots: Vec<(NaiveDate, usize, i64)> = batch
        .iter()
        .filter_map(|r| {
            period
                .slot_of(r.interval_end)
                .map(|s| (s.day, s.index, r.import_wh))
        })
        .collect();
    slots.sort_by_key(|&(day, index, _)| (day, index));
    slots.dedup_by_key(|&mut (day, index, _)| (day, index));
    let like_days = cfg.like_days.min(History::MAX_LIKE_DAYS);
    slots
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|day| day.len() == period.slots_per_day())
        .filter_map(|day_slots| {
            let day = day_slots[0].0;
            let total = day_slots
                .iter()
                .fold(0i64, |sum, s| sum.saturating_add(s.2));
            let (mean, n) = history.like_day_mean_total_wh(day, like_days)?;
            if n < cfg.like_days_min {
                return None;
            }
            let base = mean.max(cfg.like_day_floor_wh);
            let (factor, side) = if total as f64 > cfg.high_factor * base as f64 {
                (cfg.high_factor, "over")
            } else if mean >= cfg.like_day_floor_wh && (total as f64) < cfg.low_factor * mean as f64
            {
                (cfg.low_factor, "under")
            } else {
                return None;
            };
            let (first, last) = period.day_ends(day);
            Some(Finding::new(
                Rule::HighLow,
                Severity::Warning,
                (at(first)?, at(last)?),
                false,
                format!(
                    "{day} ({}) used {total} Wh, {side} {factor} × {base} Wh (the mean of its last \
                     {n} like days is {mean} Wh)",
                    DayType::of(day)
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::vee::testing::{flat_day, interval, quarter, series, t};

    fn span(f: &Finding) -> (DateTime<Utc>, DateTime<Utc>) {
        (f.from, f.to)
    }

    #[test]
    fn missing_runs_leave_out_received_and_explained_ends() {
        let history = History::new(900);
        // Expected 10:15..=12:00 (8 ends); received 10:15, 10:30, 11:15; stored 12:00;
        // a power failure explains the end 11:45 (given as the outage 11:40–11:50).
        let batch = series(t("2024-05-10 10:15"), &[1, 1]);
        let stored = [interval(t("2024-05-10 12:00"), 1)];
        let explained = [(t("2024-05-10 11:40"), t("2024-05-10 11:50"))];
        let mut ctx = Context::new(900, t("2024-05-10 13:00"), &history);
        ctx.expected = Some((t("2024-05-10 10:10"), t("2024-05-10 12:00")));
        ctx.already_stored = &stored;
        ctx.explained = &explained;
        let batch = [batch, vec![interval(t("2024-05-10 11:15"), 1)]].concat();
        let f = missing(&batch, &ctx, quarter());
        assert_eq!(f.len(), 2);
        assert_eq!(span(&f[0]), (t("2024-05-10 10:45"), t("2024-05-10 11:00")));
        assert_eq!(
            f[0].detail,
            "2 intervals missing from 2024-05-10 10:45:00 IST to 2024-05-10 11:00:00 IST"
        );
        assert_eq!(span(&f[1]), (t("2024-05-10 11:30"), t("2024-05-10 11:30")));
        assert!(!f[0].suspect);
    }

    #[test]
    fn a_huge_expected_range_is_one_finding() {
        let history = History::new(900);
        let mut ctx = Context::new(900, t("2024-05-10 13:00"), &history);
        ctx.expected = Some((DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC));
        let f = missing(&[], &ctx, quarter());
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn duplicates_run_and_overlaps_name_both_values() {
        let batch = [
            interval(t("2024-05-10 10:15"), 100),
            interval(t("2024-05-10 10:30"), 110),
            interval(t("2024-05-10 10:30"), 110),
            interval(t("2024-05-10 10:45"), 120),
            interval(t("2024-05-10 11:00"), 5),
        ];
        let stored = [
            interval(t("2024-05-10 10:15"), 100),
            interval(t("2024-05-10 11:00"), 7),
        ];
        let f = duplicates(&batch, &stored, quarter());
        let summary: Vec<_> = f.iter().map(|f| (f.rule, span(f), f.suspect)).collect();
        assert_eq!(
            summary,
            vec![
                (
                    Rule::Overlap,
                    (t("2024-05-10 11:00"), t("2024-05-10 11:00")),
                    true
                ),
                (
                    Rule::Duplicate,
                    (t("2024-05-10 10:15"), t("2024-05-10 10:30")),
                    false
                ),
            ]
        );
        assert_eq!(
            f[0].detail,
            "interval ending 2024-05-10 11:00:00 IST received as 5 Wh/5 VAh, already stored as \
             7 Wh/7 VAh"
        );
        assert_eq!(
            f[1].detail,
            "2 intervals from 2024-05-10 10:15:00 IST to 2024-05-10 10:30:00 IST received again \
             with the same values"
        );
    }

    #[test]
    fn zero_with_voltage_needs_a_long_enough_run() {
        let cfg = VeeConfig {
            zero_with_voltage_min_s: 3600,
            ..VeeConfig::default()
        };
        // 3 zeros (45 min), a reading, 4 zeros (1 h), one zero with no voltage, one exporting.
        let mut batch = series(t("2024-05-10 10:15"), &[0, 0, 0, 9, 0, 0, 0, 0, 0, 0]);
        batch[8].avg_voltage_v = Some(0.0);
        batch[9].export_wh = Some(30);
        let f = zero_with_voltage(&batch, quarter(), &cfg);
        assert_eq!(f.len(), 1);
        assert_eq!(span(&f[0]), (t("2024-05-10 11:15"), t("2024-05-10 12:00")));
        assert_eq!(
            f[0].detail,
            "no consumption for 4 intervals from 2024-05-10 11:15:00 IST to 2024-05-10 12:00:00 \
             IST while the supply was on"
        );
    }

    fn weekday_history(wh_per_interval: i64) -> History {
        let mut h = History::new(900);
        // Mon 6 to Thu 9 May 2024.
        for d in 6..=9 {
            h.absorb(&flat_day(&format!("2024-05-{d:02}"), wh_per_interval));
        }
        h
    }

    #[test]
    fn a_high_day_against_its_like_days() {
        let h = weekday_history(50); // 4 weekdays of 4800 Wh
        let cfg = VeeConfig::default();
        let high = flat_day("2024-05-10", 151); // 14 496 Wh > 3 × 4800
        let f = high_low(&high, &h, quarter(), &cfg);
        assert_eq!(f.len(), 1);
        assert_eq!(span(&f[0]), (t("2024-05-10 00:15"), t("2024-05-11 00:00")));
        assert_eq!(
            f[0].detail,
            "2024-05-10 (weekday) used 14496 Wh, over 3 × 4800 Wh (the mean of its last 4 like \
             days is 4800 Wh)"
        );
        assert_eq!(
            high_low(&flat_day("2024-05-10", 150), &h, quarter(), &cfg),
            vec![]
        );
    }

    #[test]
    fn a_low_day_and_what_stays_silent() {
        let cfg = VeeConfig::default();
        let h = weekday_history(50);
        let low = flat_day("2024-05-10", 12); // 1152 Wh < 0.25 × 4800
        let f = high_low(&low, &h, quarter(), &cfg);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].detail.contains("used 1152 Wh, under 0.25 × 4800 Wh"),
            "{}",
            f[0].detail
        );
        // An incomplete day, a weekend day, and too little history are not judged.
        assert_eq!(high_low(&low[1..], &h, quarter(), &cfg), vec![]);
        assert_eq!(
            high_low(&flat_day("2024-05-11", 0), &h, quarter(), &cfg),
            vec![]
        );
        let short = VeeConfig {
            like_days_min: 5,
            ..VeeConfig::default()
        };
        assert_eq!(high_low(&low, &h, quarter(), &short), vec![]);
        // Like days under the floor: no "low", and "high" against the floor.
        let tiny = weekday_history(1); // 96 Wh a day
        assert_eq!(
            high_low(&flat_day("2024-05-10", 0), &tiny, quarter(), &cfg),
            vec![]
        );
        assert_eq!(
            high_low(&flat_day("2024-05-10", 31), &tiny, quarter(), &cfg),
            vec![]
        );
        assert_eq!(
            high_low(&flat_day("2024-05-10", 32), &tiny, quarter(), &cfg).len(),
            1
        );
    }
}

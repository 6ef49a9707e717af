//! What is missing from a meter's interval data, and why: the interval ends expected in a window,
//! the missing ones merged into ranges to re-read (split into pieces a meter serves in one
//! selective-access read), and which missing intervals a power failure explains.
//!
//! Interval timestamps are interval **ends**, aligned to the period in UTC (IST is +05:30, so
//! 15-, 30- and 60-minute boundaries are the same in both). The functions work on sorted runs,
//! not on every interval, so a year of 1-minute data costs no more than a day of it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use model::MeterEvent;

/// IS 15959 power-failure log (0.0.99.98.2.255) codes.
pub const POWER_FAILURE: u16 = 101;
pub const POWER_RESTORED: u16 = 102;

/// A contiguous run of missing intervals, by their ends: the first and the last, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Range {
    /// How many intervals of `period` the range holds (0 for a zero period or `to < from`).
    pub fn intervals(&self, period: Duration) -> u64 {
        let p = period_ms(period);
        let (a, b) = (self.from.timestamp_millis(), self.to.timestamp_millis());
        if p == 0 || b < a {
            return 0;
        }
        u64::try_from((b - a) / p).map_or(0, |n| n.saturating_add(1))
    }

    /// The interval ends in the range.
    pub fn ends(&self, period: Duration) -> impl Iterator<Item = DateTime<Utc>> + use<> {
        let p = period_ms(period);
        let from = self.from.timestamp_millis();
        (0..self.intervals(period)).filter_map(move |i| {
            let offset = i64::try_from(i).ok()?.checked_mul(p)?;
            DateTime::from_timestamp_millis(from.checked_add(offset)?)
        })
    }
}

/// What a look at the collected interval ends found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GapFinding {
    /// The missing intervals, as contiguous runs, earliest first.
    pub missing: Vec<Range>,
    /// Stamps seen more than once (each repeat counted once).
    pub duplicates: usize,
    /// Stamps outside the window (ignored).
    pub out_of_window: usize,
    /// Stamps inside the window but not on an interval boundary (ignored).
    pub misaligned: usize,
}

impl GapFinding {
    /// Missing intervals in all.
    pub fn missing_intervals(&self, period: Duration) -> u64 {
        self.missing
            .iter()
            .map(|r| r.intervals(period))
            .fold(0, u64::saturating_add)
    }
}

/// Why intervals are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Explanation {
    /// The meter was without supply (the power-failure log's outage from `from` to `to`), so
    /// it recorded nothing for these intervals: a known gap, not data to chase.
    PowerOff {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// Nothing the meter told us explains it: re-read.
    Unexplained,
}

fn period_ms(period: Duration) -> i64 {
    i64::try_from(period.as_millis()).unwrap_or(i64::MAX)
}

/// The first multiple of `p` strictly greater than `t`, and the last multiple at or below `t`.
fn next_multiple_after(t: i64, p: i64) -> Option<i64> {
    t.div_euclid(p).checked_add(1)?.checked_mul(p)
}

fn last_multiple_at_or_before(t: i64, p: i64) -> Option<i64> {
    t.div_euclid(p).checked_mul(p)
}

/// The interval ends in `(from_exclusive, to_inclusive]` for intervals of `period`, aligned to
/// the period in UTC. A period shorter than a millisecond expects nothing.
pub fn expected_interval_ends(
    from_exclusive: DateTime<Utc>,
    to_inclusive: DateTime<Utc>,
    period: Duration,
) -> impl Iterator<Item = DateTime<Utc>> + use<> {
    let p = period_ms(period);
    let range = window(from_exclusive, to_inclusive, p).map(|(from, to)| Range {
        from: millis(from),
        to: millis(to),
    });
    range.into_iter().flat_map(move |r| r.ends(period))
}

/// The first and last expected interval ends (ms), if any.
fn window(
    from_exclusive: DateTime<Utc>,
    to_inclusive: DateTime<Utc>,
    p: i64,
) -> Option<(i64, i64)> {
    if p <= 0 {
        return None;
    }
    // Flooring to the millisecond keeps "strictly after" right: a boundary is a whole number of
    // milliseconds, so it is after `from` exactly when it is after `from` rounded down.
    let first = next_multiple_after(from_exclusive.timestamp_millis(), p)?;
    let last = last_multiple_at_or_before(to_inclusive.timestamp_millis(), p)?;
    (first <= last).then_some((first, last))
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The intervals of `(from_exclusive, to_inclusive]` that `got` lacks, merged into contiguous
/// runs. `got` may be in any order and hold repeats, stamps outside the window and stamps off
/// the period's boundaries: those are ignored and counted.
pub fn missing_ranges(
    from_exclusive: DateTime<Utc>,
    to_inclusive: DateTime<Utc>,
    period: Duration,
    got: &[DateTime<Utc>],
) -> GapFinding {
    let p = period_ms(period);
    let mut finding = GapFinding::default();
    let mut seen: Vec<i64> = Vec::with_capacity(got.len());
    for &t in got {
        if t <= from_exclusive || t > to_inclusive {
            finding.out_of_window += 1;
        } else if p <= 0 || t.timestamp_subsec_nanos() % 1_000_000 != 0 {
            finding.misaligned += 1;
        } else {
            let ms = t.timestamp_millis();
            if ms.rem_euclid(p) != 0 {
                finding.misaligned += 1;
            } else {
                seen.push(ms);
            }
        }
    }
    seen.sort_unstable();
    let before = seen.len();
    seen.dedup();
    finding.duplicates = before - seen.len();

    let Some((first, last)) = window(from_exclusive, to_inclusive, p) else {
        return finding;
    };
    // The next interval end not yet accounted for; None once past the last.
    let mut cursor = Some(first);
    for &g in &seen {
        let Some(c) = cursor else { break };
        if g > c {
            finding.missing.push(Range {
                from: millis(c),
                to: millis(g - p),
            });
        }
        cursor = g.checked_add(p).filter(|&n| n <= last);
    }
    if let Some(c) = cursor {
        finding.missing.push(Range {
            from: millis(c),
            to: millis(last),
        });
    }
    finding
}

/// Which missing intervals a power failure explains, splitting each range into explained and
/// unexplained parts (in time order).
///
/// The rule: a meter records an interval's row at the interval's end, if it has supply then. So
/// an interval is explained by an outage `[from, to)` when it **ends during the outage**
/// (`from <= end < to`), or when the supply was off **for the whole interval** (`from <= start`
/// and `to >= end`: power came back exactly at the boundary, too late to capture). An interval
/// the supply was off for only part of, and which ended with supply, should have been recorded
/// (with less energy) and stays unexplained. Outages that touch or overlap are taken as one.
/// `missing` is as [`missing_ranges`] returns it (ranges of interval ends on the period's grid).
pub fn explain(
    missing: &[Range],
    power_off: &[(DateTime<Utc>, DateTime<Utc>)],
    period: Duration,
) -> Vec<(Range, Explanation)> {
    let p = period_ms(period);
    let spans = merge_spans(power_off);
    // For each outage, the interval ends it explains, as an inclusive run of ms.
    let explained: Vec<(i64, i64, Explanation)> = if p <= 0 {
        Vec::new()
    } else {
        spans
            .iter()
            .filter_map(|&(from, to)| {
                let s = from.timestamp_millis();
                let t = to.timestamp_millis();
                // Ends in [s, t): the first multiple >= s, the last multiple < t ...
                let first = next_multiple_after(s.checked_sub(1)?, p)?;
                let mut last = last_multiple_at_or_before(t.checked_sub(1)?, p)?;
                // ... and the end at t itself when the whole interval before it was off.
                if t.rem_euclid(p) == 0 && t.checked_sub(p).is_some_and(|start| s <= start) {
                    last = t;
                }
                (first <= last).then_some((first, last, Explanation::PowerOff { from, to }))
            })
            .collect()
    };

    let mut out = Vec::new();
    for range in missing {
        let (a, b) = (range.from.timestamp_millis(), range.to.timestamp_millis());
        let mut cursor = a;
        for &(e0, e1, why) in &explained {
            if cursor > b {
                break;
            }
            if e1 < cursor || e0 > b {
                continue;
            }
            let lo = e0.max(cursor);
            let hi = e1.min(b);
            if lo > cursor {
                out.push((
                    Range {
                        from: millis(cursor),
                        to: millis(lo - p),
                    },
                    Explanation::Unexplained,
                ));
            }
            out.push((
                Range {
                    from: millis(lo),
                    to: millis(hi),
                },
                why,
            ));
            cursor = hi.saturating_add(p);
        }
        if cursor <= b {
            out.push((
                Range {
                    from: millis(cursor),
                    to: millis(b),
                },
                Explanation::Unexplained,
            ));
        }
    }
    out
}

/// Outages sorted, with those that overlap or touch merged; empty or reversed spans dropped.
fn merge_spans(spans: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut v: Vec<_> = spans.iter().copied().filter(|(s, e)| s < e).collect();
    v.sort_unstable();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match merged.last_mut() {
            Some((_, last_end)) if s <= *last_end => *last_end = (*last_end).max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// The outages in one meter's events: each power failure (101) paired with the restoration
/// (102) that follows it. A failure with no restoration yet is an outage still going on at
/// `now`. A repeated failure inside an outage is ignored, and so is a restoration with no
/// failure before it (its outage began before the events read: read the power-failure log from
/// well before the gap so its start is there).
pub fn power_off_spans(
    events: &[MeterEvent],
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut power: Vec<(DateTime<Utc>, u16)> = events
        .iter()
        .filter(|e| matches!(e.code, POWER_FAILURE | POWER_RESTORED))
        .map(|e| (e.at, e.code))
        .collect();
    power.sort_unstable();
    let mut spans = Vec::new();
    let mut open: Option<DateTime<Utc>> = None;
    for (at, code) in power {
        match (code, open) {
            (POWER_FAILURE, None) => open = Some(at),
            (POWER_RESTORED, Some(start)) => {
                spans.push((start, at));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        spans.push((start, now.max(start)));
    }
    spans
}

/// A long re-read split into pieces of at most `max_intervals` intervals (at least one), so no
/// single selective-access read asks a meter for more than it serves comfortably.
pub fn clamp_reread(range: Range, max_intervals: u64, period: Duration) -> Vec<Range> {
    let p = period_ms(period);
    let (a, b) = (range.from.timestamp_millis(), range.to.timestamp_millis());
    if p <= 0 || b < a {
        return vec![range];
    }
    let max = i64::try_from(max_intervals.max(1)).unwrap_or(i64::MAX);
    let step = max.saturating_mul(p);
    let mut pieces = Vec::new();
    let mut from = a;
    loop {
        let to = from.saturating_add(step - p).min(b);
        pieces.push(Range {
            from: millis(from),
            to: millis(to),
        });
        match to.checked_add(p) {
            Some(next) if next <= b => from = next,
            _ => break,
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    const Q: Duration = Duration::from_secs(900);

    fn t(mins: i64) -> DateTime<Utc> {
        // 2026-03-10 00:00 UTC, a multiple of every period used here.
        DateTime::from_timestamp(1_773_100_800, 0).unwrap() + TimeDelta::minutes(mins)
    }

    fn r(a: i64, b: i64) -> Range {
        Range {
            from: t(a),
            to: t(b),
        }
    }

    #[test]
    fn expected_ends_are_aligned_and_half_open() {
        let v: Vec<_> = expected_interval_ends(t(0), t(60), Q).collect();
        assert_eq!(v, vec![t(15), t(30), t(45), t(60)]);
        let v: Vec<_> = expected_interval_ends(t(1), t(59), Q).collect();
        assert_eq!(v, vec![t(15), t(30), t(45)]);
        assert_eq!(expected_interval_ends(t(60), t(0), Q).count(), 0);
        assert_eq!(
            expected_interval_ends(t(0), t(60), Duration::ZERO).count(),
            0
        );
    }

    #[test]
    fn gaps_at_start_middle_and_end() {
        let got = [t(30), t(45), t(90), t(105)];
        let f = missing_ranges(t(0), t(150), Q, &got);
        assert_eq!(f.missing, vec![r(15, 15), r(60, 75), r(120, 150)]);
        assert_eq!(f.missing_intervals(Q), 1 + 2 + 3);
        assert_eq!((f.duplicates, f.out_of_window, f.misaligned), (0, 0, 0));
    }

    #[test]
    fn nothing_collected_is_one_range() {
        let f = missing_ranges(t(0), t(60), Q, &[]);
        assert_eq!(f.missing, vec![r(15, 60)]);
    }

    #[test]
    fn stray_stamps_are_counted_and_ignored() {
        let got = [t(60), t(15), t(15), t(0), t(75), t(22), t(30), t(45), t(60)];
        let f = missing_ranges(t(0), t(60), Q, &got);
        assert!(f.missing.is_empty(), "{:?}", f.missing);
        assert_eq!(f.duplicates, 2);
        assert_eq!(f.out_of_window, 2); // t(0) is the exclusive start; t(75) after the end
        assert_eq!(f.misaligned, 1);
    }

    #[test]
    fn power_off_explains_what_ends_during_it() {
        // Outage 10:07..11:20 (in minutes from t0: 607..680). Intervals ending at 615..675 end
        // during it; 690 ends with supply back and stays unexplained.
        let outage = (t(607), t(680));
        let missing = [r(600, 690)];
        let got = explain(&missing, &[outage], Q);
        assert_eq!(
            got,
            vec![
                (r(600, 600), Explanation::Unexplained),
                (
                    r(615, 675),
                    Explanation::PowerOff {
                        from: outage.0,
                        to: outage.1
                    }
                ),
                (r(690, 690), Explanation::Unexplained),
            ]
        );
    }

    #[test]
    fn restored_exactly_at_the_boundary() {
        let q = Duration::from_secs(1800);
        // Off 09:30..10:30: the interval ending 10:00 ended in it; the one ending 10:30 was off
        // from start to end, so is explained too.
        let got = explain(&[r(600, 630)], &[(t(570), t(630))], q);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, r(600, 630));
        // Off 09:45..10:30: the interval ending 10:30 (10:00..10:30) was off for all of it;
        // the one ending 10:00 ended in the outage.
        let got = explain(&[r(600, 630)], &[(t(585), t(630))], q);
        assert_eq!(got.len(), 1);
        // Off 10:10..10:30: the interval ending 10:30 had supply until 10:10 and the power is
        // back at 10:30: the meter should have recorded it.
        let got = explain(&[r(630, 630)], &[(t(610), t(630))], q);
        assert_eq!(got, vec![(r(630, 630), Explanation::Unexplained)]);
    }

    #[test]
    fn touching_outages_are_one() {
        let got = explain(&[r(15, 60)], &[(t(10), t(30)), (t(30), t(61))], Q);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].1,
            Explanation::PowerOff {
                from: t(10),
                to: t(61)
            }
        );
    }

    #[test]
    fn power_events_pair_up() {
        let m = model::MeterSerial::new("M1").unwrap();
        let ev = |mins: i64, code: u16| MeterEvent {
            meter: m.clone(),
            at: t(mins),
            code,
            category: model::EventCategory::Power,
            kind: model::EventKind::Occurrence,
            description: String::new(),
            quality: Vec::new(),
        };
        let events = [
            ev(5, POWER_RESTORED), // its failure is before the window: ignored
            ev(100, POWER_FAILURE),
            ev(110, POWER_FAILURE), // repeat inside the outage
            ev(160, POWER_RESTORED),
            ev(170, 201), // a magnet: not a power event
            ev(300, POWER_FAILURE),
        ];
        let spans = power_off_spans(&events, t(400));
        assert_eq!(spans, vec![(t(100), t(160)), (t(300), t(400))]);
    }

    #[test]
    fn long_rereads_are_split() {
        let pieces = clamp_reread(r(15, 150), 4, Q);
        assert_eq!(pieces, vec![r(15, 60), r(75, 120), r(135, 150)]);
        assert_eq!(clamp_reread(r(15, 15), 4, Q), vec![r(15, 15)]);
        assert_eq!(clamp_reread(r(15, 45), 0, Q).len(), 3);
        assert_eq!(clamp_reread(r(15, 60), 4, Q), vec![r(15, 60)]);
    }

    #[test]
    fn range_arithmetic() {
        assert_eq!(r(15, 60).intervals(Q), 4);
        assert_eq!(r(60, 15).intervals(Q), 0);
        let ends: Vec<_> = r(15, 45).ends(Q).collect();
        assert_eq!(ends, vec![t(15), t(30), t(45)]);
    }
}

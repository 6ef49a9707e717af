//! The head-end's planning functions as the runtime relies on them: a simulated day of a
//! 1000-meter timetable on tokio's paused clock, jitter spread, retry bounds, and the gap
//! arithmetic checked against brute force.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Timelike, Utc};
use hes::plan::gaps::{self, Explanation, Range};
use hes::plan::retry::{Next, RetryPolicy};
use hes::plan::schedule::{self, Due, JobKind, ScheduleConfig, Timetable};
use hes::plan::{WallClock, ist};
use model::MeterSerial;
use proptest::prelude::*;

fn ist_at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    ist().with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().to_utc()
}

fn serial(i: usize) -> MeterSerial {
    MeterSerial::new(format!("URJ1{i:07}")).unwrap()
}

/// One run the timetable handed out: which job, when it was due, when it ran.
#[derive(Debug, Clone, Copy)]
struct Run {
    kind: JobKind,
    due: DateTime<Utc>,
}

#[tokio::test(start_paused = true)]
async fn a_simulated_day_for_a_thousand_meters() {
    const METERS: usize = 1000;
    let config = ScheduleConfig::default();
    let serials: Vec<MeterSerial> = (0..METERS).map(serial).collect();
    // From just before midnight IST on the last day of February through the 1st of March, so
    // the billing date falls in the day too.
    let start = ist_at(2026, 2, 28, 23, 50);
    let end = start + TimeDelta::hours(24);
    let clock = WallClock::new(start);

    let mut table = Timetable::with_capacity(METERS * JobKind::ALL.len());
    for (i, s) in serials.iter().enumerate() {
        table.arm(i, s, &config, &JobKind::ALL, clock.now());
    }

    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); METERS];
    while let Some(next) = table.next_at() {
        if next >= end {
            break;
        }
        clock.sleep_until(next).await;
        let now = clock.now();
        let due = table.pop_due(now);
        assert!(!due.is_empty(), "woke at {now} with nothing due");
        for Due {
            meter_index,
            kind,
            at,
        } in due
        {
            assert!(
                at <= now && now - at < TimeDelta::seconds(1),
                "{kind} due {at} ran {now}"
            );
            runs[meter_index].push(Run { kind, due: at });
            let again = schedule::next_run(kind, &config, &serials[meter_index], at);
            table.push(Due {
                meter_index,
                kind,
                at: again,
            });
        }
    }
    assert!(clock.now() < end);

    let spread = TimeDelta::from_std(config.spread).unwrap();
    let of = |m: usize, k: JobKind| -> Vec<DateTime<Utc>> {
        runs[m]
            .iter()
            .filter(|r| r.kind == k)
            .map(|r| r.due)
            .collect()
    };
    for (m, s) in serials.iter().enumerate() {
        let j = TimeDelta::from_std(schedule::jitter(s, config.spread)).unwrap();
        assert!(j < spread);

        let daily = of(m, JobKind::Daily);
        assert_eq!(daily.len(), 1, "meter {m}: {daily:?}");
        let after_midnight = ist_at(2026, 3, 1, 0, 30);
        assert!(daily[0] >= after_midnight && daily[0] < after_midnight + spread);
        assert_eq!(daily[0], after_midnight + j);

        let blocks = of(m, JobKind::BlockLoad);
        assert_eq!(blocks.len(), 6, "meter {m}: {blocks:?}");
        assert_eq!(blocks[0], ist_at(2026, 3, 1, 0, 5) + j);
        for pair in blocks.windows(2) {
            assert_eq!(pair[1] - pair[0], TimeDelta::hours(4));
        }

        assert_eq!(of(m, JobKind::Events), vec![ist_at(2026, 3, 1, 0, 0) + j]);
        assert_eq!(of(m, JobKind::Billing), vec![ist_at(2026, 3, 1, 1, 0) + j]);
        assert_eq!(
            of(m, JobKind::GapReread),
            vec![ist_at(2026, 3, 1, 3, 0) + j]
        );
    }

    // The spread works: per kind, no minute holds more than 3× the mean of the minutes its
    // windows cover.
    for kind in JobKind::ALL {
        let mut per_minute: BTreeMap<i64, usize> = BTreeMap::new();
        let mut total = 0usize;
        for r in runs.iter().flatten().filter(|r| r.kind == kind) {
            *per_minute.entry(r.due.timestamp() / 60).or_default() += 1;
            total += 1;
        }
        let windows = total / METERS;
        let mean = total as f64 / (windows as f64 * 60.0);
        let busiest = per_minute.values().copied().max().unwrap_or(0);
        assert!(
            (busiest as f64) <= 3.0 * mean,
            "{kind}: busiest minute {busiest}, mean {mean:.1}"
        );
        // And the window is used end to end, not bunched at its start.
        let minutes_used = per_minute.len();
        assert!(
            minutes_used >= windows * 55,
            "{kind}: only {minutes_used} minutes used"
        );
    }
}

#[test]
fn jitter_is_uniform_over_ten_thousand_serials() {
    let spread = Duration::from_secs(3600);
    let mut buckets = [0usize; 10];
    for i in 0..10_000 {
        let j = schedule::jitter(&serial(i), spread);
        assert!(j < spread);
        let b = (j.as_millis() * 10 / spread.as_millis()) as usize;
        buckets[b] += 1;
    }
    for (b, &n) in buckets.iter().enumerate() {
        assert!(
            (800..=1200).contains(&n),
            "bucket {b}: {n} of 10000 ({buckets:?})"
        );
    }
}

#[test]
fn block_load_runs_lie_on_four_hour_boundaries_in_ist() {
    let config = ScheduleConfig::default();
    let s = serial(7);
    let j = TimeDelta::from_std(schedule::jitter(&s, config.spread)).unwrap();
    let mut t = ist_at(2026, 12, 30, 21, 0);
    let mut seen = Vec::new();
    for _ in 0..8 {
        t = schedule::next_run(JobKind::BlockLoad, &config, &s, t);
        let boundary = (t - j - TimeDelta::minutes(5)).with_timezone(&ist());
        seen.push((boundary.hour(), boundary.minute()));
    }
    // Across the year end: 00, 04, …, 20 IST, then 00 again.
    assert_eq!(
        seen,
        vec![
            (0, 0),
            (4, 0),
            (8, 0),
            (12, 0),
            (16, 0),
            (20, 0),
            (0, 0),
            (4, 0)
        ]
    );
}

proptest! {
    /// The first run after a time: strictly after it, and no run is skipped.
    #[test]
    fn next_run_is_the_first_after(
        secs in 1_700_000_000i64..1_900_000_000,
        millis in 0i64..1000,
        meter in 0usize..100_000,
        kind_index in 0usize..5,
    ) {
        let config = ScheduleConfig::default();
        let kind = JobKind::ALL[kind_index];
        let s = serial(meter);
        let after = DateTime::from_timestamp(secs, 0).unwrap() + TimeDelta::milliseconds(millis);
        let next = schedule::next_run(kind, &config, &s, after);
        prop_assert!(next > after);
        // Nothing in between: asking from just before `next` still answers `next`.
        prop_assert_eq!(schedule::next_run(kind, &config, &s, next - TimeDelta::milliseconds(1)), next);
        let longest = match kind {
            JobKind::BlockLoad => TimeDelta::hours(4),
            JobKind::Billing => TimeDelta::days(31),
            _ => TimeDelta::hours(24),
        };
        prop_assert!(next - after <= longest);
    }

    /// Retries never start past the window and never exceed the attempts allowed.
    #[test]
    fn retries_are_bounded(
        attempts in 0u32..12,
        backoff_s in 0u64..3600,
        factor in 0u32..5,
        max_backoff_s in 0u64..7200,
        window_s in 0u64..(6 * 3600),
        session_s in proptest::collection::vec(0i64..900, 12),
        meter in 0usize..1000,
    ) {
        let policy = RetryPolicy {
            attempts,
            backoff: Duration::from_secs(backoff_s),
            factor,
            max_backoff: Duration::from_secs(max_backoff_s),
            window: Duration::from_secs(window_s),
        };
        let s = serial(meter);
        let first = ist_at(2026, 3, 1, 0, 30);
        let deadline = first + TimeDelta::seconds(window_s as i64);
        let mut started = first;
        let mut attempt = 1u32;
        loop {
            let failed_at = started + TimeDelta::seconds(session_s[(attempt as usize - 1) % 12]);
            match policy.next_after_failure(attempt, first, failed_at, &s) {
                Next::RetryAt(at) => {
                    prop_assert!(at >= failed_at);
                    prop_assert!(at <= deadline, "retry at {} past {}", at, deadline);
                    prop_assert!(at - failed_at <= TimeDelta::seconds(max_backoff_s as i64));
                    started = at;
                    attempt += 1;
                    prop_assert!(attempt <= attempts.max(1));
                }
                Next::GiveUp(_) => break,
            }
        }
    }

    /// The missing ranges and the valid collected stamps together are exactly the expected
    /// intervals, with no overlap, and the ranges are merged runs.
    #[test]
    fn missing_and_got_make_up_the_expected(
        start_q in 0i64..20_000,
        start_frac_s in 0i64..900,
        len_s in 0i64..(3 * 86_400),
        period_i in 0usize..4,
        keep in proptest::collection::vec(any::<bool>(), 0..300),
        dups in proptest::collection::vec(0usize..300, 0..10),
        strays in proptest::collection::vec(-100_000i64..400_000, 0..10),
    ) {
        let period = Duration::from_secs([300, 900, 1800, 3600][period_i]);
        let p = TimeDelta::from_std(period).unwrap();
        let base = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let from = base + TimeDelta::minutes(15 * start_q) + TimeDelta::seconds(start_frac_s);
        let to = from + TimeDelta::seconds(len_s);
        let expected: Vec<DateTime<Utc>> = gaps::expected_interval_ends(from, to, period).collect();
        for e in &expected {
            prop_assert!(*e > from && *e <= to);
            prop_assert_eq!(e.timestamp() % period.as_secs() as i64, 0);
        }
        let mut got: Vec<DateTime<Utc>> = expected
            .iter()
            .zip(keep.iter().chain(std::iter::repeat(&true)))
            .filter(|(_, k)| **k)
            .map(|(e, _)| *e)
            .collect();
        for &d in &dups {
            if let Some(e) = got.get(d).copied() {
                got.push(e);
            }
        }
        for &s in &strays {
            got.push(from + TimeDelta::seconds(s));
        }
        got.reverse();

        let finding = gaps::missing_ranges(from, to, period, &got);
        let valid: BTreeSet<DateTime<Utc>> = got
            .iter()
            .copied()
            .filter(|g| *g > from && *g <= to && g.timestamp() % period.as_secs() as i64 == 0)
            .collect();
        let mut covered: BTreeSet<DateTime<Utc>> = valid.clone();
        let mut total_missing = 0;
        for r in &finding.missing {
            for e in r.ends(period) {
                prop_assert!(!valid.contains(&e), "{} both missing and collected", e);
                prop_assert!(covered.insert(e), "{} missing twice", e);
                total_missing += 1;
            }
        }
        prop_assert_eq!(covered.into_iter().collect::<Vec<_>>(), expected.clone());
        prop_assert_eq!(finding.missing_intervals(period), total_missing);
        for pair in finding.missing.windows(2) {
            // Merged: a collected interval separates any two ranges.
            prop_assert!(pair[1].from > pair[0].to + p);
        }
        let in_window = got.iter().filter(|g| **g > from && **g <= to).count();
        prop_assert_eq!(finding.out_of_window, got.len() - in_window);
        prop_assert_eq!(finding.misaligned + finding.duplicates + valid.len(), in_window);
    }

    /// `explain` splits the ranges without losing or inventing an interval, and applies the
    /// documented rule to each.
    #[test]
    fn explain_partitions_by_the_rule(
        ranges in proptest::collection::vec((0i64..200, 0i64..20), 0..6),
        outages in proptest::collection::vec((0i64..3000 * 60, 0i64..300 * 60), 0..6),
    ) {
        let period = Duration::from_secs(900);
        let p = TimeDelta::minutes(15);
        let base = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        // Disjoint, sorted ranges of interval ends.
        let mut missing = Vec::new();
        let mut next_free = 0;
        for (gap, len) in ranges {
            let a = next_free + gap + 1;
            missing.push(Range { from: base + p * a as i32, to: base + p * (a + len) as i32 });
            next_free = a + len + 1;
        }
        let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = outages
            .iter()
            .map(|&(s, l)| (base + TimeDelta::seconds(s), base + TimeDelta::seconds(s + l)))
            .collect();
        let explained = gaps::explain(&missing, &spans, period);

        let all_missing: Vec<DateTime<Utc>> = missing.iter().flat_map(|r| r.ends(period)).collect();
        let all_pieces: Vec<DateTime<Utc>> = explained.iter().flat_map(|(r, _)| r.ends(period)).collect();
        prop_assert_eq!(&all_pieces, &all_missing);

        // Outages that touch or overlap count as one (a meter off across both was off).
        let mut sorted = spans.clone();
        sorted.sort();
        let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for (s, t) in sorted.into_iter().filter(|(s, t)| s < t) {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(t),
                _ => merged.push((s, t)),
            }
        }
        // The rule, by brute force: the interval ends during an outage, or the supply was off
        // from its start to its end.
        let off = |s: DateTime<Utc>, t: DateTime<Utc>, end: DateTime<Utc>| {
            (s <= end && end < t) || (s <= end - p && t >= end)
        };
        for (r, why) in &explained {
            for e in r.ends(period) {
                match *why {
                    Explanation::PowerOff { from, to } => {
                        prop_assert!(merged.contains(&(from, to)));
                        prop_assert!(off(from, to, e), "{} explained by {}..{}", e, from, to);
                    }
                    Explanation::Unexplained => {
                        prop_assert!(
                            !merged.iter().any(|&(s, t)| off(s, t, e)),
                            "{} left unexplained",
                            e
                        );
                    }
                }
            }
        }
    }

    /// Splitting a re-read keeps every interval, in order, in pieces of at most the limit.
    #[test]
    fn clamped_rereads_cover_the_range(len in 0i64..500, max in 0u64..50) {
        let period = Duration::from_secs(900);
        let base = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let range = Range { from: base, to: base + TimeDelta::minutes(15 * len) };
        let pieces = gaps::clamp_reread(range, max, period);
        let whole: Vec<_> = range.ends(period).collect();
        let joined: Vec<_> = pieces.iter().flat_map(|r| r.ends(period)).collect();
        prop_assert_eq!(joined, whole);
        for piece in &pieces {
            prop_assert!(piece.intervals(period) >= 1);
            prop_assert!(piece.intervals(period) <= max.max(1));
        }
    }
}

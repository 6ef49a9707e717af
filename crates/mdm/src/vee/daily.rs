//! The register rules: cumulative registers that go backwards (or roll over), and the sum check
//! of the intervals between two snapshots against the registers' advance.

use model::{DailyReading, IntervalReading, Quality};

use super::{Channel, Context, Finding, Rule, Severity, VeeConfig, by_end};
use crate::calendar::{Period, at, ist};

/// Checks each pair of consecutive register snapshots (sorted by capture time, after the
/// history's last one if it is earlier), on every energy both carry:
///
/// - **register backwards**: a register that went down is an Error (suspect) on the later
///   snapshot (`from` = `to` = its capture time), unless rolling over at
///   `register_rollover_wh` explains it with an advance under `rollover_max_fraction` of it:
///   then an Info finding, and the wrapped advance is the one sum-checked.
/// - **sum check**: when both snapshots sit on interval ends and `intervals` holds every
///   interval between them (after the first, up to and including the second, none estimated),
///   their sum must match the advance within the larger of `sum_check_tolerance_rel` of it and
///   `sum_check_tolerance_wh`; if not, an Error (suspect) over those intervals. With midnight
///   snapshots that is the local day's intervals against the day's register advance.
///
/// `intervals` may be in any order; duplicates count once.
pub fn validate_daily(
    snapshots: &[DailyReading],
    intervals: &[IntervalReading],
    ctx: &Context,
    cfg: &VeeConfig,
) -> Vec<Finding> {
    let mut sorted: Vec<&DailyReading> = snapshots.iter().collect();
    sorted.sort_by_key(|s| s.captured_at);
    let earlier = ctx.history.last_register().filter(|kept| {
        sorted
            .first()
            .is_some_and(|s| kept.captured_at < s.captured_at)
    });
    let chain: Vec<&DailyReading> = earlier.into_iter().chain(sorted).collect();
    let rows = by_end(intervals);
    let period = Period::new(ctx.period_s);

    let mut findings = Vec::new();
    for pair in chain.windows(2) {
        let (prev, cur) = (pair[0], pair[1]);
        if prev.captured_at == cur.captured_at {
            continue;
        }
        for channel in Channel::ALL {
            let (Some(before), Some(after)) = (channel.of_register(prev), channel.of_register(cur))
            else {
                continue;
            };
            let advance = match register_step(before, after, cfg) {
                RegisterStep::Forward(advance) => advance,
                RegisterStep::Rollover(advance) => {
                    findings.push(Finding::new(
                        Rule::RegisterBackwards,
                        Severity::Info,
                        (cur.captured_at, cur.captured_at),
                        false,
                        format!(
                            "{} register rolled over at {} between {} ({before}) and {} ({after}), \
                             advancing {advance}",
                            channel.name(),
                            cfg.register_rollover_wh,
                            ist(prev.captured_at),
                            ist(cur.captured_at)
                        ),
                    ));
                    advance
                }
                RegisterStep::Backwards => {
                    findings.push(Finding::new(
                        Rule::RegisterBackwards,
                        Severity::Error,
                        (cur.captured_at, cur.captured_at),
                        true,
                        format!(
                            "{} register went back from {before} at {} to {after} at {}",
                            channel.name(),
                            ist(prev.captured_at),
                            ist(cur.captured_at)
                        ),
                    ));
                    continue;
                }
            };
            let between = Between {
                prev,
                cur,
                channel,
                advance,
            };
            findings.extend(period.and_then(|p| sum_check(&between, &rows, p, cfg)));
        }
    }
    findings
}

/// How a register moved from one snapshot to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegisterStep {
    Forward(i64),
    /// Down, but wrapping at the rollover value explains it with this small advance.
    Rollover(i64),
    Backwards,
}

fn register_step(before: i64, after: i64, cfg: &VeeConfig) -> RegisterStep {
    if after >= before {
        return RegisterStep::Forward(after.saturating_sub(before));
    }
    let modulus = cfg.register_rollover_wh;
    let in_range = |v: i64| (0..modulus).contains(&v);
    if in_range(before) && in_range(after) {
        let advance = modulus - before + after; // ≤ modulus: both are in 0..modulus
        if advance as f64 <= cfg.rollover_max_fraction * modulus as f64 {
            return RegisterStep::Rollover(advance);
        }
    }
    RegisterStep::Backwards
}

/// One energy between two snapshots.
struct Between<'a> {
    prev: &'a DailyReading,
    cur: &'a DailyReading,
    channel: Channel,
    advance: i64,
}

fn sum_check(
    between: &Between,
    rows: &[&IntervalReading],
    period: Period,
    cfg: &VeeConfig,
) -> Option<Finding> {
    let (from_at, to_at) = (between.prev.captured_at, between.cur.captured_at);
    if !period.is_aligned(from_at) || !period.is_aligned(to_at) {
        return None;
    }
    let (first, last) = (from_at.timestamp() + period.secs(), to_at.timestamp());
    let start = rows.partition_point(|r| r.interval_end <= from_at);
    let stop = rows.partition_point(|r| r.interval_end <= to_at);
    let mut count = 0;
    let mut sum = 0i128;
    let mut previous_end = None;
    for row in rows.get(start..stop)? {
        if previous_end == Some(row.interval_end) {
            continue;
        }
        previous_end = Some(row.interval_end);
        if !period.is_aligned(row.interval_end) || row.quality.contains(&Quality::Estimated) {
            return None;
        }
        count += 1;
        sum += i128::from(between.channel.of_interval(row)?);
    }
    if count != period.count(first, last) {
        return None;
    }
    let advance = i128::from(between.advance);
    let off = sum - advance;
    let tolerance =
        (cfg.sum_check_tolerance_rel * advance as f64).max(cfg.sum_check_tolerance_wh as f64);
    if off.unsigned_abs() as f64 <= tolerance {
        return None;
    }
    let (from, to) = (at(first)?, to_at);
    Some(Finding::new(
        Rule::SumCheck,
        Severity::Error,
        (from, to),
        true,
        format!(
            "{}: the {count} intervals from {} to {} add up to {sum} but the register advanced \
             {advance} (off by {off:+}, tolerance {tolerance:.0})",
            between.channel.name(),
            ist(from),
            ist(to)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vee::History;
    use crate::vee::testing::{flat_day, series, snapshot, t};

    fn check(
        snapshots: &[DailyReading],
        intervals: &[IntervalReading],
        history: &History,
        cfg: &VeeConfig,
    ) -> Vec<Finding> {
        let ctx = Context::new(900, t("2024-05-12 12:00"), history);
        validate_daily(snapshots, intervals, &ctx, cfg)
    }

    /// A day (10 May 2024) of 96 intervals summing to 5 010 Wh: 95 × 52 + 70.
    fn day_of_5010_wh() -> Vec<IntervalReading> {
        let mut day = flat_day("2024-05-10", 52);
        day[95].import_wh = 70;
        day[95].import_vah = 70;
        day
    }

    #[test]
    fn a_day_within_the_tolerance_passes() {
        let cfg = VeeConfig {
            sum_check_tolerance_wh: 0,
            ..VeeConfig::default()
        };
        let snapshots = [
            snapshot(t("2024-05-10 00:00"), 100_000, 120_000),
            snapshot(t("2024-05-11 00:00"), 105_000, 125_000),
        ];
        // 5 010 against 5 000: 10 off, 1 % allows 50.
        assert_eq!(
            check(&snapshots, &day_of_5010_wh(), &History::new(900), &cfg),
            vec![]
        );
    }

    #[test]
    fn a_day_beyond_the_tolerance_fails_on_each_energy() {
        let cfg = VeeConfig {
            sum_check_tolerance_rel: 0.001,
            sum_check_tolerance_wh: 5,
            ..VeeConfig::default()
        };
        let snapshots = [
            snapshot(t("2024-05-10 00:00"), 100_000, 120_000),
            snapshot(t("2024-05-11 00:00"), 105_000, 125_000),
        ];
        let f = check(&snapshots, &day_of_5010_wh(), &History::new(900), &cfg);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].rule, f[0].severity, f[0].suspect),
            (Rule::SumCheck, Severity::Error, true)
        );
        assert_eq!(
            (f[0].from, f[0].to),
            (t("2024-05-10 00:15"), t("2024-05-11 00:00"))
        );
        assert_eq!(
            f[0].detail,
            "import Wh: the 96 intervals from 2024-05-10 00:15:00 IST to 2024-05-11 00:00:00 IST \
             add up to 5010 but the register advanced 5000 (off by +10, tolerance 5)"
        );
        assert!(f[1].detail.starts_with("import VAh"));
    }

    #[test]
    fn an_incomplete_or_estimated_day_is_not_sum_checked() {
        let cfg = VeeConfig {
            sum_check_tolerance_wh: 0,
            sum_check_tolerance_rel: 0.0,
            ..VeeConfig::default()
        };
        let snapshots = [
            snapshot(t("2024-05-10 00:00"), 0, 0),
            snapshot(t("2024-05-11 00:00"), 1, 1),
        ];
        let day = day_of_5010_wh();
        assert_eq!(
            check(&snapshots, &day[1..], &History::new(900), &cfg),
            vec![]
        );
        let mut estimated = day.clone();
        estimated[3].quality.push(Quality::Estimated);
        assert_eq!(
            check(&snapshots, &estimated, &History::new(900), &cfg),
            vec![]
        );
        // Duplicated rows count once.
        let doubled = [day.clone(), day].concat();
        assert_eq!(
            check(&snapshots, &doubled, &History::new(900), &cfg).len(),
            2
        );
    }

    #[test]
    fn a_register_going_back_is_an_error() {
        let snapshots = [
            snapshot(t("2024-05-11 00:00"), 4_000, 6_000),
            snapshot(t("2024-05-10 00:00"), 5_000, 6_000),
        ];
        let f = check(&snapshots, &[], &History::new(900), &VeeConfig::default());
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].rule, f[0].severity, f[0].suspect),
            (Rule::RegisterBackwards, Severity::Error, true)
        );
        assert_eq!(
            (f[0].from, f[0].to),
            (t("2024-05-11 00:00"), t("2024-05-11 00:00"))
        );
        assert_eq!(
            f[0].detail,
            "import Wh register went back from 5000 at 2024-05-10 00:00:00 IST to 4000 at \
             2024-05-11 00:00:00 IST"
        );
    }

    #[test]
    fn the_history_supplies_the_previous_snapshot() {
        let mut history = History::new(900);
        history.absorb_daily(&[snapshot(t("2024-05-10 00:00"), 5_000, 6_000)]);
        let f = check(
            &[snapshot(t("2024-05-11 00:00"), 4_999, 6_000)],
            &[],
            &history,
            &VeeConfig::default(),
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, Rule::RegisterBackwards);
    }

    #[test]
    fn a_rollover_at_ten_to_the_nine_is_info_and_sum_checked() {
        let snapshots = [
            snapshot(t("2024-05-10 00:00"), 999_998_000, 10),
            snapshot(t("2024-05-11 00:00"), 3_000, 5_010),
        ];
        let day = day_of_5010_wh();
        let f = check(&snapshots, &day, &History::new(900), &VeeConfig::default());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].rule, f[0].severity, f[0].suspect),
            (Rule::RegisterBackwards, Severity::Info, false)
        );
        assert_eq!(
            f[0].detail,
            "import Wh register rolled over at 1000000000 between 2024-05-10 00:00:00 IST \
             (999998000) and 2024-05-11 00:00:00 IST (3000), advancing 5000"
        );
    }

    #[test]
    fn register_steps() {
        let cfg = VeeConfig::default();
        assert_eq!(register_step(5, 5, &cfg), RegisterStep::Forward(0));
        assert_eq!(
            register_step(999_999_999, 0, &cfg),
            RegisterStep::Rollover(1)
        );
        // Wrapping would mean 990 MWh in a day: backwards.
        assert_eq!(register_step(10_000_000, 0, &cfg), RegisterStep::Backwards);
        assert_eq!(
            register_step(1_500_000_000, 3, &cfg),
            RegisterStep::Backwards
        );
        assert_eq!(
            register_step(i64::MIN, i64::MAX, &cfg),
            RegisterStep::Forward(i64::MAX)
        );
        assert_eq!(
            register_step(i64::MAX, i64::MIN, &cfg),
            RegisterStep::Backwards
        );
    }

    #[test]
    fn snapshots_off_the_grid_are_not_sum_checked() {
        let cfg = VeeConfig {
            sum_check_tolerance_wh: 0,
            sum_check_tolerance_rel: 0.0,
            ..VeeConfig::default()
        };
        let snapshots = [
            snapshot(t("2024-05-10 00:01"), 0, 0),
            snapshot(t("2024-05-11 00:00"), 1, 1),
        ];
        let rows = series(t("2024-05-10 00:15"), &[1; 96]);
        assert_eq!(check(&snapshots, &rows, &History::new(900), &cfg), vec![]);
    }
}

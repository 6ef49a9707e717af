//! The interval rules: [`validate_intervals`], and the rules that judge one interval at a time
//! (negative, future, misaligned, voltage, spike, clock). Rules over the whole series are in
//! [`series`].

use chrono::{DateTime, Utc};
use model::{IntervalReading, Quality};

use super::{Channel, Context, Finding, Rule, Severity, VeeConfig, series};
use crate::calendar::{Period, ist, runs};

/// Runs every interval rule over one meter's batch (in any order, duplicates allowed).
///
/// | rule | finding | suspect |
/// |---|---|---|
/// | missing interval | Warning per run of expected, unexplained, unreceived ends | no |
/// | duplicate | Info per run of ends received again with the same energies | no |
/// | overlap | Error per end received again with other energies | yes |
/// | negative | Error per interval with a negative energy | yes |
/// | spike | Error per interval over the spike threshold | yes |
/// | high/low | Warning per complete local day far off its like days | no |
/// | zero with voltage | Warning per long run of zero energy with the supply on | no |
/// | future timestamp | Error per interval ending after `now` + tolerance | yes |
/// | misaligned | Error per interval end off the grid | yes |
/// | clock drift | Error per run flagged `ClockInvalid`; Warning per run flagged `ClockDoubtful`; Warning over the batch for a reported drift over the limit | yes, no, yes |
/// | voltage out of range | Warning per interval | no |
///
/// Without history (a new meter) the spike and high/low rules stay silent; rules that need the
/// period's grid are skipped if `ctx.period_s` is not whole minutes dividing a day.
pub fn validate_intervals(
    batch: &[IntervalReading],
    ctx: &Context,
    cfg: &VeeConfig,
) -> Vec<Finding> {
    let mut findings: Vec<Finding> = batch
        .iter()
        .flat_map(|row| [negative(row), future(row, ctx, cfg), voltage(row, cfg)])
        .flatten()
        .collect();
    if let Some(period) = Period::new(ctx.period_s) {
        findings.extend(batch.iter().filter_map(|row| misaligned(row, period)));
        findings.extend(spikes(batch, ctx, period, cfg));
        findings.extend(clock(batch, ctx, period, cfg));
        findings.extend(series::missing(batch, ctx, period));
        findings.extend(series::duplicates(batch, ctx.already_stored, period));
        findings.extend(series::zero_with_voltage(batch, period, cfg));
        findings.extend(series::high_low(batch, ctx.history, period, cfg));
    }
    findings
}

/// A finding's range for one interval.
fn single(row: &IntervalReading) -> (DateTime<Utc>, DateTime<Utc>) {
    (row.interval_end, row.interval_end)
}

fn negative(row: &IntervalReading) -> Option<Finding> {
    let negatives: Vec<String> = Channel::ALL
        .into_iter()
        .filter_map(|c| Some((c, c.of_interval(row).filter(|&v| v < 0)?)))
        .map(|(c, v)| format!("{} {v}", c.name()))
        .collect();
    (!negatives.is_empty()).then(|| {
        Finding::new(
            Rule::Negative,
            Severity::Error,
            single(row),
            true,
            format!(
                "interval ending {} has negative energy: {}",
                ist(row.interval_end),
                negatives.join(", ")
            ),
        )
    })
}

fn future(row: &IntervalReading, ctx: &Context, cfg: &VeeConfig) -> Option<Finding> {
    let latest = ctx.now.timestamp().saturating_add(cfg.future_tolerance_s);
    (row.interval_end.timestamp() > latest).then(|| {
        Finding::new(
            Rule::FutureTimestamp,
            Severity::Error,
            single(row),
            true,
            format!(
                "interval ends {} but it is only {} (tolerance {} s)",
                ist(row.interval_end),
                ist(ctx.now),
                cfg.future_tolerance_s
            ),
        )
    })
}

fn misaligned(row: &IntervalReading, period: Period) -> Option<Finding> {
    (!period.is_aligned(row.interval_end)).then(|| {
        Finding::new(
            Rule::Misaligned,
            Severity::Error,
            single(row),
            true,
            format!(
                "interval end {} is not a multiple of the {} s capture period",
                ist(row.interval_end),
                period.secs()
            ),
        )
    })
}

/// The average voltages of an interval, each with its phase name ("" for a single-phase meter).
pub(super) fn voltages(row: &IntervalReading) -> impl Iterator<Item = (&'static str, f64)> {
    let single = row.avg_voltage_v.map(|v| ("", v));
    let phases = row
        .avg_phase_voltage_v
        .into_iter()
        .flat_map(|[r, y, b]| [("R ", r), ("Y ", y), ("B ", b)]);
    single.into_iter().chain(phases)
}

/// A voltage outside the range, except under-voltage that an outage explains: a partial
/// interval, or 0 V with no energy at all (the supply was off the whole interval).
fn voltage(row: &IntervalReading, cfg: &VeeConfig) -> Option<Finding> {
    let partial = row.quality.contains(&Quality::PartialInterval);
    let no_energy = row.import_wh == 0 && row.export_wh.unwrap_or(0) == 0;
    let range = cfg.voltage_min_v..=cfg.voltage_max_v;
    let outside: Vec<String> = voltages(row)
        .filter(|&(_, v)| !range.contains(&v))
        .filter(|&(_, v)| !(v < cfg.voltage_min_v && (partial || (v == 0.0 && no_energy))))
        .map(|(phase, v)| format!("{phase}{v:.1} V"))
        .collect();
    (!outside.is_empty()).then(|| {
        Finding::new(
            Rule::VoltageOutOfRange,
            Severity::Warning,
            single(row),
            false,
            format!(
                "interval ending {} averaged {}, outside {:.0}–{:.0} V",
                ist(row.interval_end),
                outside.join(", "),
                cfg.voltage_min_v,
                cfg.voltage_max_v
            ),
        )
    })
}

/// Intervals whose import exceeds both `spike_factor` × the recent typical interval and the
/// floor power over one period. Needs history of the same period.
fn spikes(
    batch: &[IntervalReading],
    ctx: &Context,
    period: Period,
    cfg: &VeeConfig,
) -> Vec<Finding> {
    if ctx.history.period_s() != period.secs() {
        return Vec::new();
    }
    let Some(typical) = ctx.history.recent_typical_wh(cfg.spike_recent_days) else {
        return Vec::new();
    };
    let floor_wh = i128::from(cfg.spike_floor_w) * i128::from(period.secs()) / 3600;
    let threshold = (cfg.spike_factor * typical as f64).max(floor_wh as f64);
    batch
        .iter()
        .filter(|row| row.import_wh as f64 > threshold)
        .map(|row| {
            Finding::new(
                Rule::Spike,
                Severity::Error,
                single(row),
                true,
                format!(
                    "interval ending {} imported {} Wh, over the spike threshold {threshold:.0} Wh \
                     (the greater of {} × the recent typical {typical} Wh and {floor_wh} Wh)",
                    ist(row.interval_end),
                    row.import_wh,
                    cfg.spike_factor
                ),
            )
        })
        .collect()
}

/// Runs of intervals the meter flagged for its clock, and a reported drift over the limit.
fn clock(
    batch: &[IntervalReading],
    ctx: &Context,
    period: Period,
    cfg: &VeeConfig,
) -> Vec<Finding> {
    let flagged = |flag: Quality, not: Option<Quality>| {
        let ends = batch
            .iter()
            .filter(|r| r.quality.contains(&flag) && not.is_none_or(|n| !r.quality.contains(&n)))
            .map(|r| r.interval_end)
            .collect();
        runs(ends, period)
    };
    let invalid = flagged(Quality::ClockInvalid, None).into_iter().map(|run| {
        Finding::new(
            Rule::ClockDrift,
            Severity::Error,
            (run.from, run.to),
            true,
            format!(
                "{} intervals from {} to {} were captured with the meter clock marked invalid",
                run.count,
                ist(run.from),
                ist(run.to)
            ),
        )
    });
    let doubtful = flagged(Quality::ClockDoubtful, Some(Quality::ClockInvalid))
        .into_iter()
        .map(|run| {
            Finding::new(
                Rule::ClockDrift,
                Severity::Warning,
                (run.from, run.to),
                false,
                format!(
                    "{} intervals from {} to {} were captured with the meter clock marked doubtful",
                    run.count,
                    ist(run.from),
                    ist(run.to)
                ),
            )
        });
    let first = batch.iter().map(|r| r.interval_end).min();
    let last = batch.iter().map(|r| r.interval_end).max();
    let limit = cfg.max_clock_drift_s.unsigned_abs();
    let drift = ctx
        .clock_drift_s
        .filter(|d| d.unsigned_abs() > limit)
        .zip(first.zip(last))
        .map(|(drift, range)| {
            Finding::new(
                Rule::ClockDrift,
                Severity::Warning,
                range,
                true,
                format!("the meter clock was {drift:+} s off, more than the {limit} s allowed"),
            )
        });
    invalid.chain(doubtful).chain(drift).collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::vee::History;
    use crate::vee::testing::{flat_day, interval, series, t};

    fn run(batch: &[IntervalReading], history: &History) -> Vec<Finding> {
        let ctx = Context::new(900, t("2024-05-10 12:00"), history);
        validate_intervals(batch, &ctx, &VeeConfig::default())
    }

    fn rules(findings: &[Finding]) -> Vec<Rule> {
        findings.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn a_clean_series_has_no_findings() {
        let history = History::new(900);
        assert_eq!(
            run(
                &series(t("2024-05-10 10:15"), &[100, 120, 90, 110]),
                &history
            ),
            vec![]
        );
    }

    #[test]
    fn negative_energy_is_an_error() {
        let mut row = interval(t("2024-05-10 10:15"), -5);
        row.export_wh = Some(-1);
        let f = run(&[row], &History::new(900));
        assert_eq!(rules(&f), vec![Rule::Negative]);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].suspect);
        assert_eq!(
            f[0].detail,
            "interval ending 2024-05-10 10:15:00 IST has negative energy: import Wh -5, \
             import VAh -5, export Wh -1"
        );
    }

    #[test]
    fn a_spike_over_ten_times_the_typical_interval() {
        let mut history = History::new(900);
        for day in ["2024-05-07", "2024-05-08", "2024-05-09"] {
            history.absorb(&flat_day(day, 300)); // typical 300 Wh: threshold 3000 Wh
        }
        let batch = series(t("2024-05-10 10:15"), &[310, 2990, 3010, 280]);
        let f = run(&batch, &history);
        assert_eq!(rules(&f), vec![Rule::Spike]);
        assert_eq!(
            (f[0].from, f[0].to),
            (t("2024-05-10 10:45"), t("2024-05-10 10:45"))
        );
        assert_eq!(
            f[0].detail,
            "interval ending 2024-05-10 10:45:00 IST imported 3010 Wh, over the spike threshold \
             3000 Wh (the greater of 10 × the recent typical 300 Wh and 2500 Wh)"
        );
    }

    #[test]
    fn a_spike_must_also_clear_the_floor() {
        let mut history = History::new(900);
        history.absorb(&flat_day("2024-05-09", 10)); // 10 × 10 Wh is below 2500 Wh (10 kW)
        let f = run(
            &series(t("2024-05-10 10:15"), &[2000, 2500, 2501]),
            &history,
        );
        assert_eq!(rules(&f), vec![Rule::Spike]);
        assert_eq!(f[0].from, t("2024-05-10 10:45"));
    }

    #[test]
    fn no_spike_rule_without_history() {
        assert_eq!(
            run(
                &[interval(t("2024-05-10 10:15"), 1_000_000)],
                &History::new(900)
            ),
            vec![]
        );
    }

    #[test]
    fn future_beyond_the_tolerance() {
        // now is 12:00; tolerance 300 s.
        let f = run(&series(t("2024-05-10 12:00"), &[1, 1]), &History::new(900));
        assert_eq!(rules(&f), vec![Rule::FutureTimestamp]);
        assert_eq!(f[0].from, t("2024-05-10 12:15"));
    }

    #[test]
    fn misaligned_ends() {
        let f = run(&[interval(t("2024-05-10 10:07"), 1)], &History::new(900));
        assert_eq!(rules(&f), vec![Rule::Misaligned]);
        let with_nanos = interval(t("2024-05-10 10:15") + TimeDelta::milliseconds(1), 1);
        assert_eq!(
            rules(&run(&[with_nanos], &History::new(900))),
            vec![Rule::Misaligned]
        );
    }

    #[test]
    fn voltage_out_of_range_but_not_for_an_outage() {
        let mut low = interval(t("2024-05-10 10:15"), 100);
        low.avg_voltage_v = Some(150.0);
        let mut off = interval(t("2024-05-10 10:30"), 0);
        off.avg_voltage_v = Some(0.0);
        let mut partial = interval(t("2024-05-10 10:45"), 40);
        partial.avg_voltage_v = Some(90.0);
        partial.quality.push(Quality::PartialInterval);
        let mut phase_high = interval(t("2024-05-10 11:00"), 100);
        phase_high.avg_voltage_v = None;
        phase_high.avg_phase_voltage_v = Some([231.0, 280.5, f64::NAN]);
        let f = run(&[low, off, partial, phase_high], &History::new(900));
        assert_eq!(
            rules(&f),
            vec![Rule::VoltageOutOfRange, Rule::VoltageOutOfRange]
        );
        assert_eq!(
            f[0].detail,
            "interval ending 2024-05-10 10:15:00 IST averaged 150.0 V, outside 180–270 V"
        );
        assert_eq!(f[1].from, t("2024-05-10 11:00"));
        assert!(
            f[1].detail.contains("Y 280.5 V, B NaN V"),
            "{}",
            f[1].detail
        );
        assert!(!f[1].suspect);
    }

    #[test]
    fn clock_flags_make_runs() {
        let mut batch = series(t("2024-05-10 10:15"), &[1, 1, 1, 1]);
        batch[0].quality.push(Quality::ClockInvalid);
        batch[1].quality.push(Quality::ClockInvalid);
        batch[1].quality.push(Quality::ClockDoubtful);
        batch[3].quality.push(Quality::ClockDoubtful);
        let f = run(&batch, &History::new(900));
        assert_eq!(rules(&f), vec![Rule::ClockDrift, Rule::ClockDrift]);
        assert_eq!((f[0].severity, f[0].suspect), (Severity::Error, true));
        assert_eq!(
            (f[0].from, f[0].to),
            (t("2024-05-10 10:15"), t("2024-05-10 10:30"))
        );
        assert_eq!((f[1].severity, f[1].suspect), (Severity::Warning, false));
        assert_eq!(
            (f[1].from, f[1].to),
            (t("2024-05-10 11:00"), t("2024-05-10 11:00"))
        );
    }

    #[test]
    fn a_reported_drift_over_the_limit_covers_the_batch() {
        let history = History::new(900);
        let batch = series(t("2024-05-10 10:15"), &[1, 1, 1]);
        let mut ctx = Context::new(900, t("2024-05-10 12:00"), &history);
        ctx.clock_drift_s = Some(-120);
        assert_eq!(
            validate_intervals(&batch, &ctx, &VeeConfig::default()),
            vec![]
        );
        ctx.clock_drift_s = Some(-121);
        let f = validate_intervals(&batch, &ctx, &VeeConfig::default());
        assert_eq!(rules(&f), vec![Rule::ClockDrift]);
        assert_eq!(
            (f[0].from, f[0].to),
            (t("2024-05-10 10:15"), t("2024-05-10 10:45"))
        );
        assert_eq!(
            f[0].detail,
            "the meter clock was -121 s off, more than the 120 s allowed"
        );
    }

    #[test]
    fn an_invalid_period_skips_the_grid_rules() {
        let history = History::new(900);
        let ctx = Context::new(7, t("2024-05-10 12:00"), &history);
        let batch = [interval(t("2024-05-10 10:07"), -1)];
        assert_eq!(
            rules(&validate_intervals(&batch, &ctx, &VeeConfig::default())),
            vec![Rule::Negative]
        );
    }
}

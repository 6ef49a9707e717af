//! Estimation of missing intervals: linear interpolation across short gaps, like-day averages
//! across long ones, and scaling to a known register advance, apportioned in whole Wh so the
//! estimates add up to it exactly.

use chrono::{DateTime, Utc};
use model::{IntervalReading, MeterSerial, Quality};
use serde::{Deserialize, Serialize};

use super::{History, VeeConfig};
use crate::calendar::{Period, at};

/// How an estimate was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimationMethod {
    /// On the straight line between the intervals either side of the gap.
    LinearInterpolation,
    /// Its total is the register advance across the gap (the shape from interpolation, like
    /// days, or flat when neither is available).
    ScaledToRegister,
    /// The mean of the same slot on the latest like days.
    LikeDayAverage,
}

/// An estimated interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Flagged [`Quality::Estimated`]; voltages and currents unknown (`None`).
    pub reading: IntervalReading,
    pub method: EstimationMethod,
}

/// The most intervals one gap may have, whatever the configuration says (over two years at 15
/// minutes), so that a mistaken setting cannot exhaust memory.
pub const MAX_ESTIMATE_INTERVALS: i64 = 100_000;

/// What estimation knows about a gap's surroundings.
#[derive(Debug, Clone, Copy)]
pub struct EstimateContext<'a> {
    pub meter: &'a MeterSerial,
    pub period_s: i64,
    pub history: &'a History,
    /// The actual interval just before the gap, if known.
    pub before: Option<&'a IntervalReading>,
    /// The actual interval just after the gap, if known.
    pub after: Option<&'a IntervalReading>,
    /// How far the import Wh register advanced across the gap (from daily snapshots or
    /// instantaneous reads at its edges), to be distributed over it.
    pub register_delta_wh: Option<i64>,
    /// The same for import VAh.
    pub register_delta_vah: Option<i64>,
}

/// Estimates the intervals ending `gap_from` to `gap_to` (both included, on the period's grid):
///
/// 1. a gap of at most `short_gap_max_s` with both neighbours known (ending one period before
///    and after it): linear interpolation of import and, where both have it, export;
/// 2. otherwise, if the history (of the same period) has every slot of the gap on some like
///    day: the like-day average of import over the latest `like_days`;
/// 3. otherwise, with a known Wh register advance: that advance spread evenly.
///
/// A known non-negative register advance then replaces each import total: the estimates are
/// scaled to it with whole units apportioned by largest remainder, so they add up to it
/// exactly (method [`ScaledToRegister`](EstimationMethod::ScaledToRegister)). VAh not fixed by
/// a register is raised to the Wh where lower. Estimates are never negative.
///
/// Returns nothing for a gap it cannot estimate: off the grid, reversed, longer than
/// `max_estimate_gap_s` or [`MAX_ESTIMATE_INTERVALS`], or with nothing to go on.
pub fn estimate_gap(
    gap_from: DateTime<Utc>,
    gap_to: DateTime<Utc>,
    ctx: &EstimateContext,
    cfg: &VeeConfig,
) -> Vec<Estimate> {
    let Some(period) = Period::new(ctx.period_s) else {
        return Vec::new();
    };
    let (first, last) = (gap_from.timestamp(), gap_to.timestamp());
    let span = last.saturating_sub(first);
    if !period.is_aligned(gap_from)
        || !period.is_aligned(gap_to)
        || span < 0
        || span > cfg.max_estimate_gap_s
    {
        return Vec::new();
    }
    let count = period.count(first, last);
    if count > MAX_ESTIMATE_INTERVALS {
        return Vec::new();
    }
    let Some(ends) = (0..count)
        .map(|i| at(first + i * period.secs()))
        .collect::<Option<Vec<_>>>()
    else {
        return Vec::new();
    };
    let Some(shape) = interpolated(&ends, period, ctx, cfg)
        .or_else(|| like_day(&ends, ctx, period, cfg))
        .or_else(|| flat(ends.len(), ctx))
    else {
        return Vec::new();
    };
    let Shape {
        method,
        wh,
        vah,
        export_wh,
        export_vah,
    } = shape;
    let scaled = |shape: Vec<i64>, delta: Option<i64>| match delta.filter(|&d| d >= 0) {
        Some(total) => (apportion(&shape, total), true),
        None => (shape, false),
    };
    let (wh, wh_scaled) = scaled(wh, ctx.register_delta_wh);
    let (mut vah, vah_scaled) = scaled(vah, ctx.register_delta_vah);
    if !vah_scaled {
        vah.iter_mut().zip(&wh).for_each(|(v, &w)| *v = (*v).max(w));
    }
    let method = if wh_scaled || vah_scaled {
        EstimationMethod::ScaledToRegister
    } else {
        method
    };
    ends.into_iter()
        .enumerate()
        .map(|(i, end)| Estimate {
            reading: IntervalReading {
                meter: ctx.meter.clone(),
                interval_end: end,
                avg_voltage_v: None,
                avg_current_a: None,
                avg_phase_voltage_v: None,
                avg_phase_current_a: None,
                import_wh: wh[i],
                import_vah: vah[i],
                export_wh: export_wh.as_ref().map(|e| e[i]),
                export_vah: export_vah.as_ref().map(|e| e[i]),
                quality: vec![Quality::Estimated],
            },
            method,
        })
        .collect()
}

/// Estimated values per channel, one per interval of the gap, all non-negative.
struct Shape {
    method: EstimationMethod,
    wh: Vec<i64>,
    vah: Vec<i64>,
    export_wh: Option<Vec<i64>>,
    export_vah: Option<Vec<i64>>,
}

fn interpolated(
    ends: &[DateTime<Utc>],
    period: Period,
    ctx: &EstimateContext,
    cfg: &VeeConfig,
) -> Option<Shape> {
    let (before, after) = (ctx.before?, ctx.after?);
    let (first, last) = (ends.first()?.timestamp(), ends.last()?.timestamp());
    let duration = i64::try_from(ends.len())
        .ok()?
        .saturating_mul(period.secs());
    let adjacent = before.interval_end.timestamp() == first - period.secs()
        && after.interval_end.timestamp() == last + period.secs();
    if !adjacent || duration > cfg.short_gap_max_s {
        return None;
    }
    let line = |a: Option<i64>, b: Option<i64>| {
        let (a, b) = (a.filter(|&a| a >= 0)?, b.filter(|&b| b >= 0)?);
        Some(linear(a, b, ends.len()))
    };
    Some(Shape {
        method: EstimationMethod::LinearInterpolation,
        wh: line(Some(before.import_wh), Some(after.import_wh))?,
        vah: line(Some(before.import_vah), Some(after.import_vah))?,
        export_wh: line(before.export_wh, after.export_wh),
        export_vah: line(before.export_vah, after.export_vah),
    })
}

/// `n` values on the straight line from `a` to `b` (exclusive), rounded half up.
fn linear(a: i64, b: i64, n: usize) -> Vec<i64> {
    let steps = n as i128 + 1;
    (1..=n as i128)
        .map(|k| {
            let offset = (2 * (i128::from(b) - i128::from(a)) * k + steps).div_euclid(2 * steps);
            // Between a and b, both non-negative i64.
            i64::try_from(i128::from(a) + offset).unwrap_or(0)
        })
        .collect()
}

fn like_day(
    ends: &[DateTime<Utc>],
    ctx: &EstimateContext,
    period: Period,
    cfg: &VeeConfig,
) -> Option<Shape> {
    if ctx.history.period_s() != period.secs() {
        return None;
    }
    let n = cfg.like_days.min(History::MAX_LIKE_DAYS);
    let (wh, vah) = ends
        .iter()
        .map(|&end| ctx.history.like_day_slot_mean(end, n))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .unzip();
    Some(Shape {
        method: EstimationMethod::LikeDayAverage,
        wh,
        vah,
        export_wh: None,
        export_vah: None,
    })
}

/// Even shares: only worth it when a register advance gives the total.
fn flat(n: usize, ctx: &EstimateContext) -> Option<Shape> {
    ctx.register_delta_wh.filter(|&d| d >= 0)?;
    Some(Shape {
        method: EstimationMethod::ScaledToRegister,
        wh: vec![0; n],
        vah: vec![0; n],
        export_wh: None,
        export_vah: None,
    })
}

/// Splits `total` (≥ 0) in proportion to `weights` (negatives count as 0; all zero means equal
/// shares) into whole units that add up to `total` exactly: each gets the floor of its share,
/// and the units left over go to the largest remainders, earliest first on ties.
pub(super) fn apportion(weights: &[i64], total: i64) -> Vec<i64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let mut weights: Vec<i128> = weights.iter().map(|&w| i128::from(w.max(0))).collect();
    let mut sum: i128 = weights.iter().sum();
    if sum == 0 {
        weights.iter_mut().for_each(|w| *w = 1);
        sum = weights.len() as i128;
    }
    let total = i128::from(total.max(0));
    let shares: Vec<(i128, i128)> = weights
        .iter()
        .map(|&w| ((total * w) / sum, (total * w) % sum))
        .collect();
    let mut left = total - shares.iter().map(|s| s.0).sum::<i128>();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(a.cmp(&b)));
    let mut out: Vec<i128> = shares.iter().map(|s| s.0).collect();
    for &i in &order {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    // Every share is between 0 and total, an i64.
    out.into_iter()
        .map(|v| i64::try_from(v).unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::vee::testing::{flat_day, interval, meter, t};

    fn ctx<'a>(
        meter: &'a MeterSerial,
        history: &'a History,
        before: Option<&'a IntervalReading>,
        after: Option<&'a IntervalReading>,
    ) -> EstimateContext<'a> {
        EstimateContext {
            meter,
            period_s: 900,
            history,
            before,
            after,
            register_delta_wh: None,
            register_delta_vah: None,
        }
    }

    fn values(estimates: &[Estimate]) -> Vec<(i64, i64)> {
        estimates
            .iter()
            .map(|e| (e.reading.import_wh, e.reading.import_vah))
            .collect()
    }

    #[test]
    fn three_missing_between_100_and_200_are_125_150_175() {
        let (m, h) = (meter(), History::new(900));
        let before = interval(t("2024-05-10 10:00"), 100);
        let after = interval(t("2024-05-10 11:00"), 200);
        let e = estimate_gap(
            t("2024-05-10 10:15"),
            t("2024-05-10 10:45"),
            &ctx(&m, &h, Some(&before), Some(&after)),
            &VeeConfig::default(),
        );
        assert_eq!(values(&e), vec![(125, 125), (150, 150), (175, 175)]);
        assert!(
            e.iter()
                .all(|e| e.method == EstimationMethod::LinearInterpolation)
        );
        assert_eq!(e[0].reading.interval_end, t("2024-05-10 10:15"));
        assert_eq!(e[0].reading.quality, vec![Quality::Estimated]);
        assert_eq!(e[0].reading.avg_voltage_v, None);
        assert_eq!(e[0].reading.export_wh, None);
    }

    #[test]
    fn interpolation_rounds_and_carries_export() {
        assert_eq!(linear(0, 10, 2), vec![3, 7]); // 3.33, 6.67
        assert_eq!(linear(10, 0, 3), vec![8, 5, 3]); // 7.5 up, 5, 2.5 up
        let (m, h) = (meter(), History::new(900));
        let mut before = interval(t("2024-05-10 10:00"), 0);
        before.export_wh = Some(40);
        let mut after = interval(t("2024-05-10 10:30"), 0);
        after.export_wh = Some(60);
        let e = estimate_gap(
            t("2024-05-10 10:15"),
            t("2024-05-10 10:15"),
            &ctx(&m, &h, Some(&before), Some(&after)),
            &VeeConfig::default(),
        );
        assert_eq!(e[0].reading.export_wh, Some(50));
        assert_eq!(e[0].reading.export_vah, None);
    }

    #[test]
    fn interpolation_scaled_to_a_register_advance_is_exact() {
        let (m, h) = (meter(), History::new(900));
        let before = interval(t("2024-05-10 10:00"), 100);
        let after = interval(t("2024-05-10 11:00"), 200);
        let mut c = ctx(&m, &h, Some(&before), Some(&after));
        // 125/150/175 (sum 450) scaled to 451: 125.28, 150.33, 175.39; the spare Wh goes to
        // the largest remainder, 175.39.
        c.register_delta_wh = Some(451);
        let e = estimate_gap(
            t("2024-05-10 10:15"),
            t("2024-05-10 10:45"),
            &c,
            &VeeConfig::default(),
        );
        assert_eq!(values(&e), vec![(125, 125), (150, 150), (176, 176)]);
        assert!(
            e.iter()
                .all(|e| e.method == EstimationMethod::ScaledToRegister)
        );
    }

    #[test]
    fn apportioning_by_largest_remainder() {
        assert_eq!(apportion(&[1, 1, 1], 100), vec![34, 33, 33]);
        assert_eq!(apportion(&[0, 0], 5), vec![3, 2]);
        assert_eq!(apportion(&[10, -5, 30], 8), vec![2, 0, 6]);
        assert_eq!(apportion(&[1, 2, 3, 4], 0), vec![0, 0, 0, 0]);
        assert_eq!(
            apportion(&[i64::MAX, i64::MAX], i64::MAX),
            vec![i64::MAX / 2 + 1, i64::MAX / 2]
        );
        assert_eq!(apportion(&[], 5), Vec::<i64>::new());
    }

    #[test]
    fn long_gaps_use_like_days() {
        let m = meter();
        let mut h = History::new(900);
        h.absorb(&flat_day("2024-05-06", 40)); // Monday
        h.absorb(&flat_day("2024-05-07", 61)); // Tuesday
        h.absorb(&flat_day("2024-05-04", 500)); // Saturday: not like a Friday
        let before = interval(t("2024-05-10 10:00"), 100);
        let after = interval(t("2024-05-10 13:15"), 200);
        // 3 h on Friday 10 May: too long to interpolate; like-day mean (40 + 61) / 2 = 50.5 → 51.
        let c = ctx(&m, &h, Some(&before), Some(&after));
        let e = estimate_gap(
            t("2024-05-10 10:15"),
            t("2024-05-10 13:00"),
            &c,
            &VeeConfig::default(),
        );
        assert_eq!(e.len(), 12);
        assert!(e.iter().all(|e| e.reading.import_wh == 51));
        assert!(
            e.iter()
                .all(|e| e.method == EstimationMethod::LikeDayAverage)
        );
    }

    #[test]
    fn like_days_scaled_to_a_register_advance() {
        let m = meter();
        let mut h = History::new(900);
        let mut monday = flat_day("2024-05-06", 10);
        monday[40].import_wh = 30; // slot 40 ends 10:15
        monday[40].import_vah = 30;
        h.absorb(&monday);
        let mut c = ctx(&m, &h, None, None);
        c.register_delta_wh = Some(100);
        c.register_delta_vah = Some(101);
        // Shape 30, 10, 10 (sum 50) to 100 Wh: 60/20/20; to 101 VAh: 60.6/20.2/20.2 → 61/20/20.
        let e = estimate_gap(
            t("2024-05-13 10:15"),
            t("2024-05-13 10:45"),
            &c,
            &VeeConfig::default(),
        );
        assert_eq!(values(&e), vec![(60, 61), (20, 20), (20, 20)]);
    }

    #[test]
    fn with_only_a_register_advance_it_is_spread_evenly() {
        let (m, h) = (meter(), History::new(900));
        let mut c = ctx(&m, &h, None, None);
        assert_eq!(
            estimate_gap(
                t("2024-05-10 10:15"),
                t("2024-05-10 10:45"),
                &c,
                &VeeConfig::default()
            ),
            vec![]
        );
        c.register_delta_wh = Some(10);
        let e = estimate_gap(
            t("2024-05-10 10:15"),
            t("2024-05-10 10:45"),
            &c,
            &VeeConfig::default(),
        );
        // VAh unknown: raised to the Wh (unity power factor, the least it can be).
        assert_eq!(values(&e), vec![(4, 4), (3, 3), (3, 3)]);
        assert!(
            e.iter()
                .all(|e| e.method == EstimationMethod::ScaledToRegister)
        );
    }

    #[test]
    fn what_cannot_be_estimated() {
        let (m, h) = (meter(), History::new(900));
        let mut c = ctx(&m, &h, None, None);
        c.register_delta_wh = Some(10);
        let cfg = VeeConfig::default();
        assert_eq!(
            estimate_gap(t("2024-05-10 10:45"), t("2024-05-10 10:15"), &c, &cfg),
            vec![]
        );
        assert_eq!(
            estimate_gap(t("2024-05-10 10:14"), t("2024-05-10 10:45"), &c, &cfg),
            vec![]
        );
        assert_eq!(
            estimate_gap(t("2024-04-01 10:15"), t("2024-05-10 10:45"), &c, &cfg),
            vec![]
        );
        c.register_delta_wh = Some(-1);
        assert_eq!(
            estimate_gap(t("2024-05-10 10:15"), t("2024-05-10 10:45"), &c, &cfg),
            vec![]
        );
    }

    proptest! {
        #[test]
        fn apportioned_shares_add_up_exactly_and_are_never_negative(
            weights in prop::collection::vec(any::<i64>(), 1..200),
            total in 0i64..=i64::MAX,
        ) {
            let shares = apportion(&weights, total);
            prop_assert_eq!(shares.len(), weights.len());
            prop_assert!(shares.iter().all(|&s| s >= 0));
            prop_assert_eq!(shares.iter().map(|&s| i128::from(s)).sum::<i128>(), i128::from(total));
        }

        #[test]
        fn estimates_match_a_register_advance_exactly(
            before_wh in 0i64..1_000_000,
            after_wh in 0i64..1_000_000,
            n in 1i64..200,
            delta_wh in 0i64..100_000_000,
            delta_vah in prop::option::of(0i64..100_000_000),
            history_wh in prop::option::of(0i64..100_000),
        ) {
            let m = meter();
            let mut h = History::new(900);
            if let Some(wh) = history_wh {
                h.absorb(&flat_day("2024-05-06", wh));
            }
            let before = interval(t("2024-05-13 00:00"), before_wh);
            let gap_from = t("2024-05-13 00:15");
            let gap_to = gap_from + chrono::TimeDelta::minutes(15 * (n - 1));
            let after = interval(gap_to + chrono::TimeDelta::minutes(15), after_wh);
            let mut c = ctx(&m, &h, Some(&before), Some(&after));
            c.register_delta_wh = Some(delta_wh);
            c.register_delta_vah = delta_vah;
            let e = estimate_gap(gap_from, gap_to, &c, &VeeConfig::default());
            prop_assert_eq!(e.len() as i64, n);
            prop_assert!(e.iter().all(|e| e.reading.import_wh >= 0 && e.reading.import_vah >= 0));
            prop_assert_eq!(e.iter().map(|e| e.reading.import_wh).sum::<i64>(), delta_wh);
            if let Some(vah) = delta_vah {
                prop_assert_eq!(e.iter().map(|e| e.reading.import_vah).sum::<i64>(), vah);
            }
            prop_assert!(e.iter().all(|e| e.method == EstimationMethod::ScaledToRegister));
        }
    }
}

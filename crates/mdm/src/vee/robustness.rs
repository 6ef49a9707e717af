//! Property tests over every entry point: no input makes a rule, the history or estimation
//! panic, however absurd (times at chrono's limits, i64 extremes, NaN voltages, silly settings),
//! estimates are never negative, and absorbing rows twice is absorbing them once.

use chrono::{DateTime, Utc};
use model::{DailyReading, IntervalReading, Quality};
use proptest::prelude::*;

use super::testing::{meter, t};
use super::{
    Context, EstimateContext, History, VeeConfig, estimate_gap, validate_daily, validate_intervals,
};

/// 2024-05-09 00:00 IST.
const BASE_S: i64 = 1_715_193_000;

/// Mostly on or near a 15-minute grid over four days, sometimes anywhere chrono allows.
fn time() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        4 => (0i64..400, prop_oneof![Just(0i64), 1i64..900]).prop_map(|(i, off)| {
            DateTime::from_timestamp(BASE_S + i * 900 + off, 0).unwrap_or_default()
        }),
        1 => (DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp())
            .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or_default()),
        1 => prop_oneof![Just(DateTime::<Utc>::MIN_UTC), Just(DateTime::<Utc>::MAX_UTC)],
    ]
}

fn energy() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 0i64..2_000,
        1 => any::<i64>(),
        1 => prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64)],
    ]
}

fn volts() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 150.0..290.0f64,
        1 => any::<f64>(),
        1 => prop_oneof![Just(0.0), Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
    ]
}

fn quality() -> impl Strategy<Value = Vec<Quality>> {
    let flag = prop_oneof![
        Just(Quality::ClockInvalid),
        Just(Quality::ClockDoubtful),
        Just(Quality::PartialInterval),
        Just(Quality::Estimated),
        Just(Quality::Edited),
        Just(Quality::Suspect),
    ];
    prop::collection::vec(flag, 0..3)
}

fn interval() -> impl Strategy<Value = IntervalReading> {
    (
        time(),
        prop::option::of(volts()),
        prop::option::of([volts(), volts(), volts()]),
        (energy(), energy()),
        (prop::option::of(energy()), prop::option::of(energy())),
        quality(),
    )
        .prop_map(
            |(end, v, phases, (wh, vah), (ewh, evah), quality)| IntervalReading {
                meter: meter(),
                interval_end: end,
                avg_voltage_v: v,
                avg_current_a: None,
                avg_phase_voltage_v: phases,
                avg_phase_current_a: None,
                import_wh: wh,
                import_vah: vah,
                export_wh: ewh,
                export_vah: evah,
                quality,
            },
        )
}

fn snapshot() -> impl Strategy<Value = DailyReading> {
    (
        time(),
        energy(),
        energy(),
        prop::option::of(energy()),
        quality(),
    )
        .prop_map(|(at, wh, vah, ewh, quality)| DailyReading {
            meter: meter(),
            captured_at: at,
            import_wh: wh,
            import_vah: vah,
            export_wh: ewh,
            export_vah: ewh,
            quality,
        })
}

fn period() -> impl Strategy<Value = i64> {
    prop_oneof![4 => Just(900i64), 1 => Just(1800i64), 1 => Just(60i64), 1 => any::<i64>()]
}

fn seconds() -> impl Strategy<Value = i64> {
    prop_oneof![0i64..100_000, any::<i64>()]
}

fn factor() -> impl Strategy<Value = f64> {
    prop_oneof![0.0..20.0f64, any::<f64>(), Just(f64::NAN)]
}

/// The default thresholds, or any values at all.
fn config() -> impl Strategy<Value = VeeConfig> {
    let wild = (
        (
            factor(),
            seconds(),
            0usize..10,
            any::<usize>(),
            any::<usize>(),
            factor(),
            factor(),
        ),
        (
            seconds(),
            seconds(),
            factor(),
            seconds(),
            volts(),
            volts(),
            seconds(),
        ),
        (seconds(), seconds(), factor(), seconds(), seconds()),
    )
        .prop_map(|(a, b, c)| VeeConfig {
            spike_factor: a.0,
            spike_floor_w: a.1,
            spike_recent_days: a.2,
            like_days: a.3,
            like_days_min: a.4,
            high_factor: a.5,
            low_factor: a.6,
            like_day_floor_wh: b.0,
            zero_with_voltage_min_s: b.1,
            sum_check_tolerance_rel: b.2,
            sum_check_tolerance_wh: b.3,
            voltage_min_v: b.4,
            voltage_max_v: b.5,
            future_tolerance_s: b.6,
            max_clock_drift_s: c.0,
            register_rollover_wh: c.1,
            rollover_max_fraction: c.2,
            short_gap_max_s: c.3,
            max_estimate_gap_s: c.4,
        });
    prop_oneof![Just(VeeConfig::default()), wild]
}

fn history(period_s: i64, rows: &[IntervalReading], snapshots: &[DailyReading]) -> History {
    let mut h = History::new(period_s);
    h.absorb(rows);
    h.absorb_daily(snapshots);
    h
}

proptest! {
    // Generating these inputs dominates; XorShift makes it several times cheaper than ChaCha.
    #![proptest_config(ProptestConfig {
        rng_algorithm: prop::test_runner::RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    })]

    #[test]
    fn interval_rules_never_panic(
        batch in prop::collection::vec(interval(), 0..40),
        stored in prop::collection::vec(interval(), 0..8),
        past in prop::collection::vec(interval(), 0..100),
        period_s in period(),
        now in time(),
        drift in prop::option::of(any::<i64>()),
        expected in prop::option::of((time(), time())),
        explained in prop::collection::vec((time(), time()), 0..4),
        cfg in config(),
    ) {
        let history = history(period_s, &past, &[]);
        let ctx = Context {
            clock_drift_s: drift,
            already_stored: &stored,
            expected,
            explained: &explained,
            ..Context::new(period_s, now, &history)
        };
        for finding in validate_intervals(&batch, &ctx, &cfg) {
            prop_assert!(finding.from <= finding.to, "{finding:?}");
        }
    }

    #[test]
    fn register_rules_never_panic(
        snapshots in prop::collection::vec(snapshot(), 0..6),
        kept in prop::collection::vec(snapshot(), 0..2),
        intervals in prop::collection::vec(interval(), 0..120),
        period_s in period(),
        cfg in config(),
    ) {
        let history = history(period_s, &[], &kept);
        let ctx = Context::new(period_s, t("2024-05-12 00:00"), &history);
        validate_daily(&snapshots, &intervals, &ctx, &cfg);
    }

    #[test]
    fn estimates_never_panic_and_are_never_negative(
        (gap_from, gap_to) in (time(), time()),
        before in prop::option::of(interval()),
        after in prop::option::of(interval()),
        past in prop::collection::vec(interval(), 0..100),
        period_s in period(),
        deltas in (prop::option::of(energy()), prop::option::of(energy())),
        cfg in config(),
    ) {
        let history = history(period_s, &past, &[]);
        let m = meter();
        let ctx = EstimateContext {
            meter: &m,
            period_s,
            history: &history,
            before: before.as_ref(),
            after: after.as_ref(),
            register_delta_wh: deltas.0,
            register_delta_vah: deltas.1,
        };
        for e in estimate_gap(gap_from, gap_to, &ctx, &cfg) {
            let r = &e.reading;
            let all = [Some(r.import_wh), Some(r.import_vah), r.export_wh, r.export_vah];
            prop_assert!(all.into_iter().flatten().all(|v| v >= 0), "{r:?}");
            prop_assert!(r.quality.contains(&Quality::Estimated));
        }
    }

    #[test]
    fn absorbing_rows_twice_is_absorbing_them_once(
        earlier in prop::collection::vec(interval(), 0..50),
        rows in prop::collection::vec(interval(), 0..150),
        period_s in period(),
    ) {
        let mut once = history(period_s, &earlier, &[]);
        once.absorb(&rows);
        let mut twice = once.clone();
        twice.absorb(&rows);
        prop_assert_eq!(once, twice);
    }
}

//! A billing cycle over the store: bills from the MDM's intervals, provisional while estimates
//! stand, revised when actual readings replace them, never issued twice, arrears and banked
//! units carried from the bill before.

mod common;

use billing::cycle::{PostpaidBook, period, run_cycle};
use chrono::{DateTime, NaiveDate, Utc};
use mdm::determinants::Metering;
use model::{IntervalReading, MeterSerial, Paise, Quality};
use proptest::prelude::*;
use store::billing::BillingAccount;
use store::mdm::{Consumer, ServicePoint};
use store::tamper::{NewTamperPeriod, TamperSource};
use store::{IngestWrite, IntervalWrite, Store};

fn ist(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+05:30"))
        .unwrap()
        .with_timezone(&Utc)
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// The golden bills' tariff (₹5.50 to 100 kWh, ₹6.00 to 300, 5 % duty, ₹3.00 a kW a day).
fn book() -> PostpaidBook {
    PostpaidBook {
        versions: vec![common::tariff()],
    }
}

fn store() -> (tempfile::TempDir, Store, MeterSerial) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let at = ist("2026-10-01T00:00:00");
    store
        .mdm_put_consumer(
            &Consumer {
                consumer_no: "C-1".into(),
                name: "Ravi".into(),
                category: "residential".into(),
                net_metered: false,
            },
            at,
        )
        .unwrap();
    store
        .mdm_put_service_point(&ServicePoint {
            id: "SP-1".into(),
            address: "4 Station Road".into(),
            sanctioned_load_w: 2000,
        })
        .unwrap();
    store.mdm_connect_consumer("SP-1", "C-1", at).unwrap();
    let meter = MeterSerial::new("M-1").unwrap();
    store.mdm_install_meter(&meter, "SP-1", at).unwrap();
    store
        .billing_account_put(
            &BillingAccount {
                consumer_no: "C-1".into(),
                cycle_day: 1,
                contract_demand: None,
                opening_arrears: Paise(50_000),
            },
            at,
        )
        .unwrap();
    (dir, store, meter)
}

/// A day of 96 intervals of `wh` each, estimated or read.
fn day(store: &Store, meter: &MeterSerial, date: NaiveDate, wh: i64, estimated: bool) {
    let start = ist(&format!("{date}T00:00:00"));
    let rows = (0..96i64)
        .map(|i| IntervalWrite::New {
            reading: IntervalReading {
                meter: meter.clone(),
                interval_end: start + chrono::Duration::minutes(15 * (i + 1)),
                avg_voltage_v: None,
                avg_current_a: None,
                avg_phase_voltage_v: None,
                avg_phase_current_a: None,
                import_wh: wh,
                import_vah: wh,
                export_wh: None,
                export_vah: None,
                quality: if estimated {
                    vec![Quality::Estimated]
                } else {
                    vec![]
                },
            },
            method: estimated.then(|| "like_day".to_string()),
        })
        .collect();
    store
        .mdm_write(
            &IngestWrite {
                intervals: rows,
                ..IngestWrite::default()
            },
            start,
        )
        .unwrap();
}

#[test]
fn periods_run_from_the_cycle_day_of_the_month_before() {
    assert_eq!(period(1, d(2026, 12, 2)), (d(2026, 11, 1), d(2026, 11, 30)));
    assert_eq!(
        period(15, d(2026, 12, 2)),
        (d(2026, 10, 15), d(2026, 11, 14))
    );
    assert_eq!(
        period(15, d(2026, 12, 15)),
        (d(2026, 11, 15), d(2026, 12, 14))
    );
    assert_eq!(period(1, d(2027, 1, 1)), (d(2026, 12, 1), d(2026, 12, 31)));
}

#[test]
fn a_cycle_bills_provisionally_revises_on_actuals_and_never_twice() {
    let (_dir, store, meter) = store();
    // November: 100 Wh an interval (9.6 kWh a day, 288 kWh), the 15th estimated.
    for n in 1..=30 {
        day(&store, &meter, d(2026, 11, n), 100, n == 15);
    }
    let m = Metering::default();
    let r = run_cycle(&store, &book(), 1, d(2026, 12, 2), &m).unwrap();
    assert_eq!((r.new, r.provisional, r.failed.len()), (1, 1, 0), "{r:?}");
    // The same figures again: nothing issued.
    let again = run_cycle(&store, &book(), 1, d(2026, 12, 3), &m).unwrap();
    assert_eq!((again.new, again.revised, again.unchanged), (0, 0, 1));
    let bills = store.bills_of("C-1", 10).unwrap();
    assert_eq!(bills.len(), 1);
    let first = &bills[0];
    assert!(first.provisional);
    // 288 kWh: 100 × 5.50 + 188 × 6.00 = 1,678.00; fixed 3 × 2 × 30 = 180.00;
    // duty 5 % of 1,858.00 = 92.90 → 1,950.90; with the ₹500 carried in: 2,450.90
    assert_eq!(first.current, Paise(195_090));
    assert_eq!(first.payable, Paise(245_090));

    // The actual reading of the 15th (110 Wh an interval) replaces the estimate: a revision.
    let actual: Vec<IntervalWrite> = store
        .mdm_intervals(
            &meter,
            ist("2026-11-15T00:00:01"),
            ist("2026-11-16T00:00:00"),
        )
        .unwrap()
        .into_iter()
        .map(|s| IntervalWrite::Replace {
            reading: IntervalReading {
                import_wh: 110,
                import_vah: 110,
                quality: vec![],
                ..s.reading
            },
            method: None,
            version: s.version,
        })
        .collect();
    assert_eq!(actual.len(), 96);
    store
        .mdm_write(
            &IngestWrite {
                intervals: actual,
                ..IngestWrite::default()
            },
            ist("2026-12-04T00:00:00"),
        )
        .unwrap();
    let r = run_cycle(&store, &book(), 1, d(2026, 12, 4), &m).unwrap();
    assert_eq!((r.revised, r.provisional), (1, 0), "{r:?}");
    let bills = store.bills_of("C-1", 10).unwrap();
    assert_eq!(bills.len(), 2);
    let (now, before) = (&bills[0], &bills[1]);
    assert_eq!((now.version, now.state.as_str()), (2, "issued"));
    assert_eq!(before.state, "superseded");
    assert!(!now.provisional);
    // 0.96 kWh more at 6.00 = 5.76, with 5 % duty 6.05 (rounded once, on the month)
    assert_eq!(now.current.0 - first.current.0, 605);

    // December with no readings at all: provisional, the November bill carried as arrears.
    let r = run_cycle(&store, &book(), 1, d(2027, 1, 2), &m).unwrap();
    assert_eq!((r.new, r.provisional), (1, 1));
    let dec = &store.bills_of("C-1", 10).unwrap()[0];
    assert_eq!(dec.period_from, d(2026, 12, 1));
    assert_eq!(dec.payable.0 - dec.current.0, now.payable.0);
}

/// The tamper line of the bill in force for the period starting `from`.
fn tamper_line(store: &Store, from: NaiveDate) -> Option<(i64, String)> {
    let b = store
        .bills_of("C-1", 10)
        .unwrap()
        .into_iter()
        .find(|b| b.period_from == from && b.state == "issued")
        .unwrap();
    let bill: billing::bill::Bill = serde_json::from_str(&b.body).unwrap();
    bill.lines
        .into_iter()
        .find(|l| l.code == "tamper")
        .map(|l| (l.amount.0, l.description))
}

#[test]
fn a_tamper_period_confirmed_late_revises_its_bill_and_is_billed_once() {
    let (_dir, store, meter) = store();
    // 9.6 kWh a day from 1 October, but 0.96 kWh a day from 10 to 16 November (a magnet).
    for n in 1..=31 {
        day(&store, &meter, d(2026, 10, n), 100, false);
    }
    for n in 1..=30 {
        let wh = if (10..=16).contains(&n) { 10 } else { 100 };
        day(&store, &meter, d(2026, 11, n), wh, false);
    }
    let m = Metering::default();
    let r = run_cycle(&store, &book(), 1, d(2026, 12, 2), &m).unwrap();
    assert_eq!(r.new, 1, "{r:?}");
    assert_eq!(tamper_line(&store, d(2026, 11, 1)), None);

    // Confirmed after the November bill was issued.
    let p = store
        .tamper_period_record(
            &NewTamperPeriod {
                consumer_no: "C-1",
                meter: &meter,
                tamper_code: Some(201),
                reason: "Magnet tamper",
                from: ist("2026-11-10T00:00:00"),
                to: ist("2026-11-17T00:00:00"),
                confirmed_by: "desk",
                source: TamperSource::Operator,
            },
            ist("2026-12-02T12:00:00"),
        )
        .unwrap();
    let r = run_cycle(&store, &book(), 1, d(2026, 12, 3), &m).unwrap();
    assert_eq!((r.revised, r.failed.len()), (1, 0), "{r:?}");
    // The 30 days before (11 October to 9 November): 288 kWh, 9.6 a day; 7 days: 67.2 kWh,
    // less 7 × 0.96 = 6.72 recorded: 60.48 kWh at the top rate (7.00, × 100 %) = 423.36
    let (amount, description) = tamper_line(&store, d(2026, 11, 1)).unwrap();
    assert_eq!(amount, 42_336);
    assert_eq!(
        description,
        format!(
            "Assessed energy, 60.480 kWh: Magnet tamper 2026-11-10 to 2026-11-17 (tamper period \
             {}, confirmed by operator): 7 days at 9.600 kWh/day average of the 30 days before, less \
             6.720 kWh recorded",
            p.id
        )
    );
    assert_eq!(
        store.tamper_periods_of("C-1", 10).unwrap()[0].billed_period_from,
        Some(d(2026, 11, 1))
    );
    // Again: the same bill, nothing issued.
    let r = run_cycle(&store, &book(), 1, d(2026, 12, 4), &m).unwrap();
    assert_eq!((r.new, r.revised, r.unchanged), (0, 0, 1));

    // December does not carry it again.
    for n in 1..=31 {
        day(&store, &meter, d(2026, 12, n), 100, false);
    }
    let r = run_cycle(&store, &book(), 1, d(2027, 1, 2), &m).unwrap();
    assert_eq!(r.new, 1, "{r:?}");
    assert_eq!(tamper_line(&store, d(2026, 12, 1)), None);
    assert_eq!(
        store.tamper_periods_of("C-1", 10).unwrap()[0].billed_period_from,
        Some(d(2026, 11, 1))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]
    /// However often a cycle is run, on whatever days of the following month, each period has
    /// one bill in force, and runs on unchanged figures issue nothing.
    #[test]
    fn re_runs_never_duplicate_bills(wh in 0i64..400, runs in proptest::collection::vec(2u32..28, 1..5)) {
        let (_dir, store, meter) = store();
        for n in 1..=30 {
            day(&store, &meter, d(2026, 11, n), wh, false);
        }
        let m = Metering::default();
        let mut issued = 0;
        for r in &runs {
            let report = run_cycle(&store, &book(), 1, d(2026, 12, *r), &m).unwrap();
            issued += report.new + report.revised;
        }
        prop_assert_eq!(issued, 1);
        let bills = store.bills_of("C-1", 10).unwrap();
        prop_assert_eq!(bills.len(), 1);
        prop_assert_eq!(bills[0].state.as_str(), "issued");
    }
}

//! A billing cycle over the store: bills from the MDM's intervals, provisional while estimates
//! stand, revised when actual readings replace them, never issued twice, arrears and banked
//! units carried from the bill before.

mod common;

use common::{day, ist, store};

use billing::cycle::{PostpaidBook, period, run_cycle};
use chrono::NaiveDate;
use mdm::determinants::Metering;
use model::{IntervalReading, MeterSerial, Paise};
use proptest::prelude::*;
use store::tamper::{NewTamperPeriod, TamperSource};
use store::{IngestWrite, IntervalWrite, Store};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// The golden bills' tariff (₹5.50 to 100 kWh, ₹6.00 to 300, 5 % duty, ₹3.00 a kW a day).
fn book() -> PostpaidBook {
    PostpaidBook {
        versions: vec![common::tariff()],
    }
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

#[test]
fn payments_made_reach_the_next_bill_as_arrears_with_a_surcharge_on_what_was_late() {
    let (_dir, store, meter) = store();
    for n in 1..=30 {
        day(&store, &meter, d(2026, 11, n), 100, false);
    }
    let m = Metering::default();
    run_cycle(&store, &book(), 1, d(2026, 12, 2), &m).unwrap();
    let november = store.bills_of("C-1", 1).unwrap().remove(0);
    // ₹1,950.90 of charges and the ₹500 brought in; billed Dec 2, due Dec 17.
    assert_eq!(november.current, Paise(195_090));
    assert_eq!(november.due_date, d(2026, 12, 17));

    // ₹1,000 at the counter on Dec 5: ₹500 clears the opening arrears, ₹500 goes to November.
    let kept = store
        .payment_receive(&store::prepaid_ops::Payment {
            gateway: "counter".into(),
            payment_id: "CTR-1".into(),
            consumer_no: "C-1".into(),
            amount: Paise(100_000),
            status: "received".into(),
            reason: None,
            body: "CTR-1,C-1,1000,2026-12-05 11:00,cash".into(),
            paid_at: ist("2026-12-05T11:00:00"),
            received_at: ist("2026-12-05T11:00:00"),
            settled_at: None,
            balance: None,
            digital: false,
        })
        .unwrap();
    let applied = billing::payments::apply(&store, &kept, ist("2026-12-05T11:00:00")).unwrap();
    assert_eq!(applied.outstanding, Paise(145_090));

    // December (no readings: provisional). The ₹1,450.90 left of November is the arrears; it
    // was unpaid on Dec 17, so 1.5 % of it is surcharged: 21.7635 → ₹21.76.
    run_cycle(&store, &book(), 1, d(2027, 1, 2), &m).unwrap();
    let december = store.bills_of("C-1", 1).unwrap().remove(0);
    assert_eq!(december.period_from, d(2026, 12, 1));
    assert_eq!(december.payable.0 - december.current.0, 145_090);
    let bill: billing::bill::Bill = serde_json::from_str(&december.body).unwrap();
    let late = bill
        .lines
        .iter()
        .find(|l| l.code == "late_payment")
        .unwrap();
    assert_eq!(late.amount, Paise(2_176));
    assert!(
        late.description.contains("2026-11-01"),
        "{}",
        late.description
    );
    assert!(
        late.description.contains("17 Dec 2026"),
        "{}",
        late.description
    );
    let arrears = bill.lines.iter().find(|l| l.code == "arrears").unwrap();
    assert_eq!(arrears.amount, Paise(145_090));
    assert!(arrears.description.contains("31 Dec 2026"));
    // The surcharge is not surcharged again when December is late.
    assert_eq!(
        bill.payable_after_due_date.0 - bill.payable_by_due_date.0,
        (i64::from(150u16) * (bill.current.0 - 2_176) + 5_000) / 10_000
    );
    // Run again: the same bill, however the days go.
    let again = run_cycle(&store, &book(), 1, d(2027, 1, 9), &m).unwrap();
    assert_eq!(again.unchanged, 1, "{again:?}");
}

/// A billing-profile row of `M-1` at IST midnight of `date` with cumulative `wh`.
fn billing_row(store: &Store, meter: &MeterSerial, date: NaiveDate, wh: i64, md_w: f64) {
    let at = ist(&format!("{date}T00:00:00"));
    store
        .mdm_write(
            &IngestWrite {
                billing: vec![model::BillingReading {
                    meter: meter.clone(),
                    billing_date: at,
                    avg_power_factor: Some(0.95),
                    import_wh: wh,
                    tod_import_wh: vec![],
                    import_vah: wh + wh / 20,
                    tod_import_vah: vec![],
                    md_w: Some(model::Demand {
                        value: md_w,
                        at: Some(at - chrono::Duration::days(3)),
                    }),
                    tod_md_w: vec![],
                    md_va: None,
                    tod_md_va: vec![],
                    power_on_minutes: None,
                    export_wh: None,
                    export_vah: None,
                    reactive_q1_q4_varh: None,
                    quality: vec![],
                }],
                ..IngestWrite::default()
            },
            at,
        )
        .unwrap();
}

#[test]
fn the_billing_profile_rows_at_both_ends_bill_the_period_with_their_readings() {
    let (_dir, store, meter) = store();
    // No intervals at all, but the meter's billing-date snapshots: 1,234.567 kWh on Nov 1 and
    // 1,522.567 on Dec 1, 288 kWh, as the intervals test bills.
    billing_row(&store, &meter, d(2026, 11, 1), 1_234_567, 1_800.0);
    // The monthly trigger (2.1) asks the head-end for the row still missing, Dec 1's.
    let wanted = billing::cycle::billing_reads_wanted(&store, 1, d(2026, 12, 1)).unwrap();
    assert_eq!(wanted.len(), 1);
    assert_eq!(wanted[0].meter, meter);
    assert!(wanted[0].from <= ist("2026-11-01T00:00:00"));
    assert!(wanted[0].to > ist("2026-12-01T00:00:00"));
    billing_row(&store, &meter, d(2026, 12, 1), 1_522_567, 2_350.0);
    assert!(
        billing::cycle::billing_reads_wanted(&store, 1, d(2026, 12, 1))
            .unwrap()
            .is_empty()
    );
    let r = run_cycle(&store, &book(), 1, d(2026, 12, 2), &Metering::default()).unwrap();
    assert_eq!((r.new, r.provisional, r.failed.len()), (1, 0, 0), "{r:?}");
    let bill = store.bills_of("C-1", 1).unwrap().remove(0);
    assert!(!bill.provisional);
    assert_eq!(bill.current, Paise(195_090));
    let body: billing::bill::Bill = serde_json::from_str(&bill.body).unwrap();
    let readings = body.readings.unwrap();
    assert_eq!(readings.source, "billing_profile");
    assert_eq!(
        (readings.previous_wh, readings.present_wh),
        (1_234_567, 1_522_567)
    );

    // A register that went backwards (a reset meter) is not billed from: the intervals are,
    // and there are none, so the bill is a provisional revision.
    billing_row(&store, &meter, d(2027, 1, 1), 5_000, 1_000.0);
    let r = run_cycle(&store, &book(), 1, d(2027, 1, 2), &Metering::default()).unwrap();
    assert_eq!((r.new, r.provisional), (1, 1), "{r:?}");
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

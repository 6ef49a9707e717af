//! The daily charge run against a real wallet: in order, never twice, catching up, and a month
//! of daily charges equal to the month's bill.

use chrono::{Datelike, NaiveDate, Utc};
use model::Paise;
use prepaid::charging::{Account, DayUse, RunReport, charge_through, run_day, true_up_month};
use prepaid::tariff::{BillingUnit, Levy, Line, MonthUse, Rate, Slab, Subsidy, Tariff, TariffBook};
use proptest::prelude::*;
use store::Store;
use store::prepaid::NewEntry;

fn book() -> TariffBook {
    TariffBook {
        versions: vec![Tariff {
            code: "DOM-1".into(),
            category: "domestic".into(),
            effective_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            unit: BillingUnit::Kwh,
            fixed_per_kw_day: Rate::parse("2.5").unwrap(),
            slabs: vec![
                Slab {
                    up_to_kwh: Some(150),
                    rate: Rate::parse("4.25").unwrap(),
                },
                Slab {
                    up_to_kwh: None,
                    rate: Rate::parse("6.10").unwrap(),
                },
            ],
            duty_bp: 900,
            tod_bp: [0; 8],
            cess_per_unit: Rate(0),
            levies: vec![],
            subsidies: vec![],
        }],
    }
}

fn account() -> Account {
    Account {
        consumer_no: "C-1".into(),
        category: "domestic".into(),
        sanctioned_w: 2000,
        charge_from: None,
    }
}

fn wallet(rupees: i64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.db")).unwrap();
    store.wallet_open("C-1", Utc::now()).unwrap();
    store
        .wallet_post(
            &NewEntry {
                consumer_no: "C-1",
                cause: "recharge/PAY-1",
                kind: "recharge",
                amount: Paise::from_rupees(rupees).unwrap(),
                detail: "{}",
            },
            Utc::now(),
        )
        .unwrap();
    (dir, store)
}

/// Everything the wallet was charged (daily charges and adjustments; recharges left out).
fn debits(store: &Store) -> i64 {
    store
        .wallet_entries("C-1", 0, 1000)
        .unwrap()
        .iter()
        .filter(|e| e.kind != "recharge")
        .map(|e| -e.amount.0)
        .sum()
}

fn dec(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
}

#[test]
fn missed_days_are_caught_up_in_order_and_never_charged_twice() {
    let (_dir, store) = wallet(2000);
    let usage = |d: NaiveDate| {
        (d.day() <= 5).then_some(DayUse {
            import_wh: 12_000,
            import_vah: 13_000,
            estimated: false,
            ..DayUse::default()
        })
    };
    let first = charge_through(&store, &book(), &account(), dec(3), usage).unwrap();
    assert_eq!(first.days_charged, 3);
    let again = charge_through(&store, &book(), &account(), dec(3), usage).unwrap();
    assert_eq!((again.days_charged, again.total), (0, Paise(0)));
    // Days 4 and 5 are caught up; day 6's consumption is not known yet.
    let later = charge_through(&store, &book(), &account(), dec(8), usage).unwrap();
    assert_eq!(later.days_charged, 2);
    assert_eq!(later.waiting_for, Some(dec(6)));
    // 5 days × 12 kWh = 60 kWh at ₹4.25 = ₹255.00; fixed 5 × 2 × ₹2.50 = ₹25.00; duty 9 %:
    // ₹25.20. Total ₹305.20 out of ₹2,000.
    assert_eq!(later.balance, Some(Paise(200_000 - 30_520)));
    assert!(store.wallet_check("C-1").unwrap());
    let entries = store.wallet_entries("C-1", 0, 100).unwrap();
    assert_eq!(entries.len(), 6);
    assert!(
        entries[5].detail.contains("\"day\":\"2026-12-05\""),
        "{}",
        entries[5].detail
    );
}

#[test]
fn a_category_without_a_tariff_is_an_error_and_charges_nothing() {
    let (_dir, store) = wallet(100);
    let mut acc = account();
    acc.category = "agricultural".into();
    let used = |_| {
        Some(DayUse {
            import_wh: 1,
            import_vah: 1,
            estimated: false,
            ..DayUse::default()
        })
    };
    assert!(charge_through(&store, &book(), &acc, dec(2), used).is_err());
    assert_eq!(store.wallet_entries("C-1", 0, 10).unwrap().len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// However the run is repeated through the month, each day is charged once and the
    /// month's daily charges add up to the month's bill for the same consumption.
    #[test]
    fn a_month_of_daily_charges_is_the_months_bill(
        daily_wh in proptest::collection::vec(0i64..25_000, 31),
        runs in proptest::collection::vec(1u32..=31, 1..8),
    ) {
        let (_dir, store) = wallet(100_000);
        let usage = |d: NaiveDate| {
            Some(DayUse {
                import_wh: daily_wh[d.day0() as usize],
                import_vah: daily_wh[d.day0() as usize],
                estimated: false,
                ..DayUse::default()
            })
        };
        for until in runs.iter().chain([31].iter()) {
            charge_through(&store, &book(), &account(), dec(*until), usage).unwrap();
        }
        let charged = debits(&store);
        let month: i64 = daily_wh.iter().sum();
        let bill = book().versions[0].month_to_date(&MonthUse::units(month), 31, 31, 2000).total();
        prop_assert_eq!(Paise(charged), bill);
        prop_assert_eq!(store.wallet_entries("C-1", 0, 1000).unwrap().len(), 32);
        prop_assert!(store.wallet_check("C-1").unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Days charged on estimates and trued up when the actuals come: afterwards the month's
    /// charges equal the bill for the actual consumption, and a second true-up posts nothing.
    #[test]
    fn a_true_up_leaves_the_month_charged_at_the_actuals(
        estimated in proptest::collection::vec(0i64..25_000, 10),
        actual in proptest::collection::vec(0i64..25_000, 10),
    ) {
        let (_dir, store) = wallet(100_000);
        let by = |v: &Vec<i64>| {
            let v = v.clone();
            move |d: NaiveDate| {
                v.get(d.day0() as usize).map(|wh| DayUse {
                    import_wh: *wh,
                    import_vah: *wh,
                    estimated: false,
                    ..DayUse::default()
                })
            }
        };
        charge_through(&store, &book(), &account(), dec(10), by(&estimated)).unwrap();
        let first = prepaid::charging::true_up_month(&store, &book(), &account(), dec(10), by(&actual)).unwrap();
        let again = prepaid::charging::true_up_month(&store, &book(), &account(), dec(10), by(&actual)).unwrap();
        prop_assert_eq!(again.adjustment, Paise(0));
        let month_debits = debits(&store);
        let bill = book().versions[0]
            .month_to_date(&MonthUse::units(actual.iter().sum()), 10, 31, 2000)
            .total();
        prop_assert_eq!(Paise(month_debits), bill);
        prop_assert!(store.wallet_check("C-1").unwrap());
        if estimated == actual {
            prop_assert_eq!(first.adjustment, Paise(0));
        }
        // The figures change back to the estimates: trued up again, to those.
        prepaid::charging::true_up_month(&store, &book(), &account(), dec(10), by(&estimated)).unwrap();
        let debits = debits(&store);
        let bill = book().versions[0]
            .month_to_date(&MonthUse::units(estimated.iter().sum()), 10, 31, 2000)
            .total();
        prop_assert_eq!(Paise(debits), bill);
    }
}

/// `book()` with TOD (zone 1 −15 %, zone 4 +25 %), a ₹0.12/kWh cess, a 3 % levy on energy and
/// fixed charges and a ₹0.50/kWh subsidy on the first 50 kWh, billed in kVAh.
fn tod_book() -> TariffBook {
    let mut t = book().versions[0].clone();
    t.unit = BillingUnit::Kvah;
    t.tod_bp = [-1500, 0, 0, 2500, 0, 0, 0, 0];
    t.cess_per_unit = Rate::parse("0.12").unwrap();
    t.levies = vec![Levy {
        name: "municipal".into(),
        bp: 300,
        on: vec![Line::Energy, Line::Fixed],
    }];
    t.subsidies = vec![Subsidy::PerUnit {
        rate: Rate::parse("0.5").unwrap(),
        first_kwh: 50,
    }];
    TariffBook { versions: vec![t] }
}

/// A day of `vah` split over zones 1, 3 and 4 by `shares`.
fn zoned(vah: i64, shares: (u8, u8, u8)) -> DayUse {
    let w = i64::from(shares.0) + i64::from(shares.1) + i64::from(shares.2) + 1;
    let z1 = vah * i64::from(shares.0) / w;
    let z4 = vah * i64::from(shares.2) / w;
    let mut zone_vah = [0; 8];
    zone_vah[0] = z1;
    zone_vah[2] = vah - z1 - z4;
    zone_vah[3] = z4;
    DayUse {
        import_wh: vah * 9 / 10,
        import_vah: vah,
        zone_wh: [0; 8],
        zone_vah,
        estimated: false,
    }
}

fn accounts(n: usize) -> Vec<Account> {
    (0..n)
        .map(|i| Account {
            consumer_no: format!("C-{}", i + 1),
            category: "domestic".into(),
            sanctioned_w: 1000 + 500 * i as u32,
            charge_from: None,
        })
        .collect()
}

fn debits_of(store: &Store, consumer: &str) -> i64 {
    store
        .wallet_entries(consumer, 0, 1000)
        .unwrap()
        .iter()
        .filter(|e| e.kind != "recharge")
        .map(|e| -e.amount.0)
        .sum()
}

#[test]
fn a_run_charges_many_and_reports_the_ones_it_could_not() {
    let (_dir, store) = wallet(500);
    let accs = {
        let mut a = accounts(5);
        a[3].category = "agricultural".into(); // no tariff
        a
    };
    for a in &accs[1..4] {
        store.wallet_open(&a.consumer_no, Utc::now()).unwrap();
    }
    // C-1 has a wallet (from `wallet`), C-5 none; C-3's figures stop after the 2nd.
    let usage = |a: &Account, d: NaiveDate| {
        (a.consumer_no != "C-3" || d.day() <= 2).then(|| zoned(10_000, (1, 2, 1)))
    };
    let mut seen = Vec::new();
    let report = run_day(&store, &tod_book(), dec(4), &accs, usage, |n| seen.push(n)).unwrap();
    assert_eq!(seen, vec![5]);
    assert_eq!(report.consumers, 5);
    assert_eq!(report.charged, 3); // C-1, C-2 four days each, C-3 two days
    assert_eq!(report.days_charged, 10);
    assert_eq!(report.waiting, vec![("C-3".to_string(), dec(3))]);
    assert_eq!(report.already, 0);
    let failed: Vec<&str> = report.failed.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(failed, vec!["C-4", "C-5"]);
    assert!(
        report.failed[0].1.contains("agricultural"),
        "{:?}",
        report.failed
    );
    assert_eq!(store.wallet_entries("C-4", 0, 10).unwrap().len(), 0);
    let sum: i64 = ["C-1", "C-2", "C-3"]
        .iter()
        .map(|c| debits_of(&store, c))
        .sum();
    assert_eq!(report.total, Paise(sum));
    // Again: nothing more is posted; C-2 still waits.
    let again = run_day(&store, &tod_book(), dec(4), &accs, usage, |_| {}).unwrap();
    assert_eq!(
        again,
        RunReport {
            consumers: 5,
            already: 2,
            waiting: vec![("C-3".to_string(), dec(3))],
            failed: again.failed.clone(),
            ..RunReport::default()
        }
    );
    for c in ["C-1", "C-2", "C-3"] {
        assert!(store.wallet_check(c).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// With TOD, levies and subsidy, billed in kVAh: runs for many consumers at once and runs
    /// for one (both charge the same way), in any order through the month, charge every
    /// consumer exactly the bill for the month's units in total and per zone.
    #[test]
    fn batch_and_single_runs_charge_the_months_bill_with_tod(
        days in proptest::collection::vec((0i64..30_000, any::<(u8, u8, u8)>()), 31),
        runs in proptest::collection::vec((1u32..=31, any::<bool>()), 1..6),
    ) {
        let (_dir, store) = wallet(100_000);
        let accs = accounts(4);
        for a in &accs[1..] {
            store.wallet_open(&a.consumer_no, Utc::now()).unwrap();
        }
        // Each consumer uses the day's figure scaled by its number.
        let usage = |a: &Account, d: NaiveDate| {
            let k: i64 = a.consumer_no[2..].parse().unwrap();
            let (vah, shares) = days[d.day0() as usize];
            Some(zoned(vah * (k + 1) / 2, shares))
        };
        let book = tod_book();
        for (until, single) in runs.iter().chain([(31, false)].iter()) {
            if *single {
                charge_through(&store, &book, &accs[0], dec(*until), |d| usage(&accs[0], d)).unwrap();
            } else {
                let r = run_day(&store, &book, dec(*until), &accs, usage, |_| {}).unwrap();
                prop_assert!(r.failed.is_empty() && r.waiting.is_empty(), "{r:?}");
            }
        }
        let again = run_day(&store, &book, dec(31), &accs, usage, |_| {}).unwrap();
        prop_assert_eq!((again.charged, again.already), (0, 4));
        for a in &accs {
            let month = (1..=31)
                .map(|d| usage(a, dec(d)).unwrap().billed(BillingUnit::Kvah))
                .fold(MonthUse::default(), |m, d| m.plus(&d));
            let bill = book.versions[0].month_to_date(&month, 31, 31, a.sanctioned_w).total();
            prop_assert_eq!(Paise(debits_of(&store, &a.consumer_no)), bill);
            prop_assert!(store.wallet_check(&a.consumer_no).unwrap());
        }
    }
}

#[test]
fn days_charged_after_a_true_up_build_on_the_trued_up_figures() {
    // Days 1–10 charged on estimates, trued up to the actuals, then days 11–31 charged: the
    // month's charges are the bill for the actual month, as if it had been charged on them.
    let (_dir, store) = wallet(100_000);
    let estimate = |d: NaiveDate| Some(zoned(if d.day() <= 10 { 4_000 } else { 9_000 }, (1, 1, 1)));
    let actual = |d: NaiveDate| Some(zoned(if d.day() <= 10 { 21_000 } else { 9_000 }, (1, 1, 1)));
    let book = tod_book();
    charge_through(&store, &book, &account(), dec(10), estimate).unwrap();
    let t = true_up_month(&store, &book, &account(), dec(10), actual).unwrap();
    assert!(t.adjustment.0 < 0, "{t:?}");
    charge_through(&store, &book, &account(), dec(31), actual).unwrap();
    let month = (1..=31)
        .map(|d| actual(dec(d)).unwrap().billed(BillingUnit::Kvah))
        .fold(MonthUse::default(), |m, d| m.plus(&d));
    let bill = book.versions[0].month_to_date(&month, 31, 31, 2000).total();
    assert_eq!(Paise(debits(&store)), bill);
    // The true-up now finds nothing to adjust.
    let again = true_up_month(&store, &book, &account(), dec(31), actual).unwrap();
    assert_eq!(again.adjustment, Paise(0));
    assert!(store.wallet_check("C-1").unwrap());
}

/// A consumer who became prepaid on the 15th is charged from the 15th only: no day before, and
/// the first day's fixed charge is one day's, as on any other day.
#[test]
fn a_consumer_prepaid_from_mid_month_is_charged_from_that_day() {
    let (_d, store) = wallet(1000);
    let account = Account {
        charge_from: Some(dec(15)),
        ..account()
    };
    let usage = |_: NaiveDate| {
        Some(DayUse {
            import_wh: 4_000,
            import_vah: 4_200,
            ..DayUse::default()
        })
    };
    let report = charge_through(&store, &book(), &account, dec(20), usage).unwrap();
    assert_eq!(report.days_charged, 6, "15th to 20th");
    let days: Vec<String> = store
        .wallet_entries_by_cause("C-1", "daily/")
        .unwrap()
        .into_iter()
        .map(|e| e.cause)
        .collect();
    assert_eq!(days.first().map(String::as_str), Some("daily/2026-12-15"));
    let first: prepaid::charging::DailyChargeDetail = serde_json::from_str(
        &store
            .wallet_entries_by_cause("C-1", "daily/2026-12-15")
            .unwrap()[0]
            .detail,
    )
    .unwrap();
    // ₹2.50 a kW a day on 2 kW: ₹5.00; 4 kWh at ₹4.25: ₹17.00.
    assert_eq!(first.charge.fixed, Paise(500));
    assert_eq!(first.charge.energy, Paise(1_700));
    assert_eq!(first.month_units_before, 0);
}

/// The last day of November comes late: December waits for it, then both are charged, in
/// order, and nothing is left behind.
#[test]
fn a_new_month_waits_for_the_last_days_of_the_one_before() {
    let (_d, store) = wallet(1000);
    let nov = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let known_until = std::cell::Cell::new(nov(29));
    let usage = |d: NaiveDate| {
        (d <= known_until.get()).then_some(DayUse {
            import_wh: 3_000,
            import_vah: 3_100,
            ..DayUse::default()
        })
    };
    let r = charge_through(&store, &book(), &account(), nov(30), usage).unwrap();
    assert_eq!((r.days_charged, r.waiting_for), (29, Some(nov(30))));
    // December's first day is known before November's last.
    known_until.set(dec(1));
    let usage_dec = |d: NaiveDate| {
        (d != nov(30)).then_some(DayUse {
            import_wh: 3_000,
            import_vah: 3_100,
            ..DayUse::default()
        })
    };
    let r = charge_through(&store, &book(), &account(), dec(1), usage_dec).unwrap();
    assert_eq!(r.days_charged, 0);
    assert_eq!(r.waiting_for, Some(nov(30)));
    // November's last day arrives: it is charged, then December.
    let r = charge_through(&store, &book(), &account(), nov(30), usage).unwrap();
    assert_eq!(r.days_charged, 1);
    let r = charge_through(&store, &book(), &account(), dec(1), usage).unwrap();
    assert_eq!(r.days_charged, 1);
    assert_eq!(
        store
            .wallet_entries_by_cause("C-1", "daily/")
            .unwrap()
            .len(),
        31
    );
}

/// Days charged on estimates are counted, and the wallet is found for the true-up; once the
/// actual figures are trued up it is not found any more.
#[test]
fn estimated_days_are_found_for_the_true_up_and_forgotten_after_it() {
    let (_d, store) = wallet(1000);
    let estimated = |d: NaiveDate| {
        Some(DayUse {
            import_wh: 5_000,
            import_vah: 5_000,
            estimated: d.day() == 2,
            ..DayUse::default()
        })
    };
    charge_through(&store, &book(), &account(), dec(3), estimated).unwrap();
    assert_eq!(
        store.wallet_view("C-1").unwrap().unwrap().state.estimated,
        1
    );
    assert_eq!(
        store.wallets_with_estimates(dec(1), "", 10).unwrap(),
        vec!["C-1".to_string()]
    );
    // The actual for the 2nd was 7 kWh, not 5: the true-up debits the difference.
    let actual = |d: NaiveDate| {
        Some(DayUse {
            import_wh: if d.day() == 2 { 7_000 } else { 5_000 },
            import_vah: 5_000,
            ..DayUse::default()
        })
    };
    let t = true_up_month(&store, &book(), &account(), dec(3), actual).unwrap();
    assert!(t.adjustment < Paise::ZERO, "{t:?}");
    assert!(
        store
            .wallets_with_estimates(dec(1), "", 10)
            .unwrap()
            .is_empty()
    );
}

/// A consumer prepaid from the 15th, trued up: the month re-charged from the 15th only, so
/// figures that did not change post nothing.
#[test]
fn a_true_up_of_a_mid_month_consumer_starts_where_their_charges_did() {
    let (_d, store) = wallet(1000);
    let account = Account {
        charge_from: Some(dec(15)),
        ..account()
    };
    let usage = |_: NaiveDate| {
        Some(DayUse {
            import_wh: 6_000,
            import_vah: 6_000,
            ..DayUse::default()
        })
    };
    charge_through(&store, &book(), &account, dec(20), usage).unwrap();
    let t = true_up_month(&store, &book(), &account, dec(20), usage).unwrap();
    assert_eq!(t.adjustment, Paise::ZERO, "nothing changed");
    let more = |d: NaiveDate| {
        Some(DayUse {
            import_wh: if d == dec(16) { 8_000 } else { 6_000 },
            import_vah: 6_000,
            ..DayUse::default()
        })
    };
    let t = true_up_month(&store, &book(), &account, dec(20), more).unwrap();
    // 2 kWh more at ₹4.25 with 9 % duty: ₹9.27 (rounded once, month to date).
    assert_eq!(t.adjustment, Paise(-927));
}

/// A consumer who left prepaid on the 10th and came back on the 20th is not charged for the
/// days between.
#[test]
fn the_days_a_consumer_was_postpaid_are_not_charged() {
    let (_d, store) = wallet(1000);
    let usage = |_: NaiveDate| {
        Some(DayUse {
            import_wh: 4_000,
            import_vah: 4_000,
            ..DayUse::default()
        })
    };
    charge_through(&store, &book(), &account(), dec(10), usage).unwrap();
    let back = Account {
        charge_from: Some(dec(20)),
        ..account()
    };
    let r = charge_through(&store, &book(), &back, dec(22), usage).unwrap();
    assert_eq!(r.days_charged, 3, "20th to 22nd");
    let days = store
        .wallet_entries_by_cause("C-1", "daily/2026-12-1")
        .unwrap();
    assert_eq!(days.len(), 1, "only the 10th of the teens: {days:?}");
}

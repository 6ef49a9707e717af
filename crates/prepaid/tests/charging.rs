//! The daily charge run against a real wallet: in order, never twice, catching up, and a month
//! of daily charges equal to the month's bill.

use chrono::{Datelike, NaiveDate, Utc};
use model::Paise;
use prepaid::charging::{Account, DayUse, charge_through};
use prepaid::tariff::{BillingUnit, Rate, Slab, Tariff, TariffBook};
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
        }],
    }
}

fn account() -> Account {
    Account {
        consumer_no: "C-1".into(),
        category: "domestic".into(),
        sanctioned_w: 2000,
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
            })
        };
        for until in runs.iter().chain([31].iter()) {
            charge_through(&store, &book(), &account(), dec(*until), usage).unwrap();
        }
        let charged = debits(&store);
        let month: i64 = daily_wh.iter().sum();
        let bill = book().versions[0].month_to_date(month, 31, 2000).total();
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
                })
            }
        };
        charge_through(&store, &book(), &account(), dec(10), by(&estimated)).unwrap();
        let first = prepaid::charging::true_up_month(&store, &book(), &account(), dec(10), by(&actual)).unwrap();
        let again = prepaid::charging::true_up_month(&store, &book(), &account(), dec(10), by(&actual)).unwrap();
        prop_assert_eq!(again.adjustment, Paise(0));
        let month_debits = debits(&store);
        let bill = book().versions[0]
            .month_to_date(actual.iter().sum(), 10, 2000)
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
            .month_to_date(estimated.iter().sum(), 10, 2000)
            .total();
        prop_assert_eq!(Paise(debits), bill);
    }
}

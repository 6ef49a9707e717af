//! Prepaid wallets: an append-only ledger, idempotent by cause, whose balance always equals the
//! sum of its entries.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use model::Paise;
use proptest::prelude::*;
use store::prepaid::{NewEntry, Posted};
use store::{Store, StoreError};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.db")).unwrap();
    (dir, store)
}

fn entry<'a>(cause: &'a str, kind: &'a str, amount: i64) -> NewEntry<'a> {
    NewEntry {
        consumer_no: "C-1",
        cause,
        kind,
        amount: Paise(amount),
        detail: "{}",
    }
}

#[test]
fn a_replayed_recharge_is_credited_once() {
    let (_dir, store) = store();
    let t = at("2026-12-01T10:00:00Z");
    assert!(store.wallet_open("C-1", t).unwrap());
    assert!(!store.wallet_open("C-1", t).unwrap(), "opened once");
    assert_eq!(
        store
            .wallet_post(&entry("recharge/PAY-1", "recharge", 50_000), t)
            .unwrap(),
        Posted::New(Paise(50_000))
    );
    assert_eq!(
        store
            .wallet_post(&entry("daily/2026-12-01", "daily_charge", -1_234), t)
            .unwrap(),
        Posted::New(Paise(48_766))
    );
    // The gateway calls back again for the same payment: nothing is credited.
    let again = store
        .wallet_post(
            &entry("recharge/PAY-1", "recharge", 50_000),
            t + Duration::minutes(5),
        )
        .unwrap();
    let Posted::Already(kept) = again else {
        panic!("credited twice: {again:?}")
    };
    assert_eq!(
        (kept.n, kept.amount, kept.balance_after),
        (1, Paise(50_000), Paise(50_000))
    );
    assert_eq!(store.wallet_balance("C-1").unwrap(), Some(Paise(48_766)));
    assert!(store.wallet_check("C-1").unwrap());
    let ledger = store.wallet_entries("C-1", 0, 10).unwrap();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[1].kind, "daily_charge");
    assert_eq!(store.wallet_entries("C-1", 1, 10).unwrap().len(), 1);
    // No wallet, no posting.
    let orphan = NewEntry {
        consumer_no: "C-404",
        ..entry("recharge/PAY-9", "recharge", 100)
    };
    assert!(matches!(
        store.wallet_post(&orphan, t),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.wallet_balance("C-404").unwrap(), None);
}

#[test]
fn a_balance_beyond_the_range_of_paise_is_refused() {
    let (_dir, store) = store();
    let t = at("2026-12-01T10:00:00Z");
    store.wallet_open("C-1", t).unwrap();
    store
        .wallet_post(&entry("opening", "opening_balance", i64::MAX), t)
        .unwrap();
    assert!(matches!(
        store.wallet_post(&entry("recharge/X", "recharge", 1), t),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.wallet_balance("C-1").unwrap(), Some(Paise(i64::MAX)));
    assert!(store.wallet_check("C-1").unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever is posted, in whatever order and however often, the balance equals the sum of
    /// one entry per cause, and the ledger checks.
    #[test]
    fn the_balance_is_always_the_ledger_sum(
        posts in proptest::collection::vec((0u8..12, -100_000i64..100_000), 1..60),
    ) {
        let (_dir, store) = store();
        let t = at("2026-12-01T10:00:00Z");
        store.wallet_open("C-1", t).unwrap();
        let mut first: BTreeMap<u8, i64> = BTreeMap::new();
        for (cause, amount) in &posts {
            let name = format!("cause/{cause}");
            store.wallet_post(&entry(&name, "adjustment", *amount), t).unwrap();
            first.entry(*cause).or_insert(*amount);
        }
        let expected: i64 = first.values().sum();
        prop_assert_eq!(store.wallet_balance("C-1").unwrap(), Some(Paise(expected)));
        prop_assert!(store.wallet_check("C-1").unwrap());
        prop_assert_eq!(store.wallet_entries("C-1", 0, 1000).unwrap().len(), first.len());
    }
}

fn state(day: u32, units: i64, charged: i64) -> store::prepaid::ChargeState {
    let d = |d| chrono::NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
    store::prepaid::ChargeState {
        month: Some(d(1)),
        through: Some(d(day)),
        units,
        zone_units: [units, 0, 0, 0, 0, 0, 0, 1],
        charged,
        trueups: 0,
        estimated: 0,
    }
}

fn daily(day: u32, amount: i64) -> store::prepaid::StepEntry {
    store::prepaid::StepEntry {
        cause: format!("daily/2026-12-{day:02}"),
        kind: "daily_charge",
        amount: Paise(-amount),
        detail: "{}".into(),
    }
}

#[test]
fn many_wallets_move_on_in_one_transaction_and_a_bad_one_is_left_as_it_was() {
    use store::prepaid::{StepOutcome, WalletStep};
    let (_dir, store) = store();
    let t = at("2026-12-03T00:00:00Z");
    assert_eq!(
        store.wallet_open_many(&["C-1", "C-2", "C-3"], t).unwrap(),
        3
    );
    store
        .wallet_post(&entry("recharge/PAY-1", "recharge", 10_000), t)
        .unwrap();
    // C-3 has day 2 posted already (as a bare entry): a step posting days 1 and 2 is refused
    // whole, its day 1 undone.
    store
        .wallet_post(
            &NewEntry {
                consumer_no: "C-3",
                ..entry("daily/2026-12-02", "daily_charge", -5)
            },
            t,
        )
        .unwrap();
    let outcomes = store
        .wallet_steps(
            &["C-1", "C-2", "C-404", "C-3", "C-1"],
            t,
            |i, view| match i {
                0 | 3 => Ok(Some(WalletStep {
                    entries: vec![daily(1, 300), daily(2, 250)],
                    state: state(2, 9_000, 550),
                })),
                1 => Err("no tariff for C-2"),
                // C-1 again: it sees its own step of this transaction.
                _ => {
                    assert_eq!(view.state, state(2, 9_000, 550));
                    assert_eq!(view.balance, Paise(10_000 - 550));
                    Ok(None)
                }
            },
        )
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            StepOutcome::Posted {
                entries: 2,
                sum: Paise(-550),
                balance: Paise(9_450)
            },
            StepOutcome::Refused("no tariff for C-2".into()),
            StepOutcome::NoWallet,
            StepOutcome::Refused("daily/2026-12-02 was posted before".into()),
            StepOutcome::Unchanged {
                balance: Paise(9_450)
            },
        ]
    );
    assert_eq!(
        store.wallet_view("C-1").unwrap().unwrap().state,
        state(2, 9_000, 550)
    );
    assert_eq!(store.wallet_entries("C-3", 0, 10).unwrap().len(), 1);
    assert_eq!(
        store.wallet_view("C-3").unwrap().unwrap().state,
        store::prepaid::ChargeState::default()
    );
    for c in ["C-1", "C-2", "C-3"] {
        assert!(store.wallet_check(c).unwrap());
    }
}

#[test]
fn wallets_charged_before_0005_start_from_their_entries() {
    use store::migrate::{self, MIGRATIONS};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let v4 = MIGRATIONS
        .iter()
        .position(|m| m.name == "0004_prepaid")
        .unwrap()
        + 1;
    migrate::migrate_file_to(&path, v4 as u32).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "INSERT INTO wallet VALUES ('C-1', 0, 8, 10000);
         INSERT INTO wallet VALUES ('C-2', 0, 1, 0);
         INSERT INTO wallet_entry VALUES
           ('C-1', 1, 'recharge/P', 'recharge', 12000, 12000, '{}', 0),
           ('C-1', 2, 'daily/2026-11-29', 'daily_charge', -100, 11900, '{\"units\":5000}', 0),
           ('C-1', 3, 'daily/2026-11-30', 'daily_charge', -100, 11800, '{\"units\":5000}', 0),
           ('C-1', 4, 'daily/2026-12-01', 'daily_charge', -300, 11500, '{\"units\":7000}', 0),
           ('C-1', 5, 'daily/2026-12-02', 'daily_charge', -400, 11100, '{\"units\":8000}', 0),
           ('C-1', 6, 'trueup/2026-12/1', 'adjustment', -50, 11050, '{}', 0),
           ('C-1', 7, 'daily/2026-12-03', 'daily_charge', -1050, 10000, '{\"units\":9000}', 0);",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let d = |d| chrono::NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
    assert_eq!(
        store.wallet_view("C-1").unwrap().unwrap().state,
        store::prepaid::ChargeState {
            month: Some(d(1)),
            through: Some(d(3)),
            units: 24_000,
            zone_units: [0; 8],
            charged: 1_800,
            trueups: 1,
            estimated: 0,
        }
    );
    assert_eq!(
        store.wallet_view("C-2").unwrap().unwrap().state,
        store::prepaid::ChargeState::default()
    );
}

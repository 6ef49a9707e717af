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

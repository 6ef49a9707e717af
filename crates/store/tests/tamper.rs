//! Confirmed tamper periods: recorded only when they make sense, listed, and billed in exactly
//! one bill period.

use chrono::{DateTime, NaiveDate, Utc};
use model::MeterSerial;
use store::mdm::{Consumer, ServicePoint};
use store::tamper::{NewTamperPeriod, TamperSource};
use store::{Store, StoreError};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

/// C-1 at SP-1 with meter M-1 from 1 October; M-2 elsewhere.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let since = at("2026-10-01T00:00:00Z");
    store
        .mdm_put_consumer(
            &Consumer {
                consumer_no: "C-1".into(),
                name: "Ravi".into(),
                category: "residential".into(),
                net_metered: false,
            },
            since,
        )
        .unwrap();
    for sp in ["SP-1", "SP-2"] {
        store
            .mdm_put_service_point(&ServicePoint {
                id: sp.into(),
                address: "4 Station Road".into(),
                sanctioned_load_w: 2000,
            })
            .unwrap();
    }
    store.mdm_connect_consumer("SP-1", "C-1", since).unwrap();
    store
        .mdm_install_meter(&MeterSerial::new("M-1").unwrap(), "SP-1", since)
        .unwrap();
    store
        .mdm_install_meter(&MeterSerial::new("M-2").unwrap(), "SP-2", since)
        .unwrap();
    (dir, store)
}

fn span<'a>(meter: &'a MeterSerial, from: &str, to: &str) -> NewTamperPeriod<'a> {
    NewTamperPeriod {
        consumer_no: "C-1",
        meter,
        tamper_code: Some(201),
        reason: "Magnet tamper",
        from: at(from),
        to: at(to),
        confirmed_by: "desk",
        source: TamperSource::Operator,
    }
}

#[test]
fn a_confirmed_period_is_recorded_only_when_it_makes_sense() {
    let (_dir, store) = store();
    let m1 = MeterSerial::new("M-1").unwrap();
    let m2 = MeterSerial::new("M-2").unwrap();
    let now = at("2026-11-20T00:00:00Z");
    let p = store
        .tamper_period_record(
            &span(&m1, "2026-10-03T00:00:00Z", "2026-10-10T00:00:00Z"),
            now,
        )
        .unwrap();
    assert_eq!(
        (p.consumer_no.as_str(), p.tamper_code, p.reason.as_str()),
        ("C-1", Some(201), "Magnet tamper")
    );
    assert_eq!((p.confirmed_at, p.source), (now, TamperSource::Operator));
    assert_eq!(p.billed_period_from, None);

    let refused = |p: NewTamperPeriod<'_>| store.tamper_period_record(&p, now).unwrap_err();
    assert!(matches!(
        refused(span(&m1, "2026-11-03T00:00:00Z", "2026-11-03T00:00:00Z")),
        StoreError::Invalid(_)
    ));
    assert!(matches!(
        refused(span(&m1, "2026-11-05T00:00:00Z", "2026-11-03T00:00:00Z")),
        StoreError::Invalid(_)
    ));
    assert!(
        matches!(
            refused(span(&m1, "2026-11-15T00:00:00Z", "2026-11-21T00:00:00Z")),
            StoreError::Invalid(_)
        ),
        "ends in the future"
    );
    assert!(
        matches!(
            refused(span(&m2, "2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z")),
            StoreError::Invalid(_)
        ),
        "M-2 does not measure C-1"
    );
    assert!(
        matches!(
            refused(span(&m1, "2026-09-01T00:00:00Z", "2026-09-03T00:00:00Z")),
            StoreError::Invalid(_)
        ),
        "before M-1 was installed"
    );
    let mut blank = span(&m1, "2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z");
    blank.reason = "  ";
    assert!(matches!(refused(blank), StoreError::Invalid(_)));
    let mut stranger = span(&m1, "2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z");
    stranger.consumer_no = "C-404";
    assert!(matches!(refused(stranger), StoreError::NotFound(_)));
    assert!(
        matches!(
            refused(span(&m1, "2026-10-09T00:00:00Z", "2026-10-12T00:00:00Z")),
            StoreError::Conflict(_)
        ),
        "overlaps the first: the same energy assessed twice"
    );
    // Right after the first one: fine.
    store
        .tamper_period_record(
            &span(&m1, "2026-10-10T00:00:00Z", "2026-10-12T00:00:00Z"),
            now,
        )
        .unwrap();
    let listed = store.tamper_periods_of("C-1", 10).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].from, at("2026-10-10T00:00:00Z"), "latest first");
    assert_eq!(listed[1], p);
}

#[test]
fn a_period_is_billed_in_one_bill_period_only() {
    let (_dir, store) = store();
    let m1 = MeterSerial::new("M-1").unwrap();
    let now = at("2026-12-20T00:00:00Z");
    let october = store
        .tamper_period_record(
            &span(&m1, "2026-10-03T00:00:00Z", "2026-10-10T00:00:00Z"),
            now,
        )
        .unwrap();
    let november = store
        .tamper_period_record(
            &span(&m1, "2026-11-20T00:00:00Z", "2026-11-25T00:00:00Z"),
            now,
        )
        .unwrap();
    let ids = |v: Vec<store::tamper::TamperPeriod>| v.iter().map(|p| p.id).collect::<Vec<_>>();

    // The October bill (up to 1 November) takes only the October period.
    let oct_end = at("2026-10-31T18:30:00Z");
    assert_eq!(
        ids(store
            .tamper_periods_to_bill("C-1", day(10, 1), oct_end)
            .unwrap()),
        vec![october.id]
    );
    store
        .tamper_periods_mark_billed("C-1", &[october.id], day(10, 1))
        .unwrap();
    // Marking again in the same period is harmless; a re-run of October sees it again.
    store
        .tamper_periods_mark_billed("C-1", &[october.id], day(10, 1))
        .unwrap();
    assert_eq!(
        ids(store
            .tamper_periods_to_bill("C-1", day(10, 1), oct_end)
            .unwrap()),
        vec![october.id]
    );
    // November's bill does not carry October's again.
    let nov_end = at("2026-11-30T18:30:00Z");
    assert_eq!(
        ids(store
            .tamper_periods_to_bill("C-1", day(11, 1), nov_end)
            .unwrap()),
        vec![november.id]
    );
    assert!(matches!(
        store.tamper_periods_mark_billed("C-1", &[november.id, october.id], day(11, 1)),
        Err(StoreError::Conflict(_))
    ));
    // All or nothing: November's was not marked by the refused call.
    assert_eq!(
        store.tamper_periods_of("C-1", 10).unwrap()[0].billed_period_from,
        None
    );
    assert!(matches!(
        store.tamper_periods_mark_billed("C-2", &[november.id], day(11, 1)),
        Err(StoreError::Conflict(_))
    ));
    store
        .tamper_periods_mark_billed("C-1", &[november.id], day(11, 1))
        .unwrap();
    assert_eq!(
        store.tamper_periods_of("C-1", 10).unwrap()[0].billed_period_from,
        Some(day(11, 1))
    );
}

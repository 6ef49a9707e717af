//! Configuration a head-end writes to a simulated meter, called in memory: key transfer, the TOD
//! calendar, the billing date, the capture period, MD reset, payment mode and load limit; each
//! changes what the meter reports afterwards and is logged in the transaction log.

use std::net::Ipv4Addr;

use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
use dlms::Data;
use dlms::apdu::{
    ActionResult, AttributeDescriptor, DataAccessResult, Mechanism, MethodDescriptor,
    SelectiveAccess,
};
use dlms::association::{CosemObjects, RequestContext};
use dlms::datetime::ist;
use meter_sim::objects::MeterObjects;
use meter_sim::{Fleet, FleetConfig, FleetHandle};

const READER: u16 = 32;
const UTILITY: u16 = 48;

async fn fleet() -> FleetHandle {
    let mut config = FleetConfig::new(2, Ipv4Addr::new(127, 1, 0, 1), 4059, 11);
    config.scheduled_outages = false;
    Fleet::offline(config).await.unwrap()
}

fn ctx(client_sap: u16, now: DateTime<Utc>) -> RequestContext {
    RequestContext {
        client_sap,
        mechanism: if client_sap == READER {
            Mechanism::Lls
        } else {
            Mechanism::Hls
        },
        now,
    }
}

fn attr(class_id: u16, ln: &str, attribute_id: i8) -> AttributeDescriptor {
    AttributeDescriptor {
        class_id,
        instance: ln.parse().unwrap(),
        attribute_id,
    }
}

fn method(class_id: u16, ln: &str, method_id: i8) -> MethodDescriptor {
    MethodDescriptor {
        class_id,
        instance: ln.parse().unwrap(),
        method_id,
    }
}

/// A fixed instant on a quarter-hour: 2026-11-20 12:00 IST.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 6, 30, 0).unwrap()
}

fn range(from: DateTime<Utc>, to: DateTime<Utc>) -> SelectiveAccess {
    SelectiveAccess::by_range(
        &dlms::DateTime::from_utc(from, ist()),
        &dlms::DateTime::from_utc(to, ist()),
        &[],
    )
}

fn rows(d: Data) -> Vec<Data> {
    match d {
        Data::Array(rows) => rows,
        other => panic!("not an array: {other:?}"),
    }
}

fn time_of(d: &Data) -> DateTime<Utc> {
    d.as_datetime().unwrap().to_utc(ist()).unwrap()
}

/// Codes in the transaction log (0.0.99.98.3.255) at `now`.
fn transaction_codes(m: &mut MeterObjects, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, i64)> {
    rows(
        m.get(&ctx(READER, now), &attr(7, "0.0.99.98.3.255", 2), None)
            .unwrap(),
    )
    .iter()
    .map(|r| {
        let f = r.as_items().unwrap();
        (time_of(&f[0]), f[1].as_i64().unwrap())
    })
    .collect()
}

fn wrap(kek: &[u8; 16], key: &[u8; 16]) -> Vec<u8> {
    aes_kw::KekAes128::new(&(*kek).into())
        .wrap_vec(key)
        .unwrap()
}

fn key_transfer(kek: &[u8; 16], ek: &[u8; 16], ak: &[u8; 16]) -> Data {
    Data::Array(vec![
        Data::Structure(vec![Data::Enum(0), Data::OctetString(wrap(kek, ek))]),
        Data::Structure(vec![Data::Enum(2), Data::OctetString(wrap(kek, ak))]),
    ])
}

const SECURITY_SETUP_US: &str = "0.0.43.0.3.255";

#[tokio::test]
async fn key_transfer_installs_keys_wrapped_under_the_master_key_only() {
    let f = fleet().await;
    let mut m = f.objects(0);
    let before = f.keys(0);
    let t = t0();
    let transfer = method(64, SECURITY_SETUP_US, 2);
    let (ek, ak) = ([0x11u8; 16], [0x22u8; 16]);

    // A wrong KEK: nothing changes.
    let mut wrong = before.master_key;
    wrong[0] ^= 1;
    assert_eq!(
        m.action(
            &ctx(UTILITY, t),
            &transfer,
            Some(key_transfer(&wrong, &ek, &ak))
        ),
        Err(ActionResult::OtherReason)
    );
    // One good and one tampered entry: all or nothing.
    let mut tampered = key_transfer(&before.master_key, &ek, &ak);
    if let Data::Array(entries) = &mut tampered
        && let Data::Structure(fields) = &mut entries[1]
        && let Data::OctetString(w) = &mut fields[1]
    {
        w[5] ^= 0x80;
    }
    assert_eq!(
        m.action(&ctx(UTILITY, t), &transfer, Some(tampered)),
        Err(ActionResult::OtherReason)
    );
    // Bad shapes are type-unmatched; the meter reader may not invoke it at all.
    assert_eq!(
        m.action(&ctx(UTILITY, t), &transfer, Some(Data::Unsigned(0))),
        Err(ActionResult::TypeUnmatched)
    );
    assert!(
        m.action(
            &ctx(READER, t),
            &transfer,
            Some(key_transfer(&before.master_key, &ek, &ak))
        )
        .is_err()
    );
    assert_eq!(f.keys(0), before);
    assert!(!transaction_codes(&mut m, t).iter().any(|(_, c)| *c == 164));

    m.action(
        &ctx(UTILITY, t),
        &transfer,
        Some(key_transfer(&before.master_key, &ek, &ak)),
    )
    .unwrap();
    let after = f.keys(0);
    assert_eq!(after.global_encryption_key, ek);
    assert_eq!(after.global_authentication_key, ak);
    assert_eq!(after.master_key, before.master_key);
    assert_eq!(after.hls_utility, before.hls_utility);
    assert_eq!(
        f.keys(1),
        meter_sim::MeterKeys::derive(11, 1),
        "other meters keep theirs"
    );
    assert!(transaction_codes(&mut m, t).contains(&(t, 164)));
}

/// Writes a one-day-profile calendar whose zones start at `starts` ((hour, minute), zone).
fn write_passive(m: &mut MeterObjects, t: DateTime<Utc>, name: &[u8], starts: &[((u8, u8), u16)]) {
    let c = ctx(UTILITY, t);
    let cal = "0.0.13.0.0.255";
    let actions = starts
        .iter()
        .map(|((h, mi), z)| {
            Data::Structure(vec![
                Data::OctetString(vec![*h, *mi, 0, 0]),
                Data::OctetString(vec![0, 0, 10, 0, 100, 255]),
                Data::LongUnsigned(*z),
            ])
        })
        .collect();
    let values = [
        Data::OctetString(name.to_vec()),
        Data::Array(vec![Data::Structure(vec![
            Data::OctetString(b"S1".to_vec()),
            Data::OctetString(vec![0xFF, 0xFF, 1, 1, 0xFF, 0, 0, 0, 0, 0x80, 0, 0xFF]),
            Data::OctetString(b"W1".to_vec()),
        ])]),
        Data::Array(vec![Data::Structure(
            std::iter::once(Data::OctetString(b"W1".to_vec()))
                .chain((0..7).map(|_| Data::Unsigned(3)))
                .collect(),
        )]),
        Data::Array(vec![Data::Structure(vec![
            Data::Unsigned(3),
            Data::Array(actions),
        ])]),
    ];
    for (a, v) in (6..=9).zip(values) {
        m.set(&c, &attr(20, cal, a), None, v).unwrap();
    }
}

fn zone_wh(m: &mut MeterObjects, now: DateTime<Utc>, zone: u8) -> i64 {
    m.get(
        &ctx(READER, now),
        &attr(3, &format!("1.0.1.8.{zone}.255"), 2),
        None,
    )
    .unwrap()
    .as_i64()
    .unwrap()
}

fn calendar_name(m: &mut MeterObjects, now: DateTime<Utc>, attribute: i8) -> Data {
    m.get(
        &ctx(READER, now),
        &attr(20, "0.0.13.0.0.255", attribute),
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn an_activated_calendar_changes_the_tod_zones_from_then_on() {
    let f = fleet().await;
    let mut m = f.objects(0);
    let t = t0();
    let c = ctx(UTILITY, t);
    let cal = "0.0.13.0.0.255";
    // Shapes are checked.
    for (a, bad) in [
        (6, Data::Unsigned(1)),
        (
            7,
            Data::Array(vec![Data::Structure(vec![Data::Unsigned(1)])]),
        ),
        (
            8,
            Data::Array(vec![Data::Structure(vec![Data::OctetString(vec![])])]),
        ),
        (
            9,
            Data::Array(vec![Data::Structure(vec![Data::Unsigned(1), Data::Null])]),
        ),
        (10, Data::OctetString(vec![1, 2, 3])),
    ] {
        assert_eq!(
            m.set(&c, &attr(20, cal, a), None, bad),
            Err(DataAccessResult::TypeUnmatched),
            "attribute {a}"
        );
    }
    let zones_before: Vec<i64> = (1..=8).map(|z| zone_wh(&mut m, t, z)).collect();
    assert!(
        zones_before[4..].iter().all(|w| *w == 0),
        "zones 5-8 unused by default"
    );

    // All day in zone 6 from 00:00, zone 7 from 18:00.
    write_passive(&mut m, t, b"TOD-2027", &[((0, 0), 6), ((18, 0), 7)]);
    assert_eq!(
        calendar_name(&mut m, t, 6),
        Data::OctetString(b"TOD-2027".to_vec())
    );
    assert_eq!(
        calendar_name(&mut m, t, 2),
        Data::OctetString(b"URJTOD".to_vec())
    );
    m.action(&c, &method(20, cal, 1), Some(Data::Integer(0)))
        .unwrap();
    assert_eq!(
        calendar_name(&mut m, t, 2),
        Data::OctetString(b"TOD-2027".to_vec())
    );
    assert!(transaction_codes(&mut m, t).contains(&(t, 155)));

    // A day later: zones 1-4 stood still, 6 and 7 took all the energy.
    let later = t + Duration::days(1);
    let zones_after: Vec<i64> = (1..=8).map(|z| zone_wh(&mut m, later, z)).collect();
    assert_eq!(zones_after[..4], zones_before[..4]);
    assert!(zones_after[5] > 0 && zones_after[6] > 0, "{zones_after:?}");
    let total_before: i64 = zones_before.iter().sum();
    let total_after: i64 = zones_after.iter().sum();
    let kwh = |now| {
        m.clone()
            .get(&ctx(READER, now), &attr(3, "1.0.1.8.0.255", 2), None)
            .unwrap()
            .as_i64()
            .unwrap()
    };
    assert_eq!(total_after - total_before, kwh(later) - kwh(t));
}

#[tokio::test]
async fn a_calendar_activates_at_its_activation_time() {
    let f = fleet().await;
    let mut m = f.objects(1);
    let t = t0();
    write_passive(&mut m, t, b"LATER", &[((0, 0), 2)]);
    let at = t + Duration::hours(1);
    m.set(
        &ctx(UTILITY, t),
        &attr(20, "0.0.13.0.0.255", 10),
        None,
        Data::OctetString(dlms::DateTime::from_utc(at, ist()).to_bytes().to_vec()),
    )
    .unwrap();
    let half = t + Duration::minutes(30);
    assert_eq!(
        calendar_name(&mut m, half, 2),
        Data::OctetString(b"URJTOD".to_vec())
    );
    assert_eq!(time_of(&calendar_name(&mut m, half, 10)), at);
    let after = t + Duration::hours(2);
    assert_eq!(
        calendar_name(&mut m, after, 2),
        Data::OctetString(b"LATER".to_vec())
    );
    assert!(transaction_codes(&mut m, after).contains(&(at, 155)));
}

const BILLING: &str = "1.0.98.1.0.255";

fn billing_dates(m: &mut MeterObjects, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    rows(
        m.get(&ctx(READER, now), &attr(7, BILLING, 2), None)
            .unwrap(),
    )
    .iter()
    .map(|r| time_of(&r.as_items().unwrap()[0]))
    .collect()
}

#[tokio::test]
async fn billing_dates_follow_a_new_day_of_month() {
    let f = fleet().await;
    let mut m = f.objects(0);
    let t = t0();
    let schedule = attr(22, "0.0.15.0.0.255", 4);
    let on = |day: u8| {
        Data::Array(vec![Data::Structure(vec![
            Data::OctetString(vec![0, 0, 0, 0]),
            Data::OctetString(vec![0xFF, 0xFF, 0xFF, day, 0xFF]),
        ])])
    };
    assert_eq!(
        m.set(&ctx(UTILITY, t), &schedule, None, on(31)),
        Err(DataAccessResult::OtherReason)
    );
    assert_eq!(
        m.set(&ctx(UTILITY, t), &schedule, None, Data::Array(vec![])),
        Err(DataAccessResult::TypeUnmatched)
    );
    let before = billing_dates(&mut m, t);
    m.set(&ctx(UTILITY, t), &schedule, None, on(15)).unwrap();
    assert_eq!(m.get(&ctx(READER, t), &schedule, None).unwrap(), on(15));
    let later = t + Duration::days(70);
    let after = billing_dates(&mut m, later);
    // The history is kept; new billing dates fall on the 15th at 00:00 IST.
    for d in before.iter().filter(|d| **d >= after[0]) {
        assert!(after.contains(d), "billing date {d} lost");
    }
    let new: Vec<_> = after.iter().filter(|d| **d > t).collect();
    assert_eq!(new.len(), 2, "{new:?}");
    for d in new {
        let local = d.with_timezone(&ist());
        assert_eq!(chrono::Datelike::day(&local), 15);
        assert_eq!((local.hour(), local.minute()), (0, 0));
    }
    assert!(transaction_codes(&mut m, t).contains(&(t, 154)));
}

#[tokio::test]
async fn block_load_rows_follow_a_new_capture_period() {
    let f = fleet().await;
    let mut m = f.objects(1);
    let t = t0();
    let period = attr(1, "1.0.0.8.4.255", 2);
    assert_eq!(
        m.set(
            &ctx(UTILITY, t),
            &period,
            None,
            Data::DoubleLongUnsigned(1200)
        ),
        Err(DataAccessResult::OtherReason)
    );
    m.set(
        &ctx(UTILITY, t),
        &period,
        None,
        Data::DoubleLongUnsigned(1800),
    )
    .unwrap();
    let later = t + Duration::hours(6);
    assert_eq!(
        m.get(&ctx(READER, later), &period, None).unwrap(),
        Data::DoubleLongUnsigned(1800)
    );
    assert_eq!(
        m.get(&ctx(READER, later), &attr(7, "1.0.99.1.0.255", 4), None)
            .unwrap(),
        Data::DoubleLongUnsigned(1800)
    );
    let block = rows(
        m.get(
            &ctx(READER, later),
            &attr(7, "1.0.99.1.0.255", 2),
            Some(&range(t - Duration::hours(2), later)),
        )
        .unwrap(),
    );
    let ends: Vec<DateTime<Utc>> = block
        .iter()
        .map(|r| time_of(&r.as_items().unwrap()[0]))
        .collect();
    for pair in ends.windows(2) {
        let step = pair[1] - pair[0];
        if pair[1] <= t {
            assert_eq!(step, Duration::minutes(15), "before the change");
        } else {
            assert_eq!(
                step,
                Duration::minutes(30),
                "after the change at {}",
                pair[0]
            );
        }
    }
    assert_eq!(*ends.last().unwrap(), later);
    // The energy of the rows still sums to the register's advance.
    let wh: i64 = block
        .iter()
        .filter(|r| time_of(&r.as_items().unwrap()[0]) > t - Duration::hours(2))
        .map(|r| r.as_items().unwrap()[3].as_i64().unwrap())
        .sum();
    let kwh = |now| {
        m.clone()
            .get(&ctx(READER, now), &attr(3, "1.0.1.8.0.255", 2), None)
            .unwrap()
            .as_i64()
            .unwrap()
    };
    assert_eq!(wh, kwh(later) - kwh(t - Duration::hours(2)));
    assert!(transaction_codes(&mut m, t).contains(&(t, 153)));
}

#[tokio::test]
async fn md_reset_clears_the_maximum_demand_and_logs_166() {
    let f = fleet().await;
    let mut m = f.objects(0);
    let t = t0();
    let md = attr(4, "1.0.1.6.0.255", 2);
    let before = m.get(&ctx(READER, t), &md, None).unwrap().as_i64().unwrap();
    assert!(before > 0);
    m.action(
        &ctx(UTILITY, t),
        &method(9, "0.0.10.0.1.255", 1),
        Some(Data::LongUnsigned(1)),
    )
    .unwrap();
    assert_eq!(m.get(&ctx(READER, t), &md, None).unwrap().as_i64(), Some(0));
    // It builds up again from the intervals after the reset, not from before it.
    let later = t + Duration::hours(3);
    let again = m
        .get(&ctx(READER, later), &md, None)
        .unwrap()
        .as_i64()
        .unwrap();
    assert!(again > 0);
    let when = time_of(
        &m.get(&ctx(READER, later), &attr(4, "1.0.1.6.0.255", 5), None)
            .unwrap(),
    );
    assert!(when > t && when <= later, "MD at {when}");
    assert!(transaction_codes(&mut m, t).contains(&(t, 166)));
}

#[tokio::test]
async fn payment_mode_and_load_limit_read_back_and_log() {
    let f = fleet().await;
    let mut m = f.objects(1);
    let t = t0();
    let mode = attr(1, "0.0.94.96.20.255", 2);
    for (i, (value, code)) in [(1u8, 212i64), (0, 211), (1, 212)].into_iter().enumerate() {
        let now = t + Duration::minutes(i as i64);
        m.set(&ctx(UTILITY, now), &mode, None, Data::Unsigned(value))
            .unwrap();
        assert_eq!(
            m.get(&ctx(READER, now), &mode, None).unwrap(),
            Data::Unsigned(value)
        );
        let log = rows(
            m.get(&ctx(READER, now), &attr(7, "0.0.99.98.4.255", 2), None)
                .unwrap(),
        );
        let last = log.last().unwrap().as_items().unwrap();
        // The first write may not change the mode (no event then); the others do.
        if i > 0 {
            assert_eq!((time_of(&last[0]), last[1].as_i64()), (now, Some(code)));
        }
    }
    assert_eq!(
        m.set(&ctx(UTILITY, t), &mode, None, Data::Unsigned(7)),
        Err(DataAccessResult::TypeUnmatched)
    );
    let limit = attr(71, "0.0.17.0.0.255", 3);
    m.set(
        &ctx(UTILITY, t),
        &limit,
        None,
        Data::DoubleLongUnsigned(2500),
    )
    .unwrap();
    assert_eq!(
        m.get(&ctx(READER, t), &limit, None).unwrap(),
        Data::DoubleLongUnsigned(2500)
    );
    assert!(transaction_codes(&mut m, t).contains(&(t, 158)));
}

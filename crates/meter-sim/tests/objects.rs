//! The object model of a simulated meter, called in memory (no sockets): types of what it
//! answers, access rights per association, profile consistency, relay, image transfer, outages.

use std::net::Ipv4Addr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use dlms::apdu::{
    ActionResult, AttributeDescriptor, CaptureColumn, DataAccessResult, Mechanism,
    MethodDescriptor, SelectiveAccess,
};
use dlms::association::{CosemObjects, RequestContext};
use dlms::datetime::ist;
use dlms::{Data, ObisCode};
use meter_sim::{Fleet, FleetConfig, FleetHandle};

const PUBLIC: u16 = 16;
const READER: u16 = 32;
const UTILITY: u16 = 48;
const FIRMWARE: u16 = 80;

async fn fleet(seed: u64) -> FleetHandle {
    Fleet::offline(FleetConfig::new(3, Ipv4Addr::new(127, 1, 0, 1), 4059, seed))
        .await
        .unwrap()
}

fn ctx(client_sap: u16, now: DateTime<Utc>) -> RequestContext {
    let mechanism = match client_sap {
        16 => Mechanism::None,
        32 => Mechanism::Lls,
        _ => Mechanism::Hls,
    };
    RequestContext {
        client_sap,
        mechanism,
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

fn rows(d: &Data) -> &[Data] {
    match d {
        Data::Array(rows) => rows,
        other => panic!("not an array: {other:?}"),
    }
}

fn row_time(row: &Data) -> DateTime<Utc> {
    row.as_items().unwrap()[0]
        .as_datetime()
        .unwrap()
        .to_utc(ist())
        .unwrap()
}

fn range(from: DateTime<Utc>, to: DateTime<Utc>) -> SelectiveAccess {
    SelectiveAccess::by_range(
        &dlms::DateTime::from_utc(from, ist()),
        &dlms::DateTime::from_utc(to, ist()),
        &[],
    )
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 7, 0).unwrap()
}

const BLOCK: &str = "1.0.99.1.0.255";

#[tokio::test]
async fn answers_with_the_types_a_meter_uses() {
    let f = fleet(1).await;
    let mut m = f.objects(0);
    let c = ctx(READER, now());
    let clock = m.get(&c, &attr(8, "0.0.1.0.0.255", 2), None).unwrap();
    let dt = clock.as_datetime().expect("12-byte date-time");
    assert!(matches!(clock, Data::OctetString(ref b) if b.len() == 12));
    assert_eq!(dt.deviation, -330);
    let drift = (dt.to_utc(ist()).unwrap() - now()).num_seconds().abs();
    assert!(drift < 5, "clock off by {drift} s");

    let su = m.get(&c, &attr(3, "1.0.12.7.0.255", 3), None).unwrap();
    assert_eq!(su, Data::Structure(vec![Data::Integer(-1), Data::Enum(35)]));
    let v = m.get(&c, &attr(3, "1.0.12.7.0.255", 2), None).unwrap();
    let volts = v.as_i64().unwrap() as f64 / 10.0;
    assert!((200.0..260.0).contains(&volts), "{volts} V");
    let kwh = m.get(&c, &attr(3, "1.0.1.8.0.255", 2), None).unwrap();
    assert!(matches!(kwh, Data::DoubleLongUnsigned(v) if v > 0));
    assert_eq!(
        m.get(&c, &attr(3, "1.0.1.8.0.255", 3), None).unwrap(),
        Data::Structure(vec![Data::Integer(0), Data::Enum(30)])
    );
    let serial = m.get(&c, &attr(1, "0.0.96.1.0.255", 2), None).unwrap();
    assert_eq!(serial.as_octets().unwrap(), b"URJ10000001");
    let ln = m.get(&c, &attr(3, "1.0.12.7.0.255", 1), None).unwrap();
    assert_eq!(ln, Data::OctetString(vec![1, 0, 12, 7, 0, 255]));

    // Block load: capture objects start with the clock, then the IS 15959 channels.
    let cols = m.get(&c, &attr(7, BLOCK, 3), None).unwrap();
    let cols: Vec<CaptureColumn> = rows(&cols)
        .iter()
        .map(|d| CaptureColumn::from_data(d).unwrap())
        .collect();
    assert_eq!(cols[0], CaptureColumn::CLOCK);
    let names: Vec<String> = cols.iter().map(|c| c.logical_name.to_string()).collect();
    assert_eq!(
        names,
        [
            "0.0.1.0.0.255",
            "1.0.12.27.0.255",
            "1.0.11.27.0.255",
            "1.0.1.29.0.255",
            "1.0.9.29.0.255",
            "1.0.2.29.0.255",
            "1.0.10.29.0.255"
        ]
    );
    assert_eq!(
        m.get(&c, &attr(7, BLOCK, 4), None).unwrap(),
        Data::DoubleLongUnsigned(900)
    );
    let in_use = m
        .get(&c, &attr(7, BLOCK, 7), None)
        .unwrap()
        .as_i64()
        .unwrap();
    assert!(in_use > 60 * 96 && in_use <= 90 * 96, "{in_use}");

    // Rows by range: inside the range, 15 minutes apart (outside outages), typed.
    let to = now() - chrono::Duration::minutes(7);
    let from = to - chrono::Duration::hours(2);
    let got = m
        .get(&c, &attr(7, BLOCK, 2), Some(&range(from, to)))
        .unwrap();
    let got = rows(&got);
    assert!(!got.is_empty() && got.len() <= 9);
    for r in got {
        let t = row_time(r);
        assert!(t >= from && t <= to);
        assert_eq!(t.timestamp() % 900, 0);
        let items = r.as_items().unwrap();
        assert_eq!(items.len(), 7);
        assert!(matches!(items[1], Data::LongUnsigned(_)));
        assert!(matches!(items[3], Data::DoubleLongUnsigned(_)));
    }
    // Scaler profile of the block load.
    let scalers = m.get(&c, &attr(7, "1.0.94.91.4.255", 2), None).unwrap();
    assert_eq!(rows(&scalers).len(), 1);
    // By entry: the first two entries, columns 1-2.
    let two = m
        .get(
            &c,
            &attr(7, BLOCK, 2),
            Some(&SelectiveAccess::by_entry(1, 2, 1, 2)),
        )
        .unwrap();
    assert_eq!(rows(&two).len(), 2);
    assert_eq!(rows(&two)[0].as_items().unwrap().len(), 2);
}

#[tokio::test]
async fn access_rights_follow_the_association() {
    let f = fleet(1).await;
    let mut m = f.objects(1);
    let t = now();
    assert_eq!(
        m.get(&ctx(PUBLIC, t), &attr(7, BLOCK, 2), None),
        Err(DataAccessResult::ReadWriteDenied)
    );
    assert!(
        m.get(&ctx(PUBLIC, t), &attr(8, "0.0.1.0.0.255", 2), None)
            .is_ok()
    );
    assert!(m.get(&ctx(READER, t), &attr(7, BLOCK, 3), None).is_ok());
    assert_eq!(
        m.action(
            &ctx(READER, t),
            &method(70, "0.0.96.3.10.255", 1),
            Some(Data::Integer(0))
        ),
        Err(ActionResult::ReadWriteDenied)
    );
    assert_eq!(
        m.get(&ctx(READER, t), &attr(8, "9.9.9.9.9.9", 2), None),
        Err(DataAccessResult::ObjectUndefined)
    );
    // Image transfer only on the firmware association.
    assert_eq!(
        m.action(
            &ctx(UTILITY, t),
            &method(18, "0.0.44.0.0.255", 1),
            Some(Data::Structure(vec![
                Data::OctetString(b"x".to_vec()),
                Data::DoubleLongUnsigned(1)
            ]))
        ),
        Err(ActionResult::ReadWriteDenied)
    );
}

#[tokio::test]
async fn same_seed_same_meter_data() {
    let (a, b, c) = (fleet(7).await, fleet(7).await, fleet(8).await);
    let access = range(now() - chrono::Duration::days(3), now());
    let read = |f: &FleetHandle| {
        f.objects(2)
            .get(&ctx(READER, now()), &attr(7, BLOCK, 2), Some(&access))
            .unwrap()
    };
    assert_eq!(read(&a), read(&b));
    assert_ne!(read(&a), read(&c));
    assert_eq!(a.keys(2), b.keys(2));
    assert_ne!(a.keys(2), c.keys(2));
}

#[tokio::test]
async fn profiles_are_consistent() {
    let f = fleet(3).await;
    let mut m = f.objects(0);
    let c = ctx(READER, now());
    let get = |m: &mut meter_sim::objects::MeterObjects, ln: &str, a: Option<&SelectiveAccess>| {
        m.get(&c, &attr(7, ln, 2), a).unwrap()
    };
    // Daily snapshots: consecutive snapshots differ by the block energy between them.
    let daily = get(&mut m, "1.0.99.2.0.255", None);
    let daily = rows(&daily);
    assert!(daily.len() >= 60);
    let (d0, d1) = (&daily[daily.len() - 3], &daily[daily.len() - 2]);
    let (t0, t1) = (row_time(d0), row_time(d1));
    let kwh = |r: &Data| r.as_items().unwrap()[1].as_i64().unwrap();
    let blocks = get(
        &mut m,
        BLOCK,
        Some(&range(t0 + chrono::Duration::seconds(1), t1)),
    );
    let sum: i64 = rows(&blocks)
        .iter()
        .map(|r| r.as_items().unwrap()[3].as_i64().unwrap())
        .sum();
    assert_eq!(
        kwh(d1) - kwh(d0),
        sum,
        "daily delta = sum of the day's blocks"
    );
    assert_eq!((t1 - t0).num_hours(), 24);

    // Billing: cumulative kWh at the billing date = the daily snapshot at that midnight.
    let billing = get(&mut m, "1.0.98.1.0.255", None);
    let last_bill = rows(&billing).last().unwrap().as_items().unwrap().to_vec();
    let bill_at = last_bill[0].as_datetime().unwrap().to_utc(ist()).unwrap();
    let snap = daily
        .iter()
        .find(|r| row_time(r) == bill_at)
        .expect("a snapshot at the billing date");
    assert_eq!(last_bill[2].as_i64(), Some(kwh(snap)));
    let zones: i64 = last_bill[3..11].iter().map(|d| d.as_i64().unwrap()).sum();
    assert_eq!(zones, kwh(snap), "TOD zones add up to the total");

    // Instantaneous kWh = the register.
    let inst = get(&mut m, "1.0.94.91.0.255", None);
    let inst = rows(&inst)[0].as_items().unwrap().to_vec();
    let reg = m.get(&c, &attr(3, "1.0.1.8.0.255", 2), None).unwrap();
    assert_eq!(inst[8], reg);
}

#[tokio::test]
async fn relay_disconnect_and_reconnect() {
    let f = fleet(1).await;
    let mut m = f.objects(0);
    let t = now();
    let dc = "0.0.96.3.10.255";
    assert_eq!(
        m.get(&ctx(READER, t), &attr(70, dc, 2), None),
        Ok(Data::Boolean(true))
    );
    m.action(&ctx(UTILITY, t), &method(70, dc, 1), Some(Data::Integer(0)))
        .unwrap();
    assert_eq!(
        m.get(&ctx(READER, t), &attr(70, dc, 2), None),
        Ok(Data::Boolean(false))
    );
    assert_eq!(
        m.get(&ctx(READER, t), &attr(70, dc, 3), None),
        Ok(Data::Enum(0))
    );
    let esw = m
        .get(&ctx(READER, t), &attr(1, "0.0.94.91.18.255", 2), None)
        .unwrap();
    assert!(matches!(esw, Data::BitString(ref b) if b.len == 128 && b.bit(84)));
    let t2 = t + chrono::Duration::minutes(40);
    m.action(
        &ctx(UTILITY, t2),
        &method(70, dc, 2),
        Some(Data::Integer(0)),
    )
    .unwrap();
    assert_eq!(
        m.get(&ctx(READER, t2), &attr(70, dc, 2), None),
        Ok(Data::Boolean(true))
    );
    assert_eq!(
        m.get(&ctx(READER, t2), &attr(70, dc, 3), None),
        Ok(Data::Enum(1))
    );
    let log = m
        .get(&ctx(READER, t2), &attr(7, "0.0.99.98.6.255", 2), None)
        .unwrap();
    let codes: Vec<i64> = rows(&log)
        .iter()
        .map(|r| r.as_items().unwrap()[1].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [301, 302]);
    assert_eq!(
        m.get(&ctx(READER, t2), &attr(1, "0.0.96.11.6.255", 2), None),
        Ok(Data::LongUnsigned(302))
    );
}

fn image_block(n: u32, data: Vec<u8>) -> Option<Data> {
    Some(Data::Structure(vec![
        Data::DoubleLongUnsigned(n),
        Data::OctetString(data),
    ]))
}

#[tokio::test]
async fn firmware_upgrade_through_image_transfer() {
    let f = fleet(1).await;
    let mut m = f.objects(0);
    let t = now();
    let it = "0.0.44.0.0.255";
    let fw = ctx(FIRMWARE, t);
    let size = m
        .get(&fw, &attr(18, it, 2), None)
        .unwrap()
        .as_i64()
        .unwrap() as usize;
    let image: Vec<u8> = (0..size * 3 - 10).map(|i| i as u8).collect();
    let init = Some(Data::Structure(vec![
        Data::OctetString(b"URJ-SIM-2.0.0".to_vec()),
        Data::DoubleLongUnsigned(image.len() as u32),
    ]));

    // Missing block: verify fails.
    m.action(&fw, &method(18, it, 1), init.clone()).unwrap();
    m.action(
        &fw,
        &method(18, it, 2),
        image_block(0, image[..size].to_vec()),
    )
    .unwrap();
    m.action(
        &fw,
        &method(18, it, 2),
        image_block(2, image[2 * size..].to_vec()),
    )
    .unwrap();
    assert_eq!(
        m.get(&fw, &attr(18, it, 4), None),
        Ok(Data::DoubleLongUnsigned(1))
    );
    assert!(
        m.action(&fw, &method(18, it, 3), Some(Data::Integer(0)))
            .is_err()
    );
    assert_eq!(m.get(&fw, &attr(18, it, 6), None), Ok(Data::Enum(4)));
    assert!(
        m.action(&fw, &method(18, it, 4), Some(Data::Integer(0)))
            .is_err()
    );
    let version = m.get(&fw, &attr(1, "1.0.0.2.0.255", 2), None).unwrap();
    assert_eq!(version.as_octets().unwrap(), b"URJ-SIM-1.0.0");

    // Happy path.
    m.action(&fw, &method(18, it, 1), init).unwrap();
    for (n, chunk) in image.chunks(size).enumerate() {
        m.action(
            &fw,
            &method(18, it, 2),
            image_block(n as u32, chunk.to_vec()),
        )
        .unwrap();
    }
    m.action(&fw, &method(18, it, 3), Some(Data::Integer(0)))
        .unwrap();
    assert_eq!(m.get(&fw, &attr(18, it, 6), None), Ok(Data::Enum(3)));
    m.action(&fw, &method(18, it, 4), Some(Data::Integer(0)))
        .unwrap();
    let version = m.get(&fw, &attr(1, "1.0.0.2.0.255", 2), None).unwrap();
    assert_eq!(version.as_octets().unwrap(), b"URJ-SIM-2.0.0");
    let log = m
        .get(&ctx(READER, t), &attr(7, "0.0.99.98.3.255", 2), None)
        .unwrap();
    assert!(
        rows(&log)
            .iter()
            .any(|r| r.as_items().unwrap()[1] == Data::LongUnsigned(157))
    );
}

#[tokio::test]
async fn power_off_leaves_a_gap_matching_events_101_102() {
    let f = fleet(1).await;
    let mut m = f.objects(2);
    let start = Utc::now();
    f.power_off(2, Duration::from_secs(3600));
    let later = start + chrono::Duration::hours(3);
    let c = ctx(READER, later);
    let got = m
        .get(
            &c,
            &attr(7, BLOCK, 2),
            Some(&range(start - chrono::Duration::hours(1), later)),
        )
        .unwrap();
    let times: Vec<DateTime<Utc>> = rows(&got).iter().map(row_time).collect();
    let off_from = start.timestamp();
    let off_to = off_from + 3600;
    assert!(
        times
            .iter()
            .all(|t| t.timestamp() < off_from || t.timestamp() >= off_to)
    );
    let gap = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_minutes())
        .max()
        .unwrap();
    assert!(gap >= 60, "largest gap {gap} min");
    let log = m.get(&c, &attr(7, "0.0.99.98.2.255", 2), None).unwrap();
    let ev: Vec<(i64, i64)> = rows(&log)
        .iter()
        .map(|r| {
            (
                row_time(r).timestamp(),
                r.as_items().unwrap()[1].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(ev.contains(&(off_from, 101)), "{ev:?}");
    assert!(ev.contains(&(off_to, 102)), "{ev:?}");
    let _ = ObisCode::new(0, 0, 0, 0, 0, 0);
}

#[tokio::test]
async fn clock_set_logs_event_151() {
    let f = fleet(1).await;
    let mut m = f.objects(0);
    let t = now();
    let target = t + chrono::Duration::minutes(10);
    let value = Data::OctetString(dlms::DateTime::from_utc(target, ist()).to_bytes().to_vec());
    m.set(
        &ctx(UTILITY, t),
        &attr(8, "0.0.1.0.0.255", 2),
        None,
        value.clone(),
    )
    .unwrap();
    assert_eq!(
        m.set(&ctx(READER, t), &attr(8, "0.0.1.0.0.255", 2), None, value),
        Err(DataAccessResult::ReadWriteDenied)
    );
    let clock = m
        .get(&ctx(READER, t), &attr(8, "0.0.1.0.0.255", 2), None)
        .unwrap();
    let read = clock.as_datetime().unwrap().to_utc(ist()).unwrap();
    assert!((read - target).num_seconds().abs() <= 1);
    let log = m
        .get(&ctx(READER, t), &attr(7, "0.0.99.98.3.255", 2), None)
        .unwrap();
    assert!(
        rows(&log)
            .iter()
            .any(|r| r.as_items().unwrap()[1] == Data::LongUnsigned(151))
    );
}

#[tokio::test]
async fn skew_fault_moves_the_clock() {
    let f = fleet(1).await;
    let skew = meter_sim::Fault::with_param(meter_sim::FaultKind::Skew, Duration::from_secs(600));
    f.set_fault(1, meter_sim::FaultKind::Skew, Some(skew));
    let t = Utc::now();
    let clock = f
        .objects(1)
        .get(&ctx(PUBLIC, t), &attr(8, "0.0.1.0.0.255", 2), None)
        .unwrap();
    let off = (clock.as_datetime().unwrap().to_utc(ist()).unwrap() - t)
        .num_seconds()
        .abs();
    assert!((595..=605).contains(&off), "clock off by {off} s");
}

#[tokio::test]
async fn too_many_meters_for_the_open_file_limit_is_an_error_before_binding() {
    let config = FleetConfig::new(2_000_000, Ipv4Addr::new(127, 1, 0, 1), 4059, 1);
    let err = Fleet::start(config).await.unwrap_err();
    assert!(
        matches!(err, meter_sim::SimError::OpenFileLimit { .. }),
        "{err}"
    );
    let config = FleetConfig::new(10, Ipv4Addr::new(10, 0, 0, 1), 4059, 1);
    assert!(matches!(
        Fleet::start(config).await,
        Err(meter_sim::SimError::NotLoopback(_))
    ));
}

const BALANCE: &str = "0.0.94.96.24.255";
const RECHARGE: &str = "0.0.94.96.21.255";

#[tokio::test]
async fn recharges_and_balances_that_would_overflow_are_refused() {
    let f = fleet(1).await;
    let mut m = f.objects(0);
    let t = now();
    let u = ctx(UTILITY, t);
    // A balance at the top of the range: any recharge overflows and is refused.
    m.set(&u, &attr(3, BALANCE, 2), None, Data::Long64(i64::MAX))
        .unwrap();
    assert_eq!(
        m.set(&u, &attr(3, RECHARGE, 2), None, Data::Long64(1)),
        Err(DataAccessResult::OtherReason)
    );
    assert_eq!(
        m.set(&u, &attr(3, RECHARGE, 2), None, Data::Long64(i64::MAX)),
        Err(DataAccessResult::OtherReason)
    );
    // A balance at the bottom: reading it later (consumption subtracted) does not overflow.
    m.set(&u, &attr(3, BALANCE, 2), None, Data::Long64(i64::MIN))
        .unwrap();
    let later = ctx(UTILITY, t + chrono::Duration::days(3));
    assert!(m.get(&later, &attr(3, BALANCE, 2), None).is_ok());
    assert_eq!(
        m.set(&later, &attr(3, RECHARGE, 2), None, Data::Long64(i64::MIN)),
        Err(DataAccessResult::OtherReason)
    );
    // An ordinary recharge is still added to the balance.
    m.set(&u, &attr(3, BALANCE, 2), None, Data::Long64(1_000))
        .unwrap();
    m.set(&u, &attr(3, RECHARGE, 2), None, Data::Long64(500))
        .unwrap();
    // Scaler −2: the raw values are the paise written.
    assert_eq!(
        m.get(&u, &attr(3, BALANCE, 2), None).unwrap(),
        Data::DoubleLong(1_500)
    );
    assert_eq!(
        m.get(&u, &attr(3, RECHARGE, 2), None).unwrap(),
        Data::DoubleLong(500)
    );
}

#[tokio::test]
async fn writes_the_simulator_does_not_model_are_refused_and_the_lls_secret_is_modelled() {
    let f = fleet(1).await;
    let mut m = f.objects(0);
    let t = now();
    let u = ctx(UTILITY, t);
    // Writable in the catalogue, not modelled: refused, not pretended.
    for (class_id, ln, attribute, value) in [
        (8, "0.0.1.0.0.255", 3, Data::Long(-330)),
        (71, "0.0.17.0.0.255", 2, Data::Structure(vec![])),
        (22, "0.0.15.0.0.255", 2, Data::Structure(vec![])),
        (1, "0.0.94.96.19.255", 2, Data::Unsigned(1)),
        (3, "0.0.94.96.23.255", 2, Data::DoubleLong(5)),
        (40, "0.4.25.9.0.255", 2, Data::Array(vec![])),
    ] {
        assert_eq!(
            m.set(&u, &attr(class_id, ln, attribute), None, value),
            Err(DataAccessResult::ReadWriteDenied),
            "{class_id} {ln} {attribute}"
        );
    }
    assert_eq!(
        m.set(
            &ctx(FIRMWARE, t),
            &attr(18, "0.0.44.0.0.255", 5),
            None,
            Data::Boolean(false)
        ),
        Err(DataAccessResult::ReadWriteDenied)
    );
    // The LLS secret: an octet string, logged as event 161 (the association itself is checked
    // over TCP).
    let lls = attr(15, "0.0.40.0.2.255", 7);
    assert_eq!(
        m.set(&u, &lls, None, Data::OctetString(Vec::new())),
        Err(DataAccessResult::OtherReason)
    );
    assert_eq!(
        m.set(&u, &lls, None, Data::Unsigned(1)),
        Err(DataAccessResult::TypeUnmatched)
    );
    m.set(
        &u,
        &lls,
        None,
        Data::OctetString(b"NewSecret-2026".to_vec()),
    )
    .unwrap();
    let log = m
        .get(&ctx(READER, t), &attr(7, "0.0.99.98.3.255", 2), None)
        .unwrap();
    assert!(
        rows(&log)
            .iter()
            .any(|r| r.as_items().unwrap()[1] == Data::LongUnsigned(161))
    );
}

#[tokio::test]
async fn a_range_restricted_by_anything_but_the_clock_is_refused() {
    let f = fleet(1).await;
    let mut m = f.objects(0);
    let t = now();
    let with = |restricting: CaptureColumn| {
        let mut access = range(t - chrono::Duration::hours(2), t);
        let Data::Structure(items) = &mut access.parameters else {
            panic!("a range descriptor is a structure")
        };
        items[0] = restricting.to_data();
        access
    };
    for restricting in [
        CaptureColumn::new(3, "1.0.1.8.0.255".parse().unwrap(), 2),
        CaptureColumn::new(8, "0.0.1.0.0.255".parse().unwrap(), 3),
        CaptureColumn::new(1, "0.0.1.0.0.255".parse().unwrap(), 2),
    ] {
        assert_eq!(
            m.get(
                &ctx(READER, t),
                &attr(7, BLOCK, 2),
                Some(&with(restricting))
            ),
            Err(DataAccessResult::OtherReason),
            "{restricting:?}"
        );
    }
    let clock = with(CaptureColumn::CLOCK);
    let got = m
        .get(&ctx(READER, t), &attr(7, BLOCK, 2), Some(&clock))
        .unwrap();
    assert!(!rows(&got).is_empty());
}

//! The push listener over real TCP: alerts pushed by the meter simulator (tamper, power failure
//! and restoration) become alarms, outages and event-log reads on the bus; pushes from strangers,
//! with a wrong key, replayed or garbled are rejected and counted without hurting later pushes.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bus::{Bus, Subscription};
use chrono::Utc;
use dlms::apdu::DataNotification;
use dlms::association::server::{PushProtection, build_push_notification};
use dlms::data::BitString;
use dlms::datetime::ist;
use dlms::security::{GlobalKeys, InvocationCounter, SecurityPolicy, Suite0Cipher};
use dlms::{Data, wrapper};
use hes::keystore::MasterKey;
use hes::push::{PushListener, PushMetrics, PushOptions};
use hes::runtime::{HeadEnd, HesConfig};
use is15959::catalogue::obis;
use meter_sim::{EventKind, Fault, FaultKind, Fleet, FleetConfig, FleetHandle, MeterKeys};
use model::{HesMessage, MeterSerial, OutageState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const SEED: u64 = 11;

struct Rig {
    head_end: HeadEnd,
    metrics: std::sync::Arc<PushMetrics>,
    sub: Subscription,
    fleet: FleetHandle,
    push_addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// A head-end over a fresh store with the fleet's meters imported, its outbox relayed to a bus
/// subscription, a push listener on 127.0.0.1, and the fleet pushing to it.
async fn rig(base: Ipv4Addr, meters: u32, options: PushOptions) -> Rig {
    let bus = Bus::in_process();
    let sub = bus.subscribe("test", &["alarm", "outage", "events"], 1024);
    let config = HesConfig {
        response_timeout: Duration::from_secs(3),
        ..HesConfig::default()
    };
    let (head_end, dir) = common::head_end(config, MasterKey::from_bytes([9; 32]), bus);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let push_addr = listener.local_addr().unwrap();
    let push = PushListener::new(head_end.clone(), options);
    let metrics = push.metrics();
    tokio::spawn(async move { push.run(listener, std::future::pending()).await });
    common::spawn_relay(&head_end);

    let mut fc = FleetConfig::new(meters, base, 0, SEED);
    fc.scheduled_outages = false;
    fc.push_to = Some(push_addr);
    let fleet = Fleet::start(fc).await.unwrap();
    common::import_fleet(&head_end, &fleet, dir.path()).await;
    Rig {
        head_end,
        metrics,
        sub,
        fleet,
        push_addr,
        _dir: dir,
    }
}

/// For tests that push from a raw socket on 127.0.0.1 in a meter's name: do not take that for
/// the meter moving.
fn fixed_addresses() -> PushOptions {
    PushOptions {
        follow_addresses: false,
        ..PushOptions::default()
    }
}

fn serial(fleet: &FleetHandle, meter: u32) -> MeterSerial {
    MeterSerial::new(fleet.keys(meter).serial).unwrap()
}

/// The next message on the bus that `want` accepts (others are acknowledged and skipped).
async fn next_where(
    sub: &mut Subscription,
    within: Duration,
    what: &str,
    mut want: impl FnMut(&HesMessage) -> bool,
) -> HesMessage {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let delivery = tokio::time::timeout_at(deadline, sub.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} within {within:?}"))
            .expect("bus open");
        let message = delivery.envelope.message.clone();
        delivery.ack();
        if want(&message) {
            return message;
        }
    }
}

/// An IS 15959 alert push (device id, push setup, clock, ESW) as a TCP wrapper frame.
fn alert_frame(
    system_title: [u8; 8],
    keys: &GlobalKeys,
    serial: &str,
    esw_bits: &[usize],
    counter: u32,
) -> Vec<u8> {
    let clock = dlms::DateTime::from_utc(Utc::now(), ist()).to_bytes();
    let body = Data::Structure(vec![
        Data::OctetString(serial.as_bytes().to_vec()),
        Data::OctetString(obis::PUSH_SETUP_ALERT.bytes().to_vec()),
        Data::OctetString(clock.to_vec()),
        Data::bit_string(BitString::with_bits(128, esw_bits.iter().copied())),
    ]);
    let cipher = Suite0Cipher::new(keys);
    let mut ic = InvocationCounter::new(counter);
    let apdu = build_push_notification(
        &DataNotification {
            long_invoke_id_and_priority: counter,
            date_time: Some(clock.to_vec()),
            body,
        },
        Some(PushProtection {
            system_title,
            cipher: &cipher,
            policy: SecurityPolicy::AuthenticatedEncrypted,
            invocation_counter: &mut ic,
        }),
    )
    .unwrap();
    wrapper::encode(1, 64, &apdu).unwrap()
}

fn meter_keys(keys: &MeterKeys) -> GlobalKeys {
    GlobalKeys {
        encryption: keys.global_encryption_key,
        authentication: keys.global_authentication_key,
    }
}

/// Whether the listener closed the connection (after whatever it sent, which is nothing).
async fn closed_by_listener(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

const MAGNET_BIT: usize = 81;
const COVER_OPEN_BIT: usize = 83;

#[tokio::test]
async fn tamper_alerts_become_alarms_then_the_tamper_events_are_read() {
    let mut r = rig(Ipv4Addr::new(127, 31, 0, 1), 2, PushOptions::default()).await;
    let meter = serial(&r.fleet, 1);

    r.fleet.trigger_event(1, EventKind::CoverOpen);
    let alarm = next_where(&mut r.sub, Duration::from_secs(10), "cover alarm", |m| {
        matches!(m, HesMessage::Alarm(_))
    })
    .await;
    let HesMessage::Alarm(alarm) = alarm else {
        unreachable!()
    };
    assert_eq!(alarm.meter, meter);
    assert!(
        alarm.esw_bits.iter().any(|b| b == "cover_open"),
        "{alarm:?}"
    );
    assert!(alarm.esw_indices.contains(&(COVER_OPEN_BIT as u16)));
    let t = alarm
        .meter_time
        .expect("the push carries the meter's clock");
    assert!((t - Utc::now()).num_seconds().abs() < 60, "meter time {t}");

    let events = next_where(&mut r.sub, Duration::from_secs(20), "cover events", |m| {
        matches!(m, HesMessage::Events { .. })
    })
    .await;
    let HesMessage::Events { meter: m, events } = events else {
        unreachable!()
    };
    assert_eq!(m, meter);
    assert!(events.iter().any(|e| e.code == 251), "{events:?}");

    // A second apart: two one-event `Events` messages in the same second of the same meter
    // have the same idempotency key (`HesMessage::key`), and the outbox keeps only the first.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    r.fleet.trigger_event(1, EventKind::MagnetOn);
    let HesMessage::Alarm(alarm) =
        next_where(&mut r.sub, Duration::from_secs(10), "magnet alarm", |m| {
            matches!(m, HesMessage::Alarm(_))
        })
        .await
    else {
        unreachable!()
    };
    assert_eq!(alarm.meter, meter);
    assert!(alarm.esw_bits.iter().any(|b| b == "magnet"), "{alarm:?}");
    let HesMessage::Events { events, .. } =
        next_where(&mut r.sub, Duration::from_secs(20), "magnet events", |m| {
            matches!(m, HesMessage::Events { .. })
        })
        .await
    else {
        unreachable!()
    };
    assert!(events.iter().any(|e| e.code == 201), "{events:?}");
    // The cover opening was read already: not published a second time.
    assert!(!events.iter().any(|e| e.code == 251), "{events:?}");
    assert_eq!(r.metrics.accepted(), 2);
    assert_eq!(r.metrics.follow_ups(), (2, 0));
}

#[tokio::test]
async fn power_failure_and_restoration_become_outages_and_power_events() {
    let mut r = rig(Ipv4Addr::new(127, 32, 0, 1), 1, PushOptions::default()).await;
    let meter = serial(&r.fleet, 0);

    r.fleet.power_off(0, Duration::from_secs(2));
    let started = next_where(&mut r.sub, Duration::from_secs(10), "outage start", |m| {
        matches!(m, HesMessage::Outage { .. })
    })
    .await;
    let HesMessage::Outage {
        meter: m, state, ..
    } = started
    else {
        unreachable!()
    };
    assert_eq!((m, state), (meter.clone(), OutageState::Started));

    let mut restored = false;
    let mut codes = Vec::new();
    let deadline = Duration::from_secs(40);
    while !(restored && codes.contains(&101) && codes.contains(&102)) {
        match next_where(&mut r.sub, deadline, "restoration and power events", |m| {
            matches!(m, HesMessage::Outage { .. } | HesMessage::Events { .. })
        })
        .await
        {
            HesMessage::Outage {
                state, meter: m, ..
            } => {
                assert_eq!(m, meter);
                assert_eq!(state, OutageState::Restored);
                restored = true;
            }
            HesMessage::Events { events, .. } => codes.extend(events.iter().map(|e| e.code)),
            _ => unreachable!(),
        }
    }
}

#[tokio::test]
async fn bad_pushes_are_rejected_and_counted_and_good_ones_still_work() {
    let mut r = rig(Ipv4Addr::new(127, 33, 0, 1), 1, fixed_addresses()).await;
    let keys = r.fleet.keys(0);

    // A stranger.
    let stranger = GlobalKeys {
        encryption: [1; 16],
        authentication: [2; 16],
    };
    let mut s = TcpStream::connect(r.push_addr).await.unwrap();
    s.write_all(&alert_frame(
        *b"XYZ00001",
        &stranger,
        "X1",
        &[MAGNET_BIT],
        5,
    ))
    .await
    .unwrap();
    assert!(closed_by_listener(&mut s).await);
    assert_eq!(r.metrics.rejected("unknown_sender"), 1);

    // The meter's system title, the wrong key: the tag does not verify.
    let mut s = TcpStream::connect(r.push_addr).await.unwrap();
    s.write_all(&alert_frame(
        keys.system_title,
        &stranger,
        &keys.serial,
        &[MAGNET_BIT],
        5,
    ))
    .await
    .unwrap();
    assert!(closed_by_listener(&mut s).await);
    assert_eq!(r.metrics.rejected("authentication"), 1);

    // Garbage.
    let mut s = TcpStream::connect(r.push_addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(closed_by_listener(&mut s).await);
    assert_eq!(r.metrics.rejected("framing"), 1);

    // A well-formed alert in clear: alerts must be ciphered.
    let plain = build_push_notification(
        &DataNotification {
            long_invoke_id_and_priority: 9,
            date_time: None,
            body: Data::Structure(vec![Data::OctetString(keys.serial.as_bytes().to_vec())]),
        },
        None,
    )
    .unwrap();
    let mut s = TcpStream::connect(r.push_addr).await.unwrap();
    s.write_all(&wrapper::encode(1, 64, &plain).unwrap())
        .await
        .unwrap();
    assert!(closed_by_listener(&mut s).await);
    assert_eq!(r.metrics.rejected("unciphered"), 1);
    assert_eq!(r.metrics.accepted(), 0);

    // None of that reached the bus, and the meter's own push still works.
    r.fleet.trigger_event(0, EventKind::MagnetOn);
    let HesMessage::Alarm(alarm) = next_where(&mut r.sub, Duration::from_secs(10), "alarm", |m| {
        matches!(m, HesMessage::Alarm(_))
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(alarm.meter.as_str(), keys.serial);
    assert!(alarm.esw_bits.iter().any(|b| b == "magnet"));
    assert_eq!(r.metrics.accepted(), 1);

    let text = r.metrics.render_prometheus();
    assert!(text.contains("urja_hes_push_rejected_total{reason=\"authentication\"} 1"));
    assert!(text.contains("urja_hes_push_rejected_total{reason=\"unknown_sender\"} 1"));
    assert!(text.contains("urja_hes_push_alarms_total 1"));
    assert!(text.contains("urja_hes_push_notifications_total 5"));
}

#[tokio::test]
async fn a_replayed_notification_is_rejected() {
    let mut r = rig(Ipv4Addr::new(127, 34, 0, 1), 1, fixed_addresses()).await;
    let keys = r.fleet.keys(0);
    let frame = alert_frame(
        keys.system_title,
        &meter_keys(&keys),
        &keys.serial,
        &[COVER_OPEN_BIT],
        1_000,
    );
    let mut s = TcpStream::connect(r.push_addr).await.unwrap();
    s.write_all(&frame).await.unwrap();
    let HesMessage::Alarm(alarm) = next_where(&mut r.sub, Duration::from_secs(10), "alarm", |m| {
        matches!(m, HesMessage::Alarm(_))
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(alarm.meter.as_str(), keys.serial);

    s.write_all(&frame).await.unwrap();
    assert!(closed_by_listener(&mut s).await);
    assert_eq!(r.metrics.rejected("replay"), 1);
    assert_eq!(r.metrics.accepted(), 1);

    // On a new connection too.
    let mut s = TcpStream::connect(r.push_addr).await.unwrap();
    s.write_all(&frame).await.unwrap();
    assert!(closed_by_listener(&mut s).await);
    assert_eq!(r.metrics.rejected("replay"), 2);
}

#[tokio::test]
async fn a_push_from_another_address_records_the_meter_as_moved() {
    let r = rig(Ipv4Addr::new(127, 35, 0, 1), 1, PushOptions::default()).await;
    let keys = r.fleet.keys(0);
    let meter = serial(&r.fleet, 0);
    assert_eq!(
        r.head_end.meter(&meter).unwrap().record().host,
        "127.35.0.1"
    );

    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.35.9.9:0".parse().unwrap()).unwrap();
    let mut s = socket.connect(r.push_addr).await.unwrap();
    s.write_all(&alert_frame(
        keys.system_title,
        &meter_keys(&keys),
        &keys.serial,
        &[],
        7,
    ))
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while r.head_end.meter(&meter).unwrap().record().host != "127.35.9.9" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the move was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        r.head_end.store().meter(&meter).unwrap().unwrap().host,
        "127.35.9.9"
    );
}

#[tokio::test]
async fn a_failed_follow_up_is_recorded_and_tried_once_more() {
    let options = PushOptions {
        follow_up_retry_after: Duration::from_secs(1),
        ..fixed_addresses()
    };
    let mut r = rig(Ipv4Addr::new(127, 36, 0, 1), 1, options).await;
    let meter = serial(&r.fleet, 0);
    r.fleet
        .set_fault(0, FaultKind::Drop, Some(Fault::new(FaultKind::Drop)));

    r.fleet.trigger_event(0, EventKind::CoverOpen);
    next_where(&mut r.sub, Duration::from_secs(10), "alarm", |m| {
        matches!(m, HesMessage::Alarm(_))
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while r.metrics.follow_ups().1 == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed follow-up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.fleet.set_fault(0, FaultKind::Drop, None);

    let HesMessage::Events { events, .. } =
        next_where(&mut r.sub, Duration::from_secs(20), "events", |m| {
            matches!(m, HesMessage::Events { .. })
        })
        .await
    else {
        unreachable!()
    };
    assert!(events.iter().any(|e| e.code == 251), "{events:?}");
    assert_eq!(r.metrics.follow_ups(), (1, 1));
    let follow_ups: Vec<_> = r
        .head_end
        .store()
        .attempts(Utc::now() - chrono::Duration::hours(1), false)
        .unwrap()
        .into_iter()
        .filter(|a| a.job == "alarm_followup" && a.meter == meter)
        .map(|a| (a.attempt, a.outcome.is_ok()))
        .collect();
    assert_eq!(follow_ups, vec![(1, false), (2, true)]);
}

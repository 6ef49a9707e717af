//! Our own client, over the tokio session adapter and real TCP, against the meter simulator:
//! each IS 15959 association, reads that must agree with each other, and the commands a utility
//! sends (relay, clock, firmware).

use std::net::Ipv4Addr;

use chrono::{Duration as Span, DurationRound, Utc};
use dlms::apdu::{AttributeDescriptor, DataAccessResult, SourceDiagnostic};
use dlms::association::client::{ClientError, ClientSecurityState};
use dlms::security::GlobalKeys;
use hes::operations;
use hes::{MeterCredentials, Role, Session, SessionConfig, SessionError, Transport};
use is15959::catalogue::obis;
use is15959::{EventCodes, Unit};
use meter_sim::{Fleet, FleetConfig, FleetHandle, MeterKeys};
use model::{EventCategory, MeterSerial, RelayState};

fn credentials(keys: &MeterKeys) -> MeterCredentials {
    MeterCredentials {
        system_title: keys.system_title,
        global_keys: GlobalKeys {
            encryption: keys.global_encryption_key,
            authentication: keys.global_authentication_key,
        },
        lls_secret: keys.lls_secret.as_bytes().to_vec(),
        hls_utility: keys.hls_utility,
        hls_firmware: keys.hls_firmware,
        master_key: None,
    }
}

fn config(fleet: &FleetHandle, meter: u32, role: Role, creds: &MeterCredentials) -> SessionConfig {
    SessionConfig::new(
        fleet.address(meter),
        Transport::Wrapper,
        role.client_config(creds),
    )
}

async fn start(base: Ipv4Addr, meters: u32) -> FleetHandle {
    let mut config = FleetConfig::new(meters, base, 0, 7);
    // Every meter must answer: no outage may fall inside the test.
    config.scheduled_outages = false;
    Fleet::start(config).await.expect("fleet starts")
}

async fn open(fleet: &FleetHandle, meter: u32, role: Role) -> Session {
    let creds = credentials(&fleet.keys(meter));
    let mut counters = ClientSecurityState::default();
    Session::open(&config(fleet, meter, role, &creds), &mut counters)
        .await
        .unwrap_or_else(|e| panic!("{role:?} association: {e}"))
}

async fn close(session: Session) {
    let mut counters = ClientSecurityState::default();
    session.release(&mut counters).await.expect("release");
}

#[tokio::test]
async fn public_client_reads_the_clock_and_nothing_private() {
    let fleet = start(Ipv4Addr::new(127, 41, 0, 1), 1).await;
    let mut s = open(&fleet, 0, Role::Public).await;
    let clock = operations::read_clock(&mut s).await.expect("clock");
    assert!(
        (clock - Utc::now()).num_seconds().abs() < 60,
        "meter clock {clock} is not now"
    );
    let block_load = AttributeDescriptor {
        class_id: 7,
        instance: obis::BLOCK_LOAD_PROFILE,
        attribute_id: 2,
    };
    match s.get(block_load, None).await {
        Err(SessionError::Refused(r)) => assert_eq!(r, DataAccessResult::ReadWriteDenied),
        other => panic!("public client read the block load: {other:?}"),
    }
    close(s).await;
    fleet.stop().await;
}

#[tokio::test]
async fn meter_reader_reads_registers_and_profiles_that_agree() {
    let fleet = start(Ipv4Addr::new(127, 42, 0, 1), 2).await;
    let serial = MeterSerial::new(fleet.keys(1).serial).unwrap();
    let mut s = open(&fleet, 1, Role::MeterReader).await;

    let kwh = operations::read_register(&mut s, obis_code("1.0.1.8.0.255"))
        .await
        .expect("kWh");
    assert_eq!(kwh.scaler_unit.unit, Unit(30), "cumulative import is in Wh");
    assert!(kwh.value().expect("numeric") > 0.0);

    let columns = operations::read_capture_objects(&mut s, obis::BLOCK_LOAD_PROFILE)
        .await
        .unwrap();
    let names: Vec<String> = columns.iter().map(|c| c.logical_name.to_string()).collect();
    assert_eq!(names[0], "0.0.1.0.0.255", "the clock is the first column");
    assert!(
        names.contains(&"1.0.1.29.0.255".to_string()),
        "block kWh import is captured: {names:?}"
    );

    // Yesterday's block load sums exactly to the difference of the daily snapshots around it.
    let today = Utc::now()
        .with_timezone(&dlms::datetime::ist())
        .date_naive();
    let midnight = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .unwrap()
            .and_local_timezone(dlms::datetime::ist())
            .unwrap()
            .to_utc()
    };
    let (start_of_day, end_of_day) = (midnight(today - Span::days(1)), midnight(today));
    let block_load = operations::read_profile_layout(&mut s, obis::BLOCK_LOAD_PROFILE)
        .await
        .expect("block-load layout");
    let intervals = operations::read_block_load(
        &mut s,
        &block_load,
        &serial,
        start_of_day + Span::minutes(15),
        end_of_day,
    )
    .await
    .expect("block load");
    let daily_layout = operations::read_profile_layout(&mut s, obis::DAILY_LOAD_PROFILE)
        .await
        .expect("daily load layout");
    let daily_rows =
        operations::read_profile_range(&mut s, obis::DAILY_LOAD_PROFILE, start_of_day, end_of_day)
            .await
            .expect("daily load");
    let daily = daily_layout
        .reader(&serial)
        .daily(&daily_rows)
        .expect("daily rows");
    assert_eq!(daily.len(), 2, "two midnight snapshots: {daily:?}");
    let sum: i64 = intervals.iter().map(|r| r.import_wh).sum();
    assert_eq!(
        sum,
        daily[1].import_wh - daily[0].import_wh,
        "intervals sum to the daily delta"
    );
    for pair in intervals.windows(2) {
        assert_eq!(
            pair[1].interval_end - pair[0].interval_end,
            Span::minutes(15)
        );
    }
    assert!(intervals.iter().all(|r| r.import_wh >= 0));
    let last = intervals.last().expect("rows").interval_end;
    assert_eq!(last, end_of_day.duration_trunc(Span::minutes(15)).unwrap());
    close(s).await;
    fleet.stop().await;
}

#[tokio::test]
async fn utility_settings_operates_the_relay_and_sets_the_clock() {
    let fleet = start(Ipv4Addr::new(127, 43, 0, 1), 1).await;
    let mut s = open(&fleet, 0, Role::UtilitySettings).await;

    let off = operations::disconnect_relay(&mut s)
        .await
        .expect("disconnect");
    assert!(!off.output_connected);
    assert_eq!(off.control_state, RelayState::Disconnected);
    let on = operations::reconnect_relay(&mut s)
        .await
        .expect("reconnect");
    assert!(on.output_connected);
    assert_eq!(on.control_state, RelayState::Connected);

    let target = Utc::now() + Span::minutes(90);
    operations::set_clock(&mut s, target)
        .await
        .expect("set clock");
    let read_back = operations::read_clock(&mut s).await.expect("clock");
    assert!(
        (read_back - target).num_seconds().abs() < 5,
        "clock {read_back} after set {target}"
    );
    operations::set_clock(&mut s, Utc::now())
        .await
        .expect("set clock back");
    let mut counters = ClientSecurityState::default();
    s.release(&mut counters).await.expect("release");

    // A second association continues the invocation counter instead of restarting it.
    let creds = credentials(&fleet.keys(0));
    let next = counters.invocation_counter.peek();
    assert!(next > 1);
    let s2 = Session::open(
        &config(&fleet, 0, Role::UtilitySettings, &creds),
        &mut counters,
    )
    .await
    .expect("second association");
    assert!(counters.invocation_counter.peek() > next);
    s2.release(&mut counters).await.expect("release");

    // The relay events are in the control log, the clock set in the transaction log.
    let serial = MeterSerial::new(fleet.keys(0).serial).unwrap();
    let mut r = open(&fleet, 0, Role::MeterReader).await;
    let from = Utc::now() - Span::hours(2);
    let to = Utc::now() + Span::hours(3);
    for (category, wanted) in [
        (EventCategory::Control, vec![301u16, 302]),
        (EventCategory::Transaction, vec![151]),
    ] {
        let log = obis::event_log(category as u8);
        let layout = operations::read_profile_layout(&mut r, log)
            .await
            .expect("event log layout");
        let rows = operations::read_profile_range(&mut r, log, from, to)
            .await
            .expect("event log");
        let events = layout
            .reader(&serial)
            .events(category, EventCodes::builtin(), &rows)
            .expect("events");
        let got: Vec<u16> = events.iter().map(|e| e.code).collect();
        for code in wanted {
            assert!(
                got.contains(&code),
                "event {code} missing from {category:?} log: {got:?}"
            );
        }
    }
    close(r).await;
    fleet.stop().await;
}

#[tokio::test]
async fn firmware_association_transfers_and_activates_an_image() {
    let fleet = start(Ipv4Addr::new(127, 44, 0, 1), 1).await;
    let mut s = open(&fleet, 0, Role::Firmware).await;
    let before = operations::read_firmware_version(&mut s)
        .await
        .expect("version");
    let image: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut seen = Vec::new();
    operations::transfer_image(&mut s, b"URJ-FW-2.1.0", &image, |done, total| {
        seen.push((done, total))
    })
    .await
    .expect("image transfer");
    let (done, total) = *seen.last().expect("progress reported");
    assert_eq!(done, total);
    let after = operations::read_firmware_version(&mut s)
        .await
        .expect("version");
    assert_ne!(after, before);
    assert_eq!(after, "URJ-FW-2.1.0");
    close(s).await;
    fleet.stop().await;
}

#[tokio::test]
async fn wrong_secrets_are_rejected() {
    let fleet = start(Ipv4Addr::new(127, 45, 0, 1), 1).await;
    let mut creds = credentials(&fleet.keys(0));
    creds.lls_secret = b"not-the-password".to_vec();
    creds.hls_utility[0] ^= 0xFF;
    for role in [Role::MeterReader, Role::UtilitySettings] {
        let mut counters = ClientSecurityState::default();
        let result = Session::open(&config(&fleet, 0, role, &creds), &mut counters).await;
        match result {
            Err(SessionError::Association(
                ClientError::Rejected { .. } | ClientError::HlsRefused(_),
            )) => {}
            other => panic!("{role:?} with a wrong secret: {other:?}"),
        }
    }
    // Wrong global keys: the meter cannot decipher the InitiateRequest and says so.
    let mut creds = credentials(&fleet.keys(0));
    creds.global_keys.encryption[3] ^= 0x55;
    let mut counters = ClientSecurityState::default();
    let result = Session::open(
        &config(&fleet, 0, Role::UtilitySettings, &creds),
        &mut counters,
    )
    .await;
    match result {
        Err(SessionError::Association(ClientError::Rejected { diagnostic, .. })) => {
            assert_eq!(diagnostic, SourceDiagnostic::AUTHENTICATION_FAILURE)
        }
        other => panic!("association with wrong keys: {other:?}"),
    }
    fleet.stop().await;
}

#[tokio::test]
async fn a_failed_association_does_not_lock_the_meter_out() {
    let fleet = start(Ipv4Addr::new(127, 47, 0, 1), 1).await;
    let good = credentials(&fleet.keys(0));
    let mut bad = good.clone();
    bad.hls_utility[5] ^= 0x01;
    // The meter accepts the ciphered AARQ (and its invocation counter), then pass 3 fails.
    let mut counters = ClientSecurityState::default();
    let failed = Session::open(
        &config(&fleet, 0, Role::UtilitySettings, &bad),
        &mut counters,
    )
    .await;
    assert!(matches!(
        failed,
        Err(SessionError::Association(ClientError::HlsRefused(_)))
    ));
    assert!(
        counters.invocation_counter.peek() > 1,
        "the used counters are remembered"
    );
    // The retry must not reuse a counter the meter has seen: it would be a replay (and, with
    // the same key and system title, a repeated GCM nonce).
    let s = Session::open(
        &config(&fleet, 0, Role::UtilitySettings, &good),
        &mut counters,
    )
    .await
    .expect("retry after a failed association");
    s.release(&mut counters).await.expect("release");
    fleet.stop().await;
}

fn obis_code(s: &str) -> dlms::ObisCode {
    s.parse().expect("OBIS literal")
}

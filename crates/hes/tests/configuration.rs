//! Configuration and commands over real TCP against the meter simulator, with the head-end's own
//! operations: TOD calendar, load limit, capture period, billing date, payment mode, MD reset,
//! key transfer; each read back and found in the meter's event logs. Also the typed profile
//! reads (daily, billing, instantaneous, event log) and retries against a flaky meter.

use std::net::Ipv4Addr;

use chrono::{Duration as Span, Utc};
use dlms::apdu::{ActionResult, Conformance, SourceDiagnostic};
use dlms::association::client::{ClientError, ClientSecurityState};
use dlms::security::GlobalKeys;
use hes::operations::{self, TouCalendar};
use hes::session::Refusal;
use hes::{MeterCredentials, Role, Session, SessionConfig, SessionError, Transport};
use is15959::catalogue::obis;
use meter_sim::{Fault, FaultKind, Fleet, FleetConfig, FleetHandle, MeterKeys};
use model::TouSwitch;
use model::{EventCategory, MeterSerial, PaymentMode};

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
        master_key: Some(keys.master_key),
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
    let mut config = FleetConfig::new(meters, base, 0, 23);
    // Every meter must answer: no outage may fall inside the test.
    config.scheduled_outages = false;
    Fleet::start(config).await.expect("fleet starts")
}

/// The head-end's invocation counter goes on from one ciphered association to the next (the
/// meter refuses a counter it has seen: a replay): each test keeps one `counters`.
async fn open_with(
    fleet: &FleetHandle,
    meter: u32,
    role: Role,
    creds: &MeterCredentials,
    counters: &mut ClientSecurityState,
) -> Result<Session, SessionError> {
    Session::open(&config(fleet, meter, role, creds), counters).await
}

async fn open(
    fleet: &FleetHandle,
    meter: u32,
    role: Role,
    counters: &mut ClientSecurityState,
) -> Session {
    open_with(
        fleet,
        meter,
        role,
        &credentials(&fleet.keys(meter)),
        counters,
    )
    .await
    .unwrap_or_else(|e| panic!("{role:?} association: {e}"))
}

async fn close(session: Session, counters: &mut ClientSecurityState) {
    session.release(counters).await.expect("release");
}

fn serial(fleet: &FleetHandle, meter: u32) -> MeterSerial {
    MeterSerial::new(fleet.keys(meter).serial).unwrap()
}

/// Event codes of one log over the last hours, read as the meter reader.
async fn event_codes(fleet: &FleetHandle, meter: u32, category: EventCategory) -> Vec<u16> {
    let mut unciphered = ClientSecurityState::default();
    let mut r = open(fleet, meter, Role::MeterReader, &mut unciphered).await;
    let layout = operations::read_profile_layout(&mut r, obis::event_log(category as u8))
        .await
        .expect("event log layout");
    let events = operations::read_event_log(
        &mut r,
        &layout,
        &serial(fleet, meter),
        category,
        Utc::now() - Span::hours(2),
        Utc::now() + Span::hours(1),
    )
    .await
    .expect("event log");
    assert!(events.iter().all(|e| e.category == category));
    close(r, &mut unciphered).await;
    events.iter().map(|e| e.code).collect()
}

fn assert_logged(codes: &[u16], code: u16) {
    assert!(codes.contains(&code), "event {code} missing from {codes:?}");
}

#[tokio::test]
async fn tod_calendar_is_written_activated_and_read_back() {
    let fleet = start(Ipv4Addr::new(127, 91, 0, 1), 1).await;
    let mut counters = ClientSecurityState::default();
    let mut s = open(&fleet, 0, Role::UtilitySettings, &mut counters).await;
    let before = operations::read_active_calendar_name(&mut s)
        .await
        .expect("calendar name");
    let calendar = TouCalendar {
        name: "UPPCL-TOD-27".into(),
        switches: [(0, 0, 1), (5, 0, 2), (10, 0, 3), (17, 30, 4), (23, 0, 1)]
            .map(|(hour, minute, zone)| TouSwitch { hour, minute, zone })
            .to_vec(),
        activate_at: None,
    };
    operations::write_activity_calendar(&mut s, &calendar)
        .await
        .expect("write calendar");
    // Written to the passive calendar: the active one is unchanged until activation.
    assert_eq!(
        operations::read_active_calendar_name(&mut s).await.unwrap(),
        before
    );
    operations::activate_passive_calendar(&mut s)
        .await
        .expect("activate");
    assert_eq!(
        operations::read_active_calendar_name(&mut s).await.unwrap(),
        "UPPCL-TOD-27"
    );
    // A calendar that cannot be right is not sent.
    let bad = TouCalendar {
        switches: vec![TouSwitch {
            hour: 7,
            minute: 0,
            zone: 9,
        }],
        ..calendar
    };
    assert!(matches!(
        operations::write_activity_calendar(&mut s, &bad).await,
        Err(SessionError::InvalidRequest(_))
    ));
    close(s, &mut counters).await;
    assert_logged(
        &event_codes(&fleet, 0, EventCategory::Transaction).await,
        155,
    );
    fleet.stop().await;
}

#[tokio::test]
async fn load_limit_capture_period_and_billing_date_are_set_and_read_back() {
    let fleet = start(Ipv4Addr::new(127, 92, 0, 1), 1).await;
    let mut counters = ClientSecurityState::default();
    let mut s = open(&fleet, 0, Role::UtilitySettings, &mut counters).await;
    assert_eq!(
        operations::set_load_limit(&mut s, 3_500).await.unwrap(),
        3_500
    );
    assert_eq!(operations::read_load_limit(&mut s).await.unwrap(), 3_500);

    assert_eq!(operations::read_capture_period(&mut s).await.unwrap(), 900);
    assert_eq!(
        operations::set_capture_period(&mut s, 1800).await.unwrap(),
        1800
    );
    assert!(matches!(
        operations::set_capture_period(&mut s, 1200).await,
        Err(SessionError::InvalidRequest(_))
    ));
    assert_eq!(
        operations::set_demand_integration_period(&mut s, 1800)
            .await
            .unwrap(),
        1800
    );

    assert_eq!(operations::read_billing_date(&mut s).await.unwrap(), 1);
    assert_eq!(operations::set_billing_date(&mut s, 15).await.unwrap(), 15);
    assert!(matches!(
        operations::set_billing_date(&mut s, 31).await,
        Err(SessionError::InvalidRequest(_))
    ));
    close(s, &mut counters).await;

    // The meter reader may read the limit but not change it: the refusal says what it was.
    let mut r = open(&fleet, 0, Role::MeterReader, &mut counters).await;
    match operations::set_load_limit(&mut r, 100).await {
        Err(SessionError::CommandRefused {
            what,
            reason: Refusal::Set(_),
        }) => assert!(what.contains("load limit"), "{what}"),
        other => panic!("meter reader set the load limit: {other:?}"),
    }
    close(r, &mut counters).await;

    let codes = event_codes(&fleet, 0, EventCategory::Transaction).await;
    for code in [158, 153, 152, 154] {
        assert_logged(&codes, code);
    }
    fleet.stop().await;
}

#[tokio::test]
async fn payment_mode_switches_prepaid_postpaid_prepaid() {
    let fleet = start(Ipv4Addr::new(127, 93, 0, 1), 1).await;
    let mut counters = ClientSecurityState::default();
    let mut s = open(&fleet, 0, Role::UtilitySettings, &mut counters).await;
    for mode in [
        PaymentMode::Prepaid,
        PaymentMode::Postpaid,
        PaymentMode::Prepaid,
    ] {
        assert_eq!(
            operations::set_payment_mode(&mut s, mode).await.unwrap(),
            mode
        );
        assert_eq!(operations::read_payment_mode(&mut s).await.unwrap(), mode);
    }
    close(s, &mut counters).await;
    let codes = event_codes(&fleet, 0, EventCategory::Other).await;
    assert_logged(&codes, 211);
    assert_logged(&codes, 212);
    fleet.stop().await;
}

#[tokio::test]
async fn md_reset_clears_the_maximum_demand() {
    let fleet = start(Ipv4Addr::new(127, 94, 0, 1), 1).await;
    let mut counters = ClientSecurityState::default();
    let meter = serial(&fleet, 0);
    let mut s = open(&fleet, 0, Role::UtilitySettings, &mut counters).await;
    let layout = operations::read_profile_layout(&mut s, obis::INSTANTANEOUS_PROFILE)
        .await
        .expect("instantaneous layout");
    let before = operations::read_instantaneous(&mut s, &layout, &meter)
        .await
        .expect("instantaneous");
    let md = before.md_w.expect("MD in the instantaneous profile");
    assert!(md.value > 0.0 && md.at.is_some(), "{md:?}");
    let reset_at = Utc::now();
    operations::md_reset(&mut s).await.expect("MD reset");
    let after = operations::read_instantaneous(&mut s, &layout, &meter)
        .await
        .expect("instantaneous");
    let md = after.md_w.expect("MD in the instantaneous profile");
    // Zero, unless a demand interval ended between the reset and this read.
    assert!(
        md.value == 0.0 && md.at.is_none() || md.at.is_some_and(|at| at > reset_at),
        "MD after the reset: {md:?}"
    );
    assert!(after.import_wh >= before.import_wh, "energy is not reset");
    close(s, &mut counters).await;
    assert_logged(
        &event_codes(&fleet, 0, EventCategory::Transaction).await,
        166,
    );
    fleet.stop().await;
}

#[tokio::test]
async fn key_transfer_rotates_the_global_keys_for_the_next_association() {
    let fleet = start(Ipv4Addr::new(127, 95, 0, 1), 1).await;
    let mut counters = ClientSecurityState::default();
    let old = credentials(&fleet.keys(0));
    let master = old.master_key.expect("the sim key file has the master key");
    let new_keys = GlobalKeys {
        encryption: [0xA5; 16],
        authentication: [0x5A; 16],
    };

    // A wrong master key: the meter cannot unwrap, says so, and keeps its keys.
    let mut s = open(&fleet, 0, Role::UtilitySettings, &mut counters).await;
    let mut wrong = master;
    wrong[15] ^= 0x01;
    match operations::key_transfer(&mut s, &wrong, &new_keys).await {
        Err(SessionError::CommandRefused {
            reason: Refusal::Action(ActionResult::OtherReason),
            ..
        }) => {}
        other => panic!("key transfer under a wrong KEK: {other:?}"),
    }
    close(s, &mut counters).await;
    let s = open_with(&fleet, 0, Role::UtilitySettings, &old, &mut counters)
        .await
        .expect("the old keys still work");
    close(s, &mut counters).await;

    // The right master key: this session goes on with the old keys...
    let mut s = open(&fleet, 0, Role::UtilitySettings, &mut counters).await;
    operations::key_transfer(&mut s, &master, &new_keys)
        .await
        .expect("key transfer");
    operations::read_clock(&mut s)
        .await
        .expect("the current association keeps its keys");
    close(s, &mut counters).await;
    let now = fleet.keys(0);
    assert_eq!(now.global_encryption_key, new_keys.encryption);
    assert_eq!(now.global_authentication_key, new_keys.authentication);

    // ... the next one needs the new keys: the old are refused.
    match open_with(&fleet, 0, Role::UtilitySettings, &old, &mut counters).await {
        Err(SessionError::Association(ClientError::Rejected { diagnostic, .. })) => {
            assert_eq!(diagnostic, SourceDiagnostic::AUTHENTICATION_FAILURE)
        }
        other => panic!("association with the old keys: {other:?}"),
    }
    let mut rotated = old.clone();
    rotated.global_keys = new_keys;
    let mut s = open_with(&fleet, 0, Role::UtilitySettings, &rotated, &mut counters)
        .await
        .expect("association with the new keys");
    operations::read_clock(&mut s).await.expect("clock");
    close(s, &mut counters).await;
    assert_logged(
        &event_codes(&fleet, 0, EventCategory::Transaction).await,
        164,
    );
    fleet.stop().await;
}

#[tokio::test]
async fn profile_layouts_read_as_a_list_or_one_by_one_agree() {
    let fleet = start(Ipv4Addr::new(127, 98, 0, 1), 1).await;
    let mut counters = ClientSecurityState::default();
    let creds = credentials(&fleet.keys(0));
    let mut listing = config(&fleet, 0, Role::MeterReader, &creds);
    let mut one_by_one = listing.clone();
    one_by_one.client.conformance.0 &= !Conformance::MULTIPLE_REFERENCES;
    listing.client.conformance.0 |= Conformance::MULTIPLE_REFERENCES;
    for profile in [obis::BLOCK_LOAD_PROFILE, obis::DAILY_LOAD_PROFILE] {
        let mut layouts = Vec::new();
        for config in [&listing, &one_by_one] {
            let mut s = Session::open(config, &mut counters)
                .await
                .expect("association");
            let lists = s
                .negotiated()
                .is_some_and(|n| n.conformance.has(Conformance::MULTIPLE_REFERENCES));
            assert_eq!(lists, std::ptr::eq(config, &listing));
            layouts.push(
                operations::read_profile_layout(&mut s, profile)
                    .await
                    .unwrap(),
            );
            close(s, &mut counters).await;
        }
        assert_eq!(layouts[0], layouts[1], "{profile}");
        assert!(!layouts[0].columns.is_empty());
    }
    fleet.stop().await;
}

#[tokio::test]
async fn daily_billing_and_instantaneous_reads_agree() {
    let fleet = start(Ipv4Addr::new(127, 96, 0, 1), 1).await;
    let mut counters = ClientSecurityState::default();
    let meter = serial(&fleet, 0);
    let mut s = open(&fleet, 0, Role::MeterReader, &mut counters).await;
    let now = Utc::now();

    let daily = operations::read_profile_layout(&mut s, obis::DAILY_LOAD_PROFILE)
        .await
        .unwrap();
    let days = operations::read_daily_profile(&mut s, &daily, &meter, now - Span::days(5), now)
        .await
        .expect("daily profile");
    assert!((4..=5).contains(&days.len()), "{} daily rows", days.len());
    assert!(days.windows(2).all(|w| {
        w[1].captured_at - w[0].captured_at == Span::days(1) && w[1].import_wh >= w[0].import_wh
    }));

    let billing = operations::read_profile_layout(&mut s, obis::BILLING_PROFILE)
        .await
        .unwrap();
    let bills =
        operations::read_billing_profile(&mut s, &billing, &meter, now - Span::days(400), now)
            .await
            .expect("billing profile");
    assert!(!bills.is_empty());
    for b in &bills {
        assert_eq!(b.tod_import_wh.iter().sum::<i64>(), b.import_wh);
        assert!(b.billing_date <= now);
    }

    let instantaneous = operations::read_profile_layout(&mut s, obis::INSTANTANEOUS_PROFILE)
        .await
        .unwrap();
    let snap = operations::read_instantaneous(&mut s, &instantaneous, &meter)
        .await
        .expect("instantaneous");
    let last_day = days.last().expect("daily rows");
    let last_bill = bills.last().expect("billing rows");
    let import = snap.import_wh.expect("cumulative import");
    assert!(import >= last_day.import_wh && import >= last_bill.import_wh);
    assert!(snap.voltage_v.is_some_and(|v| (200.0..260.0).contains(&v)));
    close(s, &mut counters).await;
    fleet.stop().await;
}

#[tokio::test]
async fn retries_get_through_to_a_flaky_meter() {
    let fleet = start(Ipv4Addr::new(127, 97, 0, 1), 1).await;
    fleet.set_fault(0, FaultKind::Flaky, Some(Fault::flaky(0.5)));
    let creds = credentials(&fleet.keys(0));
    let mut counters = ClientSecurityState::default();
    let (mut first_try, mut with_retries) = (0, 0);
    for _ in 0..12 {
        let mut attempts = 0;
        let session = loop {
            attempts += 1;
            match Session::open(
                &config(&fleet, 0, Role::UtilitySettings, &creds),
                &mut counters,
            )
            .await
            {
                Ok(s) => break s,
                Err(SessionError::Closed) if attempts < 10 => continue,
                Err(e) => panic!("attempt {attempts}: {e}"),
            }
        };
        if attempts == 1 {
            first_try += 1;
        }
        with_retries += 1;
        session.release(&mut counters).await.expect("release");
    }
    assert_eq!(with_retries, 12, "every session got through with retries");
    assert!(
        first_try < 12,
        "the meter is flaky: some first attempts fail"
    );
    fleet.stop().await;
}

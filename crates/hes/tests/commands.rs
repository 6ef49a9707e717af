//! Commands end to end: a head-end over a temporary store, the simulator's meters imported, the
//! bus subscribed, commands submitted through [`Commands`] and executed over real TCP against
//! `meter_sim::Fleet`; outcomes confirmed by the meter's read-back, the audit trail and the
//! `CommandResult` messages on the bus.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use bus::{Bus, Subscription};
use chrono::{DateTime, Utc};
use hes::commands::{CommandError, CommandStatus, Commands, CommandsConfig};
use hes::keystore::{self, MasterKey};
use hes::plan::RetryPolicy;
use hes::runtime::{HeadEnd, HesConfig};
use meter_sim::{Fault, FaultKind, Fleet, FleetConfig, FleetHandle};
use model::{
    CommandId, CommandKind, CommandRequest, CommandState, HesMessage, MeterSerial, PaymentMode,
    RelayState, TouCalendar, TouSwitch,
};
use store::{CommandRecord, Store};
use tempfile::TempDir;

const RETRY_ATTEMPTS: u32 = 3;

struct Rig {
    fleet: FleetHandle,
    head_end: HeadEnd,
    commands: Commands,
    bus: Bus,
    store: Store,
    started: DateTime<Utc>,
    _dir: TempDir,
}

fn hes_config() -> HesConfig {
    HesConfig {
        response_timeout: Duration::from_secs(1),
        operation_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            attempts: RETRY_ATTEMPTS,
            backoff: Duration::from_millis(100),
            factor: 2,
            max_backoff: Duration::from_millis(500),
            window: Duration::from_secs(60),
        },
        ..HesConfig::default()
    }
}

/// A fleet of `meters`, a head-end with all of them imported and its outbox relay running.
async fn rig(base: Ipv4Addr, meters: u32) -> Rig {
    let mut config = FleetConfig::new(meters, base, 0, 11);
    // Every meter answers unless a test gives it a fault.
    config.scheduled_outages = false;
    let fleet = Fleet::start(config).await.expect("fleet starts");
    let bus = Bus::in_process();
    let (head_end, dir) =
        common::head_end(hes_config(), MasterKey::generate().unwrap(), bus.clone());
    common::import_fleet(&head_end, &fleet, dir.path()).await;
    common::spawn_relay(&head_end);
    let store = head_end.store().clone();
    let commands = Commands::new(head_end.clone(), CommandsConfig::default());
    Rig {
        started: head_end.clock().now(),
        fleet,
        head_end,
        commands,
        bus,
        store,
        _dir: dir,
    }
}

impl Rig {
    fn serial(&self, index: u32) -> MeterSerial {
        MeterSerial::new(self.fleet.keys(index).serial).unwrap()
    }

    fn request(&self, id: &str, index: u32, kind: CommandKind) -> CommandRequest {
        CommandRequest {
            id: CommandId(id.into()),
            meter: self.serial(index),
            kind,
            requested_by: "test".into(),
            batch: None,
        }
    }

    /// Submits a command and waits for its final state.
    async fn run(&self, id: &str, index: u32, kind: CommandKind) -> CommandStatus {
        let submitted = self
            .commands
            .submit(self.request(id, index, kind))
            .await
            .expect("accepted");
        assert!(submitted.created, "{id} is a new command");
        self.wait(id).await
    }

    async fn wait(&self, id: &str) -> CommandStatus {
        tokio::time::timeout(
            Duration::from_secs(120),
            self.commands.wait(&CommandId(id.into())),
        )
        .await
        .expect("the command finishes")
        .expect("the command is known")
    }

    /// Sessions of `job` recorded since the rig started.
    fn sessions(&self, job: &str) -> usize {
        self.store
            .attempts(self.started, false)
            .unwrap()
            .iter()
            .filter(|a| a.job == job)
            .count()
    }
}

fn outcome_of(status: &CommandStatus) -> &model::CommandOutcome {
    status
        .outcome
        .as_ref()
        .expect("a final command has an outcome")
}

fn assert_succeeded(status: &CommandStatus) {
    assert_eq!(
        status.state,
        CommandState::Succeeded,
        "{}: {:?}",
        status.id,
        status.outcome
    );
}

/// The next `n` messages on a subscription, acknowledged.
async fn take(sub: &mut Subscription, n: usize) -> Vec<HesMessage> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let delivery = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} messages arrived", got.len()))
            .expect("bus open");
        got.push(delivery.envelope.message.clone());
        delivery.ack();
    }
    got
}

fn result_of(message: &HesMessage) -> (&CommandId, &model::CommandOutcome) {
    match message {
        HesMessage::CommandResult {
            command, outcome, ..
        } => (command, outcome),
        other => panic!("not a command result: {other:?}"),
    }
}

#[tokio::test]
async fn disconnect_then_reconnect_is_read_back_audited_and_published() {
    let rig = rig(Ipv4Addr::new(127, 61, 0, 1), 1).await;
    let mut results = rig.bus.subscribe("test", &["command_result"], 64);

    let off = rig.run("cut-1", 0, CommandKind::Disconnect).await;
    assert_succeeded(&off);
    assert_eq!(outcome_of(&off).relay, Some(RelayState::Disconnected));
    assert_eq!(outcome_of(&off).attempts, 1);
    let states: Vec<String> = rig
        .commands
        .audit(&off.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.state)
        .collect();
    assert_eq!(states, ["queued", "running", "succeeded"]);

    let on = rig.run("restore-1", 0, CommandKind::Reconnect).await;
    assert_succeeded(&on);
    assert_eq!(outcome_of(&on).relay, Some(RelayState::Connected));

    let published = take(&mut results, 2).await;
    let (first, first_outcome) = result_of(&published[0]);
    let (second, second_outcome) = result_of(&published[1]);
    assert_eq!(first.0, "cut-1");
    assert_eq!(first_outcome.relay, Some(RelayState::Disconnected));
    assert_eq!(second.0, "restore-1");
    assert_eq!(second_outcome.state, CommandState::Succeeded);
    assert_eq!(rig.sessions("command:disconnect"), 1);
    assert_eq!(rig.sessions("command:reconnect"), 1);
}

#[tokio::test]
async fn the_same_command_id_runs_once() {
    let rig = rig(Ipv4Addr::new(127, 62, 0, 1), 1).await;
    let request = rig.request("prepaid-77", 0, CommandKind::Disconnect);
    let (a, b) = tokio::join!(
        rig.commands.submit(request.clone()),
        rig.commands.submit(request.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.created ^ b.created, "exactly one submission is new");
    let done = rig.wait("prepaid-77").await;
    assert_succeeded(&done);

    let again = rig.commands.submit(request.clone()).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.status.state, CommandState::Succeeded);
    assert_eq!(again.status.outcome, done.outcome);
    // Let anything wrongly started by the repeats show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.sessions("command:disconnect"), 1, "one session in all");

    let mut other = request;
    other.kind = CommandKind::Reconnect;
    assert!(matches!(
        rig.commands.submit(other).await,
        Err(CommandError::IdReused(id)) if id.0 == "prepaid-77"
    ));
}

#[tokio::test]
async fn clock_sync_brings_a_skewed_meter_back() {
    let rig = rig(Ipv4Addr::new(127, 63, 0, 1), 1).await;
    rig.fleet.set_fault(
        0,
        FaultKind::Skew,
        Some(Fault::with_param(FaultKind::Skew, Duration::from_secs(600))),
    );
    let synced = rig.run("sync-1", 0, CommandKind::ClockSync).await;
    assert_succeeded(&synced);
    let detail = &outcome_of(&synced).detail;
    let before: i64 = detail
        .split("drift before ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no drift before in {detail:?}"));
    assert!((590..=610).contains(&before.abs()), "{detail}");

    // A later ping (public association, no clock correction of its own) finds it on time.
    let ping = rig.run("ping-1", 0, CommandKind::Ping).await;
    assert_succeeded(&ping);
    assert_eq!(outcome_of(&ping).read_back.as_deref(), Some("live"));
    let off: i64 = outcome_of(&ping)
        .detail
        .split("clock is ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("the ping states the drift");
    assert!(off.abs() <= 5, "{:?}", outcome_of(&ping).detail);
}

#[tokio::test]
async fn a_tod_calendar_is_written_activated_and_read_back() {
    let rig = rig(Ipv4Addr::new(127, 64, 0, 1), 1).await;
    let switch = |hour, zone| TouSwitch {
        hour,
        minute: 0,
        zone,
    };
    let calendar = TouCalendar {
        name: "TOD-2027".into(),
        switches: vec![switch(0, 1), switch(6, 2), switch(18, 3), switch(22, 1)],
        activate_at: None,
    };
    let done = rig
        .run("tod-1", 0, CommandKind::SetTouCalendar(calendar))
        .await;
    assert_succeeded(&done);
    assert_eq!(outcome_of(&done).read_back.as_deref(), Some("TOD-2027"));
}

#[tokio::test]
async fn payment_mode_changes_from_prepaid_to_postpaid() {
    let rig = rig(Ipv4Addr::new(127, 65, 0, 1), 1).await;
    let prepaid = rig
        .run(
            "token-1",
            0,
            CommandKind::SetPaymentMode {
                mode: PaymentMode::Prepaid,
            },
        )
        .await;
    assert_succeeded(&prepaid);
    assert_eq!(outcome_of(&prepaid).read_back.as_deref(), Some("prepaid"));
    let postpaid = rig
        .run(
            "token-2",
            0,
            CommandKind::SetPaymentMode {
                mode: PaymentMode::Postpaid,
            },
        )
        .await;
    assert_succeeded(&postpaid);
    assert_eq!(outcome_of(&postpaid).read_back.as_deref(), Some("postpaid"));
}

#[tokio::test]
async fn the_prepaid_balance_is_written_and_read_back() {
    let rig = rig(Ipv4Addr::new(127, 165, 0, 1), 1).await;
    for (id, paise) in [("bal-1", 123_456), ("bal-2", -30_050)] {
        let done = rig.run(id, 0, CommandKind::SetBalance { paise }).await;
        assert_succeeded(&done);
        assert_eq!(
            outcome_of(&done).read_back.as_deref(),
            Some(paise.to_string().as_str())
        );
    }
}

#[tokio::test]
async fn firmware_upgrade_is_confirmed_by_the_version_read_back() {
    let rig = rig(Ipv4Addr::new(127, 66, 0, 1), 1).await;
    let image: Vec<u8> = (0..30_000u32).map(|i| (i * 17 % 253) as u8).collect();
    let path = rig._dir.path().join("fw-2.1.0.bin");
    std::fs::write(&path, &image).unwrap();
    let upgrade = |id: &str| {
        rig.request(
            id,
            0,
            CommandKind::FirmwareUpgrade {
                image_path: path.to_string_lossy().into_owned(),
                identifier: "URJ-FW-2.1.0".into(),
                expected_version: "URJ-FW-2.1.0".into(),
            },
        )
    };
    rig.commands.submit(upgrade("fw-1")).await.unwrap();
    let done = rig.wait("fw-1").await;
    assert_succeeded(&done);
    assert_eq!(outcome_of(&done).read_back.as_deref(), Some("URJ-FW-2.1.0"));

    // A second upgrade to the same version finds it in place and sends nothing.
    rig.commands.submit(upgrade("fw-2")).await.unwrap();
    let again = rig.wait("fw-2").await;
    assert_succeeded(&again);
    assert!(
        outcome_of(&again).detail.contains("no image sent"),
        "{:?}",
        outcome_of(&again).detail
    );

    // A missing image file fails without a session.
    let missing = rig
        .run(
            "fw-3",
            0,
            CommandKind::FirmwareUpgrade {
                image_path: rig._dir.path().join("nope.bin").to_string_lossy().into(),
                identifier: "URJ-FW-3".into(),
                expected_version: "URJ-FW-3".into(),
            },
        )
        .await;
    assert_eq!(missing.state, CommandState::Failed);
    assert_eq!(rig.sessions("command:firmware_upgrade"), 2);
}

#[tokio::test]
async fn key_rotation_switches_to_new_keys_and_reads_still_work() {
    let rig = rig(Ipv4Addr::new(127, 67, 0, 1), 1).await;
    let serial = rig.serial(0);
    let before = rig.fleet.keys(0);
    let rotated = rig.run("rotate-1", 0, CommandKind::RotateKeys).await;
    assert_succeeded(&rotated);

    let after = rig.fleet.keys(0);
    assert_ne!(
        after.global_encryption_key, before.global_encryption_key,
        "the meter has new keys"
    );
    let in_use = rig.head_end.meter(&serial).unwrap().credentials();
    assert_eq!(in_use.global_keys.encryption, after.global_encryption_key);
    assert_eq!(
        in_use.global_keys.authentication,
        after.global_authentication_key
    );
    // The new keys are the store's active ones, sealed: a restarted head-end would use them.
    let (version, sealed) = rig.store.active_keys(&serial).unwrap().unwrap();
    assert_eq!(version, 2);
    let opened = keystore::open(rig.head_end.master_key(), &serial, version, &sealed).unwrap();
    assert_eq!(opened.global_keys, in_use.global_keys);

    let mut readings = rig.bus.subscribe("readings", &["instantaneous"], 8);
    let read = rig.run("read-1", 0, CommandKind::ReadInstantaneous).await;
    assert_succeeded(&read);
    let published = take(&mut readings, 1).await;
    assert!(matches!(
        &published[0],
        HesMessage::Instantaneous { meter, .. } if *meter == serial
    ));
}

#[tokio::test]
async fn a_group_disconnect_over_100_meters_gives_100_results() {
    let rig = rig(Ipv4Addr::new(127, 68, 0, 1), 100).await;
    let mut results = rig.bus.subscribe("test", &["command_result"], 256);
    let meters: Vec<MeterSerial> = (0..100).map(|i| rig.serial(i)).collect();
    let submitted = rig
        .commands
        .submit_group("cut-feeder-9", &meters, CommandKind::Disconnect, "ops")
        .await
        .unwrap();
    assert_eq!(submitted.len(), 100);
    assert_eq!(
        submitted[0].status.id.0,
        format!("cut-feeder-9/{}", meters[0])
    );
    let status = tokio::time::timeout(
        Duration::from_secs(120),
        rig.commands.wait_batch("cut-feeder-9"),
    )
    .await
    .expect("the group finishes")
    .unwrap();
    assert_eq!(status.commands.len(), 100);
    assert_eq!(status.succeeded, 100, "{status:?}");
    for c in &status.commands {
        assert_eq!(outcome_of(c).relay, Some(RelayState::Disconnected));
    }
    let published = take(&mut results, 100).await;
    let mut ids: Vec<String> = published.iter().map(|m| result_of(m).0.0.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100, "one result per meter");
}

#[tokio::test]
async fn a_group_with_a_silent_meter_fails_that_meter_only() {
    let rig = rig(Ipv4Addr::new(127, 69, 0, 1), 5).await;
    rig.fleet.set_fault(
        2,
        FaultKind::NoAnswer,
        Some(Fault::new(FaultKind::NoAnswer)),
    );
    let meters: Vec<MeterSerial> = (0..5).map(|i| rig.serial(i)).collect();
    rig.commands
        .submit_group("cut-2", &meters, CommandKind::Disconnect, "ops")
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(120), rig.commands.wait_batch("cut-2"))
        .await
        .expect("the group finishes")
        .unwrap();
    assert_eq!(status.succeeded, 4, "{status:?}");
    assert_eq!(status.failed + status.timed_out, 1);
    let silent = status
        .commands
        .iter()
        .find(|c| c.meter == meters[2])
        .unwrap();
    assert!(matches!(
        silent.state,
        CommandState::Failed | CommandState::TimedOut
    ));
    assert_eq!(
        outcome_of(silent).attempts,
        RETRY_ATTEMPTS,
        "after its retries"
    );
    let failed_sessions = rig
        .store
        .attempts(rig.started, true)
        .unwrap()
        .into_iter()
        .filter(|a| a.meter == meters[2])
        .count();
    assert_eq!(
        failed_sessions, RETRY_ATTEMPTS as usize,
        "every attempt recorded"
    );
}

#[tokio::test]
async fn an_unknown_meter_is_a_clear_error() {
    let rig = rig(Ipv4Addr::new(127, 70, 0, 1), 1).await;
    let stranger = MeterSerial::new("XYZ00000001").unwrap();
    let mut request = rig.request("x-1", 0, CommandKind::Ping);
    request.meter = stranger.clone();
    match rig.commands.submit(request).await {
        Err(CommandError::UnknownMeter(m)) => assert_eq!(m, stranger),
        other => panic!("{other:?}"),
    }
    let group = rig
        .commands
        .submit_group(
            "g-1",
            &[rig.serial(0), stranger.clone()],
            CommandKind::Ping,
            "ops",
        )
        .await;
    assert!(matches!(group, Err(CommandError::UnknownMeter(m)) if m == stranger));
    assert!(
        rig.commands
            .batch_status("g-1")
            .await
            .unwrap()
            .commands
            .is_empty(),
        "nothing of a refused group is recorded"
    );
    assert!(
        rig.commands
            .status(&CommandId("x-1".into()))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn after_a_restart_running_commands_rerun_only_when_safe() {
    let rig = rig(Ipv4Addr::new(127, 71, 0, 1), 1).await;
    // What a head-end that stopped mid-command leaves behind.
    let left_running = |id: &str, kind: CommandKind| {
        let request = rig.request(id, 0, kind);
        let now = rig.head_end.clock().now();
        CommandRecord {
            id: id.into(),
            meter: request.meter.clone(),
            batch: None,
            kind: request.kind.name().into(),
            request: serde_json::to_string(&request).unwrap(),
            state: "running".into(),
            created_at: now,
            updated_at: now,
            attempts: 1,
            result: None,
            requested_by: "test".into(),
        }
    };
    rig.store
        .insert_command(&left_running("cut-r", CommandKind::Disconnect))
        .unwrap();
    rig.store
        .insert_command(&left_running("md-r", CommandKind::MdReset))
        .unwrap();

    let restarted = Commands::new(rig.head_end.clone(), CommandsConfig::default());
    let report = restarted.resume().await.unwrap();
    assert_eq!((report.queued, report.rerun, report.abandoned), (0, 1, 1));

    let md = restarted.wait(&CommandId("md-r".into())).await.unwrap();
    assert_eq!(md.state, CommandState::Failed);
    assert!(
        outcome_of(&md).detail.contains("outcome unknown"),
        "{:?}",
        outcome_of(&md).detail
    );
    let cut = restarted.wait(&CommandId("cut-r".into())).await.unwrap();
    assert_succeeded(&cut);
    assert_eq!(
        outcome_of(&cut).attempts,
        2,
        "the interrupted attempt counts"
    );
    assert_eq!(
        rig.sessions("command:md_reset"),
        0,
        "an MD reset is not repeated"
    );
    assert_eq!(rig.sessions("command:disconnect"), 1);
}

#[tokio::test]
async fn a_rotation_the_meter_does_not_take_keeps_the_old_keys() {
    let rig = rig(Ipv4Addr::new(127, 72, 0, 1), 1).await;
    let serial = rig.serial(0);
    let before = rig.head_end.meter(&serial).unwrap().credentials();
    // A wrong master key (KEK): the meter cannot unwrap the new keys and keeps its own.
    let mut wrong_kek = (*before).clone();
    wrong_kek.master_key = Some([0x5A; 16]);
    rig.head_end.replace_credentials(&serial, wrong_kek);

    let rotated = rig.run("rotate-bad", 0, CommandKind::RotateKeys).await;
    assert_eq!(rotated.state, CommandState::Failed);
    assert!(
        outcome_of(&rotated).detail.contains("kept its old keys"),
        "{:?}",
        outcome_of(&rotated).detail
    );
    let meter_keys = rig.fleet.keys(0);
    assert_eq!(
        meter_keys.global_encryption_key,
        before.global_keys.encryption
    );
    let in_use = rig.head_end.meter(&serial).unwrap().credentials();
    assert_eq!(
        in_use.global_keys, before.global_keys,
        "the head-end keeps them"
    );
    assert_eq!(rig.store.active_keys(&serial).unwrap().unwrap().0, 1);

    let read = rig
        .run("read-after", 0, CommandKind::ReadInstantaneous)
        .await;
    assert_succeeded(&read);
}

//! The head-end's store contract, against a real file in a temporary directory.

use chrono::{DateTime, Duration, Utc};
use model::MeterSerial;
use store::silently;
use store::{
    CommandRecord, GapChange, GapState, Inserted, MeterRecord, OutboxMessage, Outcome,
    RegistryChange, SessionCommit, Store, StoreError,
};
use tempfile::TempDir;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn sn(s: &str) -> MeterSerial {
    MeterSerial::new(s).unwrap()
}

fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.db")).unwrap();
    (dir, store)
}

fn meter(serial: &str) -> MeterRecord {
    MeterRecord {
        serial: sn(serial),
        kind: "single-phase".into(),
        host: "10.0.0.1".into(),
        port: 4059,
        transport: "wrapper".into(),
        server_address: 1,
        dcu: Some("DCU-1".into()),
        group: "default".into(),
        system_title: *b"URJ\0\0\0\0\x01",
    }
}

fn registered(store: &Store, serials: &[&str]) {
    for s in serials {
        store
            .upsert_meter(&meter(s), at("2026-11-24T00:00:00Z"), &silently)
            .unwrap();
    }
}

fn session(serial: &str, job: &str, attempt: u32, start: &str, outcome: Outcome) -> SessionCommit {
    let started_at = at(start);
    SessionCommit {
        meter: sn(serial),
        job: job.into(),
        attempt,
        started_at,
        ended_at: started_at + Duration::seconds(2),
        contacted: outcome.is_ok(),
        outcome,
        cursors: vec![],
        gaps: vec![],
        outbox: vec![],
        invocation_counter: None,
    }
}

fn failed(kind: &str) -> Outcome {
    Outcome::Failed {
        kind: kind.into(),
        detail: format!("{kind} happened"),
    }
}

fn msg(key: &str) -> OutboxMessage {
    OutboxMessage {
        key: key.into(),
        kind: "interval_readings".into(),
        payload: key.as_bytes().to_vec(),
    }
}

// ---------------------------------------------------------------- registry and keys

#[test]
fn import_then_reimport_is_unchanged_and_keeps_one_key_version() {
    let (_d, store) = open();
    let m = meter("M-0001");
    let t0 = at("2026-11-25T00:00:00Z");
    assert_eq!(
        store.import_meter(&m, b"sealed-v1", t0, &silently).unwrap(),
        RegistryChange::New
    );
    assert_eq!(
        store.active_keys(&m.serial).unwrap(),
        Some((1, b"sealed-v1".to_vec()))
    );
    assert_eq!(store.staged_keys(&m.serial).unwrap(), None);

    let t1 = at("2026-11-25T01:00:00Z");
    assert_eq!(
        store.import_meter(&m, b"sealed-v1", t1, &silently).unwrap(),
        RegistryChange::Unchanged
    );
    assert_eq!(
        store.active_keys(&m.serial).unwrap(),
        Some((1, b"sealed-v1".to_vec()))
    );
    assert_eq!(store.meter(&m.serial).unwrap(), Some(m.clone()));
    assert_eq!(store.meter_count().unwrap(), 1);
    // one network change: the first import
    let changes = store.network_changes(t0).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].change, "new");
    assert_eq!(changes[0].at, t0);
    assert_eq!(changes[0].meter, m.serial);
}

#[test]
fn reimport_with_other_keys_activates_a_new_version() {
    let (_d, store) = open();
    let m = meter("M-0001");
    store
        .import_meter(&m, b"sealed-v1", at("2026-11-25T00:00:00Z"), &silently)
        .unwrap();
    assert_eq!(
        store
            .import_meter(&m, b"sealed-v2", at("2026-11-25T01:00:00Z"), &silently)
            .unwrap(),
        RegistryChange::Updated
    );
    assert_eq!(
        store.active_keys(&m.serial).unwrap(),
        Some((2, b"sealed-v2".to_vec()))
    );
    assert_eq!(
        store.all_active_keys().unwrap(),
        vec![(m.serial.clone(), 2, b"sealed-v2".to_vec())]
    );
}

#[test]
fn reimport_at_another_address_is_a_move_with_a_network_change() {
    let (_d, store) = open();
    let m = meter("M-0001");
    let t0 = at("2026-11-25T00:00:00Z");
    store.import_meter(&m, b"k", t0, &silently).unwrap();
    let mut moved = m.clone();
    moved.host = "10.0.9.9".into();
    moved.dcu = Some("DCU-2".into());
    let t1 = at("2026-11-25T06:00:00Z");
    assert_eq!(
        store.import_meter(&moved, b"k", t1, &silently).unwrap(),
        RegistryChange::Moved {
            from_host: "10.0.0.1".into(),
            from_port: 4059,
            from_dcu: Some("DCU-1".into()),
        }
    );
    assert_eq!(store.meter(&m.serial).unwrap(), Some(moved));
    let changes = store.network_changes(t1).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].change, "moved");
    assert!(
        changes[0].detail.contains("10.0.9.9"),
        "{}",
        changes[0].detail
    );
    assert!(changes[0].detail.contains("DCU-1"), "{}", changes[0].detail);
    assert_eq!(store.network_changes(t0).unwrap().len(), 2);
    // both DCUs were created as parents
    let dcus: Vec<String> = store
        .dcus()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(dcus, ["DCU-1", "DCU-2"]);
}

#[test]
fn upsert_distinguishes_updated_from_unchanged() {
    let (_d, store) = open();
    let mut m = meter("M-0001");
    let t = at("2026-11-25T00:00:00Z");
    assert_eq!(
        store.upsert_meter(&m, t, &silently).unwrap(),
        RegistryChange::New
    );
    assert_eq!(
        store.upsert_meter(&m, t, &silently).unwrap(),
        RegistryChange::Unchanged
    );
    m.group = "feeder-7".into();
    assert_eq!(
        store.upsert_meter(&m, t, &silently).unwrap(),
        RegistryChange::Updated
    );
    m.port = 4060;
    assert!(matches!(
        store.upsert_meter(&m, t, &silently).unwrap(),
        RegistryChange::Moved {
            from_port: 4059,
            ..
        }
    ));
    assert_eq!(store.meter(&m.serial).unwrap(), Some(m));
    assert_eq!(store.meter(&sn("NOPE")).unwrap(), None);
}

#[test]
fn meters_are_listed_by_serial_and_dcus_keep_their_host() {
    let (_d, store) = open();
    registered(&store, &["M-3", "M-1", "M-2"]);
    let serials: Vec<String> = store
        .meters()
        .unwrap()
        .into_iter()
        .map(|m| m.serial.to_string())
        .collect();
    assert_eq!(serials, ["M-1", "M-2", "M-3"]);
    assert_eq!(store.meter_count().unwrap(), 3);
    // DCU-1 was created by the meters with no host; naming its host later sticks
    assert_eq!(store.dcus().unwrap(), vec![("DCU-1".into(), String::new())]);
    store
        .upsert_dcu("DCU-1", "192.168.1.10", at("2026-11-25T00:00:00Z"))
        .unwrap();
    registered(&store, &["M-4"]);
    assert_eq!(
        store.dcus().unwrap(),
        vec![("DCU-1".into(), "192.168.1.10".into())]
    );
}

#[test]
fn staged_keys_become_active_and_the_old_ones_retire() {
    let (_d, store) = open();
    let m = meter("M-0001");
    store
        .import_meter(&m, b"v1", at("2026-11-25T00:00:00Z"), &silently)
        .unwrap();
    let t = at("2026-11-25T02:00:00Z");
    store.stage_keys(&m.serial, 2, b"v2", t).unwrap();
    // staging twice is harmless
    store.stage_keys(&m.serial, 2, b"v2", t).unwrap();
    assert_eq!(
        store.staged_keys(&m.serial).unwrap(),
        Some((2, b"v2".to_vec()))
    );
    assert_eq!(
        store.active_keys(&m.serial).unwrap(),
        Some((1, b"v1".to_vec()))
    );

    store.activate_keys(&m.serial, 2, t).unwrap();
    store.activate_keys(&m.serial, 2, t).unwrap(); // idempotent
    assert_eq!(
        store.active_keys(&m.serial).unwrap(),
        Some((2, b"v2".to_vec()))
    );
    assert_eq!(store.staged_keys(&m.serial).unwrap(), None);

    // the retired version cannot come back, nor can an old version be staged again
    assert!(matches!(
        store.activate_keys(&m.serial, 1, t),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.stage_keys(&m.serial, 1, b"other", t),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.activate_keys(&m.serial, 9, t),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.stage_keys(&sn("UNKNOWN"), 1, b"x", t),
        Err(StoreError::NotFound(_))
    ));
    // after a rotation, a re-import of the (now active) v2 blob changes nothing
    assert_eq!(
        store.import_meter(&m, b"v2", t, &silently).unwrap(),
        RegistryChange::Unchanged
    );
    assert_eq!(
        store.active_keys(&m.serial).unwrap(),
        Some((2, b"v2".to_vec()))
    );
}

#[test]
fn settings_round_trip() {
    let (_d, store) = open();
    assert_eq!(store.setting("master_key_fingerprint").unwrap(), None);
    store.put_setting("master_key_fingerprint", "ab12").unwrap();
    store.put_setting("master_key_fingerprint", "cd34").unwrap();
    assert_eq!(
        store.setting("master_key_fingerprint").unwrap().as_deref(),
        Some("cd34")
    );
}

// ---------------------------------------------------------------- session commits

#[test]
fn the_same_outbox_key_twice_is_one_message() {
    let (_d, store) = open();
    registered(&store, &["M-1"]);
    let mut c = session("M-1", "block_load", 1, "2026-11-25T10:00:00Z", Outcome::Ok);
    c.outbox = vec![
        msg("M-1/interval/2026-11-25T10:00Z"),
        msg("M-1/daily/2026-11-25"),
    ];
    store.commit_session(&c).unwrap();
    // the same session committed again (e.g. a retry after an unclear commit)
    store.commit_session(&c).unwrap();
    assert_eq!(store.outbox_counts().unwrap(), (2, 0));
    let pending = store.outbox_pending(10).unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].key, "M-1/interval/2026-11-25T10:00Z");
    assert_eq!(pending[0].payload, b"M-1/interval/2026-11-25T10:00Z");
    assert_eq!(pending[0].created_at, c.ended_at);
    assert!(pending[0].seq < pending[1].seq);

    // a delivered key also stays deduplicated
    store
        .outbox_delivered(&[pending[0].seq], at("2026-11-25T10:01:00Z"))
        .unwrap();
    store.commit_session(&c).unwrap();
    assert_eq!(store.outbox_counts().unwrap(), (1, 1));
}

#[test]
fn a_commit_says_which_messages_it_wrote_and_pending_payloads_are_read_on_request() {
    let (_d, store) = open();
    registered(&store, &["M-1", "M-2"]);
    let mut first = session("M-1", "block_load", 1, "2026-11-25T10:00:00Z", Outcome::Ok);
    first.outbox = vec![msg("a"), msg("b")];
    store.commit_session(&first).unwrap();
    // "b" is already there; "c" and "d" are new; a commit with no messages adds no flags.
    let mut again = session("M-1", "block_load", 2, "2026-11-25T10:05:00Z", Outcome::Ok);
    again.outbox = vec![msg("b"), msg("c")];
    let quiet = session("M-2", "daily", 1, "2026-11-25T10:05:00Z", Outcome::Ok);
    let mut other = session("M-2", "block_load", 1, "2026-11-25T10:05:00Z", Outcome::Ok);
    other.outbox = vec![msg("d")];
    let mut seen = None;
    store
        .commit_sessions_then(&[again, quiet, other], |w| seen = Some(w.to_vec()))
        .unwrap();
    assert_eq!(seen.as_deref(), Some(&[false, true, true][..]));

    // A failing batch writes nothing and says nothing.
    let mut stranger = session("M-9", "block_load", 1, "2026-11-25T10:05:00Z", Outcome::Ok);
    stranger.outbox = vec![msg("e")];
    let mut called = false;
    assert!(
        store
            .commit_sessions_then(&[stranger], |_| called = true)
            .is_err()
    );
    assert!(!called);

    let full = store.outbox_pending(10).unwrap();
    let lazy = store.outbox_pending_lazy(10, |key| key != "c").unwrap();
    assert_eq!(lazy.len(), 4);
    for (l, f) in lazy.iter().zip(&full) {
        assert_eq!(
            (l.seq, &l.key, &l.kind, l.created_at),
            (f.seq, &f.key, &f.kind, f.created_at)
        );
        let expected = (f.key != "c").then(|| f.payload.clone());
        assert_eq!(l.payload, expected, "{}", l.key);
    }
    assert_eq!(store.outbox_pending_lazy(2, |_| false).unwrap().len(), 2);
}

#[test]
fn outbox_is_delivered_in_order_and_purged() {
    let (_d, store) = open();
    registered(&store, &["M-1"]);
    for i in 0..5 {
        let mut c = session("M-1", "push", 1, "2026-11-25T10:00:00Z", Outcome::Ok);
        c.outbox = vec![msg(&format!("k{i}"))];
        store.commit_session(&c).unwrap();
    }
    let first = store.outbox_pending(3).unwrap();
    let keys: Vec<&str> = first.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["k0", "k1", "k2"]);
    let seqs: Vec<i64> = first.iter().map(|r| r.seq).collect();
    store
        .outbox_delivered(&seqs, at("2026-11-25T11:00:00Z"))
        .unwrap();
    let rest: Vec<String> = store
        .outbox_pending(10)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(rest, ["k3", "k4"]);
    assert_eq!(store.outbox_counts().unwrap(), (2, 3));
    assert_eq!(
        store.purge_delivered(at("2026-11-25T11:00:00Z")).unwrap(),
        0
    );
    assert_eq!(
        store.purge_delivered(at("2026-11-25T11:00:01Z")).unwrap(),
        3
    );
    assert_eq!(store.outbox_counts().unwrap(), (2, 0));
}

#[test]
fn cursor_only_moves_forward() {
    let (_d, store) = open();
    registered(&store, &["M-1"]);
    assert_eq!(store.cursor(&sn("M-1"), "block_load").unwrap(), None);
    let mut c = session("M-1", "block_load", 1, "2026-11-25T10:00:00Z", Outcome::Ok);
    c.cursors = vec![
        ("block_load".into(), at("2026-11-25T09:45:00Z")),
        ("daily".into(), at("2026-11-25T00:00:00Z")),
    ];
    store.commit_session(&c).unwrap();
    c.cursors = vec![("block_load".into(), at("2026-11-25T08:00:00Z"))];
    store.commit_session(&c).unwrap();
    assert_eq!(
        store.cursor(&sn("M-1"), "block_load").unwrap(),
        Some(at("2026-11-25T09:45:00Z"))
    );
    c.cursors = vec![("block_load".into(), at("2026-11-25T10:00:00Z"))];
    store.commit_session(&c).unwrap();
    assert_eq!(
        store.cursor(&sn("M-1"), "block_load").unwrap(),
        Some(at("2026-11-25T10:00:00Z"))
    );
    assert_eq!(
        store.cursor(&sn("M-1"), "daily").unwrap(),
        Some(at("2026-11-25T00:00:00Z"))
    );
}

fn open_gap(serial: &str, profile: &str, from: &str, to: &str) -> SessionCommit {
    let mut c = session(serial, "block_load", 1, "2026-11-25T12:00:00Z", Outcome::Ok);
    c.gaps = vec![GapChange::Open {
        profile: profile.into(),
        from: at(from),
        to: at(to),
    }];
    c
}

#[test]
fn overlapping_open_gaps_merge_and_resolve() {
    let (_d, store) = open();
    registered(&store, &["M-1"]);
    let m = sn("M-1");
    store
        .commit_session(&open_gap(
            "M-1",
            "block_load",
            "2026-11-25T01:00:00Z",
            "2026-11-25T02:00:00Z",
        ))
        .unwrap();
    store
        .commit_session(&open_gap(
            "M-1",
            "block_load",
            "2026-11-25T05:00:00Z",
            "2026-11-25T06:00:00Z",
        ))
        .unwrap();
    // another profile does not merge
    store
        .commit_session(&open_gap(
            "M-1",
            "daily",
            "2026-11-25T01:30:00Z",
            "2026-11-25T01:30:00Z",
        ))
        .unwrap();
    let gaps = store.open_gaps(&m, "block_load").unwrap();
    assert_eq!(gaps.len(), 2);
    let first = gaps[0].id;

    // a re-read was tried on the first
    let mut c = session(
        "M-1",
        "gap_reread",
        1,
        "2026-11-25T12:30:00Z",
        failed("timeout"),
    );
    c.gaps = vec![GapChange::Attempted { id: first }];
    store.commit_session(&c).unwrap();

    // a range bridging both merges all three into the oldest gap
    store
        .commit_session(&open_gap(
            "M-1",
            "block_load",
            "2026-11-25T01:45:00Z",
            "2026-11-25T05:00:00Z",
        ))
        .unwrap();
    let gaps = store.open_gaps(&m, "block_load").unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let g = &gaps[0];
    assert_eq!(g.id, first);
    assert_eq!(g.from, at("2026-11-25T01:00:00Z"));
    assert_eq!(g.to, at("2026-11-25T06:00:00Z"));
    assert_eq!(g.attempts, 1);
    assert_eq!(g.state, GapState::Open);
    assert_eq!(g.profile, "block_load");

    // explained: no longer open, visible in reports with its reason
    let mut c = session("M-1", "gap_reread", 1, "2026-11-25T13:00:00Z", Outcome::Ok);
    c.gaps = vec![GapChange::Resolve {
        id: first,
        state: GapState::Explained,
        reason: Some("power off 01:00-06:00".into()),
    }];
    store.commit_session(&c).unwrap();
    assert!(store.open_gaps(&m, "block_load").unwrap().is_empty());
    let explained = store
        .gaps(Some(GapState::Explained), at("2026-11-25T00:00:00Z"))
        .unwrap();
    assert_eq!(explained.len(), 1);
    assert_eq!(
        explained[0].reason.as_deref(),
        Some("power off 01:00-06:00")
    );
    // a new gap overlapping an explained one is a new gap
    store
        .commit_session(&open_gap(
            "M-1",
            "block_load",
            "2026-11-25T05:00:00Z",
            "2026-11-25T07:00:00Z",
        ))
        .unwrap();
    let open = store.open_gaps(&m, "block_load").unwrap();
    assert_eq!(open.len(), 1);
    assert_ne!(open[0].id, first);

    let all = store.gaps(None, at("2026-11-25T00:00:00Z")).unwrap();
    assert_eq!(all.len(), 3);
    // `since` is about the data period: gaps ending before it are left out
    assert_eq!(
        store.gaps(None, at("2026-11-25T06:30:00Z")).unwrap().len(),
        1
    );
}

#[test]
fn gap_changes_are_checked() {
    let (_d, store) = open();
    registered(&store, &["M-1", "M-2"]);
    store
        .commit_session(&open_gap(
            "M-1",
            "block_load",
            "2026-11-25T01:00:00Z",
            "2026-11-25T02:00:00Z",
        ))
        .unwrap();
    let id = store.open_gaps(&sn("M-1"), "block_load").unwrap()[0].id;
    // another meter cannot touch M-1's gap
    let mut c = session("M-2", "gap_reread", 1, "2026-11-25T12:30:00Z", Outcome::Ok);
    c.gaps = vec![GapChange::Attempted { id }];
    assert!(matches!(
        store.commit_session(&c),
        Err(StoreError::NotFound(_))
    ));
    let inverted = open_gap(
        "M-1",
        "block_load",
        "2026-11-25T03:00:00Z",
        "2026-11-25T02:00:00Z",
    );
    assert!(matches!(
        store.commit_session(&inverted),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store.open_gaps(&sn("M-1"), "block_load").unwrap()[0].attempts,
        0
    );
}

#[test]
fn silent_meters_are_those_without_a_successful_session_since() {
    let (_d, store) = open();
    registered(&store, &["M-1", "M-2", "M-3", "M-4"]);
    // M-1 answered yesterday, M-2 today, M-3 failed today, M-4 never
    store
        .commit_session(&session(
            "M-1",
            "daily",
            1,
            "2026-11-24T09:00:00Z",
            Outcome::Ok,
        ))
        .unwrap();
    store
        .commit_session(&session(
            "M-2",
            "daily",
            1,
            "2026-11-25T09:00:00Z",
            Outcome::Ok,
        ))
        .unwrap();
    let mut answered_but_failed =
        session("M-3", "daily", 1, "2026-11-25T09:00:00Z", failed("decode"));
    answered_but_failed.contacted = true;
    store.commit_session(&answered_but_failed).unwrap();
    // an older success does not move the last contact backwards
    store
        .commit_session(&session(
            "M-2",
            "daily",
            1,
            "2026-11-25T08:00:00Z",
            Outcome::Ok,
        ))
        .unwrap();

    let since = at("2026-11-25T00:00:00Z");
    let silent = store.silent_meters(since).unwrap();
    assert_eq!(
        silent,
        vec![
            (sn("M-1"), Some(at("2026-11-24T09:00:02Z"))),
            (sn("M-3"), None),
            (sn("M-4"), None),
        ]
    );
    assert_eq!(
        store.last_contact(&sn("M-2")).unwrap(),
        Some(at("2026-11-25T09:00:02Z"))
    );
    // exactly at `since` counts as heard from
    assert!(
        store
            .silent_meters(at("2026-11-24T09:00:02Z"))
            .unwrap()
            .iter()
            .all(|(m, _)| m != &sn("M-1"))
    );
}

#[test]
fn attempt_summary_and_retry_report_count_what_happened() {
    let (_d, store) = open();
    registered(&store, &["M-1", "M-2", "M-3"]);
    let commits = vec![
        // before the report period: not counted
        session(
            "M-3",
            "block_load",
            2,
            "2026-11-24T23:00:00Z",
            failed("timeout"),
        ),
        // M-1: fails twice, succeeds on the third try
        session(
            "M-1",
            "block_load",
            1,
            "2026-11-25T01:00:00Z",
            failed("connect"),
        ),
        session(
            "M-1",
            "block_load",
            2,
            "2026-11-25T01:05:00Z",
            failed("timeout"),
        ),
        session("M-1", "block_load", 3, "2026-11-25T01:10:00Z", Outcome::Ok),
        // M-2: ok at once; its daily needs two tries and ends failed
        session("M-2", "block_load", 1, "2026-11-25T01:00:00Z", Outcome::Ok),
        session("M-2", "daily", 1, "2026-11-25T02:00:00Z", failed("connect")),
        session("M-2", "daily", 2, "2026-11-25T02:10:00Z", failed("connect")),
        // M-3: one clean daily
        session("M-3", "daily", 1, "2026-11-25T02:00:00Z", Outcome::Ok),
    ];
    store.commit_sessions(&commits).unwrap();
    let since = at("2026-11-25T00:00:00Z");

    let summary = store.attempt_summary(since).unwrap();
    assert_eq!(summary.len(), 2);
    let bl = &summary[0];
    assert_eq!(bl.job, "block_load");
    assert_eq!((bl.sessions, bl.ok, bl.failed, bl.retries), (4, 2, 2, 2));
    assert_eq!(
        bl.by_failure_kind,
        vec![("connect".to_string(), 1), ("timeout".to_string(), 1)]
    );
    let daily = &summary[1];
    assert_eq!(daily.job, "daily");
    assert_eq!(
        (daily.sessions, daily.ok, daily.failed, daily.retries),
        (3, 1, 2, 1)
    );
    assert_eq!(daily.by_failure_kind, vec![("connect".to_string(), 2)]);

    assert_eq!(
        store.retry_report(since).unwrap(),
        vec![
            (sn("M-1"), "block_load".to_string(), 3, true),
            (sn("M-2"), "daily".to_string(), 2, false),
        ]
    );

    let failures = store.attempts(since, true).unwrap();
    assert_eq!(failures.len(), 4);
    assert!(failures.iter().all(|a| !a.outcome.is_ok()));
    assert_eq!(failures[0].meter, sn("M-1"));
    assert_eq!(
        failures[0].outcome,
        Outcome::Failed {
            kind: "connect".into(),
            detail: "connect happened".into()
        }
    );
    assert_eq!(store.attempts(since, false).unwrap().len(), 7);
    assert_eq!(
        store
            .attempts(at("2026-11-24T00:00:00Z"), false)
            .unwrap()
            .len(),
        8
    );

    assert_eq!(store.purge_attempts(since).unwrap(), 1);
    assert_eq!(
        store
            .attempts(at("2026-11-24T00:00:00Z"), false)
            .unwrap()
            .len(),
        7
    );
}

#[test]
fn a_failing_commit_rolls_back_the_whole_batch() {
    let (_d, store) = open();
    let serials: Vec<String> = (0..1000).map(|i| format!("M-{i:04}")).collect();
    for s in &serials {
        store
            .upsert_meter(&meter(s), at("2026-11-24T00:00:00Z"), &silently)
            .unwrap();
    }
    let mut batch: Vec<SessionCommit> = serials
        .iter()
        .map(|s| {
            let mut c = session(s, "block_load", 1, "2026-11-25T10:00:00Z", Outcome::Ok);
            c.cursors = vec![("block_load".into(), at("2026-11-25T09:45:00Z"))];
            c.outbox = vec![msg(&format!("{s}/bl"))];
            c
        })
        .collect();
    // the last one refers to a gap that does not exist
    batch[999].gaps = vec![GapChange::Attempted { id: 424242 }];
    assert!(matches!(
        store.commit_sessions(&batch),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.outbox_counts().unwrap(), (0, 0));
    assert_eq!(store.cursor(&sn("M-0000"), "block_load").unwrap(), None);
    assert_eq!(store.last_contact(&sn("M-0000")).unwrap(), None);
    assert!(
        store
            .attempts(at("2026-11-25T00:00:00Z"), false)
            .unwrap()
            .is_empty()
    );

    // an unknown meter fails the batch the same way
    let mut with_stranger = batch.clone();
    with_stranger[999] = session("STRANGER", "push", 1, "2026-11-25T10:00:00Z", Outcome::Ok);
    assert!(matches!(
        store.commit_sessions(&with_stranger),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.outbox_counts().unwrap(), (0, 0));

    batch[999].gaps.clear();
    store.commit_sessions(&batch).unwrap();
    assert_eq!(store.outbox_counts().unwrap(), (1000, 0));
    assert_eq!(
        store.cursor(&sn("M-0999"), "block_load").unwrap(),
        Some(at("2026-11-25T09:45:00Z"))
    );
    assert_eq!(
        store
            .attempts(at("2026-11-25T00:00:00Z"), false)
            .unwrap()
            .len(),
        1000
    );
}

// ---------------------------------------------------------------- commands

fn command(id: &str, serial: &str, batch: Option<&str>) -> CommandRecord {
    let t = at("2026-11-25T10:00:00Z");
    CommandRecord {
        id: id.into(),
        meter: sn(serial),
        batch: batch.map(Into::into),
        kind: "disconnect".into(),
        request: r#"{"kind":"disconnect"}"#.into(),
        state: "queued".into(),
        created_at: t,
        updated_at: t,
        attempts: 0,
        result: None,
        requested_by: "mdm".into(),
    }
}

#[test]
fn commands_are_idempotent_by_id_and_audited() {
    let (_d, store) = open();
    registered(&store, &["M-1", "M-2"]);
    let c = command("cmd-1", "M-1", Some("batch-A"));
    assert_eq!(store.insert_command(&c).unwrap(), Inserted::New);
    let t1 = at("2026-11-25T10:00:05Z");
    store
        .transition_command("cmd-1", "running", 1, None, "session opened", t1, &[])
        .unwrap();

    // the same id again, even with another body, returns what is stored
    let mut again = command("cmd-1", "M-1", Some("batch-A"));
    again.request = r#"{"kind":"reconnect"}"#.into();
    let Inserted::Existing(stored) = store.insert_command(&again).unwrap() else {
        panic!("a second insert of cmd-1 must not be new");
    };
    assert_eq!(stored.state, "running");
    assert_eq!(stored.request, c.request);
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.updated_at, t1);

    let t2 = at("2026-11-25T10:00:09Z");
    let done = OutboxMessage {
        key: "command/cmd-1/succeeded".into(),
        kind: "command_result".into(),
        payload: b"{}".to_vec(),
    };
    store
        .transition_command(
            "cmd-1",
            "succeeded",
            1,
            Some(r#"{"relay":"disconnected"}"#),
            "control state read back: disconnected",
            t2,
            std::slice::from_ref(&done),
        )
        .unwrap();
    let rec = store.command("cmd-1").unwrap().unwrap();
    assert_eq!(rec.state, "succeeded");
    assert_eq!(rec.result.as_deref(), Some(r#"{"relay":"disconnected"}"#));
    assert_eq!(rec.updated_at, t2);
    assert_eq!(rec.created_at, c.created_at);

    let audit = store.command_audit("cmd-1").unwrap();
    let states: Vec<&str> = audit.iter().map(|a| a.state.as_str()).collect();
    assert_eq!(states, ["queued", "running", "succeeded"]);
    assert_eq!(audit[2].at, t2);
    assert_eq!(audit[2].detail, "control state read back: disconnected");

    let pending = store.outbox_pending(10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].key, done.key);
    assert_eq!(pending[0].created_at, t2);

    assert!(matches!(
        store.transition_command("nope", "running", 1, None, "", t2, &[]),
        Err(StoreError::NotFound(_))
    ));
    assert!(store.command("nope").unwrap().is_none());
    assert!(store.command_audit("nope").unwrap().is_empty());
    assert!(matches!(
        store.insert_command(&command("cmd-x", "UNKNOWN", None)),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn commands_by_state_and_batch() {
    let (_d, store) = open();
    registered(&store, &["M-1", "M-2", "M-3"]);
    let mut c3 = command("c3", "M-3", None);
    c3.created_at = at("2026-11-25T09:00:00Z");
    for c in [
        command("c1", "M-1", Some("B")),
        command("c2", "M-2", Some("B")),
        c3,
    ] {
        store.insert_command(&c).unwrap();
    }
    store
        .transition_command(
            "c2",
            "failed",
            3,
            Some("{}"),
            "no answer",
            at("2026-11-25T10:05:00Z"),
            &[],
        )
        .unwrap();
    let queued: Vec<String> = store
        .commands_in_state("queued")
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(queued, ["c3", "c1"]);
    let batch: Vec<(String, String)> = store
        .batch_commands("B")
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.state))
        .collect();
    assert_eq!(
        batch,
        [
            ("c1".into(), "queued".into()),
            ("c2".into(), "failed".into())
        ]
    );
}

// ---------------------------------------------------------------- durability

#[test]
fn clones_share_the_database_across_threads() {
    let (_d, store) = open();
    registered(&store, &["M-1", "M-2", "M-3", "M-4"]);
    let handles: Vec<_> = ["M-1", "M-2", "M-3", "M-4"]
        .into_iter()
        .map(|s| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let mut c = session(s, "push", 1, "2026-11-25T10:00:00Z", Outcome::Ok);
                    c.outbox = vec![msg(&format!("{s}/{i}"))];
                    store.commit_session(&c).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(store.outbox_counts().unwrap(), (200, 0));
}

fn write_some(store: &Store) {
    registered(store, &["M-1", "M-2"]);
    for (i, s) in ["M-1", "M-2"].into_iter().enumerate() {
        let mut c = session(s, "block_load", 1, "2026-11-25T10:00:00Z", Outcome::Ok);
        c.cursors = vec![("block_load".into(), at("2026-11-25T09:45:00Z"))];
        c.outbox = vec![msg(&format!("{s}/a")), msg(&format!("{s}/b"))];
        c.gaps = vec![GapChange::Open {
            profile: "block_load".into(),
            from: at("2026-11-25T01:00:00Z"),
            to: at("2026-11-25T01:00:00Z") + Duration::hours(i as i64),
        }];
        store.commit_session(&c).unwrap();
    }
}

fn assert_written(store: &Store) {
    assert_eq!(store.meter_count().unwrap(), 2);
    assert_eq!(store.outbox_counts().unwrap(), (4, 0));
    for s in ["M-1", "M-2"] {
        assert_eq!(
            store.cursor(&sn(s), "block_load").unwrap(),
            Some(at("2026-11-25T09:45:00Z"))
        );
        assert_eq!(store.open_gaps(&sn(s), "block_load").unwrap().len(), 1);
        assert_eq!(
            store.last_contact(&sn(s)).unwrap(),
            Some(at("2026-11-25T10:00:02Z"))
        );
    }
}

#[test]
fn commits_survive_a_store_that_is_never_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("urja.db");
    let store = Store::open(&path).unwrap();
    write_some(&store);
    // leak it: no close, no checkpoint of the write-ahead log
    std::mem::forget(store);
    let reopened = Store::open(&path).unwrap();
    assert_written(&reopened);
}

const CRASH_DB: &str = "URJA_STORE_CRASH_DB";

/// Writes and then aborts the process (no destructors, no checkpoint), when run as the child
/// of `commits_survive_a_process_crash`; a no-op otherwise.
#[test]
fn crash_child() {
    if let Ok(path) = std::env::var(CRASH_DB) {
        let store = Store::open(&path).unwrap();
        write_some(&store);
        std::process::abort();
    }
}

#[test]
fn commits_survive_a_process_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("urja.db");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CRASH_DB, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must have crashed");
    assert!(
        dir.path().join("urja.db-wal").exists(),
        "the commits are still in the write-ahead log"
    );
    let store = Store::open(&path).unwrap();
    assert_written(&store);
}

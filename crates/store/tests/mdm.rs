//! The MDM's tables: interval versions (nothing destroyed by an estimate, an actual or an edit),
//! idempotent writes, events, the exception queue and routed messages.

use chrono::{DateTime, Duration, Utc};
use model::{
    DailyReading, EventCategory, EventKind, IntervalReading, MeterEvent, MeterSerial, Quality,
};
use store::{
    EventRow, ExceptionRow, ExceptionState, IngestWrite, IntervalWrite, RoutedMessage, Store,
    StoreError,
};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn meter() -> MeterSerial {
    MeterSerial::new("M-0001").unwrap()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.db")).unwrap();
    (dir, store)
}

fn interval(end: DateTime<Utc>, wh: i64, quality: Vec<Quality>) -> IntervalReading {
    IntervalReading {
        meter: meter(),
        interval_end: end,
        avg_voltage_v: Some(231.5),
        avg_current_a: Some(1.25),
        avg_phase_voltage_v: None,
        avg_phase_current_a: None,
        import_wh: wh,
        import_vah: wh + 10,
        export_wh: Some(0),
        export_vah: None,
        quality,
    }
}

fn day(n: i64) -> Vec<IntervalReading> {
    let start = at("2026-11-30T18:45:00Z");
    (0..n)
        .map(|i| interval(start + Duration::minutes(15 * i), 100 + i, vec![]))
        .collect()
}

fn new_rows(rows: &[IntervalReading]) -> IngestWrite {
    IngestWrite {
        intervals: rows
            .iter()
            .map(|r| IntervalWrite::New {
                reading: r.clone(),
                method: None,
            })
            .collect(),
        ..IngestWrite::default()
    }
}

#[test]
fn intervals_are_stored_whole_and_a_duplicate_changes_nothing() {
    let (_dir, store) = store();
    let rows = day(96);
    let now = at("2026-12-01T19:00:00Z");
    let counts = store.mdm_write(&new_rows(&rows), now).unwrap();
    assert_eq!(counts.intervals_new, 96);
    let stored = store
        .mdm_intervals(&meter(), rows[0].interval_end, rows[95].interval_end)
        .unwrap();
    assert_eq!(stored.len(), 96);
    for (s, r) in stored.iter().zip(&rows) {
        assert_eq!(&s.reading, r);
        assert_eq!(s.version, 1);
        assert_eq!(s.method, None);
        assert_eq!(s.received_at, now);
    }
    // The same batch again, later: nothing new, nothing changed.
    let again = store
        .mdm_write(&new_rows(&rows), now + Duration::hours(1))
        .unwrap();
    assert_eq!(again.intervals_new, 0);
    assert_eq!(
        store
            .mdm_intervals(&meter(), rows[0].interval_end, rows[95].interval_end)
            .unwrap(),
        stored
    );
}

#[test]
fn an_actual_replaces_an_estimate_and_the_estimate_is_kept_in_the_history() {
    let (_dir, store) = store();
    let end = at("2026-12-01T10:00:00Z");
    let estimate = interval(end, 150, vec![Quality::Estimated]);
    let write = IngestWrite {
        intervals: vec![IntervalWrite::New {
            reading: estimate.clone(),
            method: Some("linear_interpolation".into()),
        }],
        ..IngestWrite::default()
    };
    store.mdm_write(&write, end).unwrap();
    let actual = interval(end, 171, vec![]);
    let replace = IngestWrite {
        intervals: vec![IntervalWrite::Replace {
            reading: actual.clone(),
            method: None,
            version: 1,
        }],
        ..IngestWrite::default()
    };
    let counts = store.mdm_write(&replace, end + Duration::hours(2)).unwrap();
    assert_eq!((counts.intervals_replaced, counts.conflicts), (1, 0));
    let now = store.mdm_intervals(&meter(), end, end).unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].reading, actual);
    assert_eq!(now[0].version, 2);
    let history = store.mdm_interval_history(&meter(), end).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].reading, estimate);
    assert_eq!(history[0].version, 1);
    assert_eq!(history[0].method.as_deref(), Some("linear_interpolation"));
    // A second replacement of version 1 (a stale writer) is a conflict and changes nothing.
    let stale = store.mdm_write(&replace, end + Duration::hours(3)).unwrap();
    assert_eq!((stale.intervals_replaced, stale.conflicts), (0, 1));
    assert_eq!(store.mdm_intervals(&meter(), end, end).unwrap(), now);
    assert_eq!(store.mdm_interval_history(&meter(), end).unwrap(), history);
}

#[test]
fn an_edit_is_a_new_version_with_who_and_why() {
    let (_dir, store) = store();
    let end = at("2026-12-01T10:00:00Z");
    store
        .mdm_write(&new_rows(&[interval(end, 90_000, vec![])]), end)
        .unwrap();
    let edited = interval(end, 900, vec![Quality::Edited]);
    let v = store
        .mdm_edit_interval(&edited, 1, "asha", "meter CT ratio misconfigured", end)
        .unwrap();
    assert_eq!(v, 2);
    let now = store.mdm_intervals(&meter(), end, end).unwrap();
    assert_eq!(now[0].reading, edited);
    assert_eq!(now[0].method.as_deref(), Some("edit"));
    assert_eq!(
        store.mdm_interval_history(&meter(), end).unwrap()[0]
            .reading
            .import_wh,
        90_000
    );
    // Editing a version that is no longer current is refused.
    let err = store
        .mdm_edit_interval(&edited, 1, "ravi", "second thoughts", end)
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

#[test]
fn daily_events_exceptions_and_routed_messages_are_idempotent() {
    let (_dir, store) = store();
    let t = at("2026-11-30T18:30:00Z");
    let event = MeterEvent {
        meter: meter(),
        at: t,
        code: 251,
        category: EventCategory::Other,
        kind: EventKind::Occurrence,
        description: "Cover open".into(),
        quality: vec![],
    };
    let exception = ExceptionRow {
        meter: meter(),
        rule: "spike".into(),
        from: t,
        to: t,
        severity: "warning".into(),
        detail: "9000 Wh against a typical 120 Wh".into(),
        state: ExceptionState::Open,
        created_at: t,
        closed_by: None,
        note: None,
    };
    let write = IngestWrite {
        daily: vec![DailyReading {
            meter: meter(),
            captured_at: t,
            import_wh: 1_234_567,
            import_vah: 1_300_000,
            export_wh: None,
            export_vah: None,
            quality: vec![],
        }],
        events: vec![EventRow {
            event: event.clone(),
            class: "tamper".into(),
            severity: "critical".into(),
        }],
        exceptions: vec![exception.clone()],
        routed: vec![RoutedMessage {
            key: "site_inspection/M-0001/251@2026-11-30T18:30:00Z".into(),
            meter: meter(),
            destination: "wfm".into(),
            payload: "{}".into(),
        }],
        ..IngestWrite::default()
    };
    let first = store.mdm_write(&write, t).unwrap();
    assert_eq!(
        (first.daily, first.events, first.exceptions, first.routed),
        (1, 1, 1, 1)
    );
    let second = store.mdm_write(&write, t + Duration::hours(1)).unwrap();
    assert_eq!(
        (
            second.daily,
            second.events,
            second.exceptions,
            second.routed
        ),
        (0, 0, 0, 0)
    );
    let events = store
        .mdm_events(&meter(), t, t + Duration::days(1))
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, event);
    assert_eq!(events[0].severity, "critical");
    assert_eq!(store.mdm_daily(&meter(), t, t).unwrap().len(), 1);
    assert_eq!(store.mdm_notices(Some("wfm"), 0, 10).unwrap().len(), 1);
    assert!(store.mdm_notices(Some("oms"), 0, 10).unwrap().is_empty());

    // The queue: open, then resolved by a person with a note.
    let open = store
        .mdm_exceptions(None, Some(ExceptionState::Open), 10, 0)
        .unwrap();
    assert!(open.contains(&exception), "{open:?}");
    store
        .mdm_close_exception(
            &meter(),
            "spike",
            t,
            t,
            ExceptionState::Resolved,
            "asha",
            "air conditioner installed",
            t + Duration::hours(2),
        )
        .unwrap();
    assert!(
        store
            .mdm_exceptions(None, Some(ExceptionState::Open), 10, 0)
            .unwrap()
            .is_empty()
    );
    let closed = store.mdm_exceptions(Some(&meter()), None, 10, 0).unwrap();
    assert_eq!(closed[0].state, ExceptionState::Resolved);
    assert_eq!(closed[0].closed_by.as_deref(), Some("asha"));
    // Closing it again finds no open exception.
    assert!(matches!(
        store.mdm_close_exception(
            &meter(),
            "spike",
            t,
            t,
            ExceptionState::Dismissed,
            "ravi",
            "",
            t
        ),
        Err(StoreError::NotFound(_))
    ));
}

mod network {
    use super::*;
    use store::mdm::{Child, Consumer, NetworkNode, NodeKind, ServicePoint};

    fn node(id: &str, kind: NodeKind) -> NetworkNode {
        NetworkNode {
            id: id.into(),
            kind,
            name: format!("{id} name"),
        }
    }

    fn grid(store: &Store, t0: DateTime<Utc>) {
        for (id, kind) in [
            ("SS1", NodeKind::Substation),
            ("F1", NodeKind::Feeder),
            ("F2", NodeKind::Feeder),
            ("DT1", NodeKind::Transformer),
            ("DT2", NodeKind::Transformer),
            ("DCU1", NodeKind::Dcu),
        ] {
            store.mdm_put_node(&node(id, kind)).unwrap();
        }
        let link = |kind, id: &str, parent| {
            store
                .mdm_link(&Child::Node(kind, id.into()), parent, t0)
                .unwrap()
        };
        link(NodeKind::Feeder, "F1", "SS1");
        link(NodeKind::Feeder, "F2", "SS1");
        link(NodeKind::Transformer, "DT1", "F1");
        link(NodeKind::Transformer, "DT2", "F2");
        link(NodeKind::Dcu, "DCU1", "DT1");
        for (m, parent) in [("M1", "DCU1"), ("M2", "DCU1"), ("M3", "DT2")] {
            store
                .mdm_link(&Child::Meter(MeterSerial::new(m).unwrap()), parent, t0)
                .unwrap();
        }
    }

    fn serials(v: Vec<MeterSerial>) -> Vec<String> {
        v.into_iter().map(String::from).collect()
    }

    #[test]
    fn meters_below_a_node_follow_the_hierarchy_as_of_any_date() {
        let (_dir, store) = store();
        let t0 = at("2026-01-01T00:00:00Z");
        grid(&store, t0);
        let before = at("2026-06-01T00:00:00Z");
        assert_eq!(
            serials(store.mdm_meters_under("SS1", before).unwrap()),
            ["M1", "M2", "M3"]
        );
        assert_eq!(
            serials(store.mdm_meters_under("F1", before).unwrap()),
            ["M1", "M2"]
        );
        assert_eq!(
            serials(store.mdm_meters_under("DT2", before).unwrap()),
            ["M3"]
        );
        // M2 is moved to DT2 on 1 July; DT1's list changes from then, not before.
        let moved = at("2026-07-01T00:00:00Z");
        let m2 = Child::Meter(MeterSerial::new("M2").unwrap());
        assert!(store.mdm_link(&m2, "DT2", moved).unwrap());
        assert!(
            !store
                .mdm_link(&m2, "DT2", moved + Duration::days(1))
                .unwrap()
        );
        assert_eq!(
            serials(store.mdm_meters_under("F1", before).unwrap()),
            ["M1", "M2"]
        );
        assert_eq!(
            serials(
                store
                    .mdm_meters_under("F1", moved + Duration::days(3))
                    .unwrap()
            ),
            ["M1"]
        );
        assert_eq!(
            serials(store.mdm_meters_under("F2", moved).unwrap()),
            ["M2", "M3"]
        );
        assert_eq!(
            store.mdm_parent_at(&m2, before).unwrap().as_deref(),
            Some("DCU1")
        );
        assert_eq!(
            store.mdm_parent_at(&m2, moved).unwrap().as_deref(),
            Some("DT2")
        );
        // History is written forwards; nonsense links are refused.
        assert!(matches!(
            store.mdm_link(&m2, "DCU1", before),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.mdm_link(&Child::Node(NodeKind::Feeder, "F1".into()), "DT1", moved),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.mdm_link(&m2, "nowhere", moved),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.mdm_put_node(&node("F1", NodeKind::Dcu)),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn a_meter_change_keeps_each_meter_with_the_consumer_for_its_own_span() {
        let (_dir, store) = store();
        let t0 = at("2026-01-01T00:00:00Z");
        store
            .mdm_put_consumer(
                &Consumer {
                    consumer_no: "C-100".into(),
                    name: "Asha Devi".into(),
                    category: "residential".into(),
                    net_metered: false,
                },
                t0,
            )
            .unwrap();
        store
            .mdm_put_service_point(&ServicePoint {
                id: "SP-1".into(),
                address: "12 Gandhi Road, Lucknow".into(),
                sanctioned_load_w: 3000,
            })
            .unwrap();
        store.mdm_connect_consumer("SP-1", "C-100", t0).unwrap();
        let (old, new) = (
            MeterSerial::new("OLD").unwrap(),
            MeterSerial::new("NEW").unwrap(),
        );
        store.mdm_install_meter(&old, "SP-1", t0).unwrap();
        let change = at("2026-11-15T06:00:00Z");
        store.mdm_install_meter(&new, "SP-1", change).unwrap();
        // The old meter was removed when the new one went in.
        assert!(store.mdm_connection_at(&old, change).unwrap().is_none());
        assert!(
            store
                .mdm_connection_at(&old, change - Duration::seconds(1))
                .unwrap()
                .is_some()
        );
        // An installation dated before the latest one at that service point is refused.
        assert!(matches!(
            store.mdm_install_meter(&MeterSerial::new("LATE").unwrap(), "SP-1", t0),
            Err(StoreError::Invalid(_))
        ));
        let (sp, consumer) = store
            .mdm_connection_at(&new, change + Duration::days(1))
            .unwrap()
            .unwrap();
        assert_eq!(
            (sp.id.as_str(), consumer.consumer_no.as_str()),
            ("SP-1", "C-100")
        );
        assert!(store.mdm_connection_at(&new, t0).unwrap().is_none());
        let november = store
            .mdm_meters_of_consumer(
                "C-100",
                at("2026-11-01T00:00:00Z"),
                at("2026-12-01T00:00:00Z"),
            )
            .unwrap();
        let spans: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = november
            .into_iter()
            .map(|i| (i.meter.to_string(), i.from, i.to))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("OLD".into(), at("2026-11-01T00:00:00Z"), change),
                ("NEW".into(), change, at("2026-12-01T00:00:00Z")),
            ]
        );
    }
}

mod network_import {
    use super::*;
    use store::mdm::{
        Child, Connection, Consumer, NetworkImport, NetworkNode, NodeKind, ServicePoint,
    };

    fn import(parent_of_meter: &str) -> NetworkImport {
        let node = |id: &str, kind| NetworkNode {
            id: id.into(),
            kind,
            name: id.into(),
        };
        NetworkImport {
            nodes: vec![
                (node("SS", NodeKind::Substation), None),
                (node("F", NodeKind::Feeder), Some("SS".into())),
                (node("DT", NodeKind::Transformer), Some("F".into())),
            ],
            connections: vec![Connection {
                consumer: Consumer {
                    consumer_no: "C-1".into(),
                    name: "Meena".into(),
                    category: "residential".into(),
                    net_metered: false,
                },
                service_point: ServicePoint {
                    id: "SP-1".into(),
                    address: "Ward 4, Gaya".into(),
                    sanctioned_load_w: 2000,
                },
                meter: MeterSerial::new("M1").unwrap(),
                parent: parent_of_meter.into(),
                since: at("2026-01-01T00:00:00Z"),
            }],
            since: at("2026-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn an_import_is_all_or_nothing_and_idempotent() {
        let (_dir, store) = store();
        let now = at("2026-12-01T00:00:00Z");
        // A meter hung below an unknown node: nothing of the file is taken.
        assert!(matches!(
            store.mdm_import_network(&import("DT-404"), now),
            Err(StoreError::NotFound(_))
        ));
        assert!(store.mdm_node("SS").unwrap().is_none());
        assert!(store.mdm_consumer("C-1").unwrap().is_none());
        let first = store.mdm_import_network(&import("DT"), now).unwrap();
        assert_eq!(
            (
                first.nodes,
                first.links_changed,
                first.connections,
                first.installations_changed
            ),
            (3, 3, 1, 1)
        );
        let again = store.mdm_import_network(&import("DT"), now).unwrap();
        assert_eq!((again.links_changed, again.installations_changed), (0, 0));
        let m1 = MeterSerial::new("M1").unwrap();
        assert_eq!(store.mdm_meters_under("SS", now).unwrap(), vec![m1.clone()]);
        assert_eq!(
            store
                .mdm_parent_at(&Child::Meter(m1.clone()), now)
                .unwrap()
                .as_deref(),
            Some("DT")
        );
        let (sp, consumer) = store.mdm_connection_at(&m1, now).unwrap().unwrap();
        assert_eq!((sp.id.as_str(), consumer.name.as_str()), ("SP-1", "Meena"));
        assert_eq!(
            store.mdm_category_of(&m1, now).unwrap().as_deref(),
            Some("residential")
        );
    }
}

/// Writers that read what was in force before another wrote: the store decides on what is
/// there when it writes, so no reading is lost.
#[test]
fn a_writer_that_read_before_another_wrote_loses_nothing() {
    let (_dir, store) = store();
    let end = at("2026-12-01T10:00:00Z");
    let now = end + Duration::hours(1);
    let estimate = interval(end, 150, vec![Quality::Estimated]);
    store
        .mdm_write(
            &IngestWrite {
                intervals: vec![IntervalWrite::New {
                    reading: estimate.clone(),
                    method: Some("linear_interpolation".into()),
                }],
                ..IngestWrite::default()
            },
            now,
        )
        .unwrap();
    // An operator edits the estimate (version 2) while a batch that saw version 1 is planned.
    let edited = interval(end, 160, vec![Quality::Edited]);
    store
        .mdm_edit_interval(&edited, 1, "asha", "from the consumer's photo", now)
        .unwrap();
    let actual = interval(end, 171, vec![]);
    let late = store
        .mdm_write(
            &IngestWrite {
                intervals: vec![IntervalWrite::Replace {
                    reading: actual.clone(),
                    method: None,
                    version: 1,
                }],
                ..IngestWrite::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(
        (late.conflicts, late.overlaps, late.intervals_replaced),
        (1, 1, 0)
    );
    // The edit stays in force, the actual is kept whole and queued.
    assert_eq!(
        store.mdm_intervals(&meter(), end, end).unwrap()[0].reading,
        edited
    );
    assert_eq!(
        store.mdm_interval_overlaps(&meter(), end).unwrap()[0].0,
        actual
    );
    let queue = store.mdm_exceptions(Some(&meter()), None, 10, 0).unwrap();
    assert_eq!(queue[0].rule, "overlap");

    // An estimator that saw a gap writes after an actual arrived: the estimate is dropped.
    let other_end = end + Duration::minutes(15);
    let first = interval(other_end, 90, vec![]);
    let planned_estimate = interval(other_end, 1, vec![Quality::Estimated]);
    let write = |r: &IntervalReading| IngestWrite {
        intervals: vec![IntervalWrite::New {
            reading: r.clone(),
            method: None,
        }],
        ..IngestWrite::default()
    };
    store.mdm_write(&write(&first), now).unwrap();
    let dropped = store.mdm_write(&write(&planned_estimate), now).unwrap();
    assert_eq!((dropped.conflicts, dropped.overlaps), (1, 0));
    assert_eq!(
        store.mdm_intervals(&meter(), other_end, other_end).unwrap()[0].reading,
        first
    );

    // An ingest that saw the gap writes after the estimator filled it: the actual replaces.
    let third_end = end + Duration::minutes(30);
    store
        .mdm_write(
            &write(&interval(third_end, 2, vec![Quality::Estimated])),
            now,
        )
        .unwrap();
    let actual3 = interval(third_end, 95, vec![]);
    let replaced = store.mdm_write(&write(&actual3), now).unwrap();
    assert_eq!((replaced.conflicts, replaced.intervals_replaced), (1, 1));
    let now3 = store.mdm_intervals(&meter(), third_end, third_end).unwrap();
    assert_eq!((now3[0].reading.clone(), now3[0].version), (actual3, 2));
}

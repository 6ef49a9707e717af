//! Ingest against a real SQLite file: idempotent, order-independent, actuals replace estimates,
//! overlaps go to the exception queue, events are routed, bad messages become dead letters, and
//! nothing is acknowledged before it is durable.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use bus::{Bus, Envelope};
use chrono::{DateTime, Duration, Utc};
use mdm::events::Routing;
use mdm::ingest::Ingest;
use model::{
    DailyReading, EventCategory, EventKind, HesMessage, IntervalReading, MeterEvent, MeterSerial,
    Quality,
};
use proptest::prelude::*;
use store::{ExceptionState, IngestWrite, IntervalWrite, Store};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn serial(s: &str) -> MeterSerial {
    MeterSerial::new(s).unwrap()
}

/// Midnight IST, 1 December 2026.
fn day_start() -> DateTime<Utc> {
    at("2026-11-30T18:30:00Z")
}

/// Interval `i` (1-based end) of the day for `meter`, with values that depend only on both.
fn interval(meter: &str, i: i64) -> IntervalReading {
    IntervalReading {
        meter: serial(meter),
        interval_end: day_start() + Duration::minutes(15 * i),
        avg_voltage_v: Some(230.0 + (i % 7) as f64),
        avg_current_a: Some(1.5),
        avg_phase_voltage_v: None,
        avg_phase_current_a: None,
        import_wh: 80 + i * 3 + meter.len() as i64,
        import_vah: 90 + i * 3 + meter.len() as i64,
        export_wh: Some(0),
        export_vah: Some(0),
        quality: vec![],
    }
}

fn block(meter: &str, from: i64, to: i64) -> HesMessage {
    HesMessage::BlockLoad {
        meter: serial(meter),
        intervals: (from..=to).map(|i| interval(meter, i)).collect(),
    }
}

fn event(meter: &str, code: u16, kind: EventKind, minutes: i64) -> MeterEvent {
    MeterEvent {
        meter: serial(meter),
        at: day_start() + Duration::minutes(minutes),
        code,
        category: EventCategory::Other,
        kind,
        description: format!("event {code}"),
        quality: vec![],
    }
}

fn daily(meter: &str, days: i64) -> HesMessage {
    HesMessage::DailyProfile {
        meter: serial(meter),
        days: vec![DailyReading {
            meter: serial(meter),
            captured_at: day_start() + Duration::days(days),
            import_wh: 1_000_000 + days * 5_000,
            import_vah: 1_100_000 + days * 5_500,
            export_wh: Some(0),
            export_vah: Some(0),
            quality: vec![],
        }],
    }
}

fn open_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.db")).unwrap();
    (dir, store)
}

fn ingest(ingest: &Ingest, messages: &[HesMessage]) -> mdm::ingest::BatchReport {
    let envelopes: Vec<Envelope> = messages.iter().cloned().map(Envelope::new).collect();
    let refs: Vec<&Envelope> = envelopes.iter().collect();
    ingest.ingest(&refs, at("2026-12-01T19:00:00Z")).unwrap()
}

/// Everything the ingest wrote, in a canonical order, without the receive times.
fn dump(store: &Store, meters: &[&str]) -> Vec<String> {
    let (from, to) = (
        day_start() - Duration::days(2),
        day_start() + Duration::days(3),
    );
    let mut out = Vec::new();
    for m in meters {
        let m = serial(m);
        for s in store.mdm_intervals(&m, from, to).unwrap() {
            out.push(format!("{:?} v{} {:?}", s.reading, s.version, s.method));
        }
        for d in store.mdm_daily(&m, from, to).unwrap() {
            out.push(format!("{d:?}"));
        }
        for e in store.mdm_events(&m, from, to).unwrap() {
            out.push(format!("{e:?}"));
        }
        for x in store.mdm_exceptions(Some(&m), None, 1000, 0).unwrap() {
            out.push(format!("{x:?}"));
        }
    }
    for d in ["wfm", "billing", "crm", "oms"] {
        let mut keys: Vec<String> = store
            .mdm_notices(Some(d), 0, 1000)
            .unwrap()
            .into_iter()
            .map(|r| r.message.key)
            .collect();
        keys.sort();
        out.extend(keys);
    }
    out
}

#[test]
fn a_day_of_block_load_is_stored_once_and_a_repeat_changes_nothing() {
    let (_dir, store) = open_store();
    let ingest_svc = Ingest::new(store.clone(), Routing::default());
    let first = ingest(&ingest_svc, &[block("M1", 1, 96), daily("M1", 1)]);
    assert_eq!(first.written.intervals_new, 96);
    assert_eq!(first.written.daily, 1);
    // Voltage, current, kWh and kVAh import and export: six channel values per interval.
    assert_eq!(first.reads, 96 * 6);
    let before = dump(&store, &["M1"]);
    let again = ingest(&ingest_svc, &[block("M1", 1, 96), daily("M1", 1)]);
    assert_eq!(again.written.intervals_new, 0);
    assert_eq!(again.duplicates, 96);
    assert_eq!(again.reads, 0);
    assert_eq!(dump(&store, &["M1"]), before);
}

#[test]
fn an_actual_replaces_an_estimate_which_stays_in_the_history() {
    let (_dir, store) = open_store();
    let mut estimate = interval("M1", 10);
    estimate.import_wh = 999;
    estimate.quality = vec![Quality::Estimated];
    store
        .mdm_write(
            &IngestWrite {
                intervals: vec![IntervalWrite::New {
                    reading: estimate.clone(),
                    method: Some("linear_interpolation".into()),
                }],
                ..IngestWrite::default()
            },
            day_start(),
        )
        .unwrap();
    let svc = Ingest::new(store.clone(), Routing::default());
    let report = ingest(&svc, &[block("M1", 9, 11)]);
    assert_eq!(report.written.intervals_new, 2);
    assert_eq!(report.written.intervals_replaced, 1);
    let end = interval("M1", 10).interval_end;
    let now = store.mdm_intervals(&serial("M1"), end, end).unwrap();
    assert_eq!(now[0].reading, interval("M1", 10));
    assert_eq!(now[0].version, 2);
    let history = store.mdm_interval_history(&serial("M1"), end).unwrap();
    assert_eq!(history[0].reading, estimate);
}

fn other_reading(i: i64) -> IntervalReading {
    let mut other = interval("M1", i);
    other.import_wh += 500;
    other
}

#[test]
fn a_different_second_reading_is_kept_out_and_queued_as_an_overlap() {
    let (_dir, store) = open_store();
    let svc = Ingest::new(store.clone(), Routing::default());
    ingest(&svc, &[block("M1", 1, 4)]);
    let other = other_reading(3);
    let report = ingest(
        &svc,
        &[HesMessage::BlockLoad {
            meter: serial("M1"),
            intervals: vec![other],
        }],
    );
    assert_eq!(report.written.intervals_new, 0);
    assert_eq!(report.written.overlaps, 1);
    let end = interval("M1", 3).interval_end;
    assert_eq!(
        store.mdm_intervals(&serial("M1"), end, end).unwrap()[0].reading,
        interval("M1", 3)
    );
    // The second reading is kept whole, every channel, out of force.
    let kept = store.mdm_interval_overlaps(&serial("M1"), end).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, other_reading(3));
    let queue = store
        .mdm_exceptions(None, Some(ExceptionState::Open), 10, 0)
        .unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].rule, "overlap");
    assert!(queue[0].detail.contains("differs"), "{}", queue[0].detail);
}

#[test]
fn a_tamper_event_is_stored_with_its_severity_and_routed() {
    let (_dir, store) = open_store();
    let svc = Ingest::new(store.clone(), Routing::default());
    let report = ingest(
        &svc,
        &[HesMessage::Events {
            meter: serial("M1"),
            events: vec![
                event("M1", 251, EventKind::Single, 600),
                event("M1", 101, EventKind::Occurrence, 700),
            ],
        }],
    );
    assert_eq!(report.written.events, 2);
    let events = store
        .mdm_events(&serial("M1"), day_start(), day_start() + Duration::days(1))
        .unwrap();
    assert_eq!(events[0].severity, "critical");
    assert_eq!(events[1].severity, "major");
    let wfm = store.mdm_notices(Some("wfm"), 0, 10).unwrap();
    assert_eq!(wfm.len(), 1);
    assert!(
        wfm[0]
            .message
            .payload
            .contains(r#""notice":"site_inspection""#)
    );
    assert!(wfm[0].message.payload.contains(r#""code":251"#));
    assert_eq!(store.mdm_notices(Some("billing"), 0, 10).unwrap().len(), 1);
    assert_eq!(store.mdm_notices(Some("crm"), 0, 10).unwrap().len(), 1);
    // The power failure waits for the outage desk, which groups before it tells OMS.
    assert!(store.mdm_notices(Some("oms"), 0, 10).unwrap().is_empty());
    let waiting = store.outage_waiting().unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].source, "event_101");
}

#[test]
fn a_self_contradicting_message_becomes_a_dead_letter_and_the_rest_of_the_batch_lands() {
    let (_dir, store) = open_store();
    let svc = Ingest::new(store.clone(), Routing::default());
    let mut wrong = block("M1", 1, 3);
    if let HesMessage::BlockLoad { intervals, .. } = &mut wrong {
        intervals[1].meter = serial("M2");
    }
    let mut backwards = block("M3", 1, 3);
    if let HesMessage::BlockLoad { intervals, .. } = &mut backwards {
        intervals.reverse();
    }
    let report = ingest(&svc, &[wrong, backwards, block("M4", 1, 2)]);
    assert_eq!(report.written.dead_letters, 2);
    assert_eq!(report.written.intervals_new, 2);
    let dead = store.mdm_dead_letters(10).unwrap();
    assert!(dead.iter().any(|d| d.error.contains("an interval of M2")));
    assert!(dead.iter().any(|d| d.error.contains("out of order")));
    assert!(dead.iter().all(|d| d.kind == "block_load"));
}

#[tokio::test]
async fn publishing_completes_only_once_the_batch_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("urja.db");
    let store = Store::open(&path).unwrap();
    let bus = Bus::in_process();
    let svc = Ingest::new(store.clone(), Routing::default());
    let subscription = bus.subscribe("mdm", &[], 1024);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(async move {
        svc.run(
            subscription,
            512,
            async move {
                let _ = stop_rx.changed().await;
            },
            |_| {},
        )
        .await
    });
    let publishes: Vec<_> = (1..=20)
        .map(|m| {
            let bus = bus.clone();
            tokio::spawn(async move {
                bus.publish(Arc::new(Envelope::new(block(&format!("M{m}"), 1, 96))))
                    .await
            })
        })
        .collect();
    for p in publishes {
        assert_eq!(p.await.unwrap(), Ok(1));
    }
    // Acknowledged: every interval is in the file, seen through a separate connection.
    let other = Store::open(&path).unwrap();
    for m in 1..=20 {
        let stored = other
            .mdm_intervals(
                &serial(&format!("M{m}")),
                day_start(),
                day_start() + Duration::days(1),
            )
            .unwrap();
        assert_eq!(stored.len(), 96, "M{m}");
    }
    stop_tx.send(true).unwrap();
    tokio::time::timeout(StdDuration::from_secs(5), runner)
        .await
        .unwrap()
        .unwrap();
}

/// The messages of a small world: two meters, a day of block load in overlapping pieces, daily
/// rows and events.
fn world() -> Vec<HesMessage> {
    let mut out = Vec::new();
    for m in ["M1", "M22"] {
        out.push(block(m, 1, 40));
        out.push(block(m, 30, 70));
        out.push(block(m, 65, 96));
        out.push(daily(m, 0));
        out.push(daily(m, 1));
        out.push(HesMessage::Events {
            meter: serial(m),
            events: vec![
                event(m, 201, EventKind::Occurrence, 100),
                event(m, 202, EventKind::Restoration, 160),
            ],
        });
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Ingesting the same messages twice, in any order and any batching, yields the same store.
    #[test]
    fn any_order_any_repeats_same_store(
        order in Just(world()).prop_shuffle(),
        repeats in proptest::collection::vec(0usize..12, 0..8),
        cuts in proptest::collection::vec(1usize..6, 1..6),
    ) {
        let (_d1, reference) = open_store();
        ingest(&Ingest::new(reference.clone(), Routing::default()), &world());
        let expected = dump(&reference, &["M1", "M22"]);

        let (_d2, store) = open_store();
        let svc = Ingest::new(store.clone(), Routing::default());
        let mut stream = order.clone();
        stream.extend(repeats.iter().map(|i| order[*i].clone()));
        let mut rest: &[HesMessage] = &stream;
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (batch, tail) = rest.split_at((*cut).min(rest.len()));
            ingest(&svc, batch);
            rest = tail;
        }
        prop_assert_eq!(dump(&store, &["M1", "M22"]), expected);
    }
}

#[test]
fn network_changes_hang_the_meter_below_its_dcu_over_time() {
    use model::NetworkChangeKind;
    use store::mdm::Child;
    let (_dir, store) = open_store();
    let svc = Ingest::new(store.clone(), Routing::default());
    let change = |at: &str, change| HesMessage::NetworkChange {
        meter: serial("M1"),
        at: at.parse().unwrap(),
        change,
    };
    ingest(
        &svc,
        &[change(
            "2026-11-01T00:00:00Z",
            NetworkChangeKind::New {
                address: "10.0.0.7:4059".into(),
                dcu: Some("DCU-7".into()),
            },
        )],
    );
    ingest(
        &svc,
        &[
            change(
                "2026-11-20T00:00:00Z",
                NetworkChangeKind::Moved {
                    from_address: "10.0.0.7:4059".into(),
                    to_address: "10.0.9.1:4059".into(),
                    from_dcu: Some("DCU-7".into()),
                    to_dcu: Some("DCU-9".into()),
                },
            ),
            // A late copy of an older change does not rewrite history.
            change(
                "2026-11-05T00:00:00Z",
                NetworkChangeKind::Moved {
                    from_address: "x".into(),
                    to_address: "y".into(),
                    from_dcu: None,
                    to_dcu: Some("DCU-3".into()),
                },
            ),
        ],
    );
    let m1 = Child::Meter(serial("M1"));
    let parent = |t: &str| store.mdm_parent_at(&m1, at(t)).unwrap();
    assert_eq!(parent("2026-11-10T00:00:00Z").as_deref(), Some("DCU-7"));
    assert_eq!(parent("2026-11-25T00:00:00Z").as_deref(), Some("DCU-9"));
    assert_eq!(parent("2026-10-01T00:00:00Z"), None);
    assert_eq!(
        store.mdm_node("DCU-9").unwrap().map(|n| n.kind),
        Some(store::mdm::NodeKind::Dcu)
    );
}

/// A day `d` (0 = 1 December) of block load for `meter` with `wh` in every interval.
fn flat_day(meter: &str, d: i64, wh: i64) -> HesMessage {
    HesMessage::BlockLoad {
        meter: serial(meter),
        intervals: (1..=96)
            .map(|i| {
                let mut r = interval(meter, i);
                r.interval_end += Duration::days(d);
                r.import_wh = wh;
                r.import_vah = wh + 10;
                r
            })
            .collect(),
    }
}

fn snapshot(meter: &str, d: i64, wh: i64) -> HesMessage {
    HesMessage::DailyProfile {
        meter: serial(meter),
        days: vec![DailyReading {
            meter: serial(meter),
            captured_at: day_start() + Duration::days(d),
            import_wh: wh,
            import_vah: wh + 96 * 10 * d,
            export_wh: None,
            export_vah: None,
            quality: vec![],
        }],
    }
}

fn ingest_at(svc: &Ingest, messages: &[HesMessage], now: DateTime<Utc>) {
    let envelopes: Vec<Envelope> = messages.iter().cloned().map(Envelope::new).collect();
    let refs: Vec<&Envelope> = envelopes.iter().collect();
    svc.ingest(&refs, now).unwrap();
}

#[test]
fn a_spike_is_stored_flagged_suspect_and_queued() {
    let (_dir, store) = open_store();
    let svc = Ingest::new(store.clone(), Routing::default());
    // Two ordinary days teach the meter's history (100 Wh a quarter hour).
    for d in 0..2 {
        ingest_at(
            &svc,
            &[flat_day("M1", d, 100)],
            day_start() + Duration::days(d + 1),
        );
    }
    // Day three: one quarter hour of 9 kWh (36 kW), far above anything this meter does.
    let mut third = flat_day("M1", 2, 100);
    if let HesMessage::BlockLoad { intervals, .. } = &mut third {
        intervals[40].import_wh = 9_000;
        intervals[40].import_vah = 9_100;
    }
    ingest_at(&svc, &[third.clone()], day_start() + Duration::days(3));
    let HesMessage::BlockLoad { intervals, .. } = &third else {
        unreachable!()
    };
    let spike_end = intervals[40].interval_end;
    let stored = store
        .mdm_intervals(&serial("M1"), spike_end, spike_end)
        .unwrap();
    assert_eq!(
        stored[0].reading.import_wh, 9_000,
        "the value is kept as read"
    );
    assert!(stored[0].reading.quality.contains(&Quality::Suspect));
    let neighbour = intervals[39].interval_end;
    assert!(
        store
            .mdm_intervals(&serial("M1"), neighbour, neighbour)
            .unwrap()[0]
            .reading
            .quality
            .is_empty()
    );
    let queue = store
        .mdm_exceptions(Some(&serial("M1")), None, 10, 0)
        .unwrap();
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0].rule, "spike");
    assert_eq!((queue[0].from, queue[0].to), (spike_end, spike_end));
    assert!(queue[0].detail.contains("9000"), "{}", queue[0].detail);
}

#[test]
fn the_sum_check_runs_once_the_day_is_complete_whatever_came_first() {
    for snapshots_first in [true, false] {
        let (_dir, store) = open_store();
        let svc = Ingest::new(store.clone(), Routing::default());
        // M1's registers advance by exactly its intervals' 9 600 Wh; M2's by 12 000 Wh.
        let readings = [flat_day("M1", 0, 100), flat_day("M2", 0, 100)];
        let registers = [
            snapshot("M1", 0, 50_000),
            snapshot("M1", 1, 59_600),
            snapshot("M2", 0, 50_000),
            snapshot("M2", 1, 62_000),
        ];
        let now = day_start() + Duration::days(1);
        if snapshots_first {
            ingest_at(&svc, &registers, now);
            ingest_at(&svc, &readings, now);
        } else {
            ingest_at(&svc, &readings, now);
            ingest_at(&svc, &registers[..2], now);
            ingest_at(&svc, &registers[2..], now);
        }
        assert!(
            store
                .mdm_exceptions(Some(&serial("M1")), None, 10, 0)
                .unwrap()
                .is_empty()
        );
        let m2 = store
            .mdm_exceptions(Some(&serial("M2")), None, 10, 0)
            .unwrap();
        let rules: Vec<&str> = m2.iter().map(|x| x.rule.as_str()).collect();
        assert_eq!(rules, ["sum_check"], "snapshots first: {snapshots_first}");
        assert!(m2[0].detail.contains("9600"), "{}", m2[0].detail);
    }
}

#[test]
fn a_gap_is_estimated_after_the_day_and_replaced_when_the_actuals_arrive() {
    use store::mdm::ServicePoint;
    let (_dir, store) = open_store();
    for m in ["M1", "M2"] {
        store
            .mdm_put_service_point(&ServicePoint {
                id: format!("SP-{m}"),
                address: "Patna".into(),
                sanctioned_load_w: 2000,
            })
            .unwrap();
        store
            .mdm_install_meter(
                &serial(m),
                &format!("SP-{m}"),
                day_start() - Duration::days(9),
            )
            .unwrap();
    }
    let svc = Ingest::new(store.clone(), Routing::default());
    let without = |meter: &str, gap: std::ops::RangeInclusive<usize>| {
        let mut day = flat_day(meter, 0, 100);
        if let HesMessage::BlockLoad { intervals, .. } = &mut day {
            // Intervals i (1-based) of the gap are missing; 200 Wh just after it.
            intervals[*gap.end()].import_wh = 200;
            intervals.drain(gap.start() - 1..*gap.end());
        }
        day
    };
    // M1: intervals 41..=43 missing, 100 Wh before and 200 Wh after: interpolated.
    // M2: intervals 11..=20 missing (2.5 h), registers say the day used 10 000 Wh.
    let now = day_start() + Duration::days(1) + Duration::hours(9);
    ingest_at(
        &svc,
        &[
            without("M1", 41..=43),
            without("M2", 11..=20),
            snapshot("M2", 0, 70_000),
            snapshot("M2", 1, 80_000),
        ],
        now,
    );
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let report = svc.estimate_day(day, now).unwrap();
    assert_eq!((report.meters, report.gaps, report.estimated), (2, 2, 13));
    assert_eq!(report.left_missing, 0);

    let end = |i: i64| day_start() + Duration::minutes(15 * i);
    let m1 = store
        .mdm_intervals(&serial("M1"), end(41), end(43))
        .unwrap();
    let values: Vec<i64> = m1.iter().map(|s| s.reading.import_wh).collect();
    assert_eq!(values, [125, 150, 175]);
    assert!(
        m1.iter()
            .all(|s| s.reading.quality.contains(&Quality::Estimated)
                && s.method.as_deref() == Some("linear_interpolation"))
    );
    // M2: 86 actual intervals, 85 of 100 Wh and one of 200 = 8 700; the gap gets 1 300.
    let m2 = store
        .mdm_intervals(&serial("M2"), end(11), end(20))
        .unwrap();
    assert_eq!(m2.len(), 10);
    assert_eq!(m2.iter().map(|s| s.reading.import_wh).sum::<i64>(), 1_300);
    assert!(
        m2.iter()
            .all(|s| s.method.as_deref() == Some("scaled_to_register"))
    );
    // Estimating again finds nothing left to do.
    assert_eq!(svc.estimate_day(day, now).unwrap().estimated, 0);

    // The head-end re-reads M1's gap: actuals replace the estimates, which stay in the history.
    ingest_at(&svc, &[flat_day("M1", 0, 100)], now + Duration::hours(1));
    let now_m1 = store
        .mdm_intervals(&serial("M1"), end(41), end(43))
        .unwrap();
    assert!(now_m1.iter().all(|s| s.reading.import_wh == 100
        && s.reading.quality.is_empty()
        && s.version == 2
        && s.method.is_none()));
    let history = store.mdm_interval_history(&serial("M1"), end(42)).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].reading.import_wh, 150);
    assert_eq!(history[0].method.as_deref(), Some("linear_interpolation"));
}

#[test]
fn a_dcu_the_head_end_announces_keeps_the_meter_in_the_tree_and_a_wrong_one_blocks_nothing() {
    use model::NetworkChangeKind;
    use store::mdm::{Child, NetworkNode, NodeKind};
    let (_dir, store) = open_store();
    let t0 = at("2026-01-01T00:00:00Z");
    for (id, kind, parent) in [
        ("SS", NodeKind::Substation, None),
        ("F", NodeKind::Feeder, Some("SS")),
        ("DT", NodeKind::Transformer, Some("F")),
    ] {
        store
            .mdm_put_node(&NetworkNode {
                id: id.into(),
                kind,
                name: id.into(),
            })
            .unwrap();
        if let Some(p) = parent {
            store
                .mdm_link(&Child::Node(kind, id.into()), p, t0)
                .unwrap();
        }
    }
    for m in ["M1", "M2"] {
        store.mdm_link(&Child::Meter(serial(m)), "DT", t0).unwrap();
    }
    let svc = Ingest::new(store.clone(), Routing::default());
    let new = |meter: &str, dcu: &str| HesMessage::NetworkChange {
        meter: serial(meter),
        at: at("2026-11-01T00:00:00Z"),
        change: NetworkChangeKind::New {
            address: "10.1.1.1:4059".into(),
            dcu: Some(dcu.into()),
        },
    };
    // M1 is now reached through DCU-1; M2's change names the transformer as its DCU.
    let report = ingest(
        &svc,
        &[new("M1", "DCU-1"), new("M2", "DT"), block("M3", 1, 2)],
    );
    assert_eq!(report.written.intervals_new, 2, "the batch landed");
    let later = at("2026-11-02T00:00:00Z");
    assert_eq!(
        store
            .mdm_parent_at(&Child::Meter(serial("M1")), later)
            .unwrap()
            .as_deref(),
        Some("DCU-1")
    );
    assert_eq!(
        store
            .mdm_parent_at(&Child::Node(NodeKind::Dcu, "DCU-1".into()), later)
            .unwrap()
            .as_deref(),
        Some("DT")
    );
    assert_eq!(
        store.mdm_meters_under("SS", later).unwrap(),
        vec![serial("M1"), serial("M2")]
    );
    assert_eq!(
        store
            .mdm_parent_at(&Child::Meter(serial("M2")), later)
            .unwrap()
            .as_deref(),
        Some("DT")
    );
}

/// A meter capturing every 30 minutes is judged on its own period: its 48 intervals make a
/// complete day, nothing is estimated into the quarter hours it never had, and its demand is
/// energy over 30 minutes.
#[test]
fn a_half_hourly_meter_is_judged_on_its_own_period() {
    use mdm::completeness::{CompletenessConfig, for_day};
    use mdm::determinants::{Metering, daily_for_consumer};
    use store::mdm::{Connection, Consumer, NetworkImport, NetworkNode, NodeKind, ServicePoint};
    let (_dir, store) = open_store();
    let since = day_start() - Duration::days(30);
    store
        .mdm_import_network(
            &NetworkImport {
                nodes: vec![(
                    NetworkNode {
                        id: "DT".into(),
                        kind: NodeKind::Transformer,
                        name: "DT".into(),
                    },
                    None,
                )],
                connections: vec![Connection {
                    consumer: Consumer {
                        consumer_no: "C-30".into(),
                        name: "Half-hourly".into(),
                        category: "commercial".into(),
                        net_metered: false,
                    },
                    service_point: ServicePoint {
                        id: "SP-30".into(),
                        address: "Hazratganj".into(),
                        sanctioned_load_w: 10_000,
                    },
                    meter: serial("M30"),
                    parent: "DT".into(),
                    since,
                }],
                since,
            },
            day_start(),
        )
        .unwrap();
    let svc = Ingest::new(store.clone(), Routing::default());
    let half_hours = HesMessage::BlockLoad {
        meter: serial("M30"),
        intervals: (1..=48)
            .map(|i| {
                let mut r = interval("M30", 2 * i);
                r.import_wh = 500;
                r.import_vah = 520;
                r
            })
            .collect(),
    };
    let now = day_start() + Duration::days(1) + Duration::hours(1);
    ingest_at(
        &svc,
        &[
            half_hours,
            snapshot("M30", 0, 10_000),
            snapshot("M30", 1, 34_000),
        ],
        now,
    );
    assert_eq!(
        store.mdm_capture_period(&serial("M30")).unwrap(),
        Some(1800)
    );
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let c = for_day(&store, day, &CompletenessConfig::default()).unwrap();
    assert_eq!((c.meters, c.full_block_load), (1, 1), "{c:?}");
    let report = svc.estimate_day(day, now).unwrap();
    assert_eq!(report.estimated, 0, "{report:?}");
    let d = daily_for_consumer(&store, "C-30", day, &Metering::default())
        .unwrap()
        .unwrap();
    assert_eq!(d.missing_intervals, 0);
    assert_eq!(d.figures.import_wh, 48 * 500);
    // 500 Wh in half an hour is 1 kW.
    assert_eq!(d.figures.max_w.unwrap().value, 1000);
    // The day's registers advance by its intervals: no sum-check finding.
    assert!(
        store
            .mdm_exceptions(Some(&serial("M30")), None, 10, 0)
            .unwrap()
            .is_empty()
    );
}

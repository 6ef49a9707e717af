//! The outage desk over a real store: last gasps ingested, grouped by the network, told to OMS
//! and CIS/CRM once per outage, and restored when the first breaths come in.

use bus::Envelope;
use chrono::{DateTime, Duration, Utc};
use mdm::events::Routing;
use mdm::ingest::Ingest;
use mdm::outages::{OutageConfig, tick};
use model::{HesMessage, MeterSerial, OutageState};
use serde_json::Value;
use store::Store;
use store::mdm::{Child, NetworkNode, NodeKind};
use store::outages::{OutageLevel, OutageStatus};

fn t(s: i64) -> DateTime<Utc> {
    "2026-12-01T04:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::seconds(s)
}

fn serial(i: usize) -> MeterSerial {
    MeterSerial::new(format!("DT1-{i:03}")).unwrap()
}

/// A feeder with two DTs; DT-1 has 200 meters, DT-2 has 10.
fn store_with_network(dir: &tempfile::TempDir) -> Store {
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let since = t(-86_400);
    for (id, kind, parent) in [
        ("SS", NodeKind::Substation, None),
        ("F-1", NodeKind::Feeder, Some("SS")),
        ("DT-1", NodeKind::Transformer, Some("F-1")),
        ("DT-2", NodeKind::Transformer, Some("F-1")),
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
                .mdm_link(&Child::Node(kind, id.into()), p, since)
                .unwrap();
        }
    }
    for i in 0..210 {
        let dt = if i < 200 { "DT-1" } else { "DT-2" };
        store.mdm_link(&Child::Meter(serial(i)), dt, since).unwrap();
    }
    store
}

fn push(
    ingest: &Ingest,
    meters: std::ops::Range<usize>,
    state: OutageState,
    at: impl Fn(usize) -> i64,
) {
    let envelopes: Vec<Envelope> = meters
        .map(|i| {
            Envelope::new(HesMessage::Outage {
                meter: serial(i),
                state,
                at: t(at(i)),
            })
        })
        .collect();
    let refs: Vec<&Envelope> = envelopes.iter().collect();
    ingest.ingest(&refs, t(0)).unwrap();
}

fn notices(store: &Store, to: &str) -> Vec<Value> {
    store
        .mdm_notices(Some(to), 0, 1000)
        .unwrap()
        .into_iter()
        .map(|n| serde_json::from_str(&n.message.payload).unwrap())
        .collect()
}

#[test]
fn two_hundred_last_gasps_under_one_dt_within_a_minute_are_one_outage_and_its_restoration() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_network(&dir);
    let ingest = Ingest::new(store.clone(), Routing::default());
    let (routing, cfg) = (Routing::default(), OutageConfig::default());
    // 200 last gasps over 59 seconds, every one delivered twice.
    let second = |i: usize| (i as i64 * 37) % 60;
    push(&ingest, 0..200, OutageState::Started, second);
    push(&ingest, 0..200, OutageState::Started, second);
    // Inside the window: waiting, nothing told yet.
    assert_eq!(tick(&store, &routing, &cfg, t(60)).unwrap().waiting, 200);
    assert!(store.outages(None, None, 10).unwrap().is_empty());
    let report = tick(&store, &routing, &cfg, t(125)).unwrap();
    assert_eq!((report.declared, report.waiting), (1, 0));
    let list = store.outages(Some(OutageStatus::Active), None, 10).unwrap();
    assert_eq!(list.len(), 1);
    let o = &list[0];
    assert_eq!(
        (o.level, o.node.as_str(), o.meters),
        (OutageLevel::Dt, "DT-1", 200)
    );
    assert_eq!(o.started_at, t(0));
    for to in ["oms", "crm"] {
        let n = notices(&store, to);
        assert_eq!(n.len(), 1, "{to}: {n:?}");
        assert_eq!(n[0]["state"], "started");
        assert_eq!(n[0]["node"], "DT-1");
        assert_eq!(n[0]["meters_off"], 200);
        assert_eq!(n[0]["meters"].as_array().unwrap().len(), 200);
    }
    // A tick with nothing new changes nothing.
    assert_eq!(tick(&store, &routing, &cfg, t(130)).unwrap().declared, 0);

    // Power returns to 150, then to the rest (first breaths, the second lot twice).
    push(&ingest, 0..150, OutageState::Restored, |_| 1800);
    tick(&store, &routing, &cfg, t(1810)).unwrap();
    let o = store.outage(list[0].id).unwrap().unwrap();
    assert_eq!(o.status(), OutageStatus::Partial);
    assert_eq!(o.meters_on(), 150);
    for _ in 0..2 {
        push(&ingest, 150..200, OutageState::Restored, |i| {
            2400 + i as i64
        });
    }
    let report = tick(&store, &routing, &cfg, t(2700)).unwrap();
    assert_eq!(report.restored, 1);
    let o = store.outage(list[0].id).unwrap().unwrap();
    assert_eq!(o.status(), OutageStatus::Restored);
    assert_eq!(o.restored_at, Some(t(2599)));
    assert!(
        o.meters
            .iter()
            .all(|m| m.power_offs == 1 && m.power_ons == 1)
    );
    for to in ["oms", "crm"] {
        let n = notices(&store, to);
        assert_eq!(n.len(), 2, "{to}");
        assert_eq!(n[1]["state"], "restored");
        assert_eq!(n[1]["duration_s"], 2599);
        assert_eq!(n[1]["meters_on"], 200);
    }
    // The event log read after the breath tells the same interruption: nothing new.
    let late = Envelope::new(HesMessage::Events {
        meter: serial(0),
        events: vec![model::MeterEvent {
            meter: serial(0),
            at: t(1),
            code: 101,
            category: model::EventCategory::Power,
            kind: model::EventKind::Occurrence,
            description: "Power failure".into(),
            quality: vec![],
        }],
    });
    ingest.ingest(&[&late], t(2800)).unwrap();
    let report = tick(&store, &routing, &cfg, t(2900)).unwrap();
    assert_eq!(
        (report.declared, report.restored, report.waiting),
        (0, 0, 0)
    );
    assert_eq!(store.outages(None, None, 10).unwrap().len(), 1);
}

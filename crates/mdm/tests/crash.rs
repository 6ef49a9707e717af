//! Crash safety: a process ingesting heavily is killed with SIGKILL; every message it had
//! acknowledged is in the file, and after a restart that receives everything again (the
//! publisher re-sends what was not acknowledged, and more), each reading is there exactly once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use bus::{Bus, Envelope};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use mdm::events::Routing;
use mdm::ingest::Ingest;
use model::{HesMessage, IntervalReading, MeterSerial};
use store::Store;

const CRASH_DB: &str = "URJA_MDM_CRASH_DB";
const METERS: u32 = 4000;

fn day_start() -> DateTime<Utc> {
    "2026-11-30T18:30:00Z".parse().unwrap()
}

fn serial(m: u32) -> MeterSerial {
    MeterSerial::new(format!("CR{m:05}")).unwrap()
}

fn message(m: u32) -> HesMessage {
    HesMessage::BlockLoad {
        meter: serial(m),
        intervals: (1..=96)
            .map(|i| IntervalReading {
                meter: serial(m),
                interval_end: day_start() + Duration::minutes(15 * i),
                avg_voltage_v: Some(230.0),
                avg_current_a: Some(2.0),
                avg_phase_voltage_v: None,
                avg_phase_current_a: None,
                import_wh: i64::from(m) + i,
                import_vah: i64::from(m) + i + 7,
                export_wh: Some(0),
                export_vah: Some(0),
                quality: vec![],
            })
            .collect(),
    }
}

/// The child: ingests from the bus into the file and publishes every message, printing the key
/// of each acknowledged one at once.
#[test]
fn ingest_child() {
    let Ok(path) = std::env::var(CRASH_DB) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Store::open(&path).unwrap();
        let bus = Bus::in_process();
        let subscription = bus.subscribe("mdm", &[], 1024);
        let ingest = Ingest::new(store, Routing::default());
        tokio::spawn(async move {
            ingest
                .run(subscription, 256, std::future::pending(), |_| {})
                .await
        });
        let mut out = std::io::stdout();
        // Up to 512 in flight, as the outbox relay publishes.
        let mut acks = futures::stream::iter((0..METERS).map(|m| {
            let bus = bus.clone();
            async move {
                let envelope = Arc::new(Envelope::new(message(m)));
                bus.publish(envelope.clone())
                    .await
                    .map(|_| envelope.key.clone())
            }
        }))
        .buffer_unordered(512);
        while let Some(result) = acks.next().await {
            writeln!(out, "ACK {}", result.unwrap()).unwrap();
            out.flush().unwrap();
        }
    });
}

/// Runs the child; with `kill_after`, kills it with SIGKILL after that many acknowledgements.
/// Returns the keys acknowledged.
fn run_child(path: &std::path::Path, kill_after: Option<usize>) -> HashSet<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "ingest_child", "--nocapture", "--test-threads=1"])
        .env(CRASH_DB, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = HashSet::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(line) = line else { break };
        // The test harness may print its own "test ingest_child ... " before the first line.
        if let Some((_, key)) = line.split_once("ACK ") {
            acked.insert(key.to_string());
            if kill_after.is_some_and(|n| acked.len() >= n) {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    let status = child.wait().unwrap();
    if kill_after.is_none() {
        assert!(status.success(), "the restarted child must finish");
    }
    acked
}

fn stored_intervals(store: &Store, m: u32) -> Vec<store::StoredInterval> {
    store
        .mdm_intervals(&serial(m), day_start(), day_start() + Duration::days(1))
        .unwrap()
}

#[test]
fn sigkill_during_heavy_ingest_loses_no_acknowledged_reading_and_duplicates_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("urja.db");
    let acked = run_child(&path, Some(200));
    assert!(acked.len() >= 200, "the child acknowledged {}", acked.len());
    // Everything acknowledged before the kill is in the file.
    let store = Store::open(&path).unwrap();
    let mut present = 0;
    for m in 0..METERS {
        let key = Envelope::new(message(m)).key;
        let rows = stored_intervals(&store, m);
        if acked.contains(&key) {
            assert_eq!(rows.len(), 96, "acknowledged {key} is not all there");
        }
        present += usize::from(!rows.is_empty());
        // A batch is one transaction: a message is either all there or not at all.
        assert!(
            rows.is_empty() || rows.len() == 96,
            "{key}: {} rows",
            rows.len()
        );
    }
    assert!(present < METERS as usize, "the kill came before the end");
    drop(store);

    // Restart: everything is sent again; each reading ends up there once, never rewritten.
    let second = run_child(&path, None);
    assert_eq!(second.len(), METERS as usize);
    let store = Store::open(&path).unwrap();
    for m in 0..METERS {
        let rows = stored_intervals(&store, m);
        assert_eq!(rows.len(), 96, "meter {m}");
        assert!(
            rows.iter().all(|r| r.version == 1),
            "meter {m} was rewritten"
        );
        let expected = message(m);
        let HesMessage::BlockLoad { intervals, .. } = &expected else {
            unreachable!()
        };
        let got: Vec<&IntervalReading> = rows.iter().map(|r| &r.reading).collect();
        assert_eq!(got, intervals.iter().collect::<Vec<_>>());
    }
}

//! Session commits as the head-end group-commits them: 1000 sessions in one transaction, each
//! with a cursor, an attempt row and two 8 KB outbox messages (a day of block load and the daily
//! profile, as serialised readings). Target: well above 1,000 sessions per second, the head-end's
//! collection rate. Divan's throughput column is sessions per second.
//!
//! For comparison, `commit_session_each` commits the same sessions one transaction each.
//!
//! Run: `cargo bench -p store --bench commit`

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use divan::Bencher;
use divan::counter::ItemsCount;
use model::MeterSerial;
use store::silently;
use store::{MeterRecord, OutboxMessage, Outcome, SessionCommit, Store};

const METERS: usize = 1000;
const PAYLOAD: usize = 8 * 1024;

fn main() {
    divan::main();
}

fn serial(i: usize) -> MeterSerial {
    MeterSerial::new(format!("BENCH-{i:06}")).unwrap()
}

fn store_with_meters() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("bench.db")).unwrap();
    let t: DateTime<Utc> = "2026-11-25T00:00:00Z".parse().unwrap();
    for i in 0..METERS {
        let m = MeterRecord {
            serial: serial(i),
            kind: "single-phase".into(),
            host: "127.0.0.1".into(),
            port: u16::try_from(10_000 + i).unwrap(),
            transport: "wrapper".into(),
            server_address: 1,
            dcu: None,
            group: "default".into(),
            system_title: [0x55; 8],
        };
        store.import_meter(&m, &[0xAA; 64], t, &silently).unwrap();
    }
    (dir, store)
}

/// One session per meter; `round` makes the outbox keys and times unique per iteration.
fn batch(round: u64) -> Vec<SessionCommit> {
    let start: DateTime<Utc> = "2026-11-26T00:30:00Z".parse().unwrap();
    let start = start + Duration::minutes(i64::try_from(round).unwrap());
    let payload = vec![0x5A; PAYLOAD];
    (0..METERS)
        .map(|i| {
            let meter = serial(i);
            SessionCommit {
                outbox: vec![
                    OutboxMessage {
                        key: format!("{meter}/block_load/{round}"),
                        kind: "interval_readings".into(),
                        payload: payload.clone(),
                    },
                    OutboxMessage {
                        key: format!("{meter}/daily/{round}"),
                        kind: "daily_reading".into(),
                        payload: payload.clone(),
                    },
                ],
                invocation_counter: Some(100),
                meter,
                job: "block_load".into(),
                attempt: 1,
                started_at: start,
                ended_at: start + Duration::seconds(1),
                outcome: Outcome::Ok,
                contacted: true,
                cursors: vec![("block_load".into(), start)],
                gaps: vec![],
            }
        })
        .collect()
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn commit_sessions(bencher: Bencher) {
    let (_dir, store) = store_with_meters();
    let round = AtomicU64::new(0);
    bencher
        .counter(ItemsCount::new(METERS))
        .with_inputs(|| batch(round.fetch_add(1, Ordering::Relaxed)))
        .bench_local_refs(|cs| store.commit_sessions(cs).unwrap());
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn commit_session_each(bencher: Bencher) {
    let (_dir, store) = store_with_meters();
    let round = AtomicU64::new(0);
    bencher
        .counter(ItemsCount::new(METERS))
        .with_inputs(|| batch(round.fetch_add(1, Ordering::Relaxed)))
        .bench_local_refs(|cs| {
            for c in cs.iter() {
                store.commit_session(c).unwrap();
            }
        });
}

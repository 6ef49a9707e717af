//! `urja bench ingest`: the MDM's ingest throughput. A realistic stream (many meters, a day or
//! more of 15-minute block load with every channel; a share of three-phase meters with phase
//! voltages and currents) is published on the in-process bus, as the head-end's outbox relay
//! does, and taken in by the MDM's ingest: checked against what is stored, made durable in
//! SQLite (WAL) and acknowledged. In the same run the same rows are inserted raw into the same
//! table of a fresh file (prepared statement, the same batch per transaction) as a baseline.
//! Prints reads per second (one read = one channel value of one interval) for both, and their
//! ratio.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bus::{Bus, Envelope};
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use mdm::events::Routing;
use mdm::ingest::{DEFAULT_BATCH, Ingest, channels};
use meter_sim::load::{LoadModel, local_day, local_midnight};
use model::{HesMessage, IntervalReading, MeterSerial};
use store::Store;

use crate::bench::peak_rss_kib;
use crate::hes_cli;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchIngestArgs {
    /// Meters in the stream.
    #[arg(long, default_value_t = 10_000)]
    pub meters: u32,
    /// Days of block load per meter (96 intervals a day).
    #[arg(long, default_value_t = 2)]
    pub days: u32,
    /// Share of three-phase meters (10 channels an interval instead of 6), percent.
    #[arg(long, default_value_t = 10)]
    pub three_phase_percent: u32,
    /// Most messages per ingest transaction.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
}

/// Capture period of the stream, seconds.
const PERIOD: i64 = 900;

pub async fn ingest(args: BenchIngestArgs) -> Result<()> {
    if args.meters == 0 || args.days == 0 {
        bail!("--meters and --days need at least one");
    }
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let t_gen = Instant::now();
    let messages = stream(&args)?;
    let intervals: u64 = messages.iter().map(|m| intervals_of(m).len() as u64).sum();
    let reads: u64 = messages
        .iter()
        .flat_map(|m| intervals_of(m).iter())
        .map(channels)
        .sum();
    println!(
        "urja bench ingest: {} meter(s) x {} day(s): {} messages, {intervals} intervals, {reads} \
         reads (generated in {:.1} s)",
        args.meters,
        args.days,
        messages.len(),
        t_gen.elapsed().as_secs_f64()
    );

    let store = Store::open(dir.path().join("mdm.sqlite")).context("opening the store")?;
    let (secs, written) = through_ingest(&store, &messages, args.batch).await?;
    if written != reads {
        bail!("ingest wrote {written} reads of the {reads} sent");
    }
    let rate = reads as f64 / secs;
    println!(
        "ingest: {secs:.2} s, {rate:.0} reads/s ({:.0} intervals/s), durable and acknowledged",
        intervals as f64 / secs
    );

    let raw_path = dir.path().join("raw.sqlite");
    drop(Store::open(&raw_path).context("creating the baseline file")?);
    let raw_secs = tokio::task::spawn_blocking({
        let messages = messages.clone();
        let batch = args.batch;
        move || raw_inserts(&raw_path, &messages, batch)
    })
    .await??;
    let raw_rate = reads as f64 / raw_secs;
    println!("baseline (raw inserts of the same rows): {raw_secs:.2} s, {raw_rate:.0} reads/s");
    println!("ratio ingest/baseline: {:.3}", rate / raw_rate);
    println!(
        "reads per hour at this rate: {:.2} billion",
        rate * 3600.0 / 1e9
    );
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unknown"),
    }
    Ok(())
}

fn intervals_of(m: &Envelope) -> &[IntervalReading] {
    match &m.message {
        HesMessage::BlockLoad { intervals, .. } => intervals,
        _ => &[],
    }
}

/// One block-load message per meter per day, day by day, as a head-end would send them; the
/// values come from the simulator's load model.
fn stream(args: &BenchIngestArgs) -> Result<Vec<Arc<Envelope>>> {
    let today = local_day(Utc::now().timestamp());
    let bar = hes_cli::progress_bar(args.meters as usize * args.days as usize, "generating");
    let mut out = Vec::with_capacity(args.meters as usize * args.days as usize);
    for d in (1..=args.days as i64).rev() {
        let (from, to) = (local_midnight(today - d), local_midnight(today - d + 1));
        for m in 0..args.meters {
            let model = LoadModel::new(7, m, PERIOD);
            let serial = MeterSerial::new(format!("BENCH{m:07}"))?;
            let three_phase = m % 100 < args.three_phase_percent;
            let intervals = model
                .block_rows(from + PERIOD, to, to)
                .into_iter()
                .map(|r| {
                    let phase = |x: f64| three_phase.then_some([x * 0.98, x, x * 1.02]);
                    IntervalReading {
                        meter: serial.clone(),
                        interval_end: at(r.end),
                        avg_voltage_v: (!three_phase).then_some(r.voltage),
                        avg_current_a: (!three_phase).then_some(r.current),
                        avg_phase_voltage_v: phase(r.voltage),
                        avg_phase_current_a: phase(r.current / 3.0),
                        import_wh: r.wh,
                        import_vah: r.vah,
                        export_wh: Some(r.export_wh),
                        export_vah: Some(r.export_vah),
                        quality: Vec::new(),
                    }
                })
                .collect();
            out.push(Arc::new(Envelope::new(HesMessage::BlockLoad {
                meter: serial,
                intervals,
            })));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(out)
}

fn at(t: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(t)
}

/// Publishes every message on the bus (up to `batch` in flight, as the outbox relay does) to the
/// MDM's ingest, and waits for each acknowledgement. Returns (seconds, reads written).
async fn through_ingest(
    store: &Store,
    messages: &[Arc<Envelope>],
    batch: usize,
) -> Result<(f64, u64)> {
    let bus = Bus::in_process();
    let service = Ingest::new(store.clone(), Routing::default());
    let subscription = bus.subscribe("mdm", &[], batch * 2);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let bar = hes_cli::progress_bar(messages.len(), "ingesting");
    let (reads_tx, reads_rx) = std::sync::mpsc::channel();
    let runner = tokio::spawn({
        let bar = bar.clone();
        async move {
            service
                .run(
                    subscription,
                    batch,
                    async move {
                        let _ = stop_rx.changed().await;
                    },
                    |report| {
                        bar.inc(report.messages);
                        let _ = reads_tx.send(report.reads);
                    },
                )
                .await
        }
    });
    let t0 = Instant::now();
    let mut publishes = futures::stream::iter(messages.iter().cloned())
        .map(|m| {
            let bus = bus.clone();
            async move { bus.publish(m).await }
        })
        .buffer_unordered(batch);
    while let Some(result) = publishes.next().await {
        if result.context("a publish")? != 1 {
            bail!("a message was not taken by the ingest");
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let _ = stop_tx.send(true);
    runner.await.context("the ingest task")?;
    Ok((secs, reads_rx.try_iter().sum()))
}

/// The baseline: the same rows straight into `interval_reading` of a fresh file with a
/// prepared statement, `batch` messages per transaction, nothing read or checked.
fn raw_inserts(path: &std::path::Path, messages: &[Arc<Envelope>], batch: usize) -> Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let now = Utc::now().timestamp_millis();
    let t0 = Instant::now();
    for chunk in messages.chunks(batch.max(1)) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO interval_reading (meter, interval_end, version, import_wh, \
                 import_vah, export_wh, export_vah, voltage_v, current_a, voltage_r_v, \
                 voltage_y_v, voltage_b_v, current_r_a, current_y_a, current_b_a, quality, \
                 method, received_at) VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
                 ?12, ?13, ?14, 0, NULL, ?15)",
            )?;
            for r in chunk.iter().flat_map(|m| intervals_of(m).iter()) {
                let p = |v: Option<[f64; 3]>, i: usize| v.map(|a| a[i]);
                insert.execute(rusqlite::params![
                    r.meter.as_str(),
                    r.interval_end.timestamp_millis(),
                    r.import_wh,
                    r.import_vah,
                    r.export_wh,
                    r.export_vah,
                    r.avg_voltage_v,
                    r.avg_current_a,
                    p(r.avg_phase_voltage_v, 0),
                    p(r.avg_phase_voltage_v, 1),
                    p(r.avg_phase_voltage_v, 2),
                    p(r.avg_phase_current_a, 0),
                    p(r.avg_phase_current_a, 1),
                    p(r.avg_phase_current_a, 2),
                    now
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(t0.elapsed().as_secs_f64())
}

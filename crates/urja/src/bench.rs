//! `urja bench hes`: the head-end's throughput against a simulated fleet served by a second
//! process (`urja sim`, this same binary): one day of block load plus the daily profile from
//! every meter over HLS with AES-GCM, made durable and relayed through the outbox to a bus
//! subscriber; then, for the ratio, a baseline of the same sessions doing nothing durable (the
//! association, a clock read, the release). Prints sessions, sessions per second, total time,
//! intervals, messages relayed and the head-end process's peak memory.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bus::Bus;
use dlms::association::client::ClientSecurityState;
use futures::StreamExt;
use hes::collect::collect_all;
use hes::keystore::MasterKey;
use hes::plan::{JobKind, WallClock};
use hes::runtime::{HeadEnd, HesConfig, MeterEntry};
use hes::{Role, Session, operations};
use store::Store;
use tokio::sync::watch;

use crate::hes_cli::{self, MessageCounts};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchCommand {
    /// Collect a day of block load and the daily profile from a simulated fleet in a second
    /// process, and report the head-end's throughput and memory.
    Hes(BenchHesArgs),
    /// Feed a realistic block-load stream through the MDM's ingest into the store, and the
    /// same rows raw into SQLite as a baseline; report reads per second and the ratio.
    Ingest(crate::bench_ingest::BenchIngestArgs),
    /// Seed N prepaid wallets, charge a day for all of them (and the same day again), against
    /// raw ledger inserts as a baseline; time the MDM's daily figures for all consumers.
    Charge(crate::bench_charge::BenchChargeArgs),
    /// Seed N postpaid consumers (billing-profile rows, last month's bill, payments), run a
    /// billing cycle for all of them (and again, which issues nothing), against raw bill
    /// inserts as a baseline; time making bills into PDFs.
    Bill(crate::bench_bill::BenchBillArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchHesArgs {
    /// Simulated meters.
    #[arg(long, default_value_t = 10_000)]
    pub meters: u32,
    /// Sessions open at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Address of the first simulated meter.
    #[arg(long, default_value = "127.3.0.1")]
    pub base_address: Ipv4Addr,
}

/// How long the simulator may take to start and write its key file.
const SIM_START_TIMEOUT: Duration = Duration::from_secs(300);
/// Counters far above any the collection used, for the baseline's own sessions.
const BASELINE_COUNTER_START: u32 = 1 << 30;

/// The simulator child process; killed when dropped, so it never outlives the benchmark.
struct SimProcess {
    child: Child,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn hes(args: BenchHesArgs) -> Result<()> {
    if args.meters == 0 {
        bail!("--meters needs at least one meter");
    }
    // Each session is a socket here and one in the simulator.
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    let needed = args.concurrency as u64 * 2 + 256;
    if files < needed {
        eprintln!("warning: the open-file limit is {files}; {needed} may be needed");
    }
    let dir = tempfile::tempdir().context("a temporary directory")?;
    let keys = dir.path().join("keys.json");
    let t_sim = Instant::now();
    // Port 0: the simulator takes a free one and writes it into the key file.
    let sim = start_simulator(&args, 0, &keys)?;
    let (sim, keys_bytes) = wait_for_keys(sim, &keys, SIM_START_TIMEOUT).await?;
    println!(
        "urja bench hes: {} simulated meter(s) in a second process (pid {}), started in {:.1} s",
        args.meters,
        sim.child.id(),
        t_sim.elapsed().as_secs_f64()
    );
    let result = run_bench(&args, dir.path(), &keys_bytes, sim.child.id()).await;
    drop(sim);
    result
}

async fn run_bench(args: &BenchHesArgs, dir: &Path, keys: &[u8], sim_pid: u32) -> Result<()> {
    let mut config = HesConfig {
        concurrency: args.concurrency.max(1),
        ..HesConfig::default()
    };
    config.schedule.default.backfill = Duration::from_secs(24 * 3600);
    let store = Store::open(dir.join("data").join("urja.sqlite")).context("opening the store")?;
    let master = MasterKey::generate().context("a master key")?;
    let bus = Bus::in_process();
    let counts = MessageCounts::subscribe(&bus);
    let hes = HeadEnd::with_store(store, master, config, bus, WallClock::system())
        .context("starting the head-end")?;

    let t_import = Instant::now();
    let imported = hes_cli::import_bytes(&hes, keys, "the simulator's key file").await?;
    println!(
        "imported {} meter(s) in {:.2} s ({}); peak RSS so far {}",
        hes.meters().len(),
        t_import.elapsed().as_secs_f64(),
        hes_cli::import_counts(&imported),
        peak_rss_kib().map_or("unknown".into(), |k| format!(
            "{:.1} MiB",
            k as f64 / 1024.0
        ))
    );

    // The collection, with the outbox relay running alongside as it would in production.
    let (stop_tx, stop_rx) = watch::channel(false);
    let relay = tokio::spawn({
        let hes = hes.clone();
        let stop = hes_cli::stopped(stop_rx);
        async move { hes.relay_outbox(stop).await }
    });
    let meters = hes.meters().len();
    let bar = hes_cli::progress_bar(meters, "collecting");
    let cpu0 = (cpu_secs("self"), cpu_secs(&sim_pid.to_string()));
    let t0 = Instant::now();
    let stats = collect_all(&hes, &[JobKind::BlockLoad, JobKind::Daily], |_, _| {
        bar.inc(1)
    })
    .await;
    let collect_secs = t0.elapsed().as_secs_f64();
    let cpu1 = (cpu_secs("self"), cpu_secs(&sim_pid.to_string()));
    bar.finish_and_clear();
    let _ = stop_tx.send(true);
    relay.await.context("the outbox relay")?;
    let relay_secs = t0.elapsed().as_secs_f64();
    let rate = stats.sessions as f64 / collect_secs.max(1e-9);

    // The baseline: the same sessions with nothing durable.
    let bar = hes_cli::progress_bar(meters, "baseline");
    let t1 = Instant::now();
    let (base_ok, base_failed) = baseline(&hes, args.concurrency.max(1), &bar).await;
    let base_secs = t1.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let base_rate = (base_ok + base_failed) as f64 / base_secs.max(1e-9);

    println!(
        "sessions: {} ({} ok, {} failed)",
        stats.sessions, stats.succeeded, stats.failed
    );
    println!("total time: {collect_secs:.2} s");
    println!("sessions per second: {rate:.1}");
    if let ((Some(h0), Some(s0)), (Some(h1), Some(s1))) = (cpu0, cpu1) {
        let (hes_cpu, sim_cpu) = (h1 - h0, s1 - s0);
        println!(
            "CPU during collection: HES {hes_cpu:.1} s ({:.0} sessions per CPU-second), \
             simulator {sim_cpu:.1} s ({:.0} sessions per CPU-second)",
            stats.sessions as f64 / hes_cpu.max(1e-9),
            stats.sessions as f64 / sim_cpu.max(1e-9)
        );
    }
    println!("intervals collected: {}", stats.collected.intervals);
    println!("daily rows collected: {}", stats.collected.days);
    println!(
        "messages relayed: {} ({}; outbox drained {:.2} s after the start)",
        counts.total(),
        counts.render(),
        relay_secs
    );
    println!(
        "baseline sessions: {} ({base_ok} ok, {base_failed} failed; association, clock read, \
         release, nothing durable)",
        base_ok + base_failed
    );
    println!("baseline time: {base_secs:.2} s");
    println!("baseline sessions per second: {base_rate:.1}");
    println!(
        "ratio collection/baseline: {:.3}",
        rate / base_rate.max(1e-9)
    );
    match peak_rss_kib() {
        Some(kib) => println!(
            "peak RSS of the HES process: {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS of the HES process: unknown"),
    }
    if stats.failed > 0 || base_failed > 0 {
        bail!(
            "{} of {} sessions and {base_failed} baseline sessions failed",
            stats.failed,
            stats.sessions
        );
    }
    Ok(())
}

fn start_simulator(args: &BenchHesArgs, port: u16, keys: &Path) -> Result<SimProcess> {
    let exe = std::env::current_exe().context("finding the urja binary")?;
    let child = Command::new(exe)
        .arg("sim")
        .args(["--meters", &args.meters.to_string()])
        .arg("--keys-out")
        .arg(keys)
        .arg("--no-outages")
        .args(["--port", &port.to_string()])
        .args(["--base-address", &args.base_address.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the simulator process")?;
    Ok(SimProcess { child })
}

/// Waits until the simulator says it serves (it writes the key file first), then reads the key
/// file. Fails if the simulator exits or takes longer than `timeout`.
async fn wait_for_keys(
    mut sim: SimProcess,
    keys: &Path,
    timeout: Duration,
) -> Result<(SimProcess, Vec<u8>)> {
    let stdout = sim.child.stdout.take().context("the simulator's output")?;
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    // Reads the simulator's output to its end so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("serving") {
                let _ = ready_tx.send(());
            }
        }
    });
    let deadline = Instant::now() + timeout;
    loop {
        if ready_rx.try_recv().is_ok() {
            let bytes = std::fs::read(keys)
                .with_context(|| format!("reading the key file {}", keys.display()))?;
            return Ok((sim, bytes));
        }
        if let Some(status) = sim.child.try_wait()? {
            bail!("the simulator exited before serving ({status})");
        }
        if Instant::now() > deadline {
            bail!("the simulator did not start within {} s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The baseline: each meter associated as the collection does (same role, keys and address),
/// its clock read, released; nothing stored. Returns (ok, failed).
async fn baseline(
    hes: &HeadEnd,
    concurrency: usize,
    bar: &indicatif::ProgressBar,
) -> (usize, usize) {
    let role: Role = hes.config().roles.reading.into();
    let sessions = hes.meters().into_iter().map(|meter| async move {
        let ok = match clock_only(hes, &meter, role).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(meter = %meter.serial, error = %e, "baseline session failed");
                false
            }
        };
        bar.inc(1);
        ok
    });
    let mut done = futures::stream::iter(sessions).buffer_unordered(concurrency);
    let (mut ok, mut failed) = (0, 0);
    while let Some(worked) = done.next().await {
        if worked {
            ok += 1;
        } else {
            failed += 1;
        }
    }
    (ok, failed)
}

/// One baseline session: the head-end's own session configuration for the meter, with
/// counters far above the collection's so the meter's replay guard accepts them.
async fn clock_only(hes: &HeadEnd, meter: &MeterEntry, role: Role) -> anyhow::Result<()> {
    let config = hes.session_config(&meter.record(), role, &meter.credentials())?;
    let mut counters = ClientSecurityState::new(BASELINE_COUNTER_START, None);
    let mut session = Session::open(&config, &mut counters).await?;
    let clock = operations::read_clock(&mut session).await;
    let released = session.release(&mut counters).await;
    clock?;
    Ok(released?)
}

/// CPU time (user + system) of process `pid` (or `self`) so far, seconds, from
/// `/proc/<pid>/stat` (in USER_HZ ticks, 100 per second on Linux). Linux only.
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its `)` are plain.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// A progress bar over `len` consumers, labelled `what`.
pub(crate) fn bar(len: usize, what: &str) -> indicatif::ProgressBar {
    indicatif::ProgressBar::new(len as u64).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} consumers {{per_sec}} ETA {{eta}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    )
}

/// The process's peak resident set (`VmHWM` in `/proc/self/status`), KiB. Linux only.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

//! The head-end on the command line: `urja import`, `urja hes` and `urja report`, and what they
//! share with `urja up` and `urja bench hes`: the data directory, opening the [`HeadEnd`] on it,
//! importing a key file, the bus subscriber that counts what the head-end publishes, and the
//! long-running head-end itself ([`serve`]: collector, push listener, outbox relay, a summary
//! line per collection wave and the failure report every hour and at shutdown).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bus::Bus;

use crate::mdm_cli::MdmService;
use chrono::{DateTime, Utc};
use hes::collect::{Collected, Collector, CollectorStats};
use hes::keystore::{FileFormat, MasterKeySource, parse_key_file};
use hes::plan::{JobKind, WallClock};
use hes::report::FailureReport;
use hes::runtime::{DataDir, HeadEnd, HesConfig, ImportReport, JobDone, JobError};
use indicatif::{ProgressBar, ProgressStyle};
use model::MeterSerial;
use tokio::sync::watch;

/// Where the head-end keeps its files.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// The data directory (created if missing): the database and the master key.
    #[arg(
        long,
        visible_alias = "data-dir",
        env = "URJA_DATA",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub data: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The key file: `urja sim --keys-out` output or `urja-meters/1`, JSON or CSV.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct HesArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Where meters push their alerts (DataNotifications over the TCP wrapper).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:4060")]
    pub push_listen: SocketAddr,
    /// Sessions open at once (default: the head-end's, 256).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Where the REST API listens (port 0: a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// How far back the report looks (e.g. 30m, 24h, 7d).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub since: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    hes::plan::duration::parse(s).map_err(|e| e.to_string())
}

/// Opens the head-end on `dir` (created if missing), saying where the master key came from when
/// that is news (freshly generated: back it up).
pub async fn open(dir: &Path, config: HesConfig, bus: Bus) -> Result<HeadEnd> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    let data = DataDir(dir.to_path_buf());
    let (hes, source) = HeadEnd::open(&data, config, bus, WallClock::system())
        .await
        .with_context(|| format!("opening the head-end in {}", dir.display()))?;
    if let MasterKeySource::Generated { path } = &source {
        println!(
            "master key generated in {} (back it up: without it the meters' keys cannot be \
             opened; or set URJA_MASTER_KEY)",
            path.display()
        );
    }
    Ok(hes)
}

/// Reads, checks and imports a key file: all of it or nothing.
pub async fn import_file(hes: &HeadEnd, file: &Path) -> Result<ImportReport> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    import_bytes(hes, &bytes, &file.display().to_string()).await
}

/// Imports the key file `bytes` (named `name` in errors).
pub async fn import_bytes(hes: &HeadEnd, bytes: &[u8], name: &str) -> Result<ImportReport> {
    let meters = parse_key_file(bytes, FileFormat::Auto).with_context(|| name.to_string())?;
    let report = hes.import(meters).await.context("importing the meters")?;
    Ok(report)
}

/// `new 20, moved 0, updated 0, unchanged 0`.
pub fn import_counts(r: &ImportReport) -> String {
    format!(
        "new {}, moved {}, updated {}, unchanged {}",
        r.new, r.moved, r.updated, r.unchanged
    )
}

/// `urja import`.
pub async fn import(args: ImportArgs) -> Result<()> {
    let hes = open(&args.data.data, HesConfig::default(), Bus::in_process()).await?;
    let report = import_file(&hes, &args.file).await?;
    println!(
        "imported {} meter(s) from {} into {}: {}",
        report.new + report.moved + report.updated + report.unchanged,
        args.file.display(),
        args.data.data.display(),
        import_counts(&report)
    );
    println!(
        "the keys are now sealed under the master key; {} still holds them in plain text: \
         delete it or keep it somewhere safe",
        args.file.display()
    );
    Ok(())
}

/// `urja report`.
pub async fn report(args: ReportArgs) -> Result<()> {
    let hes = open(&args.data.data, HesConfig::default(), Bus::in_process()).await?;
    let now = Utc::now();
    let since = now - chrono::Duration::from_std(args.since).unwrap_or(chrono::Duration::days(1));
    print!("{}", failure_report(&hes, since).await?);
    Ok(())
}

/// The failure report since `since`, rendered.
pub async fn failure_report(hes: &HeadEnd, since: DateTime<Utc>) -> Result<String> {
    let store = hes.store().clone();
    let now = hes.clock().now();
    let silent_after = hes.config().silent_after;
    let report =
        tokio::task::spawn_blocking(move || FailureReport::build(&store, since, now, silent_after))
            .await
            .context("building the failure report")?
            .context("reading the store for the failure report")?;
    Ok(report.render())
}

/// `urja hes`.
pub async fn run(args: HesArgs, shutdown: impl Future<Output = ()>) -> Result<()> {
    let mut config = HesConfig::default();
    if let Some(c) = args.concurrency {
        config.concurrency = c.max(1);
    }
    let bus = Bus::in_process();
    let counts = MessageCounts::subscribe(&bus);
    let mdm_subscription = bus.subscribe("mdm", &[], 2 * mdm::ingest::DEFAULT_BATCH);
    let hes = open(&args.data.data, config, bus).await?;
    let mdm = MdmService::start(hes.store().clone(), mdm_subscription);
    let meters = hes.meters().len();
    if meters == 0 {
        bail!(
            "no meters in {}: import some first with `urja import --data {} FILE`",
            args.data.data.display(),
            args.data.data.display()
        );
    }
    let push = tokio::net::TcpListener::bind(args.push_listen)
        .await
        .with_context(|| format!("listening for pushes on {}", args.push_listen))?;
    println!(
        "urja hes: {meters} meter(s) from {}, pushes on {}, {} session(s) at once",
        args.data.data.display(),
        push.local_addr().unwrap_or(args.push_listen),
        hes.config().concurrency
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let api =
        crate::web_cli::start(args.listen, &hes, &args.data.data, false, &[], stop_rx).await?;
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let served = serve(hes, Some(push), counts, shutdown).await;
    api.finish().await;
    println!("MDM: {}", mdm.render());
    mdm.stop().await;
    served.map(|_| ())
}

/// Counts, by kind, the messages a bus subscriber received and acknowledged.
#[derive(Debug, Clone, Default)]
pub struct MessageCounts {
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl MessageCounts {
    /// Subscribes to every kind on `bus` and counts (and acknowledges) each delivery.
    pub fn subscribe(bus: &Bus) -> MessageCounts {
        let counts = MessageCounts::default();
        let mut subscription = bus.subscribe("urja-counter", &[], 4096);
        let shared = counts.counts.clone();
        tokio::spawn(async move {
            while let Some(delivery) = subscription.next().await {
                let kind = delivery.envelope.kind();
                *lock(&shared).entry(kind).or_default() += 1;
                delivery.ack();
            }
        });
        counts
    }

    pub fn total(&self) -> u64 {
        lock(&self.counts).values().sum()
    }

    /// `block_load 20, daily_profile 20` (or `none`).
    pub fn render(&self) -> String {
        let counts = lock(&self.counts);
        if counts.is_empty() {
            return "none".into();
        }
        counts
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `Future` that completes once `rx` reads `true`.
pub async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// What a set of sessions brought, for a summary line.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub sessions: usize,
    pub ok: usize,
    pub failed: usize,
    pub collected: Collected,
    /// Failure kind → how many.
    pub failures: BTreeMap<&'static str, usize>,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

impl Tally {
    pub fn add(&mut self, result: &Result<JobDone<Collected>, JobError>, at: DateTime<Utc>) {
        self.sessions += 1;
        self.first.get_or_insert(at);
        self.last = Some(at);
        match result {
            Ok(done) => {
                self.ok += 1;
                self.collected += done.value;
            }
            Err(e) => {
                self.failed += 1;
                *self.failures.entry(e.failure_kind().as_str()).or_default() += 1;
            }
        }
    }

    /// One line: sessions, what they collected, failures by kind.
    pub fn line(&self) -> String {
        let c = &self.collected;
        let mut line = format!(
            "{}/{} sessions ok, {} block-load intervals, {} daily, {} billing, {} events, \
             {} gap interval(s) opened, {} explained by power failures, {} recovered",
            self.ok,
            self.sessions,
            c.intervals,
            c.days,
            c.billing_rows,
            c.events,
            c.gaps_opened,
            c.intervals_explained,
            c.intervals_recovered
        );
        if !self.failures.is_empty() {
            let kinds = self
                .failures
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ");
            line.push_str(&format!("; failed: {kinds}"));
        }
        line
    }
}

/// `2026-11-26 16:55 IST`.
pub fn ist(t: DateTime<Utc>) -> String {
    t.with_timezone(&dlms::datetime::ist())
        .format("%Y-%m-%d %H:%M IST")
        .to_string()
}

/// A progress bar over `len` meters.
pub fn progress_bar(len: usize, what: &str) -> ProgressBar {
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} meters {{per_sec}} ETA {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    )
}

/// A wave of collection ends when no session has finished for this long.
const WAVE_QUIET: Duration = Duration::from_secs(20);
/// The failure report is printed this often while running.
const REPORT_EVERY: Duration = Duration::from_secs(3600);

/// Where the running head-end stands, shared by the collector's callback and the ticker.
#[derive(Debug)]
struct Progress {
    /// The first catch-up round: its bar, and how many sessions it has left.
    first_round: Option<(ProgressBar, usize)>,
    first_tally: Tally,
    wave: Tally,
    wave_quiet_since: tokio::time::Instant,
}

/// Runs the head-end until `shutdown`: the collector on its schedule (every meter at once on
/// the first round, with a progress bar), the push listener when given one, and the outbox
/// relay to the bus. Prints a line per collection wave and the failure report every hour and at
/// shutdown. Returns the collector's figures.
pub async fn serve(
    hes: HeadEnd,
    push: Option<tokio::net::TcpListener>,
    counts: MessageCounts,
    shutdown: impl Future<Output = ()>,
) -> Result<CollectorStats> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let relay = tokio::spawn({
        let hes = hes.clone();
        let stop = stopped(stop_rx.clone());
        async move { hes.relay_outbox(stop).await }
    });
    let listener = push.map(|listener| {
        let hes = hes.clone();
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move { hes::push::listen(hes, listener, stop).await })
    });
    let meters = hes.meters().len();
    let bar = progress_bar(meters, "catching up");
    let progress = Arc::new(Mutex::new(Progress {
        first_round: Some((bar, meters)),
        first_tally: Tally::default(),
        wave: Tally::default(),
        wave_quiet_since: tokio::time::Instant::now(),
    }));
    let ticker = tokio::spawn(tick(
        hes.clone(),
        progress.clone(),
        counts.clone(),
        stopped(stop_rx.clone()),
    ));
    let on_session = {
        let progress = progress.clone();
        let clock = *hes.clock();
        let counts = counts.clone();
        move |_: &MeterSerial, _: &[JobKind], result: &Result<JobDone<Collected>, JobError>| {
            let mut p = lock(&progress);
            let now = clock.now();
            if let Some((bar, left)) = &mut p.first_round {
                bar.inc(1);
                *left = left.saturating_sub(1);
                let done = *left == 0;
                p.first_tally.add(result, now);
                if done {
                    if let Some((bar, _)) = p.first_round.take() {
                        bar.finish_and_clear();
                    }
                    println!(
                        "first round ({} to {}): {}; messages so far: {}",
                        p.first_tally.first.map_or_else(String::new, ist),
                        ist(now),
                        p.first_tally.line(),
                        counts.render()
                    );
                }
                return;
            }
            p.wave.add(result, now);
            p.wave_quiet_since = tokio::time::Instant::now();
        }
    };
    let stats = Collector::new(hes.clone()).run(shutdown, on_session).await;
    let _ = stop_tx.send(true);
    if let Some(listener) = listener {
        match listener.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the push listener stopped"),
            Err(e) => tracing::error!(error = %e, "the push listener failed"),
            Ok(Ok(())) => {}
        }
    }
    let _ = relay.await;
    let _ = ticker.await;
    {
        let mut p = lock(&progress);
        if let Some((bar, _)) = p.first_round.take() {
            bar.finish_and_clear();
            println!("first round (interrupted): {}", p.first_tally.line());
        }
        if p.wave.sessions > 0 {
            println!("last wave: {}", p.wave.line());
        }
    }
    println!(
        "stopped: {} session(s) ({} ok, {} failed, {} retries, {} given up); messages relayed: {}",
        stats.sessions,
        stats.succeeded,
        stats.failed,
        stats.retries,
        stats.given_up,
        counts.render()
    );
    print!(
        "{}",
        failure_report(&hes, report_since(hes.clock().now())).await?
    );
    Ok(stats)
}

/// The reports while running cover the last day (sessions started since, and intervals missed
/// since: a catch-up round reaches a day back).
pub fn report_since(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::days(1)
}

/// Every few seconds: the wave summary once the wave has gone quiet; the report every hour.
async fn tick(
    hes: HeadEnd,
    progress: Arc<Mutex<Progress>>,
    counts: MessageCounts,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut next_report = tokio::time::Instant::now() + REPORT_EVERY;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let line = {
            let mut p = lock(&progress);
            if p.wave.sessions > 0 && p.wave_quiet_since.elapsed() >= WAVE_QUIET {
                let wave = std::mem::take(&mut p.wave);
                Some(format!(
                    "wave {} to {}: {}; messages so far: {}",
                    wave.first.map_or_else(String::new, ist),
                    wave.last.map_or_else(String::new, ist),
                    wave.line(),
                    counts.render()
                ))
            } else {
                None
            }
        };
        if let Some(line) = line {
            println!("{line}");
        }
        if tokio::time::Instant::now() >= next_report {
            next_report += REPORT_EVERY;
            match failure_report(&hes, report_since(hes.clock().now())).await {
                Ok(text) => print!("{text}"),
                Err(e) => tracing::error!(error = %e, "the failure report failed"),
            }
        }
    }
}

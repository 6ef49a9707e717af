//! `urja up`: the whole system in one process. For now: the simulated fleet (with `--simulate`)
//! and the head-end's collection rounds against it, each meter read over an HLS + AES-GCM-128
//! association: clock (with drift), cumulative kWh, and the block load since the last round.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use dlms::association::client::ClientSecurityState;
use dlms::security::GlobalKeys;
use futures::StreamExt;
use hes::{MeterCredentials, Role, Session, SessionConfig, SessionError, Transport, operations};
use indicatif::{ProgressBar, ProgressStyle};
use is15959::catalogue::obis;
use meter_sim::{Fleet, FleetConfig, FleetHandle, MeterKeys};
use model::MeterSerial;

#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Start this many simulated meters and collect from them.
    #[arg(long, value_name = "N")]
    pub simulate: Option<u32>,
    /// Address of the first simulated meter.
    #[arg(long, default_value = "127.1.0.1")]
    pub base_address: Ipv4Addr,
    /// DLMS port of the simulated meters.
    #[arg(long, default_value_t = 4059)]
    pub port: u16,
    /// Sessions open at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Minutes between collection rounds.
    #[arg(long, default_value_t = 15)]
    pub every: u64,
    /// Run one collection round and exit.
    #[arg(long)]
    pub once: bool,
    /// Simulated meters never lose power on their own (see `urja sim --help`).
    #[arg(long)]
    pub no_outages: bool,
}

/// What one meter gave in a round.
struct MeterRound {
    intervals: usize,
    clock_drift_s: i64,
}

pub async fn run(args: UpArgs, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let Some(meters) = args.simulate else {
        bail!(
            "nothing to collect from yet: `urja up --simulate N` runs N simulated meters \
             (real meter registries arrive with the head-end's meter import)"
        );
    };
    if meters == 0 {
        bail!("--simulate needs at least one meter");
    }
    let started = Instant::now();
    let mut config = FleetConfig::new(meters, args.base_address, args.port, 1);
    config.scheduled_outages = !args.no_outages;
    let fleet = Fleet::start(config)
        .await
        .context("starting the simulated meters")?;
    println!(
        "urja up: {meters} simulated meter(s) on {} .. {} port {} (started in {:.2} s)",
        fleet.address(0).ip(),
        fleet.address(meters - 1).ip(),
        fleet.port(),
        started.elapsed().as_secs_f64()
    );
    let meters: Vec<Meter> = (0..meters)
        .map(|i| Meter::new(&fleet, i))
        .collect::<Result<_>>()?;
    let mut memory: Vec<MeterMemory> = meters.iter().map(|_| MeterMemory::default()).collect();
    let mut since = Utc::now() - chrono::Duration::hours(2);
    tokio::pin!(shutdown);
    loop {
        let round_start = Utc::now();
        let round = collect_round(&meters, &mut memory, since, round_start, args.concurrency);
        tokio::select! {
            _ = &mut shutdown => break,
            () = round => {}
        }
        since = round_start;
        if args.once {
            break;
        }
        let wait = tokio::time::sleep(Duration::from_secs(args.every * 60));
        tokio::select! {
            _ = &mut shutdown => break,
            () = wait => {}
        }
    }
    fleet.stop().await;
    Ok(())
}

struct Meter {
    serial: MeterSerial,
    session: SessionConfig,
}

/// What the head-end keeps about a meter between rounds.
#[derive(Default)]
struct MeterMemory {
    /// Advanced past every invocation counter used, so no round repeats one.
    counters: ClientSecurityState,
    /// The block-load capture objects and scalers, read once.
    block_load: Option<operations::ProfileLayout>,
}

impl Meter {
    fn new(fleet: &FleetHandle, index: u32) -> Result<Self> {
        let keys: MeterKeys = fleet.keys(index);
        let credentials = MeterCredentials {
            system_title: keys.system_title,
            global_keys: GlobalKeys {
                encryption: keys.global_encryption_key,
                authentication: keys.global_authentication_key,
            },
            lls_secret: keys.lls_secret.as_bytes().to_vec(),
            hls_utility: keys.hls_utility,
            hls_firmware: keys.hls_firmware,
            master_key: None,
        };
        Ok(Meter {
            serial: MeterSerial::new(keys.serial)?,
            session: SessionConfig::new(
                fleet.address(index),
                Transport::Wrapper,
                Role::UtilitySettings.client_config(&credentials),
            ),
        })
    }

    /// Reads the meter once: clock, and the block load since `since`.
    async fn read(
        &self,
        memory: &mut MeterMemory,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<MeterRound, SessionError> {
        let mut session = Session::open(&self.session, &mut memory.counters).await?;
        let result = async {
            let clock = operations::read_clock(&mut session).await?;
            let layout = match memory.block_load.take() {
                Some(layout) => layout,
                None => {
                    operations::read_profile_layout(&mut session, obis::BLOCK_LOAD_PROFILE).await?
                }
            };
            let intervals =
                operations::read_block_load(&mut session, &layout, &self.serial, since, until)
                    .await;
            memory.block_load = Some(layout);
            Ok(MeterRound {
                intervals: intervals?.len(),
                clock_drift_s: (clock - Utc::now()).num_seconds(),
            })
        }
        .await;
        let released = session.release(&mut memory.counters).await;
        result.and_then(|r| released.map(|()| r))
    }
}

async fn collect_round(
    meters: &[Meter],
    memory: &mut [MeterMemory],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    concurrency: usize,
) {
    let t0 = Instant::now();
    let bar = ProgressBar::new(meters.len() as u64).with_style(
        ProgressStyle::with_template(
            "{spinner} collecting [{bar:40}] {pos}/{len} meters {per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let jobs = meters
        .iter()
        .zip(memory.iter_mut())
        .enumerate()
        .map(|(i, (m, memory))| {
            let bar = bar.clone();
            async move {
                let out = m.read(memory, since, until).await;
                bar.inc(1);
                (i, out)
            }
        });
    let results: Vec<_> = futures::stream::iter(jobs)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    let (mut ok, mut intervals, mut max_drift) = (0usize, 0usize, 0i64);
    // Failure kind → (how many, the first few meters), so a large fleet gives a short summary.
    let mut failures: BTreeMap<String, (usize, Vec<&str>)> = BTreeMap::new();
    for (i, result) in results {
        match result {
            Ok(r) => {
                ok += 1;
                intervals += r.intervals;
                max_drift = max_drift.max(r.clock_drift_s.abs());
            }
            Err(e) => {
                tracing::debug!(meter = %meters[i].serial, error = %e, "collection failed");
                let (count, examples) = failures.entry(failure_kind(&e)).or_default();
                *count += 1;
                if examples.len() < 5 {
                    examples.push(meters[i].serial.as_str());
                }
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "round {}: {ok}/{} meters read, {intervals} block-load intervals, largest clock drift \
         {max_drift} s, {secs:.2} s ({:.0} meters/s)",
        until
            .with_timezone(&dlms::datetime::ist())
            .format("%Y-%m-%d %H:%M IST"),
        meters.len(),
        meters.len() as f64 / secs.max(1e-9),
    );
    for (kind, (count, examples)) in failures {
        let more = if count > examples.len() { ", …" } else { "" };
        println!("  failed: {count} × {kind} ({}{more})", examples.join(", "));
    }
}

/// A short, bounded-cardinality name for a failure, for the round summary.
fn failure_kind(e: &SessionError) -> String {
    match e {
        SessionError::Connect { .. } => "cannot connect".into(),
        SessionError::Timeout(..) => "no answer (timeout)".into(),
        SessionError::Closed => "connection closed by the meter".into(),
        SessionError::Framing(_) => "malformed frame".into(),
        SessionError::Association(_) => "association refused".into(),
        other => other.to_string(),
    }
}

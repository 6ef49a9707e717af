//! `urja up`: the whole system in one process on the real head-end: the data directory (store
//! and master key), with `--simulate N` a simulated fleet whose key file is imported like any
//! other, the push listener the fleet pushes to, the collector on its schedule, the outbox relay
//! to an in-process bus, and the MDM's ingest on that bus storing everything in the same file.
//! Beside them the REST API (`--listen`), with the head-end's command executor; on the first
//! start of a data directory an admin token is created and printed once. `--once` runs one
//! catch-up round of every job over every meter, prints the failure report and exits (without
//! the API).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bus::Bus;
use hes::collect::collect_all;
use hes::runtime::{HeadEnd, HesConfig};
use meter_sim::{FaultSpec, Fleet, FleetConfig, FleetHandle};
use tokio::sync::watch;

use crate::hes_cli::{self, DataArgs, MessageCounts, Tally};
use crate::mdm_cli::{self, MdmService};

#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Start this many simulated meters, import their keys and collect from them.
    #[arg(long, value_name = "N")]
    pub simulate: Option<u32>,
    /// Address of the first simulated meter.
    #[arg(long, default_value = "127.1.0.1")]
    pub base_address: Ipv4Addr,
    /// DLMS port of the simulated meters (0: a free port).
    #[arg(long, default_value_t = 4059)]
    pub port: u16,
    /// Faults of the simulated meters, e.g. "no-answer=2%,slow=5%:3s,power-off=2%:2h"
    /// (see `urja sim --help`).
    #[arg(long, value_name = "SPEC", value_parser = parse_faults)]
    pub faults: Option<FaultSpec>,
    /// Where meters push their alerts (port 0: a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub push_listen: SocketAddr,
    /// Sessions open at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Run one catch-up round of every job over every meter, print the report and exit.
    #[arg(long)]
    pub once: bool,
    /// Simulated meters never lose power on their own (see `urja sim --help`).
    #[arg(long)]
    pub no_outages: bool,
    /// On first contact, read this many days of history back from every meter (block load,
    /// daily and billing profiles, event logs); later rounds continue from where they stopped.
    #[arg(long, value_name = "DAYS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=45))]
    pub backfill_days: u32,
    /// Where the REST API listens (port 0: a free port). Not served with `--once`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

fn parse_faults(s: &str) -> Result<FaultSpec, String> {
    s.parse().map_err(|e| format!("{e}"))
}

pub async fn run(args: UpArgs, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    if args.simulate == Some(0) {
        bail!("--simulate needs at least one meter");
    }
    let mut config = HesConfig {
        concurrency: args.concurrency.max(1),
        ..HesConfig::default()
    };
    config.schedule.default.backfill =
        std::time::Duration::from_secs(u64::from(args.backfill_days) * 24 * 3600);
    let bus = Bus::in_process();
    let counts = MessageCounts::subscribe(&bus);
    let mdm_subscription = bus.subscribe("mdm", &[], 2 * mdm::ingest::DEFAULT_BATCH);
    let hes = hes_cli::open(&args.data.data, config, bus).await?;
    let mdm = MdmService::start(hes.store().clone(), mdm_subscription);
    let push = tokio::net::TcpListener::bind(args.push_listen)
        .await
        .with_context(|| format!("listening for pushes on {}", args.push_listen))?;
    let push_addr = push.local_addr().context("the push listener's address")?;
    let (fleet, simulated) = match args.simulate {
        Some(n) => {
            let (fleet, consumers) = simulate(&args, n, push_addr, &hes).await?;
            (Some(fleet), consumers)
        }
        None => (None, Vec::new()),
    };
    let meters = hes.meters().len();
    if meters == 0 {
        bail!(
            "no meters to collect from: `urja up --simulate N` runs N simulated meters, and \
             `urja import --data {} FILE` imports real ones",
            args.data.data.display()
        );
    }
    println!(
        "head-end: {meters} meter(s) in {}, pushes on {push_addr}, {} session(s) at once",
        args.data.data.display(),
        hes.config().concurrency
    );
    let result = if args.once {
        // One round reads the event logs anyway; alarms wait for a running head-end.
        drop(push);
        once(&hes, &counts, &mdm).await
    } else {
        serve(&args, &simulated, hes, push, counts, shutdown).await
    };
    if !args.once {
        println!("MDM: {}", mdm.render());
    }
    mdm.stop().await;
    if let Some(fleet) = fleet {
        fleet.stop().await;
    }
    result
}

/// Runs the head-end and the API until `shutdown`.
async fn serve(
    args: &UpArgs,
    simulated: &[crate::web_cli::Simulated],
    hes: HeadEnd,
    push: tokio::net::TcpListener,
    counts: MessageCounts,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let api =
        crate::web_cli::start(args.listen, &hes, &args.data.data, true, simulated, stop_rx).await?;
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let served = hes_cli::serve(hes, Some(push), counts, shutdown).await;
    api.finish().await;
    served.map(|_| ())
}

/// Starts the simulated fleet (pushing to `push_to`), imports its key file and gives it a
/// network; answers the fleet and its consumers.
async fn simulate(
    args: &UpArgs,
    meters: u32,
    push_to: SocketAddr,
    hes: &HeadEnd,
) -> Result<(FleetHandle, Vec<crate::web_cli::Simulated>)> {
    let started = Instant::now();
    let seed = 1;
    let mut config = FleetConfig::new(meters, args.base_address, args.port, seed);
    config.scheduled_outages = !args.no_outages;
    config.push_to = Some(push_to);
    if let Some(faults) = &args.faults {
        config.faults = faults.clone();
    }
    let fleet = Fleet::start(config)
        .await
        .context("starting the simulated meters")?;
    println!(
        "urja up: {meters} simulated meter(s) on {} .. {} port {} (started in {:.2} s), \
         faults: {}",
        fleet.address(0).ip(),
        fleet.address(meters - 1).ip(),
        fleet.port(),
        started.elapsed().as_secs_f64(),
        fleet.config().faults
    );
    // The fleet's keys come in the way every meter's do: through its key file (kept in
    // memory, so no plaintext copy lands on disk).
    let mut key_file = Vec::new();
    meter_sim::keys::write_keys(
        &mut key_file,
        false,
        seed,
        (0..fleet.meters()).map(|i| (i, fleet.endpoint(i))),
    )
    .context("writing the simulated meters' key file")?;
    let report = hes_cli::import_bytes(hes, &key_file, "the simulated meters' key file").await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            fleet.stop().await;
            return Err(e);
        }
    };
    println!(
        "imported the simulated meters' keys: {}",
        hes_cli::import_counts(&report)
    );
    // The MDM's side: a network and a consumer for every simulated meter.
    let serials: Vec<model::MeterSerial> = hes.meters().iter().map(|m| m.serial.clone()).collect();
    let network = mdm_cli::simulated_network(&serials, chrono::Utc::now());
    let consumers = network
        .connections
        .iter()
        .map(|c| crate::web_cli::Simulated {
            consumer_no: c.consumer.consumer_no.clone(),
            // The commercial ones stay postpaid and are billed monthly; the rest go prepaid.
            postpaid: c.consumer.category == "commercial",
        })
        .collect();
    let store = hes.store().clone();
    let counts =
        tokio::task::spawn_blocking(move || store.mdm_import_network(&network, chrono::Utc::now()))
            .await?
            .context("giving the simulated meters a network")?;
    println!(
        "the simulated meters' network: {} node(s), {} consumer(s)",
        counts.nodes, counts.connections
    );
    Ok((fleet, consumers))
}

/// One catch-up round of every job over every meter, the relay drained, the report.
async fn once(hes: &HeadEnd, counts: &MessageCounts, mdm: &MdmService) -> Result<()> {
    let started = hes.clock().now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let relay = tokio::spawn({
        let hes = hes.clone();
        let stop = hes_cli::stopped(stop_rx);
        async move { hes.relay_outbox(stop).await }
    });
    let t0 = Instant::now();
    let meters = hes.meters().len();
    let bar = hes_cli::progress_bar(meters, "collecting");
    let mut tally = Tally::default();
    let clock = *hes.clock();
    let stats = collect_all(hes, &hes::collect::PERIODIC, |_, result| {
        bar.inc(1);
        tally.add(result, clock.now());
    })
    .await;
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    relay.await.context("the outbox relay")?;
    println!(
        "round {}: {}/{} meters read, {} block-load intervals collected, {:.2} s ({:.0} \
         sessions/s)",
        hes_cli::ist(started),
        stats.succeeded,
        meters,
        stats.collected.intervals,
        secs,
        stats.sessions as f64 / secs.max(1e-9)
    );
    println!("  {}", tally.line());
    println!("messages relayed: {} ({})", counts.total(), counts.render());
    println!("MDM: {}", mdm.render());
    print!(
        "{}",
        hes_cli::failure_report(hes, hes_cli::report_since(hes.clock().now())).await?
    );
    Ok(())
}

//! `urja`: the one binary. Parses the command line and wires the crates together; the work is
//! done in the library crates.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench;
mod bench_bill;
mod bench_charge;
mod bench_ingest;
mod billing_cli;
mod care_cli;
mod field_cli;
mod hes_cli;
mod mdm_cli;
mod prepaid_cli;
mod up;
mod web_cli;

/// Decoding meter data makes many small allocations; mimalloc keeps them fast and steady
/// (see `crates/dlms/benches/block_load.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "urja",
    version,
    about = "Urja: open meter data management and head-end system"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system in one process (with `--simulate N`: N simulated meters too).
    Up(up::UpArgs),
    /// Serve a fleet of simulated IS 15959 smart meters.
    Sim(meter_sim::SimArgs),
    /// Import meters and their keys (a simulator key file or `urja-meters/1`, JSON or CSV).
    Import(hes_cli::ImportArgs),
    /// Run the head-end on the meters already imported, until Ctrl-C.
    Hes(hes_cli::HesArgs),
    /// Import the network hierarchy and the consumers (`urja-network/1`, see
    /// docs/network-import.md).
    ImportNetwork(mdm_cli::ImportNetworkArgs),
    /// Print the head-end's failure report.
    Report(hes_cli::ReportArgs),
    /// The payment gateway's stand-in: sign a payment confirmation with the data directory's
    /// gateway secret and post it to the running API's webhook.
    Pay(prepaid_cli::PayArgs),
    /// Administration: API tokens.
    #[command(subcommand)]
    Admin(web_cli::AdminCommand),
    /// Measure Urja's throughput.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("URJA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args, shutdown_signal()).await?,
            Command::Sim(args) => meter_sim::run(args, shutdown_signal()).await?,
            Command::Import(args) => hes_cli::import(args).await?,
            Command::Hes(args) => hes_cli::run(args, shutdown_signal()).await?,
            Command::Report(args) => hes_cli::report(args).await?,
            Command::ImportNetwork(args) => mdm_cli::import_network(args).await?,
            Command::Admin(web_cli::AdminCommand::Token(args)) => web_cli::token(args)?,
            Command::Pay(args) => prepaid_cli::pay(args).await?,
            Command::Bench(bench::BenchCommand::Hes(args)) => bench::hes(args).await?,
            Command::Bench(bench::BenchCommand::Ingest(args)) => bench_ingest::ingest(args).await?,
            Command::Bench(bench::BenchCommand::Charge(args)) => bench_charge::charge(args).await?,
            Command::Bench(bench::BenchCommand::Bill(args)) => bench_bill::bill(args).await?,
        }
        Ok(())
    })
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

//! `meter-sim`: a fleet of simulated IS 15959 smart meters, each on its own loopback address.
//!
//! Everything a meter says is computed on demand from (seed, meter, time) by the [`load`] model
//! and the [`events`] schedule; only what changed at run time (relay, clock set, firmware, faults,
//! on-demand events, security counters, configuration a head-end wrote: TOD calendar, billing
//! date, capture period, load limit, payment mode, MD reset, global keys rotated by key transfer)
//! is stored per meter, in [`meter::MeterState`].
//!
//! - [`cli`]: `urja sim` arguments ([`SimArgs`]) and [`run`];
//! - [`fleet`]: listeners, [`Fleet::start`] and the [`FleetHandle`] controls;
//! - [`session`]: one TCP connection (wrapper or HDLC framing, the server association);
//! - [`objects`]: the COSEM object model of one meter ([`dlms::association::CosemObjects`]);
//! - [`keys`]: per-meter secrets (master key included) and the `--keys-out` key file;
//! - [`faults`]: fault injection; [`push`]: alerts pushed to the head-end.

pub mod cli;
pub mod events;
pub mod faults;
pub mod fleet;
pub mod hash;
pub mod keys;
pub mod load;
pub mod meter;
pub mod objects;
pub mod push;
pub mod session;

use std::future::Future;
use std::time::Instant;

pub use cli::SimArgs;
pub use events::EventKind;
pub use faults::{Fault, FaultKind, FaultSpec};
pub use fleet::{Fleet, FleetConfig, FleetHandle, SimError, Transport};
pub use keys::MeterKeys;

/// Runs `urja sim` until `shutdown` completes: binds the meters, writes the key file, prints a
/// startup summary, serves.
pub async fn run(args: SimArgs, shutdown: impl Future<Output = ()>) -> Result<(), SimError> {
    let t0 = Instant::now();
    let mut config = args.to_config();
    if let Some(target) = &args.push_to {
        let resolved = tokio::net::lookup_host(target.as_str())
            .await
            .map_err(|e| SimError::PushTarget {
                target: target.clone(),
                detail: e.to_string(),
            })?
            .next()
            .ok_or_else(|| SimError::PushTarget {
                target: target.clone(),
                detail: "no address".into(),
            })?;
        config.push_to = Some(resolved);
    }
    let fleet = Fleet::start(config).await?;
    if let Some(path) = &args.keys_out {
        keys::write_key_file(
            path,
            args.seed,
            (0..fleet.meters()).map(|i| (i, fleet.endpoint(i))),
        )
        .map_err(|source| SimError::KeyFile {
            path: path.display().to_string(),
            source,
        })?;
    }
    let n = fleet.meters();
    println!("urja sim: {n} meter(s) serving");
    println!(
        "  addresses  {} .. {} port {}",
        fleet.address(0).ip(),
        fleet.address(n - 1).ip(),
        fleet.port()
    );
    println!(
        "  transport  {} (server SAP {}), seed {}, capture period {} min",
        args.transport.name(),
        keys::SERVER_SAP,
        args.seed,
        args.capture_period
    );
    println!(
        "  serials    {} .. {}",
        keys::serial(0),
        keys::serial(n - 1)
    );
    match &args.keys_out {
        Some(p) => println!("  key file   {}", p.display()),
        None => println!("  key file   (none: pass --keys-out FILE to write the meters' keys)"),
    }
    if let Some(t) = &args.push_to {
        println!("  push to    {t}");
    }
    println!("  faults     {}", fleet.config().faults);
    println!("  started in {:.2} s", t0.elapsed().as_secs_f64());
    tracing::info!(meters = n, port = fleet.port(), "meter simulator started");
    shutdown.await;
    fleet.stop().await;
    tracing::info!("meter simulator stopped");
    Ok(())
}

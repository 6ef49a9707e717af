//! The MDM in the binary: its ingest subscribed to the bus and running beside the head-end, the
//! hourly estimation of the gaps of days whose data is overdue, the outage desk (every ten
//! seconds), a running tally of what it stored for the summary lines, `urja import-network`,
//! and the network a simulated fleet is given.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::Subscription;
use chrono::{DateTime, Utc};
use mdm::completeness::CompletenessConfig;
use mdm::events::Routing;
use mdm::ingest::{BatchReport, DEFAULT_BATCH, Ingest};
use mdm::outages::OutageConfig;
use store::Store;
use store::mdm::NetworkImport;
use tokio::sync::watch;

use crate::hes_cli::{DataArgs, stopped};

/// The running ingest.
#[derive(Debug)]
pub struct MdmService {
    tally: Arc<Mutex<BatchReport>>,
    estimated: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// How often overdue days are looked at for gaps to estimate.
const ESTIMATE_EVERY: Duration = Duration::from_secs(3600);

/// How often the outage desk groups what came in.
const OUTAGES_EVERY: Duration = Duration::from_secs(10);

impl MdmService {
    /// Starts ingesting what `subscription` delivers into `store`. Subscribe before the
    /// head-end's outbox relay starts, so no message is delivered without the MDM.
    pub fn start(store: Store, subscription: Subscription) -> MdmService {
        let tally = Arc::new(Mutex::new(BatchReport::default()));
        let (stop, stop_rx) = watch::channel(false);
        let desk = tokio::spawn(mdm::outages::run(
            store.clone(),
            Routing::default(),
            OutageConfig::default(),
            OUTAGES_EVERY,
            stopped(stop_rx.clone()),
        ));
        let ingest = Ingest::new(store, Routing::default());
        let estimated = Arc::new(AtomicU64::new(0));
        let estimator = tokio::spawn(estimate_overdue_days(
            ingest.clone(),
            estimated.clone(),
            stopped(stop_rx.clone()),
        ));
        let task = tokio::spawn({
            let tally = tally.clone();
            async move {
                ingest
                    .run(subscription, DEFAULT_BATCH, stopped(stop_rx), |r| {
                        lock(&tally).add(r)
                    })
                    .await
            }
        });
        MdmService {
            tally,
            estimated,
            stop,
            tasks: vec![task, estimator, desk],
        }
    }

    /// `stored 9600 intervals (57600 reads), 100 days, 340 events, 12 notices, …`.
    pub fn render(&self) -> String {
        let t = *lock(&self.tally);
        let w = t.written;
        format!(
            "stored {} intervals ({} reads; {} estimates replaced), {} daily, {} billing, {} \
             events, {} alarms, {} notices routed, {} exceptions queued, {} dead letters, {} \
             intervals estimated",
            w.intervals_new + w.intervals_replaced,
            t.reads,
            w.intervals_replaced,
            w.daily,
            w.billing,
            w.events,
            w.alarms,
            w.routed,
            w.exceptions,
            w.dead_letters,
            self.estimated.load(Ordering::Relaxed)
        )
    }

    /// Stops after the batch in hand.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Every hour: the gaps of the last two days whose data is overdue (past the on-time deadline)
/// are estimated; what arrived since is left alone.
async fn estimate_overdue_days(
    ingest: Ingest,
    estimated: Arc<AtomicU64>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(ESTIMATE_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = every.tick() => {}
        }
        for day in overdue_days(Utc::now(), &CompletenessConfig::default()) {
            let ingest = ingest.clone();
            match tokio::task::spawn_blocking(move || ingest.estimate_day(day, Utc::now())).await {
                Ok(Ok(report)) => {
                    estimated.fetch_add(report.estimated, Ordering::Relaxed);
                    if report.estimated > 0 {
                        tracing::info!(%day, estimated = report.estimated, meters = report.meters, "estimated missing intervals");
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(%day, error = %e, "estimating missing intervals failed")
                }
                Err(e) => tracing::warn!(%day, error = %e, "estimating missing intervals failed"),
            }
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ImportNetworkArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// A `urja-network/1` file (see docs/network-import.md).
    pub file: std::path::PathBuf,
}

/// `urja import-network`: the network and the consumers, all or nothing.
pub async fn import_network(args: ImportNetworkArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let import = mdm::network_file::parse(&bytes)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let path = hes::runtime::DataDir(args.data.data.clone()).store_path();
    let counts = tokio::task::spawn_blocking(move || {
        let store = Store::open(&path)?;
        store.mdm_import_network(&import, Utc::now())
    })
    .await?
    .with_context(|| format!("importing {}", args.file.display()))?;
    println!(
        "imported {} node(s) and {} connection(s) from {}: {} link(s) and {} installation(s) \
         changed",
        counts.nodes,
        counts.connections,
        args.file.display(),
        counts.links_changed,
        counts.installations_changed
    );
    Ok(())
}

/// The network of a simulated fleet: one substation, a feeder per 500 meters, a transformer
/// per 50, and a consumer at a service point of their own for each meter (every tenth one
/// commercial), all in place for a year.
pub fn simulated_network(meters: &[model::MeterSerial], now: DateTime<Utc>) -> NetworkImport {
    use store::mdm::{Connection, Consumer, NetworkNode, NodeKind, ServicePoint};
    let since = now - chrono::Duration::days(365);
    let node = |id: String, kind, name: String| NetworkNode { id, kind, name };
    let mut nodes = vec![(
        node(
            "SS-SIM".into(),
            NodeKind::Substation,
            "Simulated 33/11 kV substation".into(),
        ),
        None,
    )];
    let mut connections = Vec::with_capacity(meters.len());
    for (i, meter) in meters.iter().enumerate() {
        let (feeder, dt) = (
            format!("F-SIM-{}", i / 500 + 1),
            format!("DT-SIM-{}", i / 50 + 1),
        );
        if i % 500 == 0 {
            nodes.push((
                node(
                    feeder.clone(),
                    NodeKind::Feeder,
                    format!("Feeder {}", i / 500 + 1),
                ),
                Some("SS-SIM".into()),
            ));
        }
        if i % 50 == 0 {
            nodes.push((
                node(
                    dt.clone(),
                    NodeKind::Transformer,
                    format!("DT {} (100 kVA)", i / 50 + 1),
                ),
                Some(feeder),
            ));
        }
        connections.push(Connection {
            consumer: Consumer {
                consumer_no: format!("C-{meter}"),
                name: format!("Consumer of {meter}"),
                category: if i % 10 == 9 {
                    "commercial"
                } else {
                    "residential"
                }
                .into(),
                net_metered: false,
            },
            service_point: ServicePoint {
                id: format!("SP-{meter}"),
                address: format!("House {}, Simulated Nagar", i + 1),
                sanctioned_load_w: 3000,
            },
            meter: meter.clone(),
            parent: dt,
            since,
        });
    }
    NetworkImport {
        nodes,
        connections,
        since,
    }
}

/// The last two local days whose data is past its on-time deadline at `now`.
fn overdue_days(now: DateTime<Utc>, cfg: &CompletenessConfig) -> Vec<chrono::NaiveDate> {
    let today = mdm::calendar::ist_date(now);
    [today - chrono::Days::new(2), today - chrono::Days::new(1)]
        .into_iter()
        .filter(|d| {
            mdm::calendar::day_bounds(*d).1 + chrono::Duration::hours(cfg.on_time_hours) <= now
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_fleet_gets_a_whole_network() {
        let meters: Vec<model::MeterSerial> = (0..1001)
            .map(|i| model::MeterSerial::new(format!("M{i}")).unwrap())
            .collect();
        let now = "2026-12-04T03:00:00Z".parse().unwrap();
        let net = simulated_network(&meters, now);
        // 1 substation, 3 feeders, 21 transformers.
        assert_eq!(net.nodes.len(), 1 + 3 + 21);
        assert_eq!(net.connections.len(), 1001);
        assert_eq!(net.connections[1000].parent, "DT-SIM-21");
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
        store.mdm_import_network(&net, now).unwrap();
        assert_eq!(store.mdm_meters_under("F-SIM-3", now).unwrap().len(), 1);
        assert_eq!(store.mdm_meters_under("SS-SIM", now).unwrap().len(), 1001);
        assert_eq!(
            store.mdm_category_of(&meters[9], now).unwrap().as_deref(),
            Some("commercial")
        );
    }

    #[test]
    fn a_day_is_overdue_once_its_deadline_has_passed() {
        let cfg = CompletenessConfig::default(); // 8 hours after the day's end
        let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        // 08:30 IST on 4 December: 3 December closed at midnight, overdue since 08:00.
        let morning: DateTime<Utc> = "2026-12-04T03:00:00Z".parse().unwrap();
        assert_eq!(overdue_days(morning, &cfg), vec![day(2), day(3)]);
        // 06:30 IST: 3 December is not overdue yet.
        let early: DateTime<Utc> = "2026-12-04T01:00:00Z".parse().unwrap();
        assert_eq!(overdue_days(early, &cfg), vec![day(2)]);
    }
}

//! The MDM in the binary: its ingest subscribed to the bus and running beside the head-end, the
//! hourly estimation of the gaps of days whose data is overdue, and a running tally of what it
//! stored for the summary lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::Subscription;
use chrono::{DateTime, Utc};
use mdm::completeness::CompletenessConfig;
use mdm::events::Routing;
use mdm::ingest::{BatchReport, DEFAULT_BATCH, Ingest};
use store::Store;
use tokio::sync::watch;

use crate::hes_cli::stopped;

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

impl MdmService {
    /// Starts ingesting what `subscription` delivers into `store`. Subscribe before the
    /// head-end's outbox relay starts, so no message is delivered without the MDM.
    pub fn start(store: Store, subscription: Subscription) -> MdmService {
        let tally = Arc::new(Mutex::new(BatchReport::default()));
        let (stop, stop_rx) = watch::channel(false);
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
            tasks: vec![task, estimator],
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

/// The last two local days whose data is past its on-time deadline at `now`.
fn overdue_days(now: DateTime<Utc>, cfg: &CompletenessConfig) -> Vec<chrono::NaiveDate> {
    let today = (now + chrono::Duration::seconds(mdm::calendar::IST_OFFSET_S)).date_naive();
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

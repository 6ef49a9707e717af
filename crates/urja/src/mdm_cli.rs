//! The MDM in the binary: its ingest subscribed to the bus and running beside the head-end, and
//! a running tally of what it stored for the summary lines.

use std::sync::{Arc, Mutex};

use bus::Subscription;
use mdm::events::Routing;
use mdm::ingest::{BatchReport, DEFAULT_BATCH, Ingest};
use store::Store;
use tokio::sync::watch;

use crate::hes_cli::stopped;

/// The running ingest.
#[derive(Debug)]
pub struct MdmService {
    tally: Arc<Mutex<BatchReport>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MdmService {
    /// Starts ingesting what `subscription` delivers into `store`. Subscribe before the
    /// head-end's outbox relay starts, so no message is delivered without the MDM.
    pub fn start(store: Store, subscription: Subscription) -> MdmService {
        let tally = Arc::new(Mutex::new(BatchReport::default()));
        let (stop, stop_rx) = watch::channel(false);
        let ingest = Ingest::new(store, Routing::default());
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
        MdmService { tally, stop, task }
    }

    /// `stored 9600 intervals (57600 reads), 100 days, 340 events, 12 notices, …`.
    pub fn render(&self) -> String {
        let t = *lock(&self.tally);
        let w = t.written;
        format!(
            "stored {} intervals ({} reads; {} estimates replaced), {} daily, {} billing, {} \
             events, {} alarms, {} notices routed, {} exceptions queued, {} dead letters",
            w.intervals_new + w.intervals_replaced,
            t.reads,
            w.intervals_replaced,
            w.daily,
            w.billing,
            w.events,
            w.alarms,
            w.routed,
            w.exceptions,
            w.dead_letters
        )
    }

    /// Stops after the batch in hand.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

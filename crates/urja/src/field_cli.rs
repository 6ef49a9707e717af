//! Field work beside the API: every few seconds the built-in WFM raises inspection orders for
//! the MDM's new site-inspection notices (5.3) and moves new connections waiting on their
//! verification reads on (12.4–12.6).

use std::time::Duration;

use chrono::Utc;
use field::service::Field;
use tokio::sync::watch;

use crate::hes_cli::stopped;

/// How often the notices and the connections are looked at.
const EVERY: Duration = Duration::from_secs(5);

pub fn start(field: Field, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stop = stopped(stop);
        tokio::pin!(stop);
        let mut every = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = every.tick() => {}
            }
            let now = Utc::now();
            let taker = field.clone();
            match tokio::task::spawn_blocking(move || taker.take_notices(now)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(raised = n, "field: inspection orders raised"),
                Ok(Err(e)) => tracing::warn!(error = %e, "field: the notices were not taken"),
                Err(e) => tracing::warn!(error = %e, "field: the notice task failed"),
            }
            if let Err(e) = field.follow(now).await {
                tracing::warn!(error = %e, "field: the new connections were not followed");
            }
        }
    })
}

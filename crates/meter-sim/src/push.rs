//! Alerts pushed to the head-end.
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::fleet::Shared;

/// An alert-worthy event to push.
#[derive(Debug, Clone, Copy)]
pub struct Alert {
    pub meter: u32,
    pub code: u16,
    pub at: DateTime<Utc>,
}

/// Queues an alert for `code` if it is alert-worthy and pushing is on.
pub(crate) fn alert(shared: &Shared, meter: u32, code: u16, at: DateTime<Utc>) {
    if let (Some(tx), Some(_)) = (&shared.push, crate::events::alert_bit(code)) {
        let _ = tx.send(Alert { meter, code, at });
    }
}

pub(crate) async fn run_pusher(
    _shared: Arc<Shared>,
    _target: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Alert>,
) {
    while rx.recv().await.is_some() {}
}

pub(crate) async fn watch_schedule(_shared: Arc<Shared>) {}

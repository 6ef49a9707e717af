//! Alerts pushed to the head-end: when an alert-worthy event happens (last gasp / first breath
//! for power off / on, magnet, cover open, relay operation), the meter sends a DataNotification,
//! general-glo-ciphered with its global keys (push association 64, authenticated encryption) and
//! its own invocation counter, over the TCP wrapper (source wPort 1, destination wPort 64) to
//! `--push-to`. The notification body is the alert push setup's object list: device id (serial),
//! push-setup logical name, clock, event status word.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dlms::apdu::DataNotification;
use dlms::association::server::{PushProtection, build_push_notification};
use dlms::data::BitString;
use dlms::security::{GlobalKeys, SecurityPolicy, Suite0Cipher};
use dlms::{Data, ObisCode};
use is15959::catalogue::obis;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::events::{self, code};
use crate::fleet::Shared;
use crate::keys::SERVER_SAP;

/// The client SAP (wPort) pushes are addressed to.
pub const PUSH_CLIENT_SAP: u16 = 64;

/// An alert-worthy event to push.
#[derive(Debug, Clone, Copy)]
pub struct Alert {
    pub meter: u32,
    /// The event code; 0 for a push invoked through the push setup's `push` method.
    pub code: u16,
    pub at: DateTime<Utc>,
}

/// Queues an alert for `code` if it is alert-worthy and pushing is on.
pub(crate) fn alert(shared: &Shared, meter: u32, code: u16, at: DateTime<Utc>) {
    if let (Some(tx), Some(_)) = (&shared.push, events::alert_bit(code)) {
        let _ = tx.send(Alert { meter, code, at });
    }
}

/// Pushes now (the push setup's method 1).
pub(crate) fn alert_now(shared: &Shared, meter: u32, _setup: ObisCode, at: DateTime<Utc>) {
    if let Some(tx) = &shared.push {
        let _ = tx.send(Alert { meter, code: 0, at });
    }
}

/// The DataNotification APDU (ciphered) for an alert. Takes the meter's next invocation counter.
pub(crate) fn notification(shared: &Shared, alert: &Alert) -> Option<Vec<u8>> {
    let index = alert.meter;
    let keys = crate::keys::current(shared, index);
    let objects = crate::objects::MeterObjects::new_view_handle(shared, index);
    let clock = objects.clock_bytes(alert.at);
    let mut esw: BitString = objects.esw(alert.at);
    if let Some(Some(bit)) = events::alert_bit(alert.code) {
        esw = BitString::with_bits(
            esw.len,
            (0..esw.len)
                .filter(|i| esw.bit(*i) || *i == bit)
                .collect::<Vec<_>>(),
        );
    }
    let body = Data::Structure(vec![
        Data::OctetString(keys.serial.clone().into_bytes()),
        Data::OctetString(obis::PUSH_SETUP_ALERT.bytes().to_vec()),
        Data::OctetString(clock.to_vec()),
        Data::bit_string(esw),
    ]);
    let cipher = Suite0Cipher::new(&GlobalKeys {
        encryption: keys.global_encryption_key,
        authentication: keys.global_authentication_key,
    });
    // One value of the meter's shared counter, taken under its lock: never one a connection
    // holds in its block.
    let mut counter = dlms::security::InvocationCounter::new(
        crate::session::take_invocation_counter(shared, index)?,
    );
    build_push_notification(
        &DataNotification {
            long_invoke_id_and_priority: counter.peek(),
            date_time: Some(clock.to_vec()),
            body,
        },
        Some(PushProtection {
            system_title: keys.system_title,
            cipher: &cipher,
            policy: SecurityPolicy::AuthenticatedEncrypted,
            invocation_counter: &mut counter,
        }),
    )
    .ok()
}

/// Sends queued alerts to `target`, each over its own TCP connection from the pushing meter's
/// own address (as a meter's modem would), so the head-end sees which address a meter pushes
/// from. A failed attempt is tried once more from the same address.
pub(crate) async fn run_pusher(
    shared: Arc<Shared>,
    target: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Alert>,
) {
    while let Some(alert) = rx.recv().await {
        // A meter that lost power cannot push, except its last gasp.
        let Some(apdu) = notification(&shared, &alert) else {
            continue;
        };
        let Ok(frame) = dlms::wrapper::encode(SERVER_SAP, PUSH_CLIENT_SAP, &apdu) else {
            continue;
        };
        let from = shared.endpoints.get(alert.meter as usize).copied();
        for _attempt in 0..2 {
            let connect = connect_from(from, target);
            let Ok(Ok(mut c)) = tokio::time::timeout(Duration::from_secs(3), connect).await else {
                continue;
            };
            if c.write_all(&frame).await.is_ok() {
                let _ = c.shutdown().await;
                tracing::debug!(meter = alert.meter, code = alert.code, "alert pushed");
                break;
            }
        }
    }
}

/// Connects to `target` from `local` (the meter's address) when both are IPv4.
async fn connect_from(
    local: Option<std::net::Ipv4Addr>,
    target: SocketAddr,
) -> std::io::Result<TcpStream> {
    match (local, target) {
        (Some(ip), SocketAddr::V4(_)) => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(ip.into(), 0))?;
            socket.connect(target).await
        }
        _ => TcpStream::connect(target).await,
    }
}

/// Watches the deterministic event schedule and pushes the alert-worthy events as they happen
/// (power failures and restorations, magnet, cover open).
pub(crate) async fn watch_schedule(shared: Arc<Shared>) {
    let mut last = Utc::now().timestamp();
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let now = Utc::now().timestamp();
        for index in 0..shared.meter_count() {
            let m = shared.peek(index, |s| crate::meter::model(&shared, index, s));
            for e in events::scheduled(&m, last + 1, now, None) {
                // On-demand outages are pushed when they are made.
                let on_demand = m
                    .extra_outages
                    .spans()
                    .iter()
                    .any(|(s, end)| *s == e.at || *end == e.at);
                if matches!(e.code, code::POWER_FAILURE | code::POWER_RESTORED) && on_demand {
                    continue;
                }
                if let Some(at) = DateTime::<Utc>::from_timestamp(e.at, 0) {
                    alert(&shared, index, e.code, at);
                }
            }
        }
        last = now;
    }
}

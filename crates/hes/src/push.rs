//! The push listener (use cases 5.1, 7.1, 9.1): meters connect to the head-end's push port and
//! send IS 15959 alert pushes, DataNotifications over the TCP wrapper, general-glo-ciphered under
//! the meter's global keys. This module owns the listener, the per-meter replay guard on the
//! meters' push counters, the decoding of the alert (device id, push setup, clock, event status
//! word) into a [`HesMessage::Alarm`] (and [`HesMessage::Outage`] for last gasp and first
//! breath) committed through the outbox at once, the follow-up read of the event logs the alert
//! points at ([`HesMessage::Events`]), and the push counters in the Prometheus text format.
//!
//! Anything wrong with a push (framing, unknown sender, wrong key, replayed counter, a body that
//! is not an alert) is logged without secrets and counted, and closes that connection; nothing
//! else is lost.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use dlms::association::client::{
    ClientError, NotificationBody, PushSecurity, notification_system_title, parse_notification,
};
use dlms::datetime::ist;
use dlms::security::{ReplayGuard, SecurityError, SecurityPolicy, Suite0Cipher};
use dlms::wrapper::WrapperDecoder;
use dlms::{Data, ObisCode};
use is15959::{EswMap, EventCodes};
use model::{Alarm, EventCategory, HesMessage, MeterSerial, OutageState};
use store::{Outcome, SessionCommit};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::collect::{self, Collected};
use crate::credentials::{MeterCredentials, Role};
use crate::plan::delta;
use crate::runtime::{HeadEnd, JobContext, JobFuture, outbox_message};

/// The job name of the commit that carries an alert's messages.
pub const JOB_PUSH: &str = "push";
/// The job name of the session that reads the event logs an alert points at.
pub const JOB_FOLLOW_UP: &str = "alarm_followup";

/// How the push listener behaves. Every field has a default.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Connections open at once; a connection beyond this is closed at once.
    pub max_connections: usize,
    /// The largest APDU accepted in one wrapper frame (bounds each connection's buffer).
    pub max_apdu_len: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// How far back a follow-up reads a log the head-end has not followed up before.
    pub follow_up_window: Duration,
    /// How long after a failed follow-up it is tried once more.
    pub follow_up_retry_after: Duration,
    /// Record a meter pushing from another IP address than the registry's as moved
    /// ([`HeadEnd::observe_address`]). Meters behind a data concentrator are never moved.
    pub follow_addresses: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            max_connections: 4096,
            max_apdu_len: 2048,
            idle_timeout: Duration::from_secs(3600),
            follow_up_window: Duration::from_secs(3600),
            follow_up_retry_after: Duration::from_secs(300),
            follow_addresses: true,
        }
    }
}

/// Why the listener stopped, or why one push was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the push listener failed: {0}")]
    Listener(#[source] std::io::Error),
    #[error("not a TCP wrapper frame: {0}")]
    Framing(String),
    #[error("a push that is not ciphered (alerts must be authenticated and encrypted)")]
    Unciphered,
    #[error("a push from an unknown system title")]
    UnknownSender,
    #[error("meter {meter}: the push does not authenticate (wrong key or altered)")]
    Authentication { meter: MeterSerial },
    #[error("meter {meter}: replayed push counter {received} (last accepted {last})")]
    Replayed {
        meter: MeterSerial,
        received: u32,
        last: u32,
    },
    #[error("meter {meter}: the push is not an IS 15959 alert: {detail}")]
    Malformed { meter: MeterSerial, detail: String },
    #[error("meter {meter}: the push names device {claimed:?}")]
    WrongDevice { meter: MeterSerial, claimed: String },
    #[error("meter {meter}: the alert could not be stored: {detail}")]
    Store { meter: MeterSerial, detail: String },
}

/// Rejection reasons, as metric labels (a fixed set).
const REASONS: [&str; 8] = [
    "framing",
    "unciphered",
    "unknown_sender",
    "authentication",
    "replay",
    "malformed",
    "wrong_device",
    "store",
];

impl PushError {
    /// The metric label of a rejection.
    pub fn reason(&self) -> &'static str {
        match self {
            // Not a push's fault; never counted as a rejection.
            PushError::Listener(_) => "listener",
            PushError::Store { .. } => "store",
            PushError::Framing(_) => "framing",
            PushError::Unciphered => "unciphered",
            PushError::UnknownSender => "unknown_sender",
            PushError::Authentication { .. } => "authentication",
            PushError::Replayed { .. } => "replay",
            PushError::Malformed { .. } => "malformed",
            PushError::WrongDevice { .. } => "wrong_device",
        }
    }
}

/// The listener's counters. Labels are bounded: reasons and outcomes are fixed sets.
#[derive(Debug, Default)]
pub struct PushMetrics {
    connections: AtomicU64,
    refused_connections: AtomicU64,
    received: AtomicU64,
    accepted: AtomicU64,
    rejected: [AtomicU64; REASONS.len()],
    follow_ups_ok: AtomicU64,
    follow_ups_failed: AtomicU64,
}

impl PushMetrics {
    /// Notifications received (accepted or not).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Notifications that became alarms.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Notifications rejected for `reason` (see [`PushError::reason`]).
    pub fn rejected(&self, reason: &str) -> u64 {
        REASONS
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.rejected.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Follow-up sessions that worked and that failed.
    pub fn follow_ups(&self) -> (u64, u64) {
        (
            self.follow_ups_ok.load(Ordering::Relaxed),
            self.follow_ups_failed.load(Ordering::Relaxed),
        )
    }

    fn reject(&self, e: &PushError) {
        if let Some(i) = REASONS.iter().position(|r| *r == e.reason())
            && let Some(c) = self.rejected.get(i)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP urja_hes_push_connections_total Push connections accepted.\n\
             # TYPE urja_hes_push_connections_total counter\n\
             urja_hes_push_connections_total {}",
            get(&self.connections)
        );
        let _ = writeln!(
            out,
            "# HELP urja_hes_push_connections_refused_total Push connections closed at once \
             (too many open).\n\
             # TYPE urja_hes_push_connections_refused_total counter\n\
             urja_hes_push_connections_refused_total {}",
            get(&self.refused_connections)
        );
        let _ = writeln!(
            out,
            "# HELP urja_hes_push_notifications_total Push notifications received.\n\
             # TYPE urja_hes_push_notifications_total counter\n\
             urja_hes_push_notifications_total {}",
            get(&self.received)
        );
        let _ = writeln!(
            out,
            "# HELP urja_hes_push_alarms_total Push notifications accepted as alarms.\n\
             # TYPE urja_hes_push_alarms_total counter\n\
             urja_hes_push_alarms_total {}",
            get(&self.accepted)
        );
        let _ = writeln!(
            out,
            "# HELP urja_hes_push_rejected_total Push notifications rejected, by reason.\n\
             # TYPE urja_hes_push_rejected_total counter"
        );
        for (reason, c) in REASONS.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "urja_hes_push_rejected_total{{reason=\"{reason}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP urja_hes_alarm_followups_total Event-log reads after an alarm, by result.\n\
             # TYPE urja_hes_alarm_followups_total counter\n\
             urja_hes_alarm_followups_total{{result=\"ok\"}} {}\n\
             urja_hes_alarm_followups_total{{result=\"failed\"}} {}",
            get(&self.follow_ups_ok),
            get(&self.follow_ups_failed)
        );
        out
    }
}

/// An alert as decoded from a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedAlert {
    /// The push setup the notification came from (IS 15959: 0.0.25.9.0.255 for alerts).
    pub push_setup: Option<ObisCode>,
    /// The meter's time in the notification.
    pub meter_time: Option<DateTime<Utc>>,
    /// The status word's set bits (first bit of the bit string is bit 0), at most
    /// [`is15959::events::ESW_BITS`].
    pub esw_indices: Vec<u16>,
    /// Names of the set bits the ESW table knows.
    pub esw_bits: Vec<String>,
}

/// Decodes the body of an IS 15959 alert push: a structure of device id (the meter serial),
/// push setup logical name, clock and event status word. Returns the device id and the alert.
pub fn decode_alert(
    body: &Data,
    header_time: Option<&[u8]>,
) -> Result<(String, DecodedAlert), String> {
    let items = body
        .as_items()
        .ok_or_else(|| "the body is not a structure".to_string())?;
    let [device, setup, clock, esw, ..] = items else {
        return Err(format!(
            "the body has {} elements, an alert has 4",
            items.len()
        ));
    };
    let device = match device {
        Data::OctetString(b) | Data::VisibleString(b) => String::from_utf8_lossy(b).into_owned(),
        Data::Utf8String(s) => s.clone(),
        _ => return Err("the device id is not a string".into()),
    };
    let push_setup = setup
        .as_octets()
        .and_then(|b| <[u8; 6]>::try_from(b).ok())
        .map(ObisCode::from);
    let meter_time = clock
        .as_datetime()
        .or_else(|| header_time.and_then(|b| dlms::DateTime::from_bytes(b).ok()))
        .and_then(|t| t.to_utc(ist()));
    let Data::BitString(word) = esw else {
        return Err("the event status word is not a bit string".into());
    };
    let limit = word.len.min(is15959::events::ESW_BITS);
    let esw_indices: Vec<u16> = (0..limit)
        .filter(|i| word.bit(*i))
        .filter_map(|i| u16::try_from(i).ok())
        .collect();
    let esw_bits = EswMap::builtin()
        .decode(word)
        .map(|b| b.name.clone())
        .collect();
    Ok((
        device,
        DecodedAlert {
            push_setup,
            meter_time,
            esw_indices,
            esw_bits,
        },
    ))
}

/// The event logs whose events set the named ESW bits (from the ESW and event-code tables): the
/// power log for last gasp and first breath, the other-events log for magnet, the non-rollover
/// log for a cover opening, and so on.
pub fn logs_for_bits(bits: &[String]) -> Vec<EventCategory> {
    let esw = EswMap::builtin();
    let codes = EventCodes::builtin();
    let mut logs: Vec<EventCategory> = bits
        .iter()
        .filter_map(|name| esw.by_name(name))
        .flat_map(|b| b.events.iter())
        .filter_map(|code| codes.get(*code))
        .map(|c| c.category)
        .collect();
    logs.sort();
    logs.dedup();
    logs
}

/// What a follow-up read: which logs, up to when (head-end time), how many events.
#[derive(Debug)]
struct ReadUpTo {
    logs: Vec<EventCategory>,
    at: DateTime<Utc>,
    events: usize,
}

/// What is known about one meter's follow-ups.
#[derive(Debug, Default)]
struct FollowUpState {
    /// Per log: the earliest alert time not yet covered by a successful read.
    unread: BTreeMap<EventCategory, DateTime<Utc>>,
    /// The follow-up task waiting to start, if any: it will read everything unread.
    queued: Option<u64>,
}

/// State shared by the listener's tasks.
struct Shared {
    head_end: HeadEnd,
    options: PushOptions,
    metrics: Arc<PushMetrics>,
    /// The meters' push counters: each push must carry a higher one than the last accepted
    /// under the same keys (a meter may start counting again when its keys change).
    replay: Mutex<HashMap<MeterSerial, (Arc<MeterCredentials>, ReplayGuard)>>,
    follow_ups: Mutex<HashMap<MeterSerial, FollowUpState>>,
    next_task: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The push listener of a head-end.
#[derive(Clone)]
pub struct PushListener {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PushListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushListener")
            .field("options", &self.shared.options)
            .finish()
    }
}

/// Listens for pushes on `listener` until `shutdown`, with default [`PushOptions`].
pub async fn listen(
    head_end: HeadEnd,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), PushError> {
    PushListener::new(head_end, PushOptions::default())
        .run(listener, shutdown)
        .await
}

impl PushListener {
    pub fn new(head_end: HeadEnd, options: PushOptions) -> Self {
        PushListener {
            shared: Arc::new(Shared {
                head_end,
                options,
                metrics: Arc::new(PushMetrics::default()),
                replay: Mutex::new(HashMap::new()),
                follow_ups: Mutex::new(HashMap::new()),
                next_task: AtomicU64::new(1),
            }),
        }
    }

    pub fn metrics(&self) -> Arc<PushMetrics> {
        self.shared.metrics.clone()
    }

    /// Accepts connections until `shutdown`; then closes the open ones and returns. Follow-up
    /// reads already started run to their end.
    pub async fn run(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), PushError> {
        tokio::pin!(shutdown);
        let slots = Arc::new(Semaphore::new(self.shared.options.max_connections.max(1)));
        let mut connections = JoinSet::new();
        let mut failures = 0u32;
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => {
                    failures = 0;
                    a
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off; give up only when it
                    // persists.
                    failures += 1;
                    tracing::warn!(error = %e, "accepting a push connection failed");
                    if failures > 100 {
                        return Err(PushError::Listener(e));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            self.shared
                .metrics
                .connections
                .fetch_add(1, Ordering::Relaxed);
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                self.shared
                    .metrics
                    .refused_connections
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, "too many push connections; closed");
                drop(stream);
                continue;
            };
            let shared = self.shared.clone();
            connections.spawn(async move {
                serve(&shared, stream, peer).await;
                drop(permit);
            });
        }
        connections.shutdown().await;
        Ok(())
    }
}

/// Reads wrapper frames from one connection and handles each notification, until the peer
/// closes, goes quiet, or sends something that is rejected.
async fn serve(shared: &Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let mut decoder = WrapperDecoder::with_max_apdu_len(shared.options.max_apdu_len);
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(shared.options.idle_timeout, stream.read(&mut buf)).await;
        let n = match read {
            Ok(Ok(0)) | Err(_) => return,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "push connection failed");
                return;
            }
        };
        decoder.push(buf.get(..n).unwrap_or_default());
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    shared.metrics.received.fetch_add(1, Ordering::Relaxed);
                    let e = PushError::Framing(e.to_string());
                    reject(shared, peer, &e);
                    return;
                }
            };
            shared.metrics.received.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = handle(shared, &frame.apdu, peer).await {
                reject(shared, peer, &e);
                return;
            }
        }
    }
}

fn reject(shared: &Shared, peer: SocketAddr, e: &PushError) {
    shared.metrics.reject(e);
    // The error names the meter and the reason, never keys or the bytes received.
    tracing::warn!(%peer, reason = e.reason(), error = %e, "push rejected; connection closed");
}

/// One notification: authenticate, decode, commit the alarm, start the follow-up.
async fn handle(shared: &Arc<Shared>, apdu: &[u8], peer: SocketAddr) -> Result<(), PushError> {
    let head_end = &shared.head_end;
    let now = head_end.clock().now();
    let Some(title) = notification_system_title(apdu) else {
        return Err(match apdu.first() {
            Some(&dlms::apdu::tag::DATA_NOTIFICATION)
            | Some(&dlms::apdu::tag::EVENT_NOTIFICATION_REQUEST) => PushError::Unciphered,
            _ => PushError::UnknownSender,
        });
    };
    let Some(entry) = head_end.meter_by_system_title(&title) else {
        return Err(PushError::UnknownSender);
    };
    let meter = entry.serial.clone();
    let credentials = entry.credentials();
    let cipher = Suite0Cipher::new(&credentials.global_keys);
    let notification = {
        let mut guards = lock(&shared.replay);
        let guard = match guards.entry(meter.clone()) {
            Entry::Occupied(mut e) => {
                if !Arc::ptr_eq(&e.get().0, &credentials) {
                    e.insert((credentials.clone(), ReplayGuard::new()));
                }
                &mut e.into_mut().1
            }
            Entry::Vacant(e) => &mut e.insert((credentials.clone(), ReplayGuard::new())).1,
        };
        parse_notification(
            apdu,
            now,
            Some(PushSecurity {
                cipher: &cipher,
                system_title: title,
                required: SecurityPolicy::AuthenticatedEncrypted,
                replay: guard,
            }),
        )
    }
    .map_err(|e| security_error(&meter, e))?;
    let NotificationBody::Data(data) = notification.body else {
        return Err(PushError::Malformed {
            meter,
            detail: "an EventNotification, not an alert push".into(),
        });
    };
    let (device, alert) =
        decode_alert(&data.body, data.date_time.as_deref()).map_err(|detail| {
            PushError::Malformed {
                meter: meter.clone(),
                detail,
            }
        })?;
    if device != meter.as_str() {
        return Err(PushError::WrongDevice {
            meter,
            claimed: device.chars().take(MeterSerial::MAX_LEN).collect(),
        });
    }
    let at = alert.meter_time.unwrap_or(now);
    let mut messages = vec![HesMessage::Alarm(Alarm {
        meter: meter.clone(),
        received_at: now,
        meter_time: alert.meter_time,
        esw_bits: alert.esw_bits.clone(),
        esw_indices: alert.esw_indices.clone(),
    })];
    for (bit, state) in [
        ("last_gasp", OutageState::Started),
        ("first_breath", OutageState::Restored),
    ] {
        if alert.esw_bits.iter().any(|b| b == bit) {
            messages.push(HesMessage::Outage {
                meter: meter.clone(),
                state,
                at,
            });
        }
    }
    let commit = SessionCommit {
        meter: meter.clone(),
        invocation_counter: None,
        job: JOB_PUSH.into(),
        attempt: 1,
        started_at: now,
        ended_at: now,
        outcome: Outcome::Ok,
        contacted: true,
        cursors: Vec::new(),
        gaps: Vec::new(),
        outbox: messages.iter().map(outbox_message).collect(),
    };
    head_end
        .commit(commit)
        .await
        .map_err(|detail| PushError::Store {
            meter: meter.clone(),
            detail,
        })?;
    shared.metrics.accepted.fetch_add(1, Ordering::Relaxed);
    tracing::info!(%meter, bits = ?alert.esw_bits, "alarm received");

    if shared.options.follow_addresses {
        let record = entry.record();
        let moved = record.dcu.is_none()
            && record
                .host
                .parse::<IpAddr>()
                .is_ok_and(|known| known != peer.ip());
        if moved
            && let Err(e) = head_end
                .observe_address(&meter, &peer.ip().to_string())
                .await
        {
            tracing::warn!(%meter, error = %e, "recording the meter's new address failed");
        }
    }

    let logs = logs_for_bits(&alert.esw_bits);
    if !logs.is_empty() {
        schedule_follow_up(shared, &meter, &logs, at);
    }
    Ok(())
}

fn security_error(meter: &MeterSerial, e: ClientError) -> PushError {
    match e {
        ClientError::Security(SecurityError::Replayed { received, last }) => PushError::Replayed {
            meter: meter.clone(),
            received,
            last,
        },
        ClientError::Security(
            SecurityError::AuthenticationFailed | SecurityError::SystemTitleMismatch,
        ) => PushError::Authentication {
            meter: meter.clone(),
        },
        ClientError::Security(SecurityError::PolicyViolation { .. }) => PushError::Unciphered,
        other => PushError::Malformed {
            meter: meter.clone(),
            detail: other.to_string(),
        },
    }
}

/// Notes the logs an alert points at and starts a follow-up unless one is already waiting (it
/// will read these too).
fn schedule_follow_up(
    shared: &Arc<Shared>,
    meter: &MeterSerial,
    logs: &[EventCategory],
    at: DateTime<Utc>,
) {
    let task = {
        let mut all = lock(&shared.follow_ups);
        let state = all.entry(meter.clone()).or_default();
        for log in logs {
            let t = state.unread.entry(*log).or_insert(at);
            *t = (*t).min(at);
        }
        if state.queued.is_some() {
            return;
        }
        let task = shared.next_task.fetch_add(1, Ordering::Relaxed);
        state.queued = Some(task);
        task
    };
    let shared = shared.clone();
    let meter = meter.clone();
    tokio::spawn(async move {
        if follow_up(&shared, &meter, task, 1).await {
            return;
        }
        tokio::time::sleep(shared.options.follow_up_retry_after).await;
        let task = {
            let mut all = lock(&shared.follow_ups);
            let state = all.entry(meter.clone()).or_default();
            if state.queued.is_some() || state.unread.is_empty() {
                // Another follow-up is on its way, or one has read everything since.
                return;
            }
            let task = shared.next_task.fetch_add(1, Ordering::Relaxed);
            state.queued = Some(task);
            task
        };
        follow_up(&shared, &meter, task, 2).await;
    });
}

/// One follow-up session: reads every log with unread alerts, from where the last read of that
/// log ended (or `follow_up_window` before the alert), and publishes the events found. Returns
/// whether it worked.
async fn follow_up(shared: &Arc<Shared>, meter: &MeterSerial, task: u64, attempt: u32) -> bool {
    let role: Role = shared.head_end.config().roles.reading.into();
    let window = delta(shared.options.follow_up_window);
    let work_shared = shared.clone();
    let work_meter = meter.clone();
    let store = shared.head_end.store().clone();
    let result = shared
        .head_end
        .run_session(
            meter,
            JOB_FOLLOW_UP,
            role,
            attempt,
            move |ctx: &mut JobContext<'_>| -> JobFuture<'_, ReadUpTo> {
                Box::pin(async move {
                    let unread: Vec<(EventCategory, DateTime<Utc>)> = {
                        let mut all = lock(&work_shared.follow_ups);
                        let state = all.entry(work_meter.clone()).or_default();
                        if state.queued == Some(task) {
                            state.queued = None;
                        }
                        state.unread.iter().map(|(l, t)| (*l, *t)).collect()
                    };
                    // Each log is read from its collection cursor (shared with the scheduled
                    // event collection, so nothing is published twice), or from
                    // `follow_up_window` before the alert for a log never read.
                    let mut got = Collected::default();
                    for (log, alert_at) in &unread {
                        let since =
                            match collect::event_log_cursor(&store, ctx.serial, *log).await? {
                                Some(cursor) => cursor,
                                None => (*alert_at).min(ctx.now) - window,
                            };
                        let since = since.max(ctx.now - TimeDelta::days(7));
                        collect::event_log(ctx, *log, since, &mut got).await?;
                    }
                    Ok(ReadUpTo {
                        logs: unread.iter().map(|(log, _)| *log).collect(),
                        at: ctx.now,
                        events: got.events,
                    })
                })
            },
        )
        .await;
    let mut all = lock(&shared.follow_ups);
    let state = all.entry(meter.clone()).or_default();
    if state.queued == Some(task) {
        state.queued = None;
    }
    match result {
        Ok(done) => {
            shared.metrics.follow_ups_ok.fetch_add(1, Ordering::Relaxed);
            let read = done.value;
            for log in &read.logs {
                if state.unread.get(log).is_some_and(|t| *t <= read.at) {
                    state.unread.remove(log);
                }
            }
            tracing::debug!(%meter, events = read.events, "alarm follow-up read");
            true
        }
        Err(e) => {
            shared
                .metrics
                .follow_ups_failed
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%meter, attempt, error = %e, "alarm follow-up failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlms::data::BitString;

    fn alert_body(esw: Data) -> Data {
        Data::Structure(vec![
            Data::OctetString(b"URJ0000042".to_vec()),
            Data::OctetString(vec![0, 4, 25, 9, 0, 255]),
            Data::OctetString(
                dlms::DateTime::from_utc(
                    DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
                    ist(),
                )
                .to_bytes()
                .to_vec(),
            ),
            esw,
        ])
    }

    #[test]
    fn an_alert_body_decodes_to_serial_time_and_named_bits() {
        let esw = Data::bit_string(BitString::with_bits(128, [81, 85, 120]));
        let (device, alert) = decode_alert(&alert_body(esw), None).unwrap();
        assert_eq!(device, "URJ0000042");
        assert_eq!(alert.push_setup, Some(ObisCode::new(0, 4, 25, 9, 0, 255)));
        assert_eq!(alert.meter_time, DateTime::from_timestamp(1_767_225_600, 0));
        // Bit 120 is set but unnamed: counted, not named.
        assert_eq!(alert.esw_indices, vec![81, 85, 120]);
        assert_eq!(alert.esw_bits, vec!["magnet", "last_gasp"]);
    }

    #[test]
    fn bodies_that_are_not_alerts_are_refused() {
        assert!(decode_alert(&Data::Unsigned(1), None).is_err());
        assert!(decode_alert(&Data::Structure(vec![Data::Unsigned(1)]), None).is_err());
        assert!(decode_alert(&alert_body(Data::Unsigned(0)), None).is_err());
        let mut no_device = alert_body(Data::bit_string(BitString::with_bits(128, [1])));
        if let Data::Structure(items) = &mut no_device {
            items[0] = Data::Long(5);
        }
        assert!(decode_alert(&no_device, None).is_err());
    }

    #[test]
    fn a_long_status_word_is_read_only_to_its_128_bits() {
        let esw = Data::bit_string(BitString::with_bits(4096, [3, 200, 4000]));
        let (_, alert) = decode_alert(&alert_body(esw), None).unwrap();
        assert_eq!(alert.esw_indices, vec![3]);
        assert_eq!(alert.esw_bits, vec!["over_voltage"]);
    }

    #[test]
    fn status_bits_point_at_the_logs_of_their_events() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            logs_for_bits(&names(&["last_gasp", "first_breath"])),
            vec![EventCategory::Power]
        );
        assert_eq!(
            logs_for_bits(&names(&["cover_open", "magnet"])),
            vec![EventCategory::Other, EventCategory::NonRollover]
        );
        assert_eq!(
            logs_for_bits(&names(&["over_voltage"])),
            vec![EventCategory::Voltage]
        );
        assert!(logs_for_bits(&names(&["no_such_bit"])).is_empty());
    }

    #[test]
    fn rejections_are_counted_by_reason_in_prometheus_text() {
        let m = PushMetrics::default();
        m.reject(&PushError::UnknownSender);
        m.reject(&PushError::UnknownSender);
        m.reject(&PushError::Framing("bad version".into()));
        assert_eq!(m.rejected("unknown_sender"), 2);
        assert_eq!(m.rejected("framing"), 1);
        assert_eq!(m.rejected("replay"), 0);
        assert_eq!(m.rejected("no such reason"), 0);
        let text = m.render_prometheus();
        assert!(text.contains("urja_hes_push_rejected_total{reason=\"unknown_sender\"} 2\n"));
        assert!(text.contains("urja_hes_push_rejected_total{reason=\"replay\"} 0\n"));
        for reason in REASONS {
            assert!(text.contains(&format!("{{reason=\"{reason}\"}}")));
        }
    }
}

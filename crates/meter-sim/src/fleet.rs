//! The fleet: binds one listener per meter on consecutive loopback addresses, accepts
//! connections and hands them to [`crate::session`], and offers the on-demand controls tests and
//! operators use ([`FleetHandle`]). Per-meter memory is a few bytes unless something changed: the
//! meter's mutable state is boxed and allocated on first change.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::events::EventKind;
use crate::faults::{Fault, FaultKind, FaultSpec};
use crate::keys::{Endpoint, MeterKeys};
use crate::meter::MeterState;

/// Framing on a meter's TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// IEC 62056-47 TCP wrapper.
    Wrapper,
    /// IEC 62056-46 HDLC frames carried over TCP.
    Hdlc,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Wrapper => "wrapper",
            Transport::Hdlc => "hdlc",
        }
    }
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub meters: u32,
    pub base_address: Ipv4Addr,
    /// 0 picks a free port (on the first meter's address) and uses it for every meter.
    pub port: u16,
    pub seed: u64,
    pub transport: Transport,
    /// Where alerts are pushed (DataNotification over the TCP wrapper).
    pub push_to: Option<SocketAddr>,
    pub faults: FaultSpec,
    /// Block-load capture period: 15 or 30 minutes.
    pub capture_period_min: u8,
    /// Whether meters lose power now and then on their own (about one day in twenty, for 2 to
    /// 120 minutes). Off for a grid that never fails; faults and on-demand outages still apply.
    pub scheduled_outages: bool,
}

impl FleetConfig {
    /// A small fleet with defaults, for tests.
    pub fn new(meters: u32, base_address: Ipv4Addr, port: u16, seed: u64) -> Self {
        FleetConfig {
            meters,
            base_address,
            port,
            seed,
            transport: Transport::Wrapper,
            push_to: None,
            faults: FaultSpec::default(),
            capture_period_min: 15,
            scheduled_outages: true,
        }
    }

    pub fn capture_period_secs(&self) -> i64 {
        self.capture_period_min as i64 * 60
    }
}

/// Why the fleet could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "the open-file limit is {limit} and cannot be raised above it; {meters} meters need about {needed}. Raise the hard limit (ulimit -Hn / LimitNOFILE) or serve fewer meters"
    )]
    OpenFileLimit {
        meters: u32,
        needed: u64,
        limit: u64,
    },
    #[error("{meters} meters from {base} do not fit in the loopback range 127.0.0.0/8")]
    AddressRange { meters: u32, base: Ipv4Addr },
    #[error("the base address {0} is not a loopback address (127.x.y.z)")]
    NotLoopback(Ipv4Addr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot resolve the push target {target}: {detail}")]
    PushTarget { target: String, detail: String },
    #[error("cannot write the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the fleet needs at least one meter")]
    NoMeters,
}

/// State shared by every task of the fleet.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: FleetConfig,
    pub endpoints: Vec<Ipv4Addr>,
    pub port: u16,
    /// Per meter: `None` until something about it changes.
    meters: Vec<Mutex<Option<Box<MeterState>>>>,
    /// When the fleet started: the reference instant for clock drift.
    pub started_at: DateTime<Utc>,
    pub push: Option<mpsc::UnboundedSender<crate::push::Alert>>,
    pub shutdown: watch::Receiver<bool>,
}

impl Shared {
    /// Locks meter `index`'s mutable state (allocating it on first use).
    pub fn state(&self, index: u32) -> MeterStateGuard<'_> {
        let guard = self.meters[index as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        MeterStateGuard { guard }
    }

    /// Reads meter state without allocating it.
    pub fn peek<R>(&self, index: u32, f: impl FnOnce(Option<&MeterState>) -> R) -> R {
        let guard = self.meters[index as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(guard.as_deref())
    }

    pub fn meter_count(&self) -> u32 {
        self.meters.len() as u32
    }

    /// The fault of this kind meter `index` has now (a run-time override, else the spec).
    pub fn fault(&self, index: u32, kind: FaultKind) -> Option<Fault> {
        self.peek(index, |s| self.fault_in(index, s, kind))
    }

    /// As [`Shared::fault`], for a caller that already holds the meter's state.
    pub fn fault_in(
        &self,
        index: u32,
        state: Option<&MeterState>,
        kind: FaultKind,
    ) -> Option<Fault> {
        match state.and_then(|s| s.fault_override(kind)) {
            Some(over) => over,
            None => self.config.faults.fault_for(self.config.seed, index, kind),
        }
    }
}

/// A locked meter state, allocated on first mutable access.
#[derive(Debug)]
pub(crate) struct MeterStateGuard<'a> {
    guard: MutexGuard<'a, Option<Box<MeterState>>>,
}

impl MeterStateGuard<'_> {
    pub fn get(&self) -> Option<&MeterState> {
        self.guard.as_deref()
    }

    /// The state for changing, only if it exists already (nothing is allocated).
    pub fn get_existing_mut(&mut self) -> Option<&mut MeterState> {
        self.guard.as_deref_mut()
    }

    pub fn get_mut(&mut self) -> &mut MeterState {
        self.guard.get_or_insert_with(Default::default)
    }
}

/// The running fleet.
#[derive(Debug)]
pub struct Fleet;

/// Controls of a running fleet. Dropping it stops the fleet too.
#[derive(Debug)]
pub struct FleetHandle {
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
    /// How long binding every meter took.
    pub start_time: Duration,
}

impl Fleet {
    /// Binds every meter and starts serving. Returns once all listeners are bound.
    pub async fn start(config: FleetConfig) -> Result<FleetHandle, SimError> {
        Self::build(config, false).await
    }

    /// A fleet that listens nowhere: its meters are reached in memory with
    /// [`FleetHandle::objects`] (tests, benchmarks).
    pub async fn offline(config: FleetConfig) -> Result<FleetHandle, SimError> {
        Self::build(config, true).await
    }

    async fn build(config: FleetConfig, offline: bool) -> Result<FleetHandle, SimError> {
        let t0 = Instant::now();
        let n = config.meters;
        if n == 0 {
            return Err(SimError::NoMeters);
        }
        if config.base_address.octets()[0] != 127 {
            return Err(SimError::NotLoopback(config.base_address));
        }
        let first = u32::from(config.base_address);
        if first
            .checked_add(n)
            .is_none_or(|end| end > u32::from(Ipv4Addr::new(127, 255, 255, 255)))
        {
            return Err(SimError::AddressRange {
                meters: n,
                base: config.base_address,
            });
        }
        if offline {
            let endpoints = (0..n).map(|i| Ipv4Addr::from(first + i)).collect();
            let port = config.port;
            return Ok(Self::assemble(config, endpoints, port, Vec::new(), t0));
        }
        raise_open_file_limit(n)?;

        let mut listeners = Vec::with_capacity(n as usize);
        let mut endpoints = Vec::with_capacity(n as usize);
        let mut port = config.port;
        let mut next = first;
        while listeners.len() < n as usize {
            let ip = Ipv4Addr::from(next);
            next = next.checked_add(1).ok_or(SimError::AddressRange {
                meters: n,
                base: config.base_address,
            })?;
            if next > u32::from(Ipv4Addr::new(127, 255, 255, 255)) + 1 {
                return Err(SimError::AddressRange {
                    meters: n,
                    base: config.base_address,
                });
            }
            let addr = SocketAddr::V4(SocketAddrV4::new(ip, port));
            match bind(addr) {
                Ok(l) => {
                    if port == 0 {
                        port = l
                            .local_addr()
                            .map_err(|source| SimError::Bind { addr, source })?
                            .port();
                    }
                    listeners.push(l);
                    endpoints.push(ip);
                }
                // Some systems refuse the .0 and .255 host parts: skip those only.
                Err(_) if matches!(ip.octets()[3], 0 | 255) => continue,
                Err(source) => return Err(SimError::Bind { addr, source }),
            }
        }

        Ok(Self::assemble(config, endpoints, port, listeners, t0))
    }

    fn assemble(
        config: FleetConfig,
        endpoints: Vec<Ipv4Addr>,
        port: u16,
        listeners: Vec<TcpListener>,
        t0: Instant,
    ) -> FleetHandle {
        let n = config.meters;
        let (stop, shutdown) = watch::channel(false);
        let pushing = config.push_to.is_some();
        let (push_tx, push_rx) = if pushing {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let shared = Arc::new(Shared {
            meters: (0..n).map(|_| Mutex::new(None)).collect(),
            config,
            endpoints,
            port,
            started_at: Utc::now(),
            push: push_tx,
            shutdown,
        });
        let mut tasks = JoinSet::new();
        // One accept task per shard of listeners, not per meter: a task costs more memory than
        // an idle meter should.
        let mut shard = Vec::with_capacity(ACCEPT_SHARD);
        for (index, listener) in listeners.into_iter().enumerate() {
            shard.push((index as u32, listener));
            if shard.len() == ACCEPT_SHARD {
                let full = std::mem::replace(&mut shard, Vec::with_capacity(ACCEPT_SHARD));
                tasks.spawn(accept_shard(shared.clone(), full));
            }
        }
        if !shard.is_empty() {
            tasks.spawn(accept_shard(shared.clone(), shard));
        }
        if let (Some(rx), Some(target)) = (push_rx, shared.config.push_to) {
            tasks.spawn(crate::push::run_pusher(shared.clone(), target, rx));
            tasks.spawn(crate::push::watch_schedule(shared.clone()));
        }
        FleetHandle {
            shared,
            tasks,
            stop,
            start_time: t0.elapsed(),
        }
    }
}

/// Raises the soft open-file limit as far as the hard limit allows; errors when that is too low
/// for `meters` listeners plus room for connections.
fn raise_open_file_limit(meters: u32) -> Result<(), SimError> {
    let needed = meters as u64 + 256;
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if limit != 0 && limit < needed {
        return Err(SimError::OpenFileLimit {
            meters,
            needed,
            limit,
        });
    }
    Ok(())
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // A small backlog: a meter serves one head-end at a time.
    socket.listen(8)
}

/// Listeners served by one accept task.
const ACCEPT_SHARD: usize = 64;

/// Accepts connections on a shard of meters' listeners; each connection gets its own task.
async fn accept_shard(shared: Arc<Shared>, listeners: Vec<(u32, TcpListener)>) {
    loop {
        std::future::poll_fn(|cx| {
            let mut failed = false;
            for (index, listener) in &listeners {
                loop {
                    match listener.poll_accept(cx) {
                        Poll::Ready(Ok((stream, _peer))) => {
                            tokio::spawn(crate::session::serve(shared.clone(), *index, stream));
                        }
                        Poll::Ready(Err(e)) => {
                            tracing::warn!(meter = index, error = %e, "accept failed");
                            failed = true;
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
            }
            if failed {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        // Out of file descriptors or similar: back off before trying again.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl FleetHandle {
    pub fn meters(&self) -> u32 {
        self.shared.meter_count()
    }

    /// The TCP port every meter listens on.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// Where meter `index` listens.
    pub fn address(&self, index: u32) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(
            self.shared.endpoints[index as usize],
            self.shared.port,
        ))
    }

    /// Every meter's address, in meter order.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        (0..self.meters()).map(|i| self.address(i)).collect()
    }

    pub fn endpoint(&self, index: u32) -> Endpoint {
        Endpoint {
            address: self.shared.endpoints[index as usize],
            port: self.shared.port,
            transport: self.shared.config.transport,
        }
    }

    /// Meter `index`'s identity and secrets as they stand now (global keys rotated by a key
    /// transfer included).
    pub fn keys(&self, index: u32) -> MeterKeys {
        crate::keys::current(&self.shared, index)
    }

    pub fn config(&self) -> &FleetConfig {
        &self.shared.config
    }

    /// Raises an event on a meter now (logged, reflected in the ESW, pushed when alert-worthy).
    pub fn trigger_event(&self, index: u32, kind: EventKind) {
        crate::meter::trigger(&self.shared, index, kind, Utc::now());
    }

    /// Overrides fault `kind` on a meter: `Some` gives it that fault, `None` removes it
    /// (whatever `--faults` said).
    pub fn set_fault(&self, index: u32, kind: FaultKind, fault: Option<Fault>) {
        self.shared
            .state(index)
            .get_mut()
            .set_fault_override(kind, fault);
    }

    /// Powers meter `index` off now for `duration`: it stops answering (open connections are
    /// dropped), its block-load profile has no rows while it is off, events 101/102 are logged
    /// and last gasp / first breath alerts pushed.
    pub fn power_off(&self, index: u32, duration: Duration) {
        crate::meter::power_off(&self.shared, index, Utc::now(), duration);
    }

    /// Whether meter `index` has supply at `at` (scheduled outages, power-off faults and
    /// on-demand outages all count).
    pub fn powered_at(&self, index: u32, at: DateTime<Utc>) -> bool {
        let m = self
            .shared
            .peek(index, |s| crate::meter::model(&self.shared, index, s));
        m.powered_at(at.timestamp())
    }

    /// Clones a view of the meter's object model, to call it in memory (without a socket).
    pub fn objects(&self, index: u32) -> crate::objects::MeterObjects {
        crate::objects::MeterObjects::new(self.shared.clone(), index)
    }

    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops serving: closes every listener and connection.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for FleetHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
    }
}

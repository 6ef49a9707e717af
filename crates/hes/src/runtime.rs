//! The head-end at run time ([`HeadEnd`]): the registry of meters with their (unsealed, in memory
//! only) credentials, the session gate (one session at a time per meter, a global limit on open
//! sessions), the clock-drift check every session makes, the group commit that makes each
//! session's results durable in one store transaction, and the outbox relay that hands them to
//! the bus. Collection ([`crate::collect`]), alarms ([`crate::push`]) and commands
//! ([`crate::commands`]) are built on [`HeadEnd::run_session`].

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bus::{Bus, Envelope};
use chrono::{DateTime, Utc};
use dlms::ObisCode;
use dlms::association::client::ClientSecurityState;
use model::{HesMessage, MeterSerial, NetworkChangeKind};
use serde::{Deserialize, Serialize};
use store::{GapChange, MeterRecord, OutboxMessage, Outcome, RegistryChange, SessionCommit, Store};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use crate::credentials::{MeterCredentials, Role};
use crate::keystore::{self, ImportedMeter, MasterKey, MasterKeySource};
use crate::metrics::Metrics;
use crate::operations::{self, ProfileLayout};
use crate::plan::{FailureKind, RetryPolicy, ScheduleConfigs, WallClock, delta};
use crate::session::{Session, SessionConfig, SessionError, Transport};

/// How the head-end runs. Every field has a default, so `urja up` needs no configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HesConfig {
    /// Sessions open at once, over all meters.
    pub concurrency: usize,
    /// Longest wait to connect and for each response.
    #[serde(with = "crate::plan::duration")]
    pub response_timeout: Duration,
    /// Longest time one operation (a GET with all its blocks) may take.
    #[serde(with = "crate::plan::duration")]
    pub operation_timeout: Duration,
    /// A meter clock further off than this is set to the head-end's time (use case 10).
    #[serde(with = "crate::plan::duration")]
    pub clock_drift_threshold: Duration,
    /// A meter with no successful session for this long is reported silent.
    #[serde(with = "crate::plan::duration")]
    pub silent_after: Duration,
    /// Which association each kind of job uses (least privilege that works).
    pub roles: JobRoles,
    pub schedule: ScheduleConfigs,
    pub retry: RetryPolicy,
    /// Re-reads of a gap before it is given up and reported.
    pub gap_attempts: u32,
    /// Delivered outbox messages are kept this long (for inspection), then deleted.
    #[serde(with = "crate::plan::duration")]
    pub outbox_retention: Duration,
    /// Session attempt records (the failure reports' source) are kept this long.
    #[serde(with = "crate::plan::duration")]
    pub attempt_retention: Duration,
    /// How often the running collector looks for meters another process (`urja import`)
    /// added to the store, and takes them into service.
    #[serde(with = "crate::plan::duration")]
    pub registry_refresh: Duration,
}

impl Default for HesConfig {
    fn default() -> Self {
        HesConfig {
            concurrency: 256,
            response_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(120),
            clock_drift_threshold: Duration::from_secs(30),
            silent_after: Duration::from_secs(24 * 3600),
            roles: JobRoles::default(),
            schedule: ScheduleConfigs::default(),
            retry: RetryPolicy::default(),
            gap_attempts: 3,
            outbox_retention: Duration::from_secs(7 * 24 * 3600),
            attempt_retention: Duration::from_secs(90 * 24 * 3600),
            registry_refresh: Duration::from_secs(60),
        }
    }
}

/// The association per kind of job. Reading defaults to utility settings because it is the
/// lowest IS 15959 association that is ciphered (the meter reader's LLS association would carry
/// consumers' readings and its password in clear); where the network is private, `reading` may
/// be set to the meter reader.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct JobRoles {
    pub reading: RoleName,
    pub ping: RoleName,
    pub configuration: RoleName,
    pub firmware: RoleName,
}

impl Default for JobRoles {
    fn default() -> Self {
        JobRoles {
            reading: RoleName::UtilitySettings,
            ping: RoleName::Public,
            configuration: RoleName::UtilitySettings,
            firmware: RoleName::Firmware,
        }
    }
}

/// [`Role`] as it is written in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleName {
    Public,
    MeterReader,
    UtilitySettings,
    Firmware,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Role {
        match r {
            RoleName::Public => Role::Public,
            RoleName::MeterReader => Role::MeterReader,
            RoleName::UtilitySettings => Role::UtilitySettings,
            RoleName::Firmware => Role::Firmware,
        }
    }
}

/// Why the head-end could not start or do what was asked (not a meter's failure: those are
/// [`JobError`]s and are recorded).
#[derive(Debug, thiserror::Error)]
pub enum HesError {
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("key store: {0}")]
    KeyStore(#[from] keystore::KeyStoreError),
    #[error("unknown meter {0}")]
    UnknownMeter(MeterSerial),
    #[error("meter {meter}: address {address:?} is not an IP address and port")]
    BadAddress { meter: MeterSerial, address: String },
    #[error("the store was closed")]
    StoreClosed,
}

/// A meter's job failed. Recorded in the store as an attempt before it is returned.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("unknown meter {0}")]
    UnknownMeter(MeterSerial),
    #[error("{0}")]
    Session(#[from] SessionError),
    #[error("the job's results could not be stored: {0}")]
    Store(String),
}

impl JobError {
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            JobError::Session(e) => FailureKind::of(e),
            _ => FailureKind::Other,
        }
    }
}

/// What the head-end keeps about a meter between sessions. Guarded by the meter's session lock:
/// whoever holds it is the only one talking to the meter.
#[derive(Debug, Default)]
pub struct MeterLive {
    /// Invocation counters; advanced past every counter used, whether or not a session worked.
    pub counters: ClientSecurityState,
    /// Profile layouts (capture objects and scalers) read once per profile.
    pub layouts: HashMap<ObisCode, ProfileLayout>,
    /// The block-load capture period, read once.
    pub block_load_period: Option<chrono::TimeDelta>,
}

/// One meter in the head-end's registry.
#[derive(Debug)]
pub struct MeterEntry {
    pub serial: MeterSerial,
    record: RwLock<MeterRecord>,
    credentials: RwLock<Arc<MeterCredentials>>,
    live: tokio::sync::Mutex<MeterLive>,
}

impl MeterEntry {
    pub fn record(&self) -> MeterRecord {
        read(&self.record).clone()
    }

    pub fn credentials(&self) -> Arc<MeterCredentials> {
        read(&self.credentials).clone()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// What a job collects while its session is open; committed in one transaction with the
/// session's attempt record once the session ends well.
#[derive(Debug, Default)]
pub struct JobOutput {
    pub messages: Vec<HesMessage>,
    pub cursors: Vec<(String, DateTime<Utc>)>,
    pub gaps: Vec<GapChange>,
}

impl JobOutput {
    pub fn publish(&mut self, message: HesMessage) {
        self.messages.push(message);
    }
}

/// An open session handed to a job, with the meter's memory and the job's output.
#[derive(Debug)]
pub struct JobContext<'a> {
    pub session: &'a mut Session,
    pub live: &'a mut MeterLive,
    pub output: &'a mut JobOutput,
    pub serial: &'a MeterSerial,
    pub credentials: &'a MeterCredentials,
    /// The head-end's time when the session was opened.
    pub now: DateTime<Utc>,
    /// Meter clock minus head-end clock, as read at the start of the session.
    pub clock_drift: chrono::Duration,
}

impl JobContext<'_> {
    /// The layout of a profile, read from the meter the first time and kept.
    pub async fn layout(&mut self, profile: ObisCode) -> Result<ProfileLayout, SessionError> {
        if let Some(l) = self.live.layouts.get(&profile) {
            return Ok(l.clone());
        }
        let layout = operations::read_profile_layout(self.session, profile).await?;
        self.live.layouts.insert(profile, layout.clone());
        Ok(layout)
    }
}

impl JobContext<'_> {
    /// Reads, in as few requests as the meter allows, the layouts of `profiles` not read
    /// before, so a job that needs several (first contact) does not ask for each on its own.
    /// A layout the meter refuses is left to [`JobContext::layout`], which reports it where
    /// it is needed.
    pub async fn prefetch_layouts(&mut self, profiles: &[ObisCode]) -> Result<(), SessionError> {
        let mut missing: Vec<ObisCode> = Vec::with_capacity(profiles.len());
        for p in profiles {
            if !self.live.layouts.contains_key(p) && !missing.contains(p) {
                missing.push(*p);
            }
        }
        if missing.len() < 2 {
            return Ok(());
        }
        match operations::read_profile_layouts(self.session, &missing).await {
            Ok(layouts) => {
                for layout in layouts {
                    self.live.layouts.insert(layout.profile, layout);
                }
                Ok(())
            }
            Err(SessionError::Refused(_) | SessionError::Unexpected(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The future a job returns.
pub type JobFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SessionError>> + Send + 'a>>;

/// A job's result after its session, with what was made durable.
#[derive(Debug)]
pub struct JobDone<T> {
    pub value: T,
    pub messages: usize,
    pub clock_drift: chrono::Duration,
}

/// A commit for the store writer, with the messages of its outbox (in the same order) as the
/// relay will publish them, and where to answer.
struct CommitRequest {
    commit: SessionCommit,
    envelopes: Vec<Arc<Envelope>>,
    reply: oneshot::Sender<Result<(), String>>,
}

/// Messages a session commit wrote to the outbox, kept in memory by outbox key until the relay
/// has delivered them, so the relay publishes them without reading and decoding the stored
/// payload. An entry is added only for a message the commit actually wrote (not one whose key
/// was already there), in the store's lock, so the relay never sees the row without it; what is
/// not here (other writers, a restart, a full cache) is read back from the store.
#[derive(Debug, Default)]
struct RelayCache {
    messages: std::sync::Mutex<HashMap<String, Arc<Envelope>>>,
}

type StoreRead = Box<dyn FnOnce(&Store) + Send>;

/// Runs the short store reads of sessions (a meter's cursors and gaps before a collection)
/// off the async workers, many to one blocking thread: the store has one connection, so a
/// blocking thread per read only made hundreds of threads wait for it (each with its own
/// allocator heap, stack and context switches). Cheap to clone.
#[derive(Debug, Clone)]
pub struct StoreReader {
    reads: mpsc::Sender<StoreRead>,
}

impl StoreReader {
    /// Starts the reader of `store` (on the current tokio runtime).
    fn start(store: Store) -> StoreReader {
        const MAX_BATCH: usize = 256;
        let (reads, mut rx) = mpsc::channel::<StoreRead>(4096);
        tokio::spawn(async move {
            let mut batch: Vec<StoreRead> = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (store, reads) = (store.clone(), std::mem::take(&mut batch));
                // A read that panics drops the rest of its batch: their callers see the
                // reader gone (`HesError::StoreClosed`) and the reader goes on.
                let _ = tokio::task::spawn_blocking(move || {
                    for read in reads {
                        read(&store);
                    }
                })
                .await;
            }
        });
        StoreReader { reads }
    }

    /// Runs `read` on the store and returns what it returns.
    pub async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Result<T, HesError> {
        let (tx, rx) = oneshot::channel();
        self.reads
            .send(Box::new(move |store: &Store| {
                let _ = tx.send(read(store));
            }))
            .await
            .map_err(|_| HesError::StoreClosed)?;
        rx.await.map_err(|_| HesError::StoreClosed)
    }
}

/// Messages held for the relay at most; beyond that (a bus that does not keep up) they are read
/// back from the store.
const RELAY_CACHE_MAX: usize = 4096;

impl RelayCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Envelope>>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the envelopes whose flag in `written` is set.
    fn keep_written(&self, envelopes: &[Arc<Envelope>], written: &[bool]) {
        let mut messages = self.lock();
        for (envelope, _) in envelopes.iter().zip(written).filter(|(_, w)| **w) {
            if messages.len() >= RELAY_CACHE_MAX {
                break;
            }
            messages.insert(envelope.key.clone(), envelope.clone());
        }
    }
}

struct Inner {
    config: HesConfig,
    store: Store,
    bus: Bus,
    clock: WallClock,
    master: MasterKey,
    meters: RwLock<HashMap<MeterSerial, Arc<MeterEntry>>>,
    by_system_title: RwLock<HashMap<[u8; 8], MeterSerial>>,
    gate: Semaphore,
    commits: mpsc::Sender<CommitRequest>,
    outbox_ready: Arc<Notify>,
    relay_cache: Arc<RelayCache>,
    reader: StoreReader,
    metrics: Metrics,
}

/// The head-end. Cheap to clone.
#[derive(Clone)]
pub struct HeadEnd {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HeadEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadEnd")
            .field("meters", &read(&self.inner.meters).len())
            .finish()
    }
}

/// Where the head-end keeps its files.
#[derive(Debug, Clone)]
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn store_path(&self) -> PathBuf {
        self.0.join("urja.sqlite")
    }
}

/// Settings key of the master key's fingerprint.
const MASTER_KEY_FINGERPRINT: &str = "hes.master_key_fingerprint";

impl HeadEnd {
    /// Opens the store in `data_dir`, loads (or creates) the master key, refuses a master key
    /// that does not match the one the keys were sealed with, and loads the registry. Also says
    /// where the master key came from (a freshly generated one must be backed up).
    pub async fn open(
        data_dir: &DataDir,
        config: HesConfig,
        bus: Bus,
        clock: WallClock,
    ) -> Result<(HeadEnd, MasterKeySource), HesError> {
        let (master, source) = MasterKey::load(&data_dir.0)?;
        let store = Store::open(data_dir.store_path())?;
        let fingerprint = master.fingerprint();
        match store.setting(MASTER_KEY_FINGERPRINT)? {
            Some(stored) => master.verify_fingerprint(Some(&stored))?,
            None => store.put_setting(MASTER_KEY_FINGERPRINT, &fingerprint)?,
        }
        Ok((Self::with_store(store, master, config, bus, clock)?, source))
    }

    /// A head-end over an open store and master key (tests, benchmarks).
    pub fn with_store(
        store: Store,
        master: MasterKey,
        config: HesConfig,
        bus: Bus,
        clock: WallClock,
    ) -> Result<HeadEnd, HesError> {
        let (commits, commit_rx) = mpsc::channel(4096);
        let outbox_ready = Arc::new(Notify::new());
        let relay_cache = Arc::new(RelayCache::default());
        let inner = Arc::new(Inner {
            gate: Semaphore::new(config.concurrency.max(1)),
            config,
            store: store.clone(),
            bus,
            clock,
            master,
            meters: RwLock::new(HashMap::new()),
            by_system_title: RwLock::new(HashMap::new()),
            commits,
            outbox_ready: outbox_ready.clone(),
            relay_cache: relay_cache.clone(),
            reader: StoreReader::start(store.clone()),
            metrics: Metrics::default(),
        });
        let head_end = HeadEnd { inner };
        head_end.load_registry()?;
        tokio::spawn(group_commit(store, commit_rx, outbox_ready, relay_cache));
        Ok(head_end)
    }

    /// Takes into service the meters recorded in the store (by another process: `urja
    /// import`) since the registry was loaded, and returns them. Nothing is read beyond a count
    /// when there are none.
    pub fn take_new_meters(&self) -> Result<Vec<Arc<MeterEntry>>, HesError> {
        let store = &self.inner.store;
        let known = read(&self.inner.meters).len() as u64;
        if store.meter_count()? <= known {
            return Ok(Vec::new());
        }
        let keys: HashMap<MeterSerial, (u32, Vec<u8>)> = store
            .all_active_keys()?
            .into_iter()
            .map(|(m, v, k)| (m, (v, k)))
            .collect();
        let counters: HashMap<MeterSerial, u32> =
            store.all_invocation_counters()?.into_iter().collect();
        let mut added = Vec::new();
        for record in store.meters()? {
            if read(&self.inner.meters).contains_key(&record.serial) {
                continue;
            }
            let Some((version, sealed)) = keys.get(&record.serial) else {
                continue;
            };
            let credentials = keystore::open(&self.inner.master, &record.serial, *version, sealed)?;
            let counter = counters.get(&record.serial).copied();
            let title = record.system_title;
            let entry = Arc::new(entry(record, credentials, counter));
            write(&self.inner.by_system_title).insert(title, entry.serial.clone());
            write(&self.inner.meters).insert(entry.serial.clone(), entry.clone());
            added.push(entry);
        }
        added.sort_by(|a, b| a.serial.cmp(&b.serial));
        Ok(added)
    }

    fn load_registry(&self) -> Result<(), HesError> {
        let store = &self.inner.store;
        let keys: HashMap<MeterSerial, (u32, Vec<u8>)> = store
            .all_active_keys()?
            .into_iter()
            .map(|(m, v, k)| (m, (v, k)))
            .collect();
        let counters: HashMap<MeterSerial, u32> =
            store.all_invocation_counters()?.into_iter().collect();
        let mut meters = HashMap::new();
        let mut titles = HashMap::new();
        for record in store.meters()? {
            let Some((version, sealed)) = keys.get(&record.serial) else {
                tracing::warn!(meter = %record.serial, "meter has no keys; skipped");
                continue;
            };
            let credentials = keystore::open(&self.inner.master, &record.serial, *version, sealed)?;
            let counters = counters.get(&record.serial).copied();
            titles.insert(record.system_title, record.serial.clone());
            meters.insert(
                record.serial.clone(),
                Arc::new(entry(record, credentials, counters)),
            );
        }
        *write(&self.inner.meters) = meters;
        *write(&self.inner.by_system_title) = titles;
        Ok(())
    }

    pub fn config(&self) -> &HesConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Short store reads for sessions, batched off the async workers.
    pub fn store_reader(&self) -> &StoreReader {
        &self.inner.reader
    }

    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    pub fn clock(&self) -> &WallClock {
        &self.inner.clock
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.inner.master
    }

    /// Every meter, in serial order.
    pub fn meters(&self) -> Vec<Arc<MeterEntry>> {
        let mut all: Vec<_> = read(&self.inner.meters).values().cloned().collect();
        all.sort_by(|a, b| a.serial.cmp(&b.serial));
        all
    }

    pub fn meter(&self, serial: &MeterSerial) -> Option<Arc<MeterEntry>> {
        read(&self.inner.meters).get(serial).cloned()
    }

    /// The meter with this system title (how a pushed notification names its sender).
    pub fn meter_by_system_title(&self, title: &[u8; 8]) -> Option<Arc<MeterEntry>> {
        let serial = read(&self.inner.by_system_title).get(title).cloned()?;
        self.meter(&serial)
    }

    /// Imports meters and their keys: seals the keys under the master key, records each meter
    /// (new, moved, updated or unchanged), publishes a network change for new and moved meters,
    /// and takes them into service.
    pub async fn import(&self, meters: Vec<ImportedMeter>) -> Result<ImportReport, HesError> {
        let now = self.inner.clock.now();
        let mut report = ImportReport::default();
        let announce = announcer(now);
        for m in meters {
            let (transport, server_address) = match m.transport {
                Transport::Wrapper => ("wrapper", m.server_address),
                Transport::Hdlc { physical_address } => ("hdlc", physical_address),
            };
            let record = MeterRecord {
                serial: m.serial.clone(),
                kind: m.kind.as_str().to_string(),
                host: m.host.clone(),
                port: m.port,
                transport: transport.to_string(),
                server_address,
                dcu: m.dcu.clone(),
                group: m.group.clone(),
                system_title: m.credentials.system_title,
            };
            // The same keys again keep their sealed blob (sealing is randomised), so a
            // re-import is recognised as unchanged; different keys become a new version.
            let master = &self.inner.master;
            let sealed = match self.inner.store.active_keys(&m.serial)? {
                Some((v, blob))
                    if keystore::open(master, &m.serial, v, &blob)
                        .is_ok_and(|c| c == m.credentials) =>
                {
                    blob
                }
                _ => {
                    let version = self.inner.store.next_key_version(&m.serial)?;
                    keystore::seal(master, &m.serial, version, &m.credentials)?
                }
            };
            let change = self
                .inner
                .store
                .import_meter(&record, &sealed, now, &announce)?;
            match &change {
                RegistryChange::New => report.new += 1,
                RegistryChange::Moved { .. } => report.moved += 1,
                RegistryChange::Updated => report.updated += 1,
                RegistryChange::Unchanged => report.unchanged += 1,
            }
            self.install(record, m.credentials)?;
        }
        if report.new + report.moved > 0 {
            self.outbox_written();
        }
        Ok(report)
    }

    /// Puts a meter into (or back into) service with these credentials.
    fn install(&self, record: MeterRecord, credentials: MeterCredentials) -> Result<(), HesError> {
        let serial = record.serial.clone();
        write(&self.inner.by_system_title).insert(record.system_title, serial.clone());
        let existing = self.meter(&serial);
        match existing {
            Some(e) => {
                *write(&e.record) = record;
                *write(&e.credentials) = Arc::new(credentials);
            }
            None => {
                // An unreadable counter must stop the import: resuming at 1 could reuse a
                // GCM nonce the meter has seen.
                let counters = self.inner.store.invocation_counter(&serial)?;
                write(&self.inner.meters)
                    .insert(serial, Arc::new(entry(record, credentials, counters)));
            }
        }
        Ok(())
    }

    /// Wakes the outbox relay after messages were written to the outbox outside a session
    /// commit (e.g. a command's final transition).
    pub fn outbox_written(&self) {
        self.inner.outbox_ready.notify_one();
    }

    /// Replaces a meter's credentials in memory after a key rotation the store has recorded.
    pub fn replace_credentials(&self, serial: &MeterSerial, credentials: MeterCredentials) {
        if let Some(e) = self.meter(serial) {
            *write(&e.credentials) = Arc::new(credentials);
        }
    }

    /// Records a meter seen at `host:port` (e.g. a push from a new address): a moved meter is
    /// updated and reported as a network change.
    pub async fn observe_address(&self, serial: &MeterSerial, host: &str) -> Result<(), HesError> {
        let Some(entry) = self.meter(serial) else {
            return Err(HesError::UnknownMeter(serial.clone()));
        };
        let mut record = entry.record();
        if record.host == host {
            return Ok(());
        }
        record.host = host.to_string();
        let now = self.inner.clock.now();
        // Called from the push listener: keep the SQLite write off the async workers.
        let (store, moved) = (self.inner.store.clone(), record.clone());
        let change =
            tokio::task::spawn_blocking(move || store.upsert_meter(&moved, now, &announcer(now)))
                .await
                .map_err(|_| HesError::StoreClosed)??;
        if matches!(change, RegistryChange::Moved { .. }) {
            self.outbox_written();
        }
        *write(&entry.record) = record;
        Ok(())
    }

    /// Runs one job on one meter: waits for the meter to be free and for a session slot, opens
    /// the association `role`, checks the clock (and corrects it beyond the threshold when the
    /// role may), runs `job`, releases, and commits the job's output with the attempt record in
    /// one transaction. A failure is recorded too, with nothing of the job's output.
    ///
    /// `attempt` is 1 for a first try; retries pass the attempt number they are.
    pub async fn run_session<T, F>(
        &self,
        serial: &MeterSerial,
        job: &str,
        role: Role,
        attempt: u32,
        work: F,
    ) -> Result<JobDone<T>, JobError>
    where
        T: Send,
        F: for<'a> FnOnce(&'a mut JobContext<'_>) -> JobFuture<'a, T> + Send,
    {
        let Some(entry) = self.meter(serial) else {
            return Err(JobError::UnknownMeter(serial.clone()));
        };
        let mut live = entry.live.lock().await;
        let _permit = self
            .inner
            .gate
            .acquire()
            .await
            .map_err(|_| JobError::Store("head-end stopped".into()))?;
        let started_at = self.inner.clock.now();
        let t0 = tokio::time::Instant::now();
        let credentials = entry.credentials();
        let config = match self.session_config(&entry.record(), role, &credentials) {
            Ok(c) => c,
            Err(e) => {
                return Err(JobError::Session(SessionError::Unexpected(e.to_string())));
            }
        };
        let mut output = JobOutput::default();
        let result = self
            .session_body(
                &config,
                role,
                serial,
                &credentials,
                &mut live,
                &mut output,
                work,
            )
            .await;
        let ended_at = self.inner.clock.now();
        let ok = result.is_ok();
        self.inner.metrics.record_session(
            job,
            ok,
            t0.elapsed(),
            result.as_ref().err().map(FailureKind::of),
        );
        // The clock finding stands even when the job failed after it.
        let relayed: Vec<HesMessage> = if ok {
            std::mem::take(&mut output.messages)
        } else {
            std::mem::take(&mut output.messages)
                .into_iter()
                .filter(|m| matches!(m, HesMessage::ClockDrift { .. }))
                .collect()
        };
        let (outbox, envelopes) = relayed.into_iter().map(outbox_entry).unzip();
        let commit = SessionCommit {
            meter: serial.clone(),
            invocation_counter: None,
            job: job.to_string(),
            attempt,
            started_at,
            ended_at,
            outcome: match &result {
                Ok(_) => Outcome::Ok,
                Err(e) => Outcome::Failed {
                    kind: FailureKind::of(e).as_str().to_string(),
                    detail: e.to_string(),
                },
            },
            contacted: ok,
            cursors: if ok {
                std::mem::take(&mut output.cursors)
            } else {
                Vec::new()
            },
            gaps: if ok {
                std::mem::take(&mut output.gaps)
            } else {
                Vec::new()
            },
            outbox,
        };
        let messages = commit.outbox.len();
        let counter = Some(live.counters.invocation_counter.peek());
        self.commit_with_counter(commit, envelopes, counter)
            .await
            .map_err(JobError::Store)?;
        drop(live);
        let (value, clock_drift) = result?;
        Ok(JobDone {
            value,
            messages,
            clock_drift,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn session_body<T, F>(
        &self,
        config: &SessionConfig,
        role: Role,
        serial: &MeterSerial,
        credentials: &MeterCredentials,
        live: &mut MeterLive,
        output: &mut JobOutput,
        work: F,
    ) -> Result<(T, chrono::Duration), SessionError>
    where
        F: for<'a> FnOnce(&'a mut JobContext<'_>) -> JobFuture<'a, T>,
    {
        let mut session = Session::open(config, &mut live.counters).await?;
        let result: Result<(T, chrono::Duration), SessionError> = async {
            let now = self.inner.clock.now();
            let meter_time = operations::read_clock(&mut session).await?;
            let drift = meter_time - now;
            let threshold = chrono::Duration::from_std(self.inner.config.clock_drift_threshold)
                .unwrap_or(chrono::Duration::MAX);
            if drift.abs() > threshold {
                let corrected = role == Role::UtilitySettings;
                if corrected {
                    operations::set_clock(&mut session, self.inner.clock.now()).await?;
                }
                output.publish(HesMessage::ClockDrift {
                    meter: serial.clone(),
                    at: now,
                    drift_s: drift.num_seconds(),
                    corrected,
                });
            }
            let mut ctx = JobContext {
                session: &mut session,
                live,
                output,
                serial,
                credentials,
                now,
                clock_drift: drift,
            };
            let value = work(&mut ctx).await?;
            Ok((value, drift))
        }
        .await;
        let released = session.release(&mut live.counters).await;
        let value = result?;
        // A failed release after a complete job loses nothing: the data is in hand.
        if let Err(e) = released {
            tracing::debug!(meter = %serial, error = %e, "release failed after a complete job");
        }
        Ok(value)
    }

    /// How to reach and associate with a meter: its address and framing from the registry, the
    /// association `role` with `credentials`, the configured timeouts.
    pub fn session_config(
        &self,
        record: &MeterRecord,
        role: Role,
        credentials: &MeterCredentials,
    ) -> Result<SessionConfig, HesError> {
        let address = format!("{}:{}", record.host, record.port)
            .parse()
            .map_err(|_| HesError::BadAddress {
                meter: record.serial.clone(),
                address: format!("{}:{}", record.host, record.port),
            })?;
        let transport = if record.transport == "hdlc" {
            Transport::Hdlc {
                physical_address: record.server_address,
            }
        } else {
            Transport::Wrapper
        };
        let mut config = SessionConfig::new(address, transport, role.client_config(credentials));
        if record.transport != "hdlc" {
            config.server_sap = record.server_address;
        }
        config.timeout = self.inner.config.response_timeout;
        config.operation_timeout = self.inner.config.operation_timeout;
        Ok(config)
    }

    /// Makes a commit durable (group commit with other sessions').
    pub async fn commit(&self, commit: SessionCommit) -> Result<(), String> {
        self.commit_with_counter(commit, Vec::new(), None).await
    }

    /// Makes a commit durable; `envelopes`, if not empty, are its outbox messages in order, kept
    /// for the relay.
    async fn commit_with_counter(
        &self,
        mut commit: SessionCommit,
        envelopes: Vec<Arc<Envelope>>,
        counter: Option<u32>,
    ) -> Result<(), String> {
        commit.invocation_counter = counter;
        let (reply, rx) = oneshot::channel();
        self.inner
            .commits
            .send(CommitRequest {
                commit,
                envelopes,
                reply,
            })
            .await
            .map_err(|_| "the head-end's store writer stopped".to_string())?;
        rx.await
            .map_err(|_| "the head-end's store writer stopped".to_string())?
    }

    /// Hands stored messages to the bus until `shutdown`; returns after a final pass. Messages
    /// stay in the outbox until every subscriber has acknowledged them, so a crash re-sends.
    pub async fn relay_outbox(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut housekeeping = tokio::time::interval(Duration::from_secs(3600));
        loop {
            let sent = self.relay_once().await;
            if sent == 0 {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = self.inner.outbox_ready.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = housekeeping.tick() => self.purge_old_records().await,
                }
            }
        }
        while self.relay_once().await > 0 {}
    }

    /// Deletes delivered outbox messages and attempt records older than their retention, so
    /// neither table grows without bound.
    async fn purge_old_records(&self) {
        let store = self.inner.store.clone();
        let now = self.inner.clock.now();
        let outbox_before = now - delta(self.inner.config.outbox_retention);
        let attempts_before = now - delta(self.inner.config.attempt_retention);
        let purged = tokio::task::spawn_blocking(move || {
            Ok::<_, store::StoreError>((
                store.purge_delivered(outbox_before)?,
                store.purge_attempts(attempts_before)?,
            ))
        })
        .await;
        match purged {
            Ok(Ok((messages, attempts))) => {
                tracing::debug!(messages, attempts, "purged old outbox and attempt records")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "purging old records failed"),
            Err(e) => tracing::warn!(error = %e, "purging old records failed"),
        }
    }

    /// One pass of the outbox relay: up to 512 messages. Returns how many were delivered.
    pub async fn relay_once(&self) -> usize {
        let store = self.inner.store.clone();
        let cache = self.inner.relay_cache.clone();
        let rows = match tokio::task::spawn_blocking(move || {
            store.outbox_pending_lazy(512, |key| !cache.lock().contains_key(key))
        })
        .await
        {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "reading the outbox failed");
                return 0;
            }
            Err(_) => return 0,
        };
        if rows.is_empty() {
            return 0;
        }
        let envelopes: Vec<(i64, Arc<Envelope>)> = {
            let cached = self.inner.relay_cache.lock();
            rows.into_iter()
                .filter_map(|row| match row.payload {
                    // Held since its commit: the very message that was stored.
                    None => match cached.get(&row.key) {
                        Some(envelope) => Some((row.seq, envelope.clone())),
                        // Gone since the row was read (another relay pass delivered it); the
                        // row, if still pending, is read back next time.
                        None => None,
                    },
                    Some(payload) => match serde_json::from_slice::<HesMessage>(&payload) {
                        Ok(message) => Some((
                            row.seq,
                            Arc::new(Envelope {
                                key: row.key,
                                message,
                            }),
                        )),
                        Err(e) => {
                            // Written by us, so this is a bug; keep the row for a person to see.
                            tracing::error!(seq = row.seq, error = %e, "undecodable outbox message");
                            None
                        }
                    },
                })
                .collect()
        };
        let bus = self.inner.bus.clone();
        let publishes = envelopes.into_iter().map(|(seq, envelope)| {
            let bus = bus.clone();
            async move {
                bus.publish(envelope.clone())
                    .await
                    .ok()
                    .map(|_| (seq, envelope))
            }
        });
        let delivered: Vec<(i64, Arc<Envelope>)> = futures::future::join_all(publishes)
            .await
            .into_iter()
            .flatten()
            .collect();
        let n = delivered.len();
        let seqs: Vec<i64> = delivered.iter().map(|(seq, _)| *seq).collect();
        let store = self.inner.store.clone();
        let now = self.inner.clock.now();
        match tokio::task::spawn_blocking(move || store.outbox_delivered(&seqs, now)).await {
            Ok(Ok(())) => {
                let mut cached = self.inner.relay_cache.lock();
                for (_, envelope) in &delivered {
                    cached.remove(&envelope.key);
                }
                n
            }
            _ => 0,
        }
    }
}

fn entry(record: MeterRecord, credentials: MeterCredentials, counter: Option<u32>) -> MeterEntry {
    let live = MeterLive {
        counters: ClientSecurityState::new(resume_counter(counter), None),
        layouts: HashMap::new(),
        block_load_period: None,
    };
    MeterEntry {
        serial: record.serial.clone(),
        record: RwLock::new(record),
        credentials: RwLock::new(Arc::new(credentials)),
        live: tokio::sync::Mutex::new(live),
    }
}

/// Counters a session may use between its start and its commit. After a restart the head-end
/// resumes this far past the last recorded counter, so a session whose commit was lost in a
/// crash cannot make it reuse a counter (a GCM nonce) the meter has seen.
const COUNTER_HEADROOM: u32 = 1 << 16;

fn resume_counter(stored: Option<u32>) -> u32 {
    stored.map_or(1, |c| c.saturating_add(COUNTER_HEADROOM))
}

/// Announces new and moved meters as network changes (use case 11), in the registry change's
/// own transaction.
fn announcer(at: DateTime<Utc>) -> impl Fn(&MeterRecord, &RegistryChange) -> Vec<OutboxMessage> {
    move |record, change| {
        network_change(record, change, at)
            .iter()
            .map(outbox_message)
            .collect()
    }
}

fn network_change(
    record: &MeterRecord,
    change: &RegistryChange,
    at: DateTime<Utc>,
) -> Option<HesMessage> {
    let address = format!("{}:{}", record.host, record.port);
    let change = match change {
        RegistryChange::New => NetworkChangeKind::New {
            address,
            dcu: record.dcu.clone(),
        },
        RegistryChange::Moved {
            from_host,
            from_port,
            from_dcu,
        } => NetworkChangeKind::Moved {
            from_address: format!("{from_host}:{from_port}"),
            to_address: address,
            from_dcu: from_dcu.clone(),
            to_dcu: record.dcu.clone(),
        },
        _ => return None,
    };
    Some(HesMessage::NetworkChange {
        meter: record.serial.clone(),
        at,
        change,
    })
}

/// The outbox row of a message.
pub fn outbox_message(message: &HesMessage) -> OutboxMessage {
    OutboxMessage {
        key: message.key(),
        kind: message.kind().to_string(),
        payload: payload(message),
    }
}

/// The outbox row of a message, and the message as the relay will publish it.
fn outbox_entry(message: HesMessage) -> (OutboxMessage, Arc<Envelope>) {
    let row = outbox_message(&message);
    let envelope = Arc::new(Envelope {
        key: row.key.clone(),
        message,
    });
    (row, envelope)
}

/// A message's JSON, written into a buffer about its size (readings run to tens of kilobytes,
/// which growing from empty would copy several times over).
fn payload(message: &HesMessage) -> Vec<u8> {
    let rows = match message {
        HesMessage::BlockLoad { intervals, .. } => intervals.len(),
        HesMessage::DailyProfile { days, .. } => days.len(),
        HesMessage::BillingProfile { readings, .. } => 4 * readings.len(),
        HesMessage::Events { events, .. } => events.len(),
        _ => 0,
    };
    let mut out = Vec::with_capacity(256 + 320 * rows);
    // Serialising our own plain data types cannot fail.
    match serde_json::to_writer(&mut out, message) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// How an import went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub new: usize,
    pub moved: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// The store writer: takes every commit waiting, writes them in one transaction (group commit),
/// answers each. A batch that fails is retried one by one so one bad commit fails alone.
async fn group_commit(
    store: Store,
    mut rx: mpsc::Receiver<CommitRequest>,
    outbox_ready: Arc<Notify>,
    relay_cache: Arc<RelayCache>,
) {
    const MAX_BATCH: usize = 512;
    let mut batch: Vec<CommitRequest> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut commits = Vec::with_capacity(batch.len());
        let mut envelopes = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for r in batch.drain(..) {
            // Only a commit whose envelopes match its outbox row for row can be held.
            let matched = r.envelopes.len() == r.commit.outbox.len();
            commits.push(r.commit);
            envelopes.push(if matched { r.envelopes } else { Vec::new() });
            replies.push(r.reply);
        }
        let store2 = store.clone();
        let cache = relay_cache.clone();
        let results = tokio::task::spawn_blocking(move || {
            // Which of the written messages are held; `written` lists every outbox message of
            // `commits` in order.
            let hold =
                |commits: &[SessionCommit], envelopes: &[Vec<Arc<Envelope>>], written: &[bool]| {
                    let mut at = 0;
                    for (c, e) in commits.iter().zip(envelopes) {
                        let n = c.outbox.len();
                        if let Some(w) = written.get(at..at + n).filter(|_| e.len() == n) {
                            cache.keep_written(e, w);
                        }
                        at += n;
                    }
                };
            match store2.commit_sessions_then(&commits, |w| hold(&commits, &envelopes, w)) {
                Ok(()) => vec![Ok(()); commits.len()],
                Err(_) => commits
                    .iter()
                    .zip(&envelopes)
                    .map(|(c, e)| {
                        let one = std::slice::from_ref(c);
                        store2
                            .commit_sessions_then(one, |w| hold(one, std::slice::from_ref(e), w))
                            .map_err(|e| e.to_string())
                    })
                    .collect(),
            }
        })
        .await
        .unwrap_or_else(|e| vec![Err(format!("store writer failed: {e}")); replies.len()]);
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
        outbox_ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::DailyReading;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn daily(meter: &MeterSerial, import_wh: i64) -> HesMessage {
        HesMessage::DailyProfile {
            meter: meter.clone(),
            days: vec![DailyReading {
                meter: meter.clone(),
                captured_at: at("2026-11-25T18:30:00Z"),
                import_wh,
                import_vah: import_wh + 1,
                export_wh: None,
                export_vah: None,
                quality: Vec::new(),
            }],
        }
    }

    fn session(meter: &MeterSerial, outbox: Vec<OutboxMessage>) -> SessionCommit {
        SessionCommit {
            meter: meter.clone(),
            job: "daily".into(),
            attempt: 1,
            started_at: at("2026-11-26T00:00:00Z"),
            ended_at: at("2026-11-26T00:00:02Z"),
            outcome: Outcome::Ok,
            contacted: true,
            cursors: Vec::new(),
            gaps: Vec::new(),
            outbox,
            invocation_counter: None,
        }
    }

    /// Publishes one relay pass, acknowledging every delivery; returns what was delivered.
    async fn relay(hes: &HeadEnd, sub: &mut bus::Subscription) -> Vec<HesMessage> {
        let pass = tokio::spawn({
            let hes = hes.clone();
            async move { hes.relay_once().await }
        });
        let mut got = Vec::new();
        while !pass.is_finished() {
            match sub.try_next() {
                Some(d) => {
                    got.push(d.envelope.message.clone());
                    d.ack();
                }
                None => tokio::task::yield_now().await,
            }
        }
        assert_eq!(pass.await.unwrap(), got.len());
        got
    }

    #[tokio::test]
    async fn the_relay_publishes_the_stored_message_of_each_key_from_memory_or_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
        let serial = MeterSerial::new("M-1").unwrap();
        let record = MeterRecord {
            serial: serial.clone(),
            kind: "single-phase".into(),
            host: "127.0.0.1".into(),
            port: 4059,
            transport: "wrapper".into(),
            server_address: 1,
            dcu: None,
            group: "default".into(),
            system_title: *b"URJ\0\0\0\0\x01",
        };
        store
            .upsert_meter(&record, at("2026-11-25T00:00:00Z"), &store::silently)
            .unwrap();
        let bus = Bus::in_process();
        let mut sub = bus.subscribe("test", &[], 16);
        let hes = HeadEnd::with_store(
            store.clone(),
            MasterKey::from_bytes([7; 32]),
            HesConfig::default(),
            bus,
            WallClock::system(),
        )
        .unwrap();

        // Two sessions report the same fact (same key) differently before the relay runs: the
        // first is stored, and it is what is published, once.
        let first = daily(&serial, 100);
        let second = daily(&serial, 999);
        assert_eq!(first.key(), second.key());
        for m in [first.clone(), second] {
            let (row, envelope) = outbox_entry(m);
            hes.commit_with_counter(session(&serial, vec![row]), vec![envelope], None)
                .await
                .unwrap();
        }
        assert_eq!(hes.inner.relay_cache.lock().len(), 1);
        let stored = store.outbox_pending(10).unwrap();
        assert_eq!(stored.len(), 1);
        let decoded: HesMessage = serde_json::from_slice(&stored[0].payload).unwrap();
        assert_eq!(decoded, first);
        assert_eq!(relay(&hes, &mut sub).await, vec![first.clone()]);
        assert!(hes.inner.relay_cache.lock().is_empty());
        assert_eq!(store.outbox_counts().unwrap(), (0, 1));

        // A message written without its envelope (another writer) is read back and decoded.
        let other = MeterSerial::new("M-2").unwrap();
        store
            .upsert_meter(
                &MeterRecord {
                    serial: other.clone(),
                    system_title: *b"URJ\0\0\0\0\x02",
                    ..record
                },
                at("2026-11-25T00:00:00Z"),
                &store::silently,
            )
            .unwrap();
        let third = daily(&other, 7);
        hes.commit(session(&other, vec![outbox_message(&third)]))
            .await
            .unwrap();
        assert!(hes.inner.relay_cache.lock().is_empty());
        assert_eq!(relay(&hes, &mut sub).await, vec![third]);
        assert_eq!(store.outbox_counts().unwrap(), (0, 2));
    }
}

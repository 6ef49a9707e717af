//! Commands with a lifecycle: what another part of Urja (prepaid, CIS, an operator) asks the
//! head-end to do to a meter, executed once and confirmed by reading back what the meter did.
//!
//! A command is identified by the caller's id. [`Commands::submit`] records it `queued` (with an
//! audit row) or, for an id already known, answers with the stored command without running it
//! again. A bounded pool of workers runs queued commands through [`HeadEnd::run_session`] (the
//! meter's lock, the global session gate, the clock check and the attempt record) with the
//! least-privilege association of the kind, retried by the head-end's [`RetryPolicy`] within the
//! command's deadline. Every state change (`queued → running → succeeded | failed | timed_out`)
//! writes an audit row; the final one writes the [`HesMessage::CommandResult`] to the outbox in
//! the same transaction.
//!
//! # Resuming after a restart ([`Commands::resume`])
//! - `queued` commands run as if just submitted (their deadline still counts from submission).
//! - A `running` command's outcome is unknown: the head-end may have stopped before or after
//!   the meter acted. It is run again when doing so leaves the meter as one run would:
//!   reads, ping, relay disconnect/reconnect, clock sync and configuration writes (calendar,
//!   load limit, capture period, billing date, payment mode) set or read a state, so twice is
//!   the same as once. A firmware upgrade is resumed by its own status: the version is read
//!   first and a meter already at the expected version is not sent the image again. A key
//!   rotation is resumed by finding out which keys the meter has: staged keys that open a
//!   session are activated; otherwise the rotation starts over from the keys in use.
//! - An MD reset is **not** repeated: each one closes a demand period, so a second would be a
//!   second reset. It is finished `failed` with a detail saying its outcome is unknown.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dlms::apdu::AttributeDescriptor;
use dlms::security::GlobalKeys;
use dlms::{Data, ObisCode};
use is15959::catalogue::obis;
use model::{
    CommandId, CommandKind, CommandOutcome, CommandRequest, CommandState, EventCategory,
    HesMessage, MeterSerial, RelayState,
};
use store::{AuditRow, CommandRecord, Inserted, Store, StoreError};
use tokio::sync::{Semaphore, watch};

use crate::credentials::{MeterCredentials, Role};
use crate::keystore;
use crate::operations;
use crate::plan::{FailureKind, Next, WallClock};
use crate::runtime::{HeadEnd, JobContext, JobError, JobFuture, outbox_message};
use crate::session::SessionError;

/// How commands are run.
#[derive(Debug, Clone)]
pub struct CommandsConfig {
    /// Commands executing at once (each holds at most one session; the head-end's own gate
    /// bounds sessions over all jobs).
    pub workers: usize,
    /// How long after submission a command may still start an attempt (default 10 min).
    pub deadline: Duration,
    /// The same for a firmware upgrade, whose transfer alone can take many minutes (1 h).
    pub firmware_deadline: Duration,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        CommandsConfig {
            workers: 64,
            deadline: Duration::from_secs(10 * 60),
            firmware_deadline: Duration::from_secs(60 * 60),
        }
    }
}

/// Why a command could not be accepted or looked up. (A meter's failure to carry out a
/// command is not an error here: it is the command's `failed` or `timed_out` outcome.)
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("unknown meter {0}")]
    UnknownMeter(MeterSerial),
    #[error("unknown command {0}")]
    UnknownCommand(CommandId),
    /// The id is already used by a command with another meter or another body.
    #[error("command id {0} is already used by a different command")]
    IdReused(CommandId),
    /// The request cannot be carried out whatever the meter does (out-of-range parameters).
    #[error("invalid command: {0}")]
    InvalidRequest(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A stored command that does not read back (written by another program version?).
    #[error("stored command {id}: {problem}")]
    Corrupt { id: String, problem: String },
    #[error("the head-end stopped: {0}")]
    Stopped(String),
}

/// A command as stored: where it is and, once final, its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandStatus {
    pub id: CommandId,
    pub meter: MeterSerial,
    /// [`CommandKind::name`].
    pub kind: String,
    pub batch: Option<String>,
    pub state: CommandState,
    /// Sessions tried so far.
    pub attempts: u32,
    pub outcome: Option<CommandOutcome>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub status: CommandStatus,
    /// `true`: a new command, now queued; `false`: the id was known and nothing new will run.
    pub created: bool,
}

/// A group command at a glance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchStatus {
    pub batch: String,
    pub queued: usize,
    pub running: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub timed_out: usize,
    /// One per meter, in submission order.
    pub commands: Vec<CommandStatus>,
}

impl BatchStatus {
    /// No command of the group is queued or running.
    pub fn is_final(&self) -> bool {
        self.queued == 0 && self.running == 0
    }
}

/// What [`Commands::resume`] found after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeReport {
    /// Queued commands handed to the workers.
    pub queued: usize,
    /// Running commands run again (or resumed) because that is safe for their kind.
    pub rerun: usize,
    /// Running commands finished without running again (outcome unknown, not repeatable).
    pub abandoned: usize,
}

/// The command executor. Cheap to clone.
#[derive(Clone)]
pub struct Commands {
    inner: Arc<Inner>,
}

struct Inner {
    head_end: HeadEnd,
    config: CommandsConfig,
    workers: Arc<Semaphore>,
    /// Commands handed to a worker and not yet final (never two workers on one command).
    in_flight: Mutex<HashSet<String>>,
    /// Bumped at every final transition; [`Commands::wait`] watches it.
    finished: watch::Sender<u64>,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// How a command ended, before it is stored.
struct Finish {
    state: CommandState,
    detail: String,
    relay: Option<RelayState>,
    read_back: Option<String>,
}

impl Finish {
    fn failed(detail: impl Into<String>) -> Self {
        Finish {
            state: CommandState::Failed,
            detail: detail.into(),
            relay: None,
            read_back: None,
        }
    }

    fn timed_out(detail: impl Into<String>) -> Self {
        Finish {
            state: CommandState::TimedOut,
            detail: detail.into(),
            relay: None,
            read_back: None,
        }
    }
}

/// What a session found, for the outcome. `confirmed` is false when the read-back contradicts
/// the request (the command then fails; it is not retried, since the meter answered).
struct Finding {
    confirmed: bool,
    detail: String,
    relay: Option<RelayState>,
    read_back: Option<String>,
}

impl Finding {
    fn confirmed(detail: String) -> Self {
        Finding {
            confirmed: true,
            detail,
            relay: None,
            read_back: None,
        }
    }

    fn checked(confirmed: bool, detail: String, read_back: String) -> Self {
        Finding {
            confirmed,
            detail,
            relay: None,
            read_back: Some(read_back),
        }
    }
}

impl From<Finding> for Finish {
    fn from(f: Finding) -> Self {
        Finish {
            state: if f.confirmed {
                CommandState::Succeeded
            } else {
                CommandState::Failed
            },
            detail: f.detail,
            relay: f.relay,
            read_back: f.read_back,
        }
    }
}

/// Why a series of attempts stopped without a result.
enum Stop {
    Failed(String),
    TimedOut(String),
}

impl From<Stop> for Finish {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Failed(d) => Finish::failed(d),
            Stop::TimedOut(d) => Finish::timed_out(d),
        }
    }
}

/// A command being executed.
struct Job {
    id: CommandId,
    meter: MeterSerial,
    kind: CommandKind,
    deadline: DateTime<Utc>,
    /// Sessions tried, over every phase.
    attempts: u32,
}

/// A clock read back after a sync may be this far from the head-end's (one-second clock
/// resolution plus the round trip).
const SYNC_TOLERANCE_S: i64 = 5;

/// Submits `kind` for `meter` as command `id` on behalf of `requested_by`; without a head-end
/// (`None`: a test or a deployment without meters) nothing is sent and that is logged.
pub async fn submit_if(
    commands: Option<&Commands>,
    id: String,
    meter: &MeterSerial,
    kind: CommandKind,
    requested_by: &str,
    batch: Option<String>,
) -> Result<(), CommandError> {
    let Some(commands) = commands else {
        tracing::warn!(id, "no head-end: command not sent");
        return Ok(());
    };
    commands
        .submit(CommandRequest {
            id: CommandId(id),
            meter: meter.clone(),
            kind,
            requested_by: requested_by.into(),
            batch,
        })
        .await?;
    Ok(())
}

impl Commands {
    /// An executor over `head_end`. Call [`Commands::resume`] once at start-up.
    pub fn new(head_end: HeadEnd, config: CommandsConfig) -> Self {
        let (finished, _) = watch::channel(0);
        Commands {
            inner: Arc::new(Inner {
                head_end,
                workers: Arc::new(Semaphore::new(config.workers.max(1))),
                config,
                in_flight: Mutex::new(HashSet::new()),
                finished,
            }),
        }
    }

    pub fn head_end(&self) -> &HeadEnd {
        &self.inner.head_end
    }

    /// Accepts a command: a new id is recorded `queued` and handed to the workers; a known id
    /// answers with the stored command (whatever its state) and runs nothing. The same id with
    /// another meter or body is [`CommandError::IdReused`].
    pub async fn submit(&self, request: CommandRequest) -> Result<Submitted, CommandError> {
        if self.inner.head_end.meter(&request.meter).is_none() {
            return Err(CommandError::UnknownMeter(request.meter));
        }
        validate(&request.kind)?;
        let now = self.inner.head_end.clock().now();
        let record = CommandRecord {
            id: request.id.0.clone(),
            meter: request.meter.clone(),
            batch: request.batch.clone(),
            kind: request.kind.name().to_string(),
            // Serialising our own plain data types cannot fail.
            request: serde_json::to_string(&request).unwrap_or_default(),
            state: CommandState::Queued.name().to_string(),
            created_at: now,
            updated_at: now,
            attempts: 0,
            result: None,
            requested_by: request.requested_by.clone(),
        };
        let inserted = {
            let record = record.clone();
            self.db(move |s| s.insert_command(&record)).await?
        };
        match inserted {
            Inserted::New => {
                self.spawn(record.clone());
                Ok(Submitted {
                    status: status_of(&record)?,
                    created: true,
                })
            }
            Inserted::Existing(stored) => {
                let same = stored_request(&stored)
                    .is_ok_and(|r| r.meter == request.meter && r.kind == request.kind);
                if !same {
                    return Err(CommandError::IdReused(request.id));
                }
                Ok(Submitted {
                    status: status_of(&stored)?,
                    created: false,
                })
            }
        }
    }

    /// One command of `kind` per meter, with ids `batch_id/serial`, all in batch `batch_id`.
    /// Every meter is checked first: an unknown meter refuses the whole group.
    pub async fn submit_group(
        &self,
        batch_id: &str,
        meters: &[MeterSerial],
        kind: CommandKind,
        requested_by: &str,
    ) -> Result<Vec<Submitted>, CommandError> {
        if let Some(unknown) = meters
            .iter()
            .find(|m| self.inner.head_end.meter(m).is_none())
        {
            return Err(CommandError::UnknownMeter(unknown.clone()));
        }
        validate(&kind)?;
        let mut submitted = Vec::with_capacity(meters.len());
        for meter in meters {
            let request = CommandRequest {
                id: CommandId(format!("{batch_id}/{meter}")),
                meter: meter.clone(),
                kind: kind.clone(),
                requested_by: requested_by.to_string(),
                batch: Some(batch_id.to_string()),
            };
            submitted.push(self.submit(request).await?);
        }
        Ok(submitted)
    }

    /// The stored command, if the id is known.
    pub async fn status(&self, id: &CommandId) -> Result<Option<CommandStatus>, CommandError> {
        let key = id.0.clone();
        let record = self.db(move |s| s.command(&key)).await?;
        record.as_ref().map(status_of).transpose()
    }

    /// The commands of a group, counted by state.
    pub async fn batch_status(&self, batch_id: &str) -> Result<BatchStatus, CommandError> {
        let key = batch_id.to_string();
        let records = self.db(move |s| s.batch_commands(&key)).await?;
        let mut status = BatchStatus {
            batch: batch_id.to_string(),
            ..BatchStatus::default()
        };
        for record in &records {
            let c = status_of(record)?;
            match c.state {
                CommandState::Queued => status.queued += 1,
                CommandState::Running => status.running += 1,
                CommandState::Succeeded => status.succeeded += 1,
                CommandState::Failed => status.failed += 1,
                CommandState::TimedOut => status.timed_out += 1,
            }
            status.commands.push(c);
        }
        Ok(status)
    }

    /// Every state the command went through, in order.
    pub async fn audit(&self, id: &CommandId) -> Result<Vec<AuditRow>, CommandError> {
        let key = id.0.clone();
        self.db(move |s| s.command_audit(&key)).await
    }

    /// Waits until the command is final and returns it.
    pub async fn wait(&self, id: &CommandId) -> Result<CommandStatus, CommandError> {
        let mut finished = self.inner.finished.subscribe();
        loop {
            finished.borrow_and_update();
            let status = self
                .status(id)
                .await?
                .ok_or_else(|| CommandError::UnknownCommand(id.clone()))?;
            if status.state.is_final() {
                return Ok(status);
            }
            finished
                .changed()
                .await
                .map_err(|_| CommandError::Stopped("the command executor stopped".into()))?;
        }
    }

    /// Waits until no command of the group is queued or running.
    pub async fn wait_batch(&self, batch_id: &str) -> Result<BatchStatus, CommandError> {
        let mut finished = self.inner.finished.subscribe();
        loop {
            finished.borrow_and_update();
            let status = self.batch_status(batch_id).await?;
            if status.is_final() {
                return Ok(status);
            }
            finished
                .changed()
                .await
                .map_err(|_| CommandError::Stopped("the command executor stopped".into()))?;
        }
    }

    /// Picks up the commands a previous run left unfinished (see the module documentation for
    /// which `running` commands run again). Commands this executor is already running are left
    /// alone.
    pub async fn resume(&self) -> Result<ResumeReport, CommandError> {
        let mut report = ResumeReport::default();
        let queued = self
            .db(|s| s.commands_in_state(CommandState::Queued.name()))
            .await?;
        for record in queued {
            if self.spawn(record) {
                report.queued += 1;
            }
        }
        let running = self
            .db(|s| s.commands_in_state(CommandState::Running.name()))
            .await?;
        for record in running {
            if self.is_in_flight(&record.id) {
                continue;
            }
            // An unreadable request is spawned too: the worker finishes it as failed.
            let safe = stored_request(&record).map_or(true, |r| rerun_is_safe(&r.kind));
            if safe {
                if self.spawn(record) {
                    report.rerun += 1;
                }
                continue;
            }
            let finish = Finish::failed(format!(
                "outcome unknown: the head-end stopped while the command ran; a {} is not \
                 repeated without knowing whether the meter carried it out",
                record.kind
            ));
            let id = CommandId(record.id.clone());
            self.finish(&id, &record.meter, &record.kind, record.attempts, finish)
                .await;
            report.abandoned += 1;
        }
        Ok(report)
    }

    fn is_in_flight(&self, id: &str) -> bool {
        lock(&self.inner.in_flight).contains(id)
    }

    /// Hands a stored command to a worker; `false` if one already has it.
    fn spawn(&self, record: CommandRecord) -> bool {
        if !lock(&self.inner.in_flight).insert(record.id.clone()) {
            return false;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let id = record.id.clone();
            this.run(record).await;
            lock(&this.inner.in_flight).remove(&id);
        });
        true
    }

    /// Executes one stored command to its final state.
    async fn run(&self, record: CommandRecord) {
        let id = CommandId(record.id.clone());
        let Ok(_permit) = self.inner.workers.clone().acquire_owned().await else {
            return;
        };
        let request = match stored_request(&record) {
            Ok(r) => r,
            Err(problem) => {
                let finish = Finish::failed(format!("the stored request does not read: {problem}"));
                self.finish(&id, &record.meter, &record.kind, record.attempts, finish)
                    .await;
                return;
            }
        };
        let allowed = match request.kind {
            CommandKind::FirmwareUpgrade { .. } => self.inner.config.firmware_deadline,
            _ => self.inner.config.deadline,
        };
        let deadline = record
            .created_at
            .checked_add_signed(crate::plan::delta(allowed))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut job = Job {
            id: id.clone(),
            meter: record.meter.clone(),
            kind: request.kind,
            deadline,
            attempts: record.attempts,
        };
        let finish = self.execute(&mut job).await;
        self.finish(&id, &job.meter, job.kind.name(), job.attempts, finish)
            .await;
    }

    /// Records the final state with its `CommandResult` message in one transaction.
    async fn finish(
        &self,
        id: &CommandId,
        meter: &MeterSerial,
        kind: &str,
        attempts: u32,
        finish: Finish,
    ) {
        let outcome = CommandOutcome {
            state: finish.state,
            detail: finish.detail,
            relay: finish.relay,
            read_back: finish.read_back,
            attempts,
            finished_at: self.inner.head_end.clock().now(),
        };
        let message = HesMessage::CommandResult {
            command: id.clone(),
            meter: meter.clone(),
            command_kind: kind.to_string(),
            outcome: outcome.clone(),
        };
        let outbox = outbox_message(&message);
        let result = serde_json::to_string(&outcome).unwrap_or_default();
        let key = id.0.clone();
        let written = self
            .db(move |s| {
                s.transition_command(
                    &key,
                    outcome.state.name(),
                    attempts,
                    Some(&result),
                    &outcome.detail,
                    outcome.finished_at,
                    std::slice::from_ref(&outbox),
                )
            })
            .await;
        match written {
            Ok(()) => self.inner.head_end.outbox_written(),
            // The command stays `running`; a restart resumes it by the rule above.
            Err(e) => tracing::error!(command = %id, error = %e, "final state not stored"),
        }
        self.inner.finished.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Records `running` for the next attempt.
    async fn running(&self, job: &Job, detail: String) -> Result<(), Stop> {
        let key = job.id.0.clone();
        let attempts = job.attempts;
        let at = self.inner.head_end.clock().now();
        self.db(move |s| {
            s.transition_command(
                &key,
                CommandState::Running.name(),
                attempts,
                None,
                &detail,
                at,
                &[],
            )
        })
        .await
        .map_err(|e| Stop::Failed(format!("the command's state could not be stored: {e}")))
    }

    async fn execute(&self, job: &mut Job) -> Finish {
        let roles = self.inner.head_end.config().roles;
        let role: Role = match &job.kind {
            CommandKind::Ping => roles.ping.into(),
            CommandKind::ReadInstantaneous
            | CommandKind::ReadBlockLoad { .. }
            | CommandKind::ReadDaily { .. }
            | CommandKind::ReadBilling { .. }
            | CommandKind::ReadEvents { .. } => roles.reading.into(),
            CommandKind::FirmwareUpgrade { .. } => roles.firmware.into(),
            CommandKind::RotateKeys => return self.rotate_keys(job).await,
            _ => roles.configuration.into(),
        };
        let image = match &job.kind {
            CommandKind::FirmwareUpgrade { image_path, .. } => {
                let path = image_path.clone();
                let read = tokio::task::spawn_blocking(move || std::fs::read(path))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
                match read {
                    Ok(bytes) => Some(Arc::new(bytes)),
                    Err(e) => {
                        return Finish::failed(format!(
                            "cannot read the firmware image {image_path}: {e}"
                        ));
                    }
                }
            }
            _ => None,
        };
        let work = Work {
            kind: job.kind.clone(),
            clock: *self.inner.head_end.clock(),
            deadline: job.deadline,
            image,
        };
        let phase = format!("command:{}", job.kind.name());
        let result = self
            .with_retries(job, &phase, role, || {
                let work = work.clone();
                job_fn(move |ctx| Box::pin(perform(ctx, work)))
            })
            .await;
        match result {
            Ok(finding) => finding.into(),
            Err(stop) => {
                if matches!(job.kind, CommandKind::Ping) {
                    let mut finish: Finish = stop.into();
                    finish.read_back = Some("dead".into());
                    finish
                } else {
                    stop.into()
                }
            }
        }
    }

    /// Runs sessions of `phase` with `role` until one succeeds, the retry policy gives up, or
    /// the next attempt would start after the command's deadline. `make` builds each attempt's
    /// work.
    async fn with_retries<T, M, F>(
        &self,
        job: &mut Job,
        phase: &str,
        role: Role,
        mut make: M,
    ) -> Result<T, Stop>
    where
        T: Send,
        M: FnMut() -> F,
        F: for<'a> FnOnce(&'a mut JobContext<'_>) -> JobFuture<'a, T> + Send,
    {
        let head_end = &self.inner.head_end;
        let clock = *head_end.clock();
        let policy = head_end.config().retry.clone();
        let first_at = clock.now();
        let mut attempt = 0u32;
        loop {
            let now = clock.now();
            if now > job.deadline {
                return Err(Stop::TimedOut(format!(
                    "deadline {} passed before the command could run",
                    job.deadline.to_rfc3339()
                )));
            }
            attempt += 1;
            job.attempts = job.attempts.saturating_add(1);
            self.running(
                job,
                format!("{phase}: attempt {attempt} with the {role:?} association"),
            )
            .await?;
            let result = head_end
                .run_session(&job.meter, phase, role, attempt, make())
                .await;
            let error = match result {
                Ok(done) => return Ok(done.value),
                Err(JobError::Session(e)) => e,
                Err(e) => return Err(Stop::Failed(e.to_string())),
            };
            let failed_at = clock.now();
            if failed_at > job.deadline {
                return Err(Stop::TimedOut(format!(
                    "attempt {attempt} failed after the deadline: {error}"
                )));
            }
            let kind = FailureKind::of(&error);
            match policy.next_after(kind, attempt, first_at, failed_at, &job.meter) {
                Next::RetryAt(at) if at <= job.deadline => {
                    tracing::debug!(command = %job.id, attempt, error = %error, "retrying");
                    clock.sleep_until(at).await;
                }
                Next::RetryAt(_) => {
                    return Err(Stop::TimedOut(format!(
                        "attempt {attempt} failed ({error}); the next would start after the \
                         deadline"
                    )));
                }
                Next::GiveUp(reason) => {
                    return Err(Stop::Failed(format!(
                        "gave up after attempt {attempt} ({reason}): {error}"
                    )));
                }
            }
        }
    }

    /// Key rotation: new random global keys, staged (sealed) in the store, sent wrapped under
    /// the meter's master key on the utility association, confirmed by a session with the new
    /// keys, then activated. If the confirmation fails, the old keys are tried to learn which
    /// keys the meter has, and the head-end keeps those.
    async fn rotate_keys(&self, job: &mut Job) -> Finish {
        let head_end = self.inner.head_end.clone();
        let Some(entry) = head_end.meter(&job.meter) else {
            return Finish::failed(format!("unknown meter {}", job.meter));
        };
        let serial = job.meter.clone();
        let old: MeterCredentials = (*entry.credentials()).clone();

        // A rotation interrupted by a restart: the staged keys may already be the meter's.
        let staged = {
            let serial = serial.clone();
            self.db(move |s| s.staged_keys(&serial)).await
        };
        if let Ok(Some((version, sealed))) = staged
            && let Ok(staged) = keystore::open(head_end.master_key(), &serial, version, &sealed)
            && staged.global_keys != old.global_keys
        {
            head_end.replace_credentials(&serial, staged.clone());
            if self.confirm(job, "staged").await.is_ok() {
                return self.activate(job, version, staged).await;
            }
            head_end.replace_credentials(&serial, old.clone());
        }

        let Some(kek) = old.master_key else {
            return Finish::failed(
                "the meter's master key (KEK) is not known to the head-end: new keys cannot be \
                 sent",
            );
        };
        let new_keys = match random_keys() {
            Ok(k) => k,
            Err(e) => return Finish::failed(e),
        };
        let mut new = old.clone();
        new.global_keys = new_keys.clone();
        let version = {
            let serial = serial.clone();
            // One past the newest, staged or not: a staged version the meter may hold is
            // never overwritten.
            match self.db(move |s| s.next_key_version(&serial)).await {
                Ok(next) => next,
                Err(e) => return Finish::failed(format!("key versions not readable: {e}")),
            }
        };
        let sealed = match keystore::seal(head_end.master_key(), &serial, version, &new) {
            Ok(s) => s,
            Err(e) => return Finish::failed(format!("cannot seal the new keys: {e}")),
        };
        let at = head_end.clock().now();
        {
            let serial = serial.clone();
            if let Err(e) = self
                .db(move |s| s.stage_keys(&serial, version, &sealed, at))
                .await
            {
                return Finish::failed(format!("cannot stage the new keys: {e}"));
            }
        }

        // Key transfer. The meter answers this session with the old keys and uses the new
        // ones from its next association on, so the new credentials are installed before the
        // meter's lock is released: no other job opens a session with keys the meter dropped.
        let transfer = self
            .with_retries(job, "command:rotate_keys", Role::UtilitySettings, || {
                let keys = new_keys.clone();
                let head_end = head_end.clone();
                let new = new.clone();
                job_fn(move |ctx| {
                    Box::pin(async move {
                        operations::key_transfer(ctx.session, &kek, &keys).await?;
                        head_end.replace_credentials(ctx.serial, new);
                        Ok(())
                    })
                })
            })
            .await;
        let transfer_note = match &transfer {
            Ok(()) => "key transfer accepted".to_string(),
            Err(Stop::Failed(d) | Stop::TimedOut(d)) => format!("key transfer not confirmed: {d}"),
        };
        // Whether or not the transfer's answer arrived, the meter may have the new keys.
        head_end.replace_credentials(&serial, new.clone());
        match self.confirm(job, "new").await {
            Ok(()) => {
                let mut finish = self.activate(job, version, new).await;
                finish.detail = format!("{transfer_note}; {}", finish.detail);
                finish
            }
            Err(new_failed) => {
                head_end.replace_credentials(&serial, old);
                let why = stop_detail(&new_failed);
                match self.confirm(job, "old").await {
                    Ok(()) => Finish::failed(format!(
                        "{transfer_note}; a session with the new keys failed ({why}) but one \
                         with the old keys works: the meter kept its old keys and the head-end \
                         keeps using them"
                    )),
                    Err(old_failed) => {
                        let mut finish: Finish = old_failed.into();
                        finish.detail = format!(
                            "{transfer_note}; neither the new keys ({why}) nor the old keys ({}) \
                             open a session: the head-end keeps the old keys in use and the new \
                             ones staged as version {version} (tried again on resume)",
                            finish.detail
                        );
                        finish
                    }
                }
            }
        }
    }

    /// A session with the meter's current credentials (the clock check is the probe).
    async fn confirm(&self, job: &mut Job, which: &str) -> Result<(), Stop> {
        let phase = format!("command:rotate_keys:confirm_{which}");
        self.with_retries(job, &phase, Role::UtilitySettings, || {
            job_fn(|_ctx| Box::pin(async { Ok(()) }))
        })
        .await
    }

    /// The meter uses staged keys `version`: make them the active ones.
    async fn activate(&self, job: &Job, version: u32, keys: MeterCredentials) -> Finish {
        let head_end = &self.inner.head_end;
        let at = head_end.clock().now();
        let serial = job.meter.clone();
        match self
            .db(move |s| s.activate_keys(&serial, version, at))
            .await
        {
            Ok(()) => {
                head_end.replace_credentials(&job.meter, keys);
                Finish {
                    state: CommandState::Succeeded,
                    detail: format!(
                        "a session with the new global keys works; keys version {version} active"
                    ),
                    relay: None,
                    read_back: Some(format!("keys version {version}")),
                }
            }
            Err(e) => Finish::failed(format!(
                "the meter uses the new keys (version {version}) but they could not be \
                 activated in the store: {e}; resumed at the next start"
            )),
        }
    }

    async fn db<T, F>(&self, f: F) -> Result<T, CommandError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> store::Result<T> + Send + 'static,
    {
        let store = self.inner.head_end.store().clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| CommandError::Stopped(e.to_string()))?
            .map_err(CommandError::Store)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn stop_detail(stop: &Stop) -> &str {
    match stop {
        Stop::Failed(d) | Stop::TimedOut(d) => d,
    }
}

/// Pins down the higher-ranked type of a job closure for [`HeadEnd::run_session`].
fn job_fn<T, F>(f: F) -> F
where
    F: for<'a> FnOnce(&'a mut JobContext<'_>) -> JobFuture<'a, T> + Send,
{
    f
}

fn random_keys() -> Result<GlobalKeys, String> {
    let mut encryption = [0u8; 16];
    let mut authentication = [0u8; 16];
    getrandom::fill(&mut encryption)
        .and_then(|()| getrandom::fill(&mut authentication))
        .map_err(|e| format!("no random bytes for the new keys: {e}"))?;
    Ok(GlobalKeys {
        encryption,
        authentication,
    })
}

/// Whether a `running` command whose outcome is unknown may simply run again.
fn rerun_is_safe(kind: &CommandKind) -> bool {
    !matches!(kind, CommandKind::MdReset)
}

/// Refuses requests no meter could carry out, before anything is recorded.
fn validate(kind: &CommandKind) -> Result<(), CommandError> {
    let invalid = |m: String| Err(CommandError::InvalidRequest(m));
    match kind {
        CommandKind::ReadBlockLoad { from, to }
        | CommandKind::ReadDaily { from, to }
        | CommandKind::ReadBilling { from, to }
        | CommandKind::ReadEvents { from, to, .. }
            if from > to =>
        {
            invalid(format!("the range ends ({to}) before it starts ({from})"))
        }
        CommandKind::SetTouCalendar(c) => operations::validate_calendar(c)
            .map_err(|e| CommandError::InvalidRequest(e.to_string())),
        CommandKind::SetCapturePeriod { seconds }
            if !operations::CAPTURE_PERIODS.contains(seconds) =>
        {
            invalid(format!("capture period {seconds} s: give 900 or 1800"))
        }
        CommandKind::SetBillingDate { day } if !operations::BILLING_DAYS.contains(day) => {
            invalid(format!("billing day {day}: give 1 to 28"))
        }
        CommandKind::FirmwareUpgrade {
            image_path,
            identifier,
            expected_version,
        } if image_path.is_empty() || identifier.is_empty() || expected_version.is_empty() => {
            invalid("a firmware upgrade needs an image path, an identifier and a version".into())
        }
        _ => Ok(()),
    }
}

fn stored_request(record: &CommandRecord) -> Result<CommandRequest, String> {
    serde_json::from_str(&record.request).map_err(|e| e.to_string())
}

fn status_of(record: &CommandRecord) -> Result<CommandStatus, CommandError> {
    let corrupt = |problem: String| CommandError::Corrupt {
        id: record.id.clone(),
        problem,
    };
    let state = CommandState::parse(&record.state)
        .ok_or_else(|| corrupt(format!("unknown state {:?}", record.state)))?;
    let outcome = record
        .result
        .as_deref()
        .map(serde_json::from_str::<CommandOutcome>)
        .transpose()
        .map_err(|e| corrupt(format!("outcome: {e}")))?;
    Ok(CommandStatus {
        id: CommandId(record.id.clone()),
        meter: record.meter.clone(),
        kind: record.kind.clone(),
        batch: record.batch.clone(),
        state,
        attempts: record.attempts,
        outcome,
        requested_by: record.requested_by.clone(),
        created_at: record.created_at,
        updated_at: record.updated_at,
    })
}

/// What one attempt of a (non key-rotation) command needs.
#[derive(Clone)]
struct Work {
    kind: CommandKind,
    clock: WallClock,
    deadline: DateTime<Utc>,
    image: Option<Arc<Vec<u8>>>,
}

/// The command's work inside an open session.
async fn perform(ctx: &mut JobContext<'_>, work: Work) -> Result<Finding, SessionError> {
    // The session may have waited for the meter or for a slot: act only within the deadline.
    if work.clock.now() > work.deadline {
        return Err(SessionError::Timeout(
            Duration::ZERO,
            "the command's deadline, while waiting for the meter",
        ));
    }
    match work.kind {
        CommandKind::Disconnect => {
            let status = operations::disconnect_relay(ctx.session).await?;
            Ok(relay_finding(
                "disconnected",
                RelayState::Disconnected,
                status,
            ))
        }
        CommandKind::Reconnect => {
            let status = operations::reconnect_relay(ctx.session).await?;
            Ok(relay_finding("reconnected", RelayState::Connected, status))
        }
        CommandKind::Ping => {
            // The runtime has opened the association and read the clock.
            let mut f = Finding::confirmed(format!(
                "live: the meter answered; its clock is {} s off",
                ctx.clock_drift.num_seconds()
            ));
            f.read_back = Some("live".into());
            Ok(f)
        }
        CommandKind::ClockSync => {
            let before = ctx.clock_drift.num_seconds();
            operations::set_clock(ctx.session, work.clock.now()).await?;
            let meter = operations::read_clock(ctx.session).await?;
            let after = (meter - work.clock.now()).num_seconds();
            let confirmed = after.abs() <= SYNC_TOLERANCE_S;
            Ok(Finding::checked(
                confirmed,
                format!("clock set: drift before {before:+} s, after {after:+} s"),
                format!("{after:+} s"),
            ))
        }
        CommandKind::ReadInstantaneous => {
            let layout = ctx.layout(obis::INSTANTANEOUS_PROFILE).await?;
            let reading = operations::read_instantaneous(ctx.session, &layout, ctx.serial).await?;
            ctx.output.publish(HesMessage::Instantaneous {
                meter: ctx.serial.clone(),
                reading: Box::new(reading),
            });
            Ok(Finding::confirmed("1 instantaneous row published".into()))
        }
        CommandKind::ReadBlockLoad { from, to } => {
            let layout = ctx.layout(obis::BLOCK_LOAD_PROFILE).await?;
            let intervals =
                operations::read_block_load(ctx.session, &layout, ctx.serial, from, to).await?;
            let n = intervals.len();
            if n > 0 {
                ctx.output.publish(HesMessage::BlockLoad {
                    meter: ctx.serial.clone(),
                    intervals,
                });
            }
            Ok(Finding::confirmed(format!(
                "{n} block-load intervals published"
            )))
        }
        CommandKind::ReadDaily { from, to } => {
            let layout = ctx.layout(obis::DAILY_LOAD_PROFILE).await?;
            let days =
                operations::read_daily_profile(ctx.session, &layout, ctx.serial, from, to).await?;
            let n = days.len();
            if n > 0 {
                ctx.output.publish(HesMessage::DailyProfile {
                    meter: ctx.serial.clone(),
                    days,
                });
            }
            Ok(Finding::confirmed(format!("{n} daily rows published")))
        }
        CommandKind::ReadBilling { from, to } => {
            let layout = ctx.layout(obis::BILLING_PROFILE).await?;
            let readings =
                operations::read_billing_profile(ctx.session, &layout, ctx.serial, from, to)
                    .await?;
            let n = readings.len();
            if n > 0 {
                ctx.output.publish(HesMessage::BillingProfile {
                    meter: ctx.serial.clone(),
                    readings,
                });
            }
            Ok(Finding::confirmed(format!("{n} billing rows published")))
        }
        CommandKind::ReadEvents { log, from, to } => {
            let layout = ctx.layout(event_log(log)).await?;
            let events =
                operations::read_event_log(ctx.session, &layout, ctx.serial, log, from, to).await?;
            let n = events.len();
            if n > 0 {
                ctx.output.publish(HesMessage::Events {
                    meter: ctx.serial.clone(),
                    events,
                });
            }
            Ok(Finding::confirmed(format!("{n} {log:?} events published")))
        }
        CommandKind::SetTouCalendar(calendar) => {
            operations::write_activity_calendar(ctx.session, &calendar).await?;
            match calendar.activate_at {
                None => {
                    operations::activate_passive_calendar(ctx.session).await?;
                    let active = operations::read_active_calendar_name(ctx.session).await?;
                    let confirmed = active == calendar.name;
                    Ok(Finding::checked(
                        confirmed,
                        format!(
                            "calendar {:?} written and activated; active calendar read back: \
                             {active:?}",
                            calendar.name
                        ),
                        active,
                    ))
                }
                Some(at) => {
                    let passive = read_passive_calendar_name(ctx).await?;
                    let confirmed = passive == calendar.name;
                    Ok(Finding::checked(
                        confirmed,
                        format!(
                            "calendar {:?} written, to activate at {}; passive calendar read \
                             back: {passive:?}",
                            calendar.name,
                            at.to_rfc3339()
                        ),
                        passive,
                    ))
                }
            }
        }
        CommandKind::SetLoadLimit { watts } => {
            let got = operations::set_load_limit(ctx.session, watts).await?;
            Ok(Finding::checked(
                got == watts,
                format!("load limit set to {watts} W; read back {got} W"),
                format!("{got} W"),
            ))
        }
        CommandKind::SetCapturePeriod { seconds } => {
            let got = operations::set_capture_period(ctx.session, seconds).await?;
            // Collection must see the new period (and layout) from the next session on.
            ctx.live.block_load_period = None;
            ctx.live
                .layouts
                .remove(&is15959::catalogue::obis::BLOCK_LOAD_PROFILE);
            Ok(Finding::checked(
                got == seconds,
                format!("capture period set to {seconds} s; read back {got} s"),
                format!("{got} s"),
            ))
        }
        CommandKind::SetBillingDate { day } => {
            let got = operations::set_billing_date(ctx.session, day).await?;
            Ok(Finding::checked(
                got == day,
                format!("billing date set to day {day}; read back day {got}"),
                format!("day {got}"),
            ))
        }
        CommandKind::SetPaymentMode { mode } => {
            let got = operations::set_payment_mode(ctx.session, mode).await?;
            Ok(Finding::checked(
                got == mode,
                format!("payment mode set to {mode:?}; read back {got:?}"),
                format!("{got:?}").to_lowercase(),
            ))
        }
        CommandKind::SetBalance { paise } => {
            let got = operations::set_balance(ctx.session, paise).await?;
            Ok(Finding::checked(
                got == paise,
                format!(
                    "balance set to {}; read back {}",
                    model::Paise(paise),
                    model::Paise(got)
                ),
                got.to_string(),
            ))
        }
        CommandKind::MdReset => {
            operations::md_reset(ctx.session).await?;
            Ok(Finding::confirmed("maximum demand reset".into()))
        }
        CommandKind::FirmwareUpgrade {
            identifier,
            expected_version,
            ..
        } => {
            let before = operations::read_firmware_version(ctx.session).await?;
            if before == expected_version {
                return Ok(Finding::checked(
                    true,
                    format!("the meter already runs version {before}; no image sent"),
                    before,
                ));
            }
            let image = work.image.unwrap_or_default();
            operations::transfer_image(ctx.session, identifier.as_bytes(), &image, |_, _| {})
                .await?;
            let after = operations::read_firmware_version(ctx.session).await?;
            Ok(Finding::checked(
                after == expected_version,
                format!(
                    "image {identifier} ({} bytes) transferred and activated; version {before} \
                     → {after} (expected {expected_version})",
                    image.len()
                ),
                after,
            ))
        }
        CommandKind::RotateKeys => Err(SessionError::InvalidRequest(
            "key rotation runs its own sessions".into(),
        )),
    }
}

fn relay_finding(done: &str, expected: RelayState, status: operations::RelayStatus) -> Finding {
    let confirmed = status.control_state == expected
        && status.output_connected == (expected == RelayState::Connected);
    Finding {
        confirmed,
        detail: format!(
            "relay {done}; read back: control state {:?}, output {}",
            status.control_state,
            if status.output_connected {
                "connected"
            } else {
                "disconnected"
            }
        ),
        relay: Some(status.control_state),
        read_back: None,
    }
}

/// The event log of a category (0.0.99.98.E.255).
fn event_log(log: EventCategory) -> ObisCode {
    ObisCode::new(0, 0, 99, 98, log.log_index(), 255)
}

/// The passive calendar's name (activity calendar attribute 6).
async fn read_passive_calendar_name(ctx: &mut JobContext<'_>) -> Result<String, SessionError> {
    let value = ctx
        .session
        .get(
            AttributeDescriptor {
                class_id: 20,
                instance: obis::ACTIVITY_CALENDAR,
                attribute_id: 6,
            },
            None,
        )
        .await?;
    match value {
        Data::OctetString(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        other => Err(SessionError::Unexpected(format!(
            "passive calendar name: the meter sent {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{TouCalendar, TouSwitch};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn impossible_requests_are_refused_before_they_are_recorded() {
        let bad = [
            CommandKind::SetCapturePeriod { seconds: 600 },
            CommandKind::SetBillingDate { day: 31 },
            CommandKind::SetBillingDate { day: 0 },
            CommandKind::ReadBlockLoad {
                from: t("2026-01-02T00:00:00Z"),
                to: t("2026-01-01T00:00:00Z"),
            },
            CommandKind::SetTouCalendar(TouCalendar {
                name: "T".into(),
                switches: vec![TouSwitch {
                    hour: 25,
                    minute: 0,
                    zone: 1,
                }],
                activate_at: None,
            }),
            CommandKind::FirmwareUpgrade {
                image_path: String::new(),
                identifier: "X".into(),
                expected_version: "X".into(),
            },
        ];
        for kind in bad {
            assert!(
                matches!(validate(&kind), Err(CommandError::InvalidRequest(_))),
                "{kind:?}"
            );
        }
        for good in [
            CommandKind::SetCapturePeriod { seconds: 1800 },
            CommandKind::SetBillingDate { day: 28 },
            CommandKind::Disconnect,
            CommandKind::ReadBlockLoad {
                from: t("2026-01-01T00:00:00Z"),
                to: t("2026-01-01T00:00:00Z"),
            },
        ] {
            assert!(validate(&good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn only_an_md_reset_is_not_rerun_after_a_restart() {
        assert!(!rerun_is_safe(&CommandKind::MdReset));
        for kind in [
            CommandKind::Disconnect,
            CommandKind::ClockSync,
            CommandKind::SetLoadLimit { watts: 1000 },
            CommandKind::RotateKeys,
        ] {
            assert!(rerun_is_safe(&kind), "{kind:?}");
        }
    }

    #[test]
    fn a_relay_read_back_must_match_both_states() {
        let status = |control_state, output_connected| operations::RelayStatus {
            output_connected,
            control_state,
        };
        let f = relay_finding(
            "disconnected",
            RelayState::Disconnected,
            status(RelayState::Disconnected, false),
        );
        assert!(f.confirmed);
        assert_eq!(f.relay, Some(RelayState::Disconnected));
        assert!(
            !relay_finding(
                "disconnected",
                RelayState::Disconnected,
                status(RelayState::Connected, true)
            )
            .confirmed
        );
        assert!(
            !relay_finding(
                "reconnected",
                RelayState::Connected,
                status(RelayState::ReadyForReconnection, false)
            )
            .confirmed
        );
    }

    #[test]
    fn event_logs_are_addressed_by_category() {
        assert_eq!(
            event_log(EventCategory::Power),
            ObisCode::new(0, 0, 99, 98, 2, 255)
        );
    }
}

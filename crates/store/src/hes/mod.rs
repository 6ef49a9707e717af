//! The head-end's part of the store: the meter registry and DCUs, sealed keys, settings,
//! collection cursors and gaps, session commits (one transaction per session, or one per batch
//! of sessions) with their attempts and outbox messages, the outbox relay's view, and commands
//! with their audit trail.
//!
//! The types here are plain data; the methods are on [`crate::Store`], one submodule per area.

mod commands;
mod outbox;
mod registry;
mod session;

pub use registry::{Announce, silently};

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use model::MeterSerial;

/// A meter as the head-end knows it: where to reach it and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterRecord {
    pub serial: MeterSerial,
    /// "single-phase" | "three-phase" | "ct" …, as imported.
    pub kind: String,
    /// IP or host name of the meter (or of its DCU/modem).
    pub host: String,
    pub port: u16,
    /// "wrapper" | "hdlc".
    pub transport: String,
    /// Wrapper: the server SAP (1); HDLC: the physical (server lower MAC) address.
    pub server_address: u16,
    /// The data concentrator / parent the meter sits under.
    pub dcu: Option<String>,
    /// The meter group schedules are configured by ("default").
    pub group: String,
    pub system_title: [u8; 8],
}

/// What an upsert of a meter did to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryChange {
    /// A meter the registry did not know.
    New,
    /// The meter is now reached elsewhere (host, port or DCU changed); where it was.
    Moved {
        from_host: String,
        from_port: u16,
        from_dcu: Option<String>,
    },
    /// Something other than its place changed (kind, transport, group, keys …).
    Updated,
    Unchanged,
}

/// A network change (use case 11): a new meter, or one that moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkChange {
    pub meter: MeterSerial,
    pub at: DateTime<Utc>,
    /// "new" | "moved".
    pub change: String,
    /// Where the meter is (and for a move, where it was), for people.
    pub detail: String,
}

/// The state of a range of missed data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GapState {
    /// Not yet collected; to be re-read.
    Open,
    /// Re-read successfully.
    Filled,
    /// Known why there is no data (e.g. the meter was powered off).
    Explained,
    /// Given up on (retries exhausted, or the meter no longer holds the range).
    Unrecoverable,
}

impl GapState {
    pub const ALL: [GapState; 4] = [
        GapState::Open,
        GapState::Filled,
        GapState::Explained,
        GapState::Unrecoverable,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            GapState::Open => "open",
            GapState::Filled => "filled",
            GapState::Explained => "explained",
            GapState::Unrecoverable => "unrecoverable",
        }
    }
}

impl fmt::Display for GapState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of [`GapState`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown gap state {0:?}")]
pub struct UnknownGapState(pub String);

impl FromStr for GapState {
    type Err = UnknownGapState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GapState::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| UnknownGapState(s.to_string()))
    }
}

/// A range of a profile that was not collected. `from` and `to` are interval ends, both
/// included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub id: i64,
    pub meter: MeterSerial,
    pub profile: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub state: GapState,
    /// Re-reads tried so far.
    pub attempts: u32,
    pub reason: Option<String>,
    pub detected_at: DateTime<Utc>,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// `kind` is a short, bounded class ("connect", "timeout", "auth", …) for reports;
    /// `detail` is for people.
    Failed {
        kind: String,
        detail: String,
    },
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }
}

/// A change to the gaps of the session's meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GapChange {
    /// A newly found range (merged with any open gap of the same profile it overlaps or
    /// touches).
    Open {
        profile: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// A range found and settled at once (e.g. explained by a power failure when detected).
    Closed {
        profile: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        state: GapState,
        reason: String,
    },
    /// A re-read of the gap was tried (its attempt count goes up by one).
    Attempted { id: i64 },
    /// The gap was filled, explained or given up on (or reopened, with `GapState::Open`).
    Resolve {
        id: i64,
        state: GapState,
        reason: Option<String>,
    },
}

/// A message for the bus, written in the same transaction as the state it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Idempotency key: a second message with the same key is dropped.
    pub key: String,
    pub kind: String,
    pub payload: Vec<u8>,
}

/// Everything one session with a meter changed, committed in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCommit {
    pub meter: MeterSerial,
    /// "block_load", "daily", "command:disconnect", "push" …
    pub job: String,
    /// 1 for the first try.
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub outcome: Outcome,
    /// The meter answered; with an `Ok` outcome this moves the meter's last contact to
    /// `ended_at`.
    pub contacted: bool,
    /// Profile → collected up to (an interval end). A cursor only moves forward.
    pub cursors: Vec<(String, DateTime<Utc>)>,
    pub gaps: Vec<GapChange>,
    pub outbox: Vec<OutboxMessage>,
    /// The head-end's next invocation counter for this meter after the session (kept so a
    /// restarted head-end never reuses a counter the meter has seen); only moves forward.
    pub invocation_counter: Option<u32>,
}

/// One recorded session outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub meter: MeterSerial,
    pub job: String,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub contacted: bool,
}

/// Sessions of one job since some instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptSummary {
    pub job: String,
    pub sessions: u64,
    pub ok: u64,
    pub failed: u64,
    /// Sessions that were a retry (attempt > 1).
    pub retries: u64,
    /// Failed sessions by failure kind, most frequent first.
    pub by_failure_kind: Vec<(String, u64)>,
}

/// A pending outbox message as [`Store::outbox_pending_lazy`] returns it: the payload only where
/// the caller asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMessage {
    pub seq: i64,
    pub key: String,
    pub kind: String,
    pub payload: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
}

/// A pending (or delivered) outbox message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Order of writing; the relay delivers in this order.
    pub seq: i64,
    pub key: String,
    pub kind: String,
    pub payload: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// A command to a meter. `request` and `result` are JSON the head-end owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub id: String,
    pub meter: MeterSerial,
    /// The group command this one belongs to.
    pub batch: Option<String>,
    pub kind: String,
    pub request: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attempts: u32,
    pub result: Option<String>,
    pub requested_by: String,
}

/// What [`crate::Store::insert_command`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // returned once per insert; boxing buys nothing
pub enum Inserted {
    New,
    /// The id was already known; this is the stored record, unchanged.
    Existing(CommandRecord),
}

/// One step in a command's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub at: DateTime<Utc>,
    pub state: String,
    pub detail: String,
}

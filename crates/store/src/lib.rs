//! Urja's persistence: one contract, SQLite first (WAL, one file in the data directory), written
//! so a PostgreSQL implementation can follow with the same tests.
//!
//! This crate owns the database file, its schema migrations ([`migrate`]) and the typed API over
//! it: the head-end's tables ([`hes`]: registry, keys, cursors and gaps, session commits with
//! their outbox, attempts, commands) and the MDM's ([`mdm`]: readings with quality and versions,
//! events, the exception queue, edits, VEE state, routed messages), the API's tokens
//! ([`auth`]), postpaid bills ([`billing`]), confirmed tamper periods ([`tamper`]), customer care's
//! service requests and complaints ([`care`]), the delivery of routed messages to external
//! systems' webhooks ([`webhook`]), consumers' notifications ([`notify`]) and the consumer
//! portal's registrations, accounts and sessions ([`portal`]).
//!
//! Contract rules: every key leads with the meter (or consumer); times are stored as integer
//! milliseconds since the Unix epoch and are `chrono::DateTime<Utc>` at the API; upserts are
//! `INSERT … ON CONFLICT` the way PostgreSQL writes them; no caller relies on `rowid`.
//!
//! Durability: `journal_mode=WAL` with `synchronous=NORMAL`. A committed transaction survives a
//! crash of the process; after a power loss the last few transactions before the crash may be
//! rolled back (never half-applied).
//!
//! All methods are synchronous and short; async callers run them on a blocking thread.

pub mod auth;
pub mod billing;
pub mod care;
pub mod field;
pub mod hes;
pub mod mdm;
pub mod migrate;
pub mod notify;
pub mod outages;
pub mod portal;
pub mod prepaid;
pub mod prepaid_ops;
pub mod tamper;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use model::MeterSerial;
use rusqlite::Connection;

pub use auth::{ApiToken, Role, UnknownRole};
pub use hes::{
    Announce, AttemptRecord, AttemptSummary, AuditRow, CommandRecord, Gap, GapChange, GapState,
    Inserted, MeterRecord, NetworkChange, OutboxMessage, OutboxRow, Outcome, PendingMessage,
    RegistryChange, SessionCommit, UnknownGapState, silently,
};
pub use mdm::{
    AlarmRow, CommandResultRow, DeadLetter, EventRow, ExceptionRow, ExceptionState, IngestCounts,
    IngestWrite, IntervalEditRecord, IntervalWrite, MeterDayCounts, MissedRow, NoticeRow,
    RoutedMessage, StoredInterval,
};

/// How long a writer waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database is at schema version {found}, newer than this program knows ({known}); \
         upgrade the program"
    )]
    NewerSchema { found: u32, known: u32 },
    /// A stored value the API cannot convert (a bad serial, time or length).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A row the call refers to does not exist (an unknown meter, gap, key version or command).
    #[error("not found: {0}")]
    NotFound(String),
    /// The call contradicts what is stored (e.g. different keys under an activated version).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The call's own arguments are inconsistent (e.g. a gap that ends before it starts).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

// The head-end shares one `Store` between tasks and blocking threads.
const _: () = {
    const fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<Store>();
};

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed, with its parent directory) the database at `path` and brings
    /// its schema up to date. Refuses a file written by a newer program.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        let mut conn = open_connection(path)?;
        migrate::migrate(&mut conn, migrate::MIGRATIONS.len())?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version of the open file (the number of migrations applied).
    pub fn schema_version(&self) -> Result<u32> {
        migrate::version(&self.conn())
    }

    /// The connection, held for the duration of one call. A panic elsewhere while holding the
    /// lock leaves the connection usable (an open transaction is rolled back when dropped).
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Opens a connection with the house pragmas, creating the parent directory.
pub(crate) fn open_connection(path: &Path) -> Result<Connection> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "the database refused write-ahead logging (journal_mode is {mode})"
        )));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    // The bundled SQLite keeps statistics per value (STAT4) and would re-plan, re-preparing, a
    // cached statement whenever a bound time range changes; our queries have one right plan.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A UTC instant as stored: milliseconds since the Unix epoch.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored instant back to UTC.
pub(crate) fn from_ms(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::Corrupt(format!("time {v} ms is out of range")))
}

/// A stored optional instant back to UTC.
pub(crate) fn from_ms_opt(v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(from_ms).transpose()
}

/// A stored day (`2026-12-04`) back to a date.
pub(crate) fn day(s: &str) -> Result<NaiveDate> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("date {s:?}")))
}

/// A stored optional day back to a date.
pub(crate) fn day_opt(s: Option<String>) -> Result<Option<NaiveDate>> {
    s.as_deref().map(day).transpose()
}

/// A stored serial back to a validated [`MeterSerial`].
pub(crate) fn serial(s: String) -> Result<MeterSerial> {
    MeterSerial::new(s).map_err(|e| StoreError::Corrupt(format!("meter serial: {e}")))
}

/// A stored non-negative integer into a narrower type.
pub(crate) fn narrow<T: TryFrom<i64>>(v: i64, what: &str) -> Result<T> {
    T::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} is out of range")))
}

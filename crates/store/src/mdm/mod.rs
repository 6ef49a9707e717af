//! The MDM's tables (migration `0002_mdm`): readings with quality flags and versions, events, the
//! VEE exception queue, edits, VEE state per meter, routed messages ([`readings`]), and the
//! network hierarchy with consumers and service points over time ([`network`]).
//!
//! The MDM decides what to write (it reads the stored rows, runs VEE, plans the changes); this
//! module writes one [`IngestWrite`] in one transaction, so a batch of messages is durable
//! together before any of them is acknowledged. A replaced interval moves to `interval_history`
//! under its version; a replacement names the version it replaces, so two writers cannot both
//! replace the same value.

pub mod day_all;
pub mod network;
pub mod readings;

pub use day_all::{ConsumerIntervals, IntervalFigures};
pub use network::{
    Child, Connection, Consumer, Installation, NetworkImport, NetworkImportCounts, NetworkNode,
    NodeKind, ServicePoint,
};

pub use readings::{
    AlarmRow, CommandResultRow, DeadLetter, EventRow, ExceptionRow, ExceptionState, IngestCounts,
    IngestWrite, IntervalEditRecord, IntervalWrite, MeterDayCounts, MissedRow, NoticeRow,
    RoutedMessage, StoredInterval, quality_bits, quality_from_bits,
};

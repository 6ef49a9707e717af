//! The MDM's tables: readings with quality flags and versions, events, the VEE exception queue,
//! edits, VEE state per meter and routed messages (migration `0002_mdm`).
//!
//! The MDM decides what to write (it reads the stored rows, runs VEE, plans the changes); this
//! module writes one [`IngestWrite`] in one transaction, so a batch of messages is durable
//! together before any of them is acknowledged. A replaced interval moves to `interval_history`
//! under its version; a replacement names the version it replaces, so two writers cannot both
//! replace the same value.

mod readings;

pub use readings::{
    AlarmRow, CommandResultRow, DeadLetter, EventRow, ExceptionRow, ExceptionState, IngestCounts,
    IngestWrite, IntervalWrite, MissedRow, RoutedMessage, StoredInterval, quality_bits,
    quality_from_bits,
};

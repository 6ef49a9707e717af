//! DLMS/COSEM, sans-IO.
//!
//! This crate owns the wire protocol and nothing else: it is handed bytes and `now`, and it gives
//! back bytes and events. It has no sockets, no clock and no async runtime, so the same code runs
//! in the head-end, the meter simulator, the fuzzers and the benchmarks.
//!
//! Layers, bottom up:
//! - [`wrapper`] (IEC 62056-47 TCP wrapper) and [`hdlc`] (IEC 62056-46) carry APDUs;
//! - [`security`] is security suite 0 (AES-GCM-128, HLS mechanisms 2 and 5);
//! - [`apdu`] is the xDLMS application layer, logical-name referencing;
//! - [`axdr`] encodes [`Data`], the COSEM value type; [`obis`] names objects;
//! - [`association`] holds the client and server state machines that tie them together.

pub mod apdu;
pub mod association;
pub mod axdr;
pub mod codec;
pub mod data;
pub mod datetime;
pub mod hdlc;
pub mod obis;
pub mod security;
pub mod wrapper;

pub use codec::DecodeError;
pub use data::Data;
pub use datetime::{ClockStatus, Date, DateTime, Time};
pub use obis::ObisCode;

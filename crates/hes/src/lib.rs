//! The head-end system: the only part of Urja that talks to meters.
//!
//! - [`credentials`]: a meter's secrets and the client configuration per IS 15959 association;
//! - [`keystore`]: the master key, meter credentials sealed at rest under it, and the import of
//!   meters and their keys from key files;
//! - [`session`]: one DLMS session over TCP (TCP wrapper or HDLC framing), a thin tokio adapter
//!   around the sans-IO [`dlms::association::client::Client`];
//! - [`operations`]: what the head-end does over a session, in the words of IS 15959: read the
//!   clock, registers and profiles, set the clock, operate the relay, transfer a firmware image;
//! - [`plan`]: pure planning: what is due when (with per-meter jitter), retries, gap arithmetic,
//!   and the wall clock mapped onto tokio's (pausable) clock.

pub mod collect;
pub mod commands;
pub mod credentials;
pub mod keystore;
pub mod metrics;
pub mod operations;
pub mod plan;
pub mod push;
pub mod report;
pub mod runtime;
pub mod session;

pub use credentials::{MeterCredentials, Role};
pub use session::{Session, SessionConfig, SessionError, Transport};

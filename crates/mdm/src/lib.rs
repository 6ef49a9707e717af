//! The meter data management system (MDM): the system of record for meter data. It takes what
//! the head-end publishes, keeps it durably, judges its quality (validation, estimation, editing),
//! and hands clean figures on to prepaid and billing.
//!
//! Domain rules here are plain functions over data; the services around them do the I/O.

pub mod calendar;
pub mod completeness;
pub mod determinants;
pub mod events;
pub mod ingest;
pub mod network_file;
pub mod outages;
pub mod vee;

//! Field operations (issue 7): [`orders`] holds what a work order is and the field completion
//! report each kind needs, checked; [`service`] is the built-in WFM over the store and the
//! head-end (tamper inspection to disconnection and reconnection, meter replacement, manual
//! reconnection) and the new-connection process from verified request to confirmation.

pub mod orders;
pub mod service;

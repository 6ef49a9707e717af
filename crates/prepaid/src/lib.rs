//! The prepaid engine: its rules as plain functions over data, and the engine at work over the
//! store and the head-end.
//!
//! - [`tariff`] (the `tariff` crate, re-exported): tariffs as data and the daily charge, built
//!   so that a month of daily charges adds up exactly to the month's bill;
//! - [`charging`]: the daily charge, one itemised debit per consumer per day into the wallet
//!   (`store::prepaid`), in order within a month, never twice, from where each wallet stands;
//!   for one consumer or a whole day's run over many ([`charging::run_day`]); the month's
//!   true-up once estimates are replaced;
//! - [`recharge`]: a confirmed payment credited once (its id is the ledger cause), within the
//!   utility's amount rules;
//! - [`alerts`]: low-balance alerts at shares of the last recharge, once each per cycle;
//! - [`policy`]: when a prepaid connection may be disconnected (balance under a threshold, never
//!   inside a protected window: night hours, Sundays, holidays, a grace period after migration,
//!   emergency credit, small sanctioned loads), the first moment it may, and the next step for a
//!   short connection (warn, wait for the notice, disconnect);
//! - [`gateway`]: the payment gateway's signed webhook (HMAC-SHA256 with a timestamp);
//! - [`service`]: the engine at work over the store and the head-end's commands: payments
//!   credited and pushed to the meter, the daily charge run with its alerts, emergency credit,
//!   the disconnection cases and the payment-mode migrations.
//!
//! Money is integer paise; rates are exact decimals in milli-paise; no floats.

pub mod alerts;
pub mod charging;
pub mod gateway;
pub mod policy;
pub mod recharge;
pub mod service;

/// Tariffs live in their own crate (postpaid billing prices with them too).
pub use tariff;

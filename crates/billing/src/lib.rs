//! Postpaid billing (issue 6): [`bill`] computes a consumer's monthly bill from the MDM's
//! billing determinants and a postpaid tariff, line by line and exact in paise; [`cycle`] runs
//! a billing cycle over its consumers into the store, provisional where the figures are,
//! revised when they change, never twice; [`tamper`] assesses confirmed tamper periods by the
//! tariff's policy; [`account`] works out what each payment paid, oldest dues first, and what
//! is owed; [`payments`] applies payments to the account with a receipt and reads counter and
//! bank files; [`pdf`] renders a bill as a one-page PDF with a consumption chart.

pub mod account;
pub mod bill;
pub mod cycle;
pub mod payments;
pub mod pdf;
pub mod tamper;

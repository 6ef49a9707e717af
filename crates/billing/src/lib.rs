//! Postpaid billing (issue 6, begun): [`bill`] computes a consumer's monthly bill from the
//! MDM's billing determinants and a postpaid tariff, line by line and exact in paise;
//! [`cycle`] runs a billing cycle over its consumers into the store, provisional where the
//! figures are, revised when they change, never twice; [`pdf`] renders a bill as a one-page
//! PDF with a consumption chart; [`tamper`] assesses confirmed tamper periods by the tariff's
//! policy. Payments, the API and the cycle in `urja up` come with the
//! rest of the issue.

pub mod bill;
pub mod cycle;
pub mod pdf;
pub mod tamper;

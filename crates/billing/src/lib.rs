//! Postpaid billing (issue 6, begun): [`bill`] computes a consumer's monthly bill from the
//! MDM's billing determinants and a postpaid tariff, line by line and exact in paise;
//! [`cycle`] runs a billing cycle over its consumers into the store, provisional where the
//! figures are, revised when they change, never twice. PDF bills, payments and the API come
//! with the rest of the issue.

pub mod bill;
pub mod cycle;

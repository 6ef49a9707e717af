//! Postpaid billing (issue 6, begun): [`bill`] computes a consumer's monthly bill from the
//! MDM's billing determinants and a postpaid tariff, line by line and exact in paise. Billing
//! cycles, bill storage, PDF bills and payments come with the rest of the issue.

pub mod bill;

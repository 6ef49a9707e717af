//! The daily charge: one itemised debit per prepaid consumer per day, from the day's
//! consumption as the MDM hands it on (use case 1.4) and the tariff in force, posted to the
//! wallet under the cause `daily/<date>` so a re-run never charges twice.
//!
//! A day's slab depends on the month before it, so a month is charged in order:
//! [`charge_through`] walks from the first day of the month not yet charged to the day asked,
//! catching up missed days, and stops at the first day whose consumption is not known yet.

use chrono::{Datelike, NaiveDate, Utc};
use model::Paise;
use serde::{Deserialize, Serialize};
use store::prepaid::{NewEntry, Posted};
use store::{Store, StoreError};

use crate::tariff::{BillingUnit, Charge, TariffBook, TariffError};

#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tariff(#[from] TariffError),
    #[error("a stored daily charge of {consumer_no} is unreadable: {detail}")]
    Corrupt { consumer_no: String, detail: String },
}

/// A consumer's consumption on one day, as the MDM hands it on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayUse {
    pub import_wh: i64,
    pub import_vah: i64,
    /// Whether any of it was estimated.
    pub estimated: bool,
}

/// What is charged: the consumer, their tariff category and sanctioned load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub consumer_no: String,
    pub category: String,
    pub sanctioned_w: u32,
}

/// The itemised charge kept with each daily debit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyChargeDetail {
    pub day: NaiveDate,
    pub tariff: String,
    pub unit: BillingUnit,
    /// The units charged (Wh or VAh).
    pub units: i64,
    /// The month's units before this day.
    pub month_units_before: i64,
    pub charge: Charge,
    pub estimated: bool,
}

/// What a charge run did for one consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargeReport {
    pub days_charged: u32,
    pub total: Paise,
    /// The balance after the run (`None`: no wallet).
    pub balance: Option<Paise>,
    /// The first day that could not be charged because its consumption is not known yet.
    pub waiting_for: Option<NaiveDate>,
}

fn cause(day: NaiveDate) -> String {
    format!("daily/{day}")
}

/// Charges `account` for every day of `until`'s month up to `until` not charged yet, in order,
/// taking each day's consumption from `usage` (`None`: not known yet, stop there). Safe to run
/// again at any time.
pub fn charge_through(
    store: &Store,
    book: &TariffBook,
    account: &Account,
    until: NaiveDate,
    usage: impl Fn(NaiveDate) -> Option<DayUse>,
) -> Result<ChargeReport, ChargeError> {
    let month_prefix = format!("daily/{:04}-{:02}-", until.year(), until.month());
    let mut charged: Vec<DailyChargeDetail> = Vec::new();
    for e in store.wallet_entries_by_cause(&account.consumer_no, &month_prefix)? {
        let detail: DailyChargeDetail =
            serde_json::from_str(&e.detail).map_err(|err| ChargeError::Corrupt {
                consumer_no: account.consumer_no.clone(),
                detail: format!("{}: {err}", e.cause),
            })?;
        charged.push(detail);
    }
    let mut report = ChargeReport::default();
    let mut month_units: i64 = charged.iter().map(|d| d.units).sum();
    let first = until.with_day(1).unwrap_or(until);
    let mut day = first;
    while day <= until {
        if !charged.iter().any(|d| d.day == day) {
            let Some(used) = usage(day) else {
                report.waiting_for = Some(day);
                break;
            };
            let tariff = book.in_force(&account.category, day)?;
            let units = match tariff.unit {
                BillingUnit::Kwh => used.import_wh,
                BillingUnit::Kvah => used.import_vah,
            }
            .max(0);
            let charge = tariff.daily_charge(month_units, units, day.day(), account.sanctioned_w);
            let detail = DailyChargeDetail {
                day,
                tariff: tariff.code.clone(),
                unit: tariff.unit,
                units,
                month_units_before: month_units,
                charge,
                estimated: used.estimated,
            };
            let json = serde_json::to_string(&detail).map_err(|e| ChargeError::Corrupt {
                consumer_no: account.consumer_no.clone(),
                detail: e.to_string(),
            })?;
            let posted = store.wallet_post(
                &NewEntry {
                    consumer_no: &account.consumer_no,
                    cause: &cause(day),
                    kind: "daily_charge",
                    amount: Paise(-charge.total().0),
                    detail: &json,
                },
                Utc::now(),
            )?;
            if let Posted::New(_) = posted {
                report.days_charged += 1;
                report.total = Paise(report.total.0 + charge.total().0);
            }
            month_units = month_units.saturating_add(units);
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    report.balance = store.wallet_balance(&account.consumer_no)?;
    Ok(report)
}

/// What a true-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrueUp {
    /// Debit (negative) or credit (positive) posted; zero when the charges stood.
    pub adjustment: Paise,
    pub balance: Option<Paise>,
}

/// Trues up `until`'s month so far: the charged days' consumption is read again (`usage`, as
/// the MDM has it now: estimates replaced by actuals, edits), the month-to-date bill recomputed,
/// and the difference from what was charged for the month (daily charges and earlier true-ups)
/// posted as one adjustment. Running it again on the same figures finds nothing to adjust, and
/// after it the month's charges equal the bill for the figures as they stand.
pub fn true_up_month(
    store: &Store,
    book: &TariffBook,
    account: &Account,
    until: NaiveDate,
    usage: impl Fn(NaiveDate) -> Option<DayUse>,
) -> Result<TrueUp, ChargeError> {
    let month = format!("{:04}-{:02}", until.year(), until.month());
    let days = store.wallet_entries_by_cause(&account.consumer_no, &format!("daily/{month}-"))?;
    let earlier =
        store.wallet_entries_by_cause(&account.consumer_no, &format!("trueup/{month}/"))?;
    let charged: i64 = days.iter().chain(earlier.iter()).map(|e| -e.amount.0).sum();
    let mut details = Vec::with_capacity(days.len());
    for e in &days {
        let d: DailyChargeDetail =
            serde_json::from_str(&e.detail).map_err(|err| ChargeError::Corrupt {
                consumer_no: account.consumer_no.clone(),
                detail: format!("{}: {err}", e.cause),
            })?;
        details.push(d);
    }
    let Some(last) = details.iter().map(|d| d.day).max() else {
        return Ok(TrueUp {
            adjustment: Paise::ZERO,
            balance: store.wallet_balance(&account.consumer_no)?,
        });
    };
    let tariff = book.in_force(&account.category, last)?;
    let mut units = 0i64;
    for d in &details {
        let now = usage(d.day).map_or(d.units, |u| match tariff.unit {
            BillingUnit::Kwh => u.import_wh.max(0),
            BillingUnit::Kvah => u.import_vah.max(0),
        });
        units = units.saturating_add(now);
    }
    let bill = tariff
        .month_to_date(units, last.day(), account.sanctioned_w)
        .total();
    let adjustment = Paise(charged - bill.0);
    if adjustment == Paise::ZERO {
        return Ok(TrueUp {
            adjustment,
            balance: store.wallet_balance(&account.consumer_no)?,
        });
    }
    // Numbered: two runs at once on the same figures make the same cause, so one posts.
    let cause = format!("trueup/{month}/{}", earlier.len() + 1);
    let detail = format!(
        r#"{{"month":"{month}","units":{units},"bill":{},"charged":{charged}}}"#,
        bill.0
    );
    store.wallet_post(
        &NewEntry {
            consumer_no: &account.consumer_no,
            cause: &cause,
            kind: "adjustment",
            amount: adjustment,
            detail: &detail,
        },
        Utc::now(),
    )?;
    Ok(TrueUp {
        adjustment,
        balance: store.wallet_balance(&account.consumer_no)?,
    })
}

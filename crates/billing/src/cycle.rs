//! A billing cycle's run (use cases 2.1–2.5): every postpaid consumer of the cycle billed for
//! the period that just ended, from the MDM's billing determinants (2.5): the meter's billing
//! profile rows at the period's two ends where it has them, else the intervals. Determinants
//! with estimated or missing intervals give a provisional bill; running the cycle again on the same
//! figures issues nothing, and on changed figures (estimates replaced by actual readings, an
//! edit) issues a revision that supersedes the bill before.

use chrono::{Datelike, Months, NaiveDate, Utc};
use mdm::calendar::day_bounds;
use mdm::determinants::{Metering, billing_rows_wanted, determinants_for_period};
use model::MeterSerial;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::billing::{BillingAccount, Issued, NewBill};
use store::{Store, StoreError};
use tariff::BillingUnit;

use crate::bill::{BillInput, Measured, PostpaidTariff, compute};

/// The postpaid tariffs, in versions by category and effective date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostpaidBook {
    pub versions: Vec<PostpaidTariff>,
}

/// The postpaid tariffs a new data directory starts with (`tariffs/default.json`): examples
/// shaped like a state's schedule, replaced through the API.
pub const DEFAULT_POSTPAID_TARIFFS: &str = include_str!("../tariffs/default.json");

impl PostpaidBook {
    /// The postpaid tariff versions stored (`tariff_version`, scheme `postpaid`).
    pub fn from_store(store: &Store) -> Result<PostpaidBook, String> {
        let mut versions = Vec::new();
        for v in store
            .tariff_versions(Some("postpaid"))
            .map_err(|e| e.to_string())?
        {
            let t: PostpaidTariff = serde_json::from_str(&v.body).map_err(|e| {
                format!(
                    "the postpaid {} tariff of {} is unreadable: {e}",
                    v.category, v.effective_from
                )
            })?;
            versions.push(t);
        }
        Ok(PostpaidBook { versions })
    }

    /// The version of `category`'s tariff in force on `date`.
    pub fn in_force(&self, category: &str, date: NaiveDate) -> Option<&PostpaidTariff> {
        self.versions
            .iter()
            .filter(|t| t.base.category == category && t.base.effective_from <= date)
            .max_by_key(|t| t.base.effective_from)
    }
}

/// What a cycle run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub consumers: usize,
    pub new: usize,
    pub revised: usize,
    pub unchanged: usize,
    pub provisional: usize,
    /// Consumers not billed, with the reason.
    pub failed: Vec<(String, String)>,
}

/// The billing period of a cycle starting on `cycle_day` that ended last before `run_date`:
/// from the cycle day of the month before to the day before this month's.
pub fn period(cycle_day: u8, run_date: NaiveDate) -> (NaiveDate, NaiveDate) {
    let day = u32::from(cycle_day.clamp(1, 28));
    let this = run_date.with_day(day).unwrap_or(run_date);
    let start = if this <= run_date {
        this
    } else {
        this.checked_sub_months(Months::new(1)).unwrap_or(this)
    };
    let from = start.checked_sub_months(Months::new(1)).unwrap_or(start);
    (from, start.pred_opt().unwrap_or(start))
}

const PAGE: u32 = 1000;

/// A billing profile read to ask the head-end for (use case 2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingRead {
    pub meter: MeterSerial,
    /// The period's start (the cycle day before).
    pub period_from: NaiveDate,
    /// The span to read, covering the billing-date rows at both ends of the period.
    pub from: chrono::DateTime<Utc>,
    pub to: chrono::DateTime<Utc>,
}

/// The monthly trigger (use case 2.1): the meters of cycle `cycle_day` whose billing profile
/// rows at either end of the period that ended before `run_date` are not in the MDM, to be
/// read from the meters before (or, for a provisional bill, after) the cycle bills them.
pub fn billing_reads_wanted(
    store: &Store,
    cycle_day: u8,
    run_date: NaiveDate,
) -> Result<Vec<BillingRead>, StoreError> {
    let (from, to) = period(cycle_day, run_date);
    let (start, _) = day_bounds(from);
    let (_, end) = day_bounds(to);
    let mut out = Vec::new();
    each_page(store, cycle_day, |page| {
        // A closed account (prepaid now) is billed no more.
        for account in page.into_iter().filter(|a| a.closed_on.is_none()) {
            if let Some(meter) = billing_rows_wanted(store, &account.consumer_no, start, end)? {
                out.push(BillingRead {
                    meter,
                    period_from: from,
                    from: start - chrono::Duration::hours(1),
                    to: end + chrono::Duration::hours(2),
                });
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// The billing accounts of cycle `cycle_day`, a page at a time, in consumer order.
fn each_page(
    store: &Store,
    cycle_day: u8,
    mut f: impl FnMut(Vec<BillingAccount>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut after = String::new();
    loop {
        let page = store.billing_accounts(cycle_day, &after, PAGE)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.consumer_no.clone();
        f(page)?;
    }
}

/// Bills every consumer of cycle `cycle_day` for the period that ended before `run_date`.
pub fn run_cycle(
    store: &Store,
    book: &PostpaidBook,
    cycle_day: u8,
    run_date: NaiveDate,
    metering: &Metering,
) -> Result<CycleReport, StoreError> {
    run_cycle_reporting(store, book, cycle_day, run_date, metering, &mut |_| {})
}

/// [`run_cycle`], telling `progress` how many consumers were billed after each page of them.
pub fn run_cycle_reporting(
    store: &Store,
    book: &PostpaidBook,
    cycle_day: u8,
    run_date: NaiveDate,
    metering: &Metering,
    progress: &mut dyn FnMut(usize),
) -> Result<CycleReport, StoreError> {
    let (from, to) = period(cycle_day, run_date);
    let mut report = CycleReport::default();
    each_page(store, cycle_day, |page| {
        // A closed account (prepaid now) was billed to the day before by its final bill, whose
        // balance went to the wallet: it is not billed, nor revised, again.
        for account in page.into_iter().filter(|a| a.closed_on.is_none()) {
            match bill_one(store, book, &account, from, to, run_date, metering) {
                // Prepaid for the whole period: nothing to bill here.
                Ok(None) => continue,
                Ok(Some((issued, provisional))) => {
                    report.consumers += 1;
                    report.provisional += usize::from(provisional);
                    match issued {
                        Issued::New => report.new += 1,
                        Issued::Revised(_) => report.revised += 1,
                        Issued::Unchanged => report.unchanged += 1,
                    }
                }
                Err(why) => {
                    report.consumers += 1;
                    report.failed.push((account.consumer_no.clone(), why));
                }
            }
        }
        progress(report.consumers);
        Ok(())
    })?;
    Ok(report)
}

/// The final bill of a consumer whose billing account was closed as they went prepaid (use
/// case 13): the period before the closing day billed if it was not yet, and the current
/// period billed up to the day before it (the wallet is charged from that day). What each
/// bill issue did; nothing without a billing account, and an error for one still open.
pub fn final_bill(
    store: &Store,
    book: &PostpaidBook,
    consumer_no: &str,
    metering: &Metering,
) -> Result<Vec<Issued>, String> {
    let Some(account) = store
        .billing_account(consumer_no)
        .map_err(|e| e.to_string())?
    else {
        return Ok(Vec::new());
    };
    let migration_day = account
        .closed_on
        .ok_or_else(|| format!("{consumer_no}'s billing account is open: close it first"))?;
    let before = period(account.cycle_day, migration_day);
    let current_from = before.1 + chrono::Duration::days(1);
    let current = period(
        account.cycle_day,
        current_from
            .checked_add_months(Months::new(1))
            .unwrap_or(current_from),
    );
    let mut issued = Vec::new();
    for (from, to) in [before, current] {
        if let Some((i, _)) = bill_one(store, book, &account, from, to, migration_day, metering)? {
            issued.push(i);
        }
    }
    Ok(issued)
}

/// Bills `account` for the cycle period `from..=to`, cut to the days it was postpaid; `None`
/// when it was prepaid for all of them.
fn bill_one(
    store: &Store,
    book: &PostpaidBook,
    account: &BillingAccount,
    from: NaiveDate,
    to: NaiveDate,
    bill_date: NaiveDate,
    metering: &Metering,
) -> Result<Option<(Issued, bool)>, String> {
    let period_to = to;
    let from = account.billed_from.map_or(from, |b| from.max(b));
    let to = account
        .closed_on
        .map_or(to, |c| to.min(c - chrono::Duration::days(1)));
    if from > to {
        return Ok(None);
    }
    // Cut short by the move to prepaid: the account's final bill.
    let final_bill = to < period_to;
    let consumer_no = &account.consumer_no;
    let consumer = store
        .mdm_consumer(consumer_no)
        .map_err(|e| e.to_string())?
        .ok_or("not a consumer of the MDM")?;
    let t = book
        .in_force(&consumer.category, to)
        .ok_or_else(|| format!("no postpaid tariff for {} on {to}", consumer.category))?;
    let (start, _) = day_bounds(from);
    let (_, end) = day_bounds(to);
    let (d, readings) = determinants_for_period(store, consumer_no, start, end, metering)
        .map_err(|e| e.to_string())?
        .ok_or("not a consumer of the MDM")?;
    let sanctioned_w = store
        .prepaid_supply(consumer_no, end - chrono::Duration::seconds(1))
        .map_err(|e| e.to_string())?
        .map_or(0, |(_, w)| w);
    let (units, zones, export, demand) = match t.base.unit {
        BillingUnit::Kwh => (
            d.figures.import_wh,
            d.zone_import_wh,
            d.export_wh,
            d.figures.max_w.map(|p| p.value),
        ),
        BillingUnit::Kvah => (
            d.figures.import_vah,
            d.zone_import_vah,
            d.export_vah,
            d.figures.max_va.map(|p| p.value),
        ),
    };
    // Units banked by the bill before; what the account owed at the end of the period, and
    // the surcharges of bills paid late.
    let banked = store
        .bill_before(consumer_no, from)
        .map_err(|e| e.to_string())?
        .map_or(0, |b| b.carried_forward);
    let (arrears, late_payment) = crate::payments::brought_forward(store, consumer_no, from, to)
        .map_err(|e| e.to_string())?
        .ok_or("not in a billing cycle")?;
    let provisional = d.estimated_intervals > 0 || d.missing_intervals > 0;
    let tamper = crate::tamper::for_bill(store, t, account, from, to, metering)
        .map_err(|e| e.to_string())?;
    let input = BillInput {
        consumer_no: consumer_no.clone(),
        from,
        to,
        bill_date,
        sanctioned_w,
        contract_demand: account.contract_demand,
        measured: Measured {
            import: tariff::MonthUse { units, zones },
            export: export.unwrap_or(0),
            max_demand: demand.unwrap_or(0),
            power_factor: d
                .average_pf
                .map(|pf| (pf * 1000.0).round().clamp(0.0, 1000.0) as u16),
        },
        provisional,
        assessments: tamper.assessments.clone(),
        banked,
        arrears,
        late_payment,
        readings,
        final_bill,
    };
    let bill = compute(t, &input).map_err(|e| e.to_string())?;
    let body = serde_json::to_string(&bill).map_err(|e| e.to_string())?;
    // The same figures under the same tariff are the same bill, whatever day it is run.
    let mut hashed = serde_json::to_string(&(
        &input.measured,
        input.sanctioned_w,
        input.contract_demand,
        input.banked,
        input.arrears,
        &input.late_payment,
        &input.readings,
        input.final_bill,
        input.provisional,
        t,
    ))
    .map_err(|e| e.to_string())?;
    // A tamper period confirmed after the bill was issued revises it.
    if !input.assessments.is_empty() {
        hashed += &serde_json::to_string(&input.assessments).map_err(|e| e.to_string())?;
    }
    let hash = hex::encode(Sha256::digest(hashed.as_bytes()));
    let issued = store
        .bill_issue(
            &NewBill {
                consumer_no,
                period_from: from,
                period_to: to,
                provisional,
                input_hash: &hash,
                body: &body,
                current: bill.current,
                payable: bill.payable_by_due_date,
                carried_forward: bill.carried_forward,
                due_date: bill.due_date,
            },
            Utc::now(),
        )
        .map_err(|e| e.to_string())?;
    tamper
        .mark_billed(store, consumer_no, from)
        .map_err(|e| e.to_string())?;
    Ok(Some((issued, provisional)))
}

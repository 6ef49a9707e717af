//! The daily charge: one itemised debit per prepaid consumer per day, from the day's
//! consumption as the MDM hands it on (use case 1.4) and the tariff in force, posted to the
//! wallet under the cause `daily/<date>` so a re-run never charges twice.
//!
//! A day's slab depends on the month before it, so a month is charged in order from its first
//! day, catching up missed days, stopping at the first day whose consumption is not known yet.
//! Where a wallet stands (the last day charged, the month-to-date units in total and per TOD
//! zone, what the month has debited) is kept on the wallet (`store::prepaid::ChargeState`) and
//! moved on in the same transaction as the entries, so a run reads one row per consumer.
//!
//! There is one way to charge: [`plan_days`] computes a wallet's next entries and state from
//! where it stands (no I/O); [`charge_through`] runs it for one consumer and [`run_day`] for
//! many, thousands of wallets per transaction.

use chrono::{Datelike, NaiveDate, Utc};
use model::Paise;
use serde::{Deserialize, Serialize};
use store::prepaid::{ChargeState, StepEntry, StepOutcome, WalletStep, WalletView};
use store::{Store, StoreError};

use tariff::{BillingUnit, Charge, MonthUse, TariffBook, TariffError, days_in_month};

#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tariff(#[from] TariffError),
    #[error("a stored daily charge of {consumer_no} is unreadable: {detail}")]
    Corrupt { consumer_no: String, detail: String },
    #[error("the consumption of {consumer_no} on {day} is not known")]
    NoFigures { consumer_no: String, day: NaiveDate },
}

/// A consumer's consumption on one day, as the MDM hands it on (`mdm::determinants`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayUse {
    pub import_wh: i64,
    pub import_vah: i64,
    /// The import per TOD zone, index 0 = zone 1, summing to `import_wh` (units in no zone are
    /// charged without TOD adjustment).
    #[serde(default)]
    pub zone_wh: [i64; 8],
    /// The same in VAh.
    #[serde(default)]
    pub zone_vah: [i64; 8],
    /// Whether any of it was estimated.
    pub estimated: bool,
}

impl DayUse {
    /// The units billed in `unit`, in total and per zone (never negative).
    pub fn billed(&self, unit: BillingUnit) -> MonthUse {
        let (units, zones) = match unit {
            BillingUnit::Kwh => (self.import_wh, self.zone_wh),
            BillingUnit::Kvah => (self.import_vah, self.zone_vah),
        };
        MonthUse {
            units: units.max(0),
            zones: zones.map(|z| z.max(0)),
        }
    }
}

impl From<&mdm::determinants::DayFigures> for DayUse {
    fn from(f: &mdm::determinants::DayFigures) -> DayUse {
        DayUse {
            import_wh: f.import_wh,
            import_vah: f.import_vah,
            zone_wh: f.zone_wh,
            zone_vah: f.zone_vah,
            estimated: f.estimated,
        }
    }
}

/// Every consumer's consumption on some days, read from the MDM before a charge run: a run
/// charges inside a store transaction, so what it charges from must already be in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayFiguresBook {
    days: std::collections::HashMap<NaiveDate, std::collections::HashMap<String, DayUse>>,
}

impl DayFiguresBook {
    /// The MDM's figures of `days`, every consumer's day in one pass each (`daily_for_all`);
    /// a consumer's day is kept only once it is whole (every interval stored, actual or
    /// estimated).
    pub fn load(
        store: &Store,
        days: impl IntoIterator<Item = NaiveDate>,
        metering: &mdm::determinants::Metering,
    ) -> Result<DayFiguresBook, StoreError> {
        let mut book = DayFiguresBook::default();
        for day in days {
            let all = mdm::determinants::daily_for_all(store, day, metering)?;
            book.days.insert(
                day,
                all.iter()
                    .filter(|f| f.missing_intervals == 0 && f.intervals > 0)
                    .map(|f| (f.consumer_no.clone(), DayUse::from(f)))
                    .collect(),
            );
        }
        Ok(book)
    }

    pub fn get(&self, consumer_no: &str, day: NaiveDate) -> Option<DayUse> {
        self.days.get(&day)?.get(consumer_no).copied()
    }
}

/// What is charged: the consumer, their tariff category and sanctioned load, and the first day
/// they are charged for (the day they became prepaid; `None`: every day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub consumer_no: String,
    pub category: String,
    pub sanctioned_w: u32,
    pub charge_from: Option<NaiveDate>,
}

/// The itemised charge kept with each daily debit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyChargeDetail {
    pub day: NaiveDate,
    pub tariff: String,
    pub unit: BillingUnit,
    /// The units charged (Wh or VAh).
    pub units: i64,
    /// The same per TOD zone.
    #[serde(default)]
    pub zones: [i64; 8],
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

fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// A wallet's next charges, computed by [`plan_days`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// What to write (`None`: nothing to charge).
    pub step: Option<WalletStep>,
    pub days: u32,
    pub total: Paise,
    /// The first day of the month up to `until` still uncharged after the plan: its
    /// consumption is not known yet.
    pub waiting_for: Option<NaiveDate>,
}

/// The one way a day is charged. From where the wallet stands, the days of `until`'s month
/// after the last one charged up to `until`, in order, each at the tariff in force that day:
/// the day's charge is the month-to-date bill after it less the one before it. Stops at the
/// first day `usage` does not know. A wallet still short of the end of the month before waits
/// for it (charge that month first); a wallet already in a later month has nothing to charge (a
/// closed month is corrected by [`true_up_month`]). An error charges nothing.
pub fn plan_days(
    book: &TariffBook,
    account: &Account,
    wallet: &WalletView,
    until: NaiveDate,
    mut usage: impl FnMut(NaiveDate) -> Option<DayUse>,
) -> Result<Plan, ChargeError> {
    let first = month_start(until);
    let month_days = days_in_month(until);
    let previous = first
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(first);
    let mut state = match wallet.state.month {
        Some(m) if m == first => wallet.state,
        Some(m) if m > first => return Ok(Plan::default()),
        // The month before is not charged to its end (its last days' figures came late): it
        // is finished first, so no day is left uncharged behind a new month.
        Some(m) if m == previous && m != first => {
            let last = first.pred_opt().unwrap_or(first);
            match wallet.state.through {
                Some(t) if t >= last => ChargeState {
                    month: Some(first),
                    ..ChargeState::default()
                },
                t => {
                    return Ok(Plan {
                        waiting_for: t.and_then(|t| t.succ_opt()).or(Some(m)),
                        ..Plan::default()
                    });
                }
            }
        }
        _ => ChargeState {
            month: Some(first),
            ..ChargeState::default()
        },
    };
    let mut plan = Plan::default();
    let mut entries = Vec::new();
    let next = match state.through {
        Some(d) => match d.succ_opt() {
            Some(next) => next,
            None => return Ok(plan),
        },
        None => first,
    };
    // A consumer who became prepaid (again) in this month is charged from that day: a day's
    // charge is one day's share of the month's bill whatever the day it starts on, and the
    // days they were postpaid are billed by postpaid billing.
    let mut day = account.charge_from.map_or(next, |from| from.max(next));
    while day <= until {
        let Some(used) = usage(day) else {
            plan.waiting_for = Some(day);
            break;
        };
        let tariff = book.in_force(&account.category, day)?;
        let used_units = used.billed(tariff.unit);
        let before = MonthUse {
            units: state.units,
            zones: state.zone_units,
        };
        let charge = tariff.daily_charge(
            &before,
            &used_units,
            day.day(),
            month_days,
            account.sanctioned_w,
        );
        let detail = DailyChargeDetail {
            day,
            tariff: tariff.code.clone(),
            unit: tariff.unit,
            units: used_units.units,
            zones: used_units.zones,
            month_units_before: state.units,
            charge,
            estimated: used.estimated,
        };
        let json = serde_json::to_string(&detail).map_err(|e| ChargeError::Corrupt {
            consumer_no: account.consumer_no.clone(),
            detail: e.to_string(),
        })?;
        let total = charge.total();
        entries.push(StepEntry {
            cause: cause(day),
            kind: "daily_charge",
            amount: Paise(-total.0),
            detail: json,
        });
        let after = before.plus(&used_units);
        state.units = after.units;
        state.zone_units = after.zones;
        state.charged = state.charged.saturating_add(total.0);
        state.estimated += u32::from(used.estimated);
        state.through = Some(day);
        plan.days += 1;
        plan.total = Paise(plan.total.0 + total.0);
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    if !entries.is_empty() {
        plan.step = Some(WalletStep { entries, state });
    }
    Ok(plan)
}

/// Runs `plan` for one consumer's wallet in one transaction: the typed error of the plan, if
/// it failed, and the outcome.
fn step_one<T>(
    store: &Store,
    consumer_no: &str,
    mut plan: impl FnMut(&WalletView) -> Result<(Option<WalletStep>, T), ChargeError>,
) -> Result<(StepOutcome, Option<T>), ChargeError> {
    let mut failed = None;
    let mut kept = None;
    let outcomes = store.wallet_steps(&[consumer_no], Utc::now(), |_, view| match plan(view) {
        Ok((step, t)) => {
            kept = Some(t);
            Ok(step)
        }
        Err(e) => {
            let shown = e.to_string();
            failed = Some(e);
            Err(shown)
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let outcome = outcomes.into_iter().next().unwrap_or(StepOutcome::NoWallet);
    match outcome {
        StepOutcome::NoWallet => {
            Err(StoreError::NotFound(format!("wallet of {consumer_no}")).into())
        }
        StepOutcome::Refused(reason) => Err(StoreError::Conflict(reason).into()),
        o => Ok((o, kept)),
    }
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
    let (outcome, plan) = step_one(store, &account.consumer_no, |view| {
        let mut plan = plan_days(book, account, view, until, &usage)?;
        Ok((plan.step.take(), plan))
    })?;
    let plan = plan.unwrap_or_default();
    let (days_charged, total, balance) = match outcome {
        StepOutcome::Posted { balance, .. } => (plan.days, plan.total, balance),
        StepOutcome::Unchanged { balance } => (0, Paise::ZERO, balance),
        StepOutcome::NoWallet | StepOutcome::Refused(_) => (0, Paise::ZERO, Paise::ZERO),
    };
    Ok(ChargeReport {
        days_charged,
        total,
        balance: Some(balance),
        waiting_for: plan.waiting_for,
    })
}

/// How many consumers [`run_day`] charges per transaction.
pub const RUN_CHUNK: usize = 10_000;

/// What a day's run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Consumers given.
    pub consumers: usize,
    /// Consumers charged at least one day.
    pub charged: usize,
    /// Days charged, over all consumers, and their sum.
    pub days_charged: u64,
    pub total: Paise,
    /// Consumers that had nothing to charge: charged through the day already.
    pub already: usize,
    /// Consumers not charged through the day (whether or not some days were caught up): the
    /// first day whose consumption is not known yet.
    pub waiting: Vec<(String, NaiveDate)>,
    /// Consumers left as they were, with the reason (no wallet, no tariff, …).
    pub failed: Vec<(String, String)>,
}

/// Charges every account for `day`: each catches up the days of the month it missed, in
/// order, up to `day`, stopping at the first day `usage` does not know. [`RUN_CHUNK`] consumers
/// per transaction; a consumer that cannot be charged is reported and the run goes on.
/// `progress` is told how many consumers are done after each transaction. Safe to run again:
/// a second run of the same day posts nothing.
pub fn run_day(
    store: &Store,
    book: &TariffBook,
    day: NaiveDate,
    accounts: &[Account],
    mut usage: impl FnMut(&Account, NaiveDate) -> Option<DayUse>,
    mut progress: impl FnMut(usize),
) -> Result<RunReport, StoreError> {
    let mut report = RunReport {
        consumers: accounts.len(),
        ..RunReport::default()
    };
    let now = Utc::now();
    let mut done = 0;
    for chunk in accounts.chunks(RUN_CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|a| a.consumer_no.as_str()).collect();
        let mut plans: Vec<(u32, Paise, Option<NaiveDate>)> = Vec::with_capacity(chunk.len());
        let outcomes = store.wallet_steps(&ids, now, |i, view| {
            let account = &chunk[i];
            while plans.len() < i {
                plans.push((0, Paise::ZERO, None));
            }
            let mut plan = plan_days(book, account, view, day, |d| usage(account, d))?;
            plans.push((plan.days, plan.total, plan.waiting_for));
            Ok::<_, ChargeError>(plan.step.take())
        })?;
        for (i, (account, outcome)) in chunk.iter().zip(outcomes).enumerate() {
            let (days, total, waiting) = plans.get(i).copied().unwrap_or((0, Paise::ZERO, None));
            match outcome {
                StepOutcome::NoWallet => report
                    .failed
                    .push((account.consumer_no.clone(), "no wallet".into())),
                StepOutcome::Refused(reason) => {
                    report.failed.push((account.consumer_no.clone(), reason));
                    continue;
                }
                StepOutcome::Posted { .. } => {
                    report.charged += 1;
                    report.days_charged += u64::from(days);
                    report.total = Paise(report.total.0 + total.0);
                }
                StepOutcome::Unchanged { .. } => {
                    if waiting.is_none() {
                        report.already += 1;
                    }
                }
            }
            if let Some(w) = waiting {
                report.waiting.push((account.consumer_no.clone(), w));
            }
        }
        done += chunk.len();
        progress(done);
    }
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
/// the MDM has it now: estimates replaced by actuals, edits; `None`: as charged), the
/// month-to-date bill recomputed, and the difference from what was charged for the month
/// (daily charges and earlier true-ups) posted as one adjustment. The wallet's month-to-date
/// figures become the recomputed ones, so the days charged after it build on them. Running it
/// again on the same figures finds nothing to adjust, and after it the month's charges equal
/// the bill for the figures as they stand.
pub fn true_up_month(
    store: &Store,
    book: &TariffBook,
    account: &Account,
    until: NaiveDate,
    usage: impl Fn(NaiveDate) -> Option<DayUse>,
) -> Result<TrueUp, ChargeError> {
    let first = month_start(until);
    let Some(view) = store.wallet_view(&account.consumer_no)? else {
        return Ok(TrueUp::default());
    };
    let charged_through = match (view.state.month, view.state.through) {
        (Some(m), Some(t)) if m == first => t,
        _ => {
            return Ok(TrueUp {
                adjustment: Paise::ZERO,
                balance: Some(view.balance),
            });
        }
    };
    // The month is charged from its first day, or from the day the consumer became prepaid.
    let start = account.charge_from.map_or(first, |f| f.max(first));
    // Days the MDM no longer knows are taken as charged: only then are the stored details read.
    let mut as_charged = std::collections::HashMap::new();
    if start
        .iter_days()
        .take_while(|d| *d <= charged_through)
        .any(|d| usage(d).is_none())
    {
        let month = format!("daily/{:04}-{:02}-", first.year(), first.month());
        for e in store.wallet_entries_by_cause(&account.consumer_no, &month)? {
            let d: DailyChargeDetail =
                serde_json::from_str(&e.detail).map_err(|err| ChargeError::Corrupt {
                    consumer_no: account.consumer_no.clone(),
                    detail: format!("{}: {err}", e.cause),
                })?;
            as_charged.insert(
                d.day,
                MonthUse {
                    units: d.units,
                    zones: d.zones,
                },
            );
        }
    }
    let month = format!("{:04}-{:02}", first.year(), first.month());
    let (outcome, adjustment) = step_one(store, &account.consumer_no, |view| {
        let state = view.state;
        let Some(last) = state.through.filter(|_| state.month == Some(first)) else {
            return Ok((None, Paise::ZERO));
        };
        let tariff = book.in_force(&account.category, last)?;
        let mut used = MonthUse::default();
        let mut estimated = 0u32;
        for d in start.iter_days().take_while(|d| *d <= last) {
            let day = match usage(d) {
                Some(u) => {
                    estimated += u32::from(u.estimated);
                    u.billed(tariff.unit)
                }
                None => *as_charged.get(&d).ok_or_else(|| ChargeError::NoFigures {
                    consumer_no: account.consumer_no.clone(),
                    day: d,
                })?,
            };
            used = used.plus(&day);
        }
        // What the daily charges from `start` add up to: the month to date less the days before
        // `start`, which carry no units (only their fixed share).
        let month_days = days_in_month(last);
        let bill = tariff
            .month_to_date(&used, last.day(), month_days, account.sanctioned_w)
            .less(&tariff.month_to_date(
                &MonthUse::default(),
                start.day() - 1,
                month_days,
                account.sanctioned_w,
            ))
            .total();
        let adjustment = Paise(state.charged - bill.0);
        let mut after = state;
        after.units = used.units;
        after.zone_units = used.zones;
        after.charged = bill.0;
        after.estimated = estimated;
        let mut entries = Vec::new();
        if adjustment != Paise::ZERO {
            after.trueups += 1;
            entries.push(StepEntry {
                cause: format!("trueup/{month}/{}", after.trueups),
                kind: "adjustment",
                amount: adjustment,
                detail: format!(
                    r#"{{"month":"{month}","units":{},"bill":{},"charged":{}}}"#,
                    used.units, bill.0, state.charged
                ),
            });
        }
        let step = (after != state).then_some(WalletStep {
            entries,
            state: after,
        });
        Ok((step, adjustment))
    })?;
    let balance = match outcome {
        StepOutcome::Posted { balance, .. } | StepOutcome::Unchanged { balance } => Some(balance),
        _ => None,
    };
    Ok(TrueUp {
        adjustment: adjustment.unwrap_or(Paise::ZERO),
        balance,
    })
}

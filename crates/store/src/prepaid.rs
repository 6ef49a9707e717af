//! The prepaid wallets (migration `0004_prepaid`): an append-only ledger per consumer,
//! idempotent by each entry's cause, with the balance kept alongside and checkable against the
//! ledger's sum; and where each wallet's daily charging stands (migration `0005_charge_run`,
//! [`ChargeState`]), moved on together with the entries by [`Store::wallet_steps`], many
//! wallets per transaction.

use chrono::{DateTime, NaiveDate, Utc};
use model::Paise;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::{Result, Store, StoreError, day_opt, from_ms, ms, narrow};

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletEntry {
    pub consumer_no: String,
    /// 1, 2, 3, … in the order written.
    pub n: u64,
    /// What caused it, unique per wallet (e.g. `recharge/PAY-123`, `daily/2026-12-01`).
    pub cause: String,
    /// `opening_balance`, `recharge`, `daily_charge`, `adjustment` or `refund`.
    pub kind: String,
    /// Credit positive, debit negative.
    pub amount: Paise,
    pub balance_after: Paise,
    /// JSON: the itemised charge, the payment, …
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// What posting an entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// Written; the new balance.
    New(Paise),
    /// The cause was posted before (nothing written): the entry as it stands.
    Already(WalletEntry),
}

/// An entry to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry<'a> {
    pub consumer_no: &'a str,
    pub cause: &'a str,
    pub kind: &'a str,
    pub amount: Paise,
    pub detail: &'a str,
}

fn entry(r: &rusqlite::Row<'_>) -> Result<WalletEntry> {
    Ok(WalletEntry {
        consumer_no: r.get(0)?,
        n: narrow(r.get(1)?, "entry number")?,
        cause: r.get(2)?,
        kind: r.get(3)?,
        amount: Paise(r.get(4)?),
        balance_after: Paise(r.get(5)?),
        detail: r.get(6)?,
        at: from_ms(r.get(7)?)?,
    })
}

const ENTRY_COLUMNS: &str = "consumer_no, n, cause, kind, amount, balance_after, detail, at";

/// Where a wallet's daily charging stands: the month being charged, the last day charged in it
/// (the days before it are all charged: a month is charged in order), the month-to-date units
/// the charges were computed on, and what the month has debited so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChargeState {
    /// The first day of the month; `None`: never charged.
    pub month: Option<NaiveDate>,
    /// The last day charged in `month`.
    pub through: Option<NaiveDate>,
    /// Month-to-date units (Wh or VAh, the tariff's billing unit).
    pub units: i64,
    /// The same per TOD zone, index 0 = zone 1.
    pub zone_units: [i64; 8],
    /// Debited for the month by daily charges and true-ups (paise, positive for a debit).
    pub charged: i64,
    /// True-ups posted for the month.
    pub trueups: u32,
    /// Days charged on estimated consumption and not trued up since.
    pub estimated: u32,
}

/// A wallet as a charge step sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletView {
    pub balance: Paise,
    pub state: ChargeState,
}

/// An entry a step posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepEntry {
    pub cause: String,
    pub kind: &'static str,
    pub amount: Paise,
    pub detail: String,
}

/// What a step writes for one wallet: its entries, in order, and the charge state after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletStep {
    pub entries: Vec<StepEntry>,
    pub state: ChargeState,
}

/// What [`Store::wallet_steps`] did for one wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// No wallet for this consumer.
    NoWallet,
    /// The step had nothing to write.
    Unchanged { balance: Paise },
    /// Written: the entries' count and sum, and the balance after them.
    Posted {
        entries: u32,
        sum: Paise,
        balance: Paise,
    },
    /// Nothing written for this wallet: the step refused (its reason), an entry's cause was
    /// posted before, or the balance would leave the range of paise.
    Refused(String),
}

const STATE_COLUMNS: &str = "balance, next_n, charge_month, charged_through, month_units, \
     month_z1, month_z2, month_z3, month_z4, month_z5, month_z6, month_z7, month_z8, \
     month_charged, month_trueups, month_estimated";

/// A wallet row: its view and next entry number.
fn wallet_row(r: &rusqlite::Row<'_>) -> Result<(WalletView, i64)> {
    let mut zone_units = [0i64; 8];
    for (i, z) in zone_units.iter_mut().enumerate() {
        *z = r.get(5 + i)?;
    }
    Ok((
        WalletView {
            balance: Paise(r.get(0)?),
            state: ChargeState {
                month: day_opt(r.get(2)?)?,
                through: day_opt(r.get(3)?)?,
                units: r.get(4)?,
                zone_units,
                charged: r.get(13)?,
                trueups: narrow(r.get(14)?, "true-up count")?,
                estimated: narrow(r.get(15)?, "estimated days")?,
            },
        },
        r.get(1)?,
    ))
}

impl Store {
    /// Wallets charging `month` (its first day) with estimated days not trued up, after
    /// `after`, a page at a time.
    pub fn wallets_with_estimates(
        &self,
        month: NaiveDate,
        after: &str,
        limit: u32,
    ) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT consumer_no FROM wallet WHERE charge_month = ?1 AND month_estimated > 0 \
             AND consumer_no > ?2 ORDER BY consumer_no LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![month.to_string(), after, limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(r.get(0)?);
        }
        Ok(out)
    }

    /// The earliest day prepaid wallets still need charged: the day after the least
    /// `charged_through` of those charging `month` or the month before (`None`: all charged
    /// through, or none charged yet).
    pub fn wallets_behind(&self, month: NaiveDate) -> Result<Option<NaiveDate>> {
        let previous = month
            .checked_sub_months(chrono::Months::new(1))
            .unwrap_or(month);
        let least: Option<String> = self.conn().query_row(
            "SELECT MIN(w.charged_through) FROM wallet w JOIN prepaid_account a \
             ON a.consumer_no = w.consumer_no WHERE a.mode = 'prepaid' \
             AND w.charge_month IN (?1, ?2)",
            params![month.to_string(), previous.to_string()],
            |r| r.get(0),
        )?;
        Ok(day_opt(least)?.and_then(|d| d.succ_opt()))
    }

    /// Opens a wallet for `consumer_no` (nothing happens if it has one).
    pub fn wallet_open(&self, consumer_no: &str, at: DateTime<Utc>) -> Result<bool> {
        Ok(self.conn().execute(
            "INSERT INTO wallet (consumer_no, opened_at, next_n, balance) VALUES (?1, ?2, 1, 0) \
             ON CONFLICT (consumer_no) DO NOTHING",
            params![consumer_no, ms(at)],
        )? == 1)
    }

    /// Opens wallets for many consumers in one transaction (those that have one are left as
    /// they are); how many were opened.
    pub fn wallet_open_many(&self, consumers: &[&str], at: DateTime<Utc>) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut opened = 0;
        {
            let mut open = tx.prepare_cached(
                "INSERT INTO wallet (consumer_no, opened_at, next_n, balance) VALUES (?1, ?2, 1, 0) \
                 ON CONFLICT (consumer_no) DO NOTHING",
            )?;
            for c in consumers {
                opened += open.execute(params![c, ms(at)])?;
            }
        }
        tx.commit()?;
        Ok(opened)
    }

    /// Posts an entry, once per cause: the same cause again writes nothing and answers the
    /// entry already there. The wallet must exist; a sum beyond the range of paise is refused.
    pub fn wallet_post(&self, e: &NewEntry<'_>, at: DateTime<Utc>) -> Result<Posted> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existing = tx
            .query_row(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM wallet_entry WHERE consumer_no = ?1 AND cause = ?2"
                ),
                params![e.consumer_no, e.cause],
                |r| Ok(entry(r)),
            )
            .optional()?;
        if let Some(found) = existing {
            return Ok(Posted::Already(found?));
        }
        let (n, balance): (i64, i64) = tx
            .query_row(
                "SELECT next_n, balance FROM wallet WHERE consumer_no = ?1",
                params![e.consumer_no],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("wallet of {}", e.consumer_no)))?;
        let after = Paise(balance).checked_add(e.amount).ok_or_else(|| {
            StoreError::Invalid(format!("balance of {} out of range", e.consumer_no))
        })?;
        tx.execute(
            &format!(
                "INSERT INTO wallet_entry ({ENTRY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            params![
                e.consumer_no,
                n,
                e.cause,
                e.kind,
                e.amount.0,
                after.0,
                e.detail,
                ms(at)
            ],
        )?;
        tx.execute(
            "UPDATE wallet SET next_n = ?2, balance = ?3 WHERE consumer_no = ?1",
            params![e.consumer_no, n + 1, after.0],
        )?;
        tx.commit()?;
        Ok(Posted::New(after))
    }

    /// A wallet's balance and charge state, or `None` without a wallet.
    pub fn wallet_view(&self, consumer_no: &str) -> Result<Option<WalletView>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {STATE_COLUMNS} FROM wallet WHERE consumer_no = ?1"
        ))?;
        let mut rows = stmt.query(params![consumer_no])?;
        match rows.next()? {
            Some(r) => Ok(Some(wallet_row(r)?.0)),
            None => Ok(None),
        }
    }

    /// Moves many wallets on in one transaction: for each consumer in turn, `step` is given
    /// its wallet as it stands (inside the transaction, so nothing changes it meanwhile) and
    /// answers what to write: entries and the charge state after them (`Ok(None)`: nothing).
    /// Each entry is posted once per cause like [`Store::wallet_post`]; a wallet whose step
    /// fails, or one of whose causes was posted before, is left as it was and reported, and the
    /// others are written. The outcomes are in the order of `consumers`.
    pub fn wallet_steps<E: std::fmt::Display>(
        &self,
        consumers: &[&str],
        at: DateTime<Utc>,
        mut step: impl FnMut(usize, &WalletView) -> Result<Option<WalletStep>, E>,
    ) -> Result<Vec<StepOutcome>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(consumers.len());
        {
            let mut read = tx.prepare_cached(&format!(
                "SELECT {STATE_COLUMNS} FROM wallet WHERE consumer_no = ?1"
            ))?;
            let mut insert = tx.prepare_cached(&format!(
                "INSERT INTO wallet_entry ({ENTRY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (consumer_no, cause) DO NOTHING"
            ))?;
            let mut undo =
                tx.prepare_cached("DELETE FROM wallet_entry WHERE consumer_no = ?1 AND n >= ?2")?;
            let mut update = tx.prepare_cached(
                "UPDATE wallet SET next_n = ?2, balance = ?3, charge_month = ?4, \
                 charged_through = ?5, month_units = ?6, month_z1 = ?7, month_z2 = ?8, \
                 month_z3 = ?9, month_z4 = ?10, month_z5 = ?11, month_z6 = ?12, month_z7 = ?13, \
                 month_z8 = ?14, month_charged = ?15, month_trueups = ?16, month_estimated = ?17 \
                 WHERE consumer_no = ?1",
            )?;
            let at = ms(at);
            for (i, consumer_no) in consumers.iter().enumerate() {
                let found = {
                    let mut rows = read.query(params![consumer_no])?;
                    match rows.next()? {
                        Some(r) => Some(wallet_row(r)?),
                        None => None,
                    }
                };
                let Some((view, first_n)) = found else {
                    out.push(StepOutcome::NoWallet);
                    continue;
                };
                let planned = match step(i, &view) {
                    Ok(Some(p)) => p,
                    Ok(None) => {
                        out.push(StepOutcome::Unchanged {
                            balance: view.balance,
                        });
                        continue;
                    }
                    Err(e) => {
                        out.push(StepOutcome::Refused(e.to_string()));
                        continue;
                    }
                };
                let mut n = first_n;
                let mut balance = view.balance;
                let mut refused = None;
                for e in &planned.entries {
                    let Some(after) = balance.checked_add(e.amount) else {
                        refused = Some(format!("balance of {consumer_no} out of range"));
                        break;
                    };
                    let written = insert.execute(params![
                        consumer_no,
                        n,
                        e.cause,
                        e.kind,
                        e.amount.0,
                        after.0,
                        e.detail,
                        at
                    ])?;
                    if written == 0 {
                        refused = Some(format!("{} was posted before", e.cause));
                        break;
                    }
                    balance = after;
                    n += 1;
                }
                if let Some(reason) = refused {
                    if n > first_n {
                        undo.execute(params![consumer_no, first_n])?;
                    }
                    out.push(StepOutcome::Refused(reason));
                    continue;
                }
                let s = &planned.state;
                let z = &s.zone_units;
                update.execute(params![
                    consumer_no,
                    n,
                    balance.0,
                    s.month.map(|d| d.to_string()),
                    s.through.map(|d| d.to_string()),
                    s.units,
                    z[0],
                    z[1],
                    z[2],
                    z[3],
                    z[4],
                    z[5],
                    z[6],
                    z[7],
                    s.charged,
                    s.trueups,
                    s.estimated
                ])?;
                out.push(StepOutcome::Posted {
                    entries: u32::try_from(n - first_n).unwrap_or(u32::MAX),
                    sum: Paise(balance.0 - view.balance.0),
                    balance,
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// The balance, or `None` without a wallet.
    pub fn wallet_balance(&self, consumer_no: &str) -> Result<Option<Paise>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT balance FROM wallet WHERE consumer_no = ?1",
                params![consumer_no],
                |r| r.get(0),
            )
            .optional()?
            .map(Paise))
    }

    /// Entries after number `after`, oldest first, a page at a time.
    pub fn wallet_entries(
        &self,
        consumer_no: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<WalletEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM wallet_entry WHERE consumer_no = ?1 AND n > ?2 \
             ORDER BY n LIMIT ?3"
        ))?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![consumer_no, after, limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(entry(r)?);
        }
        Ok(out)
    }

    /// The entries whose cause starts with `prefix` (e.g. `daily/2026-12-`), oldest first.
    pub fn wallet_entries_by_cause(
        &self,
        consumer_no: &str,
        prefix: &str,
    ) -> Result<Vec<WalletEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM wallet_entry WHERE consumer_no = ?1 \
             AND substr(cause, 1, length(?2)) = ?2 ORDER BY n"
        ))?;
        let mut rows = stmt.query(params![consumer_no, prefix])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(entry(r)?);
        }
        Ok(out)
    }

    /// Whether the kept balance equals the ledger's sum and the last entry's balance.
    pub fn wallet_check(&self, consumer_no: &str) -> Result<bool> {
        let conn = self.conn();
        let (balance, sum, last): (Option<i64>, Option<i64>, Option<i64>) = conn.query_row(
            "SELECT (SELECT balance FROM wallet WHERE consumer_no = ?1), \
                    (SELECT SUM(amount) FROM wallet_entry WHERE consumer_no = ?1), \
                    (SELECT balance_after FROM wallet_entry WHERE consumer_no = ?1 \
                     ORDER BY n DESC LIMIT 1)",
            params![consumer_no],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(match balance {
            None => false,
            Some(b) => b == sum.unwrap_or(0) && last.is_none_or(|l| l == b),
        })
    }
}

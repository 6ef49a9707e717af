//! The prepaid wallets (migration `0004_prepaid`): an append-only ledger per consumer,
//! idempotent by each entry's cause, with the balance kept alongside and checkable against the
//! ledger's sum.

use chrono::{DateTime, Utc};
use model::Paise;
use rusqlite::{OptionalExtension, params};

use crate::{Result, Store, StoreError, from_ms, ms, narrow};

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

impl Store {
    /// Opens a wallet for `consumer_no` (nothing happens if it has one).
    pub fn wallet_open(&self, consumer_no: &str, at: DateTime<Utc>) -> Result<bool> {
        Ok(self.conn().execute(
            "INSERT INTO wallet (consumer_no, opened_at, next_n, balance) VALUES (?1, ?2, 1, 0) \
             ON CONFLICT (consumer_no) DO NOTHING",
            params![consumer_no, ms(at)],
        )? == 1)
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

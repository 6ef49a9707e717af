//! Postpaid billing (migrations `0008_billing`, `0009_bill_payments`): billing accounts in
//! their cycles, the bills issued, in versions (a changed bill supersedes the one before; the
//! same bill again is not issued twice), the payments applied to the accounts and receipts.

use chrono::{DateTime, NaiveDate, Utc};
use model::Paise;
use rusqlite::{OptionalExtension, Row, params};

use crate::prepaid_ops::{PAYMENT_COLUMNS, Payment, collect, payment};
use crate::{Result, Store, StoreError, day, day_opt, from_ms, ms, narrow};

/// A postpaid consumer's billing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingAccount {
    pub consumer_no: String,
    /// The day of the month the billing period starts (1–28).
    pub cycle_day: u8,
    /// VA; `None` without a contract demand.
    pub contract_demand: Option<u32>,
    pub opening_arrears: Paise,
    /// Postpaid again from this day (it was prepaid before): no day before it is billed here.
    pub billed_from: Option<NaiveDate>,
    /// Prepaid from this day: the final bill ended the day before, and nothing after is billed.
    pub closed_on: Option<NaiveDate>,
}

/// Money moved into or out of a postpaid account other than by a bill or a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub key: String,
    pub on: NaiveDate,
    /// Positive: owed; negative: a credit.
    pub amount: Paise,
    pub reason: String,
}

/// A bill as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBill {
    pub id: u64,
    pub consumer_no: String,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub version: u32,
    /// `issued` or `superseded`.
    pub state: String,
    pub provisional: bool,
    pub input_hash: String,
    /// The whole bill, JSON.
    pub body: String,
    pub current: Paise,
    pub payable: Paise,
    /// Net metering: units carried to the next period.
    pub carried_forward: i64,
    pub due_date: NaiveDate,
    pub created_at: DateTime<Utc>,
}

/// What a bill shows of the consumer and their connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillParty {
    pub name: String,
    pub category: String,
    pub address: String,
    pub sanctioned_w: i64,
    pub meter: Option<String>,
}

/// A bill to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBill<'a> {
    pub consumer_no: &'a str,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub provisional: bool,
    pub input_hash: &'a str,
    pub body: &'a str,
    pub current: Paise,
    pub payable: Paise,
    pub carried_forward: i64,
    pub due_date: NaiveDate,
}

/// What issuing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// The first bill of the period: its version 1.
    New,
    /// A bill from other figures superseded the one in force: its version.
    Revised(u32),
    /// The bill in force was computed from the same figures: nothing written.
    Unchanged,
}

/// A receipt for money received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub receipt_no: String,
    pub gateway: String,
    pub payment_id: String,
    pub consumer_no: String,
    pub amount: Paise,
    pub paid_at: DateTime<Utc>,
    /// What it paid (JSON): postpaid dues, or the wallet.
    pub allocation: String,
    /// Postpaid: what was owed after it (negative: in advance). Prepaid: the balance after it.
    pub standing: Paise,
    pub issued_at: DateTime<Utc>,
}

const RECEIPT_COLUMNS: &str = "receipt_no, gateway, payment_id, consumer_no, amount, paid_at, \
     allocation, standing, issued_at";

fn receipt(r: &Row<'_>) -> Result<Receipt> {
    Ok(Receipt {
        receipt_no: r.get(0)?,
        gateway: r.get(1)?,
        payment_id: r.get(2)?,
        consumer_no: r.get(3)?,
        amount: Paise(r.get(4)?),
        paid_at: from_ms(r.get(5)?)?,
        allocation: r.get(6)?,
        standing: Paise(r.get(7)?),
        issued_at: from_ms(r.get(8)?)?,
    })
}

const BILL_COLUMNS: &str = "id, consumer_no, period_from, period_to, version, state, provisional, \
     input_hash, body, current, payable, carried_forward, due_date, created_at";

fn account(r: &Row<'_>) -> Result<BillingAccount> {
    Ok(BillingAccount {
        consumer_no: r.get(0)?,
        cycle_day: narrow(r.get(1)?, "cycle day")?,
        contract_demand: r
            .get::<_, Option<i64>>(2)?
            .map(|v| narrow(v, "contract demand"))
            .transpose()?,
        opening_arrears: Paise(r.get(3)?),
        billed_from: day_opt(r.get(4)?)?,
        closed_on: day_opt(r.get(5)?)?,
    })
}

fn bill(r: &Row<'_>) -> Result<StoredBill> {
    Ok(StoredBill {
        id: narrow(r.get(0)?, "bill id")?,
        consumer_no: r.get(1)?,
        period_from: day(&r.get::<_, String>(2)?)?,
        period_to: day(&r.get::<_, String>(3)?)?,
        version: narrow(r.get(4)?, "bill version")?,
        state: r.get(5)?,
        provisional: r.get(6)?,
        input_hash: r.get(7)?,
        body: r.get(8)?,
        current: Paise(r.get(9)?),
        payable: Paise(r.get(10)?),
        carried_forward: r.get(11)?,
        due_date: day(&r.get::<_, String>(12)?)?,
        created_at: from_ms(r.get(13)?)?,
    })
}

impl Store {
    /// Puts a consumer in a billing cycle (or changes their billing).
    pub fn billing_account_put(&self, a: &BillingAccount, at: DateTime<Utc>) -> Result<()> {
        if !(1..=28).contains(&a.cycle_day) {
            return Err(StoreError::Invalid(format!(
                "cycle day {}: give 1 to 28",
                a.cycle_day
            )));
        }
        self.conn().execute(
            "INSERT INTO billing_account (consumer_no, cycle_day, contract_demand, \
             opening_arrears, created_at, billed_from, closed_on) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (consumer_no) DO UPDATE SET cycle_day = excluded.cycle_day, \
             contract_demand = excluded.contract_demand, \
             opening_arrears = excluded.opening_arrears",
            params![
                a.consumer_no,
                a.cycle_day,
                a.contract_demand,
                a.opening_arrears.0,
                ms(at),
                a.billed_from.map(|d| d.to_string()),
                a.closed_on.map(|d| d.to_string())
            ],
        )?;
        Ok(())
    }

    /// The billing accounts of cycle `cycle_day` after `after`, a page at a time.
    pub fn billing_accounts(
        &self,
        cycle_day: u8,
        after: &str,
        limit: u32,
    ) -> Result<Vec<BillingAccount>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT consumer_no, cycle_day, contract_demand, opening_arrears, billed_from, \
             closed_on FROM billing_account \
             WHERE cycle_day = ?1 AND consumer_no > ?2 ORDER BY consumer_no LIMIT ?3",
        )?;
        collect(&mut stmt, params![cycle_day, after, limit], account)
    }

    /// Issues a bill for its period: nothing if the bill in force came from the same figures
    /// (`input_hash`), else a new version that supersedes it. One transaction.
    pub fn bill_issue(&self, b: &NewBill<'_>, at: DateTime<Utc>) -> Result<Issued> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let in_force: Option<(i64, u32, String)> = tx
            .query_row(
                "SELECT id, version, input_hash FROM bill WHERE consumer_no = ?1 \
                 AND period_from = ?2 AND state = 'issued'",
                params![b.consumer_no, b.period_from.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let version = match &in_force {
            Some((_, _, hash)) if hash == b.input_hash => return Ok(Issued::Unchanged),
            Some((id, version, _)) => {
                tx.execute(
                    "UPDATE bill SET state = 'superseded' WHERE id = ?1",
                    params![id],
                )?;
                version + 1
            }
            None => 1,
        };
        tx.execute(
            &format!(
                "INSERT INTO bill ({BILL_COLUMNS}) VALUES \
                 (NULL, ?1, ?2, ?3, ?4, 'issued', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            params![
                b.consumer_no,
                b.period_from.to_string(),
                b.period_to.to_string(),
                version,
                b.provisional,
                b.input_hash,
                b.body,
                b.current.0,
                b.payable.0,
                b.carried_forward,
                b.due_date.to_string(),
                ms(at)
            ],
        )?;
        tx.commit()?;
        Ok(if version == 1 {
            Issued::New
        } else {
            Issued::Revised(version)
        })
    }

    /// The bill in force for the period before `before` (the latest one issued), if any.
    pub fn bill_before(&self, consumer_no: &str, before: NaiveDate) -> Result<Option<StoredBill>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {BILL_COLUMNS} FROM bill WHERE consumer_no = ?1 AND state = 'issued' \
             AND period_from < ?2 ORDER BY period_from DESC LIMIT 1"
        ))?;
        stmt.query_row(params![consumer_no, before.to_string()], |r| Ok(bill(r)))
            .optional()?
            .transpose()
    }

    /// One bill by id.
    pub fn bill(&self, id: u64) -> Result<Option<StoredBill>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {BILL_COLUMNS} FROM bill WHERE id = ?1"))?;
        stmt.query_row(params![i64::try_from(id).unwrap_or(-1)], |r| Ok(bill(r)))
            .optional()?
            .transpose()
    }

    /// What a bill shows of the consumer at `at`: name, category, the service point's address
    /// and sanctioned load (W), and the meter installed there.
    pub fn bill_header(&self, consumer_no: &str, at: DateTime<Utc>) -> Result<Option<BillParty>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT c.name, c.category, s.address, s.sanctioned_load_w, \
                 (SELECT i.meter FROM meter_installation i WHERE i.service_point = s.id \
                  AND i.valid_from <= ?2 AND (i.valid_to IS NULL OR i.valid_to > ?2) LIMIT 1) \
             FROM consumer c \
             LEFT JOIN service_point_consumer sc ON sc.consumer_no = c.consumer_no \
                 AND sc.valid_from <= ?2 AND (sc.valid_to IS NULL OR sc.valid_to > ?2) \
             LEFT JOIN service_point s ON s.id = sc.service_point \
             WHERE c.consumer_no = ?1 LIMIT 1",
        )?;
        Ok(stmt
            .query_row(params![consumer_no, ms(at)], |r| {
                Ok(BillParty {
                    name: r.get(0)?,
                    category: r.get(1)?,
                    address: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    sanctioned_w: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                    meter: r.get(4)?,
                })
            })
            .optional()?)
    }

    /// A consumer's bills, newest period first (every version, `issued` ones in force).
    pub fn bills_of(&self, consumer_no: &str, limit: u32) -> Result<Vec<StoredBill>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {BILL_COLUMNS} FROM bill WHERE consumer_no = ?1 \
             ORDER BY period_from DESC, version DESC LIMIT ?2"
        ))?;
        collect(&mut stmt, params![consumer_no, limit], bill)
    }

    /// Closes a billing account as the consumer goes prepaid on `on`: nothing from that day on
    /// is billed here.
    pub fn billing_account_close(&self, consumer_no: &str, on: NaiveDate) -> Result<()> {
        self.conn().execute(
            "UPDATE billing_account SET closed_on = ?2 WHERE consumer_no = ?1",
            params![consumer_no, on.to_string()],
        )?;
        Ok(())
    }

    /// Opens (or reopens) a billing account as the consumer comes back to postpaid on `from`,
    /// in its old cycle, or in `cycle_day` if it never had one.
    pub fn billing_account_reopen(
        &self,
        consumer_no: &str,
        from: NaiveDate,
        cycle_day: u8,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO billing_account (consumer_no, cycle_day, contract_demand, \
             opening_arrears, created_at, billed_from, closed_on) \
             VALUES (?1, ?2, NULL, 0, ?3, ?4, NULL) \
             ON CONFLICT (consumer_no) DO UPDATE SET billed_from = excluded.billed_from, \
             closed_on = NULL",
            params![
                consumer_no,
                cycle_day.clamp(1, 28),
                ms(at),
                from.to_string()
            ],
        )?;
        Ok(())
    }

    /// Records an adjustment once per key; false when it was recorded before.
    pub fn billing_adjustment_put(
        &self,
        consumer_no: &str,
        a: &Adjustment,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let added = self.conn().execute(
            "INSERT INTO billing_adjustment (consumer_no, key, on_date, amount, reason, \
             created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (consumer_no, key) DO NOTHING",
            params![
                consumer_no,
                a.key,
                a.on.to_string(),
                a.amount.0,
                a.reason,
                ms(at)
            ],
        )?;
        Ok(added == 1)
    }

    /// A consumer's adjustments, oldest first.
    pub fn billing_adjustments(&self, consumer_no: &str) -> Result<Vec<Adjustment>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key, on_date, amount, reason FROM billing_adjustment \
             WHERE consumer_no = ?1 ORDER BY on_date, key",
        )?;
        collect(&mut stmt, params![consumer_no], |r| {
            Ok(Adjustment {
                key: r.get(0)?,
                on: day(&r.get::<_, String>(1)?)?,
                amount: Paise(r.get(2)?),
                reason: r.get(3)?,
            })
        })
    }

    /// A consumer's billing account.
    pub fn billing_account(&self, consumer_no: &str) -> Result<Option<BillingAccount>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT consumer_no, cycle_day, contract_demand, opening_arrears, billed_from, \
             closed_on FROM billing_account \
             WHERE consumer_no = ?1",
        )?;
        stmt.query_row(params![consumer_no], |r| Ok(account(r)))
            .optional()?
            .transpose()
    }

    /// A consumer's bills in force, oldest period first.
    pub fn bills_in_force(&self, consumer_no: &str) -> Result<Vec<StoredBill>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {BILL_COLUMNS} FROM bill WHERE consumer_no = ?1 AND state = 'issued' \
             ORDER BY period_from"
        ))?;
        collect(&mut stmt, params![consumer_no], bill)
    }

    /// The payments applied to a consumer's postpaid account, in the order they were paid.
    pub fn payments_applied(&self, consumer_no: &str) -> Result<Vec<Payment>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payment WHERE consumer_no = ?1 AND status = 'applied' \
             ORDER BY paid_at, payment_id"
        ))?;
        collect(&mut stmt, params![consumer_no], payment)
    }

    /// Issues the receipt of a kept payment, numbered in order; a payment has one receipt: a
    /// second call returns the first.
    pub fn receipt_issue(
        &self,
        gateway: &str,
        payment_id: &str,
        allocation: &str,
        standing: Paise,
        at: DateTime<Utc>,
    ) -> Result<Receipt> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO receipt (receipt_no, gateway, payment_id, consumer_no, amount, paid_at, \
                 allocation, standing, issued_at) \
             SELECT printf('R%010d', (SELECT COALESCE(MAX(rowid), 0) + 1 FROM receipt)), \
                 gateway, payment_id, consumer_no, amount, paid_at, ?3, ?4, ?5 \
             FROM payment WHERE gateway = ?1 AND payment_id = ?2 \
             ON CONFLICT (gateway, payment_id) DO NOTHING",
            params![gateway, payment_id, allocation, standing.0, ms(at)],
        )?;
        tx.commit()?;
        drop(conn);
        self.receipt_of(gateway, payment_id)?
            .ok_or_else(|| StoreError::NotFound(format!("payment {gateway}/{payment_id}")))
    }

    /// The receipt of a payment, if one was issued.
    pub fn receipt_of(&self, gateway: &str, payment_id: &str) -> Result<Option<Receipt>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipt WHERE gateway = ?1 AND payment_id = ?2"
        ))?;
        stmt.query_row(params![gateway, payment_id], |r| Ok(receipt(r)))
            .optional()?
            .transpose()
    }

    /// One receipt by number.
    pub fn receipt(&self, receipt_no: &str) -> Result<Option<Receipt>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipt WHERE receipt_no = ?1"
        ))?;
        stmt.query_row(params![receipt_no], |r| Ok(receipt(r)))
            .optional()?
            .transpose()
    }

    /// A consumer's receipts, newest first.
    pub fn receipts_of(&self, consumer_no: &str, limit: u32) -> Result<Vec<Receipt>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipt WHERE consumer_no = ?1 \
             ORDER BY issued_at DESC, receipt_no DESC LIMIT ?2"
        ))?;
        collect(&mut stmt, params![consumer_no, limit], receipt)
    }
}

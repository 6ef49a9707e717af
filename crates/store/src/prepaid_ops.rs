//! The prepaid engine's operations (migration `0007_prepaid_ops`): tariff versions, prepaid
//! accounts (mode, last recharge and its alert cycle, emergency credit), payment confirmations
//! kept whole, low-balance alerts sent, the disconnection/reconnection cases and the
//! payment-mode migrations. The wallets and their ledger are in [`crate::prepaid`].

use chrono::{DateTime, NaiveDate, Utc};
use model::{MeterSerial, Paise};
use rusqlite::{OptionalExtension, Row, params};

use crate::{Result, Store, StoreError, day, from_ms, from_ms_opt, ms, narrow, serial};

/// One stored version of a tariff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffVersion {
    /// `prepaid` (daily charges) or `postpaid` (monthly bills).
    pub scheme: String,
    pub category: String,
    pub effective_from: NaiveDate,
    pub code: String,
    /// The tariff as JSON.
    pub body: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// How a consumer pays, and the prepaid engine's per-consumer state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepaidAccount {
    pub consumer_no: String,
    pub prepaid: bool,
    pub since: DateTime<Utc>,
    pub migrated_at: Option<DateTime<Utc>>,
    pub last_recharge: Paise,
    /// The ledger number of the last recharge: the low-balance alert cycle.
    pub cycle: u64,
    pub emergency_outstanding: Paise,
    pub emergency_until: Option<DateTime<Utc>>,
    pub emergency_grants: u32,
}

/// A payment confirmation as the gateway sent it, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub gateway: String,
    pub payment_id: String,
    pub consumer_no: String,
    pub amount: Paise,
    /// `received`, `credited` (to a wallet), `applied` (to a postpaid account), `refused` or
    /// `unmatched`.
    pub status: String,
    pub reason: Option<String>,
    /// The confirmation's body, whole.
    pub body: String,
    pub paid_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
    pub balance: Option<Paise>,
    /// Through a digital channel (gateway, bank transfer, card, UPI), not cash or cheque.
    pub digital: bool,
}

/// Where a disconnection case is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseState {
    Short,
    Disconnecting,
    Disconnected,
    Reconnecting,
    Closed,
}

impl CaseState {
    pub fn name(self) -> &'static str {
        match self {
            CaseState::Short => "short",
            CaseState::Disconnecting => "disconnecting",
            CaseState::Disconnected => "disconnected",
            CaseState::Reconnecting => "reconnecting",
            CaseState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<CaseState> {
        [
            CaseState::Short,
            CaseState::Disconnecting,
            CaseState::Disconnected,
            CaseState::Reconnecting,
            CaseState::Closed,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }
}

/// A connection whose balance fell short, from the warning to the reconnection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplyCase {
    pub id: u64,
    pub consumer_no: String,
    pub meter: MeterSerial,
    pub state: CaseState,
    pub opened_at: DateTime<Utc>,
    pub balance_at_open: Paise,
    pub warned_at: Option<DateTime<Utc>>,
    /// The earliest disconnection the warning announced.
    pub disconnect_from: Option<DateTime<Utc>>,
    pub disconnect_command: Option<String>,
    pub disconnect_sent_at: Option<DateTime<Utc>>,
    /// When the open relay was confirmed.
    pub disconnected_at: Option<DateTime<Utc>>,
    pub recharged_at: Option<DateTime<Utc>>,
    pub reconnect_due_by: Option<DateTime<Utc>>,
    pub reconnect_command: Option<String>,
    pub reconnect_sent_at: Option<DateTime<Utc>>,
    /// When the closed relay was confirmed.
    pub reconnected_at: Option<DateTime<Utc>>,
    /// Commands sent for this case (each retry is a new command).
    pub attempts: u32,
    pub closed_at: Option<DateTime<Utc>>,
    /// How it ended: `recharged_before_disconnection`, `reconnected`, …
    pub outcome: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Where a payment-mode migration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MigrationState {
    Requested,
    Running,
    Completed,
    Failed,
}

impl MigrationState {
    pub fn name(self) -> &'static str {
        match self {
            MigrationState::Requested => "requested",
            MigrationState::Running => "running",
            MigrationState::Completed => "completed",
            MigrationState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<MigrationState> {
        [
            MigrationState::Requested,
            MigrationState::Running,
            MigrationState::Completed,
            MigrationState::Failed,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, MigrationState::Completed | MigrationState::Failed)
    }
}

/// A consumer's move between postpaid and prepaid (use cases 13 and 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeMigration {
    pub id: u64,
    pub consumer_no: String,
    pub meter: MeterSerial,
    /// True: postpaid → prepaid.
    pub to_prepaid: bool,
    pub state: MigrationState,
    /// To prepaid: the opening balance; to postpaid: the closing balance carried over.
    pub balance: Paise,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// The step under way (0-based) and its command.
    pub step: u32,
    pub command: Option<String>,
    /// JSON array of the steps done: name, command, state, what the meter answered.
    pub log: String,
    pub completed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

const ACCOUNT_COLUMNS: &str = "consumer_no, mode, since, migrated_at, last_recharge, cycle, \
     emergency_outstanding, emergency_until, emergency_grants";

fn account(r: &Row<'_>) -> Result<PrepaidAccount> {
    let mode: String = r.get(1)?;
    Ok(PrepaidAccount {
        consumer_no: r.get(0)?,
        prepaid: mode == "prepaid",
        since: from_ms(r.get(2)?)?,
        migrated_at: from_ms_opt(r.get(3)?)?,
        last_recharge: Paise(r.get(4)?),
        cycle: narrow(r.get(5)?, "alert cycle")?,
        emergency_outstanding: Paise(r.get(6)?),
        emergency_until: from_ms_opt(r.get(7)?)?,
        emergency_grants: narrow(r.get(8)?, "emergency grants")?,
    })
}

pub(crate) const PAYMENT_COLUMNS: &str = "gateway, payment_id, consumer_no, amount, status, reason, body, \
     paid_at, received_at, settled_at, balance, digital";

pub(crate) fn payment(r: &Row<'_>) -> Result<Payment> {
    Ok(Payment {
        gateway: r.get(0)?,
        payment_id: r.get(1)?,
        consumer_no: r.get(2)?,
        amount: Paise(r.get(3)?),
        status: r.get(4)?,
        reason: r.get(5)?,
        body: r.get(6)?,
        paid_at: from_ms(r.get(7)?)?,
        received_at: from_ms(r.get(8)?)?,
        settled_at: from_ms_opt(r.get(9)?)?,
        balance: r.get::<_, Option<i64>>(10)?.map(Paise),
        digital: r.get(11)?,
    })
}

const CASE_COLUMNS: &str = "id, consumer_no, meter, state, opened_at, balance_at_open, \
     warned_at, disconnect_from, disconnect_command, disconnect_sent_at, disconnected_at, \
     recharged_at, reconnect_due_by, reconnect_command, reconnect_sent_at, reconnected_at, \
     attempts, closed_at, outcome, last_error, updated_at";

fn case(r: &Row<'_>) -> Result<SupplyCase> {
    let state: String = r.get(3)?;
    Ok(SupplyCase {
        id: narrow(r.get(0)?, "case id")?,
        consumer_no: r.get(1)?,
        meter: serial(r.get(2)?)?,
        state: CaseState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("case state {state}")))?,
        opened_at: from_ms(r.get(4)?)?,
        balance_at_open: Paise(r.get(5)?),
        warned_at: from_ms_opt(r.get(6)?)?,
        disconnect_from: from_ms_opt(r.get(7)?)?,
        disconnect_command: r.get(8)?,
        disconnect_sent_at: from_ms_opt(r.get(9)?)?,
        disconnected_at: from_ms_opt(r.get(10)?)?,
        recharged_at: from_ms_opt(r.get(11)?)?,
        reconnect_due_by: from_ms_opt(r.get(12)?)?,
        reconnect_command: r.get(13)?,
        reconnect_sent_at: from_ms_opt(r.get(14)?)?,
        reconnected_at: from_ms_opt(r.get(15)?)?,
        attempts: narrow(r.get(16)?, "attempts")?,
        closed_at: from_ms_opt(r.get(17)?)?,
        outcome: r.get(18)?,
        last_error: r.get(19)?,
        updated_at: from_ms(r.get(20)?)?,
    })
}

const MIGRATION_COLUMNS: &str = "id, consumer_no, meter, target, state, balance, requested_by, \
     requested_at, step, command, log, completed_at, last_error, updated_at";

fn migration(r: &Row<'_>) -> Result<ModeMigration> {
    let target: String = r.get(3)?;
    let state: String = r.get(4)?;
    Ok(ModeMigration {
        id: narrow(r.get(0)?, "migration id")?,
        consumer_no: r.get(1)?,
        meter: serial(r.get(2)?)?,
        to_prepaid: target == "prepaid",
        state: MigrationState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("migration state {state}")))?,
        balance: Paise(r.get(5)?),
        requested_by: r.get(6)?,
        requested_at: from_ms(r.get(7)?)?,
        step: narrow(r.get(8)?, "migration step")?,
        command: r.get(9)?,
        log: r.get(10)?,
        completed_at: from_ms_opt(r.get(11)?)?,
        last_error: r.get(12)?,
        updated_at: from_ms(r.get(13)?)?,
    })
}

pub(crate) fn collect<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    f: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(f(r)?);
    }
    Ok(out)
}

impl Store {
    // --- tariff versions

    /// Stores a tariff version. A version already in force (`effective_from` on or before
    /// `today`) is never rewritten: charges were computed with it.
    pub fn tariff_put(&self, v: &TariffVersion, today: NaiveDate) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if !["prepaid", "postpaid"].contains(&v.scheme.as_str()) {
            return Err(StoreError::Invalid(format!(
                "tariff scheme {:?}: prepaid or postpaid",
                v.scheme
            )));
        }
        let existing: Option<String> = tx
            .query_row(
                "SELECT body FROM tariff_version WHERE scheme = ?1 AND category = ?2 \
                 AND effective_from = ?3",
                params![v.scheme, v.category, v.effective_from.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        if existing.as_deref() == Some(v.body.as_str()) {
            return Ok(());
        }
        if existing.is_some() && v.effective_from <= today {
            return Err(StoreError::Conflict(format!(
                "the {} tariff of {} is in force and cannot be changed; add a new version",
                v.category, v.effective_from
            )));
        }
        // Days already charged are not re-priced: a new version starts after today, except
        // the first of a category (nothing was charged by it before).
        let versions: i64 = tx.query_row(
            "SELECT COUNT(*) FROM tariff_version WHERE scheme = ?1 AND category = ?2",
            params![v.scheme, v.category],
            |r| r.get(0),
        )?;
        if existing.is_none() && versions > 0 && v.effective_from <= today {
            return Err(StoreError::Conflict(format!(
                "a new {} tariff must start after today ({today}); {} has passed",
                v.category, v.effective_from
            )));
        }
        tx.execute(
            "INSERT INTO tariff_version (scheme, category, effective_from, code, body, \
             created_by, created_at) VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (scheme, category, effective_from) DO UPDATE SET code = excluded.code, \
             body = excluded.body, created_by = excluded.created_by, \
             created_at = excluded.created_at",
            params![
                v.category,
                v.effective_from.to_string(),
                v.code,
                v.body,
                v.created_by,
                ms(v.created_at),
                v.scheme
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The tariff versions of `scheme` (every scheme: `None`), by scheme, category and date.
    pub fn tariff_versions(&self, scheme: Option<&str>) -> Result<Vec<TariffVersion>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT category, effective_from, code, body, created_by, created_at, scheme \
             FROM tariff_version WHERE (?1 IS NULL OR scheme = ?1) \
             ORDER BY scheme, category, effective_from",
        )?;
        collect(&mut stmt, params![scheme], |r| {
            Ok(TariffVersion {
                scheme: r.get(6)?,
                category: r.get(0)?,
                effective_from: day(&r.get::<_, String>(1)?)?,
                code: r.get(2)?,
                body: r.get(3)?,
                created_by: r.get(4)?,
                created_at: from_ms(r.get(5)?)?,
            })
        })
    }

    // --- accounts

    /// Makes `consumer_no` prepaid with a wallet (opened if new). `migrated_at` starts the grace
    /// period of a migration. Returns the account.
    pub fn prepaid_enrol(
        &self,
        consumer_no: &str,
        at: DateTime<Utc>,
        migrated_at: Option<DateTime<Utc>>,
    ) -> Result<PrepaidAccount> {
        self.wallet_open(consumer_no, at)?;
        self.conn().execute(
            "INSERT INTO prepaid_account (consumer_no, mode, since, migrated_at, updated_at) \
             VALUES (?1, 'prepaid', ?2, ?3, ?2) ON CONFLICT (consumer_no) DO UPDATE SET \
             mode = 'prepaid', since = CASE WHEN mode = 'prepaid' THEN since ELSE ?2 END, \
             migrated_at = COALESCE(?3, migrated_at), updated_at = ?2",
            params![consumer_no, ms(at), migrated_at.map(ms)],
        )?;
        self.prepaid_account(consumer_no)?
            .ok_or_else(|| StoreError::NotFound(format!("prepaid account {consumer_no}")))
    }

    /// Makes a prepaid consumer postpaid (the wallet and its ledger stay).
    pub fn prepaid_leave(&self, consumer_no: &str, at: DateTime<Utc>) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE prepaid_account SET mode = 'postpaid', since = ?2, updated_at = ?2 \
             WHERE consumer_no = ?1",
            params![consumer_no, ms(at)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "prepaid account {consumer_no}"
            )));
        }
        Ok(())
    }

    pub fn prepaid_account(&self, consumer_no: &str) -> Result<Option<PrepaidAccount>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM prepaid_account WHERE consumer_no = ?1"
        ))?;
        stmt.query_row(params![consumer_no], |r| Ok(account(r)))
            .optional()?
            .transpose()
    }

    /// What a charge run needs of every prepaid consumer, in one scan, after `after`: the
    /// account, the consumer's tariff category (`None`: not a consumer the MDM knows) and the
    /// sanctioned load of the service point they are connected at `at` (0 if none).
    pub fn prepaid_charge_accounts(
        &self,
        at: DateTime<Utc>,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(PrepaidAccount, Option<String>, u32)>> {
        let conn = self.conn();
        let columns = ACCOUNT_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {columns}, c.category, \
                 (SELECT s.sanctioned_load_w FROM service_point_consumer sc \
                  JOIN service_point s ON s.id = sc.service_point \
                  WHERE sc.consumer_no = a.consumer_no AND sc.valid_from <= ?1 \
                  AND (sc.valid_to IS NULL OR sc.valid_to > ?1) LIMIT 1) \
             FROM prepaid_account a LEFT JOIN consumer c ON c.consumer_no = a.consumer_no \
             WHERE a.mode = 'prepaid' AND a.consumer_no > ?2 ORDER BY a.consumer_no LIMIT ?3"
        ))?;
        collect(&mut stmt, params![ms(at), after, limit], |r| {
            Ok((
                account(r)?,
                r.get(9)?,
                narrow(r.get::<_, Option<i64>>(10)?.unwrap_or(0), "sanctioned load")?,
            ))
        })
    }

    /// Prepaid accounts whose balance is at or below `percent` % of their last recharge (the
    /// ones a low-balance alert may be due for), after `after`.
    pub fn prepaid_low(&self, percent: u8, after: &str, limit: u32) -> Result<Vec<PrepaidAccount>> {
        let conn = self.conn();
        let columns = ACCOUNT_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {columns} FROM prepaid_account a JOIN wallet w \
             ON w.consumer_no = a.consumer_no WHERE a.mode = 'prepaid' \
             AND w.balance * 100 <= MAX(a.last_recharge, 0) * ?1 AND a.consumer_no > ?2 \
             ORDER BY a.consumer_no LIMIT ?3"
        ))?;
        collect(&mut stmt, params![percent, after, limit], account)
    }

    /// Prepaid consumers whose balance is below `below`, with the balance, a page at a time.
    pub fn prepaid_short(
        &self,
        below: Paise,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, Paise)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT w.consumer_no, w.balance FROM wallet w \
             JOIN prepaid_account a ON a.consumer_no = w.consumer_no \
             WHERE a.mode = 'prepaid' AND w.balance < ?1 AND w.consumer_no > ?2 \
             ORDER BY w.consumer_no LIMIT ?3",
        )?;
        collect(&mut stmt, params![below.0, after, limit], |r| {
            Ok((r.get(0)?, Paise(r.get(1)?)))
        })
    }

    /// Records a recharge of `amount` at ledger entry `n`: a new alert cycle.
    pub fn prepaid_recharged(
        &self,
        consumer_no: &str,
        amount: Paise,
        n: u64,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE prepaid_account SET last_recharge = ?2, cycle = ?3, updated_at = ?4 \
             WHERE consumer_no = ?1 AND cycle < ?3",
            params![
                consumer_no,
                amount.0,
                i64::try_from(n).unwrap_or(i64::MAX),
                ms(at)
            ],
        )?;
        Ok(())
    }

    /// Records emergency credit granted: `amount` more outstanding, protecting the supply until
    /// `until`.
    pub fn prepaid_emergency(
        &self,
        consumer_no: &str,
        amount: Paise,
        until: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let granted = i64::from(amount.0 > 0);
        self.conn().execute(
            "UPDATE prepaid_account SET emergency_outstanding = emergency_outstanding + ?2, \
             emergency_until = ?3, emergency_grants = emergency_grants + ?4, updated_at = ?5 \
             WHERE consumer_no = ?1",
            params![consumer_no, amount.0, until.map(ms), granted, ms(at)],
        )?;
        Ok(())
    }

    /// Emergency credit of `amount` recovered: cleared only if that much is outstanding (a
    /// second, concurrent recovery clears nothing); whether it was.
    pub fn prepaid_emergency_recovered(
        &self,
        consumer_no: &str,
        amount: Paise,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE prepaid_account SET emergency_outstanding = 0, emergency_until = NULL, \
             updated_at = ?3 WHERE consumer_no = ?1 AND emergency_outstanding = ?2",
            params![consumer_no, amount.0, ms(at)],
        )? == 1)
    }

    /// The meter supplying `consumer_no` at `at` and its service point's sanctioned load (W).
    pub fn prepaid_supply(
        &self,
        consumer_no: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<(MeterSerial, u32)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT i.meter, s.sanctioned_load_w FROM service_point_consumer c \
             JOIN meter_installation i ON i.service_point = c.service_point \
             JOIN service_point s ON s.id = c.service_point \
             WHERE c.consumer_no = ?1 AND c.valid_from <= ?2 \
               AND (c.valid_to IS NULL OR c.valid_to > ?2) \
               AND i.valid_from <= ?2 AND (i.valid_to IS NULL OR i.valid_to > ?2) LIMIT 1",
        )?;
        stmt.query_row(params![consumer_no, ms(at)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?
        .map(|(m, w)| Ok((serial(m)?, narrow(w, "sanctioned load")?)))
        .transpose()
    }

    // --- payments

    /// Keeps a payment confirmation, once per (gateway, payment id): the first one received is
    /// answered for every replay.
    pub fn payment_receive(&self, p: &Payment) -> Result<Payment> {
        let conn = self.conn();
        conn.execute(
            &format!(
                "INSERT INTO payment ({PAYMENT_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, 'received', NULL, ?5, ?6, ?7, NULL, NULL, ?8) \
                 ON CONFLICT (gateway, payment_id) DO NOTHING"
            ),
            params![
                p.gateway,
                p.payment_id,
                p.consumer_no,
                p.amount.0,
                p.body,
                ms(p.paid_at),
                ms(p.received_at),
                p.digital
            ],
        )?;
        drop(conn);
        self.payment(&p.gateway, &p.payment_id)?
            .ok_or_else(|| StoreError::NotFound(format!("payment {}", p.payment_id)))
    }

    /// What became of a received payment.
    pub fn payment_settle(
        &self,
        gateway: &str,
        payment_id: &str,
        status: &str,
        reason: Option<&str>,
        balance: Option<Paise>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE payment SET status = ?3, reason = ?4, balance = ?5, settled_at = ?6 \
             WHERE gateway = ?1 AND payment_id = ?2",
            params![
                gateway,
                payment_id,
                status,
                reason,
                balance.map(|b| b.0),
                ms(at)
            ],
        )?;
        Ok(())
    }

    pub fn payment(&self, gateway: &str, payment_id: &str) -> Result<Option<Payment>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payment WHERE gateway = ?1 AND payment_id = ?2"
        ))?;
        stmt.query_row(params![gateway, payment_id], |r| Ok(payment(r)))
            .optional()?
            .transpose()
    }

    /// Payments kept but not settled, received before `before` (a crash came between the
    /// two), oldest first.
    pub fn payments_unsettled(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Payment>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payment WHERE status = 'received' \
             AND received_at < ?1 ORDER BY received_at LIMIT ?2"
        ))?;
        collect(&mut stmt, params![ms(before), limit], payment)
    }

    /// A consumer's payments, newest first.
    pub fn payments_of(&self, consumer_no: &str, limit: u32) -> Result<Vec<Payment>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payment WHERE consumer_no = ?1 \
             ORDER BY received_at DESC, payment_id DESC LIMIT ?2"
        ))?;
        collect(&mut stmt, params![consumer_no, limit], payment)
    }

    // --- low-balance alerts

    /// Records an alert at `percent` in `cycle`; false if it was sent before.
    pub fn low_balance_alert(
        &self,
        consumer_no: &str,
        cycle: u64,
        percent: u8,
        balance: Paise,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(self.conn().execute(
            "INSERT INTO low_balance_alert (consumer_no, cycle, percent, balance, at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![
                consumer_no,
                i64::try_from(cycle).unwrap_or(i64::MAX),
                percent,
                balance.0,
                ms(at)
            ],
        )? == 1)
    }

    /// The thresholds announced in `cycle`.
    pub fn low_balance_alerts(&self, consumer_no: &str, cycle: u64) -> Result<Vec<u8>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT percent FROM low_balance_alert WHERE consumer_no = ?1 AND cycle = ?2 \
             ORDER BY percent",
        )?;
        collect(
            &mut stmt,
            params![consumer_no, i64::try_from(cycle).unwrap_or(i64::MAX)],
            |r| narrow(r.get(0)?, "alert percent"),
        )
    }

    // --- disconnection cases

    /// Opens a case for `consumer_no`, or answers the one open.
    pub fn supply_case_open(
        &self,
        consumer_no: &str,
        meter: &MeterSerial,
        balance: Paise,
        at: DateTime<Utc>,
    ) -> Result<SupplyCase> {
        self.conn().execute(
            "INSERT INTO supply_case (consumer_no, meter, state, opened_at, balance_at_open, \
             updated_at) VALUES (?1, ?2, 'short', ?3, ?4, ?3) ON CONFLICT DO NOTHING",
            params![consumer_no, meter.as_str(), ms(at), balance.0],
        )?;
        self.supply_case_open_for(consumer_no)?
            .ok_or_else(|| StoreError::NotFound(format!("open case of {consumer_no}")))
    }

    /// The case open for `consumer_no`, if any.
    pub fn supply_case_open_for(&self, consumer_no: &str) -> Result<Option<SupplyCase>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CASE_COLUMNS} FROM supply_case WHERE consumer_no = ?1 AND state <> 'closed'"
        ))?;
        stmt.query_row(params![consumer_no], |r| Ok(case(r)))
            .optional()?
            .transpose()
    }

    pub fn supply_case(&self, id: u64) -> Result<Option<SupplyCase>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CASE_COLUMNS} FROM supply_case WHERE id = ?1"
        ))?;
        stmt.query_row(params![i64::try_from(id).unwrap_or(-1)], |r| Ok(case(r)))
            .optional()?
            .transpose()
    }

    /// Cases after id `after`, oldest first, optionally in one state or for one consumer.
    pub fn supply_cases(
        &self,
        state: Option<CaseState>,
        consumer_no: Option<&str>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SupplyCase>> {
        let conn = self.conn();
        // One state alone is the engine's look, every few seconds: by the (state, id) index,
        // not a scan of every case ever closed.
        let sql = if state.is_some() && consumer_no.is_none() {
            format!(
                "SELECT {CASE_COLUMNS} FROM supply_case WHERE state = ?2 AND id > ?1 \
                 AND ?3 IS NULL ORDER BY id LIMIT ?4"
            )
        } else {
            format!(
                "SELECT {CASE_COLUMNS} FROM supply_case WHERE id > ?1 \
                 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR consumer_no = ?3) \
                 ORDER BY id LIMIT ?4"
            )
        };
        let mut stmt = conn.prepare_cached(&sql)?;
        collect(
            &mut stmt,
            params![
                i64::try_from(after).unwrap_or(i64::MAX),
                state.map(CaseState::name),
                consumer_no,
                limit
            ],
            case,
        )
    }

    /// Writes a case as it now stands (its id and consumer do not change).
    pub fn supply_case_save(&self, c: &SupplyCase) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE supply_case SET state = ?2, warned_at = ?3, disconnect_from = ?4, \
             disconnect_command = ?5, disconnect_sent_at = ?6, disconnected_at = ?7, \
             recharged_at = ?8, reconnect_due_by = ?9, reconnect_command = ?10, \
             reconnect_sent_at = ?11, reconnected_at = ?12, attempts = ?13, closed_at = ?14, \
             outcome = ?15, last_error = ?16, updated_at = ?17, meter = ?18 WHERE id = ?1",
            params![
                i64::try_from(c.id).unwrap_or(-1),
                c.state.name(),
                c.warned_at.map(ms),
                c.disconnect_from.map(ms),
                c.disconnect_command,
                c.disconnect_sent_at.map(ms),
                c.disconnected_at.map(ms),
                c.recharged_at.map(ms),
                c.reconnect_due_by.map(ms),
                c.reconnect_command,
                c.reconnect_sent_at.map(ms),
                c.reconnected_at.map(ms),
                c.attempts,
                c.closed_at.map(ms),
                c.outcome,
                c.last_error,
                ms(c.updated_at),
                c.meter.as_str(),
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("case {}", c.id)));
        }
        Ok(())
    }

    // --- payment-mode migrations

    /// Starts a migration, or answers the one in progress for the consumer.
    pub fn mode_migration_start(
        &self,
        consumer_no: &str,
        meter: &MeterSerial,
        to_prepaid: bool,
        balance: Paise,
        requested_by: &str,
        at: DateTime<Utc>,
    ) -> Result<ModeMigration> {
        self.conn().execute(
            "INSERT INTO mode_migration (consumer_no, meter, target, state, balance, \
             requested_by, requested_at, updated_at) \
             VALUES (?1, ?2, ?3, 'requested', ?4, ?5, ?6, ?6) ON CONFLICT DO NOTHING",
            params![
                consumer_no,
                meter.as_str(),
                if to_prepaid { "prepaid" } else { "postpaid" },
                balance.0,
                requested_by,
                ms(at)
            ],
        )?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MIGRATION_COLUMNS} FROM mode_migration WHERE consumer_no = ?1 \
             AND state NOT IN ('completed', 'failed')"
        ))?;
        stmt.query_row(params![consumer_no], |r| Ok(migration(r)))
            .optional()?
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("migration of {consumer_no}")))
    }

    pub fn mode_migration(&self, id: u64) -> Result<Option<ModeMigration>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MIGRATION_COLUMNS} FROM mode_migration WHERE id = ?1"
        ))?;
        stmt.query_row(params![i64::try_from(id).unwrap_or(-1)], |r| {
            Ok(migration(r))
        })
        .optional()?
        .transpose()
    }

    /// Migrations after id `after`, oldest first; `active` only those in progress.
    pub fn mode_migrations(
        &self,
        active: bool,
        after: u64,
        limit: u32,
    ) -> Result<Vec<ModeMigration>> {
        let conn = self.conn();
        // Those in progress by their partial index (followed every few seconds).
        let which = if active {
            "AND state NOT IN ('completed', 'failed')"
        } else {
            ""
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MIGRATION_COLUMNS} FROM mode_migration WHERE id > ?1 {which} \
             ORDER BY id LIMIT ?2"
        ))?;
        collect(
            &mut stmt,
            params![i64::try_from(after).unwrap_or(i64::MAX), limit],
            migration,
        )
    }

    /// A consumer's migrations, oldest first.
    pub fn mode_migrations_of(&self, consumer_no: &str) -> Result<Vec<ModeMigration>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MIGRATION_COLUMNS} FROM mode_migration WHERE consumer_no = ?1 ORDER BY id"
        ))?;
        collect(&mut stmt, params![consumer_no], migration)
    }

    /// Writes a migration as it now stands.
    pub fn mode_migration_save(&self, m: &ModeMigration) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE mode_migration SET state = ?2, balance = ?3, step = ?4, command = ?5, \
             log = ?6, completed_at = ?7, last_error = ?8, updated_at = ?9 WHERE id = ?1",
            params![
                i64::try_from(m.id).unwrap_or(-1),
                m.state.name(),
                m.balance.0,
                m.step,
                m.command,
                m.log,
                m.completed_at.map(ms),
                m.last_error,
                ms(m.updated_at),
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("migration {}", m.id)));
        }
        Ok(())
    }
}

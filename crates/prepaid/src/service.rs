//! The prepaid engine at work: payments credited and pushed to the meter, the daily charge run
//! with its low-balance alerts, emergency credit, the disconnection cases (warn, disconnect at
//! the first unprotected moment, reconnect within the regulator's two hours after a recharge)
//! and the payment-mode migrations, each step through the head-end's commands with the meter's
//! answer read back.
//!
//! State lives in the store (`store::prepaid_ops`), so the engine can stop at any point and
//! carry on: every command has an id derived from its case and attempt, and the head-end runs an
//! id once.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use hes::commands::{CommandError, CommandStatus, Commands};
use model::command::{CommandId, CommandKind, CommandState};
use model::reading::EventCategory;
use model::{MeterSerial, Paise, PaymentMode, RelayState};
use notify::Notice;
use serde::{Deserialize, Serialize};
use store::billing::Adjustment;
use store::prepaid::{NewEntry, Posted};
use store::prepaid_ops::{
    CaseState, MigrationState, ModeMigration, Payment, PrepaidAccount, SupplyCase,
};
use store::{RoutedMessage, Store, StoreError};

use crate::alerts::{AlertPolicy, alerts_due};
use crate::charging::{Account, ChargeError, DayFiguresBook, DayUse, run_day, true_up_month};
use crate::policy::{Connection, DisconnectionPolicy, Protection, Step, next_step};
use crate::recharge::{RechargeError, RechargePolicy, recharge};
use tariff::{Tariff, TariffBook};

/// Emergency credit: a small advance a consumer may take once per recharge cycle when the
/// balance runs low, recovered from the next recharge; the supply is protected while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmergencyCreditPolicy {
    pub amount: Paise,
    /// How long the supply is protected after a grant.
    pub days: u32,
    /// Granted only when the balance is below this.
    pub below: Paise,
}

impl Default for EmergencyCreditPolicy {
    /// ₹100 for three days, once the balance is under ₹50.
    fn default() -> Self {
        EmergencyCreditPolicy {
            amount: Paise(10_000),
            days: 3,
            below: Paise(5_000),
        }
    }
}

/// A utility's prepaid rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrepaidConfig {
    pub alerts: AlertPolicy,
    pub disconnection: DisconnectionPolicy,
    pub recharge: RechargePolicy,
    pub emergency: EmergencyCreditPolicy,
    /// How long before a disconnection the consumer is warned (use case 3.2), minutes.
    pub notice_minutes: u32,
    /// The regulator's limit for reconnection after a recharge, minutes.
    pub reconnect_limit_minutes: u32,
    /// Write the balance to the meter after a recharge (meters with the prepaid objects).
    pub push_balance: bool,
}

impl Default for PrepaidConfig {
    fn default() -> Self {
        PrepaidConfig {
            alerts: AlertPolicy::default(),
            disconnection: DisconnectionPolicy::default(),
            recharge: RechargePolicy::default(),
            emergency: EmergencyCreditPolicy::default(),
            notice_minutes: 180,
            reconnect_limit_minutes: 120,
            push_balance: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrepaidError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Charge(#[from] ChargeError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("{0}")]
    Notify(#[from] notify::NotifyError),
    #[error(transparent)]
    Billing(#[from] billing::payments::PaymentError),
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the consumer's state (already prepaid, no meter, …).
    #[error("{0}")]
    Refused(String),
    #[error("stored tariff {category} {from} is unreadable: {detail}")]
    Tariff {
        category: String,
        from: NaiveDate,
        detail: String,
    },
}

/// A payment the gateway confirmed (signature checked by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentConfirmation {
    pub gateway: String,
    pub payment_id: String,
    pub consumer_no: String,
    pub amount: Paise,
    pub paid_at: DateTime<Utc>,
    /// The confirmation as received, kept whole.
    pub body: String,
    /// Through a digital channel (the gateway, a bank transfer, UPI), not cash or cheque.
    pub digital: bool,
}

/// What became of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentResult {
    /// `credited` (to a wallet), `applied` (to a postpaid account), `refused` (to be
    /// refunded) or `unmatched` (no such consumer).
    pub status: String,
    pub reason: Option<String>,
    /// Prepaid: the balance after the credit.
    pub balance: Option<Paise>,
    /// The receipt issued for it.
    pub receipt_no: Option<String>,
    /// Postpaid: what is owed after it (negative: in advance).
    pub outstanding: Option<Paise>,
    /// False when this payment was seen before (a replayed confirmation): nothing was done.
    pub new: bool,
}

/// What one look at the cases did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub opened: usize,
    pub warned: usize,
    pub disconnect_sent: usize,
    pub disconnected: usize,
    pub reconnect_sent: usize,
    pub reconnected: usize,
    pub closed: usize,
    pub failed_commands: usize,
    pub migrations_advanced: usize,
}

/// What a day's charge run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayRunReport {
    pub consumers: usize,
    pub charged_days: u64,
    pub waiting: usize,
    pub alerts: usize,
    /// Consumers that could not be charged, with the reason.
    pub failed: Vec<(String, String)>,
}

/// The engine: the store, the head-end's commands (without them, nothing is sent to meters)
/// and the utility's rules.
#[derive(Clone)]
pub struct Prepaid {
    store: Store,
    commands: Option<Commands>,
    config: PrepaidConfig,
    /// Held while a case is moved on: the webhook (a recharge) and the periodic look never
    /// work on a case at once, and each reads it fresh under the lock.
    cases: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Prepaid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepaid")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const REQUESTED_BY: &str = "prepaid";
/// How many times a migration step is sent before the migration fails.
const MIGRATION_TRIES: usize = 3;
/// A payment kept but not settled this long ago (a crash between the two) is settled by the
/// next full look.
const STUCK_PAYMENT: Duration = Duration::minutes(2);
/// After a disconnection the meter did not confirm, the next try waits this long.
const DISCONNECT_RETRY: Duration = Duration::minutes(10);
/// After a reconnection the meter did not confirm, the next try waits this long (the
/// regulator's two hours run).
const RECONNECT_RETRY: Duration = Duration::minutes(1);
const PAGE: u32 = 500;
/// Accounts read per query for a charge run.
const CHARGE_PAGE: u32 = 10_000;

impl Prepaid {
    pub fn new(store: Store, commands: Option<Commands>, config: PrepaidConfig) -> Self {
        Prepaid {
            store,
            commands,
            config,
            cases: Default::default(),
        }
    }

    pub fn config(&self) -> &PrepaidConfig {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The tariff versions stored.
    pub fn tariff_book(&self) -> Result<TariffBook, PrepaidError> {
        let mut versions = Vec::new();
        for v in self.store.tariff_versions(Some("prepaid"))? {
            let t: Tariff = serde_json::from_str(&v.body).map_err(|e| PrepaidError::Tariff {
                category: v.category.clone(),
                from: v.effective_from,
                detail: e.to_string(),
            })?;
            versions.push(t);
        }
        Ok(TariffBook { versions })
    }

    // --- payments (use case 17.5)

    /// Credits a confirmed payment once: kept whole first, then credited (a negative balance
    /// and outstanding emergency credit recovered first), the consumer told (17.6), the balance
    /// written to the meter, and a disconnected supply reconnected.
    pub async fn payment_confirmed(
        &self,
        p: PaymentConfirmation,
        now: DateTime<Utc>,
    ) -> Result<PaymentResult, PrepaidError> {
        let kept = self.store.payment_receive(&Payment {
            gateway: p.gateway.clone(),
            payment_id: p.payment_id.clone(),
            consumer_no: p.consumer_no.clone(),
            amount: p.amount,
            status: "received".into(),
            reason: None,
            body: p.body.clone(),
            paid_at: p.paid_at,
            received_at: now,
            settled_at: None,
            balance: None,
            digital: p.digital,
        })?;
        if kept.status != "received" {
            let receipt = self.store.receipt_of(&kept.gateway, &kept.payment_id)?;
            return Ok(PaymentResult {
                status: kept.status,
                reason: kept.reason,
                balance: kept.balance,
                outstanding: receipt
                    .as_ref()
                    .filter(|_| kept.balance.is_none())
                    .map(|r| r.standing),
                receipt_no: receipt.map(|r| r.receipt_no),
                new: false,
            });
        }
        self.settle_payment(kept, now).await
    }

    /// Credits a kept payment. Every step is idempotent, so a payment left `received` by a
    /// crash is finished by a replay of its confirmation or by the next look
    /// ([`Prepaid::tick`]).
    async fn settle_payment(
        &self,
        kept: Payment,
        now: DateTime<Utc>,
    ) -> Result<PaymentResult, PrepaidError> {
        let settle = |status: &str, reason: Option<String>, balance: Option<Paise>| {
            self.store.payment_settle(
                &kept.gateway,
                &kept.payment_id,
                status,
                reason.as_deref(),
                balance,
                now,
            )?;
            Ok::<_, PrepaidError>(PaymentResult {
                status: status.to_string(),
                reason,
                balance,
                receipt_no: None,
                outstanding: None,
                new: true,
            })
        };
        let account = match self.store.prepaid_account(&kept.consumer_no)? {
            Some(a) if a.prepaid => a,
            _ => match billing::payments::apply(&self.store, &kept, now) {
                Ok(applied) => {
                    return Ok(PaymentResult {
                        status: "applied".into(),
                        reason: None,
                        balance: None,
                        receipt_no: Some(applied.receipt.receipt_no),
                        outstanding: Some(applied.outstanding),
                        new: true,
                    });
                }
                Err(billing::payments::PaymentError::NotPostpaid(_)) => {
                    return settle(
                        "unmatched",
                        Some(format!(
                            "{} is neither a prepaid consumer nor in a billing cycle",
                            kept.consumer_no
                        )),
                        None,
                    );
                }
                Err(e) => return Err(e.into()),
            },
        };
        // The gateway is part of the payment's identity: two gateways' ids may coincide.
        let payment = format!("{}/{}", kept.gateway, kept.payment_id);
        match recharge(
            &self.store,
            &self.config.recharge,
            &account.consumer_no,
            &payment,
            kept.amount,
            now,
        ) {
            Ok(_) => {}
            Err(RechargeError::Refused { why, .. }) => return settle("refused", Some(why), None),
            Err(RechargeError::Store(e)) => return Err(e.into()),
        };
        let cause = format!("recharge/{payment}");
        if let Some(entry) = self
            .store
            .wallet_entries_by_cause(&account.consumer_no, &cause)?
            .into_iter()
            .find(|e| e.cause == cause)
        {
            self.store
                .prepaid_recharged(&account.consumer_no, kept.amount, entry.n, now)?;
        }
        if account.emergency_outstanding > Paise::ZERO {
            self.post(
                &account.consumer_no,
                &format!("emergency-recovery/{payment}"),
                "emergency_recovery",
                Paise(-account.emergency_outstanding.0),
                &format!(r#"{{"payment_id":{:?}}}"#, kept.payment_id),
                now,
            )?;
            // Only the credit seen outstanding is cleared: a second delivery of this payment
            // at the same moment clears nothing more.
            self.store.prepaid_emergency_recovered(
                &account.consumer_no,
                account.emergency_outstanding,
                now,
            )?;
        }
        let balance = self.balance(&account.consumer_no)?;
        notify::enqueue(
            &self.store,
            &account.consumer_no,
            &cause,
            &Notice::RechargeConfirmed {
                payment_id: kept.payment_id.clone(),
                amount: kept.amount,
                balance,
                at: now,
            },
            now,
        )?;
        let receipt = self.store.receipt_issue(
            &kept.gateway,
            &kept.payment_id,
            r#"{"scheme":"prepaid","to":"wallet"}"#,
            balance,
            now,
        )?;
        let mut result = settle("credited", None, Some(balance))?;
        result.receipt_no = Some(receipt.receipt_no);
        self.balance_changed(&account.consumer_no, &cause, now)
            .await;
        Ok(result)
    }

    /// After a credit: the balance written to the meter, and an open case moved on (closed if
    /// the supply is still on, reconnection sent if it is off).
    /// The credit is booked already: what goes wrong here is logged (the next look at the
    /// cases catches up), not answered as a failed payment.
    async fn balance_changed(&self, consumer_no: &str, why: &str, now: DateTime<Utc>) {
        if let Err(e) = self.push_balance(consumer_no, why, now).await {
            tracing::warn!(consumer_no, error = %e, "the balance was not written to the meter");
        }
        let _case = self.cases.lock().await;
        let advanced = match self.store.supply_case_open_for(consumer_no) {
            Ok(Some(mut case)) => {
                self.advance_case(&mut case, now, &mut TickReport::default())
                    .await
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = advanced {
            tracing::warn!(consumer_no, error = %e, "the case was not moved on after a credit");
        }
    }

    /// Writes the balance to the meter (where the meter has the prepaid objects).
    async fn push_balance(
        &self,
        consumer_no: &str,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<(), PrepaidError> {
        let balance = self.balance(consumer_no)?;
        if self.config.push_balance
            && let Some((meter, _)) = self.store.prepaid_supply(consumer_no, now)?
        {
            // The balance is part of the id: the same credit pushed again is the same command.
            self.send(
                format!("balance/{consumer_no}/{why}/{}", balance.0),
                &meter,
                CommandKind::SetBalance { paise: balance.0 },
                None,
            )
            .await?;
        }
        Ok(())
    }

    // --- emergency credit

    /// Grants emergency credit, once per recharge cycle, when the balance is low.
    pub async fn grant_emergency_credit(
        &self,
        consumer_no: &str,
        now: DateTime<Utc>,
    ) -> Result<Paise, PrepaidError> {
        let account = self.prepaid(consumer_no)?;
        let policy = &self.config.emergency;
        let balance = self.balance(consumer_no)?;
        if balance >= policy.below {
            return Err(PrepaidError::Refused(format!(
                "emergency credit is for balances below {}; the balance is {balance}",
                policy.below
            )));
        }
        let threshold = self.config.disconnection.threshold;
        if balance.0.saturating_add(policy.amount.0) < threshold.0 {
            return Err(PrepaidError::Refused(format!(
                "emergency credit of {} would not lift the balance of {balance} to {threshold}, \
                 where the supply stays on: a recharge is needed",
                policy.amount
            )));
        }
        let cause = format!("emergency/{}", account.cycle);
        match self.post(
            consumer_no,
            &cause,
            "emergency_credit",
            policy.amount,
            &format!(r#"{{"cycle":{}}}"#, account.cycle),
            now,
        )? {
            // Posted, but a crash came before the account said so: finish the grant.
            Posted::Already(_)
                if account.emergency_outstanding == Paise::ZERO
                    && account.emergency_until.is_none() => {}
            Posted::Already(_) => {
                return Err(PrepaidError::Refused(
                    "emergency credit was granted in this recharge cycle already; recharge to \
                     restore it"
                        .into(),
                ));
            }
            Posted::New(_) => {}
        }
        let until = now + Duration::days(i64::from(policy.days));
        self.store
            .prepaid_emergency(consumer_no, policy.amount, Some(until), now)?;
        notify::enqueue(
            &self.store,
            consumer_no,
            &cause,
            &Notice::EmergencyCredit {
                amount: policy.amount,
                until,
            },
            now,
        )?;
        self.balance_changed(consumer_no, &cause, now).await;
        self.balance(consumer_no)
    }

    // --- the daily charge run (use case 1.4)

    /// Charges every prepaid consumer up to `day` (catching up missed days of the month, from
    /// the day each became prepaid) from the consumption in `figures` (read before: the run
    /// charges inside store transactions), in batches ([`run_day`]), then sends the
    /// low-balance alerts due.
    pub fn charge_day(
        &self,
        day: NaiveDate,
        now: DateTime<Utc>,
        figures: &DayFiguresBook,
    ) -> Result<DayRunReport, PrepaidError> {
        let book = self.tariff_book()?;
        let mut report = DayRunReport::default();
        let mut accounts = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .store
                .prepaid_charge_accounts(now, &after, CHARGE_PAGE)?;
            let Some((last, _, _)) = page.last() else {
                break;
            };
            after = last.consumer_no.clone();
            for (account, category, sanctioned_w) in page {
                match category {
                    Some(category) => accounts.push(Account {
                        charge_from: Some(mdm::calendar::ist_date(account.since)),
                        consumer_no: account.consumer_no,
                        category,
                        sanctioned_w,
                    }),
                    None => report
                        .failed
                        .push((account.consumer_no, "not a consumer of the MDM".into())),
                }
            }
        }
        let run = run_day(
            &self.store,
            &book,
            day,
            &accounts,
            |a, d| figures.get(&a.consumer_no, d),
            |_| {},
        )?;
        report.consumers = run.consumers;
        report.charged_days = run.days_charged;
        report.waiting = run.waiting.len();
        report.failed.extend(run.failed);
        // Only balances at or below the highest alert level can have an alert due.
        let highest = self
            .config
            .alerts
            .thresholds_percent
            .iter()
            .copied()
            .max()
            .unwrap_or(0);
        let mut after = String::new();
        loop {
            let page = self.store.prepaid_low(highest, &after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.consumer_no.clone();
            for account in &page {
                match self.send_alerts(account, now) {
                    Ok(n) => report.alerts += n,
                    Err(e) => report
                        .failed
                        .push((account.consumer_no.clone(), e.to_string())),
                }
            }
        }
        Ok(report)
    }

    /// Trues up `until`'s month for every wallet charged on estimated days: the month
    /// re-charged on the figures as they stand now (`usage`, which may read the store: it is
    /// asked before the true-up's transaction; `None` for a day keeps what was charged) and the difference posted as one adjustment (use case 1.4's estimates, replaced
    /// by actual readings). How many wallets were adjusted, and those that failed.
    pub fn true_up(
        &self,
        until: NaiveDate,
        now: DateTime<Utc>,
        usage: impl Fn(&str, NaiveDate) -> Option<DayUse>,
    ) -> Result<(usize, Vec<(String, String)>), PrepaidError> {
        let book = self.tariff_book()?;
        let month = until.with_day(1).unwrap_or(until);
        let mut adjusted = 0;
        let mut failed = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.store.wallets_with_estimates(month, &after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.clone();
            for consumer_no in page {
                // Read before the true-up's transaction, which must not wait on the store.
                let days: std::collections::HashMap<NaiveDate, DayUse> = month
                    .iter_days()
                    .take_while(|d| *d <= until)
                    .filter_map(|d| usage(&consumer_no, d).map(|u| (d, u)))
                    .collect();
                let result = self.account(&consumer_no, now).and_then(|account| {
                    Ok(true_up_month(&self.store, &book, &account, until, |d| {
                        days.get(&d).copied()
                    })?)
                });
                match result {
                    Ok(t) => adjusted += usize::from(t.adjustment != Paise::ZERO),
                    Err(e) => failed.push((consumer_no, e.to_string())),
                }
            }
        }
        Ok((adjusted, failed))
    }

    /// What the charge run needs of a prepaid consumer.
    fn account(&self, consumer_no: &str, now: DateTime<Utc>) -> Result<Account, PrepaidError> {
        let prepaid = self.prepaid(consumer_no)?;
        let consumer = self
            .store
            .mdm_consumer(consumer_no)?
            .ok_or_else(|| PrepaidError::NotFound(format!("consumer {consumer_no}")))?;
        let sanctioned_w = self
            .store
            .prepaid_supply(consumer_no, now)?
            .map_or(0, |(_, w)| w);
        Ok(Account {
            consumer_no: consumer_no.to_string(),
            category: consumer.category,
            sanctioned_w,
            charge_from: Some(mdm::calendar::ist_date(prepaid.since)),
        })
    }

    /// The low-balance alerts due for `account` in its recharge cycle, sent once each.
    fn send_alerts(
        &self,
        account: &PrepaidAccount,
        now: DateTime<Utc>,
    ) -> Result<usize, PrepaidError> {
        let balance = self.balance(&account.consumer_no)?;
        let announced = self
            .store
            .low_balance_alerts(&account.consumer_no, account.cycle)?;
        let due = alerts_due(
            &self.config.alerts,
            account.last_recharge,
            balance,
            &announced,
        );
        // The most urgent only: one message, not three, when a day skips thresholds.
        let Some(&most_urgent) = due.first() else {
            return Ok(0);
        };
        // Told first, then recorded: a crash between the two tells again (idempotent by key),
        // never records an alert nobody was sent.
        notify::enqueue(
            &self.store,
            &account.consumer_no,
            &format!("low/{}/{most_urgent}", account.cycle),
            &Notice::LowBalance {
                percent: most_urgent,
                balance,
                at: now,
            },
            now,
        )?;
        for pct in &due {
            self.store.low_balance_alert(
                &account.consumer_no,
                account.cycle,
                *pct,
                balance,
                now,
            )?;
        }
        Ok(1)
    }

    // --- disconnection and reconnection (use cases 3 and 4)

    /// One look at every short connection and open case: cases opened for balances below the
    /// threshold, warnings sent, disconnections sent at the first unprotected moment after the
    /// notice, command outcomes taken in (relay state confirmed), reconnections sent after a
    /// recharge, and payment-mode migrations moved on.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, PrepaidError> {
        self.look(now, true).await
    }

    /// A look at what waits for the head-end only: commands sent for cases and migrations,
    /// their outcomes taken in and the next step sent. Cheap enough to run every few seconds;
    /// [`Prepaid::tick`] does this and the rest.
    pub async fn follow_commands(&self, now: DateTime<Utc>) -> Result<TickReport, PrepaidError> {
        self.look(now, false).await
    }

    /// Opens a case for every prepaid consumer short of the threshold without one; how many.
    fn open_cases(&self, now: DateTime<Utc>) -> Result<usize, PrepaidError> {
        let threshold = self.config.disconnection.threshold;
        let mut opened = 0;
        let mut after = String::new();
        loop {
            let page = self.store.prepaid_short(threshold, &after, PAGE)?;
            let Some((last, _)) = page.last() else {
                return Ok(opened);
            };
            after = last.clone();
            for (consumer_no, balance) in page {
                if self.store.supply_case_open_for(&consumer_no)?.is_some() {
                    continue;
                }
                let Some((meter, _)) = self.store.prepaid_supply(&consumer_no, now)? else {
                    tracing::warn!(consumer_no, "short of balance but no meter installed");
                    continue;
                };
                self.store
                    .supply_case_open(&consumer_no, &meter, balance, now)?;
                opened += 1;
            }
        }
    }

    async fn look(&self, now: DateTime<Utc>, full: bool) -> Result<TickReport, PrepaidError> {
        let mut report = TickReport::default();
        if full {
            for kept in self.store.payments_unsettled(now - STUCK_PAYMENT, PAGE)? {
                let id = kept.payment_id.clone();
                if let Err(e) = self.settle_payment(kept, now).await {
                    tracing::warn!(payment = id, error = %e, "a kept payment is not settled yet");
                }
            }
            report.opened = self.open_cases(now)?;
        }
        let states: &[CaseState] = if full {
            &[
                CaseState::Short,
                CaseState::Disconnecting,
                CaseState::Disconnected,
                CaseState::Reconnecting,
            ]
        } else {
            &[CaseState::Disconnecting, CaseState::Reconnecting]
        };
        for &state in states {
            let mut after = 0;
            loop {
                let page = self.store.supply_cases(Some(state), None, after, PAGE)?;
                let Some(last) = page.last() else { break };
                after = last.id;
                for listed in page {
                    let _case = self.cases.lock().await;
                    // Read again under the lock: a credit may have moved it meanwhile.
                    let Some(mut case) = self.store.supply_case(listed.id)? else {
                        continue;
                    };
                    if case.state != state {
                        continue;
                    }
                    if let Err(e) = self.advance_case(&mut case, now, &mut report).await {
                        tracing::warn!(case = case.id, error = %e, "disconnection case not advanced");
                    }
                }
            }
        }
        let mut after = 0;
        loop {
            let page = self.store.mode_migrations(true, after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for mut m in page {
                let before = m.state;
                if let Err(e) = self.advance_migration(&mut m, now).await {
                    tracing::warn!(migration = m.id, error = %e, "migration not advanced");
                }
                report.migrations_advanced += usize::from(m.state != before);
            }
        }
        Ok(report)
    }

    fn connection(
        &self,
        case: &SupplyCase,
        now: DateTime<Utc>,
    ) -> Result<Connection, PrepaidError> {
        let account = self.prepaid(&case.consumer_no)?;
        let sanctioned_w = self
            .store
            .prepaid_supply(&case.consumer_no, now)?
            .map_or(0, |(_, w)| w);
        Ok(Connection {
            balance: self.balance(&case.consumer_no)?,
            sanctioned_w,
            migrated_at: account.migrated_at,
            emergency_credit_until: account.emergency_until,
        })
    }

    async fn advance_case(
        &self,
        case: &mut SupplyCase,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), PrepaidError> {
        let still_prepaid = self
            .store
            .prepaid_account(&case.consumer_no)?
            .is_some_and(|a| a.prepaid);
        let balance = self.balance(&case.consumer_no)?;
        let recharged = balance >= self.config.disconnection.threshold || !still_prepaid;
        let before = case.clone();
        // The regulator's two hours run from the recharge, whatever the case is doing then.
        if recharged
            && case.recharged_at.is_none()
            && matches!(
                case.state,
                CaseState::Disconnecting | CaseState::Disconnected
            )
        {
            case.recharged_at = Some(now);
            case.reconnect_due_by =
                Some(now + Duration::minutes(i64::from(self.config.reconnect_limit_minutes)));
        }
        match case.state {
            // A disconnection was sent and not confirmed: the relay may be open; the recharge
            // is answered by a reconnection, confirmed like any other.
            CaseState::Short if recharged && case.disconnect_command.is_some() => {
                self.reconnect(case, now, report).await?;
            }
            CaseState::Short if recharged => {
                self.close(case, "recharged_before_disconnection", now);
                report.closed += 1;
            }
            CaseState::Short => {
                let connection = self.connection(case, now)?;
                let notice = Duration::minutes(i64::from(self.config.notice_minutes));
                match next_step(
                    &self.config.disconnection,
                    &connection,
                    now,
                    notice,
                    case.warned_at,
                ) {
                    Step::Warn { at } => {
                        // No warning, no disconnection: a consumer with no mobile or email on
                        // record stays on, and the case says why, for the utility to act.
                        let reachable = self
                            .store
                            .contact(&case.consumer_no)?
                            .is_some_and(|c| c.mobile.is_some() || c.email.is_some());
                        if reachable {
                            notify::enqueue(
                                &self.store,
                                &case.consumer_no,
                                &format!("disconnection-notice/{}", case.id),
                                &Notice::DisconnectionNotice { balance, from: at },
                                now,
                            )?;
                            case.warned_at = Some(now);
                            case.disconnect_from = Some(at);
                            case.last_error = None;
                            report.warned += 1;
                        } else {
                            case.last_error = Some(
                                "cannot warn: no mobile or email on record, so not disconnected"
                                    .into(),
                            );
                        }
                    }
                    Step::Disconnect
                        if case
                            .disconnect_sent_at
                            .is_some_and(|sent| now - sent < DISCONNECT_RETRY) => {}
                    Step::Disconnect => {
                        case.attempts += 1;
                        let id = format!("case/{}/disconnect/{}", case.id, case.attempts);
                        let batch = format!("prepaid-disconnect/{}", now.format("%Y%m%dT%H%M"));
                        self.send(
                            id.clone(),
                            &case.meter,
                            CommandKind::Disconnect,
                            Some(batch),
                        )
                        .await?;
                        case.disconnect_command = Some(id);
                        case.disconnect_sent_at = Some(now);
                        case.state = CaseState::Disconnecting;
                        report.disconnect_sent += 1;
                    }
                    Step::Keep(Protection::BalanceAboveThreshold) => {
                        self.close(case, "recharged_before_disconnection", now);
                        report.closed += 1;
                    }
                    Step::Keep(p) => case.last_error = Some(format!("protected: {p:?}")),
                    Step::Wait { .. } => {}
                }
            }
            CaseState::Disconnecting => {
                if let Some(status) = self
                    .command_status(case.disconnect_command.as_deref())
                    .await?
                {
                    match confirmed_relay(&status) {
                        Some(RelayState::Disconnected) => {
                            case.state = CaseState::Disconnected;
                            // The engine's clock, as every time of the case (at most one look late).
                            case.disconnected_at = Some(now);
                            case.last_error = None;
                            notify::enqueue(
                                &self.store,
                                &case.consumer_no,
                                &format!("disconnected/{}", case.id),
                                &Notice::Disconnected { balance, at: now },
                                now,
                            )?;
                            report.disconnected += 1;
                            if recharged {
                                self.reconnect(case, now, report).await?;
                            }
                        }
                        _ if status.state.is_final() => {
                            // Not confirmed: decided again at the next look, as a new command.
                            case.state = CaseState::Short;
                            case.last_error = Some(failure(&status));
                            report.failed_commands += 1;
                        }
                        _ => {}
                    }
                }
            }
            CaseState::Disconnected if recharged => self.reconnect(case, now, report).await?,
            CaseState::Disconnected => {}
            CaseState::Reconnecting => {
                if let Some(status) = self
                    .command_status(case.reconnect_command.as_deref())
                    .await?
                {
                    match confirmed_relay(&status) {
                        Some(RelayState::Connected) => {
                            case.reconnected_at = Some(now);
                            case.last_error = None;
                            self.close(case, "reconnected", now);
                            notify::enqueue(
                                &self.store,
                                &case.consumer_no,
                                &format!("reconnected/{}", case.id),
                                &Notice::Reconnected { balance, at: now },
                                now,
                            )?;
                            report.reconnected += 1;
                        }
                        _ if status.state.is_final() => {
                            // The two-hour limit runs: try again soon (the head-end has
                            // retried within the command already).
                            if case.last_error.is_none() {
                                report.failed_commands += 1;
                            }
                            case.last_error = Some(failure(&status));
                            if case
                                .reconnect_sent_at
                                .is_none_or(|sent| now - sent >= RECONNECT_RETRY)
                            {
                                self.reconnect(case, now, report).await?;
                            }
                        }
                        _ => {}
                    }
                }
            }
            CaseState::Closed => {}
        }
        if *case != before {
            case.updated_at = now;
            self.store.supply_case_save(case)?;
        }
        Ok(())
    }

    async fn reconnect(
        &self,
        case: &mut SupplyCase,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), PrepaidError> {
        if case.recharged_at.is_none() {
            case.recharged_at = Some(now);
            case.reconnect_due_by =
                Some(now + Duration::minutes(i64::from(self.config.reconnect_limit_minutes)));
        }
        case.attempts += 1;
        let id = format!("case/{}/reconnect/{}", case.id, case.attempts);
        self.send(id.clone(), &case.meter, CommandKind::Reconnect, None)
            .await?;
        case.reconnect_command = Some(id);
        case.reconnect_sent_at = Some(now);
        case.state = CaseState::Reconnecting;
        report.reconnect_sent += 1;
        Ok(())
    }

    fn close(&self, case: &mut SupplyCase, outcome: &str, now: DateTime<Utc>) {
        case.state = CaseState::Closed;
        case.closed_at = Some(now);
        case.outcome = Some(outcome.to_string());
    }

    // --- payment-mode migrations (use cases 13 and 14)

    /// Starts moving `consumer_no` to prepaid with `opening` balance (a deposit less arrears,
    /// may be negative), or to postpaid carrying the wallet's balance over. The steps
    /// ([`migration_steps`]) run through the head-end one after the other, each confirmed by the
    /// meter; then the wallet is opened or closed and the completion reported to billing and
    /// CIS.
    pub async fn start_migration(
        &self,
        consumer_no: &str,
        to_prepaid: bool,
        opening: Paise,
        requested_by: &str,
        now: DateTime<Utc>,
    ) -> Result<ModeMigration, PrepaidError> {
        if self.store.mdm_consumer(consumer_no)?.is_none() {
            return Err(PrepaidError::NotFound(format!("consumer {consumer_no}")));
        }
        let (meter, _) = self
            .store
            .prepaid_supply(consumer_no, now)?
            .ok_or_else(|| {
                PrepaidError::Refused(format!("{consumer_no} has no meter installed"))
            })?;
        // Prepaid needs a load switch to cut the supply; a CT-operated meter has none.
        let switchless = self.store.meter(&meter)?.is_some_and(|r| {
            serde_json::from_value::<model::MeterKind>(serde_json::Value::String(r.kind))
                .is_ok_and(|k| !k.has_load_switch())
        });
        if to_prepaid && switchless {
            return Err(PrepaidError::Refused(format!(
                "meter {meter} of {consumer_no} has no load switch (CT-operated): replace it \
                 first (a meter_replacement work order with then_migrate_to prepaid)"
            )));
        }
        let prepaid = self
            .store
            .prepaid_account(consumer_no)?
            .is_some_and(|a| a.prepaid);
        if prepaid == to_prepaid {
            return Err(PrepaidError::Refused(format!(
                "{consumer_no} is {} already",
                if prepaid { "prepaid" } else { "postpaid" }
            )));
        }
        let balance = if to_prepaid {
            opening
        } else {
            self.balance(consumer_no)?
        };
        let mut m = self.store.mode_migration_start(
            consumer_no,
            &meter,
            to_prepaid,
            balance,
            requested_by,
            now,
        )?;
        if m.to_prepaid != to_prepaid || (to_prepaid && m.balance != balance) {
            return Err(PrepaidError::Refused(format!(
                "migration {} of {consumer_no} is in progress with other terms (to {}, {})",
                m.id,
                if m.to_prepaid { "prepaid" } else { "postpaid" },
                m.balance
            )));
        }
        self.advance_migration(&mut m, now).await?;
        Ok(m)
    }

    async fn advance_migration(
        &self,
        m: &mut ModeMigration,
        now: DateTime<Utc>,
    ) -> Result<(), PrepaidError> {
        let before = m.clone();
        let steps = migration_steps(m.to_prepaid);
        if m.state == MigrationState::Requested {
            m.state = MigrationState::Running;
            m.step = 0;
            self.send_step(m, &steps, 1).await?;
        } else if m.state == MigrationState::Running
            && let Some(status) = self.command_status(m.command.as_deref()).await?
            && status.state.is_final()
        {
            let name = steps.get(m.step as usize).map_or("?", |s| s.name);
            let mut log: Vec<serde_json::Value> = serde_json::from_str(&m.log).unwrap_or_default();
            log.push(serde_json::json!({
                "step": name,
                "command": status.id.0,
                "state": status.state.name(),
                "detail": status.outcome.as_ref().map(|o| o.detail.clone()),
                "read_back": status.outcome.as_ref().and_then(|o| o.read_back.clone()),
                "relay": status.outcome.as_ref().and_then(|o| o.relay),
                "at": now.to_rfc3339(),
            }));
            let tries = log.iter().filter(|e| e["step"] == name).count();
            m.log = serde_json::Value::Array(log).to_string();
            if status.state == CommandState::Succeeded {
                m.step += 1;
                m.last_error = None;
                if (m.step as usize) < steps.len() {
                    self.send_step(m, &steps, 1).await?;
                } else {
                    m.command = None;
                    self.complete_migration(m, now).await?;
                }
            } else if tries < MIGRATION_TRIES {
                // The meter may be out of reach for a moment: the step again, as a new command.
                m.last_error = Some(format!("step {name}: {}", failure(&status)));
                self.send_step(m, &steps, tries + 1).await?;
            } else {
                m.state = MigrationState::Failed;
                m.last_error = Some(format!("step {name}: {}", failure(&status)));
                self.restore_supply(m).await;
            }
        }
        if *m != before {
            m.updated_at = now;
            self.store.mode_migration_save(m)?;
        }
        Ok(())
    }

    /// Sends the migration's current step, try `try_n` (1, 2, …). The command's body depends
    /// only on the migration (its reads cover the day before it was requested), so sending a
    /// step again after a crash is the same command.
    async fn send_step(
        &self,
        m: &mut ModeMigration,
        steps: &[MigrationStep],
        try_n: usize,
    ) -> Result<(), PrepaidError> {
        let Some(step) = steps.get(m.step as usize) else {
            return Ok(());
        };
        let id = if try_n <= 1 {
            format!("migration/{}/{}", m.id, step.name)
        } else {
            format!("migration/{}/{}/{try_n}", m.id, step.name)
        };
        self.send(id.clone(), &m.meter, (step.kind)(m.requested_at), None)
            .await?;
        m.command = Some(id);
        Ok(())
    }

    /// A migration that failed after switching the supply off switches it on again (best
    /// effort: the failure is logged and the migration says what happened).
    async fn restore_supply(&self, m: &mut ModeMigration) {
        let log: Vec<serde_json::Value> = serde_json::from_str(&m.log).unwrap_or_default();
        let switched_off = log
            .iter()
            .any(|e| e["step"] == "disconnect" && e["state"] == "succeeded");
        let switched_on = log
            .iter()
            .any(|e| e["step"] == "reconnect" && e["state"] == "succeeded");
        if !switched_off || switched_on {
            return;
        }
        let id = format!("migration/{}/restore", m.id);
        match self
            .send(id.clone(), &m.meter, CommandKind::Reconnect, None)
            .await
        {
            Ok(()) => {
                if let Some(e) = &mut m.last_error {
                    e.push_str(&format!("; the supply is being switched back on ({id})"));
                }
            }
            Err(e) => {
                tracing::warn!(migration = m.id, error = %e, "the supply was not switched back on")
            }
        }
    }

    async fn complete_migration(
        &self,
        m: &mut ModeMigration,
        now: DateTime<Utc>,
    ) -> Result<(), PrepaidError> {
        let cause = format!("migration/{}", m.id);
        // The day the meter's mode changed, the same however late (or often) this runs.
        let today = mdm::calendar::ist_date(mode_switched_at(m).unwrap_or(now));
        // What the postpaid account owed (negative: held in advance) and was carried over.
        let mut carried = Paise::ZERO;
        if m.to_prepaid {
            self.store.prepaid_enrol(&m.consumer_no, now, Some(now))?;
            self.post(
                &m.consumer_no,
                &cause,
                "opening_balance",
                m.balance,
                &format!(r#"{{"migration":{}}}"#, m.id),
                now,
            )?;
            carried = self.close_postpaid(&m.consumer_no, &cause, today, now)?;
        } else {
            // The closing statement: the wallet emptied into the postpaid account (written once;
            // done again after a crash, the amount is the one written).
            let balance = self.balance(&m.consumer_no)?;
            m.balance = match self.post(
                &m.consumer_no,
                &cause,
                "closing_balance",
                Paise(-balance.0),
                &format!(
                    r#"{{"migration":{},"carried_to_postpaid":{}}}"#,
                    m.id, balance.0
                ),
                now,
            )? {
                Posted::New(_) => balance,
                Posted::Already(entry) => Paise(-entry.amount.0),
            };
            self.store.prepaid_leave(&m.consumer_no, now)?;
            // Billed from today, in its old cycle (the 1st for a consumer never billed here),
            // the wallet's closing balance carried in: a credit, or owed if it was negative.
            self.store
                .billing_account_reopen(&m.consumer_no, today, 1, now)?;
            self.store.billing_adjustment_put(
                &m.consumer_no,
                &Adjustment {
                    key: cause.clone(),
                    on: today,
                    amount: Paise(-m.balance.0),
                    reason: "prepaid closing balance carried over".into(),
                },
                now,
            )?;
        }
        m.state = MigrationState::Completed;
        m.completed_at = Some(now);
        let mode = if m.to_prepaid {
            PaymentMode::Prepaid
        } else {
            PaymentMode::Postpaid
        };
        let log: serde_json::Value = serde_json::from_str(&m.log).unwrap_or_default();
        let payload = serde_json::json!({
            "kind": "payment_mode_changed",
            "consumer_no": m.consumer_no,
            "meter": m.meter.as_str(),
            "mode": if m.to_prepaid { "prepaid" } else { "postpaid" },
            "balance_paise": m.balance.0,
            "postpaid_carried_paise": carried.0,
            "steps": log,
            "completed_at": now.to_rfc3339(),
        })
        .to_string();
        for destination in ["billing", "cis"] {
            self.store.mdm_route(
                &RoutedMessage {
                    key: format!("{cause}/{destination}"),
                    meter: m.meter.clone(),
                    destination: destination.to_string(),
                    payload: payload.clone(),
                },
                now,
            )?;
        }
        notify::enqueue(
            &self.store,
            &m.consumer_no,
            &cause,
            &Notice::PaymentModeChanged {
                mode,
                balance: if m.to_prepaid {
                    self.balance(&m.consumer_no)?
                } else {
                    m.balance
                },
                at: now,
            },
            now,
        )?;
        if m.to_prepaid {
            self.balance_changed(&m.consumer_no, &cause, now).await;
        }
        Ok(())
    }

    /// The postpaid side of going prepaid on `today` (use case 13): the final bill (the
    /// account closed, billed up to yesterday), then what the account still owes, or holds in
    /// advance, carried to the wallet (once: the adjustment and the wallet entry share the
    /// migration's key). What was carried. A consumer who was never billed here carries
    /// nothing; a final bill that cannot be made (no postpaid tariff) is logged, not a failed
    /// migration: the meter is prepaid already.
    fn close_postpaid(
        &self,
        consumer_no: &str,
        cause: &str,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<Paise, PrepaidError> {
        if self.store.billing_account(consumer_no)?.is_none() {
            return Ok(Paise::ZERO);
        }
        // Closed first: whatever happens to the final bill, no later cycle bills these days.
        self.store.billing_account_close(consumer_no, today)?;
        let finals = billing::cycle::PostpaidBook::from_store(&self.store).and_then(|book| {
            billing::cycle::final_bill(
                &self.store,
                &book,
                consumer_no,
                &mdm::determinants::Metering::default(),
            )
        });
        if let Err(e) = finals {
            tracing::warn!(consumer_no, error = %e, "the final postpaid bill was not made");
        }
        let owed = billing::payments::account_statement(&self.store, consumer_no, today)?
            .map_or(Paise::ZERO, |s| s.outstanding);
        if owed == Paise::ZERO {
            return Ok(owed);
        }
        // The wallet first: after a crash between the two, the account still owes it and the
        // wallet entry (same key) is not posted twice.
        self.post(
            consumer_no,
            &format!("{cause}/postpaid"),
            "adjustment",
            Paise(-owed.0),
            &format!(r#"{{"postpaid_outstanding":{}}}"#, owed.0),
            now,
        )?;
        self.store.billing_adjustment_put(
            consumer_no,
            &Adjustment {
                key: cause.to_string(),
                on: today,
                amount: Paise(-owed.0),
                reason: "carried to the prepaid wallet".into(),
            },
            now,
        )?;
        Ok(owed)
    }

    // --- helpers

    fn prepaid(&self, consumer_no: &str) -> Result<PrepaidAccount, PrepaidError> {
        match self.store.prepaid_account(consumer_no)? {
            Some(a) if a.prepaid => Ok(a),
            _ => Err(PrepaidError::NotFound(format!(
                "{consumer_no} is not a prepaid consumer"
            ))),
        }
    }

    fn balance(&self, consumer_no: &str) -> Result<Paise, PrepaidError> {
        self.store
            .wallet_balance(consumer_no)?
            .ok_or_else(|| PrepaidError::NotFound(format!("wallet of {consumer_no}")))
    }

    fn post(
        &self,
        consumer_no: &str,
        cause: &str,
        kind: &str,
        amount: Paise,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<Posted, PrepaidError> {
        Ok(self.store.wallet_post(
            &NewEntry {
                consumer_no,
                cause,
                kind,
                amount,
                detail,
            },
            now,
        )?)
    }

    async fn send(
        &self,
        id: String,
        meter: &MeterSerial,
        kind: CommandKind,
        batch: Option<String>,
    ) -> Result<(), PrepaidError> {
        Ok(
            hes::commands::submit_if(self.commands.as_ref(), id, meter, kind, REQUESTED_BY, batch)
                .await?,
        )
    }

    async fn command_status(
        &self,
        id: Option<&str>,
    ) -> Result<Option<CommandStatus>, PrepaidError> {
        let (Some(commands), Some(id)) = (&self.commands, id) else {
            return Ok(None);
        };
        Ok(commands.status(&CommandId(id.to_string())).await?)
    }
}

/// When a migration's mode step succeeded (the meter read back its new mode).
fn mode_switched_at(m: &ModeMigration) -> Option<DateTime<Utc>> {
    let log: Vec<serde_json::Value> = serde_json::from_str(&m.log).ok()?;
    log.iter()
        .find(|e| e["step"] == "mode" && e["state"] == "succeeded")
        .and_then(|e| e["at"].as_str())
        .and_then(|t| t.parse().ok())
}

/// The relay state a succeeded relay command read back.
fn confirmed_relay(status: &CommandStatus) -> Option<RelayState> {
    (status.state == CommandState::Succeeded)
        .then(|| status.outcome.as_ref().and_then(|o| o.relay))
        .flatten()
}

fn failure(status: &CommandStatus) -> String {
    status.outcome.as_ref().map_or_else(
        || format!("command {} {}", status.id, status.state.name()),
        |o| {
            format!(
                "command {} {}: {}",
                status.id,
                status.state.name(),
                o.detail
            )
        },
    )
}

/// One head-end step of a migration: a name (part of its command id) and the command, made
/// from the time the migration was requested.
#[derive(Debug, Clone, Copy)]
pub struct MigrationStep {
    pub name: &'static str,
    pub kind: fn(DateTime<Utc>) -> CommandKind,
}

/// The day before the request: the intervals and events read to verify the meter.
fn last_day(requested: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (requested - Duration::days(1), requested)
}

/// The steps of a migration, in order. To prepaid (use case 13): the prepaid mode written and
/// read back (13.5–13.6), then instantaneous, interval and event data read (13.7–13.8). To
/// postpaid (14): the final read (14.2–14.3), the supply switched off and confirmed (14.4–14.5),
/// the postpaid mode written and read back (14.6–14.7), the supply switched back on and
/// confirmed, and the verification read (14.8–14.9).
pub fn migration_steps(to_prepaid: bool) -> Vec<MigrationStep> {
    let instantaneous = |name| MigrationStep {
        name,
        kind: |_| CommandKind::ReadInstantaneous,
    };
    let intervals = |name| MigrationStep {
        name,
        kind: |now| {
            let (from, to) = last_day(now);
            CommandKind::ReadBlockLoad { from, to }
        },
    };
    let events = MigrationStep {
        name: "verify-events",
        kind: |now| {
            let (from, to) = last_day(now);
            CommandKind::ReadEvents {
                log: EventCategory::Other,
                from,
                to,
            }
        },
    };
    if to_prepaid {
        vec![
            MigrationStep {
                name: "mode",
                kind: |_| CommandKind::SetPaymentMode {
                    mode: PaymentMode::Prepaid,
                },
            },
            instantaneous("verify-instantaneous"),
            intervals("verify-intervals"),
            events,
        ]
    } else {
        vec![
            instantaneous("final-instantaneous"),
            intervals("final-intervals"),
            MigrationStep {
                name: "disconnect",
                kind: |_| CommandKind::Disconnect,
            },
            MigrationStep {
                name: "mode",
                kind: |_| CommandKind::SetPaymentMode {
                    mode: PaymentMode::Postpaid,
                },
            },
            MigrationStep {
                name: "reconnect",
                kind: |_| CommandKind::Reconnect,
            },
            instantaneous("verify-instantaneous"),
            intervals("verify-intervals"),
            events,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of `docs/prepaid.md`, and a file that says only what it changes.
    #[test]
    fn the_rules_file_takes_the_documented_example_and_defaults_the_rest() {
        let example = r#"{
          "alerts": {"thresholds_percent": [30, 10, 0]},
          "disconnection": {
            "threshold": 0,
            "protected_from": "18:00:00",
            "protected_to": "08:00:00",
            "protected_weekdays": ["Sun"],
            "holidays": ["2027-01-26", "2027-08-15"],
            "grace_after_migration_days": 7,
            "protected_load_w": 1000
          },
          "recharge": {"minimum": 10000, "first_minimum": 10000, "multiple_of": 100},
          "emergency": {"amount": 10000, "days": 3, "below": 5000},
          "notice_minutes": 180,
          "reconnect_limit_minutes": 120,
          "push_balance": true
        }"#;
        let parsed: PrepaidConfig = serde_json::from_str(example).unwrap();
        let mut expected = PrepaidConfig::default();
        expected.disconnection.holidays = ["2027-01-26", "2027-08-15"]
            .iter()
            .map(|d| d.parse().unwrap())
            .collect();
        assert_eq!(parsed, expected);
        let west_bengal: PrepaidConfig =
            serde_json::from_str(r#"{"disconnection": {"threshold": -30000}}"#).unwrap();
        assert_eq!(west_bengal.disconnection.threshold, Paise(-30_000));
        assert_eq!(
            west_bengal.disconnection.protected_weekdays,
            DisconnectionPolicy::default().protected_weekdays
        );
        assert!(serde_json::from_str::<PrepaidConfig>(r#"{"notice_minutes": "soon"}"#).is_err());
        // A misspelt rule is an error, not a default.
        assert!(
            serde_json::from_str::<PrepaidConfig>(r#"{"disconnection": {"treshold": -1}}"#)
                .is_err()
        );
    }
}

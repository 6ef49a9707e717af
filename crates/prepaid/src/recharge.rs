//! Recharges (use case 17.5): a payment the gateway confirmed is credited to the wallet once
//! (its payment id is the ledger cause, so a replayed callback changes nothing); a negative
//! balance is recovered first simply because the credit adds to it. The utility's rules on
//! amounts (a minimum, a larger first recharge, multiples) are configuration.

use chrono::{DateTime, Utc};
use model::Paise;
use serde::{Deserialize, Serialize};
use store::prepaid::{NewEntry, Posted};
use store::{Store, StoreError};

/// What a utility accepts as a recharge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RechargePolicy {
    pub minimum: Paise,
    /// The first recharge of a wallet at least this.
    pub first_minimum: Paise,
    /// Amounts in multiples of this (`Paise(100)`: whole rupees).
    pub multiple_of: Paise,
}

impl Default for RechargePolicy {
    /// At least ₹100, in whole rupees (as West Bengal's order has it).
    fn default() -> Self {
        RechargePolicy {
            minimum: Paise(10_000),
            first_minimum: Paise(10_000),
            multiple_of: Paise(100),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RechargeError {
    #[error("a recharge of {amount} is refused: {why}")]
    Refused { amount: Paise, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a recharge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recharged {
    /// False when this payment was credited before (a replayed confirmation).
    pub credited: bool,
    pub balance: Paise,
    /// The part of the recharge that paid off a negative balance.
    pub recovered: Paise,
}

/// Credits `amount` paid as `payment_id` to `consumer_no`'s wallet, once.
pub fn recharge(
    store: &Store,
    policy: &RechargePolicy,
    consumer_no: &str,
    payment_id: &str,
    amount: Paise,
    at: DateTime<Utc>,
) -> Result<Recharged, RechargeError> {
    let refuse = |why: String| RechargeError::Refused { amount, why };
    let cause = format!("recharge/{payment_id}");
    let earlier = store.wallet_entries_by_cause(consumer_no, "recharge/")?;
    if let Some(same) = earlier.iter().find(|e| e.cause == cause) {
        return Ok(Recharged {
            credited: false,
            balance: store
                .wallet_balance(consumer_no)?
                .unwrap_or(same.balance_after),
            recovered: Paise::ZERO,
        });
    }
    let minimum = if earlier.is_empty() {
        policy.first_minimum.max(policy.minimum)
    } else {
        policy.minimum
    };
    if amount < minimum {
        return Err(refuse(format!("the minimum is {minimum}")));
    }
    if policy.multiple_of.0 > 0 && amount.0 % policy.multiple_of.0 != 0 {
        return Err(refuse(format!(
            "recharges are in multiples of {}",
            policy.multiple_of
        )));
    }
    let before = store
        .wallet_balance(consumer_no)?
        .ok_or_else(|| StoreError::NotFound(format!("wallet of {consumer_no}")))?;
    let detail = format!(
        r#"{{"payment_id":{}}}"#,
        serde_json::Value::String(payment_id.into())
    );
    let posted = store.wallet_post(
        &NewEntry {
            consumer_no,
            cause: &cause,
            kind: "recharge",
            amount,
            detail: &detail,
        },
        at,
    )?;
    let (credited, balance) = match posted {
        Posted::New(balance) => (true, balance),
        Posted::Already(e) => (false, e.balance_after),
    };
    let recovered = if credited && before.is_negative() {
        Paise(amount.0.min(-before.0))
    } else {
        Paise::ZERO
    };
    Ok(Recharged {
        credited,
        balance,
        recovered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wallet(balance: i64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("urja.db")).unwrap();
        store.wallet_open("C-1", Utc::now()).unwrap();
        store
            .wallet_post(
                &NewEntry {
                    consumer_no: "C-1",
                    cause: "opening",
                    kind: "opening_balance",
                    amount: Paise(balance),
                    detail: "{}",
                },
                Utc::now(),
            )
            .unwrap();
        (dir, store)
    }

    #[test]
    fn a_recharge_pays_the_debt_first_and_a_replay_is_not_credited() {
        let (_dir, store) = wallet(-30_000);
        let policy = RechargePolicy::default();
        let r = recharge(&store, &policy, "C-1", "PAY-1", Paise(50_000), Utc::now()).unwrap();
        assert_eq!(
            r,
            Recharged {
                credited: true,
                balance: Paise(20_000),
                recovered: Paise(30_000)
            }
        );
        let again = recharge(&store, &policy, "C-1", "PAY-1", Paise(50_000), Utc::now()).unwrap();
        assert!(!again.credited);
        assert_eq!(again.balance, Paise(20_000));
        assert!(store.wallet_check("C-1").unwrap());
    }

    #[test]
    fn amounts_outside_the_rules_are_refused_and_credit_nothing() {
        let (_dir, store) = wallet(0);
        let policy = RechargePolicy {
            first_minimum: Paise(50_000),
            ..RechargePolicy::default()
        };
        let err = |id: &str, amount: i64| {
            recharge(&store, &policy, "C-1", id, Paise(amount), Utc::now())
                .unwrap_err()
                .to_string()
        };
        assert!(
            err("P1", 20_000).contains("minimum is ₹500.00"),
            "first recharge"
        );
        assert!(err("P2", 60_050).contains("multiples of ₹1.00"));
        recharge(&store, &policy, "C-1", "P3", Paise(50_000), Utc::now()).unwrap();
        // Later recharges need only the ordinary minimum.
        recharge(&store, &policy, "C-1", "P4", Paise(10_000), Utc::now()).unwrap();
        assert!(err("P5", 9_900).contains("minimum is ₹100.00"));
        assert_eq!(store.wallet_balance("C-1").unwrap(), Some(Paise(60_000)));
        assert!(matches!(
            recharge(&store, &policy, "C-404", "P6", Paise(50_000), Utc::now()),
            Err(RechargeError::Store(StoreError::NotFound(_)))
        ));
    }
}

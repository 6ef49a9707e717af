//! Low-balance alerts: at configurable shares of the last recharge (e.g. 30 %, 10 %, 0 %), each
//! at most once per recharge cycle, the most urgent first.

use model::Paise;
use serde::{Deserialize, Serialize};

/// The shares of the last recharge at which the consumer is told, percent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertPolicy {
    pub thresholds_percent: Vec<u8>,
}

impl Default for AlertPolicy {
    /// 30 %, 10 % and 0 % of the last recharge (as Uttar Pradesh's order has it).
    fn default() -> Self {
        AlertPolicy {
            thresholds_percent: vec![30, 10, 0],
        }
    }
}

/// The thresholds `balance` has reached since a recharge of `last_recharge` that were not
/// announced yet in this cycle (`announced`), most urgent (lowest) first.
pub fn alerts_due(
    policy: &AlertPolicy,
    last_recharge: Paise,
    balance: Paise,
    announced: &[u8],
) -> Vec<u8> {
    let mut due: Vec<u8> = policy
        .thresholds_percent
        .iter()
        .copied()
        .filter(|pct| !announced.contains(pct))
        .filter(|pct| {
            let level = i128::from(last_recharge.0.max(0)) * i128::from(*pct) / 100;
            i128::from(balance.0) <= level
        })
        .collect();
    due.sort_unstable();
    due.dedup();
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn thresholds_of_the_last_recharge_once_each() {
        let p = AlertPolicy::default();
        let recharge = Paise(50_000); // ₹500
        assert!(alerts_due(&p, recharge, Paise(20_000), &[]).is_empty());
        assert_eq!(alerts_due(&p, recharge, Paise(15_000), &[]), vec![30]);
        assert!(alerts_due(&p, recharge, Paise(14_000), &[30]).is_empty());
        // A day's charge can skip a threshold: both are due, the lower first.
        assert_eq!(alerts_due(&p, recharge, Paise(4_000), &[]), vec![10, 30]);
        assert_eq!(alerts_due(&p, recharge, Paise(-100), &[30, 10]), vec![0]);
    }

    proptest! {
        /// An alert announced is never due again in the cycle, and every due alert's level is
        /// at or above the balance.
        #[test]
        fn an_announced_alert_is_not_due_again(
            recharge in 0i64..10_000_000,
            balance in -1_000_000i64..10_000_000,
            announced in proptest::collection::vec(0u8..=100, 0..4),
        ) {
            let p = AlertPolicy::default();
            for pct in alerts_due(&p, Paise(recharge), Paise(balance), &announced) {
                prop_assert!(!announced.contains(&pct));
                prop_assert!(i128::from(balance) <= i128::from(recharge) * i128::from(pct) / 100);
            }
        }
    }
}

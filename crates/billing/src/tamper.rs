//! Assessed energy for confirmed tamper periods (use case 5.6): how many units a tamper period
//! is assessed at, by the postpaid tariff's policy ([`TamperPolicy`], a plain function over the
//! figures: [`assess`]), and the assessments of a consumer's bill read from the store
//! ([`for_bill`]), each billed in one bill period only.
//!
//! Both methods follow the states' supply codes: the consumer's average daily consumption before
//! the tamper began, or the sanctioned load at a load factor for so many hours a day ("LDHF").
//! What the meter did record in the tamper period is billed as it was, so it is taken off; an
//! assessment is never negative.

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use mdm::calendar::{IST_OFFSET_S, day_bounds, ist_date};
use mdm::determinants::{Metering, determinants_for_consumer};
use serde::{Deserialize, Serialize};
use store::billing::BillingAccount;
use store::tamper::TamperPeriod;
use store::{Store, StoreError};
use tariff::BillingUnit;

use crate::bill::{Assessment, PostpaidTariff, units_text};

const DAY_S: i64 = 86_400;

/// How a confirmed tamper period's energy is assessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum TamperPolicy {
    /// The consumer's average daily consumption over the `days_before` days before the tamper
    /// began (the days the meter measured), times the days of the tamper period.
    AverageBefore { days_before: u32 },
    /// Sanctioned load (kW, or the contract demand in kVA for kVAh tariffs) × load factor ×
    /// hours a day × the days of the tamper period.
    Ldhf {
        /// Load factor, basis points (4 000: 40 %).
        load_factor_bp: u32,
        hours_per_day: u32,
    },
}

impl Default for TamperPolicy {
    /// The average of the 30 days before.
    fn default() -> Self {
        TamperPolicy::AverageBefore { days_before: 30 }
    }
}

/// What the policy needs of a tamper period, in the tariff's billing unit (Wh or VAh).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TamperFigures {
    /// The tamper period's length, seconds.
    pub seconds: i64,
    /// What the meter recorded in the tamper period.
    pub recorded: i64,
    /// What was recorded before the tamper began (the average method's look-back)…
    pub before: i64,
    /// …over this many seconds of it that the meter measured.
    pub before_seconds: i64,
    /// W (VA for kVAh tariffs).
    pub load: i64,
}

/// A tamper period's assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessed {
    /// Units a day by the policy's formula.
    pub per_day: i64,
    /// The formula's units for the whole tamper period.
    pub formula: i64,
    /// Less what was recorded, never below zero: what is billed.
    pub units: i64,
}

/// `n / d` rounded half up, for `n ≥ 0` and `d > 0`; 0 when `d` is not positive.
fn div_round(n: i128, d: i128) -> i64 {
    if d <= 0 {
        return 0;
    }
    i64::try_from(n.saturating_add(d / 2) / d).unwrap_or(i64::MAX)
}

/// The units `policy` assesses a tamper period at. Negative figures count as zero; absurdly
/// large ones saturate.
pub fn assess(policy: &TamperPolicy, f: &TamperFigures) -> Assessed {
    let seconds = i128::from(f.seconds.max(0));
    let (per_day, formula) = match *policy {
        TamperPolicy::AverageBefore { .. } => {
            let before = i128::from(f.before.max(0));
            let measured = i128::from(f.before_seconds.max(0));
            (
                div_round(before.saturating_mul(i128::from(DAY_S)), measured),
                div_round(before.saturating_mul(seconds), measured),
            )
        }
        TamperPolicy::Ldhf {
            load_factor_bp,
            hours_per_day,
        } => {
            // W × bp × h: Wh a day × 10 000.
            let day = i128::from(f.load.max(0))
                .saturating_mul(i128::from(load_factor_bp))
                .saturating_mul(i128::from(hours_per_day));
            (
                div_round(day, 10_000),
                div_round(day.saturating_mul(seconds), 10_000 * i128::from(DAY_S)),
            )
        }
    };
    Assessed {
        per_day,
        formula,
        units: (formula - f.recorded.max(0)).max(0),
    }
}

/// The assessments of a consumer's bill and the tamper periods they come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TamperAssessments {
    pub assessments: Vec<Assessment>,
    periods: Vec<u64>,
}

impl TamperAssessments {
    /// Marks the periods assessed as billed in the bill period starting `period_from`: after
    /// the bill is issued (again marking the same, if the cycle runs again).
    pub fn mark_billed(
        &self,
        store: &Store,
        consumer_no: &str,
        period_from: NaiveDate,
    ) -> Result<(), StoreError> {
        if self.periods.is_empty() {
            return Ok(());
        }
        store.tamper_periods_mark_billed(consumer_no, &self.periods, period_from)
    }
}

/// The assessments of `account`'s bill for `from`–`to` (IST days, both included) under `t`:
/// the confirmed tamper periods that ended by the end of the bill period and are not billed
/// yet, or were billed in this same period (so a re-run gives the same bill).
pub fn for_bill(
    store: &Store,
    t: &PostpaidTariff,
    account: &BillingAccount,
    from: NaiveDate,
    to: NaiveDate,
    metering: &Metering,
) -> Result<TamperAssessments, StoreError> {
    let (_, end) = day_bounds(to);
    let mut out = TamperAssessments::default();
    for p in store.tamper_periods_to_bill(&account.consumer_no, from, end)? {
        let f = figures(store, t, account, &p, metering)?;
        let assessed = assess(&t.tamper_policy, &f);
        out.assessments.push(Assessment {
            reason: reason(t, &p, &f, &assessed),
            units: assessed.units,
        });
        out.periods.push(p.id);
    }
    Ok(out)
}

/// What the meter recorded in and before tamper period `p`, and the load, in `t`'s unit.
fn figures(
    store: &Store,
    t: &PostpaidTariff,
    account: &BillingAccount,
    p: &TamperPeriod,
    metering: &Metering,
) -> Result<TamperFigures, StoreError> {
    let units = |from: DateTime<Utc>, to: DateTime<Utc>| -> Result<(i64, i64), StoreError> {
        let Some(d) = determinants_for_consumer(store, &account.consumer_no, from, to, metering)?
        else {
            return Ok((0, 0));
        };
        let units = match t.base.unit {
            BillingUnit::Kwh => d.figures.import_wh,
            BillingUnit::Kvah => d.figures.import_vah,
        };
        // The share of the span the meters measured (missing and suspect intervals are not).
        let counted = i128::from(d.figures.intervals);
        let expected = counted + i128::from(d.missing_intervals);
        let span = i128::from((to - from).num_seconds().max(0));
        let measured = if expected > 0 {
            i64::try_from(span * counted / expected).unwrap_or(0)
        } else {
            0
        };
        Ok((units, measured))
    };
    let (recorded, _) = units(p.from, p.to)?;
    let (before, before_seconds) = match t.tamper_policy {
        TamperPolicy::AverageBefore { days_before } => units(
            p.from - chrono::Duration::days(i64::from(days_before)),
            p.from,
        )?,
        TamperPolicy::Ldhf { .. } => (0, 0),
    };
    let sanctioned_w = store
        .prepaid_supply(&account.consumer_no, p.from)?
        .map_or(0, |(_, w)| i64::from(w));
    let load = match t.base.unit {
        BillingUnit::Kwh => sanctioned_w,
        BillingUnit::Kvah => account.contract_demand.map_or(sanctioned_w, i64::from),
    };
    Ok(TamperFigures {
        seconds: (p.to - p.from).num_seconds(),
        recorded,
        before,
        before_seconds,
        load,
    })
}

/// "Magnet tamper 2026-10-03 to 2026-10-10 (tamper period 17, confirmed by inspection): 7 days
/// at 4.200 kWh/day average of the 30 days before, less 3.100 kWh recorded".
fn reason(t: &PostpaidTariff, p: &TamperPeriod, f: &TamperFigures, a: &Assessed) -> String {
    let (unit, load_unit) = match t.base.unit {
        BillingUnit::Kwh => ("kWh", "kW"),
        BillingUnit::Kvah => ("kVAh", "kVA"),
    };
    let days = days_text((p.to - p.from).num_seconds());
    let method = match t.tamper_policy {
        TamperPolicy::AverageBefore { days_before } => format!(
            "{days} at {} {unit}/day average of the {days_before} days before",
            units_text(a.per_day)
        ),
        TamperPolicy::Ldhf {
            load_factor_bp,
            hours_per_day,
        } => format!(
            "{days} at {} {unit}/day ({} {load_unit} load, {}% load factor, {hours_per_day} h a day)",
            units_text(a.per_day),
            units_text(f.load),
            percent_text(load_factor_bp)
        ),
    };
    format!(
        "{} {} (tamper period {}, confirmed by {}): {method}, less {} {unit} recorded",
        p.reason,
        span_text(p.from, p.to),
        p.id,
        p.source.as_str(),
        units_text(f.recorded),
    )
}

/// Seconds as days: "7 days", "1 day", "2.5 days", "0.25 days".
fn days_text(seconds: i64) -> String {
    let hundredths = div_round(i128::from(seconds.max(0)) * 100, i128::from(DAY_S));
    let (whole, part) = (hundredths / 100, hundredths % 100);
    let number = match part {
        0 => whole.to_string(),
        p if p % 10 == 0 => format!("{whole}.{}", p / 10),
        p => format!("{whole}.{p:02}"),
    };
    if hundredths == 100 {
        "1 day".into()
    } else {
        format!("{number} days")
    }
}

/// Basis points as a percentage: "40", "37.5".
fn percent_text(bp: u32) -> String {
    match bp % 100 {
        0 => (bp / 100).to_string(),
        p if p % 10 == 0 => format!("{}.{}", bp / 100, p / 10),
        p => format!("{}.{p:02}", bp / 100),
    }
}

/// The span in IST: dates when it runs midnight to midnight, else with the times.
fn span_text(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let local = |t: DateTime<Utc>| t + chrono::Duration::seconds(IST_OFFSET_S);
    let midnight = |t: DateTime<Utc>| local(t).num_seconds_from_midnight() == 0;
    if midnight(from) && midnight(to) {
        format!("{} to {}", ist_date(from), ist_date(to))
    } else {
        format!(
            "{} to {} IST",
            local(from).format("%Y-%m-%d %H:%M"),
            local(to).format("%Y-%m-%d %H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AVERAGE: TamperPolicy = TamperPolicy::AverageBefore { days_before: 30 };
    const LDHF: TamperPolicy = TamperPolicy::Ldhf {
        load_factor_bp: 4000,
        hours_per_day: 8,
    };

    #[test]
    fn the_average_before_times_the_days_less_what_was_recorded() {
        // 126 kWh over the 30 days before: 4.2 kWh a day; 7 days: 29.4 kWh; 3.1 recorded.
        let f = TamperFigures {
            seconds: 7 * DAY_S,
            recorded: 3_100,
            before: 126_000,
            before_seconds: 30 * DAY_S,
            load: 2_000,
        };
        assert_eq!(
            assess(&AVERAGE, &f),
            Assessed {
                per_day: 4_200,
                formula: 29_400,
                units: 26_300
            }
        );
        // Only 20 of the 30 days measured (a new meter): 126 kWh over 20 days is 6.3 a day.
        let f = TamperFigures {
            before_seconds: 20 * DAY_S,
            ..f
        };
        assert_eq!(assess(&AVERAGE, &f).formula, 44_100);
        // Half a day: 2.1 kWh, less 3.1 recorded: nothing, never negative.
        let f = TamperFigures {
            seconds: DAY_S / 2,
            before_seconds: 30 * DAY_S,
            ..f
        };
        assert_eq!(assess(&AVERAGE, &f).units, 0);
        // Nothing measured before: nothing to average.
        let f = TamperFigures {
            before_seconds: 0,
            ..f
        };
        assert_eq!(assess(&AVERAGE, &f).formula, 0);
    }

    #[test]
    fn load_times_load_factor_times_hours_times_days() {
        // 2 kW × 40 % × 8 h = 6.4 kWh a day; 7 days: 44.8 kWh; 3.1 recorded: 41.7.
        let f = TamperFigures {
            seconds: 7 * DAY_S,
            recorded: 3_100,
            load: 2_000,
            ..TamperFigures::default()
        };
        assert_eq!(
            assess(&LDHF, &f),
            Assessed {
                per_day: 6_400,
                formula: 44_800,
                units: 41_700
            }
        );
        // 36 hours: 9.6 kWh.
        let f = TamperFigures {
            seconds: 36 * 3600,
            recorded: 0,
            ..f
        };
        assert_eq!(assess(&LDHF, &f).units, 9_600);
    }

    #[test]
    fn days_and_percentages_as_people_read_them() {
        assert_eq!(days_text(7 * DAY_S), "7 days");
        assert_eq!(days_text(DAY_S), "1 day");
        assert_eq!(days_text(DAY_S * 5 / 2), "2.5 days");
        assert_eq!(days_text(DAY_S / 4), "0.25 days");
        assert_eq!(percent_text(4000), "40");
        assert_eq!(percent_text(3750), "37.5");
        assert_eq!(percent_text(3725), "37.25");
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            span_text(t("2026-10-02T18:30:00Z"), t("2026-10-09T18:30:00Z")),
            "2026-10-03 to 2026-10-10"
        );
        assert_eq!(
            span_text(t("2026-10-03T09:00:00Z"), t("2026-10-04T00:00:00Z")),
            "2026-10-03 14:30 to 2026-10-04 05:30 IST"
        );
    }

    fn policy() -> impl Strategy<Value = TamperPolicy> {
        prop_oneof![
            any::<u32>().prop_map(|days_before| TamperPolicy::AverageBefore { days_before }),
            (any::<u32>(), any::<u32>()).prop_map(|(load_factor_bp, hours_per_day)| {
                TamperPolicy::Ldhf {
                    load_factor_bp,
                    hours_per_day,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn never_negative_and_never_more_than_the_formula(
            policy in policy(),
            seconds in any::<i64>(),
            recorded in any::<i64>(),
            before in any::<i64>(),
            before_seconds in any::<i64>(),
            load in any::<i64>(),
        ) {
            let a = assess(&policy, &TamperFigures { seconds, recorded, before, before_seconds, load });
            prop_assert!(a.units >= 0);
            prop_assert!(a.units <= a.formula);
            if recorded >= 0 && recorded <= a.formula {
                prop_assert_eq!(a.units, a.formula - recorded);
            }
        }
    }
}

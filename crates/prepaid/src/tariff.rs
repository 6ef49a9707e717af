//! Tariffs as data, and the charge for a day.
//!
//! A tariff has a fixed charge per kW of sanctioned load per day, telescopic energy slabs that
//! apply to the month's consumption so far (the first 100 kWh of the month at one rate, the
//! next 200 at another, …), a billing unit (kWh or kVAh) and electricity duty as a share of
//! energy and fixed charges. Rates are exact decimals (milli-paise), sums exact integers.
//!
//! The day's charge is the month-to-date bill after the day less the month-to-date bill before
//! it, each rounded to the paisa the same way: so a month of daily charges adds up exactly to the
//! month's bill, whatever the daily consumption, and a day's slab is the one the month has
//! reached.

use chrono::NaiveDate;
use model::Paise;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    #[error("rate {0:?} is not a rupee amount with at most 5 decimals")]
    Rate(String),
    #[error("the slabs of tariff {0} must rise and end with an open slab")]
    Slabs(String),
    #[error("not a list of tariffs: {0}")]
    Json(String),
    #[error("no tariff for category {category} on {date}")]
    NoneInForce { category: String, date: NaiveDate },
}

/// A rate in milli-paise (1/100 000 of a rupee) per unit, written as rupees, e.g. `"6.425"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(pub i64);

impl Rate {
    pub fn parse(s: &str) -> Result<Rate, TariffError> {
        let bad = || TariffError::Rate(s.to_string());
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty()
            || frac.len() > 5
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let frac: i64 = format!("{frac:0<5}").parse().map_err(|_| bad())?;
        whole
            .checked_mul(100_000)
            .and_then(|w| w.checked_add(frac))
            .map(Rate)
            .ok_or_else(bad)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frac = format!("{:05}", self.0 % 100_000);
        let frac = frac.trim_end_matches('0');
        let frac = if frac.len() < 2 {
            &format!("{frac:0<2}")
        } else {
            frac
        };
        write!(f, "{}.{frac}", self.0 / 100_000)
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Rate::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What energy is billed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingUnit {
    Kwh,
    Kvah,
}

/// Up to `up_to_kwh` of the month's consumption (`None`: all the rest) at `rate` per unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slab {
    pub up_to_kwh: Option<u32>,
    pub rate: Rate,
}

/// One version of a tariff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tariff {
    pub code: String,
    /// Consumer category it applies to: `domestic`, `commercial`, …
    pub category: String,
    /// In force from this date (IST) until a later version of the same category.
    pub effective_from: NaiveDate,
    pub unit: BillingUnit,
    /// Per kW of sanctioned load per day.
    pub fixed_per_kw_day: Rate,
    /// Rising bounds; the last is open.
    pub slabs: Vec<Slab>,
    /// Electricity duty on energy and fixed charges, basis points (500 = 5 %).
    pub duty_bp: u32,
}

impl Tariff {
    /// Checks the slabs rise and end open.
    pub fn check(&self) -> Result<(), TariffError> {
        let bounds: Vec<Option<u32>> = self.slabs.iter().map(|s| s.up_to_kwh).collect();
        let rising = bounds.windows(2).all(|w| {
            matches!((w[0], w[1]), (Some(a), Some(b)) if a < b)
                || matches!((w[0], w[1]), (Some(_), None))
        });
        let open_end = matches!(bounds.last(), Some(None));
        let closed_before = bounds.iter().rev().skip(1).all(Option::is_some);
        if rising && open_end && closed_before {
            Ok(())
        } else {
            Err(TariffError::Slabs(self.code.clone()))
        }
    }

    /// The energy charge of `units_wh` (Wh or VAh) consumed in the month so far, in
    /// micro-paise (exact).
    fn energy_micro(&self, units_wh: i64) -> i128 {
        let mut left = i128::from(units_wh.max(0));
        let mut below = 0i128;
        let mut micro = 0i128;
        for slab in &self.slabs {
            let cap = slab.up_to_kwh.map(|k| i128::from(k) * 1000);
            let room = cap.map_or(left, |c| (c - below).max(0).min(left));
            micro += room * i128::from(slab.rate.0);
            left -= room;
            below = cap.unwrap_or(below);
            if left == 0 {
                break;
            }
        }
        micro
    }

    /// The bill for the month so far: `units_wh` consumed over `days` days with `sanctioned_w`
    /// of sanctioned load.
    pub fn month_to_date(&self, units_wh: i64, days: u32, sanctioned_w: u32) -> Charge {
        let energy = round_micro(self.energy_micro(units_wh));
        let fixed = round_micro(
            i128::from(self.fixed_per_kw_day.0) * i128::from(sanctioned_w) * i128::from(days),
        );
        let duty = round_div(
            i128::from(energy.0 + fixed.0) * i128::from(self.duty_bp),
            10_000,
        );
        Charge {
            energy,
            fixed,
            duty: Paise(duty),
        }
    }

    /// The charge for one day: the month-to-date bill after it less the one before it.
    /// `month_units_before` is what the month consumed before this day, `day_of_month` 1-based.
    pub fn daily_charge(
        &self,
        month_units_before: i64,
        day_units: i64,
        day_of_month: u32,
        sanctioned_w: u32,
    ) -> Charge {
        let before = self.month_to_date(
            month_units_before,
            day_of_month.saturating_sub(1),
            sanctioned_w,
        );
        let after = self.month_to_date(
            month_units_before.saturating_add(day_units),
            day_of_month,
            sanctioned_w,
        );
        after.less(&before)
    }
}

/// Micro-paise to paise, half up.
fn round_micro(micro: i128) -> Paise {
    Paise(round_div(micro, 1_000_000))
}

fn round_div(n: i128, d: i128) -> i64 {
    let q = (n + d / 2).div_euclid(d);
    i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX })
}

/// A charge by component, in paise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Charge {
    pub energy: Paise,
    pub fixed: Paise,
    pub duty: Paise,
}

impl Charge {
    pub fn total(&self) -> Paise {
        Paise(self.energy.0 + self.fixed.0 + self.duty.0)
    }

    fn less(&self, other: &Charge) -> Charge {
        Charge {
            energy: Paise(self.energy.0 - other.energy.0),
            fixed: Paise(self.fixed.0 - other.fixed.0),
            duty: Paise(self.duty.0 - other.duty.0),
        }
    }

    pub fn add(&self, other: &Charge) -> Charge {
        Charge {
            energy: Paise(self.energy.0 + other.energy.0),
            fixed: Paise(self.fixed.0 + other.fixed.0),
            duty: Paise(self.duty.0 + other.duty.0),
        }
    }
}

/// Every version of every tariff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TariffBook {
    pub versions: Vec<Tariff>,
}

/// The tariffs a new data directory starts with (`tariffs/default.json`): one version for each
/// common category, shaped like a state's schedule. A utility replaces them with its own through
/// the API; they are examples, not any commission's order.
pub const DEFAULT_TARIFFS: &str = include_str!("../tariffs/default.json");

impl TariffBook {
    /// The tariffs in `json` (an array of tariffs), each checked.
    pub fn from_json(json: &str) -> Result<TariffBook, TariffError> {
        let versions: Vec<Tariff> =
            serde_json::from_str(json).map_err(|e| TariffError::Json(e.to_string()))?;
        for t in &versions {
            t.check()?;
        }
        Ok(TariffBook { versions })
    }

    /// The version of `category`'s tariff in force on `date`: the latest that started by then.
    pub fn in_force(&self, category: &str, date: NaiveDate) -> Result<&Tariff, TariffError> {
        self.versions
            .iter()
            .filter(|t| t.category == category && t.effective_from <= date)
            .max_by_key(|t| t.effective_from)
            .ok_or_else(|| TariffError::NoneInForce {
                category: category.to_string(),
                date,
            })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_tariffs_parse_and_check() {
        let book = TariffBook::from_json(DEFAULT_TARIFFS).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        for category in ["residential", "commercial", "industrial", "agricultural"] {
            assert!(book.in_force(category, day).is_ok(), "{category}");
        }
    }

    use super::*;
    use proptest::prelude::*;

    /// A domestic tariff shaped like Uttar Pradesh's: ₹5.50 up to 100 kWh, ₹5.75 to 300, ₹6.50
    /// beyond; ₹110 per kW a month (₹3.66667 a day); 5 % duty.
    fn domestic() -> Tariff {
        Tariff {
            code: "LMV-1".into(),
            category: "domestic".into(),
            effective_from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
            unit: BillingUnit::Kwh,
            fixed_per_kw_day: Rate::parse("3.66667").unwrap(),
            slabs: vec![
                Slab {
                    up_to_kwh: Some(100),
                    rate: Rate::parse("5.5").unwrap(),
                },
                Slab {
                    up_to_kwh: Some(300),
                    rate: Rate::parse("5.75").unwrap(),
                },
                Slab {
                    up_to_kwh: None,
                    rate: Rate::parse("6.50").unwrap(),
                },
            ],
            duty_bp: 500,
        }
    }

    #[test]
    fn rates_are_exact_decimals() {
        assert_eq!(Rate::parse("6.425").unwrap(), Rate(642_500));
        assert_eq!(Rate::parse("0.00001").unwrap(), Rate(1));
        assert_eq!(Rate::parse("5").unwrap().to_string(), "5.00");
        assert_eq!(Rate::parse("3.66667").unwrap().to_string(), "3.66667");
        for bad in [
            "",
            "-1",
            "1.234567",
            "1,5",
            "₹5",
            "1e3",
            "99999999999999999999",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&Rate::parse("5.75").unwrap()).unwrap();
        assert_eq!(json, "\"5.75\"");
        assert!(domestic().check().is_ok());
    }

    #[test]
    fn a_month_is_billed_by_telescopic_slabs() {
        // 350 kWh over 30 days with 2 kW sanctioned:
        // 100 × 5.50 + 200 × 5.75 + 50 × 6.50 = 550 + 1150 + 325 = ₹2,025.00 energy;
        // 3.66667 × 2 × 30 = ₹220.0002 → ₹220.00 fixed; 5 % of 2,245.00 = ₹112.25 duty.
        let bill = domestic().month_to_date(350_000, 30, 2000);
        assert_eq!(bill.energy, Paise(202_500));
        assert_eq!(bill.fixed, Paise(22_000));
        assert_eq!(bill.duty, Paise(11_225));
        assert_eq!(bill.total(), Paise(235_725));
    }

    #[test]
    fn a_day_is_charged_at_the_slab_the_month_has_reached() {
        // 95 kWh so far this month; today 10 kWh: 5 at ₹5.50 and 5 at ₹5.75 = ₹56.25.
        let day = domestic().daily_charge(95_000, 10_000, 12, 2000);
        assert_eq!(day.energy, Paise(5_625));
        // The fixed charge of one day for 2 kW: ₹7.33334 → ₹7.33 or ₹7.34 by the running rounding.
        assert!((733..=734).contains(&day.fixed.0), "{day:?}");
    }

    #[test]
    fn slabs_that_do_not_rise_or_end_closed_are_refused() {
        let mut t = domestic();
        t.slabs[1].up_to_kwh = Some(50);
        assert!(t.check().is_err());
        let mut t = domestic();
        t.slabs[2].up_to_kwh = Some(500);
        assert!(t.check().is_err());
    }

    #[test]
    fn the_tariff_in_force_is_the_latest_started() {
        let mut newer = domestic();
        newer.effective_from = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        newer.duty_bp = 750;
        let book = TariffBook {
            versions: vec![domestic(), newer],
        };
        let on = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert_eq!(book.in_force("domestic", on(9, 30)).unwrap().duty_bp, 500);
        assert_eq!(book.in_force("domestic", on(10, 1)).unwrap().duty_bp, 750);
        assert!(book.in_force("domestic", on(3, 31)).is_err());
        assert!(book.in_force("commercial", on(10, 1)).is_err());
    }

    proptest! {
        /// A month of daily charges adds up exactly to the month's bill for the same
        /// consumption, component by component; no day's charge is negative.
        #[test]
        fn daily_charges_add_up_to_the_monthly_bill(
            days in proptest::collection::vec(0i64..60_000, 28..=31),
            sanctioned_w in 500u32..20_000,
            duty_bp in 0u32..2_000,
        ) {
            let mut t = domestic();
            t.duty_bp = duty_bp;
            let mut sum = Charge::default();
            let mut month = 0i64;
            for (i, units) in days.iter().enumerate() {
                let day = t.daily_charge(month, *units, i as u32 + 1, sanctioned_w);
                prop_assert!(day.energy.0 >= 0 && day.fixed.0 >= 0 && day.duty.0 >= 0, "{day:?}");
                sum = sum.add(&day);
                month += units;
            }
            let bill = t.month_to_date(month, days.len() as u32, sanctioned_w);
            prop_assert_eq!(sum, bill);
        }
    }
}

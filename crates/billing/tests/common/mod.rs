//! What the billing tests share: a tariff and a month's input worked with by hand.

#![allow(dead_code)] // each test file uses its own part

use billing::bill::{BillInput, PostpaidTariff};
use chrono::NaiveDate;
use model::Paise;
use tariff::{BillingUnit, Rate, Slab, Tariff};

pub fn nov(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

pub fn rate(s: &str) -> Rate {
    Rate::parse(s).unwrap()
}

/// ₹5.50 up to 100 kWh, ₹6.00 to 300, ₹7.00 beyond; ₹3.00 a kW a day; 5 % duty on energy, TOD
/// and fixed charges; due in 15 days, 1.5 % late-payment surcharge, 1 % prompt rebate on energy
/// within 7 days, 0.5 % digital rebate up to ₹100.
pub fn tariff() -> PostpaidTariff {
    PostpaidTariff {
        base: Tariff {
            code: "LT-1".into(),
            category: "residential".into(),
            effective_from: nov(1),
            unit: BillingUnit::Kwh,
            fixed_per_kw_day: rate("3"),
            slabs: vec![
                Slab {
                    up_to_kwh: Some(100),
                    rate: rate("5.50"),
                },
                Slab {
                    up_to_kwh: Some(300),
                    rate: rate("6"),
                },
                Slab {
                    up_to_kwh: None,
                    rate: rate("7"),
                },
            ],
            duty_bp: 500,
            tod_bp: [0; 8],
            cess_per_unit: Rate(0),
            levies: vec![],
            subsidies: vec![],
        },
        demand: None,
        power_factor: None,
        fppa_per_unit: Rate(0),
        minimum_per_kw_month: Rate(0),
        tamper_rate_bp: 10_000,
        tamper_policy: Default::default(),
        due_days: 15,
        late_payment_bp: 150,
        prompt_rebate_bp: 100,
        prompt_days: 7,
        digital_rebate_bp: 50,
        digital_rebate_cap: Paise(10_000),
    }
}

/// November (30 days), 2 kW, `kwh` imported.
pub fn input(kwh: i64) -> BillInput {
    BillInput::metered(
        "C-1",
        nov(1),
        nov(30),
        NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(),
        2000,
        kwh * 1000,
    )
}

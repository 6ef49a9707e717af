//! What the billing tests share: a tariff and a month's input worked with by hand, and a store
//! with one postpaid consumer whose meter's days are written as intervals.

#![allow(dead_code)] // each test file uses its own part

use billing::bill::{BillInput, PostpaidTariff};
use chrono::{DateTime, NaiveDate, Utc};
use model::{IntervalReading, MeterSerial, Paise, Quality};
use store::billing::BillingAccount;
use store::mdm::{Consumer, ServicePoint};
use store::{IngestWrite, IntervalWrite, Store};
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

pub fn ist(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+05:30"))
        .unwrap()
        .with_timezone(&Utc)
}

/// A store with consumer `C-1` (2 kW, meter `M-1`) in billing cycle 1, ₹500 owed from before.
pub fn store() -> (tempfile::TempDir, Store, MeterSerial) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let at = ist("2026-10-01T00:00:00");
    store
        .mdm_put_consumer(
            &Consumer {
                consumer_no: "C-1".into(),
                name: "Ravi".into(),
                category: "residential".into(),
                net_metered: false,
            },
            at,
        )
        .unwrap();
    store
        .mdm_put_service_point(&ServicePoint {
            id: "SP-1".into(),
            address: "4 Station Road".into(),
            sanctioned_load_w: 2000,
        })
        .unwrap();
    store.mdm_connect_consumer("SP-1", "C-1", at).unwrap();
    let meter = MeterSerial::new("M-1").unwrap();
    store.mdm_install_meter(&meter, "SP-1", at).unwrap();
    store
        .billing_account_put(
            &BillingAccount {
                consumer_no: "C-1".into(),
                cycle_day: 1,
                contract_demand: None,
                opening_arrears: Paise(50_000),
                billed_from: None,
                closed_on: None,
            },
            at,
        )
        .unwrap();
    (dir, store, meter)
}

/// A day of 96 intervals of `wh` each, estimated or read.
pub fn day(store: &Store, meter: &MeterSerial, date: NaiveDate, wh: i64, estimated: bool) {
    let start = ist(&format!("{date}T00:00:00"));
    let rows = (0..96i64)
        .map(|i| IntervalWrite::New {
            reading: IntervalReading {
                meter: meter.clone(),
                interval_end: start + chrono::Duration::minutes(15 * (i + 1)),
                avg_voltage_v: None,
                avg_current_a: None,
                avg_phase_voltage_v: None,
                avg_phase_current_a: None,
                import_wh: wh,
                import_vah: wh,
                export_wh: None,
                export_vah: None,
                quality: if estimated {
                    vec![Quality::Estimated]
                } else {
                    vec![]
                },
            },
            method: estimated.then(|| "like_day".to_string()),
        })
        .collect();
    store
        .mdm_write(
            &IngestWrite {
                intervals: rows,
                ..IngestWrite::default()
            },
            start,
        )
        .unwrap();
}

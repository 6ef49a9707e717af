//! Golden bills: for each tariff feature a bill worked out by hand (in the comments), compared
//! line by line.

mod common;

use billing::bill::{
    Assessment, BillInput, DemandCharge, PostpaidTariff, PowerFactorRule, compute,
};
use billing::tamper::{TamperFigures, TamperPolicy, assess};
use chrono::NaiveDate;
use common::{input, nov, rate, tariff};
use model::Paise;

fn lines(t: &PostpaidTariff, i: &BillInput) -> Vec<(String, i64)> {
    compute(t, i)
        .unwrap()
        .lines
        .into_iter()
        .map(|l| (l.code, l.amount.0))
        .collect()
}

fn expect(v: &[(&str, i64)]) -> Vec<(String, i64)> {
    v.iter().map(|(c, a)| (c.to_string(), *a)).collect()
}

#[test]
fn slabs_fixed_charge_duty_and_what_is_payable_when() {
    // 250 kWh: 100 × 5.50 = 550.00, 150 × 6.00 = 900.00 → 1,450.00
    // fixed: 3.00 × 2 kW × 30 days = 180.00; duty 5 % of 1,630.00 = 81.50; total 1,711.50
    let bill = compute(&tariff(), &input(250)).unwrap();
    assert_eq!(
        lines(&tariff(), &input(250)),
        expect(&[("energy", 145_000), ("fixed", 18_000), ("duty", 8_150)])
    );
    assert_eq!(bill.current, Paise(171_150));
    assert_eq!(
        bill.due_date,
        NaiveDate::from_ymd_opt(2026, 12, 17).unwrap()
    );
    // after the due date: + 1.5 % of 1,711.50 = 25.6725 → 25.67
    assert_eq!(bill.payable_after_due_date, Paise(173_717));
    // promptly: − 1 % of the energy charge 1,450.00 = 14.50
    assert_eq!(bill.payable_if_prompt, Paise(169_700));
    // digitally: 0.5 % of 1,711.50 = 8.5575 → 8.56 (under the ₹100 cap)
    assert_eq!(bill.digital_rebate, Paise(856));
    assert!(bill.lines[0].description.contains("250.000 kWh"));
}

#[test]
fn time_of_day_rebate_and_surcharge() {
    // 300 kWh: 550.00 + 200 × 6.00 = 1,750.00; zones: peak 90 (+20 %), normal 180, off-peak 30
    // (−20 %) at the month's average rate: 1,750.00 × (0.2 × 90 − 0.2 × 30) / 300 = 70.00
    // duty 5 % of (1,750 + 70 + 180) = 100.00
    let mut t = tariff();
    t.base.tod_bp = [2000, 0, -2000, 0, 0, 0, 0, 0];
    let mut i = input(300);
    i.measured.import.zones = [90_000, 180_000, 30_000, 0, 0, 0, 0, 0];
    assert_eq!(
        lines(&t, &i),
        expect(&[
            ("energy", 175_000),
            ("tod", 7_000),
            ("fixed", 18_000),
            ("duty", 10_000)
        ])
    );
}

#[test]
fn demand_charge_on_billable_demand_and_the_penalty_over_contract() {
    // ₹300 a kVA a month; billable at least 75 % of a 50 kVA contract; the excess again at 100 %
    let mut t = tariff();
    t.demand = Some(DemandCharge {
        per_kva_month: rate("300"),
        min_share_bp: 7500,
        excess_penalty_bp: 10_000,
    });
    let mut i = input(0);
    i.sanctioned_w = 0;
    i.contract_demand = Some(50_000);
    // recorded 56 kVA: 56 × 300 = 16,800.00; 6 kVA over: 6 × 300 × 100 % = 1,800.00
    i.measured.max_demand = 56_000;
    assert_eq!(
        lines(&t, &i),
        expect(&[("demand", 1_680_000), ("demand_penalty", 180_000)])
    );
    // recorded 30 kVA: billed at 75 % of 50 = 37.5 kVA × 300 = 11,250.00, no penalty
    i.measured.max_demand = 30_000;
    assert_eq!(lines(&t, &i), expect(&[("demand", 1_125_000)]));
}

#[test]
fn power_factor_penalty_and_incentive() {
    // 1 % of the energy charge (1,450.00) per 0.01 below 0.90 (or part) and above 0.95, at most 5 %
    let mut t = tariff();
    t.power_factor = Some(PowerFactorRule {
        penalty_below: 900,
        incentive_above: 950,
        bp_per_hundredth: 100,
        incentive_cap_bp: 500,
    });
    let pf = |pf: u16| {
        let mut i = input(250);
        i.measured.power_factor = Some(pf);
        lines(&t, &i)
            .into_iter()
            .find(|(c, _)| c == "power_factor")
            .map_or(0, |(_, a)| a)
    };
    assert_eq!(pf(874), 4_350, "0.026 below: 3 hundredths, 3 % = 43.50");
    assert_eq!(pf(920), 0, "between the thresholds");
    assert_eq!(pf(982), -4_350, "0.032 above: 3 whole hundredths");
    assert_eq!(pf(999), -5_800, "4 % = 58.00");
    assert_eq!(pf(1000), -7_250, "5 %, the cap");
}

#[test]
fn fuel_adjustment_minimum_charge_and_tamper_assessment() {
    // FPPA ₹0.35 a kWh on 250 kWh = 87.50
    let mut t = tariff();
    t.fppa_per_unit = rate("0.35");
    assert!(lines(&t, &input(250)).contains(&("fppa".into(), 8_750)));

    // minimum ₹150 a kW a month on 5 kW = 750.00; 10 kWh: energy 55.00, fixed 3 × 5 × 30 =
    // 450.00, duty 5 % of 505.00 = 25.25 → 530.25; top-up 219.75
    let mut t = tariff();
    t.minimum_per_kw_month = rate("150");
    let mut i = input(10);
    i.sanctioned_w = 5000;
    assert_eq!(
        lines(&t, &i),
        expect(&[
            ("energy", 5_500),
            ("fixed", 45_000),
            ("duty", 2_525),
            ("minimum", 21_975)
        ])
    );
    assert_eq!(compute(&t, &i).unwrap().current, Paise(75_000));

    // 40 kWh assessed for a magnet at twice the top rate (7.00): 560.00, its own line
    let mut t = tariff();
    t.tamper_rate_bp = 20_000;
    let mut i = input(250);
    i.assessments.push(Assessment {
        reason: "magnet, 10–14 Nov (confirmed by inspection WO-17)".into(),
        units: 40_000,
    });
    let bill = compute(&t, &i).unwrap();
    let tamper = bill.lines.iter().find(|l| l.code == "tamper").unwrap();
    assert_eq!(tamper.amount, Paise(56_000));
    assert!(tamper.description.contains("magnet"));
    assert!(tamper.description.contains("40.000 kWh"));
}

/// A 7-day magnet tamper assessed by `policy` under the golden tariff at twice its top rate
/// (7.00 × 2 = 14.00 a kWh), on a bill of 250 kWh: the tamper line and the month's charges.
fn tamper_bill(policy: TamperPolicy) -> (i64, String, Paise) {
    let mut t = tariff();
    t.tamper_rate_bp = 20_000;
    t.tamper_policy = policy;
    // 126 kWh over the 30 days before it, 3.1 kWh recorded in it, 2 kW sanctioned.
    let assessed = assess(
        &t.tamper_policy,
        &TamperFigures {
            seconds: 7 * 86_400,
            recorded: 3_100,
            before: 126_000,
            before_seconds: 30 * 86_400,
            load: 2_000,
        },
    );
    let mut i = input(250);
    i.assessments.push(Assessment {
        reason: "Magnet tamper".into(),
        units: assessed.units,
    });
    let bill = compute(&t, &i).unwrap();
    let line = bill.lines.iter().find(|l| l.code == "tamper").unwrap();
    (line.amount.0, line.description.clone(), bill.current)
}

#[test]
fn tamper_assessed_at_the_average_of_the_days_before() {
    // 126 kWh over 30 days: 4.2 kWh a day × 7 days = 29.4 kWh, less 3.1 recorded = 26.3 kWh
    // × 14.00 = 368.20; the month without it is 1,711.50 (slabs test): 2,079.70
    let (amount, description, current) =
        tamper_bill(TamperPolicy::AverageBefore { days_before: 30 });
    assert_eq!(amount, 36_820);
    assert_eq!(description, "Assessed energy, 26.300 kWh: Magnet tamper");
    assert_eq!(current, Paise(207_970));
}

#[test]
fn tamper_assessed_by_load_load_factor_and_hours() {
    // 2 kW × 40 % × 8 h = 6.4 kWh a day × 7 days = 44.8 kWh, less 3.1 recorded = 41.7 kWh
    // × 14.00 = 583.80; with the month's 1,711.50: 2,295.30
    let (amount, _, current) = tamper_bill(TamperPolicy::Ldhf {
        load_factor_bp: 4000,
        hours_per_day: 8,
    });
    assert_eq!(amount, 58_380);
    assert_eq!(current, Paise(229_530));
}

#[test]
fn net_metering_offsets_import_and_carries_the_rest_forward() {
    // 250 imported, 120 exported, 30 banked: 100 billed → 550.00
    let mut i = input(250);
    i.measured.export = 120_000;
    i.banked = 30_000;
    let bill = compute(&tariff(), &i).unwrap();
    assert_eq!(bill.billed_units, 100_000);
    assert_eq!(bill.carried_forward, 0);
    assert_eq!(bill.lines[0].amount, Paise(55_000));
    // 100 imported, 130 exported: nothing billed for energy, 30 kWh carried forward
    let mut i = input(100);
    i.measured.export = 130_000;
    let bill = compute(&tariff(), &i).unwrap();
    assert_eq!((bill.billed_units, bill.carried_forward), (0, 30_000));
    assert!(bill.lines.iter().all(|l| l.code != "energy"));
}

#[test]
fn arrears_are_payable_without_surcharge_on_them_and_a_provisional_bill_says_so() {
    let mut i = input(250);
    i.arrears = Paise(100_000);
    i.provisional = true;
    let bill = compute(&tariff(), &i).unwrap();
    assert_eq!(bill.lines.last().unwrap().code, "arrears");
    assert_eq!(bill.current, Paise(171_150));
    assert_eq!(bill.payable_by_due_date, Paise(271_150));
    // the surcharge is on the month's charges only: 25.67
    assert_eq!(bill.payable_after_due_date, Paise(273_717));
    assert!(bill.provisional);
    // a period that runs backwards is refused
    let mut bad = input(1);
    bad.to = nov(1) - chrono::Duration::days(1);
    assert!(compute(&tariff(), &bad).is_err());
}

use proptest::prelude::*;

proptest! {
    /// Whatever the consumption, export and arrears: the month's charges are the sum of the
    /// lines but arrears, net metering neither bills nor carries a unit twice, the surcharge
    /// and the rebates go the right way, and the same input gives the same bill.
    #[test]
    fn a_bill_adds_up(
        kwh in 0i64..5_000,
        export in 0i64..3_000_000,
        banked in 0i64..500_000,
        arrears in 0i64..10_000_000,
        demand in 0i64..120_000,
        pf in 500u16..=1000,
    ) {
        let mut t = tariff();
        t.fppa_per_unit = rate("0.35");
        t.minimum_per_kw_month = rate("150");
        t.demand = Some(DemandCharge {
            per_kva_month: rate("300"),
            min_share_bp: 7500,
            excess_penalty_bp: 10_000,
        });
        t.power_factor = Some(PowerFactorRule {
            penalty_below: 900,
            incentive_above: 950,
            bp_per_hundredth: 100,
            incentive_cap_bp: 500,
        });
        let mut i = input(kwh);
        i.measured.export = export;
        i.banked = banked;
        i.arrears = Paise(arrears);
        i.contract_demand = Some(50_000);
        i.measured.max_demand = demand;
        i.measured.power_factor = Some(pf);
        let bill = compute(&t, &i).unwrap();
        let current: i64 = bill.lines.iter().filter(|l| l.code != "arrears").map(|l| l.amount.0).sum();
        prop_assert_eq!(bill.current.0, current);
        prop_assert_eq!(bill.payable_by_due_date.0, current + arrears);
        let import = kwh * 1000;
        prop_assert_eq!(bill.billed_units + (export + banked).min(import), import);
        prop_assert_eq!(bill.carried_forward, (export + banked - import).max(0));
        prop_assert!(bill.payable_after_due_date >= bill.payable_by_due_date);
        prop_assert!(bill.payable_if_prompt <= bill.payable_by_due_date);
        prop_assert!(bill.digital_rebate <= t.digital_rebate_cap);
        prop_assert!(bill.current >= Paise(75_000 * 2 / 5), "the minimum for 2 kW holds");
        prop_assert_eq!(compute(&t, &i).unwrap(), bill);
    }
}

/// The postpaid tariffs a data directory starts with read and check.
#[test]
fn the_default_postpaid_tariffs_read() {
    let book: Vec<PostpaidTariff> =
        serde_json::from_str(billing::cycle::DEFAULT_POSTPAID_TARIFFS).unwrap();
    assert_eq!(book.len(), 4);
    for t in &book {
        t.base.check().unwrap();
    }
    assert!(
        book.iter()
            .any(|t| t.demand.is_some() && t.power_factor.is_some())
    );
    // Every category prices an assessed tamper; both methods are there.
    assert!(book.iter().all(|t| t.tamper_rate_bp > 0));
    for method in ["AverageBefore", "Ldhf"] {
        assert!(
            book.iter()
                .any(|t| format!("{:?}", t.tamper_policy).starts_with(method)),
            "{method}"
        );
    }
    // A tariff stored before the policy existed reads with the default: the 30 days before.
    let mut old = serde_json::to_value(&book[0]).unwrap();
    old.as_object_mut().unwrap().remove("tamper_policy");
    let old: PostpaidTariff = serde_json::from_value(old).unwrap();
    assert_eq!(
        old.tamper_policy,
        TamperPolicy::AverageBefore { days_before: 30 }
    );
}

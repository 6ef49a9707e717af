//! A postpaid consumer's monthly bill from the MDM's billing determinants (use cases 2.1–2.5),
//! line by line, exact in paise.
//!
//! The energy, TOD, fixed charge, duty, cess, levies and subsidy are the tariff's month
//! (`tariff::Tariff::month_to_date`, the same pricing prepaid charges a day with). On top of
//! them, postpaid tariffs have: a demand charge on the billable demand (the recorded maximum
//! demand, at least a share of the contract demand) with a penalty on demand over the contract;
//! a power-factor penalty below one threshold and an incentive above another, as shares of the
//! energy charge; the fuel and power-purchase adjustment per unit; a minimum charge; assessed
//! energy for a confirmed tamper period (its own line with its reason); net metering, where
//! export and banked units offset import and what is left over is carried forward; arrears;
//! and what is payable by the due date and after it (late-payment surcharge), with the prompt
//! and digital-payment rebates a consumer may take.

use chrono::NaiveDate;
use model::Paise;
use serde::{Deserialize, Serialize};
use tariff::{MonthUse, Rate, Tariff, days_in_month};

use mdm::determinants::PeriodReadings;

use crate::account::LateCharge;
use crate::tamper::TamperPolicy;

/// Demand charge and penalty, per kVA (or kW) of billable demand per month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandCharge {
    pub per_kva_month: Rate,
    /// The billable demand is at least this share of the contract demand, basis points.
    pub min_share_bp: u32,
    /// Demand over the contract is charged again at this share of the rate, basis points
    /// (10 000: the excess costs double).
    pub excess_penalty_bp: u32,
}

/// Power factor: a penalty below `penalty_below`, an incentive above `incentive_above`
/// (thousandths, e.g. 900 and 950), `bp_per_hundredth` of the energy charge for each 0.01.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerFactorRule {
    pub penalty_below: u16,
    pub incentive_above: u16,
    pub bp_per_hundredth: u32,
    /// The incentive is at most this share of the energy charge, basis points.
    pub incentive_cap_bp: u32,
}

/// A postpaid tariff: the shared tariff and what postpaid billing adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostpaidTariff {
    pub base: Tariff,
    #[serde(default)]
    pub demand: Option<DemandCharge>,
    #[serde(default)]
    pub power_factor: Option<PowerFactorRule>,
    /// Fuel and power-purchase adjustment surcharge per unit.
    #[serde(default)]
    pub fppa_per_unit: Rate,
    /// The month's charges are at least this per kW of sanctioned load.
    #[serde(default)]
    pub minimum_per_kw_month: Rate,
    /// Assessed energy of a confirmed tamper period is charged at the highest slab's rate times
    /// this, basis points (10 000: the rate itself).
    #[serde(default)]
    pub tamper_rate_bp: u32,
    /// How many units a confirmed tamper period is assessed at.
    #[serde(default)]
    pub tamper_policy: TamperPolicy,
    /// Days from the bill to its due date.
    pub due_days: u32,
    /// Late-payment surcharge on the month's charges when paid after the due date, bp.
    #[serde(default)]
    pub late_payment_bp: u32,
    /// Rebate on the month's energy charge when paid within `prompt_days`, bp.
    #[serde(default)]
    pub prompt_rebate_bp: u32,
    #[serde(default)]
    pub prompt_days: u32,
    /// Rebate on the month's charges when paid digitally, bp, at most `digital_rebate_cap`.
    #[serde(default)]
    pub digital_rebate_bp: u32,
    #[serde(default)]
    pub digital_rebate_cap: Paise,
}

/// What was measured over the billing period, in the tariff's billing unit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Measured {
    /// Import in total and per TOD zone (Wh or VAh).
    pub import: MonthUse,
    /// Export (net-metered consumers), same unit.
    pub export: i64,
    /// Maximum demand recorded, VA (or W for a kW-billed demand).
    pub max_demand: i64,
    /// Average power factor, thousandths.
    pub power_factor: Option<u16>,
}

/// A confirmed tamper period's assessed energy (use case 5.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub reason: String,
    /// Units (Wh or VAh) assessed as consumed and not recorded.
    pub units: i64,
}

/// Everything a bill is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillInput {
    pub consumer_no: String,
    /// The period, both days included.
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub bill_date: NaiveDate,
    pub sanctioned_w: u32,
    /// VA (or W); `None` for consumers without a contract demand.
    pub contract_demand: Option<u32>,
    pub measured: Measured,
    /// Some of the determinants were estimated or missing: the bill is provisional.
    pub provisional: bool,
    pub assessments: Vec<Assessment>,
    /// Net metering: units banked from earlier months.
    pub banked: i64,
    /// Owed at the end of the period from before it (negative: paid in advance).
    pub arrears: Paise,
    /// Surcharges for earlier bills paid late (their due dates fell in this period).
    #[serde(default)]
    pub late_payment: Vec<LateCharge>,
    /// The meter's registers at the period's start and end, where they were read.
    #[serde(default)]
    pub readings: Option<PeriodReadings>,
    /// The last bill before the consumer went prepaid.
    #[serde(default)]
    pub final_bill: bool,
}

impl BillInput {
    /// A plain month: `import_wh` over `from..=to` for `sanctioned_w`, billed on `bill_date`,
    /// with nothing else (no demand, export, arrears, assessments or readings).
    pub fn metered(
        consumer_no: &str,
        from: NaiveDate,
        to: NaiveDate,
        bill_date: NaiveDate,
        sanctioned_w: u32,
        import_wh: i64,
    ) -> BillInput {
        BillInput {
            consumer_no: consumer_no.into(),
            from,
            to,
            bill_date,
            sanctioned_w,
            contract_demand: None,
            measured: Measured {
                import: MonthUse::units(import_wh),
                ..Measured::default()
            },
            provisional: false,
            assessments: Vec::new(),
            banked: 0,
            arrears: Paise::ZERO,
            late_payment: Vec::new(),
            readings: None,
            final_bill: false,
        }
    }
}

/// One line of a bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillLine {
    /// `energy`, `tod`, `fixed`, `demand`, `demand_penalty`, `power_factor`, `fppa`, `tamper`,
    /// `duty`, `levies`, `subsidy`, `minimum`, `late_payment`, `arrears`.
    pub code: String,
    pub description: String,
    pub amount: Paise,
}

/// A computed bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bill {
    pub consumer_no: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub bill_date: NaiveDate,
    pub due_date: NaiveDate,
    /// Paid by this day, the prompt rebate is taken.
    pub prompt_date: NaiveDate,
    /// Units billed (import less export and banked units, never below zero).
    pub billed_units: i64,
    /// Net metering: units carried forward to the next month.
    pub carried_forward: i64,
    pub lines: Vec<BillLine>,
    /// The month's charges (every line but arrears).
    pub current: Paise,
    /// The month's charges and the arrears.
    pub payable_by_due_date: Paise,
    /// With the late-payment surcharge on the month's charges.
    pub payable_after_due_date: Paise,
    /// Payable if paid within the prompt days (prompt rebate taken).
    pub payable_if_prompt: Paise,
    /// The rebate taken off when paid digitally.
    pub digital_rebate: Paise,
    pub provisional: bool,
    /// Previous and present readings of the meter, where they were read.
    #[serde(default)]
    pub readings: Option<PeriodReadings>,
    /// The last bill before the consumer went prepaid.
    #[serde(default)]
    pub final_bill: bool,
    /// The late-payment surcharge's rate, basis points of the month's own charges left unpaid
    /// after the due date.
    #[serde(default)]
    pub late_payment_bp: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("the period {from} to {to} is empty or runs backwards")]
    Period { from: NaiveDate, to: NaiveDate },
}

/// Units in thousands with three decimals: Wh as kWh, VA as kVA ("250.000").
pub fn units_text(units: i64) -> String {
    let sign = if units < 0 { "-" } else { "" };
    format!("{sign}{}.{:03}", (units / 1000).abs(), (units % 1000).abs())
}

/// Adds a line unless it is zero.
fn push(lines: &mut Vec<BillLine>, code: &str, description: String, amount: Paise) {
    if amount != Paise::ZERO {
        lines.push(BillLine {
            code: code.into(),
            description,
            amount,
        });
    }
}

/// `micro` micro-paise to paise, half away from zero.
fn round_micro(micro: i128) -> i64 {
    let q = (micro.abs() + 500_000) / 1_000_000;
    let q = i64::try_from(q).unwrap_or(i64::MAX);
    if micro < 0 { -q } else { q }
}

/// `amount` × `bp` / 10 000, rounded half away from zero.
fn share(amount: Paise, bp: i64) -> Paise {
    Paise(round_micro(i128::from(amount.0) * i128::from(bp) * 100))
}

/// Units (Wh) at a rate per kWh (milli-paise), in paise.
fn priced(units: i64, rate: Rate) -> Paise {
    Paise(round_micro(i128::from(units) * i128::from(rate.0)))
}

/// The bill for `input` under `t`.
pub fn compute(t: &PostpaidTariff, input: &BillInput) -> Result<Bill, BillError> {
    let days = (input.to - input.from).num_days() + 1;
    if days <= 0 {
        return Err(BillError::Period {
            from: input.from,
            to: input.to,
        });
    }
    let days = u32::try_from(days).unwrap_or(u32::MAX);
    let m = &input.measured;

    // Net metering: export and banked units offset import; the rest is carried forward.
    let offset = m.export.max(0).saturating_add(input.banked.max(0));
    let import = m.import.units.max(0);
    let billed_units = (import - offset).max(0);
    let carried_forward = (offset - import).max(0);
    let billed = scale_zones(&m.import, billed_units);

    // The tariff's month: a whole month is priced as one; a shorter or longer period by its days.
    let month_days = days_in_month(input.to).max(days);
    let charge = t
        .base
        .month_to_date(&billed, days, month_days, input.sanctioned_w);

    let mut lines: Vec<BillLine> = Vec::new();
    let unit = match t.base.unit {
        tariff::BillingUnit::Kwh => "kWh",
        tariff::BillingUnit::Kvah => "kVAh",
    };
    push(
        &mut lines,
        "energy",
        format!("Energy charge, {} {unit} (slabs)", units_text(billed_units)),
        charge.energy,
    );
    push(
        &mut lines,
        "tod",
        "Time-of-day rebate/surcharge".into(),
        charge.tod,
    );
    push(
        &mut lines,
        "fixed",
        format!(
            "Fixed charge, {} kW for {days} days",
            units_text(i64::from(input.sanctioned_w))
        ),
        charge.fixed,
    );

    if let (Some(d), Some(contract)) = (&t.demand, input.contract_demand) {
        let contract = i64::from(contract);
        let floor = contract * i64::from(d.min_share_bp) / 10_000;
        let billable = m.max_demand.max(floor);
        push(
            &mut lines,
            "demand",
            format!(
                "Demand charge, {} kVA billable (recorded {}, contract {})",
                units_text(billable),
                units_text(m.max_demand),
                units_text(contract)
            ),
            priced(billable, d.per_kva_month),
        );
        let excess = (m.max_demand - contract).max(0);
        push(
            &mut lines,
            "demand_penalty",
            format!(
                "Penalty for {} kVA over the contract demand",
                units_text(excess)
            ),
            share(
                priced(excess, d.per_kva_month),
                i64::from(d.excess_penalty_bp),
            ),
        );
    }

    if let (Some(rule), Some(pf)) = (&t.power_factor, m.power_factor) {
        let step = i64::from(rule.bp_per_hundredth);
        let (bp, what) = if pf < rule.penalty_below {
            // Each 0.01 or part of it below the threshold.
            let hundredths = (i64::from(rule.penalty_below - pf) + 9) / 10;
            (
                hundredths * step,
                format!("Power factor {}.{:03}: penalty", pf / 1000, pf % 1000),
            )
        } else if pf > rule.incentive_above {
            let hundredths = i64::from(pf - rule.incentive_above) / 10;
            let bp = (hundredths * step).min(i64::from(rule.incentive_cap_bp));
            (
                -bp,
                format!("Power factor {}.{:03}: incentive", pf / 1000, pf % 1000),
            )
        } else {
            (0, String::new())
        };
        push(&mut lines, "power_factor", what, share(charge.energy, bp));
    }

    push(
        &mut lines,
        "fppa",
        format!(
            "Fuel and power purchase adjustment, {} {unit}",
            units_text(billed_units)
        ),
        priced(billed_units, t.fppa_per_unit),
    );

    let top_rate = t.base.slabs.last().map_or(Rate(0), |s| s.rate);
    for a in &input.assessments {
        let rate = Rate(
            i64::try_from(i128::from(top_rate.0) * i128::from(t.tamper_rate_bp) / 10_000)
                .unwrap_or(i64::MAX),
        );
        push(
            &mut lines,
            "tamper",
            format!(
                "Assessed energy, {} {unit}: {}",
                units_text(a.units),
                a.reason
            ),
            priced(a.units, rate),
        );
    }

    push(&mut lines, "duty", "Electricity duty".into(), charge.duty);
    push(
        &mut lines,
        "levies",
        "Cess and levies".into(),
        charge.levies,
    );
    push(&mut lines, "subsidy", "Subsidy".into(), charge.subsidy);

    let so_far: i64 = lines.iter().map(|l| l.amount.0).sum();
    let minimum = priced(i64::from(input.sanctioned_w), t.minimum_per_kw_month);
    push(
        &mut lines,
        "minimum",
        format!("Minimum charge top-up (minimum {minimum})"),
        Paise((minimum.0 - so_far).max(0)),
    );

    // The month's own charges, on which this bill's late-payment surcharge and rebates run.
    let charges = Paise(lines.iter().map(|l| l.amount.0).sum());
    for l in &input.late_payment {
        push(
            &mut lines,
            "late_payment",
            format!(
                "Late-payment surcharge: {} of the bill from {} unpaid on its due date {}",
                l.unpaid,
                l.due,
                l.due_date.format("%d %b %Y")
            ),
            l.surcharge,
        );
    }
    let current = Paise(lines.iter().map(|l| l.amount.0).sum());
    let arrears = if input.arrears.is_negative() {
        format!("Paid in advance as on {}", input.to.format("%d %b %Y"))
    } else {
        format!("Arrears as on {}", input.to.format("%d %b %Y"))
    };
    push(&mut lines, "arrears", arrears, input.arrears);
    let payable = Paise(current.0 + input.arrears.0);
    // Charged on what is owed after the due date: at most the month's charges (an advance
    // paid them in part or whole).
    let late = share(
        Paise(charges.0.min(payable.0).max(0)),
        i64::from(t.late_payment_bp),
    );
    let prompt = share(Paise(charge.energy.0.max(0)), i64::from(t.prompt_rebate_bp));
    let digital =
        share(Paise(charges.0.max(0)), i64::from(t.digital_rebate_bp)).min(t.digital_rebate_cap);
    Ok(Bill {
        consumer_no: input.consumer_no.clone(),
        from: input.from,
        to: input.to,
        bill_date: input.bill_date,
        due_date: input.bill_date + chrono::Duration::days(i64::from(t.due_days)),
        prompt_date: input.bill_date + chrono::Duration::days(i64::from(t.prompt_days)),
        billed_units,
        carried_forward,
        lines,
        current,
        payable_by_due_date: payable,
        payable_after_due_date: Paise(payable.0 + late.0),
        payable_if_prompt: Paise(payable.0 - prompt.0),
        digital_rebate: digital,
        provisional: input.provisional,
        readings: input.readings.clone(),
        final_bill: input.final_bill,
        late_payment_bp: t.late_payment_bp,
    })
}

/// The zones of `import` scaled to `units` in total (net metering bills fewer units than were
/// imported); exact: the last zone with units takes the remainder.
fn scale_zones(import: &MonthUse, units: i64) -> MonthUse {
    let total: i64 = import.zones.iter().sum();
    if total <= 0 || units == import.units {
        return MonthUse {
            units,
            zones: if units == import.units {
                import.zones
            } else {
                [0; 8]
            },
        };
    }
    let target = i128::from(units) * i128::from(total) / i128::from(import.units.max(1));
    let mut zones = [0i64; 8];
    let mut given = 0i128;
    let last = import.zones.iter().rposition(|z| *z > 0).unwrap_or(0);
    for (i, z) in import.zones.iter().enumerate() {
        let part = if i == last {
            target - given
        } else {
            i128::from(*z) * target / i128::from(total)
        };
        zones[i] = i64::try_from(part).unwrap_or(0);
        given += part;
    }
    MonthUse { units, zones }
}

//! A postpaid consumer's account (use cases 18.1–18.6): what each bill asked for, what each
//! payment paid, oldest dues first, and what is left. Pure: the store's bills and payments in,
//! the statement out, as on a day.
//!
//! A payment goes to the oldest dues first (the opening arrears, then bills by period); what
//! is left over is an advance, which pays the next bill as it comes. A bill settled in full by
//! its prompt date takes its prompt rebate, and by its due date through a digital channel its
//! digital rebate: the rebate is what the consumer need not pay. What a bill still owed at the
//! end of its due date is what the late-payment surcharge is charged on.

use chrono::NaiveDate;
use model::Paise;
use serde::Serialize;

/// Something the consumer owes: the opening arrears or a bill's charges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// `opening` or the bill's period start (`2026-10-01`).
    pub key: String,
    /// The day it was billed: payments before it leave an advance that pays it on this day.
    pub dated: NaiveDate,
    pub amount: Paise,
    /// Settled in full by this day, the prompt rebate is taken.
    pub prompt_by: Option<NaiveDate>,
    pub prompt_rebate: Paise,
    /// After this day the late-payment surcharge runs; settled digitally by it, the digital
    /// rebate is taken.
    pub due_date: Option<NaiveDate>,
    pub digital_rebate: Paise,
    /// The late-payment surcharge, basis points of what is still owed at the end of the due
    /// date, up to `surchargeable`.
    pub late_payment_bp: u32,
    /// What the surcharge may run on: the month's own charges (a surcharge brought from an
    /// earlier bill is not surcharged again).
    pub surchargeable: Paise,
}

/// Money received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    pub id: String,
    /// The IST day it was paid.
    pub on: NaiveDate,
    pub amount: Paise,
    /// Through the gateway, a bank transfer, a card or UPI: the digital rebate applies.
    pub digital: bool,
}

/// A due as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DueState {
    pub key: String,
    pub amount: Paise,
    pub paid: Paise,
    pub rebate: Paise,
    /// `amount − paid − rebate`, never negative.
    pub outstanding: Paise,
    /// What was still owed at the end of the due date, once that day has passed.
    pub unpaid_at_due_date: Option<Paise>,
}

/// Where a payment went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allocation {
    /// The due's key.
    pub due: String,
    pub amount: Paise,
    /// The rebate the payment earned by settling this due.
    pub rebate: Paise,
}

/// A payment as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentState {
    pub id: String,
    pub amount: Paise,
    pub allocations: Vec<Allocation>,
    /// Not yet allocated: an advance for bills to come.
    pub unallocated: Paise,
}

/// The account as on a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub as_on: NaiveDate,
    pub dues: Vec<DueState>,
    pub payments: Vec<PaymentState>,
    /// What the consumer owes in all; negative when they have paid in advance.
    pub outstanding: Paise,
}

/// The account on `as_on` (payments on that day counted): `dues` oldest first, `payments` in
/// the order received. Dues and payments after `as_on` are left out.
pub fn statement(dues: &[Due], payments: &[Paid], as_on: NaiveDate) -> Statement {
    let mut state: Vec<DueState> = Vec::new();
    let mut paid: Vec<PaymentState> = Vec::new();
    // Events in day order; on one day the bill comes before the payments.
    let mut events: Vec<(NaiveDate, u8, usize)> = dues
        .iter()
        .enumerate()
        .filter(|(_, d)| d.dated <= as_on)
        .map(|(i, d)| (d.dated, 0, i))
        .chain(
            payments
                .iter()
                .enumerate()
                .filter(|(_, p)| p.on <= as_on)
                .map(|(i, p)| (p.on, 1, i)),
        )
        .collect();
    events.sort();
    // Which due each state row is, and which payment each payment row.
    let mut due_of: Vec<usize> = Vec::new();
    let mut payment_of: Vec<usize> = Vec::new();
    // Advances: (payment row, how much is left), oldest first.
    let mut advances: Vec<(usize, Paise)> = Vec::new();
    for (day, kind, i) in events {
        close_due_dates(&mut state, &due_of, dues, day);
        if kind == 0 {
            let d = &dues[i];
            state.push(DueState {
                key: d.key.clone(),
                amount: d.amount,
                paid: Paise::ZERO,
                rebate: Paise::ZERO,
                outstanding: Paise(d.amount.0.max(0)),
                unpaid_at_due_date: None,
            });
            due_of.push(i);
            if d.amount.0 < 0 {
                // A credit (a bill below zero, a balance brought in) pays like money received.
                let (left, _) = pay_oldest_first(&mut state, &due_of, dues, -d.amount.0, day, None);
                if left.0 > 0 {
                    advances.push((usize::MAX, left));
                }
                continue;
            }
            let row = state.len() - 1;
            for (from, left) in advances.iter_mut() {
                if left.0 == 0 {
                    continue;
                }
                // A credit (not money paid) earns no rebate.
                let paid_by = (*from != usize::MAX).then(|| payments[payment_of[*from]].digital);
                let (used, rebate) = settle(&mut state[row], d, *left, day, paid_by);
                left.0 -= used.0;
                if *from != usize::MAX && (used.0 > 0 || rebate.0 > 0) {
                    let p = &mut paid[*from];
                    p.unallocated.0 -= used.0;
                    p.allocations.push(Allocation {
                        due: d.key.clone(),
                        amount: used,
                        rebate,
                    });
                }
            }
            advances.retain(|(_, left)| left.0 > 0);
        } else {
            let p = &payments[i];
            let (left, allocations) =
                pay_oldest_first(&mut state, &due_of, dues, p.amount.0, day, Some(p.digital));
            paid.push(PaymentState {
                id: p.id.clone(),
                amount: p.amount,
                allocations,
                unallocated: left,
            });
            payment_of.push(i);
            if left.0 > 0 {
                advances.push((paid.len() - 1, left));
            }
        }
    }
    close_due_dates(&mut state, &due_of, dues, as_on.succ_opt().unwrap_or(as_on));
    let owed = state
        .iter()
        .fold(0i64, |sum, d| sum.saturating_add(d.outstanding.0));
    let ahead = advances
        .iter()
        .fold(0i64, |sum, (_, left)| sum.saturating_add(left.0));
    Statement {
        as_on,
        dues: state,
        payments: paid,
        outstanding: Paise(owed.saturating_sub(ahead)),
    }
}

/// Pays `amount` into the dues as they stand, oldest first: (what is left, where it went).
/// `paid_by` is money received (digitally or not), which earns the rebates; `None` a credit,
/// which does not.
fn pay_oldest_first(
    state: &mut [DueState],
    due_of: &[usize],
    dues: &[Due],
    amount: i64,
    day: NaiveDate,
    paid_by: Option<bool>,
) -> (Paise, Vec<Allocation>) {
    let mut left = Paise(amount.max(0));
    let mut allocations = Vec::new();
    for (s, &i) in state.iter_mut().zip(due_of) {
        if left.0 == 0 {
            break;
        }
        let (used, rebate) = settle(s, &dues[i], left, day, paid_by);
        if used.0 > 0 || rebate.0 > 0 {
            left.0 -= used.0;
            allocations.push(Allocation {
                due: dues[i].key.clone(),
                amount: used,
                rebate,
            });
        }
    }
    (left, allocations)
}

/// A late-payment surcharge to bill: a due still owed, in part or whole, after its due date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LateCharge {
    /// The due's key (a bill's period start).
    pub due: String,
    pub due_date: NaiveDate,
    pub unpaid: Paise,
    pub surcharge: Paise,
}

/// The surcharges of the dues whose due date fell in `from..=to` and that were still owed at
/// its end: each due's rate on what was unpaid, up to its own charges (rounded half up), so
/// every due date is charged once, in the period it falls in. `s` must be a statement as on
/// `to` or later.
pub fn late_charges(
    dues: &[Due],
    s: &Statement,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<LateCharge> {
    let mut out = Vec::new();
    for state in &s.dues {
        let Some(due) = dues.iter().find(|d| d.key == state.key) else {
            continue;
        };
        let (Some(due_date), Some(unpaid)) = (due.due_date, state.unpaid_at_due_date) else {
            continue;
        };
        if due_date < from || due_date > to {
            continue;
        }
        // What was left unpaid is taken to be the surcharge brought in first: it is not
        // surcharged again.
        let brought = (due.amount.0 - due.surchargeable.0).max(0);
        let base = i128::from((unpaid.0 - brought).clamp(0, due.surchargeable.0.max(0)));
        let surcharge = (base * i128::from(due.late_payment_bp) + 5_000) / 10_000;
        let surcharge = i64::try_from(surcharge).unwrap_or(0);
        if surcharge > 0 {
            out.push(LateCharge {
                due: due.key.clone(),
                due_date,
                unpaid,
                surcharge: Paise(surcharge),
            });
        }
    }
    out
}

/// Before anything on `day`: every due whose due date is over keeps what it still owed.
fn close_due_dates(state: &mut [DueState], due_of: &[usize], dues: &[Due], day: NaiveDate) {
    for (s, &i) in state.iter_mut().zip(due_of) {
        if s.unpaid_at_due_date.is_none() && dues[i].due_date.is_some_and(|due| due < day) {
            s.unpaid_at_due_date = Some(s.outstanding);
        }
    }
}

/// Pays up to `available` of `state` on `day`: (what was used, the rebate earned by settling).
fn settle(
    state: &mut DueState,
    due: &Due,
    available: Paise,
    day: NaiveDate,
    paid_by: Option<bool>,
) -> (Paise, Paise) {
    let owed = state.outstanding.0;
    if owed <= 0 || available.0 <= 0 {
        return (Paise::ZERO, Paise::ZERO);
    }
    let mut rebate = 0;
    if let Some(digital) = paid_by {
        if due.prompt_by.is_some_and(|by| day <= by) {
            rebate += due.prompt_rebate.0.max(0);
        }
        if digital && due.due_date.is_some_and(|by| day <= by) {
            rebate += due.digital_rebate.0.max(0);
        }
    }
    let rebate = rebate.min(owed);
    let (used, rebate) = if available.0 >= owed - rebate {
        (owed - rebate, rebate)
    } else {
        (available.0, 0)
    };
    state.paid.0 += used;
    state.rebate.0 += rebate;
    state.outstanding.0 -= used + rebate;
    (Paise(used), Paise(rebate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    fn bill(key: &str, dated: NaiveDate, amount: i64) -> Due {
        Due {
            key: key.into(),
            dated,
            amount: Paise(amount),
            prompt_by: Some(dated + chrono::Duration::days(7)),
            prompt_rebate: Paise(1_000),
            due_date: Some(dated + chrono::Duration::days(15)),
            digital_rebate: Paise(500),
            late_payment_bp: 200,
            surchargeable: Paise(amount),
        }
    }

    fn pay(id: &str, on: NaiveDate, amount: i64, digital: bool) -> Paid {
        Paid {
            id: id.into(),
            on,
            amount: Paise(amount),
            digital,
        }
    }

    #[test]
    fn a_part_payment_goes_to_the_oldest_due_first() {
        let dues = [
            Due {
                key: "opening".into(),
                dated: d(9, 1),
                amount: Paise(30_000),
                prompt_by: None,
                prompt_rebate: Paise::ZERO,
                due_date: None,
                digital_rebate: Paise::ZERO,
                late_payment_bp: 0,
                surchargeable: Paise::ZERO,
            },
            bill("2026-09-01", d(10, 1), 100_000),
        ];
        // ₹500 at the counter after the prompt date: ₹300 clears the opening arrears, ₹200
        // goes to September's bill, no rebate.
        let s = statement(&dues, &[pay("r1", d(10, 10), 50_000, false)], d(10, 31));
        assert_eq!(
            s.payments[0].allocations,
            vec![
                Allocation {
                    due: "opening".into(),
                    amount: Paise(30_000),
                    rebate: Paise::ZERO
                },
                Allocation {
                    due: "2026-09-01".into(),
                    amount: Paise(20_000),
                    rebate: Paise::ZERO
                },
            ]
        );
        assert_eq!(s.dues[1].outstanding, Paise(80_000));
        // Due date Oct 16: ₹800 still owed then, so 80 % of the ₹20 surcharge is charged, in
        // the period the due date falls in and no other.
        assert_eq!(s.dues[1].unpaid_at_due_date, Some(Paise(80_000)));
        assert_eq!(s.outstanding, Paise(80_000));
        let late = late_charges(&dues, &s, d(10, 1), d(10, 31));
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].surcharge, Paise(1_600));
        assert!(late_charges(&dues, &s, d(11, 1), d(11, 30)).is_empty());
    }

    #[test]
    fn settling_early_and_online_takes_both_rebates() {
        let dues = [bill("2026-09-01", d(10, 1), 100_000)];
        // By the prompt date through the gateway: ₹1000 − ₹10 prompt − ₹5 digital = ₹985.
        let s = statement(&dues, &[pay("pg1", d(10, 5), 98_500, true)], d(10, 31));
        assert_eq!(s.dues[0].rebate, Paise(1_500));
        assert_eq!(s.dues[0].outstanding, Paise::ZERO);
        assert_eq!(s.dues[0].unpaid_at_due_date, Some(Paise::ZERO));
        assert_eq!(s.outstanding, Paise::ZERO);
        // The same in cash after the prompt date earns nothing: ₹15 stays owed.
        let s = statement(&dues, &[pay("c1", d(10, 12), 98_500, false)], d(10, 31));
        assert_eq!(s.dues[0].rebate, Paise::ZERO);
        assert_eq!(s.outstanding, Paise(1_500));
    }

    #[test]
    fn an_overpayment_is_an_advance_that_pays_the_next_bill() {
        let dues = [
            bill("2026-09-01", d(10, 1), 100_000),
            bill("2026-10-01", d(11, 1), 40_000),
        ];
        let s = statement(&dues, &[pay("c1", d(10, 20), 150_000, false)], d(10, 31));
        assert_eq!(s.outstanding, Paise(-50_000));
        assert_eq!(s.payments[0].unallocated, Paise(50_000));
        // November's bill arrives and is settled from the advance on its own day, in time
        // for the prompt rebate (cash: no digital rebate): ₹400 − ₹10.
        let s = statement(&dues, &[pay("c1", d(10, 20), 150_000, false)], d(11, 30));
        assert_eq!(s.dues[1].paid, Paise(39_000));
        assert_eq!(s.dues[1].rebate, Paise(1_000));
        assert_eq!(s.payments[0].unallocated, Paise(11_000));
        assert_eq!(s.outstanding, Paise(-11_000));
    }

    #[test]
    fn a_credit_balance_brought_in_pays_the_first_bill() {
        let dues = [
            Due {
                key: "opening".into(),
                dated: d(9, 1),
                amount: Paise(-20_000),
                prompt_by: None,
                prompt_rebate: Paise::ZERO,
                due_date: None,
                digital_rebate: Paise::ZERO,
                late_payment_bp: 0,
                surchargeable: Paise::ZERO,
            },
            bill("2026-09-01", d(10, 1), 50_000),
        ];
        let s = statement(&dues, &[], d(10, 31));
        assert_eq!(s.dues[1].paid, Paise(20_000));
        assert_eq!(s.outstanding, Paise(30_000));
    }

    #[test]
    fn what_comes_after_the_day_is_left_out() {
        let dues = [bill("2026-09-01", d(10, 1), 100_000)];
        let s = statement(&dues, &[pay("c1", d(11, 2), 100_000, false)], d(10, 31));
        assert!(s.payments.is_empty());
        assert_eq!(s.outstanding, Paise(100_000));
    }
}

//! Payments against a postpaid account, as properties: no payment is allocated more than was
//! paid, no due is paid more than it asked, and the oldest dues are paid first.

use billing::account::{Due, Paid, statement};
use chrono::{Duration, NaiveDate};
use model::Paise;
use proptest::prelude::*;

fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Duration::days(n)
}

fn dues() -> impl Strategy<Value = Vec<Due>> {
    prop::collection::vec(
        (-20_000i64..300_000, 0i64..5_000, 0i64..2_000, any::<bool>()),
        0..8,
    )
    .prop_map(|bills| {
        bills
            .into_iter()
            .enumerate()
            .map(|(i, (amount, prompt, digital, opening))| {
                let dated = day(30 * i as i64);
                Due {
                    key: format!("due-{i}"),
                    dated,
                    amount: Paise(amount),
                    prompt_by: (!opening).then(|| dated + Duration::days(7)),
                    prompt_rebate: Paise(prompt),
                    due_date: (!opening).then(|| dated + Duration::days(15)),
                    digital_rebate: Paise(digital),
                    late_payment_bp: 150,
                    surchargeable: Paise(amount.max(0)),
                }
            })
            .collect()
    })
}

fn payments() -> impl Strategy<Value = Vec<Paid>> {
    prop::collection::vec((0i64..260, 0i64..400_000, any::<bool>()), 0..10).prop_map(|ps| {
        let mut ps: Vec<Paid> = ps
            .into_iter()
            .enumerate()
            .map(|(i, (on, amount, digital))| Paid {
                id: format!("p{i}"),
                on: day(on),
                amount: Paise(amount),
                digital,
            })
            .collect();
        ps.sort_by_key(|p| p.on);
        ps
    })
}

proptest! {
    #[test]
    fn payments_never_allocate_more_than_was_paid(
        dues in dues(),
        payments in payments(),
        as_on in 0i64..300,
    ) {
        let s = statement(&dues, &payments, day(as_on));
        for p in &s.payments {
            let allocated: i64 = p.allocations.iter().map(|a| a.amount.0).sum();
            prop_assert!(p.allocations.iter().all(|a| a.amount.0 >= 0 && a.rebate.0 >= 0));
            prop_assert!(p.unallocated.0 >= 0);
            prop_assert_eq!(allocated + p.unallocated.0, p.amount.0, "{:?}", p);
        }
        for d in &s.dues {
            prop_assert!(d.outstanding.0 >= 0);
            prop_assert!(d.paid.0 + d.rebate.0 <= d.amount.0.max(0), "{:?}", d);
            prop_assert_eq!(d.amount.0.max(0) - d.paid.0 - d.rebate.0, d.outstanding.0);
            if let Some(unpaid) = d.unpaid_at_due_date {
                prop_assert!(unpaid.0 >= d.outstanding.0);
            }
        }
        // Every paisa of every payment is either on a due or still an advance.
        let paid_in: i64 = payments.iter().filter(|p| p.on <= day(as_on)).map(|p| p.amount.0).sum();
        let on_dues: i64 = s.payments.iter().flat_map(|p| &p.allocations).map(|a| a.amount.0).sum();
        let ahead: i64 = s.payments.iter().map(|p| p.unallocated.0).sum();
        prop_assert_eq!(paid_in, on_dues + ahead);
    }

    #[test]
    fn the_oldest_dues_are_paid_first(dues in dues(), payments in payments()) {
        let s = statement(&dues, &payments, day(400));
        for (i, older) in s.dues.iter().enumerate() {
            if older.outstanding.0 > 0 {
                for newer in &s.dues[i + 1..] {
                    prop_assert_eq!(newer.paid, Paise::ZERO, "{:?} before {:?}", older, newer);
                    prop_assert_eq!(newer.rebate, Paise::ZERO);
                }
            }
        }
        // Nothing is left as an advance while something is owed.
        let owed: i64 = s.dues.iter().map(|d| d.outstanding.0).sum();
        let ahead: i64 = s.payments.iter().map(|p| p.unallocated.0).sum();
        prop_assert!(owed == 0 || ahead == 0, "owed {owed} with {ahead} unallocated");
    }
}

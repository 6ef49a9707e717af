//! Money that must come out exactly: a carry-over to the wallet leaves the closed account at
//! nothing, a late-payment surcharge is charged once on what was really left unpaid (not on an
//! advance's share twice, not on an earlier surcharge), a final bill is not revised after its
//! balance went to the wallet, and amounts no one could pay are refused before they reach the
//! sums.

mod common;

use common::{day, ist};

use billing::account::{Due, Paid, late_charges, statement};
use billing::bill::compute;
use billing::cycle::{PostpaidBook, final_bill, run_cycle};
use chrono::NaiveDate;
use mdm::determinants::Metering;
use model::Paise;
use store::billing::Adjustment;
use store::tamper::{NewTamperPeriod, TamperSource};

fn d(m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, day).unwrap()
}

/// A bill of `amount` (of which `brought` is an earlier bill's surcharge) billed on `dated`:
/// prompt rebate `prompt` within 7 days, due in 15, 1.5 % late-payment surcharge.
fn bill_due(key: &str, dated: NaiveDate, amount: i64, brought: i64, prompt: i64) -> Due {
    Due {
        key: key.into(),
        dated,
        amount: Paise(amount),
        prompt_by: Some(dated + chrono::Duration::days(7)),
        prompt_rebate: Paise(prompt),
        due_date: Some(dated + chrono::Duration::days(15)),
        digital_rebate: Paise::ZERO,
        late_payment_bp: 150,
        surchargeable: Paise(amount - brought),
    }
}

fn cash(id: &str, on: NaiveDate, amount: i64) -> Paid {
    Paid {
        id: id.into(),
        on,
        amount: Paise(amount),
        digital: false,
    }
}

#[test]
fn a_carry_over_to_the_wallet_leaves_the_closed_account_at_nothing() {
    // The final bill is billed on the day of the move, inside its prompt window: the credit
    // that carries it to the wallet is not money paid and earns no rebate.
    let today = d(11, 20);
    let mut dues = vec![bill_due("2026-11-01", today, 100_000, 0, 1_000)];
    let owed = statement(&dues, &[], today).outstanding;
    assert_eq!(owed, Paise(100_000));
    dues.push(Due {
        key: "adjustment/migration/1".into(),
        dated: today,
        amount: Paise(-owed.0),
        prompt_by: None,
        prompt_rebate: Paise::ZERO,
        due_date: None,
        digital_rebate: Paise::ZERO,
        late_payment_bp: 0,
        surchargeable: Paise::ZERO,
    });
    let after = statement(&dues, &[], d(12, 31));
    assert_eq!(after.outstanding, Paise::ZERO, "{after:?}");
    assert_eq!(after.dues[0].rebate, Paise::ZERO);
}

#[test]
fn the_surcharge_of_a_bill_paid_in_part_by_an_advance_is_what_the_bill_said() {
    let t = common::tariff();
    let mut input = common::input(150);
    input.arrears = Paise(-60_000); // ₹600 paid ahead
    let bill = compute(&t, &input).unwrap();
    let said = bill.payable_after_due_date.0 - bill.payable_by_due_date.0;
    let payable = bill.payable_by_due_date.0;
    assert!(payable > 0 && payable < bill.current.0);
    let dues = vec![bill_due("2026-11-01", d(12, 1), bill.current.0, 0, 0)];
    let s = statement(&dues, &[cash("c/1", d(11, 20), 60_000)], d(12, 31));
    assert_eq!(s.dues[0].unpaid_at_due_date, Some(Paise(payable)));
    let charged = late_charges(&dues, &s, d(12, 1), d(12, 31));
    assert_eq!(charged[0].surcharge.0, said, "the bill said {said} paise");
}

#[test]
fn a_surcharge_left_unpaid_is_not_surcharged_again() {
    // ₹1,000 of the month's charges and ₹15 brought from the bill before; ₹1,000 paid.
    let dues = vec![bill_due("2026-11-01", d(12, 1), 101_500, 1_500, 0)];
    let s = statement(&dues, &[cash("c/1", d(12, 10), 100_000)], d(12, 31));
    assert!(late_charges(&dues, &s, d(12, 1), d(12, 31)).is_empty());
    // ₹500 paid instead: ₹515 left, ₹500 of it the month's own: 1.5 % of ₹500 = ₹7.50.
    let s = statement(&dues, &[cash("c/1", d(12, 10), 50_000)], d(12, 31));
    assert_eq!(
        late_charges(&dues, &s, d(12, 1), d(12, 31))[0].surcharge,
        Paise(750)
    );
}

#[test]
fn a_final_bill_is_not_revised_after_its_balance_went_to_the_wallet() {
    let (_dir, store, meter) = common::store();
    let mut t = common::tariff();
    t.base.effective_from = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    let book = PostpaidBook { versions: vec![t] };
    for n in 1..=31 {
        day(
            &store,
            &meter,
            NaiveDate::from_ymd_opt(2026, 10, n).unwrap(),
            100,
            false,
        );
    }
    for n in 1..=19 {
        day(&store, &meter, d(11, n), 100, false);
    }
    let m = Metering::default();
    run_cycle(&store, &book, 1, d(11, 2), &m).unwrap();
    // Going prepaid on Nov 20, as the prepaid engine does it: closed, the final bill, what is
    // owed carried to the wallet.
    let today = d(11, 20);
    store.billing_account_close("C-1", today).unwrap();
    final_bill(&store, &book, "C-1", &m).unwrap();
    let owed = billing::payments::account_statement(&store, "C-1", today)
        .unwrap()
        .unwrap()
        .outstanding;
    store
        .billing_adjustment_put(
            "C-1",
            &Adjustment {
                key: "migration/1".into(),
                on: today,
                amount: Paise(-owed.0),
                reason: "carried to the prepaid wallet".into(),
            },
            ist("2026-11-20T10:00:00"),
        )
        .unwrap();
    // An inspection confirms a magnet from Nov 10 to 17, after the move; the cycle runs on.
    store
        .tamper_period_record(
            &NewTamperPeriod {
                consumer_no: "C-1",
                meter: &meter,
                tamper_code: None,
                reason: "Magnet",
                from: ist("2026-11-10T00:00:00"),
                to: ist("2026-11-17T00:00:00"),
                confirmed_by: "field",
                source: TamperSource::Inspection,
            },
            ist("2026-11-25T12:00:00"),
        )
        .unwrap();
    let r = run_cycle(&store, &book, 1, d(12, 2), &m).unwrap();
    assert_eq!((r.consumers, r.new, r.revised), (0, 0, 0), "{r:?}");
    let left = billing::payments::account_statement(&store, "C-1", d(12, 31))
        .unwrap()
        .unwrap()
        .outstanding;
    assert_eq!(left, Paise::ZERO);
    assert!(
        billing::cycle::billing_reads_wanted(&store, 1, d(12, 2))
            .unwrap()
            .is_empty(),
        "a closed account's meter is not read for billing"
    );
}

#[test]
fn amounts_no_one_could_pay_are_refused_and_the_sums_never_overflow() {
    let text = "reference,consumer_no,amount,paid_at,mode\n\
                A,C-1,92233720368547758,2026-11-20 10:00,cash\n\
                B,C-1,1,2026-11-20 11:00,cash\n";
    let errors = billing::payments::read_file(text).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 2);
    // Whatever reaches it, the statement saturates rather than wraps or panics.
    let pays = [
        cash("a", d(11, 20), i64::MAX),
        cash("b", d(11, 20), i64::MAX),
    ];
    let s = statement(&[], &pays, d(11, 30));
    assert_eq!(s.outstanding, Paise(-i64::MAX));
}

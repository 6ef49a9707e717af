//! Payments to postpaid accounts (use cases 18.1–18.6): the account's statement from the store
//! (the bills in force and the payments applied, [`crate::account`]), a payment applied with
//! its receipt and the consumer told (18.6), and counter and bank files read whole before any
//! line is taken.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use mdm::calendar::ist_date;
use model::Paise;
use notify::Notice;
use serde::Serialize;
use store::billing::Receipt;
use store::prepaid_ops::Payment;
use store::{Store, StoreError};

use crate::account::{Due, LateCharge, Paid, PaymentState, Statement, late_charges, statement};
use crate::bill::Bill;

/// The most one payment may be: ₹1 crore. More is a typing error (or an attack on the sums),
/// refused before it is kept.
pub const MAX_PAYMENT: Paise = Paise(1_000_000_000);

/// The key of the opening arrears among a statement's dues.
pub const OPENING: &str = "opening";

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("{0} has no postpaid billing account")]
    NotPostpaid(String),
    #[error("a stored bill is unreadable: {0}")]
    Bill(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Notify(#[from] notify::NotifyError),
}

/// A postpaid account's dues and payments, as [`statement`] takes them.
struct Ledger {
    dues: Vec<Due>,
    payments: Vec<Paid>,
}

impl Ledger {
    fn statement(&self, as_on: NaiveDate) -> Statement {
        statement(&self.dues, &self.payments, as_on)
    }
}

/// The dues and payments of `consumer_no`'s postpaid account as stored, with `extra` (a
/// payment being applied) after them; `None` without a billing account.
fn ledger(
    store: &Store,
    consumer_no: &str,
    extra: Option<&Payment>,
) -> Result<Option<Ledger>, PaymentError> {
    let Some(account) = store.billing_account(consumer_no)? else {
        return Ok(None);
    };
    let mut dues = vec![Due {
        key: OPENING.into(),
        dated: NaiveDate::MIN,
        amount: account.opening_arrears,
        prompt_by: None,
        prompt_rebate: Paise::ZERO,
        due_date: None,
        digital_rebate: Paise::ZERO,
        late_payment_bp: 0,
        surchargeable: Paise::ZERO,
    }];
    for stored in store.bills_in_force(consumer_no)? {
        let bill: Bill = serde_json::from_str(&stored.body)
            .map_err(|e| PaymentError::Bill(format!("bill {}: {e}", stored.id)))?;
        dues.push(Due {
            key: stored.period_from.to_string(),
            // Billed on the cycle day after the period, whenever the run was.
            dated: stored.period_to.succ_opt().unwrap_or(stored.period_to),
            amount: bill.current,
            prompt_by: Some(bill.prompt_date),
            prompt_rebate: Paise(bill.payable_by_due_date.0 - bill.payable_if_prompt.0),
            due_date: Some(bill.due_date),
            digital_rebate: bill.digital_rebate,
            late_payment_bp: bill.late_payment_bp,
            // A surcharge brought from an earlier bill is not surcharged again.
            surchargeable: Paise(
                bill.current.0
                    - bill
                        .lines
                        .iter()
                        .filter(|l| l.code == "late_payment")
                        .map(|l| l.amount.0)
                        .sum::<i64>(),
            ),
        });
    }
    for a in store.billing_adjustments(consumer_no)? {
        dues.push(Due {
            key: format!("adjustment/{}", a.key),
            dated: a.on,
            amount: a.amount,
            prompt_by: None,
            prompt_rebate: Paise::ZERO,
            due_date: None,
            digital_rebate: Paise::ZERO,
            late_payment_bp: 0,
            surchargeable: Paise::ZERO,
        });
    }
    let paid = |p: &Payment| Paid {
        id: format!("{}/{}", p.gateway, p.payment_id),
        on: ist_date(p.paid_at),
        amount: p.amount,
        digital: p.digital,
    };
    let mut payments: Vec<Paid> = store
        .payments_applied(consumer_no)?
        .iter()
        .map(paid)
        .collect();
    payments.extend(extra.map(paid));
    Ok(Some(Ledger { dues, payments }))
}

/// `consumer_no`'s postpaid account as on `as_on`; `None` without a billing account.
pub fn account_statement(
    store: &Store,
    consumer_no: &str,
    as_on: NaiveDate,
) -> Result<Option<Statement>, PaymentError> {
    Ok(ledger(store, consumer_no, None)?.map(|l| l.statement(as_on)))
}

/// What the bill for `from..=to` brings from the account: what was owed at the end of the
/// period (negative: paid in advance) and the late-payment surcharges of due dates in it.
/// `None` without a billing account.
pub fn brought_forward(
    store: &Store,
    consumer_no: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Option<(Paise, Vec<LateCharge>)>, PaymentError> {
    Ok(ledger(store, consumer_no, None)?.map(|l| {
        let s = l.statement(to);
        let late = late_charges(&l.dues, &s, from, to);
        (s.outstanding, late)
    }))
}

/// What applying a payment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub receipt: Receipt,
    /// Owed after it (negative: in advance).
    pub outstanding: Paise,
}

/// What a postpaid receipt says the payment paid.
#[derive(Debug, Serialize)]
struct ReceiptAllocation<'a> {
    scheme: &'static str,
    #[serde(flatten)]
    payment: &'a PaymentState,
}

/// Applies a kept payment to its consumer's postpaid account: the receipt (what it paid,
/// oldest dues first, and what is left owing), then the payment marked `applied`, then the
/// consumer told. Each step is idempotent: a payment left half-applied by a crash is finished
/// by its replay with the same receipt.
pub fn apply(store: &Store, kept: &Payment, now: DateTime<Utc>) -> Result<Applied, PaymentError> {
    let Some(ledger) = ledger(store, &kept.consumer_no, Some(kept))? else {
        return Err(PaymentError::NotPostpaid(kept.consumer_no.clone()));
    };
    // Everything known now, whatever day the payment says it was made.
    let as_on = ist_date(now).max(ist_date(kept.paid_at));
    let s = ledger.statement(as_on);
    let id = format!("{}/{}", kept.gateway, kept.payment_id);
    let this =
        s.payments.iter().find(|p| p.id == id).ok_or_else(|| {
            StoreError::Corrupt(format!("payment {id} left out of its statement"))
        })?;
    let allocation = serde_json::to_string(&ReceiptAllocation {
        scheme: "postpaid",
        payment: this,
    })
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let receipt = store.receipt_issue(
        &kept.gateway,
        &kept.payment_id,
        &allocation,
        s.outstanding,
        now,
    )?;
    store.payment_settle(&kept.gateway, &kept.payment_id, "applied", None, None, now)?;
    notify::enqueue(
        store,
        &kept.consumer_no,
        &format!("receipt/{}", receipt.receipt_no),
        &Notice::PaymentReceived {
            receipt_no: receipt.receipt_no.clone(),
            amount: kept.amount,
            outstanding: receipt.standing,
            at: kept.paid_at,
        },
        now,
    )?;
    Ok(Applied {
        outstanding: receipt.standing,
        receipt,
    })
}

/// Where a file of payments came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Collected at the utility's cash counters (cash, cheque, demand draft, card, UPI).
    Counter,
    /// The bank's collection file (NEFT, RTGS, IMPS, net banking, cheque).
    Bank,
}

impl Source {
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "counter" => Some(Source::Counter),
            "bank" => Some(Source::Bank),
            _ => None,
        }
    }

    /// The name payments from it are kept under (the `gateway` of the payment).
    pub fn name(self) -> &'static str {
        match self {
            Source::Counter => "counter",
            Source::Bank => "bank",
        }
    }
}

/// One payment read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePayment {
    /// The line it is on (1: the header).
    pub line: u64,
    /// The counter's or the bank's reference: a payment is taken once per source and reference.
    pub reference: String,
    pub consumer_no: String,
    pub amount: Paise,
    pub paid_at: DateTime<Utc>,
    /// How it was paid, as written (`cash`, `upi`, `neft`...).
    pub mode: String,
    pub digital: bool,
    /// The line as read, kept with the payment.
    pub record: String,
}

/// A line that cannot be taken, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub error: String,
}

/// The columns a payment file has (in any order, named in its header line).
pub const FILE_COLUMNS: [&str; 5] = ["reference", "consumer_no", "amount", "paid_at", "mode"];

/// Payment modes, and whether they are digital.
const MODES: [(&str, bool); 10] = [
    ("cash", false),
    ("cheque", false),
    ("dd", false),
    ("card", true),
    ("upi", true),
    ("neft", true),
    ("rtgs", true),
    ("imps", true),
    ("netbanking", true),
    ("wallet", true),
];

/// Reads a counter or bank file: a header naming [`FILE_COLUMNS`], then one payment per line,
/// amounts in rupees (`1250.50`), times in IST (`2026-11-20 14:05`, `2026-11-20T14:05:00`) or
/// with an offset (RFC 3339). The whole file or nothing: every line that cannot be taken is
/// reported (a half-written upload shows as a short last line), and a reference twice in the
/// file is refused.
pub fn read_file(text: &str) -> Result<Vec<FilePayment>, Vec<LineError>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header_error = |error: String| vec![LineError { line: 1, error }];
    let headers = reader
        .headers()
        .map_err(|e| header_error(e.to_string()))?
        .clone();
    let mut at = [0usize; 5];
    for (slot, name) in at.iter_mut().zip(FILE_COLUMNS) {
        *slot = headers.iter().position(|h| h == name).ok_or_else(|| {
            header_error(format!(
                "the header has no {name:?} column (it needs {})",
                FILE_COLUMNS.join(", ")
            ))
        })?;
    }
    let mut errors = Vec::new();
    let mut out: Vec<FilePayment> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(LineError {
                    line,
                    error: e.to_string(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        match file_payment(&record, &at, headers.len()) {
            Ok(p) => {
                if let Some(first) = seen.insert(p.reference.clone(), line) {
                    errors.push(LineError {
                        line,
                        error: format!("reference {:?} is on line {first} too", p.reference),
                    });
                } else {
                    out.push(p);
                }
            }
            Err(error) => errors.push(LineError { line, error }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn file_payment(
    record: &csv::StringRecord,
    at: &[usize; 5],
    width: usize,
) -> Result<FilePayment, String> {
    let line = record.position().map_or(0, |p| p.line());
    if record.len() != width {
        return Err(format!(
            "{} fields where the header has {width}: a cut or half-written line?",
            record.len()
        ));
    }
    let field = |i: usize| record.get(at[i]).unwrap_or("");
    let reference = field(0);
    if reference.is_empty() {
        return Err("no reference".into());
    }
    let consumer_no = field(1);
    if consumer_no.is_empty() {
        return Err("no consumer number".into());
    }
    let amount = Paise::parse_rupees(field(2))?;
    if amount == Paise::ZERO {
        return Err("an amount of nothing".into());
    }
    if amount > MAX_PAYMENT {
        return Err(format!(
            "{amount} is more than one payment may be ({MAX_PAYMENT})"
        ));
    }
    let paid_at = ist_time(field(3))?;
    let mode = field(4).to_ascii_lowercase();
    let digital = MODES
        .iter()
        .find(|(m, _)| *m == mode)
        .map(|(_, d)| *d)
        .ok_or_else(|| {
            format!(
                "payment mode {mode:?}: one of {}",
                MODES.map(|(m, _)| m).join(", ")
            )
        })?;
    Ok(FilePayment {
        line,
        reference: reference.to_string(),
        consumer_no: consumer_no.to_string(),
        amount,
        paid_at,
        mode,
        digital,
        record: record.iter().collect::<Vec<_>>().join(","),
    })
}

/// A time as a counter or bank writes it: IST without an offset, or RFC 3339.
fn ist_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| format!("{s:?} is not a time (e.g. 2026-11-20 14:05, IST)"))?;
    Ok(Utc.from_utc_datetime(&(local - chrono::Duration::seconds(mdm::calendar::IST_OFFSET_S))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "reference,consumer_no,amount,paid_at,mode\n";

    #[test]
    fn a_counter_file_is_read_whole() {
        let text = format!(
            "{HEADER}CTR-1,C-1,1250.50,2026-11-20 14:05,cash\nCTR-2,C-2,300,2026-11-20T15:00:00+05:30,UPI\n"
        );
        let got = read_file(&text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].amount, Paise(125_050));
        assert_eq!(got[0].paid_at.to_rfc3339(), "2026-11-20T08:35:00+00:00");
        assert!(!got[0].digital);
        assert!(got[1].digital);
        assert_eq!(got[1].line, 3);
    }

    #[test]
    fn columns_may_come_in_any_order() {
        let text =
            "mode,amount,reference,paid_at,consumer_no\nneft,99.5,B-7,2026-11-21 10:00,C-9\n";
        let got = read_file(text).unwrap();
        assert_eq!(got[0].consumer_no, "C-9");
        assert_eq!(got[0].amount, Paise(9_950));
    }

    #[test]
    fn every_bad_line_is_reported_and_nothing_taken() {
        let text = format!(
            "{HEADER}CTR-1,C-1,100,2026-11-20 14:05,cash\n\
             CTR-2,C-2,-5,2026-11-20 14:05,cash\n\
             CTR-3,C-3,100,20/11/2026,cash\n\
             CTR-4,C-4,100,2026-11-20 14:05,barter\n\
             CTR-1,C-5,100,2026-11-20 14:05,cash\n\
             CTR-6,C-6,10"
        );
        let errors = read_file(&text).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7], "{errors:?}");
        assert!(errors[3].error.contains("line 2"), "{errors:?}");
        assert!(errors[4].error.contains("half-written"), "{errors:?}");
    }

    #[test]
    fn a_file_without_the_columns_is_refused_at_its_header() {
        let errors = read_file("ref,amount\nX,5\n").unwrap_err();
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].error.contains("reference"));
    }
}

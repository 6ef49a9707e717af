//! Telling consumers what happened to their supply, money and requests (use cases 3.2, 17.6,
//! 19 and 20, and the state orders' SMS on every recharge, low balance, disconnection and
//! reconnection).
//!
//! - [`Notice`]: what we tell, typed; [`render`] makes the SMS text (GSM-7, "Rs" for ₹, times in
//!   IST) and the email subject and body.
//! - [`enqueue`] writes one outbox row per channel the consumer has an address for
//!   (`store::notify`), once per key, in the caller's flow; nothing is sent there.
//! - [`dispatch`]: the dispatcher sends what is due through an SMS operator's HTTP API and an
//!   SMTP relay, retries with backoff and gives up after a few attempts, recording why.
//! - [`standin`]: local stand-ins that speak the same protocols (an SMTP server, an SMS
//!   operator's HTTP API) for tests and `urja up --simulate`.

pub mod dispatch;
pub mod standin;

use chrono::{DateTime, FixedOffset, Utc};
use model::{Paise, PaymentMode};
use store::Store;
use store::notify::{Channel, NewNotification};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Something to tell a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Use case 17.6: a recharge credited, with the new balance.
    RechargeConfirmed {
        payment_id: String,
        amount: Paise,
        balance: Paise,
        at: DateTime<Utc>,
    },
    /// Use case 18.6: a payment to a postpaid account received, with its receipt and what is
    /// still owed (negative: paid in advance).
    PaymentReceived {
        receipt_no: String,
        amount: Paise,
        outstanding: Paise,
        at: DateTime<Utc>,
    },
    /// The balance reached `percent` % of the last recharge.
    LowBalance {
        percent: u8,
        balance: Paise,
        at: DateTime<Utc>,
    },
    /// Use case 3.2: the supply will be cut from `from` unless the consumer recharges.
    DisconnectionNotice {
        balance: Paise,
        from: DateTime<Utc>,
    },
    Disconnected {
        balance: Paise,
        at: DateTime<Utc>,
    },
    Reconnected {
        balance: Paise,
        at: DateTime<Utc>,
    },
    EmergencyCredit {
        amount: Paise,
        until: DateTime<Utc>,
    },
    PaymentModeChanged {
        mode: PaymentMode,
        balance: Paise,
        at: DateTime<Utc>,
    },
    /// Use cases 19.3 and 20.3: a service request or complaint registered under `number`
    /// (its SRN or CRN), to be resolved by `due`.
    CaseRegistered {
        number: String,
        /// What it is about, e.g. "Name change", "No supply".
        subject: String,
        due: DateTime<Utc>,
    },
    /// Use cases 19.5 and 20.6: the case is closed, with what was done.
    CaseClosed {
        number: String,
        subject: String,
        resolution: String,
        at: DateTime<Utc>,
    },
    /// The case was not taken up, and why.
    CaseRejected {
        number: String,
        subject: String,
        reason: String,
        at: DateTime<Utc>,
    },
}

impl Notice {
    /// A short name, for the outbox and the SMS template.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::RechargeConfirmed { .. } => "recharge_confirmed",
            Notice::PaymentReceived { .. } => "payment_received",
            Notice::LowBalance { .. } => "low_balance",
            Notice::DisconnectionNotice { .. } => "disconnection_notice",
            Notice::Disconnected { .. } => "disconnected",
            Notice::Reconnected { .. } => "reconnected",
            Notice::EmergencyCredit { .. } => "emergency_credit",
            Notice::PaymentModeChanged { .. } => "payment_mode_changed",
            Notice::CaseRegistered { .. } => "case_registered",
            Notice::CaseClosed { .. } => "case_closed",
            Notice::CaseRejected { .. } => "case_rejected",
        }
    }
}

/// A notice as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// GSM-7 only, one SMS (160 characters) where possible.
    pub sms: String,
    pub subject: String,
    pub email: String,
}

fn ist(t: DateTime<Utc>) -> String {
    let offset = FixedOffset::east_opt(19_800).unwrap_or_else(|| unreachable!("+05:30 is valid"));
    t.with_timezone(&offset)
        .format("%d %b %Y %H:%M IST")
        .to_string()
}

/// The texts of `notice` for consumer `consumer_no`.
pub fn render(consumer_no: &str, notice: &Notice) -> Rendered {
    let (sms, subject, email) = match notice {
        Notice::RechargeConfirmed {
            payment_id,
            amount,
            balance,
            at,
        } => (
            format!(
                "Recharge of {} for {consumer_no} received on {}. Balance: {}. Ref {payment_id}.",
                amount.ascii(),
                ist(*at),
                balance.ascii()
            ),
            format!("Recharge of {amount} received"),
            format!(
                "Your recharge of {amount} for consumer number {consumer_no} was received on {} \
                 (payment reference {payment_id}).\n\nYour balance is now {balance}.",
                ist(*at)
            ),
        ),
        Notice::PaymentReceived {
            receipt_no,
            amount,
            outstanding,
            at,
        } => {
            let standing = if outstanding.is_negative() {
                format!("in advance {}", Paise(-outstanding.0).ascii())
            } else {
                format!("due {}", outstanding.ascii())
            };
            (
                format!(
                    "Payment of {} for {consumer_no} received on {}. Receipt {receipt_no}. Now \
                     {standing}.",
                    amount.ascii(),
                    ist(*at)
                ),
                format!("Payment of {amount} received, receipt {receipt_no}"),
                format!(
                    "Your payment of {amount} for consumer number {consumer_no} was received on \
                     {} (receipt {receipt_no}).\n\n{}",
                    ist(*at),
                    if outstanding.is_negative() {
                        format!(
                            "You have {} in advance; it is set against your next bill.",
                            Paise(-outstanding.0)
                        )
                    } else if *outstanding == Paise::ZERO {
                        "Nothing is owed on your account now.".to_string()
                    } else {
                        format!("{outstanding} is still owed on your account.")
                    }
                ),
            )
        }
        Notice::LowBalance {
            percent,
            balance,
            at,
        } => (
            format!(
                "Low balance: {} left for {consumer_no} on {} ({percent}% of last recharge). \
                 Recharge to avoid disconnection.",
                balance.ascii(),
                ist(*at)
            ),
            format!("Low balance: {balance} left"),
            format!(
                "The prepaid balance of consumer number {consumer_no} is {balance} as of {}, \
                 {percent}% of your last recharge.\n\nPlease recharge to keep your supply on.",
                ist(*at)
            ),
        ),
        Notice::DisconnectionNotice { balance, from } => (
            format!(
                "Balance {} for {consumer_no}. Supply will be disconnected from {} unless you \
                 recharge.",
                balance.ascii(),
                ist(*from)
            ),
            "Your supply will be disconnected unless you recharge".to_string(),
            format!(
                "The prepaid balance of consumer number {consumer_no} is {balance}.\n\nYour \
                 supply will be disconnected from {} unless you recharge before then. A \
                 recharge reconnects it within two hours.",
                ist(*from)
            ),
        ),
        Notice::Disconnected { balance, at } => (
            format!(
                "Supply of {consumer_no} disconnected on {} for balance {}. Recharge to \
                 reconnect.",
                ist(*at),
                balance.ascii()
            ),
            "Your supply has been disconnected".to_string(),
            format!(
                "The supply of consumer number {consumer_no} was disconnected on {} because the \
                 prepaid balance is {balance}.\n\nRecharge to have it reconnected within two \
                 hours.",
                ist(*at)
            ),
        ),
        Notice::Reconnected { balance, at } => (
            format!(
                "Supply of {consumer_no} reconnected on {}. Balance: {}.",
                ist(*at),
                balance.ascii()
            ),
            "Your supply has been reconnected".to_string(),
            format!(
                "The supply of consumer number {consumer_no} was reconnected on {}.\n\nYour \
                 balance is {balance}.",
                ist(*at)
            ),
        ),
        Notice::EmergencyCredit { amount, until } => (
            format!(
                "Emergency credit of {} given to {consumer_no} until {}. It is recovered from \
                 your next recharge.",
                amount.ascii(),
                ist(*until)
            ),
            format!("Emergency credit of {amount}"),
            format!(
                "Consumer number {consumer_no} has been given emergency credit of {amount}; \
                 the supply is protected until {}.\n\nIt is recovered from your next recharge.",
                ist(*until)
            ),
        ),
        Notice::PaymentModeChanged { mode, balance, at } => {
            let mode = match mode {
                PaymentMode::Prepaid => "prepaid",
                PaymentMode::Postpaid => "postpaid",
            };
            (
                format!(
                    "Connection {consumer_no} is {mode} from {}. Balance carried: {}.",
                    ist(*at),
                    balance.ascii()
                ),
                format!("Your connection is now {mode}"),
                format!(
                    "Consumer number {consumer_no} has been changed to {mode} on {}.\n\nBalance \
                     carried over: {balance}.",
                    ist(*at)
                ),
            )
        }
        Notice::CaseRegistered {
            number,
            subject,
            due,
        } => (
            format!(
                "{subject} for {consumer_no} registered as {number}. We will resolve it by {}.",
                ist(*due)
            ),
            format!("{subject}: registered as {number}"),
            format!(
                "Your {} for consumer number {consumer_no} has been registered as {number}.\n\n\
                 We will resolve it by {}. Please quote {number} when you contact us about it.",
                subject.to_lowercase(),
                ist(*due)
            ),
        ),
        Notice::CaseClosed {
            number,
            subject,
            resolution,
            at,
        } => (
            format!(
                "{number} ({subject}) for {consumer_no} closed on {}: {}",
                ist(*at),
                short(resolution, 60)
            ),
            format!("{subject}: {number} closed"),
            format!(
                "Your {} {number} for consumer number {consumer_no} was closed on {}.\n\n\
                 {resolution}",
                subject.to_lowercase(),
                ist(*at)
            ),
        ),
        Notice::CaseRejected {
            number,
            subject,
            reason,
            at,
        } => (
            format!(
                "{number} ({subject}) for {consumer_no} could not be taken up: {}",
                short(reason, 60)
            ),
            format!("{subject}: {number} not taken up"),
            format!(
                "Your {} {number} for consumer number {consumer_no} could not be taken up \
                 ({}).\n\nReason: {reason}",
                subject.to_lowercase(),
                ist(*at)
            ),
        ),
    };
    Rendered {
        sms,
        subject: format!("{subject} ({consumer_no})"),
        email: wrap(&format!(
            "Dear consumer,\n\n{email}\n\nThis message was sent automatically.\n"
        )),
    }
}

/// Free text (a note someone wrote) for an SMS: printable ASCII only (anything else becomes
/// `?`), cut to `max` characters with an ellipsis.
fn short(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if out.len() > max {
        out.truncate(max.saturating_sub(3));
        out.push_str("...");
    }
    out
}

/// Plain-text email lines: each paragraph's words wrapped at 72 characters.
fn wrap(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut width = 0;
        for (j, word) in line.split(' ').enumerate() {
            let w = word.chars().count();
            if j > 0 {
                if width + 1 + w > 72 {
                    out.push('\n');
                    width = 0;
                } else {
                    out.push(' ');
                    width += 1;
                }
            }
            out.push_str(word);
            width += w;
        }
    }
    out
}

/// What [`enqueue`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enqueued {
    pub sms: bool,
    pub email: bool,
}

/// Writes `notice` for `consumer_no` to the outbox, once per consumer, `key` and channel, for each
/// channel the consumer has an address for (none: nothing is written, and that is not an
/// error).
pub fn enqueue(
    store: &Store,
    consumer_no: &str,
    key: &str,
    notice: &Notice,
    now: DateTime<Utc>,
) -> Result<Enqueued, NotifyError> {
    let Some(contact) = store.contact(consumer_no)? else {
        return Ok(Enqueued::default());
    };
    let text = render(consumer_no, notice);
    let kind = notice.kind();
    let mut done = Enqueued::default();
    if let Some(mobile) = &contact.mobile {
        done.sms = store.notification_put(
            &NewNotification {
                key,
                channel: Channel::Sms,
                consumer_no,
                kind,
                recipient: mobile,
                subject: None,
                body: &text.sms,
            },
            now,
        )?;
    }
    if let Some(email) = &contact.email {
        done.email = store.notification_put(
            &NewNotification {
                key,
                channel: Channel::Email,
                consumer_no,
                kind,
                recipient: email,
                subject: Some(&text.subject),
                body: &text.email,
            },
            now,
        )?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn texts_are_exact_gsm_and_one_sms() {
        let r = render(
            "C-100",
            &Notice::RechargeConfirmed {
                payment_id: "pay_29QQ".into(),
                amount: Paise(50_000),
                balance: Paise(12_345_678),
                at: t("2026-12-04T04:30:00Z"),
            },
        );
        assert_eq!(
            r.sms,
            "Recharge of Rs 500.00 for C-100 received on 04 Dec 2026 10:00 IST. Balance: \
             Rs 1,23,456.78. Ref pay_29QQ."
        );
        assert_eq!(r.subject, "Recharge of ₹500.00 received (C-100)");
        assert!(r.email.contains("Your balance is now ₹1,23,456.78."));
        assert!(
            r.email.lines().all(|l| l.chars().count() <= 72),
            "{}",
            r.email
        );
        let cut = render(
            "C-100",
            &Notice::DisconnectionNotice {
                balance: Paise(-6_000),
                from: t("2026-12-04T03:30:00Z"),
            },
        );
        assert_eq!(
            cut.sms,
            "Balance -Rs 60.00 for C-100. Supply will be disconnected from 04 Dec 2026 09:00 IST \
             unless you recharge."
        );
        for notice in [
            Notice::LowBalance {
                percent: 10,
                balance: Paise(4_000),
                at: t("2026-12-04T00:30:00Z"),
            },
            Notice::Disconnected {
                balance: Paise(-6_000),
                at: t("2026-12-04T03:30:00Z"),
            },
            Notice::Reconnected {
                balance: Paise(44_000),
                at: t("2026-12-04T04:32:00Z"),
            },
            Notice::EmergencyCredit {
                amount: Paise(10_000),
                until: t("2026-12-07T04:32:00Z"),
            },
            Notice::PaymentModeChanged {
                mode: PaymentMode::Postpaid,
                balance: Paise(44_000),
                at: t("2026-12-04T05:30:00Z"),
            },
            Notice::CaseRegistered {
                number: "CR-2026-000001".into(),
                subject: "Meter burnt".into(),
                due: t("2026-12-05T04:30:00Z"),
            },
            Notice::CaseClosed {
                number: "SR-2026-000123".into(),
                subject: "Contact change".into(),
                resolution: "Mobile number changed as asked; मोबाइल नंबर बदला गया, and a long \
                             tail that does not fit"
                    .into(),
                at: t("2026-12-05T04:30:00Z"),
            },
            Notice::CaseRejected {
                number: "SR-2026-000124".into(),
                subject: "Load change".into(),
                reason: "The wiring certificate is missing; please attach it and ask again".into(),
                at: t("2026-12-05T04:30:00Z"),
            },
        ] {
            let r = render("C-100000001", &notice);
            assert!(r.sms.len() <= 160, "{} chars: {}", r.sms.len(), r.sms);
            assert!(r.sms.is_ascii(), "{}", r.sms);
            assert!(r.sms.contains("C-100000001"));
        }
    }

    #[test]
    fn enqueue_writes_each_channel_once_and_nothing_without_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("u.sqlite")).unwrap();
        let now = t("2026-12-04T04:30:00Z");
        let notice = Notice::Reconnected {
            balance: Paise(100),
            at: now,
        };
        assert_eq!(
            enqueue(&store, "C-1", "k1", &notice, now).unwrap(),
            Enqueued::default()
        );
        store
            .contact_put("C-1", Some("+919876543210"), None, now)
            .unwrap();
        assert_eq!(
            enqueue(&store, "C-1", "k1", &notice, now).unwrap(),
            Enqueued {
                sms: true,
                email: false
            }
        );
        store
            .contact_put("C-1", Some("+919876543210"), Some("asha@example.in"), now)
            .unwrap();
        // The SMS was written already; the email is new.
        assert_eq!(
            enqueue(&store, "C-1", "k1", &notice, now).unwrap(),
            Enqueued {
                sms: false,
                email: true
            }
        );
        // Another consumer's notice under the same key is their own.
        store
            .contact_put("C-2", Some("+919876543219"), None, now)
            .unwrap();
        assert!(enqueue(&store, "C-2", "k1", &notice, now).unwrap().sms);
        let rows = store.notifications(Some("C-1"), None, 0, 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].recipient, "+919876543210");
        assert_eq!(rows[1].recipient, "asha@example.in");
        assert!(
            rows.iter()
                .all(|r| r.state == "pending" && r.kind == "reconnected")
        );
    }
}

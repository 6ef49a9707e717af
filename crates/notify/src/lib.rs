//! Telling consumers what happened to their supply and money (use cases 3.2, 17.6, 18.6 and the
//! state orders' SMS on every recharge, low balance, disconnection and reconnection), and the
//! consumer portal's registration codes and logins (use case 15).
//!
//! - [`Notice`]: what we tell, typed; [`render`] makes the SMS text and the email subject and
//!   body in the consumer's language (English: GSM-7, "Rs" for ₹; Hindi: Unicode), times in IST.
//! - [`enqueue`] writes one outbox row per channel the consumer has an address for
//!   (`store::notify`), once per key, in the caller's flow; nothing is sent there.
//!   [`enqueue_on`] writes one channel's only (a registration code goes where it was asked
//!   for). A notice that carries a [`Secret`] is written `sensitive`.
//! - [`dispatch`]: the dispatcher sends what is due through an SMS operator's HTTP API and an
//!   SMTP relay, or keeps it in a directory when a channel has neither (`urja up` with no
//!   settings), retries with backoff, gives up after a few attempts, and records each attempt.
//! - [`standin`]: local stand-ins that speak the same protocols (an SMTP server, an SMS
//!   operator's HTTP API) for tests and `urja up --simulate`.
//! - [`sms`]: which alphabet a text needs and how many SMS it takes.

pub mod dispatch;
mod hindi;
mod render;
pub mod sms;
pub mod standin;

use chrono::{DateTime, Utc};
use model::{Paise, PaymentMode};
use store::Store;
use store::notify::{Channel, Contact, NewNotification};

pub use render::{Rendered, render};
pub use store::notify::Language;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// A one-time code or a password inside a notice: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the message text and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Something to tell a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Use case 15.2: the code that proves a registration request came from the consumer's
    /// registered mobile or email.
    RegistrationCode {
        code: Secret,
        valid_minutes: u32,
    },
    /// Use case 15.4: the portal's login id and the default password, to be changed at the
    /// first login.
    PortalCredentials {
        login_id: String,
        password: Secret,
    },
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
            Notice::RegistrationCode { .. } => "registration_code",
            Notice::PortalCredentials { .. } => "portal_credentials",
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

    /// Whether the text carries a [`Secret`].
    pub fn is_sensitive(&self) -> bool {
        matches!(
            self,
            Notice::RegistrationCode { .. } | Notice::PortalCredentials { .. }
        )
    }
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
    let text = render(consumer_no, notice, contact.language);
    Ok(Enqueued {
        sms: put(store, &contact, Channel::Sms, key, notice, &text, now)?,
        email: put(store, &contact, Channel::Email, key, notice, &text, now)?,
    })
}

/// Writes `notice` for `consumer_no` to the outbox on `channel` only, once per consumer, `key`
/// and channel; false if it was there or the consumer has no address for that channel.
pub fn enqueue_on(
    store: &Store,
    consumer_no: &str,
    channel: Channel,
    key: &str,
    notice: &Notice,
    now: DateTime<Utc>,
) -> Result<bool, NotifyError> {
    let Some(contact) = store.contact(consumer_no)? else {
        return Ok(false);
    };
    let text = render(consumer_no, notice, contact.language);
    put(store, &contact, channel, key, notice, &text, now)
}

fn put(
    store: &Store,
    contact: &Contact,
    channel: Channel,
    key: &str,
    notice: &Notice,
    text: &Rendered,
    now: DateTime<Utc>,
) -> Result<bool, NotifyError> {
    let (recipient, subject, body) = match channel {
        Channel::Sms => (&contact.mobile, None, &text.sms),
        Channel::Email => (&contact.email, Some(text.subject.as_str()), &text.email),
    };
    let Some(recipient) = recipient else {
        return Ok(false);
    };
    Ok(store.notification_put(
        &NewNotification {
            key,
            channel,
            consumer_no: &contact.consumer_no,
            kind: notice.kind(),
            recipient,
            subject,
            body,
            sensitive: notice.is_sensitive(),
        },
        now,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
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
                .all(|r| r.state == "pending" && r.kind == "reconnected" && !r.sensitive)
        );
    }

    #[test]
    fn a_registration_code_goes_on_its_channel_only_and_is_sensitive() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("u.sqlite")).unwrap();
        let now = t("2026-12-04T04:30:00Z");
        store
            .contact_put("C-1", Some("+919876543210"), Some("asha@example.in"), now)
            .unwrap();
        store
            .contact_set_language("C-1", Language::Hindi, now)
            .unwrap();
        let notice = Notice::RegistrationCode {
            code: Secret::new("482913"),
            valid_minutes: 10,
        };
        assert!(!format!("{notice:?}").contains("482913"));
        assert!(enqueue_on(&store, "C-1", Channel::Email, "reg/r1", &notice, now).unwrap());
        assert!(!enqueue_on(&store, "C-2", Channel::Email, "reg/r1", &notice, now).unwrap());
        let rows = store.notifications(None, None, 0, 10).unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!((row.channel, row.sensitive), (Channel::Email, true));
        assert!(
            row.body.contains("482913") && row.body.contains("प्रिय"),
            "{}",
            row.body
        );
        assert!(!format!("{row:?}").contains("482913"));
        // once delivered, the code is gone from the outbox; the attempt is in the log
        store.notification_sent(row.seq, "q1", now).unwrap();
        let row = store.notification(row.seq).unwrap().unwrap();
        assert_eq!(row.body, store::notify::WITHHELD);
        let log = store.notification_attempts(row.seq).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!((log[0].attempt, log[0].outcome.as_str()), (1, "sent"));
    }
}

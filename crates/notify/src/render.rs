//! A notice as text, in English or Hindi.

use chrono::{DateTime, FixedOffset, Utc};
use model::{Paise, PaymentMode};
use store::notify::Language;

use crate::{Notice, hindi};

/// A notice as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// English: GSM-7 only, one SMS (160 characters) where possible. Hindi: Unicode, at most
    /// two SMS (70 characters for one, 67 each when split).
    pub sms: String,
    pub subject: String,
    pub email: String,
}

/// One language's texts of a notice, before the email is framed and wrapped.
pub(crate) struct Texts {
    pub sms: String,
    pub subject: String,
    pub email: String,
    pub dear: &'static str,
    pub closing: &'static str,
}

/// `t` in IST as `strftime` `format` makes it.
pub(crate) fn ist(t: DateTime<Utc>, format: &str) -> String {
    let offset = FixedOffset::east_opt(19_800).unwrap_or_else(|| unreachable!("+05:30 is valid"));
    t.with_timezone(&offset).format(format).to_string()
}

fn ist_en(t: DateTime<Utc>) -> String {
    ist(t, "%d %b %Y %H:%M IST")
}

/// The texts of `notice` for consumer `consumer_no` in `language`.
pub fn render(consumer_no: &str, notice: &Notice, language: Language) -> Rendered {
    let t = match language {
        Language::English => english(consumer_no, notice),
        Language::Hindi => hindi::texts(consumer_no, notice),
    };
    Rendered {
        sms: t.sms,
        subject: format!("{} ({consumer_no})", t.subject),
        email: wrap(&format!("{}\n\n{}\n\n{}\n", t.dear, t.email, t.closing)),
    }
}

/// The English texts: the SMS in GSM-7 ("Rs" for ₹), one SMS where possible.
fn english(consumer_no: &str, notice: &Notice) -> Texts {
    let (sms, subject, email) = match notice {
        Notice::RegistrationCode {
            code,
            valid_minutes,
        } => (
            format!(
                "{} is your code to register {consumer_no} on the consumer portal. Valid for \
                 {valid_minutes} minutes. Do not share it with anyone.",
                code.expose()
            ),
            "Your code to register on the consumer portal".to_string(),
            format!(
                "Your code to register consumer number {consumer_no} on the consumer portal is \
                 {}. It is valid for {valid_minutes} minutes.\n\nIf you did not ask for it, \
                 ignore this message. Never share the code with anyone, utility staff \
                 included.",
                code.expose()
            ),
        ),
        Notice::PortalCredentials { login_id, password } => (
            format!(
                "Consumer portal login for {consumer_no}: login id {login_id}, password {}. \
                 You will choose a new password at your first login.",
                password.expose()
            ),
            "Your consumer portal login".to_string(),
            format!(
                "Consumer number {consumer_no} is registered on the consumer portal.\n\nLogin \
                 id: {login_id}\nPassword: {}\n\nYou will be asked to choose a new password \
                 when you first log in.",
                password.expose()
            ),
        ),
        Notice::RechargeConfirmed {
            payment_id,
            amount,
            balance,
            at,
        } => (
            format!(
                "Recharge of {} for {consumer_no} received on {}. Balance: {}. Ref {payment_id}.",
                amount.ascii(),
                ist_en(*at),
                balance.ascii()
            ),
            format!("Recharge of {amount} received"),
            format!(
                "Your recharge of {amount} for consumer number {consumer_no} was received on {} \
                 (payment reference {payment_id}).\n\nYour balance is now {balance}.",
                ist_en(*at)
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
                    ist_en(*at)
                ),
                format!("Payment of {amount} received, receipt {receipt_no}"),
                format!(
                    "Your payment of {amount} for consumer number {consumer_no} was received on \
                     {} (receipt {receipt_no}).\n\n{}",
                    ist_en(*at),
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
                ist_en(*at)
            ),
            format!("Low balance: {balance} left"),
            format!(
                "The prepaid balance of consumer number {consumer_no} is {balance} as of {}, \
                 {percent}% of your last recharge.\n\nPlease recharge to keep your supply on.",
                ist_en(*at)
            ),
        ),
        Notice::DisconnectionNotice { balance, from } => (
            format!(
                "Balance {} for {consumer_no}. Supply will be disconnected from {} unless you \
                 recharge.",
                balance.ascii(),
                ist_en(*from)
            ),
            "Your supply will be disconnected unless you recharge".to_string(),
            format!(
                "The prepaid balance of consumer number {consumer_no} is {balance}.\n\nYour \
                 supply will be disconnected from {} unless you recharge before then. A \
                 recharge reconnects it within two hours.",
                ist_en(*from)
            ),
        ),
        Notice::Disconnected { balance, at } => (
            format!(
                "Supply of {consumer_no} disconnected on {} for balance {}. Recharge to \
                 reconnect.",
                ist_en(*at),
                balance.ascii()
            ),
            "Your supply has been disconnected".to_string(),
            format!(
                "The supply of consumer number {consumer_no} was disconnected on {} because the \
                 prepaid balance is {balance}.\n\nRecharge to have it reconnected within two \
                 hours.",
                ist_en(*at)
            ),
        ),
        Notice::Reconnected { balance, at } => (
            format!(
                "Supply of {consumer_no} reconnected on {}. Balance: {}.",
                ist_en(*at),
                balance.ascii()
            ),
            "Your supply has been reconnected".to_string(),
            format!(
                "The supply of consumer number {consumer_no} was reconnected on {}.\n\nYour \
                 balance is {balance}.",
                ist_en(*at)
            ),
        ),
        Notice::EmergencyCredit { amount, until } => (
            format!(
                "Emergency credit of {} given to {consumer_no} until {}. It is recovered from \
                 your next recharge.",
                amount.ascii(),
                ist_en(*until)
            ),
            format!("Emergency credit of {amount}"),
            format!(
                "Consumer number {consumer_no} has been given emergency credit of {amount}; \
                 the supply is protected until {}.\n\nIt is recovered from your next recharge.",
                ist_en(*until)
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
                    ist_en(*at),
                    balance.ascii()
                ),
                format!("Your connection is now {mode}"),
                format!(
                    "Consumer number {consumer_no} has been changed to {mode} on {}.\n\nBalance \
                     carried over: {balance}.",
                    ist_en(*at)
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
                ist_en(*due)
            ),
            format!("{subject}: registered as {number}"),
            format!(
                "Your {} for consumer number {consumer_no} has been registered as {number}.\n\n\
                 We will resolve it by {}. Please quote {number} when you contact us about it.",
                subject.to_lowercase(),
                ist_en(*due)
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
                ist_en(*at),
                gsm_note(resolution, 60)
            ),
            format!("{subject}: {number} closed"),
            format!(
                "Your {} {number} for consumer number {consumer_no} was closed on {}.\n\n\
                 {resolution}",
                subject.to_lowercase(),
                ist_en(*at)
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
                gsm_note(reason, 60)
            ),
            format!("{subject}: {number} not taken up"),
            format!(
                "Your {} {number} for consumer number {consumer_no} could not be taken up \
                 ({}).\n\nReason: {reason}",
                subject.to_lowercase(),
                ist_en(*at)
            ),
        ),
    };
    Texts {
        sms,
        subject,
        email,
        dear: "Dear consumer,",
        closing: "This message was sent automatically.",
    }
}

/// Plain-text email lines: each paragraph's words wrapped at 72 characters.
/// Free text (a resolution, a reason) for a GSM-7 SMS: printable ASCII only (anything else
/// as '?'), at most `max` characters.
pub(crate) fn gsm_note(text: &str, max: usize) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;
    use crate::sms::{Encoding, encoding, segments};

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
            Language::English,
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
            Language::English,
        );
        assert_eq!(
            cut.sms,
            "Balance -Rs 60.00 for C-100. Supply will be disconnected from 04 Dec 2026 09:00 IST \
             unless you recharge."
        );
        let hi = render(
            "C-100",
            &Notice::RechargeConfirmed {
                payment_id: "pay_29QQ".into(),
                amount: Paise(50_000),
                balance: Paise(12_345_678),
                at: t("2026-12-04T04:30:00Z"),
            },
            Language::Hindi,
        );
        assert_eq!(
            hi.sms,
            "C-100 का ₹500.00 का रिचार्ज 04-12-2026 10:00 को मिला। शेष राशि ₹1,23,456.78। \
             संदर्भ pay_29QQ"
        );
        assert_eq!(hi.subject, "₹500.00 का रिचार्ज मिला (C-100)");
        assert!(hi.email.starts_with("प्रिय उपभोक्ता,\n\n"), "{}", hi.email);
        let unwrapped = hi.email.replace('\n', " ");
        assert!(
            unwrapped.contains("04 दिसंबर 2026, 10:00 IST"),
            "{}",
            hi.email
        );
        assert!(unwrapped.contains("अब आपकी शेष राशि ₹1,23,456.78 है।"));
    }

    /// Every notice, in a long consumer number and awkward amounts.
    fn every_notice() -> Vec<Notice> {
        vec![
            Notice::RegistrationCode {
                code: Secret::new("048213"),
                valid_minutes: 10,
            },
            Notice::PortalCredentials {
                login_id: "C-100000001".into(),
                password: Secret::new("k7Rm-Qx2p-Wd9z"),
            },
            Notice::RechargeConfirmed {
                payment_id: "pay_29QQ8sLk3".into(),
                amount: Paise(10_000_000),
                balance: Paise(12_345_678),
                at: t("2026-12-04T04:30:00Z"),
            },
            Notice::PaymentReceived {
                receipt_no: "R-2026-000123".into(),
                amount: Paise(234_500),
                outstanding: Paise(-123_400),
                at: t("2026-12-04T04:30:00Z"),
            },
            Notice::LowBalance {
                percent: 10,
                balance: Paise(4_000),
                at: t("2026-12-04T00:30:00Z"),
            },
            Notice::DisconnectionNotice {
                balance: Paise(-6_000),
                from: t("2026-12-04T03:30:00Z"),
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
        ]
    }

    #[test]
    fn english_sms_are_one_gsm_sms_and_hindi_ones_unicode_in_at_most_two() {
        for notice in every_notice() {
            let en = render("C-100000001", &notice, Language::English);
            assert_eq!(encoding(&en.sms), Encoding::Gsm7, "{}", en.sms);
            assert_eq!(segments(&en.sms), 1, "{} chars: {}", en.sms.len(), en.sms);
            assert!(en.sms.contains("C-100000001"), "{}", en.sms);
            let hi = render("C-100000001", &notice, Language::Hindi);
            assert_eq!(encoding(&hi.sms), Encoding::Ucs2, "{}", hi.sms);
            assert!(segments(&hi.sms) <= 2, "{}: {}", segments(&hi.sms), hi.sms);
            assert!(hi.sms.contains("C-100000001"), "{}", hi.sms);
            for r in [&en, &hi] {
                assert!(r.subject.ends_with("(C-100000001)"), "{}", r.subject);
                assert!(
                    r.email.lines().all(|l| l.chars().count() <= 72),
                    "{}",
                    r.email
                );
                assert!(!r.sms.contains('\n') && !r.subject.contains('\n'));
            }
        }
    }

    #[test]
    fn codes_and_passwords_are_in_their_texts_and_a_code_fits_one_sms() {
        let code = Notice::RegistrationCode {
            code: Secret::new("048213"),
            valid_minutes: 10,
        };
        let en = render("C-100000001", &code, Language::English);
        assert_eq!(
            en.sms,
            "048213 is your code to register C-100000001 on the consumer portal. Valid for 10 \
             minutes. Do not share it with anyone."
        );
        let hi = render("C-100000001", &code, Language::Hindi);
        assert_eq!(
            hi.sms,
            "C-100000001 का पंजीकरण कोड 048213 है। 10 मिनट मान्य। किसी को न बताएं।"
        );
        assert_eq!((segments(&en.sms), segments(&hi.sms)), (1, 1));
        assert!(
            en.email.contains(" is\n048213.") || en.email.contains(" 048213."),
            "{}",
            en.email
        );
        assert!(hi.email.contains("048213"), "{}", hi.email);
        let login = Notice::PortalCredentials {
            login_id: "C-100000001".into(),
            password: Secret::new("k7Rm-Qx2p-Wd9z"),
        };
        for language in Language::ALL {
            let r = render("C-100000001", &login, language);
            for text in [&r.sms, &r.email] {
                assert!(text.contains("k7Rm-Qx2p-Wd9z"), "{text}");
            }
            assert!(!r.subject.contains("k7Rm"));
        }
    }
}

//! The Hindi texts. SMS are Unicode (so ₹ is written as it is) and kept to two SMS at most; the
//! SMS date is numeric (`04-12-2026 10:00`), the email's has the month's name. Digits are the
//! international ones, as Indian utilities and banks write them in Hindi messages.

use chrono::{DateTime, Utc};
use model::{Paise, PaymentMode};

use crate::Notice;
use crate::render::{Texts, ist};

const MONTHS: [&str; 12] = [
    "जनवरी",
    "फ़रवरी",
    "मार्च",
    "अप्रैल",
    "मई",
    "जून",
    "जुलाई",
    "अगस्त",
    "सितंबर",
    "अक्टूबर",
    "नवंबर",
    "दिसंबर",
];

/// `04-12-2026 10:00` (IST).
fn short(t: DateTime<Utc>) -> String {
    ist(t, "%d-%m-%Y %H:%M")
}

/// `04 दिसंबर 2026, 10:00 IST`.
fn long(t: DateTime<Utc>) -> String {
    let local = ist(t, "%d|%m|%Y|%H:%M");
    let mut parts = local.split('|');
    let (day, month, year, time) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let month = month
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .copied()
        .unwrap_or(month);
    format!("{day} {month} {year}, {time} IST")
}

/// Free text for a Hindi SMS: at most `max` characters.
fn note(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn mode_name(mode: PaymentMode) -> &'static str {
    match mode {
        PaymentMode::Prepaid => "प्रीपेड",
        PaymentMode::Postpaid => "पोस्टपेड",
    }
}

/// The Hindi texts of `notice` for consumer `c`.
pub(crate) fn texts(c: &str, notice: &Notice) -> Texts {
    let (sms, subject, email) = match notice {
        Notice::RegistrationCode {
            code,
            valid_minutes,
        } => (
            format!(
                "{c} का पंजीकरण कोड {} है। {valid_minutes} मिनट मान्य। किसी को न बताएं।",
                code.expose()
            ),
            "उपभोक्ता पोर्टल पर पंजीकरण का कोड".to_string(),
            format!(
                "उपभोक्ता पोर्टल पर उपभोक्ता संख्या {c} के पंजीकरण का कोड {} है। यह \
                 {valid_minutes} मिनट तक मान्य है।\n\nयदि आपने यह नहीं माँगा था, तो इस संदेश को \
                 अनदेखा करें। यह कोड किसी को न बताएं, बिजली विभाग के कर्मचारियों को भी नहीं।",
                code.expose()
            ),
        ),
        Notice::PortalCredentials { login_id, password } => (
            format!(
                "{c} का पोर्टल लॉगिन: आईडी {login_id}, पासवर्ड {}। पहली बार लॉगिन करने पर नया \
                 पासवर्ड चुनें।",
                password.expose()
            ),
            "आपका उपभोक्ता पोर्टल लॉगिन".to_string(),
            format!(
                "उपभोक्ता संख्या {c} उपभोक्ता पोर्टल पर पंजीकृत हो गई है।\n\nलॉगिन आईडी: \
                 {login_id}\nपासवर्ड: {}\n\nपहली बार लॉगिन करने पर आपसे नया पासवर्ड चुनने को कहा \
                 जाएगा।",
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
                "{c} का {amount} का रिचार्ज {} को मिला। शेष राशि {balance}। संदर्भ {payment_id}",
                short(*at)
            ),
            format!("{amount} का रिचार्ज मिला"),
            format!(
                "उपभोक्ता संख्या {c} के लिए आपका {amount} का रिचार्ज {} को प्राप्त हुआ (भुगतान \
                 संदर्भ {payment_id})।\n\nअब आपकी शेष राशि {balance} है।",
                long(*at)
            ),
        ),
        Notice::PaymentReceived {
            receipt_no,
            amount,
            outstanding,
            at,
        } => {
            let (standing_sms, standing) = if outstanding.is_negative() {
                let advance = Paise(-outstanding.0);
                (
                    format!("अग्रिम जमा {advance}"),
                    format!("आपके {advance} अग्रिम जमा हैं; ये आपके अगले बिल में समायोजित होंगे।"),
                )
            } else if *outstanding == Paise::ZERO {
                (
                    "कोई बकाया नहीं".to_string(),
                    "अब आपके खाते पर कुछ भी बकाया नहीं है।".to_string(),
                )
            } else {
                (
                    format!("बकाया {outstanding}"),
                    format!("आपके खाते पर अभी {outstanding} बकाया है।"),
                )
            };
            (
                format!(
                    "{c} का {amount} का भुगतान {} को मिला। रसीद {receipt_no}। {standing_sms}।",
                    short(*at)
                ),
                format!("{amount} का भुगतान मिला, रसीद {receipt_no}"),
                format!(
                    "उपभोक्ता संख्या {c} के लिए आपका {amount} का भुगतान {} को प्राप्त हुआ (रसीद \
                     {receipt_no})।\n\n{standing}",
                    long(*at)
                ),
            )
        }
        Notice::LowBalance {
            percent,
            balance,
            at,
        } => (
            format!(
                "कम शेष राशि: {c} में {} को {balance} बचे हैं (पिछले रिचार्ज का {percent}%)। \
                 कनेक्शन कटने से बचने के लिए रिचार्ज करें।",
                short(*at)
            ),
            format!("कम शेष राशि: {balance} बचे हैं"),
            format!(
                "उपभोक्ता संख्या {c} की प्रीपेड शेष राशि {} को {balance} है, जो आपके पिछले \
                 रिचार्ज का {percent}% है।\n\nबिजली आपूर्ति चालू रखने के लिए कृपया रिचार्ज करें।",
                long(*at)
            ),
        ),
        Notice::DisconnectionNotice { balance, from } => (
            format!(
                "{c} की शेष राशि {balance} है। रिचार्ज न करने पर {} से बिजली आपूर्ति काट दी \
                 जाएगी।",
                short(*from)
            ),
            "रिचार्ज न करने पर आपकी बिजली आपूर्ति काट दी जाएगी".to_string(),
            format!(
                "उपभोक्ता संख्या {c} की प्रीपेड शेष राशि {balance} है।\n\nयदि आप उससे पहले रिचार्ज \
                 नहीं करते हैं, तो {} से आपकी बिजली आपूर्ति काट दी जाएगी। रिचार्ज करने पर दो घंटे \
                 के भीतर आपूर्ति फिर से जोड़ दी जाती है।",
                long(*from)
            ),
        ),
        Notice::Disconnected { balance, at } => (
            format!(
                "{c} की बिजली आपूर्ति {} को शेष राशि {balance} होने के कारण काट दी गई। फिर से \
                 जुड़वाने के लिए रिचार्ज करें।",
                short(*at)
            ),
            "आपकी बिजली आपूर्ति काट दी गई है".to_string(),
            format!(
                "प्रीपेड शेष राशि {balance} होने के कारण उपभोक्ता संख्या {c} की बिजली आपूर्ति {} \
                 को काट दी गई।\n\nरिचार्ज करें: दो घंटे के भीतर आपूर्ति फिर से जोड़ दी जाएगी।",
                long(*at)
            ),
        ),
        Notice::Reconnected { balance, at } => (
            format!(
                "{c} की बिजली आपूर्ति {} को फिर से जोड़ दी गई। शेष राशि {balance}।",
                short(*at)
            ),
            "आपकी बिजली आपूर्ति फिर से जोड़ दी गई है".to_string(),
            format!(
                "उपभोक्ता संख्या {c} की बिजली आपूर्ति {} को फिर से जोड़ दी गई।\n\nआपकी शेष राशि \
                 {balance} है।",
                long(*at)
            ),
        ),
        Notice::EmergencyCredit { amount, until } => (
            format!(
                "{c} को {} तक {amount} का आपातकालीन क्रेडिट दिया गया। यह अगले रिचार्ज से वसूला \
                 जाएगा।",
                short(*until)
            ),
            format!("{amount} का आपातकालीन क्रेडिट"),
            format!(
                "उपभोक्ता संख्या {c} को {amount} का आपातकालीन क्रेडिट दिया गया है; {} तक आपूर्ति \
                 नहीं काटी जाएगी।\n\nयह राशि आपके अगले रिचार्ज से वसूली जाएगी।",
                long(*until)
            ),
        ),
        Notice::PaymentModeChanged { mode, balance, at } => {
            let mode = mode_name(*mode);
            (
                format!(
                    "कनेक्शन {c} {} से {mode} है। आगे ले जाई गई शेष राशि {balance}।",
                    short(*at)
                ),
                format!("आपका कनेक्शन अब {mode} है"),
                format!(
                    "उपभोक्ता संख्या {c} को {} से {mode} कर दिया गया है।\n\nआगे ले जाई गई शेष \
                     राशि: {balance}।",
                    long(*at)
                ),
            )
        }
        Notice::CaseRegistered {
            number,
            subject,
            due,
        } => (
            format!(
                "{c} का {subject} {number} के रूप में दर्ज। {} तक निपटाया जाएगा।",
                short(*due)
            ),
            format!("{subject}: {number} के रूप में दर्ज"),
            format!(
                "उपभोक्ता संख्या {c} का आपका अनुरोध ({subject}) {number} के रूप में दर्ज कर लिया \
                 गया है।\n\nइसे {} तक निपटाया जाएगा। संपर्क करते समय {number} बताएं।",
                long(*due)
            ),
        ),
        Notice::CaseClosed {
            number,
            subject,
            resolution,
            at,
        } => (
            format!(
                "{number} ({subject}), {c}, {} को बंद: {}",
                short(*at),
                note(resolution, 40)
            ),
            format!("{subject}: {number} बंद"),
            format!(
                "उपभोक्ता संख्या {c} का {number} ({subject}) {} को बंद कर दिया गया है।\n\n\
                 {resolution}",
                long(*at)
            ),
        ),
        Notice::CaseRejected {
            number,
            subject,
            reason,
            at,
        } => (
            format!(
                "{number} ({subject}), {c}, स्वीकार नहीं: {}",
                note(reason, 40)
            ),
            format!("{subject}: {number} स्वीकार नहीं"),
            format!(
                "उपभोक्ता संख्या {c} का {number} ({subject}) स्वीकार नहीं किया जा सका ({})।\n\n\
                 कारण: {reason}",
                long(*at)
            ),
        ),
    };
    Texts {
        sms,
        subject,
        email,
        dear: "प्रिय उपभोक्ता,",
        closing: "यह संदेश स्वचालित रूप से भेजा गया है।",
    }
}

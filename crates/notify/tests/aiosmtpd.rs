//! Email through the real dispatcher to a real SMTP server that is not ours: `aiosmtpd` (PyPI),
//! started by the test with its Maildir handler. Python's own `email` package then reads what
//! the server stored, so the check of the subject (RFC 2047), the body's transfer encoding and
//! its UTF-8 does not rest on our code: an English and a Hindi notice, and a registration code
//! that is blanked in the outbox once delivered.
//!
//! Needs `python3 -m pip install aiosmtpd`. Without it the test prints `SKIPPED: ...` and
//! passes, unless `URJA_REQUIRE_AIOSMTPD=1`, when it fails.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use model::Paise;
use notify::dispatch::{DispatchConfig, Dispatcher, SmtpConfig, SmtpMailer};
use notify::{Language, Notice, Secret, enqueue, enqueue_on};
use serde_json::Value;
use store::Store;
use store::notify::{Channel, WITHHELD};

fn now() -> DateTime<Utc> {
    "2026-12-04T04:30:00Z".parse().unwrap()
}

fn aiosmtpd_available() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .map_err(|e| format!("python3 cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "python3 has no aiosmtpd ({}); `python3 -m pip install aiosmtpd`",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The server process, stopped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(maildir: &Path) -> (Server, u16) {
    let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start aiosmtpd");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not listen in 15 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

/// What Python's `email` package reads in the Maildir: one object per message, oldest first.
fn read_maildir(maildir: &Path) -> Vec<Value> {
    const READ: &str = r#"
import email, email.policy, json, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
out = []
for key in box.keys():
    raw = box.get_bytes(key)
    m = email.message_from_bytes(raw, policy=email.policy.default)
    out.append({
        "to": str(m["To"]), "from": str(m["From"]), "subject": str(m["Subject"]),
        "raw_subject": m.get("Subject", failobj="") and
            email.message_from_bytes(raw, policy=email.policy.compat32)["Subject"],
        "content_type": m.get_content_type(), "charset": m.get_content_charset(),
        "body": m.get_content(),
    })
out.sort(key=lambda m: m["to"])
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", READ])
        .arg(maildir)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "reading the Maildir: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from python");
    v.as_array().expect("a list").clone()
}

#[tokio::test]
async fn english_and_hindi_email_through_a_real_smtp_server() {
    if let Err(why) = aiosmtpd_available() {
        if std::env::var("URJA_REQUIRE_AIOSMTPD").as_deref() == Ok("1") {
            panic!("URJA_REQUIRE_AIOSMTPD=1 but aiosmtpd cannot run: {why}");
        }
        let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: aiosmtpd: {why} ***\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let (_server, port) = start_server(&maildir);

    let store = Store::open(dir.path().join("u.sqlite")).unwrap();
    store
        .contact_put("C-1", None, Some("asha@example.in"), now())
        .unwrap();
    store
        .contact_put("C-2", None, Some("ravi@example.in"), now())
        .unwrap();
    store
        .contact_set_language("C-2", Language::Hindi, now())
        .unwrap();
    let recharge = Notice::RechargeConfirmed {
        payment_id: "pay_1".into(),
        amount: Paise(50_000),
        balance: Paise(12_345_678),
        at: now(),
    };
    enqueue(&store, "C-1", "recharge/pay_1", &recharge, now()).unwrap();
    enqueue(&store, "C-2", "recharge/pay_1", &recharge, now()).unwrap();
    let code = Notice::RegistrationCode {
        code: Secret::new("048213"),
        valid_minutes: 10,
    };
    assert!(
        enqueue_on(
            &store,
            "C-2",
            Channel::Email,
            "registration/r1",
            &code,
            now()
        )
        .unwrap()
    );

    let mailer = SmtpMailer::new(&SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "Urja <noreply@urja.example>".into(),
    })
    .unwrap();
    let d = Dispatcher::new(store.clone(), None, Some(mailer), DispatchConfig::default());
    let report = d.run_once(now()).await.unwrap();
    assert_eq!(report.sent, 3, "{report:?}");

    // aiosmtpd stores each message as it is accepted; give its writes a moment
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut mails = read_maildir(&maildir);
    while mails.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        mails = read_maildir(&maildir);
    }
    assert_eq!(mails.len(), 3, "{mails:?}");

    let en = &mails[0];
    assert_eq!(en["to"], "asha@example.in");
    assert_eq!(en["from"], "Urja <noreply@urja.example>");
    assert_eq!(en["subject"], "Recharge of ₹500.00 received (C-1)");
    assert_eq!(
        (&en["content_type"], &en["charset"]),
        (&"text/plain".into(), &"utf-8".into())
    );
    let body = en["body"].as_str().unwrap().replace("\r\n", "\n");
    assert!(
        body.starts_with("Dear consumer,\n\nYour recharge of ₹500.00"),
        "{body}"
    );
    assert!(body.contains("Your balance is now ₹1,23,456.78."), "{body}");

    let hi: Vec<&Value> = mails
        .iter()
        .filter(|m| m["to"] == "ravi@example.in")
        .collect();
    assert_eq!(hi.len(), 2);
    let recharge_hi = hi
        .iter()
        .find(|m| m["subject"] == "₹500.00 का रिचार्ज मिला (C-2)")
        .unwrap_or_else(|| panic!("{hi:?}"));
    // the subject went over the wire encoded (RFC 2047), not as raw UTF-8
    let raw = recharge_hi["raw_subject"].as_str().unwrap();
    assert!(raw.is_ascii() && raw.contains("=?utf-8?"), "{raw}");
    let body = recharge_hi["body"].as_str().unwrap().replace('\n', " ");
    assert!(body.starts_with("प्रिय उपभोक्ता,"), "{body}");
    assert!(body.contains("अब आपकी शेष राशि ₹1,23,456.78 है।"), "{body}");
    let code_mail = hi
        .iter()
        .find(|m| m["subject"] == "उपभोक्ता पोर्टल पर पंजीकरण का कोड (C-2)")
        .unwrap_or_else(|| panic!("{hi:?}"));
    assert!(code_mail["body"].as_str().unwrap().contains("048213"));

    // the code reached the consumer and is gone from the outbox; the delivery log says so
    let rows = store.notifications(Some("C-2"), None, 0, 10).unwrap();
    let kept = rows.iter().find(|r| r.kind == "registration_code").unwrap();
    assert_eq!(
        (kept.state.as_str(), kept.body.as_str()),
        ("sent", WITHHELD)
    );
    let log = store.notification_attempts(kept.seq).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].outcome, "sent");
}

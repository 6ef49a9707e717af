//! The dispatcher against the stand-ins over real TCP: a real SMTP conversation through lettre,
//! SMS through the operator's HTTP API, retries after a bad minute, giving up, and refusals
//! recorded rather than lost.

use chrono::{DateTime, Duration, Utc};
use model::Paise;
use notify::dispatch::{DispatchConfig, Dispatcher, SmsConfig, SmsGateway, SmtpConfig, SmtpMailer};
use notify::standin::{SmsOperator, SmtpSink};
use notify::{Language, Notice, Secret, enqueue, enqueue_on};
use store::Store;
use store::notify::Channel;

fn now() -> DateTime<Utc> {
    "2026-12-04T04:30:00Z".parse().unwrap()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("u.sqlite")).unwrap();
    (dir, store)
}

fn sms(op: &SmsOperator, key: &str) -> SmsGateway {
    SmsGateway::new(SmsConfig {
        url: op.url(),
        api_key: key.into(),
        sender_id: "URJAPW".into(),
        templates: [(
            "recharge_confirmed".to_string(),
            "1107160000000012345".to_string(),
        )]
        .into_iter()
        .collect(),
    })
    .unwrap()
}

fn recharge() -> Notice {
    Notice::RechargeConfirmed {
        payment_id: "pay_1".into(),
        amount: Paise(50_000),
        balance: Paise(44_000),
        at: now(),
    }
}

#[tokio::test]
async fn a_recharge_notice_goes_out_by_sms_and_by_email() {
    let (_d, store) = store();
    store
        .contact_put("C-1", Some("+919876543210"), Some("asha@example.in"), now())
        .unwrap();
    enqueue(&store, "C-1", "recharge/pay_1", &recharge(), now()).unwrap();
    let op = SmsOperator::start("key-1").await.unwrap();
    let sink = SmtpSink::start().await.unwrap();
    let mailer = SmtpMailer::new(&SmtpConfig {
        host: "127.0.0.1".into(),
        port: sink.addr().port(),
        from: "Urja <noreply@urja.example>".into(),
    })
    .unwrap();
    let d = Dispatcher::new(
        store.clone(),
        Some(sms(&op, "key-1")),
        Some(mailer),
        DispatchConfig::default(),
    );
    let report = d.run_once(now()).await.unwrap();
    assert_eq!(report.sent, 2, "{report:?}");

    let texts = op.received();
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].to, "+919876543210");
    assert_eq!(texts[0].sender_id, "URJAPW");
    assert_eq!(texts[0].template_id, "1107160000000012345");
    assert!(
        texts[0].text.contains("Balance: Rs 440.00"),
        "{}",
        texts[0].text
    );

    let mails = sink.received();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["asha@example.in".to_string()]);
    assert_eq!(mails[0].from, "noreply@urja.example");
    assert!(mails[0].header("Subject").is_some());
    assert!(
        mails[0].body().contains("Your balance is now ₹440.00."),
        "{}",
        mails[0].data
    );

    let rows = store.notifications(Some("C-1"), None, 0, 10).unwrap();
    assert!(
        rows.iter()
            .all(|r| r.state == "sent" && r.sent_at == Some(now()))
    );
    assert_eq!(rows[0].provider_id.as_deref(), Some("SIM-1"));
    assert!(
        rows[1]
            .provider_id
            .as_deref()
            .unwrap()
            .contains("STANDIN-1")
    );
    // Sent once: nothing is due any more.
    assert_eq!(d.run_once(now()).await.unwrap().sent, 0);
}

#[tokio::test]
async fn a_bad_minute_is_retried_with_backoff_and_a_dead_end_is_given_up() {
    let (_d, store) = store();
    store
        .contact_put("C-2", Some("+919876543211"), None, now())
        .unwrap();
    enqueue(&store, "C-2", "k", &recharge(), now()).unwrap();
    let op = SmsOperator::start("key-2").await.unwrap();
    op.fail_next(1);
    let config = DispatchConfig {
        max_attempts: 3,
        backoff_s: 30,
        ..DispatchConfig::default()
    };
    let d = Dispatcher::new(store.clone(), Some(sms(&op, "key-2")), None, config);
    let first = d.run_once(now()).await.unwrap();
    assert_eq!(first.retrying, 1);
    // Not due again before the backoff.
    assert_eq!(
        d.run_once(now() + Duration::seconds(29)).await.unwrap(),
        Default::default()
    );
    let second = d.run_once(now() + Duration::seconds(30)).await.unwrap();
    assert_eq!(second.sent, 1);
    assert_eq!(op.received().len(), 1);
    let row = &store.notifications(Some("C-2"), None, 0, 10).unwrap()[0];
    assert_eq!((row.state.as_str(), row.attempts), ("sent", 2));

    // An operator that keeps failing: three attempts, then given up with the reason.
    enqueue(&store, "C-2", "k2", &recharge(), now()).unwrap();
    op.fail_next(10);
    let mut t = now();
    for _ in 0..3 {
        d.run_once(t).await.unwrap();
        t += Duration::hours(1);
    }
    let row = &store.notifications(Some("C-2"), None, 0, 10).unwrap()[1];
    assert_eq!(row.state, "failed");
    assert_eq!(row.attempts, 3);
    assert!(row.last_error.as_deref().unwrap().contains("503"));
    // the delivery log: each attempt's time and result
    let log = store.notification_attempts(row.seq).unwrap();
    let outcomes: Vec<(u32, DateTime<Utc>, &str)> = log
        .iter()
        .map(|a| (a.attempt, a.at, a.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (1, now(), "retry"),
            (2, now() + Duration::hours(1), "retry"),
            (3, now() + Duration::hours(2), "failed"),
        ]
    );
    assert!(log.iter().all(|a| a.detail.contains("503")));
}

#[tokio::test]
async fn hindi_goes_as_unicode_and_a_code_failing_leaves_no_trace_of_itself() {
    let (_d, store) = store();
    store
        .contact_put("C-5", Some("+919876543215"), None, now())
        .unwrap();
    store
        .contact_set_language("C-5", Language::Hindi, now())
        .unwrap();
    enqueue(&store, "C-5", "k", &recharge(), now()).unwrap();
    let op = SmsOperator::start("key-5").await.unwrap();
    let d = Dispatcher::new(
        store.clone(),
        Some(sms(&op, "key-5")),
        None,
        DispatchConfig::default(),
    );
    assert_eq!(d.run_once(now()).await.unwrap().sent, 1);
    let texts = op.received();
    assert!(texts[0].unicode, "{:?}", texts[0]);
    assert!(
        texts[0].text.contains("शेष राशि ₹440.00"),
        "{}",
        texts[0].text
    );

    // An operator refusing a code (with an answer that could quote it): the error is withheld
    // and the code blanked.
    let code = Notice::RegistrationCode {
        code: Secret::new("731904"),
        valid_minutes: 10,
    };
    enqueue_on(&store, "C-5", Channel::Sms, "reg/1", &code, now()).unwrap();
    let wrong = Dispatcher::new(
        store.clone(),
        Some(sms(&op, "wrong-key")),
        None,
        DispatchConfig::default(),
    );
    assert_eq!(wrong.run_once(now()).await.unwrap().failed, 1);
    let row = store
        .notifications(Some("C-5"), None, 0, 10)
        .unwrap()
        .remove(1);
    assert_eq!(row.state, "failed");
    assert_eq!(row.body, store::notify::WITHHELD);
    assert!(row.last_error.as_deref().unwrap().contains("withheld"));
}

#[tokio::test]
async fn without_an_adapter_messages_are_kept_as_files_and_marked_sent() {
    let (dir, store) = store();
    store
        .contact_put("C-6", Some("+919876543216"), Some("c6@example.in"), now())
        .unwrap();
    enqueue(&store, "C-6", "k", &recharge(), now()).unwrap();
    let outbox = dir.path().join("outbox");
    let d =
        Dispatcher::new(store.clone(), None, None, DispatchConfig::default()).keeping_in(&outbox);
    assert_eq!(d.run_once(now()).await.unwrap().sent, 2);
    let rows = store.notifications(Some("C-6"), None, 0, 10).unwrap();
    for row in &rows {
        assert_eq!(row.state, "sent");
        let path =
            outbox
                .join("2026-12-04")
                .join(format!("{:06}-{}.txt", row.seq, row.channel.name()));
        assert_eq!(row.provider_id.as_deref(), Some(path.to_str().unwrap()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(&format!("To: {}\n", row.recipient)),
            "{text}"
        );
        assert!(text.ends_with(&format!("\n\n{}\n", row.body)), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    assert!(
        std::fs::read_to_string(
            outbox
                .join("2026-12-04")
                .join(format!("{:06}-email.txt", rows[1].seq))
        )
        .unwrap()
        .contains("Subject: Recharge of ₹500.00 received (C-6)\n")
    );
}

#[tokio::test]
async fn refusals_are_recorded_not_retried_and_not_lost() {
    let (_d, store) = store();
    store
        .contact_put("C-3", Some("+919876543212"), Some("c3@example.in"), now())
        .unwrap();
    enqueue(&store, "C-3", "k", &recharge(), now()).unwrap();
    let op = SmsOperator::start("right-key").await.unwrap();
    // A wrong API key is a permanent refusal; no SMTP relay configured at all.
    let d = Dispatcher::new(
        store.clone(),
        Some(sms(&op, "wrong-key")),
        None,
        DispatchConfig::default(),
    );
    let report = d.run_once(now()).await.unwrap();
    assert_eq!(report.failed, 2);
    let rows = store.notifications(Some("C-3"), None, 0, 10).unwrap();
    assert!(rows[0].last_error.as_deref().unwrap().contains("401"));
    assert!(
        rows[1]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no SMTP relay")
    );
    assert!(op.received().is_empty());
    // Failed messages stay listed for people.
    assert_eq!(
        store
            .notifications(None, Some("failed"), 0, 10)
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn an_unreachable_relay_is_a_temporary_failure() {
    let (_d, store) = store();
    store
        .contact_put("C-4", None, Some("c4@example.in"), now())
        .unwrap();
    enqueue(&store, "C-4", "k", &recharge(), now()).unwrap();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mailer = SmtpMailer::new(&SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        from: "noreply@urja.example".into(),
    })
    .unwrap();
    let d = Dispatcher::new(store.clone(), None, Some(mailer), DispatchConfig::default());
    let report = d.run_once(now()).await.unwrap();
    assert_eq!(report.retrying, 1, "{report:?}");
    let row = &store.notifications(Some("C-4"), None, 0, 10).unwrap()[0];
    assert_eq!(row.state, "pending");
    assert_eq!(row.next_attempt_at, now() + Duration::seconds(30));
}

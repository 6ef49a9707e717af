//! The consumer portal's registration and login (use case 15) through `app(...)` on a real
//! store, with the dispatcher sending the codes and passwords to the local SMS and SMTP
//! stand-ins, and the API's clock moved by hand: the whole path, uniform answers, code expiry,
//! attempt limits, resend throttling, login lockout and the forced password change. Every
//! tracing event of the binary (at TRACE) is captured, and no code or password may be in it.

use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use notify::dispatch::{DispatchConfig, Dispatcher, SmsConfig, SmsGateway, SmtpConfig, SmtpMailer};
use notify::standin::{SmsOperator, SmtpSink};
use serde_json::{Value, json};
use store::notify::{Language, WITHHELD};
use store::{Role, Store};
use tower::ServiceExt;
use web::{AppState, app, issue_token};

/// Everything every test of this binary logged.
fn log() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        Mutex::new(Vec::new())
    })
}

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged() -> String {
    String::from_utf8_lossy(&log().lock().unwrap()).into_owned()
}

/// None of `secrets` in anything logged (and something was logged, so the capture works).
fn assert_not_logged(secrets: &[&str]) {
    let text = logged();
    assert!(text.contains("portal"), "nothing captured: {text}");
    for s in secrets {
        assert!(!s.is_empty());
        assert!(!text.contains(s), "{s:?} was logged");
    }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const T0: &str = "2026-12-04T04:30:00Z";

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    app: Router,
    clock: Arc<Mutex<DateTime<Utc>>>,
    admin: String,
    op: SmsOperator,
    mail: SmtpSink,
    dispatcher: Dispatcher,
}

async fn rig() -> Rig {
    log();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let t0 = at(T0);
    for (no, name, mobile, email) in [
        ("C-1", "Asha Devi", Some("+919876543210"), None),
        ("C-2", "Ravi Kumar", None, Some("ravi@example.in")),
    ] {
        store
            .mdm_put_consumer(
                &store::mdm::Consumer {
                    consumer_no: no.into(),
                    name: name.into(),
                    category: "residential".into(),
                    net_metered: false,
                },
                t0,
            )
            .unwrap();
        store.contact_put(no, mobile, email, t0).unwrap();
    }
    store
        .contact_set_language("C-2", Language::Hindi, t0)
        .unwrap();
    let admin = issue_token(&store, Role::Admin, "admin", None, t0)
        .unwrap()
        .secret;
    let clock = Arc::new(Mutex::new(t0));
    let now = clock.clone();
    let app = app(AppState::new(store.clone()).with_clock(move || *now.lock().unwrap()));
    let op = SmsOperator::start("k").await.unwrap();
    let mail = SmtpSink::start().await.unwrap();
    let dispatcher = Dispatcher::new(
        store.clone(),
        Some(
            SmsGateway::new(SmsConfig {
                url: op.url(),
                api_key: "k".into(),
                sender_id: "URJAPW".into(),
                templates: Default::default(),
            })
            .unwrap(),
        ),
        Some(
            SmtpMailer::new(&SmtpConfig {
                host: "127.0.0.1".into(),
                port: mail.addr().port(),
                from: "Urja <noreply@urja.example>".into(),
            })
            .unwrap(),
        ),
        DispatchConfig::default(),
    );
    Rig {
        _dir: dir,
        store,
        app,
        clock,
        admin,
        op,
        mail,
        dispatcher,
    }
}

impl Rig {
    fn advance(&self, by: Duration) {
        *self.clock.lock().unwrap() += by;
    }

    fn now(&self) -> DateTime<Utc> {
        *self.clock.lock().unwrap()
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, uri, None, Some(body)).await
    }

    async fn start(&self, body: Value) -> (StatusCode, Value) {
        self.post("/api/v1/portal/registrations", body).await
    }

    async fn verify(&self, id: &str, code: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/portal/registrations/{id}/verify"),
            json!({"code": code}),
        )
        .await
    }

    async fn resend(&self, id: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/portal/registrations/{id}/resend"),
            json!({}),
        )
        .await
    }

    async fn login(&self, login_id: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/portal/login",
            json!({"login_id": login_id, "password": password}),
        )
        .await
    }

    /// Sends the outbox; the texts of the SMS received so far.
    async fn texts(&self) -> Vec<String> {
        self.dispatcher.run_once(self.now()).await.unwrap();
        self.op.received().into_iter().map(|s| s.text).collect()
    }
}

/// The six-digit code in a text.
fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_string()
}

/// The password in an English SMS (`… password k7Rm-Qx2p-Wd9z. …`) or a Hindi email.
fn password_in(text: &str) -> String {
    let after = text
        .split_once("password ")
        .or_else(|| text.split_once("पासवर्ड: "))
        .unwrap_or_else(|| panic!("no password in {text}"))
        .1;
    after.chars().take(14).collect()
}

#[tokio::test]
async fn register_by_sms_log_in_and_change_the_default_password_first() {
    let r = rig().await;
    let (status, started) = r
        .start(json!({"consumer_no": "C-1", "mobile": "98765 43210"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["channel"], "sms");
    assert_eq!(started["expires_at"], "2026-12-04T10:10:00+05:30");
    assert_eq!(started["resend_after"], "2026-12-04T10:01:00+05:30");
    let id = started["registration_id"].as_str().unwrap().to_string();
    let texts = r.texts().await;
    assert_eq!(texts.len(), 1);
    let code = code_in(&texts[0]);
    assert!(
        texts[0].contains("C-1") && texts[0].contains("consumer portal"),
        "{}",
        texts[0]
    );

    // a wrong code counts
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (status, body) = r.verify(&id, wrong).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "wrong_code");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("4 attempt(s) left")
    );
    let (status, body) = r.verify(&id, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["channel"], "sms");
    // used: once only
    assert_eq!(r.verify(&id, &code).await.0, StatusCode::GONE);

    let texts = r.texts().await;
    assert_eq!(texts.len(), 2);
    assert!(texts[1].contains("login id C-1"), "{}", texts[1]);
    let default = password_in(&texts[1]);

    // the outbox no longer holds the code or the password, and the API never shows them
    let (status, listed) = r
        .send(
            Method::GET,
            "/api/v1/notifications?consumer_no=C-1",
            Some(&r.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(
            (item["body"].as_str(), item["sensitive"].as_bool()),
            (Some(WITHHELD), Some(true))
        );
    }
    let seq = items[1]["seq"].as_u64().unwrap();
    let (status, detail) = r
        .send(
            Method::GET,
            &format!("/api/v1/notifications/{seq}"),
            Some(&r.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["kind"], "portal_credentials");
    assert_eq!(detail["attempts_log"][0]["outcome"], "sent");
    assert_eq!(detail["attempts_log"][0]["at"], "2026-12-04T10:00:00+05:30");
    for row in r.store.notifications(Some("C-1"), None, 0, 10).unwrap() {
        assert_eq!(row.body, WITHHELD);
    }

    // the first login: a session, and a change required before anything else
    let (status, session) = r.login("C-1", &default).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["password_change_required"], true);
    let token = session["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("urja_cs_"));
    let (status, me) = r
        .send(Method::GET, "/api/v1/portal/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"consumer_no": "C-1", "name": "Asha Devi", "login_id": "C-1",
               "password_change_required": true})
    );
    // a consumer's session is no staff token
    for uri in [
        "/api/v1/meters",
        "/api/v1/notifications",
        "/api/v1/consumers/C-1/contact",
    ] {
        let (status, body) = r.send(Method::GET, uri, Some(&token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {body}");
    }
    // and a staff token is no consumer session
    let (status, _) = r
        .send(Method::GET, "/api/v1/portal/me", Some(&r.admin), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    for (body, status, code) in [
        (
            change(&default, "short"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
        ),
        (
            change(&default, &default),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
        ),
        (
            change(&default, "c-1"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
        ),
        (
            change("not-the-password", "a long new passphrase"),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ] {
        let (got, answer) = r
            .send(
                Method::POST,
                "/api/v1/portal/password",
                Some(&token),
                Some(body),
            )
            .await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
    let new = "a long new passphrase";
    let (status, me) = r
        .send(
            Method::POST,
            "/api/v1/portal/password",
            Some(&token),
            Some(change(&default, new)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["password_change_required"], false);
    let (_, me) = r
        .send(Method::GET, "/api/v1/portal/me", Some(&token), None)
        .await;
    assert_eq!(me["password_change_required"], false);

    assert_eq!(r.login("C-1", &default).await.0, StatusCode::UNAUTHORIZED);
    let (status, session) = r.login("C-1", new).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["password_change_required"], false);

    assert_not_logged(&[&code, &default, new, &token]);
}

#[tokio::test]
async fn a_hindi_consumer_registers_by_email() {
    let r = rig().await;
    let (status, started) = r
        .start(json!({"consumer_no": "C-2", "email": "Ravi@Example.in"}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(started["channel"], "email");
    let id = started["registration_id"].as_str().unwrap().to_string();
    // (the Hindi body goes base64-encoded over SMTP, so it is read here from the outbox before
    // it is sent; tests/aiosmtpd.rs in notify checks such mail decoded by a real server)
    let pending = |kind: &str| {
        let rows = r
            .store
            .notifications(Some("C-2"), Some("pending"), 0, 10)
            .unwrap();
        let row = rows.into_iter().find(|n| n.kind == kind).unwrap();
        assert!(row.body.starts_with("प्रिय उपभोक्ता"), "{}", row.body);
        assert_eq!(row.recipient, "ravi@example.in");
        row.body
    };
    let code = code_in(&pending("registration_code"));
    r.texts().await;
    assert_eq!(r.mail.received().len(), 1);
    assert_eq!(r.verify(&id, &code).await.0, StatusCode::OK);
    let password = password_in(&pending("portal_credentials"));
    r.texts().await;
    assert_eq!(r.mail.received().len(), 2);
    let (status, session) = r.login("C-2", &password).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["password_change_required"], true);
    assert_not_logged(&[&code, &password]);
}

#[tokio::test]
async fn the_answers_do_not_tell_which_consumers_and_addresses_exist() {
    let r = rig().await;
    let mut answers = Vec::new();
    for body in [
        json!({"consumer_no": "C-1", "mobile": "+919876543210"}),
        json!({"consumer_no": "C-1", "mobile": "+919876543219"}),
        json!({"consumer_no": "C-404", "mobile": "+919876543210"}),
    ] {
        let (status, mut answer) = r.start(body).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let id = answer["registration_id"].take();
        answers.push((answer, id.as_str().unwrap().to_string()));
    }
    assert_eq!(answers[0].0, answers[1].0);
    assert_eq!(answers[0].0, answers[2].0);
    // only the matching request sent anything
    assert_eq!(r.texts().await.len(), 1);
    // and the unmatched ones take guesses and close just the same
    for (_, id) in &answers {
        for left in (0..5).rev() {
            let (status, body) = r.verify(id, "123456").await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(
                body["message"],
                format!("that is not the code; {left} attempt(s) left")
            );
        }
        assert_eq!(r.verify(id, "123456").await.0, StatusCode::GONE);
    }
    // a login id that does not exist and a wrong password are answered alike
    r.store
        .portal_challenge_start(
            &store::portal::NewChallenge {
                id: "reg_x",
                asked_no: "C-1",
                address: "+919876543210",
                channel: store::notify::Channel::Sms,
                consumer_no: Some("C-1"),
                code_hash: "-",
            },
            &store::portal::PortalRules::default(),
            r.now(),
        )
        .unwrap();
    r.store
        .portal_register(
            "reg_x",
            "C-1",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$AAAA",
            r.now(),
        )
        .unwrap();
    let unknown = r.login("C-404", "whatever-it-is").await;
    let wrong = r.login("C-1", "whatever-it-is").await;
    assert_eq!(unknown, wrong);
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_code_expires_and_resends_wait_a_minute_and_five_an_hour() {
    let r = rig().await;
    let (_, started) = r
        .start(json!({"consumer_no": "C-1", "mobile": "9876543210"}))
        .await;
    let id = started["registration_id"].as_str().unwrap().to_string();
    let first = code_in(&r.texts().await[0]);

    r.advance(Duration::seconds(30));
    let (status, body) = r.resend(&id).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("2026-12-04T10:01:00+05:30"),
        "{body}"
    );
    r.advance(Duration::seconds(30));
    let (status, body) = r.resend(&id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["registration_id"], id.as_str());
    assert_eq!(body["expires_at"], "2026-12-04T10:11:00+05:30");
    let second = code_in(&r.texts().await[1]);
    // the code before no longer works (unless the two happen to be equal)
    if first != second {
        assert_eq!(
            r.verify(&id, &first).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    // past its ten minutes the registration is gone
    r.advance(Duration::minutes(10));
    assert_eq!(r.verify(&id, &second).await.0, StatusCode::GONE);
    assert_eq!(r.resend(&id).await.0, StatusCode::GONE);

    // five codes an hour to one number and address, however they are asked for
    for _ in 0..3 {
        r.advance(Duration::minutes(1));
        assert_eq!(
            r.start(json!({"consumer_no": "C-1", "mobile": "+919876543210"}))
                .await
                .0,
            StatusCode::ACCEPTED
        );
    }
    r.advance(Duration::minutes(1));
    let (status, body) = r
        .start(json!({"consumer_no": "C-1", "mobile": "+919876543210"}))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "too_soon");
    // an hour after the first, one more
    r.advance(Duration::hours(1) - Duration::minutes(14));
    assert_eq!(
        r.start(json!({"consumer_no": "C-1", "mobile": "+919876543210"}))
            .await
            .0,
        StatusCode::ACCEPTED
    );
    assert_not_logged(&[&first, &second]);
}

#[tokio::test]
async fn five_wrong_codes_close_a_registration_even_to_the_right_code() {
    let r = rig().await;
    let (_, started) = r
        .start(json!({"consumer_no": "C-1", "mobile": "+919876543210"}))
        .await;
    let id = started["registration_id"].as_str().unwrap().to_string();
    let code = code_in(&r.texts().await[0]);
    let wrong = if code == "999999" { "999998" } else { "999999" };
    for _ in 0..5 {
        assert_eq!(
            r.verify(&id, wrong).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let (status, body) = r.verify(&id, &code).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["code"], "registration_closed");
    assert_eq!(r.resend(&id).await.0, StatusCode::GONE);
    // a malformed code is refused without being counted
    assert_eq!(
        r.verify("reg_x", "12ab56").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn five_failed_logins_lock_the_account_for_fifteen_minutes() {
    let r = rig().await;
    let (_, started) = r
        .start(json!({"consumer_no": "C-1", "mobile": "+919876543210"}))
        .await;
    let id = started["registration_id"].as_str().unwrap().to_string();
    let code = code_in(&r.texts().await[0]);
    assert_eq!(r.verify(&id, &code).await.0, StatusCode::OK);
    let password = password_in(&r.texts().await[1]);
    for _ in 0..5 {
        assert_eq!(
            r.login("C-1", "wrong password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = r.login("C-1", &password).await;
    assert_eq!(locked.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        locked,
        r.login("C-1", "wrong password").await,
        "locked looks like wrong"
    );
    r.advance(Duration::minutes(14));
    assert_eq!(r.login("C-1", &password).await.0, StatusCode::UNAUTHORIZED);
    r.advance(Duration::minutes(1));
    let (status, session) = r.login("C-1", &password).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    // a session lasts twelve hours
    let token = session["token"].as_str().unwrap().to_string();
    r.advance(Duration::hours(12));
    let (status, _) = r
        .send(Method::GET, "/api/v1/portal/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_not_logged(&[&code, &password, &token]);
}

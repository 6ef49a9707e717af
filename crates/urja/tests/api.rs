//! `urja up` serves the REST API: on the first start of a data directory it prints an admin
//! token once, then answers `GET /api/v1/meters` with that token over real HTTP (a plain
//! HTTP/1.1 request on a `TcpStream`); `urja admin token` prints tokens that work too. The
//! prepaid engine runs in it: the simulated consumers are moved to prepaid through the
//! head-end, and `urja pay` (the gateway's stand-in) recharges one through the signed webhook
//! and pays the postpaid one's bill. Customer care runs in it: a complaint registered through
//! the API reaches the OMS's webhook (listed in `webhooks.json`) signed, and the OMS's
//! completion closes it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `urja up` and the lines it prints.
struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Up {
    fn start(data: &Path) -> Up {
        Up::start_at(data, "127.49.0.1", 5)
    }

    /// `urja up --simulate <meters>` with the first simulated meter at `base`.
    fn start_at(data: &Path, base: &str, meters: u32) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_urja"))
            .args(["up", "--simulate", &meters.to_string(), "--listen"])
            .args(["127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(["--base-address", base, "--port", "0", "--no-outages"])
            .env_remove("URJA_MASTER_KEY")
            .env_remove("URJA_DATA")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("urja runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Up {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line starting with `prefix` (waiting up to a minute for it).
    fn line(&mut self, prefix: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.starts_with(prefix)) {
            return l.clone();
        }
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no line starting with {prefix:?}; printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The API's `host:port`.
    fn api(&mut self) -> String {
        let line = self.line("API: http://");
        line["API: http://".len()..]
            .split('/')
            .next()
            .unwrap()
            .to_string()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` on `addr` with an optional bearer token: (status, body).
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    send(addr, "GET", path, token, None)
}

/// `method` `path` on `addr` with an optional bearer token and JSON body: (status, body).
fn send(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the API accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let body = json.map_or_else(String::new, |j| {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{j}",
            j.len()
        )
    });
    let end = if json.is_some() { "" } else { "\r\n" };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n{body}{end}"
    )
    .unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    // A PDF's body is binary: read as text only to look at it.
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("a whole response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, body.to_string())
}

#[test]
fn up_serves_the_api_with_the_admin_token_it_printed_once() {
    let data = tempfile::tempdir().unwrap();
    let mut up = Up::start(data.path());
    let addr = up.api();
    let token_line = up.line("admin token: ");
    let token = token_line["admin token: ".len()..].trim().to_string();
    assert!(token.starts_with("urja_"), "{token_line}");
    assert!(
        up.seen.iter().any(|l| l.contains("cannot be shown again")),
        "{:?}",
        up.seen
    );

    let (status, body) = get(&addr, "/api/v1/meters", Some(&token));
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 5, "{json}");
    assert!(json["next_cursor"].is_null());
    let (status, body) = get(&addr, "/api/v1/meters", None);
    assert_eq!(status, 401);
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["code"], "unauthorized");
    let (status, _) = get(&addr, "/api/openapi.json", None);
    assert_eq!(status, 200);
    // The outage desk runs in `urja up`; its outages are on the API.
    let (status, body) = get(&addr, "/api/v1/outages?state=active", Some(&token));
    assert_eq!(status, 200, "{body}");
    up.stop();

    // only the hash is stored: the token is nowhere in the data directory
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "the token is in {}",
                path.display()
            );
        }
    }

    // a token made on the command line works on the next start, which makes no new admin token
    let out = Command::new(env!("CARGO_BIN_EXE_urja"))
        .args([
            "admin",
            "token",
            "--role",
            "reader",
            "--label",
            "wall screen",
            "--expires-days",
            "7",
            "--data",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("cannot be shown again"), "{stdout}");
    let reader = stdout
        .split_whitespace()
        .find(|w| w.starts_with("urja_"))
        .unwrap()
        .to_string();
    let mut up = Up::start(data.path());
    let addr = up.api();
    let (status, _) = get(&addr, "/api/v1/meters/nonexistent", Some(&reader));
    assert_eq!(status, 404);
    let (status, _) = get(&addr, "/api/v1/meters", Some(&token));
    assert_eq!(status, 200);
    assert!(
        !up.seen.iter().any(|l| l.starts_with("admin token")),
        "a second admin token: {:?}",
        up.seen
    );
    up.stop();

    let bad = Command::new(env!("CARGO_BIN_EXE_urja"))
        .args(["admin", "token", "--role", "root", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// GETs `path` until `done` holds of its JSON (`secs` at most).
fn poll(
    addr: &str,
    path: &str,
    token: &str,
    secs: u64,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = get(addr, path, Some(token));
        assert_eq!(status, 200, "{path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        if done(&json) {
            return json;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never got there: {json}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn pay(data: &Path, api: &str, consumer: &str, rupees: &str, id: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_urja"))
        .args([
            "pay",
            "--consumer",
            consumer,
            "--amount",
            rupees,
            "--id",
            id,
            "--api",
        ])
        .arg(format!("http://{api}"))
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn up_runs_prepaid_and_urja_pay_recharges_through_the_signed_webhook() {
    let data = tempfile::tempdir().unwrap();
    let mut up = Up::start_at(data.path(), "127.50.0.1", 10);
    let addr = up.api();
    let token_line = up.line("admin token: ");
    let token = token_line["admin token: ".len()..].trim().to_string();
    // Nine simulated consumers become prepaid through the head-end (mode, then reads); the
    // tenth, commercial, stays postpaid and gets last month's bill (provisional: the fleet
    // was read for a day only).
    let done = poll(&addr, "/api/v1/migrations", &token, 90, |j| {
        let items = j["items"].as_array().unwrap();
        items.len() == 9 && items.iter().all(|m| m["state"] == "completed")
    });
    let bills = poll(
        &addr,
        "/api/v1/consumers/C-URJ10000010/bills",
        &token,
        30,
        |j| !j.as_array().unwrap().is_empty(),
    );
    assert_eq!(bills[0]["provisional"], true, "{bills}");
    let id = bills[0]["id"].as_u64().unwrap();
    let (status, pdf) = get(&addr, &format!("/api/v1/bills/{id}/pdf"), Some(&token));
    assert_eq!(status, 200);
    assert!(pdf.starts_with("%PDF-"));
    let consumer = done["items"][0]["consumer_no"]
        .as_str()
        .unwrap()
        .to_string();
    let wallet = format!("/api/v1/consumers/{consumer}/wallet");
    let (_, body) = get(&addr, &wallet, Some(&token));
    assert!(body.contains("\"balance_paise\":50000"), "{body}");

    // The utility takes whole rupees: ₹250.50 is kept, refused (to be refunded).
    let (ok, out) = pay(data.path(), &addr, &consumer, "250.50", "pay_cli_0");
    assert!(ok, "{out}");
    assert!(out.contains("\"status\":\"refused\""), "{out}");
    let (ok, out) = pay(data.path(), &addr, &consumer, "250", "pay_cli_1");
    assert!(ok, "{out}");
    assert!(out.contains("\"status\":\"credited\""), "{out}");
    let (ok, out) = pay(data.path(), &addr, &consumer, "250", "pay_cli_1");
    assert!(ok, "{out}");
    assert!(out.contains("\"first_time\":false"), "{out}");
    let (_, body) = get(&addr, &wallet, Some(&token));
    assert!(body.contains("\"balance_paise\":75000"), "{body}");
    assert!(body.contains("\"ledger_checks\":true"), "{body}");
    // A made-up amount is refused by the CLI before anything is sent.
    let (ok, out) = pay(data.path(), &addr, &consumer, "12.345", "pay_cli_2");
    assert!(!ok, "{out}");

    // The postpaid consumer pays its bill through the same gateway: applied to the account,
    // oldest dues first, with a receipt; the statement shows the payment.
    let (ok, out) = pay(data.path(), &addr, "C-URJ10000010", "100", "pay_cli_post");
    assert!(ok, "{out}");
    assert!(out.contains("\"status\":\"applied\""), "{out}");
    assert!(out.contains("\"receipt_no\":\"R"), "{out}");
    let (status, statement) = get(
        &addr,
        "/api/v1/consumers/C-URJ10000010/statement",
        Some(&token),
    );
    assert_eq!(status, 200, "{statement}");
    assert!(statement.contains("pg/pay_cli_post"), "{statement}");

    // The consumer is told through the stand-ins: the recharge SMS and email are sent.
    let path = format!("/api/v1/notifications?consumer_no={consumer}");
    poll(&addr, &path, &token, 30, |j| {
        j["items"].as_array().unwrap().iter().any(|n| {
            n["kind"] == "recharge_confirmed" && n["channel"] == "sms" && n["state"] == "sent"
        }) && j["items"].as_array().unwrap().iter().any(|n| {
            n["kind"] == "recharge_confirmed" && n["channel"] == "email" && n["state"] == "sent"
        })
    });
    up.stop();
}

/// A webhook receiver on 127.0.0.1: every request's signature header and body, answered 204.
fn receiver() -> (String, mpsc::Receiver<(Option<String>, String)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut signature) = (0, None);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("x-urja-signature:") {
                    signature = Some(line["x-urja-signature:".len()..].trim().to_string());
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = stream.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            if tx
                .send((signature, String::from_utf8_lossy(&body).into_owned()))
                .is_err()
            {
                break;
            }
        }
    });
    (addr, rx)
}

#[test]
fn up_runs_customer_care_and_delivers_its_routed_messages_by_webhook() {
    let data = tempfile::tempdir().unwrap();
    let (hook, received) = receiver();
    let secret = "oms-shared-secret-0123";
    std::fs::write(
        data.path().join("webhooks.json"),
        format!(
            r#"{{"subscribers": [{{"name": "oms", "destination": "oms",
                 "url": "http://{hook}/urja", "secret": "{secret}"}}],
               "delivery": {{"poll_ms": 200}}}}"#
        ),
    )
    .unwrap();
    let mut up = Up::start_at(data.path(), "127.51.0.1", 2);
    let addr = up.api();
    let token_line = up.line("admin token: ");
    let token = token_line["admin token: ".len()..].trim().to_string();
    up.line("webhooks: delivering routed messages to oms (oms)");
    let (status, types) = get(&addr, "/api/v1/care/types", Some(&token));
    assert_eq!(status, 200, "{types}");
    assert!(types.contains("\"no_supply\""), "{types}");

    let (status, body) = send(
        &addr,
        "POST",
        "/api/v1/complaints",
        Some(&token),
        Some(
            r#"{"consumer_no": "C-URJ10000001", "type": "no_supply", "description": "Dark since noon"}"#,
        ),
    );
    assert_eq!(status, 201, "{body}");
    let complaint: serde_json::Value = serde_json::from_str(&body).unwrap();
    let crn = complaint["number"].as_str().unwrap().to_string();

    // the OMS receives it, signed with the shared secret
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (signature, body) = received.recv_timeout(left).expect("the OMS is called");
        if body.contains(&crn) {
            break (signature, body);
        }
    };
    let (signature, body) = delivered;
    model::signature::check(
        secret.as_bytes(),
        signature.as_deref(),
        body.as_bytes(),
        chrono::Utc::now(),
    )
    .expect("a good signature");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["destination"], "oms");
    assert_eq!(json["payload"]["notice"], "complaint_registered");

    // the OMS reports completion; the complaint closes and the consumer is told
    let (status, body) = send(
        &addr,
        "POST",
        &format!("/api/v1/complaints/{crn}/completion"),
        Some(&token),
        Some(r#"{"note": "Fuse replaced; supply restored"}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"state\":\"closed\""), "{body}");
    poll(
        &addr,
        "/api/v1/notifications?consumer_no=C-URJ10000001",
        &token,
        30,
        |j| {
            j["items"].as_array().unwrap().iter().any(|n| {
                n["kind"] == "case_closed" && n["channel"] == "sms" && n["state"] == "sent"
            })
        },
    );
    up.stop();
}

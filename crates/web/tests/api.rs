//! The REST API against `app(...)` on a real temporary SQLite store, through
//! `tower::ServiceExt::oneshot` (no socket): authentication and roles, the figures each
//! endpoint answers for data written through the store's API, paging, interval edits, the
//! exception queue, error shapes and the OpenAPI document.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use model::{
    BillingReading, DailyReading, Demand, EventCategory, EventKind, InstantaneousReading,
    IntervalReading, MeterEvent, MeterSerial, Quality,
};
use serde_json::{Value, json};
use store::{
    AlarmRow, EventRow, ExceptionRow, ExceptionState, IngestWrite, IntervalWrite, MeterRecord,
    Role, Store, silently,
};
use tower::ServiceExt;
use web::{AppState, app, issue_token};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The API's "now" in these tests.
const NOW: &str = "2026-12-01T06:30:00Z"; // 12:00 IST

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    app: Router,
    admin: String,
    operator: String,
    reader: String,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let now = at(NOW);
    let token = |role, label| {
        issue_token(&store, role, label, None, now - Duration::days(1))
            .unwrap()
            .secret
    };
    let admin = token(Role::Admin, "admin");
    let operator = token(Role::Operator, "ops desk");
    let reader = token(Role::Reader, "dashboard");
    let app = app(AppState::new(store.clone()).with_clock(move || now));
    Rig {
        _dir: dir,
        store,
        app,
        admin,
        operator,
        reader,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

impl Rig {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        Answer {
            status,
            headers,
            json,
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.send(Method::GET, uri, Some(&self.reader.clone()), None)
            .await
    }

    /// Every item of a paged list, following `next_cursor` with pages of `limit`.
    async fn walk(&self, uri: &str, limit: u32) -> (Vec<Value>, usize) {
        let sep = if uri.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page_uri = match &cursor {
                Some(c) => format!("{uri}{sep}limit={limit}&cursor={c}"),
                None => format!("{uri}{sep}limit={limit}"),
            };
            let a = self.get(&page_uri).await;
            assert_eq!(a.status, StatusCode::OK, "{page_uri}: {}", a.json);
            pages += 1;
            let page = a.json["items"].as_array().unwrap();
            assert!(page.len() <= limit as usize);
            items.extend(page.iter().cloned());
            match a.json["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => {
                    assert!(a.json["next_cursor"].is_null());
                    return (items, pages);
                }
            }
        }
    }
}

fn serial(s: &str) -> MeterSerial {
    MeterSerial::new(s).unwrap()
}

fn meter_record(s: &str) -> MeterRecord {
    MeterRecord {
        serial: serial(s),
        kind: "single-phase".into(),
        host: "127.10.0.1".into(),
        port: 4059,
        transport: "wrapper".into(),
        server_address: 1,
        dcu: Some("DCU-7".into()),
        group: "default".into(),
        system_title: *b"URJ\0\0\0\0\x01",
    }
}

fn interval(m: &str, end: DateTime<Utc>, wh: i64, quality: Vec<Quality>) -> IntervalReading {
    IntervalReading {
        meter: serial(m),
        interval_end: end,
        avg_voltage_v: Some(231.5),
        avg_current_a: Some(1.25),
        avg_phase_voltage_v: None,
        avg_phase_current_a: None,
        import_wh: wh,
        import_vah: wh + 10,
        export_wh: Some(0),
        export_vah: None,
        quality,
    }
}

fn write(store: &Store, w: IngestWrite) {
    store.mdm_write(&w, at("2026-12-01T05:00:00Z")).unwrap();
}

fn err_code(a: &Answer) -> &str {
    // Every error is {"code", "message"} and nothing else.
    let obj = a
        .json
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {}", a.json));
    assert_eq!(obj.len(), 2, "{}", a.json);
    assert!(!obj["message"].as_str().unwrap().is_empty());
    obj["code"].as_str().unwrap()
}

// --- authentication and roles ---------------------------------------------------------------

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let r = rig();
    let ok = r.get("/api/v1/meters").await;
    let refused = r.send(Method::GET, "/api/v1/meters", None, None).await;
    let missing = r.get("/api/v1/no-such-route").await;
    assert_eq!(
        (ok.status, refused.status, missing.status),
        (
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::NOT_FOUND
        )
    );
    for a in [&ok, &refused, &missing] {
        let h = |name: &str| a.headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(h("x-content-type-options"), Some("nosniff"));
        assert_eq!(h("x-frame-options"), Some("DENY"));
        assert_eq!(h("referrer-policy"), Some("no-referrer"));
        assert!(h("content-security-policy").is_some_and(|v| v.contains("frame-ancestors 'none'")));
        assert_eq!(h("cache-control"), Some("no-store"));
    }
}

#[tokio::test]
async fn every_route_needs_a_valid_token() {
    let r = rig();
    r.store
        .upsert_meter(&meter_record("M-1"), at(NOW), &silently)
        .unwrap();
    let now = at(NOW);
    let expired = issue_token(
        &r.store,
        Role::Admin,
        "old",
        Some(now - Duration::minutes(1)),
        now - Duration::days(2),
    )
    .unwrap();
    let revoked =
        issue_token(&r.store, Role::Admin, "gone", None, now - Duration::days(2)).unwrap();
    r.store
        .revoke_api_token(&revoked.token.id, now - Duration::hours(1))
        .unwrap();

    let missing = r.send(Method::GET, "/api/v1/meters", None, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(err_code(&missing), "unauthorized");
    assert!(
        missing.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = format!("urja_{}", "0".repeat(64));
    for bad in [
        wrong.as_str(),
        "",
        &expired.secret,
        &revoked.secret,
        &"x".repeat(5000),
    ] {
        let a = r.send(Method::GET, "/api/v1/meters", Some(bad), None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "token {bad:.12}…");
        assert_eq!(err_code(&a), "unauthorized");
    }
    // not a bearer scheme
    let req = Request::builder()
        .uri("/api/v1/meters")
        .header(header::AUTHORIZATION, format!("Basic {}", r.reader))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        r.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // the expired token was valid before its expiry
    let before = app(AppState::new(r.store.clone()).with_clock(move || now - Duration::hours(1)));
    let req = Request::builder()
        .uri("/api/v1/meters")
        .header(header::AUTHORIZATION, format!("bearer {}", expired.secret))
        .body(Body::empty())
        .unwrap();
    assert_eq!(before.oneshot(req).await.unwrap().status(), StatusCode::OK);

    for t in [&r.reader, &r.operator, &r.admin] {
        let a = r.send(Method::GET, "/api/v1/meters", Some(t), None).await;
        assert_eq!(a.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn roles_limit_what_a_token_may_do() {
    let r = rig();
    r.store
        .upsert_meter(&meter_record("M-1"), at(NOW), &silently)
        .unwrap();
    let end = "2026-12-01T00:15:00%2B05:30";
    let edit = json!({"version": 1, "import_wh": 5, "import_vah": 6, "reason": "x"});
    let command = json!({"id": "c1", "meter": "M-1", "command": {"kind": "disconnect"}});
    let reader = r.reader.clone();
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/api/v1/commands".into(),
            Some(command.clone()),
        ),
        (
            Method::POST,
            "/api/v1/command-groups".into(),
            Some(json!({"batch": "b", "meters": ["M-1"], "command": {"kind": "ping"}})),
        ),
        (
            Method::PUT,
            format!("/api/v1/meters/M-1/intervals/{end}"),
            Some(edit),
        ),
        (
            Method::POST,
            "/api/v1/exceptions/00/close".into(),
            Some(json!({"state": "resolved", "note": "n"})),
        ),
        (Method::GET, "/api/v1/tokens".into(), None),
    ];
    for (method, uri, body) in cases {
        let a = r.send(method.clone(), &uri, Some(&reader), body).await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "{method} {uri}: {}",
            a.json
        );
        assert_eq!(err_code(&a), "forbidden");
    }
    // an operator sends commands and edits, but does not manage tokens
    let a = r
        .send(Method::GET, "/api/v1/tokens", Some(&r.operator), None)
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = r
        .send(
            Method::POST,
            "/api/v1/commands",
            Some(&r.operator),
            Some(command),
        )
        .await;
    // allowed, but nothing runs commands in this server
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err_code(&a), "commands_unavailable");
}

#[tokio::test]
async fn an_admin_manages_tokens_and_a_revoked_one_stops_working() {
    let r = rig();
    let a = r
        .send(
            Method::POST,
            "/api/v1/tokens",
            Some(&r.admin.clone()),
            Some(json!({"role": "reader", "label": "billing export", "expires_days": 30})),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    let secret = a.json["secret"].as_str().unwrap().to_string();
    let id = a.json["token"]["id"].as_str().unwrap().to_string();
    assert_eq!(a.json["token"]["role"], "reader");
    assert_eq!(a.json["token"]["expires_at"], "2026-12-31T12:00:00+05:30");
    assert_eq!(
        r.send(Method::GET, "/api/v1/meters", Some(&secret), None)
            .await
            .status,
        StatusCode::OK
    );

    let (tokens, _) = {
        let admin = r.admin.clone();
        let a = r
            .send(Method::GET, "/api/v1/tokens?limit=2", Some(&admin), None)
            .await;
        assert_eq!(a.status, StatusCode::OK);
        let mut all: Vec<Value> = a.json["items"].as_array().unwrap().clone();
        let next = a.json["next_cursor"].as_str().unwrap().to_string();
        let b = r
            .send(
                Method::GET,
                &format!("/api/v1/tokens?limit=2&cursor={next}"),
                Some(&admin),
                None,
            )
            .await;
        all.extend(b.json["items"].as_array().unwrap().iter().cloned());
        assert!(b.json["next_cursor"].is_null());
        (all, ())
    };
    assert_eq!(tokens.len(), 4);
    assert!(
        tokens
            .iter()
            .all(|t| t.get("secret").is_none() && t.get("hash").is_none())
    );

    let del = r
        .send(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&r.admin.clone()),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.send(Method::GET, "/api/v1/meters", Some(&secret), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let del = r
        .send(
            Method::DELETE,
            "/api/v1/tokens/tok_nope",
            Some(&r.admin.clone()),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NOT_FOUND);
    let bad = r
        .send(
            Method::POST,
            "/api/v1/tokens",
            Some(&r.admin.clone()),
            Some(json!({"role": "root"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err_code(&bad), "invalid_token");
}

// --- meters -------------------------------------------------------------------------------

#[tokio::test]
async fn meters_come_from_the_registry() {
    let r = rig();
    let mut m = meter_record("M-0002");
    m.kind = "three-phase".into();
    m.transport = "hdlc".into();
    m.server_address = 17;
    m.dcu = None;
    r.store.upsert_meter(&m, at(NOW), &silently).unwrap();
    r.store
        .upsert_meter(&meter_record("M-0001"), at(NOW), &silently)
        .unwrap();

    let a = r.get("/api/v1/meters").await;
    assert_eq!(a.status, StatusCode::OK);
    let items = a.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["serial"], "M-0001");
    assert_eq!(items[0]["dcu"], "DCU-7");
    assert_eq!(items[1]["serial"], "M-0002");
    assert_eq!(items[1]["kind"], "three-phase");
    assert_eq!(items[1]["transport"], "hdlc");
    assert_eq!(items[1]["server_address"], 17);
    assert!(items[1]["dcu"].is_null());
    assert!(a.json["next_cursor"].is_null());

    let one = r.get("/api/v1/meters/M-0002").await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json["serial"], "M-0002");
    assert_eq!(one.json["port"], 4059);

    let missing = r.get("/api/v1/meters/M-9999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(err_code(&missing), "not_found");
    // a serial may not hold control characters or be longer than 32
    let bad = r.get("/api/v1/meters/M%07X").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(err_code(&bad), "invalid_serial");
    let long = r.get(&format!("/api/v1/meters/{}", "X".repeat(33))).await;
    assert_eq!(err_code(&long), "invalid_serial");
}

#[tokio::test]
async fn paging_walks_a_long_list_exactly_once() {
    let r = rig();
    let serials: BTreeSet<String> = (0..253).map(|i| format!("M-{i:05}")).collect();
    for s in &serials {
        r.store
            .upsert_meter(&meter_record(s), at(NOW), &silently)
            .unwrap();
    }
    let (items, pages) = r.walk("/api/v1/meters", 10).await;
    assert_eq!(pages, 26);
    let walked: Vec<String> = items
        .iter()
        .map(|m| m["serial"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(walked, serials.iter().cloned().collect::<Vec<_>>());

    // 3 days of intervals of one meter (288), pages of 50
    let start = at("2026-11-28T00:15:00Z");
    let rows: Vec<IntervalWrite> = (0..288)
        .map(|i| IntervalWrite::New {
            reading: interval("M-00001", start + Duration::minutes(15 * i), i, vec![]),
            method: None,
        })
        .collect();
    write(
        &r.store,
        IngestWrite {
            intervals: rows,
            ..IngestWrite::default()
        },
    );
    let (items, pages) = r
        .walk(
            "/api/v1/meters/M-00001/intervals?from=2026-11-28T00:00:00Z&to=2026-12-01T00:00:00Z",
            50,
        )
        .await;
    assert_eq!(pages, 6);
    let wh: Vec<i64> = items
        .iter()
        .map(|i| i["import_wh"].as_i64().unwrap())
        .collect();
    assert_eq!(wh, (0..288).collect::<Vec<_>>());

    // events sharing a time stamp across a page boundary are neither lost nor repeated
    let ev_at = at("2026-11-30T10:00:00Z");
    let events: Vec<EventRow> = (0..7u16)
        .map(|k| EventRow {
            event: MeterEvent {
                meter: serial("M-00001"),
                at: ev_at + Duration::minutes(i64::from(k / 3)),
                code: 100 + k,
                category: EventCategory::Other,
                kind: EventKind::Single,
                description: format!("event {k}"),
                quality: vec![],
            },
            class: "unknown".into(),
            severity: "low".into(),
        })
        .collect();
    write(
        &r.store,
        IngestWrite {
            events,
            ..IngestWrite::default()
        },
    );
    let (items, _) = r.walk("/api/v1/meters/M-00001/events", 2).await;
    let codes: Vec<i64> = items.iter().map(|e| e["code"].as_i64().unwrap()).collect();
    assert_eq!(codes, (100..107).collect::<Vec<_>>());

    // a cursor from one list is refused by another, and junk is refused
    let a = r.get("/api/v1/meters?limit=1").await;
    let cursor = a.json["next_cursor"].as_str().unwrap().to_string();
    let a = r
        .get(&format!("/api/v1/meters/M-00001/events?cursor={cursor}"))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(err_code(&a), "invalid_cursor");
    for q in ["limit=0", "limit=1001", "limit=-1", "limit=x", "cursor=zz"] {
        let a = r.get(&format!("/api/v1/meters?{q}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{q}");
        err_code(&a);
    }
    assert_eq!(
        r.get("/api/v1/meters?limit=1000").await.json["items"]
            .as_array()
            .unwrap()
            .len(),
        253
    );
}

// --- readings -----------------------------------------------------------------------------

#[tokio::test]
async fn intervals_answer_every_channel_flag_and_version_in_ist() {
    let r = rig();
    let end = at("2026-11-30T18:45:00Z"); // 00:15 IST
    let mut three = interval(
        "M-1",
        end + Duration::minutes(15),
        40,
        vec![Quality::Estimated],
    );
    three.avg_voltage_v = None;
    three.avg_current_a = None;
    three.avg_phase_voltage_v = Some([230.0, 231.0, 232.0]);
    three.avg_phase_current_a = Some([1.0, 2.0, 3.0]);
    three.export_vah = Some(4);
    write(
        &r.store,
        IngestWrite {
            intervals: vec![
                IntervalWrite::New {
                    reading: interval("M-1", end, 25, vec![Quality::ClockDoubtful]),
                    method: None,
                },
                IntervalWrite::New {
                    reading: three,
                    method: Some("linear".into()),
                },
                // another meter's interval is not in the answer
                IntervalWrite::New {
                    reading: interval("M-2", end, 99, vec![]),
                    method: None,
                },
            ],
            ..IngestWrite::default()
        },
    );
    let a = r
        .get("/api/v1/meters/M-1/intervals?from=2026-12-01T00:00:00%2B05:30&to=2026-12-01T01:00:00%2B05:30")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let items = a.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let first = &items[0];
    assert_eq!(first["interval_end"], "2026-12-01T00:15:00+05:30");
    assert_eq!(first["import_wh"], 25);
    assert_eq!(first["import_vah"], 35);
    assert_eq!(first["export_wh"], 0);
    assert!(first["export_vah"].is_null());
    assert_eq!(first["avg_voltage_v"], 231.5);
    assert_eq!(first["avg_current_a"], 1.25);
    assert_eq!(first["quality"], json!(["clock_doubtful"]));
    assert_eq!(first["version"], 1);
    assert!(first["estimation_method"].is_null());
    assert_eq!(first["received_at"], "2026-12-01T10:30:00+05:30");
    let second = &items[1];
    assert_eq!(second["interval_end"], "2026-12-01T00:30:00+05:30");
    assert_eq!(second["avg_phase_voltage_v"], json!([230.0, 231.0, 232.0]));
    assert_eq!(second["avg_phase_current_a"], json!([1.0, 2.0, 3.0]));
    assert_eq!(second["export_vah"], 4);
    assert_eq!(second["quality"], json!(["estimated"]));
    assert_eq!(second["estimation_method"], "linear");

    // the same range written with other offsets, and the unencoded `+` a query turns into a space
    for q in [
        "from=2026-11-30T18:30:00Z&to=2026-11-30T19:30:00Z",
        "from=2026-11-30T13:30:00-05:00&to=2026-11-30T14:30:00-05:00",
        "from=2026-12-01T00:00:00+05:30&to=2026-12-01T01:00:00+05:30",
    ] {
        let a = r.get(&format!("/api/v1/meters/M-1/intervals?{q}")).await;
        assert_eq!(
            a.json["items"].as_array().unwrap().len(),
            2,
            "{q}: {}",
            a.json
        );
    }
    // by default, the last day before now
    let a = r.get("/api/v1/meters/M-1/intervals").await;
    assert_eq!(a.json["items"].as_array().unwrap().len(), 2);
    // one interval by its end
    let one = r
        .get("/api/v1/meters/M-1/intervals/2026-12-01T00:15:00%2B05:30")
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json["import_wh"], 25);
    let none = r
        .get("/api/v1/meters/M-1/intervals/2026-12-01T00:20:00Z")
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);

    // ranges are checked
    for (q, code) in [
        (
            "from=2026-12-01T01:00:00Z&to=2026-12-01T00:00:00Z",
            "invalid_range",
        ),
        (
            "from=2026-08-01T00:00:00Z&to=2026-12-01T00:00:00Z",
            "invalid_range",
        ),
        ("from=yesterday", "invalid_time"),
        ("from=2026-12-01T00:00:00", "invalid_time"),
    ] {
        let a = r.get(&format!("/api/v1/meters/M-1/intervals?{q}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(err_code(&a), code, "{q}");
    }
}

#[tokio::test]
async fn an_edit_makes_a_new_version_and_a_stale_edit_is_refused() {
    let r = rig();
    let end = at("2026-11-30T18:45:00Z");
    write(
        &r.store,
        IngestWrite {
            intervals: vec![IntervalWrite::New {
                reading: interval(
                    "M-1",
                    end,
                    25,
                    vec![Quality::Suspect, Quality::ClockDoubtful],
                ),
                method: None,
            }],
            ..IngestWrite::default()
        },
    );
    let uri = "/api/v1/meters/M-1/intervals/2026-12-01T00:15:00%2B05:30";
    let op = r.operator.clone();
    let a = r
        .send(
            Method::PUT,
            uri,
            Some(&op),
            Some(json!({"version": 1, "import_wh": 30, "import_vah": 41, "reason": "meter swap, read from the old register"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["version"], 2);
    assert_eq!(a.json["import_wh"], 30);
    assert_eq!(a.json["import_vah"], 41);
    assert_eq!(a.json["export_wh"], 0, "absent exports are kept");
    assert_eq!(
        a.json["avg_voltage_v"], 231.5,
        "the other channels are kept"
    );
    assert_eq!(a.json["quality"], json!(["clock_doubtful", "edited"]));
    assert_eq!(a.json["estimation_method"], "edit");

    // the store has the new version, and the old one in the history
    let stored = r.store.mdm_intervals(&serial("M-1"), end, end).unwrap();
    assert_eq!(stored[0].version, 2);
    assert_eq!(stored[0].reading.import_wh, 30);
    let h = r.get(&format!("{uri}/history")).await;
    assert_eq!(h.status, StatusCode::OK);
    let versions: Vec<(i64, i64)> = h.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["import_wh"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [(1, 25), (2, 30)]);
    // the edit says who made it and why; the meter's reading does not
    let items = h.json["items"].as_array().unwrap();
    assert!(items[0].get("edit").is_none(), "{}", items[0]);
    assert_eq!(
        items[1]["edit"]["reason"],
        "meter swap, read from the old register"
    );
    assert!(
        items[1]["edit"]["edited_by"]
            .as_str()
            .unwrap()
            .contains("token")
    );
    assert!(
        items[1]["edit"]["edited_at"]
            .as_str()
            .unwrap()
            .ends_with("+05:30")
    );

    // the same edit again names a version that is gone
    let stale = r
        .send(
            Method::PUT,
            uri,
            Some(&op),
            Some(json!({"version": 1, "import_wh": 31, "import_vah": 41, "reason": "again"})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(err_code(&stale), "stale_version");
    assert_eq!(
        r.store.mdm_intervals(&serial("M-1"), end, end).unwrap()[0]
            .reading
            .import_wh,
        30
    );

    for (body, status, code) in [
        (
            json!({"version": 2, "import_wh": 31, "import_vah": 41, "reason": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_edit",
        ),
        (
            json!({"version": 2, "import_wh": -1, "import_vah": 41, "reason": "r"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_edit",
        ),
        (
            json!({"version": 2, "import_wh": 1, "import_vah": 41}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"version": 2, "import_wh": 1, "import_vah": 1, "reason": "r", "quality": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ] {
        let a = r
            .send(Method::PUT, uri, Some(&op), Some(body.clone()))
            .await;
        assert_eq!(a.status, status, "{body}");
        assert_eq!(err_code(&a), code, "{body}");
    }
    let missing = r
        .send(
            Method::PUT,
            "/api/v1/meters/M-1/intervals/2026-12-01T00:20:00Z",
            Some(&op),
            Some(json!({"version": 1, "import_wh": 1, "import_vah": 1, "reason": "r"})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let h = r
        .get("/api/v1/meters/M-1/intervals/2026-12-01T00:20:00Z/history")
        .await;
    assert_eq!(h.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn daily_billing_instantaneous_events_and_alarms_answer_what_was_stored() {
    let r = rig();
    let m = serial("M-1");
    let midnight = at("2026-11-29T18:30:00Z"); // 00:00 IST on 30 Nov
    let daily: Vec<DailyReading> = (0..2)
        .map(|d| DailyReading {
            meter: m.clone(),
            captured_at: midnight + Duration::days(d),
            import_wh: 10_000 + d * 5_000,
            import_vah: 11_000 + d * 5_000,
            export_wh: None,
            export_vah: None,
            quality: vec![],
        })
        .collect();
    let billing = BillingReading {
        meter: m.clone(),
        billing_date: at("2026-10-31T18:30:00Z"),
        avg_power_factor: Some(0.97),
        import_wh: 123_456,
        tod_import_wh: vec![100_000, 23_456],
        import_vah: 130_000,
        tod_import_vah: vec![],
        md_w: Some(Demand {
            value: 2_500.0,
            at: Some(at("2026-10-20T13:15:00Z")),
        }),
        tod_md_w: vec![],
        md_va: None,
        tod_md_va: vec![],
        power_on_minutes: Some(44_000),
        export_wh: None,
        export_vah: None,
        reactive_q1_q4_varh: Some([1, 2, 3, 4]),
        quality: vec![],
    };
    let mut older = InstantaneousReading::empty(m.clone());
    older.at = Some(at("2026-12-01T04:00:00Z"));
    older.voltage_v = Some(229.0);
    let mut latest = InstantaneousReading::empty(m.clone());
    latest.at = Some(at("2026-12-01T05:00:00Z"));
    latest.voltage_v = Some(240.5);
    latest.import_wh = Some(99_999);
    latest.md_w = Some(Demand {
        value: 3_000.0,
        at: None,
    });
    let event = EventRow {
        event: MeterEvent {
            meter: m.clone(),
            at: at("2026-11-30T08:00:00Z"),
            code: 201,
            category: EventCategory::Other,
            kind: EventKind::Occurrence,
            description: "magnet tamper".into(),
            quality: vec![Quality::ClockDoubtful],
        },
        class: "tamper".into(),
        severity: "high".into(),
    };
    let alarm = AlarmRow {
        meter: m.clone(),
        at: at("2026-11-30T08:00:05Z"),
        kind: "alarm".into(),
        detail: r#"{"codes":[201]}"#.into(),
    };
    write(
        &r.store,
        IngestWrite {
            daily,
            billing: vec![billing],
            instantaneous: vec![older, latest],
            events: vec![event],
            alarms: vec![alarm],
            ..IngestWrite::default()
        },
    );

    let a = r.get("/api/v1/meters/M-1/daily").await;
    assert_eq!(a.status, StatusCode::OK);
    let items = a.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["captured_at"], "2026-11-30T00:00:00+05:30");
    assert_eq!(items[0]["import_wh"], 10_000);
    assert_eq!(items[1]["import_vah"], 16_000);

    let a = r.get("/api/v1/meters/M-1/billing").await;
    let b = &a.json["items"][0];
    assert_eq!(b["billing_date"], "2026-11-01T00:00:00+05:30");
    assert_eq!(b["import_wh"], 123_456);
    assert_eq!(b["tod_import_wh"], json!([100_000, 23_456]));
    assert_eq!(
        b["md_w"],
        json!({"value": 2500.0, "at": "2026-10-20T18:45:00+05:30"})
    );
    assert_eq!(b["reactive_q1_q4_varh"], json!([1, 2, 3, 4]));
    assert_eq!(b["avg_power_factor"], 0.97);

    let a = r.get("/api/v1/meters/M-1/instantaneous").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["at"], "2026-12-01T10:30:00+05:30");
    assert_eq!(a.json["voltage_v"], 240.5);
    assert_eq!(a.json["import_wh"], 99_999);
    assert_eq!(a.json["md_w"], json!({"value": 3000.0, "at": null}));
    assert!(a.json["frequency_hz"].is_null());
    let none = r.get("/api/v1/meters/M-2/instantaneous").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(err_code(&none), "not_found");

    let a = r.get("/api/v1/meters/M-1/events").await;
    let e = &a.json["items"][0];
    assert_eq!(e["at"], "2026-11-30T13:30:00+05:30");
    assert_eq!(e["code"], 201);
    assert_eq!(e["category"], "other");
    assert_eq!(e["kind"], "occurrence");
    assert_eq!(e["severity"], "high");
    assert_eq!(e["description"], "magnet tamper");
    assert_eq!(e["quality"], json!(["clock_doubtful"]));

    let a = r.get("/api/v1/meters/M-1/alarms").await;
    let al = &a.json["items"][0];
    assert_eq!(al["at"], "2026-11-30T13:30:05+05:30");
    assert_eq!(al["kind"], "alarm");
    assert_eq!(al["detail"], json!({"codes": [201]}));

    // outside the range: nothing
    let a = r
        .get("/api/v1/meters/M-1/events?from=2026-11-30T08:00:01Z&to=2026-12-01T00:00:00Z")
        .await;
    assert_eq!(a.json["items"], json!([]));
}

// --- exceptions ---------------------------------------------------------------------------

#[tokio::test]
async fn the_exception_queue_filters_and_closes_with_a_note() {
    let r = rig();
    let exception = |m: &str, rule: &str, hour: i64| ExceptionRow {
        meter: serial(m),
        rule: rule.into(),
        from: at("2026-11-30T00:00:00Z") + Duration::hours(hour),
        to: at("2026-11-30T00:15:00Z") + Duration::hours(hour),
        severity: "medium".into(),
        detail: format!("{rule} failed"),
        state: ExceptionState::Open,
        created_at: at(NOW),
        closed_by: None,
        note: None,
    };
    write(
        &r.store,
        IngestWrite {
            exceptions: vec![
                exception("M-1", "spike", 0),
                exception("M-1", "zero_consumption", 1),
                exception("M-2", "spike", 2),
            ],
            ..IngestWrite::default()
        },
    );
    let all = r.get("/api/v1/exceptions").await;
    assert_eq!(all.json["items"].as_array().unwrap().len(), 3);
    let (walked, pages) = r.walk("/api/v1/exceptions", 2).await;
    assert_eq!((walked.len(), pages), (3, 2));
    let m1 = r.get("/api/v1/exceptions?meter=M-1&state=open").await;
    let items = m1.json["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["rule"], "spike");
    assert_eq!(items[0]["from"], "2026-11-30T05:30:00+05:30");
    assert_eq!(items[0]["state"], "open");

    let id = items[0]["id"].as_str().unwrap();
    let uri = format!("/api/v1/exceptions/{id}/close");
    let op = r.operator.clone();
    let no_note = r
        .send(
            Method::POST,
            &uri,
            Some(&op),
            Some(json!({"state": "resolved", "note": ""})),
        )
        .await;
    assert_eq!(no_note.status, StatusCode::UNPROCESSABLE_ENTITY);
    let reopen = r
        .send(
            Method::POST,
            &uri,
            Some(&op),
            Some(json!({"state": "open", "note": "n"})),
        )
        .await;
    assert_eq!(reopen.status, StatusCode::UNPROCESSABLE_ENTITY);
    let closed = r
        .send(
            Method::POST,
            &uri,
            Some(&op),
            Some(json!({"state": "resolved", "note": "CT ratio corrected on site"})),
        )
        .await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT, "{}", closed.json);
    let again = r
        .send(
            Method::POST,
            &uri,
            Some(&op),
            Some(json!({"state": "dismissed", "note": "n"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let resolved = r.get("/api/v1/exceptions?state=resolved").await;
    let items = resolved.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["note"], "CT ratio corrected on site");
    assert!(items[0]["closed_by"].as_str().unwrap().contains("ops desk"));
    assert_eq!(
        r.get("/api/v1/exceptions?state=open").await.json["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let bad = r.get("/api/v1/exceptions?state=pending").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad_id = r
        .send(
            Method::POST,
            "/api/v1/exceptions/nothex/close",
            Some(&op),
            Some(json!({"state": "resolved", "note": "n"})),
        )
        .await;
    assert_eq!(bad_id.status, StatusCode::BAD_REQUEST);
}

// --- errors and the document --------------------------------------------------------------

#[tokio::test]
async fn errors_are_json_with_a_code_and_a_message() {
    let r = rig();
    let op = r.operator.clone();
    let a = r.get("/api/v1/nothing-here").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(err_code(&a), "not_found");
    let a = r
        .send(Method::DELETE, "/api/v1/meters", Some(&op), None)
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(err_code(&a), "method_not_allowed");
    // malformed JSON, and no JSON content type
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/commands")
        .header(header::AUTHORIZATION, format!("Bearer {op}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"id\": "))
        .unwrap();
    let res = r.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["code"], "malformed_body");
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/exceptions/00/close")
        .header(header::AUTHORIZATION, format!("Bearer {op}"))
        .body(Body::from("{}"))
        .unwrap();
    let res = r.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // a body too large is refused before it is read whole
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/tokens")
        .header(header::AUTHORIZATION, format!("Bearer {}", r.admin))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!(
            "{{\"label\": \"{}\"}}",
            "x".repeat(1 << 20)
        )))
        .unwrap();
    let res = r.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// Every operation the API has, as (method, path) in the OpenAPI document.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/meters"),
    ("get", "/api/v1/meters/{serial}"),
    ("get", "/api/v1/meters/{serial}/intervals"),
    ("get", "/api/v1/meters/{serial}/intervals/{end}"),
    ("put", "/api/v1/meters/{serial}/intervals/{end}"),
    ("get", "/api/v1/meters/{serial}/intervals/{end}/history"),
    ("get", "/api/v1/meters/{serial}/daily"),
    ("get", "/api/v1/meters/{serial}/billing"),
    ("get", "/api/v1/meters/{serial}/instantaneous"),
    ("get", "/api/v1/meters/{serial}/events"),
    ("get", "/api/v1/meters/{serial}/alarms"),
    ("get", "/api/v1/consumers/{consumer_no}/daily"),
    ("get", "/api/v1/consumers/{consumer_no}/determinants"),
    ("get", "/api/v1/completeness"),
    ("get", "/api/v1/network/{node}/meters"),
    ("get", "/api/v1/notices"),
    ("get", "/api/v1/consumers/{consumer_no}/wallet"),
    ("get", "/api/v1/consumers/{consumer_no}/ledger"),
    ("get", "/api/v1/consumers/{consumer_no}/payments"),
    ("post", "/api/v1/consumers/{consumer_no}/emergency-credit"),
    ("post", "/api/v1/payments/{gateway}/webhook"),
    ("post", "/api/v1/payments/import"),
    ("get", "/api/v1/work-orders"),
    ("post", "/api/v1/work-orders"),
    ("get", "/api/v1/work-orders/{number}"),
    ("post", "/api/v1/work-orders/{number}/assign"),
    ("post", "/api/v1/work-orders/{number}/complete"),
    ("post", "/api/v1/work-orders/{number}/resolve"),
    ("post", "/api/v1/work-orders/{number}/cancel"),
    ("get", "/api/v1/connections"),
    ("post", "/api/v1/connections"),
    ("get", "/api/v1/connections/{number}"),
    ("get", "/api/v1/consumers/{consumer_no}"),
    ("get", "/api/v1/consumers/{consumer_no}/history"),
    ("get", "/api/v1/receipts/{receipt_no}"),
    ("get", "/api/v1/consumers/{consumer_no}/receipts"),
    ("get", "/api/v1/consumers/{consumer_no}/statement"),
    ("get", "/api/v1/consumers/{consumer_no}/contact"),
    ("put", "/api/v1/consumers/{consumer_no}/contact"),
    ("get", "/api/v1/notifications"),
    ("get", "/api/v1/notifications/{seq}"),
    ("post", "/api/v1/portal/registrations"),
    ("post", "/api/v1/portal/registrations/{id}/verify"),
    ("post", "/api/v1/portal/registrations/{id}/resend"),
    ("post", "/api/v1/portal/login"),
    ("post", "/api/v1/portal/password"),
    ("get", "/api/v1/portal/me"),
    ("get", "/api/v1/consumers/{consumer_no}/bills"),
    ("get", "/api/v1/bills/{id}/pdf"),
    ("get", "/api/v1/consumers/{consumer_no}/tamper-periods"),
    ("post", "/api/v1/consumers/{consumer_no}/tamper-periods"),
    ("post", "/api/v1/billing-cycles/{day}/run"),
    ("put", "/api/v1/consumers/{consumer_no}/billing"),
    ("get", "/api/v1/tariffs"),
    ("post", "/api/v1/tariffs"),
    ("get", "/api/v1/care/types"),
    ("get", "/api/v1/care/ageing"),
    ("get", "/api/v1/service-requests"),
    ("post", "/api/v1/service-requests"),
    ("get", "/api/v1/service-requests/{srn}"),
    ("post", "/api/v1/service-requests/{srn}/updates"),
    ("post", "/api/v1/service-requests/{srn}/completion"),
    ("get", "/api/v1/complaints"),
    ("post", "/api/v1/complaints"),
    ("get", "/api/v1/complaints/{crn}"),
    ("post", "/api/v1/complaints/{crn}/updates"),
    ("post", "/api/v1/complaints/{crn}/completion"),
    ("get", "/api/v1/disconnections"),
    ("get", "/api/v1/disconnections/{id}"),
    ("get", "/api/v1/migrations"),
    ("post", "/api/v1/migrations"),
    ("get", "/api/v1/migrations/{id}"),
    ("get", "/api/v1/exceptions"),
    ("post", "/api/v1/exceptions/{id}/close"),
    ("post", "/api/v1/commands"),
    ("get", "/api/v1/commands/{id}"),
    ("post", "/api/v1/command-groups"),
    ("get", "/api/v1/command-groups/{batch}"),
    ("get", "/api/v1/tokens"),
    ("post", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{id}"),
    ("get", "/api/v1/outages"),
    ("get", "/api/v1/outages/{id}"),
    ("post", "/api/v1/outages/{id}/ping"),
    ("post", "/api/v1/oms/ping"),
    ("get", "/api/v1/oms/ping/{batch}"),
];

/// The routes that take no bearer token.
const UNAUTHENTICATED: &[&str] = &[
    "/api/v1/payments/{gateway}/webhook",
    "/api/v1/portal/registrations",
    "/api/v1/portal/registrations/{id}/verify",
    "/api/v1/portal/registrations/{id}/resend",
    "/api/v1/portal/login",
];

#[tokio::test]
async fn the_openapi_document_is_public_and_lists_every_route() {
    let r = rig();
    let a = r.send(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/json");
    let doc = a.json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.clone(), path.clone()));
            // every operation needs the bearer token and documents its errors; the payment
            // gateway's webhook is authenticated by its signature instead, the portal's
            // registration and login by nothing, and its other routes by a consumer session
            if UNAUTHENTICATED.contains(&path.as_str()) {
                assert!(op.get("security").is_none(), "{method} {path}");
            } else if path.starts_with("/api/v1/portal/") {
                assert_eq!(op["security"], json!([{"consumer": []}]), "{method} {path}");
            } else {
                assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
            }
            if !UNAUTHENTICATED.contains(&path.as_str()) || path.ends_with("/webhook") {
                assert!(op["responses"]["401"].is_object(), "{method} {path}");
            }
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer"})
    );
    for schema in [
        "ErrorBody",
        "Interval",
        "IntervalEdit",
        "Command",
        "CommandSubmission",
        "MeterPage",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }

    // and every documented operation is served: without a token each answers 401 (not 404
    // or 405), and those that need none answer their own refusal of an empty body
    for (method, path) in ROUTES {
        let uri = path
            .replace("{serial}", "M-1")
            .replace("{end}", "2026-12-01T00:15:00Z")
            .replace("{id}", "x")
            .replace("{seq}", "1")
            .replace("{batch}", "b");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let a = r.send(m, &uri, None, Some(json!({}))).await;
        if UNAUTHENTICATED.contains(path) && !path.ends_with("/webhook") {
            assert!(
                a.status.is_client_error()
                    && ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&a.status),
                "{method} {uri}: {}",
                a.status
            );
        } else {
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn a_prepaid_wallet_and_its_ledger_page_by_page() {
    use store::prepaid::NewEntry;
    let r = rig();
    let t = at("2026-12-01T04:30:00Z");
    r.store.wallet_open("C-9", t).unwrap();
    for (i, amount) in [50_000i64, -1_234, -1_250, -1_300].iter().enumerate() {
        let cause = format!("cause/{i}");
        r.store
            .wallet_post(
                &NewEntry {
                    consumer_no: "C-9",
                    cause: &cause,
                    kind: if *amount > 0 {
                        "recharge"
                    } else {
                        "daily_charge"
                    },
                    amount: model::Paise(*amount),
                    detail: r#"{"day":"2026-12-01"}"#,
                },
                t,
            )
            .unwrap();
    }
    let w = r.get("/api/v1/consumers/C-9/wallet").await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.json);
    assert_eq!(w.json["balance_paise"], 46_216);
    assert_eq!(w.json["balance"], "₹462.16");
    assert_eq!(w.json["ledger_checks"], true);
    let page = r.get("/api/v1/consumers/C-9/ledger?limit=3").await;
    assert_eq!(page.status, StatusCode::OK);
    let items = page.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["kind"], "recharge");
    assert_eq!(items[1]["amount"], "-₹12.34");
    assert_eq!(items[1]["detail"]["day"], "2026-12-01");
    assert!(items[0]["at"].as_str().unwrap().ends_with("+05:30"));
    let cursor = page.json["next_cursor"].as_str().unwrap();
    let rest = r
        .get(&format!(
            "/api/v1/consumers/C-9/ledger?limit=3&cursor={cursor}"
        ))
        .await;
    let rest = rest.json["items"].as_array().unwrap().clone();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["balance_after_paise"], 46_216);
    assert_eq!(
        r.get("/api/v1/consumers/C-404/wallet").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        r.get("/api/v1/consumers/C-404/ledger").await.status,
        StatusCode::NOT_FOUND
    );
}

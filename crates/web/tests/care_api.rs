//! Customer care through the REST API over a real store (use cases 19 and 20): a service
//! request from registration to closure with the consumer record changed and the consumer told
//! once at each end; a complaint routed to OMS, completed by OMS through the inbound endpoint,
//! closed, reopened and closed again; the SLA and ageing on an injected clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use model::MeterSerial;
use serde_json::{Value, json};
use store::mdm::{Consumer, ServicePoint};
use store::{Role, Store};
use tower::ServiceExt;
use web::{AppState, app, issue_token};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const START: &str = "2026-12-01T06:30:00Z"; // 12:00 IST
const OLD_MOBILE: &str = "+919812345678";
const NEW_MOBILE: &str = "+919900000001";

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    app: Router,
    clock: Arc<AtomicI64>,
    operator: String,
    reader: String,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let start = at(START);
    care::catalogue::seed_defaults(&store).unwrap();
    let since = start - Duration::days(100);
    store
        .mdm_put_consumer(
            &Consumer {
                consumer_no: "C-1".into(),
                name: "Asha Rao".into(),
                category: "residential".into(),
                net_metered: false,
            },
            since,
        )
        .unwrap();
    store
        .mdm_put_service_point(&ServicePoint {
            id: "SP-1".into(),
            address: "12 MG Road, Pune".into(),
            sanctioned_load_w: 3000,
        })
        .unwrap();
    store.mdm_connect_consumer("SP-1", "C-1", since).unwrap();
    store
        .mdm_install_meter(&MeterSerial::new("M-1").unwrap(), "SP-1", since)
        .unwrap();
    store
        .contact_put("C-1", Some(OLD_MOBILE), Some("asha@example.in"), since)
        .unwrap();
    let token = |role, label| {
        issue_token(&store, role, label, None, since)
            .unwrap()
            .secret
    };
    let operator = token(Role::Operator, "care desk");
    let reader = token(Role::Reader, "dashboard");
    let clock = Arc::new(AtomicI64::new(start.timestamp_millis()));
    let c = clock.clone();
    let app = app(AppState::new(store.clone())
        .with_clock(move || DateTime::from_timestamp_millis(c.load(Ordering::SeqCst)).unwrap()));
    Rig {
        _dir: dir,
        store,
        app,
        clock,
        operator,
        reader,
    }
}

impl Rig {
    fn advance(&self, by: Duration) {
        self.clock
            .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, uri: &str) -> Value {
        let (status, json) = self
            .send(Method::GET, uri, &self.reader.clone(), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{uri}: {json}");
        json
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, uri, &self.operator.clone(), Some(body))
            .await
    }

    /// The consumer's notifications as (kind, channel, recipient, body).
    fn told(&self) -> Vec<(String, String, String, String)> {
        self.store
            .notifications(Some("C-1"), None, 0, 100)
            .unwrap()
            .into_iter()
            .map(|n| (n.kind, n.channel.name().to_string(), n.recipient, n.body))
            .collect()
    }
}

#[tokio::test]
async fn a_contact_change_request_from_registration_to_closure() {
    let r = rig();
    let types = r.get("/api/v1/care/types").await;
    let contact = types["service_requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "contact_change")
        .unwrap();
    assert_eq!(contact["applies"], "contact");
    assert_eq!(contact["sla_hours"], 24);

    let request = json!({
        "consumer_no": "C-1",
        "type": "contact_change",
        "description": "New mobile number",
        "change": {"mobile": NEW_MOBILE},
    });
    let (status, _) = r
        .send(
            Method::POST,
            "/api/v1/service-requests",
            &r.reader.clone(),
            Some(request.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, bad) = r
        .post(
            "/api/v1/service-requests",
            json!({"consumer_no": "C-1", "type": "contact_change", "description": "x",
                   "change": {"mobile": "12345"}}),
        )
        .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_change"))
    );
    let (status, unknown) = r
        .post(
            "/api/v1/service-requests",
            json!({"consumer_no": "C-404", "type": "contact_change", "description": "x",
                   "change": {"mobile": NEW_MOBILE}}),
        )
        .await;
    assert_eq!(
        (status, unknown["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_consumer"))
    );

    // 19.2–19.3: registered under an SRN and acknowledged
    let (status, sr) = r.post("/api/v1/service-requests", request).await;
    assert_eq!(status, StatusCode::CREATED, "{sr}");
    assert_eq!(sr["number"], "SR-2026-000001");
    assert_eq!(sr["state"], "open");
    assert_eq!(sr["due_at"], "2026-12-02T12:00:00+05:30");
    assert_eq!(sr["overdue"], false);
    assert!(sr["opened_by"].as_str().unwrap().contains("care desk"));
    let told = r.told();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told.iter().all(|t| t.0 == "case_registered"));
    assert!(
        told.iter()
            .any(|t| t.1 == "sms" && t.2 == OLD_MOBILE && t.3.contains("SR-2026-000001"))
    );
    assert!(
        told.iter()
            .any(|t| t.1 == "email" && t.2 == "asha@example.in")
    );

    // 19.4: taken up and resolved; the record changes only at the resolution
    let uri = "/api/v1/service-requests/SR-2026-000001/updates";
    r.advance(Duration::hours(2));
    let (status, started) = r.post(uri, json!({"action": "start"})).await;
    assert_eq!(
        (status, started["state"].as_str()),
        (StatusCode::OK, Some("in_progress"))
    );
    assert_eq!(
        r.store.contact("C-1").unwrap().unwrap().mobile.as_deref(),
        Some(OLD_MOBILE)
    );
    let (status, early) = r
        .post(uri, json!({"action": "close", "note": "done"}))
        .await;
    assert_eq!(
        (status, early["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_allowed"))
    );
    let (status, no_note) = r.post(uri, json!({"action": "resolve"})).await;
    assert_eq!(
        (status, no_note["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("note_needed"))
    );
    let (status, nonsense) = r.post(uri, json!({"action": "finish", "note": "x"})).await;
    assert_eq!(
        (status, nonsense["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_action"))
    );
    r.advance(Duration::hours(1));
    let (status, resolved) = r
        .post(
            uri,
            json!({"action": "resolve", "note": "Verified with the consumer's ID"}),
        )
        .await;
    assert_eq!(
        (status, resolved["state"].as_str()),
        (StatusCode::OK, Some("resolved")),
        "{resolved}"
    );
    let contact = r.store.contact("C-1").unwrap().unwrap();
    assert_eq!(contact.mobile.as_deref(), Some(NEW_MOBILE));
    assert_eq!(
        contact.email.as_deref(),
        Some("asha@example.in"),
        "the email is kept"
    );

    // 19.5: closed, the consumer told once, at the new number
    let (status, closed) = r
        .post(
            uri,
            json!({"action": "close", "note": "Your mobile number is now changed."}),
        )
        .await;
    assert_eq!(
        (status, closed["state"].as_str()),
        (StatusCode::OK, Some("closed"))
    );
    let (status, _) = r
        .post(uri, json!({"action": "close", "note": "again"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let told = r.told();
    assert_eq!(told.len(), 4, "{told:?}");
    let closing: Vec<_> = told.iter().filter(|t| t.0 == "case_closed").collect();
    assert_eq!(closing.len(), 2);
    assert!(closing.iter().any(|t| t.1 == "sms" && t.2 == NEW_MOBILE));
    assert!(closing.iter().all(|t| t.3.contains("SR-2026-000001")));

    let one = r.get("/api/v1/service-requests/SR-2026-000001").await;
    let steps: Vec<_> = one["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["action"].as_str().unwrap(), u["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("register", "open"),
            ("start", "in_progress"),
            ("resolve", "resolved"),
            ("close", "closed")
        ]
    );
    assert_eq!(one["resolved_at"], "2026-12-01T15:00:00+05:30");
    assert_eq!(
        one["change"],
        json!({"field": "contact", "mobile": NEW_MOBILE, "email": null})
    );
    let (status, _) = r
        .send(
            Method::GET,
            "/api/v1/complaints/SR-2026-000001",
            &r.reader.clone(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // a name change applies to the MDM's consumer record
    let (_, sr) = r
        .post(
            "/api/v1/service-requests",
            json!({"consumer_no": "C-1", "type": "name_change", "description": "Marriage",
                   "change": {"name": "Asha Kulkarni"}}),
        )
        .await;
    assert_eq!(sr["number"], "SR-2026-000002");
    let (status, _) = r
        .post(
            "/api/v1/service-requests/SR-2026-000002/updates",
            json!({"action": "resolve", "note": "Certificate seen"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        r.store.mdm_consumer("C-1").unwrap().unwrap().name,
        "Asha Kulkarni"
    );

    // every step went to the CRM destination too
    let crm = r.store.mdm_notices(Some("crm"), 0, 100).unwrap();
    assert_eq!(crm.len(), 6);
}

#[tokio::test]
async fn a_no_supply_complaint_goes_to_oms_which_completes_it() {
    let r = rig();
    let (status, cr) = r
        .post(
            "/api/v1/complaints",
            json!({"consumer_no": "C-1", "type": "no_supply", "description": "No supply since 11:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cr}");
    assert_eq!(cr["number"], "CR-2026-000001");
    assert_eq!(cr["state"], "in_progress");
    assert_eq!(cr["route"], "oms");
    assert_eq!(cr["due_at"], "2026-12-01T16:00:00+05:30");

    // 20.4: routed to OMS with the complaint's details
    let notices = r.get("/api/v1/notices?destination=oms").await;
    let items = notices["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let payload = &items[0]["notice"];
    assert_eq!(payload["notice"], "complaint_registered");
    assert_eq!(payload["number"], "CR-2026-000001");
    assert_eq!(payload["meter"], "M-1");
    assert_eq!(
        payload["completion"],
        "POST /api/v1/complaints/CR-2026-000001/completion"
    );
    assert_eq!(r.told().len(), 2);

    // 20.5–20.6: OMS (holding an operator token) reports it done; closed, the consumer told
    r.advance(Duration::hours(2));
    let uri = "/api/v1/complaints/CR-2026-000001/completion";
    let (status, _) = r
        .send(
            Method::POST,
            uri,
            &r.reader.clone(),
            Some(json!({"note": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, done) = r
        .post(
            uri,
            json!({"note": "Fuse replaced at the transformer; supply restored"}),
        )
        .await;
    assert_eq!(
        (status, done["state"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{done}"
    );
    assert_eq!(done["overdue"], false);
    let (status, again) = r.post(uri, json!({"note": "twice"})).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_allowed"))
    );
    let told = r.told();
    let closing: Vec<_> = told.iter().filter(|t| t.0 == "case_closed").collect();
    assert_eq!(closing.len(), 2, "{told:?}");
    assert!(
        closing
            .iter()
            .any(|t| t.1 == "email" && t.3.contains("Fuse replaced"))
    );

    // reopened within its days: routed again, and closed again with its own notice
    r.advance(Duration::days(1));
    let (status, reopened) = r
        .post(
            "/api/v1/complaints/CR-2026-000001/updates",
            json!({"action": "reopen", "note": "Dark again"}),
        )
        .await;
    assert_eq!(
        (status, reopened["state"].as_str()),
        (StatusCode::OK, Some("in_progress"))
    );
    assert_eq!(reopened["reopened"], 1);
    let oms = r.store.mdm_notices(Some("oms"), 0, 10).unwrap();
    assert_eq!(oms.len(), 2);
    assert!(oms[1].message.payload.contains("complaint_reopened"));
    let (status, _) = r.post(uri, json!({"note": "Service cable replaced"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r.told().iter().filter(|t| t.0 == "case_closed").count(), 4);
    r.advance(Duration::days(4));
    let (status, late) = r
        .post(
            "/api/v1/complaints/CR-2026-000001/updates",
            json!({"action": "reopen", "note": "Dark again"}),
        )
        .await;
    assert_eq!(
        (status, late["code"].as_str()),
        (StatusCode::CONFLICT, Some("reopen_window_passed"))
    );
}

#[tokio::test]
async fn sla_and_ageing_follow_the_clock() {
    let r = rig();
    for (kind, ty) in [
        ("complaints", "no_supply"),
        ("complaints", "meter_burnt"),
        ("service-requests", "meter_testing"),
    ] {
        let (status, c) = r
            .post(
                &format!("/api/v1/{kind}"),
                json!({"consumer_no": "C-1", "type": ty, "description": "as said"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
    }
    let c = r.get("/api/v1/complaints/CR-2026-000001").await;
    assert_eq!(c["overdue"], false);
    r.advance(Duration::hours(5));
    let c = r.get("/api/v1/complaints/CR-2026-000001").await;
    assert_eq!(c["overdue"], true, "a no-supply complaint is due in 4 h");
    assert_eq!(
        r.get("/api/v1/complaints/CR-2026-000002").await["overdue"],
        false
    );
    let ageing = r.get("/api/v1/care/ageing").await;
    assert_eq!(ageing["buckets"][0], "0-1d");
    assert_eq!(
        ageing["complaints"],
        json!([
            {"type": "meter_burnt", "counts": [1, 0, 0, 0, 0, 0], "unfinished": 1, "overdue": 0},
            {"type": "no_supply", "counts": [1, 0, 0, 0, 0, 0], "unfinished": 1, "overdue": 1},
        ])
    );
    r.advance(Duration::days(2));
    let ageing = r.get("/api/v1/care/ageing").await;
    assert_eq!(ageing["complaints"][0]["counts"], json!([0, 1, 0, 0, 0, 0]));
    assert_eq!(
        ageing["complaints"][0]["overdue"], 1,
        "meter burnt is due in 24 h"
    );
    assert_eq!(ageing["service_requests"][0]["type"], "meter_testing");
    assert_eq!(ageing["service_requests"][0]["overdue"], 0);

    // lists page, and filter by state
    let first = r.get("/api/v1/complaints?limit=1").await;
    assert_eq!(first["items"][0]["number"], "CR-2026-000001");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = r
        .get(&format!("/api/v1/complaints?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(second["items"][0]["number"], "CR-2026-000002");
    assert_eq!(second["next_cursor"], Value::Null);
    let closed = r.get("/api/v1/complaints?state=closed").await;
    assert_eq!(closed["items"], json!([]));
    let srs = r.get("/api/v1/service-requests?consumer_no=C-1").await;
    assert_eq!(srs["items"].as_array().unwrap().len(), 1);
    assert_eq!(srs["items"][0]["route"], "wfm");
}

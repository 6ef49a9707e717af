//! The payment and prepaid routes over a real store, without a head-end: the gateway's webhook
//! and what it refuses, payments kept whatever became of them, postpaid payments with receipts
//! and counter files, emergency credit, tariff versions, the disconnection case list and the
//! migration requests' checks.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use model::{MeterSerial, Paise};
use prepaid::gateway;
use prepaid::service::{Prepaid, PrepaidConfig};
use serde_json::{Value, json};
use store::prepaid_ops::CaseState;
use store::{Role, Store};
use tower::ServiceExt;
use web::{AppState, GatewaySecret, app, issue_token};

const SECRET: &[u8] = b"whsec_api_tests";
const NOW: &str = "2026-12-01T06:30:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

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
    let t = now();
    let token = |role| {
        issue_token(&store, role, "t", None, t - Duration::days(1))
            .unwrap()
            .secret
    };
    let (admin, operator, reader) = (
        token(Role::Admin),
        token(Role::Operator),
        token(Role::Reader),
    );
    let engine = Prepaid::new(store.clone(), None, PrepaidConfig::default());
    let app = app(AppState::new(store.clone())
        .with_prepaid(engine)
        .with_gateway("pg", GatewaySecret::new(SECRET.to_vec()))
        .with_clock(move || t));
    Rig {
        _dir: dir,
        store,
        app,
        admin,
        operator,
        reader,
    }
}

impl Rig {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// GET `uri` with the reader's token.
    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, Some(&self.reader), &[], vec![])
            .await
    }

    async fn webhook(
        &self,
        gateway_name: &str,
        body: &[u8],
        sig: Option<String>,
    ) -> (StatusCode, Value) {
        let headers: Vec<(&str, String)> = sig
            .map(|s| vec![(gateway::SIGNATURE_HEADER, s)])
            .unwrap_or_default();
        self.call(
            Method::POST,
            &format!("/api/v1/payments/{gateway_name}/webhook"),
            None,
            &headers,
            body.to_vec(),
        )
        .await
    }

    async fn pay(&self, id: &str, consumer: &str, paise: i64) -> Value {
        let body = payment(id, consumer, paise);
        let (status, answer) = self
            .webhook("pg", &body, Some(gateway::sign(SECRET, &body, now())))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// Posts a payment file as the operator.
    async fn import(&self, text: &str, source: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/api/v1/payments/import?source={source}"),
            Some(&self.operator),
            &[("content-type", "text/csv".into())],
            text.as_bytes().to_vec(),
        )
        .await
    }

    async fn json(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(
            method,
            uri,
            Some(token),
            &[("content-type", "application/json".into())],
            body.to_string().into_bytes(),
        )
        .await
    }
}

fn payment(id: &str, consumer: &str, paise: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event": "payment.captured",
        "payment": {"id": id, "amount": paise, "currency": "INR",
                    "consumer_no": consumer, "captured_at": NOW}
    }))
    .unwrap()
}

#[tokio::test]
async fn the_webhook_credits_signed_confirmations_once_and_keeps_every_one() {
    let r = rig();
    r.store.prepaid_enrol("C-1", now(), None).unwrap();
    let body = payment("pay_1", "C-1", 20_000);

    // Refused before anything is kept: no gateway, no signature, a wrong or stale one.
    assert_eq!(
        r.webhook("other", &body, Some(gateway::sign(SECRET, &body, now())))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        r.webhook("pg", &body, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        r.webhook("pg", &body, Some(gateway::sign(b"wrong", &body, now())))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let stale = gateway::sign(SECRET, &body, now() - Duration::minutes(10));
    assert_eq!(
        r.webhook("pg", &body, Some(stale)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let garbage = b"{\"event\": \"payment.captured\", \"payment\": {\"id\": 1}}".to_vec();
    let (status, err) = r
        .webhook("pg", &garbage, Some(gateway::sign(SECRET, &garbage, now())))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["code"], "bad_confirmation");
    assert!(r.store.payment("pg", "pay_1").unwrap().is_none());
    assert_eq!(r.store.wallet_balance("C-1").unwrap(), Some(Paise::ZERO));

    // Another event is acknowledged and ignored.
    let refund = serde_json::to_vec(&json!({"event": "refund.created", "payment": {"id": "x", "amount": 1, "currency": "INR", "consumer_no": "C-1", "captured_at": NOW}})).unwrap();
    let (status, answer) = r
        .webhook("pg", &refund, Some(gateway::sign(SECRET, &refund, now())))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "ignored");

    // Credited once; the replay is answered the same and credits nothing.
    let first = r.pay("pay_1", "C-1", 20_000).await;
    assert_eq!(first["status"], "credited");
    assert_eq!(first["balance_paise"], 20_000);
    assert_eq!(first["first_time"], true);
    let again = r.pay("pay_1", "C-1", 20_000).await;
    assert_eq!(again["first_time"], false);
    assert_eq!(again["balance_paise"], 20_000);
    assert_eq!(r.store.wallet_balance("C-1").unwrap(), Some(Paise(20_000)));

    // Below the minimum: refused (to be refunded), kept with the reason.
    let small = r.pay("pay_2", "C-1", 5_000).await;
    assert_eq!(small["status"], "refused");
    assert!(small["reason"].as_str().unwrap().contains("minimum"));
    // Nobody's: kept as unmatched for reconciliation.
    let stray = r.pay("pay_3", "C-404", 20_000).await;
    assert_eq!(stray["status"], "unmatched");
    assert_eq!(
        r.store.payment("pg", "pay_3").unwrap().unwrap().consumer_no,
        "C-404"
    );

    let (status, list) = r.get("/api/v1/consumers/C-1/payments").await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&"credited") && statuses.contains(&"refused"));
    assert!(r.store.wallet_check("C-1").unwrap());
}

#[tokio::test]
async fn emergency_credit_once_per_cycle_and_recovered_by_the_next_recharge() {
    let r = rig();
    r.store.prepaid_enrol("C-2", now(), None).unwrap();
    r.pay("pay_a", "C-2", 20_000).await;
    let uri = "/api/v1/consumers/C-2/emergency-credit";
    assert_eq!(
        r.json(Method::POST, uri, &r.reader, json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    // ₹200 is not low.
    let (status, err) = r.json(Method::POST, uri, &r.operator, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    // Spend it down to ₹20.
    r.store
        .wallet_post(
            &store::prepaid::NewEntry {
                consumer_no: "C-2",
                cause: "daily/2026-11-30",
                kind: "daily_charge",
                amount: Paise(-18_000),
                detail: "{}",
            },
            now(),
        )
        .unwrap();
    let (status, granted) = r.json(Method::POST, uri, &r.operator, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted["balance_paise"], 12_000);
    let account = r.store.prepaid_account("C-2").unwrap().unwrap();
    assert_eq!(account.emergency_outstanding, Paise(10_000));
    assert!(account.emergency_until.unwrap() > now());
    // Not twice in a cycle.
    assert_eq!(
        r.json(Method::POST, uri, &r.operator, json!({})).await.0,
        StatusCode::CONFLICT
    );
    // The next recharge pays it back.
    let paid = r.pay("pay_b", "C-2", 20_000).await;
    assert_eq!(
        paid["balance_paise"], 22_000,
        "₹120 + ₹200 − ₹100 recovered"
    );
    let account = r.store.prepaid_account("C-2").unwrap().unwrap();
    assert_eq!(account.emergency_outstanding, Paise::ZERO);
    assert!(account.emergency_until.is_none());
    assert!(r.store.wallet_check("C-2").unwrap());
}

#[tokio::test]
async fn tariff_versions_are_added_by_admins_and_never_rewritten_once_in_force() {
    let r = rig();
    let tariff = |from: &str, rate: &str| {
        json!({"code": "DOM-2", "category": "residential", "effective_from": from,
               "unit": "kwh", "fixed_per_kw_day": "3.5",
               "slabs": [{"up_to_kwh": 100, "rate": rate}, {"up_to_kwh": null, "rate": "7"}],
               "duty_bp": 500})
    };
    let uri = "/api/v1/tariffs";
    assert_eq!(
        r.json(Method::POST, uri, &r.operator, tariff("2026-11-01", "5"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        r.json(Method::POST, uri, &r.admin, tariff("2026-11-01", "5"))
            .await
            .0,
        StatusCode::CREATED
    );
    // The same again is fine; a change to a version in force is not.
    assert_eq!(
        r.json(Method::POST, uri, &r.admin, tariff("2026-11-01", "5"))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, err) = r
        .json(Method::POST, uri, &r.admin, tariff("2026-11-01", "4"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    // A new version cannot start on a day already charged.
    let (status, err) = r
        .json(Method::POST, uri, &r.admin, tariff("2026-11-20", "5"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    // A future version can be corrected until it starts.
    for rate in ["6", "6.25"] {
        assert_eq!(
            r.json(Method::POST, uri, &r.admin, tariff("2027-04-01", rate))
                .await
                .0,
            StatusCode::CREATED
        );
    }
    // Not a tariff: slabs that do not end open, a rate with too many decimals.
    let mut bad = tariff("2027-05-01", "6");
    bad["slabs"] = json!([{"up_to_kwh": 100, "rate": "5"}]);
    assert_eq!(
        r.json(Method::POST, uri, &r.admin, bad).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        r.json(
            Method::POST,
            uri,
            &r.admin,
            tariff("2027-05-01", "5.123456")
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, list) = r.get(uri).await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["effective_from"], "2026-11-01");
    assert_eq!(list[1]["tariff"]["slabs"][0]["rate"], "6.25");
    assert!(
        list[1]["created_by"]
            .as_str()
            .unwrap()
            .starts_with("token ")
    );
    assert!(list.iter().all(|v| v["scheme"] == "prepaid"));

    // A postpaid tariff of the same category is its own scheme, with what billing adds.
    let postpaid = json!({"base": tariff("2026-11-01", "5"), "due_days": 15,
                          "fppa_per_unit": "0.35", "late_payment_bp": 150});
    let (status, err) = r
        .json(
            Method::POST,
            "/api/v1/tariffs?scheme=postpaid",
            &r.admin,
            postpaid,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{err}");
    let (_, only) = r.get("/api/v1/tariffs?scheme=postpaid").await;
    let only = only.as_array().unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["tariff"]["fppa_per_unit"], "0.35");
    assert_eq!(only[0]["tariff"]["base"]["code"], "DOM-2");
    // Not a postpaid tariff (no due days), and a scheme that does not exist.
    let (status, _) = r
        .json(
            Method::POST,
            "/api/v1/tariffs?scheme=postpaid",
            &r.admin,
            tariff("2027-06-01", "5"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.get("/api/v1/tariffs?scheme=other").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn disconnection_cases_list_by_state_and_migrations_check_their_request() {
    let r = rig();
    let meter = MeterSerial::new("M-7").unwrap();
    let t = now();
    let mut c = r
        .store
        .supply_case_open("C-7", &meter, Paise(-500), t)
        .unwrap();
    // The same consumer has one open case.
    assert_eq!(
        r.store
            .supply_case_open("C-7", &meter, Paise(-900), t)
            .unwrap()
            .id,
        c.id
    );
    c.state = CaseState::Disconnected;
    c.recharged_at = Some(t - Duration::hours(3));
    c.reconnect_due_by = Some(t - Duration::hours(1));
    r.store.supply_case_save(&c).unwrap();
    let (status, page) = r.get("/api/v1/disconnections?state=disconnected").await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["consumer_no"], "C-7");
    assert_eq!(
        items[0]["overdue"], true,
        "past the 2-hour limit and not reconnected"
    );
    let (_, none) = r.get("/api/v1/disconnections?state=closed").await;
    assert!(none["items"].as_array().unwrap().is_empty());
    assert_eq!(
        r.get("/api/v1/disconnections?state=off").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        r.get("/api/v1/disconnections/999").await.0,
        StatusCode::NOT_FOUND
    );

    let uri = "/api/v1/migrations";
    let (status, _) = r
        .json(
            Method::POST,
            uri,
            &r.operator,
            json!({"consumer_no": "C-7", "to": "sideways"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // This server sends no commands to meters: a migration cannot run here.
    let (status, err) = r
        .json(
            Method::POST,
            uri,
            &r.operator,
            json!({"consumer_no": "C-7", "to": "prepaid"}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert_eq!(
        r.json(
            Method::POST,
            uri,
            &r.reader,
            json!({"consumer_no": "C-7", "to": "prepaid"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn contacts_are_checked_and_what_consumers_were_told_is_listed() {
    let r = rig();
    r.store
        .mdm_put_consumer(
            &store::mdm::Consumer {
                consumer_no: "C-5".into(),
                name: "Ravi".into(),
                category: "residential".into(),
                net_metered: false,
            },
            now(),
        )
        .unwrap();
    let uri = "/api/v1/consumers/C-5/contact";
    assert_eq!(r.get(uri).await.0, StatusCode::NOT_FOUND);
    let good = json!({"mobile": "+919812345678", "email": "ravi@example.in"});
    assert_eq!(
        r.json(Method::PUT, uri, &r.reader, good.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    for bad in [
        json!({"mobile": "98123 45678", "email": null}),
        json!({"mobile": null, "email": "ravi at example"}),
    ] {
        let (status, err) = r.json(Method::PUT, uri, &r.operator, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    }
    assert_eq!(
        r.json(
            Method::PUT,
            "/api/v1/consumers/C-404/contact",
            &r.operator,
            good.clone()
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        r.json(Method::PUT, uri, &r.operator, good.clone()).await.0,
        StatusCode::OK
    );
    let (_, stored) = r.get(uri).await;
    assert_eq!(
        stored,
        json!({"mobile": "+919812345678", "email": "ravi@example.in", "language": "en"})
    );

    // A recharge is told by SMS and email, listed with its state.
    r.store.prepaid_enrol("C-5", now(), None).unwrap();
    r.pay("pay_5", "C-5", 30_000).await;
    let (status, page) = r
        .get("/api/v1/notifications?consumer_no=C-5&state=pending")
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "recharge_confirmed");
    assert_eq!(items[0]["channel"], "sms");
    assert!(items[0]["body"].as_str().unwrap().contains("Rs 300.00"));
    assert_eq!(items[1]["recipient"], "ravi@example.in");
    assert_eq!(
        r.get("/api/v1/notifications?state=lost").await.0,
        StatusCode::BAD_REQUEST
    );

    // Hindi from now on; a PUT without a language leaves it as it is
    let hindi = json!({"mobile": "+919812345678", "email": "ravi@example.in", "language": "hi"});
    let (status, answer) = r.json(Method::PUT, uri, &r.operator, hindi.clone()).await;
    assert_eq!((status, &answer), (StatusCode::OK, &hindi));
    let (status, err) = r
        .json(
            Method::PUT,
            uri,
            &r.operator,
            json!({"mobile": null, "email": null, "language": "fr"}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_language"))
    );
    assert_eq!(
        r.json(Method::PUT, uri, &r.operator, good.clone()).await.1,
        hindi
    );
    r.pay("pay_6", "C-5", 20_000).await;
    let (_, page) = r
        .get("/api/v1/notifications?consumer_no=C-5&state=pending")
        .await;
    let sms = &page["items"].as_array().unwrap()[2];
    assert_eq!(sms["channel"], "sms");
    assert!(
        sms["body"].as_str().unwrap().contains("₹200.00 का रिचार्ज"),
        "{sms}"
    );
}

/// A migration in progress is answered as it is only when asked again on the same terms.
#[tokio::test]
async fn a_migration_asked_again_on_other_terms_is_refused() {
    let r = rig();
    let t = now();
    r.store
        .mdm_put_consumer(
            &store::mdm::Consumer {
                consumer_no: "C-8".into(),
                name: "Meena".into(),
                category: "residential".into(),
                net_metered: false,
            },
            t,
        )
        .unwrap();
    r.store
        .mdm_put_service_point(&store::mdm::ServicePoint {
            id: "SP-8".into(),
            address: "8 Lake Road".into(),
            sanctioned_load_w: 2000,
        })
        .unwrap();
    r.store.mdm_connect_consumer("SP-8", "C-8", t).unwrap();
    r.store
        .mdm_install_meter(&MeterSerial::new("M-8").unwrap(), "SP-8", t)
        .unwrap();
    // Without a head-end nothing is sent; the migration waits at its first step.
    let engine = Prepaid::new(r.store.clone(), None, PrepaidConfig::default());
    let first = engine
        .start_migration("C-8", true, Paise(20_000), "cis", t)
        .await
        .unwrap();
    let again = engine
        .start_migration("C-8", true, Paise(20_000), "cis", t)
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    let other = engine
        .start_migration("C-8", true, Paise(90_000), "cis", t)
        .await
        .unwrap_err();
    assert!(other.to_string().contains("other terms"), "{other}");
}

/// A postpaid consumer with ₹300 of opening arrears and October's bill (200 kWh under the
/// default residential tariff, billed on Nov 1, due Nov 16): what the bill asks for.
fn postpaid_with_a_bill(store: &Store) -> Paise {
    use billing::bill::{BillInput, PostpaidTariff, compute};
    let at = now() - Duration::days(90);
    store
        .mdm_put_consumer(
            &store::mdm::Consumer {
                consumer_no: "C-9".into(),
                name: "Meena".into(),
                category: "residential".into(),
                net_metered: false,
            },
            at,
        )
        .unwrap();
    store
        .contact_put("C-9", Some("+919876543210"), Some("meena@example.in"), at)
        .unwrap();
    store
        .billing_account_put(
            &store::billing::BillingAccount {
                consumer_no: "C-9".into(),
                cycle_day: 1,
                contract_demand: None,
                opening_arrears: Paise(30_000),
                billed_from: None,
                closed_on: None,
            },
            at,
        )
        .unwrap();
    let tariffs: Vec<PostpaidTariff> =
        serde_json::from_str(billing::cycle::DEFAULT_POSTPAID_TARIFFS).unwrap();
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let bill = compute(
        &tariffs[0],
        &BillInput {
            arrears: Paise(30_000),
            ..BillInput::metered("C-9", day(10, 1), day(10, 31), day(11, 1), 2000, 200_000)
        },
    )
    .unwrap();
    store
        .bill_issue(
            &store::billing::NewBill {
                consumer_no: "C-9",
                period_from: day(10, 1),
                period_to: day(10, 31),
                provisional: false,
                input_hash: "h",
                body: &serde_json::to_string(&bill).unwrap(),
                current: bill.current,
                payable: bill.payable_by_due_date,
                carried_forward: 0,
                due_date: bill.due_date,
            },
            at,
        )
        .unwrap();
    bill.current
}

#[tokio::test]
async fn postpaid_payments_pay_the_oldest_dues_first_with_a_receipt_each() {
    let r = rig();
    let october = postpaid_with_a_bill(&r.store);
    assert!(october.0 > 50_000, "{october:?}");

    // ₹500 through the gateway: ₹300 clears the opening arrears, ₹200 goes to October.
    let answer = r.pay("pay_P1", "C-9", 50_000).await;
    assert_eq!(answer["status"], "applied", "{answer}");
    assert_eq!(answer["first_time"], true);
    let owed = 30_000 + october.0 - 50_000;
    assert_eq!(answer["outstanding_paise"], owed);
    let receipt_no = answer["receipt_no"].as_str().unwrap().to_string();
    let (status, receipt) = r.get(&format!("/api/v1/receipts/{receipt_no}")).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["allocation"]["allocations"][0]["due"], "opening");
    assert_eq!(receipt["allocation"]["allocations"][0]["amount"], 30_000);
    assert_eq!(receipt["allocation"]["allocations"][1]["due"], "2026-10-01");
    assert_eq!(receipt["allocation"]["allocations"][1]["amount"], 20_000);
    // The same confirmation again: the same receipt, nothing applied twice.
    let again = r.pay("pay_P1", "C-9", 50_000).await;
    assert_eq!(again["first_time"], false);
    assert_eq!(again["receipt_no"], receipt_no.as_str());
    assert_eq!(again["outstanding_paise"], owed);

    // A counter file with bad lines is refused whole: every bad line named, nothing taken.
    let rest = owed;
    let good = format!(
        "reference,consumer_no,amount,paid_at,mode\n\
         CTR-1,C-9,{}.{:02},2026-12-01 11:00,cash\n\
         CTR-2,C-404,100,2026-12-01 11:05,cash\n",
        (rest + 10_000) / 100,
        (rest + 10_000) % 100
    );
    let cut = format!("{good}CTR-3,C-9,5");
    let (status, refused) = r.import(&cut, "counter").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["lines"][0]["line"], 4, "{refused}");
    let (_, listed) = r.get("/api/v1/consumers/C-9/payments").await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "nothing taken: {listed}"
    );
    let (status, _) = r.import(&good, "till").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = r
        .call(
            Method::POST,
            "/api/v1/payments/import?source=counter",
            Some(&r.reader),
            &[],
            good.clone().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The whole file: what was owed and ₹100 more (an advance); an unknown consumer kept as
    // unmatched. Sent twice, nothing is taken twice.
    let (status, report) = r.import(&good, "counter").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["new"], 2);
    assert_eq!(report["unmatched"], 1);
    assert_eq!(report["payments"][0]["status"], "applied");
    assert_eq!(report["payments"][1]["status"], "unmatched");
    let (_, report) = r.import(&good, "counter").await;
    assert_eq!(report["new"], 0);
    assert_eq!(report["seen_before"], 2);

    let (status, s) = r.get("/api/v1/consumers/C-9/statement").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["outstanding_paise"], -10_000, "{s}");
    assert!(
        s["dues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["outstanding"] == 0)
    );
    // October was still owed in part on its due date (Nov 16): what the next bill surcharges.
    assert_eq!(s["dues"][1]["unpaid_at_due_date"], october.0, "{s}");
    let payments = s["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 2);
    assert_eq!(payments[1]["unallocated"], 10_000);
    let (_, receipts) = r.get("/api/v1/consumers/C-9/receipts").await;
    assert_eq!(receipts.as_array().unwrap().len(), 2);
    let (status, _) = r.get("/api/v1/consumers/C-404/statement").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The consumer was told of each payment once, by SMS and by email (18.6).
    let told = r.store.notifications(Some("C-9"), None, 0, 100).unwrap();
    let receipts_told: Vec<_> = told
        .iter()
        .filter(|n| n.kind == "payment_received")
        .collect();
    assert_eq!(receipts_told.len(), 4, "{told:?}");
    assert!(
        receipts_told
            .iter()
            .any(|n| n.body.contains(&receipt_no) && n.body.contains("Rs ")),
        "{receipts_told:?}"
    );
}

/// Use case 13.3: a CT-operated meter has no load switch, so a move to prepaid is refused
/// until the meter is replaced; a replacement raised for the move starts it once the new meter
/// is reported in.
#[tokio::test]
async fn a_meter_without_a_load_switch_is_replaced_before_the_move_to_prepaid() {
    let r = rig();
    let t = now() - Duration::days(10);
    r.store
        .mdm_put_consumer(
            &store::mdm::Consumer {
                consumer_no: "C-CT".into(),
                name: "Mill".into(),
                category: "industrial".into(),
                net_metered: false,
            },
            t,
        )
        .unwrap();
    r.store
        .mdm_put_service_point(&store::mdm::ServicePoint {
            id: "SP-CT".into(),
            address: "Plot 4, Industrial Area".into(),
            sanctioned_load_w: 60_000,
        })
        .unwrap();
    r.store.mdm_connect_consumer("SP-CT", "C-CT", t).unwrap();
    let ct = MeterSerial::new("CT-1").unwrap();
    r.store.mdm_install_meter(&ct, "SP-CT", t).unwrap();
    r.store
        .upsert_meter(
            &store::MeterRecord {
                serial: ct.clone(),
                kind: "three_phase_ct_operated".into(),
                host: "10.0.0.9".into(),
                port: 4059,
                transport: "wrapper".into(),
                server_address: 1,
                dcu: None,
                group: "default".into(),
                system_title: *b"URJ\0\0\0\0\x09",
            },
            t,
            &store::silently,
        )
        .unwrap();
    let engine = Prepaid::new(r.store.clone(), None, PrepaidConfig::default());
    let refused = engine
        .start_migration("C-CT", true, Paise::ZERO, "cis", now())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("load switch"), "{refused}");

    let (status, order) = r
        .json(
            Method::POST,
            "/api/v1/work-orders",
            &r.operator,
            json!({"kind": "meter_replacement", "consumer_no": "C-CT",
                   "then_migrate_to": "prepaid", "opening_balance_paise": 100_000}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["meter"], "CT-1");
    assert_eq!(order["address"], "Plot 4, Industrial Area");
    let number = order["number"].as_str().unwrap();
    let (status, done) = r
        .json(
            Method::POST,
            &format!("/api/v1/work-orders/{number}/complete"),
            &r.operator,
            json!({"kind": "meter_replacement", "new_meter": "SP3-77",
                   "old_final_wh": 9_876_000, "new_initial_wh": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let steps: Vec<&str> = done["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["open", "migration_started", "completed"]);
    // The new meter serves the consumer, and the move to prepaid is under way on it.
    let (meter, _) = r.store.prepaid_supply("C-CT", now()).unwrap().unwrap();
    assert_eq!(meter.as_str(), "SP3-77");
    let (_, migrations) = r.get("/api/v1/migrations").await;
    let m = &migrations["items"][0];
    assert_eq!(m["consumer_no"], "C-CT", "{migrations}");
    assert_eq!(m["meter"], "SP3-77");
    // then_migrate_to goes with a replacement only.
    let (status, _) = r
        .json(
            Method::POST,
            "/api/v1/work-orders",
            &r.operator,
            json!({"kind": "tamper_inspection", "consumer_no": "C-CT", "then_migrate_to": "prepaid"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

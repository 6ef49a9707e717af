//! Postpaid bills on the API: a consumer's bills with their versions, and a bill as PDF.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use billing::bill::{BillInput, PostpaidTariff, compute};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use model::Paise;
use prepaid::tariff::{BillingUnit, Rate, Slab, Tariff};
use store::billing::NewBill;
use store::mdm::{Consumer, ServicePoint};
use store::{Role, Store};
use tower::ServiceExt;
use web::{AppState, app, issue_token};

/// Sends `body` as JSON with `token`: the status and the JSON answer.
async fn send(
    api: &axum::Router,
    method: &str,
    uri: &str,
    token: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = api.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default(),
    )
}

fn d(m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, day).unwrap()
}

fn tariff() -> PostpaidTariff {
    PostpaidTariff {
        base: Tariff {
            code: "LT-1".into(),
            category: "residential".into(),
            effective_from: d(4, 1),
            unit: BillingUnit::Kwh,
            fixed_per_kw_day: Rate::parse("3").unwrap(),
            slabs: vec![Slab {
                up_to_kwh: None,
                rate: Rate::parse("6").unwrap(),
            }],
            duty_bp: 0,
            tod_bp: [0; 8],
            cess_per_unit: Rate(0),
            levies: vec![],
            subsidies: vec![],
        },
        demand: None,
        power_factor: None,
        fppa_per_unit: Rate(0),
        minimum_per_kw_month: Rate(0),
        tamper_rate_bp: 10_000,
        tamper_policy: Default::default(),
        due_days: 15,
        late_payment_bp: 150,
        prompt_rebate_bp: 0,
        prompt_days: 0,
        digital_rebate_bp: 0,
        digital_rebate_cap: Paise::ZERO,
    }
}

/// Issues `C-1`'s bill for a month of `kwh`.
fn issue(store: &Store, from: NaiveDate, to: NaiveDate, kwh: i64, hash: &str) {
    let bill = compute(
        &tariff(),
        &BillInput::metered("C-1", from, to, to + Duration::days(2), 2000, kwh * 1000),
    )
    .unwrap();
    store
        .bill_issue(
            &NewBill {
                consumer_no: "C-1",
                period_from: from,
                period_to: to,
                provisional: false,
                input_hash: hash,
                body: &serde_json::to_string(&bill).unwrap(),
                current: bill.current,
                payable: bill.payable_by_due_date,
                carried_forward: 0,
                due_date: bill.due_date,
            },
            Utc::now(),
        )
        .unwrap();
}

#[tokio::test]
async fn bills_list_with_their_versions_and_a_bill_comes_as_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let at: DateTime<Utc> = "2026-10-01T00:00:00Z".parse().unwrap();
    store
        .mdm_put_consumer(
            &Consumer {
                consumer_no: "C-1".into(),
                name: "Ravi Kumar".into(),
                category: "residential".into(),
                net_metered: false,
            },
            at,
        )
        .unwrap();
    store
        .mdm_put_service_point(&ServicePoint {
            id: "SP-1".into(),
            address: "4 Station Road, Kanpur".into(),
            sanctioned_load_w: 2000,
        })
        .unwrap();
    store.mdm_connect_consumer("SP-1", "C-1", at).unwrap();
    issue(&store, d(10, 1), d(10, 31), 180, "a");
    issue(&store, d(11, 1), d(11, 30), 200, "b");
    // November revised (other figures): two versions, the later in force.
    issue(&store, d(11, 1), d(11, 30), 210, "c");
    let reader = issue_token(&store, Role::Reader, "desk", None, at)
        .unwrap()
        .secret;
    let api = app(AppState::new(store.clone()));
    let get = |uri: String| {
        let api = api.clone();
        let reader = reader.clone();
        async move {
            api.oneshot(
                Request::builder()
                    .uri(uri)
                    .header(header::AUTHORIZATION, format!("Bearer {reader}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
        }
    };
    let res = get("/api/v1/consumers/C-1/bills".into()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let bills: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let bills = bills.as_array().unwrap();
    assert_eq!(bills.len(), 3);
    assert_eq!(bills[0]["period_from"], "2026-11-01");
    assert_eq!(bills[0]["version"], 2);
    assert_eq!(bills[0]["state"], "issued");
    assert_eq!(bills[1]["state"], "superseded");
    // 210 kWh at 6.00 + 3.00 × 2 kW × 30 days = 1,260.00 + 180.00
    assert_eq!(bills[0]["current_paise"], 144_000);
    assert_eq!(bills[0]["bill"]["lines"][0]["code"], "energy");

    let id = bills[0]["id"].as_u64().unwrap();
    let res = get(format!("/api/v1/bills/{id}/pdf")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/pdf");
    let pdf = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&pdf);
    assert!(text.contains("Ravi Kumar") && text.contains("4 Station Road, Kanpur"));
    assert!(text.contains("Rs 1,440.00"));
    assert_eq!(
        get("/api/v1/bills/999/pdf".into()).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_operator_runs_a_cycle_once_per_period_and_puts_consumers_in_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let at: DateTime<Utc> = "2026-10-01T00:00:00Z".parse().unwrap();
    store
        .mdm_put_consumer(
            &Consumer {
                consumer_no: "C-2".into(),
                name: "Leela".into(),
                category: "residential".into(),
                net_metered: false,
            },
            at,
        )
        .unwrap();
    store
        .mdm_put_service_point(&ServicePoint {
            id: "SP-2".into(),
            address: "9 Hill Road".into(),
            sanctioned_load_w: 2000,
        })
        .unwrap();
    store.mdm_connect_consumer("SP-2", "C-2", at).unwrap();
    store
        .mdm_install_meter(&model::MeterSerial::new("M-2").unwrap(), "SP-2", at)
        .unwrap();
    store
        .tariff_put(
            &store::prepaid_ops::TariffVersion {
                scheme: "postpaid".into(),
                category: "residential".into(),
                effective_from: d(4, 1),
                code: "LT-1".into(),
                body: serde_json::to_string(&tariff()).unwrap(),
                created_by: "test".into(),
                created_at: at,
            },
            d(10, 1),
        )
        .unwrap();
    let token = |role| issue_token(&store, role, "t", None, at).unwrap().secret;
    let (operator, reader) = (token(Role::Operator), token(Role::Reader));
    let api = app(AppState::new(store.clone()));
    let account = serde_json::json!({"cycle_day": 1});
    assert_eq!(
        send(
            &api,
            "PUT",
            "/api/v1/consumers/C-2/billing",
            &reader,
            account.clone()
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(
            &api,
            "PUT",
            "/api/v1/consumers/C-404/billing",
            &operator,
            account.clone()
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(
            &api,
            "PUT",
            "/api/v1/consumers/C-2/billing",
            &operator,
            serde_json::json!({"cycle_day": 30})
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        send(
            &api,
            "PUT",
            "/api/v1/consumers/C-2/billing",
            &operator,
            account
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let run = serde_json::json!({"run_date": "2026-12-02"});
    let (status, first) = send(
        &api,
        "POST",
        "/api/v1/billing-cycles/1/run",
        &operator,
        run.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["period_from"], "2026-11-01");
    assert_eq!(first["period_to"], "2026-11-30");
    assert_eq!(
        (first["new"].as_u64(), first["provisional"].as_u64()),
        (Some(1), Some(1)),
        "no readings: provisional"
    );
    let (_, again) = send(&api, "POST", "/api/v1/billing-cycles/1/run", &operator, run).await;
    assert_eq!(
        (again["new"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(
        send(
            &api,
            "POST",
            "/api/v1/billing-cycles/29/run",
            &operator,
            serde_json::json!({})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(
            &api,
            "POST",
            "/api/v1/billing-cycles/1/run",
            &reader,
            serde_json::json!({})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(store.bills_of("C-2", 10).unwrap().len(), 1);
}

/// `wh` in each of a day's 96 quarter-hours of `meter`, from IST midnight of `day`.
fn intervals(store: &Store, meter: &model::MeterSerial, day: NaiveDate, wh: i64) {
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339(&format!("{day}T00:00:00+05:30"))
        .unwrap()
        .with_timezone(&Utc);
    let rows = (0..96i64)
        .map(|i| store::IntervalWrite::New {
            reading: model::IntervalReading {
                meter: meter.clone(),
                interval_end: start + Duration::minutes(15 * (i + 1)),
                avg_voltage_v: None,
                avg_current_a: None,
                avg_phase_voltage_v: None,
                avg_phase_current_a: None,
                import_wh: wh,
                import_vah: wh,
                export_wh: None,
                export_vah: None,
                quality: vec![],
            },
            method: None,
        })
        .collect();
    store
        .mdm_write(
            &store::IngestWrite {
                intervals: rows,
                ..store::IngestWrite::default()
            },
            start,
        )
        .unwrap();
}

#[tokio::test]
async fn a_tamper_period_confirmed_over_the_api_is_billed_once_as_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let at: DateTime<Utc> = "2026-10-01T00:00:00Z".parse().unwrap();
    store
        .mdm_put_consumer(
            &Consumer {
                consumer_no: "C-3".into(),
                name: "Meera".into(),
                category: "residential".into(),
                net_metered: false,
            },
            at,
        )
        .unwrap();
    store
        .mdm_put_service_point(&ServicePoint {
            id: "SP-3".into(),
            address: "2 Canal Road".into(),
            sanctioned_load_w: 2000,
        })
        .unwrap();
    store.mdm_connect_consumer("SP-3", "C-3", at).unwrap();
    let meter = model::MeterSerial::new("M-3").unwrap();
    store.mdm_install_meter(&meter, "SP-3", at).unwrap();
    // Assessed by load × load factor × hours × days, at twice the rate (12.00 a kWh).
    let mut t = tariff();
    t.tamper_rate_bp = 20_000;
    t.tamper_policy = billing::tamper::TamperPolicy::Ldhf {
        load_factor_bp: 4000,
        hours_per_day: 8,
    };
    store
        .tariff_put(
            &store::prepaid_ops::TariffVersion {
                scheme: "postpaid".into(),
                category: "residential".into(),
                effective_from: d(4, 1),
                code: "LT-1".into(),
                body: serde_json::to_string(&t).unwrap(),
                created_by: "test".into(),
                created_at: at,
            },
            d(10, 1),
        )
        .unwrap();
    // November: 9.6 kWh a day, but 0.96 kWh a day from 10 to 16 November (a magnet).
    for n in 1..=30 {
        let wh = if (10..=16).contains(&n) { 10 } else { 100 };
        intervals(&store, &meter, d(11, n), wh);
    }
    let token = |role| issue_token(&store, role, "t", None, at).unwrap().secret;
    let (operator, reader) = (token(Role::Operator), token(Role::Reader));
    let now: DateTime<Utc> = "2026-12-02T06:00:00Z".parse().unwrap();
    let api = app(AppState::new(store.clone()).with_clock(move || now));
    let (status, _) = send(
        &api,
        "PUT",
        "/api/v1/consumers/C-3/billing",
        &operator,
        serde_json::json!({"cycle_day": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let periods = "/api/v1/consumers/C-3/tamper-periods";
    let magnet = serde_json::json!({
        "meter": "M-3",
        "tamper_code": 201,
        "reason": "Magnet tamper",
        "from": "2026-11-10T00:00:00+05:30",
        "to": "2026-11-16T18:30:00Z",
    });
    let with = |key: &str, value: &str| {
        let mut b = magnet.clone();
        b[key] = value.into();
        b
    };
    assert_eq!(
        send(&api, "POST", periods, &reader, magnet.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&api, "POST", periods, &operator, with("from", "10 Nov"))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(
            &api,
            "POST",
            periods,
            &operator,
            with("to", "2026-12-05T00:00:00+05:30")
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "in the future"
    );
    assert_eq!(
        send(
            &api,
            "POST",
            "/api/v1/consumers/C-404/tamper-periods",
            &operator,
            magnet.clone()
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (status, confirmed) = send(&api, "POST", periods, &operator, magnet.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{confirmed}");
    assert_eq!(confirmed["to"], "2026-11-17T00:00:00+05:30");
    assert_eq!(confirmed["source"], "operator");
    assert_eq!(confirmed["tamper_code"], 201);
    assert!(confirmed["billed_period_from"].is_null());
    assert_eq!(
        send(&api, "POST", periods, &operator, magnet).await.0,
        StatusCode::CONFLICT,
        "the same span twice"
    );

    let run = |date: &str| {
        send(
            &api,
            "POST",
            "/api/v1/billing-cycles/1/run",
            &operator,
            serde_json::json!({ "run_date": date }),
        )
    };
    let (status, first) = run("2026-12-02").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["new"].as_u64(), first["provisional"].as_u64()),
        (Some(1), Some(0))
    );
    let bills = || async {
        let (status, bills) = send(
            &api,
            "GET",
            "/api/v1/consumers/C-3/bills",
            &reader,
            serde_json::json!({}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        bills
    };
    let nov = &bills().await[0];
    let tamper: Vec<&serde_json::Value> = nov["bill"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["code"] == "tamper")
        .collect();
    // 2 kW × 40 % × 8 h = 6.4 kWh a day × 7 days = 44.8 kWh, less 7 × 0.96 = 6.72 recorded:
    // 38.08 kWh × 12.00 = 456.96
    assert_eq!(tamper.len(), 1);
    assert_eq!(tamper[0]["amount"], 45_696);
    assert_eq!(
        tamper[0]["description"],
        format!(
            "Assessed energy, 38.080 kWh: Magnet tamper 2026-11-10 to 2026-11-17 (tamper period \
             {}, confirmed by operator): 7 days at 6.400 kWh/day (2.000 kW load, 40% load \
             factor, 8 h a day), less 6.720 kWh recorded",
            confirmed["id"]
        )
    );
    // 23 × 9.6 + 6.72 = 227.52 kWh × 6.00 = 1,365.12; fixed 3.00 × 2 kW × 30 days = 180.00;
    // with the assessment: 2,002.08
    assert_eq!(nov["current_paise"], 200_208);

    // Again: nothing new; the period is billed in November.
    let (_, again) = run("2026-12-03").await;
    assert_eq!(
        (
            again["new"].as_u64(),
            again["revised"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(1))
    );
    let (status, listed) = send(&api, "GET", periods, &reader, serde_json::json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["billed_period_from"], "2026-11-01");

    // December's bill does not carry it again.
    for n in 1..=31 {
        intervals(&store, &meter, d(12, n), 100);
    }
    let (_, dec) = run("2027-01-02").await;
    assert_eq!(dec["new"].as_u64(), Some(1), "{dec}");
    let all = bills().await;
    assert_eq!(all[0]["period_from"], "2026-12-01");
    assert!(
        all[0]["bill"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["code"] != "tamper")
    );
    assert_eq!(all.as_array().unwrap().len(), 2, "November was not revised");
}

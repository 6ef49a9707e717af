//! The prepaid engine end to end against a simulated meter over real TCP (use cases 3, 4, 13,
//! 17): a consumer moved to prepaid through the head-end, a recharge credited and written to
//! the meter, daily charges with an alert at each threshold, a warning, the disconnection at the
//! first unprotected moment after the notice with the open relay read back, a recharge through
//! the gateway's signed webhook, and the reconnection with the closed relay read back.
//!
//! The engine takes "now" from the test (the protected windows are about the clock); the meter
//! and the head-end run in real time.

mod support;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{DateTime, NaiveDate, Utc};
use mdm::determinants::Metering;
use model::IntervalReading;
use model::Paise;
use model::command::{CommandId, CommandState};
use prepaid::charging::DayFiguresBook;
use prepaid::gateway;
use prepaid::policy::DisconnectionPolicy;
use prepaid::service::{PaymentConfirmation, Prepaid, PrepaidConfig};
use prepaid::tariff::{BillingUnit, Rate, Slab, Tariff};
use serde_json::{Value, json};
use store::mdm::{Consumer, ServicePoint};
use store::prepaid_ops::{CaseState, MigrationState, TariffVersion};
use store::{IngestWrite, IntervalWrite};
use store::{Role, Store};
use tower::ServiceExt;
use web::{AppState, GatewaySecret, app, issue_token};

const SECRET: &[u8] = b"whsec_test_only";
const CONSUMER: &str = "C-100";

fn ist(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+05:30"))
        .unwrap()
        .with_timezone(&Utc)
}

/// ₹10 a kWh flat, no fixed charge, no duty: the charges are easy to follow by hand.
fn flat_tariff() -> Tariff {
    Tariff {
        code: "TEST-FLAT".into(),
        category: "residential".into(),
        effective_from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
        unit: BillingUnit::Kwh,
        fixed_per_kw_day: Rate::parse("0").unwrap(),
        slabs: vec![Slab {
            up_to_kwh: None,
            rate: Rate::parse("10").unwrap(),
        }],
        duty_bp: 0,
        tod_bp: [0; 8],
        cess_per_unit: Rate(0),
        levies: Vec::new(),
        subsidies: Vec::new(),
    }
}

fn seed(store: &Store, meter: &str, at: DateTime<Utc>) {
    store
        .mdm_put_consumer(
            &Consumer {
                consumer_no: CONSUMER.into(),
                name: "Asha Devi".into(),
                category: "residential".into(),
                net_metered: false,
            },
            at,
        )
        .unwrap();
    store
        .mdm_put_service_point(&ServicePoint {
            id: "SP-100".into(),
            address: "12 Civil Lines, Lucknow".into(),
            sanctioned_load_w: 3000,
        })
        .unwrap();
    store.mdm_connect_consumer("SP-100", CONSUMER, at).unwrap();
    store
        .contact_put(CONSUMER, Some("+919812345678"), Some("asha@example.in"), at)
        .unwrap();
    store
        .mdm_install_meter(&model::MeterSerial::new(meter).unwrap(), "SP-100", at)
        .unwrap();
    let t = flat_tariff();
    store
        .tariff_put(
            &TariffVersion {
                scheme: "prepaid".into(),
                category: t.category.clone(),
                effective_from: t.effective_from,
                code: t.code.clone(),
                body: serde_json::to_string(&t).unwrap(),
                created_by: "test".into(),
                created_at: at,
            },
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        )
        .unwrap();
}

struct Scenario {
    system: support::System,
    engine: Prepaid,
    api: axum::Router,
    clock: Arc<AtomicI64>,
    operator: String,
}

impl Scenario {
    fn set_now(&self, t: DateTime<Utc>) {
        self.clock.store(t.timestamp_millis(), Ordering::SeqCst);
    }

    async fn finished(&self, id: &str) -> hes::commands::CommandStatus {
        finished(&self.system.commands, id).await
    }

    /// Looks at a migration until it is over (each step's command finished first).
    async fn migrate(&self, id: u64, now: DateTime<Utc>) -> store::prepaid_ops::ModeMigration {
        for _ in 0..20 {
            let m = self.system.store.mode_migration(id).unwrap().unwrap();
            if m.state.is_final() {
                return m;
            }
            if let Some(command) = &m.command {
                self.finished(command).await;
            }
            self.engine.tick(now).await.unwrap();
        }
        panic!("migration {id} never finished");
    }

    async fn case(&self) -> store::prepaid_ops::SupplyCase {
        self.system
            .store
            .supply_cases(None, Some(CONSUMER), 0, 10)
            .unwrap()
            .pop()
            .expect("a case")
    }

    async fn webhook(&self, body: &[u8], at: DateTime<Utc>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/payments/pg/webhook")
            .header("content-type", "application/json")
            .header(gateway::SIGNATURE_HEADER, gateway::sign(SECRET, body, at))
            .body(Body::from(body.to_vec()))
            .unwrap();
        let res = self.api.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, uri: &str) -> Value {
        let req = Request::builder()
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.operator))
            .body(Body::empty())
            .unwrap();
        let res = self.api.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// Waits until the head-end has finished command `id`.
async fn finished(commands: &hes::commands::Commands, id: &str) -> hes::commands::CommandStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = commands
            .status(&CommandId(id.into()))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no command {id}"));
        if s.state.is_final() {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One simulated meter (the first at `base`) supplying `CONSUMER`, prepaid since 1 November
/// with an empty wallet, and the engine on the utility's default rules.
async fn prepaid_consumer(base: Ipv4Addr) -> (support::System, Prepaid) {
    let system = support::start(support::Options::new(1, base)).await;
    let meter = system.serial(0);
    seed(&system.store, &meter, ist("2026-11-01T00:00:00"));
    system
        .store
        .prepaid_enrol(CONSUMER, ist("2026-11-01T00:00:00"), None)
        .unwrap();
    let engine = Prepaid::new(
        system.store.clone(),
        Some(system.commands.clone()),
        PrepaidConfig::default(),
    );
    (system, engine)
}

async fn scenario() -> Scenario {
    let system = support::start(support::Options::new(1, Ipv4Addr::new(127, 181, 0, 1))).await;
    let meter = system.serial(0);
    seed(&system.store, &meter, ist("2026-11-01T00:00:00"));
    let config = PrepaidConfig {
        disconnection: DisconnectionPolicy {
            grace_after_migration_days: 0,
            ..DisconnectionPolicy::default()
        },
        ..PrepaidConfig::default()
    };
    let engine = Prepaid::new(system.store.clone(), Some(system.commands.clone()), config);
    let clock = Arc::new(AtomicI64::new(0));
    let reading = clock.clone();
    let api = app(AppState::new(system.store.clone())
        .with_commands(system.commands.clone())
        .with_prepaid(engine.clone())
        .with_gateway("pg", GatewaySecret::new(SECRET.to_vec()))
        .with_clock(move || {
            DateTime::from_timestamp_millis(reading.load(Ordering::SeqCst)).unwrap()
        }));
    let operator = issue_token(&system.store, Role::Operator, "ops", None, Utc::now())
        .unwrap()
        .secret;
    // Issued "now": valid for the synthetic clock too (no expiry).
    Scenario {
        system,
        engine,
        api,
        clock,
        operator,
    }
}

fn payment_body(id: &str, paise: i64, at: DateTime<Utc>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "event": "payment.captured",
        "payment": {"id": id, "amount": paise, "currency": "INR",
                    "consumer_no": CONSUMER, "captured_at": at.to_rfc3339()}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recharge_charges_alerts_disconnection_recharge_reconnection() {
    let s = scenario().await;
    let store = s.system.store.clone();

    // Use case 13: postpaid → prepaid through the head-end, opening balance zero: the mode
    // written and read back, then instantaneous, interval and event data read.
    let t0 = ist("2026-11-30T10:00:00");
    let m = s
        .engine
        .start_migration(CONSUMER, true, Paise::ZERO, "test", t0)
        .await
        .unwrap();
    let m = s.migrate(m.id, t0).await;
    assert_eq!(m.state, MigrationState::Completed, "{m:?}");
    let steps: Vec<Value> = serde_json::from_str(&m.log).unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "mode",
            "verify-instantaneous",
            "verify-intervals",
            "verify-events"
        ]
    );
    assert_eq!(
        steps[0]["read_back"], "prepaid",
        "the meter reads back prepaid"
    );
    assert!(store.prepaid_account(CONSUMER).unwrap().unwrap().prepaid);
    let reports = store.mdm_notices(Some("billing"), 0, 10).unwrap();
    assert_eq!(reports.len(), 1, "completion reported to billing");

    // Use case 17.5: ₹500 recharged; the balance is written to the meter and read back.
    let t1 = ist("2026-11-30T11:00:00");
    let paid = s
        .engine
        .payment_confirmed(
            PaymentConfirmation {
                gateway: "pg".into(),
                payment_id: "pay_A".into(),
                consumer_no: CONSUMER.into(),
                amount: Paise(50_000),
                paid_at: t1,
                body: "{}".into(),
                digital: true,
            },
            t1,
        )
        .await
        .unwrap();
    assert_eq!(paid.status, "credited");
    assert_eq!(paid.balance, Some(Paise(50_000)));
    let pushed = s
        .finished(&format!("balance/{CONSUMER}/recharge/pg/pay_A/50000"))
        .await;
    assert_eq!(pushed.state, CommandState::Succeeded, "{pushed:?}");
    assert_eq!(pushed.outcome.unwrap().read_back.as_deref(), Some("50000"));

    // Use case 1.4: daily charges of ₹360, ₹100, ₹100 from the day's intervals as the MDM has
    // them (every 15 minutes, whole days), taking the balance through 30 %, 10 % and 0 % of the
    // recharge; each alert once.
    let meter = model::MeterSerial::new(s.system.serial(0)).unwrap();
    for (day, wh) in [(1u32, 36_000i64), (2, 10_000), (3, 10_000)] {
        let start = ist(&format!("2026-12-{day:02}T00:00:00"));
        let per = wh / 96;
        let rows = (0..96i64)
            .map(|i| IntervalWrite::New {
                reading: IntervalReading {
                    meter: meter.clone(),
                    interval_end: start + chrono::Duration::minutes(15 * (i + 1)),
                    avg_voltage_v: Some(231.0),
                    avg_current_a: Some(2.0),
                    avg_phase_voltage_v: None,
                    avg_phase_current_a: None,
                    // The last interval takes what the division leaves.
                    import_wh: if i == 95 { wh - per * 95 } else { per },
                    import_vah: if i == 95 { wh - per * 95 } else { per },
                    export_wh: Some(0),
                    export_vah: None,
                    quality: vec![],
                },
                method: None,
            })
            .collect();
        store
            .mdm_write(
                &IngestWrite {
                    intervals: rows,
                    ..IngestWrite::default()
                },
                start,
            )
            .unwrap();
    }
    let days: Vec<NaiveDate> = (1..=3)
        .map(|d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap())
        .collect();
    let figures = DayFiguresBook::load(&store, days, &Metering::default()).unwrap();
    let mut balances = Vec::new();
    for (day, at) in [
        (1, "2026-12-02T06:00:00"),
        (2, "2026-12-03T06:00:00"),
        (3, "2026-12-04T06:00:00"),
    ] {
        let day = NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
        let r = s.engine.charge_day(day, ist(at), &figures).unwrap();
        assert!(r.failed.is_empty(), "{:?}", r.failed);
        assert_eq!(r.alerts, 1, "one alert on {day}");
        // Re-running the day charges nothing and alerts nothing.
        let again = s.engine.charge_day(day, ist(at), &figures).unwrap();
        assert_eq!((again.charged_days, again.alerts), (0, 0));
        balances.push(store.wallet_balance(CONSUMER).unwrap().unwrap());
    }
    assert_eq!(
        balances,
        vec![Paise(14_000), Paise(4_000), Paise(-6_000)],
        "₹500 − ₹360 − ₹100 − ₹100"
    );
    let cycle = store.prepaid_account(CONSUMER).unwrap().unwrap().cycle;
    assert_eq!(
        store.low_balance_alerts(CONSUMER, cycle).unwrap(),
        vec![0, 10, 30]
    );
    assert!(store.wallet_check(CONSUMER).unwrap());

    // Use case 3.2: at 06:00 IST (protected until 08:00) the consumer is warned; the
    // disconnection is announced for the later of 08:00 and the notice (3 h): 09:00.
    s.engine.tick(ist("2026-12-04T06:00:00")).await.unwrap();
    let case = s.case().await;
    assert_eq!(case.state, CaseState::Short);
    assert_eq!(case.warned_at, Some(ist("2026-12-04T06:00:00")));
    assert_eq!(case.disconnect_from, Some(ist("2026-12-04T09:00:00")));
    assert!(case.disconnect_command.is_none());
    // 08:30: outside the night window but inside the notice: nothing is sent.
    s.engine.tick(ist("2026-12-04T08:30:00")).await.unwrap();
    assert_eq!(s.case().await.state, CaseState::Short);
    assert!(s.case().await.disconnect_command.is_none());

    // Use cases 3.3–3.6: at 09:00 the disconnection goes to the meter; the open relay is read
    // back before the case says so.
    s.engine.tick(ist("2026-12-04T09:00:00")).await.unwrap();
    let case = s.case().await;
    assert_eq!(case.state, CaseState::Disconnecting);
    let cut = s
        .finished(case.disconnect_command.as_deref().unwrap())
        .await;
    assert_eq!(cut.state, CommandState::Succeeded, "{cut:?}");
    s.engine.tick(ist("2026-12-04T09:01:00")).await.unwrap();
    let case = s.case().await;
    assert_eq!(case.state, CaseState::Disconnected);
    assert_eq!(
        cut.outcome.unwrap().relay,
        Some(model::RelayState::Disconnected)
    );

    // Use case 4: a recharge through the gateway's signed webhook reconnects.
    let t2 = ist("2026-12-04T10:00:00");
    s.set_now(t2);
    let body = payment_body("pay_B", 50_000, t2);
    let (status, answer) = s.webhook(&body, t2).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "credited");
    assert_eq!(answer["balance_paise"], 44_000, "₹−60 recovered first");
    assert_eq!(answer["first_time"], true);
    // A replayed confirmation credits nothing.
    let (status, replay) = s.webhook(&body, t2).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replay["first_time"], false);
    assert_eq!(store.wallet_balance(CONSUMER).unwrap(), Some(Paise(44_000)));
    // A forged one is refused and kept nowhere.
    let forged = payment_body("pay_C", 9_900_000, t2);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/payments/pg/webhook")
        .header(
            gateway::SIGNATURE_HEADER,
            gateway::sign(b"guess", &forged, t2),
        )
        .body(Body::from(forged))
        .unwrap();
    assert_eq!(
        s.api.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(store.payment("pg", "pay_C").unwrap().is_none());

    let case = s.case().await;
    assert_eq!(case.state, CaseState::Reconnecting);
    assert_eq!(case.recharged_at, Some(t2));
    assert_eq!(case.reconnect_due_by, Some(ist("2026-12-04T12:00:00")));
    let restored = s.finished(case.reconnect_command.as_deref().unwrap()).await;
    assert_eq!(restored.state, CommandState::Succeeded, "{restored:?}");
    assert_eq!(
        restored.outcome.unwrap().relay,
        Some(model::RelayState::Connected)
    );
    s.engine.tick(ist("2026-12-04T10:02:00")).await.unwrap();
    let closed = s.get(&format!("/api/v1/disconnections/{}", case.id)).await;
    assert_eq!(closed["state"], "closed", "{closed}");
    assert_eq!(closed["outcome"], "reconnected");
    assert_eq!(closed["overdue"], false);
    assert!(closed["reconnection_minutes"].as_i64().unwrap() <= 120);

    // The API shows the payments and the ledger agrees with the balance.
    let payments = s
        .get(&format!("/api/v1/consumers/{CONSUMER}/payments"))
        .await;
    assert_eq!(payments.as_array().unwrap().len(), 2);
    let wallet = s.get(&format!("/api/v1/consumers/{CONSUMER}/wallet")).await;
    assert_eq!(wallet["balance_paise"], 44_000);
    assert_eq!(wallet["ledger_checks"], true);

    // Use case 14: back to postpaid. The meter's mode is changed and read back, a
    // verification read follows, and the closing statement carries ₹440 to billing.
    let t3 = ist("2026-12-04T11:00:00");
    let back = s
        .engine
        .start_migration(CONSUMER, false, Paise::ZERO, "test", t3)
        .await
        .unwrap();
    assert_eq!(back.balance, Paise(44_000));
    let back = s.migrate(back.id, t3).await;
    assert_eq!(back.state, MigrationState::Completed, "{back:?}");
    let steps: Vec<Value> = serde_json::from_str(&back.log).unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "final-instantaneous",
            "final-intervals",
            "disconnect",
            "mode",
            "reconnect",
            "verify-instantaneous",
            "verify-intervals",
            "verify-events"
        ]
    );
    assert_eq!(steps[2]["relay"], "disconnected");
    assert_eq!(steps[3]["read_back"], "postpaid");
    assert_eq!(steps[4]["relay"], "connected");
    assert!(!store.prepaid_account(CONSUMER).unwrap().unwrap().prepaid);
    assert_eq!(store.wallet_balance(CONSUMER).unwrap(), Some(Paise::ZERO));
    assert!(store.wallet_check(CONSUMER).unwrap());
    let billing = store.mdm_notices(Some("billing"), 0, 10).unwrap();
    assert_eq!(billing.len(), 2);
    let closing: Value = serde_json::from_str(&billing[1].message.payload).unwrap();
    assert_eq!(closing["mode"], "postpaid");
    assert_eq!(closing["balance_paise"], 44_000);
    // Every step was told to the consumer, by SMS and by email, once.
    let told: Vec<(String, String)> = store
        .notifications(Some(CONSUMER), None, 0, 100)
        .unwrap()
        .into_iter()
        .map(|n| (n.kind, n.channel.name().to_string()))
        .collect();
    let sms: Vec<&str> = told
        .iter()
        .filter(|(_, c)| c == "sms")
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        sms,
        [
            "payment_mode_changed",
            "recharge_confirmed",
            "low_balance",
            "low_balance",
            "low_balance",
            "disconnection_notice",
            "disconnected",
            "recharge_confirmed",
            "reconnected",
            "payment_mode_changed"
        ]
    );
    assert_eq!(told.len(), 2 * sms.len(), "each by email too");

    // Use case 14.10: postpaid again, billed from today in cycle 1, with the ₹440 carried in
    // as a credit. A payment now goes to the postpaid account, with a receipt, not a wallet.
    let account = store.billing_account(CONSUMER).unwrap().unwrap();
    assert_eq!(account.billed_from, NaiveDate::from_ymd_opt(2026, 12, 4));
    assert_eq!(account.closed_on, None);
    let body = payment_body("pay_D", 10_000, t3);
    s.set_now(t3);
    let (_, answer) = s.webhook(&body, t3).await;
    assert_eq!(answer["status"], "applied", "{answer}");
    assert_eq!(answer["outstanding_paise"], -54_000);
    assert!(answer["receipt_no"].is_string());
    assert_eq!(store.wallet_balance(CONSUMER).unwrap(), Some(Paise::ZERO));
}

/// Use case 13 for a consumer billed postpaid until now: going prepaid on Dec 10 issues
/// November's bill (the cycle had not run) and a final bill for Dec 1–9, closes the account,
/// and carries what it owes into the wallet, so the account owes nothing and the wallet starts
/// at the opening balance less it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postpaid_consumer_going_prepaid_gets_a_final_bill_and_carries_what_it_owes() {
    let system = support::start(support::Options::new(1, Ipv4Addr::new(127, 181, 9, 1))).await;
    let store = system.store.clone();
    seed(&store, &system.serial(0), ist("2026-10-01T00:00:00"));
    store
        .billing_account_put(
            &store::billing::BillingAccount {
                consumer_no: CONSUMER.into(),
                cycle_day: 1,
                contract_demand: None,
                opening_arrears: Paise(20_000),
                billed_from: None,
                closed_on: None,
            },
            ist("2026-10-01T00:00:00"),
        )
        .unwrap();
    let tariffs: Vec<billing::bill::PostpaidTariff> =
        serde_json::from_str(billing::cycle::DEFAULT_POSTPAID_TARIFFS).unwrap();
    for t in &tariffs {
        store
            .tariff_put(
                &TariffVersion {
                    scheme: "postpaid".into(),
                    category: t.base.category.clone(),
                    effective_from: t.base.effective_from,
                    code: t.base.code.clone(),
                    body: serde_json::to_string(t).unwrap(),
                    created_by: "test".into(),
                    created_at: ist("2026-10-01T00:00:00"),
                },
                NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            )
            .unwrap();
    }
    let engine = Prepaid::new(
        store.clone(),
        Some(system.commands.clone()),
        PrepaidConfig::default(),
    );
    let t = ist("2026-12-10T10:00:00");
    let m = engine
        .start_migration(CONSUMER, true, Paise(100_000), "test", t)
        .await
        .unwrap();
    let mut done = None;
    for _ in 0..20 {
        let now = store.mode_migration(m.id).unwrap().unwrap();
        if now.state.is_final() {
            done = Some(now);
            break;
        }
        if let Some(command) = &now.command {
            finished(&system.commands, command).await;
        }
        engine.tick(t).await.unwrap();
    }
    let m = done.expect("the migration finished");
    assert_eq!(m.state, MigrationState::Completed, "{m:?}");

    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let bills = store.bills_in_force(CONSUMER).unwrap();
    let periods: Vec<(NaiveDate, NaiveDate)> =
        bills.iter().map(|b| (b.period_from, b.period_to)).collect();
    assert_eq!(
        periods,
        [(day(11, 1), day(11, 30)), (day(12, 1), day(12, 9))]
    );
    let last: billing::bill::Bill = serde_json::from_str(&bills[1].body).unwrap();
    assert!(last.final_bill);
    let first: billing::bill::Bill = serde_json::from_str(&bills[0].body).unwrap();
    assert!(!first.final_bill);
    let owed = 20_000 + bills.iter().map(|b| b.current.0).sum::<i64>();
    assert!(owed > 20_000, "the bills charge something: {owed}");
    // The account owes nothing now: it went to the wallet, after the opening ₹1,000.
    let s = billing::payments::account_statement(&store, CONSUMER, day(12, 10))
        .unwrap()
        .unwrap();
    assert_eq!(s.outstanding, Paise::ZERO, "{s:?}");
    assert_eq!(
        store.wallet_balance(CONSUMER).unwrap(),
        Some(Paise(100_000 - owed))
    );
    assert!(store.wallet_check(CONSUMER).unwrap());
    let account = store.billing_account(CONSUMER).unwrap().unwrap();
    assert_eq!(account.closed_on, Some(day(12, 10)));
    let report: Value = serde_json::from_str(
        &store.mdm_notices(Some("billing"), 0, 10).unwrap()[0]
            .message
            .payload,
    )
    .unwrap();
    assert_eq!(report["postpaid_carried_paise"], owed);

    // December's cycle later leaves the closed account alone: its final bill stands, and its
    // balance is in the wallet.
    let book = billing::cycle::PostpaidBook::from_store(&store).unwrap();
    let r = billing::cycle::run_cycle(
        &store,
        &book,
        1,
        day(12, 31) + chrono::Duration::days(2),
        &Metering::default(),
    )
    .unwrap();
    assert_eq!((r.consumers, r.new, r.revised), (0, 0, 0), "{r:?}");
    assert_eq!(store.bills_in_force(CONSUMER).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnection_the_meter_does_not_confirm_is_tried_again_later() {
    let (system, engine) = prepaid_consumer(Ipv4Addr::new(127, 182, 0, 1)).await;
    let store = system.store.clone();
    store
        .wallet_post(
            &store::prepaid::NewEntry {
                consumer_no: CONSUMER,
                cause: "daily/2026-12-06",
                kind: "daily_charge",
                amount: Paise(-2_500),
                detail: "{}",
            },
            ist("2026-12-07T06:00:00"),
        )
        .unwrap();
    let case = || store.supply_case_open_for(CONSUMER).unwrap().unwrap();

    // Monday 7 December, 10:00 IST: warned for 13:00.
    engine.tick(ist("2026-12-07T10:00:00")).await.unwrap();
    assert_eq!(case().disconnect_from, Some(ist("2026-12-07T13:00:00")));
    // The meter stops answering; the disconnection at 13:00 is not confirmed.
    system.fleet.set_fault(
        0,
        meter_sim::FaultKind::NoAnswer,
        Some(meter_sim::Fault::new(meter_sim::FaultKind::NoAnswer)),
    );
    engine.tick(ist("2026-12-07T13:00:00")).await.unwrap();
    let first = case().disconnect_command.unwrap();
    assert_ne!(
        finished(&system.commands, &first).await.state,
        CommandState::Succeeded
    );
    engine.tick(ist("2026-12-07T13:01:00")).await.unwrap();
    let c = case();
    assert_eq!(
        c.state,
        CaseState::Short,
        "not disconnected without the relay read back"
    );
    assert!(c.last_error.is_some());
    // Not hammered: nothing new within ten minutes.
    engine.tick(ist("2026-12-07T13:05:00")).await.unwrap();
    assert_eq!(case().disconnect_command.as_deref(), Some(first.as_str()));
    // The meter answers again; the next try is confirmed.
    system
        .fleet
        .set_fault(0, meter_sim::FaultKind::NoAnswer, None);
    engine.tick(ist("2026-12-07T13:11:00")).await.unwrap();
    let second = case().disconnect_command.unwrap();
    assert_ne!(second, first);
    let done = finished(&system.commands, &second).await;
    assert_eq!(
        done.outcome.as_ref().unwrap().relay,
        Some(model::RelayState::Disconnected)
    );
    engine.tick(ist("2026-12-07T13:12:00")).await.unwrap();
    let c = case();
    assert_eq!(c.state, CaseState::Disconnected);
    assert_eq!(c.attempts, 2);
    assert!(c.last_error.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recharge_after_an_unconfirmed_disconnection_reconnects_and_nobody_is_cut_unwarned() {
    let (system, engine) = prepaid_consumer(Ipv4Addr::new(127, 183, 0, 1)).await;
    let store = system.store.clone();
    let debit = |cause: &str, paise: i64| {
        store
            .wallet_post(
                &store::prepaid::NewEntry {
                    consumer_no: CONSUMER,
                    cause,
                    kind: "daily_charge",
                    amount: Paise(paise),
                    detail: "{}",
                },
                ist("2026-12-07T06:00:00"),
            )
            .unwrap()
    };
    debit("daily/2026-12-06", -2_500);
    let case = || store.supply_case_open_for(CONSUMER).unwrap().unwrap();

    // Without a mobile or an email there is no warning, so no disconnection: the case says so.
    store
        .contact_put(CONSUMER, None, None, ist("2026-12-07T06:00:00"))
        .unwrap();
    engine.tick(ist("2026-12-07T10:00:00")).await.unwrap();
    engine.tick(ist("2026-12-07T16:00:00")).await.unwrap();
    let c = case();
    assert_eq!(c.state, CaseState::Short);
    assert!(c.warned_at.is_none() && c.disconnect_command.is_none());
    assert!(c.last_error.as_deref().unwrap().contains("cannot warn"));

    // With a mobile: warned at 10:00 for 13:00; the meter does not answer the disconnection.
    store
        .contact_put(
            CONSUMER,
            Some("+919812345678"),
            None,
            ist("2026-12-08T09:00:00"),
        )
        .unwrap();
    engine.tick(ist("2026-12-08T10:00:00")).await.unwrap();
    system.fleet.set_fault(
        0,
        meter_sim::FaultKind::NoAnswer,
        Some(meter_sim::Fault::new(meter_sim::FaultKind::NoAnswer)),
    );
    engine.tick(ist("2026-12-08T13:00:00")).await.unwrap();
    let cut = case().disconnect_command.unwrap();
    assert_ne!(
        finished(&system.commands, &cut).await.state,
        CommandState::Succeeded
    );
    engine.tick(ist("2026-12-08T13:01:00")).await.unwrap();
    assert_eq!(case().state, CaseState::Short);
    system
        .fleet
        .set_fault(0, meter_sim::FaultKind::NoAnswer, None);

    // The consumer pays: the relay may have opened, so the supply is reconnected (and
    // confirmed), not just the case closed.
    let paid = engine
        .payment_confirmed(
            PaymentConfirmation {
                gateway: "pg".into(),
                payment_id: "pay_R".into(),
                consumer_no: CONSUMER.into(),
                amount: Paise(20_000),
                paid_at: ist("2026-12-08T13:05:00"),
                body: "{}".into(),
                digital: true,
            },
            ist("2026-12-08T13:05:00"),
        )
        .await
        .unwrap();
    assert_eq!(paid.status, "credited");
    let c = case();
    assert_eq!(c.state, CaseState::Reconnecting);
    let done = finished(&system.commands, c.reconnect_command.as_deref().unwrap()).await;
    assert_eq!(
        done.outcome.unwrap().relay,
        Some(model::RelayState::Connected)
    );
    engine.tick(ist("2026-12-08T13:06:00")).await.unwrap();
    let closed = store.supply_case(c.id).unwrap().unwrap();
    assert_eq!(closed.state, CaseState::Closed);
    assert_eq!(closed.outcome.as_deref(), Some("reconnected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_that_fails_after_switching_off_switches_the_supply_back_on() {
    let (system, engine) = prepaid_consumer(Ipv4Addr::new(127, 184, 0, 1)).await;
    let store = system.store.clone();
    let t = ist("2026-12-08T11:00:00");
    let m = engine
        .start_migration(CONSUMER, false, Paise::ZERO, "test", t)
        .await
        .unwrap();
    // Through the final reads and the switch-off; then the meter stops answering.
    loop {
        let m = store.mode_migration(m.id).unwrap().unwrap();
        if m.step == 3 {
            break;
        }
        finished(&system.commands, m.command.as_deref().unwrap()).await;
        engine.tick(t).await.unwrap();
    }
    system.fleet.set_fault(
        0,
        meter_sim::FaultKind::NoAnswer,
        Some(meter_sim::Fault::new(meter_sim::FaultKind::NoAnswer)),
    );
    let mut sent = Vec::new();
    let failed = loop {
        let m = store.mode_migration(m.id).unwrap().unwrap();
        if m.state.is_final() {
            break m;
        }
        let command = m.command.clone().unwrap();
        finished(&system.commands, &command).await;
        sent.push(command);
        if sent.len() == 3 {
            // The last try fails while the meter is still silent; it answers again after.
            engine.tick(t).await.unwrap();
            system
                .fleet
                .set_fault(0, meter_sim::FaultKind::NoAnswer, None);
            continue;
        }
        engine.tick(t).await.unwrap();
    };
    assert_eq!(failed.state, MigrationState::Failed);
    let id = failed.id;
    assert_eq!(
        sent,
        [
            format!("migration/{id}/mode"),
            format!("migration/{id}/mode/2"),
            format!("migration/{id}/mode/3")
        ],
        "the mode step tried three times"
    );
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap()
            .contains("switched back on")
    );
    let restore = finished(&system.commands, &format!("migration/{id}/restore")).await;
    assert_eq!(
        restore.outcome.unwrap().relay,
        Some(model::RelayState::Connected),
        "the supply is on again"
    );
    // Still prepaid: nothing was closed.
    assert!(store.prepaid_account(CONSUMER).unwrap().unwrap().prepaid);
}

//! The MDM's use cases end to end: simulated meters → head-end (real TCP, HLS + AES-GCM) → bus
//! → MDM ingest → store → API, checking the figures the API returns against what the meters
//! measured. Use cases as numbered in the AMISP use-case table.

mod support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Days, NaiveDate, Utc};
use hes::collect::{self, BLOCK_LOAD, collect_all};
use hes::plan::JobKind;
use meter_sim::EventKind;
use model::MeterSerial;
use serde_json::{Value, json};
use store::mdm::{Connection, Consumer, NetworkImport, NetworkNode, NodeKind, ServicePoint};
use store::{GapChange, SessionCommit};
use support::{Options, System, start};

fn yesterday() -> NaiveDate {
    mdm::calendar::ist_date(Utc::now()) - Days::new(1)
}

/// A day's IST midnights.
fn bounds(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    mdm::calendar::day_bounds(day)
}

/// A time as a query parameter (`+` written `%2B`).
fn q(t: DateTime<Utc>) -> String {
    t.to_rfc3339().replace('+', "%2B")
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().unwrap()
}

/// A substation, a feeder and a transformer with a consumer at every meter.
fn network(sys: &System) -> NetworkImport {
    let since = Utc::now() - chrono::Duration::days(400);
    let node = |id: &str, kind| NetworkNode {
        id: id.into(),
        kind,
        name: id.into(),
    };
    NetworkImport {
        nodes: vec![
            (node("SS-1", NodeKind::Substation), None),
            (node("F-1", NodeKind::Feeder), Some("SS-1".into())),
            (node("DT-1", NodeKind::Transformer), Some("F-1".into())),
        ],
        connections: (0..sys.fleet.meters())
            .map(|i| {
                let serial = sys.serial(i);
                Connection {
                    consumer: Consumer {
                        consumer_no: format!("C-{serial}"),
                        name: format!("Consumer {i}"),
                        category: "residential".into(),
                        net_metered: false,
                    },
                    service_point: ServicePoint {
                        id: format!("SP-{serial}"),
                        address: "Gomti Nagar, Lucknow".into(),
                        sanctioned_load_w: 5000,
                    },
                    meter: MeterSerial::new(serial).unwrap(),
                    parent: "DT-1".into(),
                    since,
                }
            })
            .collect(),
        since,
    }
}

/// Use cases 1.1–1.4 and 2.2–2.5: the daily profile, block load and billing profile collected
/// on schedule reach the MDM; the API gives each meter's intervals and registers, a consumer's
/// daily consumption and billing determinants, and they agree with the meter's own registers.
#[tokio::test]
async fn daily_and_monthly_data_reach_the_api_and_agree_with_the_meters_registers() {
    let mut opts = Options::new(2, Ipv4Addr::new(127, 241, 0, 1));
    opts.mdm = true;
    // Far enough back to hold a billing date (the 1st of the month) and yesterday whole.
    opts.backfill = Duration::from_secs(40 * 86_400);
    let sys = start(opts).await;
    sys.store
        .mdm_import_network(&network(&sys), Utc::now())
        .unwrap();
    let stats = collect_all(
        &sys.hes,
        &[JobKind::BlockLoad, JobKind::Daily, JobKind::Billing],
        |_, _| {},
    )
    .await;
    assert_eq!(stats.succeeded, 2, "{stats:?}");
    sys.drain().await;

    let day = yesterday();
    let (start, end) = bounds(day);
    for i in 0..2 {
        let serial = sys.serial(i);
        // 1.3: every interval of yesterday, as measured.
        let intervals = sys
            .get(&format!(
                "/api/v1/meters/{serial}/intervals?from={}&to={}&limit=1000",
                q(start + chrono::Duration::seconds(1)),
                q(end)
            ))
            .await;
        let intervals = items(&intervals);
        assert_eq!(intervals.len(), 96, "{serial}");
        assert!(intervals.iter().all(|r| r["quality"] == json!([])));
        let wh: i64 = intervals
            .iter()
            .map(|r| r["import_wh"].as_i64().unwrap())
            .sum();
        let vah: i64 = intervals
            .iter()
            .map(|r| r["import_vah"].as_i64().unwrap())
            .sum();
        let peak = intervals
            .iter()
            .map(|r| r["import_wh"].as_i64().unwrap())
            .max()
            .unwrap();
        // The midnight registers advance by exactly the day's intervals.
        let daily = sys
            .get(&format!(
                "/api/v1/meters/{serial}/daily?from={}&to={}",
                q(start),
                q(end)
            ))
            .await;
        let registers: Vec<(i64, i64)> = items(&daily)
            .iter()
            .map(|d| {
                (
                    d["import_wh"].as_i64().unwrap(),
                    d["import_vah"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(registers.len(), 2, "{daily}");
        assert_eq!(
            registers[1].0 - registers[0].0,
            wh,
            "{serial} kWh register advance"
        );
        assert_eq!(
            registers[1].1 - registers[0].1,
            vah,
            "{serial} kVAh register advance"
        );

        // 1.4: the consumer's day, as handed on to prepaid.
        let consumer = format!("C-{serial}");
        let c = sys
            .get(&format!("/api/v1/consumers/{consumer}/daily?day={day}"))
            .await;
        assert_eq!(c["totals"]["import_wh"], wh, "{c}");
        assert_eq!(c["totals"]["import_vah"], vah, "{c}");
        assert_eq!(c["totals"]["max_w"]["value"], peak * 4, "{c}");
        assert_eq!(c["estimated"], false);
        assert_eq!(c["missing_intervals"], 0);
        assert_eq!(c["meters"], json!([serial]));

        // 2.4: the billing profile; its register at the billing date is the daily snapshot
        // taken at the same midnight.
        let billing = sys
            .get(&format!(
                "/api/v1/meters/{serial}/billing?from={}",
                q(start - chrono::Duration::days(40))
            ))
            .await;
        let last = items(&billing)
            .last()
            .unwrap_or_else(|| panic!("no billing row: {billing}"));
        let billed_at = last["billing_date"].as_str().unwrap();
        let at: DateTime<Utc> = billed_at.parse().unwrap();
        let snap = sys
            .get(&format!(
                "/api/v1/meters/{serial}/daily?from={}&to={}",
                q(at),
                q(at)
            ))
            .await;
        assert_eq!(items(&snap)[0]["import_wh"], last["import_wh"], "{last}");

        // 2.5: the determinants of yesterday add up by TOD zone to the day's energy.
        let d = sys
            .get(&format!(
                "/api/v1/consumers/{consumer}/determinants?from={}&to={}",
                q(start),
                q(end)
            ))
            .await;
        let zones: i64 = d["zone_import_wh"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| z.as_i64().unwrap())
            .sum();
        assert_eq!(zones, wh, "{d}");
        assert_eq!(d["totals"]["import_wh"], wh);
        assert_eq!(d["export_wh"], Value::Null, "not net-metered");
    }
    // Completeness of yesterday: both meters complete and on time.
    let c = sys.get(&format!("/api/v1/completeness?day={day}")).await;
    assert_eq!(
        (c["meters"].as_u64(), c["full_block_load"].as_u64()),
        (Some(2), Some(2)),
        "{c}"
    );
    // Collected today: late for yesterday's 08:00 deadline, on time within a day.
    let c = sys
        .get(&format!("/api/v1/completeness?day={day}&on_time_hours=24"))
        .await;
    assert_eq!(c["share_on_time"], 1.0, "{c}");
    assert_eq!(
        sys.get("/api/v1/network/SS-1/meters").await["items"],
        json!([sys.serial(0), sys.serial(1)])
    );
}

/// Use cases 5.1–5.3, 7.1–7.3 and 9.1: alerts the meters push reach the MDM at once, their
/// event logs follow, and the MDM routes a tamper to field work and billing, an outage to OMS
/// and a load violation (read with the event logs: overload has no status-word bit to push) to
/// customer care.
#[tokio::test]
async fn tamper_outage_and_overload_alerts_are_stored_and_routed() {
    let mut opts = Options::new(2, Ipv4Addr::new(127, 242, 0, 1));
    opts.mdm = true;
    opts.push = true;
    let sys = start(opts).await;
    let (m0, m1) = (sys.serial(0), sys.serial(1));
    sys.fleet.trigger_event(0, EventKind::CoverOpen);
    sys.fleet.trigger_event(0, EventKind::OverloadOn);
    sys.fleet.power_off(1, Duration::from_secs(3600));

    let from = q(Utc::now() - chrono::Duration::hours(1));
    let serial0 = MeterSerial::new(m0.clone()).unwrap();
    collect::collect(&sys.hes, &serial0, &[JobKind::Events], 1)
        .await
        .unwrap();
    let events = sys
        .poll(&format!("/api/v1/meters/{m0}/events?from={from}"), |v| {
            let codes: Vec<i64> = items(v)
                .iter()
                .map(|e| e["code"].as_i64().unwrap())
                .collect();
            codes.contains(&251) && codes.contains(&215)
        })
        .await;
    let cover = items(&events).iter().find(|e| e["code"] == 251).unwrap();
    assert_eq!(cover["severity"], "critical", "{cover}");
    assert_eq!(cover["class"], "tamper", "{cover}");
    let overload = items(&events).iter().find(|e| e["code"] == 215).unwrap();
    assert_eq!(overload["class"], "load_violation", "{overload}");
    let outage = sys
        .poll(&format!("/api/v1/meters/{m1}/alarms?from={from}"), |v| {
            items(v).iter().any(|a| a["kind"] == "outage_started")
        })
        .await;
    assert!(!items(&outage).is_empty());
    // The outage desk groups the last gasp once its window closes: a meter outage of m1.
    let outages = sys.poll("/api/v1/outages", |v| !items(v).is_empty()).await;
    assert_eq!(items(&outages)[0]["level"], "meter");
    assert_eq!(items(&outages)[0]["node"], m1.as_str());
    sys.drain().await;

    let routed = |to: &str| -> Vec<(String, Value)> {
        sys.store
            .mdm_notices(Some(to), 0, 100)
            .unwrap()
            .into_iter()
            .map(|m| {
                (
                    m.message.meter.to_string(),
                    serde_json::from_str(&m.message.payload).unwrap(),
                )
            })
            .collect()
    };
    let is =
        |v: &(String, Value), meter: &str, notice: &str| v.0 == meter && v.1["notice"] == notice;
    assert!(
        routed("wfm")
            .iter()
            .any(|v| is(v, &m0, "site_inspection") && v.1["code"] == 251)
    );
    assert!(routed("billing").iter().any(|v| is(v, &m0, "tamper_flag")));
    assert!(
        routed("crm")
            .iter()
            .any(|v| is(v, &m0, "load_violation") && v.1["code"] == 215)
    );
    assert!(
        routed("oms")
            .iter()
            .any(|v| is(v, &m1, "outage") && v.1["state"] == "started" && v.1["meters_off"] == 1)
    );
    // The same notices through the API, a page at a time.
    let first = sys.get("/api/v1/notices?destination=wfm&limit=1").await;
    assert_eq!(items(&first).len(), 1);
    assert_eq!(items(&first)[0]["notice"]["notice"], "site_inspection");
    assert_eq!(items(&first)[0]["delivered_at"], Value::Null);
    let all = sys.get("/api/v1/notices?limit=1000").await;
    assert!(items(&all).iter().any(|n| n["destination"] == "oms"));
    assert!(all["next_cursor"].is_null());
    // Nothing is routed twice, though the alert and the event log both told of the cover.
    let wfm = routed("wfm");
    assert_eq!(
        wfm.iter().filter(|v| is(v, &m0, "site_inspection")).count(),
        1,
        "{wfm:?}"
    );
}

/// Use cases 6.1–6.3, 12.4–12.5 and 21.1–21.2: a day read on demand through the API misses two
/// hours; after the day the MDM estimates them; the head-end re-reads the missed range and the
/// actual readings replace the estimates, which stay in each interval's history.
#[tokio::test]
async fn a_missed_range_is_estimated_then_reread_and_replaced_by_the_actuals() {
    let mut opts = Options::new(1, Ipv4Addr::new(127, 243, 0, 1));
    opts.mdm = true;
    let sys = start(opts).await;
    let meter = sys.serial(0);
    let (start, end) = bounds(yesterday());
    let hours = |h: i64| start + chrono::Duration::minutes(h);
    // 21.1: two on-demand reads leave out the intervals ending 10:15 to 12:00 IST.
    for (id, from, to) in [
        ("read-am", hours(15), hours(600)),
        ("read-pm", hours(735), end),
    ] {
        let body = json!({"id": id, "meter": meter, "command": {
            "kind": "read_block_load", "from": from.to_rfc3339(), "to": to.to_rfc3339()}});
        let (status, submitted) = sys
            .send(Method::POST, "/api/v1/commands", &sys.operator, Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{submitted}");
        let done = sys
            .poll(&format!("/api/v1/commands/{id}"), |c| {
                matches!(
                    c["state"].as_str(),
                    Some("succeeded" | "failed" | "timed_out")
                )
            })
            .await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
    sys.drain().await;
    let range = format!(
        "/api/v1/meters/{meter}/intervals?from={}&to={}&limit=1000",
        q(start + chrono::Duration::seconds(1)),
        q(end)
    );
    assert_eq!(items(&sys.get(&range).await).len(), 88);

    // After the day, the MDM estimates the eight missing intervals (two hours: interpolated).
    let ingest = sys.ingest.clone().unwrap();
    let report = tokio::task::spawn_blocking(move || ingest.estimate_day(yesterday(), Utc::now()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((report.gaps, report.estimated), (1, 8), "{report:?}");
    let all = sys.get(&range).await;
    let estimated: BTreeMap<String, Value> = items(&all)
        .iter()
        .filter(|r| r["quality"] == json!(["estimated"]))
        .map(|r| (r["interval_end"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    assert_eq!(estimated.len(), 8);
    assert!(
        estimated
            .values()
            .all(|r| r["estimation_method"] == "linear_interpolation")
    );

    // 6.1: the head-end re-reads exactly the missed range (it records a gap as it does when a
    // meter answers short), and the actuals reach the MDM (6.3).
    let serial = MeterSerial::new(meter.clone()).unwrap();
    sys.hes
        .commit(SessionCommit {
            meter: serial.clone(),
            invocation_counter: None,
            job: "test".into(),
            attempt: 1,
            started_at: Utc::now(),
            ended_at: Utc::now(),
            outcome: store::Outcome::Ok,
            contacted: false,
            cursors: Vec::new(),
            gaps: vec![GapChange::Open {
                profile: BLOCK_LOAD.into(),
                from: hours(615),
                to: hours(720),
            }],
            outbox: Vec::new(),
        })
        .await
        .unwrap();
    let done = collect::collect(&sys.hes, &serial, &[JobKind::GapReread], 1)
        .await
        .unwrap();
    assert_eq!(done.value.intervals_recovered, 8, "{:?}", done.value);
    sys.drain().await;
    let after = sys.get(&range).await;
    assert_eq!(items(&after).len(), 96);
    for r in items(&after) {
        assert_eq!(r["quality"], json!([]), "{r}");
        assert_eq!(r["estimation_method"], Value::Null);
    }
    let (end0, estimate) = estimated.iter().next().unwrap();
    let history = sys
        .get(&format!(
            "/api/v1/meters/{meter}/intervals/{}/history",
            end0.replace('+', "%2B")
        ))
        .await;
    let versions = items(&history);
    assert_eq!(versions.len(), 2, "{history}");
    assert_eq!(versions[0]["import_wh"], estimate["import_wh"]);
    assert_eq!(versions[0]["estimation_method"], "linear_interpolation");
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["quality"], json!([]));
}

/// Use cases 11.1–11.2: a meter registered under a DCU hangs below it in the MDM's network.
#[tokio::test]
async fn a_meter_reached_through_a_dcu_hangs_below_it() {
    let mut opts = Options::new(2, Ipv4Addr::new(127, 244, 0, 1));
    opts.mdm = true;
    opts.dcu_of_first = Some("DCU-7".into());
    let sys = start(opts).await;
    sys.drain().await;
    let below = sys.get("/api/v1/network/DCU-7/meters").await;
    assert_eq!(below["items"], json!([sys.serial(0)]));
    let (status, err) = sys
        .send(
            Method::GET,
            "/api/v1/network/DCU-404/meters",
            &sys.reader,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
}

//! Use cases 7.3–7.5 end to end against simulated meters over TCP: meters under one DT lose
//! power and push their last gasps; the MDM's outage desk raises one DT outage and tells OMS
//! and CIS/CRM once; the OMS ping through the head-end finds them dead and their neighbours
//! live; power returns, the first breaths restore the outage and the restoration is told.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use store::mdm::{Child, NetworkNode, NodeKind};
use support::{Options, System, start};

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().unwrap()
}

/// Feeder F-1 with DT-A (meters 0–3) and DT-B (meters 4–5).
fn hang(sys: &System) {
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    for (id, kind, parent) in [
        ("SS-1", NodeKind::Substation, None),
        ("F-1", NodeKind::Feeder, Some("SS-1")),
        ("DT-A", NodeKind::Transformer, Some("F-1")),
        ("DT-B", NodeKind::Transformer, Some("F-1")),
    ] {
        sys.store
            .mdm_put_node(&NetworkNode {
                id: id.into(),
                kind,
                name: id.into(),
            })
            .unwrap();
        if let Some(p) = parent {
            sys.store
                .mdm_link(&Child::Node(kind, id.into()), p, since)
                .unwrap();
        }
    }
    for i in 0..6 {
        let meter = model::MeterSerial::new(sys.serial(i)).unwrap();
        let dt = if i < 4 { "DT-A" } else { "DT-B" };
        sys.store.mdm_link(&Child::Meter(meter), dt, since).unwrap();
    }
}

async fn ping_until_done(sys: &System, batch: &str) -> Value {
    sys.poll(&format!("/api/v1/oms/ping/{batch}"), |v| v["done"] == true)
        .await
}

#[tokio::test]
async fn a_dark_dt_is_one_outage_pinged_dead_and_restored_when_power_returns() {
    let mut opts = Options::new(6, Ipv4Addr::new(127, 243, 0, 1));
    opts.mdm = true;
    opts.push = true;
    let sys = start(opts).await;
    hang(&sys);
    let dark: Vec<String> = (0..4).map(|i| sys.serial(i)).collect();
    for i in 0..4 {
        sys.fleet.power_off(i, Duration::from_secs(15));
    }

    // One outage of DT-A with its four meters (DT-B is half the feeder: not a feeder outage).
    let list = sys
        .poll("/api/v1/outages?state=active", |v| {
            items(v).first().is_some_and(|o| o["meters"] == 4)
        })
        .await;
    assert_eq!(items(&list).len(), 1, "{list}");
    let outage = &items(&list)[0];
    assert_eq!(outage["level"], "dt");
    assert_eq!(outage["node"], "DT-A");
    assert!(outage["started_at"].as_str().unwrap().ends_with("+05:30"));
    let id = outage["id"].as_u64().unwrap();
    let detail = sys.get(&format!("/api/v1/outages/{id}")).await;
    let meters: Vec<&str> = items(&detail)
        .iter()
        .map(|m| m["meter"].as_str().unwrap())
        .collect();
    assert_eq!(meters, dark);
    assert!(
        items(&detail)
            .iter()
            .all(|m| m["on_at"].is_null() && m["power_offs"] == 1)
    );

    // OMS asks: the DT's meters are dead, DT-B's live. A reader may look, not ping.
    let (status, body) = sys
        .send(
            Method::POST,
            &format!("/api/v1/outages/{id}/ping"),
            &sys.reader,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, sent) = sys
        .send(
            Method::POST,
            &format!("/api/v1/outages/{id}/ping"),
            &sys.operator,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!(sent["meters"], 4);
    let report = ping_until_done(&sys, sent["batch"].as_str().unwrap()).await;
    assert_eq!(
        (report["dead"].clone(), report["live"].clone()),
        (json!(4), json!(0)),
        "{report}"
    );
    let (status, sent) = sys
        .send(
            Method::POST,
            "/api/v1/oms/ping",
            &sys.operator,
            Some(json!({"node": "DT-B"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let report = ping_until_done(&sys, sent["batch"].as_str().unwrap()).await;
    assert_eq!(
        (report["dead"].clone(), report["live"].clone()),
        (json!(0), json!(2)),
        "{report}"
    );
    assert!(items(&report).iter().all(|m| m["status"] == "live"));

    // Power returns: the first breaths restore the outage.
    let restored = sys
        .poll(&format!("/api/v1/outages/{id}"), |v| {
            v["state"] == "restored"
        })
        .await;
    assert_eq!(restored["meters_on"], 4);
    assert!(restored["duration_s"].as_i64().unwrap() >= 14, "{restored}");
    assert!(items(&restored).iter().all(|m| m["power_ons"] == 1));

    // OMS and CIS/CRM were told once that it started and once that it was restored.
    sys.drain().await;
    for to in ["oms", "crm"] {
        let notices = sys.get(&format!("/api/v1/notices?destination={to}")).await;
        let states: Vec<&str> = items(&notices)
            .iter()
            .filter(|n| n["notice"]["notice"] == "outage")
            .map(|n| n["notice"]["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, vec!["started", "restored"], "{to}: {notices}");
        assert_eq!(
            items(&notices)[0]["notice"]["meters"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
    }
    assert_eq!(items(&sys.get("/api/v1/outages").await).len(), 1);
}

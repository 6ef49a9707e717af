//! Field operations against simulated meters over real TCP (issue 7): a tamper the MDM routed
//! to field work becomes an inspection order, a confirmed tamper disconnects the supply
//! through the head-end (relay read back) and is recorded for billing, resolving it
//! reconnects; a new connection goes from a verified request to its installation order, the
//! field report, the verification reads from the meter and the confirmation to billing and
//! CIS with the initial reading.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use field::service::Field;
use mdm::events::Routing;
use model::command::{CommandId, CommandState};
use model::{EventCategory, EventKind, MeterEvent, MeterSerial, RelayState};
use serde_json::{Value, json};
use store::mdm::{Child, Consumer, NetworkNode, NodeKind, RoutedMessage, ServicePoint};

async fn finished(commands: &hes::commands::Commands, id: &str) -> hes::commands::CommandStatus {
    for _ in 0..600 {
        if let Some(s) = commands.status(&CommandId(id.into())).await.unwrap()
            && s.state.is_final()
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("command {id} never finished");
}

/// A transformer DT-9 below feeder F-1 below substation S-1.
fn network(store: &store::Store) {
    let since = Utc::now() - chrono::Duration::days(30);
    for (id, kind, parent) in [
        ("S-1", NodeKind::Substation, None),
        ("F-1", NodeKind::Feeder, Some("S-1")),
        ("DT-9", NodeKind::Transformer, Some("F-1")),
    ] {
        store
            .mdm_put_node(&NetworkNode {
                id: id.into(),
                kind,
                name: id.into(),
            })
            .unwrap();
        if let Some(p) = parent {
            store
                .mdm_link(&Child::Node(kind, id.into()), p, since)
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_tamper_disconnects_the_supply_and_its_resolution_reconnects_it() {
    let system = support::start(support::Options::new(1, Ipv4Addr::new(127, 183, 0, 1))).await;
    let store = system.store.clone();
    let meter = MeterSerial::new(system.serial(0)).unwrap();
    let since = Utc::now() - chrono::Duration::days(30);
    store
        .mdm_put_consumer(
            &Consumer {
                consumer_no: "C-7".into(),
                name: "Kiran".into(),
                category: "residential".into(),
                net_metered: false,
            },
            since,
        )
        .unwrap();
    store
        .mdm_put_service_point(&ServicePoint {
            id: "SP-7".into(),
            address: "7 Canal Road, Kanpur".into(),
            sanctioned_load_w: 2000,
        })
        .unwrap();
    store.mdm_connect_consumer("SP-7", "C-7", since).unwrap();
    store.mdm_install_meter(&meter, "SP-7", since).unwrap();

    // The meter reported a magnet (IS 15959 code 201) two days ago; the MDM routed it.
    let event = MeterEvent {
        meter: meter.clone(),
        at: chrono::DateTime::from_timestamp(
            (Utc::now() - chrono::Duration::days(2)).timestamp(),
            0,
        )
        .unwrap(),
        code: 201,
        category: EventCategory::Other,
        kind: EventKind::Occurrence,
        description: "Magnet".into(),
        quality: vec![],
    };
    for (destination, notice) in Routing::default().route(&event) {
        store
            .mdm_route(
                &RoutedMessage {
                    key: notice.key(&destination),
                    meter: meter.clone(),
                    destination,
                    payload: serde_json::to_string(&notice).unwrap(),
                },
                Utc::now(),
            )
            .unwrap();
    }
    let field = Field::new(store.clone(), Some(system.commands.clone()), None);
    assert_eq!(field.take_notices(Utc::now()).unwrap(), 1);
    assert_eq!(
        field.take_notices(Utc::now()).unwrap(),
        0,
        "each notice once"
    );

    // 5.3: the inspection order names the consumer, meter, code and address.
    let page = system
        .get("/api/v1/work-orders?kind=tamper_inspection")
        .await;
    let order = &page["items"][0];
    assert_eq!(order["consumer_no"], "C-7", "{page}");
    assert_eq!(order["meter"], meter.as_str());
    assert_eq!(order["address"], "7 Canal Road, Kanpur");
    assert_eq!(order["detail"]["tamper_code"], 201);
    assert_eq!(order["state"], "open");
    let number = order["number"].as_str().unwrap().to_string();
    let uri = |step: &str| format!("/api/v1/work-orders/{number}/{step}");

    let op = system.operator.clone();
    let (status, _) = system
        .send(
            Method::POST,
            &uri("assign"),
            &system.reader,
            Some(json!({"crew": "crew 4"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, assigned) = system
        .send(
            Method::POST,
            &uri("assign"),
            &op,
            Some(json!({"crew": "crew 4"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{assigned}");
    assert_eq!(assigned["assigned_to"], "crew 4");
    // A report of the wrong kind, or without the reason the bill needs, is refused.
    let (status, _) = system
        .send(
            Method::POST,
            &uri("complete"),
            &op,
            Some(json!({"kind": "manual_reconnect"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = system
        .send(
            Method::POST,
            &uri("complete"),
            &op,
            Some(json!({"kind": "tamper_inspection", "finding": "confirmed"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // 5.4–5.6: confirmed: the supply off (the relay read back), the period for billing.
    let (status, done) = system
        .send(
            Method::POST,
            &uri("complete"),
            &op,
            Some(json!({"kind": "tamper_inspection", "finding": "confirmed",
                        "reason": "Magnet on the meter", "note": "seal broken"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["state"], "completed");
    let id = done["id"].as_u64().unwrap();
    let cut = finished(&system.commands, &format!("work-order/{id}/disconnect")).await;
    assert_eq!(cut.state, CommandState::Succeeded, "{cut:?}");
    assert_eq!(cut.outcome.unwrap().relay, Some(RelayState::Disconnected));
    let periods = store.tamper_periods_of("C-7", 10).unwrap();
    assert_eq!(periods.len(), 1);
    assert_eq!(periods[0].reason, "Magnet on the meter");
    assert_eq!(periods[0].from, event.at);
    let told: Vec<String> = store
        .mdm_notices(None, 0, 100)
        .unwrap()
        .into_iter()
        .filter(|n| n.message.key.starts_with("work-order/"))
        .map(|n| n.message.destination)
        .collect();
    assert_eq!(told, ["cis", "billing"]);
    let (status, _) = system
        .send(
            Method::POST,
            &uri("complete"),
            &op,
            Some(json!({"kind": "tamper_inspection", "finding": "not_found"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a second report");

    // 5.7–5.8: resolved: the supply back on, the relay read back.
    let (status, resolved) = system
        .send(
            Method::POST,
            &uri("resolve"),
            &op,
            Some(json!({"note": "paid"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");
    assert_eq!(resolved["state"], "resolved");
    let on = finished(&system.commands, &format!("work-order/{id}/reconnect")).await;
    assert_eq!(on.outcome.unwrap().relay, Some(RelayState::Connected));
    let steps: Vec<&str> = resolved["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["open", "assigned", "completed", "resolved"]);

    // A second inspection of the same tampering (another event of it, an order from the desk)
    // confirms it again: covered by the period already recorded, the order still completes.
    let (status, second) = system
        .send(
            Method::POST,
            "/api/v1/work-orders",
            &op,
            Some(json!({"kind": "tamper_inspection", "consumer_no": "C-7"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let (status, done) = system
        .send(
            Method::POST,
            &format!(
                "/api/v1/work-orders/{}/complete",
                second["number"].as_str().unwrap()
            ),
            &op,
            Some(json!({"kind": "tamper_inspection", "finding": "confirmed",
                        "reason": "Magnet on the meter",
                        "since": periods[0].from.to_rfc3339()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(store.tamper_periods_of("C-7", 10).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_goes_from_request_to_confirmation_with_its_initial_reading() {
    let mut options = support::Options::new(1, Ipv4Addr::new(127, 183, 1, 1));
    options.mdm = true;
    let system = support::start(options).await;
    let store = system.store.clone();
    network(&store);
    let op = system.operator.clone();
    let request = json!({
        "consumer_no": "C-NEW-1", "name": "Farida Khan", "address": "3 Mall Road, Agra",
        "category": "residential", "sanctioned_load_w": 3000, "scheme": "postpaid",
        "transformer": "DT-9", "mobile": "+919811122233", "cycle_day": 5,
        "verified_by": "cis: documents and site checked"
    });
    let (status, taken) = system
        .send(
            Method::POST,
            "/api/v1/connections",
            &op,
            Some(request.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{taken}");
    assert_eq!(taken["state"], "installation_ordered");
    let order = taken["work_order"].as_str().unwrap().to_string();
    // Asked twice, or for a transformer that is not one: refused, nothing recorded twice.
    let (status, _) = system
        .send(
            Method::POST,
            "/api/v1/connections",
            &op,
            Some(request.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut bad = request.clone();
    bad["consumer_no"] = "C-NEW-2".into();
    bad["transformer"] = "F-1".into();
    let (status, _) = system
        .send(Method::POST, "/api/v1/connections", &op, Some(bad))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let record = system.get("/api/v1/consumers/C-NEW-1").await;
    assert_eq!(record["scheme"], "none", "{record}");
    assert_eq!(record["address"], "3 Mall Road, Agra");
    assert_eq!(record["mobile"], "+919811122233");

    // 12.3: the installation report; 12.4: the head-end asked for the meter's data.
    let serial = system.serial(0);
    let (status, done) = system
        .send(
            Method::POST,
            &format!("/api/v1/work-orders/{order}/complete"),
            &op,
            Some(
                json!({"kind": "installation", "meter": serial, "transformer": "DT-9",
                        "initial_reading_wh": 0}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let field = Field::new(store.clone(), Some(system.commands.clone()), None);
    // 12.5–12.6: verified once the reads are in the MDM, then confirmed to billing and CIS.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let connection = loop {
        field.follow(Utc::now()).await.unwrap();
        let c = system.get("/api/v1/connections/C-NEW-1").await;
        if c["state"] != "reading" {
            break c;
        }
        assert!(tokio::time::Instant::now() < deadline, "still reading: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(connection["state"], "confirmed", "{connection}");
    assert_eq!(connection["meter"], serial.as_str());
    let steps: Vec<&str> = connection["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .filter(|s| *s != "reading_again")
        .collect();
    assert_eq!(
        steps,
        ["installation_ordered", "installed", "reading", "confirmed"]
    );
    let confirmations: Vec<Value> = store
        .mdm_notices(None, 0, 100)
        .unwrap()
        .into_iter()
        .filter(|n| n.message.key.starts_with("connection/"))
        .map(|n| {
            assert!(["billing", "cis"].contains(&n.message.destination.as_str()));
            serde_json::from_str(&n.message.payload).unwrap()
        })
        .collect();
    assert_eq!(confirmations.len(), 2);
    assert_eq!(confirmations[0]["initial_reading_wh"], 0);
    // The register confirmed is the one the head-end read from the meter into the MDM.
    let read = store
        .mdm_latest_instantaneous(&MeterSerial::new(&serial).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        confirmations[0]["register_read_wh"].as_i64(),
        read.import_wh
    );
    let record = system.get("/api/v1/consumers/C-NEW-1").await;
    assert_eq!(record["scheme"], "postpaid", "{record}");
    assert_eq!(record["billing_cycle_day"], 5);
    assert_eq!(record["meter"], serial.as_str());
    assert_eq!(record["transformer"], "DT-9");
    assert_eq!(record["feeder"], "F-1");
    let history = system.get("/api/v1/consumers/C-NEW-1/history").await;
    let what: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["what"].as_str().unwrap())
        .collect();
    for wanted in ["details", "connection", "work_order"] {
        assert!(what.contains(&wanted), "{history}");
    }
}

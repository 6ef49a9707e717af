//! Commands through the API end to end: a simulated fleet over real TCP, a head-end with its
//! meters imported through their key file, the `Commands` executor, and the API in front of it
//! (requests through `oneshot`, no HTTP socket). A disconnect POSTed to the API reaches the
//! simulated meter, and the API shows it succeeded with the relay read back.

mod support;

use std::net::Ipv4Addr;

use axum::http::{Method, StatusCode};
use dlms::Data;
use dlms::apdu::{AttributeDescriptor, Mechanism};
use dlms::association::{CosemObjects, RequestContext};
use meter_sim::FleetHandle;
use serde_json::{Value, json};
use support::{Options, System, start};

async fn rig(base: Ipv4Addr, meters: u32) -> System {
    start(Options::new(meters, base)).await
}

/// The output state of the simulated meter's disconnect control (true: supply connected), read
/// from its object model in memory as the meter reader association would.
fn relay_output(fleet: &FleetHandle, index: u32) -> Data {
    let ctx = RequestContext {
        client_sap: 32,
        mechanism: Mechanism::Lls,
        now: chrono::Utc::now(),
    };
    let output = AttributeDescriptor {
        class_id: 70,
        instance: "0.0.96.3.10.255".parse().unwrap(),
        attribute_id: 2,
    };
    fleet.objects(index).get(&ctx, &output, None).unwrap()
}

fn is_final(c: &Value) -> bool {
    matches!(
        c["state"].as_str(),
        Some("succeeded" | "failed" | "timed_out")
    )
}

#[tokio::test]
async fn a_disconnect_posted_to_the_api_reaches_the_meter_and_is_read_back() {
    let rig = rig(Ipv4Addr::new(127, 250, 0, 1), 1).await;
    let meter = rig.serial(0);
    assert_eq!(
        relay_output(&rig.fleet, 0),
        Data::Boolean(true),
        "connected at start"
    );
    let body = json!({"id": "api-cut-1", "meter": meter, "command": {"kind": "disconnect"}});
    let (status, submitted) = rig
        .send(
            Method::POST,
            "/api/v1/commands",
            &rig.operator,
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{submitted}");
    assert_eq!(submitted["created"], true);
    assert_eq!(submitted["command"]["id"], "api-cut-1");
    assert_eq!(submitted["command"]["kind"], "disconnect");
    assert_eq!(submitted["command"]["state"], "queued");
    assert!(
        submitted["command"]["requested_by"]
            .as_str()
            .unwrap()
            .contains("ops")
    );

    let done = rig.poll("/api/v1/commands/api-cut-1", is_final).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["outcome"]["state"], "succeeded");
    assert_eq!(done["outcome"]["relay"], "disconnected");
    assert!(
        done["outcome"]["finished_at"]
            .as_str()
            .unwrap()
            .ends_with("+05:30")
    );
    let states: Vec<&str> = done["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["queued", "running", "succeeded"]);
    // the simulated meter's relay is open
    assert_eq!(relay_output(&rig.fleet, 0), Data::Boolean(false));

    // the same id again is the same command: nothing runs again
    let (status, again) = rig
        .send(Method::POST, "/api/v1/commands", &rig.operator, Some(body))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["created"], false);
    assert_eq!(again["command"]["state"], "succeeded");
    // the same id for another command is a conflict
    let other = json!({"id": "api-cut-1", "meter": meter, "command": {"kind": "reconnect"}});
    let (status, err) = rig
        .send(Method::POST, "/api/v1/commands", &rig.operator, Some(other))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["code"], "command_id_reused");
}

#[tokio::test]
async fn commands_are_checked_before_anything_runs() {
    let rig = rig(Ipv4Addr::new(127, 251, 0, 1), 2).await;
    let meter = rig.serial(0);
    let post = |body: Value| rig.send(Method::POST, "/api/v1/commands", &rig.operator, Some(body));

    let (status, err) =
        post(json!({"id": "c1", "meter": "NOT-A-METER", "command": {"kind": "ping"}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["code"], "not_found");
    for (command, code) in [
        (json!({"kind": "self_destruct"}), "invalid_command"),
        (
            json!({"kind": "set_billing_date", "day": 31}),
            "invalid_command",
        ),
        (
            json!({"kind": "set_capture_period", "seconds": 60}),
            "invalid_command",
        ),
        (json!("disconnect"), "invalid_command"),
    ] {
        let (status, err) = post(json!({"id": "c2", "meter": meter, "command": command})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{command}: {err}");
        assert_eq!(err["code"], code, "{command}");
    }
    for id in ["", "has space", &"x".repeat(129)] {
        let (status, _) =
            post(json!({"id": id, "meter": meter, "command": {"kind": "ping"}})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{id:?}");
    }

    // firmware: a plain name inside <data dir>/firmware/, nothing else
    let firmware = rig.dir.path().join("firmware");
    std::fs::create_dir_all(&firmware).unwrap();
    std::fs::write(firmware.join("fw-2.0.bin"), vec![0xA5; 2048]).unwrap();
    std::fs::write(rig.dir.path().join("secret.txt"), b"not firmware").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(rig.dir.path().join("secret.txt"), firmware.join("link.bin"))
        .unwrap();
    let fw = |name: &str| {
        json!({"id": format!("fw-{}", name.len()), "meter": meter, "command": {
            "kind": "firmware_upgrade", "image_path": name, "identifier": "img-2", "expected_version": "2.0"}})
    };
    let secret = rig.dir.path().join("secret.txt");
    let absolute = secret.to_str().unwrap();
    for name in [
        "../secret.txt",
        absolute,
        "/etc/passwd",
        "sub/fw.bin",
        "..",
        ".",
        "..\\secret.txt",
        "fw-2.0.bin\0",
        "",
        "missing.bin",
        "link.bin",
    ] {
        let (status, err) = post(fw(name)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {err}");
        assert_eq!(err["code"], "invalid_firmware_image", "{name:?}");
        // the server's directory is not told (the caller's own input may be echoed)
        assert!(
            !err["message"]
                .as_str()
                .unwrap()
                .contains(firmware.to_str().unwrap()),
            "no server path in {err}"
        );
    }
    let (status, ok) = post(fw("fw-2.0.bin")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{ok}");
    assert_eq!(ok["command"]["kind"], "firmware_upgrade");

    // a group: one result per meter; an unknown meter refuses the whole group
    let m1 = rig.serial(1);
    let (status, err) = rig
        .send(
            Method::POST,
            "/api/v1/command-groups",
            &rig.operator,
            Some(json!({"batch": "g0", "meters": [meter, "NOPE"], "command": {"kind": "ping"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, err) = rig
        .send(
            Method::POST,
            "/api/v1/command-groups",
            &rig.operator,
            Some(json!({"batch": "g0", "meters": [meter, meter], "command": {"kind": "ping"}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (status, group) = rig
        .send(
            Method::POST,
            "/api/v1/command-groups",
            &rig.operator,
            Some(json!({"batch": "g1", "meters": [meter, m1], "command": {"kind": "ping"}})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{group}");
    let items = group["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["command"]["id"], format!("g1/{meter}"));
    assert_eq!(items[1]["command"]["meter"], m1);
    let g = rig
        .poll("/api/v1/command-groups/g1", |g| {
            g["queued"] == 0 && g["running"] == 0
        })
        .await;
    assert_eq!(g["succeeded"], 2, "{g}");
    let page = rig
        .poll("/api/v1/command-groups/g1?limit=1", |_| true)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_string());
    // a group's command by its id, the `/` written %2F
    let one = rig
        .poll(&format!("/api/v1/commands/g1%2F{m1}"), is_final)
        .await;
    assert_eq!(one["batch"], "g1");
    assert_eq!(one["state"], "succeeded");
    let (status, _) = rig
        .send(
            Method::GET,
            "/api/v1/command-groups/nope",
            &rig.reader,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = rig
        .send(Method::GET, "/api/v1/commands/nope", &rig.reader, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_head_ends_metrics_are_served_to_a_token_holder() {
    let rig = rig(Ipv4Addr::new(127, 249, 0, 1), 1).await;
    let meter = rig.serial(0);
    let body = json!({"id": "ping-1", "meter": meter, "command": {"kind": "ping"}});
    let (status, _) = rig
        .send(Method::POST, "/api/v1/commands", &rig.operator, Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    rig.poll("/api/v1/commands/ping-1", is_final).await;
    let (status, _) = rig
        .send(Method::GET, "/metrics", "urja_nonsense", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let req = axum::http::Request::get("/metrics")
        .header("authorization", format!("Bearer {}", rig.reader))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(rig.app.clone(), req)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(
        text.contains("# TYPE urja_hes_sessions_total counter"),
        "{text}"
    );
    assert!(text.contains("result=\"ok\"} 1"), "{text}");
}

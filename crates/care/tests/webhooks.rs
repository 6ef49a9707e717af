//! The webhook dispatcher against a real HTTP receiver on 127.0.0.1 that checks every
//! signature: a 500 is tried again after the backoff, a 401 (wrong secret) is given up, and no
//! message is taken twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use care::webhooks::{KEY_HEADER, WebhookDispatcher, WebhooksConfig};
use chrono::{Duration, Utc};
use model::MeterSerial;
use serde_json::Value;
use store::{RoutedMessage, Store};

const SECRET: &str = "a-secret-of-some-length";

#[derive(Default)]
struct Seen {
    posts: usize,
    /// Key → times accepted.
    accepted: HashMap<String, usize>,
    /// Keys answered 500 once already.
    failed_once: Vec<String>,
    bodies: Vec<Value>,
}

async fn receive(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut seen = seen.lock().unwrap();
    seen.posts += 1;
    let signature = headers
        .get(model::signature::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if model::signature::check(SECRET.as_bytes(), signature, &body, Utc::now()).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let json: Value = serde_json::from_slice(&body).unwrap();
    let key = headers[KEY_HEADER].to_str().unwrap().to_string();
    assert_eq!(json["key"], key.as_str());
    if !seen.failed_once.contains(&key) {
        seen.failed_once.push(key);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    *seen.accepted.entry(key).or_default() += 1;
    seen.bodies.push(json);
    StatusCode::NO_CONTENT
}

fn route(store: &Store, key: &str, destination: &str) {
    store
        .mdm_route(
            &RoutedMessage {
                key: key.into(),
                meter: MeterSerial::new("M-1").unwrap(),
                destination: destination.into(),
                payload: format!(r#"{{"event":"test","key":"{key}"}}"#),
            },
            Utc::now(),
        )
        .unwrap();
}

#[tokio::test]
async fn routed_messages_reach_their_subscribers_signed_once_each_after_retries() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("u.sqlite")).unwrap();
    route(&store, "oms/a", "oms");
    route(&store, "oms/b", "oms");
    route(&store, "wfm/a", "wfm");
    route(&store, "billing/a", "billing");
    let config = WebhooksConfig::parse(&format!(
        r#"{{"subscribers": [
              {{"name": "oms-main", "destination": "oms", "url": "http://{addr}/hook", "secret": "{SECRET}"}},
              {{"name": "wfm-main", "destination": "wfm", "url": "http://{addr}/hook", "secret": "not-the-shared-secret"}}],
            "delivery": {{"backoff_s": 30, "max_attempts": 3}}}}"#
    ))
    .unwrap();
    let dispatcher = WebhookDispatcher::new(store.clone(), config).unwrap();

    let t0 = Utc::now();
    let first = dispatcher.run_once(t0).await.unwrap();
    assert_eq!(
        (first.delivered, first.retrying, first.failed),
        (0, 2, 1),
        "the receiver answers 500 to each first copy and 401 to the wrong secret"
    );
    let early = dispatcher
        .run_once(t0 + Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(
        early,
        Default::default(),
        "nothing is due before the backoff"
    );
    let retried = dispatcher
        .run_once(t0 + Duration::seconds(31))
        .await
        .unwrap();
    assert_eq!(retried.delivered, 2);
    let after = dispatcher
        .run_once(t0 + Duration::seconds(200))
        .await
        .unwrap();
    assert_eq!(after, Default::default(), "nothing is sent twice");

    route(&store, "oms/c", "oms");
    let next = dispatcher
        .run_once(t0 + Duration::seconds(201))
        .await
        .unwrap();
    assert_eq!(next.retrying, 1, "a new message is taken in: {next:?}");
    let next = dispatcher
        .run_once(t0 + Duration::seconds(240))
        .await
        .unwrap();
    assert_eq!(next.delivered, 1);

    let seen = seen.lock().unwrap();
    assert_eq!(seen.posts, 7, "2 × 2 + 1 wrong secret + 2 for the third");
    let mut keys: Vec<_> = seen.accepted.iter().collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            (&"oms/a".to_string(), &1),
            (&"oms/b".to_string(), &1),
            (&"oms/c".to_string(), &1)
        ]
    );
    let body = &seen.bodies[0];
    assert_eq!(body["destination"], "oms");
    assert_eq!(body["meter"], "M-1");
    assert_eq!(body["payload"]["event"], "test");

    let notices = store.mdm_notices(None, 0, 10).unwrap();
    let delivered: Vec<_> = notices
        .iter()
        .map(|n| (n.message.key.as_str(), n.delivered_at.is_some()))
        .collect();
    assert_eq!(
        delivered,
        vec![
            ("oms/a", true),
            ("oms/b", true),
            ("wfm/a", false),
            ("billing/a", false),
            ("oms/c", true)
        ]
    );
}

#[test]
fn a_config_with_a_misspelt_key_or_an_unknown_destination_is_refused() {
    let ok = r#"{"subscribers": [{"name": "oms", "destination": "oms", "url": "http://h/x", "secret": "0123456789abcdef"}]}"#;
    assert_eq!(WebhooksConfig::parse(ok).unwrap().delivery.max_attempts, 8);
    for bad in [
        r#"{"subscriber": []}"#,
        r#"{"subscribers": [], "delivery": {"max_attempt": 3}}"#,
        r#"{"subscribers": [{"name": "oms", "destination": "oms", "url": "http://h/x", "secret": "0123456789abcdef", "secrt": ""}]}"#,
        r#"{"subscribers": [{"name": "oms", "destination": "mars", "url": "http://h/x", "secret": "0123456789abcdef"}]}"#,
        r#"{"subscribers": [{"name": "oms", "destination": "oms", "url": "https://h/x", "secret": "0123456789abcdef"}]}"#,
        r#"{"subscribers": [{"name": "oms", "destination": "oms", "url": "http://h/x", "secret": "short"}]}"#,
    ] {
        assert!(WebhooksConfig::parse(bad).is_err(), "{bad}");
    }
}

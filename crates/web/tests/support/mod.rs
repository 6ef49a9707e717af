//! The whole system in one test process: a simulated fleet over real TCP, a head-end with the
//! fleet's key file imported (its outbox relayed to an in-process bus, and with `push`, a push
//! listener the fleet pushes to), with `mdm`, the MDM's ingest on that bus and its outage desk
//! (a short window, looking five times a second), a `Commands` executor, and the API in front
//! (requests through `oneshot`, no HTTP socket).

#![allow(dead_code)] // each test file uses its own part of the rig

use std::net::Ipv4Addr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use bus::Bus;
use hes::commands::{Commands, CommandsConfig};
use hes::keystore::{FileFormat, MasterKey, parse_key_file};
use hes::plan::{RetryPolicy, WallClock};
use hes::runtime::{HeadEnd, HesConfig};
use mdm::events::Routing;
use mdm::ingest::Ingest;
use mdm::outages::OutageConfig;
use meter_sim::{Fleet, FleetConfig, FleetHandle};
use serde_json::Value;
use store::{Role, Store};
use tempfile::TempDir;
use tower::ServiceExt;
use web::{AppState, app, issue_token};

/// What to start.
pub struct Options {
    pub meters: u32,
    pub base: Ipv4Addr,
    /// The fleet pushes alerts to a push listener of the head-end.
    pub push: bool,
    /// The MDM's ingest takes what the head-end publishes.
    pub mdm: bool,
    /// The first meter is reached through this DCU (in its import record).
    pub dcu_of_first: Option<String>,
    /// How far back the head-end's first collection reads.
    pub backfill: Duration,
    /// The outage desk's grouping window, seconds.
    pub outage_window_s: i64,
}

impl Options {
    pub fn new(meters: u32, base: Ipv4Addr) -> Self {
        Options {
            meters,
            base,
            push: false,
            mdm: false,
            dcu_of_first: None,
            backfill: Duration::from_secs(24 * 3600),
            outage_window_s: 2,
        }
    }
}

pub struct System {
    pub fleet: FleetHandle,
    pub hes: HeadEnd,
    pub store: Store,
    pub ingest: Option<Ingest>,
    pub commands: Commands,
    pub app: Router,
    pub operator: String,
    pub reader: String,
    pub dir: TempDir,
}

pub async fn start(opts: Options) -> System {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("urja.sqlite")).unwrap();
    let bus = Bus::in_process();
    // The MDM subscribes before anything is published.
    let ingest = opts.mdm.then(|| {
        let ingest = Ingest::new(store.clone(), Routing::default());
        let subscription = bus.subscribe("mdm", &[], 1024);
        let runner = ingest.clone();
        tokio::spawn(async move {
            runner
                .run(subscription, 256, std::future::pending(), |_| {})
                .await
        });
        let desk = OutageConfig {
            window_s: opts.outage_window_s,
            ..OutageConfig::default()
        };
        tokio::spawn(mdm::outages::run(
            store.clone(),
            Routing::default(),
            desk,
            Duration::from_millis(200),
            std::future::pending(),
        ));
        ingest
    });
    let push = if opts.push {
        Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    } else {
        None
    };
    let mut config = FleetConfig::new(opts.meters, opts.base, 0, 11);
    config.scheduled_outages = false;
    config.push_to = push.as_ref().map(|l| l.local_addr().unwrap());
    let fleet = Fleet::start(config).await.expect("fleet starts");
    let mut hes_config = HesConfig {
        response_timeout: Duration::from_secs(1),
        operation_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(100),
            factor: 2,
            max_backoff: Duration::from_millis(500),
            window: Duration::from_secs(60),
        },
        ..HesConfig::default()
    };
    hes_config.schedule.default.backfill = opts.backfill;
    let hes = HeadEnd::with_store(
        store.clone(),
        MasterKey::generate().unwrap(),
        hes_config,
        bus,
        WallClock::system(),
    )
    .unwrap();
    let mut key_file = Vec::new();
    meter_sim::keys::write_keys(
        &mut key_file,
        false,
        fleet.config().seed,
        (0..fleet.meters()).map(|i| (i, fleet.endpoint(i))),
    )
    .unwrap();
    let mut parsed = parse_key_file(&key_file, FileFormat::Auto).unwrap();
    if let Some(dcu) = &opts.dcu_of_first {
        parsed[0].dcu = Some(dcu.clone());
    }
    hes.import(parsed).await.unwrap();
    let relay = hes.clone();
    tokio::spawn(async move { relay.relay_outbox(std::future::pending()).await });
    if let Some(listener) = push {
        let listening = hes.clone();
        tokio::spawn(async move {
            hes::push::listen(listening, listener, std::future::pending()).await
        });
    }
    let commands = Commands::new(hes.clone(), CommandsConfig::default());
    commands.resume().await.unwrap();
    let now = chrono::Utc::now();
    let operator = issue_token(&store, Role::Operator, "ops", None, now)
        .unwrap()
        .secret;
    let reader = issue_token(&store, Role::Reader, "viewer", None, now)
        .unwrap()
        .secret;
    let app = app(AppState::new(store.clone()).with_commands(commands.clone()));
    System {
        fleet,
        hes,
        store,
        ingest,
        commands,
        app,
        operator,
        reader,
        dir,
    }
}

impl System {
    pub fn serial(&self, index: u32) -> String {
        self.fleet.keys(index).serial
    }

    pub async fn send(
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
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, json)
    }

    /// GETs `uri` as the reader and expects 200.
    pub async fn get(&self, uri: &str) -> Value {
        let (status, json) = self.send(Method::GET, uri, &self.reader, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {json}");
        json
    }

    /// GETs `uri` until `done` holds of the answer (two minutes at most).
    pub async fn poll(&self, uri: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let json = self.get(uri).await;
            if done(&json) {
                return json;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{uri} never got there: {json}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the head-end's outbox is empty: everything it published has been
    /// acknowledged, so (with the MDM on) it is durable in the MDM's tables.
    pub async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let store = self.store.clone();
            let (pending, _) = tokio::task::spawn_blocking(move || store.outbox_counts())
                .await
                .unwrap()
                .unwrap();
            if pending == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the outbox never drained"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

//! HDLC over TCP, pushed alerts, the `run` entry point with its key file, and address carry.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chrono::Utc;
use clap::Parser;
use dlms::Data;
use dlms::apdu::{AttributeDescriptor, GetDataResult, MethodDescriptor};
use dlms::association::Authentication;
use dlms::association::client::{
    Client, ClientConfig, ClientEvent, ClientSecurityState, NotificationBody, PushSecurity,
    parse_notification,
};
use dlms::hdlc::{HdlcAddress, HdlcClient, HdlcEvent};
use dlms::security::{GlobalKeys, HlsSecret, ReplayGuard, SecurityPolicy, Suite0Cipher};
use dlms::wrapper::WrapperDecoder;
use meter_sim::{EventKind, Fleet, FleetConfig, SimArgs, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn base(salt: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 100 + (std::process::id() % 100) as u8, 100 + salt, 1)
}

async fn read_some(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read");
    assert!(n > 0, "connection closed");
    buf[..n].to_vec()
}

#[tokio::test]
async fn hdlc_over_tcp_associates_and_reads() {
    let mut config = FleetConfig::new(2, base(1), 0, 5);
    config.scheduled_outages = false;
    config.transport = Transport::Hdlc;
    let fleet = Fleet::start(config).await.unwrap();
    let mut stream = TcpStream::connect(fleet.address(1)).await.unwrap();
    let mut link = HdlcClient::new(dlms::hdlc::ClientConfig::new(
        32,
        HdlcAddress::server(1, 17),
    ))
    .unwrap();
    let keys = fleet.keys(1);
    let lls = Authentication::Lls {
        password: keys.lls_secret.as_bytes().to_vec(),
    };
    let mut client = Client::new(
        ClientConfig::new(32, lls, None),
        ClientSecurityState::default(),
    );

    link.connect();
    // Sends what the link wants to send and returns the events of what comes back.
    async fn exchange(link: &mut HdlcClient, stream: &mut TcpStream) -> Vec<HdlcEvent> {
        while let Some(f) = link.poll_transmit() {
            stream.write_all(&f).await.unwrap();
        }
        let mut events = Vec::new();
        while events.is_empty() {
            events = link.push(&read_some(stream).await);
            while let Some(f) = link.poll_transmit() {
                stream.write_all(&f).await.unwrap();
            }
        }
        events
    }
    let ev = exchange(&mut link, &mut stream).await;
    assert!(matches!(ev[0], HdlcEvent::Connected(_)), "{ev:?}");

    let request = |link: &mut HdlcClient, apdu: Vec<u8>| link.send_apdu(&apdu).unwrap();
    request(&mut link, client.associate(b"abcdefgh").unwrap());
    let mut outcome = None;
    while outcome.is_none() {
        for ev in exchange(&mut link, &mut stream).await {
            if let HdlcEvent::Apdu(a) = ev {
                outcome = client.on_apdu(&a, Utc::now()).unwrap().event;
            }
        }
    }
    assert!(matches!(outcome, Some(ClientEvent::Associated(_))));

    // A long answer (a day of block load) crosses several HDLC segments.
    let day = AttributeDescriptor {
        class_id: 7,
        instance: "1.0.99.2.0.255".parse().unwrap(),
        attribute_id: 2,
    };
    request(&mut link, client.get(day, None).unwrap());
    let mut value = None;
    while value.is_none() {
        for ev in exchange(&mut link, &mut stream).await {
            if let HdlcEvent::Apdu(a) = ev {
                let out = client.on_apdu(&a, Utc::now()).unwrap();
                if let Some(next) = out.send {
                    link.send_apdu(&next).unwrap();
                }
                value = out.event;
            }
        }
    }
    let Some(ClientEvent::Value {
        result: GetDataResult::Data(Data::Array(rows)),
        ..
    }) = value
    else {
        panic!("{value:?}")
    };
    assert!(rows.len() >= 60);
    fleet.stop().await;
}

#[tokio::test]
async fn alerts_are_pushed_ciphered_to_the_head_end() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = FleetConfig::new(2, base(2), 0, 6);
    config.scheduled_outages = false;
    config.push_to = Some(listener.local_addr().unwrap());
    let fleet = Fleet::start(config).await.unwrap();
    let keys = fleet.keys(1);

    fleet.trigger_event(1, EventKind::CoverOpen);
    let (mut conn, from) = tokio::time::timeout(Duration::from_secs(3), listener.accept())
        .await
        .unwrap()
        .unwrap();
    // Each push comes over its own connection from the meter's own address.
    assert_eq!(from.ip(), fleet.address(1).ip());
    let mut dec = WrapperDecoder::new();
    let frame = loop {
        dec.push(&read_some(&mut conn).await);
        if let Some(f) = dec.next_frame().unwrap() {
            break f;
        }
    };
    assert_eq!((frame.source, frame.destination), (1, 64));
    assert_eq!(
        dlms::association::client::notification_system_title(&frame.apdu),
        Some(keys.system_title)
    );
    let cipher = Suite0Cipher::new(&GlobalKeys {
        encryption: keys.global_encryption_key,
        authentication: keys.global_authentication_key,
    });
    let mut replay = ReplayGuard::new();
    let n = parse_notification(
        &frame.apdu,
        Utc::now(),
        Some(PushSecurity {
            cipher: &cipher,
            system_title: keys.system_title,
            required: SecurityPolicy::AuthenticatedEncrypted,
            replay: &mut replay,
        }),
    )
    .unwrap();
    let NotificationBody::Data(dn) = n.body else {
        panic!("not a DataNotification")
    };
    let items = dn.body.as_items().unwrap();
    assert_eq!(items[0].as_octets().unwrap(), keys.serial.as_bytes());
    assert_eq!(items[1], Data::OctetString(vec![0, 4, 25, 9, 0, 255]));
    assert!(items[2].as_datetime().is_some());
    assert!(matches!(&items[3], Data::BitString(b) if b.len == 128 && b.bit(83)));

    // A relay operation over the utility association pushes too, with a higher counter.
    let mut objects = fleet.objects(1);
    use dlms::association::CosemObjects;
    let ctx = dlms::association::RequestContext {
        client_sap: 48,
        mechanism: dlms::apdu::Mechanism::Hls,
        now: Utc::now(),
    };
    let m = MethodDescriptor {
        class_id: 70,
        instance: "0.0.96.3.10.255".parse().unwrap(),
        method_id: 1,
    };
    objects.action(&ctx, &m, Some(Data::Integer(0))).unwrap();
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(3), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut dec = WrapperDecoder::new();
    let frame = loop {
        if let Some(f) = dec.next_frame().unwrap() {
            break f;
        }
        dec.push(&read_some(&mut conn).await);
    };
    let n2 = parse_notification(
        &frame.apdu,
        Utc::now(),
        Some(PushSecurity {
            cipher: &cipher,
            system_title: keys.system_title,
            required: SecurityPolicy::AuthenticatedEncrypted,
            replay: &mut replay,
        }),
    )
    .expect("a fresh counter");
    let NotificationBody::Data(dn) = n2.body else {
        panic!()
    };
    assert!(matches!(&dn.body.as_items().unwrap()[3], Data::BitString(b) if b.bit(84)));
    let _ = HlsSecret::new([0; 16]);
    fleet.stop().await;
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

#[tokio::test]
async fn run_writes_the_key_file_and_serves_until_shutdown() {
    let dir = std::env::temp_dir().join(format!("urja-sim-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = dir.join("keys.csv");
    // 127.x.y.254, .255 and then the next /24: addresses carry over octets.
    let b = base(3);
    let first = Ipv4Addr::new(b.octets()[0], b.octets()[1], b.octets()[2], 254);
    let port = {
        let l = std::net::TcpListener::bind((first, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let cli = Cli::try_parse_from([
        "sim",
        "--meters",
        "3",
        "--base-address",
        &first.to_string(),
        "--port",
        &port.to_string(),
        "--keys-out",
        keys.to_str().unwrap(),
    ])
    .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(meter_sim::run(cli.sim, async {
        let _ = rx.await;
    }));
    let third = SocketAddr::from((Ipv4Addr::from(u32::from(first) + 2), port));
    let mut ok = false;
    for _ in 0..50 {
        if TcpStream::connect(third).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the third meter ({third}) listens");
    assert_eq!(third.ip().to_string().rsplit('.').next(), Some("0"));
    let text = std::fs::read_to_string(&keys).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[3].contains(&third.ip().to_string()));
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(third).await.is_err(), "stopped");
    std::fs::remove_dir_all(&dir).unwrap();
}

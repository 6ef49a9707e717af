//! A real fleet on loopback addresses, reached over TCP with the TCP wrapper and the `dlms`
//! client association: AARQ/AARE and GETs for each kind of association, and injected faults.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chrono::Utc;
use dlms::Data;
use dlms::apdu::{
    ActionResult, AttributeDescriptor, DataAccessResult, GetDataResult, MethodDescriptor,
    SelectiveAccess,
};
use dlms::association::Authentication;
use dlms::association::client::{
    Client, ClientCiphering, ClientConfig, ClientEvent, ClientSecurityState,
};
use dlms::datetime::ist;
use dlms::security::{CipheredApdu, GlobalKeys, HlsSecret, SecurityPolicy};
use dlms::wrapper::WrapperDecoder;
use meter_sim::{Fault, FaultKind, Fleet, FleetConfig, FleetHandle, MeterKeys};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn base_address(salt: u8) -> Ipv4Addr {
    let pid = std::process::id();
    Ipv4Addr::new(127, 100 + (pid % 100) as u8, salt, 1)
}

async fn start(meters: u32, salt: u8) -> FleetHandle {
    let mut config = FleetConfig::new(meters, base_address(salt), 0, 11);
    // Every meter must answer: no outage may fall inside the test.
    config.scheduled_outages = false;
    Fleet::start(config).await.unwrap()
}

struct Conn {
    stream: TcpStream,
    decoder: WrapperDecoder,
    client: Client,
    /// The invocation counter of every ciphered APDU the meter sent on this connection.
    sealed: Vec<u32>,
}

// The payloads are there for the `Debug` output of failed assertions.
#[allow(dead_code)]
#[derive(Debug)]
enum ConnError {
    Timeout,
    Closed,
    Decode(dlms::DecodeError),
    Client(String),
}

impl Conn {
    async fn open(addr: SocketAddr, config: ClientConfig) -> Conn {
        let stream = TcpStream::connect(addr).await.unwrap();
        Conn {
            stream,
            decoder: WrapperDecoder::new(),
            client: Client::new(config, ClientSecurityState::default()),
            sealed: Vec::new(),
        }
    }

    async fn send(&mut self, apdu: &[u8]) {
        let sap = self.client.config().client_sap;
        let frame = dlms::wrapper::encode(sap, 1, apdu).unwrap();
        self.stream.write_all(&frame).await.unwrap();
    }

    async fn recv_apdu(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut buf = [0u8; 4096];
        loop {
            match self.decoder.next_frame() {
                Ok(Some(f)) => {
                    if let Ok(c) = CipheredApdu::decode(&f.apdu) {
                        self.sealed.push(c.invocation_counter);
                    }
                    return Ok(f.apdu);
                }
                Ok(None) => {}
                Err(e) => return Err(ConnError::Decode(e)),
            }
            let n = tokio::time::timeout(Duration::from_secs(2), self.stream.read(&mut buf))
                .await
                .map_err(|_| ConnError::Timeout)?
                .map_err(|_| ConnError::Closed)?;
            if n == 0 {
                return Err(ConnError::Closed);
            }
            self.decoder.push(&buf[..n]);
        }
    }

    /// Feeds responses to the client until it yields an event (sending what it asks to send).
    async fn until_event(&mut self) -> Result<ClientEvent, ConnError> {
        loop {
            let apdu = self.recv_apdu().await?;
            let out = self
                .client
                .on_apdu(&apdu, Utc::now())
                .map_err(|e| ConnError::Client(e.to_string()))?;
            if let Some(send) = out.send {
                self.send(&send).await;
            }
            if let Some(ev) = out.event {
                return Ok(ev);
            }
        }
    }

    async fn associate(&mut self) -> Result<ClientEvent, ConnError> {
        let aarq = self.client.associate(b"0123456789abcdef").unwrap();
        self.send(&aarq).await;
        self.until_event().await
    }

    async fn get(
        &mut self,
        class_id: u16,
        ln: &str,
        attribute_id: i8,
        access: Option<SelectiveAccess>,
    ) -> GetDataResult {
        let req = self
            .client
            .get(
                AttributeDescriptor {
                    class_id,
                    instance: ln.parse().unwrap(),
                    attribute_id,
                },
                access,
            )
            .unwrap();
        self.send(&req).await;
        match self.until_event().await.unwrap() {
            ClientEvent::Value { result, .. } => result,
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn set(
        &mut self,
        class_id: u16,
        ln: &str,
        attribute_id: i8,
        value: Data,
    ) -> DataAccessResult {
        let req = self
            .client
            .set(
                AttributeDescriptor {
                    class_id,
                    instance: ln.parse().unwrap(),
                    attribute_id,
                },
                None,
                value,
            )
            .unwrap();
        self.send(&req).await;
        match self.until_event().await.unwrap() {
            ClientEvent::SetResult { result, .. } => result,
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn action(
        &mut self,
        class_id: u16,
        ln: &str,
        method_id: i8,
        parameters: Data,
    ) -> ActionResult {
        let req = self
            .client
            .action(
                MethodDescriptor {
                    class_id,
                    instance: ln.parse().unwrap(),
                    method_id,
                },
                Some(parameters),
            )
            .unwrap();
        self.send(&req).await;
        match self.until_event().await.unwrap() {
            ClientEvent::ActionResult { result, .. } => result,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn hls_config(sap: u16, keys: &MeterKeys, secret: [u8; 16]) -> ClientConfig {
    hls_config_as(sap, keys, secret, *b"URJHES01")
}

fn hls_config_as(sap: u16, keys: &MeterKeys, secret: [u8; 16], title: [u8; 8]) -> ClientConfig {
    ClientConfig::new(
        sap,
        Authentication::Hls {
            secret: HlsSecret::new(secret),
        },
        Some(ClientCiphering {
            policy: SecurityPolicy::AuthenticatedEncrypted,
            keys: GlobalKeys {
                encryption: keys.global_encryption_key,
                authentication: keys.global_authentication_key,
            },
            system_title: title,
        }),
    )
}

#[tokio::test]
async fn associations_and_reads_over_tcp() {
    let fleet = start(3, 1).await;
    assert_eq!(fleet.addresses().len(), 3);
    assert_eq!(
        fleet.address(1).ip().to_string(),
        format!("{}", Ipv4Addr::from(u32::from(base_address(1)) + 1))
    );
    let keys = fleet.keys(1);
    let addr = fleet.address(1);

    // Public: the clock yes, the block load no.
    let mut c = Conn::open(addr, ClientConfig::new(16, Authentication::None, None)).await;
    assert!(matches!(
        c.associate().await.unwrap(),
        ClientEvent::Associated(_)
    ));
    let GetDataResult::Data(clock) = c.get(8, "0.0.1.0.0.255", 2, None).await else {
        panic!("no clock")
    };
    let t = clock.as_datetime().unwrap().to_utc(ist()).unwrap();
    assert!((t - Utc::now()).num_seconds().abs() < 60);
    assert!(matches!(
        c.get(7, "1.0.99.1.0.255", 2, None).await,
        GetDataResult::Error(_)
    ));

    // Meter reader with LLS: block load rows by range (long answer, block transfer).
    let lls = Authentication::Lls {
        password: keys.lls_secret.as_bytes().to_vec(),
    };
    let mut c = Conn::open(addr, ClientConfig::new(32, lls, None)).await;
    assert!(matches!(
        c.associate().await.unwrap(),
        ClientEvent::Associated(_)
    ));
    let to = Utc::now();
    let from = to - chrono::Duration::hours(30);
    let access = SelectiveAccess::by_range(
        &dlms::DateTime::from_utc(from, ist()),
        &dlms::DateTime::from_utc(to, ist()),
        &[],
    );
    let GetDataResult::Data(Data::Array(rows)) = c.get(7, "1.0.99.1.0.255", 2, Some(access)).await
    else {
        panic!("no rows")
    };
    assert!(rows.len() > 80, "{} rows", rows.len());

    // Wrong LLS password: rejected.
    let bad = Authentication::Lls {
        password: b"not-the-password".to_vec(),
    };
    let mut c = Conn::open(addr, ClientConfig::new(32, bad, None)).await;
    assert!(c.associate().await.is_err());

    // Utility settings: HLS mechanism 2 with authenticated encryption.
    let mut c = Conn::open(addr, hls_config(48, &keys, keys.hls_utility)).await;
    assert!(matches!(
        c.associate().await.unwrap(),
        ClientEvent::Associated(_)
    ));
    let GetDataResult::Data(su) = c.get(3, "1.0.1.8.0.255", 3, None).await else {
        panic!()
    };
    assert_eq!(su, Data::Structure(vec![Data::Integer(0), Data::Enum(30)]));
    // A second association on a new connection: counters keep increasing.
    let mut c2 = Conn::open(addr, hls_config(48, &keys, keys.hls_utility)).await;
    c2.client = Client::new(
        hls_config(48, &keys, keys.hls_utility),
        c.client.security_state().clone(),
    );
    assert!(matches!(
        c2.associate().await.unwrap(),
        ClientEvent::Associated(_)
    ));
    assert!(matches!(
        c2.get(8, "0.0.1.0.0.255", 2, None).await,
        GetDataResult::Data(_)
    ));

    // Wrong HLS secret: never associated.
    let mut c = Conn::open(addr, hls_config(48, &keys, [0x11; 16])).await;
    assert!(!matches!(
        c.associate().await,
        Ok(ClientEvent::Associated(_))
    ));
    fleet.stop().await;
}

#[tokio::test]
async fn faulty_meters_misbehave_as_told() {
    let fleet = start(3, 2).await;
    fleet.set_fault(
        0,
        FaultKind::NoAnswer,
        Some(Fault::new(FaultKind::NoAnswer)),
    );
    fleet.set_fault(1, FaultKind::Corrupt, Some(Fault::new(FaultKind::Corrupt)));

    let mut c = Conn::open(
        fleet.address(0),
        ClientConfig::new(16, Authentication::None, None),
    )
    .await;
    assert!(matches!(c.associate().await, Err(ConnError::Timeout)));

    let mut c = Conn::open(
        fleet.address(1),
        ClientConfig::new(16, Authentication::None, None),
    )
    .await;
    assert!(matches!(c.associate().await, Err(ConnError::Decode(_))));

    // The third meter is healthy; powering it off makes it stop answering.
    let mut c = Conn::open(
        fleet.address(2),
        ClientConfig::new(16, Authentication::None, None),
    )
    .await;
    assert!(matches!(
        c.associate().await.unwrap(),
        ClientEvent::Associated(_)
    ));
    fleet.power_off(2, Duration::from_secs(600));
    let req = c
        .client
        .get(
            AttributeDescriptor {
                class_id: 8,
                instance: "0.0.1.0.0.255".parse().unwrap(),
                attribute_id: 2,
            },
            None,
        )
        .unwrap();
    c.send(&req).await;
    assert!(c.until_event().await.is_err());
    fleet.stop().await;
}

/// A flaky meter closes some connections on the AARQ and serves others: over many connections
/// about the given share fail, the same ones for the same seed, and a retry gets through.
#[tokio::test]
async fn a_flaky_meter_fails_some_connections_before_the_aare() {
    let fleet = start(1, 6).await;
    let fault = Fault::flaky(0.4);
    fleet.set_fault(0, FaultKind::Flaky, Some(fault));
    let mut outcomes = Vec::new();
    for _ in 0..30 {
        let mut c = Conn::open(
            fleet.address(0),
            ClientConfig::new(16, Authentication::None, None),
        )
        .await;
        match c.associate().await {
            Ok(ClientEvent::Associated(_)) => outcomes.push(true),
            Err(ConnError::Closed) => outcomes.push(false),
            other => panic!("neither associated nor closed: {other:?}"),
        }
    }
    // Connection n (counted from 1) fails exactly when the hash says so.
    let expected: Vec<bool> = (1..=30u64)
        .map(|n| !fault.fails_connection(11, 0, n))
        .collect();
    assert_eq!(outcomes, expected);
    let failed = outcomes.iter().filter(|ok| !**ok).count();
    assert!((3..=24).contains(&failed), "{failed} of 30 failed");
    // A failure is not for good: the meter serves a later connection.
    let first_failure = outcomes.iter().position(|ok| !ok).unwrap();
    assert!(outcomes[first_failure..].contains(&true));
    fleet.set_fault(0, FaultKind::Flaky, None);
    let mut c = Conn::open(
        fleet.address(0),
        ClientConfig::new(16, Authentication::None, None),
    )
    .await;
    assert!(matches!(
        c.associate().await,
        Ok(ClientEvent::Associated(_))
    ));
    fleet.stop().await;
}

/// Two associations open at once on one meter and an alert pushed in between (a relay
/// disconnect with pushing on: the alert fires inside the action, then the read-back): every
/// message the meter seals carries its own (system title, invocation counter) pair.
#[tokio::test]
async fn no_two_messages_of_a_meter_share_an_invocation_counter() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = FleetConfig::new(2, base_address(3), 0, 11);
    config.scheduled_outages = false;
    config.push_to = Some(listener.local_addr().unwrap());
    let fleet = Fleet::start(config).await.unwrap();
    let keys = fleet.keys(1);
    let addr = fleet.address(1);

    let mut a = Conn::open(
        addr,
        hls_config_as(48, &keys, keys.hls_utility, *b"URJHES01"),
    )
    .await;
    let mut b = Conn::open(
        addr,
        hls_config_as(48, &keys, keys.hls_utility, *b"URJHES02"),
    )
    .await;
    assert!(matches!(
        a.associate().await.unwrap(),
        ClientEvent::Associated(_)
    ));
    assert!(matches!(
        b.associate().await.unwrap(),
        ClientEvent::Associated(_)
    ));
    for _ in 0..3 {
        assert!(matches!(
            a.get(8, "0.0.1.0.0.255", 2, None).await,
            GetDataResult::Data(_)
        ));
        assert!(matches!(
            b.get(8, "0.0.1.0.0.255", 2, None).await,
            GetDataResult::Data(_)
        ));
    }
    // Relay disconnect: pushes an alert; then both read the relay back.
    assert_eq!(
        a.action(70, "0.0.96.3.10.255", 1, Data::Integer(0)).await,
        ActionResult::Success
    );
    assert_eq!(
        a.get(70, "0.0.96.3.10.255", 2, None).await,
        GetDataResult::Data(Data::Boolean(false))
    );
    assert_eq!(
        b.get(70, "0.0.96.3.10.255", 2, None).await,
        GetDataResult::Data(Data::Boolean(false))
    );

    let (mut push, _) = tokio::time::timeout(Duration::from_secs(3), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut dec = WrapperDecoder::new();
    let frame = loop {
        if let Some(f) = dec.next_frame().unwrap() {
            break f;
        }
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(3), push.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "push connection closed");
        dec.push(&buf[..n]);
    };
    let pushed = CipheredApdu::decode(&frame.apdu).unwrap();
    assert_eq!(pushed.system_title, Some(&keys.system_title[..]));

    // Responses are glo-ciphered: their system title is the meter's, like the push's.
    let mut seen: Vec<([u8; 8], u32)> = a
        .sealed
        .iter()
        .chain(&b.sealed)
        .map(|ic| (keys.system_title, *ic))
        .collect();
    seen.push((keys.system_title, pushed.invocation_counter));
    assert!(a.sealed.len() >= 6 && b.sealed.len() >= 5, "{seen:?}");
    let mut distinct = seen.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "a counter was used twice: {seen:?}"
    );
    fleet.stop().await;
}

/// The utility association changes the meter reader's LLS secret: later associations need the
/// new one, the old one is refused.
#[tokio::test]
async fn a_new_lls_secret_is_the_one_later_associations_need() {
    let fleet = start(1, 4).await;
    let keys = fleet.keys(0);
    let addr = fleet.address(0);
    let mut u = Conn::open(addr, hls_config(48, &keys, keys.hls_utility)).await;
    assert!(matches!(
        u.associate().await.unwrap(),
        ClientEvent::Associated(_)
    ));
    assert_eq!(
        u.set(
            15,
            "0.0.40.0.2.255",
            7,
            Data::OctetString(b"NewSecret-2026".to_vec())
        )
        .await,
        DataAccessResult::Success
    );
    let lls = |password: &[u8]| {
        ClientConfig::new(
            32,
            Authentication::Lls {
                password: password.to_vec(),
            },
            None,
        )
    };
    let mut old = Conn::open(addr, lls(keys.lls_secret.as_bytes())).await;
    assert!(old.associate().await.is_err());
    let mut new = Conn::open(addr, lls(b"NewSecret-2026")).await;
    assert!(matches!(
        new.associate().await.unwrap(),
        ClientEvent::Associated(_)
    ));
    fleet.stop().await;
}

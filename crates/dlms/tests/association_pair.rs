//! An in-memory client ↔ server pair: the client association state machine talks to the server
//! association state machine (no framing, no sockets) over a small test meter (a clock, a
//! register, a 10 KB octet string and a method with return data), with every IS 15959
//! association kind, block transfer both ways, failures, replay and push.

use chrono::{DateTime, TimeZone, Utc};
use dlms::Data;
use dlms::ObisCode;
use dlms::apdu::{
    ActionResult, Apdu, AssociationResult, AttributeDescriptor, DataAccessResult, DataNotification,
    GetDataResult, Mechanism, MethodDescriptor, SelectiveAccess, SourceDiagnostic,
};
use dlms::association::client::{
    Client, ClientCiphering, ClientConfig, ClientError, ClientEvent, ClientSecurityState,
    ClientState, NotificationBody, PushSecurity, notification_system_title, parse_notification,
};
use dlms::association::server::{
    AssociationConfig, MeterSecurityState, PushProtection, Server, ServerConfig, ServerEvent,
    build_push_notification,
};
use dlms::association::{
    AssociationStatus, Authentication, CURRENT_ASSOCIATION, CosemObjects, RequestContext,
};
use dlms::security::{
    CipheredApdu, GlobalKeys, HlsSecret, ReplayGuard, SecurityError, SecurityPolicy, Suite0Cipher,
    SystemTitle,
};

const METER_TITLE: SystemTitle = *b"URJ\x00\x00\x01\x02\x03";
const HES_TITLE: SystemTitle = *b"HES\x00\x00\x00\x00\x07";
const LLS_PASSWORD: &[u8] = b"ABCDEFGH";
const CTOS: &[u8] = b"client-challenge";
const STOC: &[u8] = b"server-challenge";

const CLOCK: ObisCode = ObisCode::new(0, 0, 1, 0, 0, 255);
const KWH: ObisCode = ObisCode::new(1, 0, 1, 8, 0, 255);
const BIG: ObisCode = ObisCode::new(0, 0, 96, 128, 0, 255);
const BIG_LEN: usize = 10_000;
const CLOCK_BYTES: [u8; 12] = [0x07, 0xEA, 11, 26, 4, 16, 0, 0, 0, 0xFE, 0xB6, 0];

fn keys() -> GlobalKeys {
    GlobalKeys {
        encryption: *b"0123456789ABCDEF",
        authentication: *b"auth-key-16bytes",
    }
}

fn secret(which: u8) -> HlsSecret {
    HlsSecret::new([which; 16])
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 30, 0).unwrap()
}

fn clock() -> AttributeDescriptor {
    AttributeDescriptor {
        class_id: 8,
        instance: CLOCK,
        attribute_id: 2,
    }
}

fn kwh() -> AttributeDescriptor {
    AttributeDescriptor {
        class_id: 3,
        instance: KWH,
        attribute_id: 2,
    }
}

fn big() -> AttributeDescriptor {
    AttributeDescriptor {
        class_id: 1,
        instance: BIG,
        attribute_id: 2,
    }
}

fn big_value() -> Vec<u8> {
    (0..BIG_LEN).map(|i| (i % 251) as u8).collect()
}

/// The test meter: a clock, a kWh register, a big octet string, and a method on the big object
/// that returns the length of its parameter.
#[derive(Debug)]
struct TestMeter {
    clock: Vec<u8>,
    big: Vec<u8>,
    sets: usize,
}

impl TestMeter {
    fn new() -> Self {
        TestMeter {
            clock: CLOCK_BYTES.to_vec(),
            big: big_value(),
            sets: 0,
        }
    }
}

impl CosemObjects for TestMeter {
    fn get(
        &mut self,
        _ctx: &RequestContext,
        attribute: &AttributeDescriptor,
        _access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        match (
            attribute.class_id,
            attribute.instance,
            attribute.attribute_id,
        ) {
            (8, CLOCK, 2) => Ok(Data::OctetString(self.clock.clone())),
            (3, KWH, 2) => Ok(Data::DoubleLongUnsigned(123_456)),
            (3, KWH, 3) => Ok(Data::Structure(vec![Data::Integer(0), Data::Enum(30)])),
            (1, BIG, 2) => Ok(Data::OctetString(self.big.clone())),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn set(
        &mut self,
        ctx: &RequestContext,
        attribute: &AttributeDescriptor,
        _access: Option<&SelectiveAccess>,
        value: Data,
    ) -> Result<(), DataAccessResult> {
        if ctx.client_sap == 16 {
            return Err(DataAccessResult::ReadWriteDenied);
        }
        self.sets += 1;
        match (
            attribute.class_id,
            attribute.instance,
            attribute.attribute_id,
            value,
        ) {
            (8, CLOCK, 2, Data::OctetString(b)) if b.len() == 12 => {
                self.clock = b;
                Ok(())
            }
            (1, BIG, 2, Data::OctetString(b)) => {
                self.big = b;
                Ok(())
            }
            (8, CLOCK, 2, _) | (1, BIG, 2, _) => Err(DataAccessResult::TypeUnmatched),
            _ => Err(DataAccessResult::ObjectUndefined),
        }
    }

    fn action(
        &mut self,
        _ctx: &RequestContext,
        method: &MethodDescriptor,
        parameters: Option<Data>,
    ) -> Result<Option<Data>, ActionResult> {
        match (
            method.class_id,
            method.instance,
            method.method_id,
            parameters,
        ) {
            (1, BIG, 1, Some(Data::OctetString(b))) => Ok(Some(Data::LongUnsigned(b.len() as u16))),
            (1, BIG, 1, _) => Err(ActionResult::TypeUnmatched),
            _ => Err(ActionResult::ObjectUndefined),
        }
    }
}

/// The five IS 15959 associations, with the firmware association (80) on HLS-GMAC so both HLS
/// mechanisms are exercised.
fn server_config() -> ServerConfig {
    let mut config = ServerConfig::is15959(
        METER_TITLE,
        keys(),
        LLS_PASSWORD,
        [secret(0x48), secret(0x64), secret(0x80)],
    );
    for association in &mut config.associations {
        if association.client_sap == 80 {
            association.authentication = Authentication::HlsGmac;
        }
    }
    config
}

fn ciphering(keys: GlobalKeys) -> Option<ClientCiphering> {
    Some(ClientCiphering {
        policy: SecurityPolicy::AuthenticatedEncrypted,
        keys,
        system_title: HES_TITLE,
    })
}

fn client_config(sap: u16) -> ClientConfig {
    match sap {
        16 => ClientConfig::new(16, Authentication::None, None),
        32 => ClientConfig::new(
            32,
            Authentication::Lls {
                password: LLS_PASSWORD.to_vec(),
            },
            None,
        ),
        48 => ClientConfig::new(
            48,
            Authentication::Hls {
                secret: secret(0x48),
            },
            ciphering(keys()),
        ),
        64 => ClientConfig::new(
            64,
            Authentication::Hls {
                secret: secret(0x64),
            },
            ciphering(keys()),
        ),
        80 => ClientConfig::new(80, Authentication::HlsGmac, ciphering(keys())),
        _ => panic!("no such test association"),
    }
}

/// A client and a server joined by a perfect in-memory link. Every APDU is kept for inspection.
struct Pair {
    client: Client,
    server: Server,
    meter: TestMeter,
    sap: u16,
    to_server: Vec<Vec<u8>>,
    to_client: Vec<Vec<u8>>,
    server_events: Vec<ServerEvent>,
}

impl Pair {
    fn new(config: ClientConfig) -> Self {
        Self::with(
            config,
            ClientSecurityState::default(),
            server_config(),
            Default::default(),
        )
    }

    fn with(
        config: ClientConfig,
        client_state: ClientSecurityState,
        server_config: ServerConfig,
        meter_state: MeterSecurityState,
    ) -> Self {
        let sap = config.client_sap;
        Pair {
            client: Client::new(config, client_state),
            server: Server::new(server_config, meter_state),
            meter: TestMeter::new(),
            sap,
            to_server: Vec::new(),
            to_client: Vec::new(),
            server_events: Vec::new(),
        }
    }

    /// One APDU to the server; its answer, if any.
    fn deliver(&mut self, request: &[u8]) -> Option<Vec<u8>> {
        self.to_server.push(request.to_vec());
        let out = self
            .server
            .on_apdu(self.sap, request, now(), STOC, &mut self.meter);
        self.server_events.extend(out.event);
        if let Some(r) = &out.response {
            self.to_client.push(r.clone());
        }
        out.response
    }

    /// Sends `request` and keeps the exchange going (HLS pass 3, GET-next, SET blocks) until
    /// the client reports an event.
    fn run(&mut self, request: Vec<u8>) -> Result<ClientEvent, ClientError> {
        let mut request = request;
        for _ in 0..10_000 {
            let response = self
                .deliver(&request)
                .expect("the server answers every request");
            let out = self.client.on_apdu(&response, now())?;
            match (out.send, out.event) {
                (_, Some(event)) => return Ok(event),
                (Some(next), None) => request = next,
                (None, None) => panic!("client neither sent nor reported anything"),
            }
        }
        panic!("exchange did not finish");
    }

    fn associate(&mut self) -> Result<ClientEvent, ClientError> {
        let aarq = self.client.associate(CTOS)?;
        self.run(aarq)
    }

    fn get(&mut self, attribute: AttributeDescriptor) -> GetDataResult {
        let request = self.client.get(attribute, None).unwrap();
        match self.run(request).unwrap() {
            ClientEvent::Value { result, .. } => result,
            other => panic!("expected a value, got {other:?}"),
        }
    }
}

fn associated(pair: &mut Pair) {
    match pair.associate() {
        Ok(ClientEvent::Associated(_)) => {}
        other => panic!("association failed: {other:?}"),
    }
    assert_eq!(pair.client.state(), ClientState::Associated);
    assert_eq!(pair.server.status(), AssociationStatus::Associated);
}

fn read_clock_and_register(pair: &mut Pair) {
    assert_eq!(
        pair.get(clock()),
        GetDataResult::Data(Data::OctetString(CLOCK_BYTES.to_vec()))
    );
    assert_eq!(
        pair.get(kwh()),
        GetDataResult::Data(Data::DoubleLongUnsigned(123_456))
    );
}

fn is_ciphered(apdu: &[u8]) -> bool {
    CipheredApdu::decode(apdu).is_ok()
}

#[test]
fn public_client_associates_without_authentication_and_reads() {
    let mut pair = Pair::new(client_config(16));
    associated(&mut pair);
    read_clock_and_register(&mut pair);
    assert!(
        pair.to_server
            .iter()
            .chain(&pair.to_client)
            .all(|a| !is_ciphered(a))
    );
    assert!(pair.server_events.contains(&ServerEvent::Associated {
        client_sap: 16,
        mechanism: Mechanism::None
    }));
}

#[test]
fn meter_reader_associates_with_the_lls_password_and_reads() {
    let mut pair = Pair::new(client_config(32));
    associated(&mut pair);
    read_clock_and_register(&mut pair);
}

#[test]
fn hls_mechanism_2_with_authenticated_encryption_associates_and_reads() {
    let mut pair = Pair::new(client_config(48));
    associated(&mut pair);
    read_clock_and_register(&mut pair);
    assert_eq!(pair.client.server_system_title(), Some(METER_TITLE));
    // After the AARQ/AARE, every xDLMS APDU on the wire is glo-ciphered and the register value
    // (123456 = 00 01 E2 40) never appears in clear.
    let xdlms = pair
        .to_server
        .iter()
        .skip(1)
        .chain(pair.to_client.iter().skip(1));
    for apdu in xdlms {
        assert!(
            matches!(apdu[0], 0xC8 | 0xCB | 0xCC | 0xCF),
            "not ciphered: {apdu:02x?}"
        );
        assert!(!apdu.windows(4).any(|w| w == [0x00, 0x01, 0xE2, 0x40]));
    }
}

#[test]
fn hls_gmac_mechanism_5_with_authenticated_encryption_associates_and_reads() {
    let mut pair = Pair::new(client_config(80));
    associated(&mut pair);
    read_clock_and_register(&mut pair);
    assert!(pair.to_server.iter().skip(1).all(|a| is_ciphered(a)));
}

#[test]
fn the_push_association_uses_its_own_hls_secret() {
    let mut pair = Pair::new(client_config(64));
    associated(&mut pair);
    // The utility-settings secret does not open the push association.
    let mut wrong = client_config(64);
    wrong.authentication = Authentication::Hls {
        secret: secret(0x48),
    };
    let mut pair = Pair::new(wrong);
    assert_eq!(
        pair.associate(),
        Err(ClientError::HlsRefused(ActionResult::ReadWriteDenied))
    );
}

#[test]
fn wrong_lls_password_is_rejected_with_authentication_failure() {
    let mut config = client_config(32);
    config.authentication = Authentication::Lls {
        password: b"wrong".to_vec(),
    };
    let mut pair = Pair::new(config);
    let err = pair.associate().unwrap_err();
    assert_eq!(
        err,
        ClientError::Rejected {
            result: AssociationResult::RejectedPermanent,
            diagnostic: SourceDiagnostic::AUTHENTICATION_FAILURE,
            service_error: None,
        }
    );
    assert!(err.to_string().contains("authentication failure"), "{err}");
    assert_eq!(pair.client.state(), ClientState::Idle);
    assert_eq!(pair.server.status(), AssociationStatus::NonAssociated);
    assert!(matches!(
        pair.client.get(kwh(), None),
        Err(ClientError::WrongState { .. })
    ));
}

#[test]
fn wrong_hls_secret_is_refused_at_pass_3_and_never_associates() {
    let mut config = client_config(48);
    config.authentication = Authentication::Hls {
        secret: secret(0x99),
    };
    let mut pair = Pair::new(config);
    assert_eq!(
        pair.associate(),
        Err(ClientError::HlsRefused(ActionResult::ReadWriteDenied))
    );
    assert_eq!(pair.client.state(), ClientState::Idle);
    assert_eq!(pair.server.status(), AssociationStatus::NonAssociated);
    assert!(
        pair.server_events
            .contains(&ServerEvent::AuthenticationFailed { client_sap: 48 })
    );
    // A request slipped in after the failed pass 3 is refused.
    let response = pair.deliver(&[0xC0, 0x01, 0xC1, 0x00, 0x08, 0, 0, 1, 0, 0, 255, 2, 0]);
    assert!(matches!(
        Apdu::decode(&response.unwrap()),
        Ok(Apdu::ExceptionResponse(_))
    ));
}

#[test]
fn wrong_keys_are_rejected_for_both_hls_mechanisms() {
    for sap in [48, 80] {
        let mut config = client_config(sap);
        let mut bad = keys();
        bad.encryption[0] ^= 1;
        config.ciphering = ciphering(bad);
        let mut pair = Pair::new(config);
        let err = pair.associate().unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::Rejected {
                    diagnostic: SourceDiagnostic::AUTHENTICATION_FAILURE,
                    ..
                }
            ),
            "SAP {sap}: {err:?}"
        );
        assert_eq!(pair.server.status(), AssociationStatus::NonAssociated);
    }
    // Right encryption key, wrong authentication key: the GMAC of HLS-GMAC fails as well.
    let mut config = client_config(80);
    let mut bad = keys();
    bad.authentication[15] ^= 0x80;
    config.ciphering = ciphering(bad);
    let mut pair = Pair::new(config);
    assert!(pair.associate().is_err());
    assert_ne!(pair.client.state(), ClientState::Associated);
    assert_ne!(pair.server.status(), AssociationStatus::Associated);
}

#[test]
fn rejections_name_the_reason() {
    // Unknown client SAP.
    let mut config = client_config(16);
    config.client_sap = 99;
    let mut pair = Pair::new(config);
    assert!(matches!(
        pair.associate(),
        Err(ClientError::Rejected { .. })
    ));

    // Ciphering required but not offered: HLS association without ciphering.
    let mut config = client_config(48);
    config.ciphering = None;
    let mut pair = Pair::new(config);
    assert!(matches!(
        pair.associate(),
        Err(ClientError::Rejected {
            diagnostic: SourceDiagnostic::APPLICATION_CONTEXT_NOT_SUPPORTED,
            ..
        })
    ));

    // Mechanism missing on an LLS association.
    let mut config = client_config(32);
    config.authentication = Authentication::None;
    let mut pair = Pair::new(config);
    assert!(matches!(
        pair.associate(),
        Err(ClientError::Rejected {
            diagnostic: SourceDiagnostic::ServiceUser(12),
            ..
        })
    ));

    // A mechanism the association does not offer.
    let mut config = client_config(16);
    config.authentication = Authentication::Lls {
        password: b"x".to_vec(),
    };
    let mut pair = Pair::new(config);
    assert!(matches!(
        pair.associate(),
        Err(ClientError::Rejected {
            diagnostic: SourceDiagnostic::MECHANISM_NOT_RECOGNISED,
            ..
        })
    ));
}

#[test]
fn a_server_that_fails_pass_4_is_not_trusted() {
    // HLS mechanism 2 without ciphering, so the test can tamper with the server's f(CtoS).
    let mut server = server_config();
    let mut hls = AssociationConfig::hls(
        48,
        Authentication::Hls {
            secret: secret(0x48),
        },
        keys(),
    );
    hls.security = SecurityPolicy::None;
    hls.keys = None;
    server.associations.retain(|a| a.client_sap != 48);
    server.associations.push(hls);
    let config = ClientConfig::new(
        48,
        Authentication::Hls {
            secret: secret(0x48),
        },
        None,
    );
    let mut pair = Pair::with(config, Default::default(), server, Default::default());
    let aarq = pair.client.associate(CTOS).unwrap();
    let aare = pair.deliver(&aarq).unwrap();
    let pass3 = pair.client.on_apdu(&aare, now()).unwrap().send.unwrap();
    let mut pass4 = pair.deliver(&pass3).unwrap();
    let last = pass4.len() - 1;
    pass4[last] ^= 0x01;
    assert_eq!(
        pair.client.on_apdu(&pass4, now()),
        Err(ClientError::ServerAuthenticationFailed)
    );
    assert_ne!(pair.client.state(), ClientState::Associated);
}

#[test]
fn get_follows_block_transfer_of_a_10_kb_value_with_a_256_byte_client_pdu() {
    for sap in [32, 48] {
        let mut config = client_config(sap);
        config.max_receive_pdu_size = 256;
        let mut pair = Pair::new(config);
        associated(&mut pair);
        let before = pair.to_client.len();
        assert_eq!(
            pair.get(big()),
            GetDataResult::Data(Data::OctetString(big_value()))
        );
        let responses = &pair.to_client[before..];
        assert!(
            responses.len() >= BIG_LEN / 256,
            "only {} responses",
            responses.len()
        );
        assert!(
            responses.iter().all(|r| r.len() <= 256),
            "a response exceeded the client PDU"
        );
        // And the association still works afterwards.
        read_clock_and_register(&mut pair);
    }
}

#[test]
fn get_with_list_returns_each_result_in_order_even_in_blocks() {
    for max_pdu in [1024, 128] {
        let mut config = client_config(48);
        config.max_receive_pdu_size = max_pdu;
        let mut pair = Pair::new(config);
        associated(&mut pair);
        let unknown = AttributeDescriptor {
            class_id: 3,
            instance: ObisCode::new(1, 0, 99, 99, 0, 255),
            attribute_id: 2,
        };
        let items = vec![
            (clock(), None),
            (kwh(), None),
            (unknown, None),
            (
                AttributeDescriptor {
                    class_id: 3,
                    instance: KWH,
                    attribute_id: 3,
                },
                None,
            ),
        ];
        let request = pair.client.get_with_list(items).unwrap();
        let ClientEvent::Values { results, .. } = pair.run(request).unwrap() else {
            panic!("expected values");
        };
        assert_eq!(
            results,
            vec![
                GetDataResult::Data(Data::OctetString(CLOCK_BYTES.to_vec())),
                GetDataResult::Data(Data::DoubleLongUnsigned(123_456)),
                GetDataResult::Error(DataAccessResult::ObjectUndefined),
                GetDataResult::Data(Data::Structure(vec![Data::Integer(0), Data::Enum(30)])),
            ]
        );
    }
}

#[test]
fn set_sends_a_large_value_in_datablocks_and_the_meter_stores_it() {
    let mut server = server_config();
    server.max_receive_pdu_size = 256;
    let mut pair = Pair::with(
        client_config(48),
        Default::default(),
        server,
        Default::default(),
    );
    associated(&mut pair);
    let value: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
    let before = pair.to_server.len();
    let request = pair
        .client
        .set(big(), None, Data::OctetString(value.clone()))
        .unwrap();
    let event = pair.run(request).unwrap();
    assert!(matches!(
        event,
        ClientEvent::SetResult {
            result: DataAccessResult::Success,
            ..
        }
    ));
    assert_eq!(pair.meter.big, value);
    assert_eq!(pair.meter.sets, 1);
    let requests = &pair.to_server[before..];
    assert!(
        requests.len() >= 5000 / 256,
        "only {} blocks",
        requests.len()
    );
    assert!(
        requests.iter().all(|r| r.len() <= 256),
        "a block exceeded the server PDU"
    );
    // A small SET goes in one request; the meter's own refusal comes back as the result.
    let request = pair.client.set(clock(), None, Data::Unsigned(1)).unwrap();
    assert!(matches!(
        pair.run(request).unwrap(),
        ClientEvent::SetResult {
            result: DataAccessResult::TypeUnmatched,
            ..
        }
    ));
}

#[test]
fn set_is_subject_to_the_meters_access_rights() {
    let mut pair = Pair::new(client_config(16));
    associated(&mut pair);
    let request = pair
        .client
        .set(clock(), None, Data::OctetString(vec![0; 12]))
        .unwrap();
    assert!(matches!(
        pair.run(request).unwrap(),
        ClientEvent::SetResult {
            result: DataAccessResult::ReadWriteDenied,
            ..
        }
    ));
    assert_eq!(pair.meter.clock, CLOCK_BYTES);
}

#[test]
fn action_returns_the_methods_data() {
    let mut pair = Pair::new(client_config(80));
    associated(&mut pair);
    let method = MethodDescriptor {
        class_id: 1,
        instance: BIG,
        method_id: 1,
    };
    let request = pair
        .client
        .action(method, Some(Data::OctetString(vec![1; 300])))
        .unwrap();
    let ClientEvent::ActionResult {
        result,
        return_data,
        ..
    } = pair.run(request).unwrap()
    else {
        panic!("expected an action result");
    };
    assert_eq!(result, ActionResult::Success);
    assert_eq!(
        return_data,
        Some(GetDataResult::Data(Data::LongUnsigned(300)))
    );
    let missing = MethodDescriptor {
        class_id: 70,
        instance: BIG,
        method_id: 1,
    };
    let request = pair.client.action(missing, None).unwrap();
    assert!(matches!(
        pair.run(request).unwrap(),
        ClientEvent::ActionResult {
            result: ActionResult::ObjectUndefined,
            return_data: None,
            ..
        }
    ));
}

#[test]
fn the_server_answers_the_association_object_itself() {
    let mut pair = Pair::new(client_config(48));
    associated(&mut pair);
    let attr = |instance, attribute_id| AttributeDescriptor {
        class_id: 15,
        instance,
        attribute_id,
    };
    assert_eq!(
        pair.get(attr(CURRENT_ASSOCIATION, 8)),
        GetDataResult::Data(Data::Enum(2))
    );
    let own = ObisCode::new(0, 0, 40, 0, 3, 255);
    assert_eq!(
        pair.get(attr(own, 1)),
        GetDataResult::Data(Data::OctetString(own.0.to_vec()))
    );
    let GetDataResult::Data(Data::Structure(context)) = pair.get(attr(CURRENT_ASSOCIATION, 4))
    else {
        panic!("application context name");
    };
    assert_eq!(
        context.last(),
        Some(&Data::Unsigned(3)),
        "LN with ciphering"
    );
    let GetDataResult::Data(Data::Structure(mechanism)) = pair.get(attr(CURRENT_ASSOCIATION, 6))
    else {
        panic!("mechanism name");
    };
    assert_eq!(
        mechanism.last(),
        Some(&Data::Unsigned(2)),
        "HLS mechanism 2"
    );
    assert_eq!(
        pair.get(attr(CURRENT_ASSOCIATION, 7)),
        GetDataResult::Error(DataAccessResult::ReadWriteDenied)
    );
    // Another association's object, and unknown attributes, go to the object model.
    assert_eq!(
        pair.get(attr(ObisCode::new(0, 0, 40, 0, 1, 255), 8)),
        GetDataResult::Error(DataAccessResult::ObjectUndefined)
    );
}

#[test]
fn release_closes_the_association_on_both_sides() {
    for sap in [16, 48] {
        let mut pair = Pair::new(client_config(sap));
        associated(&mut pair);
        let rlrq = pair.client.release().unwrap();
        assert_eq!(pair.run(rlrq).unwrap(), ClientEvent::Released);
        assert_eq!(pair.client.state(), ClientState::Idle);
        assert_eq!(pair.server.status(), AssociationStatus::NonAssociated);
        assert!(
            pair.server_events
                .contains(&ServerEvent::Released { client_sap: sap })
        );
        // The meter no longer serves requests on that connection...
        let get = [0xC0, 0x01, 0xC1, 0x00, 0x08, 0, 0, 1, 0, 0, 255, 2, 0];
        let response = pair.deliver(&get).unwrap();
        assert!(matches!(
            Apdu::decode(&response),
            Ok(Apdu::ExceptionResponse(_))
        ));
        // ...and the client can associate again.
        associated(&mut pair);
    }
}

#[test]
fn requests_before_association_or_in_plaintext_on_a_ciphered_one_are_refused() {
    let get = [0xC0, 0x01, 0xC1, 0x00, 0x08, 0, 0, 1, 0, 0, 255, 2, 0];
    let mut pair = Pair::new(client_config(48));
    let refused = |response: Option<Vec<u8>>| match Apdu::decode(&response.unwrap()) {
        Ok(Apdu::ExceptionResponse(e)) => e,
        other => panic!("expected an exception response, got {other:?}"),
    };
    assert_eq!(refused(pair.deliver(&get)).state_error, 1);
    associated(&mut pair);
    let e = refused(pair.deliver(&get));
    assert_eq!((e.state_error, e.service_error), (1, 5));
    assert_eq!(pair.meter.sets, 0);
}

#[test]
fn a_replayed_ciphered_request_is_rejected() {
    let mut pair = Pair::new(client_config(48));
    associated(&mut pair);
    let request = pair.client.get(kwh(), None).unwrap();
    let first = pair.deliver(&request).unwrap();
    assert!(matches!(
        pair.client.on_apdu(&first, now()).unwrap().event,
        Some(ClientEvent::Value { .. })
    ));
    // An eavesdropper replays the same ciphered request.
    let replay = pair.deliver(&request).unwrap();
    let Ok(Apdu::ExceptionResponse(e)) = Apdu::decode(&replay) else {
        panic!("expected an exception response, got {replay:02x?}");
    };
    assert_eq!(e.service_error, 6, "invocation-counter-error");
    let sent = CipheredApdu::decode(&request).unwrap().invocation_counter;
    assert_eq!(e.invocation_counter, Some(sent + 1));
    // The client, in turn, refuses a replayed response.
    let request = pair.client.get(kwh(), None).unwrap();
    assert!(pair.deliver(&request).is_some());
    assert!(matches!(
        pair.client.on_apdu(&first, now()),
        Err(ClientError::Security(SecurityError::Replayed { .. }))
    ));
}

#[test]
fn invocation_counters_strictly_increase_across_two_associations() {
    let counters = |apdus: &[Vec<u8>]| -> Vec<u32> {
        apdus
            .iter()
            .filter_map(|a| CipheredApdu::decode(a).ok())
            .map(|c| c.invocation_counter)
            .collect()
    };
    let mut pair = Pair::new(client_config(48));
    associated(&mut pair);
    read_clock_and_register(&mut pair);
    let rlrq = pair.client.release().unwrap();
    pair.run(rlrq).unwrap();
    let client_state = pair.client.security_state().clone();
    let meter_state = pair.server.security_state().clone();
    let first_client = counters(&pair.to_server);
    let first_meter = counters(&pair.to_client);

    // Second association, new connection, counters restored from what was persisted; this
    // time through the HLS-GMAC association, which shares the meter's keys.
    let mut pair = Pair::with(
        client_config(80),
        client_state,
        server_config(),
        meter_state,
    );
    associated(&mut pair);
    read_clock_and_register(&mut pair);
    let second_client = counters(&pair.to_server);
    let second_meter = counters(&pair.to_client);

    for (first, second) in [(first_client, second_client), (first_meter, second_meter)] {
        assert!(first.len() >= 3 && second.len() >= 3);
        let all: Vec<u32> = first.iter().chain(&second).copied().collect();
        assert!(
            all.windows(2).all(|w| w[0] < w[1]),
            "not strictly increasing: {all:?}"
        );
    }
}

#[test]
fn a_push_built_by_the_meter_is_parsed_by_the_head_end() {
    let cipher = Suite0Cipher::new(&keys());
    let mut meter_state = MeterSecurityState::new(500);
    let notification = DataNotification {
        long_invoke_id_and_priority: 7,
        date_time: None,
        body: Data::Structure(vec![
            Data::OctetString(b"URJ10000001".to_vec()),
            Data::OctetString(vec![0, 4, 25, 9, 0, 255]),
            Data::OctetString(CLOCK_BYTES.to_vec()),
        ]),
    };

    // Plain push.
    let plain = build_push_notification(&notification, None).unwrap();
    let parsed = parse_notification(&plain, now(), None).unwrap();
    assert_eq!(parsed.body, NotificationBody::Data(notification.clone()));
    assert_eq!(parsed.system_title, None);

    // General-glo-ciphered push of the push association.
    let protection = PushProtection {
        system_title: METER_TITLE,
        cipher: &cipher,
        policy: SecurityPolicy::AuthenticatedEncrypted,
        invocation_counter: &mut meter_state.invocation_counter,
    };
    let ciphered = build_push_notification(&notification, Some(protection)).unwrap();
    assert_eq!(ciphered[0], 0xDB);
    assert_eq!(meter_state.invocation_counter.peek(), 501);
    let sender = notification_system_title(&ciphered).unwrap();
    assert_eq!(sender, METER_TITLE);
    let mut guard = ReplayGuard::new();
    fn security<'a>(
        cipher: &'a Suite0Cipher,
        sender: SystemTitle,
        replay: &'a mut ReplayGuard,
    ) -> PushSecurity<'a> {
        PushSecurity {
            cipher,
            system_title: sender,
            required: SecurityPolicy::AuthenticatedEncrypted,
            replay,
        }
    }
    let parsed = parse_notification(
        &ciphered,
        now(),
        Some(security(&cipher, sender, &mut guard)),
    )
    .unwrap();
    assert_eq!(parsed.body, NotificationBody::Data(notification));
    assert_eq!(parsed.system_title, Some(METER_TITLE));
    assert_eq!(parsed.invocation_counter, Some(500));
    assert_eq!(parsed.received_at, now());
    // The same push again is a replay; a plain push where ciphering is required is refused.
    assert!(
        parse_notification(
            &ciphered,
            now(),
            Some(security(&cipher, sender, &mut guard))
        )
        .is_err()
    );
    assert!(
        parse_notification(&plain, now(), Some(security(&cipher, sender, &mut guard))).is_err()
    );
    // Without keys, a ciphered push cannot be read.
    assert!(parse_notification(&ciphered, now(), None).is_err());

    // A push arriving on an open client association is reported as an event.
    let mut pair = Pair::new(client_config(16));
    associated(&mut pair);
    let out = pair.client.on_apdu(&plain, now()).unwrap();
    assert!(matches!(out.event, Some(ClientEvent::Notification(_))));
}

#[test]
fn only_one_request_is_outstanding_and_mismatched_invoke_ids_are_reported() {
    let mut pair = Pair::new(client_config(32));
    associated(&mut pair);
    let first = pair.client.get(kwh(), None).unwrap();
    assert!(matches!(
        pair.client.get(clock(), None),
        Err(ClientError::Busy(_))
    ));
    let mut response = pair.deliver(&first).unwrap();
    response[2] ^= 0x01; // invoke-id-and-priority of the GET response
    assert!(matches!(
        pair.client.on_apdu(&response, now()),
        Err(ClientError::InvokeIdMismatch { .. })
    ));
    response[2] ^= 0x01;
    assert!(matches!(
        pair.client.on_apdu(&response, now()).unwrap().event,
        Some(ClientEvent::Value { .. })
    ));
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever a peer sends, neither side panics, and a server never dispatches anything
        /// on a ciphered association that it could not authenticate.
        #[test]
        fn arbitrary_bytes_never_panic_either_side(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            sap in prop::sample::select(vec![16u16, 48]),
        ) {
            let mut pair = Pair::new(client_config(sap));
            let _ = pair.deliver(&bytes);
            associated(&mut pair);
            let sets = pair.meter.sets;
            let response = pair.deliver(&bytes);
            prop_assert!(response.is_some());
            if sap == 48 {
                prop_assert_eq!(pair.meter.sets, sets);
            }
            let _ = pair.client.on_apdu(&bytes, now());
        }

        /// Flipping any bit of a ciphered SET request makes the meter refuse it.
        #[test]
        fn a_tampered_ciphered_request_is_refused(bit in 0usize..(8 * 40)) {
            let mut pair = Pair::new(client_config(48));
            associated(&mut pair);
            let mut request =
                pair.client.set(clock(), None, Data::OctetString(vec![0x11; 12])).unwrap();
            let byte = bit / 8 % request.len();
            request[byte] ^= 1 << (bit % 8);
            let response = pair.deliver(&request).unwrap();
            prop_assert_eq!(pair.meter.sets, 0);
            prop_assert!(matches!(Apdu::decode(&response), Ok(Apdu::ExceptionResponse(_))));
        }
    }
}

// ---- Review fixes: counters, envelopes, release, limits ---------------------------------------

/// A client on the utility settings association (48) with its own system title and keys.
fn hls_client(title: SystemTitle, keys: GlobalKeys) -> ClientConfig {
    let mut config = client_config(48);
    config.ciphering = Some(ClientCiphering {
        policy: SecurityPolicy::AuthenticatedEncrypted,
        keys,
        system_title: title,
    });
    config
}

fn exception(response: Option<Vec<u8>>) -> (u8, u8) {
    match Apdu::decode(&response.expect("an answer")) {
        Ok(Apdu::ExceptionResponse(e)) => (e.state_error, e.service_error),
        other => panic!("expected an exception response, got {other:?}"),
    }
}

/// A plaintext GET of the kWh register, as the client would send it inside an envelope.
fn plain_get_kwh() -> Vec<u8> {
    Apdu::GetRequest(dlms::apdu::GetRequest::Normal {
        invoke_id: 0xC5,
        attribute: kwh(),
        access: None,
    })
    .encode()
}

#[test]
fn aarqs_with_made_up_calling_titles_never_grow_the_meters_counter_map() {
    let mut meter_state = MeterSecurityState::default();
    let wrong = GlobalKeys {
        encryption: [0xEE; 16],
        authentication: [0xAA; 16],
    };
    for i in 0..200u32 {
        let mut title = *b"ATK\x00\x00\x00\x00\x00";
        title[4..].copy_from_slice(&i.to_be_bytes());
        let mut pair = Pair::with(
            hls_client(title, wrong.clone()),
            ClientSecurityState::default(),
            server_config(),
            meter_state,
        );
        assert!(pair.associate().is_err(), "wrong keys must not associate");
        meter_state = pair.server.into_security_state();
    }
    assert!(
        meter_state.client_counters.is_empty(),
        "unauthenticated AARQs added {} titles",
        meter_state.client_counters.len()
    );
}

#[test]
fn the_meter_remembers_at_most_max_client_titles_and_forgets_the_oldest_accepted() {
    use dlms::association::server::MAX_CLIENT_TITLES;
    let title = |i: usize| -> SystemTitle {
        let mut t = *b"HES\x00\x00\x00\x00\x00";
        t[4..].copy_from_slice(&(i as u32).to_be_bytes());
        t
    };
    // Associates client `i` (counters from `first_counter`) with the meter's keys.
    let associate = |i: usize, first_counter: u32, state: MeterSecurityState| {
        let mut pair = Pair::with(
            hls_client(title(i), keys()),
            ClientSecurityState::new(first_counter, None),
            server_config(),
            state,
        );
        associated(&mut pair);
        pair.server.into_security_state()
    };
    let mut state = MeterSecurityState::default();
    for i in 0..MAX_CLIENT_TITLES {
        state = associate(i, 1, state);
    }
    assert_eq!(state.client_counters.len(), MAX_CLIENT_TITLES);
    assert_eq!(
        state.client_counters[&title(0)].last_accepted(),
        Some(2),
        "the last authenticated request (AARQ 1, HLS pass 3 2) is recorded"
    );
    // Client 0 comes back: it is now the most recently accepted.
    state = associate(0, 100, state);
    // Two new clients push past the limit: the two oldest accepted (1 and 2) are forgotten.
    for i in [MAX_CLIENT_TITLES, MAX_CLIENT_TITLES + 1] {
        state = associate(i, 1, state);
    }
    let counters = &state.client_counters;
    assert_eq!(counters.len(), MAX_CLIENT_TITLES);
    assert!(counters.contains_key(&title(0)));
    assert!(!counters.contains_key(&title(1)) && !counters.contains_key(&title(2)));
    assert!(counters.contains_key(&title(3)));
    assert!(counters.contains_key(&title(MAX_CLIENT_TITLES + 1)));
}

#[test]
fn ded_and_general_ded_ciphered_requests_are_refused_not_opened_with_the_global_key() {
    use dlms::security::{Envelope, InvocationCounter, SecurityControl, protect};
    let mut pair = Pair::new(client_config(48));
    associated(&mut pair);
    let cipher = Suite0Cipher::new(&keys());
    let sc = SecurityControl::new(SecurityPolicy::AuthenticatedEncrypted);
    let mut counter = InvocationCounter::new(1000);
    for envelope in [Envelope::Ded, Envelope::GeneralDed] {
        let request = protect(
            &plain_get_kwh(),
            envelope,
            sc,
            &cipher,
            &HES_TITLE,
            &mut counter,
        )
        .unwrap();
        assert_eq!(exception(pair.deliver(&request)), (1, 5), "{envelope:?}");
    }
    assert_eq!(pair.server.status(), AssociationStatus::Associated);
}

#[test]
fn a_general_glo_ciphered_request_gets_a_general_glo_ciphered_answer() {
    use dlms::security::{Envelope, InvocationCounter, SecurityControl, protect, unprotect};
    let mut pair = Pair::new(client_config(48));
    associated(&mut pair);
    let cipher = Suite0Cipher::new(&keys());
    let sc = SecurityControl::new(SecurityPolicy::AuthenticatedEncrypted);
    let mut counter = InvocationCounter::new(1000);
    let request = protect(
        &plain_get_kwh(),
        Envelope::GeneralGlo,
        sc,
        &cipher,
        &HES_TITLE,
        &mut counter,
    )
    .unwrap();
    let answer = pair.deliver(&request).unwrap();
    let envelope = CipheredApdu::decode(&answer).unwrap();
    assert_eq!(envelope.envelope, Envelope::GeneralGlo);
    assert_eq!(envelope.system_title, Some(&METER_TITLE[..]));
    let policy = SecurityPolicy::AuthenticatedEncrypted;
    let opened = unprotect(
        &answer,
        &cipher,
        &METER_TITLE,
        policy,
        &mut ReplayGuard::new(),
    );
    match Apdu::decode(&opened.unwrap().apdu) {
        Ok(Apdu::GetResponse(dlms::apdu::GetResponse::Normal { result, .. })) => {
            assert_eq!(
                result,
                GetDataResult::Data(Data::DoubleLongUnsigned(123_456))
            )
        }
        other => panic!("{other:?}"),
    }
    // The next glo-ciphered request is answered glo-ciphered again.
    let request = protect(
        &plain_get_kwh(),
        Envelope::Glo,
        sc,
        &cipher,
        &HES_TITLE,
        &mut counter,
    )
    .unwrap();
    let answer = pair.deliver(&request).unwrap();
    assert_eq!(
        CipheredApdu::decode(&answer).unwrap().envelope,
        Envelope::Glo
    );
}

#[test]
fn requests_longer_than_the_announced_max_pdu_are_refused_with_pdu_too_long() {
    let mut pair = Pair::new(client_config(32));
    associated(&mut pair);
    let max = usize::from(pair.server.config().max_receive_pdu_size);
    assert_eq!(
        pair.server
            .negotiated()
            .unwrap()
            .server_max_receive_pdu_size,
        1024
    );
    let set = |len: usize| {
        Apdu::SetRequest(dlms::apdu::SetRequest::Normal {
            invoke_id: 0xC1,
            attribute: big(),
            access: None,
            value: Data::OctetString(vec![7; len]),
        })
        .encode()
    };
    // The longest value that still fits the announced size exactly.
    let fits = (0..max).rev().find(|&n| set(n).len() <= max).unwrap();
    assert_eq!(set(fits).len(), max);
    let response = pair.deliver(&set(fits)).unwrap();
    assert!(matches!(
        Apdu::decode(&response),
        Ok(Apdu::SetResponse(dlms::apdu::SetResponse::Normal {
            result: DataAccessResult::Success,
            ..
        }))
    ));
    assert_eq!(pair.meter.sets, 1);
    // One byte more: refused with pdu-too-long, the object untouched.
    assert_eq!(exception(pair.deliver(&set(fits + 1))), (1, 4));
    assert_eq!(pair.meter.sets, 1);
    // Our own client keeps under the limit: a 10 KB SET goes in blocks and is accepted.
    let sent_before = pair.to_server.len();
    let request = pair
        .client
        .set(big(), None, Data::OctetString(vec![9; 10_000]))
        .unwrap();
    assert_eq!(
        pair.run(request).unwrap(),
        ClientEvent::SetResult {
            invoke_id: 0xC1,
            result: DataAccessResult::Success
        }
    );
    assert_eq!(pair.meter.big, vec![9; 10_000]);
    let blocks = &pair.to_server[sent_before..];
    assert!(
        blocks.len() > 1 && blocks.iter().all(|a| a.len() <= max),
        "in blocks"
    );
}

#[test]
fn a_get_with_list_beyond_the_item_limit_reads_nothing() {
    use dlms::association::server::MAX_GET_LIST_ITEMS;
    let mut pair = Pair::new(client_config(16));
    associated(&mut pair);
    for (count, expected) in [
        (
            MAX_GET_LIST_ITEMS,
            GetDataResult::Data(Data::DoubleLongUnsigned(123_456)),
        ),
        (
            MAX_GET_LIST_ITEMS + 1,
            GetDataResult::Error(DataAccessResult::OtherReason),
        ),
    ] {
        let request = pair
            .client
            .get_with_list(vec![(kwh(), None); count])
            .unwrap();
        let ClientEvent::Values { results, .. } = pair.run(request).unwrap() else {
            panic!("expected values");
        };
        assert_eq!(results, vec![expected; count]);
    }
}

/// The Gurux `useProtectedRelease` RLRQ of `vectors/rlrq-protected.txt`, its client's system
/// title, keys and HLS secret.
fn gurux_protected_release() -> (Vec<u8>, SystemTitle, GlobalKeys, HlsSecret) {
    let text = include_str!("vectors/rlrq-protected.txt");
    let field = |name: &str| {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in the vector"));
        hex::decode(line.trim()).unwrap()
    };
    let title = SystemTitle::try_from(field("system_title:").as_slice()).unwrap();
    let keys = GlobalKeys {
        encryption: field("block_cipher_key:").try_into().unwrap(),
        authentication: field("authentication_key:").try_into().unwrap(),
    };
    let secret = HlsSecret::new(<[u8; 16]>::try_from(field("hls_secret:")).unwrap());
    (field("apdu:"), title, keys, secret)
}

#[test]
fn a_protected_release_must_verify_and_a_plain_one_still_releases() {
    let (gurux_rlrq, title, keys, secret) = gurux_protected_release();
    let open_pair = || {
        let mut config = hls_client(title, keys.clone());
        config.authentication = Authentication::Hls {
            secret: secret.clone(),
        };
        let server = ServerConfig::is15959(
            METER_TITLE,
            keys.clone(),
            LLS_PASSWORD,
            [secret.clone(), secret.clone(), secret.clone()],
        );
        let mut pair = Pair::with(config, Default::default(), server, Default::default());
        associated(&mut pair);
        pair
    };
    // Gurux's protected RLRQ (counter 46) verifies: released, with a ciphered InitiateResponse.
    let mut pair = open_pair();
    let rlre = pair.deliver(&gurux_rlrq).unwrap();
    let Ok(Apdu::Rlre(rlre)) = Apdu::decode(&rlre) else {
        panic!("expected an RLRE, got {rlre:02x?}");
    };
    assert!(is_ciphered(&rlre.user_information.unwrap()));
    assert_eq!(pair.server.status(), AssociationStatus::NonAssociated);
    assert!(
        pair.server_events
            .contains(&ServerEvent::Released { client_sap: 48 })
    );
    let after = pair.server.security_state().clone();

    // Tampered: refused, the association stays open and keeps serving.
    let mut pair = open_pair();
    let mut tampered = gurux_rlrq.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert_eq!(exception(pair.deliver(&tampered)), (1, 5));
    assert_eq!(pair.server.status(), AssociationStatus::Associated);
    assert_eq!(
        pair.get(kwh()),
        GetDataResult::Data(Data::DoubleLongUnsigned(123_456))
    );
    // Plaintext user-information on a ciphered association: refused too.
    let initiate = Apdu::InitiateRequest(dlms::apdu::InitiateRequest {
        dedicated_key: None,
        response_allowed: true,
        proposed_quality_of_service: None,
        proposed_dlms_version: 6,
        proposed_conformance: ClientConfig::CONFORMANCE,
        client_max_receive_pdu_size: 1024,
    })
    .encode();
    let plain_info = Apdu::Rlrq(dlms::apdu::Rlrq {
        reason: Some(0),
        user_information: Some(initiate),
    })
    .encode();
    assert_eq!(exception(pair.deliver(&plain_info)), (1, 5));
    assert_eq!(pair.server.status(), AssociationStatus::Associated);

    // Replayed on a later association of the same client: invocation-counter-error.
    let mut pair = Pair::with(
        {
            let mut config = hls_client(title, keys.clone());
            config.authentication = Authentication::Hls {
                secret: secret.clone(),
            };
            config
        },
        ClientSecurityState::new(100, None),
        ServerConfig::is15959(
            METER_TITLE,
            keys.clone(),
            LLS_PASSWORD,
            [secret.clone(), secret.clone(), secret.clone()],
        ),
        after,
    );
    associated(&mut pair);
    assert_eq!(exception(pair.deliver(&gurux_rlrq)), (1, 6));
    assert_eq!(pair.server.status(), AssociationStatus::Associated);

    // A plain RLRQ without user-information (what Gurux sends by default) releases.
    let public = include_str!("vectors/rlrq-public.txt");
    let plain = public
        .lines()
        .find_map(|l| l.strip_prefix("apdu:"))
        .map(|h| hex::decode(h.trim()).unwrap())
        .unwrap();
    let rlre = pair.deliver(&plain).unwrap();
    assert!(matches!(Apdu::decode(&rlre), Ok(Apdu::Rlre(_))));
    assert_eq!(pair.server.status(), AssociationStatus::NonAssociated);
}

//! The xDLMS APDU codec against known byte vectors (Green Book examples, Gurux's output in
//! `tests/vectors/`), round-trip properties over every APDU variant, and "decoding arbitrary or
//! damaged bytes never panics".

use std::path::Path;

use dlms::apdu::*;
use dlms::{ClockStatus, Data, Date, DateTime, DecodeError, ObisCode, Time};
use proptest::collection::vec;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(s).expect("test vector is valid hex")
}

const CLOCK: ObisCode = ObisCode::new(0, 0, 1, 0, 0, 255);
const BLOCK_LOAD: ObisCode = ObisCode::new(1, 0, 99, 1, 0, 255);

/// Decodes, checks the value, and checks the value re-encodes to the same bytes.
fn known(bytes: &str, expected: Apdu) {
    let bytes = hex(bytes);
    assert_eq!(Apdu::decode(&bytes), Ok(expected.clone()));
    assert_eq!(hex::encode(expected.encode()), hex::encode(&bytes));
}

// ---------------------------------------------------------------------------------------------
// Known vectors
// ---------------------------------------------------------------------------------------------

#[test]
fn get_request_normal_of_the_clock() {
    known(
        "C0 01 C1 00 08 00 00 01 00 00 FF 02 00",
        Apdu::GetRequest(GetRequest::Normal {
            invoke_id: 0xC1,
            attribute: AttributeDescriptor::new(8, CLOCK, 2),
            access: None,
        }),
    );
}

#[test]
fn aarq_lls_with_password() {
    // The classic Gurux / Green Book LLS AARQ, password "12345678".
    let initiate = InitiateRequest::new(Conformance(0x00_7E1F), 0x04B0);
    known(
        "60 36 A1 09 06 07 60 85 74 05 08 01 01 8A 02 07 80 8B 07 60 85 74 05 08 02 01
         AC 0A 80 08 31 32 33 34 35 36 37 38 BE 10 04 0E 01 00 00 00 06 5F 1F 04 00 00 7E 1F
         04 B0",
        Apdu::Aarq(Aarq {
            application_context: ApplicationContext::LogicalNameNoCiphering,
            calling_ap_title: None,
            mechanism: Some(Mechanism::Lls),
            calling_authentication_value: Some(b"12345678".to_vec()),
            user_information: Some(initiate.encode()),
        }),
    );
    let c = initiate.proposed_conformance;
    assert!(c.has(Conformance::GET) && c.has(Conformance::BLOCK_TRANSFER_WITH_GET_OR_READ));
    assert!(!c.has(Conformance::GENERAL_PROTECTION));
}

#[test]
fn aarq_hls_gmac_with_glo_initiate_request_green_book() {
    // Green Book HLS-GMAC example: client system title 4D4D4D0000BC614E, CtoS "K56iVagY",
    // user-information a glo-initiateRequest (SC 0x30, IC 0x01234567).
    let glo = hex(
        "21 30 30 01 23 45 67 80 13 02 FF 8A 78 74 13 3D 41 4C ED 25 B4 25 34 D2 8D B0 04 77 20 60
         6B 17 5B D5 22 11 BE 68 41 DB 20 4D 39 EE 6F DB 8E 35 68 55",
    );
    known(
        "60 66 A1 09 06 07 60 85 74 05 08 01 03 A6 0A 04 08 4D 4D 4D 00 00 BC 61 4E 8A 02 07 80
         8B 07 60 85 74 05 08 02 05 AC 0A 80 08 4B 35 36 69 56 61 67 59 BE 34 04 32
         21 30 30 01 23 45 67 80 13 02 FF 8A 78 74 13 3D 41 4C ED 25 B4 25 34 D2 8D B0 04 77 20 60
         6B 17 5B D5 22 11 BE 68 41 DB 20 4D 39 EE 6F DB 8E 35 68 55",
        Apdu::Aarq(Aarq {
            application_context: ApplicationContext::LogicalNameWithCiphering,
            calling_ap_title: Some(hex("4D4D4D0000BC614E")),
            mechanism: Some(Mechanism::HlsGmac),
            calling_authentication_value: Some(b"K56iVagY".to_vec()),
            user_information: Some(glo),
        }),
    );
}

#[test]
fn initiate_request_with_dedicated_key_green_book() {
    // The plaintext of the Green Book's glo-initiateRequest example.
    let bytes = hex("01 01 10 00112233445566778899AABBCCDDEEFF 00 00 06 5F1F0400007E1F 04B0");
    let expected = InitiateRequest {
        dedicated_key: Some(hex("00112233445566778899AABBCCDDEEFF")),
        ..InitiateRequest::new(Conformance(0x7E1F), 1200)
    };
    assert_eq!(InitiateRequest::decode(&bytes), Ok(expected.clone()));
    assert_eq!(expected.encode(), bytes);
}

#[test]
fn initiate_request_non_default_fields() {
    let req = InitiateRequest {
        dedicated_key: None,
        response_allowed: false,
        proposed_quality_of_service: Some(-1),
        proposed_dlms_version: 6,
        proposed_conformance: Conformance(Conformance::GET | Conformance::ACTION),
        client_max_receive_pdu_size: 0xFFFF,
    };
    let bytes = hex("01 00 01 00 01 FF 06 5F 1F 04 00 00 00 11 FF FF");
    assert_eq!(req.encode(), bytes);
    assert_eq!(InitiateRequest::decode(&bytes), Ok(req));
}

#[test]
fn aare_accepted_with_initiate_response() {
    let response = InitiateResponse {
        negotiated_quality_of_service: None,
        negotiated_dlms_version: 6,
        negotiated_conformance: Conformance(0x50_1F),
        server_max_receive_pdu_size: 0x01F4,
        vaa_name: 0x0007,
    };
    known(
        "61 29 A1 09 06 07 60 85 74 05 08 01 01 A2 03 02 01 00 A3 05 A1 03 02 01 00
         BE 10 04 0E 08 00 06 5F 1F 04 00 00 50 1F 01 F4 00 07",
        Apdu::Aare(Aare {
            application_context: ApplicationContext::LogicalNameNoCiphering,
            result: AssociationResult::Accepted,
            diagnostic: SourceDiagnostic::NULL,
            responding_ap_title: None,
            mechanism: None,
            responding_authentication_value: None,
            user_information: Some(response.encode()),
        }),
    );
    assert_eq!(
        hex::encode(response.encode()),
        "0800065f1f040000501f01f40007",
        "InitiateResponse is 08, no QoS, version 6, conformance, max PDU, vaa-name 7"
    );
}

#[test]
fn aare_hls_challenge_and_rejections() {
    // Accepted pending HLS: diagnostic authentication-required, server title and StoC.
    known(
        "61 44 A1 09 06 07 60 85 74 05 08 01 03 A2 03 02 01 00 A3 05 A1 03 02 01 0E
         A4 0A 04 08 4D 4D 4D 00 00 00 00 01 88 02 07 80 89 07 60 85 74 05 08 02 05
         AA 0A 80 08 50 36 77 52 4A 32 31 46 BE 06 04 04 28 01 02 03",
        Apdu::Aare(Aare {
            application_context: ApplicationContext::LogicalNameWithCiphering,
            result: AssociationResult::Accepted,
            diagnostic: SourceDiagnostic::AUTHENTICATION_REQUIRED,
            responding_ap_title: Some(hex("4D4D4D0000000001")),
            mechanism: Some(Mechanism::HlsGmac),
            responding_authentication_value: Some(b"P6wRJ21F".to_vec()),
            user_information: Some(hex("28010203")),
        }),
    );
    // Rejected: wrong application context, xDLMS refused with a ConfirmedServiceError.
    known(
        "61 1F A1 09 06 07 60 85 74 05 08 01 01 A2 03 02 01 01 A3 05 A1 03 02 01 02
         BE 06 04 04 0E 01 06 01",
        Apdu::Aare(Aare {
            application_context: ApplicationContext::LogicalNameNoCiphering,
            result: AssociationResult::RejectedPermanent,
            diagnostic: SourceDiagnostic::APPLICATION_CONTEXT_NOT_SUPPORTED,
            responding_ap_title: None,
            mechanism: None,
            responding_authentication_value: None,
            user_information: Some(hex("0E010601")),
        }),
    );
    // acse-service-provider diagnostic.
    known(
        "61 17 A1 09 06 07 60 85 74 05 08 01 01 A2 03 02 01 02 A3 05 A2 03 02 01 02",
        Apdu::Aare(Aare {
            application_context: ApplicationContext::LogicalNameNoCiphering,
            result: AssociationResult::RejectedTransient,
            diagnostic: SourceDiagnostic::ServiceProvider(2),
            responding_ap_title: None,
            mechanism: None,
            responding_authentication_value: None,
            user_information: None,
        }),
    );
}

#[test]
fn acse_decoders_skip_unknown_fields_and_protocol_version() {
    // protocol-version [0], called-AP-title [2], implementation-information [29] are skipped.
    let bytes = hex(
        "60 2B 80 02 07 80 A1 09 06 07 60 85 74 05 08 01 01 A2 04 06 02 2B 06 9D 02 41 42
         BE 10 04 0E 01 00 00 00 06 5F 1F 04 00 00 7E 1F 04 B0",
    );
    let Ok(Apdu::Aarq(aarq)) = Apdu::decode(&bytes) else {
        panic!("AARQ should decode")
    };
    assert_eq!(
        aarq.application_context,
        ApplicationContext::LogicalNameNoCiphering
    );
    assert_eq!(aarq.mechanism, None);
    let initiate = InitiateRequest::decode(aarq.user_information.as_deref().unwrap()).unwrap();
    assert_eq!(initiate.client_max_receive_pdu_size, 1200);
}

#[test]
fn acse_decoders_reject_malformed_ber() {
    let cases = [
        // Outer length longer than the input.
        "60 40 A1 09 06 07 60 85 74 05 08 01 01",
        // Field length runs past the AARQ.
        "60 05 A1 09 06 07 60",
        // Indefinite length.
        "60 80 A1 09 06 07 60 85 74 05 08 01 01 00 00",
        // No application-context-name.
        "60 04 8A 02 07 80",
        // Application context under the wrong OID.
        "60 0B A1 09 06 07 60 85 74 05 08 09 01",
        // Application context 9 does not exist.
        "60 0B A1 09 06 07 60 85 74 05 08 01 09",
        // user-information that is not an octet string.
        "60 0F A1 09 06 07 60 85 74 05 08 01 01 BE 02 05 00",
        // AARE without result.
        "61 12 A1 09 06 07 60 85 74 05 08 01 01 A3 05 A1 03 02 01 00",
        // AARE with result 7.
        "61 17 A1 09 06 07 60 85 74 05 08 01 01 A2 03 02 01 07 A3 05 A1 03 02 01 00",
        // Trailing byte after the AARQ.
        "60 0B A1 09 06 07 60 85 74 05 08 01 01 00",
    ];
    for case in cases {
        assert!(Apdu::decode(&hex(case)).is_err(), "should reject {case}");
    }
}

#[test]
fn release_request_and_response() {
    known(
        "62 03 80 01 00",
        Apdu::Rlrq(Rlrq {
            reason: Some(0),
            user_information: None,
        }),
    );
    known("62 00", Apdu::Rlrq(Rlrq::default()));
    known(
        "63 03 80 01 00",
        Apdu::Rlre(Rlre {
            reason: Some(0),
            user_information: None,
        }),
    );
    known(
        "63 0B 80 01 00 BE 06 04 04 28 AA BB CC",
        Apdu::Rlre(Rlre {
            reason: Some(0),
            user_information: Some(hex("28AABBCC")),
        }),
    );
}

fn clock_value() -> DateTime {
    DateTime {
        date: Date {
            year: 2026,
            month: 11,
            day: 26,
            weekday: 4,
        },
        time: Time {
            hour: 10,
            minute: 30,
            second: 0,
            hundredths: 0,
        },
        deviation: -330,
        clock_status: ClockStatus::OK,
    }
}

#[test]
fn get_response_with_data_and_with_error() {
    known(
        "C4 01 C1 00 09 0C 07 EA 0B 1A 04 0A 1E 00 00 FE B6 00",
        Apdu::GetResponse(GetResponse::Normal {
            invoke_id: 0xC1,
            result: GetDataResult::Data(Data::OctetString(clock_value().to_bytes().to_vec())),
        }),
    );
    known(
        "C4 01 C1 01 04",
        Apdu::GetResponse(GetResponse::Normal {
            invoke_id: 0xC1,
            result: GetDataResult::Error(DataAccessResult::ObjectUndefined),
        }),
    );
    // An undefined result code is read as other-reason rather than failing the whole response.
    let Ok(Apdu::GetResponse(GetResponse::Normal { result, .. })) =
        Apdu::decode(&hex("C4 01 C1 01 63"))
    else {
        panic!("should decode")
    };
    assert_eq!(result, GetDataResult::Error(DataAccessResult::OtherReason));
}

#[test]
fn get_block_transfer_exchange() {
    // The whole result: an array of 3 structures {date-time, kWh}, A-XDR encoded, then split.
    let rows: Vec<Data> = (0..3u32)
        .map(|i| {
            Data::Structure(vec![
                Data::OctetString(clock_value().to_bytes().to_vec()),
                Data::DoubleLongUnsigned(1000 + i),
            ])
        })
        .collect();
    let whole = Data::Array(rows).to_bytes();
    let (first, second) = whole.split_at(20);

    known(
        "C0 01 C1 00 07 01 00 63 01 00 FF 02 00",
        Apdu::GetRequest(GetRequest::Normal {
            invoke_id: 0xC1,
            attribute: AttributeDescriptor::new(7, BLOCK_LOAD, 2),
            access: None,
        }),
    );
    let block1 = Apdu::GetResponse(GetResponse::WithDataBlock {
        invoke_id: 0xC1,
        block: DataBlockG {
            last_block: false,
            block_number: 1,
            result: Ok(first.to_vec()),
        },
    });
    let mut expected = hex("C4 02 C1 00 00 00 00 01 00 14");
    expected.extend_from_slice(first);
    assert_eq!(block1.encode(), expected);
    assert_eq!(Apdu::decode(&expected), Ok(block1));

    known(
        "C0 02 C1 00 00 00 01",
        Apdu::GetRequest(GetRequest::Next {
            invoke_id: 0xC1,
            block_number: 1,
        }),
    );
    let mut last = hex("C4 02 C1 01 00 00 00 02 00");
    last.push(second.len() as u8);
    last.extend_from_slice(second);
    let Ok(Apdu::GetResponse(GetResponse::WithDataBlock { block, .. })) = Apdu::decode(&last)
    else {
        panic!("last block should decode")
    };
    assert!(block.last_block);
    assert_eq!(block.block_number, 2);

    // Reassembled, the raw data is the A-XDR result again.
    let mut joined = first.to_vec();
    joined.extend_from_slice(block.result.as_ref().unwrap());
    assert_eq!(joined, whole);

    // The server aborting a long GET.
    known(
        "C4 02 C1 01 00 00 00 02 01 0F",
        Apdu::GetResponse(GetResponse::WithDataBlock {
            invoke_id: 0xC1,
            block: DataBlockG {
                last_block: true,
                block_number: 2,
                result: Err(DataAccessResult::LongGetAborted),
            },
        }),
    );
}

#[test]
fn get_with_list() {
    known(
        "C0 03 C1 02 00 08 00 00 01 00 00 FF 02 00 00 03 01 00 01 08 00 FF 02 00",
        Apdu::GetRequest(GetRequest::WithList {
            invoke_id: 0xC1,
            items: vec![
                (AttributeDescriptor::new(8, CLOCK, 2), None),
                (
                    AttributeDescriptor::new(3, ObisCode::new(1, 0, 1, 8, 0, 255), 2),
                    None,
                ),
            ],
        }),
    );
    known(
        "C4 03 C1 02 00 06 00 00 30 39 01 04",
        Apdu::GetResponse(GetResponse::WithList {
            invoke_id: 0xC1,
            results: vec![
                GetDataResult::Data(Data::DoubleLongUnsigned(12345)),
                GetDataResult::Error(DataAccessResult::ObjectUndefined),
            ],
        }),
    );
}

#[test]
fn set_normal_and_block_transfer() {
    let push_period = AttributeDescriptor::new(1, ObisCode::new(1, 0, 0, 8, 4, 255), 2);
    known(
        "C1 01 C1 00 01 01 00 00 08 04 FF 02 00 06 00 00 03 84",
        Apdu::SetRequest(SetRequest::Normal {
            invoke_id: 0xC1,
            attribute: push_period,
            access: None,
            value: Data::DoubleLongUnsigned(900),
        }),
    );
    known(
        "C5 01 C1 00",
        Apdu::SetResponse(SetResponse::Normal {
            invoke_id: 0xC1,
            result: DataAccessResult::Success,
        }),
    );
    known(
        "C1 02 C1 00 01 01 00 00 08 04 FF 02 00 00 00 00 00 01 03 06 00 00",
        Apdu::SetRequest(SetRequest::WithFirstDataBlock {
            invoke_id: 0xC1,
            attribute: push_period,
            access: None,
            block: DataBlockSa {
                last_block: false,
                block_number: 1,
                raw_data: hex("060000"),
            },
        }),
    );
    known(
        "C5 02 C1 00 00 00 01",
        Apdu::SetResponse(SetResponse::DataBlock {
            invoke_id: 0xC1,
            block_number: 1,
        }),
    );
    known(
        "C1 03 C1 01 00 00 00 02 02 03 84",
        Apdu::SetRequest(SetRequest::WithDataBlock {
            invoke_id: 0xC1,
            block: DataBlockSa {
                last_block: true,
                block_number: 2,
                raw_data: hex("0384"),
            },
        }),
    );
    known(
        "C5 03 C1 00 00 00 00 02",
        Apdu::SetResponse(SetResponse::LastDataBlock {
            invoke_id: 0xC1,
            result: DataAccessResult::Success,
            block_number: 2,
        }),
    );
}

#[test]
fn action_request_and_response() {
    let disconnect = MethodDescriptor::new(70, ObisCode::new(0, 0, 96, 3, 10, 255), 1);
    known(
        "C3 01 C1 00 46 00 00 60 03 0A FF 01 01 0F 00",
        Apdu::ActionRequest(ActionRequest::Normal {
            invoke_id: 0xC1,
            method: disconnect,
            parameters: Some(Data::Integer(0)),
        }),
    );
    known(
        "C3 01 C1 00 46 00 00 60 03 0A FF 01 00",
        Apdu::ActionRequest(ActionRequest::Normal {
            invoke_id: 0xC1,
            method: disconnect,
            parameters: None,
        }),
    );
    known(
        "C7 01 C1 00 00",
        Apdu::ActionResponse(ActionResponse::Normal {
            invoke_id: 0xC1,
            result: ActionResult::Success,
            return_parameters: None,
        }),
    );
    // HLS pass 4: f(CtoS) returned as data (Green Book HLS-GMAC example values).
    known(
        "C7 01 C1 00 01 00 09 11 10 01 23 45 67 FE 14 66 AF B3 DB CD 4F 93 89 E2 B7",
        Apdu::ActionResponse(ActionResponse::Normal {
            invoke_id: 0xC1,
            result: ActionResult::Success,
            return_parameters: Some(GetDataResult::Data(Data::OctetString(hex(
                "10 01234567 FE1466AFB3DBCD4F9389E2B7",
            )))),
        }),
    );
    known(
        "C7 01 C1 03 00",
        Apdu::ActionResponse(ActionResponse::Normal {
            invoke_id: 0xC1,
            result: ActionResult::ReadWriteDenied,
            return_parameters: None,
        }),
    );
}

#[test]
fn data_notification_with_and_without_date_time() {
    known(
        "0F 00 00 00 01 00 02 02 09 06 00 00 19 09 00 FF 06 00 00 03 E8",
        Apdu::DataNotification(DataNotification {
            long_invoke_id_and_priority: 1,
            date_time: None,
            body: Data::Structure(vec![
                Data::OctetString(vec![0, 0, 25, 9, 0, 255]),
                Data::DoubleLongUnsigned(1000),
            ]),
        }),
    );
    known(
        "0F C0 00 00 2A 0C 07 EA 0B 1A 04 0A 1E 00 00 FE B6 00 11 05",
        Apdu::DataNotification(DataNotification {
            long_invoke_id_and_priority: 0xC000_002A,
            date_time: Some(clock_value().to_bytes().to_vec()),
            body: Data::Unsigned(5),
        }),
    );
    // Some meters send the date-time as a tagged octet-string; it is read the same.
    let tagged = hex("0F C0 00 00 2A 09 0C 07 EA 0B 1A 04 0A 1E 00 00 FE B6 00 11 05");
    let Ok(Apdu::DataNotification(n)) = Apdu::decode(&tagged) else {
        panic!("should decode")
    };
    assert_eq!(n.date_time, Some(clock_value().to_bytes().to_vec()));
}

#[test]
fn event_notification() {
    known(
        "C2 01 0C 07 EA 0B 1A 04 0A 1E 00 00 FE B6 00 00 01 00 00 60 0B 04 FF 02 12 00 C9",
        Apdu::EventNotification(EventNotification {
            time: Some(clock_value().to_bytes().to_vec()),
            attribute: AttributeDescriptor::new(1, ObisCode::new(0, 0, 96, 11, 4, 255), 2),
            value: Data::LongUnsigned(201),
        }),
    );
    known(
        "C2 00 00 01 00 00 60 0B 04 FF 02 12 00 CA",
        Apdu::EventNotification(EventNotification {
            time: None,
            attribute: AttributeDescriptor::new(1, ObisCode::new(0, 0, 96, 11, 4, 255), 2),
            value: Data::LongUnsigned(202),
        }),
    );
}

#[test]
fn exception_response_and_confirmed_service_error() {
    known(
        "D8 01 02",
        Apdu::ExceptionResponse(ExceptionResponse {
            state_error: 1,
            service_error: 2,
            invocation_counter: None,
        }),
    );
    known(
        "D8 01 06 00 00 01 00",
        Apdu::ExceptionResponse(ExceptionResponse {
            state_error: 1,
            service_error: 6,
            invocation_counter: Some(256),
        }),
    );
    // Older peers omit the counter.
    assert_eq!(
        Apdu::decode(&hex("D8 01 06")),
        Ok(Apdu::ExceptionResponse(ExceptionResponse {
            state_error: 1,
            service_error: 6,
            invocation_counter: None
        }))
    );
    known(
        "0E 01 06 01",
        Apdu::ConfirmedServiceError(ConfirmedServiceError {
            service: ConfirmedServiceError::INITIATE_ERROR,
            error_class: ConfirmedServiceError::CLASS_INITIATE,
            error_value: ConfirmedServiceError::DLMS_VERSION_TOO_LOW,
        }),
    );
}

#[test]
fn selective_access_by_entry_on_the_wire() {
    known(
        "C0 01 C1 00 07 01 00 63 01 00 FF 02 01 02 02 04 06 00 00 00 01 06 00 00 00 60 12 00 01 12
         00 00",
        Apdu::GetRequest(GetRequest::Normal {
            invoke_id: 0xC1,
            attribute: AttributeDescriptor::new(7, BLOCK_LOAD, 2),
            access: Some(SelectiveAccess::by_entry(1, 96, 1, 0)),
        }),
    );
}

#[test]
fn unknown_tags_and_truncations_are_typed_errors() {
    assert!(matches!(
        Apdu::decode(&[0x99]),
        Err(DecodeError::UnknownTag { tag: 0x99, .. })
    ));
    assert!(matches!(
        Apdu::decode(&[]),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
    // GET with choice 7.
    assert!(matches!(
        Apdu::decode(&hex("C0 07 C1")),
        Err(DecodeError::UnknownTag {
            what: "get-request choice",
            tag: 7,
            ..
        })
    ));
    // Every strict prefix of a valid GET is an error, never a panic.
    let full = hex("C0 01 C1 00 08 00 00 01 00 00 FF 02 00");
    for n in 0..full.len() {
        assert!(Apdu::decode(&full[..n]).is_err(), "prefix of {n} bytes");
    }
    // Trailing bytes.
    assert!(matches!(
        Apdu::decode(&hex("C0 01 C1 00 08 00 00 01 00 00 FF 02 00 00")),
        Err(DecodeError::TrailingBytes { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Gurux reference vectors (tests/vectors/*.txt)
// ---------------------------------------------------------------------------------------------

struct Vector {
    name: String,
    fields: Vec<(String, String)>,
}

impl Vector {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.get(key).map(hex)
    }
}

fn vectors() -> Vec<Vector> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<Vector> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("vector file is UTF-8");
            let fields = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            Vector { name, fields }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Tags of ciphered APDUs (glo-, ded-, general-glo-ciphering): not ours to decode.
fn is_ciphered(tag: u8) -> bool {
    matches!(tag, 0x21 | 0x28 | 0x41 | 0x48 | 0xC8..=0xCF | 0xD0..=0xD7 | 0xDB | 0xDC)
}

#[test]
fn every_plaintext_gurux_vector_decodes_and_re_encodes_byte_exact() {
    let mut checked = 0;
    for v in vectors() {
        for key in ["apdu", "plaintext"] {
            let Some(bytes) = v.bytes(key) else { continue };
            let Some(&first) = bytes.first() else {
                continue;
            };
            if is_ciphered(first) {
                continue;
            }
            let apdu = Apdu::decode(&bytes)
                .unwrap_or_else(|e| panic!("{} ({key}) does not decode: {e}", v.name));
            assert_eq!(
                hex::encode(apdu.encode()),
                hex::encode(&bytes),
                "{} ({key}) re-encodes differently",
                v.name
            );
            checked += 1;
        }
    }
    // The vector set is maintained alongside this test; make sure it was actually read.
    assert!(checked >= 15, "only {checked} vectors checked");
}

fn vector(name: &str) -> Vector {
    vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

fn decode_vector(name: &str, key: &str) -> Apdu {
    let v = vector(name);
    Apdu::decode(&v.bytes(key).expect("vector has the bytes")).expect("vector decodes")
}

#[test]
fn gurux_aarq_fields() {
    let Apdu::Aarq(lls) = decode_vector("aarq-lls", "apdu") else {
        panic!("not an AARQ")
    };
    assert_eq!(
        lls.application_context,
        ApplicationContext::LogicalNameNoCiphering
    );
    assert_eq!(lls.mechanism, Some(Mechanism::Lls));
    assert_eq!(
        lls.calling_authentication_value.as_deref(),
        Some(&b"ABCDEFGH"[..])
    );
    let init = InitiateRequest::decode(lls.user_information.as_deref().unwrap()).unwrap();
    assert_eq!(init.proposed_dlms_version, 6);
    assert!(init.response_allowed);
    assert_eq!(init.dedicated_key, None);
    assert_eq!(init.client_max_receive_pdu_size, 0xFFFF);
    assert!(init.proposed_conformance.has(Conformance::SELECTIVE_ACCESS));
    assert!(
        init.proposed_conformance
            .has(Conformance::BLOCK_TRANSFER_WITH_GET_OR_READ)
    );

    let Apdu::Aarq(public) = decode_vector("aarq-public", "apdu") else {
        panic!("not an AARQ")
    };
    assert_eq!(
        (public.mechanism, public.calling_authentication_value),
        (None, None)
    );

    let gmac_vector = vector("aarq-hls-gmac");
    let Apdu::Aarq(gmac) = decode_vector("aarq-hls-gmac", "apdu") else {
        panic!("not an AARQ")
    };
    assert_eq!(
        gmac.application_context,
        ApplicationContext::LogicalNameWithCiphering
    );
    assert_eq!(gmac.mechanism, Some(Mechanism::HlsGmac));
    assert_eq!(gmac.calling_ap_title, gmac_vector.bytes("system_title"));
    assert_eq!(
        gmac.calling_authentication_value,
        gmac_vector.bytes("ctos_challenge")
    );
    assert_eq!(
        gmac.user_information.as_ref().and_then(|u| u.first()),
        Some(&0x21)
    );

    let Apdu::Aarq(hls) = decode_vector("aarq-hls", "apdu") else {
        panic!("not an AARQ")
    };
    assert_eq!(hls.mechanism, Some(Mechanism::Hls));
}

#[test]
fn gurux_get_and_action_fields() {
    let Apdu::GetRequest(GetRequest::Normal {
        attribute,
        access: Some(access),
        ..
    }) = decode_vector("get-block-load-by-range", "apdu")
    else {
        panic!("not a GET with selective access")
    };
    assert_eq!(attribute, AttributeDescriptor::new(7, BLOCK_LOAD, 2));
    let range = access.as_range().expect("a range descriptor");
    assert_eq!(range.restricting_object, CaptureColumn::CLOCK);
    assert!(range.selected_values.is_empty());
    assert_eq!((range.from.time.hour, range.to.time.hour), (0, 2));
    assert_eq!(range.from.deviation, -330);
    // Our builder, given the same date-times, produces Gurux's bytes.
    let ours = Apdu::GetRequest(GetRequest::Normal {
        invoke_id: 0xC1,
        attribute,
        access: Some(SelectiveAccess::by_range(&range.from, &range.to, &[])),
    });
    assert_eq!(
        ours.encode(),
        vector("get-block-load-by-range").bytes("apdu").unwrap()
    );

    let Apdu::ActionRequest(ActionRequest::Normal {
        method, parameters, ..
    }) = decode_vector("action-hls-pass3", "apdu")
    else {
        panic!("not an ACTION")
    };
    assert_eq!(
        method,
        MethodDescriptor::new(15, ObisCode::new(0, 0, 40, 0, 0, 255), 1)
    );
    assert_eq!(
        parameters,
        Some(Data::OctetString(
            vector("action-hls-pass3").bytes("expected_f_stoc").unwrap()
        ))
    );

    let Apdu::Rlrq(rlrq) = decode_vector("rlrq-protected", "apdu") else {
        panic!("not RLRQ")
    };
    assert_eq!(rlrq.reason, Some(0));
    assert_eq!(
        rlrq.user_information.as_ref().and_then(|u| u.first()),
        Some(&0x21)
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn octets(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

/// Values that survive A-XDR exactly (no floats: NaN is not equal to itself).
fn data() -> impl Strategy<Value = Data> {
    let leaf = prop_oneof![
        Just(Data::Null),
        any::<bool>().prop_map(Data::Boolean),
        any::<i32>().prop_map(Data::DoubleLong),
        any::<u32>().prop_map(Data::DoubleLongUnsigned),
        octets(20).prop_map(Data::OctetString),
        any::<i8>().prop_map(Data::Integer),
        any::<i16>().prop_map(Data::Long),
        any::<u8>().prop_map(Data::Unsigned),
        any::<u16>().prop_map(Data::LongUnsigned),
        any::<i64>().prop_map(Data::Long64),
        any::<u64>().prop_map(Data::Long64Unsigned),
        any::<u8>().prop_map(Data::Enum),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Data::Structure),
            vec(inner, 0..4).prop_map(Data::Array),
        ]
    })
}

fn obis() -> impl Strategy<Value = ObisCode> {
    any::<[u8; 6]>().prop_map(ObisCode)
}

fn attribute() -> impl Strategy<Value = AttributeDescriptor> {
    (any::<u16>(), obis(), any::<i8>()).prop_map(|(c, o, a)| AttributeDescriptor::new(c, o, a))
}

fn method() -> impl Strategy<Value = MethodDescriptor> {
    (any::<u16>(), obis(), any::<i8>()).prop_map(|(c, o, m)| MethodDescriptor::new(c, o, m))
}

fn access() -> impl Strategy<Value = Option<SelectiveAccess>> {
    proptest::option::of(
        (any::<u8>(), data()).prop_map(|(selector, parameters)| SelectiveAccess {
            selector,
            parameters,
        }),
    )
}

const ACCESS_RESULTS: [DataAccessResult; 16] = [
    DataAccessResult::Success,
    DataAccessResult::HardwareFault,
    DataAccessResult::TemporaryFailure,
    DataAccessResult::ReadWriteDenied,
    DataAccessResult::ObjectUndefined,
    DataAccessResult::ObjectClassInconsistent,
    DataAccessResult::ObjectUnavailable,
    DataAccessResult::TypeUnmatched,
    DataAccessResult::ScopeOfAccessViolated,
    DataAccessResult::DataBlockUnavailable,
    DataAccessResult::LongGetAborted,
    DataAccessResult::NoLongGetInProgress,
    DataAccessResult::LongSetAborted,
    DataAccessResult::NoLongSetInProgress,
    DataAccessResult::DataBlockNumberInvalid,
    DataAccessResult::OtherReason,
];

const ACTION_RESULTS: [ActionResult; 13] = [
    ActionResult::Success,
    ActionResult::HardwareFault,
    ActionResult::TemporaryFailure,
    ActionResult::ReadWriteDenied,
    ActionResult::ObjectUndefined,
    ActionResult::ObjectClassInconsistent,
    ActionResult::ObjectUnavailable,
    ActionResult::TypeUnmatched,
    ActionResult::ScopeOfAccessViolated,
    ActionResult::DataBlockUnavailable,
    ActionResult::LongActionAborted,
    ActionResult::NoLongActionInProgress,
    ActionResult::OtherReason,
];

fn access_result() -> impl Strategy<Value = DataAccessResult> {
    proptest::sample::select(&ACCESS_RESULTS[..])
}

fn get_data_result() -> impl Strategy<Value = GetDataResult> {
    prop_oneof![
        data().prop_map(GetDataResult::Data),
        access_result().prop_map(GetDataResult::Error)
    ]
}

fn application_context() -> impl Strategy<Value = ApplicationContext> {
    (1u8..=4).prop_map(|id| ApplicationContext::from_id(id).unwrap())
}

fn mechanism() -> impl Strategy<Value = Option<Mechanism>> {
    proptest::option::of((0u8..=7).prop_map(|id| Mechanism::from_id(id).unwrap()))
}

fn conformance() -> impl Strategy<Value = Conformance> {
    (0u32..=0x00FF_FFFF).prop_map(Conformance)
}

fn diagnostic() -> impl Strategy<Value = SourceDiagnostic> {
    prop_oneof![
        any::<u8>().prop_map(SourceDiagnostic::ServiceUser),
        any::<u8>().prop_map(SourceDiagnostic::ServiceProvider),
    ]
}

fn association_result() -> impl Strategy<Value = AssociationResult> {
    proptest::sample::select(vec![
        AssociationResult::Accepted,
        AssociationResult::RejectedPermanent,
        AssociationResult::RejectedTransient,
    ])
}

/// Byte strings, sometimes long enough for multi-byte BER / A-XDR lengths.
fn blob() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => octets(24), 1 => vec(any::<u8>(), 126..300)]
}

fn acse() -> impl Strategy<Value = Apdu> {
    let aarq = (
        application_context(),
        proptest::option::of(octets(9)),
        mechanism(),
        proptest::option::of(blob()),
        proptest::option::of(blob()),
    )
        .prop_map(|(application_context, title, mechanism, auth, info)| {
            Apdu::Aarq(Aarq {
                application_context,
                calling_ap_title: title,
                mechanism,
                calling_authentication_value: auth,
                user_information: info,
            })
        });
    let aare = (
        (application_context(), association_result(), diagnostic()),
        proptest::option::of(octets(9)),
        mechanism(),
        proptest::option::of(blob()),
        proptest::option::of(blob()),
    )
        .prop_map(
            |((application_context, result, diagnostic), title, mechanism, auth, info)| {
                Apdu::Aare(Aare {
                    application_context,
                    result,
                    diagnostic,
                    responding_ap_title: title,
                    mechanism,
                    responding_authentication_value: auth,
                    user_information: info,
                })
            },
        );
    let release = (
        any::<bool>(),
        proptest::option::of(any::<u8>()),
        proptest::option::of(blob()),
    )
        .prop_map(|(request, reason, user_information)| {
            if request {
                Apdu::Rlrq(Rlrq {
                    reason,
                    user_information,
                })
            } else {
                Apdu::Rlre(Rlre {
                    reason,
                    user_information,
                })
            }
        });
    prop_oneof![aarq, aare, release]
}

fn initiate() -> impl Strategy<Value = Apdu> {
    let request = (
        proptest::option::of(octets(33)),
        any::<bool>(),
        proptest::option::of(any::<i8>()),
        any::<u8>(),
        conformance(),
        any::<u16>(),
    )
        .prop_map(|(key, allowed, qos, version, conformance, size)| {
            Apdu::InitiateRequest(InitiateRequest {
                dedicated_key: key,
                response_allowed: allowed,
                proposed_quality_of_service: qos,
                proposed_dlms_version: version,
                proposed_conformance: conformance,
                client_max_receive_pdu_size: size,
            })
        });
    let response = (
        proptest::option::of(any::<i8>()),
        any::<u8>(),
        conformance(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(qos, version, conformance, size, vaa)| {
            Apdu::InitiateResponse(InitiateResponse {
                negotiated_quality_of_service: qos,
                negotiated_dlms_version: version,
                negotiated_conformance: conformance,
                server_max_receive_pdu_size: size,
                vaa_name: vaa,
            })
        });
    prop_oneof![request, response]
}

fn get() -> impl Strategy<Value = Apdu> {
    let id = any::<u8>();
    prop_oneof![
        (id, attribute(), access()).prop_map(|(invoke_id, attribute, access)| {
            Apdu::GetRequest(GetRequest::Normal {
                invoke_id,
                attribute,
                access,
            })
        }),
        (id, any::<u32>()).prop_map(|(invoke_id, block_number)| {
            Apdu::GetRequest(GetRequest::Next {
                invoke_id,
                block_number,
            })
        }),
        (id, vec((attribute(), access()), 0..4)).prop_map(|(invoke_id, items)| {
            Apdu::GetRequest(GetRequest::WithList { invoke_id, items })
        }),
        (id, get_data_result()).prop_map(|(invoke_id, result)| {
            Apdu::GetResponse(GetResponse::Normal { invoke_id, result })
        }),
        (
            id,
            any::<bool>(),
            any::<u32>(),
            prop_oneof![blob().prop_map(Ok), access_result().prop_map(Err)]
        )
            .prop_map(|(invoke_id, last_block, block_number, result)| {
                Apdu::GetResponse(GetResponse::WithDataBlock {
                    invoke_id,
                    block: DataBlockG {
                        last_block,
                        block_number,
                        result,
                    },
                })
            }),
        (id, vec(get_data_result(), 0..4)).prop_map(|(invoke_id, results)| {
            Apdu::GetResponse(GetResponse::WithList { invoke_id, results })
        }),
    ]
}

fn data_block_sa() -> impl Strategy<Value = DataBlockSa> {
    (any::<bool>(), any::<u32>(), blob()).prop_map(|(last_block, block_number, raw_data)| {
        DataBlockSa {
            last_block,
            block_number,
            raw_data,
        }
    })
}

fn set() -> impl Strategy<Value = Apdu> {
    let id = any::<u8>();
    prop_oneof![
        (id, attribute(), access(), data()).prop_map(|(invoke_id, attribute, access, value)| {
            Apdu::SetRequest(SetRequest::Normal {
                invoke_id,
                attribute,
                access,
                value,
            })
        }),
        (id, attribute(), access(), data_block_sa()).prop_map(
            |(invoke_id, attribute, access, block)| {
                Apdu::SetRequest(SetRequest::WithFirstDataBlock {
                    invoke_id,
                    attribute,
                    access,
                    block,
                })
            }
        ),
        (id, data_block_sa()).prop_map(|(invoke_id, block)| {
            Apdu::SetRequest(SetRequest::WithDataBlock { invoke_id, block })
        }),
        (id, access_result()).prop_map(|(invoke_id, result)| {
            Apdu::SetResponse(SetResponse::Normal { invoke_id, result })
        }),
        (id, any::<u32>()).prop_map(|(invoke_id, block_number)| {
            Apdu::SetResponse(SetResponse::DataBlock {
                invoke_id,
                block_number,
            })
        }),
        (id, access_result(), any::<u32>()).prop_map(|(invoke_id, result, block_number)| {
            Apdu::SetResponse(SetResponse::LastDataBlock {
                invoke_id,
                result,
                block_number,
            })
        }),
    ]
}

fn action() -> impl Strategy<Value = Apdu> {
    prop_oneof![
        (any::<u8>(), method(), proptest::option::of(data())).prop_map(
            |(invoke_id, method, parameters)| {
                Apdu::ActionRequest(ActionRequest::Normal {
                    invoke_id,
                    method,
                    parameters,
                })
            }
        ),
        (
            any::<u8>(),
            proptest::sample::select(&ACTION_RESULTS[..]),
            proptest::option::of(get_data_result())
        )
            .prop_map(|(invoke_id, result, return_parameters)| {
                Apdu::ActionResponse(ActionResponse::Normal {
                    invoke_id,
                    result,
                    return_parameters,
                })
            }),
    ]
}

fn notifications_and_errors() -> impl Strategy<Value = Apdu> {
    let date_time = proptest::option::of(any::<[u8; 12]>().prop_map(|b| b.to_vec()));
    prop_oneof![
        (any::<u32>(), date_time.clone(), data()).prop_map(|(id, date_time, body)| {
            Apdu::DataNotification(DataNotification {
                long_invoke_id_and_priority: id,
                date_time,
                body,
            })
        }),
        (date_time, attribute(), data()).prop_map(|(time, attribute, value)| {
            Apdu::EventNotification(EventNotification {
                time,
                attribute,
                value,
            })
        }),
        (any::<u8>(), 0u8..=5).prop_map(|(state_error, service_error)| {
            Apdu::ExceptionResponse(ExceptionResponse {
                state_error,
                service_error,
                invocation_counter: None,
            })
        }),
        (any::<u8>(), proptest::option::of(any::<u32>())).prop_map(|(state_error, counter)| {
            Apdu::ExceptionResponse(ExceptionResponse {
                state_error,
                service_error: 6,
                invocation_counter: counter,
            })
        }),
        any::<[u8; 3]>().prop_map(|[service, error_class, error_value]| {
            Apdu::ConfirmedServiceError(ConfirmedServiceError {
                service,
                error_class,
                error_value,
            })
        }),
    ]
}

fn any_apdu() -> impl Strategy<Value = Apdu> {
    prop_oneof![
        acse(),
        initiate(),
        get(),
        set(),
        action(),
        notifications_and_errors()
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_apdu_round_trips(apdu in any_apdu()) {
        let bytes = apdu.encode();
        prop_assert_eq!(Apdu::decode(&bytes), Ok(apdu));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in vec(any::<u8>(), 0..200)) {
        let _ = Apdu::decode(&bytes);
    }

    #[test]
    fn decoding_arbitrary_bytes_after_each_tag_never_panics(
        tag in proptest::sample::select(vec![
            0x60u8, 0x61, 0x62, 0x63, 0x01, 0x08, 0x0E, 0x0F, 0xC0, 0xC1, 0xC2, 0xC3, 0xC4,
            0xC5, 0xC7, 0xD8,
        ]),
        rest in vec(any::<u8>(), 0..120),
    ) {
        let mut bytes = vec![tag];
        bytes.extend(rest);
        let _ = Apdu::decode(&bytes);
    }

    #[test]
    fn decoding_damaged_apdus_never_panics(
        apdu in any_apdu(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = apdu.encode();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = Apdu::decode(&bytes);
        let _ = Apdu::decode(&bytes[..cut.index(bytes.len() + 1)]);
    }

    #[test]
    fn selective_access_builders_round_trip(
        from in any::<[u8; 12]>(),
        to in any::<[u8; 12]>(),
        columns in vec((any::<u16>(), obis(), any::<i8>(), any::<u16>()), 0..5),
        entries in any::<(u32, u32, u16, u16)>(),
    ) {
        let from = DateTime::from_bytes(&from).unwrap();
        let to = DateTime::from_bytes(&to).unwrap();
        let columns: Vec<CaptureColumn> = columns
            .into_iter()
            .map(|(class_id, logical_name, attribute_index, data_index)| CaptureColumn {
                class_id,
                logical_name,
                attribute_index,
                data_index,
            })
            .collect();
        let range = SelectiveAccess::by_range(&from, &to, &columns).as_range().unwrap();
        prop_assert_eq!(range.from, from);
        prop_assert_eq!(range.to, to);
        prop_assert_eq!(range.selected_values, columns);
        let (a, b, c, d) = entries;
        let entry = SelectiveAccess::by_entry(a, b, c, d).as_entry().unwrap();
        prop_assert_eq!(
            (entry.from_entry, entry.to_entry, entry.from_selected_value, entry.to_selected_value),
            (a, b, c, d)
        );
    }
}

//! Framing: the IEC 62056-47 TCP wrapper and IEC 62056-46 HDLC, through the public API. Known
//! frames from public references, round trips, streams split and coalesced, and a client and
//! server link talking in memory (segmentation, lost frames, rejects).

use dlms::DecodeError;
use dlms::hdlc::{
    ClientConfig, Control, DisconnectReason, FrameError, FrameExtractor, HdlcAddress, HdlcClient,
    HdlcEvent, HdlcFrame, HdlcServer, LinkParameters, LinkState, ServerConfig, decode_frame,
    encode_frame, fcs16,
};
use dlms::wrapper::{self, WrapperDecoder, WrapperError, WrapperFrame};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("valid hex")
}

// ---------------------------------------------------------------- HDLC frame codec

/// Decodes a published frame, and checks it encodes back to exactly the same bytes.
fn known(bytes: &str) -> HdlcFrame {
    let bytes = hex(bytes);
    let frame = decode_frame(&bytes).expect("a published frame decodes");
    assert_eq!(
        encode_frame(&frame).unwrap(),
        bytes,
        "{frame:?} re-encodes differently"
    );
    frame
}

#[test]
fn snrm_of_the_public_client_to_server_1() {
    let frame = known("7E A0 07 03 21 93 0F 01 7E");
    assert_eq!(
        frame,
        HdlcFrame {
            segmented: false,
            destination: HdlcAddress::One(1),
            source: HdlcAddress::client(16),
            control: Control::Snrm { pf: true },
            info: vec![],
        }
    );
    // The FCS is CRC-16/X.25 over format, addresses and control, least significant byte first.
    assert_eq!(fcs16(&[0xA0, 0x07, 0x03, 0x21, 0x93]), 0x010F);
}

#[test]
fn snrm_and_ua_with_green_book_parameters() {
    let snrm = known(
        "7E A0 20 03 03 93 FE C9 81 80 14 05 02 00 80 06 02 00 80 07 04 00 00 00 01 08 04 00 00 \
         00 01 CE 6A 7E",
    );
    assert_eq!(snrm.control, Control::Snrm { pf: true });
    assert_eq!(
        LinkParameters::decode(&snrm.info),
        Ok(LinkParameters::default())
    );

    let ua = known(
        "7E A0 1E 03 03 73 40 CC 81 80 12 05 01 80 06 01 80 07 04 00 00 00 01 08 04 00 00 00 01 \
         53 3B 7E",
    );
    assert_eq!(ua.control, Control::Ua { pf: true });
    assert_eq!(ua.info, LinkParameters::default().encode());
}

#[test]
fn four_byte_server_address() {
    let snrm = known("7E A0 0A 48 68 FE FF 75 93 D8 F8 7E");
    assert_eq!(
        snrm.destination,
        HdlcAddress::Four {
            upper: 0x1234,
            lower: 0x3FFF
        }
    );
    assert_eq!(snrm.source, HdlcAddress::client(0x3A));
    let ua = known(
        "7E A0 21 75 48 68 FE FF 73 7C 16 81 80 12 05 01 80 06 01 80 07 04 00 00 00 01 08 04 00 \
         00 00 01 53 3B 7E",
    );
    assert_eq!(ua.source, HdlcAddress::server(0x1234, 0x3FFF));
}

#[test]
fn aarq_and_aare_in_i_frames() {
    let aarq = known(
        "7E A0 2B 03 21 10 FB AF E6 E6 00 60 1D A1 09 06 07 60 85 74 05 08 01 01 BE 10 04 0E 01 \
         00 00 00 06 5F 1F 04 00 00 18 1D FF FF 5F AF 7E",
    );
    assert_eq!(
        aarq.control,
        Control::I {
            send_seq: 0,
            recv_seq: 0,
            pf: true
        }
    );
    assert!(aarq.info.starts_with(&[0xE6, 0xE6, 0x00, 0x60]));

    // From a server at logical device 1, physical device 0x20 (two-byte address).
    let aare = known(
        "7E A0 38 21 02 41 30 D1 B1 E6 E7 00 61 29 A1 09 06 07 60 85 74 05 08 01 01 A2 03 02 01 \
         00 A3 05 A1 03 02 01 00 BE 10 04 0E 08 00 06 5F 1F 04 00 00 10 10 04 00 00 07 36 E3 7E",
    );
    assert_eq!(aare.source, HdlcAddress::server(1, 0x20));
    assert_eq!(aare.destination, HdlcAddress::client(16));
    assert_eq!(
        aare.control,
        Control::I {
            send_seq: 0,
            recv_seq: 1,
            pf: true
        }
    );
}

#[test]
fn disc_and_dm() {
    let disc = known("7E A0 07 03 41 53 56 A2 7E");
    assert_eq!(disc.control, Control::Disc { pf: true });
    assert_eq!(disc.source, HdlcAddress::client(32));
    let dm = known("7E A0 08 21 00 41 1F 4D 09 7E");
    assert_eq!(dm.control, Control::Dm { pf: true });
}

fn what(err: DecodeError) -> &'static str {
    match err {
        DecodeError::Invalid { what, .. }
        | DecodeError::UnknownTag { what, .. }
        | DecodeError::UnexpectedEnd { what, .. }
        | DecodeError::TrailingBytes { what, .. }
        | DecodeError::TooDeep { what, .. } => what,
    }
}

#[test]
fn bad_fcs_and_bad_hcs_are_typed_errors() {
    let good = hex(
        "7E A0 2B 03 21 10 FB AF E6 E6 00 60 1D A1 09 06 07 60 85 74 05 08 01 01 BE 10 04 0E 01 \
         00 00 00 06 5F 1F 04 00 00 18 1D FF FF 5F AF 7E",
    );
    // A flipped bit in the information field: the FCS catches it.
    let mut bad_info = good.clone();
    bad_info[20] ^= 0x01;
    assert_eq!(decode_frame(&bad_info).map_err(what), Err("HDLC FCS"));

    // A corrupted HCS (with the FCS made right again): the HCS check catches it.
    let mut bad_hcs = good.clone();
    bad_hcs[6] ^= 0xFF;
    let end = bad_hcs.len() - 3;
    let fcs = fcs16(&bad_hcs[1..end]).to_le_bytes();
    bad_hcs[end..end + 2].copy_from_slice(&fcs);
    assert_eq!(decode_frame(&bad_hcs).map_err(what), Err("HDLC HCS"));

    // A frame without information field has no HCS; its FCS still counts.
    let mut snrm = hex("7E A0 07 03 21 93 0F 01 7E");
    snrm[5] = 0x94;
    assert_eq!(decode_frame(&snrm).map_err(what), Err("HDLC FCS"));

    // Truncated, missing closing flag, trailing bytes, wrong format type.
    assert!(decode_frame(&good[..good.len() - 1]).is_err());
    assert!(decode_frame(&[&good[..], &[0x00]].concat()).is_err());
    let mut not_type_3 = hex("7E A0 07 03 21 93 0F 01 7E");
    not_type_3[1] = 0x80;
    assert!(matches!(
        decode_frame(&not_type_3),
        Err(DecodeError::UnknownTag { .. })
    ));
}

#[test]
fn frames_too_long_or_with_bad_fields_are_not_encoded() {
    let mut frame = HdlcFrame {
        segmented: false,
        destination: HdlcAddress::server(1, 0x10),
        source: HdlcAddress::client(16),
        control: Control::I {
            send_seq: 0,
            recv_seq: 0,
            pf: true,
        },
        info: vec![0; 2038],
    };
    // Format 2, addresses 2 + 1, control 1, HCS 2, FCS 2: 2038 bytes of information is one too many.
    assert_eq!(
        encode_frame(&frame),
        Err(FrameError::FrameTooLong { len: 2048 })
    );
    frame.info.truncate(2037);
    assert_eq!(encode_frame(&frame).unwrap().len(), 0x7FF + 2);
    // A 4-byte server address leaves room for 2035.
    frame.destination = HdlcAddress::server(0x100, 0x10);
    assert!(encode_frame(&frame).is_err());
    frame.info.truncate(2035);
    assert_eq!(encode_frame(&frame).unwrap().len(), 0x7FF + 2);
    frame.control = Control::I {
        send_seq: 8,
        recv_seq: 0,
        pf: true,
    };
    assert!(encode_frame(&frame).is_err());
    frame.control = Control::Rr {
        recv_seq: 0,
        pf: true,
    };
    frame.source = HdlcAddress::One(0x80);
    assert!(encode_frame(&frame).is_err());
}

// ---------------------------------------------------------------- HDLC stream extraction

fn snrm() -> Vec<u8> {
    hex("7E A0 07 03 21 93 0F 01 7E")
}

fn aarq() -> Vec<u8> {
    hex(
        "7E A0 2B 03 21 10 FB AF E6 E6 00 60 1D A1 09 06 07 60 85 74 05 08 01 01 BE 10 04 0E 01 \
         00 00 00 06 5F 1F 04 00 00 18 1D FF FF 5F AF 7E",
    )
}

/// Every good frame the extractor gives, ignoring rejected candidates.
fn frames_from(x: &mut FrameExtractor) -> Vec<HdlcFrame> {
    std::iter::from_fn(|| x.next_frame())
        .filter_map(Result::ok)
        .collect()
}

#[test]
fn garbage_between_frames_is_skipped() {
    let mut line = b"\x00\x13noise".to_vec();
    line.extend(snrm());
    line.extend(b"\xFF\xFE line noise \x7E\x7E\x01 more");
    line.extend(aarq());
    line.extend([0x7E, 0xA0, 0x07, 0x03]); // a frame cut short
    line.extend(snrm());
    let mut x = FrameExtractor::new();
    x.push(&line);
    let got = frames_from(&mut x);
    assert_eq!(
        got,
        vec![
            decode_frame(&snrm()).unwrap(),
            decode_frame(&aarq()).unwrap(),
            decode_frame(&snrm()).unwrap()
        ]
    );
    assert!(x.skipped_bytes() > 0);
}

#[test]
fn frames_arrive_byte_by_byte_and_coalesced_with_shared_flags() {
    let mut x = FrameExtractor::new();
    let mut got = Vec::new();
    for b in aarq() {
        x.push(&[b]);
        got.extend(frames_from(&mut x));
    }
    assert_eq!(got, vec![decode_frame(&aarq()).unwrap()]);

    // Two frames sharing one flag between them, in one read.
    let a = aarq();
    let s = snrm();
    let shared = [&a[..], &s[1..]].concat();
    let mut x = FrameExtractor::new();
    x.push(&shared);
    assert_eq!(frames_from(&mut x).len(), 2);
}

#[test]
fn a_corrupted_frame_is_reported_and_the_next_one_still_arrives() {
    let mut bad = aarq();
    bad[20] ^= 0x40;
    let mut x = FrameExtractor::new();
    x.push(&[bad, snrm()].concat());
    let first = x.next_frame().expect("a result");
    assert_eq!(first.map_err(what), Err("HDLC FCS"));
    assert_eq!(frames_from(&mut x), vec![decode_frame(&snrm()).unwrap()]);
}

// ---------------------------------------------------------------- proptests

fn any_address() -> impl Strategy<Value = HdlcAddress> {
    prop_oneof![
        (0u8..0x80).prop_map(HdlcAddress::One),
        (0u8..0x80, 0u8..0x80).prop_map(|(upper, lower)| HdlcAddress::Two { upper, lower }),
        (0u16..0x4000, 0u16..0x4000).prop_map(|(upper, lower)| HdlcAddress::Four { upper, lower }),
    ]
}

fn any_control() -> impl Strategy<Value = Control> {
    any::<u8>().prop_map(Control::from_byte)
}

fn any_frame() -> impl Strategy<Value = HdlcFrame> {
    (
        any::<bool>(),
        any_address(),
        any_address(),
        any_control(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(
            |(segmented, destination, source, control, info)| HdlcFrame {
                segmented,
                destination,
                source,
                control,
                info,
            },
        )
}

proptest! {
    #[test]
    fn any_frame_encodes_and_decodes_equal(frame in any_frame()) {
        let bytes = encode_frame(&frame).unwrap();
        prop_assert_eq!(decode_frame(&bytes), Ok(frame));
    }

    #[test]
    fn frames_survive_noise_and_any_split(
        frames in prop::collection::vec(any_frame(), 1..6),
        noise in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no flag", |b| *b != 0x7E), 0..20), 6),
        chunk in 1usize..64,
    ) {
        let mut line = Vec::new();
        for (frame, noise) in frames.iter().zip(&noise) {
            line.extend_from_slice(noise);
            line.extend(encode_frame(frame).unwrap());
        }
        let mut x = FrameExtractor::new();
        let mut got = Vec::new();
        for piece in line.chunks(chunk) {
            x.push(piece);
            got.extend(frames_from(&mut x));
            prop_assert!(x.buffered() <= 0x7FF + 2);
        }
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn any_apdu_crosses_a_link_with_small_information_fields(
        request in prop::collection::vec(any::<u8>(), 0..4000),
        response in prop::collection::vec(any::<u8>(), 0..4000),
        max_info in 16u16..80,
    ) {
        let limits = LinkParameters { max_info_tx: max_info, max_info_rx: max_info, ..LinkParameters::default() };
        let mut pair = Pair::with_limits(limits, limits);
        pair.connect();
        pair.client.send_apdu(&request).unwrap();
        pair.run();
        prop_assert_eq!(pair.server_events.drain(..).collect::<Vec<_>>(), vec![HdlcEvent::Apdu(request)]);
        pair.server.send_apdu(&response).unwrap();
        pair.run();
        prop_assert_eq!(pair.client_events.drain(..).collect::<Vec<_>>(), vec![HdlcEvent::Apdu(response)]);
        prop_assert!(pair.longest_info <= usize::from(max_info));
    }

    #[test]
    fn wrapper_frames_survive_any_split(
        frames in prop::collection::vec((any::<u16>(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..600)), 1..5),
        chunk in 1usize..100,
    ) {
        let frames: Vec<WrapperFrame> = frames
            .into_iter()
            .map(|(source, destination, apdu)| WrapperFrame { source, destination, apdu })
            .collect();
        let stream: Vec<u8> = frames.iter().flat_map(|f| f.encode().unwrap()).collect();
        let mut d = WrapperDecoder::new();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            d.push(piece);
            while let Some(frame) = d.next_frame().unwrap() {
                got.push(frame);
            }
        }
        prop_assert_eq!(d.buffered(), 0);
        prop_assert_eq!(got, frames);
    }
}

// ---------------------------------------------------------------- HDLC client and server

const PUBLIC_CLIENT: u8 = 16;

/// A client and a server wired back to back in memory.
struct Pair {
    client: HdlcClient,
    server: HdlcServer,
    client_events: Vec<HdlcEvent>,
    server_events: Vec<HdlcEvent>,
    /// Every frame that crossed, in order (decoded).
    wire: Vec<HdlcFrame>,
    longest_info: usize,
}

impl Pair {
    fn with_limits(client: LinkParameters, server: LinkParameters) -> Self {
        let mut cc = ClientConfig::new(PUBLIC_CLIENT, HdlcAddress::server(1, 0x10));
        cc.limits = client;
        let mut sc = ServerConfig::new(HdlcAddress::server(1, 0x10));
        sc.limits = server;
        Pair {
            client: HdlcClient::new(cc).unwrap(),
            server: HdlcServer::new(sc).unwrap(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            wire: Vec::new(),
            longest_info: 0,
        }
    }

    fn new() -> Self {
        Self::with_limits(LinkParameters::default(), LinkParameters::default())
    }

    fn note(&mut self, bytes: &[u8]) {
        let frame = decode_frame(bytes).expect("the link sends valid frames");
        if matches!(frame.control, Control::I { .. }) {
            self.longest_info = self.longest_info.max(frame.info.len());
        }
        self.wire.push(frame);
    }

    /// Delivers frames both ways until both are quiet.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            while let Some(bytes) = self.client.poll_transmit() {
                self.note(&bytes);
                let events = self.server.push(&bytes);
                self.server_events.extend(events);
                moved = true;
            }
            while let Some(bytes) = self.server.poll_transmit() {
                self.note(&bytes);
                let events = self.client.push(&bytes);
                self.client_events.extend(events);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    fn connect(&mut self) {
        self.client.connect();
        self.run();
        assert!(matches!(
            self.client_events.as_slice(),
            [HdlcEvent::Connected(_)]
        ));
        assert!(matches!(
            self.server_events.as_slice(),
            [HdlcEvent::Connected(_)]
        ));
        self.client_events.clear();
        self.server_events.clear();
        self.wire.clear();
    }
}

#[test]
fn connect_exchange_both_ways_and_disconnect() {
    let mut pair = Pair::new();
    assert_eq!(
        pair.client.send_apdu(&[1]),
        Err(dlms::hdlc::LinkError::NotConnected)
    );
    pair.client.connect();
    pair.run();
    let params = LinkParameters::default();
    assert_eq!(pair.client_events, vec![HdlcEvent::Connected(params)]);
    assert_eq!(pair.server_events, vec![HdlcEvent::Connected(params)]);
    assert_eq!(pair.client.state(), LinkState::Connected);
    assert_eq!(pair.server.client_sap(), Some(PUBLIC_CLIENT));
    pair.client_events.clear();
    pair.server_events.clear();

    // Request/response rounds: each response acknowledges its request.
    for round in 0u8..10 {
        let request = vec![0xC0, 0x01, round];
        pair.client.send_apdu(&request).unwrap();
        pair.run();
        assert_eq!(pair.server_events, vec![HdlcEvent::Apdu(request)]);
        pair.server_events.clear();
        let response = vec![0xC4, 0x01, round, 0x00];
        pair.server.send_apdu(&response).unwrap();
        pair.run();
        assert_eq!(pair.client_events, vec![HdlcEvent::Apdu(response)]);
        pair.client_events.clear();
    }
    // 10 rounds: the sequence numbers wrapped modulo 8.
    let last_i = pair
        .wire
        .iter()
        .rev()
        .find(|f| matches!(f.control, Control::I { .. }))
        .unwrap();
    assert_eq!(
        last_i.control,
        Control::I {
            send_seq: 1,
            recv_seq: 2,
            pf: true
        }
    );
    assert!(
        pair.wire.iter().all(|f| !f.segmented),
        "short APDUs are not segmented"
    );

    pair.client.disconnect();
    pair.run();
    assert_eq!(
        pair.client_events,
        vec![HdlcEvent::Disconnected(DisconnectReason::Requested)]
    );
    assert_eq!(
        pair.server_events,
        vec![HdlcEvent::Disconnected(DisconnectReason::ByPeer)]
    );
    assert_eq!(pair.server.state(), LinkState::Disconnected);
}

#[test]
fn llc_headers_and_addresses_on_the_wire() {
    let mut pair = Pair::new();
    pair.connect();
    pair.client.send_apdu(&[0x60, 0x00]).unwrap();
    pair.run();
    pair.server.send_apdu(&[0x61, 0x00]).unwrap();
    pair.run();
    let request = &pair.wire[0];
    assert_eq!(request.info, [0xE6, 0xE6, 0x00, 0x60, 0x00]);
    assert_eq!(request.destination, HdlcAddress::server(1, 0x10));
    assert_eq!(request.source, HdlcAddress::client(16));
    let response = &pair.wire[1];
    assert_eq!(response.info, [0xE6, 0xE7, 0x00, 0x61, 0x00]);
    assert_eq!(
        response.control,
        Control::I {
            send_seq: 0,
            recv_seq: 1,
            pf: true
        }
    );
}

#[test]
fn negotiation_takes_the_smaller_limits() {
    let client = LinkParameters {
        max_info_tx: 512,
        max_info_rx: 1024,
        window_tx: 1,
        window_rx: 1,
    };
    let server = LinkParameters {
        max_info_tx: 256,
        max_info_rx: 300,
        window_tx: 1,
        window_rx: 1,
    };
    let mut pair = Pair::with_limits(client, server);
    pair.client.connect();
    pair.run();
    let at_client = LinkParameters {
        max_info_tx: 300,
        max_info_rx: 256,
        ..client
    };
    let at_server = LinkParameters {
        max_info_tx: 256,
        max_info_rx: 300,
        ..server
    };
    assert_eq!(pair.client.parameters(), Some(at_client));
    assert_eq!(pair.server.parameters(), Some(at_server));
}

#[test]
fn segments_carry_the_s_bit_and_are_acknowledged_with_rr() {
    let small = LinkParameters {
        max_info_tx: 32,
        max_info_rx: 32,
        ..LinkParameters::default()
    };
    let mut pair = Pair::with_limits(small, small);
    pair.connect();
    let apdu: Vec<u8> = (0..100u8).collect(); // 103 bytes with LLC: 4 segments
    pair.client.send_apdu(&apdu).unwrap();
    pair.run();
    assert_eq!(pair.server_events, vec![HdlcEvent::Apdu(apdu.clone())]);
    let kinds: Vec<(bool, Control)> = pair.wire.iter().map(|f| (f.segmented, f.control)).collect();
    assert_eq!(
        kinds,
        vec![
            (
                true,
                Control::I {
                    send_seq: 0,
                    recv_seq: 0,
                    pf: true
                }
            ),
            (
                false,
                Control::Rr {
                    recv_seq: 1,
                    pf: true
                }
            ),
            (
                true,
                Control::I {
                    send_seq: 1,
                    recv_seq: 0,
                    pf: true
                }
            ),
            (
                false,
                Control::Rr {
                    recv_seq: 2,
                    pf: true
                }
            ),
            (
                true,
                Control::I {
                    send_seq: 2,
                    recv_seq: 0,
                    pf: true
                }
            ),
            (
                false,
                Control::Rr {
                    recv_seq: 3,
                    pf: true
                }
            ),
            (
                false,
                Control::I {
                    send_seq: 3,
                    recv_seq: 0,
                    pf: true
                }
            ),
        ]
    );
    // The response, segmented the other way: the client polls for each segment with RR.
    pair.wire.clear();
    pair.server.send_apdu(&apdu).unwrap();
    pair.run();
    assert_eq!(pair.client_events, vec![HdlcEvent::Apdu(apdu)]);
    let kinds: Vec<(bool, Control)> = pair.wire.iter().map(|f| (f.segmented, f.control)).collect();
    assert_eq!(
        kinds[0],
        (
            true,
            Control::I {
                send_seq: 0,
                recv_seq: 4,
                pf: true
            }
        )
    );
    assert_eq!(
        kinds[1],
        (
            false,
            Control::Rr {
                recv_seq: 1,
                pf: true
            }
        )
    );
    assert_eq!(
        kinds.last().unwrap(),
        &(
            false,
            Control::I {
                send_seq: 3,
                recv_seq: 4,
                pf: true
            }
        )
    );
}

#[test]
fn a_lost_request_is_repeated_after_a_timeout() {
    let mut pair = Pair::new();
    pair.connect();
    pair.client.send_apdu(&[0xC0, 0x01]).unwrap();
    assert!(pair.client.awaiting_response());
    let lost = pair.client.poll_transmit().unwrap();
    assert!(pair.client.poll_transmit().is_none());
    drop(lost);
    // The timer fires: the client polls, the server's RR shows the I-frame never arrived, the
    // client sends it again.
    assert!(pair.client.on_timeout().is_empty());
    pair.run();
    assert_eq!(pair.server_events, vec![HdlcEvent::Apdu(vec![0xC0, 0x01])]);
    pair.server.send_apdu(&[0xC4]).unwrap();
    pair.run();
    assert_eq!(pair.client_events, vec![HdlcEvent::Apdu(vec![0xC4])]);
}

#[test]
fn a_lost_response_is_repeated_when_the_client_polls() {
    let mut pair = Pair::new();
    pair.connect();
    pair.client.send_apdu(&[0xC0, 0x01]).unwrap();
    pair.run();
    pair.server.send_apdu(&[0xC4, 0x01]).unwrap();
    let lost = pair.server.poll_transmit().unwrap();
    drop(lost);
    assert!(pair.client.awaiting_response());
    pair.client.on_timeout();
    pair.run();
    assert_eq!(pair.client_events, vec![HdlcEvent::Apdu(vec![0xC4, 0x01])]);
    assert_eq!(
        pair.server_events,
        vec![HdlcEvent::Apdu(vec![0xC0, 0x01])],
        "delivered once"
    );
}

#[test]
fn a_lost_segment_acknowledgement_does_not_duplicate_data() {
    let small = LinkParameters {
        max_info_tx: 16,
        max_info_rx: 16,
        ..LinkParameters::default()
    };
    let mut pair = Pair::with_limits(small, small);
    pair.connect();
    let apdu: Vec<u8> = (0..40u8).collect();
    pair.client.send_apdu(&apdu).unwrap();
    let first = pair.client.poll_transmit().unwrap();
    assert!(pair.server.push(&first).is_empty());
    let _lost_rr = pair.server.poll_transmit().unwrap();
    pair.client.on_timeout();
    pair.run();
    assert_eq!(pair.server_events, vec![HdlcEvent::Apdu(apdu)]);
}

#[test]
fn the_client_gives_up_after_max_retries() {
    let mut pair = Pair::new();
    pair.client.connect();
    let _ = pair.client.poll_transmit();
    for _ in 0..3 {
        assert!(pair.client.on_timeout().is_empty());
        assert!(pair.client.poll_transmit().is_some(), "SNRM repeated");
    }
    assert_eq!(
        pair.client.on_timeout(),
        vec![HdlcEvent::Disconnected(DisconnectReason::Timeout)]
    );
    assert_eq!(pair.client.state(), LinkState::Disconnected);
}

#[test]
fn a_disconnected_server_answers_with_dm() {
    let mut pair = Pair::new();
    // DISC to a server that was never connected: DM, and the client takes that as done.
    pair.client.connect();
    let _ = pair.client.poll_transmit(); // SNRM lost
    pair.client.disconnect();
    pair.run();
    assert_eq!(pair.wire.last().unwrap().control, Control::Dm { pf: true });
    assert_eq!(
        pair.client_events,
        vec![HdlcEvent::Disconnected(DisconnectReason::Requested)]
    );

    // An RR poll from a client the server does not know: DM too.
    let mut server = HdlcServer::new(ServerConfig::new(HdlcAddress::server(1, 0x10))).unwrap();
    let rr = HdlcFrame {
        segmented: false,
        destination: HdlcAddress::server(1, 0x10),
        source: HdlcAddress::client(32),
        control: Control::Rr {
            recv_seq: 0,
            pf: true,
        },
        info: vec![],
    };
    assert!(server.push(&encode_frame(&rr).unwrap()).is_empty());
    let dm = decode_frame(&server.poll_transmit().unwrap()).unwrap();
    assert_eq!(dm.control, Control::Dm { pf: true });
    assert_eq!(dm.destination, HdlcAddress::client(32));
}

#[test]
fn frames_for_another_server_are_ignored() {
    let mut server = HdlcServer::new(ServerConfig::new(HdlcAddress::server(1, 0x10))).unwrap();
    let snrm = hex("7E A0 08 02 23 21 93 AB CD 7E"); // bad FCS on purpose: dropped
    assert!(server.push(&snrm).is_empty());
    let other = HdlcFrame {
        segmented: false,
        destination: HdlcAddress::server(1, 0x11),
        source: HdlcAddress::client(16),
        control: Control::Snrm { pf: true },
        info: vec![],
    };
    assert!(server.push(&encode_frame(&other).unwrap()).is_empty());
    assert!(server.poll_transmit().is_none());
    assert_eq!(server.discarded_frames(), 2);
    assert_eq!(server.state(), LinkState::Disconnected);
}

#[test]
fn an_oversized_information_field_is_rejected_with_frmr() {
    let mut pair = Pair::new();
    pair.connect();
    // A client that ignores the negotiated 128 bytes.
    let rogue = HdlcFrame {
        segmented: false,
        destination: HdlcAddress::server(1, 0x10),
        source: HdlcAddress::client(PUBLIC_CLIENT),
        control: Control::I {
            send_seq: 0,
            recv_seq: 0,
            pf: true,
        },
        info: vec![0xE6; 200],
    };
    assert!(pair.server.push(&encode_frame(&rogue).unwrap()).is_empty());
    let frmr_bytes = pair.server.poll_transmit().unwrap();
    let frmr = decode_frame(&frmr_bytes).unwrap();
    assert_eq!(frmr.control, Control::Frmr { pf: true });
    assert_eq!(
        frmr.info,
        [0x10, 0x00, 0x04],
        "rejected control, V(R)/V(S), Y: too long"
    );

    // The client hears the FRMR and drops the link.
    pair.client_events = pair.client.push(&frmr_bytes);
    assert_eq!(
        pair.client_events,
        vec![HdlcEvent::Disconnected(DisconnectReason::FrameRejected {
            info: vec![0x10, 0x00, 0x04]
        })]
    );
    // Its DISC takes the server out of the frame-reject condition.
    pair.run();
    assert_eq!(pair.server.state(), LinkState::Disconnected);
}

#[test]
fn an_invalid_n_r_is_rejected_and_so_is_an_unknown_control_field() {
    let mut pair = Pair::new();
    pair.connect();
    let frame = |control| HdlcFrame {
        segmented: false,
        destination: HdlcAddress::server(1, 0x10),
        source: HdlcAddress::client(PUBLIC_CLIENT),
        control,
        info: vec![],
    };
    pair.server.push(
        &encode_frame(&frame(Control::Rr {
            recv_seq: 5,
            pf: true,
        }))
        .unwrap(),
    );
    let frmr = decode_frame(&pair.server.poll_transmit().unwrap()).unwrap();
    assert_eq!(frmr.info[2], 0x08, "Z: invalid N(R)");

    // A new SNRM clears it; then REJ (not used by IEC 62056-46) gets W.
    pair.client.connect();
    pair.run();
    pair.server
        .push(&encode_frame(&frame(Control::Unknown(0x19))).unwrap());
    let frmr = decode_frame(&pair.server.poll_transmit().unwrap()).unwrap();
    assert_eq!(frmr.info, [0x19, 0x00, 0x01]);
}

#[test]
fn a_refused_connection_is_reported() {
    let mut client = HdlcClient::new(ClientConfig::new(
        PUBLIC_CLIENT,
        HdlcAddress::server(1, 0x10),
    ))
    .unwrap();
    client.connect();
    let _snrm = client.poll_transmit().unwrap();
    let dm = HdlcFrame {
        segmented: false,
        destination: HdlcAddress::client(PUBLIC_CLIENT),
        source: HdlcAddress::server(1, 0x10),
        control: Control::Dm { pf: true },
        info: vec![],
    };
    assert_eq!(
        client.push(&encode_frame(&dm).unwrap()),
        vec![HdlcEvent::Disconnected(DisconnectReason::Refused)]
    );
}

#[test]
fn the_server_drops_the_link_on_inactivity() {
    let mut pair = Pair::new();
    pair.connect();
    assert_eq!(
        pair.server.on_inactivity_timeout(),
        vec![HdlcEvent::Disconnected(DisconnectReason::Inactivity)]
    );
    assert_eq!(
        pair.server.send_apdu(&[1]),
        Err(dlms::hdlc::LinkError::NotConnected)
    );
}

#[test]
fn invalid_configuration_is_refused() {
    let mut cc = ClientConfig::new(0x80, HdlcAddress::server(1, 0x10));
    assert!(HdlcClient::new(cc.clone()).is_err());
    cc.client_sap = 16;
    cc.limits.window_rx = 0;
    assert!(HdlcClient::new(cc).is_err());
}

// ---------------------------------------------------------------- TCP wrapper

#[test]
fn wrapper_frames_byte_by_byte_and_coalesced() {
    let a = wrapper::encode(16, 1, &[0x60, 0x1D, 0xA1]).unwrap();
    let b = wrapper::encode(1, 16, &[]).unwrap();
    let c = wrapper::encode(1, 16, &[0x61; 300]).unwrap();
    let stream = [a.clone(), b.clone(), c.clone()].concat();

    let mut d = WrapperDecoder::new();
    let mut got = Vec::new();
    for byte in &stream {
        d.push(std::slice::from_ref(byte));
        while let Some(frame) = d.next_frame().unwrap() {
            got.push(frame);
        }
    }
    let expected = vec![
        wrapper::decode(&a).unwrap(),
        wrapper::decode(&b).unwrap(),
        wrapper::decode(&c).unwrap(),
    ];
    assert_eq!(got, expected);
    assert_eq!(
        expected[0],
        WrapperFrame {
            source: 16,
            destination: 1,
            apdu: vec![0x60, 0x1D, 0xA1]
        }
    );

    let mut d = WrapperDecoder::new();
    d.push(&stream);
    assert_eq!(d.next_frame().unwrap(), Some(expected[0].clone()));
    assert_eq!(d.next_frame().unwrap(), Some(expected[1].clone()));
    assert_eq!(d.next_frame().unwrap(), Some(expected[2].clone()));
    assert_eq!(d.next_frame().unwrap(), None);
}

#[test]
fn wrapper_errors_are_final() {
    let mut d = WrapperDecoder::with_max_apdu_len(256);
    d.push(&wrapper::encode(16, 1, &[1, 2, 3]).unwrap());
    d.push(&wrapper::encode(16, 1, &[0; 257]).unwrap());
    assert!(d.next_frame().unwrap().is_some());
    let err = d.next_frame().unwrap_err();
    assert!(matches!(
        err,
        DecodeError::Invalid {
            what: "wrapper length",
            ..
        }
    ));
    assert_eq!(d.next_frame().unwrap_err(), err, "the decoder stays failed");

    assert_eq!(
        wrapper::encode(1, 16, &vec![0; 70_000]),
        Err(WrapperError::ApduTooLong { len: 70_000 })
    );
    assert!(wrapper::decode(&[0x00, 0x01, 0x00, 0x01, 0x00, 0x10, 0x00, 0x02, 0xAA]).is_err());
    assert!(
        wrapper::decode(&[0x00, 0x01, 0x00, 0x01, 0x00, 0x10, 0x00, 0x01, 0xAA, 0xBB]).is_err()
    );
}

//! The checks behind each fuzz target, one function per target. Shared by the libFuzzer targets
//! (`fuzz_targets/*.rs`) and by `tests/fuzz_regressions.rs`, which replays the corpora and crash
//! inputs in a normal `cargo test`, so both run exactly the same code.
//!
//! Each check must return for any input; it panics only when a decoder panics or breaks a
//! promise the check asserts (re-encoding what decoded, stream splitting, bounded buffers).
#![allow(dead_code)]

use dlms::Data;
use dlms::apdu::Apdu;
use dlms::hdlc::{FrameExtractor, decode_frame, encode_frame};
use dlms::security::{
    CipheredApdu, Envelope, InvocationCounter, ReplayGuard, SecurityControl, SecurityError,
    SecurityPolicy, Suite0Cipher, SystemTitle, protect, unprotect,
};
use dlms::wrapper::{self, HEADER_LEN, WrapperDecoder, WrapperFrame};

/// `Data::from_bytes` (A-XDR): whatever decodes re-encodes to bytes that decode to the same
/// value (compared by encoding, since NaN floats are not equal to themselves).
pub fn axdr(bytes: &[u8]) {
    if let Ok(value) = Data::from_bytes(bytes) {
        let encoded = value.to_bytes();
        let again = Data::from_bytes(&encoded).expect("a re-encoded value decodes");
        assert_eq!(
            again.to_bytes(),
            encoded,
            "re-encoding is not stable for {value:?}"
        );
    }
}

/// The IEC 62056-47 TCP wrapper. The one-frame `decode` re-encodes to the same bytes; the
/// streaming `WrapperDecoder` yields the same frames and verdict however the stream is split
/// into reads, and keeps its buffer below one frame.
///
/// First byte: chunk size and APDU limit; the rest is the stream.
pub fn wrapper(input: &[u8]) {
    let Some((&knob, stream)) = input.split_first() else {
        return;
    };

    if let Ok(frame) = wrapper::decode(stream) {
        assert_eq!(frame.encode().expect("a decoded APDU fits"), stream);
    }

    let max_apdu_len = if knob & 0x80 != 0 {
        usize::from(knob & 0x7f) * 8
    } else {
        0xffff
    };
    let mut whole = WrapperDecoder::with_max_apdu_len(max_apdu_len);
    whole.push(stream);
    let mut frames_whole = Vec::new();
    let err_whole = drain_wrapper(&mut whole, &mut frames_whole);
    for frame in &frames_whole {
        assert!(frame.apdu.len() <= whole.max_apdu_len());
        let bytes = frame.encode().expect("a decoded APDU fits");
        assert_eq!(wrapper::decode(&bytes).as_ref(), Ok(frame));
    }
    if err_whole.is_none() {
        assert!(whole.buffered() < HEADER_LEN + whole.max_apdu_len().max(1));
    }

    let mut split = WrapperDecoder::with_max_apdu_len(max_apdu_len);
    let mut frames_split = Vec::new();
    let mut err_split = None;
    for piece in stream.chunks(usize::from(knob & 0x0f) + 1) {
        split.push(piece);
        err_split = drain_wrapper(&mut split, &mut frames_split);
        if err_split.is_some() {
            break;
        }
    }
    assert_eq!(
        frames_split, frames_whole,
        "frames depend on how the stream was split"
    );
    assert_eq!(
        err_split, err_whole,
        "the verdict depends on how the stream was split"
    );
}

/// Every frame the decoder gives, then its error (as text) if it refused the stream.
fn drain_wrapper(d: &mut WrapperDecoder, frames: &mut Vec<WrapperFrame>) -> Option<String> {
    loop {
        match d.next_frame() {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return None,
            Err(err) => return Some(err.to_string()),
        }
    }
}

/// The most bytes one HDLC frame spans, flags included (11-bit length field plus two flags).
const HDLC_MAX_SPAN: usize = 0x7FF + 2;

/// IEC 62056-46 HDLC. `decode_frame` re-encodes to the same bytes; the streaming
/// `FrameExtractor` gives the same results however the line is split into reads and keeps at
/// most one frame buffered.
///
/// First byte: chunk size; the rest is the bytes on the line.
pub fn hdlc(input: &[u8]) {
    let Some((&knob, line)) = input.split_first() else {
        return;
    };

    if let Ok(frame) = decode_frame(line) {
        assert_eq!(
            encode_frame(&frame).expect("a decoded frame re-encodes"),
            line
        );
    }

    let mut whole = FrameExtractor::new();
    whole.push(line);
    let mut from_whole = Vec::new();
    drain_hdlc(&mut whole, &mut from_whole);

    let mut split = FrameExtractor::new();
    let mut from_split = Vec::new();
    for piece in line.chunks(usize::from(knob) + 1) {
        split.push(piece);
        drain_hdlc(&mut split, &mut from_split);
    }
    assert_eq!(
        from_split, from_whole,
        "results depend on how the line was split"
    );
}

/// Everything the extractor gives until it needs more bytes (frames re-encoded, errors as text).
fn drain_hdlc(x: &mut FrameExtractor, out: &mut Vec<Result<Vec<u8>, String>>) {
    while let Some(result) = x.next_frame() {
        out.push(match result {
            Ok(frame) => {
                let bytes = encode_frame(&frame).expect("a decoded frame re-encodes");
                assert_eq!(decode_frame(&bytes).as_ref(), Ok(&frame));
                Ok(bytes)
            }
            Err(err) => Err(err.to_string()),
        });
    }
    assert!(
        x.buffered() <= HDLC_MAX_SPAN,
        "{} bytes buffered after draining",
        x.buffered()
    );
}

/// `Apdu::decode` (ACSE BER and xDLMS A-XDR): whatever decodes re-encodes to bytes that decode
/// and re-encode to themselves. (Not byte-for-byte the input: BER and A-XDR allow several
/// encodings of one value, e.g. long-form lengths or any non-zero byte for `true`.)
pub fn apdu(bytes: &[u8]) {
    if let Ok(apdu) = Apdu::decode(bytes) {
        let encoded = apdu.encode();
        let again = Apdu::decode(&encoded)
            .unwrap_or_else(|e| panic!("re-encoded {apdu:?} does not decode: {e}"));
        assert_eq!(
            again.encode(),
            encoded,
            "re-encoding is not stable for {apdu:?}"
        );
    }
}

/// Keys and system title of the fuzzed peer (the Green Book's example keys).
const ENCRYPTION_KEY: [u8; 16] =
    *b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f";
const AUTHENTICATION_KEY: [u8; 16] =
    *b"\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb\xdc\xdd\xde\xdf";
const PEER_TITLE: SystemTitle = *b"MMM\x00\x00\xbc\x61\x4e";

/// Ciphered APDUs: envelope parsing (`CipheredApdu::decode`) and verification + deciphering
/// (`unprotect`), on hostile bytes and on envelopes built by `protect`.
///
/// First byte: envelope, protection, counter and which byte to tamper with; the rest is used
/// twice: as a received envelope, and as a plaintext APDU to protect and unprotect again.
pub fn ciphered_apdu(input: &[u8]) {
    let Some((&knob, rest)) = input.split_first() else {
        return;
    };
    let cipher = Suite0Cipher::with_keys(&ENCRYPTION_KEY, &AUTHENTICATION_KEY);

    // As received from the line.
    let parsed = CipheredApdu::decode(rest);
    if let Ok(envelope) = &parsed {
        assert!(envelope.payload().len() <= envelope.content.len());
    }
    let mut replay = ReplayGuard::new();
    if let Ok(plain) = unprotect(
        rest,
        &cipher,
        &PEER_TITLE,
        SecurityPolicy::None,
        &mut replay,
    ) {
        assert!(
            parsed.is_ok(),
            "unprotected an envelope that does not parse"
        );
        let _ = Apdu::decode(&plain.apdu);
    }

    // As protected by a peer: it must come back intact, once.
    let envelope = match knob & 0x03 {
        0 => Envelope::Glo,
        1 => Envelope::Ded,
        2 => Envelope::GeneralGlo,
        _ => Envelope::GeneralDed,
    };
    let policy = match (knob >> 2) & 0x03 {
        0 | 1 => SecurityPolicy::AuthenticatedEncrypted,
        2 => SecurityPolicy::Authenticated,
        _ => SecurityPolicy::Encrypted,
    };
    let first_counter = u32::from(knob >> 4) << 28;
    let mut counter = InvocationCounter::new(first_counter);
    let sc = SecurityControl::new(policy);
    let protected = match protect(rest, envelope, sc, &cipher, &PEER_TITLE, &mut counter) {
        Ok(bytes) => bytes,
        Err(SecurityError::NotCipherable { .. } | SecurityError::Malformed(_)) => return,
        Err(e) => panic!("protect failed: {e}"),
    };
    let mut replay = ReplayGuard::new();
    let plain = unprotect(&protected, &cipher, &PEER_TITLE, policy, &mut replay)
        .unwrap_or_else(|e| panic!("own {envelope:?} {policy:?} envelope refused: {e}"));
    assert_eq!(plain.apdu, rest);
    assert_eq!(plain.envelope, envelope);
    assert_eq!(plain.invocation_counter, first_counter);
    // Only an authenticated counter is recorded (an encryption-only one could be forged).
    if policy.authenticated() {
        assert!(matches!(
            unprotect(&protected, &cipher, &PEER_TITLE, policy, &mut replay),
            Err(SecurityError::Replayed { .. })
        ));
    } else {
        assert_eq!(replay.last_accepted(), None);
    }

    // One flipped bit anywhere but the envelope tag (not covered by the GCM tag, by design of
    // DLMS) must be caught when the APDU is authenticated.
    if policy.authenticated() && protected.len() > 1 {
        let at = 1 + usize::from(knob) * 7919 % (protected.len() - 1);
        let mut tampered = protected.clone();
        tampered[at] ^= 1 << (knob % 8);
        let mut replay = ReplayGuard::new();
        let result = unprotect(&tampered, &cipher, &PEER_TITLE, policy, &mut replay);
        assert!(
            result.is_err(),
            "bit flip at {at} of an authenticated envelope went unnoticed"
        );
    }
}

//! Decrypt + decode of a one-day block-load GET response (96 rows at 15 minutes, IS 15959
//! single-phase channels), glo-ciphered with authenticated encryption, as a head-end receives it.
//!
//! Target: at least 50,000 responses per second per core. Divan reports time per response; the
//! two baselines in the same run (decrypt only, decode only) show where the time goes, so compare
//! ratios between them rather than absolute times across machines.
//!
//! Run: `cargo bench -p dlms --bench block_load`
//!
//! Decoding a buffer makes a couple of hundred small allocations, so the allocator matters: the
//! `urja` binary runs on mimalloc, and so does this benchmark, to measure what ships. (With
//! glibc's allocator the same code measured 48–65 k responses/s, varying with heap state.)

use dlms::apdu::{Apdu, GetDataResult, GetResponse};
use dlms::datetime::ist;
use dlms::security::{
    Envelope, GlobalKeys, InvocationCounter, ReplayGuard, SecurityControl, SecurityPolicy,
    Suite0Cipher, protect, unprotect,
};
use dlms::{Data, DateTime};

const SERVER_TITLE: [u8; 8] = *b"URJ\x00\x00\x00\x00\x01";

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

fn keys() -> GlobalKeys {
    GlobalKeys {
        encryption: [0x11; 16],
        authentication: [0x22; 16],
    }
}

/// A day of block load: clock, avg voltage, avg current, kWh/kVAh import/export per block.
fn one_day_block_load() -> Data {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-25T00:15:00+05:30")
        .expect("valid time")
        .with_timezone(&chrono::Utc);
    let rows = (0..96u32)
        .map(|i| {
            let t = start + chrono::Duration::minutes(15 * i as i64);
            Data::Structure(vec![
                Data::OctetString(DateTime::from_utc(t, ist()).to_bytes().to_vec()),
                Data::LongUnsigned(2300 + (i % 7) as u16),
                Data::DoubleLongUnsigned(1250 + i * 3),
                Data::DoubleLongUnsigned(180 + i),
                Data::DoubleLongUnsigned(195 + i),
                Data::DoubleLongUnsigned(0),
                Data::DoubleLongUnsigned(0),
            ])
        })
        .collect();
    Data::Array(rows)
}

fn plain_response() -> Vec<u8> {
    Apdu::GetResponse(GetResponse::Normal {
        invoke_id: 0xC1,
        result: GetDataResult::Data(one_day_block_load()),
    })
    .encode()
}

fn ciphered_response() -> Vec<u8> {
    let cipher = Suite0Cipher::new(&keys());
    let mut counter = InvocationCounter::new(1000);
    protect(
        &plain_response(),
        Envelope::Glo,
        SecurityControl::new(SecurityPolicy::AuthenticatedEncrypted),
        &cipher,
        &SERVER_TITLE,
        &mut counter,
    )
    .expect("protect")
}

fn rows_of(apdu: &Apdu) -> usize {
    match apdu {
        Apdu::GetResponse(GetResponse::Normal {
            result: GetDataResult::Data(d),
            ..
        }) => d.as_items().map_or(0, <[Data]>::len),
        _ => 0,
    }
}

/// The measured path: verify + decrypt, then decode to `Data`.
#[divan::bench]
fn decrypt_and_decode(bencher: divan::Bencher) {
    let cipher = Suite0Cipher::new(&keys());
    let frame = ciphered_response();
    assert_eq!(
        rows_of(&Apdu::decode(&plain_response()).expect("decodes")),
        96
    );
    bencher
        .counter(divan::counter::ItemsCount::new(1usize))
        .bench_local(|| {
            // A fresh guard each time: the same counter is accepted once per guard.
            let mut replay = ReplayGuard::new();
            let plain = unprotect(
                divan::black_box(&frame),
                &cipher,
                &SERVER_TITLE,
                SecurityPolicy::AuthenticatedEncrypted,
                &mut replay,
            )
            .expect("authentic");
            let apdu = Apdu::decode(&plain.apdu).expect("decodes");
            assert_eq!(rows_of(&apdu), 96);
            apdu
        });
}

/// Baseline: verify + decrypt only.
#[divan::bench]
fn decrypt_only(bencher: divan::Bencher) {
    let cipher = Suite0Cipher::new(&keys());
    let frame = ciphered_response();
    bencher
        .counter(divan::counter::ItemsCount::new(1usize))
        .bench_local(|| {
            let mut replay = ReplayGuard::new();
            unprotect(
                divan::black_box(&frame),
                &cipher,
                &SERVER_TITLE,
                SecurityPolicy::AuthenticatedEncrypted,
                &mut replay,
            )
            .expect("authentic")
        });
}

/// Baseline: decode of the plaintext only.
#[divan::bench]
fn decode_only(bencher: divan::Bencher) {
    let plain = plain_response();
    bencher
        .counter(divan::counter::ItemsCount::new(1usize))
        .bench_local(|| Apdu::decode(divan::black_box(&plain)).expect("decodes"));
}

//! Fuzz target: plaintext APDUs, `Apdu::decode` (AARQ/AARE/RLRQ/RLRE and the xDLMS services).
//! The checks live in `../checks.rs`, shared with `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: &[u8]| checks::apdu(input));

//! Fuzz target: ciphered APDUs, envelope parsing and AES-GCM verification/deciphering
//! (`dlms::security::{CipheredApdu::decode, protect, unprotect}`).
//! The checks live in `../checks.rs`, shared with `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: &[u8]| checks::ciphered_apdu(input));

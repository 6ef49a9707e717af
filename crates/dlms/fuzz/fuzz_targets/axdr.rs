//! Fuzz target: `Data::from_bytes` (A-XDR).
//! The checks live in `../checks.rs`, shared with `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: &[u8]| checks::axdr(input));

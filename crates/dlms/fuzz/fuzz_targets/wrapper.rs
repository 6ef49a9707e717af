//! Fuzz target: the IEC 62056-47 TCP wrapper (one-frame and streaming decoders).
//! The checks live in `../checks.rs`, shared with `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: &[u8]| checks::wrapper(input));

//! Fuzz target: IEC 62056-46 HDLC (`decode_frame` and the streaming `FrameExtractor`).
//! The checks live in `../checks.rs`, shared with `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: &[u8]| checks::hdlc(input));

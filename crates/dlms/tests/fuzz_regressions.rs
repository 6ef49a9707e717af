//! Replays the fuzzing corpora and the saved crash inputs (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the same checks the fuzz targets run
//! (`fuzz/checks.rs`), so a fixed crash stays fixed in a plain `cargo test`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../fuzz/checks.rs"]
mod checks;

/// Every file under `fuzz/<kind>/<target>/`, failing if there are none.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    files
}

/// Runs `check` on every corpus and regression input of `target`; reports all that panic.
fn replay(target: &str, check: fn(&[u8])) {
    let mut failures = Vec::new();
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        for path in inputs(kind, target) {
            let bytes = fs::read(&path).expect("readable input");
            count += 1;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&bytes))) {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(non-string panic)");
                failures.push(format!("{}: {message}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {count} inputs panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn axdr_inputs_decode_without_panicking() {
    replay("axdr", checks::axdr);
}

#[test]
fn wrapper_inputs_decode_without_panicking() {
    replay("wrapper", checks::wrapper);
}

#[test]
fn hdlc_inputs_decode_without_panicking() {
    replay("hdlc", checks::hdlc);
}

#[test]
fn apdu_inputs_decode_without_panicking() {
    replay("apdu", checks::apdu);
}

#[test]
fn ciphered_apdu_inputs_decode_without_panicking() {
    replay("ciphered_apdu", checks::ciphered_apdu);
}

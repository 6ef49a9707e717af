//! The head-end's key store: the master key that protects meter secrets at rest ([`master`]),
//! sealing one meter's credentials under it ([`seal`](mod@seal)), and the import of meters and
//! their keys from a key file ([`import`]), the one way meters and keys come in.
//!
//! Secrets never appear in `Debug` output or in error messages: errors name the meter, the record
//! and the field, and say what is wrong with the value without showing it.

pub mod import;
pub mod master;
pub mod seal;

use std::path::PathBuf;

use model::MeterSerial;

pub use import::{FileFormat, ImportError, ImportedMeter, parse_key_file};
pub use master::{MASTER_KEY_ENV, MASTER_KEY_FILE, MasterKey, MasterKeySource};
pub use seal::{open, seal};

/// What can go wrong with the master key and sealed credentials.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// `URJA_MASTER_KEY` is set but is not a 256-bit key in hex. The value is never shown.
    #[error("{MASTER_KEY_ENV} must be 64 hex digits (a 256-bit key): {problem}")]
    MasterKeyEnv { problem: HexProblem },
    /// The master key file does not hold a 256-bit key in hex.
    #[error("master key file {}: expected 64 hex digits on one line: {problem}", path.display())]
    MasterKeyFile { path: PathBuf, problem: HexProblem },
    /// The master key file may be read by users other than its owner.
    #[error(
        "master key file {} is accessible by group or others (mode {mode:04o}); \
         run `chmod 600 {}` and start again",
        path.display(),
        path.display()
    )]
    LoosePermissions { path: PathBuf, mode: u32 },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The operating system's random source failed.
    #[error("no random bytes from the operating system: {0}")]
    Random(String),
    /// The master key is not the one the data directory's secrets were sealed with.
    #[error(
        "the master key (fingerprint {found}) is not the one this data directory was sealed \
         with (fingerprint {stored}); set {MASTER_KEY_ENV} or restore the data directory's \
         {MASTER_KEY_FILE}"
    )]
    WrongMasterKey { stored: String, found: String },
    /// Sealed credentials that do not open: wrong master key, altered bytes, or a record that
    /// belongs to another meter or key version. Deliberately without detail.
    #[error(
        "cannot open the sealed credentials of meter {meter} (wrong master key, or the record was \
         altered or belongs to another meter or key version)"
    )]
    Unseal { meter: MeterSerial },
}

/// Why a text is not the expected number of hex digits; never includes the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexProblem {
    /// No value at all.
    Empty,
    /// The wrong number of characters.
    Length { expected: usize, found: usize },
    /// The character at this (1-based) position is not a hex digit.
    NotHex { expected: usize, position: usize },
}

impl std::fmt::Display for HexProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            HexProblem::Empty => f.write_str("the value is empty"),
            HexProblem::Length { expected, found } => {
                write!(
                    f,
                    "expected {expected} hex digits, found {found} characters"
                )
            }
            HexProblem::NotHex { expected, position } => write!(
                f,
                "expected {expected} hex digits, character {position} is not a hex digit"
            ),
        }
    }
}

/// Decodes exactly `N` bytes from `2 * N` hex digits (either case). Errors say what is wrong
/// without echoing any part of the text, which is usually a secret.
pub(crate) fn decode_hex<const N: usize>(text: &str) -> Result<[u8; N], HexProblem> {
    let expected = 2 * N;
    if text.is_empty() {
        return Err(HexProblem::Empty);
    }
    let found = text.chars().count();
    if found != expected {
        return Err(HexProblem::Length { expected, found });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|e| HexProblem::NotHex {
        expected,
        position: match e {
            hex::FromHexError::InvalidHexCharacter { index, .. } => index + 1,
            _ => 1,
        },
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decodes_either_case_and_explains_without_echoing() {
        assert_eq!(decode_hex::<2>("aB0f"), Ok([0xAB, 0x0F]));
        assert_eq!(decode_hex::<2>(""), Err(HexProblem::Empty));
        assert_eq!(
            decode_hex::<2>("abc"),
            Err(HexProblem::Length {
                expected: 4,
                found: 3
            })
        );
        assert_eq!(
            decode_hex::<2>("abzf"),
            Err(HexProblem::NotHex {
                expected: 4,
                position: 3
            })
        );
        // A multi-byte character counts as one character and is not a digit.
        assert_eq!(
            decode_hex::<2>("éabc"),
            Err(HexProblem::NotHex {
                expected: 4,
                position: 1
            })
        );
    }
}

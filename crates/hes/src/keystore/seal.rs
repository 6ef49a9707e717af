//! Sealing one meter's credentials under the master key, for storage at rest.
//!
//! A sealed blob is `0x01 ‖ nonce (12 bytes, random per seal) ‖ AES-256-GCM ciphertext ‖ tag
//! (16 bytes)`. The associated data binds the blob to its meter and key version:
//! `"urja/sealed-credentials/1" ‖ 0x00 ‖ version (u32, big-endian) ‖ serial length (1 byte) ‖
//! serial`, so a blob copied to another meter's record or another key version does not open.
//!
//! The plaintext (format 1) is binary, fixed fields first:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | plaintext format, 1 |
//! | 8 | system title |
//! | 16 | global unicast encryption key |
//! | 16 | global authentication key |
//! | 16 | HLS secret, utility settings (client 48) |
//! | 16 | HLS secret, firmware (client 80) |
//! | 1 | 1 when a master key (KEK) follows, else 0 |
//! | 0 or 16 | master key (KEK) |
//! | rest | LLS secret of the meter reader (client 32), possibly empty |
//!
//! Anything that does not open, for whatever reason, is [`KeyStoreError::Unseal`] with no more
//! detail than the meter's serial.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use dlms::security::GlobalKeys;
use model::MeterSerial;
use zeroize::Zeroizing;

use super::{KeyStoreError, MasterKey};
use crate::MeterCredentials;

const BLOB_FORMAT: u8 = 1;
const PLAINTEXT_FORMAT: u8 = 1;
const AAD_LABEL: &[u8] = b"urja/sealed-credentials/1";
const NONCE_LEN: usize = 12;

fn associated_data(meter: &MeterSerial, version: u32) -> Vec<u8> {
    let serial = meter.as_str().as_bytes();
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 6 + serial.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.push(0);
    aad.extend_from_slice(&version.to_be_bytes());
    // A serial is at most `MeterSerial::MAX_LEN` (32) bytes, so its length fits a byte; the
    // saturation only matters if that limit ever grows past 255.
    aad.push(u8::try_from(serial.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(serial);
    aad
}

fn encode(credentials: &MeterCredentials) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(
        1 + 8 + 4 * 16 + 1 + 16 + credentials.lls_secret.len(),
    ));
    out.push(PLAINTEXT_FORMAT);
    out.extend_from_slice(&credentials.system_title);
    out.extend_from_slice(&credentials.global_keys.encryption);
    out.extend_from_slice(&credentials.global_keys.authentication);
    out.extend_from_slice(&credentials.hls_utility);
    out.extend_from_slice(&credentials.hls_firmware);
    match &credentials.master_key {
        Some(kek) => {
            out.push(1);
            out.extend_from_slice(kek);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&credentials.lls_secret);
    out
}

fn take<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

fn decode(plaintext: &[u8]) -> Option<MeterCredentials> {
    let mut rest = plaintext;
    let [format] = take::<1>(&mut rest)?;
    if format != PLAINTEXT_FORMAT {
        return None;
    }
    let system_title = take::<8>(&mut rest)?;
    let encryption = take::<16>(&mut rest)?;
    let authentication = take::<16>(&mut rest)?;
    let hls_utility = take::<16>(&mut rest)?;
    let hls_firmware = take::<16>(&mut rest)?;
    let master_key = match take::<1>(&mut rest)? {
        [0] => None,
        [1] => Some(take::<16>(&mut rest)?),
        _ => return None,
    };
    Some(MeterCredentials {
        system_title,
        global_keys: GlobalKeys {
            encryption,
            authentication,
        },
        lls_secret: rest.to_vec(),
        hls_utility,
        hls_firmware,
        master_key,
    })
}

/// Seals `credentials` of `meter` at key `version` under the master key. Fails only when the
/// operating system cannot supply random bytes for the nonce.
pub fn seal(
    master: &MasterKey,
    meter: &MeterSerial,
    version: u32,
    credentials: &MeterCredentials,
) -> Result<Vec<u8>, KeyStoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| KeyStoreError::Random(e.to_string()))?;
    let cipher = Aes256Gcm::new(master.bytes().into());
    let plaintext = encode(credentials);
    let aad = associated_data(meter, version);
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        // AES-GCM refuses only messages over 64 GiB.
        .map_err(|_| KeyStoreError::Random("credentials too long to seal".into()))?;
    let mut blob = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    blob.push(BLOB_FORMAT);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&ciphertext);
    Ok(blob)
}

/// Opens credentials sealed by [`seal`] for the same meter and key version.
pub fn open(
    master: &MasterKey,
    meter: &MeterSerial,
    version: u32,
    sealed: &[u8],
) -> Result<MeterCredentials, KeyStoreError> {
    let unseal = || KeyStoreError::Unseal {
        meter: meter.clone(),
    };
    let mut rest = sealed;
    let [format] = take::<1>(&mut rest).ok_or_else(unseal)?;
    let nonce = take::<NONCE_LEN>(&mut rest).ok_or_else(unseal)?;
    if format != BLOB_FORMAT {
        return Err(unseal());
    }
    let cipher = Aes256Gcm::new(master.bytes().into());
    let aad = associated_data(meter, version);
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: rest,
                    aad: &aad,
                },
            )
            .map_err(|_| unseal())?,
    );
    decode(&plaintext).ok_or_else(unseal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(master_key: Option<[u8; 16]>, lls: &[u8]) -> MeterCredentials {
        MeterCredentials {
            system_title: *b"URJ\x00\x98\x96\x81\x01",
            global_keys: GlobalKeys {
                encryption: [1; 16],
                authentication: [2; 16],
            },
            lls_secret: lls.to_vec(),
            hls_utility: [3; 16],
            hls_firmware: [4; 16],
            master_key,
        }
    }

    #[test]
    fn plaintext_round_trips_with_and_without_optional_parts() {
        for c in [
            credentials(Some([5; 16]), b"abcdefgh"),
            credentials(None, b""),
            credentials(None, b"\x00\x01"),
        ] {
            assert_eq!(decode(&encode(&c)), Some(c));
        }
        let mut bad = encode(&credentials(None, b"x")).to_vec();
        bad[73] = 2; // the master-key flag
        assert_eq!(decode(&bad), None);
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[PLAINTEXT_FORMAT, 0]), None);
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let master = MasterKey::from_bytes([9; 32]);
        let meter = MeterSerial::new("URJ10000001").unwrap();
        let c = credentials(None, b"pw");
        assert_ne!(
            seal(&master, &meter, 1, &c).unwrap(),
            seal(&master, &meter, 1, &c).unwrap()
        );
    }
}

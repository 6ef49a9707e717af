//! Security suite 0 transformation: AES-GCM-128 with a 12-byte tag over `SC ‖ IC ‖ payload`.
//!
//! IV = system title (8) ‖ invocation counter (4, big-endian). With authentication only, the
//! AAD is `SC ‖ AK ‖ plaintext` and the plaintext travels in clear; with encryption only there
//! is no tag; with both, the AAD is `SC ‖ AK`. [`Suite0Cipher`] expands the key once and is
//! reused for every APDU.

use aes::Aes128;
use aes_gcm::AesGcm;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};

use super::{GlobalKeys, HEADER_LEN, SecurityControl, SecurityError, SecurityPolicy, SystemTitle};

/// Length of the truncated GCM tag DLMS uses.
pub const TAG_LEN: usize = 12;

type Aes128Gcm12 = AesGcm<Aes128, U12, U12>;

/// An AES-GCM-128 key schedule for one encryption key (global or dedicated), with the
/// authentication key that goes into the AAD. Build it once per key; `Debug` shows no key.
#[derive(Clone)]
pub struct Suite0Cipher {
    gcm: Aes128Gcm12,
    authentication_key: [u8; 16],
}

impl std::fmt::Debug for Suite0Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Suite0Cipher { keys: <redacted> }")
    }
}

/// A verified (and deciphered) payload with its security header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    pub security_control: SecurityControl,
    pub invocation_counter: u32,
    pub plaintext: Vec<u8>,
}

fn iv(system_title: &SystemTitle, invocation_counter: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(system_title);
    iv[8..].copy_from_slice(&invocation_counter.to_be_bytes());
    iv
}

fn too_long(_: aes_gcm::aead::Error) -> SecurityError {
    SecurityError::Unsupported("a payload longer than AES-GCM allows")
}

impl Suite0Cipher {
    /// The cipher for the global unicast keys.
    pub fn new(keys: &GlobalKeys) -> Self {
        Self::with_keys(&keys.encryption, &keys.authentication)
    }

    /// The cipher for any block cipher key (e.g. a dedicated key) and authentication key.
    pub fn with_keys(encryption_key: &[u8; 16], authentication_key: &[u8; 16]) -> Self {
        Suite0Cipher {
            gcm: Aes128Gcm12::new(GenericArray::from_slice(encryption_key)),
            authentication_key: *authentication_key,
        }
    }

    /// `SC ‖ AK`, the AAD prefix.
    fn aad_prefix(&self, sc: SecurityControl) -> [u8; 17] {
        let mut aad = [0u8; 17];
        aad[0] = sc.0;
        aad[1..].copy_from_slice(&self.authentication_key);
        aad
    }

    /// Protects `plaintext`, giving `SC ‖ IC ‖ payload ‖ tag` (no tag when encryption only).
    pub fn encrypt(
        &self,
        security_control: SecurityControl,
        system_title: &SystemTitle,
        invocation_counter: u32,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SecurityError> {
        let mut out = Vec::new();
        self.encrypt_into(
            security_control,
            system_title,
            invocation_counter,
            plaintext,
            &mut out,
        )?;
        Ok(out)
    }

    /// As [`Suite0Cipher::encrypt`], appending to `out` (so an envelope header can precede it
    /// without another copy).
    pub fn encrypt_into(
        &self,
        security_control: SecurityControl,
        system_title: &SystemTitle,
        invocation_counter: u32,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SecurityError> {
        security_control.check_supported()?;
        let nonce = iv(system_title, invocation_counter);
        let nonce = GenericArray::from_slice(&nonce);
        out.reserve(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(security_control.0);
        out.extend_from_slice(&invocation_counter.to_be_bytes());
        let start = out.len();
        out.extend_from_slice(plaintext);
        match security_control.policy() {
            SecurityPolicy::Authenticated => {
                let mut aad = Vec::with_capacity(17 + plaintext.len());
                aad.extend_from_slice(&self.aad_prefix(security_control));
                aad.extend_from_slice(plaintext);
                let tag = self
                    .gcm
                    .encrypt_in_place_detached(nonce, &aad, &mut [])
                    .map_err(too_long)?;
                out.extend_from_slice(&tag);
            }
            SecurityPolicy::Encrypted => {
                // GCM's keystream does not depend on the AAD; the tag is not sent.
                let body = &mut out[start..];
                self.gcm
                    .encrypt_in_place_detached(nonce, &[], body)
                    .map_err(too_long)?;
            }
            SecurityPolicy::AuthenticatedEncrypted => {
                let aad = self.aad_prefix(security_control);
                let body = &mut out[start..];
                let tag = self
                    .gcm
                    .encrypt_in_place_detached(nonce, &aad, body)
                    .map_err(too_long)?;
                out.extend_from_slice(&tag);
            }
            SecurityPolicy::None => return Err(SecurityError::NoProtection(security_control.0)),
        }
        Ok(())
    }

    /// Verifies and deciphers `SC ‖ IC ‖ payload ‖ tag`. Does not check the counter against
    /// replay: see [`super::ReplayGuard`] and [`super::unprotect`].
    pub fn decrypt(
        &self,
        system_title: &SystemTitle,
        protected: &[u8],
    ) -> Result<Decrypted, SecurityError> {
        let (security_control, invocation_counter) = read_header(protected)?;
        let mut plaintext = protected.get(HEADER_LEN..).unwrap_or_default().to_vec();
        let len = self.open(
            security_control,
            system_title,
            invocation_counter,
            &mut plaintext,
        )?;
        plaintext.truncate(len);
        Ok(Decrypted {
            security_control,
            invocation_counter,
            plaintext,
        })
    }

    /// Verifies and deciphers `SC ‖ IC ‖ payload ‖ tag` in place; the plaintext is then
    /// `buf[HEADER_LEN..HEADER_LEN + len]`. Returns the header and `len`.
    pub fn decrypt_in_place(
        &self,
        system_title: &SystemTitle,
        buf: &mut [u8],
    ) -> Result<(SecurityControl, u32, usize), SecurityError> {
        let (sc, ic) = read_header(buf)?;
        let body = buf.get_mut(HEADER_LEN..).unwrap_or_default();
        let len = self.open(sc, system_title, ic, body)?;
        Ok((sc, ic, len))
    }

    /// Verifies and deciphers `payload ‖ tag` in place; returns the plaintext length.
    pub(crate) fn open(
        &self,
        sc: SecurityControl,
        system_title: &SystemTitle,
        invocation_counter: u32,
        body: &mut [u8],
    ) -> Result<usize, SecurityError> {
        sc.check_supported()?;
        let nonce = iv(system_title, invocation_counter);
        let nonce = GenericArray::from_slice(&nonce);
        let policy = sc.policy();
        if policy == SecurityPolicy::Encrypted {
            // No tag: applying the same keystream again deciphers.
            self.gcm
                .encrypt_in_place_detached(nonce, &[], body)
                .map_err(too_long)?;
            return Ok(body.len());
        }
        let Some(len) = body.len().checked_sub(TAG_LEN) else {
            return Err(SecurityError::Malformed(
                crate::codec::DecodeError::UnexpectedEnd {
                    what: "authentication tag",
                    needed: TAG_LEN - body.len(),
                    at: HEADER_LEN + body.len(),
                },
            ));
        };
        let (payload, tag) = body.split_at_mut(len);
        let tag = GenericArray::from_slice(tag);
        match policy {
            SecurityPolicy::Authenticated => {
                let mut aad = Vec::with_capacity(17 + payload.len());
                aad.extend_from_slice(&self.aad_prefix(sc));
                aad.extend_from_slice(payload);
                self.gcm
                    .decrypt_in_place_detached(nonce, &aad, &mut [], tag)
                    .map_err(|_| SecurityError::AuthenticationFailed)?;
            }
            _ => {
                let aad = self.aad_prefix(sc);
                if self
                    .gcm
                    .decrypt_in_place_detached(nonce, &aad, payload, tag)
                    .is_err()
                {
                    // Whatever the AEAD leaves in the buffer on failure, the caller's buffer
                    // holds nothing derived from unauthenticated input.
                    payload.fill(0);
                    return Err(SecurityError::AuthenticationFailed);
                }
            }
        }
        Ok(len)
    }

    /// The 12-byte GMAC of `SC ‖ AK ‖ data` (no plaintext), as HLS mechanism 5 uses it.
    pub fn gmac(
        &self,
        security_control: SecurityControl,
        system_title: &SystemTitle,
        invocation_counter: u32,
        data: &[u8],
    ) -> [u8; TAG_LEN] {
        let nonce = iv(system_title, invocation_counter);
        let mut aad = Vec::with_capacity(17 + data.len());
        aad.extend_from_slice(&self.aad_prefix(security_control));
        aad.extend_from_slice(data);
        let mut out = [0u8; TAG_LEN];
        // Fails only for inputs beyond 2^36 bytes, which a challenge never is.
        if let Ok(tag) =
            self.gcm
                .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &aad, &mut [])
        {
            out.copy_from_slice(&tag);
        }
        out
    }
}

/// Reads `SC ‖ IC` from the start of `bytes`.
pub(crate) fn read_header(bytes: &[u8]) -> Result<(SecurityControl, u32), SecurityError> {
    let mut r = crate::codec::Reader::new(bytes);
    let sc = SecurityControl(r.u8("security control byte")?);
    let ic = r.u32("invocation counter")?;
    Ok((sc, ic))
}

//! HLS passes 3 and 4: computing f(challenge) for the peer's challenge and checking the peer's
//! f(own challenge).
//!
//! - Mechanism 2 (IS 15959 meters, Gurux `Authentication.HIGH`): f(c) = AES-128-ECB under the
//!   HLS secret of `c` zero-padded to a multiple of 16 bytes, each block on its own.
//! - Mechanism 5 (HLS-GMAC): f(c) = `SC ‖ IC ‖ GMAC(SC ‖ AK ‖ c)` with SC = 0x10, under the
//!   encryption key, IV = the responder's own system title ‖ IC.

use std::ops::RangeInclusive;

use aes::Aes128;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};

use super::gcm::TAG_LEN;
use super::{SecurityControl, SecurityError, Suite0Cipher, SystemTitle, constant_time_eq};
use crate::apdu::Mechanism;

/// Allowed challenge lengths (CtoS and StoC).
pub const CHALLENGE_LEN: RangeInclusive<usize> = 8..=64;

/// The HLS secret of mechanism 2 (a 16-byte AES key). `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct HlsSecret([u8; 16]);

impl HlsSecret {
    pub fn new(key: [u8; 16]) -> Self {
        HlsSecret(key)
    }

    /// A secret of up to 16 bytes, zero-padded to 16 (as Gurux pads a shorter password).
    pub fn from_slice(secret: &[u8]) -> Result<Self, SecurityError> {
        let mut key = [0u8; 16];
        key.get_mut(..secret.len())
            .ok_or(SecurityError::SecretLength(secret.len()))?
            .copy_from_slice(secret);
        Ok(HlsSecret(key))
    }
}

impl std::fmt::Debug for HlsSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HlsSecret(<redacted>)")
    }
}

/// The HLS mechanism in use, with the key it needs.
#[derive(Debug, Clone, Copy)]
pub enum Hls<'a> {
    /// Mechanism 2 with the HLS secret.
    Mechanism2(&'a HlsSecret),
    /// Mechanism 5 (GMAC) with the global encryption and authentication keys.
    Mechanism5(&'a Suite0Cipher),
}

impl Hls<'_> {
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Hls::Mechanism2(_) => Mechanism::Hls,
            Hls::Mechanism5(_) => Mechanism::HlsGmac,
        }
    }
}

/// SC of an HLS-GMAC response: authentication only, suite 0.
const GMAC_SC: SecurityControl = SecurityControl(SecurityControl::AUTHENTICATION);
/// Length of an HLS-GMAC response: SC ‖ IC ‖ tag.
const GMAC_RESPONSE_LEN: usize = 1 + 4 + TAG_LEN;

fn check_challenge(challenge: &[u8]) -> Result<(), SecurityError> {
    if CHALLENGE_LEN.contains(&challenge.len()) {
        Ok(())
    } else {
        Err(SecurityError::ChallengeLength(challenge.len()))
    }
}

fn mechanism2(secret: &HlsSecret, challenge: &[u8]) -> Vec<u8> {
    let aes = Aes128::new(GenericArray::from_slice(&secret.0));
    let padded = challenge.len().div_ceil(16) * 16;
    let mut out = Vec::with_capacity(padded);
    out.extend_from_slice(challenge);
    out.resize(padded, 0);
    for block in out.chunks_exact_mut(16) {
        aes.encrypt_block(GenericArray::from_mut_slice(block));
    }
    out
}

/// Pass 3 (client, over StoC) or pass 4 (server, over CtoS): f(challenge) for the peer.
///
/// `own_system_title` and `invocation_counter` are used by mechanism 5 only: take the counter
/// from the sender's [`super::InvocationCounter`].
pub fn hls_response(
    hls: Hls<'_>,
    challenge: &[u8],
    own_system_title: &SystemTitle,
    invocation_counter: u32,
) -> Result<Vec<u8>, SecurityError> {
    check_challenge(challenge)?;
    match hls {
        Hls::Mechanism2(secret) => Ok(mechanism2(secret, challenge)),
        Hls::Mechanism5(cipher) => {
            let tag = cipher.gmac(GMAC_SC, own_system_title, invocation_counter, challenge);
            let mut out = Vec::with_capacity(GMAC_RESPONSE_LEN);
            out.push(GMAC_SC.0);
            out.extend_from_slice(&invocation_counter.to_be_bytes());
            out.extend_from_slice(&tag);
            Ok(out)
        }
    }
}

/// Checks the peer's `response` to our `challenge`. For mechanism 5, `peer_system_title` is the
/// responder's system title (from the AARQ calling-AP-title or the AARE responding-AP-title).
pub fn hls_verify(
    hls: Hls<'_>,
    challenge: &[u8],
    response: &[u8],
    peer_system_title: &SystemTitle,
) -> Result<(), SecurityError> {
    check_challenge(challenge)?;
    let expected = match hls {
        Hls::Mechanism2(secret) => mechanism2(secret, challenge),
        Hls::Mechanism5(_) => {
            let ic =
                gmac_invocation_counter(response).ok_or(SecurityError::AuthenticationFailed)?;
            hls_response(hls, challenge, peer_system_title, ic)?
        }
    };
    if constant_time_eq(&expected, response) {
        Ok(())
    } else {
        Err(SecurityError::AuthenticationFailed)
    }
}

/// The invocation counter inside an HLS-GMAC response (`SC ‖ IC ‖ tag`), if it is well formed.
pub fn gmac_invocation_counter(response: &[u8]) -> Option<u32> {
    if response.len() != GMAC_RESPONSE_LEN || response.first() != Some(&GMAC_SC.0) {
        return None;
    }
    let ic: [u8; 4] = response.get(1..5)?.try_into().ok()?;
    Some(u32::from_be_bytes(ic))
}

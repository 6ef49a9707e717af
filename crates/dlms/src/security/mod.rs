//! DLMS/COSEM security suite 0: AES-GCM-128 protection of xDLMS APDUs, the ciphered APDU
//! envelopes (glo-/ded-/general-glo-/general-ded-ciphering), invocation counters with replay
//! rejection, and HLS authentication (mechanism 2 as IS 15959 meters use it, mechanism 5 GMAC).
//!
//! Sans-IO like the rest of the crate: no clock and no randomness source. Challenges and
//! invocation counter values are handed in; the application owns and persists the counters.
//!
//! - [`SecurityControl`] / [`SecurityPolicy`]: the security control byte;
//! - [`Suite0Cipher`]: a key schedule built once per key pair, with `encrypt` / `decrypt`;
//! - [`CipheredApdu`], [`protect`], [`unprotect`]: the envelopes around a plaintext APDU;
//! - [`InvocationCounter`] (sender) and [`ReplayGuard`] (receiver);
//! - [`hls_response`] / [`hls_verify`]: HLS passes 3 and 4.

mod counter;
mod envelope;
mod gcm;
mod hls;

pub use counter::{InvocationCounter, ReplayGuard};
pub use envelope::{
    CipheredApdu, Envelope, Unprotected, ciphered_tag, plain_tag, protect, protect_into, unprotect,
};
pub use gcm::{Decrypted, Suite0Cipher, TAG_LEN};
pub use hls::{CHALLENGE_LEN, Hls, HlsSecret, gmac_invocation_counter, hls_response, hls_verify};

use crate::codec::DecodeError;

/// An 8-byte system title (3-byte manufacturer id then a 5-byte serial, by convention).
pub type SystemTitle = [u8; 8];

/// Length of the security header: SC (1) ‖ IC (4).
pub const HEADER_LEN: usize = 5;

/// Why protection or verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    /// The GMAC tag (or HLS response) does not match: wrong key, wrong system title, or the
    /// data was altered.
    #[error("authentication failed")]
    AuthenticationFailed,
    #[error("security suite {0} is not supported (only suite 0, AES-GCM-128)")]
    UnsupportedSuite(u8),
    #[error("{0} is not supported")]
    Unsupported(&'static str),
    /// The security control byte asks for neither authentication nor encryption.
    #[error("security control byte 0x{0:02x} applies no protection")]
    NoProtection(u8),
    /// The received APDU is protected less than the association requires.
    #[error("received {received:?} protection, but {required:?} is required")]
    PolicyViolation {
        required: SecurityPolicy,
        received: SecurityPolicy,
    },
    #[error("malformed ciphered APDU: {0}")]
    Malformed(#[from] DecodeError),
    /// The invocation counter was not greater than the last one accepted from this peer.
    #[error("replayed invocation counter {received} (last accepted {last})")]
    Replayed { received: u32, last: u32 },
    /// The sender's invocation counter reached u32::MAX: new keys are needed.
    #[error("invocation counter exhausted; the keys must be changed")]
    CounterExhausted,
    /// This plaintext APDU tag has no ciphered form with the chosen envelope.
    #[error("APDU tag 0x{tag:02x} cannot be carried in a {envelope:?} envelope")]
    NotCipherable { tag: u8, envelope: Envelope },
    #[error("system title mismatch: the APDU names a different sender")]
    SystemTitleMismatch,
    #[error("system title must be 8 bytes, got {0}")]
    BadSystemTitle(usize),
    /// HLS challenges are 8 to 64 bytes.
    #[error("HLS challenge of {0} bytes (must be 8 to 64)")]
    ChallengeLength(usize),
    #[error("HLS secret of {0} bytes (at most 16)")]
    SecretLength(usize),
}

/// What protection an APDU carries (or an association requires), from the security control
/// byte's authentication and encryption bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecurityPolicy {
    None,
    Authenticated,
    Encrypted,
    AuthenticatedEncrypted,
}

impl SecurityPolicy {
    pub fn authenticated(self) -> bool {
        matches!(
            self,
            SecurityPolicy::Authenticated | SecurityPolicy::AuthenticatedEncrypted
        )
    }

    pub fn encrypted(self) -> bool {
        matches!(
            self,
            SecurityPolicy::Encrypted | SecurityPolicy::AuthenticatedEncrypted
        )
    }

    /// Whether an APDU protected with `self` meets a `required` policy: every protection the
    /// requirement asks for is applied.
    pub fn satisfies(self, required: SecurityPolicy) -> bool {
        (self.authenticated() || !required.authenticated())
            && (self.encrypted() || !required.encrypted())
    }
}

/// The security control byte: suite id (bits 0–3), authentication (bit 4), encryption (bit 5),
/// broadcast key (bit 6), compression (bit 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecurityControl(pub u8);

impl SecurityControl {
    pub const AUTHENTICATION: u8 = 0x10;
    pub const ENCRYPTION: u8 = 0x20;
    pub const BROADCAST_KEY: u8 = 0x40;
    pub const COMPRESSION: u8 = 0x80;

    /// Suite 0 with the given policy, unicast key, no compression.
    pub const fn new(policy: SecurityPolicy) -> Self {
        SecurityControl(match policy {
            SecurityPolicy::None => 0,
            SecurityPolicy::Authenticated => Self::AUTHENTICATION,
            SecurityPolicy::Encrypted => Self::ENCRYPTION,
            SecurityPolicy::AuthenticatedEncrypted => Self::AUTHENTICATION | Self::ENCRYPTION,
        })
    }

    pub fn suite(self) -> u8 {
        self.0 & 0x0f
    }

    pub fn authenticated(self) -> bool {
        self.0 & Self::AUTHENTICATION != 0
    }

    pub fn encrypted(self) -> bool {
        self.0 & Self::ENCRYPTION != 0
    }

    pub fn broadcast_key(self) -> bool {
        self.0 & Self::BROADCAST_KEY != 0
    }

    pub fn compressed(self) -> bool {
        self.0 & Self::COMPRESSION != 0
    }

    pub fn policy(self) -> SecurityPolicy {
        match (self.authenticated(), self.encrypted()) {
            (false, false) => SecurityPolicy::None,
            (true, false) => SecurityPolicy::Authenticated,
            (false, true) => SecurityPolicy::Encrypted,
            (true, true) => SecurityPolicy::AuthenticatedEncrypted,
        }
    }

    /// Checks that this implementation can process the byte: suite 0, no compression, no
    /// broadcast key, and some protection applied.
    pub fn check_supported(self) -> Result<(), SecurityError> {
        if self.suite() != 0 {
            return Err(SecurityError::UnsupportedSuite(self.suite()));
        }
        if self.compressed() {
            return Err(SecurityError::Unsupported("compression"));
        }
        if self.broadcast_key() {
            return Err(SecurityError::Unsupported("broadcast key"));
        }
        if self.policy() == SecurityPolicy::None {
            return Err(SecurityError::NoProtection(self.0));
        }
        Ok(())
    }
}

impl From<SecurityPolicy> for SecurityControl {
    fn from(policy: SecurityPolicy) -> Self {
        SecurityControl::new(policy)
    }
}

/// The global unicast encryption key (EK) and authentication key (AK). `Debug` redacts both.
#[derive(Clone, PartialEq, Eq)]
pub struct GlobalKeys {
    pub encryption: [u8; 16],
    pub authentication: [u8; 16],
}

impl std::fmt::Debug for GlobalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalKeys")
            .field("encryption", &"<redacted>")
            .field("authentication", &"<redacted>")
            .finish()
    }
}

/// Equality that takes the same time wherever the inputs differ (for tags and HLS responses).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_control_bits() {
        let sc = SecurityControl(0x30);
        assert_eq!(sc.policy(), SecurityPolicy::AuthenticatedEncrypted);
        assert_eq!(sc.suite(), 0);
        assert_eq!(SecurityControl::new(SecurityPolicy::Authenticated).0, 0x10);
        assert_eq!(SecurityControl::new(SecurityPolicy::Encrypted).0, 0x20);
        assert_eq!(
            SecurityControl(0x31).check_supported(),
            Err(SecurityError::UnsupportedSuite(1))
        );
        assert_eq!(
            SecurityControl(0x00).check_supported(),
            Err(SecurityError::NoProtection(0))
        );
        assert!(SecurityControl(0xb0).check_supported().is_err());
        assert!(SecurityControl(0x70).check_supported().is_err());
    }

    #[test]
    fn policy_satisfaction() {
        use SecurityPolicy::*;
        assert!(AuthenticatedEncrypted.satisfies(Authenticated));
        assert!(Authenticated.satisfies(Authenticated));
        assert!(!Encrypted.satisfies(Authenticated));
        assert!(!Authenticated.satisfies(AuthenticatedEncrypted));
        assert!(Encrypted.satisfies(None));
    }

    #[test]
    fn keys_are_redacted_in_debug() {
        let keys = GlobalKeys {
            encryption: [0xAB; 16],
            authentication: [0xCD; 16],
        };
        let shown = format!("{keys:?}");
        // `[u8]` would print as decimal: 0xAB = 171, 0xCD = 205.
        assert!(!shown.contains("171") && !shown.contains("205"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}

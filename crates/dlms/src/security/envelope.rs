//! Ciphered APDU envelopes: service-specific glo-/ded-ciphering (`tag ‖ len ‖ SC ‖ IC ‖ …`) and
//! general-glo-/general-ded-ciphering (`tag ‖ system-title ‖ len ‖ SC ‖ IC ‖ …`).
//!
//! [`CipheredApdu::decode`] parses an envelope without keys (for routing and fuzzing);
//! [`protect`] builds one around a plaintext APDU; [`unprotect`] verifies it, checks the
//! invocation counter against replay and gives back the plaintext APDU bytes.

use crate::codec::{DecodeError, Reader, put_length, put_octets};

use super::gcm::{TAG_LEN, read_header};
use super::{
    HEADER_LEN, InvocationCounter, ReplayGuard, SecurityControl, SecurityError, SecurityPolicy,
    Suite0Cipher, SystemTitle,
};

/// Which envelope carries a protected APDU. `Glo`/`GeneralGlo` use the global key,
/// `Ded`/`GeneralDed` the dedicated key of the association.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Envelope {
    /// Service-specific global ciphering (glo-get-request 0xC8, glo-initiateRequest 0x21, …).
    Glo,
    /// Service-specific dedicated ciphering (ded-get-request 0xD0, …).
    Ded,
    /// general-glo-ciphering (0xDB): carries the sender's system title; any APDU fits.
    GeneralGlo,
    /// general-ded-ciphering (0xDC).
    GeneralDed,
}

impl Envelope {
    pub const GENERAL_GLO_TAG: u8 = 0xDB;
    pub const GENERAL_DED_TAG: u8 = 0xDC;

    pub fn is_dedicated(self) -> bool {
        matches!(self, Envelope::Ded | Envelope::GeneralDed)
    }

    pub fn is_general(self) -> bool {
        matches!(self, Envelope::GeneralGlo | Envelope::GeneralDed)
    }
}

/// (plaintext tag, glo- tag, ded- tag), Green Book COSEMpdu CHOICE.
const SERVICE_TAGS: [(u8, u8, u8); 16] = [
    (0x01, 33, 65),   // initiateRequest
    (0x05, 37, 69),   // readRequest
    (0x06, 38, 70),   // writeRequest
    (0x08, 40, 72),   // initiateResponse
    (0x0C, 44, 76),   // readResponse
    (0x0D, 45, 77),   // writeResponse
    (0x0E, 46, 78),   // confirmedServiceError
    (0x16, 54, 86),   // unconfirmedWriteRequest
    (0x18, 56, 88),   // informationReportRequest
    (0xC0, 200, 208), // get-request
    (0xC1, 201, 209), // set-request
    (0xC2, 202, 210), // event-notification-request
    (0xC3, 203, 211), // action-request
    (0xC4, 204, 212), // get-response
    (0xC5, 205, 213), // set-response
    (0xC7, 207, 215), // action-response
];

/// The envelope tag for a plaintext APDU tag: the glo-/ded- service tag, or 0xDB/0xDC for the
/// general envelopes (which carry any APDU). `None` when the service has no such form.
pub fn ciphered_tag(plain_tag: u8, envelope: Envelope) -> Option<u8> {
    let row = SERVICE_TAGS
        .iter()
        .find(|(plain, _, _)| *plain == plain_tag);
    match envelope {
        Envelope::Glo => row.map(|(_, glo, _)| *glo),
        Envelope::Ded => row.map(|(_, _, ded)| *ded),
        Envelope::GeneralGlo => Some(Envelope::GENERAL_GLO_TAG),
        Envelope::GeneralDed => Some(Envelope::GENERAL_DED_TAG),
    }
}

/// The plaintext APDU tag a service-specific envelope tag carries, and whether it is glo or
/// ded. `None` for the general envelopes (their content says) and for non-ciphered tags.
pub fn plain_tag(ciphered_tag: u8) -> Option<(u8, Envelope)> {
    SERVICE_TAGS.iter().find_map(|&(plain, glo, ded)| {
        if ciphered_tag == glo {
            Some((plain, Envelope::Glo))
        } else if ciphered_tag == ded {
            Some((plain, Envelope::Ded))
        } else {
            None
        }
    })
}

/// A parsed envelope, borrowing the input. Nothing is verified yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipheredApdu<'a> {
    pub envelope: Envelope,
    /// The envelope tag (e.g. 0xC8, 0xDB).
    pub tag: u8,
    /// For the general envelopes: the sender's system title as carried (may be empty).
    pub system_title: Option<&'a [u8]>,
    pub security_control: SecurityControl,
    pub invocation_counter: u32,
    /// The ciphered content: `SC ‖ IC ‖ payload ‖ tag`.
    pub content: &'a [u8],
}

impl<'a> CipheredApdu<'a> {
    /// Whether `tag` starts a ciphered APDU this module understands.
    pub fn is_ciphered_tag(tag: u8) -> bool {
        tag == Envelope::GENERAL_GLO_TAG
            || tag == Envelope::GENERAL_DED_TAG
            || plain_tag(tag).is_some()
    }

    /// Parses a whole envelope (no trailing bytes allowed).
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let at = r.position();
        let tag = r.u8("ciphered APDU tag")?;
        let (envelope, system_title) = match tag {
            Envelope::GENERAL_GLO_TAG => (
                Envelope::GeneralGlo,
                Some(r.octets("general-ciphering system title")?),
            ),
            Envelope::GENERAL_DED_TAG => (
                Envelope::GeneralDed,
                Some(r.octets("general-ciphering system title")?),
            ),
            _ => match plain_tag(tag) {
                Some((_, envelope)) => (envelope, None),
                None => {
                    return Err(DecodeError::UnknownTag {
                        what: "ciphered APDU",
                        tag,
                        at,
                    });
                }
            },
        };
        let content = r.octets("ciphered content")?;
        r.finish("ciphered APDU")?;
        let mut header = Reader::new(content);
        let security_control = SecurityControl(header.u8("security control byte")?);
        let invocation_counter = header.u32("invocation counter")?;
        Ok(CipheredApdu {
            envelope,
            tag,
            system_title,
            security_control,
            invocation_counter,
            content,
        })
    }

    /// The plaintext APDU tag a service-specific envelope promises (`None` for general ones).
    pub fn plain_tag(&self) -> Option<u8> {
        plain_tag(self.tag).map(|(plain, _)| plain)
    }

    /// The payload after the security header: ciphertext (or plaintext) then the tag, if any.
    pub fn payload(&self) -> &'a [u8] {
        self.content.get(HEADER_LEN..).unwrap_or_default()
    }
}

/// A verified, deciphered APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unprotected {
    pub envelope: Envelope,
    pub security_control: SecurityControl,
    pub invocation_counter: u32,
    /// The plaintext APDU bytes (e.g. starting 0xC4 for a get-response).
    pub apdu: Vec<u8>,
}

/// Wraps `plain_apdu` in the chosen envelope, protected as `security_control` says, with the
/// next value of the sender's `counter` and the sender's own system title.
pub fn protect(
    plain_apdu: &[u8],
    envelope: Envelope,
    security_control: SecurityControl,
    cipher: &Suite0Cipher,
    own_system_title: &SystemTitle,
    counter: &mut InvocationCounter,
) -> Result<Vec<u8>, SecurityError> {
    let mut out = Vec::new();
    protect_into(
        &mut out,
        plain_apdu,
        envelope,
        security_control,
        cipher,
        own_system_title,
        counter,
    )?;
    Ok(out)
}

/// As [`protect`], appending to `out`.
pub fn protect_into(
    out: &mut Vec<u8>,
    plain_apdu: &[u8],
    envelope: Envelope,
    security_control: SecurityControl,
    cipher: &Suite0Cipher,
    own_system_title: &SystemTitle,
    counter: &mut InvocationCounter,
) -> Result<(), SecurityError> {
    let first = *plain_apdu.first().ok_or(DecodeError::UnexpectedEnd {
        what: "plaintext APDU",
        needed: 1,
        at: 0,
    })?;
    let tag = ciphered_tag(first, envelope).ok_or(SecurityError::NotCipherable {
        tag: first,
        envelope,
    })?;
    security_control.check_supported()?;
    let tag_len = if security_control.authenticated() {
        TAG_LEN
    } else {
        0
    };
    let content_len = HEADER_LEN + plain_apdu.len() + tag_len;
    let invocation_counter = counter.take()?;
    out.reserve(content_len + 16);
    out.push(tag);
    if envelope.is_general() {
        put_octets(out, own_system_title);
    }
    put_length(out, content_len);
    cipher.encrypt_into(
        security_control,
        own_system_title,
        invocation_counter,
        plain_apdu,
        out,
    )
}

/// Verifies an envelope from a peer whose system title is `peer_system_title`, requires at least
/// the `required` protection, rejects a replayed invocation counter, and returns the plaintext
/// APDU. Pass the cipher holding the key the envelope names ([`Envelope::is_dedicated`]).
///
/// `replay` records the counter only once the APDU is verified, and only when it was
/// *authenticated* (its security control has the authentication bit): the counter of an
/// encryption-only APDU is checked against replay but not recorded, because anyone can forge
/// one (no tag), and recording a forged `u32::MAX` would lock the real peer out for good.
pub fn unprotect(
    bytes: &[u8],
    cipher: &Suite0Cipher,
    peer_system_title: &SystemTitle,
    required: SecurityPolicy,
    replay: &mut ReplayGuard,
) -> Result<Unprotected, SecurityError> {
    let envelope = CipheredApdu::decode(bytes)?;
    if let Some(title) = envelope.system_title.filter(|t| !t.is_empty()) {
        if title.len() != 8 {
            return Err(SecurityError::BadSystemTitle(title.len()));
        }
        if title != peer_system_title {
            return Err(SecurityError::SystemTitleMismatch);
        }
    }
    let (sc, ic) = read_header(envelope.content)?;
    sc.check_supported()?;
    if !sc.policy().satisfies(required) {
        return Err(SecurityError::PolicyViolation {
            required,
            received: sc.policy(),
        });
    }
    replay.check(ic)?;
    let mut apdu = envelope.payload().to_vec();
    let len = cipher.open(sc, peer_system_title, ic, &mut apdu)?;
    apdu.truncate(len);
    if let Some(expected) = envelope.plain_tag() {
        let at = 0;
        match apdu.first() {
            Some(&got) if got == expected => {}
            Some(&got) => {
                return Err(DecodeError::UnknownTag {
                    what: "APDU inside the envelope",
                    tag: got,
                    at,
                }
                .into());
            }
            None => {
                return Err(DecodeError::UnexpectedEnd {
                    what: "plaintext APDU",
                    needed: 1,
                    at,
                }
                .into());
            }
        }
    }
    if sc.authenticated() {
        replay.accept(ic)?;
    }
    Ok(Unprotected {
        envelope: envelope.envelope,
        security_control: sc,
        invocation_counter: ic,
        apdu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_tables_round_trip() {
        for (plain, glo, ded) in SERVICE_TAGS {
            assert_eq!(ciphered_tag(plain, Envelope::Glo), Some(glo));
            assert_eq!(ciphered_tag(plain, Envelope::Ded), Some(ded));
            assert_eq!(plain_tag(glo), Some((plain, Envelope::Glo)));
            assert_eq!(plain_tag(ded), Some((plain, Envelope::Ded)));
        }
        assert_eq!(ciphered_tag(0xC0, Envelope::Glo), Some(0xC8));
        assert_eq!(ciphered_tag(0xC7, Envelope::Ded), Some(0xD7));
        assert_eq!(ciphered_tag(0x01, Envelope::Glo), Some(0x21));
        assert_eq!(
            ciphered_tag(0x0F, Envelope::Glo),
            None,
            "data-notification needs general"
        );
        assert_eq!(ciphered_tag(0x0F, Envelope::GeneralGlo), Some(0xDB));
        assert_eq!(plain_tag(0xDB), None);
        assert_eq!(plain_tag(0xC0), None);
    }

    #[test]
    fn decode_rejects_short_and_trailing_input() {
        assert!(CipheredApdu::decode(&[]).is_err());
        assert!(CipheredApdu::decode(&[0xC8]).is_err());
        assert!(
            CipheredApdu::decode(&[0xC8, 0x04, 0x30, 0, 0, 0]).is_err(),
            "no IC"
        );
        assert!(CipheredApdu::decode(&[0xC8, 0x05, 0x30, 0, 0, 0, 1, 0xFF]).is_err());
        assert!(CipheredApdu::decode(&[0xC8, 0x06, 0x30, 0, 0, 0, 1]).is_err());
        assert!(CipheredApdu::decode(&[0xDB, 0x09, 1, 2]).is_err());
        assert!(
            CipheredApdu::decode(&[0xC0, 0x05, 0x30, 0, 0, 0, 1]).is_err(),
            "plain tag"
        );
        let ok = CipheredApdu::decode(&[0xC8, 0x05, 0x30, 0, 0, 0, 1]).expect("minimal");
        assert_eq!(ok.invocation_counter, 1);
        assert_eq!(ok.payload(), &[] as &[u8]);
    }
}

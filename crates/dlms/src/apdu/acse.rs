//! BER encoding of the ACSE APDUs DLMS uses: AARQ (0x60), AARE (0x61), RLRQ (0x62), RLRE (0x63).
//!
//! Only definite lengths are accepted (DLMS never sends the indefinite form). Context-tagged
//! fields we do not model (called-AP-title, AE qualifiers, implementation-information, …) are
//! skipped by their length; a field we do model that is malformed is a [`DecodeError`].

use crate::codec::{DecodeError, Reader, put_length};

use super::xdlms::whole_buffer_codec;
use super::{
    Aare, Aarq, ApplicationContext, AssociationResult, Mechanism, Rlre, Rlrq, SourceDiagnostic, tag,
};

/// 2.16.756.5.8.1 (joint-iso-itu-t, country, ch, DLMS UA, application-context).
const APPLICATION_CONTEXT_OID: [u8; 6] = [0x60, 0x85, 0x74, 0x05, 0x08, 0x01];
/// 2.16.756.5.8.2 (…, authentication-mechanism-name).
const MECHANISM_OID: [u8; 6] = [0x60, 0x85, 0x74, 0x05, 0x08, 0x02];

const OBJECT_IDENTIFIER: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const INTEGER: u8 = 0x02;

// AARQ field tags (context-specific; 0xA_ constructed, 0x8_ primitive). protocol-version [0]
// (0x80) is neither sent nor checked.
const APPLICATION_CONTEXT_NAME: u8 = 0xA1;
const CALLING_AP_TITLE: u8 = 0xA6;
const SENDER_ACSE_REQUIREMENTS: u8 = 0x8A;
const AARQ_MECHANISM_NAME: u8 = 0x8B;
const CALLING_AUTHENTICATION_VALUE: u8 = 0xAC;
const USER_INFORMATION: u8 = 0xBE;
// AARE field tags.
const RESULT: u8 = 0xA2;
const RESULT_SOURCE_DIAGNOSTIC: u8 = 0xA3;
const RESPONDING_AP_TITLE: u8 = 0xA4;
const RESPONDER_ACSE_REQUIREMENTS: u8 = 0x88;
const AARE_MECHANISM_NAME: u8 = 0x89;
const RESPONDING_AUTHENTICATION_VALUE: u8 = 0xAA;
// Inside result-source-diagnostic.
const ACSE_SERVICE_USER: u8 = 0xA1;
const ACSE_SERVICE_PROVIDER: u8 = 0xA2;
// Authentication-value CHOICE charstring [0] IMPLICIT GraphicString.
const CHARSTRING: u8 = 0x80;
// RLRQ / RLRE reason [0] IMPLICIT INTEGER.
const REASON: u8 = 0x80;
/// acse-requirements BIT STRING with only the `authentication` bit: 7 unused bits, `1000 0000`.
const AUTHENTICATION_REQUIRED: [u8; 2] = [0x07, 0x80];

impl ApplicationContext {
    /// The last arc of 2.16.756.5.8.1.x.
    pub fn id(self) -> u8 {
        self as u8
    }

    pub fn from_id(id: u8) -> Option<Self> {
        use ApplicationContext::*;
        Some(match id {
            1 => LogicalNameNoCiphering,
            2 => ShortNameNoCiphering,
            3 => LogicalNameWithCiphering,
            4 => ShortNameWithCiphering,
            _ => return None,
        })
    }

    pub fn is_ciphered(self) -> bool {
        matches!(
            self,
            ApplicationContext::LogicalNameWithCiphering
                | ApplicationContext::ShortNameWithCiphering
        )
    }
}

impl Mechanism {
    /// The last arc of 2.16.756.5.8.2.x.
    pub fn id(self) -> u8 {
        self as u8
    }

    pub fn from_id(id: u8) -> Option<Self> {
        use Mechanism::*;
        Some(match id {
            0 => None,
            1 => Lls,
            2 => Hls,
            3 => HlsMd5,
            4 => HlsSha1,
            5 => HlsGmac,
            6 => HlsSha256,
            7 => HlsEcdsa,
            _ => return Option::None,
        })
    }
}

impl AssociationResult {
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => AssociationResult::Accepted,
            1 => AssociationResult::RejectedPermanent,
            2 => AssociationResult::RejectedTransient,
            _ => return None,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// BER pieces
// ---------------------------------------------------------------------------------------------

/// One tag-length-value. `tag` is the first tag octet (multi-octet tags are read past and
/// reported by their first octet, which no modelled field uses).
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    at: usize,
}

fn read_tlv<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<Tlv<'a>, DecodeError> {
    let at = r.position();
    let tag = r.u8(what)?;
    if tag & 0x1F == 0x1F {
        // High-tag-number form: base-128 octets, the last without bit 8. Bounded.
        let mut more = true;
        for _ in 0..4 {
            if r.u8(what)? & 0x80 == 0 {
                more = false;
                break;
            }
        }
        if more {
            return Err(DecodeError::invalid(
                what,
                format!("tag number too long at offset {at}"),
            ));
        }
    }
    let len = r.bounded_length(what)?;
    let content = r.take(len, what)?;
    Ok(Tlv { tag, content, at })
}

/// The content of the single TLV `content` holds, which must carry `expected_tag`.
fn inner<'a>(
    content: &'a [u8],
    expected_tag: u8,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let mut r = Reader::new(content);
    let tlv = read_tlv(&mut r, what)?;
    if tlv.tag != expected_tag {
        return Err(DecodeError::UnknownTag {
            what,
            tag: tlv.tag,
            at: tlv.at,
        });
    }
    r.finish(what)?;
    Ok(tlv.content)
}

/// A BER INTEGER's content octets as a small non-negative number.
fn small_integer(content: &[u8], what: &'static str) -> Result<u8, DecodeError> {
    let Some(first) = content.first() else {
        return Err(DecodeError::invalid(what, "empty INTEGER"));
    };
    if first & 0x80 != 0 {
        return Err(DecodeError::invalid(what, "negative INTEGER"));
    }
    let significant: &[u8] = match content.iter().position(|b| *b != 0) {
        Some(i) => content.get(i..).unwrap_or_default(),
        None => &[],
    };
    match significant {
        [] => Ok(0),
        [v] => Ok(*v),
        _ => Err(DecodeError::invalid(what, "INTEGER out of range")),
    }
}

/// The last arc of an OBJECT IDENTIFIER's content under `prefix` (e.g. 2.16.756.5.8.1.x).
fn oid_arc(content: &[u8], prefix: &[u8; 6], what: &'static str) -> Result<u8, DecodeError> {
    match content.split_last() {
        Some((last, head)) if head == prefix && *last < 0x80 => Ok(*last),
        _ => Err(DecodeError::invalid(
            what,
            format!("unexpected object identifier {content:02x?}"),
        )),
    }
}

fn put_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    put_length(out, content.len());
    out.extend_from_slice(content);
}

/// `tag`, then `inner_tag` wrapping `content` (an EXPLICIT tag around a universal value).
fn put_explicit(out: &mut Vec<u8>, tag: u8, inner_tag: u8, content: &[u8]) {
    let mut wrapped = Vec::with_capacity(content.len() + 6);
    put_tlv(&mut wrapped, inner_tag, content);
    put_tlv(out, tag, &wrapped);
}

fn put_oid(out: &mut Vec<u8>, tag: u8, prefix: &[u8; 6], arc: u8) {
    let mut oid = prefix.to_vec();
    oid.push(arc);
    put_tlv(out, tag, &oid);
}

fn application_context(content: &[u8]) -> Result<ApplicationContext, DecodeError> {
    let what = "application-context-name";
    let oid = inner(content, OBJECT_IDENTIFIER, what)?;
    let arc = oid_arc(oid, &APPLICATION_CONTEXT_OID, what)?;
    ApplicationContext::from_id(arc)
        .ok_or_else(|| DecodeError::invalid(what, format!("unknown application context {arc}")))
}

fn mechanism(content: &[u8]) -> Result<Mechanism, DecodeError> {
    let what = "mechanism-name";
    let arc = oid_arc(content, &MECHANISM_OID, what)?;
    Mechanism::from_id(arc)
        .ok_or_else(|| DecodeError::invalid(what, format!("unknown mechanism {arc}")))
}

/// Reads `expected` tag, its length, and returns a reader over exactly its content.
fn outer<'a>(
    r: &mut Reader<'a>,
    expected: u8,
    what: &'static str,
) -> Result<Reader<'a>, DecodeError> {
    let tlv = read_tlv(r, what)?;
    if tlv.tag != expected {
        return Err(DecodeError::UnknownTag {
            what,
            tag: tlv.tag,
            at: tlv.at,
        });
    }
    Ok(Reader::new(tlv.content))
}

// ---------------------------------------------------------------------------------------------
// AARQ / AARE
// ---------------------------------------------------------------------------------------------

impl Aarq {
    /// Appends the BER AARQ. acse-requirements (authentication) is sent whenever a mechanism is.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        put_explicit(&mut body, APPLICATION_CONTEXT_NAME, OBJECT_IDENTIFIER, &{
            let mut oid = APPLICATION_CONTEXT_OID.to_vec();
            oid.push(self.application_context.id());
            oid
        });
        if let Some(title) = &self.calling_ap_title {
            put_explicit(&mut body, CALLING_AP_TITLE, OCTET_STRING, title);
        }
        if let Some(m) = self.mechanism {
            put_tlv(
                &mut body,
                SENDER_ACSE_REQUIREMENTS,
                &AUTHENTICATION_REQUIRED,
            );
            put_oid(&mut body, AARQ_MECHANISM_NAME, &MECHANISM_OID, m.id());
        }
        if let Some(value) = &self.calling_authentication_value {
            put_explicit(&mut body, CALLING_AUTHENTICATION_VALUE, CHARSTRING, value);
        }
        if let Some(info) = &self.user_information {
            put_explicit(&mut body, USER_INFORMATION, OCTET_STRING, info);
        }
        put_tlv(out, tag::AARQ, &body);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut body = outer(r, tag::AARQ, "aarq")?;
        let mut application_context = None;
        let mut aarq = Aarq {
            application_context: ApplicationContext::LogicalNameNoCiphering,
            calling_ap_title: None,
            mechanism: None,
            calling_authentication_value: None,
            user_information: None,
        };
        while !body.is_empty() {
            let field = read_tlv(&mut body, "aarq field")?;
            match field.tag {
                APPLICATION_CONTEXT_NAME => {
                    application_context = Some(self::application_context(field.content)?);
                }
                CALLING_AP_TITLE => {
                    let title = inner(field.content, OCTET_STRING, "calling-AP-title")?;
                    aarq.calling_ap_title = Some(title.to_vec());
                }
                AARQ_MECHANISM_NAME => aarq.mechanism = Some(mechanism(field.content)?),
                CALLING_AUTHENTICATION_VALUE => {
                    let value = inner(field.content, CHARSTRING, "calling-authentication-value")?;
                    aarq.calling_authentication_value = Some(value.to_vec());
                }
                USER_INFORMATION => {
                    let info = inner(field.content, OCTET_STRING, "user-information")?;
                    aarq.user_information = Some(info.to_vec());
                }
                // protocol-version, sender-acse-requirements and fields we do not model.
                _ => {}
            }
        }
        aarq.application_context = application_context
            .ok_or_else(|| DecodeError::invalid("aarq", "no application-context-name"))?;
        Ok(aarq)
    }
}

impl Aare {
    /// Appends the BER AARE. responder-acse-requirements is sent whenever a mechanism is.
    pub fn write(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        put_explicit(&mut body, APPLICATION_CONTEXT_NAME, OBJECT_IDENTIFIER, &{
            let mut oid = APPLICATION_CONTEXT_OID.to_vec();
            oid.push(self.application_context.id());
            oid
        });
        put_explicit(&mut body, RESULT, INTEGER, &[self.result as u8]);
        let (choice, value) = match self.diagnostic {
            SourceDiagnostic::ServiceUser(v) => (ACSE_SERVICE_USER, v),
            SourceDiagnostic::ServiceProvider(v) => (ACSE_SERVICE_PROVIDER, v),
        };
        let mut diagnostic = Vec::new();
        put_explicit(&mut diagnostic, choice, INTEGER, &integer_content(value));
        put_tlv(&mut body, RESULT_SOURCE_DIAGNOSTIC, &diagnostic);
        if let Some(title) = &self.responding_ap_title {
            put_explicit(&mut body, RESPONDING_AP_TITLE, OCTET_STRING, title);
        }
        if let Some(m) = self.mechanism {
            put_tlv(
                &mut body,
                RESPONDER_ACSE_REQUIREMENTS,
                &AUTHENTICATION_REQUIRED,
            );
            put_oid(&mut body, AARE_MECHANISM_NAME, &MECHANISM_OID, m.id());
        }
        if let Some(value) = &self.responding_authentication_value {
            put_explicit(
                &mut body,
                RESPONDING_AUTHENTICATION_VALUE,
                CHARSTRING,
                value,
            );
        }
        if let Some(info) = &self.user_information {
            put_explicit(&mut body, USER_INFORMATION, OCTET_STRING, info);
        }
        put_tlv(out, tag::AARE, &body);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut body = outer(r, tag::AARE, "aare")?;
        let mut application_context = None;
        let mut result = None;
        let mut diagnostic = None;
        let mut aare = Aare {
            application_context: ApplicationContext::LogicalNameNoCiphering,
            result: AssociationResult::Accepted,
            diagnostic: SourceDiagnostic::NULL,
            responding_ap_title: None,
            mechanism: None,
            responding_authentication_value: None,
            user_information: None,
        };
        while !body.is_empty() {
            let field = read_tlv(&mut body, "aare field")?;
            match field.tag {
                APPLICATION_CONTEXT_NAME => {
                    application_context = Some(self::application_context(field.content)?);
                }
                RESULT => {
                    let what = "association result";
                    let code = small_integer(inner(field.content, INTEGER, what)?, what)?;
                    result = Some(AssociationResult::from_code(code).ok_or_else(|| {
                        DecodeError::invalid(what, format!("unknown result {code}"))
                    })?);
                }
                RESULT_SOURCE_DIAGNOSTIC => {
                    let what = "result-source-diagnostic";
                    let mut r = Reader::new(field.content);
                    let choice = read_tlv(&mut r, what)?;
                    r.finish(what)?;
                    let value = small_integer(inner(choice.content, INTEGER, what)?, what)?;
                    diagnostic = Some(match choice.tag {
                        ACSE_SERVICE_USER => SourceDiagnostic::ServiceUser(value),
                        ACSE_SERVICE_PROVIDER => SourceDiagnostic::ServiceProvider(value),
                        other => {
                            return Err(DecodeError::UnknownTag {
                                what,
                                tag: other,
                                at: choice.at,
                            });
                        }
                    });
                }
                RESPONDING_AP_TITLE => {
                    let title = inner(field.content, OCTET_STRING, "responding-AP-title")?;
                    aare.responding_ap_title = Some(title.to_vec());
                }
                AARE_MECHANISM_NAME => aare.mechanism = Some(mechanism(field.content)?),
                RESPONDING_AUTHENTICATION_VALUE => {
                    let value =
                        inner(field.content, CHARSTRING, "responding-authentication-value")?;
                    aare.responding_authentication_value = Some(value.to_vec());
                }
                USER_INFORMATION => {
                    let info = inner(field.content, OCTET_STRING, "user-information")?;
                    aare.user_information = Some(info.to_vec());
                }
                // responder-acse-requirements and fields we do not model.
                _ => {}
            }
        }
        aare.application_context = application_context
            .ok_or_else(|| DecodeError::invalid("aare", "no application-context-name"))?;
        aare.result = result.ok_or_else(|| DecodeError::invalid("aare", "no result"))?;
        aare.diagnostic = diagnostic
            .ok_or_else(|| DecodeError::invalid("aare", "no result-source-diagnostic"))?;
        Ok(aare)
    }
}

/// A non-negative BER INTEGER's content octets (a leading zero keeps values ≥ 0x80 positive).
fn integer_content(v: u8) -> Vec<u8> {
    if v < 0x80 { vec![v] } else { vec![0, v] }
}

// ---------------------------------------------------------------------------------------------
// RLRQ / RLRE
// ---------------------------------------------------------------------------------------------

fn write_release(out: &mut Vec<u8>, apdu_tag: u8, reason: Option<u8>, info: Option<&[u8]>) {
    let mut body = Vec::new();
    if let Some(reason) = reason {
        put_tlv(&mut body, REASON, &integer_content(reason));
    }
    if let Some(info) = info {
        put_explicit(&mut body, USER_INFORMATION, OCTET_STRING, info);
    }
    put_tlv(out, apdu_tag, &body);
}

type Release = (Option<u8>, Option<Vec<u8>>);

fn read_release(
    r: &mut Reader<'_>,
    apdu_tag: u8,
    what: &'static str,
) -> Result<Release, DecodeError> {
    let mut body = outer(r, apdu_tag, what)?;
    let (mut reason, mut info) = (None, None);
    while !body.is_empty() {
        let field = read_tlv(&mut body, what)?;
        match field.tag {
            REASON => reason = Some(small_integer(field.content, "release reason")?),
            USER_INFORMATION => {
                info = Some(inner(field.content, OCTET_STRING, "user-information")?.to_vec());
            }
            _ => {}
        }
    }
    Ok((reason, info))
}

impl Rlrq {
    pub fn write(&self, out: &mut Vec<u8>) {
        write_release(
            out,
            tag::RLRQ,
            self.reason,
            self.user_information.as_deref(),
        );
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (reason, user_information) = read_release(r, tag::RLRQ, "rlrq")?;
        Ok(Rlrq {
            reason,
            user_information,
        })
    }
}

impl Rlre {
    pub fn write(&self, out: &mut Vec<u8>) {
        write_release(
            out,
            tag::RLRE,
            self.reason,
            self.user_information.as_deref(),
        );
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (reason, user_information) = read_release(r, tag::RLRE, "rlre")?;
        Ok(Rlre {
            reason,
            user_information,
        })
    }
}

whole_buffer_codec!(Aarq => "aarq", Aare => "aare", Rlrq => "rlrq", Rlre => "rlre");

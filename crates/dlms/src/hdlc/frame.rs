//! The HDLC frame of IEC 62056-46 (frame format type 3): flags, format field with the
//! segmentation bit and 11-bit length, extended addresses, control field, HCS, information field
//! and FCS (CRC-16/X.25). Encoding and decoding of exactly one frame; no state.

use crate::codec::{DecodeError, Reader};

/// Opening and closing flag.
pub const FLAG: u8 = 0x7E;

/// The largest value of the 11-bit frame length field (bytes between the flags).
pub const MAX_FRAME_LEN: usize = 0x7FF;

/// The smallest frame: format (2), two 1-byte addresses, control and FCS (2).
pub const MIN_FRAME_LEN: usize = 7;

/// The largest information field that fits in a frame whatever the address widths
/// (format 2, addresses up to 4 + 1, control 1, HCS 2, FCS 2: 12 bytes of overhead).
pub const MAX_INFO_LEN: usize = MAX_FRAME_LEN - 12;

/// LLC header before an APDU in a frame from the client (destination LSAP E6, source LSAP E6
/// command, quality 00).
pub const LLC_COMMAND: [u8; 3] = [0xE6, 0xE6, 0x00];

/// LLC header before an APDU in a frame from the server (source LSAP E7: response).
pub const LLC_RESPONSE: [u8; 3] = [0xE6, 0xE7, 0x00];

/// An HDLC address: one client SAP byte, or a server address of 1, 2 or 4 bytes made of an upper
/// HDLC address (the logical device) and a lower HDLC address (the physical device).
///
/// On the wire every byte carries 7 address bits shifted left; the least significant bit is 1 in
/// the last byte only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HdlcAddress {
    /// A 1-byte address: a client SAP, or a server's upper (logical device) address alone.
    /// 7 bits.
    One(u8),
    /// Upper and lower address, 7 bits each.
    Two { upper: u8, lower: u8 },
    /// Upper and lower address, 14 bits each.
    Four { upper: u16, lower: u16 },
}

impl HdlcAddress {
    /// A client's address: its SAP (16 public client, 32 reader, 48 utility, ...).
    pub fn client(sap: u8) -> Self {
        HdlcAddress::One(sap)
    }

    /// A server's address from its logical device (upper) and physical device (lower) address,
    /// in 2 bytes when both fit in 7 bits, else in 4.
    pub fn server(logical: u16, physical: u16) -> Self {
        match (u8::try_from(logical), u8::try_from(physical)) {
            (Ok(upper), Ok(lower)) if upper <= 0x7F && lower <= 0x7F => {
                HdlcAddress::Two { upper, lower }
            }
            _ => HdlcAddress::Four {
                upper: logical,
                lower: physical,
            },
        }
    }

    /// The upper HDLC address (a 1-byte address is all upper).
    pub fn upper(&self) -> u16 {
        match *self {
            HdlcAddress::One(a) => u16::from(a),
            HdlcAddress::Two { upper, .. } => u16::from(upper),
            HdlcAddress::Four { upper, .. } => upper,
        }
    }

    /// The lower HDLC address, if the address has one.
    pub fn lower(&self) -> Option<u16> {
        match *self {
            HdlcAddress::One(_) => None,
            HdlcAddress::Two { lower, .. } => Some(u16::from(lower)),
            HdlcAddress::Four { lower, .. } => Some(lower),
        }
    }

    /// Whether two addresses name the same station: same upper address, and same lower address
    /// when both have one (a 1-byte server address leaves the physical device unsaid).
    pub fn same_station(&self, other: &HdlcAddress) -> bool {
        self.upper() == other.upper()
            && match (self.lower(), other.lower()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            HdlcAddress::One(_) => 1,
            HdlcAddress::Two { .. } => 2,
            HdlcAddress::Four { .. } => 4,
        }
    }

    /// Fails unless every part fits its width (7 bits per byte).
    pub fn validate(&self) -> Result<(), FrameError> {
        let ok = match *self {
            HdlcAddress::One(a) => a <= 0x7F,
            HdlcAddress::Two { upper, lower } => upper <= 0x7F && lower <= 0x7F,
            HdlcAddress::Four { upper, lower } => upper <= 0x3FFF && lower <= 0x3FFF,
        };
        if ok {
            Ok(())
        } else {
            Err(FrameError::AddressOutOfRange(*self))
        }
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        self.validate()?;
        // Seven bits per byte, shifted left; the end bit marks the last byte.
        let groups: &[u16] = match *self {
            HdlcAddress::One(a) => &[u16::from(a)],
            HdlcAddress::Two { upper, lower } => &[u16::from(upper), u16::from(lower)],
            HdlcAddress::Four { upper, lower } => {
                &[upper >> 7, upper & 0x7F, lower >> 7, lower & 0x7F]
            }
        };
        let last = groups.len().saturating_sub(1);
        for (i, g) in groups.iter().enumerate() {
            let byte = ((g & 0x7F) as u8) << 1;
            out.push(if i == last { byte | 1 } else { byte });
        }
        Ok(())
    }

    fn read(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        let at = r.position();
        let mut parts = [0u16; 4];
        let mut n = 0usize;
        loop {
            let b = r.u8(what)?;
            let Some(slot) = parts.get_mut(n) else {
                return Err(DecodeError::invalid(
                    what,
                    format!("longer than 4 bytes at offset {at}"),
                ));
            };
            *slot = u16::from(b >> 1);
            n += 1;
            if b & 1 == 1 {
                break;
            }
        }
        match n {
            1 => Ok(HdlcAddress::One(parts[0] as u8)),
            2 => Ok(HdlcAddress::Two {
                upper: parts[0] as u8,
                lower: parts[1] as u8,
            }),
            4 => Ok(HdlcAddress::Four {
                upper: (parts[0] << 7) | parts[1],
                lower: (parts[2] << 7) | parts[3],
            }),
            _ => Err(DecodeError::invalid(
                what,
                format!("{n}-byte address at offset {at}"),
            )),
        }
    }
}

/// The control field. `pf` is the P/F bit: poll in a command, final in a response. Sequence
/// numbers N(S) and N(R) count modulo 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Control {
    /// Information: `RRR P SSS 0`.
    I {
        send_seq: u8,
        recv_seq: u8,
        pf: bool,
    },
    /// Receive ready: `RRR P 0001`.
    Rr { recv_seq: u8, pf: bool },
    /// Receive not ready: `RRR P 0101`.
    Rnr { recv_seq: u8, pf: bool },
    /// Set normal response mode: `100P 0011`.
    Snrm { pf: bool },
    /// Disconnect: `010P 0011`.
    Disc { pf: bool },
    /// Unnumbered acknowledge: `011F 0011`.
    Ua { pf: bool },
    /// Disconnected mode: `000F 1111`.
    Dm { pf: bool },
    /// Frame reject: `100F 0111`.
    Frmr { pf: bool },
    /// Unnumbered information: `000P 0011`.
    Ui { pf: bool },
    /// A control byte IEC 62056-46 does not use (REJ, SREJ, other U frames). Decoded so a server
    /// can answer it with FRMR.
    Unknown(u8),
}

const PF: u8 = 0x10;

impl Control {
    /// Decodes a control byte; never fails (unused values become [`Control::Unknown`]).
    pub fn from_byte(b: u8) -> Self {
        let pf = b & PF != 0;
        let recv_seq = b >> 5;
        if b & 0x01 == 0 {
            return Control::I {
                send_seq: (b >> 1) & 0x07,
                recv_seq,
                pf,
            };
        }
        match b & 0x0F {
            0x01 => return Control::Rr { recv_seq, pf },
            0x05 => return Control::Rnr { recv_seq, pf },
            _ => {}
        }
        match b & !PF {
            0x83 => Control::Snrm { pf },
            0x43 => Control::Disc { pf },
            0x63 => Control::Ua { pf },
            0x0F => Control::Dm { pf },
            0x87 => Control::Frmr { pf },
            0x03 => Control::Ui { pf },
            _ => Control::Unknown(b),
        }
    }

    /// Encodes the control byte. Fails on a sequence number over 7, or on an `Unknown` byte that
    /// is in fact a known control field.
    pub fn to_byte(&self) -> Result<u8, FrameError> {
        let p = |pf: bool| if pf { PF } else { 0 };
        let seq = |s: u8| {
            if s <= 7 {
                Ok(s)
            } else {
                Err(FrameError::SequenceOutOfRange(s))
            }
        };
        Ok(match *self {
            Control::I {
                send_seq,
                recv_seq,
                pf,
            } => (seq(recv_seq)? << 5) | p(pf) | (seq(send_seq)? << 1),
            Control::Rr { recv_seq, pf } => (seq(recv_seq)? << 5) | p(pf) | 0x01,
            Control::Rnr { recv_seq, pf } => (seq(recv_seq)? << 5) | p(pf) | 0x05,
            Control::Snrm { pf } => 0x83 | p(pf),
            Control::Disc { pf } => 0x43 | p(pf),
            Control::Ua { pf } => 0x63 | p(pf),
            Control::Dm { pf } => 0x0F | p(pf),
            Control::Frmr { pf } => 0x87 | p(pf),
            Control::Ui { pf } => 0x03 | p(pf),
            Control::Unknown(b) => match Control::from_byte(b) {
                Control::Unknown(_) => b,
                _ => return Err(FrameError::KnownControlAsUnknown(b)),
            },
        })
    }

    /// The P/F bit.
    pub fn pf(&self) -> bool {
        match *self {
            Control::I { pf, .. }
            | Control::Rr { pf, .. }
            | Control::Rnr { pf, .. }
            | Control::Snrm { pf }
            | Control::Disc { pf }
            | Control::Ua { pf }
            | Control::Dm { pf }
            | Control::Frmr { pf }
            | Control::Ui { pf } => pf,
            Control::Unknown(b) => b & PF != 0,
        }
    }
}

/// One HDLC frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdlcFrame {
    /// The segmentation bit S of the format field: more segments of this APDU follow.
    pub segmented: bool,
    pub destination: HdlcAddress,
    pub source: HdlcAddress,
    pub control: Control,
    /// The information field; empty means the frame has none (and so no HCS).
    pub info: Vec<u8>,
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("HDLC address {0:?} does not fit its width")]
    AddressOutOfRange(HdlcAddress),
    #[error("HDLC sequence number {0} is over 7")]
    SequenceOutOfRange(u8),
    #[error("control byte 0x{0:02x} given as unknown is a known control field")]
    KnownControlAsUnknown(u8),
    #[error("HDLC frame of {len} bytes exceeds the 11-bit length field (max {MAX_FRAME_LEN})")]
    FrameTooLong { len: usize },
}

/// CRC-16/X.25 (the PPP FCS-16 of RFC 1662): reflected polynomial 0x1021, initial value 0xFFFF,
/// final complement. Sent least significant byte first.
pub fn fcs16(bytes: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in bytes {
        let index = usize::from((crc ^ u16::from(b)) & 0xFF);
        crc = (crc >> 8) ^ FCS_TABLE[index];
    }
    !crc
}

const FCS_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// Encodes one frame, flags included.
pub fn encode_frame(frame: &HdlcFrame) -> Result<Vec<u8>, FrameError> {
    let header_len = 2 + frame.destination.encoded_len() + frame.source.encoded_len() + 1;
    let len = if frame.info.is_empty() {
        header_len + 2
    } else {
        header_len + 2 + frame.info.len() + 2
    };
    if len > MAX_FRAME_LEN {
        return Err(FrameError::FrameTooLong { len });
    }
    let control = frame.control.to_byte()?;
    let mut out = Vec::with_capacity(len + 2);
    out.push(FLAG);
    let format = 0xA000 | (u16::from(frame.segmented) << 11) | len as u16;
    out.extend_from_slice(&format.to_be_bytes());
    frame.destination.write(&mut out)?;
    frame.source.write(&mut out)?;
    out.push(control);
    if !frame.info.is_empty() {
        let hcs = fcs16(&out[1..]);
        out.extend_from_slice(&hcs.to_le_bytes());
        out.extend_from_slice(&frame.info);
    }
    let fcs = fcs16(&out[1..]);
    out.extend_from_slice(&fcs.to_le_bytes());
    out.push(FLAG);
    Ok(out)
}

/// What the header of a frame says, known once its bytes are in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub segmented: bool,
    pub destination: HdlcAddress,
    pub source: HdlcAddress,
    pub control: Control,
    /// Frame length from the format field (bytes between the flags).
    pub len: usize,
    /// Bytes of format, addresses and control.
    pub header_len: usize,
}

impl Header {
    pub fn has_info(&self) -> bool {
        self.len > self.header_len + 2
    }
}

/// Parses the header from `body` (the bytes after the opening flag), checking the format type,
/// the length and, if the frame has an information field and `body` reaches it, the HCS.
pub(crate) fn parse_header(body: &[u8]) -> Result<Header, DecodeError> {
    let mut r = Reader::new(body);
    let at = r.position();
    let format = r.u16("HDLC format field")?;
    if format >> 12 != 0xA {
        return Err(DecodeError::UnknownTag {
            what: "HDLC frame format",
            tag: (format >> 8) as u8,
            at,
        });
    }
    let segmented = format & 0x0800 != 0;
    let len = usize::from(format & 0x07FF);
    if len < MIN_FRAME_LEN {
        return Err(DecodeError::invalid(
            "HDLC frame length",
            format!("{len} is below {MIN_FRAME_LEN}"),
        ));
    }
    let destination = HdlcAddress::read(&mut r, "HDLC destination address")?;
    let source = HdlcAddress::read(&mut r, "HDLC source address")?;
    let control = Control::from_byte(r.u8("HDLC control field")?);
    let header_len = r.position();
    let header = Header {
        segmented,
        destination,
        source,
        control,
        len,
        header_len,
    };
    if len == header_len + 2 {
        return Ok(header);
    }
    // With an information field: HCS, at least one byte of information, FCS.
    if len < header_len + 5 {
        return Err(DecodeError::invalid(
            "HDLC frame length",
            format!(
                "{len} leaves no room for HCS, information and FCS after a {header_len}-byte header"
            ),
        ));
    }
    let hcs = u16::from_le_bytes(r.array("HDLC HCS")?);
    let computed = fcs16(body.get(..header_len).unwrap_or_default());
    if hcs != computed {
        return Err(DecodeError::invalid(
            "HDLC HCS",
            format!("received 0x{hcs:04x}, computed 0x{computed:04x}"),
        ));
    }
    Ok(header)
}

/// Decodes exactly one frame: opening flag, frame, closing flag, nothing more. Checks the format
/// type, the length field, addresses, HCS and FCS.
pub fn decode_frame(bytes: &[u8]) -> Result<HdlcFrame, DecodeError> {
    let mut r = Reader::new(bytes);
    r.expect(FLAG, "HDLC opening flag")?;
    let header = parse_header(r.rest())?;
    let body = r.take(header.len, "HDLC frame")?;
    r.expect(FLAG, "HDLC closing flag")?;
    r.finish("HDLC frame")?;

    let fcs_at = header.len - 2;
    let (covered, fcs_bytes) = body.split_at(fcs_at);
    let fcs = u16::from_le_bytes(
        fcs_bytes
            .try_into()
            .map_err(|_| DecodeError::invalid("HDLC FCS", "not two bytes"))?,
    );
    let computed = fcs16(covered);
    if fcs != computed {
        return Err(DecodeError::invalid(
            "HDLC FCS",
            format!("received 0x{fcs:04x}, computed 0x{computed:04x}"),
        ));
    }
    let info = if header.has_info() {
        covered
            .get(header.header_len + 2..)
            .unwrap_or_default()
            .to_vec()
    } else {
        Vec::new()
    };
    Ok(HdlcFrame {
        segmented: header.segmented,
        destination: header.destination,
        source: header.source,
        control: header.control,
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcs16_check_value() {
        assert_eq!(fcs16(b"123456789"), 0x906E);
    }

    #[test]
    fn control_bytes_round_trip() {
        for b in 0..=255u8 {
            let c = Control::from_byte(b);
            assert_eq!(c.to_byte(), Ok(b), "{c:?}");
        }
    }

    #[test]
    fn four_byte_address_round_trips() {
        let a = HdlcAddress::server(0x1234, 0x3FFF);
        let mut out = Vec::new();
        a.write(&mut out).unwrap();
        assert_eq!(out, [0x48, 0x68, 0xFE, 0xFF]);
        assert_eq!(HdlcAddress::read(&mut Reader::new(&out), "a"), Ok(a));
    }

    #[test]
    fn three_byte_address_is_refused() {
        assert!(HdlcAddress::read(&mut Reader::new(&[0x02, 0x04, 0x07]), "a").is_err());
        assert!(HdlcAddress::read(&mut Reader::new(&[0x02, 0x04, 0x06, 0x08, 0x09]), "a").is_err());
    }
}

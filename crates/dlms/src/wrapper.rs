//! The IEC 62056-47 TCP wrapper: the 8-byte header (version 1, source wPort, destination wPort,
//! APDU length) that carries one APDU over TCP or UDP, its encoder, a one-frame decoder and a
//! streaming [`WrapperDecoder`] for a byte stream.
//!
//! The wPort is the SAP: a client's (IS 15959: 16 public, 32 reader, 48 utility, 64 push,
//! 80 firmware) or the server logical device's (1 for the management logical device).

use crate::codec::{DecodeError, Reader};

/// The only wrapper version defined by IEC 62056-47.
pub const WRAPPER_VERSION: u16 = 0x0001;

/// Length of the wrapper header in bytes.
pub const HEADER_LEN: usize = 8;

/// The largest APDU the 16-bit length field can describe.
pub const MAX_APDU_LEN: usize = u16::MAX as usize;

/// One wrapper frame: the APDU and the wPorts it travels between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperFrame {
    /// The sender's wPort.
    pub source: u16,
    /// The receiver's wPort.
    pub destination: u16,
    pub apdu: Vec<u8>,
}

impl WrapperFrame {
    /// Encodes this frame; see [`encode`].
    pub fn encode(&self) -> Result<Vec<u8>, WrapperError> {
        encode(self.source, self.destination, &self.apdu)
    }
}

/// Why a wrapper frame could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrapperError {
    #[error("APDU of {len} bytes does not fit the wrapper's 16-bit length (max {MAX_APDU_LEN})")]
    ApduTooLong { len: usize },
}

/// Builds one wrapper frame: header followed by the APDU.
pub fn encode(source: u16, destination: u16, apdu: &[u8]) -> Result<Vec<u8>, WrapperError> {
    let len =
        u16::try_from(apdu.len()).map_err(|_| WrapperError::ApduTooLong { len: apdu.len() })?;
    let mut out = Vec::with_capacity(HEADER_LEN + apdu.len());
    out.extend_from_slice(&WRAPPER_VERSION.to_be_bytes());
    out.extend_from_slice(&source.to_be_bytes());
    out.extend_from_slice(&destination.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(apdu);
    Ok(out)
}

/// The parsed header of a wrapper frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    source: u16,
    destination: u16,
    len: usize,
}

fn decode_header(bytes: &[u8], max_apdu_len: usize) -> Result<Header, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.u16("wrapper version")?;
    if version != WRAPPER_VERSION {
        return Err(DecodeError::invalid(
            "wrapper version",
            format!("0x{version:04x}, expected 0x{WRAPPER_VERSION:04x}"),
        ));
    }
    let source = r.u16("wrapper source wPort")?;
    let destination = r.u16("wrapper destination wPort")?;
    let len = usize::from(r.u16("wrapper length")?);
    if len > max_apdu_len {
        return Err(DecodeError::invalid(
            "wrapper length",
            format!("APDU of {len} bytes exceeds the limit of {max_apdu_len}"),
        ));
    }
    Ok(Header {
        source,
        destination,
        len,
    })
}

/// Decodes exactly one wrapper frame from `bytes` (no more, no less).
pub fn decode(bytes: &[u8]) -> Result<WrapperFrame, DecodeError> {
    let header = decode_header(bytes, MAX_APDU_LEN)?;
    let mut r = Reader::new(bytes);
    r.take(HEADER_LEN, "wrapper header")?;
    let apdu = r.take(header.len, "wrapper APDU")?.to_vec();
    r.finish("wrapper frame")?;
    Ok(WrapperFrame {
        source: header.source,
        destination: header.destination,
        apdu,
    })
}

/// Splits a byte stream (a TCP connection) into wrapper frames.
///
/// Feed it whatever the socket returned with [`push`](Self::push), then call
/// [`next_frame`](Self::next_frame) until it returns `Ok(None)`. Partial frames wait for more
/// bytes; several frames in one read come out one by one.
///
/// Memory is bounded: a header is checked as soon as its 8 bytes are in, so a wrong version or a
/// length over [`max_apdu_len`](Self::with_max_apdu_len) is reported before any of the body is
/// waited for, and once the caller has drained the frames the buffer never holds more than one
/// partial frame (at most 8 + `max_apdu_len` bytes).
///
/// **Errors are fatal.** The stream has no resynchronisation point, so after an error the decoder
/// keeps returning that error and the caller must drop the connection.
#[derive(Debug, Clone)]
pub struct WrapperDecoder {
    buf: Vec<u8>,
    max_apdu_len: usize,
    failed: Option<DecodeError>,
}

impl Default for WrapperDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl WrapperDecoder {
    /// A decoder accepting APDUs up to 65535 bytes.
    pub fn new() -> Self {
        Self::with_max_apdu_len(MAX_APDU_LEN)
    }

    /// A decoder rejecting frames whose APDU is longer than `max_apdu_len` (capped at 65535).
    pub fn with_max_apdu_len(max_apdu_len: usize) -> Self {
        WrapperDecoder {
            buf: Vec::new(),
            max_apdu_len: max_apdu_len.min(MAX_APDU_LEN),
            failed: None,
        }
    }

    /// The largest APDU this decoder accepts.
    pub fn max_apdu_len(&self) -> usize {
        self.max_apdu_len
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes received from the peer. Ignored once the decoder has failed.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the error that ended the
    /// stream (returned again on every later call: drop the connection).
    pub fn next_frame(&mut self) -> Result<Option<WrapperFrame>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let Some(header_bytes) = self.buf.get(..HEADER_LEN) else {
            // Check what is there already, so a wrong version fails without waiting.
            if self.buf.len() >= 2 {
                match decode_header(&self.buf, self.max_apdu_len) {
                    Ok(_) | Err(DecodeError::UnexpectedEnd { .. }) => {}
                    Err(err) => return Err(self.fail(err)),
                }
            }
            return Ok(None);
        };
        let header = match decode_header(header_bytes, self.max_apdu_len) {
            Ok(header) => header,
            Err(err) => return Err(self.fail(err)),
        };
        let Some(total) = HEADER_LEN.checked_add(header.len) else {
            return Err(self.fail(DecodeError::invalid("wrapper length", "overflow")));
        };
        let Some(apdu) = self.buf.get(HEADER_LEN..total) else {
            return Ok(None);
        };
        let frame = WrapperFrame {
            source: header.source,
            destination: header.destination,
            apdu: apdu.to_vec(),
        };
        self.buf.drain(..total);
        Ok(Some(frame))
    }

    fn fail(&mut self, err: DecodeError) -> DecodeError {
        self.buf = Vec::new();
        self.failed = Some(err.clone());
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_matches_iec_62056_47() {
        // A GET.request from the public client (wPort 16) to the management logical device (1).
        let apdu = [0xC0, 0x01, 0xC1, 0x00, 0x08];
        let bytes = encode(16, 1, &apdu).unwrap();
        assert_eq!(
            bytes,
            [
                0x00, 0x01, 0x00, 0x10, 0x00, 0x01, 0x00, 0x05, 0xC0, 0x01, 0xC1, 0x00, 0x08
            ]
        );
        assert_eq!(
            decode(&bytes).unwrap(),
            WrapperFrame {
                source: 16,
                destination: 1,
                apdu: apdu.to_vec()
            }
        );
    }

    #[test]
    fn too_long_apdu_is_refused() {
        let apdu = vec![0u8; MAX_APDU_LEN + 1];
        assert_eq!(
            encode(1, 16, &apdu),
            Err(WrapperError::ApduTooLong {
                len: MAX_APDU_LEN + 1
            })
        );
        assert!(encode(1, 16, &apdu[..MAX_APDU_LEN]).is_ok());
    }

    #[test]
    fn wrong_version_fails_before_the_header_is_complete() {
        let mut d = WrapperDecoder::new();
        d.push(&[0x00, 0x02]);
        assert!(matches!(
            d.next_frame(),
            Err(DecodeError::Invalid {
                what: "wrapper version",
                ..
            })
        ));
        // Latched: the connection is dead.
        d.push(&encode(1, 16, &[1]).unwrap());
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn length_over_the_limit_fails_without_waiting_for_the_body() {
        let mut d = WrapperDecoder::with_max_apdu_len(100);
        d.push(&[0x00, 0x01, 0x00, 0x01, 0x00, 0x10, 0x00, 0x65]);
        assert!(matches!(
            d.next_frame(),
            Err(DecodeError::Invalid {
                what: "wrapper length",
                ..
            })
        ));
        assert_eq!(d.buffered(), 0);
    }
}

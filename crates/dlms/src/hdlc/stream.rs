//! Splitting a byte stream (a serial line, an optical port, a TCP socket) into HDLC frames:
//! partial frames wait for more bytes, several frames in one read come out one by one, and noise
//! between frames is skipped.
//!
//! IEC 62056-46 frames are delimited by their length field, not by byte stuffing, so a flag byte
//! can also occur inside a frame. The extractor therefore trusts a flag only when the bytes after
//! it look like a frame header, and resynchronises on the next flag when they do not.

use crate::codec::DecodeError;

use super::frame::{FLAG, HdlcFrame, decode_frame, parse_header};

/// The most bytes one frame can span, flags included.
const MAX_SPAN: usize = super::frame::MAX_FRAME_LEN + 2;

/// A streaming frame extractor.
///
/// [`push`](Self::push) the bytes read, then call [`next_frame`](Self::next_frame) until it
/// returns `None`. Once drained, the buffer holds at most one partial frame (2049 bytes).
///
/// Bytes that cannot start a frame are skipped silently (and counted). A candidate that starts
/// like a frame (flag and format type 3) but fails a check (HCS, FCS, closing flag, address) is
/// returned as `Some(Err(_))`; the extractor has already moved past its opening flag, so the
/// caller may simply carry on: HDLC discards such frames and recovers by timeout.
#[derive(Debug, Clone, Default)]
pub struct FrameExtractor {
    buf: Vec<u8>,
    skipped: u64,
}

impl FrameExtractor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the line.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned or skipped.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes skipped as noise so far (not counting flags or rejected candidates).
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    /// Drops everything buffered (for example when the link is reset).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The next frame, or an error for a frame-like candidate that failed a check, or `None` when
    /// more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<HdlcFrame, DecodeError>> {
        loop {
            // Skip to the first flag.
            match self.buf.iter().position(|&b| b == FLAG) {
                None => {
                    self.skip(self.buf.len());
                    return None;
                }
                Some(0) => {}
                Some(n) => self.skip(n),
            }
            let second = *self.buf.get(1)?;
            if second == FLAG {
                // Back-to-back flags: the first closed a frame (or was noise), the second opens.
                self.buf.drain(..1);
                continue;
            }
            let body = self
                .buf
                .get(1..self.buf.len().min(MAX_SPAN))
                .unwrap_or_default();
            let header = match parse_header(body) {
                Ok(header) => header,
                // Not all of the header is here yet.
                Err(DecodeError::UnexpectedEnd { .. }) => return None,
                // A flag followed by something that is not a type 3 format field: noise.
                Err(DecodeError::UnknownTag {
                    what: "HDLC frame format",
                    ..
                }) => {
                    self.skip(1);
                    continue;
                }
                Err(err) => {
                    self.buf.drain(..1);
                    return Some(Err(err));
                }
            };
            let span = header.len + 2;
            let candidate = self.buf.get(..span)?;
            let result = decode_frame(candidate);
            match result {
                // Keep the closing flag: it may also open the next frame.
                Ok(_) => self.buf.drain(..span - 1),
                // Resynchronise just after the opening flag: the real frame may start inside.
                Err(_) => self.buf.drain(..1),
            };
            return Some(result);
        }
    }

    fn skip(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.skipped = self.skipped.saturating_add(n as u64);
    }
}

//! Byte cursor and the one decode error shared by every decoder in the crate.
//!
//! Every decoder reads through [`Reader`], which never indexes out of bounds: a short or malformed
//! input becomes a [`DecodeError`], never a panic.

/// Why bytes could not be decoded. Carries enough to tell an operator what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input ended early: {what} needs {needed} more byte(s) at offset {at}")]
    UnexpectedEnd {
        what: &'static str,
        needed: usize,
        at: usize,
    },
    #[error("unknown {what} tag 0x{tag:02x} at offset {at}")]
    UnknownTag {
        what: &'static str,
        tag: u8,
        at: usize,
    },
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("{count} unexpected trailing byte(s) after {what}")]
    TrailingBytes { what: &'static str, count: usize },
    #[error("{what} nested deeper than {limit} levels")]
    TooDeep { what: &'static str, limit: usize },
}

impl DecodeError {
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// A forward-only cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Offset of the next byte to be read.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not yet read.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything was read.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { what, count }),
        }
    }

    pub fn peek(&self, what: &'static str) -> Result<u8, DecodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::UnexpectedEnd {
                what,
                needed: 1,
                at: self.pos,
            })
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: n - self.remaining(),
                at: self.pos,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn take_rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let b = self.peek(what)?;
        self.pos += 1;
        Ok(b)
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Expects one specific byte.
    pub fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), DecodeError> {
        let at = self.pos;
        let got = self.u8(what)?;
        if got == byte {
            Ok(())
        } else {
            Err(DecodeError::UnknownTag { what, tag: got, at })
        }
    }

    /// A-XDR / BER length: one byte below 0x80, else 0x8N followed by N big-endian bytes.
    pub fn length(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let first = self.u8(what)?;
        if first < 0x80 {
            return Ok(first as usize);
        }
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return Err(DecodeError::invalid(what, format!("length of length {n}")));
        }
        let mut len = 0usize;
        for b in self.take(n, what)? {
            len = (len << 8) | *b as usize;
        }
        Ok(len)
    }

    /// A length that must also fit in what is left of the input (so it is safe to allocate for).
    pub fn bounded_length(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let at = self.pos;
        let len = self.length(what)?;
        if len > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: len - self.remaining(),
                at,
            });
        }
        Ok(len)
    }

    /// A length-prefixed byte string.
    pub fn octets(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.bounded_length(what)?;
        self.take(len, what)
    }
}

/// Appends an A-XDR / BER length.
pub fn put_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Appends a length-prefixed byte string.
pub fn put_octets(out: &mut Vec<u8>, bytes: &[u8]) {
    put_length(out, bytes.len());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_and_short_input_is_an_error() {
        for len in [
            0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0xff_ffff,
        ] {
            let mut out = Vec::new();
            put_length(&mut out, len);
            assert_eq!(Reader::new(&out).length("len"), Ok(len));
        }
        assert!(matches!(
            Reader::new(&[0x82, 0x01]).length("len"),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        assert!(Reader::new(&[0x05, 1, 2]).octets("s").is_err());
    }
}

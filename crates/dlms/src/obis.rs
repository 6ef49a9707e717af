//! OBIS codes (IEC 62056-61): the six-byte logical names of COSEM objects.

use std::fmt;
use std::str::FromStr;

/// A logical name, `A.B.C.D.E.F`, e.g. `1.0.99.1.0.255` for the block load profile.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObisCode(pub [u8; 6]);

impl ObisCode {
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8) -> Self {
        ObisCode([a, b, c, d, e, f])
    }

    pub const fn bytes(&self) -> [u8; 6] {
        self.0
    }

    /// Parses at compile time; panics (a build error in a `const`) on a malformed literal.
    pub const fn must(s: &str) -> Self {
        match parse(s.as_bytes()) {
            Ok(code) => code,
            Err(_) => panic!("malformed OBIS literal"),
        }
    }
}

impl From<[u8; 6]> for ObisCode {
    fn from(b: [u8; 6]) -> Self {
        ObisCode(b)
    }
}

impl TryFrom<&[u8]> for ObisCode {
    type Error = ObisParseError;
    fn try_from(b: &[u8]) -> Result<Self, Self::Error> {
        <[u8; 6]>::try_from(b)
            .map(ObisCode)
            .map_err(|_| ObisParseError::WrongLength(b.len()))
    }
}

impl fmt::Display for ObisCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a}.{b}.{c}.{d}.{e}.{g}")
    }
}

impl fmt::Debug for ObisCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObisCode({self})")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObisParseError {
    #[error("an OBIS code has six groups A.B.C.D.E.F (found {0})")]
    WrongGroupCount(usize),
    #[error("each OBIS group is a number 0-255")]
    BadGroup,
    #[error("a logical name is 6 bytes (found {0})")]
    WrongLength(usize),
}

const fn parse(s: &[u8]) -> Result<ObisCode, ObisParseError> {
    let mut out = [0u8; 6];
    let mut group = 0usize;
    let mut value: u16 = 0;
    let mut digits = 0;
    let mut i = 0;
    while i <= s.len() {
        let end = i == s.len();
        let c = if end { b'.' } else { s[i] };
        // Accept the common separators: dots, and the '-', ':', '*' of the formal notation.
        if c == b'.' || c == b'-' || c == b':' || c == b'*' {
            if digits == 0 {
                return Err(ObisParseError::BadGroup);
            }
            if group >= 6 {
                return Err(ObisParseError::WrongGroupCount(group + 1));
            }
            out[group] = value as u8;
            group += 1;
            value = 0;
            digits = 0;
        } else if c.is_ascii_digit() {
            value = value * 10 + (c - b'0') as u16;
            digits += 1;
            if value > 255 || digits > 3 {
                return Err(ObisParseError::BadGroup);
            }
        } else {
            return Err(ObisParseError::BadGroup);
        }
        i += 1;
    }
    if group != 6 {
        return Err(ObisParseError::WrongGroupCount(group));
    }
    Ok(ObisCode(out))
}

impl FromStr for ObisCode {
    type Err = ObisParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s.trim().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let code: ObisCode = "1.0.99.1.0.255".parse().unwrap();
        assert_eq!(code, ObisCode::new(1, 0, 99, 1, 0, 255));
        assert_eq!(code.to_string(), "1.0.99.1.0.255");
        assert_eq!("1-0:99.1.0*255".parse::<ObisCode>(), Ok(code));
        assert_eq!(
            ObisCode::must("0.0.1.0.0.255"),
            ObisCode::new(0, 0, 1, 0, 0, 255)
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!("1.0.99.1.0".parse::<ObisCode>().is_err());
        assert!("1.0.99.1.0.256".parse::<ObisCode>().is_err());
        assert!("1.0.99.1.0.255.1".parse::<ObisCode>().is_err());
        assert!("1..99.1.0.255".parse::<ObisCode>().is_err());
        assert!("a.b.c.d.e.f".parse::<ObisCode>().is_err());
        assert!("".parse::<ObisCode>().is_err());
    }
}

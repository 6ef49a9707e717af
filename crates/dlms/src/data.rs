//! [`Data`]: the COSEM value type (the CHOICE in IEC 62056-6-2 / Blue Book `Data`).
//!
//! Encoding and decoding live in [`crate::axdr`].

use crate::datetime::{Date, DateTime, Time};

/// One COSEM value. Tags are the A-XDR CHOICE tags.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// tag 0
    Null,
    /// tag 1
    Array(Vec<Data>),
    /// tag 2
    Structure(Vec<Data>),
    /// tag 3
    Boolean(bool),
    /// tag 4 (boxed, like the compact array, so that `Data` stays 32 bytes: decoding a profile
    /// buffer moves many values, and the rare large variants would make every move bigger)
    BitString(Box<BitString>),
    /// tag 5, i32
    DoubleLong(i32),
    /// tag 6, u32
    DoubleLongUnsigned(u32),
    /// tag 9
    OctetString(Vec<u8>),
    /// tag 10; kept as bytes so nothing a meter sends is lost
    VisibleString(Vec<u8>),
    /// tag 12
    Utf8String(String),
    /// tag 13, one byte of packed BCD kept as sent
    Bcd(u8),
    /// tag 15, i8
    Integer(i8),
    /// tag 16, i16
    Long(i16),
    /// tag 17, u8
    Unsigned(u8),
    /// tag 18, u16
    LongUnsigned(u16),
    /// tag 19
    CompactArray(Box<CompactArray>),
    /// tag 20, i64
    Long64(i64),
    /// tag 21, u64
    Long64Unsigned(u64),
    /// tag 22
    Enum(u8),
    /// tag 23
    Float32(f32),
    /// tag 24
    Float64(f64),
    /// tag 25
    DateTime(DateTime),
    /// tag 26
    Date(Date),
    /// tag 27
    Time(Time),
    /// tag 255
    DontCare,
}

/// A bit string: `len` bits, most significant bit of `bytes[0]` first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BitString {
    pub bytes: Vec<u8>,
    pub len: usize,
}

impl BitString {
    /// Bit `i` counted from the first (most significant) bit.
    pub fn bit(&self, i: usize) -> bool {
        i < self.len
            && self
                .bytes
                .get(i / 8)
                .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
    }

    /// A bit string of `len` bits with the given bits set.
    pub fn with_bits(len: usize, set: impl IntoIterator<Item = usize>) -> Self {
        let mut bytes = vec![0u8; len.div_ceil(8)];
        for i in set.into_iter().filter(|i| *i < len) {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
        BitString { bytes, len }
    }
}

/// The type of the elements of a compact array (Blue Book `TypeDescription`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDescription {
    /// A simple type, given by its [`Data`] tag.
    Simple(u8),
    Array {
        count: u16,
        element: Box<TypeDescription>,
    },
    Structure(Vec<TypeDescription>),
}

/// tag 19: a header describing the element type once, then the elements without tags.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactArray {
    pub description: TypeDescription,
    /// The decoded elements, each of the type given by `description`.
    pub elements: Vec<Data>,
}

impl Data {
    pub fn bit_string(bits: BitString) -> Data {
        Data::BitString(Box::new(bits))
    }

    pub fn compact_array(array: CompactArray) -> Data {
        Data::CompactArray(Box::new(array))
    }

    /// The A-XDR tag of this value.
    pub fn tag(&self) -> u8 {
        match self {
            Data::Null => 0,
            Data::Array(_) => 1,
            Data::Structure(_) => 2,
            Data::Boolean(_) => 3,
            Data::BitString(_) => 4,
            Data::DoubleLong(_) => 5,
            Data::DoubleLongUnsigned(_) => 6,
            Data::OctetString(_) => 9,
            Data::VisibleString(_) => 10,
            Data::Utf8String(_) => 12,
            Data::Bcd(_) => 13,
            Data::Integer(_) => 15,
            Data::Long(_) => 16,
            Data::Unsigned(_) => 17,
            Data::LongUnsigned(_) => 18,
            Data::CompactArray(_) => 19,
            Data::Long64(_) => 20,
            Data::Long64Unsigned(_) => 21,
            Data::Enum(_) => 22,
            Data::Float32(_) => 23,
            Data::Float64(_) => 24,
            Data::DateTime(_) => 25,
            Data::Date(_) => 26,
            Data::Time(_) => 27,
            Data::DontCare => 255,
        }
    }

    /// The value as a signed integer, for any integer-like variant (integers, enum, bcd, boolean).
    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            Data::Boolean(b) => b as i64,
            Data::DoubleLong(v) => v as i64,
            Data::DoubleLongUnsigned(v) => v as i64,
            Data::Integer(v) => v as i64,
            Data::Long(v) => v as i64,
            Data::Unsigned(v) => v as i64,
            Data::LongUnsigned(v) => v as i64,
            Data::Long64(v) => v,
            Data::Long64Unsigned(v) => i64::try_from(v).ok()?,
            Data::Enum(v) => v as i64,
            _ => return None,
        })
    }

    /// The value as a float, for integers and floats.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Data::Float32(v) => Some(v as f64),
            Data::Float64(v) => Some(v),
            Data::Long64Unsigned(v) => Some(v as f64),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_octets(&self) -> Option<&[u8]> {
        match self {
            Data::OctetString(b) | Data::VisibleString(b) => Some(b),
            Data::Utf8String(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// Elements of an array or structure.
    pub fn as_items(&self) -> Option<&[Data]> {
        match self {
            Data::Array(v) | Data::Structure(v) => Some(v),
            Data::CompactArray(c) => Some(&c.elements),
            _ => None,
        }
    }

    /// A date-time, whether sent as tag 25 or (as COSEM clocks usually do) as a 12-byte octet string.
    pub fn as_datetime(&self) -> Option<DateTime> {
        match self {
            Data::DateTime(dt) => Some(*dt),
            Data::OctetString(b) if b.len() == 12 => DateTime::from_bytes(b).ok(),
            _ => None,
        }
    }
}

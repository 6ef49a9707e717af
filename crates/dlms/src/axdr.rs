//! A-XDR encoding and decoding of [`Data`] (IEC 61334-6, as used by DLMS/COSEM), including the
//! compact array (tag 19) and its [`TypeDescription`].
//!
//! Decoding is defensive: nesting is limited to [`MAX_DEPTH`], every element count is checked
//! against the bytes left before anything is allocated, and malformed input is a
//! [`DecodeError`], never a panic.

use crate::codec::{DecodeError, Reader, put_length};
use crate::data::{BitString, CompactArray, Data, TypeDescription};
use crate::datetime::{Date, DateTime, Time};

/// Deepest nesting of arrays, structures and compact-array type descriptions a decoder accepts.
pub const MAX_DEPTH: usize = 32;

/// Most elements reserved ahead for one array or structure; larger ones grow as they decode.
/// A count is only checked against the bytes left, and every nesting level could claim all of
/// them: reserving in full would let a hostile peer make each level allocate 32 bytes per input
/// byte before a single element is read.
const MAX_PREALLOCATED: usize = 1024;

impl Data {
    /// Appends the tagged A-XDR encoding of this value.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        encode_body(self, out);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        self.encode(&mut out);
        out
    }

    /// Reads one value from the reader, leaves the rest.
    pub fn decode(r: &mut Reader<'_>) -> Result<Data, DecodeError> {
        decode_value(r, 0)
    }

    /// Decodes exactly one value; trailing bytes are an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Data, DecodeError> {
        let mut r = Reader::new(bytes);
        let data = decode_value(&mut r, 0)?;
        r.finish("data")?;
        Ok(data)
    }
}

impl TypeDescription {
    /// Appends the encoding of a compact-array contents description.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TypeDescription::Simple(tag) => out.push(*tag),
            TypeDescription::Array { count, element } => {
                out.push(1);
                out.extend_from_slice(&count.to_be_bytes());
                element.encode(out);
            }
            TypeDescription::Structure(fields) => {
                out.push(2);
                put_length(out, fields.len());
                for field in fields {
                    field.encode(out);
                }
            }
        }
    }

    /// Reads one type description. Rejects nested compact arrays, unknown tags, and arrays of
    /// elements that would take no bytes at all (which would let a few input bytes describe an
    /// unbounded number of values).
    pub fn decode(r: &mut Reader<'_>) -> Result<TypeDescription, DecodeError> {
        decode_description(r, 0)
    }

    /// The fewest bytes one untagged value of this type occupies in compact-array contents.
    pub fn min_encoded_len(&self) -> usize {
        match self {
            TypeDescription::Simple(tag) => simple_min_len(*tag),
            TypeDescription::Array { count, element } => {
                (*count as usize).saturating_mul(element.min_encoded_len())
            }
            TypeDescription::Structure(fields) => fields
                .iter()
                .fold(0usize, |acc, f| acc.saturating_add(f.min_encoded_len())),
        }
    }
}

/// Bytes after the tag: lengths and counts, then content; children carry their own tags.
fn encode_body(data: &Data, out: &mut Vec<u8>) {
    match data {
        Data::Null | Data::DontCare => {}
        Data::Array(items) | Data::Structure(items) => {
            put_length(out, items.len());
            for item in items {
                item.encode(out);
            }
        }
        Data::CompactArray(compact) => encode_compact_array(compact, out),
        _ => encode_simple_body(data, out),
    }
}

/// The contents of a simple (non-container) value, as it appears both after its tag and,
/// untagged, inside compact-array contents.
fn encode_simple_body(data: &Data, out: &mut Vec<u8>) {
    match data {
        Data::Null | Data::DontCare => {}
        Data::Boolean(b) => out.push(u8::from(*b)),
        Data::BitString(bits) => {
            put_length(out, bits.len);
            let n = bits.len.div_ceil(8);
            let have = bits.bytes.len().min(n);
            out.extend_from_slice(&bits.bytes[..have]);
            out.resize(out.len() + (n - have), 0);
        }
        Data::DoubleLong(v) => out.extend_from_slice(&v.to_be_bytes()),
        Data::DoubleLongUnsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
        Data::OctetString(b) | Data::VisibleString(b) => {
            put_length(out, b.len());
            out.extend_from_slice(b);
        }
        Data::Utf8String(s) => {
            put_length(out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Data::Bcd(v) | Data::Unsigned(v) | Data::Enum(v) => out.push(*v),
        Data::Integer(v) => out.push(*v as u8),
        Data::Long(v) => out.extend_from_slice(&v.to_be_bytes()),
        Data::LongUnsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
        Data::Long64(v) => out.extend_from_slice(&v.to_be_bytes()),
        Data::Long64Unsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
        Data::Float32(v) => out.extend_from_slice(&v.to_be_bytes()),
        Data::Float64(v) => out.extend_from_slice(&v.to_be_bytes()),
        Data::DateTime(dt) => out.extend_from_slice(&dt.to_bytes()),
        Data::Date(d) => out.extend_from_slice(&d.to_bytes()),
        Data::Time(t) => out.extend_from_slice(&t.to_bytes()),
        // Containers are handled by the callers; kept total so the match needs no panic.
        Data::Array(_) | Data::Structure(_) | Data::CompactArray(_) => encode_body(data, out),
    }
}

/// Description, then the contents as a length-prefixed octet string of untagged elements.
///
/// Elements are written according to their own variant; an element that does not match the
/// description produces contents that will not decode back to the same value.
fn encode_compact_array(compact: &CompactArray, out: &mut Vec<u8>) {
    compact.description.encode(out);
    let start = out.len();
    for element in &compact.elements {
        encode_untagged(element, out);
    }
    let len = out.len() - start;
    let mut prefix = Vec::with_capacity(5);
    put_length(&mut prefix, len);
    out.splice(start..start, prefix);
}

/// A compact-array element: no tags and no counts (the description has them), but strings and
/// bit strings keep their lengths.
fn encode_untagged(data: &Data, out: &mut Vec<u8>) {
    match data {
        Data::Array(items) | Data::Structure(items) => {
            for item in items {
                encode_untagged(item, out);
            }
        }
        _ => encode_simple_body(data, out),
    }
}

fn decode_value(r: &mut Reader<'_>, depth: usize) -> Result<Data, DecodeError> {
    let at = r.position();
    let tag = r.u8("data tag")?;
    match tag {
        1 | 2 => {
            let what = if tag == 1 { "array" } else { "structure" };
            if depth >= MAX_DEPTH {
                return Err(DecodeError::TooDeep {
                    what,
                    limit: MAX_DEPTH,
                });
            }
            let count = element_count(r, what, 1)?;
            let mut items = Vec::with_capacity(count.min(MAX_PREALLOCATED));
            for _ in 0..count {
                items.push(decode_value(r, depth + 1)?);
            }
            Ok(if tag == 1 {
                Data::Array(items)
            } else {
                Data::Structure(items)
            })
        }
        19 => {
            if depth >= MAX_DEPTH {
                return Err(DecodeError::TooDeep {
                    what: "compact-array",
                    limit: MAX_DEPTH,
                });
            }
            decode_compact_array(r, depth + 1).map(Data::compact_array)
        }
        _ => decode_simple(tag, r, at),
    }
}

/// A count of elements each at least `min_len` bytes long, checked against the input left.
fn element_count(
    r: &mut Reader<'_>,
    what: &'static str,
    min_len: usize,
) -> Result<usize, DecodeError> {
    let at = r.position();
    let count = r.length(what)?;
    check_fits(r, what, count, min_len, at)?;
    Ok(count)
}

fn check_fits(
    r: &Reader<'_>,
    what: &'static str,
    count: usize,
    min_len: usize,
    at: usize,
) -> Result<(), DecodeError> {
    let needed = count.saturating_mul(min_len);
    if needed > r.remaining() {
        return Err(DecodeError::UnexpectedEnd {
            what,
            needed: needed - r.remaining(),
            at,
        });
    }
    Ok(())
}

/// Fewest bytes of the untagged contents of a simple type (0 for null, dont-care and tags that
/// are not simple types).
fn simple_min_len(tag: u8) -> usize {
    match tag {
        3 | 4 | 9 | 10 | 12 | 13 | 15 | 17 | 22 => 1,
        16 | 18 => 2,
        5 | 6 | 23 => 4,
        20 | 21 | 24 => 8,
        25 => DateTime::LEN,
        26 => Date::LEN,
        27 => Time::LEN,
        _ => 0,
    }
}

fn is_simple_tag(tag: u8) -> bool {
    matches!(tag, 0 | 3..=6 | 9 | 10 | 12 | 13 | 15..=18 | 20..=27 | 255)
}

/// The untagged contents of a simple value whose tag has been read (at offset `at`).
fn decode_simple(tag: u8, r: &mut Reader<'_>, at: usize) -> Result<Data, DecodeError> {
    Ok(match tag {
        0 => Data::Null,
        3 => Data::Boolean(r.u8("boolean")? != 0),
        4 => {
            let len_at = r.position();
            let len = r.length("bit-string")?;
            let n = len.div_ceil(8);
            check_fits(r, "bit-string", n, 1, len_at)?;
            Data::bit_string(BitString {
                bytes: r.take(n, "bit-string")?.to_vec(),
                len,
            })
        }
        5 => Data::DoubleLong(r.u32("double-long")? as i32),
        6 => Data::DoubleLongUnsigned(r.u32("double-long-unsigned")?),
        9 => Data::OctetString(r.octets("octet-string")?.to_vec()),
        10 => Data::VisibleString(r.octets("visible-string")?.to_vec()),
        12 => {
            let bytes = r.octets("utf8-string")?;
            let s = std::str::from_utf8(bytes)
                .map_err(|e| DecodeError::invalid("utf8-string", e.to_string()))?;
            Data::Utf8String(s.to_owned())
        }
        13 => Data::Bcd(r.u8("bcd")?),
        15 => Data::Integer(r.u8("integer")? as i8),
        16 => Data::Long(r.u16("long")? as i16),
        17 => Data::Unsigned(r.u8("unsigned")?),
        18 => Data::LongUnsigned(r.u16("long-unsigned")?),
        20 => Data::Long64(r.u64("long64")? as i64),
        21 => Data::Long64Unsigned(r.u64("long64-unsigned")?),
        22 => Data::Enum(r.u8("enum")?),
        23 => Data::Float32(f32::from_be_bytes(r.array("float32")?)),
        24 => Data::Float64(f64::from_be_bytes(r.array("float64")?)),
        25 => Data::DateTime(DateTime::read(r)?),
        26 => Data::Date(Date::read(r)?),
        27 => Data::Time(Time::read(r)?),
        255 => Data::DontCare,
        _ => {
            return Err(DecodeError::UnknownTag {
                what: "data",
                tag,
                at,
            });
        }
    })
}

fn decode_description(r: &mut Reader<'_>, depth: usize) -> Result<TypeDescription, DecodeError> {
    const WHAT: &str = "compact-array type description";
    if depth >= MAX_DEPTH {
        return Err(DecodeError::TooDeep {
            what: WHAT,
            limit: MAX_DEPTH,
        });
    }
    let at = r.position();
    let tag = r.u8(WHAT)?;
    match tag {
        1 => {
            let count = r.u16(WHAT)?;
            let element = decode_description(r, depth + 1)?;
            if count > 0 && element.min_encoded_len() == 0 {
                return Err(DecodeError::invalid(
                    WHAT,
                    format!("array of {count} elements that occupy no bytes"),
                ));
            }
            Ok(TypeDescription::Array {
                count,
                element: Box::new(element),
            })
        }
        2 => {
            let count = element_count(r, WHAT, 1)?;
            let mut fields = Vec::with_capacity(count.min(MAX_PREALLOCATED));
            for _ in 0..count {
                fields.push(decode_description(r, depth + 1)?);
            }
            Ok(TypeDescription::Structure(fields))
        }
        19 => Err(DecodeError::invalid(
            WHAT,
            "compact array nested in a compact array",
        )),
        t if is_simple_tag(t) => Ok(TypeDescription::Simple(t)),
        _ => Err(DecodeError::UnknownTag {
            what: WHAT,
            tag,
            at,
        }),
    }
}

fn decode_compact_array(r: &mut Reader<'_>, depth: usize) -> Result<CompactArray, DecodeError> {
    let description = decode_description(r, depth)?;
    let contents = r.octets("compact-array contents")?;
    // Offsets in errors from the contents reader are made absolute again.
    let base = r.position() - contents.len();
    let min_len = description.min_encoded_len();
    if min_len == 0 {
        if contents.is_empty() {
            return Ok(CompactArray {
                description,
                elements: Vec::new(),
            });
        }
        return Err(DecodeError::invalid(
            "compact-array contents",
            "elements of the described type occupy no bytes",
        ));
    }
    let mut cr = Reader::new(contents);
    let mut elements = Vec::with_capacity((contents.len() / min_len).min(MAX_PREALLOCATED));
    while !cr.is_empty() {
        let element = decode_untagged(&mut cr, &description, depth).map_err(|e| shift(e, base))?;
        elements.push(element);
    }
    Ok(CompactArray {
        description,
        elements,
    })
}

/// One compact-array element of the given (already validated) type.
fn decode_untagged(
    r: &mut Reader<'_>,
    description: &TypeDescription,
    depth: usize,
) -> Result<Data, DecodeError> {
    match description {
        TypeDescription::Simple(tag) => {
            let at = r.position();
            decode_simple(*tag, r, at)
        }
        TypeDescription::Array { count, element } => {
            if depth >= MAX_DEPTH {
                return Err(DecodeError::TooDeep {
                    what: "compact-array element",
                    limit: MAX_DEPTH,
                });
            }
            let count = *count as usize;
            // Validated when the description was read: a non-empty array's elements take at
            // least one byte each.
            check_fits(r, "compact-array element", count, 1, r.position())?;
            let mut items = Vec::with_capacity(count.min(MAX_PREALLOCATED));
            for _ in 0..count {
                items.push(decode_untagged(r, element, depth + 1)?);
            }
            Ok(Data::Array(items))
        }
        TypeDescription::Structure(fields) => {
            if depth >= MAX_DEPTH {
                return Err(DecodeError::TooDeep {
                    what: "compact-array element",
                    limit: MAX_DEPTH,
                });
            }
            let mut items = Vec::with_capacity(fields.len());
            for field in fields {
                items.push(decode_untagged(r, field, depth + 1)?);
            }
            Ok(Data::Structure(items))
        }
    }
}

fn shift(e: DecodeError, base: usize) -> DecodeError {
    match e {
        DecodeError::UnexpectedEnd { what, needed, at } => DecodeError::UnexpectedEnd {
            what,
            needed,
            at: at.saturating_add(base),
        },
        DecodeError::UnknownTag { what, tag, at } => DecodeError::UnknownTag {
            what,
            tag,
            at: at.saturating_add(base),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datetime::ClockStatus;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    fn assert_both_ways(data: Data, bytes: &str) {
        let bytes = hex(bytes);
        assert_eq!(data.to_bytes(), bytes, "encoding {data:?}");
        assert_eq!(Data::from_bytes(&bytes), Ok(data));
    }

    #[test]
    fn simple_values_have_their_known_encodings() {
        assert_both_ways(Data::LongUnsigned(0x1234), "12 1234");
        assert_both_ways(Data::Null, "00");
        assert_both_ways(Data::DontCare, "ff");
        assert_both_ways(Data::Boolean(true), "03 01");
        assert_both_ways(Data::DoubleLong(-2), "05 fffffffe");
        assert_both_ways(Data::DoubleLongUnsigned(230_000), "06 00038270");
        assert_both_ways(Data::Integer(-1), "0f ff");
        assert_both_ways(Data::Long(-300), "10 fed4");
        assert_both_ways(Data::Unsigned(200), "11 c8");
        assert_both_ways(Data::Long64(-1), "14 ffffffffffffffff");
        assert_both_ways(
            Data::Long64Unsigned(0x0102030405060708),
            "15 0102030405060708",
        );
        assert_both_ways(Data::Enum(30), "16 1e");
        assert_both_ways(Data::Bcd(0x42), "0d 42");
        assert_both_ways(Data::Float32(1.5), "17 3fc00000");
        assert_both_ways(Data::Float64(-2.0), "18 c000000000000000");
        assert_both_ways(Data::VisibleString(b"AB".to_vec()), "0a 02 4142");
        assert_both_ways(Data::Utf8String("₹".into()), "0c 03 e282b9");
        assert_both_ways(Data::Date(Date::NOT_SPECIFIED), "1a ffffffffff");
        assert_both_ways(
            Data::Time(Time {
                hour: 23,
                minute: 59,
                second: 0,
                hundredths: 0xff,
            }),
            "1b 173b00ff",
        );
    }

    #[test]
    fn a_structure_of_an_octet_string_and_a_double_long_unsigned() {
        let data = Data::Structure(vec![
            Data::OctetString(vec![1, 0, 99, 1, 0, 255]),
            Data::DoubleLongUnsigned(5),
        ]);
        assert_both_ways(data, "02 02 09 06 010063 0100ff 06 00000005");
    }

    #[test]
    fn long_octet_strings_use_a_multi_byte_length() {
        let data = Data::OctetString(vec![0xAA; 300]);
        let bytes = data.to_bytes();
        assert_eq!(&bytes[..4], &[0x09, 0x82, 0x01, 0x2c]);
        assert_eq!(bytes.len(), 304);
        assert_eq!(Data::from_bytes(&bytes), Ok(data));
    }

    #[test]
    fn a_bit_string_of_ten_bits() {
        let bits = BitString::with_bits(10, [0, 9]);
        assert_eq!(bits.bytes, vec![0x80, 0x40]);
        assert_both_ways(Data::bit_string(bits), "04 0a 8040");
        // Encoding pads bytes the caller left out.
        let short = Data::bit_string(BitString {
            bytes: vec![],
            len: 9,
        });
        assert_eq!(short.to_bytes(), hex("04 09 0000"));
    }

    #[test]
    fn a_date_time_in_ist() {
        let dt = DateTime {
            date: Date {
                year: 2026,
                month: 11,
                day: 27,
                weekday: 5,
            },
            time: Time {
                hour: 0,
                minute: 15,
                second: 0,
                hundredths: 0,
            },
            deviation: -330,
            clock_status: ClockStatus::OK,
        };
        assert_both_ways(Data::DateTime(dt), "19 07ea0b1b05 000f0000 feb6 00");
    }

    #[test]
    fn a_compact_array_of_structures() {
        let description = TypeDescription::Structure(vec![
            TypeDescription::Simple(18),
            TypeDescription::Simple(6),
        ]);
        let elements = vec![
            Data::Structure(vec![Data::LongUnsigned(1), Data::DoubleLongUnsigned(10)]),
            Data::Structure(vec![Data::LongUnsigned(2), Data::DoubleLongUnsigned(20)]),
        ];
        assert_both_ways(
            Data::compact_array(CompactArray {
                description,
                elements,
            }),
            "13 02 02 12 06 0c 0001 0000000a 0002 00000014",
        );
    }

    #[test]
    fn a_compact_array_of_fixed_arrays_with_strings() {
        let description = TypeDescription::Array {
            count: 2,
            element: Box::new(TypeDescription::Simple(9)),
        };
        let elements = vec![Data::Array(vec![
            Data::OctetString(vec![0xAB]),
            Data::OctetString(vec![]),
        ])];
        assert_both_ways(
            Data::compact_array(CompactArray {
                description,
                elements,
            }),
            "13 01 0002 09 03 01ab 00",
        );
    }

    #[test]
    fn decode_leaves_the_rest_and_from_bytes_rejects_it() {
        let bytes = hex("11 05 11 06");
        let mut r = Reader::new(&bytes);
        assert_eq!(Data::decode(&mut r), Ok(Data::Unsigned(5)));
        assert_eq!(r.rest(), &[0x11, 0x06]);
        assert_eq!(
            Data::from_bytes(&bytes),
            Err(DecodeError::TrailingBytes {
                what: "data",
                count: 2
            })
        );
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        assert!(matches!(
            Data::from_bytes(&[]),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        assert!(matches!(
            Data::from_bytes(&[0x07, 0]),
            Err(DecodeError::UnknownTag { tag: 7, at: 0, .. })
        ));
        assert!(matches!(
            Data::from_bytes(&hex("12 12")),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        assert!(matches!(
            Data::from_bytes(&hex("0c 02 c328")),
            Err(DecodeError::Invalid { .. })
        ));
        // An array claiming 2^32-1 elements in six bytes fails before allocating.
        assert!(matches!(
            Data::from_bytes(&hex("01 84 ffffffff 00")),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        // A bit string claiming more bits than there are bytes.
        assert!(matches!(
            Data::from_bytes(&hex("04 84 ffffffff")),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let mut ok = [0x01, 0x01].repeat(MAX_DEPTH);
        ok.push(0x00);
        assert!(Data::from_bytes(&ok).is_ok());
        let mut deep = [0x01, 0x01].repeat(MAX_DEPTH + 1);
        deep.push(0x00);
        assert_eq!(
            Data::from_bytes(&deep),
            Err(DecodeError::TooDeep {
                what: "array",
                limit: MAX_DEPTH
            })
        );
        let mut deep_description = vec![0x13];
        deep_description.extend([0x02, 0x01].repeat(MAX_DEPTH + 1));
        deep_description.extend([0x11, 0x00]);
        assert!(matches!(
            Data::from_bytes(&deep_description),
            Err(DecodeError::TooDeep { .. })
        ));
    }

    #[test]
    fn hostile_compact_arrays_are_refused() {
        // Elements of no size: a few bytes must not describe unbounded values.
        assert!(matches!(
            Data::from_bytes(&hex("13 01 ffff 01 ffff 00 01 00")),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(matches!(
            Data::from_bytes(&hex("13 00 01 00")),
            Err(DecodeError::Invalid { .. })
        ));
        // Nested compact array and unknown description tag.
        assert!(matches!(
            Data::from_bytes(&hex("13 13 00")),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(matches!(
            Data::from_bytes(&hex("13 07 00")),
            Err(DecodeError::UnknownTag { tag: 7, at: 1, .. })
        ));
        // An element cut short inside the contents reports an absolute offset.
        assert_eq!(
            Data::from_bytes(&hex("13 12 03 0001 00")),
            Err(DecodeError::UnexpectedEnd {
                what: "long-unsigned",
                needed: 1,
                at: 5
            })
        );
        // A described array longer than the contents.
        assert!(matches!(
            Data::from_bytes(&hex("13 01 ffff 11 02 0102")),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        // An empty contents of a zero-size type is an empty compact array.
        assert_eq!(
            Data::from_bytes(&hex("13 00 00")),
            Ok(Data::compact_array(CompactArray {
                description: TypeDescription::Simple(0),
                elements: vec![]
            }))
        );
    }
}

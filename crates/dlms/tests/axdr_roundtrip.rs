//! Property tests of the A-XDR codec: every `Data` the strategy can build survives
//! encode → decode unchanged (floats compared by bits, so NaN payloads count), and decoding
//! arbitrary or damaged bytes returns, Ok or Err, without panicking.

use dlms::axdr::MAX_DEPTH;
use dlms::codec::Reader;
use dlms::data::{BitString, CompactArray, TypeDescription};
use dlms::{ClockStatus, Data, Date, DateTime, Time};
use proptest::collection::vec;
use proptest::prelude::*;

/// Structural equality with floats compared by their bits.
fn same(a: &Data, b: &Data) -> bool {
    match (a, b) {
        (Data::Float32(x), Data::Float32(y)) => x.to_bits() == y.to_bits(),
        (Data::Float64(x), Data::Float64(y)) => x.to_bits() == y.to_bits(),
        (Data::Array(x), Data::Array(y)) | (Data::Structure(x), Data::Structure(y)) => {
            all_same(x, y)
        }
        (Data::CompactArray(x), Data::CompactArray(y)) => {
            x.description == y.description && all_same(&x.elements, &y.elements)
        }
        _ => a == b,
    }
}

fn all_same(x: &[Data], y: &[Data]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
}

fn date() -> impl Strategy<Value = Date> {
    any::<[u8; 5]>().prop_map(|b| Date::from_bytes(&b).unwrap())
}

fn time() -> impl Strategy<Value = Time> {
    any::<[u8; 4]>().prop_map(|b| Time::from_bytes(&b).unwrap())
}

fn datetime() -> impl Strategy<Value = DateTime> {
    (date(), time(), any::<i16>(), any::<u8>()).prop_map(|(date, time, deviation, status)| {
        DateTime {
            date,
            time,
            deviation,
            clock_status: ClockStatus(status),
        }
    })
}

fn bit_string() -> impl Strategy<Value = BitString> {
    (0usize..70).prop_flat_map(|len| {
        vec(any::<u8>(), len.div_ceil(8)).prop_map(move |bytes| BitString { bytes, len })
    })
}

fn utf8() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..12).prop_map(String::from_iter)
}

fn octets() -> impl Strategy<Value = Vec<u8>> {
    // Mostly short, sometimes past 127 and 255 bytes to exercise multi-byte lengths.
    prop_oneof![4 => vec(any::<u8>(), 0..16), 1 => vec(any::<u8>(), 120..300)]
}

/// Tags of the simple (non-container) types.
const SIMPLE_TAGS: [u8; 24] = [
    0, 3, 4, 5, 6, 9, 10, 12, 13, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 255, 17, 18,
];

/// Any value of the simple type with this tag.
fn simple_of(tag: u8) -> BoxedStrategy<Data> {
    match tag {
        0 => Just(Data::Null).boxed(),
        3 => any::<bool>().prop_map(Data::Boolean).boxed(),
        4 => bit_string().prop_map(Data::bit_string).boxed(),
        5 => any::<i32>().prop_map(Data::DoubleLong).boxed(),
        6 => any::<u32>().prop_map(Data::DoubleLongUnsigned).boxed(),
        9 => octets().prop_map(Data::OctetString).boxed(),
        10 => vec(any::<u8>(), 0..16)
            .prop_map(Data::VisibleString)
            .boxed(),
        12 => utf8().prop_map(Data::Utf8String).boxed(),
        13 => any::<u8>().prop_map(Data::Bcd).boxed(),
        15 => any::<i8>().prop_map(Data::Integer).boxed(),
        16 => any::<i16>().prop_map(Data::Long).boxed(),
        17 => any::<u8>().prop_map(Data::Unsigned).boxed(),
        18 => any::<u16>().prop_map(Data::LongUnsigned).boxed(),
        20 => any::<i64>().prop_map(Data::Long64).boxed(),
        21 => any::<u64>().prop_map(Data::Long64Unsigned).boxed(),
        22 => any::<u8>().prop_map(Data::Enum).boxed(),
        // From raw bits, so NaNs with payloads, infinities and subnormals all appear.
        23 => any::<u32>()
            .prop_map(|b| Data::Float32(f32::from_bits(b)))
            .boxed(),
        24 => any::<u64>()
            .prop_map(|b| Data::Float64(f64::from_bits(b)))
            .boxed(),
        25 => datetime().prop_map(Data::DateTime).boxed(),
        26 => date().prop_map(Data::Date).boxed(),
        27 => time().prop_map(Data::Time).boxed(),
        255 => Just(Data::DontCare).boxed(),
        other => panic!("not a simple tag: {other}"),
    }
}

fn simple() -> impl Strategy<Value = Data> {
    proptest::sample::select(SIMPLE_TAGS.to_vec()).prop_flat_map(simple_of)
}

/// A description a compact array can carry: every non-empty array's elements, and the whole,
/// occupy at least one byte (the decoder refuses the rest as unbounded).
fn description() -> impl Strategy<Value = TypeDescription> {
    let leaf = proptest::sample::select(SIMPLE_TAGS.to_vec()).prop_map(TypeDescription::Simple);
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            (0u16..4, inner.clone()).prop_map(|(count, e)| TypeDescription::Array {
                count,
                element: Box::new(e)
            }),
            vec(inner, 0..4).prop_map(TypeDescription::Structure),
        ]
    })
    .prop_filter("elements must occupy bytes", |d| {
        d.min_encoded_len() > 0 && sized_arrays(d)
    })
}

fn sized_arrays(d: &TypeDescription) -> bool {
    match d {
        TypeDescription::Simple(_) => true,
        TypeDescription::Array { count, element } => {
            (*count == 0 || element.min_encoded_len() > 0) && sized_arrays(element)
        }
        TypeDescription::Structure(fields) => fields.iter().all(sized_arrays),
    }
}

/// Any value of the described type, as it would appear among a compact array's elements.
fn value_of(d: &TypeDescription) -> BoxedStrategy<Data> {
    match d {
        TypeDescription::Simple(tag) => simple_of(*tag),
        TypeDescription::Array { count, element } => vec(value_of(element), *count as usize)
            .prop_map(Data::Array)
            .boxed(),
        TypeDescription::Structure(fields) => fields
            .iter()
            .map(value_of)
            .collect::<Vec<_>>()
            .prop_map(Data::Structure)
            .boxed(),
    }
}

fn compact_array() -> impl Strategy<Value = Data> {
    description().prop_flat_map(|description| {
        vec(value_of(&description), 0..6).prop_map(move |elements| {
            Data::compact_array(CompactArray {
                description: description.clone(),
                elements,
            })
        })
    })
}

fn data() -> impl Strategy<Value = Data> {
    let leaf = prop_oneof![8 => simple(), 1 => compact_array()];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Data::Array),
            vec(inner, 0..8).prop_map(Data::Structure),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_value_round_trips(x in data()) {
        let bytes = x.to_bytes();
        let back = Data::from_bytes(&bytes);
        prop_assert!(back.as_ref().is_ok_and(|y| same(&x, y)), "{x:?} -> {bytes:02x?} -> {back:?}");
        // The encoder is deterministic: the decoded value encodes to the same bytes.
        prop_assert_eq!(back.unwrap().to_bytes(), bytes);
    }

    #[test]
    fn decode_reads_exactly_one_value_and_leaves_the_rest(
        x in data(),
        tail in vec(any::<u8>(), 0..8),
    ) {
        let mut bytes = x.to_bytes();
        let len = bytes.len();
        bytes.extend_from_slice(&tail);
        let mut r = Reader::new(&bytes);
        let y = Data::decode(&mut r).unwrap();
        prop_assert!(same(&x, &y));
        prop_assert_eq!(r.position(), len);
        prop_assert_eq!(Data::from_bytes(&bytes).is_ok(), tail.is_empty());
    }

    #[test]
    fn every_proper_prefix_of_an_encoding_is_an_error(x in data()) {
        let bytes = x.to_bytes();
        for cut in 0..bytes.len() {
            prop_assert!(Data::from_bytes(&bytes[..cut]).is_err(), "prefix {cut} decoded");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_what_decodes_re_encodes(
        bytes in vec(any::<u8>(), 0..256),
    ) {
        if let Ok(x) = Data::from_bytes(&bytes) {
            let again = Data::from_bytes(&x.to_bytes());
            prop_assert!(again.as_ref().is_ok_and(|y| same(&x, y)), "{x:?} -> {again:?}");
        }
    }

    #[test]
    fn damaged_encodings_never_panic(
        x in data(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = x.to_bytes();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(y) = Data::from_bytes(&bytes) {
            let again = Data::from_bytes(&y.to_bytes());
            prop_assert!(again.as_ref().is_ok_and(|z| same(&y, z)));
        }
    }

    #[test]
    fn bytes_that_look_like_data_never_panic(
        // Biased towards container tags, counts and long lengths.
        bytes in vec(prop_oneof![
            Just(0x01u8), Just(0x02), Just(0x13), Just(0x82), Just(0x84), Just(0xff),
            0u8..0x1c,
        ], 0..128),
    ) {
        let _ = Data::from_bytes(&bytes);
    }
}

#[test]
fn nesting_at_the_limit_round_trips_and_one_more_is_refused() {
    let mut x = Data::Null;
    for _ in 0..MAX_DEPTH {
        x = Data::Structure(vec![x]);
    }
    assert_eq!(Data::from_bytes(&x.to_bytes()), Ok(x.clone()));
    let too_deep = Data::Array(vec![x]);
    assert!(matches!(
        Data::from_bytes(&too_deep.to_bytes()),
        Err(dlms::DecodeError::TooDeep { .. })
    ));
}

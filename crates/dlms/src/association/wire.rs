//! Small helpers the client and server share on top of the APDU and security codecs: spotting a
//! ciphered APDU, choosing the HLS function, and the A-XDR of a GET-with-list result carried in
//! data blocks.

use super::Authentication;
use crate::apdu::{Conformance, GetDataResult};
use crate::codec::{DecodeError, Reader};
use crate::data::BitString;
use crate::security::{CipheredApdu, Hls, Suite0Cipher};

/// Whether `apdu` starts with a ciphered-APDU tag (glo-, ded-, general-glo-, general-ded-).
pub(crate) fn is_ciphered(apdu: &[u8]) -> bool {
    apdu.first()
        .is_some_and(|tag| CipheredApdu::is_ciphered_tag(*tag))
}

/// The HLS function for an authentication, when it is HLS and its key is at hand.
pub(crate) fn hls<'a>(
    authentication: &'a Authentication,
    cipher: Option<&'a Suite0Cipher>,
) -> Option<Hls<'a>> {
    match authentication {
        Authentication::Hls { secret } => Some(Hls::Mechanism2(secret)),
        Authentication::HlsGmac => cipher.map(Hls::Mechanism5),
        Authentication::None | Authentication::Lls { .. } => None,
    }
}

/// `SEQUENCE OF Get-Data-Result`, what the raw data of a GET-with-list sent in blocks carries
/// (the server cuts it from the encoded GetResponse-With-List); the whole input must be used.
pub(crate) fn decode_get_data_results(bytes: &[u8]) -> Result<Vec<GetDataResult>, DecodeError> {
    let mut r = Reader::new(bytes);
    let count = r.length("get-data-result count")?;
    // Each result is at least two bytes: check before allocating.
    if count > r.remaining() / 2 {
        return Err(DecodeError::invalid(
            "get-data-result count",
            format!("{count} too large"),
        ));
    }
    let mut results = Vec::with_capacity(count);
    for _ in 0..count {
        results.push(GetDataResult::read(&mut r)?);
    }
    r.finish("get-data-result list")?;
    Ok(results)
}

/// The 24-bit conformance block as a bit string (bit 0 first), for the xDLMS context info.
pub(crate) fn conformance_bits(conformance: Conformance) -> BitString {
    BitString::with_bits(24, (0..24).filter(|i| conformance.0 & (1 << (23 - i)) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::DataAccessResult;
    use crate::codec::put_length;
    use crate::data::Data;

    /// `SEQUENCE OF Get-Data-Result`: what the raw data of a GET-with-list sent in blocks carries.
    fn encode_get_data_results(results: &[GetDataResult]) -> Vec<u8> {
        let mut out = Vec::new();
        put_length(&mut out, results.len());
        for result in results {
            result.write(&mut out);
        }
        out
    }

    #[test]
    fn get_data_result_lists_round_trip_and_reject_hostile_counts() {
        let results = vec![
            GetDataResult::Data(Data::LongUnsigned(7)),
            GetDataResult::Error(DataAccessResult::ObjectUndefined),
        ];
        let bytes = encode_get_data_results(&results);
        assert_eq!(bytes, [2, 0, 0x12, 0, 7, 1, 4]);
        assert_eq!(decode_get_data_results(&bytes), Ok(results));
        assert!(decode_get_data_results(&[0x84, 0x7f, 0xff, 0xff, 0xff, 0]).is_err());
        assert!(decode_get_data_results(&[1, 0, 0x12, 0, 7, 9]).is_err());
    }

    #[test]
    fn conformance_bits_put_bit_zero_first() {
        let bits = conformance_bits(Conformance(Conformance::GET | Conformance::ACTION));
        assert_eq!(bits.len, 24);
        assert!(bits.bit(19) && bits.bit(23));
        assert_eq!(bits.bytes, [0x00, 0x00, 0x11]);
    }
}

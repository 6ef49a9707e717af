//! HDLC parameter negotiation (IEC 62056-46 §6.4.4.4.3.2): the information field of SNRM and UA
//! (format identifier 0x81, group identifier 0x80, then parameters 5/6 maximum information field
//! length transmit/receive and 7/8 window size transmit/receive) and how the two proposals meet.

use crate::codec::{DecodeError, Reader};

use super::frame::MAX_INFO_LEN;

const FORMAT_ID: u8 = 0x81;
const GROUP_ID: u8 = 0x80;
const MAX_INFO_TX: u8 = 0x05;
const MAX_INFO_RX: u8 = 0x06;
const WINDOW_TX: u8 = 0x07;
const WINDOW_RX: u8 = 0x08;

/// The largest window IEC 62056-46 allows (sequence numbers count modulo 8).
pub const MAX_WINDOW: u8 = 7;

/// Link parameters, always from the point of view of the station holding them: `tx` is what this
/// station sends, `rx` what it receives. In a SNRM they are the client's, in a UA the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkParameters {
    /// Largest information field this station sends, in bytes.
    pub max_info_tx: u16,
    /// Largest information field this station accepts, in bytes.
    pub max_info_rx: u16,
    /// Frames this station may send before waiting for an acknowledgement.
    pub window_tx: u8,
    /// Frames this station can take before it acknowledges.
    pub window_rx: u8,
}

impl Default for LinkParameters {
    /// The defaults of IEC 62056-46, which apply when a SNRM or UA carries no parameters:
    /// 128-byte information fields and a window of 1.
    fn default() -> Self {
        LinkParameters {
            max_info_tx: 128,
            max_info_rx: 128,
            window_tx: 1,
            window_rx: 1,
        }
    }
}

impl LinkParameters {
    /// Fails unless information lengths are 1..=2035 and windows 1..=7.
    pub fn validate(&self) -> Result<(), String> {
        let info = 1..=MAX_INFO_LEN as u16;
        let window = 1..=MAX_WINDOW;
        if !info.contains(&self.max_info_tx) || !info.contains(&self.max_info_rx) {
            return Err(format!(
                "maximum information field lengths must be within {info:?}"
            ));
        }
        if !window.contains(&self.window_tx) || !window.contains(&self.window_rx) {
            return Err(format!("window sizes must be within {window:?}"));
        }
        Ok(())
    }

    /// What this station may use given its own limits (`self`) and the peer's stated parameters
    /// (`peer`, from the peer's point of view): the smaller of each pair.
    pub fn negotiate(&self, peer: &LinkParameters) -> LinkParameters {
        LinkParameters {
            max_info_tx: self.max_info_tx.min(peer.max_info_rx),
            max_info_rx: self.max_info_rx.min(peer.max_info_tx),
            window_tx: self.window_tx.min(peer.window_rx),
            window_rx: self.window_rx.min(peer.window_tx),
        }
    }

    /// The SNRM/UA information field carrying these parameters. Lengths take 1 byte up to 255,
    /// else 2; windows take 4 bytes, as in the Green Book examples.
    pub fn encode(&self) -> Vec<u8> {
        let mut params = Vec::with_capacity(20);
        for (id, value) in [
            (MAX_INFO_TX, self.max_info_tx),
            (MAX_INFO_RX, self.max_info_rx),
        ] {
            params.push(id);
            match u8::try_from(value) {
                Ok(v) => params.extend_from_slice(&[1, v]),
                Err(_) => {
                    params.push(2);
                    params.extend_from_slice(&value.to_be_bytes());
                }
            }
        }
        for (id, value) in [(WINDOW_TX, self.window_tx), (WINDOW_RX, self.window_rx)] {
            params.extend_from_slice(&[id, 4]);
            params.extend_from_slice(&u32::from(value).to_be_bytes());
        }
        let mut out = Vec::with_capacity(3 + params.len());
        out.extend_from_slice(&[FORMAT_ID, GROUP_ID, params.len() as u8]);
        out.extend_from_slice(&params);
        out
    }

    /// Parses a SNRM/UA information field. An empty field, or a parameter left out, means the
    /// default. Values above what HDLC can use are capped (2035 bytes, window 7); unknown
    /// parameters are skipped; a zero length or window is an error.
    pub fn decode(info: &[u8]) -> Result<LinkParameters, DecodeError> {
        let mut out = LinkParameters::default();
        if info.is_empty() {
            return Ok(out);
        }
        let mut r = Reader::new(info);
        r.expect(FORMAT_ID, "HDLC parameter format identifier")?;
        r.expect(GROUP_ID, "HDLC parameter group identifier")?;
        let group_len = usize::from(r.u8("HDLC parameter group length")?);
        let group = r.take(group_len, "HDLC parameter group")?;
        r.finish("HDLC parameter field")?;
        let mut g = Reader::new(group);
        while !g.is_empty() {
            let id = g.u8("HDLC parameter identifier")?;
            let len = usize::from(g.u8("HDLC parameter length")?);
            let bytes = g.take(len, "HDLC parameter value")?;
            if !(MAX_INFO_TX..=WINDOW_RX).contains(&id) {
                continue;
            }
            if bytes.is_empty() || bytes.len() > 4 {
                return Err(DecodeError::invalid(
                    "HDLC parameter value",
                    format!("parameter {id} has {len} bytes"),
                ));
            }
            let value = bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
            if value == 0 {
                return Err(DecodeError::invalid(
                    "HDLC parameter value",
                    format!("parameter {id} is 0"),
                ));
            }
            let info_len = value.min(MAX_INFO_LEN as u32) as u16;
            let window = value.min(u32::from(MAX_WINDOW)) as u8;
            match id {
                MAX_INFO_TX => out.max_info_tx = info_len,
                MAX_INFO_RX => out.max_info_rx = info_len,
                WINDOW_TX => out.window_tx = window,
                _ => out.window_rx = window,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn green_book_default_parameters() {
        let info = [
            0x81, 0x80, 0x12, 0x05, 0x01, 0x80, 0x06, 0x01, 0x80, 0x07, 0x04, 0x00, 0x00, 0x00,
            0x01, 0x08, 0x04, 0x00, 0x00, 0x00, 0x01,
        ];
        assert_eq!(LinkParameters::decode(&info), Ok(LinkParameters::default()));
        assert_eq!(LinkParameters::default().encode(), info);
    }

    #[test]
    fn two_byte_lengths_and_negotiation() {
        let client = LinkParameters {
            max_info_tx: 1024,
            max_info_rx: 512,
            window_tx: 7,
            window_rx: 1,
        };
        let decoded = LinkParameters::decode(&client.encode()).unwrap();
        assert_eq!(decoded, client);
        let server = LinkParameters {
            max_info_tx: 256,
            max_info_rx: 2000,
            window_tx: 1,
            window_rx: 3,
        };
        let at_server = server.negotiate(&client);
        assert_eq!(
            at_server,
            LinkParameters {
                max_info_tx: 256,
                max_info_rx: 1024,
                window_tx: 1,
                window_rx: 3
            }
        );
        // The client, reading the server's answer, lands on the mirror image.
        let at_client = client.negotiate(&at_server);
        assert_eq!(
            at_client,
            LinkParameters {
                max_info_tx: 1024,
                max_info_rx: 256,
                window_tx: 3,
                window_rx: 1
            }
        );
    }

    #[test]
    fn zero_window_is_refused_and_absent_parameters_default() {
        assert!(LinkParameters::decode(&[0x81, 0x80, 0x03, 0x07, 0x01, 0x00]).is_err());
        let only_rx = LinkParameters::decode(&[0x81, 0x80, 0x04, 0x06, 0x02, 0x01, 0x00]).unwrap();
        assert_eq!(
            only_rx,
            LinkParameters {
                max_info_rx: 256,
                ..LinkParameters::default()
            }
        );
    }
}

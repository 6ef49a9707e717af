//! Meter identity and state words: serial number, kind of meter, relay state, payment mode.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A meter's serial number, as it reads from the name plate (0.0.96.1.0.255).
///
/// Valid serials are non-empty, at most [`MeterSerial::MAX_LEN`] characters of printable ASCII
/// (space to `~`), with no leading or trailing space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct MeterSerial(String);

/// Serialised as its text, borrowed (every interval reading carries the serial, so copying it
/// for each, as `serde(into = "String")` does, costs an allocation per reading).
impl Serialize for MeterSerial {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeterSerialError {
    #[error("a meter serial cannot be empty")]
    Empty,
    #[error("a meter serial is at most {max} characters (found {found})")]
    TooLong { max: usize, found: usize },
    #[error("a meter serial is printable ASCII (character {position} is not)")]
    NotPrintable { position: usize },
    #[error("a meter serial cannot begin or end with a space")]
    OuterSpace,
}

impl MeterSerial {
    pub const MAX_LEN: usize = 32;

    pub fn new(s: impl Into<String>) -> Result<Self, MeterSerialError> {
        let s = s.into();
        if s.is_empty() {
            return Err(MeterSerialError::Empty);
        }
        if let Some(position) = s.chars().position(|c| !(c == ' ' || c.is_ascii_graphic())) {
            return Err(MeterSerialError::NotPrintable { position });
        }
        if s.len() > Self::MAX_LEN {
            return Err(MeterSerialError::TooLong {
                max: Self::MAX_LEN,
                found: s.len(),
            });
        }
        if s.starts_with(' ') || s.ends_with(' ') {
            return Err(MeterSerialError::OuterSpace);
        }
        Ok(MeterSerial(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MeterSerial {
    type Error = MeterSerialError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        MeterSerial::new(s)
    }
}

impl TryFrom<&str> for MeterSerial {
    type Error = MeterSerialError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        MeterSerial::new(s)
    }
}

impl std::str::FromStr for MeterSerial {
    type Err = MeterSerialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MeterSerial::new(s)
    }
}

impl From<MeterSerial> for String {
    fn from(s: MeterSerial) -> String {
        s.0
    }
}

impl AsRef<str> for MeterSerial {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MeterSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of meter IS 15959 describes: Part 2 whole-current meters, Part 3 CT-operated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterKind {
    SinglePhaseWholeCurrent,
    ThreePhaseWholeCurrent,
    ThreePhaseCtOperated,
}

impl MeterKind {
    pub const ALL: [MeterKind; 3] = [
        MeterKind::SinglePhaseWholeCurrent,
        MeterKind::ThreePhaseWholeCurrent,
        MeterKind::ThreePhaseCtOperated,
    ];

    /// The snake_case name used in files and records.
    pub fn as_str(self) -> &'static str {
        match self {
            MeterKind::SinglePhaseWholeCurrent => "single_phase_whole_current",
            MeterKind::ThreePhaseWholeCurrent => "three_phase_whole_current",
            MeterKind::ThreePhaseCtOperated => "three_phase_ct_operated",
        }
    }

    pub fn is_three_phase(self) -> bool {
        !matches!(self, MeterKind::SinglePhaseWholeCurrent)
    }

    /// Whether the meter has a load switch (CT-operated meters have none).
    pub fn has_load_switch(self) -> bool {
        !matches!(self, MeterKind::ThreePhaseCtOperated)
    }
}

/// The load switch as the disconnect control object reports it (IC 70 output state and
/// control state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayState {
    /// Supply connected.
    Connected,
    /// Supply disconnected (remotely, locally or by the limiter).
    Disconnected,
    /// Disconnected and waiting for the consumer to press the button to reconnect.
    ReadyForReconnection,
}

/// How the consumer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMode {
    Prepaid,
    Postpaid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_validation() {
        assert_eq!(MeterSerial::new("UP1234567").unwrap().as_str(), "UP1234567");
        assert_eq!(MeterSerial::new(""), Err(MeterSerialError::Empty));
        assert_eq!(
            MeterSerial::new("X".repeat(33)),
            Err(MeterSerialError::TooLong { max: 32, found: 33 })
        );
        assert!(MeterSerial::new("X".repeat(32)).is_ok());
        assert_eq!(
            MeterSerial::new("AB\u{7}C"),
            Err(MeterSerialError::NotPrintable { position: 2 })
        );
        assert_eq!(
            MeterSerial::new("ÄB"),
            Err(MeterSerialError::NotPrintable { position: 0 })
        );
        assert_eq!(MeterSerial::new(" AB"), Err(MeterSerialError::OuterSpace));
    }

    #[test]
    fn serial_deserialisation_validates() {
        let ok: MeterSerial = serde_json::from_str("\"M-0001\"").unwrap();
        assert_eq!(ok.to_string(), "M-0001");
        assert!(serde_json::from_str::<MeterSerial>("\"\"").is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"M-0001\"");
    }
}

//! The five IS 15959 associations (client SAPs 16, 32, 48, 64, 80): their logical names,
//! authentication mechanisms and security setups.

use dlms::ObisCode;
use dlms::apdu::Mechanism;

/// An IS 15959 association, named for who uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Association {
    /// Client SAP 16, no authentication.
    Public,
    /// Client SAP 32, low-level security (password).
    MeterReader,
    /// Client SAP 48, high-level security.
    UtilitySettings,
    /// Client SAP 64, high-level security; the meter's pushes are ciphered with its keys.
    Push,
    /// Client SAP 80, high-level security; firmware upgrade.
    FirmwareUpgrade,
}

impl Association {
    pub const ALL: [Association; 5] = [
        Association::Public,
        Association::MeterReader,
        Association::UtilitySettings,
        Association::Push,
        Association::FirmwareUpgrade,
    ];

    pub fn from_client_sap(sap: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.client_sap() == sap)
    }

    pub fn client_sap(self) -> u16 {
        match self {
            Association::Public => 16,
            Association::MeterReader => 32,
            Association::UtilitySettings => 48,
            Association::Push => 64,
            Association::FirmwareUpgrade => 80,
        }
    }

    /// The association LN object (IC 15) this association reads as its own: 0.0.40.0.1–5.255.
    pub fn logical_name(self) -> ObisCode {
        ObisCode::new(0, 0, 40, 0, self.index() + 1, 255)
    }

    /// The security setup object (IC 64), 0.0.43.0.2–5.255; the public association has none.
    pub fn security_setup(self) -> Option<ObisCode> {
        match self {
            Association::Public => None,
            _ => Some(ObisCode::new(0, 0, 43, 0, self.index() + 1, 255)),
        }
    }

    /// The mechanism a client is expected to propose.
    pub fn mechanism(self) -> Mechanism {
        match self {
            Association::Public => Mechanism::None,
            Association::MeterReader => Mechanism::Lls,
            _ => Mechanism::Hls,
        }
    }

    /// Whether APDUs on this association are ciphered (AES-GCM-128, security suite 0).
    pub fn ciphered(self) -> bool {
        matches!(
            self,
            Association::UtilitySettings | Association::Push | Association::FirmwareUpgrade
        )
    }

    /// The letter used for this association in the catalogue's access columns.
    pub fn letter(self) -> char {
        match self {
            Association::Public => 'P',
            Association::MeterReader => 'R',
            Association::UtilitySettings => 'U',
            Association::Push => 'S',
            Association::FirmwareUpgrade => 'F',
        }
    }

    fn index(self) -> u8 {
        self as u8
    }
}

/// A set of associations (who may read, write or invoke).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct AssociationSet(u8);

impl AssociationSet {
    pub const NONE: AssociationSet = AssociationSet(0);

    pub fn of(associations: &[Association]) -> Self {
        AssociationSet(associations.iter().fold(0, |bits, a| bits | 1 << a.index()))
    }

    pub fn contains(self, a: Association) -> bool {
        self.0 & (1 << a.index()) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Association> {
        Association::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }

    /// Parses the catalogue letters (`PRUSF`, spaces allowed, `-` for none).
    pub fn from_letters(s: &str) -> Option<Self> {
        let mut bits = 0;
        for c in s.chars().filter(|c| !c.is_whitespace() && *c != '-') {
            let a = Association::ALL.into_iter().find(|a| a.letter() == c)?;
            bits |= 1 << a.index();
        }
        Some(AssociationSet(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saps_and_names() {
        assert_eq!(
            Association::from_client_sap(48),
            Some(Association::UtilitySettings)
        );
        assert_eq!(Association::from_client_sap(17), None);
        assert_eq!(
            Association::Public.logical_name(),
            ObisCode::must("0.0.40.0.1.255")
        );
        assert_eq!(
            Association::FirmwareUpgrade.logical_name(),
            ObisCode::must("0.0.40.0.5.255")
        );
        assert_eq!(Association::Public.security_setup(), None);
        assert_eq!(
            Association::Push.security_setup(),
            Some(ObisCode::must("0.0.43.0.4.255"))
        );
    }

    #[test]
    fn letters() {
        let set = AssociationSet::from_letters("R U").unwrap();
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Association::MeterReader, Association::UtilitySettings]
        );
        assert_eq!(
            AssociationSet::from_letters("-"),
            Some(AssociationSet::NONE)
        );
        assert_eq!(AssociationSet::from_letters("PX"), None);
    }
}

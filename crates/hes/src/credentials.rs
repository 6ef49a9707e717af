//! A meter's secrets as the head-end holds them, and the client configuration for each IS 15959
//! association. Configuration and relay operations use utility settings, firmware the firmware
//! association. Scheduled reading also uses utility settings: the meter reader association is
//! LLS with no ciphering, so its password and the consumer's readings would cross the network
//! in clear; the meter reader is for places where that is acceptable (an optical port).

use dlms::association::Authentication;
use dlms::association::client::{ClientCiphering, ClientConfig};
use dlms::security::{GlobalKeys, HlsSecret, SecurityPolicy, SystemTitle};

/// The head-end's own system title (calling AP title): manufacturer code "URJ" + "HES01".
pub const HES_SYSTEM_TITLE: SystemTitle = *b"URJHES01";

/// The secrets of one meter. `Debug` shows none of them.
#[derive(Clone, PartialEq, Eq)]
pub struct MeterCredentials {
    pub system_title: SystemTitle,
    pub global_keys: GlobalKeys,
    /// Meter reader (32) LLS password.
    pub lls_secret: Vec<u8>,
    /// HLS secrets of utility settings (48) and firmware upgrade (80).
    pub hls_utility: [u8; 16],
    pub hls_firmware: [u8; 16],
    /// The meter's master key (KEK): wraps new global keys sent by key transfer (IC 64 method
    /// 2). Without it the head-end cannot rotate the meter's keys.
    pub master_key: Option<[u8; 16]>,
}

impl std::fmt::Debug for MeterCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterCredentials")
            .field("system_title", &self.system_title)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

/// The IS 15959 associations a head-end opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Client SAP 16, no authentication, no ciphering: clock, logical device name.
    Public,
    /// Client SAP 32, LLS: reads everything.
    MeterReader,
    /// Client SAP 48, HLS + AES-GCM-128 authenticated encryption: configuration, relay.
    UtilitySettings,
    /// Client SAP 80, HLS + AES-GCM-128 authenticated encryption: image transfer.
    Firmware,
}

impl Role {
    pub fn client_sap(self) -> u16 {
        match self {
            Role::Public => 16,
            Role::MeterReader => 32,
            Role::UtilitySettings => 48,
            Role::Firmware => 80,
        }
    }

    /// The client configuration for this association with a meter holding `credentials`.
    pub fn client_config(self, credentials: &MeterCredentials) -> ClientConfig {
        let ciphered = |secret: &[u8; 16]| {
            (
                Authentication::Hls {
                    secret: HlsSecret::new(*secret),
                },
                Some(ClientCiphering {
                    policy: SecurityPolicy::AuthenticatedEncrypted,
                    keys: credentials.global_keys.clone(),
                    system_title: HES_SYSTEM_TITLE,
                }),
            )
        };
        let (authentication, ciphering) = match self {
            Role::Public => (Authentication::None, None),
            Role::MeterReader => (
                Authentication::Lls {
                    password: credentials.lls_secret.clone(),
                },
                None,
            ),
            Role::UtilitySettings => ciphered(&credentials.hls_utility),
            Role::Firmware => ciphered(&credentials.hls_firmware),
        };
        ClientConfig::new(self.client_sap(), authentication, ciphering)
    }
}

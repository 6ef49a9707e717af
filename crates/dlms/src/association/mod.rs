//! Client and server association state machines (sans-IO): they take bytes and `now`, and give
//! bytes and events. The server hands GET/SET/ACTION to an application's [`CosemObjects`].
//!
//! - [`client`]: [`client::Client`] builds the AARQ, runs HLS pass 3/4, issues GET/SET/ACTION
//!   (following block transfer itself) and turns responses and pushes into
//!   [`client::ClientEvent`]s.
//! - [`server`]: [`server::Server`] answers one connection of one meter: AARQ → AARE, HLS pass
//!   3/4, GET/SET/ACTION dispatched to [`CosemObjects`], long responses in blocks, RLRQ → RLRE;
//!   and [`server::build_push_notification`] for DataNotifications.
//!
//! This module owns what both sides share: the [`Authentication`] an association uses, the
//! association object (class 15) constants and the structure form of its context and mechanism
//! names ([`context_name`]), the xDLMS services both sides implement ([`COMMON_CONFORMANCE`])
//! and the xDLMS parameters both sides agreed on.
//!
//! # Example: a head-end client and a meter server joined in memory
//!
//! ```
//! use chrono::Utc;
//! use dlms::Data;
//! use dlms::apdu::{
//!     ActionResult, AttributeDescriptor, DataAccessResult, GetDataResult, MethodDescriptor,
//!     SelectiveAccess,
//! };
//! use dlms::association::client::{Client, ClientCiphering, ClientConfig, ClientEvent};
//! use dlms::association::server::{MeterSecurityState, Server, ServerConfig};
//! use dlms::association::{Authentication, CosemObjects, RequestContext};
//! use dlms::security::{GlobalKeys, HlsSecret, SecurityPolicy};
//!
//! /// The meter's object model: here, only a kWh register.
//! struct Meter;
//! impl CosemObjects for Meter {
//!     fn get(&mut self, _: &RequestContext, a: &AttributeDescriptor, _: Option<&SelectiveAccess>)
//!         -> Result<Data, DataAccessResult> {
//!         match (a.class_id, a.attribute_id) {
//!             (3, 2) => Ok(Data::DoubleLongUnsigned(4242)),
//!             _ => Err(DataAccessResult::ObjectUndefined),
//!         }
//!     }
//!     fn set(&mut self, _: &RequestContext, _: &AttributeDescriptor,
//!         _: Option<&SelectiveAccess>, _: Data) -> Result<(), DataAccessResult> {
//!         Err(DataAccessResult::ReadWriteDenied)
//!     }
//!     fn action(&mut self, _: &RequestContext, _: &MethodDescriptor, _: Option<Data>)
//!         -> Result<Option<Data>, ActionResult> {
//!         Err(ActionResult::ObjectUndefined)
//!     }
//! }
//!
//! let keys = GlobalKeys { encryption: [1; 16], authentication: [2; 16] };
//! let secrets = [HlsSecret::new([3; 16]), HlsSecret::new([4; 16]), HlsSecret::new([5; 16])];
//! // Meter side: one `Server` per connection; persist `security_state()` afterwards.
//! let config = ServerConfig::is15959(*b"URJ00001", keys.clone(), b"password", secrets);
//! let mut server = Server::new(config, MeterSecurityState::new(1));
//! // Head-end side: utility settings association (48), HLS mechanism 2, AES-GCM.
//! let ciphering = ClientCiphering {
//!     policy: SecurityPolicy::AuthenticatedEncrypted,
//!     keys,
//!     system_title: *b"HES00001",
//! };
//! let auth = Authentication::Hls { secret: HlsSecret::new([3; 16]) };
//! let mut client = Client::new(ClientConfig::new(48, auth, Some(ciphering)), Default::default());
//!
//! // The transport: hand each APDU to the other side until the client reports an event.
//! let mut exchange = |client: &mut Client, mut request: Vec<u8>| loop {
//!     let stoc = b"fresh random 16b"; // the server challenge, from the caller's RNG
//!     let answer = server.on_apdu(48, &request, Utc::now(), stoc, &mut Meter);
//!     let out = client.on_apdu(&answer.response.unwrap(), Utc::now()).unwrap();
//!     match (out.send, out.event) {
//!         (_, Some(event)) => break event,
//!         (Some(next), None) => request = next, // HLS pass 3, GET-next, next SET block
//!         (None, None) => unreachable!(),
//!     }
//! };
//!
//! let aarq = client.associate(b"client challenge").unwrap();
//! assert!(matches!(exchange(&mut client, aarq), ClientEvent::Associated(_)));
//! let instance = "1.0.1.8.0.255".parse().unwrap();
//! let kwh = AttributeDescriptor { class_id: 3, instance, attribute_id: 2 };
//! let get = client.get(kwh, None).unwrap();
//! match exchange(&mut client, get) {
//!     ClientEvent::Value { result, .. } => {
//!         assert_eq!(result, GetDataResult::Data(Data::DoubleLongUnsigned(4242)))
//!     }
//!     other => panic!("{other:?}"),
//! }
//! let rlrq = client.release().unwrap();
//! assert_eq!(exchange(&mut client, rlrq), ClientEvent::Released);
//! ```

use chrono::{DateTime, Utc};

use crate::apdu::{
    ActionResult, ApplicationContext, AttributeDescriptor, Conformance, DataAccessResult,
    Mechanism, MethodDescriptor, SelectiveAccess,
};
use crate::data::Data;
use crate::obis::ObisCode;
use crate::security::HlsSecret;

pub mod client;
pub mod server;
mod wire;

/// Class id of the Association LN object (IC 15).
pub const ASSOCIATION_LN_CLASS_ID: u16 = 15;
/// The logical name that always means "the association this request arrived on".
pub const CURRENT_ASSOCIATION: ObisCode = ObisCode::new(0, 0, 40, 0, 0, 255);
/// Association LN method 1, `reply_to_HLS_authentication`: HLS pass 3 (client) and pass 4 (server).
pub const REPLY_TO_HLS_AUTHENTICATION: i8 = 1;

/// The xDLMS services both our client and our server implement: GET/SET/ACTION, selective
/// access, block transfer with GET and SET, multiple references (GET-with-list), data
/// notification and attribute 0 with GET. [`client::ClientConfig::CONFORMANCE`] and
/// [`server::ServerConfig::IS15959_CONFORMANCE`] both start from it; they differ only where one
/// side implements something the other does not (see their docs).
pub const COMMON_CONFORMANCE: Conformance = Conformance(
    Conformance::GET
        | Conformance::SET
        | Conformance::ACTION
        | Conformance::SELECTIVE_ACCESS
        | Conformance::BLOCK_TRANSFER_WITH_GET_OR_READ
        | Conformance::BLOCK_TRANSFER_WITH_SET_OR_WRITE
        | Conformance::MULTIPLE_REFERENCES
        | Conformance::DATA_NOTIFICATION
        | Conformance::ATTRIBUTE0_SUPPORTED_WITH_GET,
);

/// `kind` of a [`context_name`]: an application context name (2.16.756.5.8.1.x).
pub const CONTEXT_NAME_KIND_APPLICATION_CONTEXT: u8 = 1;
/// `kind` of a [`context_name`]: an authentication mechanism name (2.16.756.5.8.2.x).
pub const CONTEXT_NAME_KIND_MECHANISM: u8 = 2;

/// An application context or mechanism name as the Association LN object shows it
/// (attributes 4 and 6), in the structure form Gurux reads: joint-iso-ctt 2, country 16,
/// country-name 756, organization 5, DLMS UA 8, `kind` ([`CONTEXT_NAME_KIND_APPLICATION_CONTEXT`]
/// or [`CONTEXT_NAME_KIND_MECHANISM`]), then `id`, the last arc.
pub fn context_name(kind: u8, id: u8) -> Data {
    Data::Structure(vec![
        Data::Unsigned(2),
        Data::Unsigned(16),
        Data::LongUnsigned(756),
        Data::Unsigned(5),
        Data::Unsigned(8),
        Data::Unsigned(kind),
        Data::Unsigned(id),
    ])
}

/// The application context name of an association (Association LN attribute 4).
pub fn application_context_name(context: ApplicationContext) -> Data {
    context_name(CONTEXT_NAME_KIND_APPLICATION_CONTEXT, context as u8)
}

/// The authentication mechanism name of an association (Association LN attribute 6).
pub fn mechanism_name(mechanism: Mechanism) -> Data {
    context_name(CONTEXT_NAME_KIND_MECHANISM, mechanism as u8)
}

/// How a client proves who it is when it associates. Secrets never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub enum Authentication {
    /// Lowest level security: no authentication (IS 15959 public client, SAP 16).
    None,
    /// Low level security: a password sent in the AARQ (IS 15959 meter reader, SAP 32).
    Lls { password: Vec<u8> },
    /// HLS mechanism 2 as IS 15959 meters use it: f(challenge) = AES-128-ECB(secret, challenge).
    Hls { secret: HlsSecret },
    /// HLS mechanism 5 (GMAC, security suite 0): f(challenge) is a GMAC under the global
    /// authentication key, so it needs ciphering keys and both system titles.
    HlsGmac,
}

impl Authentication {
    /// The mechanism name this authentication is announced with in the AARQ/AARE.
    pub fn mechanism(&self) -> Mechanism {
        match self {
            Authentication::None => Mechanism::None,
            Authentication::Lls { .. } => Mechanism::Lls,
            Authentication::Hls { .. } => Mechanism::Hls,
            Authentication::HlsGmac => Mechanism::HlsGmac,
        }
    }

    /// True for the mechanisms that need the HLS pass 3/4 exchange after the AARE.
    pub fn is_hls(&self) -> bool {
        matches!(self, Authentication::Hls { .. } | Authentication::HlsGmac)
    }
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authentication::None => f.write_str("None"),
            Authentication::Lls { .. } => f.write_str("Lls { password: <redacted> }"),
            Authentication::Hls { .. } => f.write_str("Hls { secret: <redacted> }"),
            Authentication::HlsGmac => f.write_str("HlsGmac"),
        }
    }
}

/// `association_status` of the Association LN object (attribute 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociationStatus {
    NonAssociated = 0,
    /// The AARE accepted an HLS association; pass 3/4 has not completed yet.
    AssociationPending = 1,
    Associated = 2,
}

/// What the two sides agreed on in the AARQ/AARE exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Services both sides support (client proposal AND server offer).
    pub conformance: crate::apdu::Conformance,
    /// Largest APDU the client accepts (its InitiateRequest).
    pub client_max_receive_pdu_size: u16,
    /// Largest APDU the server accepts (its InitiateResponse).
    pub server_max_receive_pdu_size: u16,
}

/// Who is asking, and when: the association a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestContext {
    /// The client SAP of the association (IS 15959: 16 public, 32 reader, 48 utility,
    /// 64 push, 80 firmware).
    pub client_sap: u16,
    pub mechanism: Mechanism,
    pub now: DateTime<Utc>,
}

/// The COSEM object model a server exposes. Access rights per association are the
/// implementation's to enforce, from `ctx.client_sap`.
pub trait CosemObjects {
    fn get(
        &mut self,
        ctx: &RequestContext,
        attribute: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult>;

    fn set(
        &mut self,
        ctx: &RequestContext,
        attribute: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
        value: Data,
    ) -> Result<(), DataAccessResult>;

    /// Returns the method's return parameters, if it has any.
    fn action(
        &mut self,
        ctx: &RequestContext,
        method: &MethodDescriptor,
        parameters: Option<Data>,
    ) -> Result<Option<Data>, ActionResult>;
}

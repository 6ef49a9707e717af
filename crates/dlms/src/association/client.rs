//! The client (head-end) side of a DLMS association, sans-IO.
//!
//! A [`Client`] runs one association with one meter. It never touches a socket: each method
//! returns the APDU bytes to send (hand them to the TCP wrapper / HDLC layer), and
//! [`Client::on_apdu`] takes every APDU that comes back and returns a [`ClientOutput`]: maybe
//! bytes to send next (HLS pass 3, GET-next, the next SET block) and maybe a [`ClientEvent`].
//!
//! 1. `Client::new(config, security)`; `associate(ctos)` → AARQ bytes (`ctos` is a fresh random
//!    8–64 byte challenge for HLS, ignored otherwise).
//! 2. Feed responses to `on_apdu` until [`ClientEvent::Associated`] (for HLS the client sends
//!    pass 3 itself and checks pass 4). A rejection is a [`ClientError::Rejected`].
//! 3. `get` / `get_with_list` / `set` / `action` → request bytes; `on_apdu` until the matching
//!    result event. One request is outstanding at a time (DLMS confirmed services).
//! 4. `release()` → RLRQ; `on_apdu(RLRE)` → [`ClientEvent::Released`].
//! 5. Persist [`Client::security_state`] (the client's invocation counter and the last counter
//!    accepted from the meter) after each association.
//!
//! Unsolicited pushes (DataNotification, EventNotification; plain or ciphered) are parsed by
//! [`parse_notification`], which the head-end's push listener uses without a `Client`.

use chrono::{DateTime, Utc};

use super::wire;
use super::{
    ASSOCIATION_LN_CLASS_ID, Authentication, CURRENT_ASSOCIATION, Negotiated,
    REPLY_TO_HLS_AUTHENTICATION,
};
use crate::apdu::{
    Aarq, ActionRequest, ActionResponse, ActionResult, Apdu, ApplicationContext, AssociationResult,
    AttributeDescriptor, ConfirmedServiceError, Conformance, DataAccessResult, DataBlockSa,
    DataNotification, EventNotification, ExceptionResponse, GetDataResult, GetRequest, GetResponse,
    InitiateRequest, InvokeIdAndPriority, MethodDescriptor, Rlrq, SelectiveAccess, SetRequest,
    SetResponse, SourceDiagnostic,
};
use crate::codec::DecodeError;
use crate::data::Data;
use crate::security::{
    CipheredApdu, Envelope, GlobalKeys, Hls, InvocationCounter, ReplayGuard, SecurityControl,
    SecurityError, SecurityPolicy, Suite0Cipher, SystemTitle, TAG_LEN, protect, unprotect,
};

/// Largest reassembled GET response the client accepts (bytes of A-XDR), so a hostile meter
/// cannot make the head-end buffer without limit.
pub const MAX_RESPONSE_LEN: usize = 16 << 20;

/// Ciphering of an association: security suite 0 with the meter's global keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCiphering {
    /// Protection of every xDLMS APDU. `None` means no ciphered APDUs (keys only used for
    /// HLS-GMAC).
    pub policy: SecurityPolicy,
    pub keys: GlobalKeys,
    /// The client's (head-end's) system title, sent as calling-AP-title.
    pub system_title: SystemTitle,
}

/// How to associate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The client SAP (16, 32, 48, 64, 80 in IS 15959). The framing layer addresses frames with
    /// it; the client only reports it.
    pub client_sap: u16,
    pub authentication: Authentication,
    /// Needed for ciphered associations and for HLS-GMAC.
    pub ciphering: Option<ClientCiphering>,
    /// Proposed conformance.
    pub conformance: Conformance,
    /// Largest APDU the client accepts (sent in the InitiateRequest).
    pub max_receive_pdu_size: u16,
}

impl ClientConfig {
    /// The conformance a head-end proposes: everything this client implements, i.e.
    /// [`super::COMMON_CONFORMANCE`] plus event-notification (the client parses
    /// EventNotification APDUs, which meters other than ours may send; our server does not, so
    /// [`super::server::ServerConfig::IS15959_CONFORMANCE`] leaves it out).
    pub const CONFORMANCE: Conformance =
        Conformance(super::COMMON_CONFORMANCE.0 | Conformance::EVENT_NOTIFICATION);

    /// A client with the default conformance and a 1024-byte max receive PDU.
    pub fn new(
        client_sap: u16,
        authentication: Authentication,
        ciphering: Option<ClientCiphering>,
    ) -> Self {
        ClientConfig {
            client_sap,
            authentication,
            ciphering,
            conformance: Self::CONFORMANCE,
            max_receive_pdu_size: 1024,
        }
    }
}

/// The client's counters for one meter's keys; they outlive an association and the application
/// persists them (`invocation_counter.peek()`, `server_counter.last_accepted()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSecurityState {
    /// The client's sending invocation counter (strictly increasing for the life of the keys).
    pub invocation_counter: InvocationCounter,
    /// The last invocation counter accepted from the meter (replay rejection).
    pub server_counter: ReplayGuard,
}

impl ClientSecurityState {
    pub fn new(next_invocation_counter: u32, server_last_accepted: Option<u32>) -> Self {
        ClientSecurityState {
            invocation_counter: InvocationCounter::new(next_invocation_counter),
            server_counter: server_last_accepted
                .map_or_else(ReplayGuard::new, ReplayGuard::with_last_accepted),
        }
    }
}

impl Default for ClientSecurityState {
    fn default() -> Self {
        ClientSecurityState::new(1, None)
    }
}

/// Where the association stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    Idle,
    /// AARQ sent.
    AwaitingAare,
    /// HLS pass 3 sent, waiting for the server's pass 4.
    AwaitingHlsReply,
    Associated,
    /// RLRQ sent.
    AwaitingRlre,
}

/// A push received from a meter.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub received_at: DateTime<Utc>,
    /// The sender's system title, when the APDU was general-glo-ciphered (or known for glo).
    pub system_title: Option<SystemTitle>,
    /// The sender's invocation counter, when ciphered.
    pub invocation_counter: Option<u32>,
    pub body: NotificationBody,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotificationBody {
    Data(DataNotification),
    Event(EventNotification),
}

/// What a response meant.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The association is open.
    Associated(Negotiated),
    /// The result of `get` (reassembled if it came in blocks).
    Value {
        invoke_id: InvokeIdAndPriority,
        result: GetDataResult,
    },
    /// The results of `get_with_list`, in request order.
    Values {
        invoke_id: InvokeIdAndPriority,
        results: Vec<GetDataResult>,
    },
    /// The result of `set` (after the last block if it went in blocks).
    SetResult {
        invoke_id: InvokeIdAndPriority,
        result: DataAccessResult,
    },
    /// The result of `action`, with the method's return data if any.
    ActionResult {
        invoke_id: InvokeIdAndPriority,
        result: ActionResult,
        return_data: Option<GetDataResult>,
    },
    /// The server refused the pending request (it is dropped).
    Exception(ExceptionResponse),
    /// The server could not serve the pending request (it is dropped).
    ServiceError(ConfirmedServiceError),
    /// RLRE received: the association is closed.
    Released,
    /// An unsolicited push arrived on this connection.
    Notification(Notification),
}

/// What [`Client::on_apdu`] produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientOutput {
    /// Bytes to send now (HLS pass 3, GET-next, next SET block).
    pub send: Option<Vec<u8>>,
    pub event: Option<ClientEvent>,
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    #[error("cannot {action} while {state:?}")]
    WrongState {
        action: &'static str,
        state: ClientState,
    },
    #[error("request with invoke id {0} is still waiting for its response")]
    Busy(InvokeIdAndPriority),
    #[error("configuration: {0}")]
    Config(&'static str),
    #[error("malformed APDU: {0}")]
    Decode(#[from] DecodeError),
    #[error("security: {0}")]
    Security(#[from] SecurityError),
    #[error(
        "association rejected ({result:?}): {}",
        describe_diagnostic(*.diagnostic, .service_error.as_ref())
    )]
    Rejected {
        result: AssociationResult,
        diagnostic: SourceDiagnostic,
        service_error: Option<ConfirmedServiceError>,
    },
    #[error("HLS pass 3 refused by the meter ({0:?}): wrong HLS secret or keys")]
    HlsRefused(ActionResult),
    #[error("HLS pass 4 failed: the meter did not prove it knows the secret")]
    ServerAuthenticationFailed,
    #[error("the meter answered with an exception while associating: {0:?}")]
    Exception(ExceptionResponse),
    #[error("unexpected {got} while {state:?}")]
    Unexpected {
        got: &'static str,
        state: ClientState,
    },
    #[error("response invoke id {got} does not match the request's {expected}")]
    InvokeIdMismatch { expected: u8, got: u8 },
    #[error("data block {got} received, expected {expected}")]
    BlockOutOfOrder { expected: u32, got: u32 },
    #[error("response longer than {MAX_RESPONSE_LEN} bytes")]
    ResponseTooLong,
}

/// A plain-words reading of an AARE diagnostic.
pub fn describe_diagnostic(
    diagnostic: SourceDiagnostic,
    service_error: Option<&ConfirmedServiceError>,
) -> String {
    let text = match diagnostic {
        SourceDiagnostic::ServiceUser(0) => "null",
        SourceDiagnostic::ServiceUser(1) => "no reason given",
        SourceDiagnostic::ServiceUser(2) => "application context name not supported",
        SourceDiagnostic::ServiceUser(3) => "calling AP title not recognised",
        SourceDiagnostic::ServiceUser(11) => "authentication mechanism name not recognised",
        SourceDiagnostic::ServiceUser(12) => "authentication mechanism name required",
        SourceDiagnostic::ServiceUser(13) => "authentication failure (wrong password or keys)",
        SourceDiagnostic::ServiceUser(14) => "authentication required",
        SourceDiagnostic::ServiceUser(_) => "service user: other",
        SourceDiagnostic::ServiceProvider(2) => "no common ACSE version",
        SourceDiagnostic::ServiceProvider(_) => "service provider: no reason given",
    };
    match service_error {
        Some(e) if e.error_class == 6 => {
            let initiate = match e.error_value {
                1 => "DLMS version too low",
                2 => "PDU size too short",
                3 => "incompatible conformance",
                _ => "other",
            };
            format!("{text}; xDLMS initiate error: {initiate}")
        }
        Some(e) => format!(
            "{text}; xDLMS error class {} value {}",
            e.error_class, e.error_value
        ),
        None => text.to_string(),
    }
}

#[derive(Debug)]
enum Pending {
    Get {
        invoke_id: InvokeIdAndPriority,
        /// `Some(n)` for a GET with a list of `n` items.
        list: Option<usize>,
        buffer: Vec<u8>,
        block_number: u32,
    },
    Set {
        invoke_id: InvokeIdAndPriority,
        raw: Vec<u8>,
        sent: usize,
        block_number: u32,
        block_len: usize,
    },
    Action {
        invoke_id: InvokeIdAndPriority,
    },
}

impl Pending {
    fn invoke_id(&self) -> InvokeIdAndPriority {
        match self {
            Pending::Get { invoke_id, .. }
            | Pending::Set { invoke_id, .. }
            | Pending::Action { invoke_id } => *invoke_id,
        }
    }
}

/// The client association state machine. See the module docs.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    cipher: Option<Suite0Cipher>,
    security: ClientSecurityState,
    state: ClientState,
    ctos: Vec<u8>,
    server_title: Option<SystemTitle>,
    negotiated: Option<Negotiated>,
    next_invoke: u8,
    pending: Option<Pending>,
    hls_invoke_id: InvokeIdAndPriority,
}

impl Client {
    pub fn new(config: ClientConfig, security: ClientSecurityState) -> Self {
        let cipher = config
            .ciphering
            .as_ref()
            .map(|c| Suite0Cipher::new(&c.keys));
        Client {
            config,
            cipher,
            security,
            state: ClientState::Idle,
            ctos: Vec::new(),
            server_title: None,
            negotiated: None,
            next_invoke: 1,
            pending: None,
            hls_invoke_id: 0,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    /// What the AARE agreed, once associated.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// The meter's system title from the AARE (ciphered associations and HLS-GMAC).
    pub fn server_system_title(&self) -> Option<SystemTitle> {
        self.server_title
    }

    /// The counters as they stand now: persist them.
    pub fn security_state(&self) -> &ClientSecurityState {
        &self.security
    }

    /// Whether a request is waiting for its response.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Forget the association (the connection dropped). Counters are kept.
    pub fn reset(&mut self) {
        self.state = ClientState::Idle;
        self.pending = None;
        self.negotiated = None;
        self.server_title = None;
        self.ctos.clear();
    }

    fn policy(&self) -> SecurityPolicy {
        self.config
            .ciphering
            .as_ref()
            .map_or(SecurityPolicy::None, |c| c.policy)
    }

    fn ciphered(&self) -> bool {
        self.policy() != SecurityPolicy::None
    }

    fn own_title(&self) -> Option<SystemTitle> {
        self.config.ciphering.as_ref().map(|c| c.system_title)
    }

    /// Builds the AARQ. `ctos` is the HLS client challenge (8–64 random bytes); it is ignored
    /// for no authentication and LLS.
    pub fn associate(&mut self, ctos: &[u8]) -> Result<Vec<u8>, ClientError> {
        if !matches!(self.state, ClientState::Idle) {
            return Err(ClientError::WrongState {
                action: "associate",
                state: self.state,
            });
        }
        let auth = self.config.authentication.clone();
        if auth == Authentication::HlsGmac && self.config.ciphering.is_none() {
            return Err(ClientError::Config(
                "HLS-GMAC needs ciphering keys and a system title",
            ));
        }
        if auth.is_hls() && !crate::security::CHALLENGE_LEN.contains(&ctos.len()) {
            return Err(SecurityError::ChallengeLength(ctos.len()).into());
        }
        let calling_authentication_value = match &auth {
            Authentication::None => None,
            Authentication::Lls { password } => Some(password.clone()),
            Authentication::Hls { .. } | Authentication::HlsGmac => Some(ctos.to_vec()),
        };
        let initiate = self.initiate_request()?;
        let aarq = Aarq {
            application_context: if self.ciphered() {
                ApplicationContext::LogicalNameWithCiphering
            } else {
                ApplicationContext::LogicalNameNoCiphering
            },
            calling_ap_title: (self.ciphered() || auth == Authentication::HlsGmac)
                .then(|| self.own_title().map(|t| t.to_vec()))
                .flatten(),
            mechanism: (auth != Authentication::None).then(|| auth.mechanism()),
            calling_authentication_value,
            user_information: Some(initiate),
        };
        self.ctos = ctos.to_vec();
        self.pending = None;
        self.negotiated = None;
        self.server_title = None;
        self.state = ClientState::AwaitingAare;
        Ok(Apdu::Aarq(aarq).encode())
    }

    /// The InitiateRequest, glo-ciphered when the association is ciphered.
    fn initiate_request(&mut self) -> Result<Vec<u8>, ClientError> {
        let plain = Apdu::InitiateRequest(InitiateRequest {
            dedicated_key: None,
            response_allowed: true,
            proposed_quality_of_service: None,
            proposed_dlms_version: 6,
            proposed_conformance: self.config.conformance,
            client_max_receive_pdu_size: self.config.max_receive_pdu_size,
        })
        .encode();
        self.seal(plain)
    }

    /// Ciphers an APDU with glo-ciphering when the association is ciphered.
    fn seal(&mut self, plain: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let policy = self.policy();
        match (policy, self.cipher.as_ref(), self.own_title()) {
            (SecurityPolicy::None, _, _) => Ok(plain),
            (_, Some(cipher), Some(title)) => Ok(protect(
                &plain,
                Envelope::Glo,
                SecurityControl::new(policy),
                cipher,
                &title,
                &mut self.security.invocation_counter,
            )?),
            _ => Err(ClientError::Config("ciphering without keys")),
        }
    }

    fn take_invoke_id(&mut self) -> InvokeIdAndPriority {
        let id = self.next_invoke & 0x0f;
        self.next_invoke = (self.next_invoke + 1) & 0x0f;
        // Confirmed service, high priority (as Gurux and most meters expect).
        0xC0 | id
    }

    fn ready(&self, action: &'static str) -> Result<(), ClientError> {
        if self.state != ClientState::Associated {
            return Err(ClientError::WrongState {
                action,
                state: self.state,
            });
        }
        if let Some(p) = &self.pending {
            return Err(ClientError::Busy(p.invoke_id()));
        }
        Ok(())
    }

    fn server_max_pdu(&self) -> usize {
        match self.negotiated.map(|n| n.server_max_receive_pdu_size) {
            Some(0) | None => u16::MAX as usize,
            Some(n) => n as usize,
        }
    }

    fn cipher_overhead(&self) -> usize {
        if self.ciphered() {
            1 + 3 + 5 + TAG_LEN
        } else {
            0
        }
    }

    /// GET one attribute, optionally with selective access. The result arrives as
    /// [`ClientEvent::Value`]; block transfer is followed automatically.
    pub fn get(
        &mut self,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
    ) -> Result<Vec<u8>, ClientError> {
        self.ready("get")?;
        let invoke_id = self.take_invoke_id();
        let request = Apdu::GetRequest(GetRequest::Normal {
            invoke_id,
            attribute,
            access,
        });
        let bytes = self.seal(request.encode())?;
        self.pending = Some(Pending::Get {
            invoke_id,
            list: None,
            buffer: Vec::new(),
            block_number: 0,
        });
        Ok(bytes)
    }

    /// GET several attributes in one request; results arrive as [`ClientEvent::Values`].
    pub fn get_with_list(
        &mut self,
        items: Vec<(AttributeDescriptor, Option<SelectiveAccess>)>,
    ) -> Result<Vec<u8>, ClientError> {
        self.ready("get with list")?;
        let invoke_id = self.take_invoke_id();
        let count = items.len();
        let request = Apdu::GetRequest(GetRequest::WithList { invoke_id, items });
        let bytes = self.seal(request.encode())?;
        self.pending = Some(Pending::Get {
            invoke_id,
            list: Some(count),
            buffer: Vec::new(),
            block_number: 0,
        });
        Ok(bytes)
    }

    /// SET one attribute. When the request would exceed the meter's max PDU the value goes in
    /// data blocks (the client sends each next block from `on_apdu`); the outcome arrives as
    /// [`ClientEvent::SetResult`].
    pub fn set(
        &mut self,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        value: Data,
    ) -> Result<Vec<u8>, ClientError> {
        self.ready("set")?;
        let invoke_id = self.take_invoke_id();
        let max = self.server_max_pdu();
        let overhead = self.cipher_overhead();
        let normal = Apdu::SetRequest(SetRequest::Normal {
            invoke_id,
            attribute,
            access: access.clone(),
            value,
        });
        let encoded = normal.encode();
        if encoded.len() + overhead <= max {
            let bytes = self.seal(encoded)?;
            self.pending = Some(Pending::Set {
                invoke_id,
                raw: Vec::new(),
                sent: 0,
                block_number: 0,
                block_len: 0,
            });
            return Ok(bytes);
        }
        let Apdu::SetRequest(SetRequest::Normal { value, .. }) = normal else {
            return Err(ClientError::Config("unreachable"));
        };
        let raw = value.to_bytes();
        // Header of the first block: the request without data, plus room for a 5-byte length.
        let header = Apdu::SetRequest(SetRequest::WithFirstDataBlock {
            invoke_id,
            attribute,
            access: access.clone(),
            block: DataBlockSa {
                last_block: false,
                block_number: 1,
                raw_data: Vec::new(),
            },
        })
        .encode()
        .len()
            + 4;
        let block_len = max.saturating_sub(header + overhead).max(1);
        let end = block_len.min(raw.len());
        let first = Apdu::SetRequest(SetRequest::WithFirstDataBlock {
            invoke_id,
            attribute,
            access,
            block: DataBlockSa {
                last_block: end >= raw.len(),
                block_number: 1,
                raw_data: raw.get(..end).unwrap_or_default().to_vec(),
            },
        });
        let bytes = self.seal(first.encode())?;
        self.pending = Some(Pending::Set {
            invoke_id,
            raw,
            sent: end,
            block_number: 1,
            block_len,
        });
        Ok(bytes)
    }

    /// ACTION: invoke a method; the outcome arrives as [`ClientEvent::ActionResult`].
    pub fn action(
        &mut self,
        method: MethodDescriptor,
        parameters: Option<Data>,
    ) -> Result<Vec<u8>, ClientError> {
        self.ready("action")?;
        let invoke_id = self.take_invoke_id();
        let request = Apdu::ActionRequest(ActionRequest::Normal {
            invoke_id,
            method,
            parameters,
        });
        let bytes = self.seal(request.encode())?;
        self.pending = Some(Pending::Action { invoke_id });
        Ok(bytes)
    }

    /// RLRQ (with a ciphered InitiateRequest as user information when ciphered, as Gurux does).
    pub fn release(&mut self) -> Result<Vec<u8>, ClientError> {
        if !matches!(
            self.state,
            ClientState::Associated | ClientState::AwaitingHlsReply
        ) {
            return Err(ClientError::WrongState {
                action: "release",
                state: self.state,
            });
        }
        let user_information = if self.ciphered() {
            Some(self.initiate_request()?)
        } else {
            None
        };
        self.pending = None;
        self.state = ClientState::AwaitingRlre;
        Ok(Apdu::Rlrq(Rlrq {
            reason: Some(0),
            user_information,
        })
        .encode())
    }

    /// Handles one APDU from the meter.
    pub fn on_apdu(
        &mut self,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<ClientOutput, ClientError> {
        let mut meta = (None, None);
        let plain: Vec<u8>;
        let apdu_bytes: &[u8] = if wire::is_ciphered(bytes) {
            let envelope = CipheredApdu::decode(bytes)?;
            let (Some(cipher), Some(title)) = (self.cipher.as_ref(), self.server_title) else {
                return Err(ClientError::Config(
                    "ciphered APDU but no keys or server system title",
                ));
            };
            let opened = unprotect(
                bytes,
                cipher,
                &title,
                self.policy(),
                &mut self.security.server_counter,
            )?;
            meta = (Some(title), Some(envelope.invocation_counter));
            plain = opened.apdu;
            &plain
        } else {
            let expect_cipher = self.ciphered()
                && matches!(
                    self.state,
                    ClientState::Associated | ClientState::AwaitingHlsReply
                );
            // Exception responses and RLRE may come in clear; everything else must not.
            let allowed_plain = matches!(
                bytes.first(),
                Some(&crate::apdu::tag::EXCEPTION_RESPONSE)
                    | Some(&crate::apdu::tag::RLRE)
                    | Some(&crate::apdu::tag::AARE)
            );
            if expect_cipher && !allowed_plain {
                return Err(SecurityError::PolicyViolation {
                    required: self.policy(),
                    received: SecurityPolicy::None,
                }
                .into());
            }
            bytes
        };
        let apdu = Apdu::decode(apdu_bytes)?;
        let event = |e| {
            Ok(ClientOutput {
                send: None,
                event: Some(e),
            })
        };
        match apdu {
            Apdu::Aare(aare) if self.state == ClientState::AwaitingAare => self.on_aare(aare),
            Apdu::ActionResponse(response) if self.state == ClientState::AwaitingHlsReply => {
                self.on_hls_reply(response)
            }
            Apdu::ExceptionResponse(e) => {
                self.pending = None;
                if matches!(
                    self.state,
                    ClientState::AwaitingAare | ClientState::AwaitingHlsReply
                ) {
                    self.state = ClientState::Idle;
                    return Err(ClientError::Exception(e));
                }
                event(ClientEvent::Exception(e))
            }
            Apdu::ConfirmedServiceError(e) => {
                self.pending = None;
                if matches!(
                    self.state,
                    ClientState::AwaitingAare | ClientState::AwaitingHlsReply
                ) {
                    self.state = ClientState::Idle;
                }
                event(ClientEvent::ServiceError(e))
            }
            Apdu::Rlre(_) if self.state == ClientState::AwaitingRlre => {
                self.reset();
                event(ClientEvent::Released)
            }
            Apdu::DataNotification(n) => event(ClientEvent::Notification(Notification {
                received_at: now,
                system_title: meta.0,
                invocation_counter: meta.1,
                body: NotificationBody::Data(n),
            })),
            Apdu::EventNotification(n) => event(ClientEvent::Notification(Notification {
                received_at: now,
                system_title: meta.0,
                invocation_counter: meta.1,
                body: NotificationBody::Event(n),
            })),
            Apdu::GetResponse(r) if self.state == ClientState::Associated => self.on_get(r),
            Apdu::SetResponse(r) if self.state == ClientState::Associated => self.on_set(r),
            Apdu::ActionResponse(r) if self.state == ClientState::Associated => self.on_action(r),
            other => Err(ClientError::Unexpected {
                got: apdu_name(&other),
                state: self.state,
            }),
        }
    }

    fn on_aare(&mut self, aare: crate::apdu::Aare) -> Result<ClientOutput, ClientError> {
        if aare.result != AssociationResult::Accepted {
            self.state = ClientState::Idle;
            let service_error = match aare.user_information.as_deref().map(Apdu::decode) {
                Some(Ok(Apdu::ConfirmedServiceError(e))) => Some(e),
                _ => None,
            };
            return Err(ClientError::Rejected {
                result: aare.result,
                diagnostic: aare.diagnostic,
                service_error,
            });
        }
        let fail = |this: &mut Client, e: ClientError| {
            this.state = ClientState::Idle;
            Err(e)
        };
        let gmac = self.config.authentication == Authentication::HlsGmac;
        if self.ciphered() || gmac {
            match aare
                .responding_ap_title
                .as_deref()
                .map(SystemTitle::try_from)
            {
                Some(Ok(title)) => self.server_title = Some(title),
                _ => {
                    return fail(
                        self,
                        ClientError::Config("AARE lacks the meter's system title"),
                    );
                }
            }
        }
        let Some(info) = aare.user_information.as_deref() else {
            return fail(
                self,
                DecodeError::invalid("AARE", "no InitiateResponse").into(),
            );
        };
        let plain: Vec<u8>;
        let info: &[u8] = if wire::is_ciphered(info) {
            let (Some(cipher), Some(title)) = (self.cipher.as_ref(), self.server_title) else {
                return fail(self, ClientError::Config("ciphered AARE but no keys"));
            };
            let policy = self.policy();
            match unprotect(
                info,
                cipher,
                &title,
                policy,
                &mut self.security.server_counter,
            ) {
                Ok(opened) => {
                    plain = opened.apdu;
                    &plain
                }
                Err(e) => return fail(self, e.into()),
            }
        } else if self.ciphered() {
            return fail(
                self,
                SecurityError::PolicyViolation {
                    required: self.policy(),
                    received: SecurityPolicy::None,
                }
                .into(),
            );
        } else {
            info
        };
        let response = match Apdu::decode(info) {
            Ok(Apdu::InitiateResponse(r)) => r,
            Ok(_) => {
                return fail(
                    self,
                    DecodeError::invalid("AARE", "not an InitiateResponse").into(),
                );
            }
            Err(e) => return fail(self, e.into()),
        };
        let negotiated = Negotiated {
            conformance: response.negotiated_conformance,
            client_max_receive_pdu_size: self.config.max_receive_pdu_size,
            server_max_receive_pdu_size: response.server_max_receive_pdu_size,
        };
        self.negotiated = Some(negotiated);
        if !self.config.authentication.is_hls() {
            self.state = ClientState::Associated;
            return Ok(ClientOutput {
                send: None,
                event: Some(ClientEvent::Associated(negotiated)),
            });
        }
        // HLS pass 3: f(StoC) to the current association's reply_to_HLS_authentication.
        let Some(stoc) = aare.responding_authentication_value else {
            return fail(
                self,
                DecodeError::invalid("AARE", "no server challenge (StoC)").into(),
            );
        };
        // Mechanism 5 carries the client's invocation counter; mechanism 2 uses none.
        let ic = match self.config.authentication {
            Authentication::HlsGmac => self.security.invocation_counter.take(),
            _ => Ok(0),
        };
        let title = self.own_title().unwrap_or_default();
        let reply = ic.and_then(|ic| match self.hls_function() {
            Some(hls) => crate::security::hls_response(hls, &stoc, &title, ic),
            None => Err(SecurityError::Unsupported("HLS without keys")),
        });
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return fail(self, e.into()),
        };
        let invoke_id = self.take_invoke_id();
        let request = Apdu::ActionRequest(ActionRequest::Normal {
            invoke_id,
            method: MethodDescriptor {
                class_id: ASSOCIATION_LN_CLASS_ID,
                instance: CURRENT_ASSOCIATION,
                method_id: REPLY_TO_HLS_AUTHENTICATION,
            },
            parameters: Some(Data::OctetString(reply)),
        });
        let bytes = match self.seal(request.encode()) {
            Ok(b) => b,
            Err(e) => return fail(self, e),
        };
        self.hls_invoke_id = invoke_id;
        self.state = ClientState::AwaitingHlsReply;
        Ok(ClientOutput {
            send: Some(bytes),
            event: None,
        })
    }

    fn hls_function(&self) -> Option<Hls<'_>> {
        wire::hls(&self.config.authentication, self.cipher.as_ref())
    }

    fn on_hls_reply(&mut self, response: ActionResponse) -> Result<ClientOutput, ClientError> {
        let ActionResponse::Normal {
            invoke_id,
            result,
            return_parameters,
        } = response;
        self.state = ClientState::Idle;
        if invoke_id & 0x0f != self.hls_invoke_id & 0x0f {
            return Err(ClientError::InvokeIdMismatch {
                expected: self.hls_invoke_id & 0x0f,
                got: invoke_id & 0x0f,
            });
        }
        if result != ActionResult::Success {
            return Err(ClientError::HlsRefused(result));
        }
        let Some(GetDataResult::Data(Data::OctetString(f_ctos))) = return_parameters else {
            return Err(ClientError::ServerAuthenticationFailed);
        };
        let title = self.server_title.unwrap_or_default();
        let verified = self
            .hls_function()
            .ok_or(SecurityError::Unsupported("HLS without keys"))
            .and_then(|hls| crate::security::hls_verify(hls, &self.ctos, &f_ctos, &title));
        if verified.is_err() {
            return Err(ClientError::ServerAuthenticationFailed);
        }
        self.state = ClientState::Associated;
        let negotiated = self
            .negotiated
            .ok_or(ClientError::Config("no negotiated parameters"))?;
        Ok(ClientOutput {
            send: None,
            event: Some(ClientEvent::Associated(negotiated)),
        })
    }

    /// Checks the response belongs to the pending request and takes it.
    fn take_pending(&mut self, got: InvokeIdAndPriority) -> Result<Pending, ClientError> {
        let Some(pending) = self.pending.take() else {
            return Err(ClientError::Unexpected {
                got: "response",
                state: self.state,
            });
        };
        let expected = pending.invoke_id() & 0x0f;
        if got & 0x0f != expected {
            self.pending = Some(pending);
            return Err(ClientError::InvokeIdMismatch {
                expected,
                got: got & 0x0f,
            });
        }
        Ok(pending)
    }

    fn on_get(&mut self, response: GetResponse) -> Result<ClientOutput, ClientError> {
        let done = |e| {
            Ok(ClientOutput {
                send: None,
                event: Some(e),
            })
        };
        match response {
            GetResponse::Normal { invoke_id, result } => {
                self.take_pending(invoke_id)?;
                done(ClientEvent::Value { invoke_id, result })
            }
            GetResponse::WithList { invoke_id, results } => {
                self.take_pending(invoke_id)?;
                done(ClientEvent::Values { invoke_id, results })
            }
            GetResponse::WithDataBlock { invoke_id, block } => {
                let pending = self.take_pending(invoke_id)?;
                let Pending::Get {
                    list,
                    mut buffer,
                    block_number,
                    ..
                } = pending
                else {
                    return Err(ClientError::Unexpected {
                        got: "GET block",
                        state: self.state,
                    });
                };
                let expected = block_number.saturating_add(1);
                if block.block_number != expected {
                    return Err(ClientError::BlockOutOfOrder {
                        expected,
                        got: block.block_number,
                    });
                }
                let raw = match block.result {
                    Ok(raw) => raw,
                    Err(e) => {
                        let event = match list {
                            None => ClientEvent::Value {
                                invoke_id,
                                result: GetDataResult::Error(e),
                            },
                            Some(n) => ClientEvent::Values {
                                invoke_id,
                                results: vec![GetDataResult::Error(e); n],
                            },
                        };
                        return done(event);
                    }
                };
                if buffer.len().saturating_add(raw.len()) > MAX_RESPONSE_LEN {
                    return Err(ClientError::ResponseTooLong);
                }
                buffer.extend_from_slice(&raw);
                if block.last_block {
                    return match list {
                        None => done(ClientEvent::Value {
                            invoke_id,
                            result: GetDataResult::Data(Data::from_bytes(&buffer)?),
                        }),
                        Some(_) => done(ClientEvent::Values {
                            invoke_id,
                            results: wire::decode_get_data_results(&buffer)?,
                        }),
                    };
                }
                let next = Apdu::GetRequest(GetRequest::Next {
                    invoke_id,
                    block_number: expected,
                });
                let bytes = self.seal(next.encode())?;
                self.pending = Some(Pending::Get {
                    invoke_id,
                    list,
                    buffer,
                    block_number: expected,
                });
                Ok(ClientOutput {
                    send: Some(bytes),
                    event: None,
                })
            }
        }
    }

    fn on_set(&mut self, response: SetResponse) -> Result<ClientOutput, ClientError> {
        let done = |invoke_id, result| {
            Ok(ClientOutput {
                send: None,
                event: Some(ClientEvent::SetResult { invoke_id, result }),
            })
        };
        match response {
            SetResponse::Normal { invoke_id, result }
            | SetResponse::LastDataBlock {
                invoke_id, result, ..
            } => {
                self.take_pending(invoke_id)?;
                done(invoke_id, result)
            }
            SetResponse::DataBlock {
                invoke_id,
                block_number,
            } => {
                let pending = self.take_pending(invoke_id)?;
                let Pending::Set {
                    raw,
                    sent,
                    block_number: last_sent,
                    block_len,
                    ..
                } = pending
                else {
                    return Err(ClientError::Unexpected {
                        got: "SET block ack",
                        state: self.state,
                    });
                };
                if block_number != last_sent || sent >= raw.len() {
                    return Err(ClientError::BlockOutOfOrder {
                        expected: last_sent,
                        got: block_number,
                    });
                }
                let end = sent.saturating_add(block_len).min(raw.len());
                let next_number = last_sent.saturating_add(1);
                let request = Apdu::SetRequest(SetRequest::WithDataBlock {
                    invoke_id,
                    block: DataBlockSa {
                        last_block: end >= raw.len(),
                        block_number: next_number,
                        raw_data: raw.get(sent..end).unwrap_or_default().to_vec(),
                    },
                });
                let bytes = self.seal(request.encode())?;
                self.pending = Some(Pending::Set {
                    invoke_id,
                    raw,
                    sent: end,
                    block_number: next_number,
                    block_len,
                });
                Ok(ClientOutput {
                    send: Some(bytes),
                    event: None,
                })
            }
        }
    }

    fn on_action(&mut self, response: ActionResponse) -> Result<ClientOutput, ClientError> {
        let ActionResponse::Normal {
            invoke_id,
            result,
            return_parameters,
        } = response;
        self.take_pending(invoke_id)?;
        Ok(ClientOutput {
            send: None,
            event: Some(ClientEvent::ActionResult {
                invoke_id,
                result,
                return_data: return_parameters,
            }),
        })
    }
}

fn apdu_name(apdu: &Apdu) -> &'static str {
    match apdu {
        Apdu::Aarq(_) => "AARQ",
        Apdu::Aare(_) => "AARE",
        Apdu::Rlrq(_) => "RLRQ",
        Apdu::Rlre(_) => "RLRE",
        Apdu::InitiateRequest(_) => "InitiateRequest",
        Apdu::InitiateResponse(_) => "InitiateResponse",
        Apdu::GetRequest(_) => "GET request",
        Apdu::GetResponse(_) => "GET response",
        Apdu::SetRequest(_) => "SET request",
        Apdu::SetResponse(_) => "SET response",
        Apdu::ActionRequest(_) => "ACTION request",
        Apdu::ActionResponse(_) => "ACTION response",
        Apdu::DataNotification(_) => "DataNotification",
        Apdu::EventNotification(_) => "EventNotification",
        Apdu::ExceptionResponse(_) => "ExceptionResponse",
        Apdu::ConfirmedServiceError(_) => "ConfirmedServiceError",
    }
}

/// How to open a ciphered push: the sending meter's keys and system title (for general-glo
/// envelopes it must match the title inside), the protection required, and the replay guard
/// kept for that meter.
#[derive(Debug)]
pub struct PushSecurity<'a> {
    pub cipher: &'a Suite0Cipher,
    pub system_title: SystemTitle,
    pub required: SecurityPolicy,
    pub replay: &'a mut ReplayGuard,
}

/// The sender's system title of a general-glo-ciphered push, read without keys, so a push
/// listener can find the meter (and its keys) first.
pub fn notification_system_title(bytes: &[u8]) -> Option<SystemTitle> {
    let envelope = CipheredApdu::decode(bytes).ok()?;
    SystemTitle::try_from(envelope.system_title?).ok()
}

/// Parses an unsolicited DataNotification or EventNotification, plain or ciphered. With
/// `security`, a plaintext push is refused when `security.required` asks for protection; without
/// it, a ciphered push is an error.
pub fn parse_notification(
    bytes: &[u8],
    now: DateTime<Utc>,
    security: Option<PushSecurity<'_>>,
) -> Result<Notification, ClientError> {
    let plain: Vec<u8>;
    let (apdu_bytes, system_title, invocation_counter): (&[u8], _, _) = if wire::is_ciphered(bytes)
    {
        let Some(s) = security else {
            return Err(ClientError::Config(
                "ciphered push but no keys for the sender",
            ));
        };
        let envelope = CipheredApdu::decode(bytes)?;
        let opened = unprotect(bytes, s.cipher, &s.system_title, s.required, s.replay)?;
        plain = opened.apdu;
        (
            &plain,
            Some(s.system_title),
            Some(envelope.invocation_counter),
        )
    } else {
        if let Some(s) = &security
            && s.required != SecurityPolicy::None
        {
            return Err(SecurityError::PolicyViolation {
                required: s.required,
                received: SecurityPolicy::None,
            }
            .into());
        }
        (bytes, None, None)
    };
    let body = match Apdu::decode(apdu_bytes)? {
        Apdu::DataNotification(n) => NotificationBody::Data(n),
        Apdu::EventNotification(n) => NotificationBody::Event(n),
        other => {
            return Err(ClientError::Unexpected {
                got: apdu_name(&other),
                state: ClientState::Idle,
            });
        }
    };
    Ok(Notification {
        received_at: now,
        system_title,
        invocation_counter,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::HlsSecret;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn public() -> Client {
        Client::new(
            ClientConfig::new(16, Authentication::None, None),
            Default::default(),
        )
    }

    /// A public client whose AARE has been accepted.
    fn associated() -> Client {
        let mut client = public();
        client.associate(&[]).unwrap();
        let initiate = Apdu::InitiateResponse(crate::apdu::InitiateResponse {
            negotiated_quality_of_service: None,
            negotiated_dlms_version: 6,
            negotiated_conformance: Conformance(Conformance::GET),
            server_max_receive_pdu_size: 512,
            vaa_name: 7,
        });
        let aare = Apdu::Aare(crate::apdu::Aare {
            application_context: ApplicationContext::LogicalNameNoCiphering,
            result: AssociationResult::Accepted,
            diagnostic: SourceDiagnostic::NULL,
            responding_ap_title: None,
            mechanism: None,
            responding_authentication_value: None,
            user_information: Some(initiate.encode()),
        });
        let out = client.on_apdu(&aare.encode(), now()).unwrap();
        assert!(matches!(out.event, Some(ClientEvent::Associated(_))));
        client
    }

    #[test]
    fn requests_need_the_right_state() {
        let mut client = public();
        let attribute = AttributeDescriptor {
            class_id: 8,
            instance: CURRENT_ASSOCIATION,
            attribute_id: 2,
        };
        assert!(matches!(
            client.get(attribute, None),
            Err(ClientError::WrongState { .. })
        ));
        assert!(matches!(
            client.release(),
            Err(ClientError::WrongState { .. })
        ));
        client.associate(&[]).unwrap();
        assert!(matches!(
            client.associate(&[]),
            Err(ClientError::WrongState { .. })
        ));
        let mut hls = Client::new(
            ClientConfig::new(
                48,
                Authentication::Hls {
                    secret: HlsSecret::new([1; 16]),
                },
                None,
            ),
            Default::default(),
        );
        assert_eq!(
            hls.associate(&[1, 2, 3]),
            Err(ClientError::Security(SecurityError::ChallengeLength(3)))
        );
        let mut gmac = Client::new(
            ClientConfig::new(80, Authentication::HlsGmac, None),
            Default::default(),
        );
        assert!(matches!(
            gmac.associate(&[0; 16]),
            Err(ClientError::Config(_))
        ));
    }

    #[test]
    fn garbage_and_stray_apdus_are_errors_not_panics() {
        let mut client = associated();
        for input in [
            &[][..],
            &[0xC4],
            &[0xC4, 0x02, 0xC1, 0x00],
            &[0x61, 0x03, 0xA1, 0x01],
            &[0xDB, 0x08],
        ] {
            assert!(client.on_apdu(input, now()).is_err(), "{input:02x?}");
        }
        // A response with nothing pending.
        let stray = Apdu::GetResponse(GetResponse::Normal {
            invoke_id: 0xC1,
            result: GetDataResult::Data(Data::Null),
        });
        assert!(matches!(
            client.on_apdu(&stray.encode(), now()),
            Err(ClientError::Unexpected { .. })
        ));
        assert_eq!(client.state(), ClientState::Associated);
    }

    #[test]
    fn get_blocks_must_arrive_in_order() {
        let mut client = associated();
        let attribute = AttributeDescriptor {
            class_id: 1,
            instance: CURRENT_ASSOCIATION,
            attribute_id: 2,
        };
        let request = client.get(attribute, None).unwrap();
        let Ok(Apdu::GetRequest(GetRequest::Normal { invoke_id, .. })) = Apdu::decode(&request)
        else {
            panic!()
        };
        let block = |block_number, last_block, raw: &[u8]| {
            Apdu::GetResponse(GetResponse::WithDataBlock {
                invoke_id,
                block: crate::apdu::DataBlockG {
                    last_block,
                    block_number,
                    result: Ok(raw.to_vec()),
                },
            })
            .encode()
        };
        let out = client
            .on_apdu(&block(1, false, &[0x09, 0x04, 1]), now())
            .unwrap();
        assert_eq!(
            Apdu::decode(&out.send.unwrap()).unwrap(),
            Apdu::GetRequest(GetRequest::Next {
                invoke_id,
                block_number: 1
            })
        );
        assert_eq!(
            client.on_apdu(&block(3, true, &[2, 3, 4]), now()),
            Err(ClientError::BlockOutOfOrder {
                expected: 2,
                got: 3
            })
        );
    }

    #[test]
    fn a_rejection_reads_in_plain_words() {
        let error = ClientError::Rejected {
            result: AssociationResult::RejectedPermanent,
            diagnostic: SourceDiagnostic::ServiceUser(1),
            service_error: Some(ConfirmedServiceError {
                service: 1,
                error_class: 6,
                error_value: 3,
            }),
        };
        assert_eq!(
            error.to_string(),
            "association rejected (RejectedPermanent): no reason given; xDLMS initiate error: \
             incompatible conformance"
        );
    }
}

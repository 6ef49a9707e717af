//! The server (meter) side of a DLMS association, sans-IO.
//!
//! One [`Server`] serves one connection of one meter. Drive it like this:
//!
//! 1. Build a [`ServerConfig`] for the meter (its system title, the associations it offers, e.g.
//!    with [`ServerConfig::is15959`]) and keep the meter's [`MeterSecurityState`] (its own
//!    invocation counter and the last counter accepted from each client); persist that state
//!    between connections.
//! 2. When a connection opens: `Server::new(config, state)`.
//! 3. For every APDU the framing layer (TCP wrapper / HDLC) delivers, call
//!    [`Server::on_apdu`] with the client SAP the frame came from, the APDU bytes, `now`, a server
//!    challenge (StoC, 8–64 bytes) and the meter's [`CosemObjects`]. The caller must draw the
//!    StoC from a cryptographically secure random source, fresh for every call that may carry
//!    an AARQ: the server does not generate randomness (sans-IO) and uses what it is given as
//!    is, and a predictable or repeated StoC lets a recorded HLS pass 3 be replayed. It is only
//!    used when the APDU is an HLS AARQ. Send [`ServerOutput::response`] back to the same
//!    client SAP, if there is one. [`ServerOutput::event`] says what happened (associated,
//!    released, refused…).
//! 4. When the connection closes: [`Server::into_security_state`] (or
//!    [`Server::security_state`] at any time) and persist it.
//!
//! The server answers GET on the Association LN object (class 15; the current association
//! `0.0.40.0.0.255` and the association's own logical name) for attributes 1 (logical name),
//! 4 (application context name), 5 (xDLMS context info), 6 (authentication mechanism name),
//! 7 (secret: always denied) and 8 (association status) and runs HLS pass 3/4 (method 1); every
//! other attribute and method, and every other object, goes to [`CosemObjects`].
//!
//! Push: [`build_push_notification`] builds a DataNotification, plain or general-glo-ciphered.
//!
//! Rules the server enforces on a connection:
//! - xDLMS APDUs longer than the `max_receive_pdu_size` it announced are refused with
//!   ExceptionResponse service-not-allowed / pdu-too-long;
//! - ciphered requests are opened with the global key only: ded- and general-ded-ciphered
//!   APDUs are refused (no dedicated key support); a ciphered reply uses the envelope the
//!   request came in (glo- or general-glo-ciphering);
//! - a GET-with-list may name at most [`MAX_GET_LIST_ITEMS`] attributes and no GET answer is
//!   kept in memory beyond [`MAX_GET_RESPONSE_LEN`] bytes;
//! - release on a ciphered association: an RLRQ *with* user-information must carry a
//!   glo-ciphered InitiateRequest that verifies under the association's keys and protection
//!   with a fresh invocation counter (as Gurux sends it with `useProtectedRelease`); if it does
//!   not, the RLRQ is refused (ExceptionResponse deciphering-error or invocation-counter-error)
//!   and the association stays open. An RLRQ *without* user-information still releases,
//!   because that is what Gurux sends by default inside a ciphered association (see
//!   `tests/vectors/rlrq-public.txt` and the Gurux interop test); it gives an attacker who can
//!   inject APDUs nothing an injected transport disconnect would not (the association ends
//!   with the connection either way);
//! - the last invocation counter of at most [`MAX_CLIENT_TITLES`] client system titles is
//!   remembered, and only for titles that sent an authenticated APDU.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};

use super::wire;
use super::{
    ASSOCIATION_LN_CLASS_ID, AssociationStatus, Authentication, CURRENT_ASSOCIATION, CosemObjects,
    Negotiated, REPLY_TO_HLS_AUTHENTICATION, RequestContext,
};
use crate::apdu::{
    Aare, Aarq, ActionRequest, ActionResponse, ActionResult, Apdu, ApplicationContext,
    AssociationResult, AttributeDescriptor, ConfirmedServiceError, Conformance, DataAccessResult,
    DataBlockG, DataNotification, ExceptionResponse, GetDataResult, GetRequest, GetResponse,
    InitiateRequest, InitiateResponse, InvokeIdAndPriority, Mechanism, MethodDescriptor, Rlre,
    SelectiveAccess, SetRequest, SetResponse, SourceDiagnostic,
};
use crate::data::Data;
use crate::obis::ObisCode;
use crate::security::{
    CipheredApdu, Envelope, GlobalKeys, HlsSecret, InvocationCounter, ReplayGuard, SecurityControl,
    SecurityError, SecurityPolicy, Suite0Cipher, SystemTitle, Unprotected, constant_time_eq,
    protect, unprotect,
};

/// Largest value a client may send with SET in data blocks (bytes of A-XDR), so a hostile client
/// cannot make the meter buffer without limit.
pub const MAX_SET_VALUE_LEN: usize = 1 << 20;

/// Most attributes one GET-with-list may name. A longer list is answered with
/// `other-reason` for every item, and no object is read.
pub const MAX_GET_LIST_ITEMS: usize = 64;

/// Largest encoded GET answer (bytes of A-XDR) the server keeps in memory to send, whole or in
/// blocks. A normal GET whose value encodes longer is answered with `other-reason`; in a
/// GET-with-list, each item that would take the answer past the limit is answered with
/// `other-reason` instead of its value.
pub const MAX_GET_RESPONSE_LEN: usize = 8 << 20;

/// Most client system titles whose last invocation counter the meter remembers (see
/// [`MeterSecurityState`]).
pub const MAX_CLIENT_TITLES: usize = 64;

/// ExceptionResponse state-error: service-not-allowed.
pub const STATE_SERVICE_NOT_ALLOWED: u8 = 1;
/// ExceptionResponse state-error: service-unknown.
pub const STATE_SERVICE_UNKNOWN: u8 = 2;
/// ExceptionResponse service-error: operation-not-possible.
pub const SERVICE_OPERATION_NOT_POSSIBLE: u8 = 1;
/// ExceptionResponse service-error: service-not-supported.
pub const SERVICE_NOT_SUPPORTED: u8 = 2;
/// ExceptionResponse service-error: other-reason.
pub const SERVICE_OTHER_REASON: u8 = 3;
/// ExceptionResponse service-error: pdu-too-long (longer than the server's max receive PDU).
pub const SERVICE_PDU_TOO_LONG: u8 = 4;
/// ExceptionResponse service-error: deciphering-error.
pub const SERVICE_DECIPHERING_ERROR: u8 = 5;
/// ExceptionResponse service-error: invocation-counter-error (carries the expected counter).
pub const SERVICE_INVOCATION_COUNTER_ERROR: u8 = 6;

/// One association a meter offers (one row of the IS 15959 association table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationConfig {
    /// The client SAP this association is bound to (16, 32, 48, 64, 80 in IS 15959).
    pub client_sap: u16,
    /// The association's own Association LN object, e.g. `0.0.40.0.3.255`.
    pub logical_name: ObisCode,
    pub authentication: Authentication,
    /// Protection every xDLMS APDU on this association must carry. Anything other than
    /// [`SecurityPolicy::None`] requires the ciphered application context and `keys`.
    pub security: SecurityPolicy,
    /// Global unicast keys; needed for ciphering and for HLS-GMAC. When present on an
    /// association whose `security` is `None`, a client may still choose to cipher.
    pub keys: Option<GlobalKeys>,
}

impl AssociationConfig {
    /// IS 15959 public client: SAP 16, no authentication, no ciphering, `0.0.40.0.1.255`.
    pub fn public() -> Self {
        AssociationConfig {
            client_sap: 16,
            logical_name: ObisCode::new(0, 0, 40, 0, 1, 255),
            authentication: Authentication::None,
            security: SecurityPolicy::None,
            keys: None,
        }
    }

    /// IS 15959 meter reader: SAP 32, LLS with `password`, no ciphering, `0.0.40.0.2.255`.
    pub fn meter_reader(password: &[u8]) -> Self {
        AssociationConfig {
            client_sap: 32,
            logical_name: ObisCode::new(0, 0, 40, 0, 2, 255),
            authentication: Authentication::Lls {
                password: password.to_vec(),
            },
            security: SecurityPolicy::None,
            keys: None,
        }
    }

    /// An IS 15959 HLS association (utility settings 48 → `0.0.40.0.3.255`, push 64 → `.4`,
    /// firmware 80 → `.5`; other SAPs map to `0.0.40.0.0.255`) with authenticated encryption.
    pub fn hls(client_sap: u16, authentication: Authentication, keys: GlobalKeys) -> Self {
        let e = match client_sap {
            48 => 3,
            64 => 4,
            80 => 5,
            _ => 0,
        };
        AssociationConfig {
            client_sap,
            logical_name: ObisCode::new(0, 0, 40, 0, e, 255),
            authentication,
            security: SecurityPolicy::AuthenticatedEncrypted,
            keys: Some(keys),
        }
    }

    fn ciphered(&self) -> bool {
        self.security != SecurityPolicy::None
    }
}

/// Everything a meter's server association needs to know, fixed for the meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The meter's system title (server system title in AARE and ciphered APDUs).
    pub system_title: SystemTitle,
    pub associations: Vec<AssociationConfig>,
    /// Services offered; the negotiated conformance is this AND the client's proposal.
    pub conformance: Conformance,
    /// Largest APDU the meter accepts (sent in the InitiateResponse).
    pub max_receive_pdu_size: u16,
}

impl ServerConfig {
    /// The conformance an IS 15959 meter typically offers, and what this server implements:
    /// exactly [`super::COMMON_CONFORMANCE`] (GET/SET/ACTION, selective access, block transfer
    /// with GET/SET, multiple references, data notification, attribute 0 with GET). It leaves
    /// out event-notification, which the head-end client proposes: this server never sends
    /// EventNotification APDUs, so it must not offer the service.
    pub const IS15959_CONFORMANCE: Conformance = super::COMMON_CONFORMANCE;

    /// The five IS 15959 associations: public (16, none), meter reader (32, LLS `lls_password`),
    /// utility settings (48), push (64) and firmware (80), the last three HLS mechanism 2 with
    /// their own secrets and authenticated encryption under the meter's global `keys`.
    pub fn is15959(
        system_title: SystemTitle,
        keys: GlobalKeys,
        lls_password: &[u8],
        hls_secrets: [HlsSecret; 3],
    ) -> Self {
        let [utility, push, firmware] = hls_secrets;
        let hls = |sap, secret: HlsSecret| {
            AssociationConfig::hls(sap, Authentication::Hls { secret }, keys.clone())
        };
        ServerConfig {
            system_title,
            associations: vec![
                AssociationConfig::public(),
                AssociationConfig::meter_reader(lls_password),
                hls(48, utility),
                hls(64, push),
                hls(80, firmware),
            ],
            conformance: Self::IS15959_CONFORMANCE,
            max_receive_pdu_size: 1024,
        }
    }

    /// The association offered to `client_sap`, if any.
    pub fn association(&self, client_sap: u16) -> Option<&AssociationConfig> {
        self.associations
            .iter()
            .find(|a| a.client_sap == client_sap)
    }
}

/// The meter's security state that outlives a connection; the application persists it
/// (`invocation_counter.peek()` and each guard's `last_accepted()`).
///
/// A client system title enters `client_counters` only when an APDU from it was authenticated
/// (a GMAC tag under the meter's keys verified) and its counter accepted; unauthenticated
/// traffic (e.g. AARQs with made-up calling AP titles) never adds an entry. The map holds at
/// most [`MAX_CLIENT_TITLES`] titles: when an authenticated insert goes beyond that, the title
/// whose last authenticated APDU is the oldest is forgotten (titles put in the map from outside,
/// e.g. restored from storage, whose order the server does not know, go first, lowest title
/// first). Only holders of the keys can cause an eviction, so an attacker without keys cannot
/// flush a real client's counter; forgetting one re-opens replay of that client's old APDUs, so
/// the bound is set well above the number of head-ends a meter talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterSecurityState {
    /// The invocation counter the meter sends with next; strictly increasing for the life of
    /// the keys, across associations and connections (ciphered APDUs, HLS-GMAC, pushes).
    pub invocation_counter: InvocationCounter,
    /// The last invocation counter accepted from each client system title (replay rejection).
    pub client_counters: BTreeMap<SystemTitle, ReplayGuard>,
    /// Titles of `client_counters` in the order of their last authenticated APDU, oldest first.
    accepted_order: VecDeque<SystemTitle>,
}

impl MeterSecurityState {
    /// A fresh state whose next sending counter is `next_invocation_counter`, no client seen.
    pub fn new(next_invocation_counter: u32) -> Self {
        MeterSecurityState {
            invocation_counter: InvocationCounter::new(next_invocation_counter),
            client_counters: BTreeMap::new(),
            accepted_order: VecDeque::new(),
        }
    }

    /// A copy of the replay guard of `client` (a fresh one if it was never seen); nothing is
    /// stored until [`Self::record`].
    fn guard(&self, client: &SystemTitle) -> ReplayGuard {
        self.client_counters
            .get(client)
            .cloned()
            .unwrap_or_default()
    }

    /// Stores `guard` for `client` after an authenticated APDU from it, keeping the map bounded.
    fn record(&mut self, client: SystemTitle, guard: ReplayGuard) {
        self.client_counters.insert(client, guard);
        self.accepted_order.retain(|t| *t != client);
        self.accepted_order.push_back(client);
        while self.client_counters.len() > MAX_CLIENT_TITLES {
            let unordered = self
                .client_counters
                .keys()
                .find(|t| !self.accepted_order.contains(t))
                .copied();
            let Some(victim) = unordered.or_else(|| self.accepted_order.pop_front()) else {
                break;
            };
            self.client_counters.remove(&victim);
            self.accepted_order.retain(|t| *t != victim);
        }
    }

    /// Verifies a ciphered APDU from `client` with the global-key `cipher` (ded- and
    /// general-ded-ciphering are refused: no dedicated key support), and records its counter
    /// when it was authenticated.
    fn open(
        &mut self,
        apdu: &[u8],
        cipher: &Suite0Cipher,
        client: SystemTitle,
        required: SecurityPolicy,
    ) -> Result<Unprotected, SecurityError> {
        if CipheredApdu::decode(apdu)?.envelope.is_dedicated() {
            return Err(SecurityError::Unsupported("dedicated-key ciphering"));
        }
        let mut guard = self.guard(&client);
        let opened = unprotect(apdu, cipher, &client, required, &mut guard)?;
        if opened.security_control.authenticated() {
            self.record(client, guard);
        }
        Ok(opened)
    }
}

impl Default for MeterSecurityState {
    fn default() -> Self {
        MeterSecurityState::new(1)
    }
}

/// What one call of [`Server::on_apdu`] produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerOutput {
    /// The APDU to send back to the client, if any.
    pub response: Option<Vec<u8>>,
    pub event: Option<ServerEvent>,
}

/// Something worth logging or acting on (e.g. closing the connection after `Released`).
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The association is open: for none/LLS straight after the AARE, for HLS after pass 4.
    Associated {
        client_sap: u16,
        mechanism: Mechanism,
    },
    /// The AARE accepted an HLS association; pass 3/4 is expected next.
    AuthenticationPending { client_sap: u16 },
    /// The AARQ was rejected with this diagnostic (or xDLMS error).
    Rejected {
        client_sap: u16,
        diagnostic: SourceDiagnostic,
        service_error: Option<ConfirmedServiceError>,
        reason: &'static str,
    },
    /// HLS pass 3 failed: the client does not know the secret / keys.
    AuthenticationFailed { client_sap: u16 },
    /// A request was refused with an ExceptionResponse.
    Refused { reason: &'static str },
    /// RLRQ answered; the association is back to idle.
    Released { client_sap: u16 },
}

/// A long GET response being served block by block.
#[derive(Debug)]
struct LongGet {
    invoke_id: InvokeIdAndPriority,
    encoded: Vec<u8>,
    sent: usize,
    block_number: u32,
    block_len: usize,
}

/// A SET value arriving in blocks.
#[derive(Debug)]
struct LongSet {
    invoke_id: InvokeIdAndPriority,
    attribute: AttributeDescriptor,
    access: Option<SelectiveAccess>,
    buffer: Vec<u8>,
    block_number: u32,
}

#[derive(Debug)]
struct Session {
    /// Index into `config.associations`.
    association: usize,
    client_sap: u16,
    /// Client system title (from the AARQ calling-AP-title), when given.
    client_title: Option<SystemTitle>,
    /// Protection of this session's xDLMS APDUs (`None` = plaintext).
    policy: SecurityPolicy,
    /// The envelope ciphered replies go in: the one the request being answered came in
    /// (glo- or general-glo-ciphering).
    reply_envelope: Envelope,
    /// The association's keys, scheduled once for the session (ciphering and HLS-GMAC).
    cipher: Option<Suite0Cipher>,
    negotiated: Negotiated,
    status: AssociationStatus,
    ctos: Vec<u8>,
    stoc: Vec<u8>,
    long_get: Option<LongGet>,
    long_set: Option<LongSet>,
}

/// The server association state machine for one connection. See the module docs.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    security: MeterSecurityState,
    session: Option<Session>,
}

impl Server {
    pub fn new(config: ServerConfig, security: MeterSecurityState) -> Self {
        Server {
            config,
            security,
            session: None,
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The meter's counters as they stand now: persist them.
    pub fn security_state(&self) -> &MeterSecurityState {
        &self.security
    }

    pub fn into_security_state(self) -> MeterSecurityState {
        self.security
    }

    /// Association status of the connection.
    pub fn status(&self) -> AssociationStatus {
        self.session
            .as_ref()
            .map_or(AssociationStatus::NonAssociated, |s| s.status)
    }

    /// The client SAP of the open (or pending) association.
    pub fn client_sap(&self) -> Option<u16> {
        self.session.as_ref().map(|s| s.client_sap)
    }

    /// What was agreed in the AARQ/AARE exchange, while an association is open or pending.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.session.as_ref().map(|s| s.negotiated)
    }

    /// Forget the association (the connection dropped). Counters are kept.
    pub fn reset(&mut self) {
        self.session = None;
    }

    /// Handles one APDU from `client_sap`. `stoc` is the server challenge (8–64 bytes), used
    /// only if this APDU is an AARQ for HLS. The caller must pass fresh bytes from a secure
    /// random source whenever the APDU may be an AARQ (the server cannot tell it makes no
    /// randomness of its own); for an APDU known not to be an AARQ anything (e.g. `&[]`) will do.
    pub fn on_apdu<O: CosemObjects + ?Sized>(
        &mut self,
        client_sap: u16,
        apdu: &[u8],
        now: DateTime<Utc>,
        stoc: &[u8],
        objects: &mut O,
    ) -> ServerOutput {
        match apdu.first() {
            Some(&crate::apdu::tag::AARQ) => return self.on_aarq(client_sap, apdu, stoc),
            Some(&crate::apdu::tag::RLRQ) => return self.on_rlrq(client_sap, apdu),
            _ => {}
        }
        let Some(session) = self.session.as_ref().filter(|s| s.client_sap == client_sap) else {
            return refuse(
                STATE_SERVICE_NOT_ALLOWED,
                SERVICE_OPERATION_NOT_POSSIBLE,
                None,
                "request before association",
            );
        };
        let association = &self.config.associations[session.association];
        // Enforce the max receive PDU size the server announced in its InitiateResponse.
        let max_pdu = match session.negotiated.server_max_receive_pdu_size {
            0 => usize::from(u16::MAX),
            n => usize::from(n),
        };
        if apdu.len() > max_pdu {
            return refuse(
                STATE_SERVICE_NOT_ALLOWED,
                SERVICE_PDU_TOO_LONG,
                None,
                "request longer than the server's max receive PDU size",
            );
        }
        // Unwrap the ciphering, if the session has any.
        let plain: Vec<u8>;
        let mut reply_envelope = Envelope::Glo;
        let request: &[u8] = if wire::is_ciphered(apdu) {
            let (Some(cipher), Some(title)) = (session.cipher.as_ref(), session.client_title)
            else {
                return refuse(
                    STATE_SERVICE_NOT_ALLOWED,
                    SERVICE_DECIPHERING_ERROR,
                    None,
                    "ciphered request on an association without keys",
                );
            };
            match self.security.open(apdu, cipher, title, session.policy) {
                Ok(opened) => {
                    reply_envelope = opened.envelope;
                    plain = opened.apdu;
                    &plain
                }
                Err(SecurityError::Unsupported(_)) => {
                    return refuse(
                        STATE_SERVICE_NOT_ALLOWED,
                        SERVICE_DECIPHERING_ERROR,
                        None,
                        "dedicated-key ciphering is not supported (no dedicated key)",
                    );
                }
                Err(SecurityError::Replayed { last, .. }) => {
                    return refuse(
                        STATE_SERVICE_NOT_ALLOWED,
                        SERVICE_INVOCATION_COUNTER_ERROR,
                        Some(last.saturating_add(1)),
                        "replayed invocation counter",
                    );
                }
                Err(_) => {
                    return refuse(
                        STATE_SERVICE_NOT_ALLOWED,
                        SERVICE_DECIPHERING_ERROR,
                        None,
                        "request failed to decipher or authenticate",
                    );
                }
            }
        } else if session.policy != SecurityPolicy::None {
            return refuse(
                STATE_SERVICE_NOT_ALLOWED,
                SERVICE_DECIPHERING_ERROR,
                None,
                "plaintext request on a ciphered association",
            );
        } else {
            apdu
        };
        let request = match Apdu::decode(request) {
            Ok(request) => request,
            Err(_) => {
                return refuse(
                    STATE_SERVICE_UNKNOWN,
                    SERVICE_NOT_SUPPORTED,
                    None,
                    "undecodable request",
                );
            }
        };
        let pending = session.status == AssociationStatus::AssociationPending;
        if let Some(session) = self.session.as_mut() {
            session.reply_envelope = reply_envelope;
        }
        let ctx = RequestContext {
            client_sap,
            mechanism: association.authentication.mechanism(),
            now,
        };
        let (response, event) = match request {
            Apdu::ActionRequest(ActionRequest::Normal {
                invoke_id,
                method,
                parameters,
            }) if self.is_hls_reply(&method) => {
                let (response, event) = self.hls_pass3(invoke_id, parameters);
                (response.encode(), event)
            }
            _ if pending => {
                return refuse(
                    STATE_SERVICE_NOT_ALLOWED,
                    SERVICE_OPERATION_NOT_POSSIBLE,
                    None,
                    "request before HLS authentication completed",
                );
            }
            Apdu::GetRequest(get) => (self.on_get(get, &ctx, objects), None),
            Apdu::SetRequest(set) => (self.on_set(set, &ctx, objects).encode(), None),
            Apdu::ActionRequest(ActionRequest::Normal {
                invoke_id,
                method,
                parameters,
            }) => {
                let result = objects.action(&ctx, &method, parameters);
                let response = match result {
                    Ok(ret) => ActionResponse::Normal {
                        invoke_id,
                        result: ActionResult::Success,
                        return_parameters: ret.map(GetDataResult::Data),
                    },
                    Err(result) => ActionResponse::Normal {
                        invoke_id,
                        result,
                        return_parameters: None,
                    },
                };
                (Apdu::ActionResponse(response).encode(), None)
            }
            _ => {
                return refuse(
                    STATE_SERVICE_UNKNOWN,
                    SERVICE_NOT_SUPPORTED,
                    None,
                    "service not supported",
                );
            }
        };
        let response = self.seal(response);
        if self.status() == AssociationStatus::NonAssociated {
            // HLS pass 3 failed: the refusal went out, the association is gone.
            self.session = None;
        }
        ServerOutput {
            response: Some(response),
            event,
        }
    }

    /// Ciphers a response when the session is ciphered, in the session's reply envelope. A
    /// response that cannot be ciphered (counter exhausted) becomes a plaintext
    /// ExceptionResponse.
    fn seal(&mut self, plain: Vec<u8>) -> Vec<u8> {
        let Some(session) = self.session.as_ref() else {
            return plain;
        };
        let (policy, Some(cipher)) = (session.policy, session.cipher.as_ref()) else {
            return plain;
        };
        if policy == SecurityPolicy::None {
            return plain;
        }
        let sealed = protect(
            &plain,
            session.reply_envelope,
            SecurityControl::new(policy),
            cipher,
            &self.config.system_title,
            &mut self.security.invocation_counter,
        );
        match sealed {
            Ok(bytes) => bytes,
            Err(_) => exception(STATE_SERVICE_NOT_ALLOWED, SERVICE_OTHER_REASON, None),
        }
    }

    fn is_hls_reply(&self, method: &MethodDescriptor) -> bool {
        let Some(session) = self.session.as_ref() else {
            return false;
        };
        let own = self.config.associations[session.association].logical_name;
        method.class_id == ASSOCIATION_LN_CLASS_ID
            && method.method_id == REPLY_TO_HLS_AUTHENTICATION
            && (method.instance == CURRENT_ASSOCIATION || method.instance == own)
            && self.config.associations[session.association]
                .authentication
                .is_hls()
    }

    /// HLS pass 3 (verify the client's f(StoC)) and pass 4 (answer with f(CtoS)).
    fn hls_pass3(
        &mut self,
        invoke_id: InvokeIdAndPriority,
        parameters: Option<Data>,
    ) -> (Apdu, Option<ServerEvent>) {
        let denied = |event| {
            (
                Apdu::ActionResponse(ActionResponse::Normal {
                    invoke_id,
                    result: ActionResult::ReadWriteDenied,
                    return_parameters: None,
                }),
                event,
            )
        };
        let Some(session) = self.session.as_mut() else {
            return denied(None);
        };
        let client_sap = session.client_sap;
        if session.status != AssociationStatus::AssociationPending {
            // Already authenticated: a second pass 3 is not allowed.
            return denied(None);
        }
        let association = &self.config.associations[session.association];
        let response = match parameters {
            Some(Data::OctetString(bytes)) => bytes,
            _ => Vec::new(),
        };
        let hls = wire::hls(&association.authentication, session.cipher.as_ref());
        let client_title = session.client_title.unwrap_or_default();
        let verified = hls
            .ok_or(SecurityError::Unsupported("HLS without keys"))
            .and_then(|hls| {
                crate::security::hls_verify(hls, &session.stoc, &response, &client_title)
            });
        let reply = verified.and_then(|()| {
            let hls = hls.ok_or(SecurityError::Unsupported("HLS without keys"))?;
            let ic = match hls {
                crate::security::Hls::Mechanism5(_) => self.security.invocation_counter.take()?,
                crate::security::Hls::Mechanism2(_) => 0,
            };
            crate::security::hls_response(hls, &session.ctos, &self.config.system_title, ic)
        });
        match reply {
            Ok(reply) => {
                session.status = AssociationStatus::Associated;
                let mechanism = association.authentication.mechanism();
                (
                    Apdu::ActionResponse(ActionResponse::Normal {
                        invoke_id,
                        result: ActionResult::Success,
                        return_parameters: Some(GetDataResult::Data(Data::OctetString(reply))),
                    }),
                    Some(ServerEvent::Associated {
                        client_sap,
                        mechanism,
                    }),
                )
            }
            Err(_) => {
                // Stay pending for this one answer (so it goes out ciphered like the request);
                // the association is dropped right after, see `on_apdu`.
                session.status = AssociationStatus::NonAssociated;
                denied(Some(ServerEvent::AuthenticationFailed { client_sap }))
            }
        }
    }

    fn on_aarq(&mut self, client_sap: u16, apdu: &[u8], stoc: &[u8]) -> ServerOutput {
        // A new AARQ replaces whatever association this connection had.
        self.session = None;
        let aarq = match Apdu::decode(apdu) {
            Ok(Apdu::Aarq(aarq)) => aarq,
            _ => {
                return self.reject(
                    client_sap,
                    ApplicationContext::LogicalNameNoCiphering,
                    SourceDiagnostic::ServiceUser(1),
                    None,
                    "malformed AARQ",
                );
            }
        };
        let context = aarq.application_context;
        let Some(index) = self
            .config
            .associations
            .iter()
            .position(|a| a.client_sap == client_sap)
        else {
            return self.reject(
                client_sap,
                context,
                SourceDiagnostic::ServiceUser(1),
                None,
                "no association for this client SAP",
            );
        };
        match self.check_aarq(index, &aarq, stoc) {
            Ok(session) => {
                let association = &self.config.associations[index];
                let hls = association.authentication.is_hls();
                let mechanism = association.authentication.mechanism();
                let ciphered = session.policy != SecurityPolicy::None;
                let initiate = Apdu::InitiateResponse(InitiateResponse {
                    negotiated_quality_of_service: None,
                    negotiated_dlms_version: 6,
                    negotiated_conformance: session.negotiated.conformance,
                    server_max_receive_pdu_size: self.config.max_receive_pdu_size,
                    vaa_name: 0x0007,
                })
                .encode();
                let stoc = session.stoc.clone();
                self.session = Some(session);
                let user_information = if ciphered {
                    let sealed = self.seal(initiate);
                    match wire::is_ciphered(&sealed) {
                        true => sealed,
                        false => {
                            self.session = None;
                            return self.reject(
                                client_sap,
                                context,
                                SourceDiagnostic::ServiceUser(1),
                                None,
                                "cannot cipher the InitiateResponse (counter exhausted?)",
                            );
                        }
                    }
                } else {
                    initiate
                };
                let aare = Aare {
                    application_context: context,
                    result: AssociationResult::Accepted,
                    diagnostic: if hls {
                        SourceDiagnostic::AUTHENTICATION_REQUIRED
                    } else {
                        SourceDiagnostic::NULL
                    },
                    responding_ap_title: (ciphered || mechanism == Mechanism::HlsGmac)
                        .then(|| self.config.system_title.to_vec()),
                    mechanism: (mechanism != Mechanism::None).then_some(mechanism),
                    responding_authentication_value: hls.then_some(stoc),
                    user_information: Some(user_information),
                };
                let event = if hls {
                    ServerEvent::AuthenticationPending { client_sap }
                } else {
                    ServerEvent::Associated {
                        client_sap,
                        mechanism,
                    }
                };
                ServerOutput {
                    response: Some(Apdu::Aare(aare).encode()),
                    event: Some(event),
                }
            }
            Err(rejection) => self.reject(
                client_sap,
                context,
                rejection.diagnostic,
                rejection.service_error,
                rejection.reason,
            ),
        }
    }

    /// Validates an AARQ against association `index`; the session it opens, or why not.
    fn check_aarq(&mut self, index: usize, aarq: &Aarq, stoc: &[u8]) -> Result<Session, Rejection> {
        let association = &self.config.associations[index];
        let ciphered = match aarq.application_context {
            ApplicationContext::LogicalNameWithCiphering if association.keys.is_some() => true,
            ApplicationContext::LogicalNameNoCiphering if !association.ciphered() => false,
            _ => {
                return Err(Rejection::user(
                    SourceDiagnostic::APPLICATION_CONTEXT_NOT_SUPPORTED,
                    "application context not supported on this association",
                ));
            }
        };
        // Authentication mechanism and value.
        let expected = association.authentication.mechanism();
        match (aarq.mechanism, expected) {
            (None | Some(Mechanism::None), Mechanism::None) => {}
            (None | Some(Mechanism::None), _) => {
                return Err(Rejection::user(
                    SourceDiagnostic::ServiceUser(12),
                    "authentication mechanism name required",
                ));
            }
            (Some(got), expected) if got != expected => {
                return Err(Rejection::user(
                    SourceDiagnostic::MECHANISM_NOT_RECOGNISED,
                    "authentication mechanism not offered on this association",
                ));
            }
            _ => {}
        }
        let value = aarq.calling_authentication_value.as_deref();
        let mut ctos = Vec::new();
        match &association.authentication {
            Authentication::None => {}
            Authentication::Lls { password } => match value {
                None => {
                    return Err(Rejection::user(
                        SourceDiagnostic::AUTHENTICATION_REQUIRED,
                        "LLS password missing",
                    ));
                }
                Some(given) if !constant_time_eq(given, password) => {
                    return Err(Rejection::user(
                        SourceDiagnostic::AUTHENTICATION_FAILURE,
                        "wrong LLS password",
                    ));
                }
                Some(_) => {}
            },
            Authentication::Hls { .. } | Authentication::HlsGmac => {
                match value {
                    Some(c) if (8..=64).contains(&c.len()) => ctos = c.to_vec(),
                    Some(_) => {
                        return Err(Rejection::user(
                            SourceDiagnostic::AUTHENTICATION_FAILURE,
                            "HLS client challenge must be 8 to 64 bytes",
                        ));
                    }
                    None => {
                        return Err(Rejection::user(
                            SourceDiagnostic::AUTHENTICATION_REQUIRED,
                            "HLS client challenge missing",
                        ));
                    }
                }
                if !(8..=64).contains(&stoc.len()) {
                    return Err(Rejection::user(
                        SourceDiagnostic::ServiceUser(1),
                        "server challenge must be 8 to 64 bytes (caller error)",
                    ));
                }
            }
        }
        // The calling AP title is the client system title; ciphering and GMAC need it.
        let client_title = match aarq.calling_ap_title.as_deref() {
            Some(t) => Some(SystemTitle::try_from(t).map_err(|_| {
                Rejection::user(
                    SourceDiagnostic::ServiceUser(3),
                    "calling AP title must be an 8-byte system title",
                )
            })?),
            None => None,
        };
        let needs_title = ciphered || association.authentication == Authentication::HlsGmac;
        if needs_title && client_title.is_none() {
            return Err(Rejection::user(
                SourceDiagnostic::ServiceUser(3),
                "calling AP title (client system title) required",
            ));
        }
        if association.authentication == Authentication::HlsGmac && association.keys.is_none() {
            return Err(Rejection::user(
                SourceDiagnostic::MECHANISM_NOT_RECOGNISED,
                "HLS-GMAC needs keys on the association",
            ));
        }
        // The xDLMS InitiateRequest, plain or glo-ciphered.
        let Some(user_information) = aarq.user_information.as_deref() else {
            return Err(Rejection::user(
                SourceDiagnostic::ServiceUser(1),
                "AARQ carries no InitiateRequest",
            ));
        };
        let mut policy = SecurityPolicy::None;
        let plain: Vec<u8>;
        let cipher = association.keys.as_ref().map(Suite0Cipher::new);
        let initiate_bytes: &[u8] = if wire::is_ciphered(user_information) {
            let (Some(cipher), Some(title)) = (cipher.as_ref(), client_title) else {
                return Err(Rejection::initiate(
                    0,
                    "ciphered InitiateRequest without keys",
                ));
            };
            let opened = self
                .security
                .open(user_information, cipher, title, association.security)
                .map_err(|_| {
                    Rejection::user(
                        SourceDiagnostic::AUTHENTICATION_FAILURE,
                        "InitiateRequest failed to decipher or authenticate (wrong keys?)",
                    )
                })?;
            // The session keeps the protection the client chose (at least what is required).
            policy = opened.security_control.policy();
            plain = opened.apdu;
            &plain
        } else {
            if ciphered {
                return Err(Rejection::initiate(
                    0,
                    "plaintext InitiateRequest on a ciphered association",
                ));
            }
            user_information
        };
        let request = match Apdu::decode(initiate_bytes) {
            Ok(Apdu::InitiateRequest(request)) => request,
            _ => {
                return Err(Rejection::user(
                    SourceDiagnostic::ServiceUser(1),
                    "user information is not an InitiateRequest",
                ));
            }
        };
        let negotiated = self.negotiate(&request)?;
        Ok(Session {
            association: index,
            client_sap: association.client_sap,
            client_title,
            policy,
            reply_envelope: Envelope::Glo,
            cipher,
            negotiated,
            status: if association.authentication.is_hls() {
                AssociationStatus::AssociationPending
            } else {
                AssociationStatus::Associated
            },
            ctos,
            stoc: stoc.to_vec(),
            long_get: None,
            long_set: None,
        })
    }

    fn negotiate(&self, request: &InitiateRequest) -> Result<Negotiated, Rejection> {
        if request.proposed_dlms_version < 6 {
            return Err(Rejection::initiate(1, "DLMS version too low"));
        }
        let conformance = Conformance(request.proposed_conformance.0 & self.config.conformance.0);
        if conformance.0 == 0 {
            return Err(Rejection::initiate(3, "incompatible conformance"));
        }
        let client_max = request.client_max_receive_pdu_size;
        if client_max != 0 && client_max < 12 {
            return Err(Rejection::initiate(
                2,
                "client max receive PDU size too short",
            ));
        }
        Ok(Negotiated {
            conformance,
            client_max_receive_pdu_size: client_max,
            server_max_receive_pdu_size: self.config.max_receive_pdu_size,
        })
    }

    fn reject(
        &mut self,
        client_sap: u16,
        context: ApplicationContext,
        diagnostic: SourceDiagnostic,
        service_error: Option<ConfirmedServiceError>,
        reason: &'static str,
    ) -> ServerOutput {
        self.session = None;
        let aare = Aare {
            application_context: context,
            result: AssociationResult::RejectedPermanent,
            diagnostic,
            responding_ap_title: None,
            mechanism: None,
            responding_authentication_value: None,
            user_information: service_error.map(|e| Apdu::ConfirmedServiceError(e).encode()),
        };
        ServerOutput {
            response: Some(Apdu::Aare(aare).encode()),
            event: Some(ServerEvent::Rejected {
                client_sap,
                diagnostic,
                service_error,
                reason,
            }),
        }
    }

    fn on_rlrq(&mut self, client_sap: u16, apdu: &[u8]) -> ServerOutput {
        let rlrq = match Apdu::decode(apdu) {
            Ok(Apdu::Rlrq(rlrq)) => rlrq,
            _ => {
                return refuse(
                    STATE_SERVICE_UNKNOWN,
                    SERVICE_NOT_SUPPORTED,
                    None,
                    "malformed RLRQ",
                );
            }
        };
        // On a ciphered association an RLRQ with user-information must carry a ciphered
        // InitiateRequest that verifies (see the module docs); it is answered with a ciphered
        // InitiateResponse, as Gurux does. An RLRQ without user-information releases.
        let mut user_information = None;
        if let Some(session) = self.session.as_ref().filter(|s| s.client_sap == client_sap)
            && session.policy != SecurityPolicy::None
            && let Some(info) = rlrq.user_information.as_deref()
        {
            let conformance = session.negotiated.conformance;
            let opened = match (session.cipher.as_ref(), session.client_title) {
                (Some(cipher), Some(title)) if wire::is_ciphered(info) => {
                    self.security.open(info, cipher, title, session.policy)
                }
                _ => Err(SecurityError::Unsupported(
                    "plaintext RLRQ user-information on a ciphered association",
                )),
            };
            match opened.map(|o| Apdu::decode(&o.apdu)) {
                Ok(Ok(Apdu::InitiateRequest(_))) => {}
                Err(SecurityError::Replayed { last, .. }) => {
                    return refuse(
                        STATE_SERVICE_NOT_ALLOWED,
                        SERVICE_INVOCATION_COUNTER_ERROR,
                        Some(last.saturating_add(1)),
                        "RLRQ with a replayed invocation counter",
                    );
                }
                _ => {
                    return refuse(
                        STATE_SERVICE_NOT_ALLOWED,
                        SERVICE_DECIPHERING_ERROR,
                        None,
                        "RLRQ user-information failed to decipher or authenticate",
                    );
                }
            }
            if let Some(session) = self.session.as_mut() {
                // The InitiateResponse of a release goes glo-ciphered, as Gurux expects.
                session.reply_envelope = Envelope::Glo;
            }
            let initiate = Apdu::InitiateResponse(InitiateResponse {
                negotiated_quality_of_service: None,
                negotiated_dlms_version: 6,
                negotiated_conformance: conformance,
                server_max_receive_pdu_size: self.config.max_receive_pdu_size,
                vaa_name: 0x0007,
            })
            .encode();
            user_information = Some(self.seal(initiate));
        }
        let released = self
            .session
            .take()
            .map(|s| s.client_sap)
            .unwrap_or(client_sap);
        let rlre = Rlre {
            reason: Some(0),
            user_information,
        };
        ServerOutput {
            response: Some(Apdu::Rlre(rlre).encode()),
            event: Some(ServerEvent::Released {
                client_sap: released,
            }),
        }
    }

    /// Largest APDU the client accepts (0 in the InitiateRequest means no limit below 64 KiB).
    fn client_max_pdu(&self) -> usize {
        match self
            .session
            .as_ref()
            .map(|s| s.negotiated.client_max_receive_pdu_size)
        {
            Some(0) | None => u16::MAX as usize,
            Some(n) => n as usize,
        }
    }

    /// Bytes the ciphering adds around an APDU (tag, system title for the general envelopes,
    /// length, SC, IC, GCM tag).
    fn cipher_overhead(&self) -> usize {
        match self.session.as_ref() {
            None => 0,
            Some(s) if s.policy == SecurityPolicy::None => 0,
            Some(s) if s.reply_envelope.is_general() => 1 + 9 + 3 + 5 + crate::security::TAG_LEN,
            Some(_) => 1 + 3 + 5 + crate::security::TAG_LEN,
        }
    }

    fn on_get<O: CosemObjects + ?Sized>(
        &mut self,
        request: GetRequest,
        ctx: &RequestContext,
        objects: &mut O,
    ) -> Vec<u8> {
        match request {
            GetRequest::Normal {
                invoke_id,
                attribute,
                access,
            } => {
                let result = match self.get_own(&attribute) {
                    Some(result) => result,
                    None => objects.get(ctx, &attribute, access.as_ref()),
                };
                let result = match result {
                    Ok(data) => GetDataResult::Data(data),
                    Err(e) => GetDataResult::Error(e),
                };
                let response = GetResponse::Normal { invoke_id, result };
                self.fit_get_response(invoke_id, response)
            }
            GetRequest::WithList { invoke_id, items } if items.len() > MAX_GET_LIST_ITEMS => {
                // Too many attributes for one request: read none of them.
                let results =
                    vec![GetDataResult::Error(DataAccessResult::OtherReason); items.len()];
                let response = GetResponse::WithList { invoke_id, results };
                self.fit_get_response(invoke_id, response)
            }
            GetRequest::WithList { invoke_id, items } => {
                let results = items
                    .iter()
                    .map(|(attribute, access)| {
                        let result = match self.get_own(attribute) {
                            Some(result) => result,
                            None => objects.get(ctx, attribute, access.as_ref()),
                        };
                        match result {
                            Ok(data) => GetDataResult::Data(data),
                            Err(e) => GetDataResult::Error(e),
                        }
                    })
                    .collect();
                let response = GetResponse::WithList { invoke_id, results };
                self.fit_get_response(invoke_id, response)
            }
            GetRequest::Next {
                invoke_id,
                block_number,
            } => self.next_block(invoke_id, block_number).encode(),
        }
    }

    /// Encodes `response` whole if it fits the client's max PDU (or the client cannot take
    /// blocks), else starts block transfer and encodes the first block. An answer longer than
    /// [`MAX_GET_RESPONSE_LEN`] is cut down first (see [`cap_get_response`]).
    fn fit_get_response(
        &mut self,
        invoke_id: InvokeIdAndPriority,
        response: GetResponse,
    ) -> Vec<u8> {
        let mut whole = response.encode();
        let response = if whole.len() > MAX_GET_RESPONSE_LEN {
            let capped = cap_get_response(response);
            whole = capped.encode();
            capped
        } else {
            response
        };
        let max = self.client_max_pdu();
        let overhead = self.cipher_overhead();
        let blocks_allowed = self.session.as_ref().is_some_and(|s| {
            s.negotiated
                .conformance
                .has(Conformance::BLOCK_TRANSFER_WITH_GET_OR_READ)
        });
        // The raw data of the blocks is the A-XDR encoding of the result (Data for a normal GET,
        // SEQUENCE OF Get-Data-Result for a GET with list): the encoded response minus its
        // header (tag, choice, invoke id, and for a normal GET the Data choice 00).
        let header_len = match &response {
            GetResponse::Normal {
                result: GetDataResult::Data(_),
                ..
            } => 4,
            GetResponse::WithList { .. } => 3,
            // Errors are a few bytes; blocks are only built above.
            GetResponse::Normal { .. } | GetResponse::WithDataBlock { .. } => 0,
        };
        if whole.len() + overhead <= max || !blocks_allowed || header_len == 0 {
            return whole;
        }
        let encoded = whole.get(header_len..).unwrap_or_default().to_vec();
        // Header of a GET-response-with-datablock: tag, choice, invoke id, last-block, block
        // number (4), result choice, octet-string length (up to 5).
        let header = 1 + 1 + 1 + 1 + 4 + 1 + 5;
        let block_len = max.saturating_sub(header + overhead).max(1);
        let long = LongGet {
            invoke_id,
            encoded,
            sent: 0,
            block_number: 0,
            block_len,
        };
        if let Some(session) = self.session.as_mut() {
            session.long_get = Some(long);
        }
        self.next_block(invoke_id, 0).encode()
    }

    /// Serves the block after `acknowledged` of the long GET in progress.
    fn next_block(&mut self, invoke_id: InvokeIdAndPriority, acknowledged: u32) -> Apdu {
        let error = |block_number, e| {
            Apdu::GetResponse(GetResponse::WithDataBlock {
                invoke_id,
                block: DataBlockG {
                    last_block: true,
                    block_number,
                    result: Err(e),
                },
            })
        };
        let Some(session) = self.session.as_mut() else {
            return error(acknowledged, DataAccessResult::NoLongGetInProgress);
        };
        let Some(long) = session.long_get.as_mut() else {
            return error(acknowledged, DataAccessResult::NoLongGetInProgress);
        };
        if acknowledged != long.block_number {
            session.long_get = None;
            return error(acknowledged, DataAccessResult::DataBlockNumberInvalid);
        }
        let end = long
            .sent
            .saturating_add(long.block_len)
            .min(long.encoded.len());
        let chunk = long
            .encoded
            .get(long.sent..end)
            .unwrap_or_default()
            .to_vec();
        long.sent = end;
        long.block_number = long.block_number.saturating_add(1);
        let last_block = long.sent >= long.encoded.len();
        let block_number = long.block_number;
        let invoke_id = long.invoke_id;
        if last_block {
            session.long_get = None;
        }
        Apdu::GetResponse(GetResponse::WithDataBlock {
            invoke_id,
            block: DataBlockG {
                last_block,
                block_number,
                result: Ok(chunk),
            },
        })
    }

    /// Attributes of the Association LN object this server answers itself.
    fn get_own(&self, attribute: &AttributeDescriptor) -> Option<Result<Data, DataAccessResult>> {
        let session = self.session.as_ref()?;
        let association = &self.config.associations[session.association];
        if attribute.class_id != ASSOCIATION_LN_CLASS_ID
            || (attribute.instance != CURRENT_ASSOCIATION
                && attribute.instance != association.logical_name)
        {
            return None;
        }
        let context = if session.policy == SecurityPolicy::None {
            ApplicationContext::LogicalNameNoCiphering
        } else {
            ApplicationContext::LogicalNameWithCiphering
        };
        Some(match attribute.attribute_id {
            1 => Ok(Data::OctetString(attribute.instance.bytes().to_vec())),
            4 => Ok(super::application_context_name(context)),
            5 => Ok(Data::Structure(vec![
                Data::bit_string(wire::conformance_bits(session.negotiated.conformance)),
                Data::LongUnsigned(session.negotiated.client_max_receive_pdu_size),
                Data::LongUnsigned(self.config.max_receive_pdu_size),
                Data::Unsigned(6),
                Data::Integer(0),
                Data::OctetString(Vec::new()),
            ])),
            6 => Ok(super::mechanism_name(
                association.authentication.mechanism(),
            )),
            7 => Err(DataAccessResult::ReadWriteDenied),
            8 => Ok(Data::Enum(session.status as u8)),
            _ => return None,
        })
    }

    fn on_set<O: CosemObjects + ?Sized>(
        &mut self,
        request: SetRequest,
        ctx: &RequestContext,
        objects: &mut O,
    ) -> Apdu {
        let normal =
            |invoke_id, result| Apdu::SetResponse(SetResponse::Normal { invoke_id, result });
        match request {
            SetRequest::Normal {
                invoke_id,
                attribute,
                access,
                value,
            } => {
                if let Some(session) = self.session.as_mut() {
                    session.long_set = None;
                }
                let result = objects.set(ctx, &attribute, access.as_ref(), value);
                normal(invoke_id, result.err().unwrap_or(DataAccessResult::Success))
            }
            SetRequest::WithFirstDataBlock {
                invoke_id,
                attribute,
                access,
                block,
            } => {
                let Some(session) = self.session.as_mut() else {
                    return normal(invoke_id, DataAccessResult::OtherReason);
                };
                session.long_set = None;
                if block.block_number != 1 || block.raw_data.len() > MAX_SET_VALUE_LEN {
                    return normal(invoke_id, DataAccessResult::DataBlockNumberInvalid);
                }
                if block.last_block {
                    return finish_set(
                        ctx,
                        objects,
                        invoke_id,
                        &attribute,
                        access,
                        block.raw_data,
                        1,
                    );
                }
                session.long_set = Some(LongSet {
                    invoke_id,
                    attribute,
                    access,
                    buffer: block.raw_data,
                    block_number: 1,
                });
                Apdu::SetResponse(SetResponse::DataBlock {
                    invoke_id,
                    block_number: 1,
                })
            }
            SetRequest::WithDataBlock { invoke_id, block } => {
                let Some(session) = self.session.as_mut() else {
                    return normal(invoke_id, DataAccessResult::OtherReason);
                };
                let Some(long) = session.long_set.as_mut() else {
                    return Apdu::SetResponse(SetResponse::LastDataBlock {
                        invoke_id,
                        result: DataAccessResult::NoLongSetInProgress,
                        block_number: block.block_number,
                    });
                };
                let too_long =
                    long.buffer.len().saturating_add(block.raw_data.len()) > MAX_SET_VALUE_LEN;
                if block.block_number != long.block_number.saturating_add(1) || too_long {
                    session.long_set = None;
                    let result = if too_long {
                        DataAccessResult::LongSetAborted
                    } else {
                        DataAccessResult::DataBlockNumberInvalid
                    };
                    return Apdu::SetResponse(SetResponse::LastDataBlock {
                        invoke_id,
                        result,
                        block_number: block.block_number,
                    });
                }
                long.buffer.extend_from_slice(&block.raw_data);
                long.block_number = block.block_number;
                if !block.last_block {
                    return Apdu::SetResponse(SetResponse::DataBlock {
                        invoke_id,
                        block_number: block.block_number,
                    });
                }
                let Some(long) = session.long_set.take() else {
                    return normal(invoke_id, DataAccessResult::OtherReason);
                };
                finish_set(
                    ctx,
                    objects,
                    long.invoke_id,
                    &long.attribute,
                    long.access,
                    long.buffer,
                    block.block_number,
                )
            }
        }
    }
}

/// A GET answer whose encoding exceeds [`MAX_GET_RESPONSE_LEN`], cut down to fit: a normal GET
/// becomes `other-reason`; in a GET-with-list, every item that would take the answer past the
/// limit (in order) becomes `other-reason`, the others keep their value.
fn cap_get_response(response: GetResponse) -> GetResponse {
    let too_long = GetDataResult::Error(DataAccessResult::OtherReason);
    match response {
        GetResponse::Normal { invoke_id, .. } => GetResponse::Normal {
            invoke_id,
            result: too_long,
        },
        GetResponse::WithList { invoke_id, results } => {
            // Tag, choice, invoke id and the item count (at most 5 bytes).
            let mut total = 3 + 5;
            let mut scratch = Vec::new();
            let results = results
                .into_iter()
                .map(|result| {
                    scratch.clear();
                    result.write(&mut scratch);
                    if total + scratch.len() <= MAX_GET_RESPONSE_LEN {
                        total += scratch.len();
                        result
                    } else {
                        total += 2;
                        too_long.clone()
                    }
                })
                .collect();
            GetResponse::WithList { invoke_id, results }
        }
        other @ GetResponse::WithDataBlock { .. } => other,
    }
}

/// Decodes a SET value received in blocks and hands it to the object model.
fn finish_set<O: CosemObjects + ?Sized>(
    ctx: &RequestContext,
    objects: &mut O,
    invoke_id: InvokeIdAndPriority,
    attribute: &AttributeDescriptor,
    access: Option<SelectiveAccess>,
    raw: Vec<u8>,
    block_number: u32,
) -> Apdu {
    let result = match Data::from_bytes(&raw) {
        Ok(value) => objects
            .set(ctx, attribute, access.as_ref(), value)
            .err()
            .unwrap_or(DataAccessResult::Success),
        Err(_) => DataAccessResult::TypeUnmatched,
    };
    Apdu::SetResponse(SetResponse::LastDataBlock {
        invoke_id,
        result,
        block_number,
    })
}

/// Why an AARQ was rejected.
#[derive(Debug)]
struct Rejection {
    diagnostic: SourceDiagnostic,
    service_error: Option<ConfirmedServiceError>,
    reason: &'static str,
}

impl Rejection {
    fn user(diagnostic: SourceDiagnostic, reason: &'static str) -> Self {
        Rejection {
            diagnostic,
            service_error: None,
            reason,
        }
    }

    /// An xDLMS initiate error (ServiceError initiate = 6): 0 other, 1 dlms-version-too-low,
    /// 2 pdu-size-too-short, 3 incompatible-conformance.
    fn initiate(value: u8, reason: &'static str) -> Self {
        Rejection {
            diagnostic: SourceDiagnostic::ServiceUser(1),
            service_error: Some(ConfirmedServiceError {
                service: 1,
                error_class: 6,
                error_value: value,
            }),
            reason,
        }
    }
}

fn exception(state_error: u8, service_error: u8, invocation_counter: Option<u32>) -> Vec<u8> {
    Apdu::ExceptionResponse(ExceptionResponse {
        state_error,
        service_error,
        invocation_counter,
    })
    .encode()
}

fn refuse(
    state_error: u8,
    service_error: u8,
    invocation_counter: Option<u32>,
    reason: &'static str,
) -> ServerOutput {
    ServerOutput {
        response: Some(exception(state_error, service_error, invocation_counter)),
        event: Some(ServerEvent::Refused { reason }),
    }
}

/// How a push DataNotification is protected: general-glo-ciphering with the meter's system
/// title and the push association's keys, taking the meter's next invocation counter.
#[derive(Debug)]
pub struct PushProtection<'a> {
    pub system_title: SystemTitle,
    pub cipher: &'a Suite0Cipher,
    pub policy: SecurityPolicy,
    pub invocation_counter: &'a mut InvocationCounter,
}

/// Builds a push DataNotification APDU: plain, or general-glo-ciphered when `protection` is
/// given (IS 15959 push association 64: `Suite0Cipher::new(&keys)` of the meter's global keys,
/// `SecurityPolicy::AuthenticatedEncrypted`, the meter's `MeterSecurityState::invocation_counter`).
pub fn build_push_notification(
    notification: &DataNotification,
    protection: Option<PushProtection<'_>>,
) -> Result<Vec<u8>, SecurityError> {
    let plain = Apdu::DataNotification(notification.clone()).encode();
    match protection {
        None => Ok(plain),
        Some(p) => protect(
            &plain,
            Envelope::GeneralGlo,
            SecurityControl::new(p.policy),
            p.cipher,
            &p.system_title,
            p.invocation_counter,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::DataBlockSa;
    use crate::association::client::{Client, ClientConfig, ClientEvent};
    use chrono::TimeZone;

    /// An object model that knows nothing: every request is "object undefined".
    struct Empty;

    impl CosemObjects for Empty {
        fn get(
            &mut self,
            _: &RequestContext,
            _: &AttributeDescriptor,
            _: Option<&SelectiveAccess>,
        ) -> Result<Data, DataAccessResult> {
            Err(DataAccessResult::ObjectUndefined)
        }

        fn set(
            &mut self,
            _: &RequestContext,
            _: &AttributeDescriptor,
            _: Option<&SelectiveAccess>,
            _: Data,
        ) -> Result<(), DataAccessResult> {
            Err(DataAccessResult::ObjectUndefined)
        }

        fn action(
            &mut self,
            _: &RequestContext,
            _: &MethodDescriptor,
            _: Option<Data>,
        ) -> Result<Option<Data>, ActionResult> {
            Err(ActionResult::ObjectUndefined)
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    /// A server with a public association (16) and a plaintext HLS mechanism 2 association (48).
    fn server() -> Server {
        let secret = HlsSecret::new([7; 16]);
        let mut hls = AssociationConfig::hls(
            48,
            Authentication::Hls { secret },
            GlobalKeys {
                encryption: [1; 16],
                authentication: [2; 16],
            },
        );
        hls.security = SecurityPolicy::None;
        hls.keys = None;
        let mut config = ServerConfig::is15959(
            [9; 8],
            GlobalKeys {
                encryption: [1; 16],
                authentication: [2; 16],
            },
            b"pw",
            [
                HlsSecret::new([3; 16]),
                HlsSecret::new([4; 16]),
                HlsSecret::new([5; 16]),
            ],
        );
        config.associations.retain(|a| a.client_sap != 48);
        config.associations.push(hls);
        Server::new(config, MeterSecurityState::default())
    }

    fn associate(server: &mut Server, sap: u16) -> Client {
        let auth = match sap {
            48 => Authentication::Hls {
                secret: HlsSecret::new([7; 16]),
            },
            _ => Authentication::None,
        };
        let mut client = Client::new(ClientConfig::new(sap, auth, None), Default::default());
        let mut request = client.associate(b"0123456789abcdef").unwrap();
        loop {
            let out = server.on_apdu(sap, &request, now(), b"fedcba9876543210", &mut Empty);
            let out = client.on_apdu(&out.response.unwrap(), now()).unwrap();
            match (out.send, out.event) {
                (_, Some(ClientEvent::Associated(_))) => return client,
                (Some(next), None) => request = next,
                other => panic!("{other:?}"),
            }
        }
    }

    fn ask(server: &mut Server, sap: u16, request: Apdu) -> Apdu {
        let out = server.on_apdu(sap, &request.encode(), now(), &[], &mut Empty);
        Apdu::decode(&out.response.expect("an answer")).expect("a decodable answer")
    }

    #[test]
    fn garbage_is_answered_with_a_refusal_and_never_panics() {
        let inputs: [&[u8]; 8] = [
            &[],
            &[0x60],
            &[0x60, 0x80, 0xff],
            &[0x62, 0x00, 0x01],
            &[0xC0],
            &[0xC0, 0x01],
            &[0xC8, 0x05, 0x30, 0, 0, 0, 1],
            &[0xFF; 40],
        ];
        for sap in [16, 48, 99] {
            let mut server = server();
            for input in inputs {
                let out = server.on_apdu(sap, input, now(), b"01234567", &mut Empty);
                let response = Apdu::decode(&out.response.expect("a response")).unwrap();
                assert!(
                    matches!(
                        response,
                        Apdu::ExceptionResponse(_)
                            | Apdu::Aare(Aare {
                                result: AssociationResult::RejectedPermanent,
                                ..
                            })
                    ),
                    "{input:02x?} → {response:?}"
                );
                assert_eq!(server.status(), AssociationStatus::NonAssociated);
            }
        }
    }

    #[test]
    fn block_requests_without_a_transfer_in_progress_are_answered_with_the_right_error() {
        let mut server = server();
        associate(&mut server, 16);
        let next = GetRequest::Next {
            invoke_id: 0xC1,
            block_number: 1,
        };
        match ask(&mut server, 16, Apdu::GetRequest(next)) {
            Apdu::GetResponse(GetResponse::WithDataBlock { block, .. }) => {
                assert_eq!(block.result, Err(DataAccessResult::NoLongGetInProgress));
            }
            other => panic!("{other:?}"),
        }
        let block = DataBlockSa {
            last_block: true,
            block_number: 2,
            raw_data: vec![0x11, 1],
        };
        let set = SetRequest::WithDataBlock {
            invoke_id: 0xC1,
            block,
        };
        match ask(&mut server, 16, Apdu::SetRequest(set)) {
            Apdu::SetResponse(SetResponse::LastDataBlock { result, .. }) => {
                assert_eq!(result, DataAccessResult::NoLongSetInProgress);
            }
            other => panic!("{other:?}"),
        }
        // A first block numbered other than 1 is refused; so is a gap in the numbering.
        let attribute = AttributeDescriptor {
            class_id: 1,
            instance: ObisCode::new(0, 0, 96, 1, 0, 255),
            attribute_id: 2,
        };
        let first = |block_number| {
            Apdu::SetRequest(SetRequest::WithFirstDataBlock {
                invoke_id: 0xC2,
                attribute,
                access: None,
                block: DataBlockSa {
                    last_block: false,
                    block_number,
                    raw_data: vec![0x09, 4],
                },
            })
        };
        assert!(matches!(
            ask(&mut server, 16, first(3)),
            Apdu::SetResponse(SetResponse::Normal {
                result: DataAccessResult::DataBlockNumberInvalid,
                ..
            })
        ));
        assert!(matches!(
            ask(&mut server, 16, first(1)),
            Apdu::SetResponse(SetResponse::DataBlock {
                block_number: 1,
                ..
            })
        ));
        let gap = SetRequest::WithDataBlock {
            invoke_id: 0xC2,
            block: DataBlockSa {
                last_block: true,
                block_number: 3,
                raw_data: vec![1, 2, 3, 4],
            },
        };
        assert!(matches!(
            ask(&mut server, 16, Apdu::SetRequest(gap)),
            Apdu::SetResponse(SetResponse::LastDataBlock {
                result: DataAccessResult::DataBlockNumberInvalid,
                ..
            })
        ));
    }

    #[test]
    fn a_long_get_refuses_a_wrong_block_number() {
        let mut server = server();
        associate(&mut server, 16);
        server.session.as_mut().unwrap().long_get = Some(LongGet {
            invoke_id: 0xC1,
            encoded: vec![0x09, 0x03, 1, 2, 3],
            sent: 2,
            block_number: 1,
            block_len: 2,
        });
        let next = GetRequest::Next {
            invoke_id: 0xC1,
            block_number: 5,
        };
        match ask(&mut server, 16, Apdu::GetRequest(next)) {
            Apdu::GetResponse(GetResponse::WithDataBlock { block, .. }) => {
                assert_eq!(block.result, Err(DataAccessResult::DataBlockNumberInvalid));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            server.session.as_ref().unwrap().long_get.is_none(),
            "transfer abandoned"
        );
    }

    #[test]
    fn hls_pass_3_is_accepted_once_and_requests_wait_for_it() {
        let mut server = server();
        let secret = HlsSecret::new([7; 16]);
        let mut client = Client::new(
            ClientConfig::new(48, Authentication::Hls { secret }, None),
            Default::default(),
        );
        let aarq = client.associate(b"0123456789abcdef").unwrap();
        let aare = server.on_apdu(48, &aarq, now(), b"fedcba9876543210", &mut Empty);
        assert_eq!(
            aare.event,
            Some(ServerEvent::AuthenticationPending { client_sap: 48 })
        );
        assert_eq!(server.status(), AssociationStatus::AssociationPending);
        // GET before pass 3: refused.
        let get = GetRequest::Normal {
            invoke_id: 0xC1,
            attribute: AttributeDescriptor {
                class_id: 8,
                instance: ObisCode::new(0, 0, 1, 0, 0, 255),
                attribute_id: 2,
            },
            access: None,
        };
        assert!(matches!(
            ask(&mut server, 48, Apdu::GetRequest(get)),
            Apdu::ExceptionResponse(_)
        ));
        let pass3 = client
            .on_apdu(&aare.response.unwrap(), now())
            .unwrap()
            .send
            .unwrap();
        let pass4 = server.on_apdu(48, &pass3, now(), &[], &mut Empty);
        assert!(matches!(
            pass4.event,
            Some(ServerEvent::Associated { client_sap: 48, .. })
        ));
        // A second pass 3 on the open association is denied (no oracle for the secret).
        let Ok(Apdu::ActionRequest(again)) = Apdu::decode(&pass3) else {
            panic!()
        };
        assert!(matches!(
            ask(&mut server, 48, Apdu::ActionRequest(again)),
            Apdu::ActionResponse(ActionResponse::Normal {
                result: ActionResult::ReadWriteDenied,
                ..
            })
        ));
        assert_eq!(server.status(), AssociationStatus::Associated);
    }

    /// An object model with one small attribute (class 1 attribute 2) and one whose value
    /// encodes past [`MAX_GET_RESPONSE_LEN`] (class 1 attribute 3).
    struct Huge;

    impl CosemObjects for Huge {
        fn get(
            &mut self,
            _: &RequestContext,
            a: &AttributeDescriptor,
            _: Option<&SelectiveAccess>,
        ) -> Result<Data, DataAccessResult> {
            match a.attribute_id {
                2 => Ok(Data::Unsigned(7)),
                _ => Ok(Data::OctetString(vec![0x55; MAX_GET_RESPONSE_LEN])),
            }
        }

        fn set(
            &mut self,
            c: &RequestContext,
            a: &AttributeDescriptor,
            s: Option<&SelectiveAccess>,
            v: Data,
        ) -> Result<(), DataAccessResult> {
            Empty.set(c, a, s, v)
        }

        fn action(
            &mut self,
            c: &RequestContext,
            m: &MethodDescriptor,
            p: Option<Data>,
        ) -> Result<Option<Data>, ActionResult> {
            Empty.action(c, m, p)
        }
    }

    #[test]
    fn a_get_answer_past_the_size_limit_is_other_reason_and_never_buffered() {
        let mut server = server();
        associate(&mut server, 16);
        let attribute = |attribute_id| AttributeDescriptor {
            class_id: 1,
            instance: ObisCode::new(0, 0, 96, 1, 0, 255),
            attribute_id,
        };
        let mut get = |request| {
            let request = Apdu::GetRequest(request).encode();
            let out = server.on_apdu(16, &request, now(), &[], &mut Huge);
            Apdu::decode(&out.response.unwrap()).unwrap()
        };
        let normal = get(GetRequest::Normal {
            invoke_id: 0xC1,
            attribute: attribute(3),
            access: None,
        });
        assert_eq!(
            normal,
            Apdu::GetResponse(GetResponse::Normal {
                invoke_id: 0xC1,
                result: GetDataResult::Error(DataAccessResult::OtherReason),
            })
        );
        // In a list, the items before the limit keep their values.
        let list = get(GetRequest::WithList {
            invoke_id: 0xC2,
            items: vec![
                (attribute(2), None),
                (attribute(3), None),
                (attribute(2), None),
            ],
        });
        assert_eq!(
            list,
            Apdu::GetResponse(GetResponse::WithList {
                invoke_id: 0xC2,
                results: vec![
                    GetDataResult::Data(Data::Unsigned(7)),
                    GetDataResult::Error(DataAccessResult::OtherReason),
                    GetDataResult::Data(Data::Unsigned(7)),
                ],
            })
        );
        assert!(server.session.as_ref().unwrap().long_get.is_none());
    }

    #[test]
    fn an_aarq_with_an_old_dlms_version_gets_an_initiate_error() {
        let mut server = server();
        let initiate = Apdu::InitiateRequest(InitiateRequest {
            dedicated_key: None,
            response_allowed: true,
            proposed_quality_of_service: None,
            proposed_dlms_version: 5,
            proposed_conformance: Conformance(Conformance::GET),
            client_max_receive_pdu_size: 512,
        });
        let aarq = Apdu::Aarq(Aarq {
            application_context: ApplicationContext::LogicalNameNoCiphering,
            calling_ap_title: None,
            mechanism: None,
            calling_authentication_value: None,
            user_information: Some(initiate.encode()),
        });
        let Apdu::Aare(aare) = ask(&mut server, 16, aarq) else {
            panic!()
        };
        assert_eq!(aare.result, AssociationResult::RejectedPermanent);
        let info = Apdu::decode(&aare.user_information.unwrap()).unwrap();
        assert_eq!(
            info,
            Apdu::ConfirmedServiceError(ConfirmedServiceError {
                service: 1,
                error_class: 6,
                error_value: 1
            })
        );
    }
}

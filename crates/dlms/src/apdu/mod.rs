//! xDLMS APDUs, logical-name referencing (IEC 62056-5-3 / Green Book).
//!
//! The types here are the contract between the codec (the [`acse`], [`xdlms`] and [`selective`]
//! submodules), the association state machines and the applications. ACSE APDUs
//! (AARQ/AARE/RLRQ/RLRE) are BER-encoded; xDLMS APDUs are A-XDR. Ciphered APDUs
//! (glo-/ded-/general-glo-ciphering) are handled by [`crate::security`]; their plaintext is one of
//! these. Entry points: [`Apdu::encode`] and [`Apdu::decode`]; each inner type also has
//! `encode`/`decode` (whole buffer) and `write`/`read` (into a buffer / from a
//! [`crate::codec::Reader`]).

pub mod acse;
pub mod selective;
pub mod tag;
pub mod xdlms;

pub use selective::{CaptureColumn, EntryDescriptor, RangeDescriptor};

use crate::data::Data;
use crate::obis::ObisCode;

/// Any APDU in plaintext form.
#[derive(Debug, Clone, PartialEq)]
pub enum Apdu {
    Aarq(Aarq),
    Aare(Aare),
    Rlrq(Rlrq),
    Rlre(Rlre),
    InitiateRequest(InitiateRequest),
    InitiateResponse(InitiateResponse),
    GetRequest(GetRequest),
    GetResponse(GetResponse),
    SetRequest(SetRequest),
    SetResponse(SetResponse),
    ActionRequest(ActionRequest),
    ActionResponse(ActionResponse),
    DataNotification(DataNotification),
    EventNotification(EventNotification),
    ExceptionResponse(ExceptionResponse),
    ConfirmedServiceError(ConfirmedServiceError),
}

/// Application context name (the last arc of 2.16.756.5.8.1.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationContext {
    LogicalNameNoCiphering = 1,
    ShortNameNoCiphering = 2,
    LogicalNameWithCiphering = 3,
    ShortNameWithCiphering = 4,
}

/// Authentication mechanism name (the last arc of 2.16.756.5.8.2.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    None = 0,
    /// Low level security: a password.
    Lls = 1,
    /// HLS, manufacturer-specific; IS 15959 meters use AES-128 of the challenge with the HLS key.
    Hls = 2,
    HlsMd5 = 3,
    HlsSha1 = 4,
    /// HLS with GMAC (security suite 0).
    HlsGmac = 5,
    HlsSha256 = 6,
    HlsEcdsa = 7,
}

/// A-ASSOCIATE request.
#[derive(Debug, Clone, PartialEq)]
pub struct Aarq {
    pub application_context: ApplicationContext,
    /// Client system title (8 bytes) when ciphering is used.
    pub calling_ap_title: Option<Vec<u8>>,
    /// Mechanism name; present together with the authentication value (LLS/HLS).
    pub mechanism: Option<Mechanism>,
    /// LLS password, or the HLS client-to-server challenge (CtoS).
    pub calling_authentication_value: Option<Vec<u8>>,
    /// The encoded xDLMS InitiateRequest, plain (tag 0x01) or glo-ciphered (tag 0x21).
    pub user_information: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociationResult {
    Accepted = 0,
    RejectedPermanent = 1,
    RejectedTransient = 2,
}

/// result-source-diagnostic of an AARE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceDiagnostic {
    /// acse-service-user: 0 null, 1 no reason given, 2 application context name not supported,
    /// 11 authentication mechanism name not recognised, 12 authentication mechanism name required,
    /// 13 authentication failure, 14 authentication required.
    ServiceUser(u8),
    /// acse-service-provider: 0 null, 1 no reason given, 2 no common acse version.
    ServiceProvider(u8),
}

impl SourceDiagnostic {
    pub const NULL: SourceDiagnostic = SourceDiagnostic::ServiceUser(0);
    pub const APPLICATION_CONTEXT_NOT_SUPPORTED: SourceDiagnostic =
        SourceDiagnostic::ServiceUser(2);
    pub const MECHANISM_NOT_RECOGNISED: SourceDiagnostic = SourceDiagnostic::ServiceUser(11);
    pub const AUTHENTICATION_FAILURE: SourceDiagnostic = SourceDiagnostic::ServiceUser(13);
    pub const AUTHENTICATION_REQUIRED: SourceDiagnostic = SourceDiagnostic::ServiceUser(14);
}

/// A-ASSOCIATE response.
#[derive(Debug, Clone, PartialEq)]
pub struct Aare {
    pub application_context: ApplicationContext,
    pub result: AssociationResult,
    pub diagnostic: SourceDiagnostic,
    /// Server system title (8 bytes) when ciphering is used.
    pub responding_ap_title: Option<Vec<u8>>,
    pub mechanism: Option<Mechanism>,
    /// HLS server-to-client challenge (StoC).
    pub responding_authentication_value: Option<Vec<u8>>,
    /// The encoded InitiateResponse (0x08), glo-InitiateResponse (0x28), or a
    /// ConfirmedServiceError (0x0E) when the xDLMS part is refused.
    pub user_information: Option<Vec<u8>>,
}

/// A-RELEASE request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rlrq {
    /// 0 normal, 1 urgent, 30 user defined.
    pub reason: Option<u8>,
    pub user_information: Option<Vec<u8>>,
}

/// A-RELEASE response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rlre {
    /// 0 normal, 1 not finished, 30 user defined.
    pub reason: Option<u8>,
    pub user_information: Option<Vec<u8>>,
}

/// The 24-bit xDLMS conformance block (bit names as in the Green Book; bit 0 is the MSB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Conformance(pub u32);

impl Conformance {
    pub const GENERAL_PROTECTION: u32 = 1 << 22;
    pub const GENERAL_BLOCK_TRANSFER: u32 = 1 << 21;
    pub const READ: u32 = 1 << 20;
    pub const WRITE: u32 = 1 << 19;
    pub const UNCONFIRMED_WRITE: u32 = 1 << 18;
    pub const DELTA_VALUE_ENCODING: u32 = 1 << 17;
    pub const ATTRIBUTE0_SUPPORTED_WITH_SET: u32 = 1 << 15;
    pub const PRIORITY_MGMT_SUPPORTED: u32 = 1 << 14;
    pub const ATTRIBUTE0_SUPPORTED_WITH_GET: u32 = 1 << 13;
    pub const BLOCK_TRANSFER_WITH_GET_OR_READ: u32 = 1 << 12;
    pub const BLOCK_TRANSFER_WITH_SET_OR_WRITE: u32 = 1 << 11;
    pub const BLOCK_TRANSFER_WITH_ACTION: u32 = 1 << 10;
    pub const MULTIPLE_REFERENCES: u32 = 1 << 9;
    pub const INFORMATION_REPORT: u32 = 1 << 8;
    pub const DATA_NOTIFICATION: u32 = 1 << 7;
    pub const ACCESS: u32 = 1 << 6;
    pub const PARAMETERIZED_ACCESS: u32 = 1 << 5;
    pub const GET: u32 = 1 << 4;
    pub const SET: u32 = 1 << 3;
    pub const SELECTIVE_ACCESS: u32 = 1 << 2;
    pub const EVENT_NOTIFICATION: u32 = 1 << 1;
    pub const ACTION: u32 = 1;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

/// xDLMS InitiateRequest (inside the AARQ user-information).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateRequest {
    pub dedicated_key: Option<Vec<u8>>,
    pub response_allowed: bool,
    pub proposed_quality_of_service: Option<i8>,
    /// Always 6.
    pub proposed_dlms_version: u8,
    pub proposed_conformance: Conformance,
    pub client_max_receive_pdu_size: u16,
}

/// xDLMS InitiateResponse (inside the AARE user-information).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateResponse {
    pub negotiated_quality_of_service: Option<i8>,
    pub negotiated_dlms_version: u8,
    pub negotiated_conformance: Conformance,
    pub server_max_receive_pdu_size: u16,
    /// 0x0007 for logical-name referencing.
    pub vaa_name: u16,
}

/// Invoke-id-and-priority: invoke id in the low 4 bits, 0x40 service class confirmed,
/// 0x80 high priority.
pub type InvokeIdAndPriority = u8;

/// Class id, logical name and attribute of one COSEM attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttributeDescriptor {
    pub class_id: u16,
    pub instance: ObisCode,
    pub attribute_id: i8,
}

/// Class id, logical name and method of one COSEM method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodDescriptor {
    pub class_id: u16,
    pub instance: ObisCode,
    pub method_id: i8,
}

/// Selective access: selector 1 = range descriptor, 2 = entry descriptor (profile generic).
#[derive(Debug, Clone, PartialEq)]
pub struct SelectiveAccess {
    pub selector: u8,
    pub parameters: Data,
}

/// Data-Access-Result (Green Book enumeration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAccessResult {
    Success = 0,
    HardwareFault = 1,
    TemporaryFailure = 2,
    ReadWriteDenied = 3,
    ObjectUndefined = 4,
    ObjectClassInconsistent = 9,
    ObjectUnavailable = 11,
    TypeUnmatched = 12,
    ScopeOfAccessViolated = 13,
    DataBlockUnavailable = 14,
    LongGetAborted = 15,
    NoLongGetInProgress = 16,
    LongSetAborted = 17,
    NoLongSetInProgress = 18,
    DataBlockNumberInvalid = 19,
    OtherReason = 250,
}

/// Action-Result (Green Book enumeration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionResult {
    Success = 0,
    HardwareFault = 1,
    TemporaryFailure = 2,
    ReadWriteDenied = 3,
    ObjectUndefined = 4,
    ObjectClassInconsistent = 9,
    ObjectUnavailable = 11,
    TypeUnmatched = 12,
    ScopeOfAccessViolated = 13,
    DataBlockUnavailable = 14,
    LongActionAborted = 15,
    NoLongActionInProgress = 16,
    OtherReason = 250,
}

/// Get-Data-Result: the value, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum GetDataResult {
    Data(Data),
    Error(DataAccessResult),
}

#[derive(Debug, Clone, PartialEq)]
pub enum GetRequest {
    Normal {
        invoke_id: InvokeIdAndPriority,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
    },
    /// Ask for the next block of a long response.
    Next {
        invoke_id: InvokeIdAndPriority,
        block_number: u32,
    },
    WithList {
        invoke_id: InvokeIdAndPriority,
        items: Vec<(AttributeDescriptor, Option<SelectiveAccess>)>,
    },
}

/// One block of a long GET response: raw bytes of the A-XDR encoded result, split anywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct DataBlockG {
    pub last_block: bool,
    pub block_number: u32,
    pub result: Result<Vec<u8>, DataAccessResult>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GetResponse {
    Normal {
        invoke_id: InvokeIdAndPriority,
        result: GetDataResult,
    },
    WithDataBlock {
        invoke_id: InvokeIdAndPriority,
        block: DataBlockG,
    },
    WithList {
        invoke_id: InvokeIdAndPriority,
        results: Vec<GetDataResult>,
    },
}

/// One block of a long SET request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlockSa {
    pub last_block: bool,
    pub block_number: u32,
    pub raw_data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetRequest {
    Normal {
        invoke_id: InvokeIdAndPriority,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        value: Data,
    },
    WithFirstDataBlock {
        invoke_id: InvokeIdAndPriority,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        block: DataBlockSa,
    },
    WithDataBlock {
        invoke_id: InvokeIdAndPriority,
        block: DataBlockSa,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetResponse {
    Normal {
        invoke_id: InvokeIdAndPriority,
        result: DataAccessResult,
    },
    /// Block received, send the next.
    DataBlock {
        invoke_id: InvokeIdAndPriority,
        block_number: u32,
    },
    LastDataBlock {
        invoke_id: InvokeIdAndPriority,
        result: DataAccessResult,
        block_number: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActionRequest {
    Normal {
        invoke_id: InvokeIdAndPriority,
        method: MethodDescriptor,
        parameters: Option<Data>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActionResponse {
    Normal {
        invoke_id: InvokeIdAndPriority,
        result: ActionResult,
        return_parameters: Option<GetDataResult>,
    },
}

/// DataNotification (push): long-invoke-id-and-priority, optional date-time, notification body.
#[derive(Debug, Clone, PartialEq)]
pub struct DataNotification {
    pub long_invoke_id_and_priority: u32,
    /// The 12-byte date-time, when the sender includes it.
    pub date_time: Option<Vec<u8>>,
    pub body: Data,
}

/// EventNotificationRequest.
#[derive(Debug, Clone, PartialEq)]
pub struct EventNotification {
    pub time: Option<Vec<u8>>,
    pub attribute: AttributeDescriptor,
    pub value: Data,
}

/// ExceptionResponse: state-error (1 service not allowed, 2 service unknown) and service-error
/// (1 operation not possible, 2 service not supported, 3 other reason, 4 pdu too long,
/// 5 deciphering error, 6 invocation counter error; the last carries the expected counter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionResponse {
    pub state_error: u8,
    pub service_error: u8,
    pub invocation_counter: Option<u32>,
}

/// ConfirmedServiceError: which service failed (1 initiateError, 5 read, 6 write, …) and the
/// ServiceError CHOICE (class tag, value); e.g. initiate (6) / dlms-version-too-low (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmedServiceError {
    pub service: u8,
    pub error_class: u8,
    pub error_value: u8,
}

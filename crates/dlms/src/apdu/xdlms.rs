//! A-XDR encoding of the xDLMS services (logical-name referencing): InitiateRequest/Response,
//! GET/SET/ACTION (normal, block transfer, with-list), DataNotification, EventNotification,
//! ExceptionResponse and ConfirmedServiceError, plus the [`Apdu`] entry points that dispatch on
//! the first byte.
//!
//! Result codes a peer sends that the Green Book does not define are read as `OtherReason`
//! ([`DataAccessResult::from_code`], [`ActionResult::from_code`]): a meter's odd code is still a
//! failure of that one attribute, and should not make the whole response undecodable.

use crate::codec::{DecodeError, Reader, put_length, put_octets};
use crate::data::Data;
use crate::obis::ObisCode;

use super::tag;
use super::{
    Aare, Aarq, ActionRequest, ActionResponse, ActionResult, Apdu, AttributeDescriptor,
    ConfirmedServiceError, Conformance, DataAccessResult, DataBlockG, DataBlockSa,
    DataNotification, EventNotification, ExceptionResponse, GetDataResult, GetRequest, GetResponse,
    InitiateRequest, InitiateResponse, MethodDescriptor, Rlre, Rlrq, SelectiveAccess, SetRequest,
    SetResponse,
};

/// ExceptionResponse service-error value that carries the expected invocation counter.
pub const INVOCATION_COUNTER_ERROR: u8 = 6;

impl Apdu {
    /// The APDU's wire form: BER for the ACSE APDUs, A-XDR for the rest.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// Appends the APDU's wire form to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Apdu::Aarq(a) => a.write(out),
            Apdu::Aare(a) => a.write(out),
            Apdu::Rlrq(a) => a.write(out),
            Apdu::Rlre(a) => a.write(out),
            Apdu::InitiateRequest(a) => a.write(out),
            Apdu::InitiateResponse(a) => a.write(out),
            Apdu::GetRequest(a) => a.write(out),
            Apdu::GetResponse(a) => a.write(out),
            Apdu::SetRequest(a) => a.write(out),
            Apdu::SetResponse(a) => a.write(out),
            Apdu::ActionRequest(a) => a.write(out),
            Apdu::ActionResponse(a) => a.write(out),
            Apdu::DataNotification(a) => a.write(out),
            Apdu::EventNotification(a) => a.write(out),
            Apdu::ExceptionResponse(a) => a.write(out),
            Apdu::ConfirmedServiceError(a) => a.write(out),
        }
    }

    /// Decodes one whole plaintext APDU; bytes left over are an error.
    pub fn decode(bytes: &[u8]) -> Result<Apdu, DecodeError> {
        let mut r = Reader::new(bytes);
        let apdu = Apdu::read(&mut r)?;
        r.finish("apdu")?;
        Ok(apdu)
    }

    /// Reads one plaintext APDU from the cursor, choosing the type by its first byte.
    pub fn read(r: &mut Reader<'_>) -> Result<Apdu, DecodeError> {
        let at = r.position();
        Ok(match r.peek("apdu tag")? {
            tag::AARQ => Apdu::Aarq(Aarq::read(r)?),
            tag::AARE => Apdu::Aare(Aare::read(r)?),
            tag::RLRQ => Apdu::Rlrq(Rlrq::read(r)?),
            tag::RLRE => Apdu::Rlre(Rlre::read(r)?),
            tag::INITIATE_REQUEST => Apdu::InitiateRequest(InitiateRequest::read(r)?),
            tag::INITIATE_RESPONSE => Apdu::InitiateResponse(InitiateResponse::read(r)?),
            tag::GET_REQUEST => Apdu::GetRequest(GetRequest::read(r)?),
            tag::GET_RESPONSE => Apdu::GetResponse(GetResponse::read(r)?),
            tag::SET_REQUEST => Apdu::SetRequest(SetRequest::read(r)?),
            tag::SET_RESPONSE => Apdu::SetResponse(SetResponse::read(r)?),
            tag::ACTION_REQUEST => Apdu::ActionRequest(ActionRequest::read(r)?),
            tag::ACTION_RESPONSE => Apdu::ActionResponse(ActionResponse::read(r)?),
            tag::DATA_NOTIFICATION => Apdu::DataNotification(DataNotification::read(r)?),
            tag::EVENT_NOTIFICATION_REQUEST => Apdu::EventNotification(EventNotification::read(r)?),
            tag::EXCEPTION_RESPONSE => Apdu::ExceptionResponse(ExceptionResponse::read(r)?),
            tag::CONFIRMED_SERVICE_ERROR => {
                Apdu::ConfirmedServiceError(ConfirmedServiceError::read(r)?)
            }
            other => {
                return Err(DecodeError::UnknownTag {
                    what: "apdu",
                    tag: other,
                    at,
                });
            }
        })
    }
}

/// `encode()` / `decode()` for a type that already has `write()` / `read()`.
macro_rules! whole_buffer_codec {
    ($($ty:ident => $what:literal),* $(,)?) => {$(
        impl $ty {
            /// The encoded form, starting with the APDU tag.
            pub fn encode(&self) -> Vec<u8> {
                let mut out = Vec::new();
                self.write(&mut out);
                out
            }

            /// Decodes exactly one value, tag included; bytes left over are an error.
            pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                let mut r = Reader::new(bytes);
                let value = Self::read(&mut r)?;
                r.finish($what)?;
                Ok(value)
            }
        }
    )*};
}

pub(crate) use whole_buffer_codec;

whole_buffer_codec!(
    InitiateRequest => "initiate-request",
    InitiateResponse => "initiate-response",
    GetRequest => "get-request",
    GetResponse => "get-response",
    SetRequest => "set-request",
    SetResponse => "set-response",
    ActionRequest => "action-request",
    ActionResponse => "action-response",
    DataNotification => "data-notification",
    EventNotification => "event-notification-request",
    ExceptionResponse => "exception-response",
    ConfirmedServiceError => "confirmed-service-error",
);

// ---------------------------------------------------------------------------------------------
// Small A-XDR pieces
// ---------------------------------------------------------------------------------------------

fn read_bool(r: &mut Reader<'_>, what: &'static str) -> Result<bool, DecodeError> {
    Ok(r.u8(what)? != 0)
}

/// A-XDR OPTIONAL: `00` absent, `01` present followed by the value.
fn read_present(r: &mut Reader<'_>, what: &'static str) -> Result<bool, DecodeError> {
    let at = r.position();
    match r.u8(what)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(DecodeError::UnknownTag {
            what,
            tag: other,
            at,
        }),
    }
}

fn read_choice(r: &mut Reader<'_>, what: &'static str) -> Result<(u8, usize), DecodeError> {
    let at = r.position();
    Ok((r.u8(what)?, at))
}

fn write_optional_data(out: &mut Vec<u8>, value: Option<&Data>) {
    match value {
        None => out.push(0),
        Some(d) => {
            out.push(1);
            d.encode(out);
        }
    }
}

fn read_optional_data(r: &mut Reader<'_>, what: &'static str) -> Result<Option<Data>, DecodeError> {
    if read_present(r, what)? {
        Ok(Some(Data::decode(r)?))
    } else {
        Ok(None)
    }
}

/// The `[APPLICATION 31] IMPLICIT BIT STRING (SIZE(24))` conformance block: `5F 1F 04 00 xx xx xx`.
fn write_conformance(out: &mut Vec<u8>, c: Conformance) {
    let [_, a, b, d] = c.0.to_be_bytes();
    out.extend_from_slice(&[0x5F, 0x1F, 0x04, 0x00, a, b, d]);
}

fn read_conformance(r: &mut Reader<'_>) -> Result<Conformance, DecodeError> {
    r.expect(0x5F, "conformance tag")?;
    r.expect(0x1F, "conformance tag")?;
    let len = r.length("conformance length")?;
    if len != 4 {
        return Err(DecodeError::invalid(
            "conformance",
            format!("length {len}, expected 4"),
        ));
    }
    let unused = r.u8("conformance unused bits")?;
    if unused > 7 {
        return Err(DecodeError::invalid(
            "conformance",
            format!("{unused} unused bits"),
        ));
    }
    let [a, b, c] = r.array("conformance bits")?;
    // Bits beyond the 24 named ones cannot exist; unused bits are cleared as BER requires.
    let mask = !((1u32 << unused) - 1);
    Ok(Conformance(
        u32::from_be_bytes([0, a, b, c]) & mask & 0x00FF_FFFF,
    ))
}

// ---------------------------------------------------------------------------------------------
// Result enumerations
// ---------------------------------------------------------------------------------------------

impl DataAccessResult {
    /// The Green Book code; unknown codes become [`DataAccessResult::OtherReason`].
    pub fn from_code(code: u8) -> Self {
        use DataAccessResult::*;
        match code {
            0 => Success,
            1 => HardwareFault,
            2 => TemporaryFailure,
            3 => ReadWriteDenied,
            4 => ObjectUndefined,
            9 => ObjectClassInconsistent,
            11 => ObjectUnavailable,
            12 => TypeUnmatched,
            13 => ScopeOfAccessViolated,
            14 => DataBlockUnavailable,
            15 => LongGetAborted,
            16 => NoLongGetInProgress,
            17 => LongSetAborted,
            18 => NoLongSetInProgress,
            19 => DataBlockNumberInvalid,
            _ => OtherReason,
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

impl ActionResult {
    /// The Green Book code; unknown codes become [`ActionResult::OtherReason`].
    pub fn from_code(code: u8) -> Self {
        use ActionResult::*;
        match code {
            0 => Success,
            1 => HardwareFault,
            2 => TemporaryFailure,
            3 => ReadWriteDenied,
            4 => ObjectUndefined,
            9 => ObjectClassInconsistent,
            11 => ObjectUnavailable,
            12 => TypeUnmatched,
            13 => ScopeOfAccessViolated,
            14 => DataBlockUnavailable,
            15 => LongActionAborted,
            16 => NoLongActionInProgress,
            _ => OtherReason,
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

fn read_access_result(r: &mut Reader<'_>) -> Result<DataAccessResult, DecodeError> {
    Ok(DataAccessResult::from_code(r.u8("data-access-result")?))
}

// ---------------------------------------------------------------------------------------------
// Initiate
// ---------------------------------------------------------------------------------------------

impl InitiateRequest {
    /// A request as a client usually sends it: no dedicated key, response allowed, no QoS,
    /// DLMS version 6.
    pub fn new(conformance: Conformance, client_max_receive_pdu_size: u16) -> Self {
        InitiateRequest {
            dedicated_key: None,
            response_allowed: true,
            proposed_quality_of_service: None,
            proposed_dlms_version: 6,
            proposed_conformance: conformance,
            client_max_receive_pdu_size,
        }
    }

    /// Appends `01 …`. `response-allowed` TRUE is written as its DEFAULT (`00`).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::INITIATE_REQUEST);
        match &self.dedicated_key {
            None => out.push(0),
            Some(key) => {
                out.push(1);
                put_octets(out, key);
            }
        }
        if self.response_allowed {
            out.push(0);
        } else {
            out.extend_from_slice(&[1, 0]);
        }
        match self.proposed_quality_of_service {
            None => out.push(0),
            Some(q) => out.extend_from_slice(&[1, q as u8]),
        }
        out.push(self.proposed_dlms_version);
        write_conformance(out, self.proposed_conformance);
        out.extend_from_slice(&self.client_max_receive_pdu_size.to_be_bytes());
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::INITIATE_REQUEST, "initiate-request tag")?;
        let dedicated_key = if read_present(r, "dedicated-key")? {
            Some(r.octets("dedicated-key")?.to_vec())
        } else {
            None
        };
        let response_allowed = if read_present(r, "response-allowed")? {
            read_bool(r, "response-allowed")?
        } else {
            true
        };
        let proposed_quality_of_service = if read_present(r, "proposed-quality-of-service")? {
            Some(r.u8("proposed-quality-of-service")? as i8)
        } else {
            None
        };
        Ok(InitiateRequest {
            dedicated_key,
            response_allowed,
            proposed_quality_of_service,
            proposed_dlms_version: r.u8("proposed-dlms-version")?,
            proposed_conformance: read_conformance(r)?,
            client_max_receive_pdu_size: r.u16("client-max-receive-pdu-size")?,
        })
    }
}

impl InitiateResponse {
    /// Appends `08 …`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::INITIATE_RESPONSE);
        match self.negotiated_quality_of_service {
            None => out.push(0),
            Some(q) => out.extend_from_slice(&[1, q as u8]),
        }
        out.push(self.negotiated_dlms_version);
        write_conformance(out, self.negotiated_conformance);
        out.extend_from_slice(&self.server_max_receive_pdu_size.to_be_bytes());
        out.extend_from_slice(&self.vaa_name.to_be_bytes());
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::INITIATE_RESPONSE, "initiate-response tag")?;
        let negotiated_quality_of_service = if read_present(r, "negotiated-quality-of-service")? {
            Some(r.u8("negotiated-quality-of-service")? as i8)
        } else {
            None
        };
        Ok(InitiateResponse {
            negotiated_quality_of_service,
            negotiated_dlms_version: r.u8("negotiated-dlms-version")?,
            negotiated_conformance: read_conformance(r)?,
            server_max_receive_pdu_size: r.u16("server-max-receive-pdu-size")?,
            vaa_name: r.u16("vaa-name")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Descriptors
// ---------------------------------------------------------------------------------------------

impl AttributeDescriptor {
    pub fn new(class_id: u16, instance: ObisCode, attribute_id: i8) -> Self {
        AttributeDescriptor {
            class_id,
            instance,
            attribute_id,
        }
    }

    /// Appends class-id (u16), instance-id (6 bytes), attribute-id (i8).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.class_id.to_be_bytes());
        out.extend_from_slice(&self.instance.0);
        out.push(self.attribute_id as u8);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AttributeDescriptor {
            class_id: r.u16("class-id")?,
            instance: ObisCode(r.array("instance-id")?),
            attribute_id: r.u8("attribute-id")? as i8,
        })
    }
}

impl MethodDescriptor {
    pub fn new(class_id: u16, instance: ObisCode, method_id: i8) -> Self {
        MethodDescriptor {
            class_id,
            instance,
            method_id,
        }
    }

    /// Appends class-id (u16), instance-id (6 bytes), method-id (i8).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.class_id.to_be_bytes());
        out.extend_from_slice(&self.instance.0);
        out.push(self.method_id as u8);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MethodDescriptor {
            class_id: r.u16("class-id")?,
            instance: ObisCode(r.array("instance-id")?),
            method_id: r.u8("method-id")? as i8,
        })
    }
}

impl SelectiveAccess {
    /// Appends the OPTIONAL access-selection: `00`, or `01` selector parameters.
    pub fn write_optional(access: Option<&SelectiveAccess>, out: &mut Vec<u8>) {
        match access {
            None => out.push(0),
            Some(a) => {
                out.push(1);
                out.push(a.selector);
                a.parameters.encode(out);
            }
        }
    }

    /// Reads the OPTIONAL access-selection.
    pub fn read_optional(r: &mut Reader<'_>) -> Result<Option<SelectiveAccess>, DecodeError> {
        if !read_present(r, "access-selection")? {
            return Ok(None);
        }
        let selector = r.u8("access-selector")?;
        let parameters = Data::decode(r)?;
        Ok(Some(SelectiveAccess {
            selector,
            parameters,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// GET
// ---------------------------------------------------------------------------------------------

impl GetDataResult {
    /// Appends the Get-Data-Result CHOICE: `00` Data, or `01` data-access-result.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            GetDataResult::Data(d) => {
                out.push(0);
                d.encode(out);
            }
            GetDataResult::Error(e) => out.extend_from_slice(&[1, e.code()]),
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match read_choice(r, "get-data-result")? {
            (0, _) => Ok(GetDataResult::Data(Data::decode(r)?)),
            (1, _) => Ok(GetDataResult::Error(read_access_result(r)?)),
            (other, at) => Err(DecodeError::UnknownTag {
                what: "get-data-result",
                tag: other,
                at,
            }),
        }
    }

    /// The value, or the access error.
    pub fn into_result(self) -> Result<Data, DataAccessResult> {
        match self {
            GetDataResult::Data(d) => Ok(d),
            GetDataResult::Error(e) => Err(e),
        }
    }
}

impl From<Result<Data, DataAccessResult>> for GetDataResult {
    fn from(r: Result<Data, DataAccessResult>) -> Self {
        match r {
            Ok(d) => GetDataResult::Data(d),
            Err(e) => GetDataResult::Error(e),
        }
    }
}

impl GetRequest {
    pub fn invoke_id(&self) -> u8 {
        match self {
            GetRequest::Normal { invoke_id, .. }
            | GetRequest::Next { invoke_id, .. }
            | GetRequest::WithList { invoke_id, .. } => *invoke_id,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::GET_REQUEST);
        match self {
            GetRequest::Normal {
                invoke_id,
                attribute,
                access,
            } => {
                out.extend_from_slice(&[tag::GET_NORMAL, *invoke_id]);
                attribute.write(out);
                SelectiveAccess::write_optional(access.as_ref(), out);
            }
            GetRequest::Next {
                invoke_id,
                block_number,
            } => {
                out.extend_from_slice(&[tag::GET_NEXT_OR_DATABLOCK, *invoke_id]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            GetRequest::WithList { invoke_id, items } => {
                out.extend_from_slice(&[tag::GET_WITH_LIST, *invoke_id]);
                put_length(out, items.len());
                for (attribute, access) in items {
                    attribute.write(out);
                    SelectiveAccess::write_optional(access.as_ref(), out);
                }
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::GET_REQUEST, "get-request tag")?;
        let (choice, at) = read_choice(r, "get-request choice")?;
        let invoke_id = r.u8("invoke-id-and-priority")?;
        Ok(match choice {
            tag::GET_NORMAL => GetRequest::Normal {
                invoke_id,
                attribute: AttributeDescriptor::read(r)?,
                access: SelectiveAccess::read_optional(r)?,
            },
            tag::GET_NEXT_OR_DATABLOCK => GetRequest::Next {
                invoke_id,
                block_number: r.u32("block-number")?,
            },
            tag::GET_WITH_LIST => {
                let count = r.length("attribute-descriptor-list length")?;
                let mut items = Vec::new();
                for _ in 0..count {
                    let attribute = AttributeDescriptor::read(r)?;
                    items.push((attribute, SelectiveAccess::read_optional(r)?));
                }
                GetRequest::WithList { invoke_id, items }
            }
            other => {
                return Err(DecodeError::UnknownTag {
                    what: "get-request choice",
                    tag: other,
                    at,
                });
            }
        })
    }
}

impl DataBlockG {
    /// Appends last-block, block-number and the raw-data / data-access-result CHOICE.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.last_block as u8);
        out.extend_from_slice(&self.block_number.to_be_bytes());
        match &self.result {
            Ok(raw) => {
                out.push(0);
                put_octets(out, raw);
            }
            Err(e) => out.extend_from_slice(&[1, e.code()]),
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let last_block = read_bool(r, "last-block")?;
        let block_number = r.u32("block-number")?;
        let result = match read_choice(r, "datablock result")? {
            (0, _) => Ok(r.octets("raw-data")?.to_vec()),
            (1, _) => Err(read_access_result(r)?),
            (other, at) => {
                return Err(DecodeError::UnknownTag {
                    what: "datablock result",
                    tag: other,
                    at,
                });
            }
        };
        Ok(DataBlockG {
            last_block,
            block_number,
            result,
        })
    }
}

impl GetResponse {
    pub fn invoke_id(&self) -> u8 {
        match self {
            GetResponse::Normal { invoke_id, .. }
            | GetResponse::WithDataBlock { invoke_id, .. }
            | GetResponse::WithList { invoke_id, .. } => *invoke_id,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::GET_RESPONSE);
        match self {
            GetResponse::Normal { invoke_id, result } => {
                out.extend_from_slice(&[tag::GET_NORMAL, *invoke_id]);
                result.write(out);
            }
            GetResponse::WithDataBlock { invoke_id, block } => {
                out.extend_from_slice(&[tag::GET_NEXT_OR_DATABLOCK, *invoke_id]);
                block.write(out);
            }
            GetResponse::WithList { invoke_id, results } => {
                out.extend_from_slice(&[tag::GET_WITH_LIST, *invoke_id]);
                put_length(out, results.len());
                for result in results {
                    result.write(out);
                }
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::GET_RESPONSE, "get-response tag")?;
        let (choice, at) = read_choice(r, "get-response choice")?;
        let invoke_id = r.u8("invoke-id-and-priority")?;
        Ok(match choice {
            tag::GET_NORMAL => GetResponse::Normal {
                invoke_id,
                result: GetDataResult::read(r)?,
            },
            tag::GET_NEXT_OR_DATABLOCK => GetResponse::WithDataBlock {
                invoke_id,
                block: DataBlockG::read(r)?,
            },
            tag::GET_WITH_LIST => {
                let count = r.length("get-data-result list length")?;
                let mut results = Vec::new();
                for _ in 0..count {
                    results.push(GetDataResult::read(r)?);
                }
                GetResponse::WithList { invoke_id, results }
            }
            other => {
                return Err(DecodeError::UnknownTag {
                    what: "get-response choice",
                    tag: other,
                    at,
                });
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// SET
// ---------------------------------------------------------------------------------------------

impl DataBlockSa {
    /// Appends last-block, block-number, raw-data.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.last_block as u8);
        out.extend_from_slice(&self.block_number.to_be_bytes());
        put_octets(out, &self.raw_data);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DataBlockSa {
            last_block: read_bool(r, "last-block")?,
            block_number: r.u32("block-number")?,
            raw_data: r.octets("raw-data")?.to_vec(),
        })
    }
}

impl SetRequest {
    pub fn invoke_id(&self) -> u8 {
        match self {
            SetRequest::Normal { invoke_id, .. }
            | SetRequest::WithFirstDataBlock { invoke_id, .. }
            | SetRequest::WithDataBlock { invoke_id, .. } => *invoke_id,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::SET_REQUEST);
        match self {
            SetRequest::Normal {
                invoke_id,
                attribute,
                access,
                value,
            } => {
                out.extend_from_slice(&[tag::SET_NORMAL, *invoke_id]);
                attribute.write(out);
                SelectiveAccess::write_optional(access.as_ref(), out);
                value.encode(out);
            }
            SetRequest::WithFirstDataBlock {
                invoke_id,
                attribute,
                access,
                block,
            } => {
                out.extend_from_slice(&[tag::SET_FIRST_DATABLOCK_OR_DATABLOCK, *invoke_id]);
                attribute.write(out);
                SelectiveAccess::write_optional(access.as_ref(), out);
                block.write(out);
            }
            SetRequest::WithDataBlock { invoke_id, block } => {
                out.extend_from_slice(&[tag::SET_DATABLOCK_OR_LAST_DATABLOCK, *invoke_id]);
                block.write(out);
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::SET_REQUEST, "set-request tag")?;
        let (choice, at) = read_choice(r, "set-request choice")?;
        let invoke_id = r.u8("invoke-id-and-priority")?;
        Ok(match choice {
            tag::SET_NORMAL => SetRequest::Normal {
                invoke_id,
                attribute: AttributeDescriptor::read(r)?,
                access: SelectiveAccess::read_optional(r)?,
                value: Data::decode(r)?,
            },
            tag::SET_FIRST_DATABLOCK_OR_DATABLOCK => SetRequest::WithFirstDataBlock {
                invoke_id,
                attribute: AttributeDescriptor::read(r)?,
                access: SelectiveAccess::read_optional(r)?,
                block: DataBlockSa::read(r)?,
            },
            tag::SET_DATABLOCK_OR_LAST_DATABLOCK => SetRequest::WithDataBlock {
                invoke_id,
                block: DataBlockSa::read(r)?,
            },
            other => {
                return Err(DecodeError::UnknownTag {
                    what: "set-request choice",
                    tag: other,
                    at,
                });
            }
        })
    }
}

impl SetResponse {
    pub fn invoke_id(&self) -> u8 {
        match self {
            SetResponse::Normal { invoke_id, .. }
            | SetResponse::DataBlock { invoke_id, .. }
            | SetResponse::LastDataBlock { invoke_id, .. } => *invoke_id,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::SET_RESPONSE);
        match self {
            SetResponse::Normal { invoke_id, result } => {
                out.extend_from_slice(&[tag::SET_NORMAL, *invoke_id, result.code()]);
            }
            SetResponse::DataBlock {
                invoke_id,
                block_number,
            } => {
                out.extend_from_slice(&[tag::SET_FIRST_DATABLOCK_OR_DATABLOCK, *invoke_id]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            SetResponse::LastDataBlock {
                invoke_id,
                result,
                block_number,
            } => {
                out.extend_from_slice(&[
                    tag::SET_DATABLOCK_OR_LAST_DATABLOCK,
                    *invoke_id,
                    result.code(),
                ]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::SET_RESPONSE, "set-response tag")?;
        let (choice, at) = read_choice(r, "set-response choice")?;
        let invoke_id = r.u8("invoke-id-and-priority")?;
        Ok(match choice {
            tag::SET_NORMAL => SetResponse::Normal {
                invoke_id,
                result: read_access_result(r)?,
            },
            tag::SET_FIRST_DATABLOCK_OR_DATABLOCK => SetResponse::DataBlock {
                invoke_id,
                block_number: r.u32("block-number")?,
            },
            tag::SET_DATABLOCK_OR_LAST_DATABLOCK => SetResponse::LastDataBlock {
                invoke_id,
                result: read_access_result(r)?,
                block_number: r.u32("block-number")?,
            },
            other => {
                return Err(DecodeError::UnknownTag {
                    what: "set-response choice",
                    tag: other,
                    at,
                });
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// ACTION
// ---------------------------------------------------------------------------------------------

impl ActionRequest {
    pub fn invoke_id(&self) -> u8 {
        match self {
            ActionRequest::Normal { invoke_id, .. } => *invoke_id,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::ACTION_REQUEST);
        match self {
            ActionRequest::Normal {
                invoke_id,
                method,
                parameters,
            } => {
                out.extend_from_slice(&[tag::ACTION_NORMAL, *invoke_id]);
                method.write(out);
                write_optional_data(out, parameters.as_ref());
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::ACTION_REQUEST, "action-request tag")?;
        let (choice, at) = read_choice(r, "action-request choice")?;
        if choice != tag::ACTION_NORMAL {
            return Err(DecodeError::UnknownTag {
                what: "action-request choice",
                tag: choice,
                at,
            });
        }
        Ok(ActionRequest::Normal {
            invoke_id: r.u8("invoke-id-and-priority")?,
            method: MethodDescriptor::read(r)?,
            parameters: read_optional_data(r, "method-invocation-parameters")?,
        })
    }
}

impl ActionResponse {
    pub fn invoke_id(&self) -> u8 {
        match self {
            ActionResponse::Normal { invoke_id, .. } => *invoke_id,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::ACTION_RESPONSE);
        match self {
            ActionResponse::Normal {
                invoke_id,
                result,
                return_parameters,
            } => {
                out.extend_from_slice(&[tag::ACTION_NORMAL, *invoke_id, result.code()]);
                match return_parameters {
                    None => out.push(0),
                    Some(p) => {
                        out.push(1);
                        p.write(out);
                    }
                }
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::ACTION_RESPONSE, "action-response tag")?;
        let (choice, at) = read_choice(r, "action-response choice")?;
        if choice != tag::ACTION_NORMAL {
            return Err(DecodeError::UnknownTag {
                what: "action-response choice",
                tag: choice,
                at,
            });
        }
        let invoke_id = r.u8("invoke-id-and-priority")?;
        let result = ActionResult::from_code(r.u8("action-result")?);
        let return_parameters = if read_present(r, "return-parameters")? {
            Some(GetDataResult::read(r)?)
        } else {
            None
        };
        Ok(ActionResponse::Normal {
            invoke_id,
            result,
            return_parameters,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications and errors
// ---------------------------------------------------------------------------------------------

impl DataNotification {
    /// Appends `0F`, long-invoke-id-and-priority, date-time (an OCTET STRING whose zero length
    /// means "absent", so `Some(vec![])` is written the same as `None`), notification-body.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::DATA_NOTIFICATION);
        out.extend_from_slice(&self.long_invoke_id_and_priority.to_be_bytes());
        put_octets(out, self.date_time.as_deref().unwrap_or_default());
        self.body.encode(out);
    }

    /// Also accepts the date-time sent as a tagged Data octet-string (`09 0C …`), as some meters
    /// do: a length of 9 cannot be a date-time, so the two forms do not collide.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::DATA_NOTIFICATION, "data-notification tag")?;
        let long_invoke_id_and_priority = r.u32("long-invoke-id-and-priority")?;
        let mut probe = r.clone();
        let tagged = probe.u8("date-time").ok() == Some(0x09)
            && probe.u8("date-time").ok() == Some(12)
            && probe.remaining() >= 12;
        if tagged {
            r.u8("date-time tag")?;
        }
        let date_time = r.octets("date-time")?;
        let date_time = if date_time.is_empty() {
            None
        } else {
            Some(date_time.to_vec())
        };
        Ok(DataNotification {
            long_invoke_id_and_priority,
            date_time,
            body: Data::decode(r)?,
        })
    }
}

impl EventNotification {
    /// Appends `C2`, time OPTIONAL (`00`, or `01` and a length-prefixed octet string), the
    /// attribute descriptor and the value.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(tag::EVENT_NOTIFICATION_REQUEST);
        match &self.time {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                put_octets(out, t);
            }
        }
        self.attribute.write(out);
        self.value.encode(out);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(
            tag::EVENT_NOTIFICATION_REQUEST,
            "event-notification-request tag",
        )?;
        let time = if read_present(r, "time")? {
            Some(r.octets("time")?.to_vec())
        } else {
            None
        };
        Ok(EventNotification {
            time,
            attribute: AttributeDescriptor::read(r)?,
            value: Data::decode(r)?,
        })
    }
}

impl ExceptionResponse {
    /// Appends `D8`, state-error, service-error and, for invocation-counter-error (6), the
    /// expected counter as a u32 when known (a counter with any other service-error is not sent).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            tag::EXCEPTION_RESPONSE,
            self.state_error,
            self.service_error,
        ]);
        if let (INVOCATION_COUNTER_ERROR, Some(counter)) =
            (self.service_error, self.invocation_counter)
        {
            out.extend_from_slice(&counter.to_be_bytes());
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::EXCEPTION_RESPONSE, "exception-response tag")?;
        let state_error = r.u8("state-error")?;
        let service_error = r.u8("service-error")?;
        // Older peers send invocation-counter-error without the counter.
        let invocation_counter = if service_error == INVOCATION_COUNTER_ERROR && r.remaining() >= 4
        {
            Some(r.u32("invocation-counter")?)
        } else {
            None
        };
        Ok(ExceptionResponse {
            state_error,
            service_error,
            invocation_counter,
        })
    }
}

impl ConfirmedServiceError {
    /// Service `initiateError` (1).
    pub const INITIATE_ERROR: u8 = 1;
    /// ServiceError class `initiate` (6).
    pub const CLASS_INITIATE: u8 = 6;
    /// initiate: other (0), dlms-version-too-low (1), incompatible-conformance (2),
    /// pdu-size-too-short (3), refused-by-the-VDE-Handler (4).
    pub const DLMS_VERSION_TOO_LOW: u8 = 1;
    pub const INCOMPATIBLE_CONFORMANCE: u8 = 2;
    pub const PDU_SIZE_TOO_SHORT: u8 = 3;

    /// Appends `0E` service error-class error-value.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            tag::CONFIRMED_SERVICE_ERROR,
            self.service,
            self.error_class,
            self.error_value,
        ]);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.expect(tag::CONFIRMED_SERVICE_ERROR, "confirmed-service-error tag")?;
        Ok(ConfirmedServiceError {
            service: r.u8("confirmed-service-error service")?,
            error_class: r.u8("service-error class")?,
            error_value: r.u8("service-error value")?,
        })
    }
}

//! What the head-end does over a [`Session`], in the words of IS 15959: read the clock, a
//! register with its scaler and unit, a profile's capture objects and rows by time range; set
//! the clock; operate the relay with read-back; transfer and activate a firmware image.

use chrono::{DateTime, Utc};
use dlms::apdu::{ActionResult, AttributeDescriptor, MethodDescriptor, SelectiveAccess};
use dlms::datetime::ist;
use dlms::{Data, ObisCode};
use is15959::catalogue::obis;
use is15959::{
    BufferReader, CaptureObject, Profiles, ScalerMap, ScalerUnit, capture_objects_from_data,
};
use model::{IntervalReading, MeterSerial, RelayState};

use crate::session::{Session, SessionError};

/// Interface classes used here (Blue Book).
const CLASS_REGISTER: u16 = 3;
const CLASS_PROFILE_GENERIC: u16 = 7;
const CLASS_CLOCK: u16 = 8;
const CLASS_IMAGE_TRANSFER: u16 = 18;
const CLASS_DISCONNECT_CONTROL: u16 = 70;

fn attribute(class_id: u16, instance: ObisCode, attribute_id: i8) -> AttributeDescriptor {
    AttributeDescriptor {
        class_id,
        instance,
        attribute_id,
    }
}

fn method(class_id: u16, instance: ObisCode, method_id: i8) -> MethodDescriptor {
    MethodDescriptor {
        class_id,
        instance,
        method_id,
    }
}

fn malformed(what: &str, got: &Data) -> SessionError {
    SessionError::Unexpected(format!("{what}: the meter sent {got:?}"))
}

/// The meter's clock (0.0.1.0.0.255, attribute 2) as an instant.
pub async fn read_clock(session: &mut Session) -> Result<DateTime<Utc>, SessionError> {
    let value = session
        .get(attribute(CLASS_CLOCK, obis::CLOCK, 2), None)
        .await?;
    value
        .as_datetime()
        .and_then(|t| t.to_utc(ist()))
        .ok_or_else(|| malformed("clock", &value))
}

/// Sets the meter's clock to `t`, in IST with deviation −330 as IS 15959 meters keep it.
pub async fn set_clock(session: &mut Session, t: DateTime<Utc>) -> Result<(), SessionError> {
    let value = Data::OctetString(dlms::DateTime::from_utc(t, ist()).to_bytes().to_vec());
    session
        .set(attribute(CLASS_CLOCK, obis::CLOCK, 2), value)
        .await
}

/// A register's raw value and its scaler/unit (attributes 2 and 3 of IC 3/4).
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterReading {
    pub raw: Data,
    pub scaler_unit: ScalerUnit,
}

impl RegisterReading {
    /// The value in the register's unit (raw × 10^scaler).
    pub fn value(&self) -> Option<f64> {
        self.scaler_unit.apply_f64(&self.raw).ok()
    }
}

/// Reads a register (IC 3) value with its scaler and unit, in one request.
pub async fn read_register(
    session: &mut Session,
    logical_name: ObisCode,
) -> Result<RegisterReading, SessionError> {
    let results = session
        .get_with_list(vec![
            (attribute(CLASS_REGISTER, logical_name, 3), None),
            (attribute(CLASS_REGISTER, logical_name, 2), None),
        ])
        .await?;
    let mut results = results.into_iter();
    let (Some(scaler), Some(raw)) = (results.next(), results.next()) else {
        return Err(SessionError::Unexpected(
            "register: fewer results than asked".into(),
        ));
    };
    let data = |r| match r {
        dlms::apdu::GetDataResult::Data(d) => Ok(d),
        dlms::apdu::GetDataResult::Error(e) => Err(SessionError::Refused(e)),
    };
    let scaler = data(scaler)?;
    let scaler_unit = ScalerUnit::from_data(&scaler).map_err(|_| malformed("scaler", &scaler))?;
    Ok(RegisterReading {
        raw: data(raw)?,
        scaler_unit,
    })
}

/// The capture objects of a profile (attribute 3), in column order.
pub async fn read_capture_objects(
    session: &mut Session,
    profile: ObisCode,
) -> Result<Vec<CaptureObject>, SessionError> {
    let value = session
        .get(attribute(CLASS_PROFILE_GENERIC, profile, 3), None)
        .await?;
    capture_objects_from_data(&value).map_err(|e| SessionError::Unexpected(e.to_string()))
}

/// Rows of a profile whose clock lies in `from..=to` (selective access by range).
pub async fn read_profile_range(
    session: &mut Session,
    profile: ObisCode,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Data, SessionError> {
    let access = SelectiveAccess::by_range(
        &dlms::DateTime::from_utc(from, ist()),
        &dlms::DateTime::from_utc(to, ist()),
        &[],
    );
    session
        .get(attribute(CLASS_PROFILE_GENERIC, profile, 2), Some(access))
        .await
}

/// What is needed to read a profile's rows: its capture objects and the scalers of its columns
/// (from the scaler profile IS 15959 pairs with it). It changes only when the meter is
/// reconfigured, so a head-end reads it once and keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileLayout {
    pub profile: ObisCode,
    pub columns: Vec<CaptureObject>,
    pub scalers: ScalerMap,
}

impl ProfileLayout {
    /// A reader turning rows of this profile into typed readings of `meter`.
    pub fn reader<'a>(&'a self, meter: &'a MeterSerial) -> BufferReader<'a> {
        BufferReader::new(meter, &self.columns, &self.scalers)
    }
}

/// Reads a profile's layout: its capture objects, and its scaler profile's columns and row.
pub async fn read_profile_layout(
    session: &mut Session,
    profile: ObisCode,
) -> Result<ProfileLayout, SessionError> {
    let scaler_profile = Profiles::builtin()
        .all()
        .iter()
        .find(|p| p.logical_name == profile)
        .and_then(|p| p.scaler_profile)
        .ok_or_else(|| {
            SessionError::Unexpected(format!("IS 15959 names no scaler profile for {profile}"))
        })?;
    let columns = read_capture_objects(session, profile).await?;
    let scaler_columns = read_capture_objects(session, scaler_profile).await?;
    let scaler_buffer = session
        .get(attribute(CLASS_PROFILE_GENERIC, scaler_profile, 2), None)
        .await?;
    let scalers = ScalerMap::from_scaler_profile(&scaler_columns, &scaler_buffer)
        .map_err(|e| SessionError::Unexpected(e.to_string()))?;
    Ok(ProfileLayout {
        profile,
        columns,
        scalers,
    })
}

/// Block-load intervals ending in `from..=to`, read with the meter's block-load `layout`
/// ([`read_profile_layout`] of the block load profile).
pub async fn read_block_load(
    session: &mut Session,
    layout: &ProfileLayout,
    meter: &MeterSerial,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<IntervalReading>, SessionError> {
    let buffer = read_profile_range(session, layout.profile, from, to).await?;
    layout
        .reader(meter)
        .intervals(&buffer)
        .map_err(|e| SessionError::Unexpected(e.to_string()))
}

/// The relay as the disconnect control object reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayStatus {
    /// Attribute 2, output state: true when supply is connected.
    pub output_connected: bool,
    /// Attribute 3, control state.
    pub control_state: RelayState,
}

/// Reads the disconnect control object (0.0.96.3.10.255, IC 70).
pub async fn read_relay(session: &mut Session) -> Result<RelayStatus, SessionError> {
    let ln = obis::DISCONNECT_CONTROL;
    let output = session
        .get(attribute(CLASS_DISCONNECT_CONTROL, ln, 2), None)
        .await?;
    let control = session
        .get(attribute(CLASS_DISCONNECT_CONTROL, ln, 3), None)
        .await?;
    let output_connected = match output {
        Data::Boolean(b) => b,
        other => return Err(malformed("relay output state", &other)),
    };
    let control_state = match control.as_i64() {
        Some(0) => RelayState::Disconnected,
        Some(1) => RelayState::Connected,
        Some(2) => RelayState::ReadyForReconnection,
        _ => return Err(malformed("relay control state", &control)),
    };
    Ok(RelayStatus {
        output_connected,
        control_state,
    })
}

/// Remote disconnect (method 1), then reads back the relay state.
pub async fn disconnect_relay(session: &mut Session) -> Result<RelayStatus, SessionError> {
    let m = method(CLASS_DISCONNECT_CONTROL, obis::DISCONNECT_CONTROL, 1);
    session.action(m, Some(Data::Integer(0))).await?;
    read_relay(session).await
}

/// Remote reconnect (method 2), then reads back the relay state.
pub async fn reconnect_relay(session: &mut Session) -> Result<RelayStatus, SessionError> {
    let m = method(CLASS_DISCONNECT_CONTROL, obis::DISCONNECT_CONTROL, 2);
    session.action(m, Some(Data::Integer(0))).await?;
    read_relay(session).await
}

/// Transfers a firmware image through the image transfer object (0.0.44.0.0.255, IC 18):
/// reads the block size, initiates, sends every block, verifies and activates. `progress` is
/// called with (blocks sent, blocks in all). Use the firmware upgrade association (80).
pub async fn transfer_image(
    session: &mut Session,
    identifier: &[u8],
    image: &[u8],
    mut progress: impl FnMut(u32, u32),
) -> Result<(), SessionError> {
    let ln = obis::IMAGE_TRANSFER;
    let size = session
        .get(attribute(CLASS_IMAGE_TRANSFER, ln, 2), None)
        .await?;
    let block_size = size
        .as_i64()
        .filter(|s| *s > 0)
        .ok_or_else(|| malformed("image block size", &size))? as usize;
    let image_size = u32::try_from(image.len())
        .map_err(|_| SessionError::Unexpected("image larger than 4 GiB".into()))?;
    let enable = attribute(CLASS_IMAGE_TRANSFER, ln, 5);
    if session.get(enable, None).await? != Data::Boolean(true) {
        session.set(enable, Data::Boolean(true)).await?;
    }
    let initiate = Data::Structure(vec![
        Data::OctetString(identifier.to_vec()),
        Data::DoubleLongUnsigned(image_size),
    ]);
    session
        .action(method(CLASS_IMAGE_TRANSFER, ln, 1), Some(initiate))
        .await?;
    let blocks: Vec<&[u8]> = image.chunks(block_size).collect();
    let total = blocks.len() as u32;
    for (number, block) in blocks.into_iter().enumerate() {
        let number = number as u32;
        let parameters = Data::Structure(vec![
            Data::DoubleLongUnsigned(number),
            Data::OctetString(block.to_vec()),
        ]);
        session
            .action(method(CLASS_IMAGE_TRANSFER, ln, 2), Some(parameters))
            .await?;
        progress(number + 1, total);
    }
    finish_image_step(session, 3, ImageStatus::VerificationSuccessful).await?;
    finish_image_step(session, 4, ImageStatus::ActivationSuccessful).await
}

/// image_transfer_status (IC 18 attribute 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageStatus {
    VerificationSuccessful = 3,
    VerificationFailed = 4,
    ActivationSuccessful = 6,
    ActivationFailed = 7,
}

/// How often, and how many times, to ask a busy meter how verification or activation went.
const IMAGE_STATUS_POLL: std::time::Duration = std::time::Duration::from_secs(2);
const IMAGE_STATUS_POLLS: u32 = 30;

/// Invokes image verify (3) or activate (4). A meter that answers temporary-failure is still
/// working on it: poll image_transfer_status until it reports `done` or a failure.
async fn finish_image_step(
    session: &mut Session,
    method_id: i8,
    done: ImageStatus,
) -> Result<(), SessionError> {
    let ln = obis::IMAGE_TRANSFER;
    let step = method(CLASS_IMAGE_TRANSFER, ln, method_id);
    match session.action(step, Some(Data::Integer(0))).await {
        Ok(_) => return Ok(()),
        Err(SessionError::ActionFailed(ActionResult::TemporaryFailure)) => {}
        Err(e) => return Err(e),
    }
    let failed = match done {
        ImageStatus::VerificationSuccessful => ImageStatus::VerificationFailed,
        _ => ImageStatus::ActivationFailed,
    };
    for _ in 0..IMAGE_STATUS_POLLS {
        tokio::time::sleep(IMAGE_STATUS_POLL).await;
        let status = session
            .get(attribute(CLASS_IMAGE_TRANSFER, ln, 6), None)
            .await?;
        match status.as_i64() {
            Some(s) if s == done as i64 => return Ok(()),
            Some(s) if s == failed as i64 => {
                return Err(SessionError::ActionFailed(ActionResult::OtherReason));
            }
            _ => {}
        }
    }
    Err(SessionError::Timeout(
        IMAGE_STATUS_POLL * IMAGE_STATUS_POLLS,
        "image transfer status",
    ))
}

/// The active firmware version (1.0.0.2.0.255).
pub async fn read_firmware_version(session: &mut Session) -> Result<String, SessionError> {
    let value = session
        .get(attribute(1, obis::FIRMWARE_VERSION, 2), None)
        .await?;
    value
        .as_octets()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or_else(|| malformed("firmware version", &value))
}

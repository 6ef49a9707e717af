//! What the head-end does over a [`Session`], in the words of IS 15959: read the clock, a
//! register with its scaler and unit, a profile's capture objects and rows by time range (block
//! load, daily load, billing, instantaneous, event logs) as typed readings; set the clock;
//! operate the relay with read-back; configure the meter (TOD calendar, load limit, capture
//! period, billing date, payment mode), reset the maximum demand, rotate the global keys (key
//! transfer); transfer and activate a firmware image.
//!
//! Every write and command maps a refusal by the meter to [`SessionError::CommandRefused`],
//! naming what was refused.

use chrono::{DateTime, Utc};
use dlms::apdu::{
    ActionResult, AttributeDescriptor, Conformance, MethodDescriptor, SelectiveAccess,
};
use dlms::datetime::ist;
use dlms::security::GlobalKeys;
use dlms::{Data, ObisCode};
use is15959::EventCodes;
use is15959::catalogue::obis;
use is15959::{
    BufferReader, CaptureObject, Profiles, ScalerMap, ScalerUnit, capture_objects_from_data,
};
use model::{
    BillingReading, DailyReading, EventCategory, InstantaneousReading, IntervalReading, MeterEvent,
    MeterSerial, PaymentMode, RelayState,
};

use crate::session::{Refusal, Session, SessionError};

/// Interface classes used here (Blue Book).
const CLASS_REGISTER: u16 = 3;
const CLASS_PROFILE_GENERIC: u16 = 7;
const CLASS_CLOCK: u16 = 8;
const CLASS_IMAGE_TRANSFER: u16 = 18;
const CLASS_DISCONNECT_CONTROL: u16 = 70;
const CLASS_DATA: u16 = 1;
const CLASS_SCRIPT_TABLE: u16 = 9;
const CLASS_ACTIVITY_CALENDAR: u16 = 20;
const CLASS_SINGLE_ACTION_SCHEDULE: u16 = 22;
const CLASS_SECURITY_SETUP: u16 = 64;
const CLASS_LIMITER: u16 = 71;

/// The security setup of the utility settings association, whose key transfer method rotates
/// the meter's global keys.
pub const SECURITY_SETUP_UTILITY_SETTINGS: ObisCode = ObisCode::new(0, 0, 43, 0, 3, 255);
/// The tariffication script table the TOD day profile's actions point at (script = zone).
pub const TARIFFICATION_SCRIPT_TABLE: ObisCode = ObisCode::new(0, 0, 10, 0, 100, 255);

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

/// Names a refusal: a SET or ACTION the meter did not carry out becomes
/// [`SessionError::CommandRefused`] saying `what`.
fn refused(what: &'static str) -> impl Fn(SessionError) -> SessionError {
    move |e| match e {
        SessionError::Refused(r) => SessionError::CommandRefused {
            what,
            reason: Refusal::Set(r),
        },
        SessionError::ActionFailed(r) => SessionError::CommandRefused {
            what,
            reason: Refusal::Action(r),
        },
        other => other,
    }
}

async fn write(
    session: &mut Session,
    what: &'static str,
    target: AttributeDescriptor,
    value: Data,
) -> Result<(), SessionError> {
    session.set(target, value).await.map_err(refused(what))
}

async fn invoke(
    session: &mut Session,
    what: &'static str,
    target: MethodDescriptor,
    parameters: Data,
) -> Result<Option<Data>, SessionError> {
    session
        .action(target, Some(parameters))
        .await
        .map_err(refused(what))
}

fn reading_error(e: is15959::ReadingError) -> SessionError {
    SessionError::Unexpected(e.to_string())
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
    let mut layouts = read_profile_layouts(session, &[profile]).await?;
    layouts
        .pop()
        .ok_or_else(|| SessionError::Unexpected("profile layout: no result".into()))
}

/// Reads the layouts of several profiles, in order: in one GET-with-list where the meter
/// negotiated multiple references (as registers are read), one GET per attribute otherwise.
pub async fn read_profile_layouts(
    session: &mut Session,
    profiles: &[ObisCode],
) -> Result<Vec<ProfileLayout>, SessionError> {
    // Per profile: its capture objects, its scaler profile's capture objects and row.
    let mut attributes = Vec::with_capacity(3 * profiles.len());
    for &profile in profiles {
        let scaler_profile = Profiles::builtin()
            .all()
            .iter()
            .find(|p| p.logical_name == profile)
            .and_then(|p| p.scaler_profile)
            .ok_or_else(|| {
                SessionError::Unexpected(format!("IS 15959 names no scaler profile for {profile}"))
            })?;
        attributes.extend([
            attribute(CLASS_PROFILE_GENERIC, profile, 3),
            attribute(CLASS_PROFILE_GENERIC, scaler_profile, 3),
            attribute(CLASS_PROFILE_GENERIC, scaler_profile, 2),
        ]);
    }
    let with_list = attributes.len() > 1
        && session
            .negotiated()
            .is_some_and(|n| n.conformance.has(Conformance::MULTIPLE_REFERENCES));
    let mut values = Vec::with_capacity(attributes.len());
    if with_list {
        // Whole profiles per request, at most MAX_LIST attributes each.
        for chunk in attributes.chunks(MAX_LIST / 3 * 3) {
            let results = session
                .get_with_list(chunk.iter().map(|a| (*a, None)).collect())
                .await?;
            if results.len() != chunk.len() {
                return Err(SessionError::Unexpected(format!(
                    "profile layouts: {} results for {} attributes",
                    results.len(),
                    chunk.len()
                )));
            }
            for r in results {
                values.push(match r {
                    dlms::apdu::GetDataResult::Data(d) => d,
                    dlms::apdu::GetDataResult::Error(e) => return Err(SessionError::Refused(e)),
                });
            }
        }
    } else {
        for a in attributes {
            values.push(session.get(a, None).await?);
        }
    }
    let captures = |v: &Data| {
        capture_objects_from_data(v).map_err(|e| SessionError::Unexpected(e.to_string()))
    };
    profiles
        .iter()
        .zip(values.chunks_exact(3))
        .map(|(&profile, v)| {
            let columns = captures(&v[0])?;
            let scaler_columns = captures(&v[1])?;
            let scalers = ScalerMap::from_scaler_profile(&scaler_columns, &v[2])
                .map_err(|e| SessionError::Unexpected(e.to_string()))?;
            Ok(ProfileLayout {
                profile,
                columns,
                scalers,
            })
        })
        .collect()
}

/// Attributes asked in one GET-with-list at most (meters bound their lists; the simulator,
/// like the `dlms` server, takes 64).
const MAX_LIST: usize = 24;

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

/// Daily-load snapshots (midnight values) captured in `from..=to`, read with the meter's daily
/// load `layout` ([`read_profile_layout`] of 1.0.99.2.0.255).
pub async fn read_daily_profile(
    session: &mut Session,
    layout: &ProfileLayout,
    meter: &MeterSerial,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DailyReading>, SessionError> {
    let buffer = read_profile_range(session, layout.profile, from, to).await?;
    layout.reader(meter).daily(&buffer).map_err(reading_error)
}

/// Billing-profile rows (monthly closing values) with billing dates in `from..=to`, read with
/// the meter's billing `layout` ([`read_profile_layout`] of 1.0.98.1.0.255).
pub async fn read_billing_profile(
    session: &mut Session,
    layout: &ProfileLayout,
    meter: &MeterSerial,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<BillingReading>, SessionError> {
    let buffer = read_profile_range(session, layout.profile, from, to).await?;
    layout.reader(meter).billing(&buffer).map_err(reading_error)
}

/// The instantaneous profile (1.0.94.91.0.255): one snapshot of the meter's present values,
/// read with its `layout`.
pub async fn read_instantaneous(
    session: &mut Session,
    layout: &ProfileLayout,
    meter: &MeterSerial,
) -> Result<InstantaneousReading, SessionError> {
    let buffer = session
        .get(attribute(CLASS_PROFILE_GENERIC, layout.profile, 2), None)
        .await?;
    layout
        .reader(meter)
        .instantaneous(&buffer)
        .map_err(reading_error)?
        .pop()
        .ok_or_else(|| SessionError::Unexpected("the instantaneous profile is empty".into()))
}

/// Entries of one event log (0.0.99.98.E.255, E = the category's log index) logged in
/// `from..=to`, read with that log's `layout`; descriptions come from the IS 15959 code table.
pub async fn read_event_log(
    session: &mut Session,
    layout: &ProfileLayout,
    meter: &MeterSerial,
    log: EventCategory,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<MeterEvent>, SessionError> {
    let buffer = read_profile_range(session, layout.profile, from, to).await?;
    layout
        .reader(meter)
        .events(log, EventCodes::builtin(), &buffer)
        .map_err(reading_error)
}

/// The TOD calendar written to the activity calendar: one season, one week profile, one day
/// profile of zone switches (the shared vocabulary's [`TouCalendar`]).
pub use model::TouCalendar;

/// Longest calendar name written.
pub const MAX_CALENDAR_NAME_LEN: usize = 32;

/// Checks a calendar before anything is sent: a name, 1 to 24 zone starts at distinct valid
/// times, zones 1..=8.
pub fn validate_calendar(calendar: &TouCalendar) -> Result<(), SessionError> {
    let invalid = |m: String| Err(SessionError::InvalidRequest(m));
    if calendar.name.is_empty() || calendar.name.len() > MAX_CALENDAR_NAME_LEN {
        return invalid(format!(
            "calendar name must be 1 to {MAX_CALENDAR_NAME_LEN} bytes"
        ));
    }
    if calendar.switches.is_empty() || calendar.switches.len() > 24 {
        return invalid("a day profile has 1 to 24 zone starts".into());
    }
    let mut starts: Vec<(u8, u8)> = Vec::with_capacity(calendar.switches.len());
    for &((h, m), zone) in &zone_starts(calendar) {
        if h > 23 || m > 59 {
            return invalid(format!("{h:02}:{m:02} is not a time of day"));
        }
        if !(1..=8).contains(&zone) {
            return invalid(format!("TOD zone {zone} is not 1..=8"));
        }
        if starts.contains(&(h, m)) {
            return invalid(format!("two zones start at {h:02}:{m:02}"));
        }
        starts.push((h, m));
    }
    Ok(())
}

/// The switches as ((hour, minute), zone).
fn zone_starts(calendar: &TouCalendar) -> Vec<((u8, u8), u8)> {
    calendar
        .switches
        .iter()
        .map(|s| ((s.hour, s.minute), s.zone))
        .collect()
}

/// Attributes 6..=9 of the activity calendar (passive name, season profile, week profile
/// table, day profile table), in that order.
fn passive_attributes(calendar: &TouCalendar) -> [Data; 4] {
    const WEEK: &[u8] = b"WEEK1";
    let mut zones = zone_starts(calendar);
    zones.sort_unstable();
    let season_start = dlms::DateTime {
        date: dlms::Date {
            year: 0xFFFF,
            month: 1,
            day: 1,
            weekday: 0xFF,
        },
        time: dlms::Time {
            hour: 0,
            minute: 0,
            second: 0,
            hundredths: 0,
        },
        deviation: dlms::datetime::DEVIATION_NOT_SPECIFIED,
        clock_status: dlms::ClockStatus::NOT_SPECIFIED,
    };
    let season = Data::Array(vec![Data::Structure(vec![
        Data::OctetString(b"SEASON1".to_vec()),
        Data::OctetString(season_start.to_bytes().to_vec()),
        Data::OctetString(WEEK.to_vec()),
    ])]);
    let week = Data::Array(vec![Data::Structure(
        std::iter::once(Data::OctetString(WEEK.to_vec()))
            .chain((0..7).map(|_| Data::Unsigned(1)))
            .collect(),
    )]);
    let actions = zones
        .iter()
        .map(|&((h, m), zone)| {
            Data::Structure(vec![
                Data::OctetString(vec![h, m, 0, 0]),
                Data::OctetString(TARIFFICATION_SCRIPT_TABLE.bytes().to_vec()),
                Data::LongUnsigned(zone as u16),
            ])
        })
        .collect();
    let day = Data::Array(vec![Data::Structure(vec![
        Data::Unsigned(1),
        Data::Array(actions),
    ])]);
    [
        Data::OctetString(calendar.name.as_bytes().to_vec()),
        season,
        week,
        day,
    ]
}

/// Writes `calendar` as the activity calendar's passive calendar (attributes 6..=9) and, when
/// it has an activation time, attribute 10. The meter keeps using its active calendar until the
/// activation time or [`activate_passive_calendar`].
pub async fn write_activity_calendar(
    session: &mut Session,
    calendar: &TouCalendar,
) -> Result<(), SessionError> {
    validate_calendar(calendar)?;
    let ln = obis::ACTIVITY_CALENDAR;
    for (attr, value) in (6..=9).zip(passive_attributes(calendar)) {
        write(
            session,
            "write the passive TOD calendar",
            attribute(CLASS_ACTIVITY_CALENDAR, ln, attr),
            value,
        )
        .await?;
    }
    if let Some(at) = calendar.activate_at {
        let value = Data::OctetString(dlms::DateTime::from_utc(at, ist()).to_bytes().to_vec());
        write(
            session,
            "set the calendar activation time",
            attribute(CLASS_ACTIVITY_CALENDAR, ln, 10),
            value,
        )
        .await?;
    }
    Ok(())
}

/// Activates the passive calendar now (activity calendar method 1): it becomes the active one.
pub async fn activate_passive_calendar(session: &mut Session) -> Result<(), SessionError> {
    let m = method(CLASS_ACTIVITY_CALENDAR, obis::ACTIVITY_CALENDAR, 1);
    invoke(
        session,
        "activate the passive calendar",
        m,
        Data::Integer(0),
    )
    .await?;
    Ok(())
}

/// The name of the active calendar (activity calendar attribute 2).
pub async fn read_active_calendar_name(session: &mut Session) -> Result<String, SessionError> {
    let value = session
        .get(
            attribute(CLASS_ACTIVITY_CALENDAR, obis::ACTIVITY_CALENDAR, 2),
            None,
        )
        .await?;
    value
        .as_octets()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or_else(|| malformed("calendar name", &value))
}

/// Sets the load limit (limiter 0.0.17.0.0.255, threshold_active, W) and reads it back.
pub async fn set_load_limit(session: &mut Session, watts: u32) -> Result<u32, SessionError> {
    write(
        session,
        "set the load limit",
        attribute(CLASS_LIMITER, obis::LIMITER, 3),
        Data::DoubleLongUnsigned(watts),
    )
    .await?;
    read_load_limit(session).await
}

/// The load limit in force (limiter threshold_active), W.
pub async fn read_load_limit(session: &mut Session) -> Result<u32, SessionError> {
    let value = session
        .get(attribute(CLASS_LIMITER, obis::LIMITER, 3), None)
        .await?;
    value
        .as_i64()
        .and_then(|w| u32::try_from(w).ok())
        .ok_or_else(|| malformed("load limit", &value))
}

/// Capture periods IS 15959 meters use for the block-load profile, seconds.
pub const CAPTURE_PERIODS: [u32; 2] = [900, 1800];

/// Sets the block-load capture period (1.0.0.8.4.255), 900 or 1800 s, and reads it back.
pub async fn set_capture_period(session: &mut Session, secs: u32) -> Result<u32, SessionError> {
    set_period(
        session,
        obis::PROFILE_CAPTURE_PERIOD,
        "set the capture period",
        secs,
    )
    .await
}

/// Sets the demand integration period (1.0.0.8.0.255), 900 or 1800 s, and reads it back.
pub async fn set_demand_integration_period(
    session: &mut Session,
    secs: u32,
) -> Result<u32, SessionError> {
    set_period(
        session,
        obis::DEMAND_INTEGRATION_PERIOD,
        "set the demand integration period",
        secs,
    )
    .await
}

async fn set_period(
    session: &mut Session,
    ln: ObisCode,
    what: &'static str,
    secs: u32,
) -> Result<u32, SessionError> {
    if !CAPTURE_PERIODS.contains(&secs) {
        return Err(SessionError::InvalidRequest(format!(
            "period {secs} s: IS 15959 meters take 900 or 1800"
        )));
    }
    write(
        session,
        what,
        attribute(CLASS_DATA, ln, 2),
        Data::DoubleLongUnsigned(secs),
    )
    .await?;
    read_period(session, ln).await
}

/// The block-load capture period (1.0.0.8.4.255), seconds.
pub async fn read_capture_period(session: &mut Session) -> Result<u32, SessionError> {
    read_period(session, obis::PROFILE_CAPTURE_PERIOD).await
}

async fn read_period(session: &mut Session, ln: ObisCode) -> Result<u32, SessionError> {
    let value = session.get(attribute(CLASS_DATA, ln, 2), None).await?;
    value
        .as_i64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| malformed("period", &value))
}

/// Days of the month a billing date may fall on (every month has them).
pub const BILLING_DAYS: std::ops::RangeInclusive<u8> = 1..=28;

/// Sets the monthly billing date (single action schedule 0.0.15.0.0.255, execution_time) to
/// `day_of_month` at 00:00, and reads it back.
pub async fn set_billing_date(session: &mut Session, day_of_month: u8) -> Result<u8, SessionError> {
    if !BILLING_DAYS.contains(&day_of_month) {
        return Err(SessionError::InvalidRequest(format!(
            "billing day {day_of_month}: give 1 to 28"
        )));
    }
    let execution_time = Data::Array(vec![Data::Structure(vec![
        Data::OctetString(vec![0, 0, 0, 0]),
        Data::OctetString(vec![0xFF, 0xFF, 0xFF, day_of_month, 0xFF]),
    ])]);
    write(
        session,
        "set the billing date",
        attribute(CLASS_SINGLE_ACTION_SCHEDULE, obis::BILLING_DATES, 4),
        execution_time,
    )
    .await?;
    read_billing_date(session).await
}

/// The day of the month the meter closes its billing period on.
pub async fn read_billing_date(session: &mut Session) -> Result<u8, SessionError> {
    let value = session
        .get(
            attribute(CLASS_SINGLE_ACTION_SCHEDULE, obis::BILLING_DATES, 4),
            None,
        )
        .await?;
    let day = value
        .as_items()
        .and_then(|entries| entries.first())
        .and_then(Data::as_items)
        .and_then(|entry| entry.get(1))
        .and_then(Data::as_octets)
        .and_then(|date| dlms::Date::from_bytes(date).ok())
        .map(|date| date.day)
        .filter(|day| (1..=31).contains(day));
    day.ok_or_else(|| malformed("billing date", &value))
}

/// Switches the meter between prepaid and postpaid (0.0.94.96.20.255) and reads it back.
pub async fn set_payment_mode(
    session: &mut Session,
    mode: PaymentMode,
) -> Result<PaymentMode, SessionError> {
    let value = match mode {
        PaymentMode::Postpaid => 0,
        PaymentMode::Prepaid => 1,
    };
    write(
        session,
        "change the payment mode",
        attribute(CLASS_DATA, obis::PAYMENT_MODE, 2),
        Data::Unsigned(value),
    )
    .await?;
    read_payment_mode(session).await
}

/// The meter's payment mode (0.0.94.96.20.255: 0 postpaid, 1 prepaid).
pub async fn read_payment_mode(session: &mut Session) -> Result<PaymentMode, SessionError> {
    let value = session
        .get(attribute(CLASS_DATA, obis::PAYMENT_MODE, 2), None)
        .await?;
    match value.as_i64() {
        Some(0) => Ok(PaymentMode::Postpaid),
        Some(1) => Ok(PaymentMode::Prepaid),
        _ => Err(malformed("payment mode", &value)),
    }
}

/// Writes the prepaid balance the meter shows (current balance amount 0.0.94.96.24.255, a
/// currency register) in paise, and reads it back. The meter's own scaler is read first; a
/// balance its scaler cannot hold exactly is refused rather than rounded.
pub async fn set_balance(session: &mut Session, paise: i64) -> Result<i64, SessionError> {
    let before = read_register(session, obis::CURRENT_BALANCE).await?;
    let raw = paise_to_raw(paise, before.scaler_unit.scaler).ok_or_else(|| {
        SessionError::InvalidRequest(format!(
            "a balance of {paise} paise does not fit the meter's register (scaler {})",
            before.scaler_unit.scaler
        ))
    })?;
    // The meter's own data type for the value, widened only when the balance needs it.
    let value = match before.raw {
        Data::DoubleLong(_) | Data::DoubleLongUnsigned(_) | Data::Long(_) | Data::Integer(_) => {
            i32::try_from(raw).map_or(Data::Long64(raw), Data::DoubleLong)
        }
        _ => Data::Long64(raw),
    };
    write(
        session,
        "write the current balance",
        attribute(CLASS_REGISTER, obis::CURRENT_BALANCE, 2),
        value,
    )
    .await?;
    let after = read_register(session, obis::CURRENT_BALANCE).await?;
    after
        .raw
        .as_i64()
        .and_then(|raw| raw_to_paise(raw, after.scaler_unit.scaler))
        .ok_or_else(|| malformed("current balance", &after.raw))
}

/// Paise as the raw value of a rupee register with `scaler` (value = raw × 10^scaler rupees),
/// if exact.
fn paise_to_raw(paise: i64, scaler: i8) -> Option<i64> {
    let shift = i32::from(scaler) + 2;
    if shift <= 0 {
        paise.checked_mul(10i64.checked_pow(shift.unsigned_abs())?)
    } else {
        let d = 10i64.checked_pow(shift.unsigned_abs())?;
        (paise % d == 0).then_some(paise / d)
    }
}

/// A rupee register's raw value as paise, if it fits.
fn raw_to_paise(raw: i64, scaler: i8) -> Option<i64> {
    let shift = i32::from(scaler) + 2;
    if shift >= 0 {
        raw.checked_mul(10i64.checked_pow(shift.unsigned_abs())?)
    } else {
        let d = 10i64.checked_pow(shift.unsigned_abs())?;
        (raw % d == 0).then_some(raw / d)
    }
}

/// Resets the maximum demand registers (MD reset script table 0.0.10.0.1.255, method 1,
/// script 1).
pub async fn md_reset(session: &mut Session) -> Result<(), SessionError> {
    let m = method(CLASS_SCRIPT_TABLE, obis::MD_RESET_SCRIPT, 1);
    invoke(
        session,
        "reset the maximum demand",
        m,
        Data::LongUnsigned(1),
    )
    .await?;
    Ok(())
}

/// Key ids of key transfer (Blue Book, security setup method 2).
const KEY_ID_GLOBAL_UNICAST_ENCRYPTION: u8 = 0;
const KEY_ID_GLOBAL_AUTHENTICATION: u8 = 2;

/// Wraps a key under the meter's master key (AES key wrap, RFC 3394).
fn wrap_key(master_key: &[u8; 16], key: &[u8; 16]) -> Result<Vec<u8>, SessionError> {
    aes_kw::KekAes128::new(&(*master_key).into())
        .wrap_vec(key)
        .map_err(|e| SessionError::InvalidRequest(format!("cannot wrap the key: {e}")))
}

/// Rotates the meter's global encryption and authentication keys (security setup
/// 0.0.43.0.3.255, method 2 `key_transfer`), both wrapped under `master_key`. Use the utility
/// settings association. The meter answers this session with the old keys and uses the new
/// ones from its next association on; store `new` before relying on it.
pub async fn key_transfer(
    session: &mut Session,
    master_key: &[u8; 16],
    new: &GlobalKeys,
) -> Result<(), SessionError> {
    let entry = |id: u8, key: &[u8; 16]| -> Result<Data, SessionError> {
        Ok(Data::Structure(vec![
            Data::Enum(id),
            Data::OctetString(wrap_key(master_key, key)?),
        ]))
    };
    let parameters = Data::Array(vec![
        entry(KEY_ID_GLOBAL_UNICAST_ENCRYPTION, &new.encryption)?,
        entry(KEY_ID_GLOBAL_AUTHENTICATION, &new.authentication)?,
    ]);
    let m = method(CLASS_SECURITY_SETUP, SECURITY_SETUP_UTILITY_SETTINGS, 2);
    invoke(session, "transfer the new global keys", m, parameters).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn balances_convert_exactly_or_not_at_all() {
        assert_eq!(super::paise_to_raw(12_345, -2), Some(12_345));
        assert_eq!(super::paise_to_raw(-12_345, -3), Some(-123_450));
        assert_eq!(super::paise_to_raw(12_300, 0), Some(123));
        assert_eq!(super::paise_to_raw(12_345, 0), None);
        assert_eq!(super::paise_to_raw(i64::MAX, -3), None);
        assert_eq!(super::raw_to_paise(123, 0), Some(12_300));
        assert_eq!(super::raw_to_paise(-123_450, -3), Some(-12_345));
        assert_eq!(super::raw_to_paise(123_451, -3), None);
    }

    use super::*;

    fn calendar(zones: Vec<((u8, u8), u8)>) -> TouCalendar {
        TouCalendar {
            name: "TOD-2027".into(),
            switches: zones
                .into_iter()
                .map(|((hour, minute), zone)| model::TouSwitch { hour, minute, zone })
                .collect(),
            activate_at: None,
        }
    }

    #[test]
    fn a_calendar_is_checked_before_it_is_sent() {
        assert!(validate_calendar(&calendar(vec![((0, 0), 1), ((18, 0), 4)])).is_ok());
        for bad in [
            vec![],
            vec![((24, 0), 1)],
            vec![((6, 60), 1)],
            vec![((6, 0), 9)],
            vec![((6, 0), 0)],
            vec![((6, 0), 1), ((6, 0), 2)],
        ] {
            assert!(
                matches!(
                    validate_calendar(&calendar(bad.clone())),
                    Err(SessionError::InvalidRequest(_))
                ),
                "{bad:?}"
            );
        }
        let mut unnamed = calendar(vec![((0, 0), 1)]);
        unnamed.name.clear();
        assert!(validate_calendar(&unnamed).is_err());
    }

    #[test]
    fn the_day_profile_is_sorted_and_points_at_the_tariff_scripts() {
        let [name, _, week, day] =
            passive_attributes(&calendar(vec![((18, 30), 4), ((0, 0), 1), ((6, 0), 2)]));
        assert_eq!(name, Data::OctetString(b"TOD-2027".to_vec()));
        let week = week.as_items().unwrap()[0].as_items().unwrap().to_vec();
        assert_eq!(week.len(), 8, "name and seven days");
        let actions = day.as_items().unwrap()[0].as_items().unwrap()[1]
            .as_items()
            .unwrap()
            .to_vec();
        let starts: Vec<(Vec<u8>, i64)> = actions
            .iter()
            .map(|a| {
                let f = a.as_items().unwrap();
                (f[0].as_octets().unwrap().to_vec(), f[2].as_i64().unwrap())
            })
            .collect();
        assert_eq!(
            starts,
            [
                (vec![0, 0, 0, 0], 1),
                (vec![6, 0, 0, 0], 2),
                (vec![18, 30, 0, 0], 4)
            ]
        );
    }

    #[test]
    fn wrapped_keys_unwrap_under_the_master_key_only() {
        let kek = [7u8; 16];
        let key = [0x42u8; 16];
        let wrapped = wrap_key(&kek, &key).unwrap();
        assert_eq!(wrapped.len(), 24);
        let unwrap = |k: [u8; 16]| aes_kw::KekAes128::new(&k.into()).unwrap_vec(&wrapped);
        assert_eq!(unwrap(kek).unwrap(), key);
        assert!(unwrap([8u8; 16]).is_err());
    }
}

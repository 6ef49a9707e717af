//! The shared vocabulary of Urja: meter identity and the readings, events and commands that
//! pass between the head-end, the MDM and the engines. No I/O here.
//!
//! Units are in the type's field names. Energy is kept exactly as the meter counted it: integer
//! watt-hours (`_wh`), volt-ampere-hours (`_vah`) and var-hours (`_varh`). Voltages, currents,
//! power factors and power (including maximum demand) are `f64`. Every instant is UTC.

pub mod command;
pub mod message;
pub mod meter;
pub mod money;
pub mod reading;
pub mod signature;

pub use command::{
    CommandId, CommandKind, CommandOutcome, CommandRequest, CommandState, TouCalendar, TouSwitch,
};
pub use message::{Alarm, HesMessage, MissedReason, NetworkChangeKind, OutageState};
pub use meter::{MeterKind, MeterSerial, MeterSerialError, PaymentMode, RelayState};
pub use money::Paise;
pub use reading::{
    BillingReading, DailyReading, Demand, EventCategory, EventKind, InstantaneousReading,
    IntervalReading, MeterEvent, Quality,
};

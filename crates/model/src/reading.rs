//! Readings and events as they come off a meter: block-load intervals, daily snapshots, billing
//! determinants, instantaneous values and logged events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::meter::MeterSerial;

/// A flag on a reading: where it came from and how far it can be trusted. Kept as a list on each
/// reading; an empty list means an actual, valid meter reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// The meter marked its clock invalid when it captured this row.
    ClockInvalid,
    /// The meter marked its clock doubtful (e.g. just after a power failure or a time set).
    ClockDoubtful,
    /// The interval is shorter or longer than the capture period (power failure, clock set).
    PartialInterval,
    /// A value filled in by estimation (VEE), not read from the meter.
    Estimated,
    /// A value changed by an operator or an editing rule.
    Edited,
    /// The reading failed a validation check.
    Suspect,
}

/// Serialises an instant exactly as chrono does (RFC 3339 with `Z` and as many fraction digits
/// as it needs, `to_rfc3339_opts(AutoSi, true)`), but handed to the serializer as one string:
/// chrono's own impl writes it a character at a time through the serializer, which for the
/// JSON of a day of intervals cost more than the rest of each reading.
fn utc_text<S: serde::Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// One block-load (load-survey) interval, IS 15959 profile 1.0.99.1.0.255.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalReading {
    pub meter: MeterSerial,
    /// End of the interval (the profile's clock column), UTC.
    #[serde(serialize_with = "utc_text")]
    pub interval_end: DateTime<Utc>,
    /// Average voltage over the interval (single-phase meters).
    pub avg_voltage_v: Option<f64>,
    /// Average current over the interval (single-phase meters).
    pub avg_current_a: Option<f64>,
    /// Average R, Y, B phase voltages (three-phase meters).
    pub avg_phase_voltage_v: Option<[f64; 3]>,
    /// Average R, Y, B phase currents (three-phase meters).
    pub avg_phase_current_a: Option<[f64; 3]>,
    /// Active energy imported in the interval.
    pub import_wh: i64,
    /// Apparent energy imported in the interval.
    pub import_vah: i64,
    /// Active energy exported in the interval (net-metered meters).
    pub export_wh: Option<i64>,
    /// Apparent energy exported in the interval.
    pub export_vah: Option<i64>,
    pub quality: Vec<Quality>,
}

/// A midnight snapshot of the cumulative registers, IS 15959 daily load profile 1.0.99.2.0.255.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyReading {
    pub meter: MeterSerial,
    /// When the snapshot was taken (normally local midnight), UTC.
    #[serde(serialize_with = "utc_text")]
    pub captured_at: DateTime<Utc>,
    pub import_wh: i64,
    pub import_vah: i64,
    pub export_wh: Option<i64>,
    pub export_vah: Option<i64>,
    pub quality: Vec<Quality>,
}

/// A maximum demand and when it occurred.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Demand {
    /// In W for active demand, VA for apparent demand.
    pub value: f64,
    pub at: Option<DateTime<Utc>>,
}

/// The billing determinants captured at a billing date, IS 15959 billing profile 1.0.98.1.0.255.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingReading {
    pub meter: MeterSerial,
    /// The billing date (the profile's first column), UTC.
    pub billing_date: DateTime<Utc>,
    pub avg_power_factor: Option<f64>,
    /// Cumulative active energy import at the billing date.
    pub import_wh: i64,
    /// Cumulative active energy import per TOD zone; index 0 is zone 1. As many as the meter has.
    pub tod_import_wh: Vec<i64>,
    pub import_vah: i64,
    pub tod_import_vah: Vec<i64>,
    /// Maximum active demand (W) in the billing period.
    pub md_w: Option<Demand>,
    /// Maximum active demand per TOD zone.
    pub tod_md_w: Vec<Demand>,
    /// Maximum apparent demand (VA) in the billing period.
    pub md_va: Option<Demand>,
    pub tod_md_va: Vec<Demand>,
    /// Minutes the meter was powered in the billing period.
    pub power_on_minutes: Option<i64>,
    pub export_wh: Option<i64>,
    pub export_vah: Option<i64>,
    /// Reactive energy in quadrants I–IV (three-phase meters).
    pub reactive_q1_q4_varh: Option<[i64; 4]>,
    pub quality: Vec<Quality>,
}

/// A snapshot of the instantaneous parameters profile, 1.0.94.91.0.255. Fields the meter does
/// not provide are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstantaneousReading {
    pub meter: MeterSerial,
    pub at: Option<DateTime<Utc>>,
    pub voltage_v: Option<f64>,
    pub phase_voltage_v: Option<[f64; 3]>,
    pub current_a: Option<f64>,
    pub phase_current_a: Option<[f64; 3]>,
    pub neutral_current_a: Option<f64>,
    /// Signed power factor (three-phase meters: total).
    pub power_factor: Option<f64>,
    pub phase_power_factor: Option<[f64; 3]>,
    pub frequency_hz: Option<f64>,
    pub apparent_power_va: Option<f64>,
    pub active_power_w: Option<f64>,
    pub import_wh: Option<i64>,
    pub import_vah: Option<i64>,
    pub export_wh: Option<i64>,
    pub export_vah: Option<i64>,
    pub md_w: Option<Demand>,
    pub md_va: Option<Demand>,
    pub power_on_minutes: Option<i64>,
    pub power_off_minutes: Option<i64>,
    pub power_failures: Option<i64>,
    pub tamper_count: Option<i64>,
    pub billing_count: Option<i64>,
    pub programming_count: Option<i64>,
    pub quality: Vec<Quality>,
}

impl InstantaneousReading {
    /// A reading of this meter with every value absent, to fill in.
    pub fn empty(meter: MeterSerial) -> Self {
        InstantaneousReading {
            meter,
            at: None,
            voltage_v: None,
            phase_voltage_v: None,
            current_a: None,
            phase_current_a: None,
            neutral_current_a: None,
            power_factor: None,
            phase_power_factor: None,
            frequency_hz: None,
            apparent_power_va: None,
            active_power_w: None,
            import_wh: None,
            import_vah: None,
            export_wh: None,
            export_vah: None,
            md_w: None,
            md_va: None,
            power_on_minutes: None,
            power_off_minutes: None,
            power_failures: None,
            tamper_count: None,
            billing_count: None,
            programming_count: None,
            quality: Vec::new(),
        }
    }
}

/// The IS 15959 event categories, one event log each (0.0.99.98.0–6.255).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventCategory {
    Voltage,
    Current,
    Power,
    Transaction,
    /// Tamper and other events.
    Other,
    NonRollover,
    Control,
}

impl EventCategory {
    pub const ALL: [EventCategory; 7] = [
        EventCategory::Voltage,
        EventCategory::Current,
        EventCategory::Power,
        EventCategory::Transaction,
        EventCategory::Other,
        EventCategory::NonRollover,
        EventCategory::Control,
    ];

    /// The E group of the category's event log (0.0.99.98.E.255) and current-event register
    /// (0.0.96.11.E.255).
    pub fn log_index(self) -> u8 {
        self as u8
    }

    pub fn from_log_index(e: u8) -> Option<Self> {
        Self::ALL.get(e as usize).copied()
    }
}

/// Whether an event starts a condition, ends one, or just happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Occurrence,
    Restoration,
    /// A one-off event with no pair (e.g. RTC set, MD reset).
    Single,
}

/// One entry of a meter's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeterEvent {
    pub meter: MeterSerial,
    pub at: DateTime<Utc>,
    pub code: u16,
    pub category: EventCategory,
    pub kind: EventKind,
    /// From the event-code table; "unknown event" for a code the table lacks.
    pub description: String,
    pub quality: Vec<Quality>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn instants_serialise_as_chrono_writes_them() {
        for text in [
            "2026-11-25T10:15:00Z",
            "2026-11-25T10:15:00.5Z",
            "2026-11-25T10:15:00.123456789Z",
            "1970-01-01T00:00:00Z",
            "+12026-01-01T00:00:00Z",
        ] {
            let t: DateTime<Utc> = text.parse().unwrap();
            let mut ours = Vec::new();
            utc_text(&t, &mut serde_json::Serializer::new(&mut ours)).unwrap();
            assert_eq!(ours, serde_json::to_vec(&t).unwrap(), "{text}");
        }
    }

    use super::*;

    #[test]
    fn categories_map_to_log_indices() {
        for c in EventCategory::ALL {
            assert_eq!(EventCategory::from_log_index(c.log_index()), Some(c));
        }
        assert_eq!(EventCategory::Power.log_index(), 2);
        assert_eq!(EventCategory::Control.log_index(), 6);
        assert_eq!(EventCategory::from_log_index(7), None);
    }

    #[test]
    fn interval_reading_round_trips_through_json() {
        let r = IntervalReading {
            meter: MeterSerial::new("M1").unwrap(),
            interval_end: DateTime::from_timestamp(1_700_000_100, 0).unwrap(),
            avg_voltage_v: Some(231.5),
            avg_current_a: Some(4.25),
            avg_phase_voltage_v: None,
            avg_phase_current_a: None,
            import_wh: 9_007_199_254_740_993, // beyond f64's exact integers: must survive
            import_vah: 130,
            export_wh: Some(0),
            export_vah: None,
            quality: vec![Quality::ClockDoubtful],
        };
        let json = serde_json::to_string(&r).unwrap();
        let back: IntervalReading = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}

//! What the head-end tells the rest of Urja, named after the use-case table's "info exchanged":
//! readings, events, alarms, outages, clock corrections, command results, network changes and
//! explained gaps. Each message has a key (kind, meter, time) that makes it idempotent: the same
//! key twice is the same fact, and a consumer may ignore the second.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::command::{CommandId, CommandOutcome};
use crate::meter::MeterSerial;
use crate::reading::{
    BillingReading, DailyReading, InstantaneousReading, IntervalReading, MeterEvent,
};

/// One message from the head-end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HesMessage {
    /// Block-load intervals (use cases 1.1, 6.1–6.2, 21.2), in interval-end order.
    BlockLoad {
        meter: MeterSerial,
        intervals: Vec<IntervalReading>,
    },
    /// Daily profile snapshots (1.1–1.2).
    DailyProfile {
        meter: MeterSerial,
        days: Vec<DailyReading>,
    },
    /// Billing profile rows (2.2–2.4).
    BillingProfile {
        meter: MeterSerial,
        readings: Vec<BillingReading>,
    },
    /// Instantaneous values read on demand (21.1).
    Instantaneous {
        meter: MeterSerial,
        reading: Box<InstantaneousReading>,
    },
    /// Entries of the meter's event logs (5.1, 7.1, 9.1).
    Events {
        meter: MeterSerial,
        events: Vec<MeterEvent>,
    },
    /// A push alert as received, before the event log is read (5.1, 7.1, 9.1).
    Alarm(Alarm),
    /// Last gasp or first breath (7.1): the supply at the meter failed or came back.
    Outage {
        meter: MeterSerial,
        state: OutageState,
        at: DateTime<Utc>,
    },
    /// The meter clock was found off by `drift_s` (meter − head-end) and corrected or not (10.1).
    ClockDrift {
        meter: MeterSerial,
        at: DateTime<Utc>,
        drift_s: i64,
        corrected: bool,
    },
    /// Intervals the meter does not have, and why (6.1): a power-off gap, or given up on.
    MissedData {
        meter: MeterSerial,
        profile: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        reason: MissedReason,
    },
    /// A command reached a final state (3.3–3.6, 4.2–4.5, 8.1–8.3, 10.1, 13.5, 14.6).
    CommandResult {
        command: CommandId,
        meter: MeterSerial,
        command_kind: String,
        outcome: CommandOutcome,
    },
    /// First contact of a new meter, or a meter seen at a new address or under a new DCU (11.1).
    NetworkChange {
        meter: MeterSerial,
        at: DateTime<Utc>,
        change: NetworkChangeKind,
    },
}

/// A decoded push alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub meter: MeterSerial,
    /// When the head-end received it.
    pub received_at: DateTime<Utc>,
    /// The meter's time in the notification, when it sent one.
    pub meter_time: Option<DateTime<Utc>>,
    /// Names of the event status word bits that are set (IS 15959 ESW table).
    pub esw_bits: Vec<String>,
    /// The ESW bit numbers that are set.
    pub esw_indices: Vec<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageState {
    /// Last gasp / power-fail start.
    Started,
    /// First breath / power restored.
    Restored,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum MissedReason {
    /// The meter was without supply from `from` to `to` and recorded no intervals.
    PowerOff {
        off_from: DateTime<Utc>,
        off_to: DateTime<Utc>,
    },
    /// Re-read `attempts` times without the meter returning the intervals.
    GaveUp { attempts: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum NetworkChangeKind {
    /// First contact / first registration.
    New {
        address: String,
        dcu: Option<String>,
    },
    /// Reached at a new address or under a new DCU.
    Moved {
        from_address: String,
        to_address: String,
        from_dcu: Option<String>,
        to_dcu: Option<String>,
    },
}

impl HesMessage {
    /// The message kind, a bus subject: "block_load", "daily_profile", …
    pub fn kind(&self) -> &'static str {
        match self {
            HesMessage::BlockLoad { .. } => "block_load",
            HesMessage::DailyProfile { .. } => "daily_profile",
            HesMessage::BillingProfile { .. } => "billing_profile",
            HesMessage::Instantaneous { .. } => "instantaneous",
            HesMessage::Events { .. } => "events",
            HesMessage::Alarm(_) => "alarm",
            HesMessage::Outage { .. } => "outage",
            HesMessage::ClockDrift { .. } => "clock_drift",
            HesMessage::MissedData { .. } => "missed_data",
            HesMessage::CommandResult { .. } => "command_result",
            HesMessage::NetworkChange { .. } => "network_change",
        }
    }

    pub fn meter(&self) -> &MeterSerial {
        match self {
            HesMessage::BlockLoad { meter, .. }
            | HesMessage::DailyProfile { meter, .. }
            | HesMessage::BillingProfile { meter, .. }
            | HesMessage::Instantaneous { meter, .. }
            | HesMessage::Events { meter, .. }
            | HesMessage::Outage { meter, .. }
            | HesMessage::ClockDrift { meter, .. }
            | HesMessage::MissedData { meter, .. }
            | HesMessage::CommandResult { meter, .. }
            | HesMessage::NetworkChange { meter, .. } => meter,
            HesMessage::Alarm(a) => &a.meter,
        }
    }

    /// The idempotency key: `kind/meter/time[..time]` (times in RFC 3339 UTC). Two messages with
    /// the same key carry the same fact.
    pub fn key(&self) -> String {
        let t = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let span = |first: Option<&DateTime<Utc>>, last: Option<&DateTime<Utc>>| match (first, last)
        {
            (Some(a), Some(b)) if a != b => format!("{}..{}", t(a), t(b)),
            (Some(a), _) => t(a),
            _ => "empty".to_string(),
        };
        let when = match self {
            HesMessage::BlockLoad { intervals, .. } => span(
                intervals.first().map(|r| &r.interval_end),
                intervals.last().map(|r| &r.interval_end),
            ),
            HesMessage::DailyProfile { days, .. } => span(
                days.first().map(|r| &r.captured_at),
                days.last().map(|r| &r.captured_at),
            ),
            HesMessage::BillingProfile { readings, .. } => span(
                readings.first().map(|r| &r.billing_date),
                readings.last().map(|r| &r.billing_date),
            ),
            HesMessage::Instantaneous { reading, .. } => {
                reading.at.as_ref().map_or("unknown-time".into(), t)
            }
            HesMessage::Events { events, .. } => format!(
                "{}#{}#{:016x}",
                span(events.first().map(|e| &e.at), events.last().map(|e| &e.at)),
                events.len(),
                fingerprint(events.iter().map(|e| (e.at.timestamp_millis(), e.code)))
            ),
            HesMessage::Alarm(a) => format!(
                "{}#{}",
                t(a.meter_time.as_ref().unwrap_or(&a.received_at)),
                a.esw_indices
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            HesMessage::Outage { state, at, .. } => format!("{}#{state:?}", t(at)),
            HesMessage::ClockDrift { at, .. } => t(at),
            HesMessage::MissedData {
                profile, from, to, ..
            } => {
                format!("{profile}#{}", span(Some(from), Some(to)))
            }
            HesMessage::CommandResult { command, .. } => command.0.clone(),
            HesMessage::NetworkChange { at, change, .. } => match change {
                NetworkChangeKind::New { address, .. } => format!("{}#new@{address}", t(at)),
                NetworkChangeKind::Moved { to_address, .. } => {
                    format!("{}#moved@{to_address}", t(at))
                }
            },
        };
        format!("{}/{}/{}", self.kind(), self.meter(), when)
    }
}

/// FNV-1a over (time, code) pairs: tells apart two event batches that share their first and
/// last times and their length.
fn fingerprint(items: impl Iterator<Item = (i64, u16)>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (t, code) in items {
        for b in t.to_be_bytes().into_iter().chain(code.to_be_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::{EventCategory, EventKind, MeterEvent};
    use chrono::TimeZone;

    fn event(code: u16) -> MeterEvent {
        MeterEvent {
            meter: MeterSerial::new("M1").unwrap(),
            at: Utc.with_ymd_and_hms(2026, 11, 26, 4, 0, 0).unwrap(),
            code,
            category: EventCategory::Other,
            kind: EventKind::Occurrence,
            description: String::new(),
            quality: Vec::new(),
        }
    }

    #[test]
    fn event_batches_at_the_same_second_have_different_keys() {
        let batch = |code| HesMessage::Events {
            meter: MeterSerial::new("M1").unwrap(),
            events: vec![event(code)],
        };
        assert_ne!(batch(251).key(), batch(201).key());
        assert_eq!(batch(251).key(), batch(251).key());
    }
}

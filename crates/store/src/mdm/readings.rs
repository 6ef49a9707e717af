//! Readings, events, exceptions, VEE state and routed messages: the write of one ingest batch
//! and the queries the MDM and its API make.

use chrono::{DateTime, Utc};
use model::{
    BillingReading, DailyReading, EventCategory, EventKind, InstantaneousReading, IntervalReading,
    MeterEvent, MeterSerial, Quality,
};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use crate::{Result, Store, StoreError, from_ms, ms, narrow, serial};

/// The bit of each quality flag in the `quality` columns.
const QUALITY_BITS: [(Quality, i64); 6] = [
    (Quality::ClockInvalid, 1),
    (Quality::ClockDoubtful, 2),
    (Quality::PartialInterval, 4),
    (Quality::Estimated, 8),
    (Quality::Edited, 16),
    (Quality::Suspect, 32),
];

/// Quality flags as stored.
pub fn quality_bits(flags: &[Quality]) -> i64 {
    QUALITY_BITS
        .iter()
        .filter(|(q, _)| flags.contains(q))
        .fold(0, |bits, (_, b)| bits | b)
}

/// Stored quality bits back to flags (unknown bits are ignored).
pub fn quality_from_bits(bits: i64) -> Vec<Quality> {
    QUALITY_BITS
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(q, _)| *q)
        .collect()
}

/// An interval as stored: the reading in force, its version and how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInterval {
    pub reading: IntervalReading,
    /// 1 for the first value; each replacement adds one.
    pub version: u32,
    /// The estimation method, or "edit"; `None` for a meter reading.
    pub method: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// Who edited an interval, and why: the version the edit created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntervalEditRecord {
    pub version: u32,
    pub edited_by: String,
    pub reason: String,
    pub edited_at: DateTime<Utc>,
}

/// One change to the interval data. What is in force when the write runs decides, inside the
/// write's transaction (so a writer that read before another wrote cannot lose a reading):
/// - an estimate never replaces anything but nothing (it is dropped if a value came first);
/// - an actual or edited value replaces an estimate in force (which moves to the history);
/// - an actual that differs from an actual or edited value in force is kept whole in
///   `interval_overlap`, not in force, and queued as an `overlap` exception; the same values
///   again change nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum IntervalWrite {
    /// A value for an interval end the writer saw empty.
    New {
        reading: IntervalReading,
        method: Option<String>,
    },
    /// A value replacing the stored `version` the writer saw (which moves to the history).
    Replace {
        reading: IntervalReading,
        method: Option<String>,
        version: u32,
    },
}

/// An event with the severity the MDM's catalogue gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub event: MeterEvent,
    /// The MDM's class (tamper, outage, load_violation, …).
    pub class: String,
    pub severity: String,
}

/// A failed validation in the exception queue.
#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionRow {
    pub meter: MeterSerial,
    pub rule: String,
    /// First and last interval end (or capture time) concerned.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub severity: String,
    pub detail: String,
    pub state: ExceptionState,
    pub created_at: DateTime<Utc>,
    pub closed_by: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionState {
    Open,
    Resolved,
    Dismissed,
}

impl ExceptionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionState::Open => "open",
            ExceptionState::Resolved => "resolved",
            ExceptionState::Dismissed => "dismissed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "open" => Ok(ExceptionState::Open),
            "resolved" => Ok(ExceptionState::Resolved),
            "dismissed" => Ok(ExceptionState::Dismissed),
            other => Err(StoreError::Corrupt(format!("exception state {other}"))),
        }
    }
}

/// A message for another part (site inspection, OMS, billing), idempotent by key.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedMessage {
    pub key: String,
    pub meter: MeterSerial,
    pub destination: String,
    /// JSON.
    pub payload: String,
}

/// Intervals the head-end reports missing, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct MissedRow {
    pub meter: MeterSerial,
    pub profile: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// "power_off" or "gave_up".
    pub reason: String,
    /// JSON of the reason's details.
    pub detail: String,
}

/// A push alert or an outage seen at once.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    pub meter: MeterSerial,
    pub at: DateTime<Utc>,
    /// "alarm", "outage_started", "outage_restored", "clock_drift".
    pub kind: String,
    /// JSON.
    pub detail: String,
}

/// The final result of a command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResultRow {
    pub meter: MeterSerial,
    pub command: String,
    pub command_kind: String,
    /// JSON of the outcome.
    pub outcome: String,
}

/// A message that could not be taken in, kept whole.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub key: String,
    pub kind: String,
    pub meter: MeterSerial,
    pub payload: String,
    pub error: String,
}

/// What one meter delivered for one day (for data completeness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterDayCounts {
    pub meter: MeterSerial,
    /// Actual (not estimated) intervals ending in the day.
    pub actual: u32,
    /// Of those, received by the deadline.
    pub actual_on_time: u32,
    /// Estimated intervals ending in the day.
    pub estimated: u32,
    /// The meter's capture period as its data showed it, seconds (`None`: not known yet).
    pub period_s: Option<i64>,
    /// When the midnight snapshot closing the day was received, if it was.
    pub daily_received: Option<DateTime<Utc>>,
}

/// A routed notice as stored, with its place in the order they were written.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeRow {
    pub seq: i64,
    pub message: RoutedMessage,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Everything one ingest batch changes; [`Store::mdm_write`] writes it in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestWrite {
    pub intervals: Vec<IntervalWrite>,
    pub daily: Vec<DailyReading>,
    pub billing: Vec<BillingReading>,
    pub instantaneous: Vec<InstantaneousReading>,
    pub events: Vec<EventRow>,
    /// New findings (their state and closing fields are ignored: they go in open).
    pub exceptions: Vec<ExceptionRow>,
    /// VEE state per meter (JSON), replacing what was stored.
    pub vee_states: Vec<(MeterSerial, String)>,
    pub routed: Vec<RoutedMessage>,
    pub missed: Vec<MissedRow>,
    pub alarms: Vec<AlarmRow>,
    pub command_results: Vec<CommandResultRow>,
    pub dead_letters: Vec<DeadLetter>,
    /// Meters seen under a DCU (network changes), from when.
    pub dcu_links: Vec<(MeterSerial, String, DateTime<Utc>)>,
    /// Meters whose capture period (seconds) their data shows is new or changed.
    pub capture_periods: Vec<(MeterSerial, i64)>,
    /// Meters seen losing or regaining supply, for the outage desk.
    pub power: Vec<crate::outages::PowerObservation>,
}

impl IngestCounts {
    /// Adds another write's counts (for running totals).
    pub fn add(&mut self, other: &IngestCounts) {
        self.intervals_new += other.intervals_new;
        self.intervals_replaced += other.intervals_replaced;
        self.conflicts += other.conflicts;
        self.overlaps += other.overlaps;
        self.daily += other.daily;
        self.billing += other.billing;
        self.instantaneous += other.instantaneous;
        self.events += other.events;
        self.exceptions += other.exceptions;
        self.routed += other.routed;
        self.missed += other.missed;
        self.alarms += other.alarms;
        self.command_results += other.command_results;
        self.dead_letters += other.dead_letters;
        self.dcu_links += other.dcu_links;
        self.power += other.power;
    }
}

impl IngestWrite {
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
            && self.daily.is_empty()
            && self.billing.is_empty()
            && self.instantaneous.is_empty()
            && self.events.is_empty()
            && self.exceptions.is_empty()
            && self.vee_states.is_empty()
            && self.routed.is_empty()
            && self.missed.is_empty()
            && self.alarms.is_empty()
            && self.command_results.is_empty()
            && self.dead_letters.is_empty()
            && self.dcu_links.is_empty()
            && self.capture_periods.is_empty()
            && self.power.is_empty()
    }
}

/// What a write changed (rows that were there already are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestCounts {
    pub intervals_new: u64,
    pub intervals_replaced: u64,
    /// Writes that found another value in force than the writer saw, and were decided again:
    /// an estimate dropped, or an actual replacing an estimate or kept as an overlap.
    pub conflicts: u64,
    /// Second, different actual readings kept out of force (and queued).
    pub overlaps: u64,
    pub daily: u64,
    pub billing: u64,
    pub instantaneous: u64,
    pub events: u64,
    pub exceptions: u64,
    pub routed: u64,
    pub missed: u64,
    pub alarms: u64,
    pub command_results: u64,
    pub dead_letters: u64,
    pub dcu_links: u64,
    /// New power-off and power-on observations.
    pub power: u64,
}

const INTERVAL_COLUMNS: &str = "meter, interval_end, version, import_wh, import_vah, export_wh, \
     export_vah, voltage_v, current_a, voltage_r_v, voltage_y_v, voltage_b_v, current_r_a, \
     current_y_a, current_b_a, quality, method, received_at";

fn phase(v: Option<[f64; 3]>, i: usize) -> Option<f64> {
    v.map(|p| p[i])
}

fn phases(r: &Row<'_>, first: usize) -> rusqlite::Result<Option<[f64; 3]>> {
    let (a, b, c): (Option<f64>, Option<f64>, Option<f64>) =
        (r.get(first)?, r.get(first + 1)?, r.get(first + 2)?);
    Ok(match (a, b, c) {
        (Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    })
}

/// A row of `INTERVAL_COLUMNS` (from either interval table).
fn stored_interval(r: &Row<'_>) -> Result<StoredInterval> {
    let version: i64 = r.get(2)?;
    Ok(StoredInterval {
        reading: IntervalReading {
            meter: serial(r.get(0)?)?,
            interval_end: from_ms(r.get(1)?)?,
            import_wh: r.get(3)?,
            import_vah: r.get(4)?,
            export_wh: r.get(5)?,
            export_vah: r.get(6)?,
            avg_voltage_v: r.get(7)?,
            avg_current_a: r.get(8)?,
            avg_phase_voltage_v: phases(r, 9)?,
            avg_phase_current_a: phases(r, 12)?,
            quality: quality_from_bits(r.get(15)?),
        },
        version: narrow(version, "interval version")?,
        method: r.get(16)?,
        received_at: from_ms(r.get(17)?)?,
    })
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(format!("not serialisable: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn category_name(c: EventCategory) -> &'static str {
    match c {
        EventCategory::Voltage => "voltage",
        EventCategory::Current => "current",
        EventCategory::Power => "power",
        EventCategory::Transaction => "transaction",
        EventCategory::Other => "other",
        EventCategory::NonRollover => "non_rollover",
        EventCategory::Control => "control",
    }
}

fn kind_name(k: EventKind) -> &'static str {
    match k {
        EventKind::Occurrence => "occurrence",
        EventKind::Restoration => "restoration",
        EventKind::Single => "single",
    }
}

fn parse_category(s: &str) -> Result<EventCategory> {
    EventCategory::ALL
        .into_iter()
        .find(|c| category_name(*c) == s)
        .ok_or_else(|| StoreError::Corrupt(format!("event category {s}")))
}

fn parse_kind(s: &str) -> Result<EventKind> {
    [
        EventKind::Occurrence,
        EventKind::Restoration,
        EventKind::Single,
    ]
    .into_iter()
    .find(|k| kind_name(*k) == s)
    .ok_or_else(|| StoreError::Corrupt(format!("event kind {s}")))
}

/// The values of `INTERVAL_COLUMNS` for one interval row.
fn interval_values(
    r: &IntervalReading,
    method: Option<&str>,
    version: u32,
    received_ms: i64,
) -> [rusqlite::types::Value; 18] {
    use rusqlite::types::Value;
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let real = |v: Option<f64>| v.map_or(Value::Null, Value::Real);
    [
        Value::Text(r.meter.as_str().to_string()),
        Value::Integer(ms(r.interval_end)),
        Value::Integer(i64::from(version)),
        Value::Integer(r.import_wh),
        Value::Integer(r.import_vah),
        int(r.export_wh),
        int(r.export_vah),
        real(r.avg_voltage_v),
        real(r.avg_current_a),
        real(phase(r.avg_phase_voltage_v, 0)),
        real(phase(r.avg_phase_voltage_v, 1)),
        real(phase(r.avg_phase_voltage_v, 2)),
        real(phase(r.avg_phase_current_a, 0)),
        real(phase(r.avg_phase_current_a, 1)),
        real(phase(r.avg_phase_current_a, 2)),
        Value::Integer(quality_bits(&r.quality)),
        method.map_or(Value::Null, |m| Value::Text(m.to_string())),
        Value::Integer(received_ms),
    ]
}

/// The interval in force for `reading`'s meter and end, read inside the transaction.
fn in_force(tx: &Transaction<'_>, reading: &IntervalReading) -> Result<Option<StoredInterval>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {INTERVAL_COLUMNS} FROM interval_reading WHERE meter = ?1 AND interval_end = ?2"
    ))?;
    let mut rows = stmt.query(params![reading.meter.as_str(), ms(reading.interval_end)])?;
    match rows.next()? {
        Some(r) => Ok(Some(stored_interval(r)?)),
        None => Ok(None),
    }
}

/// Whether two readings of one interval carry the same measured values (quality aside; values
/// as stored, where a non-finite float is NULL).
pub fn same_measurement(a: &IntervalReading, b: &IntervalReading) -> bool {
    let f = |x: Option<f64>| x.filter(|v| v.is_finite()).map(f64::to_bits);
    let p = |x: Option<[f64; 3]>| x.map(|v| v.map(|c| f(Some(c))));
    a.import_wh == b.import_wh
        && a.import_vah == b.import_vah
        && a.export_wh == b.export_wh
        && a.export_vah == b.export_vah
        && f(a.avg_voltage_v) == f(b.avg_voltage_v)
        && f(a.avg_current_a) == f(b.avg_current_a)
        && p(a.avg_phase_voltage_v) == p(b.avg_phase_voltage_v)
        && p(a.avg_phase_current_a) == p(b.avg_phase_current_a)
}

/// Keeps a second, different actual reading whole, out of force, and queues an `overlap`
/// exception for the interval. Returns 1 if it was new.
fn keep_overlap(
    tx: &Transaction<'_>,
    incoming: &IntervalReading,
    kept: &IntervalReading,
    now_ms: i64,
) -> Result<u64> {
    let added = tx
        .prepare_cached(
            "INSERT INTO interval_overlap (meter, interval_end, import_wh, import_vah, export_wh, \
             export_vah, voltage_v, current_a, voltage_r_v, voltage_y_v, voltage_b_v, \
             current_r_a, current_y_a, current_b_a, quality, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
             ON CONFLICT (meter, interval_end, import_wh, import_vah) DO NOTHING",
        )?
        .execute(params![
            incoming.meter.as_str(),
            ms(incoming.interval_end),
            incoming.import_wh,
            incoming.import_vah,
            incoming.export_wh,
            incoming.export_vah,
            incoming.avg_voltage_v,
            incoming.avg_current_a,
            phase(incoming.avg_phase_voltage_v, 0),
            phase(incoming.avg_phase_voltage_v, 1),
            phase(incoming.avg_phase_voltage_v, 2),
            phase(incoming.avg_phase_current_a, 0),
            phase(incoming.avg_phase_current_a, 1),
            phase(incoming.avg_phase_current_a, 2),
            quality_bits(&incoming.quality),
            now_ms
        ])?;
    tx.prepare_cached(
        "INSERT INTO vee_exception (meter, rule, from_end, to_end, severity, detail, state, \
         created_at) VALUES (?1, 'overlap', ?2, ?2, 'warning', ?3, 'open', ?4) \
         ON CONFLICT (meter, rule, from_end, to_end) DO NOTHING",
    )?
    .execute(params![
        incoming.meter.as_str(),
        ms(incoming.interval_end),
        format!(
            "a second reading of this interval ({} Wh, {} VAh) differs from the one in force \
             ({} Wh, {} VAh); it is kept, not in force",
            incoming.import_wh, incoming.import_vah, kept.import_wh, kept.import_vah
        ),
        now_ms
    ])?;
    Ok(added as u64)
}

/// Queues a `register_overlap` exception: a second, different register reading (midnight
/// snapshot or billing row) for a time that has one; the first is kept.
fn queue_register_overlap(
    tx: &Transaction<'_>,
    meter: &MeterSerial,
    at: DateTime<Utc>,
    detail: String,
    now_ms: i64,
) -> Result<u64> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO vee_exception (meter, rule, from_end, to_end, severity, detail, state, \
             created_at) VALUES (?1, 'register_overlap', ?2, ?2, 'warning', ?3, 'open', ?4) \
             ON CONFLICT (meter, rule, from_end, to_end) DO NOTHING",
        )?
        .execute(params![meter.as_str(), ms(at), detail, now_ms])? as u64)
}

/// The writes of one batch inside the caller's transaction.
fn write_batch(tx: &Transaction<'_>, w: &IngestWrite, now: DateTime<Utc>) -> Result<IngestCounts> {
    let now_ms = ms(now);
    let mut counts = IngestCounts::default();
    {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO interval_reading ({INTERVAL_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
             ?17, ?18) ON CONFLICT (meter, interval_end) DO NOTHING"
        ))?;
        let mut archive = tx.prepare_cached(&format!(
            "INSERT INTO interval_history ({INTERVAL_COLUMNS}, replaced_at) \
             SELECT {INTERVAL_COLUMNS}, ?3 FROM interval_reading \
             WHERE meter = ?1 AND interval_end = ?2 AND version = ?4"
        ))?;
        let mut replace = tx.prepare_cached(
            "UPDATE interval_reading SET version = version + 1, import_wh = ?4, \
             import_vah = ?5, export_wh = ?6, export_vah = ?7, voltage_v = ?8, \
             current_a = ?9, voltage_r_v = ?10, voltage_y_v = ?11, voltage_b_v = ?12, \
             current_r_a = ?13, current_y_a = ?14, current_b_a = ?15, quality = ?16, \
             method = ?17, received_at = ?18 \
             WHERE meter = ?1 AND interval_end = ?2 AND version = ?3",
        )?;
        for write in &w.intervals {
            let (reading, method, version) = match write {
                IntervalWrite::New { reading, method } => (reading, method, None),
                IntervalWrite::Replace {
                    reading,
                    method,
                    version,
                } => (reading, method, Some(*version)),
            };
            let values =
                |version: u32| interval_values(reading, method.as_deref(), version, now_ms);
            let mut replace_at = |version: u32| -> Result<bool> {
                archive.execute(params![
                    reading.meter.as_str(),
                    ms(reading.interval_end),
                    now_ms,
                    version
                ])?;
                Ok(replace.execute(rusqlite::params_from_iter(values(version)))? == 1)
            };
            let done = match version {
                None => insert.execute(rusqlite::params_from_iter(values(1)))? == 1,
                Some(v) => replace_at(v)?,
            };
            if done {
                match version {
                    None => counts.intervals_new += 1,
                    Some(_) => counts.intervals_replaced += 1,
                }
                continue;
            }
            // Something else is in force than the writer saw: decide again on what is there.
            counts.conflicts += 1;
            let Some(current) = in_force(tx, reading)? else {
                continue;
            };
            let incoming_estimate = reading.quality.contains(&Quality::Estimated);
            let current_estimate = current.reading.quality.contains(&Quality::Estimated)
                && !current.reading.quality.contains(&Quality::Edited);
            if incoming_estimate {
                // A value came first: the estimate is not needed.
            } else if current_estimate {
                if replace_at(current.version)? {
                    counts.intervals_replaced += 1;
                }
            } else if !same_measurement(&current.reading, reading) {
                counts.overlaps += keep_overlap(tx, reading, &current.reading, now_ms)?;
            }
        }
    }
    {
        let mut daily = tx.prepare_cached(
            "INSERT INTO daily_reading (meter, captured_at, import_wh, import_vah, export_wh, \
             export_vah, quality, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (meter, captured_at) DO NOTHING",
        )?;
        for d in &w.daily {
            let added = daily.execute(params![
                d.meter.as_str(),
                ms(d.captured_at),
                d.import_wh,
                d.import_vah,
                d.export_wh,
                d.export_vah,
                quality_bits(&d.quality),
                now_ms
            ])?;
            counts.daily += added as u64;
            if added == 0 {
                let kept: (i64, i64, Option<i64>, Option<i64>) = tx.query_row(
                    "SELECT import_wh, import_vah, export_wh, export_vah FROM daily_reading \
                     WHERE meter = ?1 AND captured_at = ?2",
                    params![d.meter.as_str(), ms(d.captured_at)],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
                if kept != (d.import_wh, d.import_vah, d.export_wh, d.export_vah) {
                    counts.exceptions += queue_register_overlap(
                        tx,
                        &d.meter,
                        d.captured_at,
                        format!(
                            "a second midnight snapshot ({} Wh, {} VAh) differs from the one kept \
                             ({} Wh, {} VAh)",
                            d.import_wh, d.import_vah, kept.0, kept.1
                        ),
                        now_ms,
                    )?;
                }
            }
        }
        let mut billing = tx.prepare_cached(
            "INSERT INTO billing_reading (meter, billing_date, reading, received_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (meter, billing_date) DO NOTHING",
        )?;
        for b in &w.billing {
            let text = json(b)?;
            let added =
                billing.execute(params![b.meter.as_str(), ms(b.billing_date), text, now_ms])?;
            counts.billing += added as u64;
            if added == 0 {
                let kept: String = tx.query_row(
                    "SELECT reading FROM billing_reading WHERE meter = ?1 AND billing_date = ?2",
                    params![b.meter.as_str(), ms(b.billing_date)],
                    |r| r.get(0),
                )?;
                if kept != text {
                    counts.exceptions += queue_register_overlap(
                        tx,
                        &b.meter,
                        b.billing_date,
                        format!(
                            "a second billing row for this billing date ({} Wh) differs from the \
                             one kept",
                            b.import_wh
                        ),
                        now_ms,
                    )?;
                }
            }
        }
        let mut instantaneous = tx.prepare_cached(
            "INSERT INTO instantaneous_reading (meter, at, reading, received_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (meter, at) DO NOTHING",
        )?;
        for i in &w.instantaneous {
            counts.instantaneous += instantaneous.execute(params![
                i.meter.as_str(),
                ms(i.at.unwrap_or(now)),
                json(i)?,
                now_ms
            ])? as u64;
        }
        let mut event = tx.prepare_cached(
            "INSERT INTO meter_event (meter, at, code, category, kind, class, severity, \
             description, quality, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
             ?10) ON CONFLICT (meter, at, code) DO NOTHING",
        )?;
        for e in &w.events {
            let ev = &e.event;
            counts.events += event.execute(params![
                ev.meter.as_str(),
                ms(ev.at),
                ev.code,
                category_name(ev.category),
                kind_name(ev.kind),
                e.class,
                e.severity,
                ev.description,
                quality_bits(&ev.quality),
                now_ms
            ])? as u64;
        }
        let mut exception = tx.prepare_cached(
            "INSERT INTO vee_exception (meter, rule, from_end, to_end, severity, detail, \
             state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7) \
             ON CONFLICT (meter, rule, from_end, to_end) DO NOTHING",
        )?;
        for x in &w.exceptions {
            counts.exceptions += exception.execute(params![
                x.meter.as_str(),
                x.rule,
                ms(x.from),
                ms(x.to),
                x.severity,
                x.detail,
                now_ms
            ])? as u64;
        }
        let mut state = tx.prepare_cached(
            "INSERT INTO vee_state (meter, state, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (meter) DO UPDATE SET state = excluded.state, \
             updated_at = excluded.updated_at",
        )?;
        for (meter, s) in &w.vee_states {
            state.execute(params![meter.as_str(), s, now_ms])?;
        }
        let mut routed = tx.prepare_cached(
            "INSERT INTO routed_message (key, meter, destination, payload, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO NOTHING",
        )?;
        for m in &w.routed {
            counts.routed += routed.execute(params![
                m.key,
                m.meter.as_str(),
                m.destination,
                m.payload,
                now_ms
            ])? as u64;
        }
    }
    let mut missed = tx.prepare_cached(
        "INSERT INTO missed_interval (meter, profile, from_end, to_end, reason, detail, \
         received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (meter, profile, from_end, to_end) DO NOTHING",
    )?;
    for m in &w.missed {
        counts.missed += missed.execute(params![
            m.meter.as_str(),
            m.profile,
            ms(m.from),
            ms(m.to),
            m.reason,
            m.detail,
            now_ms
        ])? as u64;
    }
    let mut alarm = tx.prepare_cached(
        "INSERT INTO alarm (meter, at, kind, detail, received_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (meter, at, kind) DO NOTHING",
    )?;
    for a in &w.alarms {
        counts.alarms += alarm.execute(params![
            a.meter.as_str(),
            ms(a.at),
            a.kind,
            a.detail,
            now_ms
        ])? as u64;
    }
    let mut result = tx.prepare_cached(
        "INSERT INTO command_result (meter, command, command_kind, outcome, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (meter, command) DO NOTHING",
    )?;
    for r in &w.command_results {
        counts.command_results += result.execute(params![
            r.meter.as_str(),
            r.command,
            r.command_kind,
            r.outcome,
            now_ms
        ])? as u64;
    }
    let mut dead = tx.prepare_cached(
        "INSERT INTO dead_letter (key, kind, meter, payload, error, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key) DO NOTHING",
    )?;
    for d in &w.dead_letters {
        counts.dead_letters += dead.execute(params![
            d.key,
            d.kind,
            d.meter.as_str(),
            d.payload,
            d.error,
            now_ms
        ])? as u64;
    }
    for (meter, period) in &w.capture_periods {
        tx.prepare_cached(
            "INSERT INTO meter_capture (meter, period_s, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (meter) DO UPDATE SET period_s = excluded.period_s, \
             updated_at = excluded.updated_at",
        )?
        .execute(params![meter.as_str(), period, now_ms])?;
    }
    for (meter, dcu, at) in &w.dcu_links {
        counts.dcu_links += u64::from(super::network::link_meter_to_dcu(tx, meter, dcu, *at)?);
    }
    counts.power = crate::outages::observe(tx, &w.power, now_ms)?;
    Ok(counts)
}

impl Store {
    /// Intervals of `meter` with ends in `[from, to]`, oldest first.
    pub fn mdm_intervals(
        &self,
        meter: &MeterSerial,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredInterval>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {INTERVAL_COLUMNS} FROM interval_reading \
             WHERE meter = ?1 AND interval_end BETWEEN ?2 AND ?3 ORDER BY interval_end"
        ))?;
        let mut rows = stmt.query(params![meter.as_str(), ms(from), ms(to)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(stored_interval(r)?);
        }
        Ok(out)
    }

    /// The replaced versions of one interval, oldest first.
    pub fn mdm_interval_history(
        &self,
        meter: &MeterSerial,
        interval_end: DateTime<Utc>,
    ) -> Result<Vec<StoredInterval>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {INTERVAL_COLUMNS} FROM interval_history \
             WHERE meter = ?1 AND interval_end = ?2 ORDER BY version"
        ))?;
        let mut rows = stmt.query(params![meter.as_str(), ms(interval_end)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(stored_interval(r)?);
        }
        Ok(out)
    }

    /// Readings of one interval kept out of force because a different one was in force.
    pub fn mdm_interval_overlaps(
        &self,
        meter: &MeterSerial,
        interval_end: DateTime<Utc>,
    ) -> Result<Vec<(IntervalReading, DateTime<Utc>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT meter, interval_end, 0, import_wh, import_vah, export_wh, export_vah, \
             voltage_v, current_a, voltage_r_v, voltage_y_v, voltage_b_v, current_r_a, \
             current_y_a, current_b_a, quality, NULL, received_at FROM interval_overlap \
             WHERE meter = ?1 AND interval_end = ?2 ORDER BY received_at, import_wh",
        )?;
        let mut rows = stmt.query(params![meter.as_str(), ms(interval_end)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let s = stored_interval(r)?;
            out.push((s.reading, s.received_at));
        }
        Ok(out)
    }

    /// `meter`'s capture period as its data showed it, seconds.
    pub fn mdm_capture_period(&self, meter: &MeterSerial) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT period_s FROM meter_capture WHERE meter = ?1")?
            .query_row(params![meter.as_str()], |r| r.get(0))
            .optional()?)
    }

    /// The edits of one interval (who, why, when), oldest first.
    pub fn mdm_interval_edits(
        &self,
        meter: &MeterSerial,
        interval_end: DateTime<Utc>,
    ) -> Result<Vec<IntervalEditRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT version, edited_by, reason, edited_at FROM interval_edit \
             WHERE meter = ?1 AND interval_end = ?2 ORDER BY version",
        )?;
        let mut rows = stmt.query(params![meter.as_str(), ms(interval_end)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(IntervalEditRecord {
                version: narrow(r.get(0)?, "interval version")?,
                edited_by: r.get(1)?,
                reason: r.get(2)?,
                edited_at: from_ms(r.get(3)?)?,
            });
        }
        Ok(out)
    }

    /// Writes one ingest batch in one transaction, at `now`.
    pub fn mdm_write(&self, w: &IngestWrite, now: DateTime<Utc>) -> Result<IngestCounts> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let counts = write_batch(&tx, w, now)?;
        tx.commit()?;
        Ok(counts)
    }

    /// Replaces interval `version` of `reading`'s meter and end with `reading` (an edit by a
    /// person) and records who and why, in one transaction. Returns the new version.
    pub fn mdm_edit_interval(
        &self,
        reading: &IntervalReading,
        version: u32,
        edited_by: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u32> {
        let write = IngestWrite {
            intervals: vec![IntervalWrite::Replace {
                reading: reading.clone(),
                method: Some("edit".into()),
                version,
            }],
            ..IngestWrite::default()
        };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let counts = write_batch(&tx, &write, now)?;
        if counts.intervals_replaced != 1 {
            return Err(StoreError::Conflict(format!(
                "interval {} of {} is no longer at version {version}",
                reading.interval_end, reading.meter
            )));
        }
        let new_version = version + 1;
        tx.execute(
            "INSERT INTO interval_edit (meter, interval_end, version, edited_by, reason, \
             edited_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                reading.meter.as_str(),
                ms(reading.interval_end),
                new_version,
                edited_by,
                reason,
                ms(now)
            ],
        )?;
        tx.commit()?;
        Ok(new_version)
    }

    /// Daily snapshots of `meter` captured in `[from, to]`, oldest first.
    pub fn mdm_daily(
        &self,
        meter: &MeterSerial,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DailyReading>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT captured_at, import_wh, import_vah, export_wh, export_vah, quality \
             FROM daily_reading WHERE meter = ?1 AND captured_at BETWEEN ?2 AND ?3 \
             ORDER BY captured_at",
        )?;
        let mut rows = stmt.query(params![meter.as_str(), ms(from), ms(to)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(DailyReading {
                meter: meter.clone(),
                captured_at: from_ms(r.get(0)?)?,
                import_wh: r.get(1)?,
                import_vah: r.get(2)?,
                export_wh: r.get(3)?,
                export_vah: r.get(4)?,
                quality: quality_from_bits(r.get(5)?),
            });
        }
        Ok(out)
    }

    /// Billing rows of `meter` with billing dates in `[from, to]`, oldest first.
    pub fn mdm_billing(
        &self,
        meter: &MeterSerial,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<BillingReading>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT reading FROM billing_reading WHERE meter = ?1 \
             AND billing_date BETWEEN ?2 AND ?3 ORDER BY billing_date",
        )?;
        let mut rows = stmt.query(params![meter.as_str(), ms(from), ms(to)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(from_json(&r.get::<_, String>(0)?, "billing reading")?);
        }
        Ok(out)
    }

    /// The latest instantaneous snapshot of `meter`.
    pub fn mdm_latest_instantaneous(
        &self,
        meter: &MeterSerial,
    ) -> Result<Option<InstantaneousReading>> {
        let conn = self.conn();
        let json: Option<String> = conn
            .query_row(
                "SELECT reading FROM instantaneous_reading WHERE meter = ?1 \
                 ORDER BY at DESC LIMIT 1",
                params![meter.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|s| from_json(&s, "instantaneous reading"))
            .transpose()
    }

    /// Events of `meter` in `[from, to]`, oldest first.
    pub fn mdm_events(
        &self,
        meter: &MeterSerial,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<EventRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT at, code, category, kind, severity, description, quality, class \
             FROM meter_event \
             WHERE meter = ?1 AND at BETWEEN ?2 AND ?3 ORDER BY at, code",
        )?;
        let mut rows = stmt.query(params![meter.as_str(), ms(from), ms(to)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(EventRow {
                event: MeterEvent {
                    meter: meter.clone(),
                    at: from_ms(r.get(0)?)?,
                    code: narrow(r.get(1)?, "event code")?,
                    category: parse_category(&r.get::<_, String>(2)?)?,
                    kind: parse_kind(&r.get::<_, String>(3)?)?,
                    description: r.get(5)?,
                    quality: quality_from_bits(r.get(6)?),
                },
                class: r.get(7)?,
                severity: r.get(4)?,
            });
        }
        Ok(out)
    }

    /// Exceptions in `state` (all when `None`), oldest first, a page at a time.
    pub fn mdm_exceptions(
        &self,
        meter: Option<&MeterSerial>,
        state: Option<ExceptionState>,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<ExceptionRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT meter, rule, from_end, to_end, severity, detail, state, created_at, \
             closed_by, note FROM vee_exception \
             WHERE (?1 IS NULL OR meter = ?1) AND (?2 IS NULL OR state = ?2) \
             ORDER BY created_at, meter, rule, from_end LIMIT ?3 OFFSET ?4",
        )?;
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![
            meter.map(MeterSerial::as_str),
            state.map(ExceptionState::as_str),
            limit,
            offset
        ])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(ExceptionRow {
                meter: serial(r.get(0)?)?,
                rule: r.get(1)?,
                from: from_ms(r.get(2)?)?,
                to: from_ms(r.get(3)?)?,
                severity: r.get(4)?,
                detail: r.get(5)?,
                state: ExceptionState::parse(&r.get::<_, String>(6)?)?,
                created_at: from_ms(r.get(7)?)?,
                closed_by: r.get(8)?,
                note: r.get(9)?,
            });
        }
        Ok(out)
    }

    /// Closes an open exception (resolved or dismissed) by a person, with a note.
    #[allow(clippy::too_many_arguments)]
    pub fn mdm_close_exception(
        &self,
        meter: &MeterSerial,
        rule: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        state: ExceptionState,
        by: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if state == ExceptionState::Open {
            return Err(StoreError::Invalid(
                "an exception is closed as resolved or dismissed".into(),
            ));
        }
        let changed = self.conn().execute(
            "UPDATE vee_exception SET state = ?5, closed_at = ?6, closed_by = ?7, note = ?8 \
             WHERE meter = ?1 AND rule = ?2 AND from_end = ?3 AND to_end = ?4 AND state = 'open'",
            params![
                meter.as_str(),
                rule,
                ms(from),
                ms(to),
                state.as_str(),
                ms(now),
                by,
                note
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!(
                "an open {rule} exception of {meter} from {from}"
            )));
        }
        Ok(())
    }

    /// The VEE state kept for `meter` (JSON).
    pub fn mdm_vee_state(&self, meter: &MeterSerial) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT state FROM vee_state WHERE meter = ?1",
                params![meter.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Intervals reported missing for `meter` that overlap `[from, to]`, oldest first.
    pub fn mdm_missed(
        &self,
        meter: &MeterSerial,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MissedRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT profile, from_end, to_end, reason, detail FROM missed_interval \
             WHERE meter = ?1 AND from_end <= ?3 AND to_end >= ?2 ORDER BY from_end",
        )?;
        let mut rows = stmt.query(params![meter.as_str(), ms(from), ms(to)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(MissedRow {
                meter: meter.clone(),
                profile: r.get(0)?,
                from: from_ms(r.get(1)?)?,
                to: from_ms(r.get(2)?)?,
                reason: r.get(3)?,
                detail: r.get(4)?,
            });
        }
        Ok(out)
    }

    /// Alarms of `meter` in `[from, to]`, oldest first.
    pub fn mdm_alarms(
        &self,
        meter: &MeterSerial,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlarmRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT at, kind, detail FROM alarm WHERE meter = ?1 AND at BETWEEN ?2 AND ?3 \
             ORDER BY at, kind",
        )?;
        let mut rows = stmt.query(params![meter.as_str(), ms(from), ms(to)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(AlarmRow {
                meter: meter.clone(),
                at: from_ms(r.get(0)?)?,
                kind: r.get(1)?,
                detail: r.get(2)?,
            });
        }
        Ok(out)
    }

    /// The final result of command `command` of `meter`, if it has come in.
    pub fn mdm_command_result(
        &self,
        meter: &MeterSerial,
        command: &str,
    ) -> Result<Option<CommandResultRow>> {
        self.conn()
            .query_row(
                "SELECT command_kind, outcome FROM command_result \
                 WHERE meter = ?1 AND command = ?2",
                params![meter.as_str(), command],
                |r| {
                    Ok(CommandResultRow {
                        meter: meter.clone(),
                        command: command.to_string(),
                        command_kind: r.get(0)?,
                        outcome: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(StoreError::from)
    }

    /// Messages that could not be taken in, oldest first.
    pub fn mdm_dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key, kind, meter, payload, error FROM dead_letter \
             ORDER BY received_at, key LIMIT ?1",
        )?;
        let mut rows = stmt.query(params![limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(DeadLetter {
                key: r.get(0)?,
                kind: r.get(1)?,
                meter: serial(r.get(2)?)?,
                payload: r.get(3)?,
                error: r.get(4)?,
            });
        }
        Ok(out)
    }

    /// What every meter that should report (the head-end's registry and the installed meters)
    /// delivered for the day `(day_start, day_end]`, counting as on time what was received by
    /// `deadline`. By serial.
    pub fn mdm_day_counts(
        &self,
        day_start: DateTime<Utc>,
        day_end: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Result<Vec<MeterDayCounts>> {
        let conn = self.conn();
        let estimated = quality_bits(&[Quality::Estimated]);
        let mut stmt = conn.prepare_cached(
            // Per meter, counted through the (meter, interval_end) key: one short range each,
            // never a scan of the whole table.
            "WITH meters (meter) AS ( \
                 SELECT serial FROM meter \
                 UNION SELECT meter FROM meter_installation \
                 WHERE valid_from < ?2 AND (valid_to IS NULL OR valid_to > ?1)) \
             SELECT m.meter, \
                 (SELECT COUNT(*) FROM interval_reading i WHERE i.meter = m.meter \
                     AND i.interval_end > ?1 AND i.interval_end <= ?2 AND (i.quality & ?4) = 0), \
                 (SELECT COUNT(*) FROM interval_reading i WHERE i.meter = m.meter \
                     AND i.interval_end > ?1 AND i.interval_end <= ?2 AND (i.quality & ?4) = 0 \
                     AND i.received_at <= ?3), \
                 (SELECT COUNT(*) FROM interval_reading i WHERE i.meter = m.meter \
                     AND i.interval_end > ?1 AND i.interval_end <= ?2 AND (i.quality & ?4) <> 0), \
                 (SELECT d.received_at FROM daily_reading d WHERE d.meter = m.meter \
                     AND d.captured_at = ?2), \
                 (SELECT c.period_s FROM meter_capture c WHERE c.meter = m.meter) \
             FROM meters m ORDER BY m.meter",
        )?;
        let mut rows = stmt.query(params![ms(day_start), ms(day_end), ms(deadline), estimated])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(MeterDayCounts {
                meter: serial(r.get(0)?)?,
                actual: narrow(r.get(1)?, "interval count")?,
                actual_on_time: narrow(r.get(2)?, "interval count")?,
                estimated: narrow(r.get(3)?, "interval count")?,
                daily_received: crate::from_ms_opt(r.get(4)?)?,
                period_s: r.get(5)?,
            });
        }
        Ok(out)
    }

    /// Every meter's missing intervals reported for a profile that overlap `[from, to]`.
    pub fn mdm_missed_between(
        &self,
        profile: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MissedRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT meter, from_end, to_end, reason, detail FROM missed_interval \
             WHERE profile = ?1 AND from_end <= ?3 AND to_end >= ?2 ORDER BY meter, from_end",
        )?;
        let mut rows = stmt.query(params![profile, ms(from), ms(to)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(MissedRow {
                meter: serial(r.get(0)?)?,
                profile: profile.to_string(),
                from: from_ms(r.get(1)?)?,
                to: from_ms(r.get(2)?)?,
                reason: r.get(3)?,
                detail: r.get(4)?,
            });
        }
        Ok(out)
    }

    /// Routed notices after `after_seq`, oldest first, for one destination or all.
    /// Routes a message to another part (billing, CIS, …) outside an ingest batch, once per
    /// key; false if the key was routed before.
    pub fn mdm_route(&self, m: &RoutedMessage, at: DateTime<Utc>) -> Result<bool> {
        Ok(self.conn().execute(
            "INSERT INTO routed_message (key, meter, destination, payload, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO NOTHING",
            params![m.key, m.meter.as_str(), m.destination, m.payload, ms(at)],
        )? == 1)
    }

    pub fn mdm_notices(
        &self,
        destination: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<NoticeRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, key, meter, destination, payload, created_at, delivered_at \
             FROM routed_message WHERE (?1 IS NULL OR destination = ?1) AND seq > ?2 \
             ORDER BY seq LIMIT ?3",
        )?;
        let mut rows = stmt.query(params![destination, after_seq, limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(NoticeRow {
                seq: r.get(0)?,
                message: RoutedMessage {
                    key: r.get(1)?,
                    meter: serial(r.get(2)?)?,
                    destination: r.get(3)?,
                    payload: r.get(4)?,
                },
                created_at: from_ms(r.get(5)?)?,
                delivered_at: crate::from_ms_opt(r.get(6)?)?,
            });
        }
        Ok(out)
    }
}

//! Turning profile buffers into typed [`model`] readings: block load → [`IntervalReading`],
//! daily load → [`DailyReading`], billing → [`BillingReading`], instantaneous →
//! [`InstantaneousReading`], event logs → [`MeterEvent`].
//!
//! Columns are found by logical name and attribute in the capture objects the meter reported,
//! not by position, so extra utility columns are ignored and reordered columns still read.
//! Values are scaled with the meter's own scaler/units ([`ScalerMap`], from the scaler profile).
//! Energies come out as exact integers (an energy with a fractional Wh is an error, never
//! rounded); voltages, currents, power factors and power as `f64`. Time stamps are the meter's
//! local time, converted to UTC with the deviation the meter sent, or IST when it sent none.
//! A row that does not fit gives a [`ReadingError`] naming the row and column.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use dlms::{ClockStatus, Data, Date, ObisCode, Time};
use model::{
    BillingReading, DailyReading, Demand, EventCategory, EventKind, InstantaneousReading,
    IntervalReading, MeterEvent, MeterSerial, Quality,
};

use crate::catalogue::Catalogue;
use crate::events::EventCodes;
use crate::profile::CaptureObject;
use crate::units::{ScaleError, ScalerUnit, Unit, describe};

/// Why a profile buffer could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadingError {
    #[error("a profile buffer is an array of rows, found {0}")]
    NotABuffer(String),
    #[error(
        "row {row}: expected a structure of {expected} values (one per capture object), found {found}"
    )]
    RowShape {
        row: usize,
        expected: usize,
        found: String,
    },
    #[error("row {row}, column {column} ({logical_name} attribute {attribute}): {problem}")]
    Cell {
        row: usize,
        column: usize,
        logical_name: ObisCode,
        attribute: i8,
        problem: String,
    },
    #[error("the profile has no column for {logical_name} attribute {attribute}")]
    MissingColumn {
        logical_name: ObisCode,
        attribute: i8,
    },
    #[error("no scaler/unit for {0}: read the scaler profile first")]
    MissingScaler(ObisCode),
    #[error("scaler profile: {0}")]
    ScalerProfile(String),
}

/// Scaler/units by logical name, as read from a scaler profile (or the catalogue's defaults).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScalerMap {
    // Ordered, not hashed: looked up for every cell of every row, and a few dozen 6-byte keys
    // compare faster than they hash.
    map: BTreeMap<ObisCode, ScalerUnit>,
}

impl ScalerMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// The catalogue's default scalers for a kind of meter.
    pub fn catalogue_defaults(catalogue: &Catalogue, kind: model::MeterKind) -> Self {
        let map = catalogue
            .for_kind(kind)
            .filter_map(|o| Some((o.logical_name, o.scaler_unit?)))
            .collect();
        ScalerMap { map }
    }

    /// Reads a scaler profile: its capture objects (attribute 3 of each register) and its
    /// buffer (an array holding one row of `{scaler, unit}` structures). Adds to the map.
    pub fn add_scaler_profile(
        &mut self,
        capture_objects: &[CaptureObject],
        buffer: &Data,
    ) -> Result<(), ReadingError> {
        let rows = buffer_rows(buffer)?;
        let row = rows
            .last()
            .ok_or_else(|| ReadingError::ScalerProfile("the buffer is empty".into()))?;
        let cells = row_cells(0, row, capture_objects.len())?;
        for (column, (c, cell)) in capture_objects.iter().zip(cells).enumerate() {
            let su = ScalerUnit::from_data(cell).map_err(|e| cell_error(0, column, c, e))?;
            self.map.insert(c.logical_name, su);
        }
        Ok(())
    }

    pub fn from_scaler_profile(
        capture_objects: &[CaptureObject],
        buffer: &Data,
    ) -> Result<Self, ReadingError> {
        let mut m = ScalerMap::new();
        m.add_scaler_profile(capture_objects, buffer)?;
        Ok(m)
    }

    pub fn insert(&mut self, logical_name: ObisCode, scaler_unit: ScalerUnit) {
        self.map.insert(logical_name, scaler_unit);
    }

    pub fn get(&self, logical_name: ObisCode) -> Option<ScalerUnit> {
        self.map.get(&logical_name).copied()
    }
}

fn buffer_rows(buffer: &Data) -> Result<&[Data], ReadingError> {
    match buffer {
        Data::Array(rows) => Ok(rows),
        Data::CompactArray(c) => Ok(&c.elements),
        other => Err(ReadingError::NotABuffer(describe(other))),
    }
}

fn row_cells(row: usize, d: &Data, expected: usize) -> Result<&[Data], ReadingError> {
    match d {
        Data::Structure(cells) if cells.len() == expected => Ok(cells),
        other => Err(ReadingError::RowShape {
            row,
            expected,
            found: describe(other),
        }),
    }
}

fn cell_error(
    row: usize,
    column: usize,
    c: &CaptureObject,
    problem: impl ToString,
) -> ReadingError {
    ReadingError::Cell {
        row,
        column,
        logical_name: c.logical_name,
        attribute: c.attribute_index,
        problem: problem.to_string(),
    }
}

/// Reads profile buffers of one meter.
#[derive(Debug, Clone)]
pub struct BufferReader<'a> {
    meter: &'a MeterSerial,
    columns: &'a [CaptureObject],
    scalers: &'a ScalerMap,
    assumed_offset: FixedOffset,
}

/// One row, checked for shape, with its columns.
struct Row<'a> {
    index: usize,
    cells: &'a [Data],
    columns: &'a [CaptureObject],
    scalers: &'a ScalerMap,
    offset: FixedOffset,
}

const CLOCK: ObisCode = ObisCode::must("0.0.1.0.0.255");

/// A logical name from one of the literals in this file (never from input), parsed at compile
/// time: these are looked up for every cell of every row.
macro_rules! ln {
    ($s:literal) => {
        const { ObisCode::must($s) }
    };
}

impl<'a> Row<'a> {
    fn find(&self, logical_name: ObisCode, attribute: i8) -> Option<(usize, &'a Data)> {
        let column = self
            .columns
            .iter()
            .position(|c| c.logical_name == logical_name && c.attribute_index == attribute)?;
        Some((column, self.cells.get(column)?))
    }

    fn err(&self, column: usize, problem: impl ToString) -> ReadingError {
        match self.columns.get(column) {
            Some(c) => cell_error(self.index, column, c, problem),
            None => ReadingError::RowShape {
                row: self.index,
                expected: self.columns.len(),
                found: format!("no column {column}"),
            },
        }
    }

    /// The present, non-null cell for a column, if the profile has the column.
    fn cell(&self, logical_name: ObisCode, attribute: i8) -> Option<(usize, &'a Data)> {
        self.find(logical_name, attribute)
            .filter(|(_, d)| !matches!(d, Data::Null | Data::DontCare))
    }

    fn required<T>(
        &self,
        logical_name: ObisCode,
        attribute: i8,
        value: Option<T>,
    ) -> Result<T, ReadingError> {
        match (value, self.find(logical_name, attribute)) {
            (Some(v), _) => Ok(v),
            (None, Some((column, _))) => Err(self.err(column, "a value is required here")),
            (None, None) => Err(ReadingError::MissingColumn {
                logical_name,
                attribute,
            }),
        }
    }

    fn time(
        &self,
        logical_name: ObisCode,
        attribute: i8,
        quality: &mut Vec<Quality>,
    ) -> Result<Option<DateTime<Utc>>, ReadingError> {
        let Some((column, d)) = self.cell(logical_name, attribute) else {
            return Ok(None);
        };
        let dt = d.as_datetime().ok_or_else(|| {
            self.err(
                column,
                format!("expected a date-time, found {}", describe(d)),
            )
        })?;
        let utc = dt.to_utc(self.offset).ok_or_else(|| {
            self.err(
                column,
                "the date-time is not fully specified or does not exist",
            )
        })?;
        let status = dt.clock_status;
        if status != ClockStatus::NOT_SPECIFIED {
            if status.0 & ClockStatus::INVALID_VALUE != 0
                && !quality.contains(&Quality::ClockInvalid)
            {
                quality.push(Quality::ClockInvalid);
            }
            if status.0 & ClockStatus::DOUBTFUL_VALUE != 0
                && !quality.contains(&Quality::ClockDoubtful)
            {
                quality.push(Quality::ClockDoubtful);
            }
        }
        Ok(Some(utc))
    }

    fn scaler(&self, logical_name: ObisCode) -> Result<ScalerUnit, ReadingError> {
        self.scalers
            .get(logical_name)
            .ok_or(ReadingError::MissingScaler(logical_name))
    }

    /// An exact energy (Wh, VAh, varh) from a register's value.
    fn energy(&self, logical_name: ObisCode) -> Result<Option<i64>, ReadingError> {
        let Some((column, d)) = self.cell(logical_name, 2) else {
            return Ok(None);
        };
        let su = self.scaler(logical_name)?;
        if !su.unit.is_energy() {
            return Err(self.err(
                column,
                format!("expected an energy, the unit is {}", su.unit),
            ));
        }
        su.apply_exact_i64(d)
            .map(Some)
            .map_err(|e| self.err(column, e))
    }

    /// A scaled register value as a float, checking the unit when one is expected.
    fn float(
        &self,
        logical_name: ObisCode,
        unit: Option<Unit>,
    ) -> Result<Option<f64>, ReadingError> {
        let Some((column, d)) = self.cell(logical_name, 2) else {
            return Ok(None);
        };
        let su = self.scaler(logical_name)?;
        if let Some(u) = unit.filter(|u| *u != su.unit) {
            return Err(self.err(column, format!("expected {u}, the unit is {}", su.unit)));
        }
        su.apply_f64(d).map(Some).map_err(|e| self.err(column, e))
    }

    /// A whole number: a plain integer (IC 1 data) or an exactly scaled register.
    fn whole(&self, logical_name: ObisCode) -> Result<Option<i64>, ReadingError> {
        let Some((column, d)) = self.cell(logical_name, 2) else {
            return Ok(None);
        };
        let su = self
            .scalers
            .get(logical_name)
            .unwrap_or(ScalerUnit::unscaled(Unit::COUNT));
        su.apply_exact_i64(d)
            .map(Some)
            .map_err(|e: ScaleError| self.err(column, e))
    }

    fn demand(
        &self,
        logical_name: ObisCode,
        q: &mut Vec<Quality>,
    ) -> Result<Option<Demand>, ReadingError> {
        let Some(value) = self.float(logical_name, None)? else {
            return Ok(None);
        };
        // A demand register that has recorded nothing (no demand in a TOD zone yet, or just
        // after an MD reset) sends a capture time with every field not specified: no time.
        let unspecified = self.cell(logical_name, 5).is_some_and(|(_, d)| {
            d.as_datetime()
                .is_some_and(|t| t.date == Date::NOT_SPECIFIED && t.time == Time::NOT_SPECIFIED)
        });
        let at = if unspecified {
            None
        } else {
            self.time(logical_name, 5, q)?
        };
        Ok(Some(Demand { value, at }))
    }

    fn three(&self, names: [ObisCode; 3], unit: Unit) -> Result<Option<[f64; 3]>, ReadingError> {
        let [a, b, c] = names;
        match (
            self.float(a, Some(unit))?,
            self.float(b, Some(unit))?,
            self.float(c, Some(unit))?,
        ) {
            (Some(a), Some(b), Some(c)) => Ok(Some([a, b, c])),
            _ => Ok(None),
        }
    }
}

impl<'a> BufferReader<'a> {
    /// A reader for buffers with these capture objects (attribute 3 of the profile, as the
    /// meter reported it) and scaler/units; time stamps without a deviation are taken as IST.
    pub fn new(
        meter: &'a MeterSerial,
        columns: &'a [CaptureObject],
        scalers: &'a ScalerMap,
    ) -> Self {
        BufferReader {
            meter,
            columns,
            scalers,
            assumed_offset: dlms::datetime::ist(),
        }
    }

    /// Use another zone for time stamps that carry no deviation.
    pub fn with_assumed_offset(mut self, offset: FixedOffset) -> Self {
        self.assumed_offset = offset;
        self
    }

    fn rows(&self, buffer: &'a Data) -> Result<Vec<Row<'a>>, ReadingError> {
        buffer_rows(buffer)?
            .iter()
            .enumerate()
            .map(|(index, d)| {
                Ok(Row {
                    index,
                    cells: row_cells(index, d, self.columns.len())?,
                    columns: self.columns,
                    scalers: self.scalers,
                    offset: self.assumed_offset,
                })
            })
            .collect()
    }

    /// Block load (1.0.99.1.0.255) rows.
    pub fn intervals(&self, buffer: &'a Data) -> Result<Vec<IntervalReading>, ReadingError> {
        self.rows(buffer)?
            .iter()
            .map(|r| {
                let mut quality = Vec::new();
                let interval_end = r.required(CLOCK, 2, r.time(CLOCK, 2, &mut quality)?)?;
                let import = ln!("1.0.1.29.0.255");
                let import_va = ln!("1.0.9.29.0.255");
                Ok(IntervalReading {
                    meter: self.meter.clone(),
                    interval_end,
                    avg_voltage_v: r.float(ln!("1.0.12.27.0.255"), Some(Unit::VOLT))?,
                    avg_current_a: r.float(ln!("1.0.11.27.0.255"), Some(Unit::AMPERE))?,
                    avg_phase_voltage_v: r.three(
                        [
                            ln!("1.0.32.27.0.255"),
                            ln!("1.0.52.27.0.255"),
                            ln!("1.0.72.27.0.255"),
                        ],
                        Unit::VOLT,
                    )?,
                    avg_phase_current_a: r.three(
                        [
                            ln!("1.0.31.27.0.255"),
                            ln!("1.0.51.27.0.255"),
                            ln!("1.0.71.27.0.255"),
                        ],
                        Unit::AMPERE,
                    )?,
                    import_wh: r.required(import, 2, r.energy(import)?)?,
                    import_vah: r.required(import_va, 2, r.energy(import_va)?)?,
                    export_wh: r.energy(ln!("1.0.2.29.0.255"))?,
                    export_vah: r.energy(ln!("1.0.10.29.0.255"))?,
                    quality,
                })
            })
            .collect()
    }

    /// Daily load (1.0.99.2.0.255) rows.
    pub fn daily(&self, buffer: &'a Data) -> Result<Vec<DailyReading>, ReadingError> {
        self.rows(buffer)?
            .iter()
            .map(|r| {
                let mut quality = Vec::new();
                let captured_at = r.required(CLOCK, 2, r.time(CLOCK, 2, &mut quality)?)?;
                let import = ln!("1.0.1.8.0.255");
                let import_va = ln!("1.0.9.8.0.255");
                Ok(DailyReading {
                    meter: self.meter.clone(),
                    captured_at,
                    import_wh: r.required(import, 2, r.energy(import)?)?,
                    import_vah: r.required(import_va, 2, r.energy(import_va)?)?,
                    export_wh: r.energy(ln!("1.0.2.8.0.255"))?,
                    export_vah: r.energy(ln!("1.0.10.8.0.255"))?,
                    quality,
                })
            })
            .collect()
    }

    /// Billing (1.0.98.1.0.255) rows. TOD zones are read for zones 1–8 as far as the profile
    /// has them.
    pub fn billing(&self, buffer: &'a Data) -> Result<Vec<BillingReading>, ReadingError> {
        self.rows(buffer)?
            .iter()
            .map(|r| {
                let mut q = Vec::new();
                let billing_date_ln = ln!("0.0.0.1.2.255");
                let billing_date = match r.time(billing_date_ln, 2, &mut q)? {
                    Some(t) => t,
                    None if r.find(billing_date_ln, 2).is_some() => {
                        r.required(billing_date_ln, 2, None)?
                    }
                    None => r.required(CLOCK, 2, r.time(CLOCK, 2, &mut q)?)?,
                };
                let zone = |c: u8, z: u8| ObisCode::new(1, 0, c, 8, z, 255);
                let md_zone = |c: u8, z: u8| ObisCode::new(1, 0, c, 6, z, 255);
                let mut tod_import_wh = Vec::new();
                let mut tod_import_vah = Vec::new();
                let mut tod_md_w = Vec::new();
                let mut tod_md_va = Vec::new();
                for z in 1..=8 {
                    if r.find(zone(1, z), 2).is_some() {
                        tod_import_wh.push(r.required(zone(1, z), 2, r.energy(zone(1, z))?)?);
                    }
                    if r.find(zone(9, z), 2).is_some() {
                        tod_import_vah.push(r.required(zone(9, z), 2, r.energy(zone(9, z))?)?);
                    }
                    if r.find(md_zone(1, z), 2).is_some() {
                        tod_md_w.push(r.required(
                            md_zone(1, z),
                            2,
                            r.demand(md_zone(1, z), &mut q)?,
                        )?);
                    }
                    if r.find(md_zone(9, z), 2).is_some() {
                        tod_md_va.push(r.required(
                            md_zone(9, z),
                            2,
                            r.demand(md_zone(9, z), &mut q)?,
                        )?);
                    }
                }
                let reactive = [5, 6, 7, 8].map(|c| r.energy(ObisCode::new(1, 0, c, 8, 0, 255)));
                let reactive_q1_q4_varh = match reactive {
                    [Ok(Some(a)), Ok(Some(b)), Ok(Some(c)), Ok(Some(d))] => Some([a, b, c, d]),
                    [a, b, c, d] => {
                        a?;
                        b?;
                        c?;
                        d?;
                        None
                    }
                };
                Ok(BillingReading {
                    meter: self.meter.clone(),
                    billing_date,
                    avg_power_factor: r.float(ln!("1.0.13.0.0.255"), None)?,
                    import_wh: r.required(zone(1, 0), 2, r.energy(zone(1, 0))?)?,
                    tod_import_wh,
                    import_vah: r.required(zone(9, 0), 2, r.energy(zone(9, 0))?)?,
                    tod_import_vah,
                    md_w: r.demand(md_zone(1, 0), &mut q)?,
                    tod_md_w,
                    md_va: r.demand(md_zone(9, 0), &mut q)?,
                    tod_md_va,
                    power_on_minutes: r.whole(ln!("0.0.94.91.13.255"))?,
                    export_wh: r.energy(zone(2, 0))?,
                    export_vah: r.energy(zone(10, 0))?,
                    reactive_q1_q4_varh,
                    quality: q,
                })
            })
            .collect()
    }

    /// Instantaneous profile (1.0.94.91.0.255) rows (normally one).
    pub fn instantaneous(
        &self,
        buffer: &'a Data,
    ) -> Result<Vec<InstantaneousReading>, ReadingError> {
        self.rows(buffer)?
            .iter()
            .map(|r| {
                let mut q = Vec::new();
                Ok(InstantaneousReading {
                    meter: self.meter.clone(),
                    at: r.time(CLOCK, 2, &mut q)?,
                    voltage_v: r.float(ln!("1.0.12.7.0.255"), Some(Unit::VOLT))?,
                    phase_voltage_v: r.three(
                        [
                            ln!("1.0.32.7.0.255"),
                            ln!("1.0.52.7.0.255"),
                            ln!("1.0.72.7.0.255"),
                        ],
                        Unit::VOLT,
                    )?,
                    current_a: r.float(ln!("1.0.11.7.0.255"), Some(Unit::AMPERE))?,
                    phase_current_a: r.three(
                        [
                            ln!("1.0.31.7.0.255"),
                            ln!("1.0.51.7.0.255"),
                            ln!("1.0.71.7.0.255"),
                        ],
                        Unit::AMPERE,
                    )?,
                    neutral_current_a: r.float(ln!("1.0.91.7.0.255"), Some(Unit::AMPERE))?,
                    power_factor: r.float(ln!("1.0.13.7.0.255"), None)?,
                    phase_power_factor: r.three(
                        [
                            ln!("1.0.33.7.0.255"),
                            ln!("1.0.53.7.0.255"),
                            ln!("1.0.73.7.0.255"),
                        ],
                        Unit::COUNT,
                    )?,
                    frequency_hz: r.float(ln!("1.0.14.7.0.255"), Some(Unit::HERTZ))?,
                    apparent_power_va: r.float(ln!("1.0.9.7.0.255"), Some(Unit::VOLT_AMPERE))?,
                    active_power_w: r.float(ln!("1.0.1.7.0.255"), Some(Unit::WATT))?,
                    import_wh: r.energy(ln!("1.0.1.8.0.255"))?,
                    import_vah: r.energy(ln!("1.0.9.8.0.255"))?,
                    export_wh: r.energy(ln!("1.0.2.8.0.255"))?,
                    export_vah: r.energy(ln!("1.0.10.8.0.255"))?,
                    md_w: r.demand(ln!("1.0.1.6.0.255"), &mut q)?,
                    md_va: r.demand(ln!("1.0.9.6.0.255"), &mut q)?,
                    power_on_minutes: r.whole(ln!("0.0.94.91.14.255"))?,
                    power_off_minutes: r.whole(ln!("0.0.94.91.8.255"))?,
                    power_failures: r.whole(ln!("0.0.96.7.0.255"))?,
                    tamper_count: r.whole(ln!("0.0.94.91.0.255"))?,
                    billing_count: r.whole(ln!("0.0.0.1.0.255"))?,
                    programming_count: r.whole(ln!("0.0.96.2.0.255"))?,
                    quality: q,
                })
            })
            .collect()
    }

    /// Event log (0.0.99.98.e.255) rows. The category is the log's; description and kind come
    /// from the code table ("unknown event", single, for codes it lacks).
    pub fn events(
        &self,
        category: EventCategory,
        codes: &EventCodes,
        buffer: &'a Data,
    ) -> Result<Vec<MeterEvent>, ReadingError> {
        let code_ln = crate::catalogue::obis::current_event_code(category.log_index());
        self.rows(buffer)?
            .iter()
            .map(|r| {
                let mut quality = Vec::new();
                let at = r.required(CLOCK, 2, r.time(CLOCK, 2, &mut quality)?)?;
                let (column, cell) = r.required(code_ln, 2, r.cell(code_ln, 2))?;
                let code = cell
                    .as_i64()
                    .and_then(|c| u16::try_from(c).ok())
                    .ok_or_else(|| {
                        r.err(
                            column,
                            format!("expected an event code, found {}", describe(cell)),
                        )
                    })?;
                let known = codes.get(code);
                Ok(MeterEvent {
                    meter: self.meter.clone(),
                    at,
                    code,
                    category,
                    kind: known.map_or(EventKind::Single, |c| c.kind),
                    description: codes.describe(code).to_string(),
                    quality,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use dlms::datetime::{DEVIATION_NOT_SPECIFIED, ist};
    use model::MeterKind;

    use super::*;
    use crate::profile::{ProfileKind, Profiles};

    const ONE: MeterKind = MeterKind::SinglePhaseWholeCurrent;

    fn serial() -> MeterSerial {
        MeterSerial::new("UP0000001").unwrap()
    }

    /// A 12-byte COSEM date-time for an IST wall-clock time.
    fn ist_stamp(d: u32, h: u32, m: u32, deviation: i16, status: u8) -> Data {
        let local = chrono::NaiveDate::from_ymd_opt(2026, 3, d)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap();
        let mut dt = dlms::DateTime::from_naive_local(local);
        dt.deviation = deviation;
        dt.clock_status = ClockStatus(status);
        Data::OctetString(dt.to_bytes().to_vec())
    }

    fn block_load_scalers() -> (Vec<CaptureObject>, Data) {
        // What a meter's block-load scaler profile returns: voltage ×10^-2 V, current ×10^-3 A,
        // energies in Wh with scaler 1 (tens of Wh) and 0.
        let cols = Profiles::builtin()
            .get(ONE, ProfileKind::BlockLoad)
            .unwrap()
            .scaler_capture_objects(Catalogue::builtin(), ONE);
        let su = |s, u| ScalerUnit::new(s, Unit(u)).to_data();
        let row = Data::Structure(vec![
            su(-2, 35),
            su(-3, 33),
            su(1, 30),
            su(1, 31),
            su(0, 30),
            su(0, 31),
        ]);
        (cols, Data::Array(vec![row]))
    }

    fn block_row(stamp: Data, v: u16, a: u32, wh10: u32, vah10: u32, ex: u32, exva: u32) -> Data {
        Data::Structure(vec![
            stamp,
            Data::LongUnsigned(v),
            Data::DoubleLongUnsigned(a),
            Data::DoubleLongUnsigned(wh10),
            Data::DoubleLongUnsigned(vah10),
            Data::DoubleLongUnsigned(ex),
            Data::DoubleLongUnsigned(exva),
        ])
    }

    #[test]
    fn block_load_buffer_becomes_interval_readings() {
        let (scols, sbuf) = block_load_scalers();
        let scalers = ScalerMap::from_scaler_profile(&scols, &sbuf).unwrap();
        let profile = Profiles::builtin()
            .get(ONE, ProfileKind::BlockLoad)
            .unwrap();
        let buffer = Data::Array(vec![
            block_row(ist_stamp(1, 0, 15, -330, 0), 23_051, 4_250, 123, 130, 0, 0),
            block_row(
                ist_stamp(1, 0, 30, DEVIATION_NOT_SPECIFIED, 0x02),
                22_990,
                0,
                0,
                1,
                7,
                9,
            ),
        ]);
        let meter = serial();
        let got = BufferReader::new(&meter, &profile.capture_objects, &scalers)
            .intervals(&buffer)
            .unwrap();
        assert_eq!(got.len(), 2);
        let first = &got[0];
        assert_eq!(first.meter, meter);
        // 00:15 IST on 1 March is 18:45 UTC on 28 February
        assert_eq!(
            first.interval_end,
            Utc.with_ymd_and_hms(2026, 2, 28, 18, 45, 0).unwrap()
        );
        assert_eq!(first.avg_voltage_v, Some(230.51));
        assert_eq!(first.avg_current_a, Some(4.25));
        assert_eq!((first.import_wh, first.import_vah), (1_230, 1_300));
        assert_eq!((first.export_wh, first.export_vah), (Some(0), Some(0)));
        assert!(first.quality.is_empty());
        let second = &got[1];
        // no deviation sent: taken as IST
        assert_eq!(
            second.interval_end,
            Utc.with_ymd_and_hms(2026, 2, 28, 19, 0, 0).unwrap()
        );
        assert_eq!((second.import_wh, second.import_vah), (0, 10));
        assert_eq!((second.export_wh, second.export_vah), (Some(7), Some(9)));
        assert_eq!(second.quality, vec![Quality::ClockDoubtful]);
        assert_eq!(second.avg_phase_voltage_v, None);
    }

    #[test]
    fn bad_rows_name_the_row_and_column() {
        let scalers = ScalerMap::catalogue_defaults(Catalogue::builtin(), ONE);
        let profile = Profiles::builtin()
            .get(ONE, ProfileKind::BlockLoad)
            .unwrap();
        let meter = serial();
        let reader = BufferReader::new(&meter, &profile.capture_objects, &scalers);
        let good = block_row(ist_stamp(2, 1, 0, -330, 0), 2300, 1000, 5, 6, 0, 0);

        // wrong arity in row 1
        let short = Data::Structure(vec![ist_stamp(2, 1, 15, -330, 0), Data::LongUnsigned(1)]);
        let e = reader
            .intervals(&Data::Array(vec![good.clone(), short]))
            .unwrap_err();
        assert!(
            matches!(
                e,
                ReadingError::RowShape {
                    row: 1,
                    expected: 7,
                    ..
                }
            ),
            "{e}"
        );

        // wrong type in row 1, column 3 (block kWh)
        let mut bad = block_row(ist_stamp(2, 1, 15, -330, 0), 2300, 1000, 5, 6, 0, 0);
        if let Data::Structure(cells) = &mut bad {
            cells[3] = Data::VisibleString(b"12".to_vec());
        }
        let e = reader
            .intervals(&Data::Array(vec![good.clone(), bad]))
            .unwrap_err();
        match &e {
            ReadingError::Cell {
                row: 1,
                column: 3,
                logical_name,
                ..
            } => {
                assert_eq!(*logical_name, ObisCode::must("1.0.1.29.0.255"));
            }
            other => panic!("{other}"),
        }
        assert!(
            e.to_string()
                .starts_with("row 1, column 3 (1.0.1.29.0.255 attribute 2)"),
            "{e}"
        );

        // a clock that is not a date-time, a null where a value is needed, not an array
        let mut bad = good.clone();
        if let Data::Structure(cells) = &mut bad {
            cells[0] = Data::OctetString(vec![0; 5]);
        }
        assert!(matches!(
            reader.intervals(&Data::Array(vec![bad])).unwrap_err(),
            ReadingError::Cell {
                row: 0,
                column: 0,
                ..
            }
        ));
        let mut bad = good.clone();
        if let Data::Structure(cells) = &mut bad {
            cells[4] = Data::Null;
        }
        assert!(matches!(
            reader.intervals(&Data::Array(vec![bad])).unwrap_err(),
            ReadingError::Cell {
                row: 0,
                column: 4,
                ..
            }
        ));
        assert!(matches!(
            reader.intervals(&good).unwrap_err(),
            ReadingError::NotABuffer(_)
        ));
        assert_eq!(reader.intervals(&Data::Array(vec![])).unwrap(), vec![]);
    }

    #[test]
    fn fractional_energy_is_an_error_not_rounded() {
        let mut scalers = ScalerMap::catalogue_defaults(Catalogue::builtin(), ONE);
        scalers.insert(
            ObisCode::must("1.0.1.29.0.255"),
            ScalerUnit::new(-1, Unit::WATT_HOUR),
        );
        let profile = Profiles::builtin()
            .get(ONE, ProfileKind::BlockLoad)
            .unwrap();
        let meter = serial();
        let reader = BufferReader::new(&meter, &profile.capture_objects, &scalers);
        let whole = block_row(ist_stamp(3, 0, 15, -330, 0), 2300, 1000, 1230, 6, 0, 0);
        assert_eq!(
            reader.intervals(&Data::Array(vec![whole])).unwrap()[0].import_wh,
            123
        );
        let frac = block_row(ist_stamp(3, 0, 15, -330, 0), 2300, 1000, 1234, 6, 0, 0);
        let e = reader.intervals(&Data::Array(vec![frac])).unwrap_err();
        assert!(
            e.to_string().contains("123.4 Wh is not a whole number"),
            "{e}"
        );
        // a unit that is not an energy where an energy is expected
        scalers.insert(
            ObisCode::must("1.0.1.29.0.255"),
            ScalerUnit::new(0, Unit::VOLT),
        );
        let reader = BufferReader::new(&meter, &profile.capture_objects, &scalers);
        let row = block_row(ist_stamp(3, 0, 15, -330, 0), 2300, 1000, 1, 6, 0, 0);
        assert!(reader.intervals(&Data::Array(vec![row])).is_err());
        // no scaler at all
        let empty = ScalerMap::new();
        let reader = BufferReader::new(&meter, &profile.capture_objects, &empty);
        let row = block_row(ist_stamp(3, 0, 15, -330, 0), 2300, 1000, 1, 6, 0, 0);
        assert!(matches!(
            reader.intervals(&Data::Array(vec![row])).unwrap_err(),
            ReadingError::MissingScaler(_)
        ));
    }

    #[test]
    fn event_log_rows_become_events() {
        let profile = Profiles::builtin()
            .get(ONE, ProfileKind::EventLog(EventCategory::Power))
            .unwrap();
        let scalers = ScalerMap::catalogue_defaults(Catalogue::builtin(), ONE);
        let row = |d, code: u16| {
            Data::Structure(vec![
                ist_stamp(d, 10, 0, -330, 0),
                Data::LongUnsigned(code),
                Data::DoubleLongUnsigned(0),
                Data::LongUnsigned(0),
                Data::Long(0),
                Data::DoubleLongUnsigned(1_000),
                Data::DoubleLongUnsigned(3),
            ])
        };
        let meter = serial();
        let reader = BufferReader::new(&meter, &profile.capture_objects, &scalers);
        let events = reader
            .events(
                EventCategory::Power,
                EventCodes::builtin(),
                &Data::Array(vec![row(4, 101), row(5, 102), row(6, 999)]),
            )
            .unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(
            (events[0].code, events[0].kind),
            (101, EventKind::Occurrence)
        );
        assert_eq!(events[0].description, "Power failure");
        assert_eq!(events[0].category, EventCategory::Power);
        assert_eq!(
            events[0].at,
            Utc.with_ymd_and_hms(2026, 3, 4, 4, 30, 0).unwrap()
        );
        assert_eq!(events[1].kind, EventKind::Restoration);
        assert_eq!(events[2].description, "unknown event");
        let mut bad = row(7, 101);
        if let Data::Structure(cells) = &mut bad {
            cells[1] = Data::Long(-1);
        }
        let e = reader.events(
            EventCategory::Power,
            EventCodes::builtin(),
            &Data::Array(vec![bad]),
        );
        assert!(matches!(
            e.unwrap_err(),
            ReadingError::Cell {
                row: 0,
                column: 1,
                ..
            }
        ));
    }

    #[test]
    fn billing_row_with_tod_zones_and_md() {
        let k = MeterKind::ThreePhaseWholeCurrent;
        let profile = Profiles::builtin().get(k, ProfileKind::Billing).unwrap();
        let scalers = ScalerMap::catalogue_defaults(Catalogue::builtin(), k);
        // Build the row column by column from the layout, so the test follows the table.
        let date = ist_stamp(1, 0, 0, -330, 0);
        let md_time = ist_stamp(14, 19, 30, -330, 0);
        let cells: Vec<Data> = profile
            .capture_objects
            .iter()
            .map(|c| {
                let [_, _, cc, dd, ee, _] = c.logical_name.bytes();
                match (c.class_id, cc, dd, c.attribute_index) {
                    (1, _, _, _) => date.clone(),
                    (4, _, _, 5) => md_time.clone(),
                    (4, 1, 6, _) => Data::DoubleLongUnsigned(4_000 + ee as u32),
                    (4, _, _, _) => Data::DoubleLongUnsigned(5_000 + ee as u32),
                    (3, 13, 0, _) => Data::LongUnsigned(987),
                    (3, 1, 8, _) => Data::DoubleLongUnsigned(100_000 + ee as u32),
                    (3, 9, 8, _) => Data::DoubleLongUnsigned(200_000 + ee as u32),
                    (3, 94, _, _) => Data::DoubleLongUnsigned(43_000),
                    (3, c, 8, _) => Data::DoubleLongUnsigned(c as u32),
                    _ => Data::Null,
                }
            })
            .collect();
        let meter = serial();
        let reader = BufferReader::new(&meter, &profile.capture_objects, &scalers);
        let got = reader
            .billing(&Data::Array(vec![Data::Structure(cells)]))
            .unwrap();
        let b = &got[0];
        assert_eq!(
            b.billing_date,
            Utc.with_ymd_and_hms(2026, 2, 28, 18, 30, 0).unwrap()
        );
        assert_eq!(b.avg_power_factor, Some(0.987));
        assert_eq!(b.import_wh, 100_000);
        assert_eq!(
            b.tod_import_wh,
            (1..=8).map(|z| 100_000 + z).collect::<Vec<i64>>()
        );
        assert_eq!(b.import_vah, 200_000);
        assert_eq!(b.tod_import_vah.len(), 8);
        let md = b.md_w.unwrap();
        assert_eq!(md.value, 4_000.0);
        assert_eq!(
            md.at,
            Some(Utc.with_ymd_and_hms(2026, 3, 14, 14, 0, 0).unwrap())
        );
        assert_eq!(b.tod_md_w.len(), 8);
        assert_eq!(b.tod_md_va[7].value, 5_008.0);
        assert_eq!(b.power_on_minutes, Some(43_000));
        assert_eq!(b.reactive_q1_q4_varh, Some([5, 6, 7, 8]));
        assert_eq!((b.export_wh, b.export_vah), (Some(2), Some(10)));
    }

    #[test]
    fn daily_and_instantaneous_rows() {
        let scalers = ScalerMap::catalogue_defaults(Catalogue::builtin(), ONE);
        let meter = serial();
        let daily = Profiles::builtin()
            .get(ONE, ProfileKind::DailyLoad)
            .unwrap();
        let row = Data::Structure(vec![
            ist_stamp(2, 0, 0, -330, 0),
            Data::Long64Unsigned(5_000_000_000),
            Data::DoubleLongUnsigned(6),
            Data::DoubleLongUnsigned(7),
            Data::Null,
        ]);
        let d = BufferReader::new(&meter, &daily.capture_objects, &scalers)
            .daily(&Data::Array(vec![row]))
            .unwrap();
        assert_eq!(d[0].import_wh, 5_000_000_000);
        assert_eq!(d[0].export_vah, None);
        assert_eq!(
            d[0].captured_at,
            ist().with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
        );

        let inst = Profiles::builtin()
            .get(ONE, ProfileKind::Instantaneous)
            .unwrap();
        let cells: Vec<Data> = inst
            .capture_objects
            .iter()
            .map(|c| match (c.class_id, c.attribute_index) {
                (8, _) | (4, 5) => ist_stamp(2, 12, 0, -330, 0),
                (1, _) => Data::LongUnsigned(3),
                _ if c.logical_name == ObisCode::must("1.0.13.7.0.255") => Data::Long(-950),
                _ => Data::DoubleLongUnsigned(2_301),
            })
            .collect();
        let i = BufferReader::new(&meter, &inst.capture_objects, &scalers)
            .instantaneous(&Data::Array(vec![Data::Structure(cells)]))
            .unwrap();
        let i = &i[0];
        assert_eq!(i.voltage_v, Some(230.1));
        assert_eq!(i.current_a, Some(2.301));
        assert_eq!(i.power_factor, Some(-0.95));
        assert_eq!(i.frequency_hz, Some(23.01));
        assert_eq!(i.import_wh, Some(2_301));
        assert_eq!(i.tamper_count, Some(3));
        assert_eq!(i.md_w.unwrap().value, 2_301.0);
        assert_eq!(i.phase_voltage_v, None);
    }

    #[test]
    fn scaler_profile_errors() {
        let (cols, _) = block_load_scalers();
        assert!(ScalerMap::from_scaler_profile(&cols, &Data::Array(vec![])).is_err());
        let bad = Data::Array(vec![Data::Structure(vec![Data::Integer(0); 6])]);
        assert!(matches!(
            ScalerMap::from_scaler_profile(&cols, &bad).unwrap_err(),
            ReadingError::Cell {
                row: 0,
                column: 0,
                ..
            }
        ));
    }
}

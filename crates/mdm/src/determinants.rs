//! What the MDM hands on to prepaid and billing, computed from the validated interval data of
//! the meters that measured a consumer's supply (across a meter change):
//!
//! - the daily consumption of a consumer (use case 1.4): kWh and kVAh import and export, the
//!   highest kW and kVA demand of the day with their times, the average power factor, and
//!   whether any of it was estimated;
//! - the monthly billing determinants (use case 2.5): kWh and kVAh per TOD zone, MD kW and kVA
//!   with their times, the average PF, export energy for net-metered consumers and the count of
//!   estimated intervals.
//!
//! Demand is the average over a capture interval (energy × 3600 / period), as IS 15959 meters
//! integrate it over the demand integration period, 15 or 30 minutes like the block load.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use model::{BillingReading, DailyReading, IntervalReading, MeterSerial, Quality};
use serde::{Deserialize, Serialize};
use store::{Store, StoreError};

use crate::calendar::{IST_OFFSET_S, day_bounds};

/// A highest demand and the end of the interval it happened in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeakDemand {
    /// W or VA.
    pub value: i64,
    pub at: DateTime<Utc>,
}

/// Sums and peaks over a set of intervals.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Figures {
    pub import_wh: i64,
    pub import_vah: i64,
    pub export_wh: i64,
    pub export_vah: i64,
    pub max_w: Option<PeakDemand>,
    pub max_va: Option<PeakDemand>,
    pub intervals: u32,
    pub estimated_intervals: u32,
    /// Intervals VEE flagged suspect: left out of the sums and peaks (a person decides, by
    /// editing them, what they should have been).
    pub suspect_intervals: u32,
}

impl Figures {
    /// kWh / kVAh of the import; `None` when nothing apparent was imported.
    pub fn average_pf(&self) -> Option<f64> {
        (self.import_vah > 0).then(|| self.import_wh as f64 / self.import_vah as f64)
    }

    fn add(&mut self, r: &IntervalReading, period_s: i64) {
        if r.quality.contains(&Quality::Suspect) {
            self.suspect_intervals += 1;
            return;
        }
        self.import_wh = self.import_wh.saturating_add(r.import_wh);
        self.import_vah = self.import_vah.saturating_add(r.import_vah);
        self.export_wh = self.export_wh.saturating_add(r.export_wh.unwrap_or(0));
        self.export_vah = self.export_vah.saturating_add(r.export_vah.unwrap_or(0));
        self.intervals += 1;
        if r.quality.contains(&Quality::Estimated) {
            self.estimated_intervals += 1;
        }
        let demand = |e: i64| e.saturating_mul(3600) / period_s.max(1);
        raise(&mut self.max_w, demand(r.import_wh), r.interval_end);
        raise(&mut self.max_va, demand(r.import_vah), r.interval_end);
    }
}

/// Keeps the higher demand; on a tie, the earlier.
fn raise(peak: &mut Option<PeakDemand>, value: i64, at: DateTime<Utc>) {
    if peak.is_none_or(|p| value > p.value) {
        *peak = Some(PeakDemand { value, at });
    }
}

/// A TOD tariff day: where each zone starts (IST hour and minute), zones 1..=8. A zone lasts
/// until the next start; the last wraps past midnight to the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodZones {
    pub starts: Vec<TodStart>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TodStart {
    pub hour: u8,
    pub minute: u8,
    pub zone: u8,
}

impl Default for TodZones {
    /// Zone 1 off-peak night (22:00–06:00), 2 morning peak (06:00–10:00), 3 normal day
    /// (10:00–18:00), 4 evening peak (18:00–22:00): the pattern of most Indian TOD tariffs.
    fn default() -> Self {
        let s = |hour, zone| TodStart {
            hour,
            minute: 0,
            zone,
        };
        TodZones {
            starts: vec![s(6, 2), s(10, 3), s(18, 4), s(22, 1)],
        }
    }
}

impl TodZones {
    /// The zone of an interval, by the IST time its energy started to be counted.
    pub fn zone_of(&self, interval_end: DateTime<Utc>, period_s: i64) -> u8 {
        let start = interval_end - chrono::Duration::seconds(period_s);
        let local = start + chrono::Duration::seconds(IST_OFFSET_S);
        let minute = local.hour() * 60 + local.minute();
        let mut starts: Vec<(u32, u8)> = self
            .starts
            .iter()
            .map(|s| (u32::from(s.hour) * 60 + u32::from(s.minute), s.zone))
            .collect();
        starts.sort_unstable();
        starts
            .iter()
            .rev()
            .find(|(m, _)| *m <= minute)
            .or(starts.last())
            .map_or(1, |(_, z)| *z)
    }
}

/// How the consumers' meters measure: the block-load capture period and the TOD zones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metering {
    pub period_s: i64,
    pub tod: TodZones,
}

impl Default for Metering {
    fn default() -> Self {
        Metering {
            period_s: crate::calendar::DEFAULT_PERIOD_S,
            tod: TodZones::default(),
        }
    }
}

/// A consumer's consumption on one IST day (use case 1.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyConsumption {
    pub consumer_no: String,
    pub day: NaiveDate,
    pub meters: Vec<MeterSerial>,
    pub figures: Figures,
    pub average_pf: Option<f64>,
    /// Whether any interval of the day was estimated.
    pub estimated: bool,
    /// Intervals expected (whole day at the capture period) that are not in the store.
    pub missing_intervals: u32,
}

/// A consumer's billing determinants for `[from, to)` (use case 2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingDeterminants {
    pub consumer_no: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub meters: Vec<MeterSerial>,
    /// kWh and kVAh import per TOD zone, index 0 = zone 1 (8 zones).
    pub zone_import_wh: [i64; 8],
    pub zone_import_vah: [i64; 8],
    pub figures: Figures,
    pub average_pf: Option<f64>,
    /// Export energy, for net-metered consumers only.
    pub export_wh: Option<i64>,
    pub export_vah: Option<i64>,
    pub estimated_intervals: u32,
    /// Intervals the span holds at the meters' capture periods that are not in the store (or
    /// are suspect): a bill from these determinants is provisional.
    #[serde(default)]
    pub missing_intervals: u32,
}

/// The intervals that measured a consumer's supply over a span, with each meter's capture
/// period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// The meters, in the order they were installed.
    pub meters: Vec<MeterSerial>,
    /// Oldest first.
    pub intervals: Vec<IntervalReading>,
    /// Capture period per meter, seconds; meters not listed use `Metering::period_s`.
    pub periods: HashMap<MeterSerial, i64>,
    /// How many intervals the span holds at the meters' periods.
    pub expected: u32,
}

impl Measured {
    fn period(&self, meter: &MeterSerial, metering: &Metering) -> i64 {
        self.periods
            .get(meter)
            .copied()
            .unwrap_or(metering.period_s)
    }

    /// Sums and peaks, each interval at its meter's period.
    pub fn figures(&self, metering: &Metering) -> Figures {
        let mut f = Figures::default();
        for r in &self.intervals {
            f.add(r, self.period(&r.meter, metering));
        }
        f
    }
}

/// Monthly determinants from the intervals that measured the consumer.
pub fn billing_determinants(
    consumer_no: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    measured: &Measured,
    metering: &Metering,
    net_metered: bool,
) -> BillingDeterminants {
    let mut zone_import_wh = [0i64; 8];
    let mut zone_import_vah = [0i64; 8];
    for r in measured
        .intervals
        .iter()
        .filter(|r| !r.quality.contains(&Quality::Suspect))
    {
        let period_s = measured.period(&r.meter, metering);
        let z = usize::from(metering.tod.zone_of(r.interval_end, period_s).clamp(1, 8) - 1);
        zone_import_wh[z] = zone_import_wh[z].saturating_add(r.import_wh);
        zone_import_vah[z] = zone_import_vah[z].saturating_add(r.import_vah);
    }
    let figures = measured.figures(metering);
    BillingDeterminants {
        consumer_no: consumer_no.to_string(),
        from,
        to,
        meters: measured.meters.clone(),
        zone_import_wh,
        zone_import_vah,
        average_pf: figures.average_pf(),
        export_wh: net_metered.then_some(figures.export_wh),
        export_vah: net_metered.then_some(figures.export_vah),
        estimated_intervals: figures.estimated_intervals,
        missing_intervals: measured.expected.saturating_sub(figures.intervals),
        figures,
    }
}

/// The intervals that measured `consumer_no`'s supply in `[from, to)`, each meter's within its
/// own installation span, with the meters and their capture periods.
fn consumer_intervals(
    store: &Store,
    consumer_no: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    metering: &Metering,
) -> Result<Measured, StoreError> {
    let mut measured = Measured::default();
    for i in store.mdm_meters_of_consumer(consumer_no, from, to)? {
        let period_s = match measured.periods.get(&i.meter) {
            Some(p) => *p,
            None => {
                let p = store
                    .mdm_capture_period(&i.meter)?
                    .unwrap_or(metering.period_s);
                measured.periods.insert(i.meter.clone(), p);
                p
            }
        };
        // An interval belongs to the span its energy was counted in: ends in (from, to].
        let rows = store.mdm_intervals(&i.meter, i.from + chrono::Duration::seconds(1), i.to)?;
        measured
            .intervals
            .extend(rows.into_iter().map(|s| s.reading));
        let span = (i.to - i.from).num_seconds().max(0);
        measured.expected = measured
            .expected
            .saturating_add(u32::try_from(span / period_s.max(1)).unwrap_or(u32::MAX));
        if !measured.meters.contains(&i.meter) {
            measured.meters.push(i.meter);
        }
    }
    measured.intervals.sort_by_key(|r| r.interval_end);
    Ok(measured)
}

/// The daily consumption of `consumer_no` on `day`, or `None` for an unknown consumer.
pub fn daily_for_consumer(
    store: &Store,
    consumer_no: &str,
    day: NaiveDate,
    metering: &Metering,
) -> Result<Option<DailyConsumption>, StoreError> {
    if store.mdm_consumer(consumer_no)?.is_none() {
        return Ok(None);
    }
    let (start, end) = day_bounds(day);
    let measured = consumer_intervals(store, consumer_no, start, end, metering)?;
    let figures = measured.figures(metering);
    let stored = figures.intervals + figures.suspect_intervals;
    Ok(Some(DailyConsumption {
        consumer_no: consumer_no.to_string(),
        day,
        meters: measured.meters,
        average_pf: figures.average_pf(),
        estimated: figures.estimated_intervals > 0,
        missing_intervals: measured.expected.saturating_sub(stored),
        figures,
    }))
}

/// A consumer's day as the prepaid charge run takes it: the import (Wh and VAh) in total and
/// per TOD zone, whether any of it was estimated, and how complete the day is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayFigures {
    pub consumer_no: String,
    pub import_wh: i64,
    pub import_vah: i64,
    /// Per TOD zone, index 0 = zone 1; they sum to the totals.
    pub zone_wh: [i64; 8],
    pub zone_vah: [i64; 8],
    /// Whether any interval of the day was estimated.
    pub estimated: bool,
    pub intervals: u32,
    /// Left out of the sums, as in [`Figures`].
    pub suspect_intervals: u32,
    /// Intervals expected at the meters' capture periods that are not in the store.
    pub missing_intervals: u32,
}

/// The TOD zone of every IST minute of the day, so a zone is a lookup.
struct ZoneTable([u8; 1440]);

impl ZoneTable {
    fn new(tod: &TodZones) -> ZoneTable {
        let mut starts: Vec<(u32, u8)> = tod
            .starts
            .iter()
            .map(|s| (u32::from(s.hour) * 60 + u32::from(s.minute), s.zone))
            .collect();
        starts.sort_unstable();
        let mut table = [1u8; 1440];
        for (minute, zone) in table.iter_mut().enumerate() {
            let minute = minute as u32;
            *zone = starts
                .iter()
                .rev()
                .find(|(m, _)| *m <= minute)
                .or(starts.last())
                .map_or(1, |(_, z)| *z)
                .clamp(1, 8);
        }
        ZoneTable(table)
    }

    /// The zone of an interval ending at `end_ms`, by the IST minute its energy started, as
    /// [`TodZones::zone_of`].
    fn zone(&self, end_ms: i64, period_s: i64) -> usize {
        let start_s = end_ms.div_euclid(1000) - period_s + IST_OFFSET_S;
        let minute = start_s.rem_euclid(86_400) / 60;
        usize::from(self.0[minute as usize]) - 1
    }
}

/// Every consumer's figures for `day` (IST) in one pass over the day's intervals (the meters
/// installed at each consumer's service point, each within its installation span), as
/// [`daily_for_consumer`] computes them one by one; ordered by consumer. A consumer with a
/// meter but no interval that day is listed with everything missing.
pub fn daily_for_all(
    store: &Store,
    day: NaiveDate,
    metering: &Metering,
) -> Result<Vec<DayFigures>, StoreError> {
    let (start, end) = day_bounds(day);
    let zones = ZoneTable::new(&metering.tod);
    let mut out: Vec<DayFigures> = Vec::new();
    store.mdm_consumer_intervals_all(start, end, |span| {
        if out.last().is_none_or(|f| f.consumer_no != span.consumer_no) {
            out.push(DayFigures {
                consumer_no: span.consumer_no.to_string(),
                import_wh: 0,
                import_vah: 0,
                zone_wh: [0; 8],
                zone_vah: [0; 8],
                estimated: false,
                intervals: 0,
                suspect_intervals: 0,
                missing_intervals: 0,
            });
        }
        let Some(f) = out.last_mut() else { return };
        let period_s = span.period_s.unwrap_or(metering.period_s).max(1);
        let expected =
            u32::try_from((span.to_ms - span.from_ms).max(0) / 1000 / period_s).unwrap_or(u32::MAX);
        // The expected count for now; what is stored is taken off below.
        f.missing_intervals = f.missing_intervals.saturating_add(expected);
        for i in span.intervals {
            if i.suspect {
                f.suspect_intervals += 1;
                continue;
            }
            f.intervals += 1;
            f.estimated |= i.estimated;
            let z = zones.zone(i.end_ms, period_s);
            f.import_wh = f.import_wh.saturating_add(i.import_wh);
            f.import_vah = f.import_vah.saturating_add(i.import_vah);
            f.zone_wh[z] = f.zone_wh[z].saturating_add(i.import_wh);
            f.zone_vah[z] = f.zone_vah[z].saturating_add(i.import_vah);
        }
    })?;
    for f in &mut out {
        f.missing_intervals = f
            .missing_intervals
            .saturating_sub(f.intervals + f.suspect_intervals);
    }
    Ok(out)
}

/// The billing determinants of `consumer_no` for `[from, to)`, or `None` for an unknown
/// consumer.
pub fn determinants_for_consumer(
    store: &Store,
    consumer_no: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    metering: &Metering,
) -> Result<Option<BillingDeterminants>, StoreError> {
    let Some(consumer) = store.mdm_consumer(consumer_no)? else {
        return Ok(None);
    };
    let measured = consumer_intervals(store, consumer_no, from, to, metering)?;
    Ok(Some(billing_determinants(
        consumer_no,
        from,
        to,
        &measured,
        metering,
        consumer.net_metered,
    )))
}

/// The meter's registers at the start and the end of a billing period, as a bill shows them
/// (previous and present readings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodReadings {
    pub meter: MeterSerial,
    /// Where they were read: `billing_profile` (the meter's billing-date snapshot, which also
    /// gives the period's maximum demand) or `daily_profile` (the midnight snapshots).
    pub source: String,
    pub previous_at: DateTime<Utc>,
    pub present_at: DateTime<Utc>,
    pub previous_wh: i64,
    pub present_wh: i64,
    pub previous_vah: i64,
    pub present_vah: i64,
    pub previous_export_wh: Option<i64>,
    pub present_export_wh: Option<i64>,
}

/// A meter's cumulative registers at an instant (a billing-profile row or a midnight
/// snapshot).
struct Registers {
    at: DateTime<Utc>,
    wh: i64,
    vah: i64,
    export_wh: Option<i64>,
}

impl From<&BillingReading> for Registers {
    fn from(r: &BillingReading) -> Self {
        Registers {
            at: r.billing_date,
            wh: r.import_wh,
            vah: r.import_vah,
            export_wh: r.export_wh,
        }
    }
}

impl From<&DailyReading> for Registers {
    fn from(r: &DailyReading) -> Self {
        Registers {
            at: r.captured_at,
            wh: r.import_wh,
            vah: r.import_vah,
            export_wh: r.export_wh,
        }
    }
}

impl PeriodReadings {
    fn between(meter: &MeterSerial, source: &str, previous: Registers, present: Registers) -> Self {
        PeriodReadings {
            meter: meter.clone(),
            source: source.into(),
            previous_at: previous.at,
            present_at: present.at,
            previous_wh: previous.wh,
            present_wh: present.wh,
            previous_vah: previous.vah,
            present_vah: present.vah,
            previous_export_wh: previous.export_wh,
            present_export_wh: present.export_wh,
        }
    }
}

/// Determinants of `[from, to)` from the meter's billing-profile rows at its two ends: energy
/// as the registers' advance (per TOD zone where both rows have the zone registers), the
/// period's maximum demand and average power factor as the meter recorded them. `None` when
/// a register went backwards (a meter reset or rollover: the intervals decide instead).
pub fn determinants_from_registers(
    consumer_no: &str,
    previous: &BillingReading,
    present: &BillingReading,
    net_metered: bool,
) -> Option<BillingDeterminants> {
    let advance = |a: i64, b: i64| (b >= a).then_some(b - a);
    let import_wh = advance(previous.import_wh, present.import_wh)?;
    let import_vah = advance(previous.import_vah, present.import_vah)?;
    let export = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => advance(a, b).map(Some),
        _ => Some(None),
    };
    let export_wh = export(previous.export_wh, present.export_wh)?;
    let export_vah = export(previous.export_vah, present.export_vah)?;
    let zones = |before: &[i64], now: &[i64], total: i64| -> Option<[i64; 8]> {
        let mut z = [0i64; 8];
        if before.len() == now.len() && !now.is_empty() && now.len() <= 8 {
            for (i, (a, b)) in before.iter().zip(now).enumerate() {
                z[i] = advance(*a, *b)?;
            }
        } else {
            z[0] = total;
        }
        Some(z)
    };
    let zone_import_wh = zones(&previous.tod_import_wh, &present.tod_import_wh, import_wh)?;
    let zone_import_vah = zones(
        &previous.tod_import_vah,
        &present.tod_import_vah,
        import_vah,
    )?;
    let peak = |d: &Option<model::Demand>| {
        d.map(|d| PeakDemand {
            value: d.value.round() as i64,
            at: d.at.unwrap_or(present.billing_date),
        })
    };
    let figures = Figures {
        import_wh,
        import_vah,
        export_wh: export_wh.unwrap_or(0),
        export_vah: export_vah.unwrap_or(0),
        max_w: peak(&present.md_w),
        max_va: peak(&present.md_va),
        ..Figures::default()
    };
    Some(BillingDeterminants {
        consumer_no: consumer_no.to_string(),
        from: previous.billing_date,
        to: present.billing_date,
        meters: vec![present.meter.clone()],
        zone_import_wh,
        zone_import_vah,
        average_pf: present.avg_power_factor.or_else(|| figures.average_pf()),
        export_wh: net_metered.then_some(export_wh.unwrap_or(0)),
        export_vah: net_metered.then_some(export_vah.unwrap_or(0)),
        estimated_intervals: 0,
        missing_intervals: 0,
        figures,
    })
}

/// The one meter that measured `consumer_no` over the whole of `[from, to)`, if one did.
fn sole_meter(
    store: &Store,
    consumer_no: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<MeterSerial>, StoreError> {
    let installs = store.mdm_meters_of_consumer(consumer_no, from, to)?;
    Ok(match installs.as_slice() {
        [one] if one.from <= from && one.to >= to => Some(one.meter.clone()),
        _ => None,
    })
}

/// A snapshot taken at `at` (within the hour after it): the meter's clock and the collection
/// may put it a little past midnight.
const SNAPSHOT_SLACK: chrono::Duration = chrono::Duration::hours(1);

/// The meter to ask for its billing profile (use case 2.1) so that `[from, to)` can be billed
/// from registers: the period's one meter, when it lacks the row at either end.
pub fn billing_rows_wanted(
    store: &Store,
    consumer_no: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<MeterSerial>, StoreError> {
    let Some(meter) = sole_meter(store, consumer_no, from, to)? else {
        return Ok(None);
    };
    for at in [from, to] {
        if store
            .mdm_billing(&meter, at, at + SNAPSHOT_SLACK)?
            .is_empty()
        {
            return Ok(Some(meter));
        }
    }
    Ok(None)
}

/// The billing determinants of a billing period `[from, to)` (use case 2.5) and the readings
/// the bill shows, or `None` for an unknown consumer. From the billing profile where the one
/// meter of the period has its rows at both ends (two rows, however many intervals); else
/// from the intervals, with the midnight snapshots as the readings where there are both.
pub fn determinants_for_period(
    store: &Store,
    consumer_no: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    metering: &Metering,
) -> Result<Option<(BillingDeterminants, Option<PeriodReadings>)>, StoreError> {
    let Some(consumer) = store.mdm_consumer(consumer_no)? else {
        return Ok(None);
    };
    let meter = sole_meter(store, consumer_no, from, to)?;
    if let Some(meter) = &meter {
        let first = |at| -> Result<Option<BillingReading>, StoreError> {
            Ok(store
                .mdm_billing(meter, at, at + SNAPSHOT_SLACK)?
                .into_iter()
                .next())
        };
        if let (Some(previous), Some(present)) = (first(from)?, first(to)?)
            && let Some(d) =
                determinants_from_registers(consumer_no, &previous, &present, consumer.net_metered)
        {
            let readings = PeriodReadings::between(
                meter,
                "billing_profile",
                Registers::from(&previous),
                Registers::from(&present),
            );
            return Ok(Some((d, Some(readings))));
        }
    }
    let measured = consumer_intervals(store, consumer_no, from, to, metering)?;
    let d = billing_determinants(
        consumer_no,
        from,
        to,
        &measured,
        metering,
        consumer.net_metered,
    );
    let mut readings = None;
    if let Some(meter) = meter {
        let first = |at| -> Result<Option<DailyReading>, StoreError> {
            Ok(store
                .mdm_daily(&meter, at, at + SNAPSHOT_SLACK)?
                .into_iter()
                .next())
        };
        if let (Some(previous), Some(present)) = (first(from)?, first(to)?) {
            readings = Some(PeriodReadings::between(
                &meter,
                "daily_profile",
                Registers::from(&previous),
                Registers::from(&present),
            ));
        }
    }
    Ok(Some((d, readings)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn billing_row(at: &str, wh: i64, zones: Vec<i64>, md_w: f64) -> BillingReading {
        BillingReading {
            meter: MeterSerial::new("M1").unwrap(),
            billing_date: at.parse().unwrap(),
            avg_power_factor: Some(0.93),
            import_wh: wh,
            tod_import_wh: zones.clone(),
            import_vah: wh * 2,
            tod_import_vah: zones.iter().map(|z| z * 2).collect(),
            md_w: Some(model::Demand {
                value: md_w,
                at: None,
            }),
            tod_md_w: vec![],
            md_va: None,
            tod_md_va: vec![],
            power_on_minutes: None,
            export_wh: Some(wh / 10),
            export_vah: None,
            reactive_q1_q4_varh: None,
            quality: vec![],
        }
    }

    #[test]
    fn registers_give_the_advance_per_zone_and_the_period_s_demand() {
        let before = billing_row("2026-10-31T18:30:00Z", 10_000, vec![4_000, 6_000], 900.0);
        let now = billing_row("2026-11-30T18:30:00Z", 25_000, vec![9_000, 16_000], 2_499.6);
        let d = determinants_from_registers("C-1", &before, &now, true).unwrap();
        assert_eq!(d.figures.import_wh, 15_000);
        assert_eq!(d.zone_import_wh[..3], [5_000, 10_000, 0]);
        assert_eq!(d.zone_import_vah[..2], [10_000, 20_000]);
        assert_eq!(d.figures.max_w.unwrap().value, 2_500);
        assert_eq!(d.figures.max_w.unwrap().at, now.billing_date);
        assert_eq!(d.average_pf, Some(0.93));
        // Export: kWh from both rows; kVAh not recorded, so none.
        assert_eq!((d.export_wh, d.export_vah), (Some(1_500), Some(0)));
        assert_eq!((d.estimated_intervals, d.missing_intervals), (0, 0));
        // Without zone registers on one side, the whole advance is zone 1.
        let bare = BillingReading {
            tod_import_wh: vec![],
            ..now.clone()
        };
        let d = determinants_from_registers("C-1", &before, &bare, false).unwrap();
        assert_eq!(d.zone_import_wh[0], 15_000);
        assert_eq!(d.export_wh, None);
        // A register that went backwards: not billed from registers.
        let reset = billing_row("2026-11-30T18:30:00Z", 500, vec![200, 300], 100.0);
        assert!(determinants_from_registers("C-1", &before, &reset, false).is_none());
    }

    fn reading(end: &str, wh: i64, vah: i64, export: i64, estimated: bool) -> IntervalReading {
        IntervalReading {
            meter: MeterSerial::new("M1").unwrap(),
            interval_end: end.parse().unwrap(),
            avg_voltage_v: None,
            avg_current_a: None,
            avg_phase_voltage_v: None,
            avg_phase_current_a: None,
            import_wh: wh,
            import_vah: vah,
            export_wh: Some(export),
            export_vah: Some(export),
            quality: if estimated {
                vec![Quality::Estimated]
            } else {
                vec![]
            },
        }
    }

    /// Sums and peaks of `rows`, all at the default 15-minute period.
    fn figures(rows: &[IntervalReading]) -> Figures {
        Measured {
            intervals: rows.to_vec(),
            ..Measured::default()
        }
        .figures(&Metering::default())
    }

    #[test]
    fn sums_peaks_and_power_factor() {
        // 15-minute intervals: 250 Wh in a quarter hour is 1 kW.
        let rows = [
            reading("2026-12-01T00:30:00Z", 250, 300, 0, false),
            reading("2026-12-01T00:45:00Z", 500, 520, 10, true),
            reading("2026-12-01T01:00:00Z", 500, 600, 0, false),
        ];
        let f = figures(&rows);
        assert_eq!((f.import_wh, f.import_vah, f.export_wh), (1250, 1420, 10));
        assert_eq!(f.intervals, 3);
        assert_eq!(f.estimated_intervals, 1);
        // 500 Wh in 15 min = 2 kW: the first of the two equal peaks is kept.
        assert_eq!(
            f.max_w,
            Some(PeakDemand {
                value: 2000,
                at: "2026-12-01T00:45:00Z".parse().unwrap()
            })
        );
        assert_eq!(f.max_va.unwrap().value, 2400);
        assert!((f.average_pf().unwrap() - 1250.0 / 1420.0).abs() < 1e-12);
        assert_eq!(figures(&[]).average_pf(), None);
    }

    #[test]
    fn suspect_intervals_are_not_billed_and_sums_do_not_overflow() {
        let mut spike = reading("2026-12-01T00:45:00Z", 90_000, 90_000, 0, false);
        spike.quality = vec![Quality::Suspect];
        let rows = [
            reading(
                "2026-12-01T00:30:00Z",
                i64::MAX - 10,
                i64::MAX - 10,
                0,
                false,
            ),
            spike,
            reading("2026-12-01T01:00:00Z", 100, 100, 0, false),
        ];
        let f = figures(&rows);
        assert_eq!(f.import_wh, i64::MAX);
        assert_eq!((f.intervals, f.suspect_intervals), (2, 1));
        let measured = Measured {
            intervals: rows.to_vec(),
            ..Measured::default()
        };
        let d = billing_determinants(
            "C1",
            "2026-11-30T18:30:00Z".parse().unwrap(),
            "2026-12-01T18:30:00Z".parse().unwrap(),
            &measured,
            &Metering::default(),
            false,
        );
        assert_eq!(d.zone_import_wh[0], i64::MAX - 10);
        // Zone 2 (from 06:00 IST) has the suspect 90 kWh and 100 Wh: only the 100 is billed.
        assert_eq!(d.zone_import_wh[1], 100);
    }

    #[test]
    fn tod_zones_follow_the_ist_clock() {
        let tod = TodZones::default();
        // Interval 00:15–00:30 UTC is 05:45–06:00 IST: night zone 1.
        assert_eq!(tod.zone_of("2026-12-01T00:30:00Z".parse().unwrap(), 900), 1);
        // 00:30–00:45 UTC is 06:00–06:15 IST: morning peak, zone 2.
        assert_eq!(tod.zone_of("2026-12-01T00:45:00Z".parse().unwrap(), 900), 2);
        // 13:00 UTC = 18:30 IST: evening peak, zone 4.
        assert_eq!(tod.zone_of("2026-12-01T13:00:00Z".parse().unwrap(), 900), 4);
        // 18:45 UTC = 00:15 IST: before the first start, the last zone (1) carries on.
        assert_eq!(tod.zone_of("2026-12-01T18:45:00Z".parse().unwrap(), 900), 1);
    }

    #[test]
    fn determinants_split_by_zone_and_report_export_only_when_net_metered() {
        let rows = [
            reading("2026-12-01T00:30:00Z", 100, 110, 5, false), // zone 1
            reading("2026-12-01T00:45:00Z", 200, 220, 5, false), // zone 2
            reading("2026-12-01T13:00:00Z", 400, 450, 0, true),  // zone 4
        ];
        let (from, to) = (
            "2026-11-30T18:30:00Z".parse().unwrap(),
            "2026-12-31T18:30:00Z".parse().unwrap(),
        );
        let metering = Metering::default();
        let measured = Measured {
            intervals: rows.to_vec(),
            ..Measured::default()
        };
        let d = billing_determinants("C1", from, to, &measured, &metering, true);
        assert_eq!(d.zone_import_wh, [100, 200, 0, 400, 0, 0, 0, 0]);
        assert_eq!(d.zone_import_vah, [110, 220, 0, 450, 0, 0, 0, 0]);
        assert_eq!(d.figures.import_wh, 700);
        assert_eq!(d.export_wh, Some(10));
        assert_eq!(d.estimated_intervals, 1);
        assert_eq!(d.figures.max_w.unwrap().value, 1600);
        let plain = billing_determinants("C1", from, to, &measured, &metering, false);
        assert_eq!((plain.export_wh, plain.export_vah), (None, None));
    }
}

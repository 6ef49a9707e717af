//! The load model: what a meter measured, computed on demand from (seed, meter, time) with no
//! stored state beyond the meter's own run-time changes (on-demand outages, relay-open periods).
//!
//! - A per-meter [`MeterProfile`] (sanctioned load, habits, installation date, clock drift) is
//!   derived from hashes of the seed and meter index.
//! - A day's energy follows a diurnal Indian household curve (morning and evening peaks, a night
//!   trough), with a later morning on weekends, a summer cooling load, winter water heating and a
//!   day-to-day noise from a hash. The curve is a weighted sum of fixed quarter-hour shapes, so a
//!   day's total costs a few multiplications, not a walk over its intervals.
//! - Energy is integer Wh / VAh per capture interval: the day's total split over its intervals
//!   along the curve with per-interval noise, in whole units that add up exactly to the day. The
//!   cumulative registers are *defined* as the sum of the intervals since installation (a whole
//!   day with the supply on is added as its total), so block load, daily snapshots, billing and
//!   the instantaneous registers agree exactly.
//! - Power is off during outages (a deterministic daily schedule, the `power-off` fault, and
//!   on-demand outages): no consumption, and no block-load row for an interval whose end falls in
//!   an outage; the energy used before the failure is carried into the first row after it (as a
//!   real meter's block energy is the register difference between two captures).
//! - While the relay is open the meter is powered but nothing is consumed: rows of zero energy.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

use crate::hash::{hash, signed_unit, tag, unit};

/// IST offset from UTC, seconds.
pub const IST_SECS: i64 = 19_800;
pub const DAY: i64 = 86_400;

/// Local (IST) day number of a UTC instant.
pub fn local_day(t: i64) -> i64 {
    (t + IST_SECS).div_euclid(DAY)
}

/// The UTC instant of local midnight starting local day `day`.
pub fn local_midnight(day: i64) -> i64 {
    day * DAY - IST_SECS
}

pub fn to_chrono(t: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}

fn local_naive(t: i64) -> chrono::NaiveDateTime {
    to_chrono(t + IST_SECS).naive_utc()
}

/// The slow-changing character of one meter's consumer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterProfile {
    /// Sanctioned load, W.
    pub sanctioned_w: u32,
    /// Mean load as a share of the sanctioned load.
    pub base_share: f64,
    pub morning: f64,
    pub evening: f64,
    /// Air-conditioning: 0 (none) .. 1 (heavy).
    pub cooling: f64,
    pub pf: f64,
    /// Supply voltage offset from 230 V at this meter.
    pub voltage_offset: f64,
    /// Clock drift, parts per million.
    pub drift_ppm: f64,
    /// Installation instant (local midnight), UTC seconds.
    pub installed: i64,
}

/// Anchor of the installation dates: 2026-01-01 00:00 IST. Meters are installed within the 90
/// days before it.
const INSTALL_ANCHOR_DAY: i64 = 20_454; // days from 1970-01-01 to 2026-01-01

impl MeterProfile {
    pub fn derive(seed: u64, meter: u32) -> Self {
        let h = |what: u64, k: u64| hash(seed, &[what, meter as u64, k]);
        const LOADS: [u32; 8] = [1000, 2000, 2000, 3000, 3000, 4000, 5000, 7000];
        MeterProfile {
            sanctioned_w: LOADS[(h(tag::SANCTIONED, 0) % 8) as usize],
            base_share: 0.12 + 0.14 * unit(h(tag::CURVE, 0)),
            morning: 0.5 + 0.8 * unit(h(tag::CURVE, 1)),
            evening: 0.9 + 1.1 * unit(h(tag::CURVE, 2)),
            cooling: if unit(h(tag::CURVE, 3)) < 0.45 {
                0.4 + 1.2 * unit(h(tag::CURVE, 4))
            } else {
                0.0
            },
            pf: 0.86 + 0.11 * unit(h(tag::PF, 0)),
            voltage_offset: 8.0 * signed_unit(h(tag::VOLTAGE, 0)),
            drift_ppm: 15.0 * signed_unit(h(tag::DRIFT, 0)),
            installed: local_midnight(INSTALL_ANCHOR_DAY - (h(tag::INSTALL, 0) % 90) as i64),
        }
    }
}

/// A set of disjoint, sorted half-open time intervals `[start, end)`, UTC seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans(Vec<(i64, i64)>);

impl Spans {
    pub fn from_unsorted(mut v: Vec<(i64, i64)>) -> Self {
        v.retain(|(s, e)| e > s);
        v.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
        for (s, e) in v {
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        Spans(out)
    }

    pub fn union(&self, other: &Spans) -> Spans {
        Spans::from_unsorted(self.0.iter().chain(other.0.iter()).copied().collect())
    }

    pub fn contains(&self, t: i64) -> bool {
        let i = self.0.partition_point(|(_, e)| *e <= t);
        self.0.get(i).is_some_and(|(s, _)| *s <= t)
    }

    /// Seconds of `[t0, t1)` covered.
    pub fn overlap(&self, t0: i64, t1: i64) -> i64 {
        let mut i = self.0.partition_point(|(_, e)| *e <= t0);
        let mut total = 0;
        while let Some(&(s, e)) = self.0.get(i) {
            if s >= t1 {
                break;
            }
            total += e.min(t1) - s.max(t0);
            i += 1;
        }
        total
    }

    pub fn spans(&self) -> &[(i64, i64)] {
        &self.0
    }
}

/// One capture interval as the meter recorded it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Interval index: the interval is `[index * period, (index + 1) * period)`.
    pub index: i64,
    /// End of the interval (the row's time stamp), UTC seconds.
    pub end: i64,
    /// Energy consumed in the interval, Wh and VAh.
    pub wh: i64,
    pub vah: i64,
    /// Seconds powered in the interval.
    pub powered_secs: i64,
    /// Whether the meter was powered at the end of the interval (a row is recorded).
    pub recorded: bool,
    /// Average voltage over the powered part, V.
    pub voltage: f64,
}

/// A block-load row: energy since the previous row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockRow {
    pub end: i64,
    pub voltage: f64,
    pub current: f64,
    pub wh: i64,
    pub vah: i64,
    pub export_wh: i64,
    pub export_vah: i64,
}

/// Cumulative and period totals.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    pub wh: i64,
    pub vah: i64,
    pub export_wh: i64,
    pub export_vah: i64,
    pub powered_secs: i64,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.wh += other.wh;
        self.vah += other.vah;
        self.export_wh += other.export_wh;
        self.export_vah += other.export_vah;
        self.powered_secs += other.powered_secs;
    }

    fn add_interval(&mut self, iv: &Interval) {
        self.wh += iv.wh;
        self.vah += iv.vah;
        self.powered_secs += iv.powered_secs;
    }
}

/// Maximum demand and when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Demand {
    /// W or VA (average over a capture interval).
    pub value: i64,
    /// End of the interval, UTC seconds; 0 when there was none.
    pub at: i64,
}

/// One billing period's closing values (a billing profile row).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BillingRow {
    /// The billing date (local midnight on the 1st), UTC seconds.
    pub at: i64,
    /// Cumulative at the billing date.
    pub cumulative: Totals,
    /// Cumulative per TOD zone 1..=8, Wh and VAh.
    pub zone_wh: [i64; 8],
    pub zone_vah: [i64; 8],
    /// MD in the period, overall and per zone.
    pub md_w: Demand,
    pub md_va: Demand,
    pub zone_md_w: [Demand; 8],
    pub zone_md_va: [Demand; 8],
    /// Energy and powered time in the period.
    pub period: Totals,
}

impl BillingRow {
    /// Average PF in the period (kWh / kVAh), 1.0 when nothing was consumed.
    pub fn average_pf(&self) -> f64 {
        if self.period.vah == 0 {
            1.0
        } else {
            self.period.wh as f64 / self.period.vah as f64
        }
    }
}

/// The default TOD calendar: zone (1-based) of each local hour. 1 off-peak night (22-06),
/// 2 morning peak (06-10), 3 normal day (10-18), 4 evening peak (18-22).
pub const TOD_ZONES: [u8; 24] = [
    1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 1, 1,
];

pub fn tod_zone(t: i64) -> u8 {
    TOD_ZONES[(((t + IST_SECS).rem_euclid(DAY)) / 3600) as usize]
}

/// A TOD day profile: where each zone starts (minute of the local day, zone 1..=8), sorted by
/// minute. A zone lasts until the next start; the last one wraps past midnight to the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodTable(Vec<(u16, u8)>);

impl TodTable {
    /// `None` when empty, a minute is past the day, a zone is not 1..=8 or two zones start at
    /// the same minute.
    pub fn new(mut starts: Vec<(u16, u8)>) -> Option<Self> {
        starts.sort_unstable();
        let valid = !starts.is_empty()
            && starts.iter().all(|(m, z)| *m < 1440 && (1..=8).contains(z))
            && starts.windows(2).all(|w| w[0].0 != w[1].0);
        valid.then_some(TodTable(starts))
    }

    /// The default calendar ([`TOD_ZONES`]).
    pub fn default_table() -> Self {
        let mut starts = Vec::new();
        let mut last = 0u8;
        for (h, z) in TOD_ZONES.iter().enumerate() {
            if *z != last {
                starts.push((h as u16 * 60, *z));
                last = *z;
            }
        }
        TodTable(starts)
    }

    pub fn starts(&self) -> &[(u16, u8)] {
        &self.0
    }

    /// The zone in force at local minute `minute` of the day.
    pub fn zone_at_minute(&self, minute: u16) -> u8 {
        let i = self.0.partition_point(|(m, _)| *m <= minute);
        let found = if i == 0 {
            self.0.last()
        } else {
            self.0.get(i - 1)
        };
        found.map_or(1, |(_, z)| *z)
    }

    /// The zone in force at UTC instant `t`.
    pub fn zone_at(&self, t: i64) -> u8 {
        self.zone_at_minute(((t + IST_SECS).rem_euclid(DAY) / 60) as u16)
    }
}

/// When a billing period closes: on `day` of every month at `secs_of_day` local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingSchedule {
    /// Day of the month, 1..=28.
    pub day: u8,
    /// Local time of day, seconds.
    pub secs_of_day: i64,
}

impl Default for BillingSchedule {
    /// The 1st of the month at 00:00.
    fn default() -> Self {
        BillingSchedule {
            day: 1,
            secs_of_day: 0,
        }
    }
}

impl BillingSchedule {
    /// The next billing instant strictly after `t`.
    pub fn next_after(&self, t: i64) -> i64 {
        let local = local_naive(t);
        let (mut y, mut m) = (local.year(), local.month());
        loop {
            let at = NaiveDate::from_ymd_opt(y, m, self.day.clamp(1, 28) as u32)
                .map(|d| local_midnight(days_from_epoch(d)) + self.secs_of_day)
                .unwrap_or(i64::MAX);
            if at > t {
                return at;
            }
            (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        }
    }
}

fn days_from_epoch(d: NaiveDate) -> i64 {
    d.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default())
        .num_days()
}

/// Everything needed to compute one meter's measurements.
#[derive(Debug, Clone)]
pub struct LoadModel {
    pub seed: u64,
    pub meter: u32,
    /// Capture period, seconds (900 or 1800).
    pub period: i64,
    pub profile: MeterProfile,
    /// Whether the grid fails now and then on its own (the deterministic outage schedule).
    pub scheduled_outages: bool,
    /// Length of the daily `power-off` fault outage, seconds.
    pub daily_outage: Option<i64>,
    /// On-demand outages.
    pub extra_outages: Spans,
    /// Periods with the relay open (powered, no consumption).
    pub disconnected: Spans,
    /// TOD calendars activated at run time: (from when, day profile), oldest first. Before the
    /// first, [`TOD_ZONES`].
    pub tod: Vec<(i64, TodTable)>,
    /// Billing date changes: (from when, schedule), oldest first. Before the first, the 1st.
    pub billing_changes: Vec<(i64, BillingSchedule)>,
    /// Block-load capture period changes: (from when, seconds), oldest first. A row ending
    /// after a change follows its period when that is a multiple of [`LoadModel::period`] (the
    /// resolution energy is modelled at); other periods leave the rows at the modelled one.
    pub capture_changes: Vec<(i64, i64)>,
    /// Last maximum demand reset (`i64::MIN`: never): the period's MD restarts after it.
    pub md_reset_at: i64,
}

fn bump(x: f64, centre: f64, width: f64) -> f64 {
    let d = (x - centre) / width;
    (-0.5 * d * d).exp()
}

/// The curve is drawn in quarter hours of the local day.
const SLOT_SECS: i64 = 900;
const SLOTS: usize = (DAY / SLOT_SECS) as usize;
const SLOT_HOURS: f64 = SLOT_SECS as f64 / 3600.0;
/// Most intervals in a day (the shortest capture period is a quarter hour).
const INTERVALS_MAX: usize = SLOTS;

/// The shapes a household's day is made of, per quarter hour (weekday, weekend), computed once:
/// a day's curve is a weighted sum of them, so its total needs no walk over the day.
struct CurveTable {
    /// Always on, less a night trough, plus an early-afternoon rise (and a weekend one).
    base: [[f64; SLOTS]; 2],
    /// The morning peak (later at weekends).
    morning: [[f64; SLOTS]; 2],
    /// The evening peak.
    evening: [f64; SLOTS],
    /// Air-conditioning through the afternoon and the night.
    cooling: [f64; SLOTS],
    /// Water heating in the morning.
    heating: [[f64; SLOTS]; 2],
    /// Sums over the day of each shape.
    sums: CurveSums,
}

#[derive(Debug, Clone, Copy, Default)]
struct CurveSums {
    base: [f64; 2],
    morning: [f64; 2],
    evening: f64,
    cooling: f64,
    heating: [f64; 2],
}

impl CurveTable {
    fn get() -> &'static CurveTable {
        static TABLE: std::sync::OnceLock<CurveTable> = std::sync::OnceLock::new();
        TABLE.get_or_init(CurveTable::build)
    }

    fn build() -> CurveTable {
        let mut t = CurveTable {
            base: [[0.0; SLOTS]; 2],
            morning: [[0.0; SLOTS]; 2],
            evening: [0.0; SLOTS],
            cooling: [0.0; SLOTS],
            heating: [[0.0; SLOTS]; 2],
            sums: CurveSums::default(),
        };
        for s in 0..SLOTS {
            let hour = (s as f64 + 0.5) * SLOT_HOURS;
            for weekend in [false, true] {
                let w = weekend as usize;
                let morning_at = if weekend { 9.0 } else { 7.5 };
                t.base[w][s] = 0.55 - 0.3 * bump(hour, 3.5, 1.6)
                    + 0.25 * bump(hour, 13.5, 3.0)
                    + if weekend {
                        0.25 * bump(hour, 14.0, 4.0)
                    } else {
                        0.0
                    };
                t.morning[w][s] = bump(hour, morning_at, 1.3);
                t.heating[w][s] = 0.6 * bump(hour, morning_at, 1.0);
                t.sums.base[w] += t.base[w][s];
                t.sums.morning[w] += t.morning[w][s];
                t.sums.heating[w] += t.heating[w][s];
            }
            t.evening[s] = bump(hour, 20.5, 1.8);
            t.cooling[s] = 0.5
                + 0.8 * bump(hour, 15.0, 3.5)
                + 0.9 * bump(hour, 23.5, 2.5)
                + 0.6 * bump(hour, 1.5, 2.0);
            t.sums.evening += t.evening[s];
            t.sums.cooling += t.cooling[s];
        }
        t
    }
}

/// One household's weights of the [`CurveTable`] shapes on one day.
#[derive(Debug, Clone, Copy)]
struct DayCurve {
    weekend: bool,
    morning: f64,
    evening: f64,
    cooling: f64,
    heating: f64,
}

impl DayCurve {
    /// Relative demand in quarter hour `slot`.
    fn shape(&self, t: &CurveTable, slot: usize) -> f64 {
        let w = self.weekend as usize;
        t.base[w][slot]
            + self.morning * t.morning[w][slot]
            + self.evening * t.evening[slot]
            + self.cooling * t.cooling[slot]
            + self.heating * t.heating[w][slot]
    }

    /// The sum of [`DayCurve::shape`] over the day.
    fn day_sum(&self) -> f64 {
        let (s, w) = (&CurveTable::get().sums, self.weekend as usize);
        s.base[w]
            + self.morning * s.morning[w]
            + self.evening * s.evening
            + self.cooling * s.cooling
            + self.heating * s.heating[w]
    }
}

/// `total` split in whole units in proportion to `weights` (all >= 0): each share is the
/// difference of the rounded running totals, so the shares add up to `total` exactly.
fn apportion(total: i64, weights: &[f64]) -> impl Iterator<Item = i64> + '_ {
    let sum = weights.iter().fold(0.0, |a, w| a + w);
    let (mut running, mut given) = (0.0, 0i64);
    weights.iter().enumerate().map(move |(i, w)| {
        running += w;
        let upto = if i + 1 == weights.len() {
            total
        } else if sum > 0.0 {
            (total as f64 * running / sum).round() as i64
        } else {
            0
        };
        let share = upto - given;
        given = upto;
        share
    })
}

impl LoadModel {
    pub fn new(seed: u64, meter: u32, period: i64) -> Self {
        LoadModel {
            seed,
            meter,
            period,
            profile: MeterProfile::derive(seed, meter),
            scheduled_outages: true,
            daily_outage: None,
            extra_outages: Spans::default(),
            disconnected: Spans::default(),
            tod: Vec::new(),
            billing_changes: Vec::new(),
            capture_changes: Vec::new(),
            md_reset_at: i64::MIN,
        }
    }

    /// The TOD zone in force at `t`.
    pub fn zone_at(&self, t: i64) -> u8 {
        match self.tod.iter().rev().find(|(from, _)| *from <= t) {
            Some((_, table)) => table.zone_at(t),
            None => tod_zone(t),
        }
    }

    /// The next billing instant strictly after `t`, following billing date changes: a change
    /// applies to the billing dates after it.
    pub fn next_bill(&self, t: i64) -> i64 {
        let mut since = t;
        loop {
            let schedule = self
                .billing_changes
                .iter()
                .rev()
                .find(|(from, _)| *from <= since)
                .map(|(_, s)| *s)
                .unwrap_or_default();
            let next = schedule.next_after(since);
            match self.billing_changes.iter().find(|(from, _)| *from > since) {
                Some((change, _)) if *change < next => since = *change,
                _ => return next,
            }
        }
    }

    /// The block-load capture period a row ending at `end` follows, seconds.
    pub fn row_period(&self, end: i64) -> i64 {
        match self
            .capture_changes
            .iter()
            .rev()
            .find(|(from, _)| *from < end)
        {
            Some((_, p)) if *p > 0 && p % self.period == 0 => *p,
            _ => self.period,
        }
    }

    /// Whether a block-load row is captured at `end` (an interval end on the period in force).
    fn row_boundary(&self, end: i64) -> bool {
        end.rem_euclid(self.row_period(end)) == 0
    }

    fn h(&self, what: u64, k: i64) -> u64 {
        hash(self.seed, &[what, self.meter as u64, k as u64])
    }

    /// The scheduled outages that start on local day `day`.
    fn day_outages(&self, day: i64, out: &mut Vec<(i64, i64)>) {
        let h = self.h(tag::OUTAGE, day);
        if self.scheduled_outages && unit(h) < 0.05 {
            let start = local_midnight(day) + (mix(h, 1) % 1440) as i64 * 60;
            let minutes = 2 + (mix(h, 2) % 118) as i64;
            out.push((start, start + minutes * 60));
        }
        if let Some(len) = self.daily_outage {
            let minute = (hash(self.seed, &[tag::FAULT_PARAM, self.meter as u64]) % 1440) as i64;
            let start = local_midnight(day) + minute * 60;
            out.push((start, start + len));
        }
    }

    /// Every outage overlapping `[t0, t1)`, merged.
    pub fn outages(&self, t0: i64, t1: i64) -> Spans {
        let mut v = Vec::new();
        for day in local_day(t0) - 1..=local_day(t1) {
            self.day_outages(day, &mut v);
        }
        v.extend(self.extra_outages.spans().iter().copied());
        v.retain(|(s, e)| *e > t0 && *s < t1);
        Spans::from_unsorted(v)
    }

    pub fn powered_at(&self, t: i64) -> bool {
        !self.outages(t, t + 1).contains(t)
    }

    /// The household's habits on local day `day`.
    fn day_curve(&self, day: i64) -> DayCurve {
        let p = &self.profile;
        let date = to_chrono(local_midnight(day) + IST_SECS).date_naive();
        let weekend = date.weekday().number_from_monday() >= 6;
        let doy = date.ordinal() as f64;
        // Summer (peak mid-May) cooling, damped by the monsoon (Jul-Sep).
        let summer = (std::f64::consts::TAU * (doy - 135.0) / 365.0)
            .cos()
            .max(0.0);
        let monsoon = if (182.0..274.0).contains(&doy) {
            0.6
        } else {
            1.0
        };
        // Winter mornings: water heating.
        let winter = (std::f64::consts::TAU * (doy - 10.0) / 365.0)
            .cos()
            .max(0.0);
        DayCurve {
            weekend,
            morning: p.morning,
            evening: p.evening,
            cooling: p.cooling * summer * monsoon,
            heating: winter * p.morning,
        }
    }

    /// Energy the household uses on local day `day` with the supply on all day: (Wh, VAh).
    fn day_energy(&self, day: i64, curve: &DayCurve) -> (i64, i64) {
        let p = &self.profile;
        let noise = 1.0 + 0.15 * signed_unit(self.h(tag::DAY_ENERGY, day));
        let wh = (p.sanctioned_w as f64 * p.base_share * curve.day_sum() * SLOT_HOURS * noise)
            .round() as i64;
        let pf = (p.pf + 0.03 * signed_unit(self.h(tag::DAY_PF, day))).clamp(0.7, 0.999);
        (wh, (wh as f64 / pf).round() as i64)
    }

    /// The day's energy spread over its intervals (supply on all day): Wh and VAh per interval,
    /// in whole units that add up exactly to the day's totals. The shares follow the curve with
    /// per-interval noise; the apparent energy above the active gets its own noise, so the PF
    /// moves from interval to interval.
    fn day_plan(&self, day: i64) -> Vec<(i64, i64)> {
        let curve = self.day_curve(day);
        let (wh, vah) = self.day_energy(day, &curve);
        let first = local_midnight(day).div_euclid(self.period);
        let slots = (self.period / SLOT_SECS).max(1) as usize;
        let table = CurveTable::get();
        let mut active = Vec::with_capacity(INTERVALS_MAX);
        let mut reactive = Vec::with_capacity(INTERVALS_MAX);
        for i in 0..(DAY / self.period) {
            let index = first + i;
            let s0 = i as usize * slots;
            let shape: f64 = (s0..s0 + slots)
                .map(|s| curve.shape(table, s.min(SLOTS - 1)))
                .sum();
            let w = shape * (1.0 + 0.25 * signed_unit(self.h(tag::NOISE, index)));
            active.push(w);
            reactive.push(w * (1.0 + 0.6 * signed_unit(self.h(tag::PF, index))));
        }
        apportion(wh, &active)
            .zip(apportion(vah - wh, &reactive))
            .map(|(a, r)| (a, a + r))
            .collect()
    }

    /// Totals of local day `day` with the supply on and the load connected all day.
    fn whole_day(&self, day: i64) -> Totals {
        let (wh, vah) = self.day_energy(day, &self.day_curve(day));
        Totals {
            wh,
            vah,
            powered_secs: DAY,
            ..Totals::default()
        }
    }

    /// Average demand (W) the household would draw in interval `index`, ignoring outages.
    pub fn demand_w(&self, index: i64) -> f64 {
        self.interval_energy(index).0 as f64 * 3600.0 / self.period as f64
    }

    /// Wh and VAh of interval `index` with the supply on (from its day's plan).
    fn interval_energy(&self, index: i64) -> (i64, i64) {
        let t0 = index * self.period;
        let day = local_day(t0);
        let i = ((t0 - local_midnight(day)) / self.period) as usize;
        self.day_plan(day).get(i).copied().unwrap_or((0, 0))
    }

    fn voltage(&self, index: i64, demand: f64) -> f64 {
        230.0 + self.profile.voltage_offset + 5.0 * signed_unit(self.h(tag::VOLTAGE, index))
            - 6.0 * demand / self.profile.sanctioned_w as f64
    }

    /// Interval `index` with `energy` (Wh, VAh with the supply on) given the outages and
    /// no-load spans that cover it.
    fn interval_with(
        &self,
        index: i64,
        energy: (i64, i64),
        outages: &Spans,
        no_load: &Spans,
    ) -> Interval {
        let t0 = index * self.period;
        let t1 = t0 + self.period;
        if t0 < self.profile.installed {
            return Interval {
                index,
                end: t1,
                wh: 0,
                vah: 0,
                powered_secs: 0,
                recorded: false,
                voltage: 0.0,
            };
        }
        let powered_secs = self.period - outages.overlap(t0, t1);
        let consuming = self.period - no_load.overlap(t0, t1);
        let share = |e: i64| {
            if consuming == self.period {
                e
            } else {
                (e as f64 * consuming as f64 / self.period as f64).round() as i64
            }
        };
        let demand = energy.0 as f64 * 3600.0 / self.period as f64;
        Interval {
            index,
            end: t1,
            wh: share(energy.0),
            vah: share(energy.1),
            powered_secs,
            recorded: !outages.contains(t1),
            voltage: if powered_secs > 0 {
                self.voltage(index, demand)
            } else {
                0.0
            },
        }
    }

    /// Intervals `from..to` (indices), computed with one outage lookup for the whole range and
    /// one plan per day.
    pub fn intervals(&self, from: i64, to: i64) -> impl Iterator<Item = Interval> + '_ {
        let outages = self.outages(from * self.period, to * self.period + 1);
        let no_load = outages.union(&self.disconnected);
        let per_day = DAY / self.period;
        // With `to <= from` the one day visited yields nothing.
        let days = local_day(from * self.period)..=local_day(to.max(from + 1) * self.period - 1);
        days.flat_map(move |day| {
            let first = local_midnight(day).div_euclid(self.period);
            let plan = if local_midnight(day + 1) <= self.profile.installed {
                Vec::new()
            } else {
                self.day_plan(day)
            };
            let (outages, no_load) = (outages.clone(), no_load.clone());
            (first.max(from)..(first + per_day).min(to)).map(move |index| {
                let energy = plan
                    .get((index - first) as usize)
                    .copied()
                    .unwrap_or((0, 0));
                self.interval_with(index, energy, &outages, &no_load)
            })
        })
    }

    pub fn interval(&self, index: i64) -> Interval {
        self.intervals(index, index + 1).next().unwrap_or(Interval {
            index,
            end: (index + 1) * self.period,
            wh: 0,
            vah: 0,
            powered_secs: 0,
            recorded: false,
            voltage: 0.0,
        })
    }

    /// Totals of intervals `from..to` (indices): whole days with the supply on and the load
    /// connected from the day's totals, the rest interval by interval.
    fn totals_between(&self, from: i64, to: i64) -> Totals {
        let mut tot = Totals::default();
        if to <= from {
            return tot;
        }
        let (t0, t1) = (from * self.period, to * self.period);
        let outages = self.outages(t0, t1 + 1);
        let no_load = outages.union(&self.disconnected);
        let mut t = t0;
        while t < t1 {
            let day = local_day(t);
            let (start, end) = (local_midnight(day), local_midnight(day + 1));
            let whole = start == t && end <= t1;
            if whole && end <= self.profile.installed {
                // Not installed yet: nothing.
            } else if whole && start >= self.profile.installed && no_load.overlap(start, end) == 0 {
                tot.add(&self.whole_day(day));
            } else {
                let (a, b) = (
                    t.div_euclid(self.period),
                    end.min(t1).div_euclid(self.period),
                );
                for iv in self.intervals(a, b) {
                    tot.add_interval(&iv);
                }
            }
            t = end.min(t1);
        }
        tot
    }

    /// Index of the last interval that ended at or before `t`.
    pub fn last_complete(&self, t: i64) -> i64 {
        t.div_euclid(self.period) - 1
    }

    fn first_index(&self) -> i64 {
        self.profile.installed.div_euclid(self.period)
    }

    /// Block-load rows with time stamps in `[from, to]` (UTC seconds), never past `now`.
    pub fn block_rows(&self, from: i64, to: i64, now: i64) -> Vec<BlockRow> {
        let last = self
            .last_complete(now.min(to + self.period))
            .min(to.div_euclid(self.period) - 1);
        let first = (from.div_euclid(self.period) - 1).max(self.first_index());
        if last < first {
            return Vec::new();
        }
        // Start earlier, at the last recorded row before the range, so energy carried over an
        // outage is attributed correctly.
        let mut start = first;
        let floor = (first - 60 * DAY / self.period).max(self.first_index());
        while start > floor {
            let prev = self.interval(start - 1);
            if prev.recorded && self.row_boundary(prev.end) {
                break;
            }
            start -= 1;
        }
        let mut rows = Vec::new();
        let (mut wh, mut vah, mut vsum, mut vsecs) = (0i64, 0i64, 0.0, 0i64);
        for iv in self.intervals(start, last + 1) {
            wh += iv.wh;
            vah += iv.vah;
            vsum += iv.voltage * iv.powered_secs as f64;
            vsecs += iv.powered_secs;
            if !iv.recorded || !self.row_boundary(iv.end) {
                continue;
            }
            if iv.end >= from && iv.end <= to && iv.end <= now {
                let voltage = if vsecs > 0 { vsum / vsecs as f64 } else { 0.0 };
                let current = if voltage > 0.0 {
                    vah as f64 * 3600.0 / self.row_period(iv.end) as f64 / voltage
                } else {
                    0.0
                };
                rows.push(BlockRow {
                    end: iv.end,
                    voltage,
                    current,
                    wh,
                    vah,
                    export_wh: 0,
                    export_vah: 0,
                });
            }
            (wh, vah, vsum, vsecs) = (0, 0, 0.0, 0);
        }
        rows
    }

    /// Totals of the intervals that ended at or before `t`, since installation.
    pub fn cumulative_at(&self, t: i64) -> Totals {
        self.totals_between(self.first_index(), self.last_complete(t) + 1)
    }

    /// Totals at each of the sorted instants `times` (one pass over the history).
    pub fn cumulative_series(&self, times: &[i64]) -> Vec<Totals> {
        let mut out = Vec::with_capacity(times.len());
        let Some(&first) = times.first() else {
            return out;
        };
        let mut tot = self.cumulative_at(first);
        let mut upto = self.last_complete(first) + 1;
        for &t in times {
            let next = self.last_complete(t) + 1;
            if next > upto {
                tot.add(&self.totals_between(upto, next));
                upto = next;
            }
            out.push(tot);
        }
        out
    }

    /// Daily snapshots: (local midnight, cumulative then) for midnights in `[from, to]`, at or
    /// after installation and not after `now`.
    pub fn daily_rows(&self, from: i64, to: i64, now: i64) -> Vec<(i64, Totals)> {
        let to = to.min(now);
        let first_day = local_day(from.max(self.profile.installed) - 1) + 1;
        let last_day = local_day(to);
        let mut rows = Vec::new();
        if last_day < first_day {
            return rows;
        }
        let mut at = local_midnight(first_day);
        let mut tot = self.cumulative_at(at);
        let mut day = first_day;
        loop {
            if at >= from && at <= to {
                rows.push((at, tot));
            }
            day += 1;
            let next = local_midnight(day);
            if next > to {
                break;
            }
            tot.add(&self.totals_between(at.div_euclid(self.period), next.div_euclid(self.period)));
            at = next;
        }
        rows
    }

    /// Billing rows (on each 1st of the month, local midnight) up to `now`, oldest first, plus
    /// the running values of the current (open) period as the last element.
    pub fn billing(&self, now: i64) -> (Vec<BillingRow>, BillingRow) {
        let mut closed = Vec::new();
        let mut cur = BillingRow {
            at: self.profile.installed,
            ..Default::default()
        };
        let mut cumulative = Totals::default();
        let mut zone_wh = [0i64; 8];
        let mut zone_vah = [0i64; 8];
        let mut next_bill = self.next_bill(self.profile.installed);
        for iv in self.intervals(self.first_index(), self.last_complete(now) + 1) {
            if iv.end > next_bill {
                cur.at = next_bill;
                cur.cumulative = cumulative;
                cur.zone_wh = zone_wh;
                cur.zone_vah = zone_vah;
                closed.push(std::mem::take(&mut cur));
                next_bill = self.next_bill(next_bill);
            }
            if iv.end > self.md_reset_at && iv.end - self.period <= self.md_reset_at {
                // MD reset: the period's maximum demand starts again.
                cur.md_w = Demand::default();
                cur.md_va = Demand::default();
                cur.zone_md_w = Default::default();
                cur.zone_md_va = Default::default();
            }
            cumulative.wh += iv.wh;
            cumulative.vah += iv.vah;
            cumulative.powered_secs += iv.powered_secs;
            cur.period.wh += iv.wh;
            cur.period.vah += iv.vah;
            cur.period.powered_secs += iv.powered_secs;
            let z = (self.zone_at(iv.end - 1).clamp(1, 8) - 1) as usize;
            zone_wh[z] += iv.wh;
            zone_vah[z] += iv.vah;
            let w = iv.wh * 3600 / self.period;
            let va = iv.vah * 3600 / self.period;
            if w > cur.md_w.value {
                cur.md_w = Demand {
                    value: w,
                    at: iv.end,
                };
            }
            if va > cur.md_va.value {
                cur.md_va = Demand {
                    value: va,
                    at: iv.end,
                };
            }
            if w > cur.zone_md_w[z].value {
                cur.zone_md_w[z] = Demand {
                    value: w,
                    at: iv.end,
                };
            }
            if va > cur.zone_md_va[z].value {
                cur.zone_md_va[z] = Demand {
                    value: va,
                    at: iv.end,
                };
            }
        }
        cur.at = now;
        cur.cumulative = cumulative;
        cur.zone_wh = zone_wh;
        cur.zone_vah = zone_vah;
        (closed, cur)
    }
}

fn mix(h: u64, k: u64) -> u64 {
    crate::hash::mix64(h ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The next billing date (1st of the month, 00:00 IST) strictly after `t`.
pub fn next_billing_date(t: i64) -> i64 {
    BillingSchedule::default().next_after(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_794_999_600; // 2026-11-18, on a 30-minute boundary
    fn model(meter: u32) -> LoadModel {
        LoadModel::new(42, meter, 900)
    }

    #[test]
    fn same_seed_same_values_other_seed_other_values() {
        let a = model(3).block_rows(NOW - DAY, NOW, NOW);
        assert_eq!(a, model(3).block_rows(NOW - DAY, NOW, NOW));
        assert_ne!(
            a,
            LoadModel::new(43, 3, 900).block_rows(NOW - DAY, NOW, NOW)
        );
        assert_ne!(a, model(4).block_rows(NOW - DAY, NOW, NOW));
    }

    #[test]
    fn cumulative_is_the_sum_of_block_rows_since_installation() {
        for meter in 0..4 {
            let mut m = model(meter);
            // An on-demand outage across an interval boundary, and a relay-open period.
            m.extra_outages =
                Spans::from_unsorted(vec![(NOW - 5 * DAY + 100, NOW - 5 * DAY + 4000)]);
            m.disconnected = Spans::from_unsorted(vec![(NOW - 3 * DAY, NOW - 3 * DAY + 7200)]);
            let rows = m.block_rows(m.profile.installed, NOW, NOW);
            let sum_wh: i64 = rows.iter().map(|r| r.wh).sum();
            let sum_vah: i64 = rows.iter().map(|r| r.vah).sum();
            let last = rows.last().unwrap().end;
            let cum = m.cumulative_at(last);
            assert_eq!(cum.wh, sum_wh);
            assert_eq!(cum.vah, sum_vah);
            assert!(rows.iter().all(|r| r.wh >= 0 && r.vah >= r.wh));
            // A range read gives the same rows as the full history.
            let part = m.block_rows(NOW - 6 * DAY, NOW - 4 * DAY, NOW);
            let full: Vec<_> = rows
                .iter()
                .filter(|r| r.end >= NOW - 6 * DAY && r.end <= NOW - 4 * DAY)
                .copied()
                .collect();
            assert_eq!(part, full);
            // Relay open: zero energy rows, still recorded.
            let open = m.block_rows(NOW - 3 * DAY + 900, NOW - 3 * DAY + 7200, NOW);
            assert_eq!(open.len(), 8);
            assert!(open.iter().all(|r| r.wh == 0));
        }
    }

    #[test]
    fn apportioned_shares_add_up_and_follow_the_weights() {
        let shares: Vec<i64> = apportion(1000, &[1.0, 2.0, 0.0, 7.0]).collect();
        assert_eq!(shares, vec![100, 200, 0, 700]);
        let odd: Vec<i64> = apportion(10, &[1.0, 1.0, 1.0]).collect();
        assert_eq!(odd.iter().sum::<i64>(), 10);
        assert!(odd.iter().all(|s| (3..=4).contains(s)));
        assert_eq!(apportion(5, &[]).count(), 0);
    }

    #[test]
    fn a_day_summed_whole_equals_its_intervals() {
        for (meter, period) in [(0, 900), (1, 1800), (2, 900)] {
            let mut m = LoadModel::new(42, meter, period);
            m.scheduled_outages = false;
            for back in 0..40 {
                let day = local_day(NOW) - 1 - back;
                let per_day = DAY / period;
                let first = local_midnight(day) / period;
                let mut detailed = Totals::default();
                for iv in m.intervals(first, first + per_day) {
                    assert!(iv.wh > 0 && iv.vah >= iv.wh, "{iv:?}");
                    detailed.add_interval(&iv);
                }
                assert_eq!(m.whole_day(day), detailed, "meter {meter} day {day}");
            }
            // The cumulative (whole days) equals the walk over every interval.
            let mut walk = Totals::default();
            for iv in m.intervals(m.first_index(), m.last_complete(NOW) + 1) {
                walk.add_interval(&iv);
            }
            assert_eq!(m.cumulative_at(NOW), walk);
        }
    }

    #[test]
    fn daily_snapshots_equal_cumulative_at_midnight_and_billing_at_the_billing_date() {
        let m = model(7);
        let days = m.daily_rows(NOW - 10 * DAY, NOW, NOW);
        assert_eq!(days.len(), 10);
        for (at, tot) in &days {
            assert_eq!((at + IST_SECS) % DAY, 0);
            assert_eq!(*tot, m.cumulative_at(*at));
        }
        let (closed, current) = m.billing(NOW);
        assert!(closed.len() >= 10);
        for b in &closed {
            assert_eq!(b.cumulative, m.cumulative_at(b.at));
            assert_eq!(b.zone_wh.iter().sum::<i64>(), b.cumulative.wh);
            assert_eq!(local_naive(b.at).day(), 1);
            assert!(b.md_w.value > 0 && b.md_w.at <= b.at && b.md_va.value >= b.md_w.value);
        }
        assert_eq!(current.cumulative, m.cumulative_at(NOW));
    }

    #[test]
    fn an_outage_leaves_a_gap_with_the_energy_carried_over() {
        let mut m = model(1);
        // Off from 10:05 to 11:20 on some day: intervals ending 10:15 .. 11:15 have no row.
        let t = local_midnight(local_day(NOW) - 2) + 10 * 3600;
        m.extra_outages = Spans::from_unsorted(vec![(t + 300, t + 4800)]);
        let rows = m.block_rows(t - 3600, t + 3 * 3600, NOW);
        let ends: Vec<i64> = rows.iter().map(|r| r.end).collect();
        assert!(ends.contains(&t));
        for gap in 1..=5 {
            assert!(!ends.contains(&(t + gap * 900)), "row inside the outage");
        }
        assert!(ends.contains(&(t + 6 * 900)));
        let after = rows.iter().find(|r| r.end == t + 6 * 900).unwrap();
        let (pre, post) = (m.interval(t / 900), m.interval(t / 900 + 5));
        assert!(pre.wh > 0 && post.wh > 0);
        assert_eq!(after.wh, pre.wh + post.wh);
        assert!(!m.powered_at(t + 1000) && m.powered_at(t + 4800));
    }

    #[test]
    fn the_curve_has_an_evening_peak_and_a_night_trough() {
        // Average over many meters and a fortnight of the demand at 03:00 and at 20:30.
        let (mut night, mut evening) = (0.0, 0.0);
        for meter in 0..50 {
            let m = model(meter);
            for d in 0..14 {
                let midnight = local_midnight(local_day(NOW) - d);
                night += m.demand_w((midnight + 3 * 3600) / 900);
                evening += m.demand_w((midnight + 20 * 3600 + 1800) / 900);
            }
        }
        assert!(evening > 2.0 * night, "evening {evening} night {night}");
    }
}

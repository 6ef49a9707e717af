//! The COSEM object model of one simulated meter: [`MeterObjects`] implements
//! [`CosemObjects`] over the `is15959` catalogue (which objects exist, their classes, scalers and
//! the access rights of each association) and the [`crate::load`] model (what the values are).
//!
//! Values are computed when asked: a register read now, a profile row at its capture time, an
//! event log entry at its event time all come from the same functions ([`Scope`]), so the
//! cumulative registers, the profiles and the event logs agree.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use dlms::apdu::{
    ActionResult, ApplicationContext, AttributeDescriptor, DataAccessResult, Mechanism,
    MethodDescriptor, SelectiveAccess,
};
use dlms::association::{CosemObjects, RequestContext, application_context_name, mechanism_name};
use dlms::data::BitString;
use dlms::datetime::{DEVIATION_NOT_SPECIFIED, ist};
use dlms::security::GlobalKeys;
use dlms::{ClockStatus, Data, Date, ObisCode, Time};
use is15959::catalogue::obis;
use is15959::profile::{CaptureObject, ProfileDef, ProfileKind, capture_objects_to_data};
use is15959::{Association, Catalogue, ObjectDef, Profiles};
use model::MeterKind;

use crate::events::{self, Event, code, esw};
use crate::fleet::Shared;
use crate::hash::{hash, signed_unit, tag};
use crate::keys::MeterKeys;
use crate::load::{BillingRow, BillingSchedule, BlockRow, DAY, LoadModel, TodTable, Totals};
use crate::meter::{
    self, Calendar, CalendarParts, IMAGE_BLOCK_SIZE, ImageTransfer, MeterState, Recharge, Relay,
};

/// Every simulated meter is a single-phase whole-current meter.
pub const KIND: MeterKind = MeterKind::SinglePhaseWholeCurrent;
/// How far back the block-load and event profiles reach.
pub const BLOCK_DEPTH_DAYS: i64 = 90;
/// Daily-load depth.
pub const DAILY_DEPTH_DAYS: i64 = 90;
/// Billing history kept (months).
pub const BILLING_DEPTH: usize = 12;
/// Energy charge used for the prepaid balance, paise per kWh.
pub const RATE_PAISE_PER_KWH: i64 = 700;
/// Longest LLS secret a head-end may set.
pub const MAX_LLS_SECRET_LEN: usize = 64;

const LAST_RECHARGE_AMOUNT: ObisCode = ObisCode::new(0, 0, 94, 96, 21, 255);
const CURRENT_BALANCE: ObisCode = ObisCode::new(0, 0, 94, 96, 24, 255);
/// The association of the meter reader (client SAP 32, LLS); attribute 7 is its secret.
const METER_READER_ASSOCIATION: ObisCode = ObisCode::new(0, 0, 40, 0, 2, 255);

/// A view of one meter's object model. Cheap to create; holds no meter data itself.
#[derive(Debug, Clone)]
pub struct MeterObjects {
    shared: Arc<Shared>,
    index: u32,
}

/// Internal access to a meter's computed values without an `Arc`.
pub(crate) struct ViewHandle<'a> {
    shared: &'a Shared,
    index: u32,
}

impl ViewHandle<'_> {
    /// The meter clock at true time `at`, as the 12 bytes a meter sends.
    pub fn clock_bytes(&self, at: DateTime<Utc>) -> [u8; 12] {
        let ms = self.shared.peek(self.index, |s| {
            meter::clock_ms(self.shared, self.index, s, at)
        });
        let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        dlms::DateTime::from_utc(t, ist()).to_bytes()
    }

    /// The event status word at `at`.
    pub fn esw(&self, at: DateTime<Utc>) -> BitString {
        view_of(self.shared, self.index, at).esw()
    }
}

/// Meter data at one instant, gathered once per request.
struct View<'a> {
    shared: &'a Shared,
    index: u32,
    now: i64,
    model: LoadModel,
    relay: Relay,
    firmware: String,
    prepaid: bool,
    recharge: Recharge,
    limit_w: u32,
    limit_since: i64,
    esw_filter: Option<Vec<u8>>,
    magnet: bool,
    cover: bool,
    programming_count: u32,
    runtime_events: Vec<Event>,
    clock_ms: i64,
    image: Option<ImageTransfer>,
    md_reset_at: i64,
    calendar: Option<Calendar>,
    billing_schedule: BillingSchedule,
    demand_integration_period: Option<i64>,
    billing: OnceLock<(Vec<BillingRow>, BillingRow)>,
    cumulative: OnceLock<Totals>,
}

/// What a value is read for: now, or a profile row captured at some time.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    Now,
    Block(&'a BlockRow),
    Daily(i64, &'a Totals),
    Billing(&'a BillingRow),
    Event(&'a Event, &'a Totals),
}

fn octets(ln: ObisCode) -> Data {
    Data::OctetString(ln.bytes().to_vec())
}

/// A date-time as IS 15959 meters send it: a 12-byte octet string in IST, deviation −330.
pub fn datetime_data(t_ms: i64) -> Data {
    let t = DateTime::<Utc>::from_timestamp_millis(t_ms).unwrap_or_default();
    Data::OctetString(dlms::DateTime::from_utc(t, ist()).to_bytes().to_vec())
}

fn secs_data(t: i64) -> Data {
    datetime_data(t * 1000)
}

fn not_specified_datetime() -> Data {
    Data::OctetString(
        dlms::DateTime {
            date: Date::NOT_SPECIFIED,
            time: Time::NOT_SPECIFIED,
            deviation: DEVIATION_NOT_SPECIFIED,
            clock_status: ClockStatus::NOT_SPECIFIED,
        }
        .to_bytes()
        .to_vec(),
    )
}

/// A measured quantity before scaling.
#[derive(Debug, Clone, Copy)]
enum Quantity {
    /// Exact integer in the catalogue unit (Wh, VAh, minutes, paise, counts).
    Exact(i64),
    /// A physical value in the catalogue unit (V, A, W, Hz, PF).
    Real(f64),
}

/// An amount of money in the catalogue unit (currency, rupees) from paise: with the catalogue's
/// scaler −2 the raw value on the wire is the paise again.
fn rupees(paise: i64) -> Quantity {
    Quantity::Real(paise as f64 / 100.0)
}

/// How a register's value is typed on the wire.
fn register_data(def: &ObjectDef, q: Quantity) -> Data {
    let scaler = def.scaler_unit.map_or(0, |s| s.scaler) as i32;
    let raw: i64 = match q {
        Quantity::Exact(v) if scaler <= 0 => v.saturating_mul(10i64.pow((-scaler) as u32)),
        Quantity::Exact(v) => v / 10i64.pow(scaler as u32),
        Quantity::Real(v) => (v / 10f64.powi(scaler)).round() as i64,
    };
    let unit = def.scaler_unit.map_or(255, |s| s.unit.0);
    match unit {
        35 | 44 => Data::LongUnsigned(raw.clamp(0, u16::MAX as i64) as u16),
        255 if def.class_id == 3 => Data::Long(raw.clamp(i16::MIN as i64, i16::MAX as i64) as i16),
        27 | 10 => Data::DoubleLong(raw.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
        _ => Data::DoubleLongUnsigned(raw.clamp(0, u32::MAX as i64) as u32),
    }
}

impl MeterObjects {
    pub(crate) fn new(shared: Arc<Shared>, index: u32) -> Self {
        MeterObjects { shared, index }
    }

    pub fn meter(&self) -> u32 {
        self.index
    }

    /// A borrowed handle for internal use (push notifications).
    pub(crate) fn new_view_handle(shared: &Shared, index: u32) -> ViewHandle<'_> {
        ViewHandle { shared, index }
    }

    fn view(&self, now: DateTime<Utc>) -> View<'_> {
        view_of(&self.shared, self.index, now)
    }

    /// Runs `f` on the meter's mutable state.
    fn with_state<R>(&self, f: impl FnOnce(&mut MeterState) -> R) -> R {
        let mut g = self.shared.state(self.index);
        f(g.get_mut())
    }
}

fn view_of(shared: &Shared, index: u32, now: DateTime<Utc>) -> View<'_> {
    {
        let seed = shared.config.seed;
        let mut g = shared.state(index);
        if let Some(s) = g.get_existing_mut() {
            s.settle(now.timestamp());
        }
        let s = g.get();
        let model = meter::model(shared, index, s);
        let default_prepaid = hash(seed, &[tag::KIND, index as u64]) % 10 < 3;
        let installed = model.profile.installed;
        let sanctioned = model.profile.sanctioned_w;
        View {
            shared,
            index,
            now: now.timestamp(),
            relay: s.map(MeterState::relay).unwrap_or_default(),
            firmware: s
                .and_then(|s| s.firmware.clone())
                .unwrap_or_else(|| meter::FIRMWARE.into()),
            prepaid: s.and_then(|s| s.prepaid).unwrap_or(default_prepaid),
            recharge: s.and_then(|s| s.recharge).unwrap_or(Recharge {
                last_amount: 100_000,
                at: installed,
                total_at_last: 100_000
                    + 20_000 * (hash(seed, &[tag::KIND, index as u64, 1]) % 20) as i64,
            }),
            limit_w: s.and_then(|s| s.limit).map_or(sanctioned, |l| l.0),
            limit_since: s.and_then(|s| s.limit).map_or(i64::MIN, |l| l.1),
            esw_filter: s.and_then(|s| s.esw_filter.clone()),
            magnet: s.is_some_and(|s| s.magnet),
            cover: s.is_some_and(|s| s.cover_opened),
            programming_count: s.map_or(0, |s| s.programming_count),
            runtime_events: s.map(|s| s.events.clone()).unwrap_or_default(),
            clock_ms: meter::clock_ms(shared, index, s, now),
            image: s.and_then(|s| s.image.as_deref().cloned()),
            md_reset_at: s.map_or(i64::MIN, |s| s.md_reset_at),
            calendar: s.and_then(|s| s.calendar.as_deref().cloned()),
            billing_schedule: s
                .and_then(|s| s.billing_schedule.last())
                .map(|(_, b)| *b)
                .unwrap_or_default(),
            demand_integration_period: s.and_then(|s| s.demand_integration_period),
            model,
            billing: OnceLock::new(),
            cumulative: OnceLock::new(),
        }
    }
}

impl View<'_> {
    fn billing(&self) -> &(Vec<BillingRow>, BillingRow) {
        self.billing.get_or_init(|| self.model.billing(self.now))
    }

    fn cumulative(&self) -> &Totals {
        self.cumulative
            .get_or_init(|| self.model.cumulative_at(self.now))
    }

    fn keys(&self) -> MeterKeys {
        MeterKeys::derive(self.shared.config.seed, self.index)
    }

    /// The current interval's modelled values: (voltage, current, pf, active W, apparent VA).
    fn instantaneous(&self, t: i64) -> (f64, f64, f64, f64, f64) {
        if !self.model.powered_at(t) {
            return (0.0, 0.0, 1.0, 0.0, 0.0);
        }
        let iv = self.model.interval(t.div_euclid(self.model.period));
        let mut w = self.model.demand_w(iv.index);
        if self.model.disconnected.contains(t) {
            w = 0.0;
        }
        // Use the interval's own (energy-derived) pf so instantaneous and block values agree.
        let pf = if iv.vah > 0 {
            iv.wh as f64 / iv.vah as f64
        } else {
            1.0
        };
        let v = if iv.voltage > 0.0 { iv.voltage } else { 230.0 };
        let va = w / pf;
        (v, va / v, pf, w, va)
    }

    fn last_billing_date(&self) -> i64 {
        self.billing()
            .0
            .last()
            .map_or(self.model.profile.installed, |b| b.at)
    }

    fn all_events(&self, from: i64) -> Vec<Event> {
        let limit = Some(self.limit_w);
        let mut ev = events::scheduled(&self.model, from, self.now, limit);
        if self.limit_since > from {
            // Overloads before the limit was changed were judged against the default limit.
            ev.retain(|e| {
                !matches!(e.code, code::OVERLOAD | code::OVERLOAD_RESTORED)
                    || e.at >= self.limit_since
            });
            let before = events::scheduled(
                &self.model,
                from,
                self.limit_since,
                Some(self.model.profile.sanctioned_w),
            );
            ev.extend(
                before
                    .into_iter()
                    .filter(|e| matches!(e.code, code::OVERLOAD | code::OVERLOAD_RESTORED)),
            );
        }
        ev.extend(
            self.runtime_events
                .iter()
                .filter(|e| e.at >= from && e.at <= self.now),
        );
        ev.sort();
        ev
    }

    /// The entries of event log `e`, oldest first, at most [`events::LOG_DEPTH`].
    fn event_log(&self, e: u8) -> Vec<Event> {
        let mut ev: Vec<Event> = self
            .all_events(self.now - BLOCK_DEPTH_DAYS * DAY)
            .into_iter()
            .filter(|x| events::log_of(x.code) == e)
            .collect();
        if ev.len() > events::LOG_DEPTH {
            if e == 5 {
                ev.truncate(events::LOG_DEPTH);
            } else {
                ev.drain(..ev.len() - events::LOG_DEPTH);
            }
        }
        ev
    }

    fn tamper_count(&self) -> i64 {
        self.all_events(self.now - BLOCK_DEPTH_DAYS * DAY)
            .iter()
            .filter(|e| matches!(e.code, code::MAGNET | code::COVER_OPEN))
            .count() as i64
    }

    fn esw(&self) -> BitString {
        let mut bits = Vec::new();
        if self.magnet || events::magnet_scheduled_at(&self.model, self.now) {
            bits.push(esw::MAGNET);
        }
        if self.cover || events::cover_opened_before(&self.model, self.now) {
            bits.push(esw::COVER_OPEN);
        }
        if !self.relay.output {
            bits.push(esw::LOAD_SWITCH_DISCONNECTED);
        }
        let mut word = BitString::with_bits(esw::LEN, bits);
        if let Some(filter) = &self.esw_filter {
            for (b, f) in word.bytes.iter_mut().zip(filter) {
                *b &= f;
            }
        }
        word
    }

    fn balance_paise(&self) -> i64 {
        let since =
            self.model.cumulative_at(self.now).wh - self.model.cumulative_at(self.recharge.at).wh;
        // Saturating: `total_at_last` is whatever a head-end wrote.
        self.recharge
            .total_at_last
            .saturating_sub(since.saturating_mul(RATE_PAISE_PER_KWH) / 1000)
    }

    /// A register-like value (class 1, 3 or 4; attribute 2, or 5 for capture time) in a scope.
    fn value(&self, class_id: u16, ln: ObisCode, attribute: i8, scope: Scope<'_>) -> Option<Data> {
        let cat = Catalogue::builtin();
        let [a, b, c, d, e, _] = ln.bytes();
        if ln == obis::CLOCK {
            return Some(match scope {
                Scope::Now => datetime_data(self.clock_ms),
                Scope::Block(r) => secs_data(r.end),
                Scope::Daily(at, _) => secs_data(at),
                Scope::Billing(r) => secs_data(r.at),
                Scope::Event(ev, _) => secs_data(ev.at),
            });
        }
        let def = cat.get(KIND, ln)?;
        if def.class_id != class_id {
            return None;
        }
        let exact = |v: i64| Some(register_data(def, Quantity::Exact(v)));
        let real = |v: f64| Some(register_data(def, Quantity::Real(v)));
        let at = match scope {
            Scope::Now => self.now,
            Scope::Block(r) => r.end,
            Scope::Daily(at, _) => at,
            Scope::Billing(r) => r.at,
            Scope::Event(ev, _) => ev.at,
        };
        let totals = |scope: Scope<'_>| -> Totals {
            match scope {
                Scope::Daily(_, t) | Scope::Event(_, t) => *t,
                Scope::Billing(r) => r.cumulative,
                _ => *self.cumulative(),
            }
        };
        // Maximum demand (IC 4): value or capture time.
        if class_id == 4 && a == 1 && d == 6 && (c == 1 || c == 9) {
            let row = match scope {
                Scope::Billing(r) => r,
                _ => &self.billing().1,
            };
            let zone = e as usize;
            let dm = match (c, zone) {
                (1, 0) => row.md_w,
                (9, 0) => row.md_va,
                (1, z @ 1..=8) => row.zone_md_w[z - 1],
                (9, z @ 1..=8) => row.zone_md_va[z - 1],
                _ => return None,
            };
            let dm = if matches!(scope, Scope::Now) && dm.at < self.md_reset_at {
                Default::default()
            } else {
                dm
            };
            return if attribute == 5 {
                Some(if dm.at == 0 {
                    not_specified_datetime()
                } else {
                    secs_data(dm.at)
                })
            } else {
                exact(dm.value)
            };
        }
        let (v, i, pf, w, va) = match scope {
            Scope::Block(r) => (r.voltage, r.current, 0.0, 0.0, 0.0),
            _ => self.instantaneous(at),
        };
        match (a, b, c, d, e) {
            (1, 0, 12, 7, 0) | (1, 0, 12, 27, 0) => real(v),
            (1, 0, 11, 7, 0) | (1, 0, 11, 27, 0) => real(i),
            (1, 0, 91, 7, 0) => {
                real(i * (1.0 + 0.01 * signed_unit(hash(at as u64, &[self.index as u64]))))
            }
            (1, 0, 13, 7, 0) => real(pf),
            (1, 0, 14, 7, 0) => {
                real(50.0 + 0.05 * signed_unit(hash(self.shared.config.seed, &[at as u64])))
            }
            (1, 0, 9, 7, 0) => real(va),
            (1, 0, 1, 7, 0) => real(w),
            (1, 0, 1, 29, 0) => exact(match scope {
                Scope::Block(r) => r.wh,
                _ => self.last_block().wh,
            }),
            (1, 0, 9, 29, 0) => exact(match scope {
                Scope::Block(r) => r.vah,
                _ => self.last_block().vah,
            }),
            (1, 0, 2, 29, 0) | (1, 0, 10, 29, 0) => exact(0),
            (1, 0, 1, 8, 0) => exact(totals(scope).wh),
            (1, 0, 9, 8, 0) => exact(totals(scope).vah),
            (1, 0, 2, 8, 0) | (1, 0, 10, 8, 0) => exact(0),
            (1, 0, 1, 8, z @ 1..=8) => exact(match scope {
                Scope::Billing(r) => r.zone_wh[z as usize - 1],
                _ => self.billing().1.zone_wh[z as usize - 1],
            }),
            (1, 0, 9, 8, z @ 1..=8) => exact(match scope {
                Scope::Billing(r) => r.zone_vah[z as usize - 1],
                _ => self.billing().1.zone_vah[z as usize - 1],
            }),
            (1, 0, 13, 0, 0) => real(match scope {
                Scope::Billing(r) => r.average_pf(),
                _ => self.billing().1.average_pf(),
            }),
            (0, 0, 94, 91, 14) => exact(totals(scope).powered_secs / 60),
            (0, 0, 94, 91, 13) => exact(
                match scope {
                    Scope::Billing(r) => r.period.powered_secs,
                    _ => self.billing().1.period.powered_secs,
                } / 60,
            ),
            (0, 0, 94, 91, 8) => exact(
                ((at - self.model.profile.installed) - totals(scope).powered_secs).max(0) / 60,
            ),
            (0, 0, 94, 91, 0) => Some(Data::DoubleLongUnsigned(self.tamper_count() as u32)),
            (0, 0, 0, 1, 0) => Some(Data::DoubleLongUnsigned(match scope {
                Scope::Billing(r) => self.billing().0.iter().filter(|b| b.at <= r.at).count(),
                _ => self.billing().0.len(),
            } as u32)),
            (0, 0, 0, 1, 2) => Some(secs_data(match scope {
                Scope::Billing(r) => r.at,
                _ => self.last_billing_date(),
            })),
            (0, 0, 96, 2, 0) => Some(Data::DoubleLongUnsigned(self.programming_count)),
            (0, 0, 96, 7, 0) => Some(Data::DoubleLongUnsigned(
                self.all_events(self.now - BLOCK_DEPTH_DAYS * DAY)
                    .iter()
                    .filter(|e| e.code == code::POWER_FAILURE)
                    .count() as u32,
            )),
            (0, 0, 96, 11, log) => Some(Data::LongUnsigned(match scope {
                Scope::Event(ev, _) => ev.code,
                _ => self.event_log(log).last().map_or(0, |e| e.code),
            })),
            _ => self.now_only(def),
        }
    }

    fn last_block(&self) -> BlockRow {
        let rows = self.model.block_rows(self.now - DAY, self.now, self.now);
        rows.last().copied().unwrap_or(BlockRow {
            end: self.now,
            voltage: 0.0,
            current: 0.0,
            wh: 0,
            vah: 0,
            export_wh: 0,
            export_vah: 0,
        })
    }

    /// Values of data objects that have no history (name plate, configuration, prepaid).
    fn now_only(&self, def: &ObjectDef) -> Option<Data> {
        let keys = self.keys();
        let ln = def.logical_name;
        let [_, _, c, d, e, _] = ln.bytes();
        Some(match (c, d, e) {
            (42, 0, 0) => Data::OctetString(
                format!("URJ{:013}", 10_000_001u64 + self.index as u64).into_bytes(),
            ),
            (96, 1, 0) => Data::OctetString(keys.serial.into_bytes()),
            (96, 1, 1) => Data::OctetString(b"Urja Simulated Meters".to_vec()),
            (0, 2, 0) => Data::OctetString(self.firmware.clone().into_bytes()),
            (94, 91, 9) => Data::Unsigned(5),
            (94, 91, 11) => Data::OctetString(b"C1".to_vec()),
            (94, 91, 12) => Data::OctetString(b"5-30A".to_vec()),
            (96, 1, 4) => Data::LongUnsigned(2025),
            (94, 91, 18) => Data::bit_string(self.esw()),
            (94, 91, 26) => Data::bit_string(match &self.esw_filter {
                Some(f) => BitString {
                    bytes: f.clone(),
                    len: esw::LEN,
                },
                None => BitString::with_bits(esw::LEN, 0..esw::LEN),
            }),
            (0, 8, 0) => Data::DoubleLongUnsigned(
                self.demand_integration_period.unwrap_or(self.model.period) as u32,
            ),
            (0, 8, 4) => Data::DoubleLongUnsigned(self.model.row_period(self.now + 1) as u32),
            (94, 96, 19) => Data::Unsigned(0),
            (94, 96, 20) => Data::Unsigned(self.prepaid as u8),
            (94, 96, 21) => register_data(def, rupees(self.recharge.last_amount)),
            (94, 96, 22) => secs_data(self.recharge.at),
            (94, 96, 23) => register_data(def, rupees(self.recharge.total_at_last)),
            (94, 96, 24) => register_data(def, rupees(self.balance_paise())),
            (94, 96, 25) => secs_data(self.now),
            _ => return None,
        })
    }

    /// A profile's rows (oldest first) in a time window, or all of them.
    fn profile_rows(&self, def: &ProfileDef, from: i64, to: i64) -> Vec<Data> {
        let cols = &def.capture_objects;
        let row = |scope: Scope<'_>| {
            Data::Structure(
                cols.iter()
                    .map(|c| {
                        self.value(c.class_id, c.logical_name, c.attribute_index, scope)
                            .unwrap_or(Data::Null)
                    })
                    .collect(),
            )
        };
        match def.profile {
            ProfileKind::Instantaneous => vec![row(Scope::Now)],
            ProfileKind::BlockLoad => {
                let from = from.max(self.now - BLOCK_DEPTH_DAYS * DAY);
                self.model
                    .block_rows(from, to, self.now)
                    .iter()
                    .map(|r| row(Scope::Block(r)))
                    .collect()
            }
            ProfileKind::DailyLoad => {
                let from = from.max(self.now - DAILY_DEPTH_DAYS * DAY);
                self.model
                    .daily_rows(from, to, self.now)
                    .iter()
                    .map(|(at, t)| row(Scope::Daily(*at, t)))
                    .collect()
            }
            ProfileKind::Billing => {
                let closed = &self.billing().0;
                let keep = closed.len().saturating_sub(BILLING_DEPTH);
                closed[keep..]
                    .iter()
                    .filter(|b| b.at >= from && b.at <= to)
                    .map(|b| row(Scope::Billing(b)))
                    .collect()
            }
            ProfileKind::EventLog(_) => {
                let e = def.logical_name.bytes()[4];
                let ev: Vec<Event> = self
                    .event_log(e)
                    .into_iter()
                    .filter(|x| x.at >= from && x.at <= to)
                    .collect();
                let times: Vec<i64> = ev.iter().map(|x| x.at).collect();
                let totals = self.model.cumulative_series(&times);
                ev.iter()
                    .zip(&totals)
                    .map(|(x, t)| row(Scope::Event(x, t)))
                    .collect()
            }
            ProfileKind::NamePlate => vec![row(Scope::Now)],
        }
    }
}

/// Column filter of a selective access: indices into the capture objects.
fn select_columns(rows: Vec<Data>, keep: Option<Vec<usize>>) -> Data {
    let Some(keep) = keep else {
        return Data::Array(rows);
    };
    Data::Array(
        rows.into_iter()
            .map(|r| match r {
                Data::Structure(v) => {
                    Data::Structure(keep.iter().filter_map(|i| v.get(*i).cloned()).collect())
                }
                other => other,
            })
            .collect(),
    )
}

impl View<'_> {
    /// Attribute 2 of a profile, honouring selective access by range (1) or entry (2).
    fn profile_buffer(
        &self,
        def: &ProfileDef,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        let all = (i64::MIN / 2, i64::MAX / 2);
        let Some(access) = access else {
            return Ok(Data::Array(self.profile_rows(def, all.0, all.1)));
        };
        match access.selector {
            1 => {
                let range = access
                    .as_range()
                    .map_err(|_| DataAccessResult::TypeUnmatched)?;
                // Every profile is ordered by the clock: the only column a range can restrict.
                if range.restricting_object != CaptureObject::CLOCK {
                    return Err(DataAccessResult::OtherReason);
                }
                let from = range
                    .from
                    .to_utc(ist())
                    .ok_or(DataAccessResult::TypeUnmatched)?
                    .timestamp();
                let to = range
                    .to
                    .to_utc(ist())
                    .ok_or(DataAccessResult::TypeUnmatched)?
                    .timestamp();
                let rows = self.profile_rows(def, from, to);
                let keep = if range.selected_values.is_empty() {
                    None
                } else {
                    Some(
                        range
                            .selected_values
                            .iter()
                            .filter_map(|s| {
                                def.column(s.class_id, s.logical_name, s.attribute_index)
                            })
                            .collect(),
                    )
                };
                Ok(select_columns(rows, keep))
            }
            2 => {
                let entry = access
                    .as_entry()
                    .map_err(|_| DataAccessResult::TypeUnmatched)?;
                let rows = self.profile_rows(def, all.0, all.1);
                let n = rows.len() as u32;
                let from = entry.from_entry.max(1);
                let to = if entry.to_entry == 0 {
                    n
                } else {
                    entry.to_entry.min(n)
                };
                let rows: Vec<Data> = if from > to {
                    Vec::new()
                } else {
                    rows.into_iter()
                        .skip(from as usize - 1)
                        .take((to - from + 1) as usize)
                        .collect()
                };
                let ncols = def.capture_objects.len() as u16;
                let c0 = entry.from_selected_value.max(1);
                let c1 = if entry.to_selected_value == 0 {
                    ncols
                } else {
                    entry.to_selected_value.min(ncols)
                };
                let keep = (c0 > 1 || c1 < ncols).then(|| (c0 as usize - 1..c1 as usize).collect());
                Ok(select_columns(rows, keep))
            }
            _ => Err(DataAccessResult::OtherReason),
        }
    }

    fn profile_attribute(
        &self,
        def: &ProfileDef,
        attribute: i8,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        let all = (i64::MIN / 2, i64::MAX / 2);
        Ok(match attribute {
            2 => self.profile_buffer(def, access)?,
            3 => def.capture_objects_data(),
            4 => Data::DoubleLongUnsigned(match def.profile {
                ProfileKind::BlockLoad => self.model.row_period(self.now + 1) as u32,
                ProfileKind::DailyLoad => DAY as u32,
                _ => 0,
            }),
            5 => Data::Enum(1),
            6 => CaptureObject::new(8, obis::CLOCK, 2).to_data(),
            7 => Data::DoubleLongUnsigned(match def.profile {
                ProfileKind::Instantaneous | ProfileKind::NamePlate => 1,
                _ => self.profile_rows(def, all.0, all.1).len() as u32,
            }),
            8 => Data::DoubleLongUnsigned(self.profile_depth(def)),
            _ => return Err(DataAccessResult::ObjectUnavailable),
        })
    }

    fn profile_depth(&self, def: &ProfileDef) -> u32 {
        match def.profile {
            ProfileKind::BlockLoad => (BLOCK_DEPTH_DAYS * DAY / self.model.period) as u32,
            ProfileKind::DailyLoad => DAILY_DEPTH_DAYS as u32,
            ProfileKind::Billing => BILLING_DEPTH as u32,
            ProfileKind::EventLog(_) => events::LOG_DEPTH as u32,
            _ => 1,
        }
    }

    fn scaler_profile_attribute(
        &self,
        def: &ProfileDef,
        attribute: i8,
    ) -> Result<Data, DataAccessResult> {
        let cat = Catalogue::builtin();
        Ok(match attribute {
            2 => Data::Array(vec![def.default_scaler_row(cat, KIND)]),
            3 => capture_objects_to_data(&def.scaler_capture_objects(cat, KIND)),
            4 => Data::DoubleLongUnsigned(0),
            5 => Data::Enum(1),
            6 => CaptureObject::new(0, ObisCode::new(0, 0, 0, 0, 0, 0), 0).to_data(),
            7 | 8 => Data::DoubleLongUnsigned(1),
            _ => return Err(DataAccessResult::ObjectUnavailable),
        })
    }
}

fn image_info(image: &Option<ImageTransfer>) -> Data {
    match image {
        Some(img) if img.status >= 3 && img.status != 4 => {
            Data::Array(vec![Data::Structure(vec![
                Data::DoubleLongUnsigned(img.size),
                Data::OctetString(img.identifier.clone()),
                Data::OctetString(Vec::new()),
            ])])
        }
        _ => Data::Array(Vec::new()),
    }
}

fn capture_ln(ln: ObisCode, class_id: u16, attribute: i8) -> Data {
    CaptureObject::new(class_id, ln, attribute).to_data()
}

impl View<'_> {
    fn get_object(
        &self,
        ctx: &RequestContext,
        def: &ObjectDef,
        attribute: i8,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        let ln = def.logical_name;
        if attribute == 1 {
            return Ok(octets(ln));
        }
        let profiles = Profiles::builtin();
        match def.class_id {
            8 => Ok(match attribute {
                2 => datetime_data(self.clock_ms),
                3 => Data::Long(-330),
                4 => Data::Unsigned(0),
                5 | 6 => not_specified_datetime(),
                7 => Data::Integer(0),
                8 => Data::Boolean(false),
                9 => Data::Enum(1),
                _ => return Err(DataAccessResult::ObjectUnavailable),
            }),
            7 => {
                if let Some(p) = profiles.by_logical_name(KIND, ln) {
                    self.profile_attribute(p, attribute, access)
                } else if let Some(p) = profiles
                    .for_kind(KIND)
                    .find(|p| p.scaler_profile == Some(ln))
                {
                    self.scaler_profile_attribute(p, attribute)
                } else {
                    Err(DataAccessResult::ObjectUnavailable)
                }
            }
            1 | 3 | 4 => match attribute {
                3 if def.class_id != 1 => def
                    .scaler_unit
                    .map(|s| s.to_data())
                    .ok_or(DataAccessResult::ObjectUnavailable),
                4 if def.class_id == 4 => Ok(Data::Null),
                2 | 5 => self
                    .value(def.class_id, ln, attribute, Scope::Now)
                    .ok_or(DataAccessResult::ObjectUnavailable),
                _ => Err(DataAccessResult::ObjectUnavailable),
            },
            70 => Ok(match attribute {
                2 => Data::Boolean(self.relay.output),
                3 => Data::Enum(self.relay.control_state),
                4 => Data::Enum(self.relay.control_mode),
                _ => return Err(DataAccessResult::ObjectUnavailable),
            }),
            71 => Ok(match attribute {
                2 => capture_ln(ObisCode::new(1, 0, 1, 7, 0, 255), 3, 2),
                3 | 4 => Data::DoubleLongUnsigned(self.limit_w),
                5 => Data::DoubleLongUnsigned(self.limit_w),
                6 => Data::DoubleLongUnsigned(60),
                7 => Data::DoubleLongUnsigned(60),
                8 => Data::Structure(vec![
                    Data::LongUnsigned(0),
                    not_specified_datetime(),
                    Data::DoubleLongUnsigned(0),
                ]),
                9 => Data::Array(Vec::new()),
                10 => Data::Boolean(false),
                11 => Data::Structure(vec![
                    Data::Structure(vec![
                        octets(ObisCode::new(0, 0, 10, 0, 106, 255)),
                        Data::LongUnsigned(1),
                    ]),
                    Data::Structure(vec![
                        octets(ObisCode::new(0, 0, 10, 0, 106, 255)),
                        Data::LongUnsigned(2),
                    ]),
                ]),
                _ => return Err(DataAccessResult::ObjectUnavailable),
            }),
            18 => Ok(match attribute {
                2 => Data::DoubleLongUnsigned(IMAGE_BLOCK_SIZE),
                3 => Data::bit_string(match &self.image {
                    Some(img) => BitString::with_bits(
                        img.received.len(),
                        img.received
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| **b)
                            .map(|(i, _)| i),
                    ),
                    None => BitString::default(),
                }),
                4 => Data::DoubleLongUnsigned(self.image.as_ref().map_or(0, |i| i.first_missing())),
                5 => Data::Boolean(true),
                6 => Data::Enum(self.image.as_ref().map_or(0, |i| i.status)),
                7 => image_info(&self.image),
                _ => return Err(DataAccessResult::ObjectUnavailable),
            }),
            40 => Ok(match attribute {
                2 => Data::Array(vec![
                    capture_ln(obis::METER_SERIAL_NUMBER, 1, 2),
                    capture_ln(ln, 40, 1),
                    capture_ln(obis::CLOCK, 8, 2),
                    if ln == obis::PUSH_SETUP_ALERT {
                        capture_ln(obis::EVENT_STATUS_WORD, 1, 2)
                    } else {
                        capture_ln(obis::INSTANTANEOUS_PROFILE, 7, 2)
                    },
                ]),
                3 => Data::Structure(vec![
                    Data::Enum(0),
                    Data::OctetString(
                        self.shared
                            .config
                            .push_to
                            .map(|a| a.to_string())
                            .unwrap_or_default()
                            .into_bytes(),
                    ),
                    Data::Enum(0),
                ]),
                4 => Data::Array(Vec::new()),
                5 => Data::LongUnsigned(0),
                6 => Data::Unsigned(3),
                7 => Data::LongUnsigned(60),
                _ => return Err(DataAccessResult::ObjectUnavailable),
            }),
            22 => Ok(match attribute {
                2 => Data::Structure(vec![
                    octets(if ln == obis::BILLING_DATES {
                        obis::MD_RESET_SCRIPT
                    } else {
                        ObisCode::new(0, 0, 10, 0, 107, 255)
                    }),
                    Data::LongUnsigned(1),
                ]),
                3 => Data::Enum(1),
                4 if ln == obis::BILLING_DATES => {
                    let b = self.billing_schedule;
                    let secs = b.secs_of_day;
                    Data::Array(vec![Data::Structure(vec![
                        Data::OctetString(vec![
                            (secs / 3600) as u8,
                            (secs / 60 % 60) as u8,
                            (secs % 60) as u8,
                            0,
                        ]),
                        Data::OctetString(vec![0xFF, 0xFF, 0xFF, b.day, 0xFF]),
                    ])])
                }
                4 => Data::Array(vec![Data::Structure(vec![
                    Data::OctetString(vec![0, 0, 0, 0]),
                    Data::OctetString(vec![0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
                ])]),
                _ => return Err(DataAccessResult::ObjectUnavailable),
            }),
            20 => Ok(self.activity_calendar(attribute)?),
            9 => Ok(match attribute {
                2 => Data::Array(vec![Data::Structure(vec![
                    Data::LongUnsigned(1),
                    Data::Array(Vec::new()),
                ])]),
                _ => return Err(DataAccessResult::ObjectUnavailable),
            }),
            15 => self.association(ctx, def, attribute),
            64 => Ok(match attribute {
                2 => Data::Enum(3),
                3 => Data::Enum(0),
                4 => Data::OctetString(Vec::new()),
                5 => Data::OctetString(self.keys().system_title.to_vec()),
                _ => return Err(DataAccessResult::ObjectUnavailable),
            }),
            _ => Err(DataAccessResult::ObjectUnavailable),
        }
    }

    fn activity_calendar(&self, attribute: i8) -> Result<Data, DataAccessResult> {
        let (active, passive, activate_at) = match &self.calendar {
            Some(c) => (c.active.clone(), c.passive.clone(), c.activate_at),
            None => (default_calendar(), default_calendar(), None),
        };
        Ok(match attribute {
            2 => Data::OctetString(active.name),
            3 => active.seasons,
            4 => active.weeks,
            5 => active.days,
            6 => Data::OctetString(passive.name),
            7 => passive.seasons,
            8 => passive.weeks,
            9 => passive.days,
            10 => activate_at.map_or_else(not_specified_datetime, secs_data),
            _ => return Err(DataAccessResult::ObjectUnavailable),
        })
    }

    /// Association LN attributes the server association leaves to the object model:
    /// 2 object list (with this association's access rights), 3 associated partners,
    /// 4 application context, 5 xDLMS context, 6 mechanism, 8 status.
    fn association(
        &self,
        ctx: &RequestContext,
        def: &ObjectDef,
        attribute: i8,
    ) -> Result<Data, DataAccessResult> {
        let who = Association::ALL
            .iter()
            .copied()
            .find(|a| a.logical_name() == def.logical_name);
        Ok(match attribute {
            2 => object_list(ctx.client_sap),
            3 => Data::Structure(vec![
                Data::Integer(who.map_or(0, |a| a.client_sap() as i8)),
                Data::LongUnsigned(crate::keys::SERVER_SAP),
            ]),
            4 => application_context_name(if who.is_some_and(|a| a.ciphered()) {
                ApplicationContext::LogicalNameWithCiphering
            } else {
                ApplicationContext::LogicalNameNoCiphering
            }),
            6 => mechanism_name(who.map_or(Mechanism::None, |a| a.mechanism())),
            8 => Data::Enum(if who.is_some_and(|a| a.client_sap() == ctx.client_sap) {
                2
            } else {
                0
            }),
            _ => return Err(DataAccessResult::ReadWriteDenied),
        })
    }
}

/// The tariffication script table the day profile's actions point at (selector = TOD zone).
const TARIFF_SCRIPTS: ObisCode = ObisCode::new(0, 0, 10, 0, 100, 255);

/// The calendar a meter leaves the factory with: one season, one week, the [`TodTable`] of
/// [`crate::load::TOD_ZONES`].
pub(crate) fn default_calendar() -> CalendarParts {
    let actions = TodTable::default_table()
        .starts()
        .iter()
        .map(|(minute, zone)| {
            Data::Structure(vec![
                Data::OctetString(vec![(minute / 60) as u8, (minute % 60) as u8, 0, 0]),
                octets(TARIFF_SCRIPTS),
                Data::LongUnsigned(*zone as u16),
            ])
        })
        .collect();
    CalendarParts {
        name: b"URJTOD".to_vec(),
        seasons: Data::Array(vec![Data::Structure(vec![
            Data::OctetString(b"ALL".to_vec()),
            Data::OctetString(vec![0xFF, 0xFF, 1, 1, 0xFF, 0, 0, 0, 0, 0x80, 0, 0]),
            Data::OctetString(b"WEEK".to_vec()),
        ])]),
        weeks: Data::Array(vec![Data::Structure(
            std::iter::once(Data::OctetString(b"WEEK".to_vec()))
                .chain((0..7).map(|_| Data::Unsigned(1)))
                .collect(),
        )]),
        days: Data::Array(vec![Data::Structure(vec![
            Data::Unsigned(1),
            Data::Array(actions),
        ])]),
    }
}

/// Whether `value` is an array whose every element is a structure accepted by `entry`.
fn array_of(value: &Data, entry: impl Fn(&[Data]) -> bool) -> bool {
    matches!(value, Data::Array(items)
        if items.iter().all(|i| matches!(i, Data::Structure(f) if entry(f))))
}

fn octets_of_len(d: &Data, len: Option<usize>) -> bool {
    matches!(d, Data::OctetString(b) if len.is_none_or(|n| b.len() == n))
}

/// Season profile: {season_profile_name, season_start (date-time), week_name}.
fn valid_seasons(value: &Data) -> bool {
    array_of(value, |f| {
        matches!(f, [name, start, week]
            if octets_of_len(name, None) && octets_of_len(start, Some(12))
                && octets_of_len(week, None))
    })
}

/// Week profile table: {week_profile_name, day_id for Monday..Sunday}.
fn valid_weeks(value: &Data) -> bool {
    array_of(value, |f| {
        matches!(f, [name, days @ ..]
            if octets_of_len(name, None) && days.len() == 7
                && days.iter().all(|d| matches!(d, Data::Unsigned(_))))
    })
}

/// Day profile table: {day_id, day_schedule: array of {start_time, script_logical_name,
/// script_selector}}.
fn valid_days(value: &Data) -> bool {
    array_of(value, |f| {
        matches!(f, [Data::Unsigned(_), schedule]
            if array_of(schedule, |a| matches!(a, [start, script, Data::LongUnsigned(_)]
                if octets_of_len(start, Some(4)) && octets_of_len(script, Some(6)))))
    })
}

/// The TOD day profile of a calendar: the day profile the first week profile gives Monday (the
/// first day profile if it names none), its actions' start times and selectors as zones.
/// `None` when that gives no valid table (selectors outside 1..=8, bad times).
pub(crate) fn tod_table(parts: &CalendarParts) -> Option<TodTable> {
    let monday = parts
        .weeks
        .as_items()
        .and_then(|w| w.first())
        .and_then(Data::as_items)
        .and_then(|w| w.get(1))
        .and_then(Data::as_i64);
    let days = parts.days.as_items()?;
    let day_id = |d: &Data| d.as_items().and_then(|f| f.first()).and_then(Data::as_i64);
    let day = days
        .iter()
        .find(|d| monday.is_some() && day_id(d) == monday)
        .or(days.first())?;
    let actions = day.as_items()?.get(1)?.as_items()?;
    let starts = actions
        .iter()
        .map(|a| {
            let f = a.as_items()?;
            let t = f.first()?.as_octets()?;
            let (h, m) = (*t.first()?, *t.get(1)?);
            if h > 23 || m > 59 {
                return None;
            }
            let zone = u8::try_from(f.get(2)?.as_i64()?).ok()?;
            Some((h as u16 * 60 + m as u16, zone))
        })
        .collect::<Option<Vec<_>>>()?;
    TodTable::new(starts)
}

/// An application context or mechanism name, 2.16.756.5.8.`kind`.`last`, as a structure.
/// Association LN attribute 2: every object of the meter with the access rights of the
/// association on `client_sap`.
fn object_list(client_sap: u16) -> Data {
    let cat = Catalogue::builtin();
    let who = Association::from_client_sap(client_sap);
    Data::Array(
        cat.for_kind(KIND)
            .filter_map(|o| {
                let class = o.class()?;
                let read = who.is_some_and(|w| o.access.can_read(w));
                let attrs = (1..=class.attributes)
                    .map(|a| {
                        let write = who.is_some_and(|w| o.access.can_write(w, a));
                        let mode = (read || a == 1) as u8 | ((write as u8) << 1);
                        Data::Structure(vec![Data::Integer(a), Data::Enum(mode), Data::Null])
                    })
                    .collect();
                let methods = (1..=class.methods)
                    .map(|m| {
                        let ok = who.is_some_and(|w| o.access.can_invoke(w, m));
                        Data::Structure(vec![Data::Integer(m), Data::Enum(ok as u8)])
                    })
                    .collect();
                Some(Data::Structure(vec![
                    Data::LongUnsigned(o.class_id),
                    Data::Unsigned(o.version),
                    octets(o.logical_name),
                    Data::Structure(vec![Data::Array(attrs), Data::Array(methods)]),
                ]))
            })
            .collect(),
    )
}

fn datetime_from(value: &Data) -> Option<i64> {
    Some(value.as_datetime()?.to_utc(ist())?.timestamp_millis())
}

impl CosemObjects for MeterObjects {
    fn get(
        &mut self,
        ctx: &RequestContext,
        attribute: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        let cat = Catalogue::builtin();
        let def = cat.check_get(
            KIND,
            ctx.client_sap,
            attribute.class_id,
            attribute.instance,
            attribute.attribute_id,
        )?;
        // Secrets are never returned.
        if (def.class_id == 15 && attribute.attribute_id == 7)
            || (def.class_id == 64 && attribute.attribute_id > 5)
        {
            return Err(DataAccessResult::ReadWriteDenied);
        }
        let view = self.view(ctx.now);
        view.get_object(ctx, def, attribute.attribute_id, access)
    }

    fn set(
        &mut self,
        ctx: &RequestContext,
        attribute: &AttributeDescriptor,
        _access: Option<&SelectiveAccess>,
        value: Data,
    ) -> Result<(), DataAccessResult> {
        let cat = Catalogue::builtin();
        let def = cat.check_set(
            KIND,
            ctx.client_sap,
            attribute.class_id,
            attribute.instance,
            attribute.attribute_id,
        )?;
        let ln = def.logical_name;
        let now = ctx.now;
        let t = now.timestamp();
        let attr = attribute.attribute_id;
        let shared = self.shared.clone();
        let index = self.index;
        let bad = DataAccessResult::TypeUnmatched;
        match (def.class_id, attr) {
            (8, 2) => {
                let target = datetime_from(&value).ok_or(bad)?;
                let mut g = shared.state(index);
                let s = g.get_mut();
                let unadjusted = meter::clock_ms(&shared, index, Some(s), now) - s.clock_adjust_ms;
                s.clock_adjust_ms = target - unadjusted;
                s.programming_count += 1;
                s.log(t, code::RTC_SET);
                Ok(())
            }
            (70, 4) => {
                let mode = match value {
                    Data::Enum(m) if m <= 6 => m,
                    _ => return Err(bad),
                };
                self.with_state(|s| {
                    let mut r = s.relay();
                    r.control_mode = mode;
                    s.relay = Some(r);
                    s.programming_count += 1;
                });
                Ok(())
            }
            (71, 3 | 4) => {
                let w = value
                    .as_i64()
                    .filter(|v| (0..=u32::MAX as i64).contains(v))
                    .ok_or(bad)?;
                self.with_state(|s| {
                    s.limit = Some((w as u32, t));
                    s.programming_count += 1;
                    s.log(t, code::LOAD_LIMIT_SET);
                });
                Ok(())
            }
            (18, 5) => match value {
                // Image transfer is always enabled here: enabling it is true, disabling is not
                // modelled.
                Data::Boolean(true) => Ok(()),
                Data::Boolean(false) => Err(DataAccessResult::ReadWriteDenied),
                _ => Err(bad),
            },
            (1, 2) if ln == obis::EVENT_STATUS_WORD_FILTER => match value {
                Data::BitString(b) if b.len == esw::LEN => {
                    self.with_state(|s| {
                        s.esw_filter = Some(b.bytes);
                        s.programming_count += 1;
                        s.log(t, code::ESW_FILTER_CHANGED);
                    });
                    Ok(())
                }
                _ => Err(bad),
            },
            (1, 2)
                if ln == obis::PROFILE_CAPTURE_PERIOD || ln == obis::DEMAND_INTEGRATION_PERIOD =>
            {
                // 15 or 30 minutes. Block-load rows after a capture period change follow it when
                // it is a multiple of the modelled period (see `LoadModel::row_period`); the
                // demand integration period is kept and read back, maximum demand stays
                // integrated over the modelled period.
                let p = match value.as_i64() {
                    Some(p @ (900 | 1800)) => p,
                    Some(_) => return Err(DataAccessResult::OtherReason),
                    None => return Err(bad),
                };
                self.with_state(|s| {
                    s.programming_count += 1;
                    if ln == obis::PROFILE_CAPTURE_PERIOD {
                        s.capture_period.push((t, p));
                        s.log(t, code::CAPTURE_PERIOD_SET);
                    } else {
                        s.demand_integration_period = Some(p);
                        s.log(t, code::DEMAND_INTEGRATION_PERIOD_SET);
                    }
                });
                Ok(())
            }
            (20, 6..=10) => {
                let ok = match attr {
                    6 => octets_of_len(&value, None),
                    7 => valid_seasons(&value),
                    8 => valid_weeks(&value),
                    9 => valid_days(&value),
                    _ => octets_of_len(&value, Some(12)),
                };
                if !ok {
                    return Err(bad);
                }
                let activate_at = if attr == 10 {
                    let b = value.as_octets().unwrap_or_default();
                    if b.iter().take(9).all(|x| *x == 0xFF) {
                        None
                    } else {
                        Some(datetime_from(&value).ok_or(bad)? / 1000)
                    }
                } else {
                    None
                };
                self.with_state(|s| {
                    let cal = s.calendar.get_or_insert_with(|| {
                        Box::new(Calendar {
                            active: default_calendar(),
                            passive: default_calendar(),
                            activate_at: None,
                            history: Vec::new(),
                        })
                    });
                    match attr {
                        6 => cal.passive.name = value.as_octets().unwrap_or_default().to_vec(),
                        7 => cal.passive.seasons = value,
                        8 => cal.passive.weeks = value,
                        9 => cal.passive.days = value,
                        _ => cal.activate_at = activate_at,
                    }
                    s.programming_count += 1;
                    // An activation time already past applies now.
                    s.settle(t);
                });
                Ok(())
            }
            (22, 4) if ln == obis::BILLING_DATES => {
                let entry = match &value {
                    Data::Array(entries) if entries.len() == 1 => entries[0].as_items(),
                    _ => None,
                };
                let (time, date) = match entry {
                    Some([Data::OctetString(t), Data::OctetString(d)])
                        if t.len() == 4 && d.len() == 5 =>
                    {
                        (t, d)
                    }
                    _ => return Err(bad),
                };
                let field = |v: u8, max: u8| match v {
                    0xFF => Some(0),
                    v if v <= max => Some(v as i64),
                    _ => None,
                };
                let (Some(h), Some(m), Some(sec)) =
                    (field(time[0], 23), field(time[1], 59), field(time[2], 59))
                else {
                    return Err(bad);
                };
                // Monthly: year and month not specified, a day every month has.
                let day = date[3];
                if date[0..3] != [0xFF, 0xFF, 0xFF] || !(1..=28).contains(&day) {
                    return Err(DataAccessResult::OtherReason);
                }
                let schedule = BillingSchedule {
                    day,
                    secs_of_day: h * 3600 + m * 60 + sec,
                };
                self.with_state(|s| {
                    s.billing_schedule.push((t, schedule));
                    s.programming_count += 1;
                    s.log(t, code::BILLING_DATE_SET);
                });
                Ok(())
            }
            (1, 2) if ln == obis::PAYMENT_MODE => {
                let prepaid = match value.as_i64() {
                    Some(0) => false,
                    Some(1) => true,
                    _ => return Err(bad),
                };
                let was = self.view(now).prepaid;
                self.with_state(|s| {
                    s.prepaid = Some(prepaid);
                    s.programming_count += 1;
                    if was != prepaid {
                        s.log(
                            t,
                            if prepaid {
                                code::CHANGED_TO_PREPAID
                            } else {
                                code::CHANGED_TO_POSTPAID
                            },
                        );
                    }
                });
                Ok(())
            }
            (3, 2) if ln == LAST_RECHARGE_AMOUNT || ln == CURRENT_BALANCE => {
                // Scaler −2 on a currency unit: the raw value is in paise.
                let paise = value.as_i64().ok_or(bad)?;
                let view = self.view(now);
                let (last_amount, total_at_last) = if ln == LAST_RECHARGE_AMOUNT {
                    // A recharge: the amount is added to the balance.
                    let total = view
                        .balance_paise()
                        .checked_add(paise)
                        .ok_or(DataAccessResult::OtherReason)?;
                    (paise, total)
                } else {
                    // The balance itself, set as it is.
                    (view.recharge.last_amount, paise)
                };
                self.with_state(|s| {
                    s.recharge = Some(Recharge {
                        last_amount,
                        at: t,
                        total_at_last,
                    })
                });
                Ok(())
            }
            (15, 7) if ln == METER_READER_ASSOCIATION => {
                // The meter reader's LLS secret: later associations must use the new one.
                let secret = value.as_octets().ok_or(bad)?;
                if !(1..=MAX_LLS_SECRET_LEN).contains(&secret.len()) {
                    return Err(DataAccessResult::OtherReason);
                }
                let secret = secret.to_vec();
                self.with_state(|s| {
                    s.lls_secret = Some(secret);
                    s.programming_count += 1;
                    s.log(t, code::LLS_SECRET_CHANGED);
                });
                Ok(())
            }
            // Writable in the catalogue but not modelled here: refused, never pretended.
            _ => Err(DataAccessResult::ReadWriteDenied),
        }
    }

    fn action(
        &mut self,
        ctx: &RequestContext,
        method: &MethodDescriptor,
        parameters: Option<Data>,
    ) -> Result<Option<Data>, ActionResult> {
        let cat = Catalogue::builtin();
        let def = cat.check_action(
            KIND,
            ctx.client_sap,
            method.class_id,
            method.instance,
            method.method_id,
        )?;
        let now = ctx.now;
        let t = now.timestamp();
        let shared = self.shared.clone();
        let index = self.index;
        match (def.class_id, method.method_id) {
            (70, m @ (1 | 2)) => {
                let changed = self.with_state(|s| meter::set_relay(s, m == 2, t));
                if changed {
                    let c = if m == 2 {
                        code::LOAD_SWITCH_CONNECTED
                    } else {
                        code::LOAD_SWITCH_DISCONNECTED
                    };
                    crate::push::alert(&shared, index, c, now);
                }
                Ok(None)
            }
            (18, 1) => {
                let (id, size) = fields(&parameters)?;
                let (Some(id), Some(size)) = (id.as_octets(), size.as_i64()) else {
                    return Err(ActionResult::TypeUnmatched);
                };
                if !(1..=meter::MAX_IMAGE_SIZE as i64).contains(&size) {
                    return Err(ActionResult::OtherReason);
                }
                let size = size as u32;
                let id = id.to_vec();
                self.with_state(|s| {
                    s.image = Some(Box::new(ImageTransfer {
                        identifier: id,
                        size,
                        received: vec![false; ImageTransfer::blocks(size)],
                        status: 1,
                    }))
                });
                Ok(None)
            }
            (18, 2) => {
                let (n, block) = fields(&parameters)?;
                let (Some(n), Some(block)) = (n.as_i64(), block.as_octets()) else {
                    return Err(ActionResult::TypeUnmatched);
                };
                self.with_state(|s| {
                    let img = s.image.as_deref_mut().ok_or(ActionResult::OtherReason)?;
                    let slot = usize::try_from(n)
                        .ok()
                        .filter(|i| *i < img.received.len())
                        .ok_or(ActionResult::OtherReason)?;
                    let blocks = img.received.len();
                    let expected = if slot + 1 == blocks {
                        img.size as usize - slot * IMAGE_BLOCK_SIZE as usize
                    } else {
                        IMAGE_BLOCK_SIZE as usize
                    };
                    if block.len() != expected {
                        return Err(ActionResult::OtherReason);
                    }
                    img.received[slot] = true;
                    img.status = 1;
                    Ok(None)
                })
            }
            (18, 3) => self.with_state(|s| {
                let img = s.image.as_deref_mut().ok_or(ActionResult::OtherReason)?;
                if img.received.iter().all(|b| *b) {
                    img.status = 3;
                    Ok(None)
                } else {
                    img.status = 4;
                    Err(ActionResult::OtherReason)
                }
            }),
            (18, 4) => self.with_state(|s| {
                let img = s.image.as_deref_mut().ok_or(ActionResult::OtherReason)?;
                if img.status != 3 && img.status != 6 {
                    img.status = 7;
                    return Err(ActionResult::OtherReason);
                }
                img.status = 6;
                s.firmware = Some(String::from_utf8_lossy(&img.identifier).into_owned());
                s.log(t, code::FIRMWARE_ACTIVATED);
                Ok(None)
            }),
            (20, 1) => {
                // Activate the passive calendar now.
                self.with_state(|s| {
                    s.calendar
                        .get_or_insert_with(|| {
                            Box::new(Calendar {
                                active: default_calendar(),
                                passive: default_calendar(),
                                activate_at: None,
                                history: Vec::new(),
                            })
                        })
                        .activate(t);
                    s.programming_count += 1;
                    s.log(t, code::CALENDAR_ACTIVATED);
                });
                Ok(None)
            }
            (64, 2) => {
                let master = MeterKeys::derive(shared.config.seed, index).master_key;
                let keys = unwrap_transferred_keys(&master, parameters.as_ref())?;
                self.with_state(|s| {
                    let mut current = s.global_keys.clone().unwrap_or_else(|| {
                        let k = MeterKeys::derive(shared.config.seed, index);
                        GlobalKeys {
                            encryption: k.global_encryption_key,
                            authentication: k.global_authentication_key,
                        }
                    });
                    if let Some(ek) = keys.encryption {
                        current.encryption = ek;
                    }
                    if let Some(ak) = keys.authentication {
                        current.authentication = ak;
                    }
                    s.global_keys = Some(current);
                    s.programming_count += 1;
                    s.log(t, code::GLOBAL_KEY_CHANGED);
                });
                Ok(None)
            }
            (9, 1) => {
                // MD reset.
                self.with_state(|s| {
                    s.md_reset_at = t;
                    s.log(t, code::MD_RESET);
                });
                Ok(None)
            }
            (40, 1) => {
                crate::push::alert_now(&shared, index, def.logical_name, now);
                Ok(None)
            }
            _ => Err(ActionResult::ReadWriteDenied),
        }
    }
}

/// New global keys carried by a key transfer; `None` for a key it does not change.
#[derive(Default)]
struct TransferredKeys {
    encryption: Option<[u8; 16]>,
    authentication: Option<[u8; 16]>,
}

/// Key ids of key transfer (Blue Book security setup method 2).
const KEY_ID_GLOBAL_UNICAST_ENCRYPTION: i64 = 0;
const KEY_ID_GLOBAL_AUTHENTICATION: i64 = 2;

/// Unwraps key transfer's parameter, `array of {key_id: enum, key_wrapped: octet-string}`, with
/// the master key (AES key wrap, RFC 3394). All or nothing: a bad shape is type-unmatched, an
/// unknown key id or a wrapped key that does not unwrap (wrong KEK, tampered) is other-reason.
fn unwrap_transferred_keys(
    master_key: &[u8; 16],
    parameters: Option<&Data>,
) -> Result<TransferredKeys, ActionResult> {
    let Some(Data::Array(entries)) = parameters else {
        return Err(ActionResult::TypeUnmatched);
    };
    if entries.is_empty() || entries.len() > 4 {
        return Err(ActionResult::OtherReason);
    }
    let kek = aes_kw::KekAes128::new(&(*master_key).into());
    let mut keys = TransferredKeys::default();
    for entry in entries {
        let (id, wrapped) = match entry.as_items() {
            Some([Data::Enum(id), Data::OctetString(w)]) => (*id as i64, w),
            _ => return Err(ActionResult::TypeUnmatched),
        };
        // A wrapped 128-bit key is 24 bytes (8 bytes of integrity check).
        if wrapped.len() != 24 {
            return Err(ActionResult::OtherReason);
        }
        let mut key = [0u8; 16];
        kek.unwrap(wrapped, &mut key)
            .map_err(|_| ActionResult::OtherReason)?;
        match id {
            KEY_ID_GLOBAL_UNICAST_ENCRYPTION => keys.encryption = Some(key),
            KEY_ID_GLOBAL_AUTHENTICATION => keys.authentication = Some(key),
            _ => return Err(ActionResult::OtherReason),
        }
    }
    Ok(keys)
}

/// The first two fields of a method's structure parameter (image transfer's
/// {identifier, size} and {block number, block}).
fn fields(parameters: &Option<Data>) -> Result<(&Data, &Data), ActionResult> {
    match parameters.as_ref().and_then(Data::as_items) {
        Some([first, second, ..]) => Ok((first, second)),
        _ => Err(ActionResult::TypeUnmatched),
    }
}

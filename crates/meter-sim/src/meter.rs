//! What changed on a meter at run time: the only per-meter memory the simulator keeps, allocated
//! on first change. An idle meter has none. Also the operations that change it (relay, power,
//! events raised on demand, clock set, firmware activation, calendar activation) and the
//! [`LoadModel`] view of a meter that takes those changes into account (outages, relay-open
//! periods, TOD calendars, billing dates, capture periods, MD reset).

use std::time::Duration;

use chrono::{DateTime, Utc};
use dlms::association::server::MeterSecurityState;
use dlms::security::GlobalKeys;

use crate::events::{self, Event, EventKind, code};
use crate::faults::{Fault, FaultKind};
use crate::fleet::Shared;
use crate::load::{BillingSchedule, LoadModel, Spans, TodTable};

/// The load switch (IC 70).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay {
    /// Output state: true = supply connected.
    pub output: bool,
    /// Control state: 0 disconnected, 1 connected, 2 ready for reconnection.
    pub control_state: u8,
    /// Control mode 0..=6 (Blue Book).
    pub control_mode: u8,
}

impl Default for Relay {
    fn default() -> Self {
        Relay {
            output: true,
            control_state: 1,
            control_mode: 4,
        }
    }
}

/// Image transfer (IC 18) progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTransfer {
    pub identifier: Vec<u8>,
    pub size: u32,
    /// One bit per block, set when received.
    pub received: Vec<bool>,
    /// Blue Book image_transfer_status: 0 not initiated, 1 initiated, 2 verification initiated,
    /// 3 verification successful, 4 verification failed, 5 activation initiated,
    /// 6 activation successful, 7 activation failed.
    pub status: u8,
}

/// Image block size the meter asks for (attribute 2 of image transfer).
pub const IMAGE_BLOCK_SIZE: u32 = 128;
/// Largest image accepted.
pub const MAX_IMAGE_SIZE: u32 = 4 << 20;

impl ImageTransfer {
    pub fn blocks(size: u32) -> usize {
        size.div_ceil(IMAGE_BLOCK_SIZE) as usize
    }

    pub fn first_missing(&self) -> u32 {
        self.received
            .iter()
            .position(|b| !b)
            .unwrap_or(self.received.len()) as u32
    }
}

/// One calendar of the activity calendar object (IC 20): name, season profile, week profile
/// table and day profile table, as written (already checked for shape).
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarParts {
    pub name: Vec<u8>,
    pub seasons: dlms::Data,
    pub weeks: dlms::Data,
    pub days: dlms::Data,
}

/// The activity calendar as a head-end changed it: the active and passive calendars, a pending
/// activation, and the TOD day profiles activated so far (what the load model bills by).
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub active: CalendarParts,
    pub passive: CalendarParts,
    /// activate_passive_calendar_time (attribute 10), UTC seconds; `None`: not specified.
    pub activate_at: Option<i64>,
    /// (from when, TOD day profile), oldest first.
    pub history: Vec<(i64, TodTable)>,
}

impl Calendar {
    /// Passive → active at `t`: the TOD zones of the new active calendar apply from `t` when
    /// its day profile names zones 1..=8 (else the zones in force stay).
    pub fn activate(&mut self, t: i64) {
        self.active = self.passive.clone();
        self.activate_at = None;
        if let Some(table) = crate::objects::tod_table(&self.active) {
            self.history.push((t, table));
        }
    }
}

/// A prepaid wallet as the meter sees it (paise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recharge {
    pub last_amount: i64,
    pub at: i64,
    pub total_at_last: i64,
}

/// Everything about one meter that differs from its deterministic model.
#[derive(Debug, Default)]
pub struct MeterState {
    faults: Vec<(FaultKind, Option<Fault>)>,
    /// Added to the modelled clock (set by writing the clock), milliseconds.
    pub clock_adjust_ms: i64,
    pub relay: Option<Relay>,
    /// Periods with the relay open.
    pub disconnected: Vec<(i64, i64)>,
    /// On-demand outages.
    pub outages: Vec<(i64, i64)>,
    /// Events raised at run time (not part of the schedule).
    pub events: Vec<Event>,
    /// Magnet present (raised on demand).
    pub magnet: bool,
    pub cover_opened: bool,
    pub overload: bool,
    pub firmware: Option<String>,
    pub image: Option<Box<ImageTransfer>>,
    /// `Some(true)` prepaid, `Some(false)` postpaid; default from the model.
    pub prepaid: Option<bool>,
    pub recharge: Option<Recharge>,
    /// Load limit set by the utility, W, and since when.
    pub limit: Option<(u32, i64)>,
    pub esw_filter: Option<Vec<u8>>,
    pub programming_count: u32,
    /// When the maximum demand was last reset (0 = never).
    pub md_reset_at: i64,
    /// Counters that outlive connections: the next invocation counter nobody has taken (see
    /// [`crate::session`]) and the clients' replay guards.
    pub security: Option<Box<MeterSecurityState>>,
    /// The meter reader's LLS secret as set by a head-end (attribute 7 of the association
    /// object); `None`: the one derived from the seed.
    pub lls_secret: Option<Vec<u8>>,
    /// Global keys installed by a key transfer (security setup method 2); `None`: the derived
    /// ones. Used from the next association on.
    pub global_keys: Option<GlobalKeys>,
    /// The activity calendar (TOD) as written by a head-end; `None`: the default one.
    pub calendar: Option<Box<Calendar>>,
    /// Billing date changes: (from when, new schedule), oldest first.
    pub billing_schedule: Vec<(i64, BillingSchedule)>,
    /// Block-load capture period changes: (from when, seconds), oldest first.
    pub capture_period: Vec<(i64, i64)>,
    /// Demand integration period written by a head-end, seconds.
    pub demand_integration_period: Option<i64>,
    /// Connections accepted so far (counted only for meters with the `flaky` fault).
    pub connections: u64,
}

impl MeterState {
    pub fn fault_override(&self, kind: FaultKind) -> Option<Option<Fault>> {
        self.faults
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, f)| *f)
    }

    pub fn set_fault_override(&mut self, kind: FaultKind, fault: Option<Fault>) {
        self.faults.retain(|(k, _)| *k != kind);
        self.faults.push((kind, fault));
    }

    pub fn relay(&self) -> Relay {
        self.relay.unwrap_or_default()
    }

    /// Applies what fell due by `now`: a scheduled calendar activation (event 155 at its time).
    pub fn settle(&mut self, now: i64) {
        if let Some(cal) = self.calendar.as_deref_mut()
            && let Some(at) = cal.activate_at.filter(|at| *at <= now)
        {
            cal.activate(at);
            self.log(at, events::code::CALENDAR_ACTIVATED);
        }
    }

    pub fn log(&mut self, at: i64, code: u16) {
        self.events.push(Event { at, code });
        // Keep the run-time events bounded.
        if self.events.len() > 7 * events::LOG_DEPTH {
            self.events.drain(..events::LOG_DEPTH);
        }
    }
}

/// The default firmware version.
pub const FIRMWARE: &str = "URJ-SIM-1.0.0";

/// The load model of meter `index`, including what changed at run time.
pub(crate) fn model(shared: &Shared, index: u32, state: Option<&MeterState>) -> LoadModel {
    let mut m = LoadModel::new(
        shared.config.seed,
        index,
        shared.config.capture_period_secs(),
    );
    m.scheduled_outages = shared.config.scheduled_outages;
    m.daily_outage = shared
        .fault_in(index, state, FaultKind::PowerOff)
        .map(|f| f.param.as_secs().clamp(60, 12 * 3600) as i64);
    if let Some(s) = state {
        m.extra_outages = Spans::from_unsorted(s.outages.clone());
        m.disconnected = Spans::from_unsorted(s.disconnected.clone());
        if let Some(cal) = &s.calendar {
            m.tod = cal.history.clone();
        }
        m.billing_changes = s.billing_schedule.clone();
        m.capture_changes = s.capture_period.clone();
        if s.md_reset_at != 0 {
            m.md_reset_at = s.md_reset_at;
        }
    }
    m
}

/// The meter's own clock at true time `now`, milliseconds since the epoch (UTC): true time plus
/// drift since the fleet started, the `skew` fault and any clock setting.
pub(crate) fn clock_ms(
    shared: &Shared,
    index: u32,
    state: Option<&MeterState>,
    now: DateTime<Utc>,
) -> i64 {
    let now_ms = now.timestamp_millis();
    let profile = crate::load::MeterProfile::derive(shared.config.seed, index);
    let since = (now_ms - shared.started_at.timestamp_millis()).max(0) as f64;
    let drift = (since * profile.drift_ppm / 1e6) as i64;
    let skew = shared
        .fault_in(index, state, FaultKind::Skew)
        .map(|f| {
            let ms = f.param.as_millis() as i64;
            if crate::hash::hash(
                shared.config.seed,
                &[crate::hash::tag::FAULT_PARAM, index as u64, 7],
            ) & 1
                == 0
            {
                ms
            } else {
                -ms
            }
        })
        .unwrap_or(0);
    now_ms + drift + skew + state.map_or(0, |s| s.clock_adjust_ms)
}

/// Raises `kind` on meter `index` at `now`.
pub(crate) fn trigger(shared: &Shared, index: u32, kind: EventKind, now: DateTime<Utc>) {
    let t = now.timestamp();
    {
        let mut g = shared.state(index);
        let s = g.get_mut();
        match kind {
            EventKind::MagnetOn => s.magnet = true,
            EventKind::MagnetOff => s.magnet = false,
            EventKind::CoverOpen => s.cover_opened = true,
            EventKind::OverloadOn => s.overload = true,
            EventKind::OverloadOff => s.overload = false,
        }
        s.log(t, kind.code());
    }
    crate::push::alert(shared, index, kind.code(), now);
}

/// Powers meter `index` off from `now` for `duration`.
pub(crate) fn power_off(shared: &Shared, index: u32, now: DateTime<Utc>, duration: Duration) {
    let t = now.timestamp();
    let end = t + duration.as_secs().max(1) as i64;
    shared.state(index).get_mut().outages.push((t, end));
    // Last gasp now; first breath when power returns.
    crate::push::alert(shared, index, code::POWER_FAILURE, now);
    if shared.push.is_some() {
        let push = shared.push.clone();
        let at = now + chrono::Duration::seconds(end - t);
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            if let Some(p) = push {
                let _ = p.send(crate::push::Alert {
                    meter: index,
                    code: code::POWER_RESTORED,
                    at,
                });
            }
        });
    }
}

/// Opens (disconnect) or closes (reconnect) the relay at `t`, logging 301/302.
pub(crate) fn set_relay(state: &mut MeterState, connect: bool, t: i64) -> bool {
    let mut relay = state.relay();
    if relay.output == connect {
        relay.control_state = if connect { 1 } else { 0 };
        state.relay = Some(relay);
        return false;
    }
    relay.output = connect;
    relay.control_state = if connect { 1 } else { 0 };
    state.relay = Some(relay);
    if connect {
        if let Some(open) = state
            .disconnected
            .iter_mut()
            .rev()
            .find(|(_, e)| *e == i64::MAX)
        {
            open.1 = t;
        }
        state.log(t, code::LOAD_SWITCH_CONNECTED);
    } else {
        state.disconnected.push((t, i64::MAX));
        state.log(t, code::LOAD_SWITCH_DISCONNECTED);
    }
    true
}

//! Meter events: the deterministic schedule (power failures and restorations from the load
//! model's outages, magnet tampers, a rare cover opening, overloads when the modelled demand
//! exceeds the load limit) merged with what happened at run time (relay operations, clock set,
//! firmware activation, payment-mode changes, events raised on demand), and the event status word
//! (ESW) those conditions set.

use crate::hash::{hash, tag, unit};
use crate::load::{DAY, LoadModel, local_day, local_midnight};

/// IS 15959 event codes the simulator raises.
pub mod code {
    pub const POWER_FAILURE: u16 = 101;
    pub const POWER_RESTORED: u16 = 102;
    pub const RTC_SET: u16 = 151;
    pub const DEMAND_INTEGRATION_PERIOD_SET: u16 = 152;
    pub const CAPTURE_PERIOD_SET: u16 = 153;
    pub const BILLING_DATE_SET: u16 = 154;
    pub const CALENDAR_ACTIVATED: u16 = 155;
    pub const FIRMWARE_ACTIVATED: u16 = 157;
    pub const LOAD_LIMIT_SET: u16 = 158;
    pub const LLS_SECRET_CHANGED: u16 = 161;
    pub const GLOBAL_KEY_CHANGED: u16 = 164;
    pub const ESW_FILTER_CHANGED: u16 = 165;
    pub const MD_RESET: u16 = 166;
    pub const MAGNET: u16 = 201;
    pub const MAGNET_RESTORED: u16 = 202;
    pub const CHANGED_TO_POSTPAID: u16 = 211;
    pub const CHANGED_TO_PREPAID: u16 = 212;
    pub const OVERLOAD: u16 = 215;
    pub const OVERLOAD_RESTORED: u16 = 216;
    pub const COVER_OPEN: u16 = 251;
    pub const LOAD_SWITCH_DISCONNECTED: u16 = 301;
    pub const LOAD_SWITCH_CONNECTED: u16 = 302;
}

/// ESW bits (0.0.94.91.18.255), as in `is15959/src/tables/esw.txt`.
pub mod esw {
    pub const LEN: usize = 128;
    pub const MAGNET: usize = 81;
    pub const COVER_OPEN: usize = 83;
    pub const LOAD_SWITCH_DISCONNECTED: usize = 84;
    pub const LAST_GASP: usize = 85;
    pub const FIRST_BREATH: usize = 86;
}

/// The event log (0.0.99.98.E.255) an event code belongs in.
pub fn log_of(code: u16) -> u8 {
    match code {
        0..=50 => 0,
        51..=100 => 1,
        101..=150 => 2,
        151..=200 => 3,
        201..=250 => 4,
        251..=300 => 5,
        _ => 6,
    }
}

/// Entries kept per event log (older ones roll over; the non-rollover log keeps its first).
pub const LOG_DEPTH: usize = 100;

/// An event a test or operator can raise on a meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Permanent magnet detected (201); an alert.
    MagnetOn,
    /// Magnet removed (202).
    MagnetOff,
    /// Meter cover opened (251); an alert, latched in the ESW.
    CoverOpen,
    /// Overload (215 / 216).
    OverloadOn,
    OverloadOff,
}

impl EventKind {
    pub fn code(self) -> u16 {
        match self {
            EventKind::MagnetOn => code::MAGNET,
            EventKind::MagnetOff => code::MAGNET_RESTORED,
            EventKind::CoverOpen => code::COVER_OPEN,
            EventKind::OverloadOn => code::OVERLOAD,
            EventKind::OverloadOff => code::OVERLOAD_RESTORED,
        }
    }
}

/// Whether an event is pushed as an alert, and the transient ESW bit it carries in the push.
pub fn alert_bit(code: u16) -> Option<Option<usize>> {
    match code {
        code::POWER_FAILURE => Some(Some(esw::LAST_GASP)),
        code::POWER_RESTORED => Some(Some(esw::FIRST_BREATH)),
        code::MAGNET | code::COVER_OPEN => Some(None),
        code::LOAD_SWITCH_DISCONNECTED | code::LOAD_SWITCH_CONNECTED => Some(None),
        _ => None,
    }
}

/// One logged event: when (UTC seconds) and its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Event {
    pub at: i64,
    pub code: u16,
}

/// Scheduled magnet tampers starting on local day `day`: (start, end).
fn magnet_on_day(m: &LoadModel, day: i64) -> Option<(i64, i64)> {
    let h = hash(m.seed, &[tag::MAGNET, m.meter as u64, day as u64]);
    (unit(h) < 0.004).then(|| {
        let start = local_midnight(day) + ((h >> 8) % 86_400) as i64;
        (start, start + 300 + ((h >> 32) % 3300) as i64)
    })
}

/// A scheduled cover opening on local day `day` (about one meter in a thousand a year).
fn cover_on_day(m: &LoadModel, day: i64) -> Option<i64> {
    let h = hash(m.seed, &[tag::COVER, m.meter as u64, day as u64]);
    (unit(h) < 0.000_003).then(|| local_midnight(day) + ((h >> 8) % 86_400) as i64)
}

/// Scheduled events with times in `[from, to]`, sorted. `limit_w` is the load limit in force
/// (overload when an interval's average demand exceeds it); `None` disables overload events.
pub fn scheduled(m: &LoadModel, from: i64, to: i64, limit_w: Option<u32>) -> Vec<Event> {
    let from = from.max(m.profile.installed);
    let mut out = Vec::new();
    if to < from {
        return out;
    }
    let mut push = |at: i64, code: u16| {
        if at >= from && at <= to {
            out.push(Event { at, code });
        }
    };
    for (s, e) in m.outages(from - DAY, to + 1).spans() {
        push(*s, code::POWER_FAILURE);
        push(*e, code::POWER_RESTORED);
    }
    for day in local_day(from) - 1..=local_day(to) {
        if let Some((s, e)) = magnet_on_day(m, day) {
            push(s, code::MAGNET);
            push(e, code::MAGNET_RESTORED);
        }
        if let Some(t) = cover_on_day(m, day) {
            push(t, code::COVER_OPEN);
        }
    }
    if let Some(limit) = limit_w {
        let mut over = false;
        let first = from.div_euclid(m.period) - 1;
        let last = to.div_euclid(m.period);
        for iv in m.intervals(first, last) {
            let w = iv.wh * 3600 / m.period;
            let start = iv.end - m.period;
            if w > limit as i64 && !over {
                push(start, code::OVERLOAD);
                over = true;
            } else if w <= limit as i64 && over {
                push(start, code::OVERLOAD_RESTORED);
                over = false;
            }
        }
    }
    out.sort();
    out
}

/// Whether a scheduled magnet is on the meter at `t`.
pub fn magnet_scheduled_at(m: &LoadModel, t: i64) -> bool {
    (local_day(t) - 1..=local_day(t))
        .filter_map(|d| magnet_on_day(m, d))
        .any(|(s, e)| s <= t && t < e)
}

/// Whether a scheduled cover opening happened before `t` (since installation).
pub fn cover_opened_before(m: &LoadModel, t: i64) -> bool {
    (local_day(m.profile.installed)..=local_day(t))
        .any(|d| cover_on_day(m, d).is_some_and(|c| c <= t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Spans;

    #[test]
    fn power_events_match_outages() {
        let now = 1_795_000_000;
        let mut m = LoadModel::new(9, 2, 900);
        let t = now - 2 * DAY;
        m.extra_outages = Spans::from_unsorted(vec![(t, t + 3600)]);
        let ev = scheduled(&m, now - 3 * DAY, now, None);
        assert!(ev.contains(&Event {
            at: t,
            code: code::POWER_FAILURE
        }));
        assert!(ev.contains(&Event {
            at: t + 3600,
            code: code::POWER_RESTORED
        }));
        let fails = ev.iter().filter(|e| e.code == code::POWER_FAILURE).count();
        let rests = ev.iter().filter(|e| e.code == code::POWER_RESTORED).count();
        assert!(fails.abs_diff(rests) <= 1);
        assert!(ev.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(ev, scheduled(&m, now - 3 * DAY, now, None));
    }

    #[test]
    fn a_low_limit_gives_overloads() {
        let now = 1_795_000_000;
        let m = LoadModel::new(9, 2, 900);
        let w: Vec<i64> = m
            .intervals((now - DAY) / 900, now / 900)
            .map(|i| i.wh * 4)
            .collect();
        let limit = (w.iter().min().unwrap() + w.iter().max().unwrap()) / 2;
        let ev = scheduled(&m, now - DAY, now, Some(limit as u32));
        assert!(ev.iter().any(|e| e.code == code::OVERLOAD));
        assert!(ev.iter().any(|e| e.code == code::OVERLOAD_RESTORED));
        let none = scheduled(&m, now - DAY, now, Some(1_000_000));
        assert!(!none.iter().any(|e| e.code == code::OVERLOAD));
    }
}

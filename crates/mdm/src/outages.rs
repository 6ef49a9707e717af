//! The outage desk (use cases 7.3–7.5): power-off and power-on observations of meters (last
//! gasp, first breath, power-fail events 101/102) grouped into outages, so that a transformer
//! going dark is one outage of its meters, not hundreds of alarms.
//!
//! The rules, as a distribution engineer would run a control room:
//! - A group starts at its first power-off and collects the offs within `window_s` of it
//!   (anchored at the first, so a group cannot creep). It is declared once its window has
//!   closed, whatever order the reports came in.
//! - Meters under one DT in a group: a **DT outage** (two meters are enough: last gasps are
//!   lossy, many meters of a dark DT never get theirs out, so no share of the DT is required;
//!   the OMS ping, 7.5, shows how far it reaches). One meter alone: a **meter outage**.
//! - DT groups of one feeder starting within one window: a **feeder outage** when they cover at
//!   least two DTs and more than `feeder_percent` (default 50 %) of the feeder's DTs. A feeder
//!   trip darkens every DT at once; a majority within two minutes is no coincidence of separate
//!   DT faults, and asking for all would miss trips whose last gasps were lost.
//! - A report that comes late joins the open outage of its DT (or feeder) if it went off within
//!   the window of the outage's start; a meter outage joined so becomes a DT outage.
//! - A meter already off is not off again (a last gasp and the event log's 101 tell one
//!   interruption); off again after coming back during the outage counts another power-off.
//!   Reports of an interruption already ended (the 101 read after the first breath) change
//!   nothing. An outage is restored when its last meter is back, at that meter's time.
//!
//! [`advance`] is the rule, pure; [`tick`] and [`run`] do the store's I/O around it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use model::MeterSerial;
use serde::{Deserialize, Serialize};
use store::outages::{Outage, OutageLevel, OutageMeter, Place, Power, PowerObservation};
use store::{RoutedMessage, Store, StoreError};

use crate::events::Routing;

/// Settings of the outage desk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutageConfig {
    /// Offs within this many seconds of a group's first are one outage.
    pub window_s: i64,
    /// A feeder outage needs more than this share (percent) of the feeder's DTs.
    pub feeder_percent: u32,
    /// An outage restored this long ago (seconds) still absorbs its meters' late reports.
    pub keep_s: i64,
}

impl Default for OutageConfig {
    fn default() -> Self {
        OutageConfig {
            window_s: 120,
            feeder_percent: 50,
            keep_s: 86_400,
        }
    }
}

impl OutageConfig {
    fn window(&self) -> Duration {
        Duration::seconds(self.window_s.max(0))
    }
}

/// What the desk knows of the network: each meter's DT and feeder, and each feeder's DT count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Network {
    pub places: HashMap<MeterSerial, Place>,
    pub dts_of_feeder: HashMap<String, usize>,
}

impl Network {
    fn place(&self, meter: &MeterSerial) -> Place {
        self.places.get(meter).cloned().unwrap_or_default()
    }
}

/// What became of an outage in one step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    /// New: tell OMS and CIS/CRM it started.
    pub declared: bool,
    /// Its last meter came back in this step.
    pub restored: bool,
}

/// The result of [`advance`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Advance {
    /// Outages new or changed, each with what happened to it.
    pub outages: Vec<(Outage, Change)>,
    /// Observations taken in (or found to tell nothing new).
    pub grouped: Vec<PowerObservation>,
    /// Observations of groups whose window is still open.
    pub waiting: Vec<PowerObservation>,
}

/// A set of meters that went off together, before it is an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub level: OutageLevel,
    pub node: String,
    pub dt: Option<String>,
    pub feeder: Option<String>,
    pub started_at: DateTime<Utc>,
    /// By serial.
    pub meters: Vec<MeterSerial>,
}

/// Groups meters' first power-offs (`offs`: meter and time, a meter at most once) by DT and
/// feeder. The result does not depend on the order of `offs`; every meter is in exactly one
/// group. Groups come ordered by start, then node.
pub fn group(
    offs: &[(MeterSerial, DateTime<Utc>)],
    net: &Network,
    cfg: &OutageConfig,
) -> Vec<Group> {
    let window = cfg.window();
    let mut sorted: Vec<&(MeterSerial, DateTime<Utc>)> = offs.iter().collect();
    sorted.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    // Clusters per DT, anchored at their first off; meters without a DT alone.
    let mut clusters: Vec<(Place, DateTime<Utc>, Vec<MeterSerial>)> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for (meter, at) in sorted {
        let place = net.place(meter);
        if let Some(dt) = &place.dt
            && let Some(&c) = open.get(dt)
            && *at <= clusters[c].1 + window
        {
            clusters[c].2.push(meter.clone());
            continue;
        }
        if let Some(dt) = &place.dt {
            open.insert(dt.clone(), clusters.len());
        }
        clusters.push((place, *at, vec![meter.clone()]));
    }
    // Clusters of one feeder starting within a window of the first: a feeder outage when they
    // cover enough of its DTs.
    let mut groups = Vec::new();
    let mut by_feeder: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (place, _, _)) in clusters.iter().enumerate() {
        match &place.feeder {
            Some(f) if place.dt.is_some() => by_feeder.entry(f.clone()).or_default().push(i),
            _ => groups.push(lone(&clusters[i])),
        }
    }
    for (feeder, members) in by_feeder {
        let dts = net.dts_of_feeder.get(&feeder).copied().unwrap_or(0);
        let mut rest = members.as_slice();
        while let Some(&first) = rest.first() {
            let end = clusters[first].1 + window;
            let n = rest.iter().take_while(|&&c| clusters[c].1 <= end).count();
            let (chunk, after) = rest.split_at(n);
            rest = after;
            let covered: BTreeSet<&String> = chunk
                .iter()
                .filter_map(|&c| clusters[c].0.dt.as_ref())
                .collect();
            if covered.len() >= 2 && covered.len() * 100 > cfg.feeder_percent as usize * dts {
                let mut meters: Vec<MeterSerial> = chunk
                    .iter()
                    .flat_map(|&c| clusters[c].2.iter().cloned())
                    .collect();
                meters.sort();
                groups.push(Group {
                    level: OutageLevel::Feeder,
                    node: feeder.clone(),
                    dt: clusters[first].0.dt.clone(),
                    feeder: Some(feeder.clone()),
                    started_at: clusters[first].1,
                    meters,
                });
            } else {
                groups.extend(chunk.iter().map(|&c| lone(&clusters[c])));
            }
        }
    }
    groups.sort_by(|a, b| (a.started_at, &a.node).cmp(&(b.started_at, &b.node)));
    groups
}

/// A DT cluster on its own: a DT outage with two meters or more, else a meter outage.
fn lone((place, start, meters): &(Place, DateTime<Utc>, Vec<MeterSerial>)) -> Group {
    let mut meters = meters.clone();
    meters.sort();
    let (level, node) = match &place.dt {
        Some(dt) if meters.len() >= 2 => (OutageLevel::Dt, dt.clone()),
        _ => (OutageLevel::Meter, meters[0].to_string()),
    };
    Group {
        level,
        node,
        dt: place.dt.clone(),
        feeder: place.feeder.clone(),
        started_at: *start,
        meters,
    }
}

/// Applies a power-off to a meter in an outage (or a group being formed); whether it changed
/// anything (off again after coming back, or an earlier off time).
fn off(m: &mut OutageMeter, at: DateTime<Utc>) -> bool {
    match m.on_at {
        None if at < m.off_at => {
            m.off_at = at;
            true
        }
        // This interruption, told again.
        None => false,
        Some(on) if at <= on => false,
        Some(_) => {
            m.on_at = None;
            m.power_offs += 1;
            true
        }
    }
}

/// Applies a power-on; whether it changed anything (not when already on, or before the off).
fn on(m: &mut OutageMeter, at: DateTime<Utc>) -> bool {
    if m.on_at.is_some() || at < m.off_at {
        return false;
    }
    m.on_at = Some(at);
    m.power_ons += 1;
    true
}

fn first_off(meter: &MeterSerial, at: DateTime<Utc>) -> OutageMeter {
    OutageMeter {
        meter: meter.clone(),
        off_at: at,
        on_at: None,
        power_offs: 1,
        power_ons: 0,
    }
}

/// The outages as the desk keeps them during a step.
struct Book {
    outages: Vec<Outage>,
    changes: Vec<Option<Change>>,
    /// Each meter's latest place in the book: (outage, meter).
    latest: HashMap<MeterSerial, (usize, usize)>,
}

impl Book {
    fn new(outages: Vec<Outage>) -> Book {
        let mut book = Book {
            changes: vec![None; outages.len()],
            outages: Vec::with_capacity(outages.len()),
            latest: HashMap::new(),
        };
        for o in outages {
            book.outages.push(o);
            book.index(book.outages.len() - 1);
        }
        book
    }

    fn index(&mut self, i: usize) {
        for (j, m) in self.outages[i].meters.iter().enumerate() {
            let later = match self.latest.get(&m.meter) {
                Some(&(oi, mj)) => m.off_at >= self.outages[oi].meters[mj].off_at,
                None => true,
            };
            if later {
                self.latest.insert(m.meter.clone(), (i, j));
            }
        }
    }

    fn touch(&mut self, i: usize) -> &mut Change {
        self.changes[i].get_or_insert_with(Change::default)
    }

    /// Sets the restoration time when every meter is back.
    fn settle(&mut self, i: usize) {
        let o = &mut self.outages[i];
        if o.restored_at.is_none() && o.meters.iter().all(|m| m.on_at.is_some()) {
            o.restored_at = o.meters.iter().filter_map(|m| m.on_at).max();
            self.touch(i).restored = true;
        }
    }

    /// The open outage a late off of a meter at `place` joins.
    fn joinable(&self, place: &Place, at: DateTime<Utc>, window: Duration) -> Option<usize> {
        self.outages.iter().position(|o| {
            o.restored_at.is_none()
                && (o.started_at - at).abs() <= window
                && match o.level {
                    OutageLevel::Feeder => place.feeder.is_some() && o.feeder == place.feeder,
                    OutageLevel::Dt | OutageLevel::Meter => place.dt.is_some() && o.dt == place.dt,
                }
        })
    }

    /// Applies an observation to the book; false when it is news the book has no place for
    /// (a new interruption).
    fn apply(&mut self, o: &PowerObservation, net: &Network, window: Duration) -> bool {
        if let Some(&(i, j)) = self.latest.get(&o.meter) {
            let restored = self.outages[i].restored_at.is_some();
            let m = &mut self.outages[i].meters[j];
            match o.power {
                Power::Off => {
                    let new_interruption = restored && m.on_at.is_some_and(|on| o.at > on);
                    if !new_interruption {
                        if off(m, o.at) {
                            self.touch(i);
                        }
                        return true;
                    }
                }
                Power::On => {
                    if on(m, o.at) {
                        self.touch(i);
                        self.settle(i);
                    }
                    return true;
                }
            }
        }
        match o.power {
            // A power-on with no interruption known tells nothing (its last gasp was lost and
            // the event log, when read, will tell when it went off).
            Power::On => true,
            Power::Off => {
                let place = net.place(&o.meter);
                let Some(i) = self.joinable(&place, o.at, window) else {
                    return false;
                };
                let outage = &mut self.outages[i];
                outage.meters.push(first_off(&o.meter, o.at));
                outage.started_at = outage.started_at.min(o.at);
                if outage.level == OutageLevel::Meter
                    && let Some(dt) = &outage.dt
                {
                    outage.level = OutageLevel::Dt;
                    outage.node = dt.clone();
                }
                self.index(i);
                self.touch(i);
                true
            }
        }
    }
}

/// One step of the desk at `now`: `observations` (in any order) applied to `book` (the outages
/// they may change), new groups formed and those whose window has closed declared.
pub fn advance(
    book: Vec<Outage>,
    mut observations: Vec<PowerObservation>,
    net: &Network,
    now: DateTime<Utc>,
    cfg: &OutageConfig,
) -> Advance {
    let window = cfg.window();
    observations.sort_by(|a, b| (a.at, a.power, &a.meter).cmp(&(b.at, b.power, &b.meter)));
    observations.dedup_by(|a, b| (a.at, a.power, &a.meter) == (b.at, b.power, &b.meter));
    let mut book = Book::new(book);
    let mut out = Advance::default();
    // Meters with a new interruption: how it went so far, and the observations telling it.
    let mut fresh: BTreeMap<MeterSerial, (OutageMeter, Vec<PowerObservation>)> = BTreeMap::new();
    for o in observations {
        if let Some((m, seen)) = fresh.get_mut(&o.meter) {
            match o.power {
                Power::Off => off(m, o.at),
                Power::On => on(m, o.at),
            };
            seen.push(o);
        } else if book.apply(&o, net, window) {
            out.grouped.push(o);
        } else {
            fresh.insert(o.meter.clone(), (first_off(&o.meter, o.at), vec![o]));
        }
    }
    let offs: Vec<(MeterSerial, DateTime<Utc>)> = fresh
        .iter()
        .map(|(meter, (m, _))| (meter.clone(), m.off_at))
        .collect();
    for g in group(&offs, net, cfg) {
        let closed = g.started_at + window <= now;
        let mut meters = Vec::with_capacity(g.meters.len());
        for serial in &g.meters {
            if let Some((m, seen)) = fresh.remove(serial) {
                meters.push(m);
                if closed {
                    out.grouped.extend(seen);
                } else {
                    out.waiting.extend(seen);
                }
            }
        }
        if !closed {
            continue;
        }
        let restored_at = if meters.iter().all(|m| m.on_at.is_some()) {
            meters.iter().filter_map(|m| m.on_at).max()
        } else {
            None
        };
        out.outages.push((
            Outage {
                id: 0,
                level: g.level,
                node: g.node,
                dt: g.dt,
                feeder: g.feeder,
                started_at: g.started_at,
                restored_at,
                meters,
            },
            Change {
                declared: true,
                restored: restored_at.is_some(),
            },
        ));
    }
    let changed: Vec<(Outage, Change)> = book
        .outages
        .into_iter()
        .zip(book.changes)
        .filter_map(|(o, c)| c.map(|c| (o, c)))
        .collect();
    out.outages.splice(0..0, changed);
    out
}

/// What OMS and CIS/CRM are told of an outage: when it started, and when it was restored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "notice", rename = "outage")]
pub struct OutageNotice {
    pub outage: u64,
    /// `started` or `restored`.
    pub state: &'static str,
    /// `dt`, `feeder` or `meter`.
    pub level: &'static str,
    pub node: String,
    pub dt: Option<String>,
    pub feeder: Option<String>,
    pub started_at: DateTime<Utc>,
    pub restored_at: Option<DateTime<Utc>>,
    /// From the start to the last meter's return.
    pub duration_s: Option<i64>,
    pub meters_off: usize,
    pub meters_on: usize,
    pub meters: Vec<NoticeMeter>,
}

/// A meter in an outage notice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoticeMeter {
    pub meter: MeterSerial,
    pub off_at: DateTime<Utc>,
    pub on_at: Option<DateTime<Utc>>,
    pub power_offs: u32,
    pub power_ons: u32,
}

/// The routed messages for what happened to `outage` (stored, with its id): one per
/// destination and per start or restoration, keyed by outage, so none is sent twice. Routed
/// under the meter that went off first.
pub fn notices(outage: &Outage, change: Change, destinations: &[String]) -> Vec<RoutedMessage> {
    let Some(first) = outage.meters.iter().min_by_key(|m| (m.off_at, &m.meter)) else {
        return Vec::new();
    };
    let states = [("started", change.declared), ("restored", change.restored)];
    let mut out = Vec::new();
    for (state, _) in states.into_iter().filter(|(_, yes)| *yes) {
        let notice = OutageNotice {
            outage: outage.id,
            state,
            level: outage.level.as_str(),
            node: outage.node.clone(),
            dt: outage.dt.clone(),
            feeder: outage.feeder.clone(),
            started_at: outage.started_at,
            restored_at: outage.restored_at,
            duration_s: outage
                .restored_at
                .map(|r| (r - outage.started_at).num_seconds()),
            meters_off: outage.meters.len() - outage.meters_on(),
            meters_on: outage.meters_on(),
            meters: outage
                .meters
                .iter()
                .map(|m| NoticeMeter {
                    meter: m.meter.clone(),
                    off_at: m.off_at,
                    on_at: m.on_at,
                    power_offs: m.power_offs,
                    power_ons: m.power_ons,
                })
                .collect(),
        };
        let payload = serde_json::to_string(&notice)
            .unwrap_or_else(|e| format!(r#"{{"unserialisable":"{e}"}}"#));
        let at = match state {
            "started" => outage.started_at,
            _ => outage.restored_at.unwrap_or(outage.started_at),
        };
        for d in destinations {
            out.push(RoutedMessage {
                key: format!(
                    "{d}/outage/{}#{state}@{}",
                    outage.id,
                    at.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
                meter: first.meter.clone(),
                destination: d.clone(),
                payload: payload.clone(),
            });
        }
    }
    out
}

/// What one look of the desk did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub declared: usize,
    pub restored: usize,
    pub waiting: usize,
}

/// One look of the desk at `now`: the waiting observations, the outages they may change and
/// the network around their meters read; [`advance`]; the result and its notices written in
/// one transaction. Blocking.
pub fn tick(
    store: &Store,
    routing: &Routing,
    cfg: &OutageConfig,
    now: DateTime<Utc>,
) -> Result<TickReport, StoreError> {
    let waiting = store.outage_waiting()?;
    if waiting.is_empty() {
        return Ok(TickReport::default());
    }
    let meters: Vec<MeterSerial> = waiting
        .iter()
        .map(|o| o.meter.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let book = store.outage_book(&meters, now - Duration::seconds(cfg.keep_s.max(0)))?;
    let places = store.meter_places(&meters, now)?;
    let mut dts_of_feeder = HashMap::new();
    for feeder in places.values().filter_map(|p| p.feeder.as_ref()) {
        if !dts_of_feeder.contains_key(feeder) {
            dts_of_feeder.insert(feeder.clone(), store.outage_dts_of_feeder(feeder, now)?);
        }
    }
    let net = Network {
        places,
        dts_of_feeder,
    };
    let step = advance(book, waiting, &net, now, cfg);
    let report = TickReport {
        declared: step.outages.iter().filter(|(_, c)| c.declared).count(),
        restored: step.outages.iter().filter(|(_, c)| c.restored).count(),
        waiting: step.waiting.len(),
    };
    if step.outages.is_empty() && step.grouped.is_empty() {
        return Ok(report);
    }
    let destinations = routing.outage_destinations();
    let (outages, changes): (Vec<Outage>, Vec<Change>) = step.outages.into_iter().unzip();
    store.outage_commit(&outages, &step.grouped, now, |i, o| {
        notices(o, changes[i], &destinations)
    })?;
    Ok(report)
}

/// Runs the desk every `every` until `stop` resolves.
pub async fn run(
    store: Store,
    routing: Routing,
    cfg: OutageConfig,
    every: StdDuration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = every.tick() => {}
        }
        let (s, r, c) = (store.clone(), routing.clone(), cfg.clone());
        match tokio::task::spawn_blocking(move || tick(&s, &r, &c, Utc::now())).await {
            Ok(Ok(report)) if report.declared + report.restored > 0 => {
                tracing::info!(
                    declared = report.declared,
                    restored = report.restored,
                    waiting = report.waiting,
                    "outages"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the outage desk failed"),
            Err(e) => tracing::warn!(error = %e, "the outage desk failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn serial(i: usize) -> MeterSerial {
        MeterSerial::new(format!("M{i:04}")).unwrap()
    }

    fn t(s: i64) -> DateTime<Utc> {
        "2026-12-01T04:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::seconds(s)
    }

    /// `feeders` feeders of `dts` DTs each, `per_dt` meters under each DT; meter i is under DT
    /// i / per_dt.
    fn network(feeders: usize, dts: usize, per_dt: usize) -> Network {
        let mut net = Network::default();
        for f in 0..feeders {
            net.dts_of_feeder.insert(format!("F{f}"), dts);
            for d in 0..dts {
                for m in 0..per_dt {
                    let dt = f * dts + d;
                    net.places.insert(
                        serial(dt * per_dt + m),
                        Place {
                            dt: Some(format!("DT{dt}")),
                            feeder: Some(format!("F{f}")),
                        },
                    );
                }
            }
        }
        net
    }

    fn obs(i: usize, at: i64, power: Power) -> PowerObservation {
        PowerObservation {
            meter: serial(i),
            at: t(at),
            power,
            source: "test".into(),
        }
    }

    fn step(book: Vec<Outage>, o: Vec<PowerObservation>, net: &Network, now: i64) -> Advance {
        advance(book, o, net, t(now), &OutageConfig::default())
    }

    #[test]
    fn two_hundred_last_gasps_under_one_dt_in_a_minute_are_one_dt_outage_then_restored() {
        let net = network(1, 4, 200);
        let offs: Vec<PowerObservation> = (0..200)
            .map(|i| obs(i, (i as i64 * 7) % 60, Power::Off))
            .collect();
        // Within the window nothing is declared yet.
        let early = step(vec![], offs.clone(), &net, 90);
        assert!(early.outages.is_empty());
        assert_eq!(early.waiting.len(), 200);
        let declared = step(vec![], offs, &net, 121);
        assert_eq!(declared.outages.len(), 1);
        let (outage, change) = &declared.outages[0];
        assert!(change.declared && !change.restored);
        assert_eq!(
            (outage.level, outage.node.as_str()),
            (OutageLevel::Dt, "DT0")
        );
        assert_eq!(outage.meters.len(), 200);
        assert_eq!(outage.started_at, t(0));
        assert_eq!(declared.grouped.len(), 200);
        // Half come back: partial; the rest an hour later: restored at the last one.
        let stored = Outage {
            id: 7,
            ..outage.clone()
        };
        let half: Vec<_> = (0..100).map(|i| obs(i, 3000, Power::On)).collect();
        let partial = step(vec![stored], half, &net, 3010);
        let (o, c) = &partial.outages[0];
        assert_eq!(o.status(), store::outages::OutageStatus::Partial);
        assert!(!c.restored);
        let rest: Vec<_> = (100..200)
            .map(|i| obs(i, 3600 + i as i64, Power::On))
            .collect();
        let done = step(vec![o.clone()], rest, &net, 4000);
        let (o, c) = &done.outages[0];
        assert!(c.restored && !c.declared);
        assert_eq!(o.restored_at, Some(t(3799)));
        assert_eq!(o.meters.iter().map(|m| m.power_ons).sum::<u32>(), 200);
    }

    #[test]
    fn a_lone_meter_is_a_meter_outage_and_a_late_neighbour_makes_it_a_dt_outage() {
        let net = network(1, 4, 10);
        let a = step(vec![], vec![obs(3, 0, Power::Off)], &net, 200);
        let (o, _) = &a.outages[0];
        assert_eq!((o.level, o.node.as_str()), (OutageLevel::Meter, "M0003"));
        let stored = Outage { id: 1, ..o.clone() };
        let b = step(vec![stored], vec![obs(4, 30, Power::Off)], &net, 300);
        let (o, c) = &b.outages[0];
        assert_eq!(
            (o.id, o.level, o.node.as_str()),
            (1, OutageLevel::Dt, "DT0")
        );
        assert_eq!(o.meters.len(), 2);
        assert!(!c.declared);
        // Off more than a window after the start: an outage of its own.
        let c = step(vec![o.clone()], vec![obs(5, 500, Power::Off)], &net, 700);
        assert_eq!(c.outages.len(), 1);
        assert!(c.outages[0].1.declared);
    }

    #[test]
    fn most_of_a_feeders_dts_together_are_a_feeder_outage() {
        let net = network(2, 4, 5);
        // Three of F0's four DTs (meters 0–14), two meters each.
        let offs: Vec<_> = [0, 1, 5, 6, 10, 11]
            .into_iter()
            .map(|i| obs(i, i as i64, Power::Off))
            .collect();
        let a = step(vec![], offs, &net, 200);
        assert_eq!(a.outages.len(), 1);
        let (o, _) = &a.outages[0];
        assert_eq!((o.level, o.node.as_str()), (OutageLevel::Feeder, "F0"));
        assert_eq!(o.meters.len(), 6);
        // Two of four is not more than half: two DT outages.
        let offs: Vec<_> = [20, 21, 25, 26]
            .into_iter()
            .map(|i| obs(i, 0, Power::Off))
            .collect();
        let b = step(vec![], offs, &net, 200);
        let levels: Vec<_> = b.outages.iter().map(|(o, _)| o.level).collect();
        assert_eq!(levels, vec![OutageLevel::Dt, OutageLevel::Dt]);
    }

    #[test]
    fn one_interruption_told_twice_counts_once_and_a_flicker_counts_again() {
        let net = network(1, 1, 2);
        // Last gasp and the log's 101 two seconds apart; first breath and 102.
        let o = vec![
            obs(0, 2, Power::Off),
            obs(0, 0, Power::Off),
            obs(1, 1, Power::Off),
            obs(0, 50, Power::On),
        ];
        let a = step(vec![], o, &net, 130);
        let (out, _) = &a.outages[0];
        let m0 = &out.meters[0];
        assert_eq!((m0.off_at, m0.power_offs, m0.power_ons), (t(0), 1, 1));
        let stored = Outage {
            id: 1,
            ..out.clone()
        };
        // The log read after the breath tells the same interruption: nothing changes. Then
        // meter 0 goes off again while meter 1 is still off: a second power-off.
        let b = step(
            vec![stored],
            vec![
                obs(0, 0, Power::Off),
                obs(0, 50, Power::On),
                obs(0, 900, Power::Off),
            ],
            &net,
            1000,
        );
        let m0 = &b.outages[0].0.meters[0];
        assert_eq!((m0.on_at, m0.power_offs, m0.power_ons), (None, 2, 1));
        assert_eq!(b.grouped.len(), 3);
    }

    #[test]
    fn a_power_on_with_no_known_off_tells_nothing_and_notices_go_once_per_state() {
        let net = network(1, 1, 2);
        let a = step(vec![], vec![obs(0, 0, Power::On)], &net, 10);
        assert!(a.outages.is_empty());
        assert_eq!(a.grouped.len(), 1);
        // A momentary outage: declared and restored in one step, two notices per destination.
        let b = step(
            vec![],
            vec![obs(0, 0, Power::Off), obs(0, 20, Power::On)],
            &net,
            200,
        );
        let (o, c) = &b.outages[0];
        let o = Outage { id: 9, ..o.clone() };
        let n = notices(&o, *c, &["oms".into(), "crm".into()]);
        assert_eq!(n.len(), 4);
        assert_eq!(n[0].key, "oms/outage/9#started@2026-12-01T04:00:00Z");
        assert!(
            n[0].payload.contains(r#""notice":"outage""#),
            "{}",
            n[0].payload
        );
        assert!(
            n[3].payload.contains(r#""duration_s":20"#),
            "{}",
            n[3].payload
        );
    }

    /// Offs of up to 60 meters (12 DTs under 3 feeders) over ten minutes, and a permutation.
    fn offs_and_order() -> impl Strategy<Value = (Vec<(usize, i64)>, Vec<usize>)> {
        proptest::collection::btree_map(0usize..60, 0i64..600, 1..60).prop_flat_map(|m| {
            let offs: Vec<(usize, i64)> = m.into_iter().collect();
            let n = offs.len();
            (Just(offs), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    }

    proptest! {
        #[test]
        fn every_off_lands_in_exactly_one_outage_whatever_the_order((offs, order) in offs_and_order()) {
            let net = network(3, 4, 5);
            let sorted: Vec<_> = offs.iter().map(|&(i, at)| obs(i, at, Power::Off)).collect();
            let shuffled: Vec<_> = order.iter().map(|&k| sorted[k].clone()).collect();
            let a = step(vec![], sorted, &net, 10_000);
            let b = step(vec![], shuffled, &net, 10_000);
            prop_assert_eq!(&a, &b);
            let mut seen: Vec<MeterSerial> = a
                .outages
                .iter()
                .flat_map(|(o, _)| o.meters.iter().map(|m| m.meter.clone()))
                .collect();
            seen.sort();
            let mut expected: Vec<MeterSerial> = offs.iter().map(|&(i, _)| serial(i)).collect();
            expected.sort();
            prop_assert_eq!(seen, expected);
            prop_assert!(a.waiting.is_empty());
        }
    }
}

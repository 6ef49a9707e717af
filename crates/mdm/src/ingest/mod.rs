//! Ingest: takes the head-end's messages off the bus and makes them durable in the store, a
//! batch at a time, acknowledging each message only after the transaction that holds it has
//! committed.
//!
//! - Idempotent: a message seen before changes nothing (every row is keyed by meter and time;
//!   an interval already stored with the same values is skipped).
//! - Late data and re-read gaps slot in by their time; an actual reading replaces an estimate
//!   (the estimate moves to the history); a different value for an interval that already has an
//!   actual or edited one is not put in force but kept whole and queued as an overlap. What is
//!   in force decides inside the write's transaction (see `store::IntervalWrite`), so the
//!   estimator or an edit writing meanwhile cannot make a reading get lost. The stored readings
//!   do not depend on the order messages come in; VEE findings can (a spike is judged against
//!   the history known when it arrives).
//! - New actual intervals are validated ([`crate::vee`]) with the meter's history and the
//!   settings of its consumer's category: findings go to the exception queue, and the intervals
//!   a finding marks suspect are stored flagged [`Quality::Suspect`] and kept out of the
//!   history. Midnight register snapshots are checked (backwards, rollover, sum of the day's
//!   intervals) the same way.
//! - Events are normalised ([`crate::events`]) and routed into notices in the same transaction.
//!   Power failing and returning (last gasp, first breath, events 101/102) is kept as an
//!   observation for the outage desk ([`crate::outages`]), which groups them.
//! - A message that cannot be taken in (it contradicts itself) goes whole to the dead letters.

mod estimation;
mod vee_state;

pub use estimation::EstimationReport;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bus::{Delivery, Envelope, Subscription};
use chrono::{DateTime, NaiveDate, Utc};
use model::{
    DailyReading, HesMessage, IntervalReading, MeterSerial, MissedReason, NetworkChangeKind,
    OutageState, Quality,
};
use store::mdm::readings::same_measurement;
use store::outages::{Power, PowerObservation};
use store::{
    AlarmRow, CommandResultRow, DeadLetter, EventRow, ExceptionRow, ExceptionState, IngestCounts,
    IngestWrite, IntervalWrite, MissedRow, RoutedMessage, Store, StoreError, StoredInterval,
};

use crate::calendar::{Period, day_bounds, ist_date};
use crate::events::{Notice, Routing, classify};
use crate::vee::{self, Context, Finding, VeeConfigs};
use vee_state::VeeCache;

/// IS 15959 power-related events: supply failed, supply returned.
const POWER_FAILURE: u16 = 101;
const POWER_RESTORED: u16 = 102;

/// Most messages taken into one transaction.
pub const DEFAULT_BATCH: usize = 512;

/// Failures on its own after which a message is kept as a dead letter.
pub const STRIKES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ingest worker stopped: {0}")]
    Worker(String),
}

/// Settings of the ingest.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    /// Block-load capture period, seconds.
    pub period_s: i64,
    /// VEE settings per consumer category.
    pub vee: VeeConfigs,
    /// Meters whose VEE state is kept in memory.
    pub cache_meters: usize,
    /// A changed VEE history is written back at most this often, seconds.
    pub save_every_s: i64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            period_s: crate::calendar::DEFAULT_PERIOD_S,
            vee: VeeConfigs::default(),
            cache_meters: 50_000,
            save_every_s: 600,
        }
    }
}

/// The ingest service. Everything it decides on is read from the store, except the meters' VEE
/// state, which it keeps in memory between batches (see `vee_state`).
#[derive(Debug, Clone)]
pub struct Ingest {
    store: Store,
    routing: Arc<Routing>,
    config: Arc<IngestConfig>,
    vee: Arc<Mutex<VeeCache>>,
}

/// What a batch did, for logs and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub messages: u64,
    pub written: IngestCounts,
    /// Interval values already stored exactly so (duplicates).
    pub duplicates: u64,
    /// Channel values of the intervals written (as MDM vendors count "reads").
    pub reads: u64,
}

impl BatchReport {
    /// Adds another batch's report (for running totals).
    pub fn add(&mut self, other: &BatchReport) {
        self.messages += other.messages;
        self.written.add(&other.written);
        self.duplicates += other.duplicates;
        self.reads += other.reads;
    }
}

impl Ingest {
    pub fn new(store: Store, routing: Routing) -> Self {
        Self::with_config(store, routing, IngestConfig::default())
    }

    pub fn with_config(store: Store, routing: Routing, config: IngestConfig) -> Self {
        Ingest {
            store,
            routing: Arc::new(routing),
            config: Arc::new(config),
            vee: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Takes `messages` in, in one transaction, at `now`. Blocking (call from a blocking
    /// thread in async code).
    pub fn ingest(
        &self,
        messages: &[&Envelope],
        now: DateTime<Utc>,
    ) -> Result<BatchReport, IngestError> {
        let mut cache = self.vee.lock().unwrap_or_else(|e| e.into_inner());
        let mut plan = Plan::default();
        for envelope in messages {
            self.plan_message(&mut plan, &mut cache, envelope, now)?;
        }
        plan.write.vee_states =
            cache.due_for_saving(now, self.save_every(), self.config.cache_meters.max(1));
        let written = self.store.mdm_write(&plan.write, now)?;
        Ok(BatchReport {
            messages: messages.len() as u64,
            written,
            duplicates: plan.duplicates,
            reads: plan.reads,
        })
    }

    /// Writes every VEE history changed since it was last written (at stop).
    pub fn flush(&self, now: DateTime<Utc>) -> Result<(), IngestError> {
        let states = self
            .vee
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .flush(now);
        let write = IngestWrite {
            vee_states: states,
            ..IngestWrite::default()
        };
        if !write.is_empty() {
            self.store.mdm_write(&write, now)?;
        }
        Ok(())
    }

    /// The VEE state of `meter`, loaded on first use.
    fn vee_state<'c>(
        &self,
        cache: &'c mut VeeCache,
        meter: &MeterSerial,
        now: DateTime<Utc>,
    ) -> Result<&'c mut vee_state::MeterVee, StoreError> {
        cache.get(
            &self.store,
            meter,
            self.config.period_s,
            now,
            self.save_every(),
        )
    }

    fn save_every(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.config.save_every_s.max(0))
    }

    /// Meters whose VEE state is in memory.
    pub fn cached_meters(&self) -> usize {
        self.vee.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Consumes `subscription` until it ends or `stop` resolves: each wait collects what is
    /// queued (up to `batch`), ingests it, then acknowledges it. When a batch fails, its
    /// messages are taken one at a time, so one bad message cannot hold up the others; a
    /// message that fails on its own is not acknowledged (the publisher sends it again) and,
    /// after [`STRIKES`] failures, is kept as a dead letter and acknowledged.
    pub async fn run(
        &self,
        mut subscription: Subscription,
        batch: usize,
        stop: impl std::future::Future<Output = ()>,
        mut on_batch: impl FnMut(&BatchReport),
    ) {
        tokio::pin!(stop);
        // Failures so far of messages that failed on their own, by key.
        let mut strikes: HashMap<String, u32> = HashMap::new();
        loop {
            let first = tokio::select! {
                _ = &mut stop => break,
                d = subscription.next() => match d {
                    Some(d) => d,
                    None => break,
                },
            };
            let mut deliveries = vec![first];
            while deliveries.len() < batch.max(1) {
                match subscription.try_next() {
                    Some(d) => deliveries.push(d),
                    None => break,
                }
            }
            match self.ingest_deliveries(&deliveries).await {
                Ok(report) => {
                    on_batch(&report);
                    deliveries.into_iter().for_each(Delivery::ack);
                }
                Err(e) => {
                    tracing::error!(error = %e, messages = deliveries.len(), "ingest batch failed; taking its messages one at a time");
                    let mut failed = false;
                    for d in deliveries {
                        match self.ingest_deliveries(std::slice::from_ref(&d)).await {
                            Ok(report) => {
                                on_batch(&report);
                                strikes.remove(&d.envelope.key);
                                d.ack();
                            }
                            Err(e) => {
                                failed = true;
                                let n = strikes.entry(d.envelope.key.clone()).or_insert(0);
                                *n += 1;
                                if *n >= STRIKES && self.give_up(&d.envelope, &e).await {
                                    strikes.remove(&d.envelope.key);
                                    d.ack();
                                }
                            }
                        }
                    }
                    if failed {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        }
        let this = self.clone();
        match tokio::task::spawn_blocking(move || this.flush(Utc::now())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "writing the VEE state at stop failed"),
            Err(e) => tracing::warn!(error = %e, "writing the VEE state at stop failed"),
        }
    }

    /// Keeps a message that cannot be taken in as a dead letter; whether that worked.
    async fn give_up(&self, envelope: &Arc<Envelope>, error: &IngestError) -> bool {
        tracing::error!(key = %envelope.key, %error, "message failed {STRIKES} times; kept as a dead letter");
        let mut plan = Plan::default();
        plan.dead_letter(envelope, error.to_string());
        let store = self.store.clone();
        matches!(
            tokio::task::spawn_blocking(move || store.mdm_write(&plan.write, Utc::now())).await,
            Ok(Ok(_))
        )
    }

    async fn ingest_deliveries(&self, deliveries: &[Delivery]) -> Result<BatchReport, IngestError> {
        let envelopes: Vec<Arc<Envelope>> = deliveries.iter().map(|d| d.envelope.clone()).collect();
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&Envelope> = envelopes.iter().map(|e| e.as_ref()).collect();
            this.ingest(&refs, Utc::now())
        })
        .await
        .map_err(|e| IngestError::Worker(e.to_string()))?
    }

    fn plan_message(
        &self,
        plan: &mut Plan,
        cache: &mut VeeCache,
        envelope: &Envelope,
        now: DateTime<Utc>,
    ) -> Result<(), IngestError> {
        match &envelope.message {
            HesMessage::BlockLoad { meter, intervals } => match check_intervals(meter, intervals) {
                Ok(()) => self.plan_intervals(plan, cache, meter, intervals, now)?,
                Err(error) => plan.dead_letter(envelope, error),
            },
            HesMessage::DailyProfile { meter, days } => {
                if let Some(bad) = days.iter().find(|d| &d.meter != meter) {
                    plan.dead_letter(envelope, format!("a daily row of {} inside", bad.meter));
                } else {
                    self.plan_daily(plan, cache, meter, days, now)?;
                }
            }
            HesMessage::BillingProfile { meter, readings } => {
                if let Some(bad) = readings.iter().find(|r| &r.meter != meter) {
                    plan.dead_letter(envelope, format!("a billing row of {} inside", bad.meter));
                } else {
                    plan.write.billing.extend(readings.iter().cloned());
                }
            }
            HesMessage::Instantaneous { meter, reading } => {
                if reading.at.is_none() {
                    // Keyed by its time: without the meter's time it could not be told apart
                    // from the next one, nor found again.
                    plan.dead_letter(
                        envelope,
                        "an instantaneous reading without the meter's time".into(),
                    );
                } else if &reading.meter != meter {
                    plan.dead_letter(envelope, format!("a reading of {} inside", reading.meter));
                } else {
                    plan.write.instantaneous.push((**reading).clone());
                }
            }
            HesMessage::Events { meter, events } => {
                for event in events {
                    if &event.meter != meter {
                        plan.dead_letter(envelope, format!("an event of {} inside", event.meter));
                        return Ok(());
                    }
                }
                for event in events {
                    let (class, severity) = classify(event.code, event.kind);
                    plan.write.events.push(EventRow {
                        event: event.clone(),
                        class: class.as_str().to_string(),
                        severity: severity.as_str().to_string(),
                    });
                    for (destination, notice) in self.routing.route(event) {
                        plan.route(destination, notice);
                    }
                    let power = match event.code {
                        POWER_FAILURE => Some(Power::Off),
                        POWER_RESTORED => Some(Power::On),
                        _ => None,
                    };
                    if let Some(power) = power {
                        plan.write.power.push(PowerObservation {
                            meter: meter.clone(),
                            at: event.at,
                            power,
                            source: format!("event_{}", event.code),
                        });
                    }
                }
            }
            HesMessage::Alarm(alarm) => plan.write.alarms.push(AlarmRow {
                meter: alarm.meter.clone(),
                at: alarm.meter_time.unwrap_or(alarm.received_at),
                kind: "alarm".into(),
                detail: json(alarm),
            }),
            HesMessage::Outage { meter, state, at } => {
                plan.write.alarms.push(AlarmRow {
                    meter: meter.clone(),
                    at: *at,
                    kind: match state {
                        OutageState::Started => "outage_started",
                        OutageState::Restored => "outage_restored",
                    }
                    .into(),
                    detail: "{}".into(),
                });
                plan.write.power.push(PowerObservation {
                    meter: meter.clone(),
                    at: *at,
                    power: match state {
                        OutageState::Started => Power::Off,
                        OutageState::Restored => Power::On,
                    },
                    source: match state {
                        OutageState::Started => "last_gasp",
                        OutageState::Restored => "first_breath",
                    }
                    .into(),
                });
            }
            HesMessage::ClockDrift {
                meter,
                at,
                drift_s,
                corrected,
            } => {
                // A corrected clock is right again; an uncorrected one makes its data doubtful.
                let state = self.vee_state(cache, meter, now)?;
                state.clock_drift_s = (!corrected).then_some(*drift_s);
                plan.write.alarms.push(AlarmRow {
                    meter: meter.clone(),
                    at: *at,
                    kind: "clock_drift".into(),
                    detail: format!(r#"{{"drift_s":{drift_s},"corrected":{corrected}}}"#),
                })
            }
            HesMessage::MissedData {
                meter,
                profile,
                from,
                to,
                reason,
            } => plan.write.missed.push(MissedRow {
                meter: meter.clone(),
                profile: profile.clone(),
                from: *from,
                to: *to,
                reason: match reason {
                    MissedReason::PowerOff { .. } => "power_off",
                    MissedReason::GaveUp { .. } => "gave_up",
                }
                .into(),
                detail: json(reason),
            }),
            HesMessage::CommandResult {
                command,
                meter,
                command_kind,
                outcome,
            } => plan.write.command_results.push(CommandResultRow {
                meter: meter.clone(),
                command: command.0.clone(),
                command_kind: command_kind.clone(),
                outcome: json(outcome),
            }),
            // A meter reached under a DCU hangs below it in the hierarchy from then on.
            HesMessage::NetworkChange { meter, at, change } => {
                let dcu = match change {
                    NetworkChangeKind::New { dcu, .. } => dcu,
                    NetworkChangeKind::Moved { to_dcu, .. } => to_dcu,
                };
                if let Some(dcu) = dcu {
                    plan.write.dcu_links.push((meter.clone(), dcu.clone(), *at));
                }
            }
        }
        Ok(())
    }

    /// Decides, interval by interval, what a block-load message changes, then validates the new
    /// actual intervals.
    fn plan_intervals(
        &self,
        plan: &mut Plan,
        cache: &mut VeeCache,
        meter: &MeterSerial,
        intervals: &[IntervalReading],
        now: DateTime<Utc>,
    ) -> Result<(), IngestError> {
        let (Some(first), Some(last)) = (intervals.first(), intervals.last()) else {
            return Ok(());
        };
        let stored: HashMap<DateTime<Utc>, StoredInterval> = self
            .store
            .mdm_intervals(meter, first.interval_end, last.interval_end)?
            .into_iter()
            .map(|s| (s.reading.interval_end, s))
            .collect();
        // The new actual readings, with the stored version each replaces (an estimate).
        let mut fresh: Vec<IntervalReading> = Vec::with_capacity(intervals.len());
        let mut replaces: Vec<Option<u32>> = Vec::with_capacity(intervals.len());
        let planned = plan.planned.get(meter);
        // Readings that differ from an actual or edited value in force: the store keeps them
        // out of force and queues them (see `IntervalWrite`).
        let mut offered: Vec<IntervalReading> = Vec::new();
        for reading in intervals {
            // An earlier message of this batch already decided this interval.
            if let Some(&i) = planned.and_then(|p| p.get(&reading.interval_end)) {
                if same_measurement(written_reading(&plan.write.intervals[i]), reading) {
                    plan.duplicates += 1;
                } else {
                    offered.push(reading.clone());
                }
                continue;
            }
            match stored.get(&reading.interval_end) {
                None => {
                    fresh.push(reading.clone());
                    replaces.push(None);
                }
                Some(s)
                    if s.reading.quality.contains(&Quality::Estimated)
                        && !s.reading.quality.contains(&Quality::Edited) =>
                {
                    fresh.push(reading.clone());
                    replaces.push(Some(s.version));
                }
                Some(s) if same_measurement(&s.reading, reading) => plan.duplicates += 1,
                Some(_) => offered.push(reading.clone()),
            }
        }
        plan.write
            .intervals
            .extend(offered.into_iter().map(|reading| IntervalWrite::New {
                reading,
                method: None,
            }));
        if fresh.is_empty() {
            return Ok(());
        }
        // Validate with the meter's history, flag what is suspect, and let the history learn
        // from the rest (it skips suspect rows itself).
        let state = self.vee_state(cache, meter, now)?;
        // The meter's capture period as this message shows it (the closest two ends); a
        // change starts its history afresh and is recorded.
        if let Some(shown) = capture_period(intervals)
            && shown != state.history.period_s()
        {
            state.history = vee::History::new(shown);
            plan.write.capture_periods.push((meter.clone(), shown));
        }
        let period_s = state.history.period_s();
        let cfg = self
            .config
            .vee
            .for_category(state.category.as_deref().unwrap_or(""));
        let mut ctx = Context::new(period_s, now, &state.history);
        ctx.clock_drift_s = state.clock_drift_s;
        for f in vee::validate_intervals(&fresh, &ctx, cfg) {
            if f.suspect {
                for r in fresh.iter_mut() {
                    if r.interval_end >= f.from
                        && r.interval_end <= f.to
                        && !r.quality.contains(&Quality::Suspect)
                    {
                        r.quality.push(Quality::Suspect);
                    }
                }
            }
            plan.finding(meter, &f);
        }
        state.history.absorb(&fresh);
        state.dirty = true;
        let period = Period::new(period_s);
        let touched: BTreeSet<NaiveDate> = fresh
            .iter()
            .filter_map(|r| period.and_then(|p| p.slot_of(r.interval_end)))
            .map(|slot| slot.day)
            .collect();
        let planned = plan.planned.entry(meter.clone()).or_default();
        for (reading, version) in fresh.into_iter().zip(replaces) {
            plan.reads += channels(&reading);
            planned.insert(reading.interval_end, plan.write.intervals.len());
            plan.write.intervals.push(match version {
                None => IntervalWrite::New {
                    reading,
                    method: None,
                },
                Some(version) => IntervalWrite::Replace {
                    reading,
                    method: None,
                    version,
                },
            });
        }
        self.check_days(plan, meter, period_s, &touched, cfg, now)
    }

    /// Checks the local days in `days` whose two midnight register snapshots are known (stored
    /// or in this batch): registers going backwards, and the sum of the day's intervals against
    /// the register advance. Run whenever a snapshot or an interval of the day arrives, so the
    /// check happens once everything is there, whatever the order; the same finding twice is
    /// one exception.
    fn check_days(
        &self,
        plan: &mut Plan,
        meter: &MeterSerial,
        period_s: i64,
        days: &BTreeSet<NaiveDate>,
        cfg: &vee::VeeConfig,
        now: DateTime<Utc>,
    ) -> Result<(), IngestError> {
        let blank = vee::History::new(period_s);
        for day in days {
            let (start, end) = day_bounds(*day);
            let mut snapshots: Vec<DailyReading> = self.store.mdm_daily(meter, start, end)?;
            for d in plan.write.daily.iter().filter(|d| &d.meter == meter) {
                if (d.captured_at == start || d.captured_at == end)
                    && !snapshots.iter().any(|s| s.captured_at == d.captured_at)
                {
                    snapshots.push(d.clone());
                }
            }
            if snapshots.len() < 2 {
                continue;
            }
            let mut by_end: BTreeMap<DateTime<Utc>, IntervalReading> = self
                .store
                .mdm_intervals(meter, start + chrono::Duration::seconds(1), end)?
                .into_iter()
                .map(|s| (s.reading.interval_end, s.reading))
                .collect();
            if let Some(planned) = plan.planned.get(meter) {
                for (at, i) in planned.range(start + chrono::Duration::seconds(1)..=end) {
                    by_end.insert(*at, written_reading(&plan.write.intervals[*i]).clone());
                }
            }
            let intervals: Vec<IntervalReading> = by_end.into_values().collect();
            let ctx = Context::new(period_s, now, &blank);
            for f in vee::validate_daily(&snapshots, &intervals, &ctx, cfg) {
                plan.finding(meter, &f);
            }
        }
        Ok(())
    }

    /// Midnight register snapshots: kept, and the days they open and close checked.
    fn plan_daily(
        &self,
        plan: &mut Plan,
        cache: &mut VeeCache,
        meter: &MeterSerial,
        days: &[DailyReading],
        now: DateTime<Utc>,
    ) -> Result<(), IngestError> {
        plan.write.daily.extend(days.iter().cloned());
        let mut touched = BTreeSet::new();
        for d in days {
            let local = ist_date(d.captured_at);
            touched.insert(local);
            touched.extend(local.pred_opt());
        }
        let state = self.vee_state(cache, meter, now)?;
        let period_s = state.history.period_s();
        let cfg = self
            .config
            .vee
            .for_category(state.category.as_deref().unwrap_or(""));
        self.check_days(plan, meter, period_s, &touched, cfg, now)
    }
}

fn written_reading(w: &IntervalWrite) -> &IntervalReading {
    match w {
        IntervalWrite::New { reading, .. } | IntervalWrite::Replace { reading, .. } => reading,
    }
}

/// The capture period a message's intervals show: the smallest step between consecutive
/// interval ends, when that is a period a day divides into (15 or 30 minutes, …).
fn capture_period(intervals: &[IntervalReading]) -> Option<i64> {
    let step = intervals
        .windows(2)
        .map(|w| (w[1].interval_end - w[0].interval_end).num_seconds())
        .filter(|s| *s > 0)
        .min()?;
    Period::new(step).map(Period::secs)
}

/// A block-load message must hold only its own meter's intervals, in strictly increasing order.
fn check_intervals(meter: &MeterSerial, intervals: &[IntervalReading]) -> Result<(), String> {
    if let Some(bad) = intervals.iter().find(|r| &r.meter != meter) {
        return Err(format!("an interval of {} inside", bad.meter));
    }
    if let Some(w) = intervals
        .windows(2)
        .find(|w| w[0].interval_end >= w[1].interval_end)
    {
        return Err(format!(
            "intervals out of order: {} before {}",
            w[0].interval_end, w[1].interval_end
        ));
    }
    Ok(())
}

/// The channel values of an interval (time stamp not counted).
pub fn channels(r: &IntervalReading) -> u64 {
    let present = |o: bool| o as u64;
    2 + present(r.export_wh.is_some())
        + present(r.export_vah.is_some())
        + present(r.avg_voltage_v.is_some())
        + present(r.avg_current_a.is_some())
        + 3 * present(r.avg_phase_voltage_v.is_some())
        + 3 * present(r.avg_phase_current_a.is_some())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!(r#"{{"unserialisable":"{e}"}}"#))
}

/// The write being built for one batch, with what it already decided.
#[derive(Debug, Default)]
struct Plan {
    write: IngestWrite,
    /// Per meter, the interval ends this batch writes and where in `write.intervals`.
    planned: HashMap<MeterSerial, BTreeMap<DateTime<Utc>, usize>>,
    duplicates: u64,
    reads: u64,
}

impl Plan {
    /// A validation finding worth a person's look (warnings and errors) goes to the queue.
    fn finding(&mut self, meter: &MeterSerial, f: &Finding) {
        if f.severity < vee::Severity::Warning {
            return;
        }
        self.write.exceptions.push(ExceptionRow {
            meter: meter.clone(),
            rule: f.rule.as_str().to_string(),
            from: f.from,
            to: f.to,
            severity: f.severity.as_str().to_string(),
            detail: f.detail.clone(),
            state: ExceptionState::Open,
            created_at: f.from,
            closed_by: None,
            note: None,
        });
    }

    fn route(&mut self, destination: String, notice: Notice) {
        let (meter, key) = (notice.meter().clone(), notice.key(&destination));
        self.write.routed.push(RoutedMessage {
            key,
            meter,
            destination,
            payload: json(&notice),
        });
    }

    fn dead_letter(&mut self, envelope: &Envelope, error: String) {
        tracing::warn!(key = %envelope.key, %error, "message not taken in; kept as a dead letter");
        self.write.dead_letters.push(DeadLetter {
            key: envelope.key.clone(),
            kind: envelope.kind().to_string(),
            meter: envelope.message.meter().clone(),
            payload: json(&envelope.message),
            error,
        });
    }
}

//! Ingest: takes the head-end's messages off the bus and makes them durable in the store, a
//! batch at a time, acknowledging each message only after the transaction that holds it has
//! committed.
//!
//! - Idempotent: a message seen before changes nothing (every row is keyed by meter and time;
//!   an interval already stored with the same values is skipped).
//! - Order-independent: late data and re-read gaps slot in by their time; an actual reading
//!   replaces an estimate (the estimate moves to the history); a different value for an
//!   interval that already has an actual one is not overwritten but goes to the exception queue
//!   as an overlap; an edited interval keeps its edit.
//! - Events are normalised ([`crate::events`]) and routed into notices in the same transaction.
//! - A message that cannot be taken in (it contradicts itself) goes whole to the dead letters.

use std::collections::HashMap;
use std::sync::Arc;

use bus::{Delivery, Envelope, Subscription};
use chrono::{DateTime, Utc};
use model::{
    HesMessage, IntervalReading, MeterSerial, MissedReason, NetworkChangeKind, OutageState, Quality,
};
use store::{
    AlarmRow, CommandResultRow, DeadLetter, EventRow, ExceptionRow, ExceptionState, IngestCounts,
    IngestWrite, IntervalWrite, MissedRow, RoutedMessage, Store, StoreError, StoredInterval,
};

use crate::events::{Notice, Routing, classify};

/// Most messages taken into one transaction.
pub const DEFAULT_BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ingest worker stopped: {0}")]
    Worker(String),
}

/// The ingest service: stateless between batches apart from its settings (everything it needs
/// to decide is read from the store).
#[derive(Debug, Clone)]
pub struct Ingest {
    store: Store,
    routing: Arc<Routing>,
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
        Ingest {
            store,
            routing: Arc::new(routing),
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
        let mut plan = Plan::default();
        for envelope in messages {
            self.plan_message(&mut plan, envelope)?;
        }
        let written = self.store.mdm_write(&plan.write, now)?;
        Ok(BatchReport {
            messages: messages.len() as u64,
            written,
            duplicates: plan.duplicates,
            reads: plan.reads,
        })
    }

    /// Consumes `subscription` until it ends or `stop` resolves: each wait collects what is
    /// queued (up to `batch`), ingests it, then acknowledges it. A batch that fails is not
    /// acknowledged (the publisher sends it again) and the next is tried after a pause.
    pub async fn run(
        &self,
        mut subscription: Subscription,
        batch: usize,
        stop: impl std::future::Future<Output = ()>,
        mut on_batch: impl FnMut(&BatchReport),
    ) {
        tokio::pin!(stop);
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
                    tracing::error!(error = %e, messages = deliveries.len(), "ingest batch failed; not acknowledged");
                    drop(deliveries);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
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

    fn plan_message(&self, plan: &mut Plan, envelope: &Envelope) -> Result<(), IngestError> {
        match &envelope.message {
            HesMessage::BlockLoad { meter, intervals } => match check_intervals(meter, intervals) {
                Ok(()) => self.plan_intervals(plan, meter, intervals)?,
                Err(error) => plan.dead_letter(envelope, error),
            },
            HesMessage::DailyProfile { meter, days } => {
                if let Some(bad) = days.iter().find(|d| &d.meter != meter) {
                    plan.dead_letter(envelope, format!("a daily row of {} inside", bad.meter));
                } else {
                    plan.write.daily.extend(days.iter().cloned());
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
                if &reading.meter != meter {
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
                    let (_, severity) = classify(event.code, event.kind);
                    plan.write.events.push(EventRow {
                        event: event.clone(),
                        severity: severity.as_str().to_string(),
                    });
                    for (destination, notice) in self.routing.route(event) {
                        plan.route(destination, notice);
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
                for (destination, notice) in self.routing.route_outage(meter, *state, *at) {
                    plan.route(destination, notice);
                }
            }
            HesMessage::ClockDrift {
                meter,
                at,
                drift_s,
                corrected,
            } => plan.write.alarms.push(AlarmRow {
                meter: meter.clone(),
                at: *at,
                kind: "clock_drift".into(),
                detail: format!(r#"{{"drift_s":{drift_s},"corrected":{corrected}}}"#),
            }),
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

    /// Decides, interval by interval, what a block-load message changes.
    fn plan_intervals(
        &self,
        plan: &mut Plan,
        meter: &MeterSerial,
        intervals: &[IntervalReading],
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
        for reading in intervals {
            let key = (meter.clone(), reading.interval_end);
            // An earlier message of this batch already decided this interval.
            if let Some(planned) = plan.planned.get(&key).cloned() {
                if same_values(&planned, reading) {
                    plan.duplicates += 1;
                } else {
                    plan.overlap(reading, &planned);
                }
                continue;
            }
            let write = match stored.get(&reading.interval_end) {
                None => Some(IntervalWrite::New {
                    reading: reading.clone(),
                    method: None,
                }),
                Some(s) if s.reading.quality.contains(&Quality::Edited) => {
                    if !same_values(&s.reading, reading) {
                        plan.overlap(reading, &s.reading);
                    }
                    None
                }
                Some(s) if s.reading.quality.contains(&Quality::Estimated) => {
                    Some(IntervalWrite::Replace {
                        reading: reading.clone(),
                        method: None,
                        version: s.version,
                    })
                }
                Some(s) if same_values(&s.reading, reading) => {
                    plan.duplicates += 1;
                    None
                }
                Some(s) => {
                    plan.overlap(reading, &s.reading);
                    None
                }
            };
            if let Some(write) = write {
                plan.reads += channels(reading);
                plan.planned.insert(key, reading.clone());
                plan.write.intervals.push(write);
            }
        }
        Ok(())
    }
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

/// Whether two readings of one interval carry the same measured values (quality aside).
fn same_values(a: &IntervalReading, b: &IntervalReading) -> bool {
    a.import_wh == b.import_wh
        && a.import_vah == b.import_vah
        && a.export_wh == b.export_wh
        && a.export_vah == b.export_vah
        && a.avg_voltage_v == b.avg_voltage_v
        && a.avg_current_a == b.avg_current_a
        && a.avg_phase_voltage_v == b.avg_phase_voltage_v
        && a.avg_phase_current_a == b.avg_phase_current_a
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!(r#"{{"unserialisable":"{e}"}}"#))
}

/// The write being built for one batch, with what it already decided.
#[derive(Debug, Default)]
struct Plan {
    write: IngestWrite,
    planned: HashMap<(MeterSerial, DateTime<Utc>), IntervalReading>,
    duplicates: u64,
    reads: u64,
}

impl Plan {
    /// A second, different value for an interval that has one: kept out, queued for people.
    fn overlap(&mut self, incoming: &IntervalReading, kept: &IntervalReading) {
        self.write.exceptions.push(ExceptionRow {
            meter: incoming.meter.clone(),
            rule: "overlap".into(),
            from: incoming.interval_end,
            to: incoming.interval_end,
            severity: "warning".into(),
            detail: format!(
                "a second reading of this interval ({} Wh, {} VAh) differs from the one kept \
                 ({} Wh, {} VAh)",
                incoming.import_wh, incoming.import_vah, kept.import_wh, kept.import_vah
            ),
            state: ExceptionState::Open,
            created_at: incoming.interval_end,
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

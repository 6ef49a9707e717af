//! The head-end's failure report: sessions and failures per job, retry attempts, failures to
//! connect, missed periodic readings (gaps given up on or still open), gaps explained by power
//! failures, and meters silent for longer than configured. Built from the store's records, so it
//! covers every session since a point in time, across restarts.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use model::MeterSerial;
use store::{AttemptSummary, Gap, GapState, Store, StoreError};

/// Failure kinds that mean the meter could not be reached at all.
const UNREACHABLE_KINDS: [&str; 3] = ["connect", "timeout", "closed"];

/// What went wrong since `since`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureReport {
    pub since: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// Sessions per job kind.
    pub jobs: Vec<AttemptSummary>,
    /// Every (meter, job) that needed more than one attempt: highest attempt and whether the
    /// last one worked.
    pub retries: Vec<(MeterSerial, String, u32, bool)>,
    /// Meters whose every session since `since` failed, with the failure kinds seen.
    pub unreachable: Vec<(MeterSerial, Vec<String>)>,
    /// Of those, failed sessions that could not connect or got no answer, per meter.
    pub connect_failures: BTreeMap<MeterSerial, u32>,
    /// Gaps given up on after re-reads (missed periodic readings).
    pub missed: Vec<Gap>,
    /// Gaps still waiting for a re-read.
    pub open_gaps: Vec<Gap>,
    /// Gaps the meter's power-failure log explains.
    pub explained: Vec<Gap>,
    /// Meters with no successful session since `silent_since`, with their last contact.
    pub silent: Vec<(MeterSerial, Option<DateTime<Utc>>)>,
    pub silent_since: DateTime<Utc>,
}

impl FailureReport {
    /// Builds the report from the store (a blocking call: run it off the async workers).
    pub fn build(
        store: &Store,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        silent_after: std::time::Duration,
    ) -> Result<FailureReport, StoreError> {
        let silent_since = now - chrono::Duration::from_std(silent_after).unwrap_or_default();
        let mut per_meter: BTreeMap<MeterSerial, (u32, Vec<String>)> = BTreeMap::new();
        let mut connect_failures = BTreeMap::new();
        for a in store.attempts(since, false)? {
            let entry = per_meter.entry(a.meter.clone()).or_default();
            match &a.outcome {
                store::Outcome::Ok => entry.0 += 1,
                store::Outcome::Failed { kind, .. } => {
                    if !entry.1.contains(kind) {
                        entry.1.push(kind.clone());
                    }
                    if UNREACHABLE_KINDS.contains(&kind.as_str()) {
                        *connect_failures.entry(a.meter.clone()).or_insert(0) += 1;
                    }
                }
            }
        }
        let unreachable = per_meter
            .into_iter()
            .filter(|(_, (ok, kinds))| *ok == 0 && !kinds.is_empty())
            .map(|(m, (_, kinds))| (m, kinds))
            .collect();
        let gaps = |state| store.gaps(Some(state), since);
        Ok(FailureReport {
            since,
            generated_at: now,
            jobs: store.attempt_summary(since)?,
            retries: store.retry_report(since)?,
            unreachable,
            connect_failures,
            missed: gaps(GapState::Unrecoverable)?,
            open_gaps: gaps(GapState::Open)?,
            explained: gaps(GapState::Explained)?,
            silent: store.silent_meters(silent_since)?,
            silent_since,
        })
    }

    /// The report as text for people (times in IST).
    pub fn render(&self) -> String {
        let ist = |t: &DateTime<Utc>| {
            t.with_timezone(&dlms::datetime::ist())
                .format("%Y-%m-%d %H:%M IST")
                .to_string()
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Head-end failure report, {} to {}",
            ist(&self.since),
            ist(&self.generated_at)
        );
        let _ = writeln!(out, "\nSessions by job:");
        let _ = writeln!(
            out,
            "  {:<28} {:>9} {:>9} {:>9} {:>9}  failures",
            "job", "sessions", "ok", "failed", "retries"
        );
        for j in &self.jobs {
            let kinds = j
                .by_failure_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "  {:<28} {:>9} {:>9} {:>9} {:>9}  {kinds}",
                j.job, j.sessions, j.ok, j.failed, j.retries
            );
        }
        let recovered = self.retries.iter().filter(|r| r.3).count();
        let _ = writeln!(
            out,
            "\nRetried: {} meter-jobs ({} recovered on a later attempt, {} still failing)",
            self.retries.len(),
            recovered,
            self.retries.len() - recovered
        );
        let _ = writeln!(
            out,
            "Unreachable (every session failed): {} meter(s)",
            self.unreachable.len()
        );
        for (m, kinds) in &self.unreachable {
            let connect = self.connect_failures.get(m).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "  {m}: {} ({connect} failure(s) to connect or get an answer)",
                kinds.join(", ")
            );
        }
        let interval_count = |gaps: &[Gap]| gaps.len();
        let _ = writeln!(
            out,
            "Missed periodic readings given up: {} gap(s); still being re-read: {}",
            interval_count(&self.missed),
            interval_count(&self.open_gaps)
        );
        for g in self.missed.iter().chain(&self.open_gaps) {
            let _ = writeln!(
                out,
                "  {} {} {} – {} ({}, {} re-read(s))",
                g.meter,
                g.profile,
                ist(&g.from),
                ist(&g.to),
                g.state.as_str(),
                g.attempts
            );
        }
        let _ = writeln!(
            out,
            "Gaps explained by power failures: {}",
            self.explained.len()
        );
        for g in &self.explained {
            let _ = writeln!(
                out,
                "  {} {} – {}: {}",
                g.meter,
                ist(&g.from),
                ist(&g.to),
                g.reason.as_deref().unwrap_or("power off")
            );
        }
        let _ = writeln!(
            out,
            "Silent since {}: {} meter(s)",
            ist(&self.silent_since),
            self.silent.len()
        );
        for (m, last) in &self.silent {
            let _ = writeln!(
                out,
                "  {m}: last contact {}",
                last.as_ref().map_or("never".to_string(), ist)
            );
        }
        out
    }
}

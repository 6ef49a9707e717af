//! Head-end metrics: sessions, successes and failures per job kind (and failure kind), and session
//! latencies, kept in memory and rendered in the Prometheus text format
//! (`urja_hes_sessions_total`, `urja_hes_session_failures_total`, `urja_hes_session_seconds`).
//! Labels are bounded: job kinds and failure kinds are fixed sets, never meter serials.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::plan::FailureKind;

/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// Counts for one job kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobStats {
    pub sessions: u64,
    pub ok: u64,
    pub failed: u64,
    pub failures: BTreeMap<&'static str, u64>,
    /// Cumulative bucket counts (Prometheus style) and the sum of latencies.
    pub latency_buckets: [u64; BUCKETS.len()],
    pub latency_sum: f64,
    pub latency_max: f64,
}

impl JobStats {
    /// The latency below which `q` (0..=1) of sessions finished, as a bucket bound.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        let want = (self.sessions as f64 * q).ceil() as u64;
        BUCKETS
            .iter()
            .zip(self.latency_buckets)
            .find(|(_, n)| *n >= want && want > 0)
            .map(|(b, _)| *b)
    }
}

/// The head-end's counters. Updated once per session.
#[derive(Debug, Default)]
pub struct Metrics {
    jobs: Mutex<BTreeMap<String, JobStats>>,
}

impl Metrics {
    pub fn record_session(
        &self,
        job: &str,
        ok: bool,
        latency: Duration,
        failure: Option<FailureKind>,
    ) {
        // Commands are labelled by command kind; their ids never reach a label.
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let stats = match jobs.get_mut(job) {
            Some(s) => s,
            None => jobs.entry(job.to_string()).or_default(),
        };
        stats.sessions += 1;
        if ok {
            stats.ok += 1;
        } else {
            stats.failed += 1;
            *stats
                .failures
                .entry(failure.unwrap_or(FailureKind::Other).as_str())
                .or_default() += 1;
        }
        let secs = latency.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(stats.latency_buckets.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        stats.latency_sum += secs;
        stats.latency_max = stats.latency_max.max(secs);
    }

    /// A copy of the counters per job kind.
    pub fn snapshot(&self) -> BTreeMap<String, JobStats> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The Prometheus text exposition of the counters.
    pub fn render_prometheus(&self) -> String {
        let jobs = self.snapshot();
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE urja_hes_sessions_total counter");
        for (job, s) in &jobs {
            for (result, n) in [("ok", s.ok), ("failed", s.failed)] {
                let _ = writeln!(
                    out,
                    "urja_hes_sessions_total{{job=\"{job}\",result=\"{result}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# TYPE urja_hes_session_failures_total counter");
        for (job, s) in &jobs {
            for (kind, n) in &s.failures {
                let _ = writeln!(
                    out,
                    "urja_hes_session_failures_total{{job=\"{job}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# TYPE urja_hes_session_seconds histogram");
        for (job, s) in &jobs {
            for (bound, n) in BUCKETS.iter().zip(s.latency_buckets) {
                let _ = writeln!(
                    out,
                    "urja_hes_session_seconds_bucket{{job=\"{job}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "urja_hes_session_seconds_bucket{{job=\"{job}\",le=\"+Inf\"}} {}",
                s.sessions
            );
            let _ = writeln!(
                out,
                "urja_hes_session_seconds_sum{{job=\"{job}\"}} {}",
                s.latency_sum
            );
            let _ = writeln!(
                out,
                "urja_hes_session_seconds_count{{job=\"{job}\"}} {}",
                s.sessions
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders_per_job_kind() {
        let m = Metrics::default();
        m.record_session("block_load", true, Duration::from_millis(20), None);
        m.record_session("block_load", true, Duration::from_millis(200), None);
        m.record_session(
            "block_load",
            false,
            Duration::from_secs(10),
            Some(FailureKind::Timeout),
        );
        let s = &m.snapshot()["block_load"];
        assert_eq!((s.sessions, s.ok, s.failed), (3, 2, 1));
        assert_eq!(s.failures[FailureKind::Timeout.as_str()], 1);
        assert_eq!(s.latency_quantile(0.5), Some(0.25));
        let text = m.render_prometheus();
        assert!(text.contains("urja_hes_sessions_total{job=\"block_load\",result=\"ok\"} 2"));
        assert!(
            text.contains("urja_hes_session_seconds_bucket{job=\"block_load\",le=\"0.025\"} 1")
        );
        assert!(text.contains("urja_hes_session_seconds_count{job=\"block_load\"} 3"));
    }
}

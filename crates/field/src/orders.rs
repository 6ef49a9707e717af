//! Work orders as a crew sees them: the kinds, how long each may take, and the field
//! completion report each needs, checked before anything is done with it. Pure.

use chrono::{DateTime, Duration, Utc};
use model::MeterSerial;
use serde::{Deserialize, Serialize};

/// What a crew is sent to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Install the meter of a new connection (12.2).
    Installation,
    /// Look at a meter that reported a tamper (5.3).
    TamperInspection,
    /// Exchange a meter.
    MeterReplacement,
    /// Reconnect a supply by hand (a meter without a working relay).
    ManualReconnect,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Installation => "installation",
            Kind::TamperInspection => "tamper_inspection",
            Kind::MeterReplacement => "meter_replacement",
            Kind::ManualReconnect => "manual_reconnect",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::Installation,
            Kind::TamperInspection,
            Kind::MeterReplacement,
            Kind::ManualReconnect,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }

    /// How long the crew has, from the order: the regulator's and the utility's usual limits.
    pub fn allowed(self) -> Duration {
        match self {
            Kind::Installation => Duration::days(3),
            Kind::TamperInspection => Duration::hours(24),
            Kind::MeterReplacement => Duration::days(2),
            Kind::ManualReconnect => Duration::hours(4),
        }
    }
}

/// What the crew found at a tamper inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// The tamper is real: the supply is disconnected (5.4) and the period assessed (5.6).
    Confirmed,
    /// Nothing wrong at the site (a false alarm): nothing follows.
    NotFound,
}

/// The field completion report of a work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Report {
    Installation {
        meter: String,
        /// The distribution transformer the meter hangs below.
        transformer: String,
        /// The import register at installation, Wh.
        initial_reading_wh: i64,
        #[serde(default)]
        note: String,
    },
    TamperInspection {
        finding: Finding,
        /// What it was, as the bill will say ("Magnet on the meter").
        #[serde(default)]
        reason: String,
        /// When the tampering began; by default when the meter reported it.
        #[serde(default)]
        since: Option<DateTime<Utc>>,
        #[serde(default)]
        note: String,
    },
    MeterReplacement {
        new_meter: String,
        /// The old meter's import register when taken out, Wh.
        old_final_wh: i64,
        /// The new meter's import register when put in, Wh.
        new_initial_wh: i64,
        #[serde(default)]
        note: String,
    },
    ManualReconnect {
        #[serde(default)]
        note: String,
    },
}

/// Why a report cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReportError(pub String);

impl Report {
    pub fn kind(&self) -> Kind {
        match self {
            Report::Installation { .. } => Kind::Installation,
            Report::TamperInspection { .. } => Kind::TamperInspection,
            Report::MeterReplacement { .. } => Kind::MeterReplacement,
            Report::ManualReconnect { .. } => Kind::ManualReconnect,
        }
    }

    /// Checks the report against the order it completes, raised at `raised` and reported at
    /// `now`.
    pub fn check(
        &self,
        order: Kind,
        raised: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), ReportError> {
        if self.kind() != order {
            return Err(ReportError(format!(
                "a {} report for a {} order",
                self.kind().name(),
                order.name()
            )));
        }
        let serial = |s: &str, what: &str| {
            MeterSerial::new(s)
                .map(|_| ())
                .map_err(|e| ReportError(format!("{what} {s:?}: {e}")))
        };
        match self {
            Report::Installation {
                meter,
                transformer,
                initial_reading_wh,
                ..
            } => {
                serial(meter, "meter")?;
                if transformer.trim().is_empty() {
                    return Err(ReportError("no transformer".into()));
                }
                if *initial_reading_wh < 0 {
                    return Err(ReportError("a negative initial reading".into()));
                }
            }
            Report::TamperInspection {
                finding,
                reason,
                since,
                ..
            } => {
                if *finding == Finding::Confirmed && reason.trim().is_empty() {
                    return Err(ReportError(
                        "a confirmed tamper needs its reason (it is shown on the bill)".into(),
                    ));
                }
                if since.is_some_and(|s| s >= now) {
                    return Err(ReportError("the tampering began in the future".into()));
                }
                if since.is_some_and(|s| s > raised) {
                    return Err(ReportError(
                        "the tampering began after the order was raised".into(),
                    ));
                }
            }
            Report::MeterReplacement {
                new_meter,
                old_final_wh,
                new_initial_wh,
                ..
            } => {
                serial(new_meter, "new meter")?;
                if *old_final_wh < 0 || *new_initial_wh < 0 {
                    return Err(ReportError("a negative register reading".into()));
                }
            }
            Report::ManualReconnect { .. } => {}
        }
        Ok(())
    }
}

/// `log` (a JSON array) with one more step.
pub fn logged(log: &str, state: &str, by: &str, at: DateTime<Utc>, note: &str) -> String {
    let mut steps: Vec<serde_json::Value> = serde_json::from_str(log).unwrap_or_default();
    let mut step = serde_json::json!({"state": state, "by": by, "at": at.to_rfc3339()});
    if !note.is_empty() {
        step["note"] = note.into();
    }
    steps.push(step);
    serde_json::Value::Array(steps).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_report_must_fit_its_order_and_make_sense() {
        let raised = t("2026-12-01T04:00:00Z");
        let now = t("2026-12-01T09:00:00Z");
        let confirmed = |reason: &str, since| Report::TamperInspection {
            finding: Finding::Confirmed,
            reason: reason.into(),
            since,
            note: String::new(),
        };
        assert!(
            confirmed("Magnet", None)
                .check(Kind::TamperInspection, raised, now)
                .is_ok()
        );
        assert!(
            confirmed("", None)
                .check(Kind::TamperInspection, raised, now)
                .is_err()
        );
        assert!(
            confirmed("Magnet", Some(t("2026-12-01T05:00:00Z")))
                .check(Kind::TamperInspection, raised, now)
                .is_err(),
            "began after the order"
        );
        assert!(
            confirmed("Magnet", None)
                .check(Kind::Installation, raised, now)
                .is_err()
        );
        let install = |meter: &str, wh| Report::Installation {
            meter: meter.into(),
            transformer: "DT-1".into(),
            initial_reading_wh: wh,
            note: String::new(),
        };
        assert!(
            install("URJ1", 0)
                .check(Kind::Installation, raised, now)
                .is_ok()
        );
        assert!(
            install("", 0)
                .check(Kind::Installation, raised, now)
                .is_err()
        );
        assert!(
            install("URJ1", -1)
                .check(Kind::Installation, raised, now)
                .is_err()
        );
    }

    #[test]
    fn reports_read_from_json_and_refuse_unknown_fields() {
        let r: Report = serde_json::from_str(
            r#"{"kind":"tamper_inspection","finding":"not_found","note":"seal intact"}"#,
        )
        .unwrap();
        assert_eq!(r.kind(), Kind::TamperInspection);
        assert!(
            serde_json::from_str::<Report>(r#"{"kind":"manual_reconnect","colour":"red"}"#)
                .is_err()
        );
    }

    #[test]
    fn the_log_keeps_every_step() {
        let log = logged("[]", "open", "wfm", t("2026-12-01T04:00:00Z"), "");
        let log = logged(&log, "assigned", "ops", t("2026-12-01T05:00:00Z"), "crew 7");
        let steps: Vec<serde_json::Value> = serde_json::from_str(&log).unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1]["note"], "crew 7");
    }
}

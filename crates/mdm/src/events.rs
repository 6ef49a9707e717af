//! The MDM's event catalogue and routing. Every IS 15959 event code is normalised into a class
//! (tamper, outage, load violation, relay, …) and a severity; routing rules turn events of some
//! classes into notices for the parts that act on them: a site-inspection order for field work
//! (use case 5.3), a tamper flag for billing and CIS/CRM (5.6), an outage or restoration notice
//! for OMS and CIS/CRM (7.3), a load-violation notice (9.1), a supply-status change for CIS/CRM.
//! The notices are written to the store's routed messages with the event, so they exist before
//! the parts that will read them do. Outage events are not routed one by one: the outage desk
//! ([`crate::outages`]) groups them and sends one notice per outage to the destinations the
//! outage rules name.

use chrono::{DateTime, SecondsFormat, Utc};
use model::{EventKind, MeterEvent, MeterSerial};
use serde::{Deserialize, Serialize};

/// What an event is about, for the people and parts that act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventClass {
    /// Magnet, cover open, neutral disturbance, current reversal or bypass, CT open, …
    Tamper,
    /// Supply failed or came back.
    Outage,
    /// Demand over the sanctioned or set limit.
    LoadViolation,
    /// The load switch opened or closed.
    Relay,
    /// Voltage missing, high, low or unbalanced.
    VoltageQuality,
    /// Current unbalance, over-current, high neutral current.
    CurrentQuality,
    /// A setting was changed on the meter (clock, TOD, keys, billing date, …).
    Configuration,
    /// Payment mode changed (prepaid ↔ postpaid).
    PaymentMode,
    /// A code the catalogue does not know.
    Unknown,
}

impl EventClass {
    /// The stable snake_case name (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            EventClass::Tamper => "tamper",
            EventClass::Outage => "outage",
            EventClass::LoadViolation => "load_violation",
            EventClass::Relay => "relay",
            EventClass::VoltageQuality => "voltage_quality",
            EventClass::CurrentQuality => "current_quality",
            EventClass::Configuration => "configuration",
            EventClass::PaymentMode => "payment_mode",
            EventClass::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Minor,
    Major,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }
}

/// Class and severity of an event code. Restorations are one step less severe than their
/// occurrence (they close a condition rather than open one).
pub fn classify(code: u16, kind: EventKind) -> (EventClass, Severity) {
    use EventClass::*;
    let (class, severity) = match code {
        1..=6 => (VoltageQuality, Severity::Major),
        7..=12 => (VoltageQuality, Severity::Minor),
        // Current reversal, CT open, bypass, earth loading: energy escapes the meter.
        51..=62 | 65 | 66 | 69 | 70 => (Tamper, Severity::Critical),
        63 | 64 | 67 | 68 | 83 | 84 => (CurrentQuality, Severity::Minor),
        101 | 102 => (Outage, Severity::Major),
        151..=166 => (Configuration, Severity::Info),
        201..=204 | 207..=210 | 251 => (Tamper, Severity::Critical),
        205 | 206 => (CurrentQuality, Severity::Minor),
        211 | 212 => (PaymentMode, Severity::Info),
        213 | 214 => (Configuration, Severity::Info),
        215 | 216 => (LoadViolation, Severity::Major),
        301 | 302 => (Relay, Severity::Minor),
        _ => (Unknown, Severity::Minor),
    };
    let severity = match (kind, severity) {
        (EventKind::Restoration, Severity::Critical) => Severity::Major,
        (EventKind::Restoration, Severity::Major) => Severity::Minor,
        (EventKind::Restoration, Severity::Minor) => Severity::Info,
        (_, s) => s,
    };
    (class, severity)
}

/// A message for another part, caused by an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// Send someone to look at the meter (5.3).
    SiteInspection {
        meter: MeterSerial,
        code: u16,
        description: String,
        at: DateTime<Utc>,
    },
    /// Flag the billing determinants for tamper invoicing; tell CIS/CRM (5.6).
    TamperFlag {
        meter: MeterSerial,
        code: u16,
        description: String,
        at: DateTime<Utc>,
    },
    /// Demand went over the limit (9.1).
    LoadViolation {
        meter: MeterSerial,
        code: u16,
        at: DateTime<Utc>,
    },
    /// The load switch changed (CIS/CRM keeps the connection status).
    SupplyStatus {
        meter: MeterSerial,
        connected: bool,
        at: DateTime<Utc>,
    },
}

impl Notice {
    pub fn name(&self) -> &'static str {
        match self {
            Notice::SiteInspection { .. } => "site_inspection",
            Notice::TamperFlag { .. } => "tamper_flag",
            Notice::LoadViolation { .. } => "load_violation",
            Notice::SupplyStatus { .. } => "supply_status",
        }
    }

    pub fn meter(&self) -> &MeterSerial {
        self.meter_and_time().0
    }

    fn meter_and_time(&self) -> (&MeterSerial, DateTime<Utc>) {
        match self {
            Notice::SiteInspection { meter, at, .. }
            | Notice::TamperFlag { meter, at, .. }
            | Notice::LoadViolation { meter, at, .. }
            | Notice::SupplyStatus { meter, at, .. } => (meter, *at),
        }
    }

    /// The idempotency key of this notice to `destination`: the same event routed twice is one
    /// notice.
    pub fn key(&self, destination: &str) -> String {
        let (meter, at) = self.meter_and_time();
        let detail = match self {
            Notice::SiteInspection { code, .. }
            | Notice::TamperFlag { code, .. }
            | Notice::LoadViolation { code, .. } => code.to_string(),
            Notice::SupplyStatus { connected, .. } => connected.to_string(),
        };
        format!(
            "{destination}/{}/{meter}/{}#{detail}",
            self.name(),
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

/// Which notices go where. The default sends tamper occurrences to field work (`wfm`) and as a
/// flag to `billing` and `crm`, outages (grouped by the outage desk) to `oms` and `crm`, load
/// violations and supply-status changes to `crm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    pub rules: Vec<RouteRule>,
}

/// One rule: events of these classes (and, when given, kinds) make this notice for these
/// destinations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRule {
    pub classes: Vec<EventClass>,
    /// Empty: every kind.
    #[serde(default)]
    pub kinds: Vec<EventKind>,
    pub notice: NoticeKind,
    pub destinations: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    SiteInspection,
    TamperFlag,
    Outage,
    LoadViolation,
    SupplyStatus,
}

impl Default for Routing {
    fn default() -> Self {
        let rule = |classes: &[EventClass], kinds: &[EventKind], notice, to: &[&str]| RouteRule {
            classes: classes.to_vec(),
            kinds: kinds.to_vec(),
            notice,
            destinations: to.iter().map(|d| d.to_string()).collect(),
        };
        let starts = [EventKind::Occurrence, EventKind::Single];
        Routing {
            rules: vec![
                rule(
                    &[EventClass::Tamper],
                    &starts,
                    NoticeKind::SiteInspection,
                    &["wfm"],
                ),
                rule(
                    &[EventClass::Tamper],
                    &starts,
                    NoticeKind::TamperFlag,
                    &["billing", "crm"],
                ),
                rule(
                    &[EventClass::Outage],
                    &[],
                    NoticeKind::Outage,
                    &["oms", "crm"],
                ),
                rule(
                    &[EventClass::LoadViolation],
                    &[EventKind::Occurrence],
                    NoticeKind::LoadViolation,
                    &["crm"],
                ),
                rule(
                    &[EventClass::Relay],
                    &[],
                    NoticeKind::SupplyStatus,
                    &["crm"],
                ),
            ],
        }
    }
}

/// The IS 15959 code whose meaning a notice needs.
const LOAD_SWITCH_CONNECTED: u16 = 302;

impl Routing {
    /// The notices an event causes, each with its destination (outage events none: they are
    /// grouped first).
    pub fn route(&self, event: &MeterEvent) -> Vec<(String, Notice)> {
        let (class, _) = classify(event.code, event.kind);
        let mut out = Vec::new();
        for rule in &self.rules {
            if !rule.classes.contains(&class)
                || !(rule.kinds.is_empty() || rule.kinds.contains(&event.kind))
            {
                continue;
            }
            let Some(notice) = notice(rule.notice, event) else {
                continue;
            };
            for d in &rule.destinations {
                out.push((d.clone(), notice.clone()));
            }
        }
        out
    }

    /// Where outage notices go.
    pub fn outage_destinations(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in self
            .rules
            .iter()
            .filter(|r| r.notice == NoticeKind::Outage)
            .flat_map(|r| r.destinations.iter())
        {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }
}

fn notice(kind: NoticeKind, e: &MeterEvent) -> Option<Notice> {
    let meter = e.meter.clone();
    Some(match kind {
        NoticeKind::SiteInspection => Notice::SiteInspection {
            meter,
            code: e.code,
            description: e.description.clone(),
            at: e.at,
        },
        NoticeKind::TamperFlag => Notice::TamperFlag {
            meter,
            code: e.code,
            description: e.description.clone(),
            at: e.at,
        },
        NoticeKind::Outage => return None,
        NoticeKind::LoadViolation => Notice::LoadViolation {
            meter,
            code: e.code,
            at: e.at,
        },
        NoticeKind::SupplyStatus => Notice::SupplyStatus {
            meter,
            connected: e.code == LOAD_SWITCH_CONNECTED,
            at: e.at,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::EventCategory;

    fn event(code: u16, kind: EventKind) -> MeterEvent {
        MeterEvent {
            meter: MeterSerial::new("M1").unwrap(),
            at: "2026-12-01T04:00:00Z".parse().unwrap(),
            code,
            category: EventCategory::Other,
            kind,
            description: "Meter cover opened".into(),
            quality: vec![],
        }
    }

    #[test]
    fn codes_are_classified_with_restorations_less_severe() {
        assert_eq!(
            classify(251, EventKind::Single),
            (EventClass::Tamper, Severity::Critical)
        );
        assert_eq!(
            classify(201, EventKind::Occurrence),
            (EventClass::Tamper, Severity::Critical)
        );
        assert_eq!(
            classify(202, EventKind::Restoration),
            (EventClass::Tamper, Severity::Major)
        );
        assert_eq!(classify(101, EventKind::Occurrence).0, EventClass::Outage);
        assert_eq!(
            classify(215, EventKind::Occurrence).0,
            EventClass::LoadViolation
        );
        assert_eq!(classify(301, EventKind::Occurrence).0, EventClass::Relay);
        assert_eq!(
            classify(9999, EventKind::Single),
            (EventClass::Unknown, Severity::Minor)
        );
    }

    #[test]
    fn a_cover_open_makes_a_site_inspection_and_tamper_flags() {
        let notices = Routing::default().route(&event(251, EventKind::Single));
        let to: Vec<(&str, &str)> = notices
            .iter()
            .map(|(d, n)| (d.as_str(), n.name()))
            .collect();
        assert_eq!(
            to,
            vec![
                ("wfm", "site_inspection"),
                ("billing", "tamper_flag"),
                ("crm", "tamper_flag")
            ]
        );
        // Keys differ by destination and notice, and are stable.
        let keys: std::collections::HashSet<String> =
            notices.iter().map(|(d, n)| n.key(d)).collect();
        assert_eq!(keys.len(), 3);
        assert_eq!(
            notices[0].1.key("wfm"),
            "wfm/site_inspection/M1/2026-12-01T04:00:00Z#251"
        );
    }

    #[test]
    fn a_magnet_removed_sends_no_inspection_and_outages_wait_for_the_desk() {
        assert!(
            Routing::default()
                .route(&event(202, EventKind::Restoration))
                .is_empty()
        );
        assert!(
            Routing::default()
                .route(&event(102, EventKind::Restoration))
                .is_empty()
        );
        assert_eq!(Routing::default().outage_destinations(), vec!["oms", "crm"]);
        // Configuration changes route nowhere by default.
        assert!(
            Routing::default()
                .route(&event(151, EventKind::Single))
                .is_empty()
        );
    }
}

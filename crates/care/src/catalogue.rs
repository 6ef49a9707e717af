//! The kinds of service request and natures of complaint, as data: a default set
//! (`types/default.json`), checked and seeded into a store that lacks them.

use serde::Deserialize;
use store::Store;
use store::care::{CareType, CaseKind, RecordField};

use crate::{CareError, DESTINATIONS};

/// The default kinds and natures.
pub const DEFAULT_TYPES: &str = include_str!("../types/default.json");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    service_requests: Vec<Entry>,
    complaints: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    code: String,
    name: String,
    sla_hours: u32,
    #[serde(default)]
    route: Option<String>,
    #[serde(default)]
    applies: Option<RecordField>,
    reopen_days: u32,
}

/// Reads and checks a catalogue (JSON, `{"service_requests": [...], "complaints": [...]}`):
/// codes unique and plain, an SLA, known destinations, every complaint routed.
pub fn parse(json: &str) -> Result<Vec<CareType>, CareError> {
    let c: Catalogue =
        serde_json::from_str(json).map_err(|e| CareError::Catalogue(e.to_string()))?;
    let mut out: Vec<CareType> = Vec::new();
    for (kind, entries) in [
        (CaseKind::ServiceRequest, c.service_requests),
        (CaseKind::Complaint, c.complaints),
    ] {
        for e in entries {
            let bad =
                |why: &str| CareError::Catalogue(format!("{} {}: {why}", kind.as_str(), e.code));
            if e.code.is_empty()
                || !e
                    .code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(bad("a code is lower-case letters, digits and _"));
            }
            if out.iter().any(|t| t.kind == kind && t.code == e.code) {
                return Err(bad("listed twice"));
            }
            if e.sla_hours == 0 || e.name.trim().is_empty() {
                return Err(bad("needs a name and an SLA of at least an hour"));
            }
            if let Some(r) = e.route.as_deref().filter(|r| !DESTINATIONS.contains(r)) {
                return Err(bad(&format!("route {r:?} is not one of {DESTINATIONS:?}")));
            }
            if kind == CaseKind::Complaint && (e.route.is_none() || e.applies.is_some()) {
                return Err(bad(
                    "a complaint is routed to its target and changes no record",
                ));
            }
            out.push(CareType {
                kind,
                code: e.code,
                name: e.name,
                sla_hours: e.sla_hours,
                route: e.route,
                applies: e.applies,
                reopen_days: e.reopen_days,
            });
        }
    }
    Ok(out)
}

/// Seeds the default kinds and natures a store lacks; how many were added.
pub fn seed_defaults(store: &Store) -> Result<usize, CareError> {
    Ok(store.care_types_seed(&parse(DEFAULT_TYPES)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_read_and_mistakes_are_refused() {
        let types = parse(DEFAULT_TYPES).unwrap();
        let routed = |code: &str| {
            types
                .iter()
                .find(|t| t.kind == CaseKind::Complaint && t.code == code)
                .and_then(|t| t.route.clone())
        };
        assert_eq!(routed("no_supply").as_deref(), Some("oms"));
        assert_eq!(routed("meter_burnt").as_deref(), Some("wfm"));
        assert_eq!(routed("other").as_deref(), Some("cis"));
        for bad in [
            r#"{"service_requests": [], "complaints": [], "extra": 1}"#,
            r#"{"service_requests": [{"code": "x", "name": "X", "sla_hour": 1, "reopen_days": 1}], "complaints": []}"#,
            r#"{"service_requests": [{"code": "x", "name": "X", "sla_hours": 0, "reopen_days": 1}], "complaints": []}"#,
            r#"{"service_requests": [], "complaints": [{"code": "x", "name": "X", "sla_hours": 1, "reopen_days": 1}]}"#,
            r#"{"service_requests": [], "complaints": [{"code": "x", "name": "X", "sla_hours": 1, "route": "mars", "reopen_days": 1}]}"#,
            r#"{"service_requests": [{"code": "X Y", "name": "X", "sla_hours": 1, "reopen_days": 1}], "complaints": []}"#,
        ] {
            assert!(matches!(parse(bad), Err(CareError::Catalogue(_))), "{bad}");
        }
    }
}

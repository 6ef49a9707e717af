//! What happens to a case, as plain functions over data.
//!
//! ```text
//!  register ─▶ open ──start──▶ in progress ──resolve──▶ resolved ──close──▶ closed
//!  (routed: in progress)  └───────┴──complete (the target reports)────────▶ closed
//!               └───────┴──reject (with the reason)──▶ rejected
//!  closed ──reopen (within the type's days)──▶ open, or in progress and routed again
//! ```
//!
//! A resolution (resolve or complete) applies the case's record change. The SLA runs from
//! registration (from reopening, after one) to resolution.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use store::care::{CareType, Case, CaseState, RecordChange};
use store::notify::{valid_email, valid_mobile};

use crate::CareError;

/// Something done to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Someone has taken it up.
    Start,
    /// A note on the record, nothing else.
    Note,
    /// Done, and the record change applied; closed next.
    Resolve,
    Close,
    /// The target system (or the desk) reports it done: resolved and closed at once.
    Complete,
    Reject,
    Reopen,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Note => "note",
            Action::Resolve => "resolve",
            Action::Close => "close",
            Action::Complete => "complete",
            Action::Reject => "reject",
            Action::Reopen => "reopen",
        }
    }
}

/// What a case ends with, for the consumer to be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Closed,
    Rejected,
}

/// The outcome of an action: the case after it, and what else follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub after: Case,
    /// Apply the case's record change.
    pub apply: bool,
    /// Route the case to its target again (a reopened routed case).
    pub route_again: bool,
    pub ending: Option<Ending>,
}

/// When a case registered (or reopened) at `from` is due.
pub fn due_at(from: DateTime<Utc>, sla_hours: u32) -> DateTime<Utc> {
    from + Duration::hours(i64::from(sla_hours))
}

/// Past its due time: resolved (or rejected) after it, or not yet and `now` is after it.
pub fn overdue(case: &Case, now: DateTime<Utc>) -> bool {
    let done = case.resolved_at.or(match case.state {
        CaseState::Rejected => case.closed_at,
        _ => None,
    });
    done.unwrap_or(now) > case.due_at
}

/// What `action` does to `case` (of type `ty`) at `now`; `note` is what the actor wrote.
pub fn step(
    case: &Case,
    ty: &CareType,
    action: Action,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Step, CareError> {
    use CaseState::*;
    if action != Action::Start && note.trim().is_empty() {
        return Err(CareError::NoteNeeded(action.as_str()));
    }
    let refused = || CareError::NotAllowed {
        action: action.as_str(),
        state: case.state,
    };
    let mut after = case.clone();
    let mut apply = false;
    let mut route_again = false;
    let mut ending = None;
    match (action, case.state) {
        (Action::Start, Open) => after.state = InProgress,
        (Action::Note, s) if !s.is_finished() => {}
        (Action::Resolve, Open | InProgress) => {
            after.state = Resolved;
            after.resolved_at = Some(now);
            apply = true;
        }
        (Action::Close, Resolved) => {
            after.state = Closed;
            after.closed_at = Some(now);
            ending = Some(Ending::Closed);
        }
        (Action::Complete, Open | InProgress) => {
            after.state = Closed;
            after.resolved_at = Some(now);
            after.closed_at = Some(now);
            apply = true;
            ending = Some(Ending::Closed);
        }
        (Action::Reject, Open | InProgress) => {
            after.state = Rejected;
            after.closed_at = Some(now);
            ending = Some(Ending::Rejected);
        }
        (Action::Reopen, Closed) => {
            let closed = case.closed_at.unwrap_or(now);
            if now > closed + Duration::days(i64::from(ty.reopen_days)) {
                return Err(CareError::ReopenWindowPassed(ty.reopen_days));
            }
            route_again = case.route.is_some();
            after.state = if route_again { InProgress } else { Open };
            after.resolved_at = None;
            after.closed_at = None;
            after.reopened += 1;
            after.due_at = due_at(now, ty.sla_hours);
        }
        _ => return Err(refused()),
    }
    Ok(Step {
        after,
        apply: apply && case.change.is_some(),
        route_again,
        ending,
    })
}

/// The record change a request of type `ty` asks for, from the fields given (`change`: an
/// object of that record's fields, e.g. `{"mobile": "+919812345678"}`), checked.
pub fn record_change(
    ty: &CareType,
    change: Option<&serde_json::Value>,
) -> Result<Option<RecordChange>, CareError> {
    let (field, change) = match (ty.applies, change) {
        (None, None) => return Ok(None),
        (None, Some(_)) => {
            return Err(CareError::BadChange(format!(
                "a {} changes no record",
                ty.name.to_lowercase()
            )));
        }
        (Some(field), None) => return Err(CareError::ChangeNeeded(field)),
        (Some(field), Some(change)) => (field, change),
    };
    let mut fields = change
        .as_object()
        .cloned()
        .ok_or_else(|| CareError::BadChange("give an object of the record's fields".into()))?;
    fields.insert(
        "field".into(),
        serde_json::to_value(field).unwrap_or_default(),
    );
    let parsed: RecordChange = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| CareError::BadChange(e.to_string()))?;
    let bad = |why: &str| Err(CareError::BadChange(why.into()));
    match &parsed {
        RecordChange::Name { name: s }
        | RecordChange::Address { address: s }
        | RecordChange::Category { category: s }
            if s.trim().is_empty() || s.len() > 200 =>
        {
            return bad("give the new value (at most 200 characters)");
        }
        RecordChange::Load { sanctioned_load_w } if *sanctioned_load_w <= 0 => {
            return bad("the sanctioned load is positive watts");
        }
        RecordChange::Contact { mobile, email } => {
            if mobile.is_none() && email.is_none() {
                return bad("give a mobile, an email or both");
            }
            if mobile.as_deref().is_some_and(|m| !valid_mobile(m)) {
                return bad("the mobile is +91 and ten digits");
            }
            if email.as_deref().is_some_and(|e| !valid_email(e)) {
                return bad("the email is not an address");
            }
        }
        _ => {}
    }
    Ok(Some(parsed))
}

/// The age buckets of the ageing summary, by hours since registration: `[from, to)`.
pub const AGE_BUCKETS: &[(&str, i64, Option<i64>)] = &[
    ("0-1d", 0, Some(24)),
    ("1-3d", 24, Some(72)),
    ("3-7d", 72, Some(168)),
    ("7-15d", 168, Some(360)),
    ("15-30d", 360, Some(720)),
    ("30d+", 720, None),
];

/// Unfinished cases of one type by age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeingRow {
    pub type_code: String,
    /// One count per [`AGE_BUCKETS`] entry.
    pub buckets: Vec<u32>,
    pub unfinished: u32,
    pub overdue: u32,
}

/// The unfinished cases among `cases` by type and age at `now`, types in code order.
pub fn ageing(cases: &[Case], now: DateTime<Utc>) -> Vec<AgeingRow> {
    let mut rows: Vec<AgeingRow> = Vec::new();
    for c in cases.iter().filter(|c| !c.state.is_finished()) {
        let i = match rows.binary_search_by(|r| r.type_code.as_str().cmp(&c.type_code)) {
            Ok(i) => i,
            Err(i) => {
                rows.insert(
                    i,
                    AgeingRow {
                        type_code: c.type_code.clone(),
                        buckets: vec![0; AGE_BUCKETS.len()],
                        unfinished: 0,
                        overdue: 0,
                    },
                );
                i
            }
        };
        let hours = (now - c.opened_at).num_hours().max(0);
        let bucket = AGE_BUCKETS
            .iter()
            .position(|(_, from, to)| hours >= *from && to.is_none_or(|t| hours < t))
            .unwrap_or(AGE_BUCKETS.len() - 1);
        let row = &mut rows[i];
        row.buckets[bucket] += 1;
        row.unfinished += 1;
        row.overdue += u32::from(overdue(c, now));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::care::{CaseKind, RecordField};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn ty(route: Option<&str>, applies: Option<RecordField>) -> CareType {
        CareType {
            kind: CaseKind::Complaint,
            code: "no_supply".into(),
            name: "No supply".into(),
            sla_hours: 4,
            route: route.map(str::to_string),
            applies,
            reopen_days: 3,
        }
    }

    fn case(state: CaseState) -> Case {
        Case {
            number: "CR-2026-000001".into(),
            kind: CaseKind::Complaint,
            consumer_no: "C-1".into(),
            type_code: "no_supply".into(),
            description: "dark since noon".into(),
            change: None,
            state,
            route: Some("oms".into()),
            meter: model::MeterSerial::new("M-1").unwrap(),
            opened_by: "desk".into(),
            opened_at: t("2026-12-01T06:30:00Z"),
            due_at: t("2026-12-01T10:30:00Z"),
            resolved_at: None,
            closed_at: None,
            reopened: 0,
        }
    }

    #[test]
    fn a_routed_complaint_completes_closes_and_reopens_within_its_days() {
        let ty = ty(Some("oms"), None);
        let now = t("2026-12-01T08:00:00Z");
        let done = step(
            &case(CaseState::InProgress),
            &ty,
            Action::Complete,
            "fuse",
            now,
        )
        .unwrap();
        assert_eq!(done.after.state, CaseState::Closed);
        assert_eq!(done.after.closed_at, Some(now));
        assert_eq!(done.ending, Some(Ending::Closed));
        assert!(!done.apply, "no record change to apply");
        assert!(!overdue(&done.after, now + Duration::days(9)));
        let later = now + Duration::days(2);
        let again = step(&done.after, &ty, Action::Reopen, "dark again", later).unwrap();
        assert_eq!(again.after.state, CaseState::InProgress);
        assert!(again.route_again);
        assert_eq!(again.after.reopened, 1);
        assert_eq!(again.after.due_at, later + Duration::hours(4));
        assert_eq!(again.after.closed_at, None);
        let too_late = now + Duration::days(3) + Duration::seconds(1);
        assert!(matches!(
            step(&done.after, &ty, Action::Reopen, "dark again", too_late),
            Err(CareError::ReopenWindowPassed(3))
        ));
        assert!(matches!(
            step(&done.after, &ty, Action::Complete, "again", later),
            Err(CareError::NotAllowed { .. })
        ));
        assert!(matches!(
            step(&case(CaseState::Open), &ty, Action::Reject, " ", now),
            Err(CareError::NoteNeeded("reject"))
        ));
    }

    #[test]
    fn overdue_runs_to_resolution() {
        let c = case(CaseState::Open);
        assert!(!overdue(&c, t("2026-12-01T10:30:00Z")));
        assert!(overdue(&c, t("2026-12-01T10:30:01Z")));
        let ty = ty(None, None);
        let resolved = step(&c, &ty, Action::Resolve, "ok", t("2026-12-01T10:00:00Z")).unwrap();
        assert!(!overdue(&resolved.after, t("2026-12-09T00:00:00Z")));
        let late = step(&c, &ty, Action::Resolve, "ok", t("2026-12-01T11:00:00Z")).unwrap();
        assert!(overdue(&late.after, t("2026-12-09T00:00:00Z")));
    }

    #[test]
    fn ageing_counts_unfinished_cases_by_type_and_age() {
        let now = t("2026-12-05T06:30:00Z");
        let mut a = case(CaseState::Open);
        a.opened_at = now - Duration::hours(2);
        a.due_at = now + Duration::hours(2);
        let mut b = case(CaseState::InProgress);
        b.opened_at = now - Duration::days(4);
        b.due_at = now - Duration::days(3);
        let mut c = case(CaseState::Closed);
        c.type_code = "other".into();
        let mut d = case(CaseState::Open);
        d.type_code = "meter_burnt".into();
        d.opened_at = now - Duration::days(40);
        let rows = ageing(&[a, b, c, d], now);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].type_code, "meter_burnt");
        assert_eq!(rows[0].buckets, vec![0, 0, 0, 0, 0, 1]);
        assert_eq!(rows[1].type_code, "no_supply");
        assert_eq!(rows[1].buckets, vec![1, 0, 1, 0, 0, 0]);
        assert_eq!((rows[1].unfinished, rows[1].overdue), (2, 1));
    }

    #[test]
    fn a_record_change_is_the_types_field_checked() {
        let contact = ty(None, Some(RecordField::Contact));
        let ok = record_change(
            &contact,
            Some(&serde_json::json!({"mobile": "+919812345678"})),
        );
        assert_eq!(
            ok.unwrap(),
            Some(RecordChange::Contact {
                mobile: Some("+919812345678".into()),
                email: None
            })
        );
        for bad in [
            serde_json::json!({"mobile": "98123"}),
            serde_json::json!({}),
            serde_json::json!({"mobil": "+919812345678"}),
            serde_json::json!({"name": "X"}),
            serde_json::json!("+919812345678"),
        ] {
            assert!(
                matches!(
                    record_change(&contact, Some(&bad)),
                    Err(CareError::BadChange(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            record_change(&contact, None),
            Err(CareError::ChangeNeeded(RecordField::Contact))
        ));
        let load = ty(None, Some(RecordField::Load));
        assert!(record_change(&load, Some(&serde_json::json!({"sanctioned_load_w": 0}))).is_err());
        assert!(matches!(
            record_change(&ty(None, None), Some(&serde_json::json!({"name": "X"}))),
            Err(CareError::BadChange(_))
        ));
        assert_eq!(record_change(&ty(None, None), None).unwrap(), None);
    }
}

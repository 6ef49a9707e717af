//! The care desk: registers service requests and complaints and acts on them, with the I/O
//! around [`crate::lifecycle`]: the store, the consumer's notices (acknowledgement, closure)
//! and the messages routed to the case's target (OMS, WFM, CIS, billing) and, for every step,
//! to the CRM destination.
//!
//! A case's step and its record change are one transaction; the notices and routed messages
//! follow it, each once by its key.

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use notify::Notice;
use serde_json::json;
use store::care::{CareType, Case, CaseKind, NewCase, NewUpdate};
use store::{RoutedMessage, Store};

use crate::CareError;
use crate::lifecycle::{self, Action, Ending};

/// A service request or complaint as the consumer (or the desk for them) gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub kind: CaseKind,
    pub consumer_no: String,
    pub type_code: String,
    pub description: String,
    /// The record fields the request changes (for a type that changes one).
    pub change: Option<serde_json::Value>,
}

/// The type a case of `kind` is registered under.
pub fn care_type(store: &Store, kind: CaseKind, code: &str) -> Result<CareType, CareError> {
    store
        .care_types(Some(kind))?
        .into_iter()
        .find(|t| t.code == code)
        .ok_or_else(|| CareError::UnknownType {
            kind,
            code: code.to_string(),
        })
}

/// The case `number`, which must be of `kind`.
pub fn case_of(store: &Store, kind: CaseKind, number: &str) -> Result<Case, CareError> {
    let case = store
        .care_case(number)?
        .ok_or_else(|| CareError::NoSuchCase(number.to_string()))?;
    if case.kind != kind {
        return Err(CareError::WrongKind(
            number.to_string(),
            case.kind.as_str(),
            kind.as_str(),
        ));
    }
    Ok(case)
}

/// Registers a case (19.2–19.3, 20.2–20.4): its number, due time from the type's SLA, routed
/// to the type's target if it has one (then it is in progress), the consumer acknowledged.
pub fn register(
    store: &Store,
    r: &Registration,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Case, CareError> {
    let ty = care_type(store, r.kind, &r.type_code)?;
    if r.description.trim().is_empty() {
        return Err(CareError::NoteNeeded("registering"));
    }
    let change = lifecycle::record_change(&ty, r.change.as_ref())?;
    if store.mdm_consumer(&r.consumer_no)?.is_none() {
        return Err(CareError::UnknownConsumer(r.consumer_no.clone()));
    }
    let meter = store
        .mdm_meters_of_consumer(
            &r.consumer_no,
            DateTime::UNIX_EPOCH,
            now + chrono::Duration::seconds(1),
        )?
        .pop()
        .ok_or_else(|| CareError::NoMeter(r.consumer_no.clone()))?
        .meter;
    let state = if ty.route.is_some() {
        store::care::CaseState::InProgress
    } else {
        store::care::CaseState::Open
    };
    let note = match &ty.route {
        Some(to) => format!("{} (routed to {to})", r.description),
        None => r.description.clone(),
    };
    let case = store.care_open(
        &NewCase {
            kind: r.kind,
            year: ist_year(now),
            consumer_no: &r.consumer_no,
            type_code: &ty.code,
            description: &r.description,
            change: change.as_ref(),
            state,
            route: ty.route.as_deref(),
            meter: &meter,
            due_at: lifecycle::due_at(now, ty.sla_hours),
        },
        &NewUpdate {
            by,
            action: "register",
            note: &note,
        },
        now,
    )?;
    route_to_target(store, &case, &ty, now)?;
    mirror(store, &case, "register", by, &note, now)?;
    notify::enqueue(
        store,
        &case.consumer_no,
        &format!("care/{}/registered", case.number),
        &Notice::CaseRegistered {
            number: case.number.clone(),
            subject: ty.name.clone(),
            due: case.due_at,
        },
        now,
    )?;
    tracing::info!(number = %case.number, consumer = %case.consumer_no, kind = ty.code, "case registered");
    Ok(case)
}

/// Does `action` to the case `number` of `kind` (19.4–19.5, 20.5–20.6): a resolution applies
/// the record change, a closure or rejection tells the consumer, a reopening routes it again.
pub fn act(
    store: &Store,
    kind: CaseKind,
    number: &str,
    action: Action,
    note: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Case, CareError> {
    let case = case_of(store, kind, number)?;
    let ty = care_type(store, kind, &case.type_code)?;
    let step = lifecycle::step(&case, &ty, action, note, now)?;
    let after = store.care_step(
        &case,
        &step.after,
        &NewUpdate {
            by,
            action: action.as_str(),
            note,
        },
        step.apply,
        now,
    )?;
    if step.route_again {
        route_to_target(store, &after, &ty, now)?;
    }
    mirror(store, &after, action.as_str(), by, note, now)?;
    let (key, notice) = match step.ending {
        None => return Ok(after),
        Some(Ending::Closed) => (
            format!("care/{}/closed/{}", after.number, after.reopened),
            Notice::CaseClosed {
                number: after.number.clone(),
                subject: ty.name.clone(),
                resolution: note.to_string(),
                at: now,
            },
        ),
        Some(Ending::Rejected) => (
            format!("care/{}/rejected", after.number),
            Notice::CaseRejected {
                number: after.number.clone(),
                subject: ty.name.clone(),
                reason: note.to_string(),
                at: now,
            },
        ),
    };
    notify::enqueue(store, &after.consumer_no, &key, &notice, now)?;
    Ok(after)
}

/// Routes `case` to its type's target, once per registration or reopening.
fn route_to_target(
    store: &Store,
    case: &Case,
    ty: &CareType,
    now: DateTime<Utc>,
) -> Result<(), CareError> {
    let Some(destination) = &case.route else {
        return Ok(());
    };
    let event = if case.reopened == 0 {
        "registered"
    } else {
        "reopened"
    };
    let payload = json!({
        "notice": format!("{}_{event}", case.kind.as_str()),
        "number": case.number,
        "consumer_no": case.consumer_no,
        "meter": case.meter.as_str(),
        "type": ty.code,
        "type_name": ty.name,
        "description": case.description,
        "due_at": case.due_at.to_rfc3339(),
        "completion": format!("POST /api/v1/{}/{}/completion", collection(case.kind), case.number),
    });
    store.mdm_route(
        &RoutedMessage {
            key: format!("{destination}/care/{}/{}", case.number, case.reopened),
            meter: case.meter.clone(),
            destination: destination.clone(),
            payload: payload.to_string(),
        },
        now,
    )?;
    Ok(())
}

/// Tells the CRM destination about a step of `case` (a utility's own CRM mirrors the desk).
fn mirror(
    store: &Store,
    case: &Case,
    action: &str,
    by: &str,
    note: &str,
    now: DateTime<Utc>,
) -> Result<(), CareError> {
    let step = store.care_updates(&case.number)?.len();
    let payload = json!({
        "notice": "case_step",
        "number": case.number,
        "kind": case.kind.as_str(),
        "consumer_no": case.consumer_no,
        "type": case.type_code,
        "action": action,
        "state": case.state.as_str(),
        "by": by,
        "note": note,
        "at": now.to_rfc3339(),
        "due_at": case.due_at.to_rfc3339(),
    });
    store.mdm_route(
        &RoutedMessage {
            key: format!("crm/care/{}/{step}", case.number),
            meter: case.meter.clone(),
            destination: "crm".into(),
            payload: payload.to_string(),
        },
        now,
    )?;
    Ok(())
}

/// Where the API keeps cases of `kind` (`/api/v1/<collection>/{number}`).
pub fn collection(kind: CaseKind) -> &'static str {
    match kind {
        CaseKind::ServiceRequest => "service-requests",
        CaseKind::Complaint => "complaints",
    }
}

/// The year in India at `t` (numbers are counted per IST year).
fn ist_year(t: DateTime<Utc>) -> i32 {
    let ist = FixedOffset::east_opt(19_800).unwrap_or_else(|| unreachable!("+05:30 is valid"));
    t.with_timezone(&ist).year()
}

//! Customer care (use cases 19 and 20), and the webhooks that let a utility's own systems take
//! over any part.
//!
//! - [`catalogue`]: the kinds of service request and natures of complaint, as data
//!   (`types/default.json`): SLA, where each is routed, what its resolution changes.
//! - [`lifecycle`]: pure: what an action does to a case (open → in progress → resolved →
//!   closed, or rejected; completion by the target; reopening within the type's days), the due
//!   time, overdue, and ageing by bucket.
//! - [`desk`]: registering a case (SRN/CRN, acknowledgement by SMS and email, routing to OMS,
//!   WFM, CIS or billing) and acting on it (the record change of a resolution, the closure
//!   notice), every step mirrored to the CRM destination.
//! - [`webhooks`]: routed messages delivered to the subscribers in `webhooks.json` as signed
//!   HTTP POSTs, with retries and a delivery state per message.

pub mod catalogue;
pub mod desk;
pub mod lifecycle;
pub mod webhooks;

use store::care::{CaseKind, CaseState, RecordField};

/// The destinations routed messages go to, each replaceable by the utility's own system.
pub const DESTINATIONS: &[&str] = &["oms", "wfm", "cis", "crm", "billing"];

/// What can go wrong in customer care.
#[derive(Debug, thiserror::Error)]
pub enum CareError {
    #[error("no {} type {code:?}", kind.as_str())]
    UnknownType { kind: CaseKind, code: String },
    #[error("no case {0}")]
    NoSuchCase(String),
    #[error("{0} is a {1}, not a {2}")]
    WrongKind(String, &'static str, &'static str),
    #[error("no consumer {0}")]
    UnknownConsumer(String),
    #[error("consumer {0} has no meter installed (routed messages name the meter)")]
    NoMeter(String),
    #[error("cannot {action} a case that is {}", state.as_str())]
    NotAllowed {
        action: &'static str,
        state: CaseState,
    },
    #[error("the case was closed more than {0} days ago; register a new one")]
    ReopenWindowPassed(u32),
    #[error("{0} needs a note")]
    NoteNeeded(&'static str),
    #[error("the change: {0}")]
    BadChange(String),
    #[error("this type changes the {0:?} record; give that change")]
    ChangeNeeded(RecordField),
    #[error("the types: {0}")]
    Catalogue(String),
    /// `webhooks.json` (or the HTTP client made from it).
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Notify(#[from] notify::NotifyError),
}

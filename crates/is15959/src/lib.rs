//! IS 15959, the Indian DLMS/COSEM companion specification, as data: the object catalogue with
//! units and access rights per association, the profiles and their capture objects, scaler/unit
//! handling, the event-code and event-status-word tables, and turning profile buffers into the
//! typed readings of [`model`].
//!
//! The tables that sources disagree on are text (`src/tables/*.txt`), parsed once and
//! replaceable with an edited copy through each table's `parse`.

pub mod association;
pub mod catalogue;
pub mod class;
pub mod events;
pub mod profile;
pub mod readings;
pub mod table;
pub mod units;

pub use association::{Association, AssociationSet};
pub use catalogue::{AccessRule, Catalogue, KindSet, ObjectDef};
pub use class::InterfaceClass;
pub use events::{EswBit, EswMap, EventCode, EventCodes};
pub use profile::{
    CaptureObject, ProfileDef, ProfileKind, Profiles, capture_objects_from_data,
    capture_objects_to_data,
};
pub use readings::{BufferReader, ReadingError, ScalerMap};
pub use table::{IdSet, TableError};
pub use units::{Decimal, ScaleError, ScalerUnit, Unit};

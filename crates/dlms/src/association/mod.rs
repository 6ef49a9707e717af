//! Client and server association state machines (sans-IO): they take bytes and `now`, and give
//! bytes and events. The server hands GET/SET/ACTION to an application's [`CosemObjects`].

use chrono::{DateTime, Utc};

use crate::apdu::{
    ActionResult, AttributeDescriptor, DataAccessResult, Mechanism, MethodDescriptor,
    SelectiveAccess,
};
use crate::data::Data;

/// Who is asking, and when: the association a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestContext {
    /// The client SAP of the association (IS 15959: 16 public, 32 reader, 48 utility,
    /// 64 push, 80 firmware).
    pub client_sap: u16,
    pub mechanism: Mechanism,
    pub now: DateTime<Utc>,
}

/// The COSEM object model a server exposes. Access rights per association are the
/// implementation's to enforce, from `ctx.client_sap`.
pub trait CosemObjects {
    fn get(
        &mut self,
        ctx: &RequestContext,
        attribute: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult>;

    fn set(
        &mut self,
        ctx: &RequestContext,
        attribute: &AttributeDescriptor,
        access: Option<&SelectiveAccess>,
        value: Data,
    ) -> Result<(), DataAccessResult>;

    /// Returns the method's return parameters, if it has any.
    fn action(
        &mut self,
        ctx: &RequestContext,
        method: &MethodDescriptor,
        parameters: Option<Data>,
    ) -> Result<Option<Data>, ActionResult>;
}

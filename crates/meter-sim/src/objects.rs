//! The COSEM object model of one meter.
use std::sync::Arc;

use crate::fleet::Shared;

#[derive(Debug, Clone)]
pub struct MeterObjects {
    shared: Arc<Shared>,
    index: u32,
}

impl MeterObjects {
    pub(crate) fn new(shared: Arc<Shared>, index: u32) -> Self {
        MeterObjects { shared, index }
    }
}

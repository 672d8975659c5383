//! What a run may reach beyond itself: the [`RunEnv`] an engine hands each of its runs.

use std::sync::Arc;

use crate::bus::Bus;
use crate::hook::Registry;
use crate::store::Store;
use crate::types::{Faults, JobDispatcher, Services};

/// The small environment a run executes in: the hook handlers, the services, where its jobs
/// go, who follows its events, its store, and the faults a test injects. A run sees this,
/// never the engine that made it.
pub(crate) struct RunEnv {
    pub(crate) registry: Registry,
    pub(crate) services: Services,
    pub(crate) dispatcher: Option<Box<dyn JobDispatcher>>,
    pub(crate) bus: Bus,
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) faults: Faults,
    /// Whether step data is recorded in the journal even without a store.
    pub(crate) record_data: bool,
    /// The worker id the runs' leases are held under, recorded when a durable run starts.
    pub(crate) worker_id: String,
    /// How large, as JSON, one recorded value may be.
    pub(crate) max_record_bytes: usize,
}

//! The runs in flight in this process.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::types::{RunId, lock};

/// The run ids in flight in this process, so that an idempotent start of a run that is not
/// in flight anywhere here resumes it instead of waiting forever.
#[derive(Default)]
pub(crate) struct InFlight {
    runs: Mutex<HashSet<RunId>>,
}

impl InFlight {
    pub(crate) fn enter(self: &Arc<Self>, run_id: RunId) -> Option<InFlightGuard> {
        lock(&self.runs).insert(run_id).then(|| InFlightGuard {
            set: Arc::clone(self),
            run_id,
        })
    }
    pub(crate) fn contains(&self, run_id: RunId) -> bool {
        lock(&self.runs).contains(&run_id)
    }
    pub(crate) fn ids(&self) -> Vec<RunId> {
        lock(&self.runs).iter().copied().collect()
    }
}

pub(crate) struct InFlightGuard {
    set: Arc<InFlight>,
    run_id: RunId,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        lock(&self.set.runs).remove(&self.run_id);
    }
}

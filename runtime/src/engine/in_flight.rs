//! The runs in flight in this process, each with the signal that asks it to cancel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::types::{CancelRequest, CancelSignal, RunId, lock};

/// The run ids in flight in this process, so that an idempotent start of a run that is not
/// in flight anywhere here resumes it instead of waiting forever, and so that a cancellation
/// reaches a run running here at its next step boundary.
#[derive(Default)]
pub(crate) struct InFlight {
    runs: Mutex<HashMap<RunId, Arc<CancelSignal>>>,
}

impl InFlight {
    pub(crate) fn enter(self: &Arc<Self>, run_id: RunId) -> Option<InFlightGuard> {
        let mut runs = lock(&self.runs);
        if runs.contains_key(&run_id) {
            return None;
        }
        let signal = Arc::new(CancelSignal::default());
        runs.insert(run_id, Arc::clone(&signal));
        Some(InFlightGuard {
            set: Arc::clone(self),
            run_id,
            signal,
        })
    }
    pub(crate) fn contains(&self, run_id: RunId) -> bool {
        lock(&self.runs).contains_key(&run_id)
    }
    pub(crate) fn ids(&self) -> Vec<RunId> {
        lock(&self.runs).keys().copied().collect()
    }

    /// Asks run `run_id` to cancel, if it is in flight here: whether it is.
    pub(crate) fn cancel(&self, run_id: RunId, request: &CancelRequest) -> bool {
        match lock(&self.runs).get(&run_id) {
            Some(signal) => {
                signal.request(request.clone());
                true
            }
            None => false,
        }
    }
}

pub(crate) struct InFlightGuard {
    set: Arc<InFlight>,
    run_id: RunId,
    signal: Arc<CancelSignal>,
}

impl InFlightGuard {
    /// The signal that asks this run to cancel.
    pub(crate) fn signal(&self) -> Arc<CancelSignal> {
        Arc::clone(&self.signal)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        lock(&self.set.runs).remove(&self.run_id);
    }
}

//! The state of one run, shared by its contexts.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::bag::Bag;
use crate::compensation::{Compensation, FailedCompensation};
use crate::context::RunId;
use crate::durable::{Durable, Replay};
use crate::engine::{EngineInner, RunOptions};
use crate::jobs::Job;
use crate::journal::{EventKind, Journal};
use crate::outcome::HookFailure;
use crate::step::BestEffortFailure;

/// What a run shares between the workflow body, its steps and its hook handlers.
pub(crate) struct RunShared {
    pub(crate) engine: Arc<EngineInner>,
    pub(crate) run_id: RunId,
    pub(crate) options: RunOptions,
    pub(crate) state: Mutex<RunState>,
    pub(crate) bag: Bag,
    pub(crate) next_position: AtomicU32,
    /// The last compensation frame handed out (0 is the run's own workflow).
    pub(crate) last_frame: AtomicU32,
    pub(crate) span: tracing::Span,
    /// The store and replay state, when the engine has a store.
    pub(crate) durable: Option<Durable>,
}

/// The mutable part of a run, behind one lock that is never held across user code.
#[derive(Default)]
pub(crate) struct RunState {
    pub(crate) journal: Journal,
    pub(crate) compensations: Vec<Compensation>,
    pub(crate) hook_errors: Vec<HookFailure>,
    pub(crate) jobs: Vec<Job>,
    pub(crate) compensation_failures: Vec<FailedCompensation>,
    pub(crate) best_effort_failures: Vec<BestEffortFailure>,
    /// The step a panic went through, set before the panic unwinds the workflow body.
    pub(crate) panicked_step: Option<&'static str>,
}

impl RunShared {
    pub(crate) fn record(&self, kind: EventKind) {
        self.push(&mut crate::lock(&self.state), kind);
    }

    /// Appends an event to the journal (whose lock the caller holds) and passes it to the
    /// run's subscribers, if the engine has any.
    pub(crate) fn push(&self, state: &mut RunState, kind: EventKind) {
        let event = state.journal.push(kind);
        self.engine.bus.publish(self.run_id, event);
    }

    pub(crate) fn next_position(&self) -> u32 {
        self.next_position.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn new_frame(&self) -> u32 {
        self.last_frame.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether step data is serialized into the journal: when asked, or for a store.
    pub(crate) fn records_data(&self) -> bool {
        self.engine.record_data || self.durable.is_some()
    }

    /// What the journal recorded at `position`, if this run is being replayed.
    pub(crate) fn replay(&self) -> Option<&Replay> {
        self.durable.as_ref()?.replay.as_ref()
    }
}

impl std::fmt::Debug for RunShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

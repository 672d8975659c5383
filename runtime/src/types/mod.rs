//! Layer 1, plain types: ids, the clock, statuses, slots, a run's options, the static
//! description of workflows and steps, errors and failures that are data, and the small
//! building blocks of a run (its bag, its services, its jobs, panic capture, the fault
//! seam). Nothing here knows of journals, stores, hooks, runs or engines.

mod actor;
mod bag;
mod cancel;
mod clock;
mod error;
mod failure;
mod fault;
mod hook_timeout;
mod id;
mod job;
mod key;
mod meta;
mod options;
mod panic;
mod policy;
mod record;
mod schedule;
mod services;
mod slot;
mod status;
mod step_entry;
mod step_result;

pub use actor::{Actor, ActorKind, Origin};
pub(crate) use bag::BagStore;
pub use bag::BagValue;
pub use cancel::CancelRequest;
pub(crate) use cancel::CancelSignal;
pub(crate) use clock::now_micros;
pub(crate) use error::HookFailed;
pub use error::{
    AdditionalDataError, BoxError, HookError, MissingService, NoStore, PanicError, Rejection,
    ReplayError, RunError, StoreError, WaitError,
};
pub use failure::{BestEffortFailure, CompensationFailure, FailedCompensation, HookFailure};
pub use fault::Fault;
#[cfg(feature = "testing")]
pub use fault::FaultPlan;
pub(crate) use fault::Faults;
pub use hook_timeout::HandlerTimeout;
pub use id::RunId;
pub(crate) use id::default_worker_id;
pub use job::{Job, JobDispatcher};
pub(crate) use key::{Key, KeyText};
pub use meta::{BodyCall, HookKind, HookMeta, StepMeta, WorkflowMeta};
pub use options::RunOptions;
pub use panic::{CatchUnwind, Panic};
pub(crate) use panic::{message, message_of};
pub use policy::{RetryPolicy, StepTimeout};
pub use record::{DEFAULT_MAX_RECORD_BYTES, MAX_DEPTH, RecordError, RecordedJson, ToRecord};
pub(crate) use record::{check_value, to_json_text, to_json_value, to_record, to_recorded_json};
pub use schedule::{CatchUp, Overlap, Spec, SpecError};
pub(crate) use services::Services;
pub use slot::Slot;
pub use status::{RunStatus, StoredStatus};
pub use step_entry::StepEntry;
pub(crate) use step_result::to_json;
pub use step_result::{StepData, StepFuture, StepResponse};

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex of the runtime. No lock is held while user code runs, so a poisoned lock
/// only means a panic elsewhere was caught; the data is still consistent.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A boxed, `Send` future, as stores and type-erased handlers return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

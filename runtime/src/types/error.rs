//! Error types of the runtime. Each carries enough context to say what failed and where.

use std::fmt;

use crate::types::{RecordError, RunId, Slot};

/// A boxed error, as hook handlers and compensations may return any error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A hook handler failed (returned an error or panicked).
///
/// A `before` or `step` hook returns it from `ctx.hook(...)`: propagate it with `?` to abort
/// the run (your workflow's error type needs `From<HookError>`). A failing `after` handler
/// never aborts: it is recorded in [`Outcome::hook_errors`](crate::Outcome::hook_errors).
///
/// One pointer wide (its fields are boxed): a `Result<T, HookError>` is hardly larger than
/// `T`, and a hook point without handlers returns its payload in one.
#[derive(thiserror::Error)]
#[error(transparent)]
pub struct HookError(Box<HookFailed>);

/// What a [`HookError`] says.
#[derive(Debug, thiserror::Error)]
#[error("hook `{workflow}.{hook}`: handler `{handler}` ({slot} slot) failed: {source}")]
pub(crate) struct HookFailed {
    pub(crate) workflow: &'static str,
    pub(crate) hook: &'static str,
    pub(crate) slot: Slot,
    pub(crate) handler: &'static str,
    #[source]
    pub(crate) source: BoxError,
}

impl From<HookFailed> for HookError {
    #[cold]
    fn from(failed: HookFailed) -> Self {
        HookError(Box::new(failed))
    }
}

impl fmt::Debug for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HookFailed {
            workflow,
            hook,
            slot,
            handler,
            source,
        } = &*self.0;
        f.debug_struct("HookError")
            .field("workflow", workflow)
            .field("hook", hook)
            .field("slot", slot)
            .field("handler", handler)
            .field("source", source)
            .finish()
    }
}

impl HookError {
    /// The workflow the hook belongs to.
    pub fn workflow(&self) -> &'static str {
        self.0.workflow
    }
    /// The hook's name, as declared in `#[workflow(hooks(...))]`.
    pub fn hook(&self) -> &'static str {
        self.0.hook
    }
    /// The slot of the handler that failed.
    pub fn slot(&self) -> Slot {
        self.0.slot
    }
    /// The handler's name (its function path).
    pub fn handler(&self) -> &'static str {
        self.0.handler
    }
    /// The handler's own error.
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0.source
    }
    /// Whether the handler panicked rather than returned an error.
    pub fn is_panic(&self) -> bool {
        self.0.source.is::<PanicError>()
    }
}

/// A panic inside user code, turned into an error that carries its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("panicked: {message}")]
pub struct PanicError {
    pub(crate) message: String,
}

impl PanicError {
    /// The panic's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// `ctx.service::<T>()` found no service of type `T` on the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no service of type `{type_name}` is registered on the engine; add it with `Engine::builder().service(...)`"
)]
pub struct MissingService {
    pub(crate) type_name: &'static str,
}

impl MissingService {
    /// The name of the missing type.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
}

/// The run's additional data could not be read as the requested type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdditionalDataError {
    /// The run was started without additional data.
    #[error("the run has no additional data (expected `{type_name}`)")]
    Missing {
        /// The type that was requested.
        type_name: &'static str,
    },
    /// The data does not match the requested type.
    #[error("invalid additional data at `{path}`: {message} (expected `{type_name}`)")]
    Invalid {
        /// The type that was requested.
        type_name: &'static str,
        /// Where in the data the problem is, e.g. `loyalty.points` or `items[2].sku`.
        path: String,
        /// What is wrong there.
        message: String,
    },
}

impl AdditionalDataError {
    /// The path of the bad field (`.` for the root), if the data was present.
    pub fn path(&self) -> Option<&str> {
        match self {
            AdditionalDataError::Missing { .. } => None,
            AdditionalDataError::Invalid { path, .. } => Some(path),
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError<E> {
    /// The workflow body returned an error (a step's error, a before-hook's abort, ...).
    #[error("{0}")]
    Failed(E),
    /// User code panicked: a step or the workflow body.
    #[error("{}", PanicAt(.step.as_deref(), .message))]
    Panicked {
        /// The step that panicked, if the panic was inside a step.
        step: Option<String>,
        /// The panic's message.
        message: String,
    },
    /// The run had failed before it was resumed from its journal; this is the recorded
    /// error (the workflow's own error type cannot be rebuilt from a journal).
    #[error("{message}")]
    Recorded {
        /// The recorded error.
        message: String,
    },
    /// The journal could not be replayed: the run is parked.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The store failed: the run stopped and is still `running` in the store, to be resumed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value the run made cannot be recorded (nested too deep, too large, or refused by
    /// the store): the run is parked where it made it, to be resumed after a fix
    /// ([`Engine::resume`](crate::Engine::resume); a larger
    /// [`max_record_bytes`](crate::EngineBuilder::max_record_bytes), a smaller value).
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The run was refused before it started: nothing of it ran.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The run waits for an event or a timer ([`RunStatus::Waiting`](crate::RunStatus)): it
    /// is suspended in the store and goes on when it is woken; this is not a failure.
    #[error("the run {what}")]
    Waiting {
        /// What it waits for: "waits for event `payment_captured`", "sleeps until ...".
        what: String,
    },
    /// The run was cancelled ([`Engine::cancel`](crate::Engine::cancel), or its deadline
    /// passed): it stopped at a step boundary or a wait, and its completed steps were undone.
    #[error("cancelled: {reason}")]
    Cancelled {
        /// Why.
        reason: String,
    },
    /// A [`FaultPlan`](crate::testing::FaultPlan) made a step fail (feature `testing`).
    #[cfg(feature = "testing")]
    #[error("step `{step}` failed: {message}")]
    Injected {
        /// The step.
        step: String,
        /// The fault.
        message: String,
    },
}

impl<E> RunError<E> {
    /// The workflow's own error, if the body returned one.
    pub fn as_failed(&self) -> Option<&E> {
        match self {
            RunError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

struct PanicAt<'a>(Option<&'a str>, &'a String);

impl fmt::Display for PanicAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(step) => write!(f, "step `{step}` panicked: {}", self.1),
            None => write!(f, "workflow body panicked: {}", self.1),
        }
    }
}

/// Why a resumed run could not be replayed. The run is parked, with this error, and can be
/// resumed after a fix ([`Engine::resume`](crate::Engine::resume)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The body called another step than the journal recorded at this position: the
    /// workflow's code changed, or it is not deterministic.
    #[error(
        "replay mismatch at step #{position}: the journal recorded `{recorded}`, the workflow now calls `{called}`"
    )]
    Mismatch {
        /// The step's position.
        position: u32,
        /// The step the journal recorded there.
        recorded: String,
        /// The step the body called.
        called: String,
    },
    /// A recorded output or compensation data no longer deserializes as the step's type.
    #[error("the recorded data of step `{step}` #{position} does not match its type: {message}")]
    Corrupt {
        /// The step.
        step: String,
        /// Its position.
        position: u32,
        /// The deserialization error.
        message: String,
    },
    /// A hook's handlers are not the ones the journal recorded for this firing (a plugin was
    /// added or removed, or a handler renamed, between the crash and the resume): a resumed
    /// run replays the handlers it ran, so it is parked rather than run with others.
    #[error(
        "replay mismatch at hook `{hook}` (firing #{firing}): the journal recorded the handlers {recorded:?}, the engine now has {now:?}; register the same handlers to resume the run"
    )]
    HandlersChanged {
        /// The hook.
        hook: String,
        /// Its firing in the run.
        firing: u32,
        /// The handlers recorded, in run order.
        recorded: Vec<String>,
        /// The handlers registered now, in run order.
        now: Vec<String>,
    },
    /// The recorded input no longer deserializes as the workflow's input type.
    #[error("the recorded input does not match the workflow's input type: {0}")]
    Input(String),
    /// A step had failed before the run was resumed and the body went on, but its error
    /// cannot be given back to the body: the error type is not `Serialize + Deserialize`, or
    /// the recorded value no longer deserializes. Running the step again instead would be a
    /// silent re-execution.
    #[error(
        "step `{step}` #{position} failed before the run was resumed and its error cannot be replayed: {reason}; make the step's error type Serialize + Deserialize to let a resumed run replay a handled failure"
    )]
    UnreplayableFailure {
        /// The step.
        step: String,
        /// Its position.
        position: u32,
        /// Why its error cannot be rebuilt (with the recorded message).
        reason: String,
    },
}

/// A store failed, or what it holds cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be opened or written (a missing directory, a read-only file, a full
    /// disk, a database that is down).
    #[error("store unavailable: {context}: {message}")]
    Unavailable {
        /// What the store was doing.
        context: String,
        /// The driver's error.
        message: String,
    },
    /// A stored row cannot be read: corrupt, or written by an incompatible version.
    #[error("corrupt record in run {run_id}: {message}")]
    Corrupt {
        /// The run.
        run_id: String,
        /// What is wrong.
        message: String,
    },
    /// The database was written by a newer hookflow.
    #[error("the store's schema version {found} is newer than this hookflow's ({supported})")]
    IncompatibleSchema {
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// No such run.
    #[error("no run {0} in the store")]
    NotFound(RunId),
    /// A write under a lease that is no longer the run's: the lease lapsed and another
    /// worker claimed the run (it resumes it by replay), or the run was released. Nothing of
    /// the write was recorded.
    #[error(
        "run {run_id}: lease {fence} was lost (the run's lease is now generation {current}): another worker took the run over"
    )]
    Fenced {
        /// The run.
        run_id: RunId,
        /// The generation the write was made under.
        fence: u64,
        /// The run's generation now.
        current: u64,
    },
    /// What was opened is not a hookflow store (another application's database, an empty
    /// file): a read-only open never writes to it, and a read-write open refuses to turn it
    /// into one.
    #[error("not a hookflow store: {reason}")]
    NotAStore {
        /// What was found instead.
        reason: String,
    },
    /// The store's schema is older than this hookflow's, and the store was opened read-only,
    /// which never migrates.
    #[error(
        "the store's schema version {found} is older than this hookflow's ({supported}) and a read-only store does not migrate it: open it once for writing (an engine over it) to migrate it"
    )]
    SchemaOutdated {
        /// The version found.
        found: i64,
        /// The version this build reads.
        supported: i64,
    },
    /// A write to a store opened read-only: nothing was written.
    #[error("the store was opened read-only: cannot {context}")]
    ReadOnly {
        /// The write that was refused.
        context: String,
    },
    /// The database server accepted the connection (or was being connected to) and did not
    /// answer within the connect timeout.
    #[error(
        "store unavailable: {context}: the server did not answer within {}",
        Seconds(*.timeout)
    )]
    NoAnswer {
        /// What the store was doing.
        context: String,
        /// How long it waited.
        timeout: std::time::Duration,
    },
    /// The store refused a write for good: a value too large for it (SQLite's
    /// `SQLITE_TOOBIG`, "string or blob too big"; PostgreSQL's 1 GB limit on a value) or not
    /// valid for it (a SQLite constraint or type error; a PostgreSQL data exception, SQLSTATE
    /// class 22, or 54000 `program_limit_exceeded`). Nothing of the write was recorded, and
    /// writing it again cannot succeed, unlike [`StoreError::Unavailable`]: a run whose commit
    /// is refused is parked ([`RecordError::Refused`]), and a start is rejected.
    #[error("the store refused to {context}: {message}")]
    Refused {
        /// What the store was doing.
        context: String,
        /// The driver's error.
        message: String,
    },
    /// The store does not do what was asked: a store implemented outside hookflow that keeps
    /// no schedules (the [`Store`](crate::store::Store) trait's default for them).
    #[error("this store cannot {context}: it does not implement it")]
    Unsupported {
        /// What was asked.
        context: String,
    },
}

impl StoreError {
    /// Whether the store refused the write for good ([`StoreError::Refused`]): the data is
    /// what it cannot hold, and trying again would fail again. Every other error is
    /// transient for a run (a store that is down or locked, a lease lost): the run stops
    /// `Interrupted`, still running in the store, to be resumed.
    pub fn is_refused(&self) -> bool {
        matches!(self, StoreError::Refused { .. })
    }
}

/// A timeout as people write it: `10 s`, `1.5 s`, `250 ms`.
struct Seconds(std::time::Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{} s", d.as_secs())
        } else if d < std::time::Duration::from_secs(1) {
            write!(f, "{} ms", d.as_millis())
        } else {
            write!(f, "{:.1} s", d.as_secs_f64())
        }
    }
}

/// Why a run was refused before it started ([`RunStatus::Rejected`](crate::RunStatus)):
/// nothing of it ran, and no record was written for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Its input or additional data cannot be recorded.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A run with the id it asked for ([`RunOptions::run_id`](crate::RunOptions::run_id))
    /// exists: the new run was not recorded, and the existing one was left as it was.
    #[error("run id {run_id} is taken: a run with this id exists, and it was left as it was")]
    RunIdTaken {
        /// The id asked for.
        run_id: RunId,
    },
    /// Its idempotency key is held by a run that was started with another input (or of
    /// another workflow): a key names one request, and this is another. Nothing was recorded.
    /// The same key with the same input gives back the run that holds it.
    #[error(
        "idempotency key `{key}` is held by run {run_id}, which was started with another input or is of another workflow: nothing was recorded (a new request needs a new key)"
    )]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The run that holds it.
        run_id: RunId,
    },
    /// Its workflow declares the type of its additional data
    /// (`#[workflow(additional_data = T)]`), and the run's is missing or not a `T` (the error
    /// names the bad field's path). Nothing was recorded and no step ran.
    #[error(transparent)]
    AdditionalData(#[from] AdditionalDataError),
}

/// The engine has no store, and what was asked needs one (enqueueing, resuming, a worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the engine has no store: build it with `Engine::builder().store(...)`")]
pub struct NoStore;

/// Why `ctx.wait` did not give the body its event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The event was sent as a failure ([`Engine::fail`](crate::Engine::fail), Medusa's
    /// `setStepFailure`): the body gets this error, and a `?` fails and compensates the run.
    #[error("event `{event}` failed: {error}")]
    Failed {
        /// The event.
        event: String,
        /// What the sender said.
        error: String,
    },
    /// The engine has no store: a run can wait for an event only in a store, where the event
    /// is delivered to it (and where it is kept while the run is suspended).
    #[error("cannot wait for event `{event}`: the engine has no store to deliver it through")]
    NoStore {
        /// The event.
        event: String,
    },
    /// The event's payload, as delivered, is not of the type the workflow declares for it
    /// (it was sent by hand, or by an older version of the workflow).
    #[error("event `{event}` has a payload this workflow cannot read: {message}")]
    Payload {
        /// The event.
        event: String,
        /// Why it does not parse.
        message: String,
    },
}

impl HookError {
    /// Whether the handler ran past its time limit (its
    /// [`source_error`](HookError::source_error) is then a
    /// [`HandlerTimeout`](crate::HandlerTimeout)). A resumed run that replays a recorded
    /// timeout has its message only, and this is `false`.
    pub fn is_timeout(&self) -> bool {
        self.0.source.is::<super::HandlerTimeout>()
    }
}

#[cfg(test)]
mod tests {
    use super::{HookError, HookFailed, PanicError, Slot};

    #[test]
    fn a_hook_error_is_one_pointer_wide() {
        assert_eq!(size_of::<HookError>(), size_of::<usize>());
        // What a `before<u64>` firing returns: the payload and a pointer.
        assert_eq!(size_of::<Result<u64, HookError>>(), 2 * size_of::<usize>());
    }

    #[test]
    fn a_boxed_hook_error_says_what_it_said() {
        let error = HookError::from(HookFailed {
            workflow: "checkout",
            hook: "validate",
            slot: Slot::Configured,
            handler: "check_minimum",
            source: Box::new(PanicError {
                message: "boom".to_owned(),
            }),
        });
        assert_eq!(
            error.to_string(),
            "hook `checkout.validate`: handler `check_minimum` (configured slot) failed: panicked: boom"
        );
        assert!(error.is_panic());
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("panicked: boom"));
        assert!(format!("{error:?}").starts_with("HookError { workflow: \"checkout\""));
    }
}

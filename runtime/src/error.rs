//! Error types of the runtime. Each carries enough context to say what failed and where.

use std::fmt;

use crate::hook::Slot;

/// A boxed error, as hook handlers and compensations may return any error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A hook handler failed (returned an error or panicked).
///
/// A `before` or `step` hook returns it from `ctx.hook(...)`: propagate it with `?` to abort
/// the run (your workflow's error type needs `From<HookError>`). A failing `after` handler
/// never aborts: it is recorded in [`Outcome::hook_errors`](crate::Outcome::hook_errors).
#[derive(Debug, thiserror::Error)]
#[error("hook `{workflow}.{hook}`: handler `{handler}` ({slot} slot) failed: {source}")]
pub struct HookError {
    pub(crate) workflow: &'static str,
    pub(crate) hook: &'static str,
    pub(crate) slot: Slot,
    pub(crate) handler: &'static str,
    #[source]
    pub(crate) source: BoxError,
}

impl HookError {
    /// The workflow the hook belongs to.
    pub fn workflow(&self) -> &'static str {
        self.workflow
    }
    /// The hook's name, as declared in `#[workflow(hooks(...))]`.
    pub fn hook(&self) -> &'static str {
        self.hook
    }
    /// The slot of the handler that failed.
    pub fn slot(&self) -> Slot {
        self.slot
    }
    /// The handler's name (its function path).
    pub fn handler(&self) -> &'static str {
        self.handler
    }
    /// The handler's own error.
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }
    /// Whether the handler panicked rather than returned an error.
    pub fn is_panic(&self) -> bool {
        self.source.is::<PanicError>()
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
    Replay(#[from] crate::durable::ReplayError),
    /// The store failed: the run stopped and is still `running` in the store, to be resumed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A [`FaultPlan`](crate::testing::FaultPlan) made a step fail.
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

//! [`FailedAt`]: where a failed run failed, read from its journal.

use std::fmt;

use crate::journal::{Event, EventKind, WaitOutcome};
use crate::types::{HookKind, Slot, WorkflowMeta};

/// Where a failed run failed ([`Outcome::failed_at`](crate::Outcome::failed_at)).
///
/// Read from the run's journal, so a resumed or replayed run, and the recorded outcome of a
/// run that had ended, report the same place as the run that failed. It is the last failure
/// the journal recorded before the run failed: a failure that the body handled before it
/// failed otherwise (returned its own error) is reported too, as the journal cannot tell.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailedAt {
    /// A step failed (returned an error, panicked, timed out or used up its retries); a
    /// best-effort step never fails the run.
    Step {
        /// The step's name.
        name: String,
        /// Its position in the run.
        position: u32,
    },
    /// A handler of a `before` hook (or a `step` hook) failed, and the run was aborted.
    /// (The plugin that registered the handler is not journaled: see
    /// [`HookError`](crate::HookError), which the body got, for it.)
    Hook {
        /// The hook's name.
        hook: String,
        /// The handler's name.
        handler: String,
        /// The handler's slot.
        slot: Slot,
        /// Which firing of the run's hooks it was, from 0.
        firing: u32,
    },
    /// An event the body waited for was sent as a failure
    /// ([`Engine::fail`](crate::Engine::fail)).
    Wait {
        /// The wait's position in the run.
        position: u32,
        /// What the sender said.
        error: String,
    },
    /// A nested workflow failed, at `at` (inside it).
    Nested {
        /// The nested workflow's name.
        workflow: String,
        /// Where it failed.
        at: Box<FailedAt>,
    },
    /// The run was cancelled ([`Engine::cancel`](crate::Engine::cancel), or its deadline).
    Cancelled {
        /// Why.
        reason: String,
    },
    /// The body returned an error of its own, after no failure the journal recorded.
    Body,
    /// The run was refused before it started ([`RunStatus::Rejected`](crate::RunStatus)):
    /// nothing of it ran.
    Start,
}

impl fmt::Display for FailedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailedAt::Step { name, position } => write!(f, "step `{name}` (position {position})"),
            FailedAt::Hook {
                hook,
                handler,
                slot,
                ..
            } => write!(f, "hook `{hook}`, handler `{handler}` ({slot} slot)"),
            FailedAt::Wait { position, error } => {
                write!(f, "the wait at position {position}: {error}")
            }
            FailedAt::Nested { workflow, at } => write!(f, "nested workflow `{workflow}`, {at}"),
            FailedAt::Cancelled { reason } => write!(f, "cancelled: {reason}"),
            FailedAt::Body => f.write_str("the workflow body"),
            FailedAt::Start => f.write_str("before the start"),
        }
    }
}

/// Where the run whose journal is `events` failed, if it failed: `None` when the journal
/// records no failure of the run (no `RunFailed` or `RunCancelled`). `meta` tells a failed
/// `after` handler (recorded, not a failure of the run) from an aborting one.
pub(crate) fn locate(events: &[Event], meta: &WorkflowMeta) -> Option<FailedAt> {
    for (i, event) in events.iter().enumerate() {
        match &event.kind {
            EventKind::RunFailed { .. } => return Some(cause(&events[..i], Some(meta))),
            EventKind::RunCancelled { reason, .. } => {
                return Some(FailedAt::Cancelled {
                    reason: reason.clone(),
                });
            }
            _ => {}
        }
    }
    None
}

/// The last failure in `events` (the events before the run, or a nested workflow, failed).
/// Without `meta` (a nested workflow's hooks), every failed handler counts.
fn cause(events: &[Event], meta: Option<&WorkflowMeta>) -> FailedAt {
    for (i, event) in events.iter().enumerate().rev() {
        match &event.kind {
            EventKind::StepFailed {
                step,
                position,
                failure,
            } if !failure.best_effort => {
                return FailedAt::Step {
                    name: step.to_string(),
                    position: *position,
                };
            }
            EventKind::HookHandlerFailed {
                hook,
                slot,
                handler,
                failure,
            } if !is_after(meta, hook) => {
                return FailedAt::Hook {
                    hook: hook.to_string(),
                    handler: handler.to_string(),
                    slot: *slot,
                    firing: failure.firing,
                };
            }
            EventKind::WaitEnded { position, outcome } => {
                if let WaitOutcome::Failed { error, .. } = &**outcome {
                    return FailedAt::Wait {
                        position: *position,
                        error: error.clone(),
                    };
                }
            }
            EventKind::NestedEnded {
                workflow,
                frame,
                completed: false,
            } => {
                let start = events[..i]
                    .iter()
                    .rposition(|e| {
                        matches!(e.kind, EventKind::NestedStarted { frame: f, .. } if f == *frame)
                    })
                    .map_or(0, |s| s + 1);
                return FailedAt::Nested {
                    workflow: workflow.to_string(),
                    at: Box::new(cause(&events[start..i], None)),
                };
            }
            _ => {}
        }
    }
    FailedAt::Body
}

/// Whether `hook` is one of `meta`'s `after` hooks (whose failed handlers do not fail a run).
fn is_after(meta: Option<&WorkflowMeta>, hook: &str) -> bool {
    meta.is_some_and(|meta| {
        meta.hooks()
            .iter()
            .any(|h| h.name() == hook && h.kind() == HookKind::After)
    })
}

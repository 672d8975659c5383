//! What went wrong in a run without ending it, or while undoing it: failed `after` handlers,
//! failed best-effort steps, failed compensations. Plain data, recorded in the outcome.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{RunId, Slot};

/// An `after` hook handler (or an `on_compensation_failed` handler) that failed. Recorded,
/// never rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    /// The hook.
    pub hook: &'static str,
    /// The handler's slot.
    pub slot: Slot,
    /// The handler's name.
    pub handler: &'static str,
    /// The plugin that registered the handler, if one did.
    pub plugin: Option<String>,
    /// The error or panic message.
    pub error: String,
    /// Whether the handler panicked.
    pub panicked: bool,
}

impl fmt::Display for HookFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hook `{}`: handler `{}` ({} slot",
            self.hook, self.handler, self.slot
        )?;
        if let Some(plugin) = &self.plugin {
            write!(f, ", plugin `{plugin}`")?;
        }
        write!(f, ") failed: {}", self.error)
    }
}

/// A best-effort step that failed; the workflow went on without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BestEffortFailure {
    /// The step.
    pub step: String,
    /// Its position in the run.
    pub position: u32,
    /// The error or panic message.
    pub error: String,
    /// Whether it panicked.
    pub panicked: bool,
}

/// A compensation that failed (returned an error or panicked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCompensation {
    /// The step it should have undone.
    pub step: String,
    /// That step's position in the run.
    pub position: u32,
    /// The compensation's error or panic message.
    pub error: String,
    /// Whether it panicked.
    pub panicked: bool,
}

/// What an `on_compensation_failed` handler receives: a run failed and some of its undo
/// failed too, so it needs attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationFailure {
    /// The workflow.
    pub workflow: String,
    /// The run.
    pub run_id: RunId,
    /// Why the run failed.
    pub cause: String,
    /// The compensations that failed, in the order they ran.
    pub failed: Vec<FailedCompensation>,
}

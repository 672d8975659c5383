#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub use hookflow_runtime::*;

/// Turns an `async fn` into a workflow with typed hooks.
///
/// See the crate documentation.
pub use hookflow_macros::workflow;

/// Turns an `async fn` into a step with an optional compensation.
///
/// See the crate documentation.
pub use hookflow_macros::step;

/// Everything a workflow module needs: `use hookflow::prelude::*;`.
pub mod prelude {
    pub use hookflow_macros::{step, workflow};
    pub use hookflow_runtime::{
        Actor, Engine, HookContext, HookError, Hooks, Origin, Outcome, Plugin, RunOptions,
        RunStatus, StepContext, StepResponse, Workflow, WorkflowContext,
    };
}

#[doc(hidden)]
pub use hookflow_runtime::__private;

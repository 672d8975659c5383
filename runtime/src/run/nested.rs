//! Nested workflows: a workflow called from another's body as one step
//! (`Refund::call(ctx, input)`).
//!
//! The child shares the parent's run: its journal, bag, services, actor and additional data;
//! it fires its own hooks. Its steps' compensations are kept in a frame of their own:
//! - if the child fails, its completed steps are compensated at once, as a unit, before the
//!   error reaches the parent (which may handle it and go on);
//! - if the child completes, its compensations join the parent's frame, so that if the
//!   parent fails later, the child's steps are undone with the parent's, in reverse order.

use tracing::Instrument;

use super::compensate::{Scope, compensate};
use super::halt::stop;
use crate::context::WorkflowContext;
use crate::journal::EventKind;
use crate::types::CatchUnwind;
use crate::workflow::Workflow;

/// Runs workflow `W` inside the run of `parent`: what `Workflow::call` does.
pub async fn call<W: Workflow>(
    parent: &WorkflowContext,
    input: W::Input,
) -> Result<W::Output, W::Error> {
    let run = parent.shared();
    let frame = run.new_frame();
    let child = WorkflowContext::for_workflow::<W>(parent.rc.clone(), frame);
    let workflow = W::META.name();
    run.record(EventKind::NestedStarted {
        workflow: workflow.into(),
        frame,
    });
    let span = W::__nested_span(frame);
    let outcome = CatchUnwind::new(W::execute(&child, input))
        .instrument(span)
        .await;
    let ended = |completed: bool| EventKind::NestedEnded {
        workflow: workflow.into(),
        frame,
        completed,
    };
    match outcome {
        Ok(Ok(output)) => {
            let mut state = run.state.lock();
            for entry in state.compensations.iter_mut().filter(|c| c.frame == frame) {
                entry.frame = parent.frame;
            }
            run.push(&mut state, ended(true));
            Ok(output)
        }
        Ok(Err(err)) => {
            if let Err(failed) = compensate(&child, Scope::Frame(frame)).await {
                return stop(run, failed.into()).await;
            }
            run.record(ended(false));
            Err(err)
        }
        Err(panic) => {
            // The parent fails too; its compensation undoes this frame with the rest.
            run.record(ended(false));
            panic.resume()
        }
    }
}

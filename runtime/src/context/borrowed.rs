//! A step's context that borrows its run from the workflow context it was made from, instead
//! of holding a count of its own on the run's `Arc`: two atomic read-modify-writes a step
//! less (the count taken when the step starts and given back when it ends).

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use super::{RunContext, StepContext, WorkflowContext, Writer};

/// A [`StepContext`] that lives no longer than the [`WorkflowContext`] it was made from
/// (`'w`), whose `Arc` keeps the run alive meanwhile. Its own `Arc` of the run holds no count
/// and is never dropped; a clone of its [`RunContext`] takes a count of its own, as any.
pub(crate) struct BorrowedStepContext<'w> {
    ctx: ManuallyDrop<StepContext>,
    _wf: PhantomData<&'w ()>,
}

// What a `StepContext` holds besides the run's `Arc` has nothing to drop: forgetting it (the
// `ManuallyDrop`) forgets only the `Arc`, which holds no count.
const _: () = assert!(!std::mem::needs_drop::<Writer>());

impl<'w> BorrowedStepContext<'w> {
    /// The context of step `step` at `position` (of its compensation if `compensating`),
    /// writing as `writer`, in `wf`'s run.
    #[inline]
    pub(crate) fn new(
        wf: &'w WorkflowContext,
        writer: Writer,
        step: &'static str,
        position: u32,
        compensating: bool,
    ) -> Self {
        let workflow = wf.rc.workflow;
        // SAFETY: the pointer is the one `wf.rc.run` holds, from `Arc::new`. The `Arc` made
        // from it takes no count: it goes straight into a `ManuallyDrop` (nothing between can
        // panic) and is never dropped, so it never gives back a count it did not take. While
        // `self` lives (no longer than `'w`), `wf` holds its own count, so the run is alive.
        let run = unsafe { Arc::from_raw(Arc::as_ptr(&wf.rc.run)) };
        BorrowedStepContext {
            ctx: ManuallyDrop::new(StepContext {
                rc: RunContext {
                    run,
                    workflow,
                    writer,
                },
                step,
                position,
                attempt: AtomicU32::new(1),
                compensating,
            }),
            _wf: PhantomData,
        }
    }
}

impl Deref for BorrowedStepContext<'_> {
    type Target = StepContext;

    #[inline]
    fn deref(&self) -> &StepContext {
        &self.ctx
    }
}

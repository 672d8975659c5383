//! A run's future in the run's span: what `tracing::Instrument` does, with the span the run's
//! shared state holds (the one [`RunContext::span`](crate::context::RunContext::span) gives)
//! instead of a clone of it beside the future.
//!
//! Per run that is one span clone and one close less for the subscriber, and a pointer in
//! the run's future instead of a span (8 bytes, not 40). A run whose span is disabled (no
//! subscriber wants it, and no `log` fallback) holds no pointer: no reference count taken
//! and given back (two atomic operations a run). A run dropped before its end drops its future in the span; a
//! finished one (whose future holds nothing) does not enter the span again to be dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use crate::context::RunShared;

pin_project_lite::pin_project! {
    /// The run's future, until it is done.
    #[project = SlotProj]
    enum Slot<F> {
        Running { #[pin] fut: F },
        Done,
    }
}

pin_project_lite::pin_project! {
    /// `fut`, polled and dropped in `run`'s span.
    pub(crate) struct InRunSpan<F> {
        // `None` when entering the run's span does nothing (see `span_of`).
        run: Option<Arc<RunShared>>,
        // Whether `fut` returned: a finished future is not dropped in the span.
        done: bool,
        #[pin]
        slot: Slot<F>,
    }

    impl<F> PinnedDrop for InRunSpan<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // A run dropped before its end (cancelled, halted, its task aborted): what its
            // future drops (the step in flight, the body's locals) is dropped in the span.
            if let (false, Some(run)) = (*this.done, this.run.as_ref()) {
                let _entered = run.span.enter();
                this.slot.set(Slot::Done);
            }
        }
    }
}

impl<F> InRunSpan<F> {
    /// `fut` in the span of `run`: `run` is [`span_of`]'s.
    pub(crate) fn new(run: Option<Arc<RunShared>>, fut: F) -> Self {
        InRunSpan {
            run,
            done: false,
            slot: Slot::Running { fut },
        }
    }
}

/// What [`InRunSpan`] holds of `run`: the run, if entering its span can do anything. A
/// span made with no subscriber wanting it has no metadata either, unless `tracing`'s `log`
/// feature may log its entering and exiting in its stead: then it is entered as before.
pub(crate) fn span_of(run: &Arc<RunShared>) -> Option<Arc<RunShared>> {
    run.span.metadata().is_some().then(|| Arc::clone(run))
}

impl<F: Future> Future for InRunSpan<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Polled again after its end: nothing more comes. (Only the drop empties the slot.)
        let SlotProj::Running { fut } = this.slot.project() else {
            return Poll::Pending;
        };
        if *this.done {
            return Poll::Pending;
        }
        let _entered = this.run.as_ref().map(|run| run.span.enter());
        let output = ready!(fut.poll(cx));
        *this.done = true;
        Poll::Ready(output)
    }
}

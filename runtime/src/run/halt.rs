//! Stopping a run without unwinding.
//!
//! Code that finds that its run must stop (a commit the store refused, a body that does not
//! match its journal, a run that replayed up to its recorded failure) records why with
//! [`stop`] and never resolves. The run's driver polls the body through [`UntilHalted`],
//! which looks at the run after every poll: once it is halted, the body is dropped, whatever
//! it was doing (its sibling branches included), and the run ends by its halt. Nothing
//! unwinds, so `catch_unwind` only ever sees user panics, and a program built with
//! `panic = "abort"` survives a store outage.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::{Halt, RunShared};

/// Stops the run for `halt` (unless it stopped already) and never resolves.
pub(crate) async fn stop<T>(run: &RunShared, halt: Halt) -> T {
    run.halt(halt);
    halted().await
}

/// What code whose run has halted awaits: it never resolves, and the run's driver drops it.
pub(crate) fn halted<T>() -> std::future::Pending<T> {
    std::future::pending()
}

pin_project_lite::pin_project! {
    /// Polls a run's body until it ends, or until the run halts.
    pub(crate) struct UntilHalted<'a, F> {
        run: &'a RunShared,
        #[pin]
        body: F,
    }
}

impl<'a, F> UntilHalted<'a, F> {
    pub(crate) fn new(run: &'a RunShared, body: F) -> Self {
        UntilHalted { run, body }
    }
}

impl<F: Future> Future for UntilHalted<'_, F> {
    type Output = Result<F::Output, Halt>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let run = *this.run;
        let polled = super::scope::polling(run, || this.body.poll(cx));
        // A halt wins over whatever the body did in the same poll.
        if let Some(halt) = this.run.take_halt() {
            return Poll::Ready(Err(halt));
        }
        polled.map(Ok)
    }
}

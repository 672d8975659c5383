//! The future of a run started in place ([`Engine::run_with`](crate::Engine::run_with)): it
//! holds what the run starts with, and starts the run when it is first polled.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// A run that begins at its first poll: until then it holds `start` (the engine, the
    /// input, the options: what makes the run's future), then the run's future in the same
    /// place. A future that is never polled starts nothing.
    ///
    /// An `async fn` would keep its arguments beside the future they are moved into for as
    /// long as it runs; this keeps one or the other.
    #[project = BeginProj]
    pub(crate) enum Begin<S, F> {
        Start { start: Option<S> },
        Running { #[pin] run: F },
    }
}

impl<S, F> Begin<S, F> {
    /// A run that `start` makes when first polled.
    pub(crate) fn new(start: S) -> Self {
        Begin::Start { start: Some(start) }
    }
}

impl<S: FnOnce() -> F, F: Future> Future for Begin<S, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let BeginProj::Start { start } = self.as_mut().project() {
            match start.take() {
                Some(start) => {
                    let run = start();
                    self.set(Begin::Running { run });
                }
                // Only a start that panicked leaves nothing to start: it is over.
                None => return Poll::Pending,
            }
        }
        match self.project() {
            BeginProj::Running { run } => run.poll(cx),
            BeginProj::Start { .. } => Poll::Pending,
        }
    }
}

pin_project_lite::pin_project! {
    /// What a run's start made of it: its outcome at once (refused before it began), its
    /// future (a run without a store, run in place), or the boxed future of a run that is
    /// recorded first (a run with a store: the room its recording takes is not in the
    /// futures of runs without one).
    #[project = StartedProj]
    pub(crate) enum Started<O, R, D> {
        Ready { output: Option<O> },
        Running { #[pin] run: R },
        Recorded { run: Pin<Box<D>> },
    }
}

impl<O, R, D> Started<O, R, D> {
    pub(crate) fn ready(output: O) -> Self {
        Started::Ready {
            output: Some(output),
        }
    }

    pub(crate) fn running(run: R) -> Self {
        Started::Running { run }
    }

    pub(crate) fn recorded(run: D) -> Self {
        Started::Recorded { run: Box::pin(run) }
    }
}

impl<O, R, D> Future for Started<O, R, D>
where
    R: Future<Output = O>,
    D: Future<Output = O>,
{
    type Output = O;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        match self.project() {
            StartedProj::Ready { output } => match output.take() {
                Some(output) => Poll::Ready(output),
                None => Poll::Pending,
            },
            StartedProj::Running { run } => run.poll(cx),
            StartedProj::Recorded { run } => run.as_mut().poll(cx),
        }
    }
}

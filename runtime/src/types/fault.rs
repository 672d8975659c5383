//! The seam through which tests inject faults into a run: a run asks its [`Faults`] whether
//! a step, a compensation or a hook handler meets a [`Fault`]. Without the `testing` feature
//! there is no fault and no injector: `Fault` has no value and every question is answered
//! `None` at compile time, so the seam costs nothing.

#[cfg(feature = "testing")]
use std::sync::Arc;

/// A fault to inject (feature `testing`).
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The attempt fails (a transient failure: a step with `retry` retries it).
    Fail,
    /// The attempt times out (as if the step ran past its `timeout`).
    Timeout,
    /// The attempt panics.
    Panic,
}

/// Without the `testing` feature, no fault exists.
#[cfg(not(feature = "testing"))]
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {}

impl Fault {
    /// Whether the fault is a panic.
    pub(crate) fn is_panic(self) -> bool {
        #[cfg(feature = "testing")]
        return matches!(self, Fault::Panic);
        #[cfg(not(feature = "testing"))]
        match self {}
    }

    /// Whether the fault is a timeout.
    pub(crate) fn is_timeout(self) -> bool {
        #[cfg(feature = "testing")]
        return matches!(self, Fault::Timeout);
        #[cfg(not(feature = "testing"))]
        match self {}
    }

    /// The message an injected fault fails with.
    pub(crate) fn message(self) -> String {
        #[cfg(feature = "testing")]
        return match self {
            Fault::Fail => "injected fault: fail",
            Fault::Timeout => "injected fault: timeout",
            Fault::Panic => "injected fault: panic",
        }
        .to_owned();
        #[cfg(not(feature = "testing"))]
        match self {}
    }
}

/// Where a run's faults come from: a fault plan (`testing::FaultPlan`), in tests.
#[cfg(feature = "testing")]
pub(crate) trait FaultInjector: Send + Sync + 'static {
    /// The fault attempt `attempt` (from 1) of step `step` meets, if any.
    fn step(&self, step: &str, attempt: u32) -> Option<Fault>;
    /// The fault attempt `attempt` of the compensation of step `step` meets, if any.
    fn compensation(&self, step: &str, attempt: u32) -> Option<Fault>;
    /// The fault the `before`/`after` hook handler named `handler` meets, if any.
    fn handler(&self, handler: &str) -> Option<Fault>;
}

/// The fault injector a run was given, if any.
#[derive(Clone, Default)]
pub(crate) struct Faults {
    #[cfg(feature = "testing")]
    injector: Option<Arc<dyn FaultInjector>>,
}

impl Faults {
    /// Faults from `injector`.
    #[cfg(feature = "testing")]
    pub(crate) fn new(injector: Arc<dyn FaultInjector>) -> Self {
        Faults {
            injector: Some(injector),
        }
    }

    /// The fault attempt `attempt` of step `step` meets.
    #[inline]
    pub(crate) fn step(&self, step: &str, attempt: u32) -> Option<Fault> {
        #[cfg(feature = "testing")]
        return self.injector.as_ref()?.step(step, attempt);
        #[cfg(not(feature = "testing"))]
        {
            let _ = (step, attempt);
            None
        }
    }

    /// The fault attempt `attempt` of the compensation of step `step` meets.
    #[inline]
    pub(crate) fn compensation(&self, step: &str, attempt: u32) -> Option<Fault> {
        #[cfg(feature = "testing")]
        return self.injector.as_ref()?.compensation(step, attempt);
        #[cfg(not(feature = "testing"))]
        {
            let _ = (step, attempt);
            None
        }
    }

    /// The fault hook handler `handler` meets.
    #[inline]
    pub(crate) fn handler(&self, handler: &str) -> Option<Fault> {
        #[cfg(feature = "testing")]
        return self.injector.as_ref()?.handler(handler);
        #[cfg(not(feature = "testing"))]
        {
            let _ = handler;
            None
        }
    }
}

//! The seam through which tests inject faults into a run: a run asks its [`Faults`] whether
//! a step, a compensation or a hook handler meets a [`Fault`]. Without the `testing` feature
//! there is no fault and no injector: `Fault` has no value and every question is answered
//! `None` at compile time, so the seam costs nothing.

#[cfg(feature = "testing")]
use std::collections::HashMap;
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

/// Which faults to inject, where, on which attempt (feature `testing`). Give it to
/// [`EngineBuilder::faults`](crate::EngineBuilder::faults).
///
/// ```
/// use hookflow_runtime::testing::{Fault, FaultPlan};
/// let plan = FaultPlan::new()
///     .step("capture_payment", 1, Fault::Fail)     // first attempt fails
///     .compensation("release_inventory", 1, Fault::Panic)
///     .handler("apply_gift_card", Fault::Fail);    // by the end of the handler's name
/// assert!(!plan.is_empty());
/// ```
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// By step name and attempt; attempt 0 means every attempt.
    steps: HashMap<(String, u32), Fault>,
    compensations: HashMap<(String, u32), Fault>,
    handlers: HashMap<String, Fault>,
}

#[cfg(feature = "testing")]
impl FaultPlan {
    /// No fault.
    pub fn new() -> Self {
        Self::default()
    }

    /// Step `name` meets `fault` on attempt `attempt` (from 1).
    #[must_use]
    pub fn step(mut self, name: impl Into<String>, attempt: u32, fault: Fault) -> Self {
        self.steps.insert((name.into(), attempt), fault);
        self
    }

    /// Step `name` meets `fault` on every attempt, so that retries cannot save it.
    #[must_use]
    pub fn step_always(mut self, name: impl Into<String>, fault: Fault) -> Self {
        self.steps.insert((name.into(), 0), fault);
        self
    }

    /// The compensation of step `name` meets `fault` on attempt `attempt` (from 1).
    #[must_use]
    pub fn compensation(mut self, name: impl Into<String>, attempt: u32, fault: Fault) -> Self {
        self.compensations.insert((name.into(), attempt), fault);
        self
    }

    /// Every `before`/`after` hook handler whose name is `name` or ends with `::name` meets
    /// `fault`.
    #[must_use]
    pub fn handler(mut self, name: impl Into<String>, fault: Fault) -> Self {
        self.handlers.insert(name.into(), fault);
        self
    }

    /// Whether the plan injects nothing.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.compensations.is_empty() && self.handlers.is_empty()
    }
}

#[cfg(feature = "testing")]
impl FaultInjector for FaultPlan {
    fn step(&self, step: &str, attempt: u32) -> Option<Fault> {
        if self.steps.is_empty() {
            return None;
        }
        let step = step.to_owned();
        self.steps
            .get(&(step.clone(), attempt))
            .or_else(|| self.steps.get(&(step, 0)))
            .copied()
    }

    fn compensation(&self, step: &str, attempt: u32) -> Option<Fault> {
        if self.compensations.is_empty() {
            return None;
        }
        self.compensations.get(&(step.to_owned(), attempt)).copied()
    }

    fn handler(&self, handler: &str) -> Option<Fault> {
        self.handlers.iter().find_map(|(name, fault)| {
            let matches = handler == name
                || handler
                    .strip_suffix(name.as_str())
                    .is_some_and(|rest| rest.ends_with("::"));
            matches.then_some(*fault)
        })
    }
}

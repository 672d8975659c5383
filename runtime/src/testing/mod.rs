//! Tools to prove your sagas correct (feature `testing`): a [`FaultPlan`] that makes named
//! steps, hook handlers or compensations fail, time out or panic on a given attempt;
//! [`check_saga`], which checks the saga invariant on a run's journal, and
//! [`check_failure_points`], which checks it with each step and handler failing in turn; and
//! [`check_crash_points`], which stops a durable run at every commit it makes, resumes it,
//! and checks that it ends as if it had not crashed (its side effects counted in a
//! [`Ledger`]).
//!
//! Enable it for your tests: `hookflow = { version = "...", features = ["testing"] }` in
//! `[dev-dependencies]`. Without the feature, the runtime has no fault seam at all.

mod crash;
mod crash_store;
mod ledger;

pub use crash::{
    CrashPoint, CrashPointResult, CrashReport, Difference, Mismatch, Moment, RunSummary,
    check_crash_points, check_crash_points_with,
};
pub use ledger::Ledger;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;

use crate::engine::Engine;
use crate::journal::{EventKind, Journal};
use crate::run::Outcome;
pub use crate::types::{Fault, FaultPlan};
use crate::types::{RecordedJson, RunStatus};
use crate::workflow::Workflow;

/// A way in which a run's journal breaks the saga invariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SagaViolation {
    /// A completed step with a compensation was not compensated although the run failed.
    #[error("step `{step}` #{position} completed with a compensation but was not compensated")]
    NotCompensated {
        /// The step.
        step: String,
        /// Its position.
        position: u32,
    },
    /// A step was compensated more than once.
    #[error("step `{step}` #{position} was compensated {times} times")]
    CompensatedTwice {
        /// The step.
        step: String,
        /// Its position.
        position: u32,
        /// How many times.
        times: usize,
    },
    /// Something was compensated that had not completed with a compensation.
    #[error("step `{step}` #{position} was compensated but never completed with a compensation")]
    Unexpected {
        /// The step.
        step: String,
        /// Its position.
        position: u32,
    },
    /// Compensations did not run in the reverse order of completion.
    #[error("compensations ran in the order {ran:?}, expected {expected:?}")]
    Order {
        /// Positions in the order they were compensated.
        ran: Vec<u32>,
        /// Positions in reverse completion order.
        expected: Vec<u32>,
    },
    /// A compensation got other data than its step returned (needs `record_data(true)`).
    #[error("step `{step}` #{position} was compensated with {got}, but returned {expected}")]
    WrongData {
        /// The step.
        step: String,
        /// Its position.
        position: u32,
        /// The data the step returned.
        expected: String,
        /// The data the compensation got.
        got: String,
    },
}

/// Checks the saga invariant on a journal: if the run failed, every completed step that has
/// a compensation was compensated exactly once, in reverse order of completion, with the data
/// it returned (when the journal records data), and nothing else was.
///
/// In a completed run, only the steps of a nested workflow that failed (and was undone on
/// the spot) may have been compensated, each once. "Reverse order" is checked within each
/// burst of compensations: a failed nested workflow undoes its own steps before its parent
/// goes on.
///
/// # Errors
/// The first violation found.
pub fn check_saga(journal: &Journal) -> Result<(), SagaViolation> {
    let failed_run = journal
        .kinds()
        .any(|k| matches!(k, EventKind::RunEnded { status } if *status != RunStatus::Completed));
    // Steps that completed with a compensation, in completion order.
    let mut pushed: Vec<(u32, String, Option<RecordedJson>)> = Vec::new();
    // Compensations, each with the burst (run of consecutive compensation events) it is in.
    let mut compensated: Vec<(usize, u32, String, Option<RecordedJson>)> = Vec::new();
    let mut burst = 0;
    let mut in_burst = false;
    for kind in journal.kinds() {
        let compensation_event = matches!(
            kind,
            EventKind::CompensationStarted { .. }
                | EventKind::CompensationCompleted { .. }
                | EventKind::CompensationFailed { .. }
                | EventKind::CompensationRetrying { .. }
        );
        if compensation_event && !in_burst {
            burst += 1;
        }
        in_burst = compensation_event;
        match kind {
            EventKind::StepCompleted {
                step,
                position,
                compensation,
                compensable: true,
                ..
            } => pushed.push((
                *position,
                step.to_string(),
                compensation.as_deref().cloned(),
            )),
            EventKind::CompensationStarted {
                step,
                position,
                data,
            } => compensated.push((burst, *position, step.to_string(), data.as_deref().cloned())),
            _ => {}
        }
    }
    let completion_index = |position: u32| pushed.iter().position(|(p, _, _)| *p == position);
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for (_, position, step, got) in &compensated {
        let times = counts.entry(*position).or_default();
        *times += 1;
        if *times > 1 {
            return Err(SagaViolation::CompensatedTwice {
                step: step.clone(),
                position: *position,
                times: *times,
            });
        }
        let Some(index) = completion_index(*position) else {
            return Err(SagaViolation::Unexpected {
                step: step.clone(),
                position: *position,
            });
        };
        if let (Some(expected), Some(got)) = (&pushed[index].2, got) {
            if expected != got {
                return Err(SagaViolation::WrongData {
                    step: step.clone(),
                    position: *position,
                    expected: expected.to_string(),
                    got: got.to_string(),
                });
            }
        }
    }
    // Within one burst, compensations run last-completed first.
    for b in 1..=burst {
        let ran: Vec<u32> = compensated
            .iter()
            .filter(|c| c.0 == b)
            .map(|c| c.1)
            .collect();
        let mut expected = ran.clone();
        expected.sort_by_key(|p| std::cmp::Reverse(completion_index(*p)));
        if ran != expected {
            return Err(SagaViolation::Order { ran, expected });
        }
    }
    if failed_run {
        for (position, step, _) in &pushed {
            if !counts.contains_key(position) {
                return Err(SagaViolation::NotCompensated {
                    step: step.clone(),
                    position: *position,
                });
            }
        }
    }
    Ok(())
}

/// Where a failure was injected by [`check_failure_points`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailurePoint {
    /// Every attempt of every call of this step failed.
    Step(String),
    /// This `before`/`after` hook handler failed.
    Handler(String),
}

impl fmt::Display for FailurePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailurePoint::Step(s) => write!(f, "step `{s}`"),
            FailurePoint::Handler(h) => write!(f, "hook handler `{h}`"),
        }
    }
}

/// What [`check_failure_points`] found: one entry per failure point.
#[derive(Debug, Clone)]
pub struct FailurePoints {
    /// Each point, the status its run ended with, and the saga check's verdict.
    pub results: Vec<(FailurePoint, RunStatus, Result<(), SagaViolation>)>,
}

impl FailurePoints {
    /// The points whose run broke the saga invariant.
    pub fn violations(&self) -> impl Iterator<Item = (&FailurePoint, &SagaViolation)> {
        self.results
            .iter()
            .filter_map(|(p, _, r)| r.as_ref().err().map(|v| (p, v)))
    }

    /// Panics, listing every violation, if any point broke the invariant.
    ///
    /// # Panics
    /// When a run broke the saga invariant.
    #[track_caller]
    pub fn assert_ok(&self) {
        let violations: Vec<String> = self
            .violations()
            .map(|(p, v)| format!("  failing {p}: {v}"))
            .collect();
        assert!(
            violations.is_empty(),
            "the saga invariant was broken at {} of {} failure points:\n{}",
            violations.len(),
            self.results.len(),
            violations.join("\n")
        );
    }
}

/// Runs a workflow once per failure point, and checks the saga invariant on each run.
///
/// First it runs the workflow with no fault, to learn its points: every step it starts and
/// every `before`/`after` hook handler it calls. Then, for each point in turn, it runs it
/// again with an engine whose [`FaultPlan`] fails that point (every attempt of a step, so
/// that retries cannot save it), and checks the run's journal with [`check_saga`].
///
/// `engine` builds an engine for a fault plan (give it `.faults(plan)` and, to check that
/// compensations get their steps' data, `.record_data(true)`); `run` runs the workflow on an
/// engine, the same way every time.
pub async fn check_failure_points<W, Fut>(
    engine: impl Fn(FaultPlan) -> Engine,
    run: impl Fn(Engine) -> Fut,
) -> FailurePoints
where
    W: Workflow,
    Fut: Future<Output = Outcome<W>>,
{
    let baseline = run(engine(FaultPlan::new())).await;
    let mut points: Vec<FailurePoint> = Vec::new();
    for kind in baseline.journal().kinds() {
        let point = match kind {
            EventKind::StepStarted { step, .. } => FailurePoint::Step(step.to_string()),
            EventKind::HookHandlerCompleted { handler, .. }
            | EventKind::HookHandlerFailed { handler, .. } => {
                FailurePoint::Handler(handler.to_string())
            }
            _ => continue,
        };
        if !points.contains(&point) {
            points.push(point);
        }
    }
    let mut results = Vec::with_capacity(points.len());
    for point in points {
        let plan = match &point {
            FailurePoint::Step(step) => FaultPlan::new().step_always(step.clone(), Fault::Fail),
            FailurePoint::Handler(handler) => {
                FaultPlan::new().handler(handler.clone(), Fault::Fail)
            }
        };
        let outcome = run(engine(plan)).await;
        results.push((point, outcome.status(), check_saga(outcome.journal())));
    }
    FailurePoints { results }
}

//! The outside world of a crash check: a [`Ledger`] of side effects applied once per
//! idempotency key, and the jobs a run's dispatcher delivered.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::types::{Job, JobDispatcher, lock};

/// An external system with idempotency keys (a payment provider, a warehouse API), for the
/// steps of a workflow under [`check_crash_points`](super::check_crash_points).
///
/// The harness registers one on every engine it builds (reach it with
/// `ctx.service::<Ledger>()`), shared by the run that crashes and the run that resumes it,
/// and compares what it applied with what the uninterrupted run applied. A step, a hook
/// handler or a compensation records each side effect it makes with its context's
/// idempotency key and a description:
///
/// ```
/// # use hookflow_runtime::{MissingService, StepContext};
/// # use hookflow_runtime::testing::Ledger;
/// async fn charge_card(ctx: &StepContext) -> Result<(), MissingService> {
///     ctx.service::<Ledger>()?.record(ctx.idempotency_key(), "charge card");
///     Ok(())
/// }
/// ```
///
/// An effect is its key and its description. Recorded again (a step that ran again after a
/// crash), it is absorbed, as a payment provider absorbs a retried request with the same
/// idempotency key, and counted in [`Ledger::absorbed`]. A compensation has its step's key:
/// give it a description of its own ("refund card").
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    inner: Arc<Mutex<LedgerState>>,
}

#[derive(Debug, Default)]
struct LedgerState {
    applied: Vec<(String, String)>,
    seen: HashSet<(String, String)>,
    absorbed: usize,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the effect `what` under `key`, unless it was applied under this key already:
    /// then the repeat is absorbed. Returns whether it was applied.
    pub fn record(&self, key: impl Into<String>, what: impl Into<String>) -> bool {
        let effect = (key.into(), what.into());
        let mut state = lock(&self.inner);
        if state.seen.contains(&effect) {
            state.absorbed += 1;
            return false;
        }
        state.seen.insert(effect.clone());
        state.applied.push(effect);
        true
    }

    /// The effects applied, each once, in the order they were applied: `(key, description)`.
    pub fn applied(&self) -> Vec<(String, String)> {
        lock(&self.inner).applied.clone()
    }

    /// How many records were absorbed as repeats of an effect applied before.
    pub fn absorbed(&self) -> usize {
        lock(&self.inner).absorbed
    }
}

/// Every job delivered to the dispatcher of the engines of one check, repeats included.
#[derive(Debug, Clone, Default)]
pub(super) struct Deliveries(Arc<Mutex<Vec<Job>>>);

impl Deliveries {
    /// A dispatcher that records each job it is given here.
    pub(super) fn dispatcher(&self) -> impl JobDispatcher {
        let deliveries = self.clone();
        move |job: Job| lock(&deliveries.0).push(job)
    }

    /// The jobs delivered, in order.
    pub(super) fn all(&self) -> Vec<Job> {
        lock(&self.0).clone()
    }
}

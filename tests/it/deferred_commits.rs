//! A step's completion rides on the run's next commit (issue 20): it is committed before
//! anything with effects runs next (the next step's body, a hook handler), or together with
//! the run's end. So a run of N steps makes N commits, its last step's with its end, and no
//! step's body runs while an earlier step's completion is not in the store.

use std::sync::{Arc, Mutex};

use hookflow::prelude::*;
use hookflow::store::{Store, StoredStatus};
use hookflow::{EventKind, RunId};

#[allow(dead_code)] // the bench programs' counting store: this module reads some of its counts
#[path = "../../benches/counting_store.rs"]
mod counting_store;

use counting_store::{Counting, Counts};

/// What each step's body found in the store when it started: the steps whose completion
/// was committed.
struct Probe {
    store: Arc<dyn Store>,
    seen: Mutex<Vec<(&'static str, Vec<String>)>>,
}

impl Probe {
    async fn observe(&self, step: &'static str, run_id: RunId) {
        let (_, events) = self.store.load(run_id).await.unwrap();
        let completed = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::StepCompleted { step, .. } => Some(step.to_string()),
                _ => None,
            })
            .collect();
        self.seen.lock().unwrap().push((step, completed));
    }
}

#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[step]
async fn first(ctx: &StepContext, n: u64) -> Result<u64, ProbeError> {
    let probe = ctx.service::<Arc<Probe>>()?;
    probe.observe("first", ctx.run_id()).await;
    Ok(n + 1)
}

#[step]
async fn second(ctx: &StepContext, n: u64) -> Result<u64, ProbeError> {
    let probe = ctx.service::<Arc<Probe>>()?;
    probe.observe("second", ctx.run_id()).await;
    Ok(n + 1)
}

#[step]
async fn third(ctx: &StepContext, n: u64) -> Result<u64, ProbeError> {
    let probe = ctx.service::<Arc<Probe>>()?;
    probe.observe("third", ctx.run_id()).await;
    Ok(n + 1)
}

#[workflow(name = "three_steps")]
async fn three_steps(ctx: &WorkflowContext, n: u64) -> Result<u64, ProbeError> {
    let n = first(ctx, n).await?;
    let n = second(ctx, n).await?;
    third(ctx, n).await
}

on_every_store!(
    #[tokio::test]
    each_step_is_committed_before_the_next_runs_and_the_last_with_the_runs_end,
);

async fn each_step_is_committed_before_the_next_runs_and_the_last_with_the_runs_end(
    store: Arc<dyn Store>,
) {
    let counts = Arc::new(Counts::default());
    let counting: Arc<dyn Store> = Arc::new(Counting::new(store.clone(), Arc::clone(&counts)));
    let probe = Arc::new(Probe {
        store: store.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let engine = Engine::builder()
        .store(counting)
        .service(Arc::clone(&probe))
        .workflow::<ThreeSteps>()
        .build();
    let outcome = engine.run::<ThreeSteps>(1).await;
    assert_eq!(outcome.output(), Some(&4));

    // Each body saw every earlier step's completion in the store.
    let seen = probe.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("first", vec![]),
            ("second", vec!["first".to_owned()]),
            ("third", vec!["first".to_owned(), "second".to_owned()]),
        ],
        "a step's body runs only once the earlier steps' completions are committed"
    );

    // Three commits: before `second` (first's completion), before `third` (second's), and
    // the run's end with third's completion.
    let commits = counts.commits.load(std::sync::atomic::Ordering::SeqCst);
    let ends = counts.ends.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        (commits, ends),
        (3, 1),
        "one commit per step, the last step's with the run's end"
    );

    // The run's end holds the last step's completion: the store has the whole journal.
    let (record, events) = store.load(outcome.run_id()).await.unwrap();
    assert_eq!(record.status, StoredStatus::Completed);
    assert_eq!(&events, outcome.journal().events());
}

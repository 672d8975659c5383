//! A step's context borrows its run from the workflow's context instead of holding a count of
//! its own (issue 20, sixth pass): a clone of it (a `RunContext`) taken in the step still
//! holds the run on its own, after the step, the run and the engine are gone, and the run's
//! state is freed once, by the last holder. The same for a compensation's context.

use std::sync::Mutex;

use hookflow::RunId;
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Debug, thiserror::Error)]
#[error("failed on purpose")]
struct Fails;

/// The contexts the steps kept (this test's own: no other test runs `Kept`).
static KEPT: Mutex<Vec<RunContext>> = Mutex::new(Vec::new());

#[step]
async fn keep(ctx: &StepContext, n: u64) -> Result<u64, Never> {
    KEPT.lock().unwrap().push(RunContext::clone(ctx));
    Ok(n + 1)
}

#[workflow]
async fn kept(ctx: &WorkflowContext, n: u64) -> Result<u64, Never> {
    let n = keep(ctx, n).await?;
    keep(ctx, n).await
}

/// The contexts the compensations kept (`Undone`'s own).
static UNDONE: Mutex<Vec<RunContext>> = Mutex::new(Vec::new());

#[step(compensate = unkeep)]
async fn kept_step(_ctx: &StepContext, n: u64) -> Result<StepResponse<u64, u64>, Fails> {
    Ok(StepResponse::new(n + 1, n))
}

async fn unkeep(ctx: &StepContext, _n: u64) -> Result<(), Fails> {
    UNDONE.lock().unwrap().push(RunContext::clone(ctx));
    Ok(())
}

#[step]
async fn fail(_ctx: &StepContext, _n: u64) -> Result<u64, Fails> {
    Err(Fails)
}

#[workflow]
async fn undone(ctx: &WorkflowContext, n: u64) -> Result<u64, Fails> {
    let n = kept_step(ctx, n).await?;
    fail(ctx, n).await
}

#[tokio::test]
async fn a_clone_of_a_compensation_context_holds_the_run_after_the_run_and_its_engine() {
    const RUNS: usize = 2000;
    let engine = Engine::builder().build();
    let mut ids: Vec<RunId> = Vec::new();
    for n in 0..RUNS as u64 {
        let outcome = Undone::run(&engine, n).await;
        assert_eq!(outcome.status(), RunStatus::Compensated);
        ids.push(outcome.run_id());
    }
    drop(engine);
    let kept = std::mem::take(&mut *UNDONE.lock().unwrap());
    assert_eq!(kept.len(), RUNS);
    for (i, ctx) in kept.iter().enumerate() {
        assert_eq!(ctx.run_id(), ids[i], "context {i}");
        assert_eq!(ctx.workflow(), "undone");
    }
    drop(kept);
}

#[tokio::test]
async fn a_clone_of_a_step_context_holds_the_run_after_the_run_and_its_engine() {
    const RUNS: u64 = 2000;
    let engine = Engine::builder().build();
    let mut ids: Vec<RunId> = Vec::new();
    for n in 0..RUNS {
        let outcome = Kept::run(&engine, n).await;
        assert_eq!(outcome.output(), Some(&(n + 2)));
        ids.push(outcome.run_id());
    }
    drop(engine);
    let kept = std::mem::take(&mut *KEPT.lock().unwrap());
    assert_eq!(kept.len() as u64, 2 * RUNS);
    // Each kept context still reads its own run: had a step's context given back a count it
    // did not take, the run's state would have been freed at the step's end and taken by
    // later runs (or the process aborted on a double free).
    for (i, ctx) in kept.iter().enumerate() {
        assert_eq!(ctx.run_id(), ids[i / 2], "context {i}");
        assert_eq!(ctx.workflow(), "kept");
    }
    drop(kept);
}

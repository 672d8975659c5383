//! A step hook's handler is a step: in a run without a store, nothing awaits and no user code
//! runs between its step's `StepCompleted` and the firing's `HookHandlerCompleted`, and the
//! two are recorded at one clock reading.

use std::sync::Arc;

use hookflow::prelude::*;
use hookflow::store::MemoryStore;
use hookflow::{Event, EventKind};

#[derive(Debug, thiserror::Error)]
enum ClockError {
    #[error(transparent)]
    Hook(#[from] HookError),
}

#[step]
async fn double(_ctx: &StepContext, n: u64) -> Result<u64, ClockError> {
    Ok(n * 2)
}

#[step(compensate = forget)]
async fn note(_ctx: &StepContext, n: u64) -> Result<StepResponse<u64, u64>, ClockError> {
    Ok(StepResponse::new(n + 1, n))
}

async fn forget(_ctx: &StepContext, _n: u64) -> Result<(), ClockError> {
    Ok(())
}

#[workflow(hooks(doubled: step<u64, u64>))]
async fn timed(ctx: &WorkflowContext, n: u64) -> Result<u64, ClockError> {
    let n = double(ctx, n).await?;
    let noted = ctx.hook(Timed::DOUBLED, n).await?;
    double(ctx, noted[0]).await
}

fn engine(store: Option<Arc<MemoryStore>>) -> Engine {
    let mut hooks = Hooks::new();
    Timed::hooks(&mut hooks).doubled(note);
    let builder = Engine::builder().hooks(hooks).workflow::<Timed>();
    match store {
        Some(store) => builder.store(store).build(),
        None => builder.build(),
    }
}

/// The handler's `StepCompleted` and the `HookHandlerCompleted` right after it.
fn handler_end(events: &[Event]) -> (&Event, &Event) {
    let i = events
        .iter()
        .position(|e| matches!(e.kind, EventKind::HookHandlerCompleted { .. }))
        .expect("the handler's end is recorded");
    let step = &events[i - 1];
    assert!(
        matches!(&step.kind, EventKind::StepCompleted { step, .. } if step == "note"),
        "{:?}",
        step.kind
    );
    (step, &events[i])
}

#[tokio::test]
async fn a_handler_that_ends_at_once_ends_when_its_step_completed() {
    let in_memory = engine(None);
    for i in 0..3_000 {
        let outcome = in_memory.run::<Timed>(i).await;
        assert_eq!(*outcome.output().unwrap(), (i * 2 + 1) * 2);
        let (step, handler) = handler_end(outcome.journal().events());
        assert_eq!(handler.at_micros, step.at_micros, "in memory, run {i}");
    }
    // A durable run's handler may await after its step's completion (the step's commit, a
    // transaction's): its end is read from the clock again, never before its step's.
    let durable = engine(Some(Arc::new(MemoryStore::new())));
    for i in 0..200 {
        let outcome = durable.run::<Timed>(i).await;
        assert_eq!(*outcome.output().unwrap(), (i * 2 + 1) * 2);
        let (step, handler) = handler_end(outcome.journal().events());
        assert!(handler.at_micros >= step.at_micros, "durable, run {i}");
    }
}

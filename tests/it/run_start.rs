//! A run started in place (`Engine::run`, `Engine::run_with`, the generated `W::run` and
//! `W::run_with`) begins when its future is first polled, not when the future is made: until
//! then nothing is checked, recorded or run, and a future dropped unpolled starts nothing.

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};

use hookflow::EventKind;
use hookflow::prelude::*;
use hookflow::store::MemoryStore;

#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

/// What ran: the hook's handler, the step.
#[derive(Default)]
struct Ran {
    handler: AtomicU32,
    step: AtomicU32,
}

#[step]
async fn add_one(ctx: &StepContext, n: u64) -> Result<u64, StartError> {
    ctx.service::<Ran>()?.step.fetch_add(1, Ordering::SeqCst);
    Ok(n + 1)
}

async fn check(ctx: &HookContext, n: u64) -> Result<u64, StartError> {
    ctx.service::<Ran>()?.handler.fetch_add(1, Ordering::SeqCst);
    Ok(n)
}

#[workflow(hooks(checked: before<u64>))]
async fn counted(ctx: &WorkflowContext, n: u64) -> Result<u64, StartError> {
    let n = ctx.hook(Counted::CHECKED, n).await?;
    add_one(ctx, n).await
}

fn engine(store: &Arc<MemoryStore>) -> Engine {
    let mut hooks = Hooks::new();
    Counted::hooks(&mut hooks).checked(check);
    Engine::builder()
        .store(Arc::clone(store))
        .hooks(hooks)
        .service(Ran::default())
        .workflow::<Counted>()
        .build()
}

/// What ran so far: (runs in the store, handler calls, step calls).
fn started(engine: &Engine, store: &MemoryStore) -> (usize, u32, u32) {
    let ran = engine.service::<Ran>().unwrap();
    (
        store.len(),
        ran.handler.load(Ordering::SeqCst),
        ran.step.load(Ordering::SeqCst),
    )
}

/// A run's future, made by one of the ways to start a run in place.
type RunFuture<'a> = Pin<Box<dyn Future<Output = Outcome<Counted>> + 'a>>;

/// Checks that `run`, just made after `earlier` runs that ended, started nothing, then that
/// its first poll starts it.
async fn starts_at_first_poll(
    way: &str,
    engine: &Engine,
    store: &MemoryStore,
    earlier: u32,
    mut run: RunFuture<'_>,
) {
    let runs = usize::try_from(earlier).unwrap();
    // Made: nothing recorded, no hook fired, no step run, even once others ran meanwhile.
    tokio::task::yield_now().await;
    assert_eq!(
        started(engine, store),
        (runs, earlier, earlier),
        "{way}: made, not polled"
    );

    // The first poll starts it: recorded, its hook fired, its step run (the memory store
    // never makes it wait, so it ends in that poll).
    let mut cx = Context::from_waker(Waker::noop());
    let first = run.as_mut().poll(&mut cx);
    assert_eq!(
        started(engine, store),
        (runs + 1, earlier + 1, earlier + 1),
        "{way}: polled once"
    );
    let outcome = match first {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => run.await,
    };
    assert_eq!(outcome.status(), RunStatus::Completed, "{way}");
    assert_eq!(outcome.output(), Some(&2), "{way}");
}

#[tokio::test]
async fn a_run_starts_at_its_first_poll_not_when_its_future_is_made() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store);
    let run = Box::pin(engine.run::<Counted>(1));
    starts_at_first_poll("Engine::run", &engine, &store, 0, run).await;
    let run = Box::pin(engine.run_with::<Counted>(1, RunOptions::default()));
    starts_at_first_poll("Engine::run_with", &engine, &store, 1, run).await;
    let run = Box::pin(Counted::run(&engine, 1));
    starts_at_first_poll("W::run", &engine, &store, 2, run).await;
    let run = Box::pin(Counted::run_with(&engine, 1, RunOptions::default()));
    starts_at_first_poll("W::run_with", &engine, &store, 3, run).await;
    assert_eq!(started(&engine, &store), (4, 4, 4));
}

#[tokio::test]
async fn a_run_whose_future_is_dropped_unpolled_starts_nothing() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store);
    drop(engine.run::<Counted>(1));
    drop(Counted::run_with(&engine, 1, RunOptions::default()));
    assert_eq!(started(&engine, &store), (0, 0, 0));

    // And one that is polled runs as it would have.
    let mut run = pin!(Counted::run(&engine, 1));
    let outcome = (&mut run).await;
    assert_eq!(outcome.status(), RunStatus::Completed);
    assert_eq!(started(&engine, &store), (1, 1, 1));
}

/// A run started in place without a store records its start with the clock reading its id
/// was made with (one reading, not two): the start's time is in the id's millisecond (UUID
/// v7), run after run. (Two readings would cross a millisecond now and then.)
#[tokio::test]
async fn a_run_started_in_place_records_its_start_at_the_time_of_its_id() {
    let mut hooks = Hooks::new();
    Counted::hooks(&mut hooks).checked(check);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(Ran::default())
        .workflow::<Counted>()
        .build();
    for i in 0..20_000 {
        let outcome = engine.run::<Counted>(1).await;
        let started = &outcome.journal().events()[0];
        assert!(matches!(started.kind, EventKind::RunStarted { .. }));
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&outcome.run_id().as_uuid().as_bytes()[..6]);
        assert_eq!(
            started.at_micros / 1_000,
            u64::from_be_bytes(millis),
            "run {i}"
        );
    }
}

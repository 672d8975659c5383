//! Handler names and the registrar's modifiers. A handler is recorded under a stable name:
//! the one given with `.named(..)`, or by default its function's identifier (not the
//! compiler's `type_name` path), so that a journal written by one build replays in another;
//! a journal written by an older build, which recorded the full path, still replays. Slots
//! apply to the next registration only; `.named(..)` and `.timeout(..)` to the handler
//! registered just before them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hookflow::prelude::*;
use hookflow::store::{MemoryStore, Store, StoredStatus};
use hookflow::{CompensationFailure, EventKind, RunId, Slot};

#[derive(Default)]
struct World {
    notified_v1: AtomicUsize,
    notified_v2: AtomicUsize,
    shipped: AtomicUsize,
    hang: AtomicBool,
    hung: tokio::sync::Notify,
}

#[derive(Debug, thiserror::Error)]
enum ShipError {
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[step]
async fn ship(ctx: &StepContext, cents: u64) -> Result<u64, ShipError> {
    let world = ctx.service::<Arc<World>>()?;
    world.shipped.fetch_add(1, Ordering::SeqCst);
    if world.hang.load(Ordering::SeqCst) {
        world.hung.notify_one();
        std::future::pending::<()>().await;
    }
    Ok(cents)
}

#[workflow(hooks(validate: before<u64>, paid: after<u64>))]
async fn deliver(ctx: &WorkflowContext, cents: u64) -> Result<u64, ShipError> {
    let cents = ctx.hook(Deliver::VALIDATE, cents).await?;
    ctx.hook(Deliver::PAID, &cents).await;
    ship(ctx, cents).await
}

async fn check_minimum(_ctx: &HookContext, cents: u64) -> Result<u64, std::io::Error> {
    if cents < 100 {
        return Err(std::io::Error::other("below the minimum"));
    }
    Ok(cents)
}

async fn add_fee(_ctx: &HookContext, cents: u64) -> Result<u64, std::io::Error> {
    Ok(cents + 10)
}

/// The CRM notification as one build wrote it.
async fn notify_v1(ctx: &HookContext, _cents: &u64) -> Result<(), std::io::Error> {
    if let Ok(world) = ctx.service::<Arc<World>>() {
        world.notified_v1.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

/// The same notification in a later build: another function, under the same name.
async fn notify_v2(ctx: &HookContext, _cents: &u64) -> Result<(), std::io::Error> {
    if let Ok(world) = ctx.service::<Arc<World>>() {
        world.notified_v2.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

async fn alert(_ctx: &HookContext, _failure: &CompensationFailure) -> Result<(), std::io::Error> {
    Ok(())
}

fn handlers(engine: &Engine, hook: &str) -> Vec<(Slot, &'static str)> {
    engine
        .handlers_of::<Deliver>(hook)
        .into_iter()
        .map(|(slot, name, _)| (slot, name))
        .collect()
}

#[test]
fn a_handler_is_named_by_its_function_identifier_or_the_name_given() {
    let mut hooks = Hooks::new();
    Deliver::hooks(&mut hooks)
        .validate(check_minimum)
        .validate(add_fee)
        .named("fee")
        .validate(|_ctx: &HookContext, cents: u64| async move { Ok::<_, std::io::Error>(cents) });
    let engine = Engine::builder().hooks(hooks).build();

    assert_eq!(
        handlers(&engine, "validate"),
        [
            (Slot::Configured, "check_minimum"),
            (Slot::Configured, "fee"),
            // A closure has no identifier: the third handler registered on `validate`.
            (Slot::Configured, "validate#3"),
        ]
    );
}

#[tokio::test]
async fn errors_and_the_journal_use_the_given_name() {
    let mut hooks = Hooks::new();
    Deliver::hooks(&mut hooks)
        .validate(check_minimum)
        .named("check-minimum");
    let engine = Engine::builder().hooks(hooks).build();

    let outcome = engine.run::<Deliver>(5).await;

    let Some(hookflow::RunError::Failed(ShipError::Hook(error))) = outcome.error() else {
        panic!("expected a hook error, got {:?}", outcome.error());
    };
    assert_eq!(error.handler(), "check-minimum");
    assert!(outcome.journal().kinds().any(|k| matches!(
        k,
        EventKind::HookHandlerFailed { handler, .. } if handler == "check-minimum"
    )));
}

#[test]
fn a_slot_applies_to_the_next_registration_only() {
    let mut hooks = Hooks::new();
    Deliver::hooks(&mut hooks)
        .prepended()
        .validate(check_minimum)
        .validate(add_fee)
        .appended()
        .paid(notify_v1)
        .on_compensation_failed(alert)
        .paid(notify_v2);
    let engine = Engine::builder().hooks(hooks).build();

    assert_eq!(
        handlers(&engine, "validate"),
        [
            (Slot::Prepended, "check_minimum"),
            (Slot::Configured, "add_fee")
        ]
    );
    assert_eq!(
        handlers(&engine, "paid"),
        [
            (Slot::Configured, "notify_v2"),
            (Slot::Appended, "notify_v1")
        ]
    );
    assert_eq!(
        handlers(&engine, "on_compensation_failed"),
        [(Slot::Configured, "alert")]
    );
}

/// An engine with `notify` registered on `paid` under `name`.
fn engine_with(
    store: &Arc<MemoryStore>,
    world: &Arc<World>,
    v2: bool,
    name: &'static str,
) -> Engine {
    let mut hooks = Hooks::new();
    let registrar = Deliver::hooks(&mut hooks).validate(add_fee);
    let registrar = if v2 {
        registrar.paid(notify_v2)
    } else {
        registrar.paid(notify_v1)
    };
    registrar.named(name);
    Engine::builder()
        .worker_id("shop")
        .store(Arc::clone(store))
        .hooks(hooks)
        .service(Arc::clone(world))
        .workflow::<Deliver>()
        .build()
}

/// Runs `deliver` until `ship` hangs and drops the run there: both hooks' handlers are
/// committed.
async fn crash_in_ship(store: &Arc<MemoryStore>, world: &Arc<World>, name: &'static str) -> RunId {
    world.hang.store(true, Ordering::SeqCst);
    let run_id = RunId::generate();
    let engine = engine_with(store, world, false, name);
    let run = engine.run_with::<Deliver>(500, RunOptions::new().run_id(run_id));
    tokio::select! {
        _ = run => panic!("the run should hang in ship"),
        () = world.hung.notified() => {}
    }
    world.hang.store(false, Ordering::SeqCst);
    run_id
}

#[tokio::test]
async fn a_journal_written_by_one_build_replays_in_another_under_the_same_name() {
    let store = Arc::new(MemoryStore::default());
    let world = Arc::new(World::default());
    let run_id = crash_in_ship(&store, &world, "notify-crm").await;
    let (_, events) = store.load(run_id).await.unwrap();
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::HookHandlerCompleted { handler, .. } if handler == "notify-crm"
    )));

    // The next build: another function, registered under the same name.
    let next_build = engine_with(&store, &world, true, "notify-crm");
    assert_eq!(
        next_build.resume(run_id).await.unwrap(),
        RunStatus::Completed
    );
    assert_eq!(world.notified_v1.load(Ordering::SeqCst), 1);
    assert_eq!(
        world.notified_v2.load(Ordering::SeqCst),
        0,
        "the handler ran again on resume"
    );
}

/// A copy of run `run_id` of `from`, its handler names as an older build recorded them: the
/// full `type_name` path, made by `full` from the name.
async fn as_an_older_build_wrote_it(
    from: &MemoryStore,
    run_id: RunId,
    full: fn(&str) -> String,
) -> Arc<MemoryStore> {
    let (record, mut events) = from.load(run_id).await.unwrap();
    let full = |name: &mut hookflow::journal::Name| *name = full(name).into();
    for event in &mut events {
        match &mut event.kind {
            EventKind::HookFired {
                detail: Some(detail),
                ..
            } => detail.names.iter_mut().for_each(full),
            EventKind::HookHandlerCompleted { handler, .. } => full(handler),
            _ => {}
        }
    }
    let copy = Arc::new(MemoryStore::default());
    copy.create(&record, None).await.unwrap();
    copy.commit(run_id, 0, &events, None).await.unwrap();
    copy
}

#[tokio::test]
async fn a_journal_of_an_older_build_with_full_paths_still_replays() {
    let store = Arc::new(MemoryStore::default());
    let world = Arc::new(World::default());
    let run_id = crash_in_ship(&store, &world, "notify_v1").await;
    let old =
        as_an_older_build_wrote_it(&store, run_id, |name| format!("shop::hooks::{name}")).await;
    let (_, events) = old.load(run_id).await.unwrap();
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        EventKind::HookHandlerCompleted { handler, .. } if handler == "shop::hooks::notify_v1"
    )));

    let engine = engine_with(&old, &world, false, "notify_v1");
    assert_eq!(engine.resume(run_id).await.unwrap(), RunStatus::Completed);
    assert_eq!(
        world.notified_v1.load(Ordering::SeqCst),
        1,
        "the handler ran again on resume"
    );
    assert_eq!(world.shipped.load(Ordering::SeqCst), 2);

    // A path that ends with another name is another handler: the run is parked.
    let run_id = crash_in_ship(&store, &world, "notify_v1").await;
    let other =
        as_an_older_build_wrote_it(&store, run_id, |name| format!("shop::hooks::old_{name}")).await;
    let engine = engine_with(&other, &world, false, "notify_v1");
    assert_eq!(engine.resume(run_id).await.unwrap(), RunStatus::Parked);
    let (record, _) = other.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Parked);
}

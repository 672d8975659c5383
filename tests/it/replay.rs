//! A resumed run is the same run: what `before` and `after` hook handlers did, and what steps
//! and handlers put in the bag, comes back from the journal on resume; the handlers do not run
//! again, and a run whose handlers changed between the crash and the resume is parked. A
//! "crash" is the run's future dropped while a step hangs: what the store holds is then what a
//! killed process leaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hookflow::RunId;
use hookflow::prelude::*;
use hookflow::store::{MemoryStore, Store, StoredStatus};
use serde::{Deserialize, Serialize};

/// Counts the effects of steps and handlers; `capture` hangs while `hang` is set.
#[derive(Default)]
struct World {
    validated: AtomicUsize,
    notified: AtomicUsize,
    authorized: AtomicUsize,
    captured: AtomicUsize,
    hang: AtomicBool,
    hung: tokio::sync::Notify,
    /// The ids of the jobs dispatched, in order.
    dispatched: std::sync::Mutex<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
enum PayError {
    #[error("no payment intent in the run's bag")]
    NoIntent,
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    cents: u64,
    note: String,
}

/// What `authorize` leaves in the bag for `capture`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PaymentIntent(String);

/// What the `validate` handler leaves in the bag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Screened(u64);

#[step]
async fn authorize(ctx: &StepContext, order: Order) -> Result<u64, PayError> {
    ctx.service::<Arc<World>>()?
        .authorized
        .fetch_add(1, Ordering::SeqCst);
    ctx.bag()
        .insert(PaymentIntent(format!("pi_{}", order.cents)));
    ctx.jobs()
        .enqueue("receipt", &order.cents)
        .map_err(|_| PayError::NoIntent)?;
    Ok(order.cents)
}

#[step]
async fn capture(ctx: &StepContext, cents: u64) -> Result<String, PayError> {
    let world = ctx.service::<Arc<World>>()?;
    world.captured.fetch_add(1, Ordering::SeqCst);
    if world.hang.load(Ordering::SeqCst) {
        world.hung.notify_one();
        std::future::pending::<()>().await;
    }
    let intent = ctx.bag().get::<PaymentIntent>().ok_or(PayError::NoIntent)?;
    let screened = ctx.bag().get::<Screened>().map_or(0, |s| s.0);
    Ok(format!(
        "captured {cents} on {} (screened {screened})",
        intent.0
    ))
}

#[workflow(hooks(validate: before<Order>, authorized: after<u64>))]
async fn pay(ctx: &WorkflowContext, order: Order) -> Result<String, PayError> {
    let order = ctx.hook(Pay::VALIDATE, order).await?;
    let cents = authorize(ctx, order).await?;
    ctx.hook(Pay::AUTHORIZED, &cents).await;
    let _ = ctx.jobs().enqueue("audit_log", &cents);
    capture(ctx, cents).await
}

/// Doubles the amount (so that a handler called again would show) and leaves a note in the
/// bag.
async fn validate(ctx: &HookContext, mut order: Order) -> Result<Order, std::io::Error> {
    ctx.service::<Arc<World>>()
        .map_err(std::io::Error::other)?
        .validated
        .fetch_add(1, Ordering::SeqCst);
    order.cents *= 2;
    order.note = format!("validated under {}", ctx.idempotency_key());
    ctx.bag().insert(Screened(order.cents));
    Ok(order)
}

async fn notify(ctx: &HookContext, cents: &u64) -> Result<(), std::io::Error> {
    ctx.service::<Arc<World>>()
        .map_err(std::io::Error::other)?
        .notified
        .fetch_add(1, Ordering::SeqCst);
    ctx.jobs()
        .enqueue("notify_crm", cents)
        .map_err(std::io::Error::other)?;
    Ok(())
}

async fn audit(_ctx: &HookContext, _cents: &u64) -> Result<(), std::io::Error> {
    Ok(())
}

fn engine_with(store: &Arc<MemoryStore>, world: &Arc<World>, extra_handler: bool) -> Engine {
    let mut hooks = Hooks::new();
    let mut registrar = Pay::hooks(&mut hooks).validate(validate).authorized(notify);
    if extra_handler {
        registrar = registrar.authorized(audit);
    }
    let _ = registrar;
    // One worker id: the restarted process takes its runs back at once.
    let queue = Arc::clone(world);
    Engine::builder()
        .worker_id("shop")
        .store(Arc::clone(store))
        .hooks(hooks)
        .service(Arc::clone(world))
        .jobs(move |job: hookflow::Job| queue.dispatched.lock().unwrap().push(job.id().to_owned()))
        .workflow::<Pay>()
        .build()
}

fn order() -> Order {
    Order {
        cents: 100,
        note: String::new(),
    }
}

/// Runs `pay` until `capture` hangs, then drops the run ("kills" it there): `validate`,
/// `authorize` and `notify` are committed, `capture` is in flight.
async fn crash_in_capture(store: &Arc<MemoryStore>, world: &Arc<World>) -> RunId {
    world.hang.store(true, Ordering::SeqCst);
    let run_id = RunId::generate();
    let engine = engine_with(store, world, false);
    let run = engine.run_with::<Pay>(order(), RunOptions::new().run_id(run_id));
    tokio::select! {
        _ = run => panic!("the run should hang in capture"),
        () = world.hung.notified() => {}
    }
    world.hang.store(false, Ordering::SeqCst);
    let (record, _) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Running);
    run_id
}

#[tokio::test]
async fn a_resumed_run_gets_back_its_bag_and_its_hook_handlers_do_not_run_again() {
    let store = Arc::new(MemoryStore::default());
    let world = Arc::new(World::default());
    let run_id = crash_in_capture(&store, &world).await;

    let engine = engine_with(&store, &world, false);
    let report = engine.resume_pending().await.unwrap();
    assert_eq!(
        report.resumed,
        [(run_id, RunStatus::Completed)],
        "{report:?}"
    );

    let (record, _) = store.load(run_id).await.unwrap();
    // The intent `authorize` put in the bag, and the amount `validate` screened, came back
    // from the journal: `authorize` and `validate` did not run again.
    assert_eq!(
        record.output,
        Some(serde_json::json!("captured 200 on pi_200 (screened 200)"))
    );
    assert_eq!(
        world.validated.load(Ordering::SeqCst),
        1,
        "validate ran again"
    );
    assert_eq!(
        world.authorized.load(Ordering::SeqCst),
        1,
        "authorize ran again"
    );
    assert_eq!(world.notified.load(Ordering::SeqCst), 1, "notify ran again");
    // The step in flight runs again (with the same idempotency key).
    assert_eq!(world.captured.load(Ordering::SeqCst), 2);
    // The jobs of the replayed step and handler came back from the journal, the body's was
    // enqueued again: each dispatched once, with the ids the first execution gave them.
    assert_eq!(
        *world.dispatched.lock().unwrap(),
        [
            format!("{run_id}/step0/0"),
            format!("{run_id}/hook1.0/0"),
            format!("{run_id}/body/0"),
        ]
    );
}

#[tokio::test]
async fn a_run_whose_hook_handlers_changed_since_the_crash_is_parked() {
    let store = Arc::new(MemoryStore::default());
    let world = Arc::new(World::default());
    let run_id = crash_in_capture(&store, &world).await;

    // A plugin added a handler on `authorized` between the crash and the resume.
    let changed = engine_with(&store, &world, true);
    assert_eq!(changed.resume(run_id).await.unwrap(), RunStatus::Parked);
    let (record, events) = store.load(run_id).await.unwrap();
    assert_eq!(record.status, StoredStatus::Parked);
    let reason = events
        .iter()
        .find_map(|e| match &e.kind {
            hookflow::EventKind::RunParked { reason } => Some(reason.clone()),
            _ => None,
        })
        .expect("a RunParked event");
    assert!(
        reason.contains("replay mismatch at hook `authorized` (firing #1)")
            && reason.contains("audit"),
        "{reason}"
    );
    assert_eq!(world.notified.load(Ordering::SeqCst), 1, "notify ran again");
    assert_eq!(
        world.captured.load(Ordering::SeqCst),
        1,
        "capture ran again"
    );

    // Registered as before, it resumes and completes.
    let same = engine_with(&store, &world, false);
    assert_eq!(same.resume(run_id).await.unwrap(), RunStatus::Completed);
}

#[tokio::test]
async fn without_a_store_nothing_more_is_journaled() {
    let world = Arc::new(World::default());
    let mut hooks = Hooks::new();
    Pay::hooks(&mut hooks).validate(validate).authorized(notify);
    let engine = Engine::builder()
        .hooks(hooks)
        .service(Arc::clone(&world))
        .build();
    let outcome = engine.run::<Pay>(order()).await;
    assert!(outcome.is_completed(), "{:?}", outcome.error());
    assert!(!outcome.journal().kinds().any(|k| matches!(
        k,
        hookflow::EventKind::BagWritten { .. }
            | hookflow::EventKind::HookHandlerCompleted { data: Some(_), .. }
    )));
}

//! Forking a run from a step into a new run (`Engine::fork`): the new run has the same
//! workflow, version and input, and a journal that begins with the original's up to the step;
//! replayed, the steps before it return what the original recorded and the steps from it run
//! again (effects counted), with the new run's idempotency keys. The original is left as it
//! was; a step out of range or inside a `parallel!` group is refused; an engine that does not
//! know the workflow leaves the fork to one that does. On every store.

use std::sync::Arc;
use std::time::Duration;

use crate::retry::{Agency, Trip, TripError, book, pay};
use hookflow::prelude::*;
use hookflow::store::Store;
use hookflow::{Actor, EventKind, ForkError, RunId, StoredStatus};

#[workflow]
async fn tour(ctx: &WorkflowContext, who: String) -> Result<u32, TripError> {
    hookflow::parallel!(book(ctx, "museum".into()), book(ctx, "boat".into()),)?;
    book(ctx, "dinner".into()).await?;
    pay(ctx, u32::try_from(who.len()).unwrap_or(0)).await
}

fn engine<S: Store>(store: &Arc<S>, agency: &Arc<Agency>, knows: bool) -> Engine {
    let builder = Engine::builder()
        .store(Arc::clone(store))
        .service(Arc::clone(agency));
    if knows {
        builder.workflow::<Trip>().workflow::<Tour>().build()
    } else {
        builder.build()
    }
}

/// Waits (with a deadline) until run `run_id` is finished in the store, and returns its
/// status.
async fn finished(engine: &Engine, run_id: RunId) -> StoredStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = engine.status(run_id).await.unwrap().status;
        if status.is_finished() {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {run_id} is {status}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn a_run_forked_from_step_2_runs_again_only_steps_2_on<S: Store>(store: Arc<S>) {
    let agency = Arc::new(Agency::default());
    let engine = engine(&store, &agency, true);
    let original = engine.run::<Trip>("ada".into()).await;
    assert_eq!(original.status(), RunStatus::Completed);
    let (_, original_journal) = store.load(original.run_id()).await.unwrap();

    let forked = engine
        .fork(original.run_id(), 2, Actor::user("ops"))
        .await
        .unwrap();
    assert_ne!(forked, original.run_id());
    assert_eq!(finished(&engine, forked).await, StoredStatus::Completed);

    // Steps 0 and 1 ran once (in the original), steps 2 and 3 twice: once per run, with
    // each run's keys.
    assert_eq!(agency.count("book flight "), 1, "{:?}", agency.log());
    assert_eq!(agency.count("book hotel "), 1);
    assert_eq!(agency.count("book car "), 2);
    assert_eq!(agency.count("pay 3 "), 2);
    assert_eq!(agency.count(&format!("book car {forked}:2:book")), 1);
    assert_eq!(agency.count(&format!("pay 3 {forked}:3:pay")), 1);

    let (record, events) = store.load(forked).await.unwrap();
    assert_eq!(record.workflow, "trip");
    assert_eq!(record.input, serde_json::json!("ada"));
    assert_eq!(record.output, Some(serde_json::json!(3)));
    assert!(matches!(
        &events[1].kind,
        EventKind::Forked { from, at_step: 2, actor } if *from == original.run_id() && actor.id() == "ops"
    ));
    let summary = engine.status(forked).await.unwrap();
    let step = summary.current_step.unwrap();
    assert_eq!(
        (step.name.as_str(), step.position, step.in_flight),
        ("pay", 3, false)
    );
    // The original is left as it was.
    let (original_record, after) = store.load(original.run_id()).await.unwrap();
    assert_eq!(after, original_journal);
    assert_eq!(original_record.status, StoredStatus::Completed);
}

async fn a_fork_after_a_parallel_group_replays_the_group<S: Store>(store: Arc<S>) {
    let agency = Arc::new(Agency::default());
    let engine = engine(&store, &agency, true);
    let original = engine.run::<Tour>("bo".into()).await;
    assert_eq!(original.status(), RunStatus::Completed);

    for inside in [0, 1] {
        let refused = engine
            .fork(original.run_id(), inside, Actor::user("ops"))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ForkError::InParallel { step, .. } if step == inside),
            "{refused:?}"
        );
    }
    let refused = engine
        .fork(original.run_id(), 4, Actor::user("ops"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            ForkError::NoSuchStep {
                step: 4,
                started: 4,
                ..
            }
        ),
        "{refused:?}"
    );
    assert!(matches!(
        engine.fork(RunId::generate(), 0, Actor::user("ops")).await,
        Err(ForkError::UnknownRun(_))
    ));

    let forked = engine
        .fork(original.run_id(), 2, Actor::user("ops"))
        .await
        .unwrap();
    assert_eq!(finished(&engine, forked).await, StoredStatus::Completed);
    assert_eq!(agency.count("book museum "), 1, "{:?}", agency.log());
    assert_eq!(agency.count("book boat "), 1);
    assert_eq!(agency.count("book dinner "), 2);
    assert_eq!(agency.count("pay 2 "), 2);
}

async fn an_engine_without_the_workflow_leaves_the_fork_to_one_that_knows_it<S: Store>(
    store: Arc<S>,
) {
    let agency = Arc::new(Agency::default());
    let blind = engine(&store, &agency, false);
    let original = blind.run::<Trip>("cy".into()).await;
    assert_eq!(original.status(), RunStatus::Completed);
    let forked = blind
        .fork(original.run_id(), 0, Actor::user("ops"))
        .await
        .unwrap();
    let summary = blind.status(forked).await.unwrap();
    assert_eq!(summary.status, StoredStatus::Running);
    assert_eq!(summary.current_step, None);
    assert_eq!(agency.count("book flight "), 1);

    let knowing = engine(&store, &agency, true);
    assert_eq!(knowing.resume(forked).await.unwrap(), RunStatus::Completed);
    assert_eq!(
        agency.count("book flight "),
        2,
        "from step 0, everything runs again"
    );
    assert_eq!(agency.count("pay 2 "), 2);
}

on_every_store!(
    #[tokio::test]
    a_run_forked_from_step_2_runs_again_only_steps_2_on,
    a_fork_after_a_parallel_group_replays_the_group,
    an_engine_without_the_workflow_leaves_the_fork_to_one_that_knows_it,
);

#[tokio::test]
async fn an_engine_without_a_store_has_nothing_to_fork() {
    assert!(matches!(
        Engine::new()
            .fork(RunId::generate(), 0, Actor::user("ops"))
            .await,
        Err(ForkError::NoStore(_))
    ));
}

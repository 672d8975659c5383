//! Schedules (issue 16): recurring runs of a workflow, kept in the store.
//!
//! - On the memory store, with the time of each firing given (`Engine::fire_schedules_at`):
//!   the tick arithmetic (intervals from the anchor), the overlap policies (a tick skipped
//!   while the last tick's run is in flight, or started anyway), the catch-up policies after
//!   downtime (the latest missed tick once, or none), and a tick decided by a scheduler that
//!   died before recording its run, recorded by the next.
//! - On every store: a schedule registered on one engine is seen (and redefined) by another;
//!   engines firing the same ticks at once start each tick once, each run under its tick's
//!   idempotency key.
//!
//! Worker processes firing a one-second schedule on one PostgreSQL database, one of them
//! killed: `schedule_workers`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookflow::prelude::*;
use hookflow::store::{MemoryStore, ScheduleRecord, Store};
use hookflow::{
    CatchUp, FireReport, Overlap, RunId, RunRecord, ScheduleError, ScheduleOptions, Spec,
    SpecError, StoredStatus, TickAction, schedule_key,
};

#[derive(Debug, thiserror::Error)]
#[error("a heartbeat never fails")]
struct Never;

#[step]
async fn beat(_ctx: &StepContext, label: String) -> Result<String, Never> {
    Ok(label)
}

#[workflow]
async fn heartbeat(ctx: &WorkflowContext, label: String) -> Result<String, Never> {
    beat(ctx, label).await
}

const S: u64 = 1_000_000;

fn at(micros: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros)
}

fn engine(store: Arc<dyn Store>) -> Engine {
    Engine::builder()
        .store(store)
        .workflow::<Heartbeat>()
        .build()
}

async fn schedule(engine: &Engine, name: &str) -> ScheduleRecord {
    let found = engine.schedules().await.unwrap();
    assert!(found.unreadable.is_empty(), "{:?}", found.unreadable);
    found
        .schedules
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no schedule `{name}`"))
}

async fn fire(engine: &Engine, micros: u64) -> FireReport {
    let report = engine.fire_schedules_at(at(micros)).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report
}

/// The ticks a firing decided, as `(tick, action)`.
fn decided(report: &FireReport) -> Vec<(u64, TickAction)> {
    report
        .ticks
        .iter()
        .map(|t| (t.at_micros, t.action.clone()))
        .collect()
}

fn started(report: &FireReport) -> RunId {
    match decided(report).as_slice() {
        [(_, TickAction::Started(run_id))] => *run_id,
        other => panic!("expected one tick started, got {other:?}"),
    }
}

async fn heartbeats(store: &dyn Store) -> Vec<RunRecord> {
    store
        .list(None, Some(Heartbeat::META.name()), usize::MAX)
        .await
        .unwrap()
        .runs
}

// ---- tick arithmetic and policies, on the memory store --------------------------------------

#[tokio::test]
async fn ticks_come_every_interval_from_the_anchor_and_skip_while_the_last_run_is_in_flight() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(store.clone());
    let every = Spec::every(Duration::from_secs(10)).unwrap();
    engine
        .schedule::<Heartbeat>("pulse", every, "p".into())
        .await
        .unwrap();
    let a = schedule(&engine, "pulse").await.anchor_micros;

    // Not due before the first interval; the report says when to look again.
    let report = fire(&engine, a + 9 * S).await;
    assert!(report.ticks.is_empty(), "{:?}", report.ticks);
    assert_eq!(report.next_micros, Some(a + 10 * S));

    let report = fire(&engine, a + 10 * S).await;
    let first = started(&report);
    assert_eq!(decided(&report)[0].0, a + 10 * S);
    assert_eq!(report.next_micros, Some(a + 20 * S));
    // The same moment again, or a little later: nothing more.
    assert!(fire(&engine, a + 10 * S).await.ticks.is_empty());
    assert!(fire(&engine, a + 19 * S).await.ticks.is_empty());
    let (run, _) = store.load(first).await.unwrap();
    assert_eq!(
        run.idempotency_key.as_deref(),
        Some(schedule_key("pulse", a + 10 * S).as_str())
    );
    assert_eq!(run.input, serde_json::json!("p"));
    assert_eq!(run.status, StoredStatus::Running, "enqueued, for a worker");

    // The first run is still in flight (no worker took it): the next tick is skipped.
    let report = fire(&engine, a + 20 * S).await;
    assert_eq!(
        decided(&report),
        [(a + 20 * S, TickAction::Overlapped { running: first })]
    );
    assert_eq!(heartbeats(&*store).await.len(), 1);
    let recorded = schedule(&engine, "pulse").await;
    assert_eq!(recorded.last_tick_micros, Some(a + 20 * S));
    assert_eq!(recorded.last_run_id, Some(first));

    // Once it is over, the next tick runs.
    assert_eq!(engine.resume(first).await.unwrap(), RunStatus::Completed);
    let second = started(&fire(&engine, a + 30 * S).await);
    assert_ne!(second, first);
    assert_eq!(heartbeats(&*store).await.len(), 2);
}

#[tokio::test]
async fn overlap_allow_starts_each_tick_while_the_last_runs() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(store.clone());
    let options = ScheduleOptions::new().overlap(Overlap::Allow);
    engine
        .schedule_with::<Heartbeat>(
            "pulse",
            Spec::every(Duration::from_secs(10)).unwrap(),
            "p".into(),
            options,
        )
        .await
        .unwrap();
    let a = schedule(&engine, "pulse").await.anchor_micros;
    let first = started(&fire(&engine, a + 10 * S).await);
    let second = started(&fire(&engine, a + 20 * S).await);
    assert_ne!(first, second);
    let keys: Vec<_> = heartbeats(&*store)
        .await
        .into_iter()
        .map(|r| (r.status, r.idempotency_key.unwrap()))
        .collect();
    assert_eq!(keys.len(), 2);
    for tick in [a + 10 * S, a + 20 * S] {
        assert!(
            keys.contains(&(StoredStatus::Running, schedule_key("pulse", tick))),
            "{keys:?}"
        );
    }
}

#[tokio::test]
async fn after_downtime_the_latest_missed_tick_runs_once() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(store.clone());
    engine
        .schedule::<Heartbeat>(
            "pulse",
            Spec::every(Duration::from_secs(10)).unwrap(),
            "p".into(),
        )
        .await
        .unwrap();
    let a = schedule(&engine, "pulse").await.anchor_micros;
    let first = started(&fire(&engine, a + 10 * S).await);
    engine.resume(first).await.unwrap();

    // Down from a+10 s to a+95 s: eight ticks missed (20 ... 90); the latest runs, once.
    let report = fire(&engine, a + 95 * S).await;
    assert_eq!(decided(&report).len(), 1, "{:?}", report.ticks);
    assert_eq!(decided(&report)[0].0, a + 90 * S);
    let caught_up = started(&report);
    assert!(fire(&engine, a + 99 * S).await.ticks.is_empty());
    let runs = heartbeats(&*store).await;
    assert_eq!(runs.len(), 2, "one run for the missed ticks");
    let (run, _) = store.load(caught_up).await.unwrap();
    assert_eq!(run.idempotency_key, Some(schedule_key("pulse", a + 90 * S)));
    engine.resume(caught_up).await.unwrap();
    // Then the schedule goes on.
    started(&fire(&engine, a + 100 * S).await);
}

#[tokio::test]
async fn after_downtime_missed_ticks_are_skipped_under_catch_up_skip() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(store.clone());
    engine
        .schedule_with::<Heartbeat>(
            "pulse",
            Spec::every(Duration::from_secs(10)).unwrap(),
            "p".into(),
            ScheduleOptions::new().catch_up(CatchUp::Skip),
        )
        .await
        .unwrap();
    let a = schedule(&engine, "pulse").await.anchor_micros;
    // On time (a little late): it runs.
    let first = started(&fire(&engine, a + 12 * S).await);
    engine.resume(first).await.unwrap();

    // Down for ten minutes: the tick due when it comes back (a+610 s, 5 s late: half its
    // period) is missed, and skipped; no run.
    let report = fire(&engine, a + 615 * S).await;
    assert_eq!(decided(&report), [(a + 610 * S, TickAction::Missed)]);
    assert_eq!(heartbeats(&*store).await.len(), 1);
    assert_eq!(
        schedule(&engine, "pulse").await.last_tick_micros,
        Some(a + 610 * S)
    );
    // The next tick, on time, runs.
    let next = started(&fire(&engine, a + 620 * S).await);
    let (run, _) = store.load(next).await.unwrap();
    assert_eq!(
        run.idempotency_key,
        Some(schedule_key("pulse", a + 620 * S))
    );
}

#[tokio::test]
async fn a_tick_decided_by_a_scheduler_that_died_is_recorded_by_the_next() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(store.clone());
    engine
        .schedule::<Heartbeat>(
            "pulse",
            Spec::every(Duration::from_secs(10)).unwrap(),
            "p".into(),
        )
        .await
        .unwrap();
    let a = schedule(&engine, "pulse").await.anchor_micros;
    // A scheduler won the tick at a+10 s and died before recording its run.
    let decided_run = RunId::generate();
    assert!(
        store
            .advance_schedule("pulse", None, a + 10 * S, Some(decided_run))
            .await
            .unwrap()
    );
    // Another worker's compare-and-set from the same last tick loses.
    assert!(
        !store
            .advance_schedule("pulse", None, a + 10 * S, Some(RunId::generate()))
            .await
            .unwrap()
    );
    assert!(!schedule(&engine, "pulse").await.started);

    let report = fire(&engine, a + 11 * S).await;
    assert_eq!(
        decided(&report),
        [(a + 10 * S, TickAction::Recovered(decided_run))]
    );
    let (run, _) = store.load(decided_run).await.unwrap();
    assert_eq!(run.idempotency_key, Some(schedule_key("pulse", a + 10 * S)));
    assert!(schedule(&engine, "pulse").await.started);
    assert_eq!(heartbeats(&*store).await.len(), 1);
    assert!(fire(&engine, a + 11 * S).await.ticks.is_empty());
}

#[tokio::test]
async fn a_tick_recorded_before_its_schedule_changed_input_is_not_recorded_again() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(store.clone());
    let every = || Spec::every(Duration::from_secs(10)).unwrap();
    engine
        .schedule::<Heartbeat>("pulse", every(), "old".into())
        .await
        .unwrap();
    let a = schedule(&engine, "pulse").await.anchor_micros;
    // A scheduler decided the tick at a+10 s, recorded its run with the old input, and died
    // before marking it recorded; then the schedule was redefined with a new input.
    let run_id = RunId::generate();
    assert!(
        store
            .advance_schedule("pulse", None, a + 10 * S, Some(run_id))
            .await
            .unwrap()
    );
    let enqueued = engine
        .enqueue_with::<Heartbeat>(
            "old".into(),
            RunOptions::new()
                .run_id(run_id)
                .idempotency_key(schedule_key("pulse", a + 10 * S)),
        )
        .await
        .unwrap();
    assert_eq!(enqueued, run_id);
    engine
        .schedule::<Heartbeat>("pulse", every(), "new".into())
        .await
        .unwrap();
    // The next scheduler finds the tick's run under its key and id: nothing more, no error.
    let report = fire(&engine, a + 11 * S).await;
    assert!(report.ticks.is_empty(), "{:?}", report.ticks);
    assert!(schedule(&engine, "pulse").await.started);
    assert_eq!(heartbeats(&*store).await.len(), 1);
    // Once it is over, the next tick runs, with the new input.
    assert_eq!(engine.resume(run_id).await.unwrap(), RunStatus::Completed);
    let next = started(&fire(&engine, a + 20 * S).await);
    let (run, _) = store.load(next).await.unwrap();
    assert_eq!(run.input, serde_json::json!("new"));
}

#[tokio::test]
async fn cron_schedules_tick_at_matching_utc_seconds() {
    let store = Arc::new(MemoryStore::new());
    let engine = engine(store.clone());
    engine
        .schedule_with::<Heartbeat>(
            "every-2s",
            Spec::cron("*/2 * * * * *").unwrap(),
            "c".into(),
            ScheduleOptions::new().overlap(Overlap::Allow),
        )
        .await
        .unwrap();
    let a = schedule(&engine, "every-2s").await.anchor_micros;
    // The first even second strictly after the anchor.
    let first = (a / S + 1).next_multiple_of(2) * S;
    assert_eq!(fire(&engine, first - 1).await.next_micros, Some(first));
    let report = fire(&engine, first + 1).await;
    started(&report);
    assert_eq!(decided(&report)[0].0, first);
    assert_eq!(report.next_micros, Some(first + 2 * S));
    started(&fire(&engine, first + 2 * S).await);
}

#[tokio::test]
async fn bad_specs_and_names_are_typed_errors_that_say_why() {
    let err = Spec::cron("*/5 * * 13 *").unwrap_err();
    assert!(
        matches!(&err, SpecError::Cron { expression, .. } if expression == "*/5 * * 13 *"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("bad cron expression `*/5 * * 13 *`: ") && message.len() > 40,
        "{message}"
    );
    assert!(matches!(
        Spec::every(Duration::ZERO),
        Err(SpecError::Interval(_))
    ));

    let every = || Spec::every(Duration::from_secs(1)).unwrap();
    let err = Engine::new()
        .schedule::<Heartbeat>("pulse", every(), "p".into())
        .await
        .unwrap_err();
    assert!(matches!(err, ScheduleError::NoStore { .. }), "{err:?}");
    let engine = engine(Arc::new(MemoryStore::new()));
    let err = engine
        .schedule::<Heartbeat>("", every(), "p".into())
        .await
        .unwrap_err();
    assert!(matches!(err, ScheduleError::Name { .. }), "{err:?}");
    assert!(engine.schedules().await.unwrap().schedules.is_empty());
}

// ---- on every store ---------------------------------------------------------------------------

async fn a_schedule_registered_on_one_engine_is_seen_and_redefined_by_another(
    store: Arc<dyn Store>,
) {
    let first = engine(store.clone());
    let second = Engine::builder()
        .store(store.clone())
        .workflow::<Heartbeat>()
        .worker_id("second")
        .build();
    first
        .schedule::<Heartbeat>("nightly", Spec::cron("0 3 * * *").unwrap(), "n".into())
        .await
        .unwrap();
    let seen = schedule(&second, "nightly").await;
    assert_eq!(seen.workflow, Heartbeat::META.name());
    assert_eq!(seen.spec, "0 3 * * *");
    assert_eq!(seen.input, serde_json::json!("n"));
    assert_eq!(
        (seen.overlap, seen.catch_up),
        (Overlap::Skip, CatchUp::Latest)
    );
    assert_eq!(seen.last_tick_micros, None);

    // A tick fired by the second engine is seen by the first.
    let tick = seen.anchor_micros + 86_400 * S;
    let report = second.fire_schedules_at(at(tick)).await.unwrap();
    assert_eq!(report.ticks.len(), 1, "{report:?}");
    let fired = schedule(&first, "nightly").await;
    assert!(fired.last_tick_micros.is_some());
    assert!(fired.started);

    // Registered again by the other engine, with another spec and input: redefined, its
    // ticks kept.
    second
        .schedule_with::<Heartbeat>(
            "nightly",
            Spec::every(Duration::from_secs(60)).unwrap(),
            "m".into(),
            ScheduleOptions::new().overlap(Overlap::Allow),
        )
        .await
        .unwrap();
    let redefined = schedule(&first, "nightly").await;
    assert_eq!(redefined.spec, "every 1m");
    assert_eq!(redefined.input, serde_json::json!("m"));
    assert_eq!(redefined.overlap, Overlap::Allow);
    assert_eq!(redefined.last_tick_micros, fired.last_tick_micros);
    assert_eq!(redefined.last_run_id, fired.last_run_id);
    assert!(redefined.anchor_micros >= seen.anchor_micros);
    assert_eq!(first.schedules().await.unwrap().schedules.len(), 1);

    assert!(second.unschedule("nightly").await.unwrap());
    assert!(!first.unschedule("nightly").await.unwrap());
    assert!(first.schedules().await.unwrap().schedules.is_empty());
}

async fn engines_firing_the_same_ticks_at_once_start_each_tick_once(store: Arc<dyn Store>) {
    const ENGINES: usize = 4;
    const TICKS: u64 = 20;
    let engines: Vec<Engine> = (0..ENGINES)
        .map(|i| {
            Engine::builder()
                .store(store.clone())
                .workflow::<Heartbeat>()
                .worker_id(format!("engine-{i}"))
                .build()
        })
        .collect();
    // Allow: the runs stay enqueued (no worker here), and every tick must still start.
    engines[0]
        .schedule_with::<Heartbeat>(
            "pulse",
            Spec::every(Duration::from_secs(1)).unwrap(),
            "p".into(),
            ScheduleOptions::new().overlap(Overlap::Allow),
        )
        .await
        .unwrap();
    let a = schedule(&engines[0], "pulse").await.anchor_micros;
    // Each tick, every engine fires at once, each at a slightly different moment after it.
    let mut decisions: BTreeMap<u64, Vec<(usize, RunId)>> = BTreeMap::new();
    // Runs recorded by an engine for a tick another decided, caught between its decision and
    // its recording.
    let mut recovered: Vec<(u64, RunId)> = Vec::new();
    for k in 1..=TICKS {
        let mut firing = tokio::task::JoinSet::new();
        for (i, engine) in engines.iter().enumerate() {
            let engine = engine.clone();
            let now = a + k * S + i as u64 * 1_000;
            firing.spawn(async move { (i, engine.fire_schedules_at(at(now)).await) });
        }
        while let Some(done) = firing.join_next().await {
            let (i, report) = done.unwrap();
            let report = report.unwrap();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            for tick in report.ticks {
                match tick.action {
                    TickAction::Started(run_id) => {
                        decisions
                            .entry(tick.at_micros)
                            .or_default()
                            .push((i, run_id));
                    }
                    TickAction::Recovered(run_id) => recovered.push((tick.at_micros, run_id)),
                    other => panic!("tick {} {other:?}", tick.at_micros),
                }
            }
        }
    }
    // Each tick was decided by one engine, and recorded once, under its tick's key.
    let ticks: Vec<u64> = (1..=TICKS).map(|k| a + k * S).collect();
    assert_eq!(decisions.keys().copied().collect::<Vec<_>>(), ticks);
    for (tick, deciders) in &decisions {
        assert_eq!(deciders.len(), 1, "tick {tick} decided by {deciders:?}");
    }
    for (tick, run_id) in &recovered {
        assert_eq!(
            decisions[tick][0].1, *run_id,
            "tick {tick}: recovered another run than the one decided"
        );
    }
    let runs = heartbeats(&*store).await;
    assert_eq!(runs.len(), ticks.len(), "one run per tick");
    for (tick, deciders) in &decisions {
        let run = runs
            .iter()
            .find(|r| r.run_id == deciders[0].1)
            .unwrap_or_else(|| panic!("the run of tick {tick} is missing"));
        assert_eq!(run.idempotency_key, Some(schedule_key("pulse", *tick)));
    }
}

on_every_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    a_schedule_registered_on_one_engine_is_seen_and_redefined_by_another,
    engines_firing_the_same_ticks_at_once_start_each_tick_once,
);

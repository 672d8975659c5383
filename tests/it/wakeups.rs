//! Wake-ups: an idle worker starts a run as soon as it is enqueued, not at its next poll.
//!
//! - On every store (memory, SQLite, PostgreSQL), a worker whose poll interval is 10 s starts
//!   runs enqueued while it is idle within [`PROMPT`]: in memory and SQLite through the
//!   store's in-process signal, in PostgreSQL through `NOTIFY`/`LISTEN`.
//! - With its wake-ups lost (`Worker::wake_ups(false)`: what a worker has while the
//!   PostgreSQL listener is down), a worker still starts them at its next poll.
//! - PostgreSQL: a run enqueued through another connection pool (another process) wakes the
//!   worker; when the listening connection is killed, it listens again and wake-ups resume.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookflow::prelude::*;
use hookflow::store::postgres::PostgresStore;
use hookflow::store::{Store, StoredStatus};
use hookflow::{RunId, Worker};
use tokio_postgres::NoTls;

use crate::support::postgres::pg_database;

/// How soon a woken worker must have finished a one-step run. Far below the 10 s poll
/// interval of the workers under test, far above what a wake-up takes (a few milliseconds).
const PROMPT: Duration = Duration::from_secs(3);

/// The poll interval of the workers that must be woken: a run found by polling comes too
/// late for [`PROMPT`].
const LONG_POLL: Duration = Duration::from_secs(10);

/// How long an idle worker is left before a run is enqueued, so that it has made its first
/// (empty) claim and waits: there is no signal to await for "the worker is waiting".
const SETTLE: Duration = Duration::from_millis(300);

#[derive(Debug, thiserror::Error)]
#[error("never fails")]
struct Never;

#[step]
async fn ping(_ctx: &StepContext, n: u32) -> Result<u32, Never> {
    Ok(n)
}

#[workflow(name = "wakeup_ping")]
async fn pinger(ctx: &WorkflowContext, n: u32) -> Result<u32, Never> {
    ping(ctx, n).await
}

fn engine(store: Arc<dyn Store>, worker: &str) -> Engine {
    Engine::builder()
        .worker_id(worker)
        .store(store)
        .workflow::<Pinger>()
        .build()
}

/// How long run `run_id` took to complete, or a panic if it did not within `within`.
async fn completes(store: &dyn Store, run_id: RunId, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let status = store.load(run_id).await.unwrap().0.status;
        if status == StoredStatus::Completed {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "run {run_id} is still {status} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Enqueues runs one after another while `worker` idles, each through `enqueuer`; each must
/// complete (in `store`) within `within`.
async fn enqueued_runs_complete_within(
    enqueuer: &Engine,
    store: &dyn Store,
    runs: u32,
    within: Duration,
) {
    for n in 0..runs {
        tokio::time::sleep(SETTLE).await;
        let run_id = enqueuer.enqueue::<Pinger>(n).await.unwrap();
        completes(store, run_id, within).await;
    }
}

// Scenarios: each runs on every store.

async fn an_idle_worker_with_a_long_poll_starts_an_enqueued_run_at_once(store: Arc<dyn Store>) {
    let engine = engine(Arc::clone(&store), "woken");
    let worker = Worker::new(&engine)
        .poll_interval(LONG_POLL)
        .start()
        .unwrap();
    enqueued_runs_complete_within(&engine, &*store, 3, PROMPT).await;
    let report = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.completed, 3);
}

async fn a_worker_whose_wake_ups_are_lost_still_finds_runs_by_polling(store: Arc<dyn Store>) {
    let engine = engine(Arc::clone(&store), "polling");
    let worker = Worker::new(&engine)
        .poll_interval(Duration::from_millis(200))
        .wake_ups(false)
        .start()
        .unwrap();
    enqueued_runs_complete_within(&engine, &*store, 3, PROMPT).await;
    let report = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.completed, 3);
}

on_every_store!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_idle_worker_with_a_long_poll_starts_an_enqueued_run_at_once,
    a_worker_whose_wake_ups_are_lost_still_finds_runs_by_polling,
);

/// Without wake-ups, the long poll is what an idle worker waits: the tests above would not
/// pass by chance (a worker that found the runs at its first claim).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_wake_ups_an_idle_worker_waits_for_its_poll() {
    let store: Arc<dyn Store> = Arc::new(hookflow::store::MemoryStore::new());
    let engine = engine(Arc::clone(&store), "deaf");
    let worker = Worker::new(&engine)
        .poll_interval(LONG_POLL)
        .wake_ups(false)
        .start()
        .unwrap();
    tokio::time::sleep(SETTLE).await;
    let run_id = engine.enqueue::<Pinger>(1).await.unwrap();
    tokio::time::sleep(PROMPT).await;
    let status = store.load(run_id).await.unwrap().0.status;
    assert_eq!(status, StoredStatus::Running, "started before its poll");
    worker.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_enqueued_by_another_process_wakes_a_postgres_worker() {
    let url = pg_database("wakeup_other_process");
    let here: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    // Another process: a store of its own, with its own connections.
    let there: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let worker = Worker::new(&engine(Arc::clone(&here), "here"))
        .poll_interval(LONG_POLL)
        .start()
        .unwrap();
    let enqueuer = engine(there, "there");
    enqueued_runs_complete_within(&enqueuer, &*here, 3, PROMPT).await;
    let report = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.completed, 3);
}

/// The listening connection's backend, once it listens: its pid.
async fn listener(admin: &tokio_postgres::Client, not: Option<i32>) -> i32 {
    let start = Instant::now();
    loop {
        let rows = admin
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE application_name = 'hookflow-wakeups' AND datname = current_database()
                    AND query LIKE 'LISTEN%'",
                &[],
            )
            .await
            .unwrap();
        let pids: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
        if let [pid] = pids[..] {
            if Some(pid) != not {
                return pid;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no new listening connection: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listening_connection_listens_again_and_wake_ups_resume() {
    let url = pg_database("wakeup_listener_killed");
    let (admin, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let engine = engine(Arc::clone(&store), "relistening");
    let worker = Worker::new(&engine)
        .poll_interval(LONG_POLL)
        .start()
        .unwrap();
    let first = listener(&admin, None).await;
    enqueued_runs_complete_within(&engine, &*store, 1, PROMPT).await;

    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&first])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    let second = listener(&admin, Some(first)).await;
    assert_ne!(first, second);
    enqueued_runs_complete_within(&engine, &*store, 2, PROMPT).await;
    let report = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.completed, 3);
}

//! Schedules fired by worker processes on one PostgreSQL database (issue 16).
//!
//! `three_workers_start_each_tick_of_a_one_second_schedule_once_even_when_one_is_killed`:
//! three worker processes (this test binary executed again, as `workers` does; the entry
//! point is the ignored test `schedule_workers::scheduler_process`) run their schedulers on a
//! one-second schedule for twenty-odd ticks; one of them is killed with SIGKILL in the middle,
//! while it holds a run. Each run's step records its effect in a ledger table of the same
//! database, keyed by the step's idempotency key. At the end: one run per tick, for every
//! tick from the first to the last (none skipped, none twice), each under its tick's
//! idempotency key, each completed, each effect in the ledger exactly once, and the runs
//! executed by more than one worker.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookflow::prelude::*;
use hookflow::store::postgres::PostgresStore;
use hookflow::store::{Store, StoredStatus};
use hookflow::{Overlap, ScheduleOptions, Spec, Worker, schedule_key};

use crate::support::pg_client::pg_client as connect;
use crate::support::postgres::pg_database;

/// Set in a worker process: the URL of the database it works on.
const CHILD: &str = "HOOKFLOW_SCHEDULE_CHILD";
/// Set in a worker process: its worker id.
const CHILD_ID: &str = "HOOKFLOW_SCHEDULE_ID";
/// A worker process's entry point, as the test harness names it.
const CHILD_TEST: &str = "schedule_workers::scheduler_process";

/// The schedule, its period, and how many ticks the test lets it fire at least.
const SCHEDULE: &str = "tock";
const PERIOD: Duration = Duration::from_secs(1);
const TICKS: u64 = 20;
/// The workers' lease: the killed worker's runs are taken over after this at most.
const LEASE: Duration = Duration::from_secs(2);

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS tock_ledger (
    key TEXT PRIMARY KEY, run_id TEXT NOT NULL, worker TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1)";

/// The external system the step writes to: an effect per idempotency key (a repeat, after a
/// kill, only counts an attempt).
struct Ledger {
    client: tokio_postgres::Client,
    worker: String,
}

#[derive(Debug, thiserror::Error)]
enum TockError {
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[step]
async fn record_tock(ctx: &StepContext, n: u32) -> Result<u32, TockError> {
    let ledger = ctx.service::<Ledger>()?;
    // Long enough for the kill to land inside a run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ledger
        .client
        .execute(
            "INSERT INTO tock_ledger (key, run_id, worker) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET attempts = tock_ledger.attempts + 1",
            &[
                &ctx.idempotency_key(),
                &ctx.run_id().to_string(),
                &ledger.worker,
            ],
        )
        .await
        .expect("record an effect");
    Ok(n)
}

#[workflow]
async fn tock(ctx: &WorkflowContext, n: u32) -> Result<u32, TockError> {
    record_tock(ctx, n).await
}

/// A worker process: works on the database in `HOOKFLOW_SCHEDULE_CHILD` as worker
/// `HOOKFLOW_SCHEDULE_ID`, its scheduler firing the schedules, until its stdin closes (or it
/// is killed). Ignored: the schedule test runs it in a process of its own.
#[test]
#[ignore = "child process of schedule_workers::three_workers_start_each_tick_of_a_one_second_schedule_once_even_when_one_is_killed, run by it"]
fn scheduler_process() {
    let Ok(url) = std::env::var(CHILD) else {
        return; // Not a worker process (`--ignored` without the parent): nothing to do.
    };
    let id = std::env::var(CHILD_ID).unwrap();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = PostgresStore::connect(&url).await.unwrap();
            let ledger = Ledger {
                client: connect(&url).await,
                worker: id.clone(),
            };
            let engine = Engine::builder()
                .worker_id(id.clone())
                .lease(LEASE)
                .store(store)
                .service(ledger)
                .workflow::<Tock>()
                .build();
            let reported = id.clone();
            let worker = Worker::new(&engine)
                .poll_interval(Duration::from_millis(50))
                .on_error(move |error| eprintln!("worker {reported}: {error}"))
                .start()
                .unwrap();
            tokio::task::spawn_blocking(|| {
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
            })
            .await
            .unwrap();
            let report = worker.shutdown(Duration::from_secs(5)).await;
            println!("SCHEDULER-REPORT {id} {report:?}");
        });
}

fn spawn_worker(url: &str, id: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, url)
        .env(CHILD_ID, id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn three_workers_start_each_tick_of_a_one_second_schedule_once_even_when_one_is_killed() {
    let url = pg_database("schedule_workers");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let start = Instant::now();
        let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
        let client = connect(&url).await;
        client.batch_execute(LEDGER).await.unwrap();
        // Registered here; fired only by the workers. Overlap allowed: a run held by the
        // killed worker must not make the next ticks skip.
        let engine = Engine::builder().store(store.clone()).build();
        engine
            .schedule_with::<Tock>(
                SCHEDULE,
                Spec::every(PERIOD).unwrap(),
                7,
                ScheduleOptions::new().overlap(Overlap::Allow),
            )
            .await
            .unwrap();
        let anchor = engine.schedules().await.unwrap().schedules[0].anchor_micros;
        let mut workers: Vec<(String, Child)> = (0..3)
            .map(|i| {
                let id = format!("s{i}");
                let child = spawn_worker(&url, &id);
                (id, child)
            })
            .collect();

        let period = u64::try_from(PERIOD.as_micros()).unwrap();
        // Kill worker 0 once half the ticks are past, while it runs one: the schedule ticks on
        // (past `TICKS` if need be) until that happens.
        let mut killed: Option<(String, usize)> = None;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let runs = store
                .list(None, Some(Tock::META.name()), usize::MAX)
                .await
                .unwrap()
                .runs;
            let ticks = runs.len() as u64;
            if ticks >= TICKS && killed.is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{ticks} ticks after 90 s, worker s0 killed: {killed:?}"
            );
            if killed.is_none() && ticks >= TICKS / 2 {
                let held = runs
                    .iter()
                    .filter(|r| {
                        r.status == StoredStatus::Running && r.owner.as_deref() == Some("s0")
                    })
                    .count();
                if held > 0 {
                    let (id, child) = &mut workers[0];
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    killed = Some((id.clone(), held));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // No more ticks; then every run ends (the killed worker's once their leases lapse).
        assert!(engine.unschedule(SCHEDULE).await.unwrap());
        let drain = Instant::now() + Duration::from_secs(60);
        loop {
            let running = store
                .list(Some(StoredStatus::Running), Some(Tock::META.name()), 100)
                .await
                .unwrap()
                .runs;
            if running.is_empty() {
                break;
            }
            assert!(Instant::now() < drain, "runs still running: {running:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let worked = start.elapsed();
        let (killed, held_at_kill) = killed.expect("the ticks were over before the kill");
        for (id, mut child) in workers {
            if id == killed {
                continue;
            }
            drop(child.stdin.take());
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "worker {id}");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(stdout.contains("SCHEDULER-REPORT"), "{id}: {stdout}");
        }

        // One run per tick, every tick from the first to the last, each under its key.
        let runs = store
            .list(None, Some(Tock::META.name()), usize::MAX)
            .await
            .unwrap()
            .runs;
        // Each run's tick, as its key names it (`schedule:tock:{tick}`).
        let keyed: Vec<(u64, &str)> = runs
            .iter()
            .map(|run| {
                assert_eq!(run.status, StoredStatus::Completed, "{run:#?}");
                let key = run.idempotency_key.as_deref().expect("a tick's key");
                let tick: u64 = key
                    .strip_prefix(&format!("schedule:{SCHEDULE}:"))
                    .and_then(|t| t.split(':').next())
                    .and_then(|t| t.parse().ok())
                    .unwrap_or_else(|| panic!("not a tick's key: {key}"));
                (tick, key)
            })
            .collect();
        let mut ticks: Vec<u64> = keyed.iter().map(|(tick, _)| *tick).collect();
        ticks.sort_unstable();
        // The first tick the workers were up for (those before were missed and caught up).
        let first = ticks[0];
        assert_eq!((first - anchor) % period, 0, "ticks count from the anchor");
        let expected: Vec<u64> = (0..ticks.len() as u64)
            .map(|k| first + k * period)
            .collect();
        assert_eq!(
            ticks, expected,
            "each tick from the first to the last, once (ticks as µs since the epoch)"
        );
        assert!(ticks.len() as u64 >= TICKS, "{} ticks", ticks.len());
        for (tick, key) in keyed {
            assert_eq!(key, schedule_key(SCHEDULE, tick));
        }

        // Each run's effect, once.
        let rows = client
            .query("SELECT run_id, worker, attempts FROM tock_ledger", &[])
            .await
            .unwrap();
        let mut effects: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        effects.sort_unstable();
        let mut run_ids: Vec<String> = runs.iter().map(|r| r.run_id.to_string()).collect();
        run_ids.sort_unstable();
        assert_eq!(effects, run_ids, "one effect per run");
        let repeated: i32 = rows.iter().map(|r| r.get::<_, i32>(2) - 1).sum();
        let mut executors: Vec<String> = rows.iter().map(|r| r.get::<_, String>(1)).collect();
        executors.sort_unstable();
        executors.dedup();
        assert!(
            executors.len() > 1,
            "the runs were executed by {executors:?}"
        );
        assert!(
            held_at_kill > 0,
            "worker {killed} held no run when it was killed"
        );
        println!(
            "{} ticks of a {PERIOD:?} schedule in {:.1} s, each run once by workers \
             {executors:?}; worker {killed} killed holding {held_at_kill} runs; {repeated} \
             repeated effects absorbed by their keys",
            ticks.len(),
            worked.as_secs_f64(),
        );
    });
}

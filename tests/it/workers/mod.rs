//! Workers sharing one PostgreSQL database (issue 8's "what it must show").
//!
//! - `killed_workers_lose_nothing_repeat_nothing_and_never_overlap`: three worker processes
//!   (this test binary executed again, as tests/crash.rs does) take enqueued checkout runs
//!   from one database. One of them is killed with SIGKILL at random moments and started
//!   again under a new worker id, so that the runs it held are taken over by the others (or
//!   by its next incarnation) only once their leases lapse, and resumed by replay. At the
//!   end: every run is completed or compensated (none lost); a ledger in the same database,
//!   written with idempotency keys by the steps and compensations, by a `before` and an
//!   `after` hook handler, and by the job dispatcher with each job's id, holds each effect,
//!   each undo and each handler's effect exactly once, the job of each completed run once
//!   (a redelivery with the same id is absorbed and counted) and none of a compensated run;
//!   the `before` handler leaves a value in the bag that a later step needs, so a run resumed
//!   by another worker must have it back; the journals' `Claimed` events show strictly
//!   increasing fencing tokens, with every step, compensation and handler committed under
//!   the fence (and by the worker) that executed it; and the executions the ledger timed
//!   (start and end, or the kill of their process) never overlap across fences: nothing of a
//!   run ran in two workers at once.
//! - `workers_ride_out_a_database_outage`: two workers (in this process) work through
//!   enqueued runs on a cluster of the test's own, which is stopped for a few seconds and
//!   started again, twice (`pg_ctl stop -m immediate`, then `-m fast`). The workers report
//!   typed errors (`WorkerError::Claim`, `WorkerReport::store_errors`), keep trying, and every
//!   run ends, its effects applied once, with the same checks of journals and ledger.
//! - `a_worker_whose_handle_is_dropped_runs_on_at_its_pace`: a dropped `WorkerHandle` leaves
//!   the worker polling in the background, neither stopped nor spinning.
//!
//! `cargo test --test it workers::` runs 1,000 runs with 6 kills. Environment:
//! `HOOKFLOW_WORKERS_RUNS` (runs of the kill test), `HOOKFLOW_WORKERS_KILLS`,
//! `HOOKFLOW_WORKERS_SEED` (replays the kill moments), `HOOKFLOW_OUTAGE_RUNS`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookflow::prelude::*;
use hookflow::store::postgres::PostgresStore;
use hookflow::store::{Store, StoreError, StoredStatus};
use hookflow::{EventKind, Worker, WorkerError, WorkerReport};
use serde::{Deserialize, Serialize};

use crate::support::pg_client::pg_client as connect;
use crate::support::postgres::{PgCluster, pg_database, pg_psql};

/// Set in a worker process: the URL of the database it works on.
const CHILD: &str = "HOOKFLOW_WORKERS_CHILD";
/// Set in a worker process: its worker id.
const CHILD_ID: &str = "HOOKFLOW_WORKERS_ID";
/// A worker process's entry point, as the test harness names it (module path without the
/// crate).
const CHILD_TEST: &str = "workers::worker_process";

/// The lease of the kill test's workers: a killed worker's runs wait this long at most.
const LEASE: Duration = Duration::from_secs(2);

// ---- the workflow ----------------------------------------------------------------------

/// The external system the steps, the hook handlers and the job dispatcher write to: effects
/// keyed by idempotency key (applied once whatever the retries, a repeat only counts an
/// attempt), jobs keyed by their ids the same way, and a record of every execution of a step,
/// a compensation or a hook handler, timed, with the fence and worker it ran under.
#[derive(Clone)]
struct Ledger {
    client: Arc<tokio_postgres::Client>,
    worker: String,
}

/// `origin` names what executed: `step N`, `undo N` (the compensation of step N) or
/// `hook F.I` (the handler at place I of the run's hook firing F).
const LEDGER_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS ledger (
        key TEXT PRIMARY KEY, run_id TEXT NOT NULL, what TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 1);
    CREATE TABLE IF NOT EXISTS executions (
        id BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL, origin TEXT NOT NULL,
        fence BIGINT NOT NULL, worker TEXT NOT NULL,
        pid BIGINT NOT NULL, started_at BIGINT NOT NULL, ended_at BIGINT);";

const APPLY: &str = "INSERT INTO ledger (key, run_id, what) VALUES ($1, $2, $3)
    ON CONFLICT (key) DO UPDATE SET attempts = ledger.attempts + 1";

impl Ledger {
    /// Connects to the ledger at `url` (creating its tables), on the current runtime.
    async fn connect(url: &str, worker: &str) -> Self {
        let client = connect(url).await;
        client.batch_execute(LEDGER_SCHEMA).await.unwrap();
        Ledger {
            client: Arc::new(client),
            worker: worker.to_owned(),
        }
    }

    /// Executes the effect `what`, keyed by `key`, of the execution `origin` of the run of
    /// `ctx`, recording the execution's start and end around it.
    async fn effect(&self, ctx: &RunContext, origin: &str, key: &str, what: &str) {
        let run_id = ctx.run_id().to_string();
        let fence = i64::try_from(ctx.fence().expect("a durable run")).unwrap();
        let execution: i64 = self
            .client
            .query_one(
                "INSERT INTO executions (run_id, origin, fence, worker, pid, started_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &run_id,
                    &origin,
                    &fence,
                    &self.worker,
                    &i64::from(std::process::id()),
                    &now_micros(),
                ],
            )
            .await
            .expect("record an execution")
            .get(0);
        // Long enough for kills to land inside steps, compensations and handlers.
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.client
            .execute(APPLY, &[&key, &run_id, &what])
            .await
            .expect("apply an effect");
        self.client
            .execute(
                "UPDATE executions SET ended_at = $2 WHERE id = $1",
                &[&execution, &now_micros()],
            )
            .await
            .expect("end an execution");
    }

    /// The job queue: takes a job of a completed run once by its id (a redelivery, after a
    /// worker died between dispatching a run's jobs and recording its end, only counts an
    /// attempt). It returns once the job is in the ledger, as a queue acknowledges a job: the
    /// dispatcher is synchronous and the run's end is committed after it.
    fn deliver(&self, job: &hookflow::Job) {
        let run_id = job.id().split('/').next().unwrap_or_default().to_owned();
        let what = format!("{}:{}", job.name(), job.payload());
        let key = job.id().to_owned();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                self.client
                    .execute(APPLY, &[&key, &run_id, &what])
                    .await
                    .expect("deliver a job");
                // Widens the window between the delivery and the commit of the run's end, so
                // that kills land in it too: those runs deliver their jobs again.
                tokio::time::sleep(Duration::from_millis(1)).await;
            });
        });
    }
}

fn now_micros() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_micros()).unwrap()
}

#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error("payment declined")]
    Declined,
    #[error("order {0} was not reviewed: the bag lost what the review left")]
    NotReviewed(u64),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    number: u64,
    amount: u64,
}

/// A step's (or a compensation's) effect, keyed by its idempotency key
/// (`{run}:{position}:{step}`, and `…:undo` for a compensation).
async fn effect(ctx: &StepContext, what: &str) -> Result<(), OrderError> {
    let origin = if ctx.is_compensating() {
        format!("undo {}", ctx.position())
    } else {
        format!("step {}", ctx.position())
    };
    let key = ctx.idempotency_key();
    ctx.service::<Ledger>()?
        .effect(ctx, &origin, &key, what)
        .await;
    Ok(())
}

/// A hook handler's effect, keyed by `HookContext::idempotency_key()`.
async fn handler_effect(ctx: &HookContext, what: &str) -> Result<(), OrderError> {
    let key = ctx.idempotency_key();
    // `{run_id}:hook{firing}:{index}:{handler}` -> `hook {firing}.{index}`
    let mut place = key
        .rsplit_once(":hook")
        .expect("a hook handler's key")
        .1
        .splitn(3, ':');
    let (firing, index) = (place.next().unwrap_or(""), place.next().unwrap_or(""));
    ctx.service::<Ledger>()?
        .effect(ctx, &format!("hook {firing}.{index}"), &key, what)
        .await;
    Ok(())
}

#[step(compensate = release)]
async fn reserve(ctx: &StepContext, order: Order) -> Result<StepResponse<(), u64>, OrderError> {
    effect(ctx, "reserve").await?;
    Ok(StepResponse::new((), order.number))
}
async fn release(ctx: &StepContext, _n: u64) -> Result<(), OrderError> {
    effect(ctx, "release").await
}

#[step(compensate = void)]
async fn authorize(ctx: &StepContext, order: Order) -> Result<StepResponse<(), u64>, OrderError> {
    effect(ctx, "authorize").await?;
    Ok(StepResponse::new((), order.amount))
}
async fn void(ctx: &StepContext, _amount: u64) -> Result<(), OrderError> {
    effect(ctx, "void").await
}

#[step(compensate = cancel)]
async fn create_order(
    ctx: &StepContext,
    order: Order,
) -> Result<StepResponse<u64, u64>, OrderError> {
    effect(ctx, "create").await?;
    // Dispatched once the run completes (id `{run_id}/step2/0`); dropped if it is compensated.
    ctx.jobs()
        .enqueue("send_receipt", &order.number)
        .expect("a job's payload");
    Ok(StepResponse::new(order.number, order.number))
}
async fn cancel(ctx: &StepContext, _n: u64) -> Result<(), OrderError> {
    effect(ctx, "cancel").await
}

/// What the review left in the bag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reviewed(u64);

/// Declines every third order, after the other steps: those runs are compensated. Needs
/// what the review left in the bag, also in a run resumed by another worker.
#[step]
async fn capture(ctx: &StepContext, order: Order) -> Result<(), OrderError> {
    if ctx.bag().get::<Reviewed>() != Some(Reviewed(order.number)) {
        return Err(OrderError::NotReviewed(order.number));
    }
    effect(ctx, "capture").await?;
    if order.number.is_multiple_of(3) {
        return Err(OrderError::Declined);
    }
    Ok(())
}

#[workflow(hooks(review: before<Order>, created: after<u64>))]
async fn checkout(ctx: &WorkflowContext, order: Order) -> Result<u64, OrderError> {
    reserve(ctx, order.clone()).await?;
    let order = ctx.hook(Checkout::REVIEW, order).await?;
    authorize(ctx, order.clone()).await?;
    let number = create_order(ctx, order.clone()).await?;
    ctx.hook(Checkout::CREATED, &number).await;
    capture(ctx, order).await?;
    Ok(number)
}

/// A `before` handler (hook firing 0) with an effect of its own, which leaves a note in the
/// bag for `capture`.
async fn review(ctx: &HookContext, order: Order) -> Result<Order, OrderError> {
    handler_effect(ctx, "review").await?;
    ctx.bag().insert(Reviewed(order.number));
    Ok(order)
}

/// An `after` handler (hook firing 1) with an effect of its own.
async fn notify(ctx: &HookContext, _number: &u64) -> Result<(), OrderError> {
    handler_effect(ctx, "notify").await
}

fn engine(store: PostgresStore, ledger: Ledger, lease: Duration) -> Engine {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).review(review).created(notify);
    let queue = ledger.clone();
    Engine::builder()
        .worker_id(ledger.worker.clone())
        .lease(lease)
        .hooks(hooks)
        .jobs(move |job: hookflow::Job| queue.deliver(&job))
        .store(store)
        .service(ledger)
        .workflow::<Checkout>()
        .build()
}

/// Enqueues orders 1..=`runs` (idempotency key `order-N`), from 8 tasks at once.
async fn enqueue(store: Arc<PostgresStore>, runs: u64) {
    let engine = Engine::builder().store(store).build();
    let mut tasks = tokio::task::JoinSet::new();
    for first in 1..=8 {
        let engine = engine.clone();
        tasks.spawn(async move {
            for number in (first..=runs).step_by(8) {
                let options = RunOptions::new().idempotency_key(format!("order-{number}"));
                let order = Order {
                    number,
                    amount: 100 * number,
                };
                engine
                    .enqueue_with::<Checkout>(order, options)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// Waits until no run is left running, up to `limit`.
async fn drained(store: &PostgresStore, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let running = store
            .list(Some(StoredStatus::Running), None, 5)
            .await
            .unwrap()
            .runs;
        if running.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "runs still running after {limit:?}, e.g. {running:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---- a worker process ------------------------------------------------------------------

/// A worker process: works on the database in `HOOKFLOW_WORKERS_CHILD` as worker
/// `HOOKFLOW_WORKERS_ID` until its stdin closes (or it is killed), then shuts down and prints
/// its report. Ignored: the kill test runs it in a process of its own (see `spawn_worker`).
#[test]
#[ignore = "child process of workers::kill::killed_workers_lose_nothing_repeat_nothing_and_never_overlap, run by it"]
fn worker_process() {
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
            let ledger = Ledger::connect(&url, &id).await;
            let engine = engine(store, ledger, LEASE);
            let reported = id.clone();
            let worker = Worker::new(&engine)
                .concurrency(8)
                .poll_interval(Duration::from_millis(20))
                .max_backoff(Duration::from_millis(500))
                .on_error(move |error| eprintln!("worker {reported}: {error}"))
                .start()
                .unwrap();
            // Until the parent closes our stdin (or dies).
            tokio::task::spawn_blocking(|| {
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
            })
            .await
            .unwrap();
            let report = worker.shutdown(Duration::from_secs(10)).await;
            println!("WORKER-REPORT {id} {}", describe(&report));
        });
}

fn describe(report: &WorkerReport) -> String {
    format!(
        "claimed={} completed={} compensated={} interrupted={} handed_back={} store_errors={}",
        report.claimed,
        report.completed,
        report.compensated,
        report.interrupted,
        report.handed_back,
        report.store_errors
    )
}

/// A worker process and its worker id.
struct Incarnation {
    child: Child,
    worker: String,
}

fn spawn_worker(url: &str, worker: String) -> Incarnation {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, url)
        .env(CHILD_ID, &worker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Incarnation { child, worker }
}

/// A small deterministic generator (xorshift), so that a seed replays a test.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

mod dropped_handle;
mod kill;
mod outage;
mod verify;

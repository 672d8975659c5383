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
#[ignore = "child process of workers::killed_workers_lose_nothing_repeat_nothing_and_never_overlap, run by it"]
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

// ---- the kill test -----------------------------------------------------------------------

#[test]
fn killed_workers_lose_nothing_repeat_nothing_and_never_overlap() {
    let runs: u64 = env_or("HOOKFLOW_WORKERS_RUNS", 1000);
    let kills: usize = env_or("HOOKFLOW_WORKERS_KILLS", 6);
    let seed: u64 = env_or(
        "HOOKFLOW_WORKERS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    println!(
        "workers test: {runs} runs, 3 worker processes, {kills} kills, seed {seed} \
         (HOOKFLOW_WORKERS_SEED={seed} replays the kill moments)"
    );
    let url = pg_database("workers");
    let mut rng = Rng(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let start = Instant::now();
        // The store's and the ledger's tables exist before the workers start.
        let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
        let client = connect(&url).await;
        client.batch_execute(LEDGER_SCHEMA).await.unwrap();

        let mut workers: Vec<Incarnation> = (0..3)
            .map(|slot| spawn_worker(&url, format!("w{slot}-0")))
            .collect();
        enqueue(Arc::clone(&store), runs).await;
        let enqueued = start.elapsed();

        // Worker 0 is killed at random moments spread over the test (when a random share of
        // the runs is over, once it holds runs or a little later), each time started again
        // under a new id. The moment each incarnation died bounds its executions.
        let mut due: Vec<u64> = (0..kills)
            .map(|_| runs / 20 + rng.below(runs * 3 / 4 + 1))
            .collect();
        due.sort_unstable_by(|a, b| b.cmp(a));
        let mut killed: HashMap<String, i64> = HashMap::new();
        let mut held_at_kills = 0;
        let mut due_since: Option<Instant> = None;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let remaining = store
                .list(Some(StoredStatus::Running), None, usize::MAX)
                .await
                .unwrap()
                .runs;
            if remaining.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} runs left after 300 s, e.g. {:?}",
                remaining.len(),
                remaining[0]
            );
            let finished = runs - remaining.len() as u64;
            if due.last().is_some_and(|&at| finished >= at) {
                let since = *due_since.get_or_insert_with(Instant::now);
                let victim = &mut workers[0];
                let held = remaining
                    .iter()
                    .filter(|r| r.owner.as_deref() == Some(victim.worker.as_str()))
                    .count();
                if held > 0 || since.elapsed() > Duration::from_millis(300) {
                    tokio::time::sleep(Duration::from_millis(rng.below(30))).await;
                    victim.child.kill().unwrap(); // SIGKILL
                    victim.child.wait().unwrap();
                    killed.insert(victim.worker.clone(), now_micros());
                    held_at_kills += held;
                    let worker = format!("w0-{}", killed.len());
                    workers[0] = spawn_worker(&url, worker);
                    due.pop();
                    due_since = None;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let worked = start.elapsed();

        // Every run is over: the workers shut down and report.
        let mut reports = Vec::new();
        for mut incarnation in workers {
            drop(incarnation.child.stdin.take());
            let output = incarnation.child.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", incarnation.worker);
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let report = stdout
                .lines()
                .find_map(|l| l.split_once("WORKER-REPORT ").map(|(_, r)| r.to_owned()))
                .unwrap_or_else(|| panic!("no report from {}: {stdout}", incarnation.worker));
            assert!(report.ends_with("store_errors=0"), "{report}");
            reports.push(report);
        }

        let checked = verify(&store, &client, runs, &killed).await;
        assert_eq!(
            killed.len(),
            kills,
            "the runs were over before the last kill"
        );
        if kills > 0 {
            assert!(
                checked.taken_over_from_killed > 0,
                "no run of a killed worker was taken over"
            );
        }
        println!(
            "{runs} runs in {:.1} s (enqueued in {:.1} s), verified in {:.1} s; {} kills (the \
             victim holding {held_at_kills} runs in all); {} runs taken over from a killed \
             worker, {} claimed more than once; {} executions of steps, compensations and \
             hook handlers, {} repeated effects absorbed by idempotency keys, of which {} \
             jobs delivered again with the same id",
            worked.as_secs_f64(),
            enqueued.as_secs_f64(),
            (start.elapsed() - worked).as_secs_f64(),
            killed.len(),
            checked.taken_over_from_killed,
            checked.claimed_again,
            checked.executions,
            checked.repeated,
            checked.redelivered,
        );
        for report in reports {
            println!("  {report}");
        }
    });
}

/// What [`verify`] counted.
struct Checked {
    executions: usize,
    repeated: i64,
    /// Jobs delivered again with an id the ledger had (part of `repeated`).
    redelivered: i64,
    claimed_again: usize,
    taken_over_from_killed: usize,
}

/// One execution of a step, a compensation or a hook handler, as the ledger recorded it.
struct Execution {
    origin: String,
    fence: u64,
    worker: String,
    started_at: i64,
    ended_at: Option<i64>,
}

/// Checks that the `runs` orders ended as they should: each effect, undo and hook handler's
/// effect applied exactly once, each job of a completed run delivered (once by its id) and
/// none of a compensated run, the journals' fences, and (with `killed`: when each killed
/// worker died) that no executions of a run under different fences overlap in time.
async fn verify(
    store: &PostgresStore,
    ledger: &tokio_postgres::Client,
    runs: u64,
    killed: &HashMap<String, i64>,
) -> Checked {
    let records = store.list(None, None, usize::MAX).await.unwrap().runs;
    let mut numbers: Vec<u64> = records.iter().map(number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=runs).collect::<Vec<_>>(), "a run is missing");

    // The ledger: exactly once each effect, each undo, each handler's effect and each job.
    let mut effects: HashMap<String, (String, String)> = HashMap::new();
    for row in ledger
        .query("SELECT key, run_id, what FROM ledger", &[])
        .await
        .unwrap()
    {
        effects.insert(row.get(0), (row.get(1), row.get(2)));
    }
    let repeated: i64 = ledger
        .query_one(
            "SELECT COALESCE(SUM(attempts - 1), 0)::BIGINT FROM ledger",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let redelivered: i64 = ledger
        .query_one(
            "SELECT COALESCE(SUM(attempts - 1), 0)::BIGINT FROM ledger WHERE key LIKE '%/%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut executions: HashMap<String, Vec<Execution>> = HashMap::new();
    let rows = ledger
        .query(
            "SELECT run_id, origin, fence, worker, started_at, ended_at FROM executions",
            &[],
        )
        .await
        .unwrap();
    let execution_count = rows.len();
    for row in rows {
        executions.entry(row.get(0)).or_default().push(Execution {
            origin: row.get(1),
            fence: u64::try_from(row.get::<_, i64>(2)).unwrap(),
            worker: row.get(3),
            started_at: row.get(4),
            ended_at: row.get(5),
        });
    }
    let compensated = runs / 3;
    let jobs = effects.keys().filter(|key| key.contains('/')).count() as u64;
    assert_eq!(jobs, runs - compensated, "one job per completed run");
    assert_eq!(
        effects.len() as u64,
        // 4 steps and 2 hook handlers a run, 3 undos a compensated run, a job a completed one
        6 * runs + 3 * compensated + jobs,
        "effects for unknown runs, steps, handlers or jobs"
    );

    let mut claimed_again = 0;
    let mut taken_over_from_killed = 0;
    for record in &records {
        let id = record.run_id.to_string();
        let number = number(record);
        let steps = ["reserve", "authorize", "create_order", "capture"];
        let effect = |pos: u32| {
            effects
                .get(&format!("{id}:{pos}:{}", steps[pos as usize]))
                .map(|(_, w)| w.as_str())
        };
        let undo = |pos: u32| {
            effects
                .get(&format!("{id}:{pos}:{}:undo", steps[pos as usize]))
                .map(|(_, w)| w.as_str())
        };
        for (pos, what) in ["reserve", "authorize", "create", "capture"]
            .into_iter()
            .enumerate()
        {
            assert_eq!(effect(pos as u32), Some(what), "order {number} step {pos}");
        }
        // The hook handlers' effects, by their idempotency keys (firing 0: `review`, a
        // `before` handler; firing 1: `notify`, an `after` handler), each once.
        let handler = |firing: u32| {
            // `{run}:hook{firing}:{index}:{handler}`: handler 0 of the firing, once.
            let prefix = format!("{id}:hook{firing}:0:");
            let mut found = effects.iter().filter(|(key, _)| key.starts_with(&prefix));
            let effect = found.next().map(|(_, (_, w))| w.as_str());
            assert!(found.next().is_none(), "two effects under {prefix}");
            effect
        };
        assert_eq!(handler(0), Some("review"), "order {number}");
        assert_eq!(handler(1), Some("notify"), "order {number}");
        // The job `create_order` (#2) enqueued: delivered once the run completed, by its id;
        // never for a compensated run.
        let job = effects
            .get(&format!("{id}/step2/0"))
            .map(|(_, w)| w.as_str());
        if number.is_multiple_of(3) {
            assert_eq!(job, None, "order {number}: a job of a compensated run");
        } else {
            let receipt = format!("send_receipt:{number}");
            assert_eq!(job, Some(receipt.as_str()), "order {number}: its job");
        }
        if number.is_multiple_of(3) {
            assert_eq!(record.status, StoredStatus::Compensated, "order {number}");
            assert_eq!(undo(0), Some("release"), "order {number}");
            assert_eq!(undo(1), Some("void"), "order {number}");
            assert_eq!(undo(2), Some("cancel"), "order {number}");
            assert_eq!(undo(3), None, "order {number}: the failed step is undone");
        } else {
            assert_eq!(record.status, StoredStatus::Completed, "order {number}");
            assert!((0..4).all(|p| undo(p).is_none()), "order {number} undone");
        }

        let (_, events) = store.load(record.run_id).await.unwrap();
        hookflow::testing::check_saga(&hookflow::Journal::from_events(events.clone()))
            .unwrap_or_else(|v| panic!("order {number}: {v}"));
        let runs_executions = executions.get(&id).map(Vec::as_slice).unwrap_or_default();

        // The fences: strictly increasing; every event after the claim it was committed
        // under; every completed step, compensation or hook handler executed under that
        // fence, by that worker, after the claim, and ended before its completion was
        // recorded.
        let mut claims: Vec<(String, u64)> = Vec::new();
        let mut claimed_at = 0;
        // The handlers completed so far in each hook firing: the next one's place.
        let mut handlers: HashMap<u32, u32> = HashMap::new();
        for event in &events {
            let origin = match &event.kind {
                EventKind::RunStarted { .. } | EventKind::RunResumed => continue,
                EventKind::Claimed { worker, fence } => {
                    if let Some((_, last)) = claims.last() {
                        assert!(
                            fence > last,
                            "order {number}: fence {fence} claimed after {last}"
                        );
                    }
                    claims.push((worker.clone(), *fence));
                    claimed_at = i64::try_from(event.at_micros).unwrap();
                    continue;
                }
                EventKind::StepCompleted { position, .. } => format!("step {position}"),
                EventKind::CompensationCompleted { position, .. } => format!("undo {position}"),
                EventKind::HookHandlerCompleted { firing, .. } => {
                    let index = handlers.entry(*firing).or_default();
                    *index += 1;
                    format!("hook {firing}.{}", *index - 1)
                }
                _ => {
                    assert!(
                        !claims.is_empty(),
                        "order {number}: {:?} before any claim",
                        event.kind
                    );
                    continue;
                }
            };
            let (worker, fence) = claims
                .last()
                .unwrap_or_else(|| panic!("order {number}: {:?} before any claim", event.kind));
            let at = i64::try_from(event.at_micros).unwrap();
            let ran = runs_executions.iter().any(|e| {
                e.origin == origin
                    && e.fence == *fence
                    && e.worker == *worker
                    && e.started_at >= claimed_at
                    && e.ended_at.is_some_and(|end| end <= at)
            });
            assert!(
                ran,
                "order {number}: {:?} committed under fence {fence} of {worker}, which has no \
                 finished execution of it",
                event.kind
            );
        }
        let (_, last) = claims.last().expect("a claim");
        assert_eq!(*last, record.fence, "order {number}: the last claim");
        if claims.len() > 1 {
            claimed_again += 1;
        }
        if claims[..claims.len() - 1]
            .iter()
            .any(|(worker, _)| killed.contains_key(worker))
        {
            taken_over_from_killed += 1;
        }

        // No two fences at once: each fence's executions, from the first start to the last
        // end (or the death of its process), come before the next fence's.
        let mut spans: BTreeMap<u64, (i64, i64, &str)> = BTreeMap::new();
        for e in runs_executions {
            let end = e.ended_at.unwrap_or_else(|| {
                *killed.get(&e.worker).unwrap_or_else(|| {
                    panic!(
                        "order {number}: an execution of {} under fence {} never ended, and \
                         its worker {} was not killed",
                        e.origin, e.fence, e.worker
                    )
                })
            });
            let span = spans
                .entry(e.fence)
                .or_insert((e.started_at, end, e.worker.as_str()));
            assert_eq!(
                span.2, e.worker,
                "order {number}: fence {} in two workers",
                e.fence
            );
            span.0 = span.0.min(e.started_at);
            span.1 = span.1.max(end);
        }
        let spans: Vec<_> = spans.into_iter().collect();
        for pair in spans.windows(2) {
            let (f1, (_, end, w1)) = pair[0];
            let (f2, (start, _, w2)) = pair[1];
            assert!(
                end <= start,
                "order {number}: fence {f1} ({w1}) executed until {end}, after fence {f2} \
                 ({w2}) started at {start}: a step or handler ran in two workers at once"
            );
        }
    }
    Checked {
        executions: execution_count,
        repeated,
        redelivered,
        claimed_again,
        taken_over_from_killed,
    }
}

fn number(record: &hookflow::RunRecord) -> u64 {
    record.idempotency_key.as_deref().unwrap()["order-".len()..]
        .parse()
        .unwrap()
}

// ---- the outage test ---------------------------------------------------------------------

/// What a worker's `on_error` saw.
#[derive(Default, Debug)]
struct Seen {
    claim_unavailable: u64,
    release: u64,
    schedule_unavailable: u64,
    other: Vec<String>,
}

#[test]
fn workers_ride_out_a_database_outage() {
    let runs: u64 = env_or("HOOKFLOW_OUTAGE_RUNS", 300);
    // The store's own cluster, which this test stops; the ledger (the external system) is
    // on the shared server, which stays up.
    let cluster = PgCluster::start("outage");
    // Commits acknowledged before the crash must survive it, as on a production server: the
    // test clusters run with `synchronous_commit = off` for speed, under which a crash loses
    // the last acknowledged commits, a claim among them (and two workers then hold one fence).
    pg_psql(
        cluster.url(),
        &["ALTER DATABASE hookflow SET synchronous_commit = on"],
    );
    let ledger_url = pg_database("outage_ledger");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let start = Instant::now();
        let store = Arc::new(PostgresStore::connect(cluster.url()).await.unwrap());
        let mut workers = Vec::new();
        for id in ["a", "b"] {
            let seen = Arc::new(Mutex::new(Seen::default()));
            let engine = engine(
                PostgresStore::connect(cluster.url()).await.unwrap(),
                Ledger::connect(&ledger_url, id).await,
                Duration::from_secs(1),
            );
            let on_error = Arc::clone(&seen);
            let worker = Worker::new(&engine)
                .concurrency(8)
                .poll_interval(Duration::from_millis(20))
                .max_backoff(Duration::from_millis(400))
                .on_error(move |error| {
                    let mut seen = on_error.lock().unwrap();
                    match error {
                        WorkerError::Claim {
                            source: StoreError::Unavailable { .. },
                            ..
                        } => seen.claim_unavailable += 1,
                        WorkerError::Release { .. } => seen.release += 1,
                        // The scheduler, beside the claims, finds the store down too.
                        WorkerError::Schedule(hookflow::ScheduleError::Store {
                            source: StoreError::Unavailable { .. } | StoreError::NoAnswer { .. },
                            ..
                        }) => seen.schedule_unavailable += 1,
                        other => seen.other.push(other.to_string()),
                    }
                })
                .start()
                .unwrap();
            workers.push((id, worker, seen));
        }
        enqueue(Arc::clone(&store), runs).await;

        // A quarter of the runs done, the database goes down for 2.5 s (`pg_ctl stop -m
        // immediate`: as if it crashed); half of them done, again (`-m fast`: a restart for
        // maintenance). Each time the workers meet errors while it is down.
        let finished = |workers: &[(&str, hookflow::WorkerHandle, Arc<Mutex<Seen>>)]| {
            workers
                .iter()
                .map(|(_, w, _)| w.report().finished())
                .sum::<u64>()
        };
        let store_errors = |workers: &[(&str, hookflow::WorkerHandle, Arc<Mutex<Seen>>)]| {
            workers
                .iter()
                .map(|(_, w, _)| w.report().store_errors)
                .sum::<u64>()
        };
        let mut outages = Vec::new();
        for (share, mode) in [(4, "immediate"), (2, "fast")] {
            while finished(&workers) < runs / share {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let before = finished(&workers);
            assert!(before < runs, "the runs were over before the outage");
            let errors_before = store_errors(&workers);
            let down = Instant::now();
            cluster.halt(mode);
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let errors = store_errors(&workers) - errors_before;
            cluster.restart();
            assert!(
                errors > 0,
                "no store error while the database was down ({mode})"
            );
            outages.push(format!(
                "{:.1} s ({mode}, {before} runs finished before it, {errors} failed claims)",
                down.elapsed().as_secs_f64()
            ));
        }

        drained(&store, Duration::from_secs(120)).await;
        let worked = start.elapsed();
        let mut interrupted = 0;
        for (id, worker, seen) in workers {
            let report = worker.shutdown(Duration::from_secs(5)).await;
            let seen = seen.lock().unwrap();
            println!(
                "  worker {id}: {}; on_error saw {seen:?}",
                describe(&report)
            );
            assert!(report.store_errors > 0, "worker {id} met no store error");
            assert!(
                seen.claim_unavailable > 0,
                "worker {id} reported no WorkerError::Claim"
            );
            assert_eq!(
                report.store_errors, seen.claim_unavailable,
                "worker {id}: every failed claim is reported"
            );
            assert!(seen.other.is_empty(), "worker {id}: {:?}", seen.other);
            interrupted += report.interrupted;
        }
        assert!(
            interrupted > 0,
            "no run was interrupted by the outage (the workers were idle)"
        );

        let client = connect(&ledger_url).await;
        let checked = verify(&store, &client, runs, &HashMap::new()).await;
        assert!(
            checked.claimed_again > 0,
            "no run was resumed after the outage"
        );
        println!(
            "{runs} runs in {:.1} s through outages of {}; {interrupted} runs interrupted, \
             {} resumed by replay; {} repeated effects absorbed by idempotency keys, of which \
             {} jobs delivered again with the same id",
            worked.as_secs_f64(),
            outages.join(" and "),
            checked.claimed_again,
            checked.repeated,
            checked.redelivered,
        );
    });
}

// ---- a dropped handle --------------------------------------------------------------------

/// A store that counts the worker's attempts to claim runs.
struct CountingStore {
    inner: hookflow::MemoryStore,
    claims: std::sync::atomic::AtomicUsize,
}

impl Store for CountingStore {
    fn create<'a>(
        &'a self,
        run: &'a hookflow::RunRecord,
        lease: Option<&'a hookflow::Lease>,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::store::Created, StoreError>> {
        self.inner.create(run, lease)
    }
    fn commit<'a>(
        &'a self,
        run_id: hookflow::RunId,
        fence: u64,
        events: &'a [hookflow::Event],
        update: Option<hookflow::store::RunUpdate>,
    ) -> hookflow::store::BoxFuture<'a, Result<(), StoreError>> {
        self.inner.commit(run_id, fence, events, update)
    }
    fn claim<'a>(
        &'a self,
        run_id: hookflow::RunId,
        lease: &'a hookflow::Lease,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::Claim, StoreError>> {
        self.inner.claim(run_id, lease)
    }
    fn claim_next<'a>(
        &'a self,
        lease: &'a hookflow::Lease,
        workflows: &'a [(String, u32)],
        skip: &'a [hookflow::RunId],
        limit: usize,
    ) -> hookflow::store::BoxFuture<
        'a,
        Result<hookflow::store::Found<hookflow::StoredRun>, StoreError>,
    > {
        self.claims
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.claim_next(lease, workflows, skip, limit)
    }
    fn renew<'a>(
        &'a self,
        lease: &'a hookflow::Lease,
        runs: &'a [hookflow::RunId],
    ) -> hookflow::store::BoxFuture<'a, Result<usize, StoreError>> {
        self.inner.renew(lease, runs)
    }
    fn release(
        &self,
        run_id: hookflow::RunId,
        fence: u64,
    ) -> hookflow::store::BoxFuture<'_, Result<(), StoreError>> {
        self.inner.release(run_id, fence)
    }
    fn load(
        &self,
        run_id: hookflow::RunId,
    ) -> hookflow::store::BoxFuture<'_, Result<hookflow::StoredRun, StoreError>> {
        self.inner.load(run_id)
    }
    fn pending(
        &self,
    ) -> hookflow::store::BoxFuture<
        '_,
        Result<hookflow::store::Found<hookflow::RunRecord>, StoreError>,
    > {
        self.inner.pending()
    }
    fn list<'a>(
        &'a self,
        status: Option<StoredStatus>,
        workflow: Option<&'a str>,
        limit: usize,
    ) -> hookflow::store::BoxFuture<
        'a,
        Result<hookflow::store::Found<hookflow::RunRecord>, StoreError>,
    > {
        self.inner.list(status, workflow, limit)
    }

    fn prune(
        &self,
        ended_before_micros: u64,
        limit: usize,
    ) -> hookflow::store::BoxFuture<'_, Result<usize, StoreError>> {
        self.inner.prune(ended_before_micros, limit)
    }
    fn suspend<'a>(
        &'a self,
        run_id: hookflow::RunId,
        fence: u64,
        events: &'a [hookflow::Event],
        suspension: &'a hookflow::store::Suspension,
    ) -> hookflow::store::BoxFuture<'a, Result<Option<hookflow::store::Wake>, StoreError>> {
        self.inner.suspend(run_id, fence, events, suspension)
    }
    fn deliver<'a>(
        &'a self,
        run_id: hookflow::RunId,
        workflow: &'a str,
        message: &'a hookflow::store::Message,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::store::Delivery, StoreError>> {
        self.inner.deliver(run_id, workflow, message)
    }
    fn message<'a>(
        &'a self,
        run_id: hookflow::RunId,
        event: &'a str,
        index: u32,
    ) -> hookflow::store::BoxFuture<'a, Result<Option<hookflow::store::Message>, StoreError>> {
        self.inner.message(run_id, event, index)
    }
    fn cancel<'a>(
        &'a self,
        run_id: hookflow::RunId,
        request: &'a hookflow::CancelRequest,
    ) -> hookflow::store::BoxFuture<'a, Result<hookflow::store::Cancelling, StoreError>> {
        self.inner.cancel(run_id, request)
    }
    fn cancel_requests<'a>(
        &'a self,
        runs: &'a [hookflow::RunId],
    ) -> hookflow::store::BoxFuture<
        'a,
        Result<Vec<(hookflow::RunId, hookflow::CancelRequest)>, StoreError>,
    > {
        self.inner.cancel_requests(runs)
    }
}

#[step]
async fn pong(_ctx: &StepContext, n: u64) -> Result<u64, OrderError> {
    Ok(n + 1)
}

#[workflow]
async fn ping(ctx: &WorkflowContext, n: u64) -> Result<u64, OrderError> {
    pong(ctx, n).await
}

/// A worker whose handle is dropped goes on in the background, polling at its pace: it
/// neither stops nor spins on the closed channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_handle_is_dropped_runs_on_at_its_pace() {
    let store = Arc::new(CountingStore {
        inner: hookflow::MemoryStore::new(),
        claims: std::sync::atomic::AtomicUsize::new(0),
    });
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Ping>()
        .build();
    let handle = Worker::new(&engine)
        .poll_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    drop(handle);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let claims = store.claims.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (2..=20).contains(&claims),
        "{claims} attempts to claim in 500 ms, polling every 50 ms"
    );
    let run_id = engine.enqueue::<Ping>(41).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (record, _) = store.load(run_id).await.unwrap();
        if record.status == StoredStatus::Completed {
            assert_eq!(record.output, Some(serde_json::json!(42)));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run was not taken: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

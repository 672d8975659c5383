//! Crash test: a child process runs checkout workflows against a SQLite file and is killed
//! with SIGKILL at random points, in steps, hooks and compensations; after each kill a new
//! process resumes. At the end every run is `completed` or `compensated`, and an external
//! ledger (another SQLite file, written with idempotency keys by the steps, by a `before` and
//! an `after` hook handler, and by the job dispatcher with each job's id) shows each side
//! effect, each handler's effect and each job of a completed run applied exactly once, each
//! undo exactly once, no job of a compensated run, and no run missing. The `before` handler
//! leaves a value in the bag that a later step needs: a resumed run must have it back.
//!
//! `cargo test --test crash` kills 30 times; `HOOKFLOW_CRASH_KILLS=200 cargo test --release
//! --test crash -- --nocapture` kills 200 times. `HOOKFLOW_CRASH_SEED=n` replays a seed.
//!
//! The child is this test binary run again on its ignored test `child_worker`: an entry
//! point, not a test of its own, which only the parent runs (`--ignored --exact`).
//!
//! A test crate of its own, not a module of tests/it: the kills come 15 to 55 ms after each
//! child starts, so how far a child gets depends on the CPU it has. Beside the other
//! integration tests (a PostgreSQL cluster starting, the property test...) a child got half
//! as far, and the check that the runs outnumber half the kills failed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::store::{Store, StoredStatus};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

const CHILD: &str = "HOOKFLOW_CRASH_CHILD";
/// The child's entry point, as the test harness names it.
const CHILD_TEST: &str = "child_worker";

// ---- the workflow the child runs -------------------------------------------------------

/// The external system: effects keyed by idempotency key, applied once whatever the retries.
struct Ledger(Mutex<Connection>);

impl Ledger {
    fn open(path: &Path) -> Self {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS ledger (
                key TEXT PRIMARY KEY, run_id TEXT NOT NULL, what TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 1);",
        )
        .unwrap();
        Ledger(Mutex::new(conn))
    }

    /// Applies `what` once for `key`; a repeated call only counts an attempt.
    fn apply(&self, key: &str, run_id: &str, what: &str) {
        self.0
            .lock()
            .unwrap()
            .execute(
                "INSERT INTO ledger (key, run_id, what) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET attempts = attempts + 1",
                params![key, run_id, what],
            )
            .unwrap();
    }
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

async fn effect(ctx: &StepContext, what: &str) -> Result<(), OrderError> {
    // Long enough for kills to land inside steps and compensations.
    tokio::time::sleep(Duration::from_micros(300)).await;
    // `{run}:{position}:{step}`, and `…:undo` for a compensation.
    let key = ctx.idempotency_key();
    ctx.service::<Ledger>()?
        .apply(&key, &ctx.run_id().to_string(), what);
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
    // Dispatched once the run completes; dropped if it is compensated.
    let _ = ctx.jobs().enqueue("send_receipt", &order.number);
    Ok(StepResponse::new(order.number, order.number))
}
async fn cancel(ctx: &StepContext, _n: u64) -> Result<(), OrderError> {
    effect(ctx, "cancel").await
}

/// What the review left in the bag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reviewed(u64);

/// Declines every third order, after the other steps: those runs are compensated.
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

/// A `before` handler with an effect of its own, which leaves a note in the bag for
/// `capture`.
async fn review(ctx: &HookContext, order: Order) -> Result<Order, OrderError> {
    tokio::time::sleep(Duration::from_micros(200)).await;
    ctx.service::<Ledger>()?
        .apply(&ctx.idempotency_key(), &ctx.run_id().to_string(), "review");
    ctx.bag().insert(Reviewed(order.number));
    Ok(order)
}

/// An `after` handler with an effect of its own.
async fn notify(ctx: &HookContext, _number: &u64) -> Result<(), OrderError> {
    ctx.service::<Ledger>()?
        .apply(&ctx.idempotency_key(), &ctx.run_id().to_string(), "notify");
    Ok(())
}

fn engine(dir: &Path) -> Engine {
    let mut hooks = Hooks::new();
    Checkout::hooks(&mut hooks).review(review).created(notify);
    // The queue: applies each job once, by its id.
    let queue = Ledger::open(&dir.join("ledger.db"));
    // Every child is the same application restarted: it takes its runs back at once.
    Engine::builder()
        .worker_id("crash-child")
        .hooks(hooks)
        .jobs(move |job: hookflow::Job| {
            let run_id = job.id().split('/').next().unwrap_or_default().to_owned();
            queue.apply(job.id(), &run_id, "job");
        })
        .store(SqliteStore::open(dir.join("runs.db")).unwrap())
        .service(Ledger::open(&dir.join("ledger.db")))
        .workflow::<Checkout>()
        .build()
}

/// The child: resumes what an earlier child left, reports where each run had stopped, then
/// starts new orders until it is killed (or, with `finish`, stops). Ignored: the parent runs
/// it in a process of its own, with `HOOKFLOW_CRASH_CHILD` set (see `spawn_child`).
#[test]
#[ignore = "child process of killed_workers_lose_nothing_and_repeat_nothing, run by it"]
fn child_worker() {
    let Ok(dir) = std::env::var(CHILD) else {
        return; // Not a child (`--ignored` without the parent): nothing to do.
    };
    let finish = std::env::var("HOOKFLOW_CRASH_FINISH").is_ok();
    let dir = PathBuf::from(dir);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let engine = engine(&dir);
            let store = SqliteStore::open(dir.join("runs.db")).unwrap();
            for run in store.pending().await.unwrap().runs {
                let (_, events) = store.load(run.run_id).await.unwrap();
                let last = events.last().map(|e| phase(&e.kind)).unwrap_or("created");
                println!("STOPPED-IN {last}");
            }
            let report = engine.resume_pending().await.unwrap();
            assert!(
                report.unknown.is_empty() && report.failed.is_empty(),
                "{report:?}"
            );
            if finish {
                return;
            }
            // The parent's kill is timed from here: how long a child takes to start and
            // resume depends on the machine's load, not on what is tested.
            println!("READY");
            let mut next = store.list(None, None, usize::MAX).await.unwrap().runs.len() as u64 + 1;
            loop {
                let options = RunOptions::new().idempotency_key(format!("order-{next}"));
                let order = Order {
                    number: next,
                    amount: 100 * next,
                };
                engine.run_with::<Checkout>(order, options).await;
                next += 1;
            }
        });
}

fn phase(kind: &hookflow::EventKind) -> &'static str {
    use hookflow::EventKind as K;
    match kind {
        K::StepStarted { .. } | K::StepCompleted { .. } | K::StepFailed { .. } => "step",
        K::HookFired { .. } | K::HookHandlerCompleted { .. } | K::BagWritten { .. } => "hook",
        K::RunFailed { .. }
        | K::CompensationStarted { .. }
        | K::CompensationCompleted { .. }
        | K::CompensationFailed { .. } => "compensation",
        _ => "run",
    }
}

// ---- the parent ------------------------------------------------------------------------

fn spawn_child(dir: &Path, finish: bool) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        CHILD_TEST,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if finish {
        cmd.env("HOOKFLOW_CRASH_FINISH", "1");
    }
    cmd.spawn().unwrap()
}

/// A small deterministic generator (xorshift), so that a seed replays a test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn killed_workers_lose_nothing_and_repeat_nothing() {
    let kills: usize = std::env::var("HOOKFLOW_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("HOOKFLOW_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash test: {kills} kills, seed {seed} (HOOKFLOW_CRASH_SEED={seed} replays it)");
    let dir = std::env::temp_dir().join(format!("hookflow-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut rng = Rng(seed);
    let mut stopped_in: BTreeMap<String, usize> = BTreeMap::new();
    let collect = |child: std::process::Child, stopped_in: &mut BTreeMap<String, usize>| {
        let output = child.wait_with_output().unwrap();
        count_stops(&String::from_utf8_lossy(&output.stdout), stopped_in);
        output.status
    };
    for _ in 0..kills {
        let mut child = spawn_child(&dir, false);
        // Let it start and resume (it says `READY`), then get some way into new runs.
        let mut early = String::new();
        if let Some(stdout) = child.stdout.as_mut() {
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
                let ready = line.contains("READY");
                early.push_str(&line);
                line.clear();
                if ready {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(15 + rng.next() % 40));
        child.kill().unwrap(); // SIGKILL
        count_stops(&early, &mut stopped_in);
        collect(child, &mut stopped_in);
    }
    let status = collect(spawn_child(&dir, true), &mut stopped_in);
    assert!(
        status.success(),
        "the last child should resume everything and exit"
    );
    println!("runs interrupted by a kill, by where they stopped: {stopped_in:?}");

    verify(&dir, kills, &stopped_in);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Counts the `STOPPED-IN` lines of a child's output, by phase.
fn count_stops(output: &str, stopped_in: &mut BTreeMap<String, usize>) {
    for line in output.lines() {
        // The harness prints `test child_worker ... ` before the child's own lines.
        if let Some((_, phase)) = line.split_once("STOPPED-IN ") {
            *stopped_in.entry(phase.trim().to_owned()).or_default() += 1;
        }
    }
}

fn verify(dir: &Path, kills: usize, stopped_in: &BTreeMap<String, usize>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(SqliteStore::open(dir.join("runs.db")).unwrap());
    let runs = runtime
        .block_on(store.list(None, None, usize::MAX))
        .unwrap()
        .runs;
    assert!(
        runs.len() > kills / 2,
        "only {} runs for {kills} kills",
        runs.len()
    );

    // No run missing: the idempotency keys are order-1 .. order-N without a gap.
    let mut numbers: Vec<u64> = runs
        .iter()
        .map(|r| {
            r.idempotency_key.as_deref().unwrap()["order-".len()..]
                .parse()
                .unwrap()
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=runs.len() as u64).collect::<Vec<_>>());

    let ledger = Connection::open(dir.join("ledger.db")).unwrap();
    let mut rows: HashMap<String, (String, String)> = HashMap::new();
    let mut stmt = ledger
        .prepare("SELECT key, run_id, what FROM ledger")
        .unwrap();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
    {
        let (key, run_id, what) = row.unwrap();
        rows.insert(key, (run_id, what));
    }
    let repeated: i64 = ledger
        .query_row(
            "SELECT COALESCE(SUM(attempts - 1), 0) FROM ledger",
            [],
            |r| r.get(0),
        )
        .unwrap();

    for run in &runs {
        let id = run.run_id.to_string();
        let number = run.idempotency_key.as_deref().unwrap()["order-".len()..]
            .parse::<u64>()
            .unwrap();
        let steps = ["reserve", "authorize", "create_order", "capture"];
        let effect = |pos: u32| {
            rows.get(&format!("{id}:{pos}:{}", steps[pos as usize]))
                .map(|(_, w)| w.as_str())
        };
        let undo = |pos: u32| {
            rows.get(&format!("{id}:{pos}:{}:undo", steps[pos as usize]))
                .map(|(_, w)| w.as_str())
        };
        let expected = ["reserve", "authorize", "create", "capture"];
        for (pos, what) in expected.iter().enumerate() {
            assert_eq!(
                effect(pos as u32),
                Some(*what),
                "run {id} (order {number}) step {pos}"
            );
        }
        // The hook handlers' effects, by their idempotency keys (firing 0: `review`, firing
        // 1: `created`, each handler 0 of its firing), each once.
        let handler = |firing: u32| {
            let prefix = format!("{id}:hook{firing}:0:");
            let mut found = rows.iter().filter(|(key, _)| key.starts_with(&prefix));
            let effect = found.next().map(|(_, (_, w))| w.as_str());
            assert!(
                found.next().is_none(),
                "run {id}: two effects under {prefix}"
            );
            effect
        };
        assert_eq!(handler(0), Some("review"), "run {id} (order {number})");
        assert_eq!(handler(1), Some("notify"), "run {id} (order {number})");
        // The job `create_order` (#2) enqueued: dispatched once the run completed, by its id;
        // never for a compensated run.
        let job = rows.get(&format!("{id}/step2/0")).map(|(_, w)| w.as_str());
        if number % 3 == 0 {
            assert_eq!(run.status, StoredStatus::Compensated, "order {number}");
            assert_eq!(undo(0), Some("release"));
            assert_eq!(undo(1), Some("void"));
            assert_eq!(undo(2), Some("cancel"));
            assert_eq!(undo(3), None, "the failed step is not compensated");
            assert_eq!(job, None, "order {number}: a job of a compensated run");
        } else {
            assert_eq!(job, Some("job"), "order {number}: its job");
            assert_eq!(run.status, StoredStatus::Completed, "order {number}");
            assert!((0..4).all(|p| undo(p).is_none()), "order {number} undone");
        }
        // Each journal replays cleanly: nothing compensated twice or out of order.
        let (_, events) = runtime.block_on(store.load(run.run_id)).unwrap();
        hookflow::testing::check_saga(&hookflow::Journal::from_events(events)).unwrap();
    }
    // Effects only for runs the store knows.
    let known: std::collections::HashSet<String> =
        runs.iter().map(|r| r.run_id.to_string()).collect();
    assert!(rows.values().all(|(run_id, _)| known.contains(run_id)));
    println!(
        "{} runs, {} ledger effects, {} repeated attempts absorbed by idempotency keys, {} runs resumed",
        runs.len(),
        rows.len(),
        repeated,
        stopped_in.values().sum::<usize>()
    );
}

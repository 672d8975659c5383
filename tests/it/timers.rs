//! A durable timer across a crash: a run sleeps 2 s on a SQLite file, its process is
//! SIGKILLed at once, another process with a worker (polling every 100 ms, the default) opens
//! the same file, and the run wakes there within 200 ms of its due time. The processes are
//! this test binary again, running the ignored entry point `timers::timer_process`.

use std::ffi::OsStr;
use std::path::Path;

/// A child process, killed when dropped: a failing test leaves none behind.
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hookflow::store::Store;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{Engine, EventKind, RunId, StepContext, StoredStatus, Worker, WorkflowContext};
use hookflow::{step, workflow};

use crate::support::child::{Killed, start};

const CHILD_TEST: &str = "timers::timer_process";
const CHILD_DB: &str = "HOOKFLOW_TIMERS_CHILD_DB";
const CHILD_MODE: &str = "HOOKFLOW_TIMERS_CHILD_MODE";

fn now_micros() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros(),
    )
    .unwrap_or(0)
}

/// When it ran, in microseconds since the epoch: the run's output.
#[step]
async fn woke(_ctx: &StepContext, _n: u32) -> Result<u64, std::io::Error> {
    Ok(now_micros())
}

#[workflow]
async fn reminder(ctx: &WorkflowContext, millis: u64) -> Result<u64, std::io::Error> {
    ctx.sleep(Duration::from_millis(millis)).await;
    woke(ctx, 0).await
}

fn engine(store: Arc<SqliteStore>) -> Engine {
    Engine::builder()
        .store(store)
        .workflow::<Reminder>()
        .build()
}

/// A timer process: with `HOOKFLOW_TIMERS_CHILD_MODE=start`, starts a reminder of 2 s, prints
/// `RUN <id>` once it sleeps, and waits to be killed; with `work`, runs a worker until killed.
#[test]
#[ignore = "child process of timers::a_sleeping_run_wakes_on_time_in_another_process_after_a_kill, run by it"]
fn timer_process() {
    let (Ok(db), Ok(mode)) = (std::env::var(CHILD_DB), std::env::var(CHILD_MODE)) else {
        return; // Not a timer process (`--ignored` without the parent): nothing to do.
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = Arc::new(SqliteStore::open(&db).unwrap());
            let engine = engine(store);
            if mode == "start" {
                let outcome = engine.run::<Reminder>(2000).await;
                println!("RUN {} {}", outcome.run_id(), outcome.status());
            } else {
                let _worker = Worker::new(&engine).start().unwrap();
                println!("WORKING");
            }
            std::future::pending::<()>().await;
        });
}

fn child(db: &Path, mode: &str) -> (Killed, String) {
    let env = [(CHILD_DB, db.as_os_str()), (CHILD_MODE, OsStr::new(mode))];
    start(CHILD_TEST, &env, |line| {
        if let Some((_, said)) = line.split_once("RUN ") {
            return Some(format!("RUN {said}"));
        }
        line.contains("WORKING").then(|| "WORKING".to_owned())
    })
}

#[tokio::test]
async fn a_sleeping_run_wakes_on_time_in_another_process_after_a_kill() {
    let dir = std::env::temp_dir().join(format!("hookflow-timers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("runs.db");

    let (mut first, said) = child(&db, "start");
    let mut words = said.split(' ').skip(1);
    let run_id = RunId::parse(words.next().unwrap()).unwrap();
    assert_eq!(words.next(), Some("waiting"), "{said}");
    first.0.kill().unwrap();
    first.0.wait().unwrap();

    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let (_, events) = store.load(run_id).await.unwrap();
    let due = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::WaitStarted { wait, .. } => wait.until_micros,
            _ => None,
        })
        .expect("the due time is in the journal");

    let (mut second, _) = child(&db, "work");
    let deadline = Instant::now() + Duration::from_secs(10);
    let woke_at = loop {
        let (record, _) = store.load(run_id).await.unwrap();
        if record.status == StoredStatus::Completed {
            break record.output.and_then(|o| o.as_u64()).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the run did not wake: {}",
            record.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    second.0.kill().unwrap();
    second.0.wait().unwrap();
    assert!(woke_at >= due, "woke {} µs early", due - woke_at);
    let late = Duration::from_micros(woke_at - due);
    assert!(
        late < Duration::from_millis(200),
        "woke {late:?} after its due time"
    );
    eprintln!("timers: the run woke {late:?} after its due time, in another process");
    let _ = std::fs::remove_dir_all(dir);
}

//! 10,000 runs waiting for an event on SQLite hold no memory in the process: its resident
//! memory grows by less than 20 MB over its idle level (each waiting run is suspended in the
//! store, not a task), and all 10,000 complete when their events arrive.
//!
//! A test binary of its own: it reads the process's resident memory (`VmRSS`, Linux), which
//! the tests of another binary running beside it would disturb.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hookflow::prelude::*;
use hookflow::store::sqlite::SqliteStore;
use hookflow::{RunId, Sent};
use tokio::task::JoinSet;

const RUNS: usize = 10_000;
const WARM_UP: usize = 200;
const AT_ONCE: usize = 64;

#[derive(Debug, thiserror::Error)]
enum HoldError {
    #[error(transparent)]
    Wait(#[from] WaitError),
}

#[derive(Default)]
struct Done(AtomicUsize);

#[step]
async fn reserve(_ctx: &StepContext, n: u32) -> Result<u32, HoldError> {
    Ok(n)
}

#[step]
async fn release(ctx: &StepContext, n: u32) -> Result<u32, HoldError> {
    if let Ok(done) = ctx.service::<Arc<Done>>() {
        done.0.fetch_add(1, Ordering::SeqCst);
    }
    Ok(n)
}

#[workflow(events(go: u32))]
async fn hold(ctx: &WorkflowContext, n: u32) -> Result<u32, HoldError> {
    let n = reserve(ctx, n).await?;
    let extra = ctx.wait(Hold::GO).await?;
    release(ctx, n + extra).await
}

/// The process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Starts `count` runs, `AT_ONCE` at a time; each must suspend.
async fn start(engine: &Engine, count: usize) -> Vec<RunId> {
    let mut ids = Vec::with_capacity(count);
    let mut running = JoinSet::new();
    for n in 0..count {
        if running.len() >= AT_ONCE {
            ids.push(running.join_next().await.unwrap().unwrap());
        }
        let engine = engine.clone();
        running.spawn(async move {
            let outcome = engine.run::<Hold>(u32::try_from(n).unwrap()).await;
            assert_eq!(
                outcome.status(),
                RunStatus::Waiting,
                "{:?}",
                outcome.error()
            );
            outcome.run_id()
        });
    }
    while let Some(id) = running.join_next().await {
        ids.push(id.unwrap());
    }
    ids
}

/// Sends every run its event, `AT_ONCE` at a time.
async fn send_all(engine: &Engine, ids: Vec<RunId>) {
    let mut sending = JoinSet::new();
    for run_id in ids {
        if sending.len() >= AT_ONCE {
            sending.join_next().await.unwrap().unwrap();
        }
        let engine = engine.clone();
        sending.spawn(async move {
            let sent = engine.send(run_id, Hold::GO, 1).await.unwrap();
            assert!(matches!(sent, Sent::Delivered { .. }), "{sent:?}");
        });
    }
    while let Some(sent) = sending.join_next().await {
        sent.unwrap();
    }
}

async fn until_done(done: &Done, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while done.0.load(Ordering::SeqCst) < count {
        assert!(
            Instant::now() < deadline,
            "{} of {count} runs completed",
            done.0.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_waiting_runs_hold_no_memory_and_all_complete() {
    let dir = std::env::temp_dir().join(format!("hookflow-waiting-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(dir.join("runs.db")).unwrap());
    let done = Arc::new(Done::default());
    let engine = Engine::builder()
        .store(Arc::clone(&store))
        .workflow::<Hold>()
        .service(Arc::clone(&done))
        .build();

    // The idle level: the engine, the store and its caches after a few runs went through.
    let warm = start(&engine, WARM_UP).await;
    send_all(&engine, warm).await;
    until_done(&done, WARM_UP).await;
    let idle = rss();

    let ids = start(&engine, RUNS).await;
    let waiting = rss();
    let grown = waiting.saturating_sub(idle);
    eprintln!(
        "waiting_memory: idle {:.1} MB, with {RUNS} runs waiting {:.1} MB: +{:.1} MB",
        idle as f64 / 1e6,
        waiting as f64 / 1e6,
        grown as f64 / 1e6
    );
    assert!(
        grown < 20_000_000,
        "{RUNS} waiting runs grew the process by {:.1} MB",
        grown as f64 / 1e6
    );

    send_all(&engine, ids).await;
    until_done(&done, WARM_UP + RUNS).await;
    let _ = std::fs::remove_dir_all(dir);
}

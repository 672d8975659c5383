//! How soon an idle worker starts an enqueued run, on PostgreSQL, with and without wake-ups:
//! `cargo run --release --example bench_wakeup -- --runs 1000`.
//!
//! Starts a throw-away PostgreSQL with its durable defaults (`scripts/postgres.sh` with
//! `HOOKFLOW_PG_SETTINGS=""`), unless `--url` names one. One worker (default poll interval,
//! 100 ms) waits on the database; `--runs` runs are enqueued one after another, each once the
//! previous one has completed and a pause has passed (uniform in 0..`--pause-ms`, 100 by
//! default: the moment of an enqueue does not line up with the worker's polls). For each, the
//! time from the `enqueue` call to its first step starting. Twice: with wake-ups (`LISTEN`/
//! `NOTIFY`, the default) and with the worker polling only (`Worker::wake_ups(false)`);
//! prints p50, p99 and max of each, and one JSON line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookflow::Worker;
use hookflow::prelude::*;
use hookflow::store::Store;
use hookflow::store::postgres::PostgresStore;
use tokio::sync::mpsc;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn num(name: &str, default: u64) -> u64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Where the first step tells the bench it started: the run's input and the moment.
type Started = mpsc::UnboundedSender<(u32, Instant)>;

#[derive(Debug, thiserror::Error)]
#[error("never fails")]
struct Never;

#[step]
async fn first(ctx: &StepContext, n: u32) -> Result<u32, Never> {
    if let Ok(started) = ctx.service::<Started>() {
        let _ = started.send((n, Instant::now()));
    }
    Ok(n)
}

#[workflow(name = "bench_wakeup")]
async fn woken(ctx: &WorkflowContext, n: u32) -> Result<u32, Never> {
    first(ctx, n).await
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (url, cluster) = match arg("--url") {
        Some(url) => (url, None),
        None => {
            let dir =
                std::env::temp_dir().join(format!("hookflow-bench-wake-{}", std::process::id()));
            (start_cluster(&dir), Some(dir))
        }
    };
    let runs = u32::try_from(num("--runs", 1000)).unwrap_or(u32::MAX);
    let pause_ms = num("--pause-ms", 100);

    let woken = runtime.block_on(measure(&url, runs, pause_ms, true));
    let polled = runtime.block_on(measure(&url, runs, pause_ms, false));

    println!("Enqueue to first step, idle worker on PostgreSQL, {runs} runs one after another");
    for (name, latencies) in [
        ("wake-ups (LISTEN/NOTIFY)", &woken),
        ("polling only (100 ms)", &polled),
    ] {
        let (p50, p99, max) = percentiles(latencies);
        println!("  {name:<26} p50 {p50:>7.2} ms   p99 {p99:>7.2} ms   max {max:>7.2} ms");
    }
    let (w50, w99, wmax) = percentiles(&woken);
    let (p50, p99, pmax) = percentiles(&polled);
    println!(
        "{{\"runs\":{runs},\"pause_ms\":{pause_ms},\"wakeups\":{{\"p50_ms\":{w50:.2},\"p99_ms\":{w99:.2},\"max_ms\":{wmax:.2}}},\"polling\":{{\"p50_ms\":{p50:.2},\"p99_ms\":{p99:.2},\"max_ms\":{pmax:.2}}}}}"
    );
    if let Some(dir) = cluster {
        let _ = std::process::Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&dir)
            .status();
    }
}

/// The latencies, in ms, of `runs` enqueues to an idle worker, with or without wake-ups.
async fn measure(url: &str, runs: u32, pause_ms: u64, wake_ups: bool) -> Vec<f64> {
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(url).await.expect("connect"));
    let (started, mut starts) = mpsc::unbounded_channel::<(u32, Instant)>();
    let engine = Engine::builder()
        .worker_id(if wake_ups { "woken" } else { "polling" })
        .store(Arc::clone(&store))
        .service::<Started>(started)
        .workflow::<Woken>()
        .build();
    let worker = Worker::new(&engine)
        .wake_ups(wake_ups)
        .start()
        .expect("start");
    // A small linear congruential generator: pauses that do not line up with the polls.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut latencies = Vec::with_capacity(runs as usize);
    for n in 0..runs {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let pause = (seed >> 33) % pause_ms.max(1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let enqueued = Instant::now();
        let run_id = engine.enqueue::<Woken>(n).await.expect("enqueue");
        let (started_n, at) = tokio::time::timeout(Duration::from_secs(10), starts.recv())
            .await
            .expect("the run started within 10 s")
            .expect("the step reports");
        assert_eq!(started_n, n);
        latencies.push(at.duration_since(enqueued).as_secs_f64() * 1e3);
        // Idle again: the run has completed before the next one is enqueued.
        loop {
            let status = store.load(run_id).await.expect("load").0.status;
            if status.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let report = worker.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.completed, u64::from(runs));
    latencies
}

/// p50, p99 and max of `latencies`.
fn percentiles(latencies: &[f64]) -> (f64, f64, f64) {
    let mut sorted = latencies.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1);
        sorted.get(i).copied().unwrap_or(f64::NAN)
    };
    (
        at(0.50),
        at(0.99),
        sorted.last().copied().unwrap_or(f64::NAN),
    )
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh")
}

fn start_cluster(dir: &std::path::Path) -> String {
    let out = std::process::Command::new("bash")
        .arg(script())
        .arg("start")
        .arg(dir)
        .arg(std::process::id().to_string())
        .env("HOOKFLOW_PG_SETTINGS", "")
        .output()
        .expect("run scripts/postgres.sh");
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && url.starts_with("postgres://"),
        "cannot start PostgreSQL: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    url
}

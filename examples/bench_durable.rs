//! W5 on the SQLite store: `cargo run --release --example bench_durable -- --n 2000 --conc 64`.
//!
//! Prints runs per second sequential and with `--conc` runs in flight on a 2-worker tokio
//! runtime, the latency of one step commit, and the raw floor of the driver (a bare rusqlite
//! insert-commit loop with the same settings: WAL, `synchronous = NORMAL`), with the ratios
//! (the floor and the sequential runs alternated three times, the round of the median ratio
//! reported); then the targets of issue 20 with `met`/`missed` and one JSON line. Every run's result is
//! checked. The store's write transactions per run are counted (a counting wrapper around
//! the store: creates, commits, claims and lease writes), not assumed; so are the WAL frames
//! (pages) a sequential run writes. `--only seq|conc|wal` runs that phase alone.

#[path = "../benches/counting_store.rs"]
mod counting_store;
#[path = "../benches/targets.rs"]
mod targets;
#[path = "../benches/w5/mod.rs"]
mod w5;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookflow::store::sqlite::{SqliteStore, WriteStats};
use hookflow::store::{RunRecord, RunUpdate, Store, StoredStatus};
use hookflow::{Event, RunId};

/// Rounds of the floor and the sequential runs, alternated.
const ROUNDS: usize = 3;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hookflow-bench-durable-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A bare insert-commit loop on rusqlite: the most the driver can do.
fn raw_floor(n: usize) -> f64 {
    let dir = fresh_dir("floor");
    let conn = rusqlite::Connection::open(dir.join("floor.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    )
    .unwrap();
    let body = r#"{"seq":3,"at_micros":1,"event":"step_completed","step":"step1","position":0}"#;
    let started = Instant::now();
    for _ in 0..n {
        let tx = conn.unchecked_transaction().unwrap();
        tx.execute("INSERT INTO t (body) VALUES (?1)", [body])
            .unwrap();
        tx.commit().unwrap();
    }
    let per_s = n as f64 / started.elapsed().as_secs_f64();
    drop(conn);
    let _ = std::fs::remove_dir_all(dir);
    per_s
}

/// The mean latency of one `Store::commit` of one event, sequential.
async fn commit_latency(n: usize) -> Duration {
    let dir = fresh_dir("commit");
    let store = SqliteStore::open(dir.join("runs.db")).unwrap();
    let run_id = RunId::parse("01900000-0000-7000-8000-000000000000").unwrap();
    let record = RunRecord {
        run_id,
        workflow: "bench".into(),
        version: 1,
        input: serde_json::json!(null),
        status: StoredStatus::Running,
        idempotency_key: None,
        request_id: None,
        actor: None,
        origin: hookflow::Origin::Local,
        additional_data: None,
        output: None,
        error: None,
        created_at_micros: 0,
        updated_at_micros: 0,
        owner: None,
        fence: 0,
        lease_until_micros: None,
        wake_at_micros: None,
        waiting_for: None,
        cancel: None,
        deadline_micros: None,
    };
    store.create(&record, None).await.unwrap();
    let template: Vec<Event> = serde_json::from_str(
        r#"[{"seq":0,"at_micros":1,"event":"step_completed","step":"step1","position":0,"compensable":true,"output":{"n":1},"compensation":{"n":0}}]"#,
    )
    .unwrap();
    let started = Instant::now();
    for i in 0..n {
        let mut events = template.clone();
        events[0].seq = i as u32;
        store.commit(run_id, 0, &events, None).await.unwrap();
    }
    let mean = started.elapsed() / n as u32;
    store
        .commit(
            run_id,
            0,
            &[],
            Some(RunUpdate {
                status: StoredStatus::Completed,
                output: None,
                error: None,
            }),
        )
        .await
        .unwrap();
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    mean
}

/// What [`sequential`] measures: runs/s, the time per run, events per run, and the store's
/// write transactions per run and commits carrying a run's end per run.
type Sequential = (f64, Duration, usize, f64, f64);

/// W5 runs one after the other.
async fn sequential(n: usize) -> Sequential {
    let dir = fresh_dir("seq");
    let counts = Arc::new(counting_store::Counts::default());
    let store = counting_store::Counting::new(
        Arc::new(SqliteStore::open(dir.join("runs.db")).unwrap()),
        Arc::clone(&counts),
    );
    let engine = w5::durable_engine(store);
    let started = Instant::now();
    let mut events = 0;
    for _ in 0..n {
        let outcome = engine.run::<w5::W5>(w5::input()).await;
        assert!(outcome.is_completed() && outcome.output().is_some_and(|o| o.state.n == 5));
        events = outcome.journal().len();
    }
    let elapsed = started.elapsed();
    let _ = std::fs::remove_dir_all(dir);
    let transactions = counts.transactions() as f64 / n as f64;
    let ends = counts.ends.load(std::sync::atomic::Ordering::Relaxed) as f64 / n as f64;
    (
        n as f64 / elapsed.as_secs_f64(),
        elapsed / n as u32,
        events,
        transactions,
        ends,
    )
}

/// The WAL frames (pages written) per W5 run, sequential. A reader holds a snapshot of the
/// database meanwhile, so that no checkpoint resets the write-ahead log: its size counts every
/// frame written. (A phase of its own: the growing log slows the runs a little.)
async fn wal_frames(n: usize) -> f64 {
    let dir = fresh_dir("wal");
    let path = dir.join("runs.db");
    let engine = w5::durable_engine(Arc::new(SqliteStore::open(&path).unwrap()));
    // The first run creates the tables' first pages.
    assert!(engine.run::<w5::W5>(w5::input()).await.is_completed());
    let reader = rusqlite::Connection::open(&path).unwrap();
    let page: u64 = reader
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM runs", [], |row| row.get(0))
        .unwrap();
    let wal = dir.join("runs.db-wal");
    let frames = || (std::fs::metadata(&wal).unwrap().len().saturating_sub(32)) / (page + 24);
    let before = frames();
    for _ in 0..n {
        assert!(engine.run::<w5::W5>(w5::input()).await.is_completed());
    }
    let written = frames() - before;
    reader.execute_batch("COMMIT").unwrap();
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
    written as f64 / n as f64
}

/// W5 with `conc` runs in flight on 2 tokio workers: runs/s, and how the store's writes
/// reached the database (on their callers' threads, or grouped by the writer thread).
fn concurrent(n: usize, conc: usize) -> (f64, WriteStats) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = fresh_dir("conc");
    let store = Arc::new(SqliteStore::open(dir.join("runs.db")).unwrap());
    let engine = Arc::new(w5::durable_engine(Arc::clone(&store)));
    let per_task = n / conc;
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..conc)
            .map(|_| {
                let engine = Arc::clone(&engine);
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        let outcome = engine.run::<w5::W5>(w5::input()).await;
                        assert!(outcome.is_completed());
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let per_s = (per_task * conc) as f64 / started.elapsed().as_secs_f64();
    let stats = store.write_stats();
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
    (per_s, stats)
}

/// "N writes in M transactions: K on their callers' threads, G groups of X on average".
fn describe(stats: &WriteStats) -> String {
    format!(
        "{} writes in {} transactions: {} on their callers' threads, {} groups of {:.1} writes on average",
        stats.writes(),
        stats.transactions(),
        stats.on_callers_thread,
        stats.groups,
        stats.grouped_writes as f64 / stats.groups.max(1) as f64
    )
}

/// `--only seq` or `--only conc`: that phase alone (for profilers), its figure printed.
fn only() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let n = arg("--n", 2000);
    let conc = arg("--conc", 64);
    match only().as_deref() {
        Some("seq") => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (seq, latency, _, per_run, _) = runtime.block_on(sequential(n));
            println!(
                "W5 sequential: {seq:.0} runs/s ({:.1} µs per run, {per_run:.2} writes per run)",
                latency.as_secs_f64() * 1e6
            );
            return;
        }
        Some("wal") => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let frames = runtime.block_on(wal_frames(n));
            println!("W5 sequential: {frames:.1} WAL frames per run");
            return;
        }
        Some("conc") => {
            let (per_s, stats) = concurrent(n, conc);
            println!(
                "W5 with {conc} in flight (2 workers): {per_s:.0} runs/s ({})",
                describe(&stats)
            );
            return;
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The floor and the sequential runs alternated ROUNDS times (each phase is a fraction of
    // a second, and the disk's speed drifts): the round of the median ratio is reported.
    let mut rounds: Vec<(f64, Sequential)> = (0..ROUNDS)
        .map(|_| (raw_floor(n * 4), runtime.block_on(sequential(n))))
        .collect();
    let of_floor =
        |(floor, seq): &(f64, (f64, Duration, usize, f64, f64))| 100.0 * seq.0 * seq.3 / floor;
    rounds.sort_by(|a, b| of_floor(a).total_cmp(&of_floor(b)));
    let round_ratios: Vec<f64> = rounds
        .iter()
        .map(|r| (of_floor(r) * 10.0).round() / 10.0)
        .collect();
    let (floor, (seq, seq_latency, events, commits_per_run, ends_per_run)) = rounds[ROUNDS / 2];
    let commit = runtime.block_on(commit_latency(n));
    let (conc_per_s, conc_stats) = concurrent(n * 4, conc);
    let frames = runtime.block_on(wal_frames(n.min(500)));
    println!("W5 on SqliteStore (WAL, synchronous = NORMAL), n = {n}, {events} events per run");
    println!("  raw floor (rusqlite insert-commit loop):   {floor:>10.0} commits/s");
    println!(
        "  one step commit (Store::commit):           {:>10.1} µs",
        commit.as_secs_f64() * 1e6
    );
    println!(
        "  W5 sequential:                             {seq:>10.0} runs/s  ({:.1} µs per run, {:.0} commits/s = {:.0}% of the floor)",
        seq_latency.as_secs_f64() * 1e6,
        seq * commits_per_run,
        100.0 * seq * commits_per_run / floor
    );
    println!(
        "    (the median of {ROUNDS} rounds, each the floor then the sequential runs: {round_ratios:?}% of the floor)"
    );
    println!(
        "  store write transactions per W5 run:        {commits_per_run:>10.2}  (counted: the create, then commits; {ends_per_run:.2} of them carry the run's end)"
    );
    println!("  WAL frames (pages written) per W5 run:      {frames:>10.1}  (sequential)");
    println!(
        "  W5 with {conc} in flight (2 workers):         {conc_per_s:>10.0} runs/s  ({:.1}x sequential)",
        conc_per_s / seq
    );
    println!("    the store's writes there: {}", describe(&conc_stats));
    let mut targets = targets::Targets::default();
    targets.at_least(
        "W5 sequential, write transactions/s over the floor's",
        100.0 * seq * commits_per_run / floor,
        60.0,
        "%",
    );
    targets.at_least(
        format!("W5 with {conc} in flight (2 workers)"),
        conc_per_s,
        12_000.0,
        "runs/s",
    );
    targets.print();
    println!(
        "{}",
        serde_json::json!({
            "n": n,
            "conc": conc,
            "floor_commits_per_s": floor.round(),
            "seq_of_floor_rounds": round_ratios,
            "step_commit_us": (commit.as_secs_f64() * 1e6 * 10.0).round() / 10.0,
            "w5_seq_runs_per_s": seq.round(),
            "w5_seq_us_per_run": (seq_latency.as_secs_f64() * 1e6 * 10.0).round() / 10.0,
            "w5_conc_runs_per_s": conc_per_s.round(),
            "w5_conc_transactions": conc_stats.transactions(),
            "w5_conc_writes": conc_stats.writes(),
            "events_per_run": events,
            "transactions_per_run": commits_per_run,
            "wal_frames_per_run": (frames * 10.0).round() / 10.0,
            "targets": targets.json(),
        })
    );
}
